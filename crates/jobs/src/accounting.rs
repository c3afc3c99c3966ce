//! Following PowerMTA's accounting file: each pass reads the complete lines added since
//! the last one (the place kept in the database) and applies them as feedback. When the
//! file was rotated (the path now names another inode), the rest of the old file is read
//! first, found by its inode in the same directory; a file cut short (copytruncate) is
//! read again from its start. Lines are applied with dedupe keys of inode and offset, so
//! a pass cut short by a crash never applies a line twice, and none is skipped.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ee_app::feedback::intake::{IntakeReport, accounting_lines};
use ee_app::{JobError, Services};
use ee_store::feedback_files::{self, FilePlace};
use tokio::sync::watch;

/// At most this much of a file is read per pass.
const CHUNK: u64 = 8 * 1024 * 1024;

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FollowReport {
    /// Lines read from a rotated file's rest.
    pub rotated_lines: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub errors: u64,
}

impl FollowReport {
    fn add(&mut self, r: &IntakeReport) {
        self.applied += r.applied;
        self.duplicates += r.duplicates;
        self.errors += r.errors.len() as u64;
    }
}

/// Reads a file from `from` to at most `CHUNK` further.
fn read_from(path: &Path, from: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    file.take(CHUNK).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Bytes of a file's start its fingerprint covers.
const FINGERPRINT_BYTES: u64 = 1024;

/// A digest of a file's first `len` bytes (at most `FINGERPRINT_BYTES`).
fn fingerprint(path: &Path, len: u64) -> std::io::Result<String> {
    let mut start = Vec::new();
    std::fs::File::open(path)?
        .take(len.min(FINGERPRINT_BYTES))
        .read_to_end(&mut start)?;
    Ok(ee_core::auth::token_digest(&String::from_utf8_lossy(
        &start,
    )))
}

/// The file in `dir` with this inode (a rotated accounting file).
fn find_inode(dir: &Path, inode: u64) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let meta = entry.metadata().ok()?;
        (meta.is_file() && meta.ino() == inode).then(|| entry.path())
    })
}

/// Reads and applies what `place` has not read of `file` (up to a chunk); returns the
/// new place and what was applied.
async fn read_rest(
    services: &Services,
    file: &Path,
    mut place: FilePlace,
    report: &mut FollowReport,
) -> Result<(FilePlace, u64), JobError> {
    let path = file.to_owned();
    let from = place.read_to as u64;
    let chunk = tokio::task::spawn_blocking(move || read_from(&path, from))
        .await
        .map_err(|e| JobError(e.to_string()))?
        .map_err(|e| JobError(format!("{}: {e}", file.display())))?;
    if chunk.is_empty() {
        return Ok((place, 0));
    }
    let header: Option<Vec<String>> = place
        .header
        .as_deref()
        .map(|h| h.split(',').map(str::to_owned).collect());
    let read = ee_connectors::pmta_accounting::read(
        &chunk,
        from,
        header.as_deref(),
        &services.feedback.rules,
        &services.delivery.tracking_key,
    )
    .map_err(|e| JobError(format!("{}: {e}", file.display())))?;
    let lines = read.lines.len() as u64;
    let key = format!("{}", place.inode);
    let applied = accounting_lines(services, None, read.lines, &key)
        .await
        .map_err(|e| JobError(e.to_string()))?;
    report.add(&applied);
    place.read_to += read.consumed as i64;
    place.header = Some(read.header.join(","));
    if from < FINGERPRINT_BYTES {
        place.fingerprint = fingerprint(file, place.read_to as u64).ok();
    }
    Ok((place, lines))
}

/// One pass over the file at `path`.
pub async fn follow_once(services: &Services, path: &Path) -> Result<FollowReport, JobError> {
    let mut report = FollowReport::default();
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(report);
    };
    let key = path.display().to_string();
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    let saved = feedback_files::get(&mut conn, &key).await?;
    drop(conn);
    let current = meta.ino() as i64;
    let mut place = match saved {
        Some(mut place) if place.inode != current => {
            // Rotated: the old file's rest first, wherever it went.
            let dir = path.parent().unwrap_or(Path::new("."));
            if let Some(old) = find_inode(dir, place.inode as u64) {
                loop {
                    let (next, lines) =
                        read_rest(services, &old, place.clone(), &mut report).await?;
                    report.rotated_lines += lines;
                    let done = next.read_to == place.read_to;
                    place = next;
                    if done || lines == 0 {
                        break;
                    }
                }
            } else {
                tracing::warn!(path = %key, "the rotated accounting file is gone; its unread lines are lost");
            }
            FilePlace {
                path: key.clone(),
                inode: current,
                read_to: 0,
                header: None,
                fingerprint: None,
                updated_at: now,
            }
        }
        // Cut short or replaced in place: read again from the start (dedupe keys keep it
        // exact for what was read before).
        Some(place)
            if (meta.len() as i64) < place.read_to
                || place.fingerprint.is_some()
                    && fingerprint(path, place.read_to as u64).ok() != place.fingerprint =>
        {
            FilePlace {
                read_to: 0,
                header: None,
                fingerprint: None,
                ..place
            }
        }
        Some(place) => place,
        None => FilePlace {
            path: key.clone(),
            inode: current,
            read_to: 0,
            header: None,
            fingerprint: None,
            updated_at: now,
        },
    };
    loop {
        let (next, lines) = read_rest(services, path, place.clone(), &mut report).await?;
        let moved = next.read_to != place.read_to;
        place = next;
        place.updated_at = now;
        let mut conn = services.db.pool().acquire().await?;
        feedback_files::save(&mut conn, &place).await?;
        if !moved || lines == 0 {
            break;
        }
    }
    Ok(report)
}

/// Follows the file every `every` until `shutdown` turns true.
pub async fn run(
    services: Services,
    path: PathBuf,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(path = %path.display(), "following PowerMTA's accounting file");
    while !*shutdown.borrow() {
        match follow_once(&services, &path).await {
            Ok(r) if r.applied + r.errors > 0 => {
                tracing::info!(
                    applied = r.applied,
                    errors = r.errors,
                    "accounting records read"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the accounting file failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
