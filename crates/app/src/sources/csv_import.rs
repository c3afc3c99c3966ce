//! CSV imports, streamed: the file is read in chunks of records, never whole; the
//! delimiter and the encoding (UTF-8 with or without BOM, else Latin-1) are sniffed from
//! its start; headers map to our fields through aliases, unknown columns become custom
//! fields; each rejected line is kept with its reason.

use ee_store::Scope;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ee_store::Db;
use ee_store::imports::{self, Import};
use ee_store::sources::Source;
use serde_json::{Value, json};

use crate::JobError;
use crate::contacts::{self, Counts, Destination, ItemStatus, RawContact};

pub const IMPORT: &str = "contacts.import";
/// A line longer than this is refused whole: no field of a contact needs it, and a file
/// whose quotes are broken can make one record of everything that follows.
const MAX_LINE_BYTES: usize = 1 << 20;
const CHUNK: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "latin-1",
        }
    }

    fn decode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            // Latin-1 maps each byte to the code point of the same value.
            Encoding::Latin1 => bytes.iter().map(|b| char::from(*b)).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub encoding: Encoding,
    pub bom: bool,
}

/// Guesses the dialect from the first 64 KiB.
pub fn sniff(head: &[u8]) -> Dialect {
    let bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
    let body = if bom { &head[3..] } else { head };
    let encoding = match std::str::from_utf8(body) {
        Ok(_) => Encoding::Utf8,
        // A multi-byte character cut at the end of the sample is still UTF-8.
        Err(e) if e.error_len().is_none() => Encoding::Utf8,
        Err(_) => Encoding::Latin1,
    };
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or(body);
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t', b'|'] {
        let mut in_quotes = false;
        let count = first_line
            .iter()
            .filter(|&&b| {
                if b == b'"' {
                    in_quotes = !in_quotes;
                }
                !in_quotes && b == candidate
            })
            .count();
        if count > best.1 {
            best = (candidate, count);
        }
    }
    Dialect {
        delimiter: best.0,
        encoding,
        bom,
    }
}

/// What each column means.
#[derive(Debug, Clone)]
pub struct Columns {
    pub email: usize,
    pub tags: Option<usize>,
    pub fields: Vec<(usize, &'static str)>,
    /// Unknown columns, kept as custom fields.
    pub custom: Vec<(usize, String)>,
}

pub fn map_headers(headers: &[String]) -> Result<Columns, String> {
    let email = headers
        .iter()
        .position(|h| crate::sources::field_names::is_email_header(h))
        .ok_or("no e-mail column (email, e-mail, mail, courriel…)")?;
    let tags = headers
        .iter()
        .position(|h| crate::sources::field_names::is_tags_header(h));
    let mut fields = Vec::new();
    let mut custom = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if i == email || Some(i) == tags {
            continue;
        }
        match crate::sources::field_names::field_name(h) {
            Some(f) if !fields.iter().any(|(_, known)| *known == f) => fields.push((i, f)),
            _ if !h.trim().is_empty() => custom.push((i, h.trim().to_owned())),
            _ => {}
        }
    }
    Ok(Columns {
        email,
        tags,
        fields,
        custom,
    })
}

/// Contacts with their line numbers, unreadable lines with the reason, and whether the
/// file ended.
pub type Chunk = (Vec<(u64, RawContact)>, Vec<(u64, String)>, bool);

/// Counts line feeds as the CSV reader pulls bytes, so that a record's line number
/// follows from its byte offset. The csv crate's own line count runs one ahead per
/// record for CRLF files (as Excel and Python write them): written here, since the
/// reader exposes byte offsets but no other line count.
struct LineFeeds {
    inner: Box<dyn Read + Send>,
    /// Bytes passed on so far.
    offset: u64,
    /// Offsets of line feeds passed on but not yet before a record asked about.
    pending: std::collections::VecDeque<u64>,
    /// Line feeds before the last record asked about.
    counted: u64,
}

impl LineFeeds {
    fn new(inner: Box<dyn Read + Send>) -> Self {
        Self {
            inner,
            offset: 0,
            pending: Default::default(),
            counted: 0,
        }
    }

    /// The 1-based line of a record starting at `offset` (asked in increasing order).
    /// After a CRLF the reader puts the next record's start on the LF itself, so a line
    /// feed at the offset counts as before it.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self.pending.front().is_some_and(|&at| at <= offset) {
            self.pending.pop_front();
            self.counted += 1;
        }
        self.counted + 1
    }
}

impl Read for LineFeeds {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            self.pending.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A streaming reader of contacts with their line numbers.
pub struct ContactReader {
    reader: csv::Reader<LineFeeds>,
    dialect: Dialect,
    columns: Columns,
    /// Fields of the header line: a line with more or fewer is refused.
    width: usize,
    record: csv::ByteRecord,
    /// Where the file ends, as the reader counts bytes (after a byte-order mark).
    end: u64,
}

impl ContactReader {
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut file =
            File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut head = vec![0u8; 64 * 1024];
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(e.to_string()),
            }
        }
        head.truncate(filled);
        let dialect = sniff(&head);
        let file = File::open(path).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        let end = size.saturating_sub(if dialect.bom { 3 } else { 0 });
        let mut input: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(256 * 1024, file));
        if dialect.bom {
            let mut bom = [0u8; 3];
            input.read_exact(&mut bom).map_err(|e| e.to_string())?;
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(LineFeeds::new(input));
        let headers: Vec<String> = reader
            .byte_headers()
            .map_err(|e| format!("cannot read the header line: {e}"))?
            .iter()
            .map(|h| dialect.encoding.decode(h))
            .collect();
        let columns = map_headers(&headers)?;
        Ok(Self {
            reader,
            dialect,
            columns,
            width: headers.len(),
            record: csv::ByteRecord::new(),
            end,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// Why the record just read cannot be taken, if it cannot.
    fn malformed(&self) -> Option<String> {
        let bytes = self.record.as_slice();
        if bytes.len() > MAX_LINE_BYTES {
            return Some(format!(
                "line too long: {} bytes (at most {MAX_LINE_BYTES}); a quote left open makes one \
                 line of what follows it",
                bytes.len()
            ));
        }
        if self.record.len() != self.width {
            // A field that runs over line ends: a quote opened on this line took the
            // lines after it (to the end of the file when it never closes).
            let spanned = self
                .record
                .iter()
                .map(|f| f.iter().filter(|b| **b == b'\n').count())
                .sum::<usize>();
            if spanned > 0 {
                let taken = if self.reader.position().byte() >= self.end {
                    "never closed: the rest of the file was read into one field".to_owned()
                } else {
                    format!("closed {spanned} line(s) later: those lines were read into one field")
                };
                return Some(format!(
                    "a quote opened on this line is {taken} ({} fields where the header has {})",
                    self.record.len(),
                    self.width
                ));
            }
            return Some(format!(
                "ragged line: {} fields where the header has {}",
                self.record.len(),
                self.width
            ));
        }
        if bytes.contains(&0) {
            return Some("binary data (a NUL byte)".to_owned());
        }
        if self.dialect.encoding == Encoding::Utf8 && std::str::from_utf8(bytes).is_err() {
            return Some(
                "not UTF-8 like the rest of the file (another encoding, or binary data)".to_owned(),
            );
        }
        None
    }

    /// Up to `n` contacts with their line numbers; lines that cannot be read come back as errors.
    pub fn next_chunk(&mut self, n: usize) -> Chunk {
        let mut out = Vec::with_capacity(n);
        let mut bad = Vec::new();
        while out.len() + bad.len() < n {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return (out, bad, true),
                Ok(true) => {
                    let byte = self.record.position().map_or(0, |p| p.byte());
                    let line = self.reader.get_mut().line_at(byte);
                    if let Some(reason) = self.malformed() {
                        bad.push((line, reason));
                        continue;
                    }
                    let text = |i: usize| {
                        self.record
                            .get(i)
                            .map(|b| self.dialect.encoding.decode(b))
                            .unwrap_or_default()
                    };
                    let mut raw = RawContact {
                        email: text(self.columns.email),
                        ..Default::default()
                    };
                    if raw.email.trim().is_empty() {
                        bad.push((line, "no e-mail address".to_owned()));
                        continue;
                    }
                    for (i, field) in &self.columns.fields {
                        let v = text(*i);
                        if !v.trim().is_empty() {
                            raw.fields.insert(field, v);
                        }
                    }
                    if let Some(i) = self.columns.tags {
                        raw.tags = text(i)
                            .split([',', ';', '|'])
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect();
                    }
                    for (i, name) in &self.columns.custom {
                        let v = text(*i);
                        if !v.trim().is_empty() {
                            raw.metadata.insert(name.clone(), Value::String(v));
                        }
                    }
                    out.push((line, raw));
                }
                Err(e) => {
                    let byte = e.position().map_or(0, |p| p.byte());
                    let line = self.reader.get_mut().line_at(byte);
                    bad.push((line, format!("unreadable line: {e}")));
                    if !matches!(
                        e.kind(),
                        csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                    ) {
                        return (out, bad, true);
                    }
                }
            }
        }
        (out, bad, false)
    }
}

/// Runs an import to the end, writing progress after each chunk; `progress` sees the
/// running counts (the CLI draws its bar with it).
pub async fn run(
    db: &Db,
    import: &mut Import,
    source: Option<&Source>,
    path: PathBuf,
    now: impl Fn() -> i64,
    mut progress: impl FnMut(&Counts, u64, u64),
) -> Result<Counts, String> {
    let opened = tokio::task::spawn_blocking({
        let path = path.clone();
        move || ContactReader::open(&path)
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut reader = opened?;
    let dialect = reader.dialect();
    import.status = ee_core::contacts::ImportStatus::Running;
    import.delimiter = Some(char::from(dialect.delimiter).to_string());
    import.encoding = Some(dialect.encoding.as_str().to_owned());
    let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
    imports::update(&mut conn, import)
        .await
        .map_err(|e| e.to_string())?;
    drop(conn);
    let mut counts = Counts::default();
    let mut lines = 0u64;
    let mut next_analyze = 10_000;
    loop {
        let (chunk, bad, done, bytes, back) = tokio::task::spawn_blocking(move || {
            let (chunk, bad, done) = reader.next_chunk(CHUNK);
            let bytes = reader.bytes_read();
            (chunk, bad, done, bytes, reader)
        })
        .await
        .map_err(|e| e.to_string())?;
        reader = back;
        let line_numbers: Vec<u64> = chunk.iter().map(|(l, _)| *l).collect();
        let raws: Vec<RawContact> = chunk.into_iter().map(|(_, r)| r).collect();
        lines += (raws.len() + bad.len()) as u64;
        counts.rejected += bad.len() as u64;
        let mut errors: Vec<(i64, String)> = bad
            .into_iter()
            .map(|(line, reason)| (line as i64, reason))
            .collect();
        if !raws.is_empty() {
            let dest = Destination {
                tenant_id: &import.tenant_id,
                source,
                channel: "csv",
            };
            let (results, chunk_counts) = contacts::ingest(db, dest, raws, now(), None)
                .await
                .map_err(|e| e.to_string())?;
            for result in results.iter().filter(|r| r.status == ItemStatus::Rejected) {
                let line = line_numbers.get(result.index).copied().unwrap_or(0);
                let reason = result.reason.as_deref().unwrap_or("rejected");
                errors.push((line as i64, reason.to_owned()));
            }
            counts.created += chunk_counts.created;
            counts.updated += chunk_counts.updated;
            counts.duplicate += chunk_counts.duplicate;
            counts.rejected += chunk_counts.rejected;
        }
        import.total = lines as i64;
        import.created = counts.created as i64;
        import.updated = counts.updated as i64;
        import.duplicates = counts.duplicate as i64;
        import.rejected = counts.rejected as i64;
        let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
        imports::add_errors(&mut conn, &import.id, &errors)
            .await
            .map_err(|e| e.to_string())?;
        imports::update(&mut conn, import)
            .await
            .map_err(|e| e.to_string())?;
        // A bulk load outpaces autovacuum: with statistics from when the table was small,
        // PostgreSQL looks contacts up by the wrong index and each chunk gets slower.
        // Refreshed each time the import doubles (from 10 000 rows): a handful of ANALYZE.
        if counts.created >= next_analyze {
            ee_store::refresh_statistics(&mut conn, db.backend())
                .await
                .map_err(|e| e.to_string())?;
            next_analyze = counts.created * 2;
        }
        progress(&counts, lines, bytes);
        if done {
            break;
        }
    }
    Ok(counts)
}

/// The job of an uploaded file: imports it, then removes it.
pub async fn job(services: &crate::Services, job: &ee_store::Job) -> Result<Value, JobError> {
    let payload: Value = serde_json::from_str(&job.payload).map_err(|e| JobError(e.to_string()))?;
    let id = payload["import_id"]
        .as_str()
        .ok_or_else(|| JobError("payload has no import_id".into()))?;
    let mut conn = services.db.pool().acquire().await?;
    let mut import = imports::get(&mut conn, id, Scope::All).await?;
    let source = match &import.source_id {
        Some(sid) => Some(ee_store::sources::get(&mut conn, sid, Scope::All).await?),
        None => None,
    };
    drop(conn);
    let Some(path) = import.path.clone() else {
        return Ok(json!({"skipped": "the file is gone"}));
    };
    let clock = services.clock.clone();
    let outcome = run(
        &services.db,
        &mut import,
        source.as_ref(),
        PathBuf::from(&path),
        || clock.now_ms(),
        |_, _, _| {},
    )
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    import.path = None;
    import.finished_at = Some(services.clock.now_ms());
    match &outcome {
        Ok(_) => import.status = ee_core::contacts::ImportStatus::Done,
        Err(e) => {
            import.status = ee_core::contacts::ImportStatus::Failed;
            import.error = Some(e.clone());
        }
    }
    let mut conn = services.db.pool().acquire().await?;
    imports::update(&mut conn, &import).await?;
    match outcome {
        Ok(counts) => Ok(serde_json::to_value(counts).unwrap_or_default()),
        // A bad file will not get better: report it on the import and end the job.
        Err(e) => Ok(json!({ "failed": e })),
    }
}

/// An uploaded file accepted for import: recorded, its import job queued, audited. The
/// job reads it from `path` later.
pub async fn accept(
    w: &mut crate::write::Write,
    tenant_id: &str,
    source: Option<&Source>,
    filename: Option<&str>,
    path: &Path,
) -> Result<Import, crate::AppError> {
    let now = w.now;
    let import = imports::insert(
        &mut w.tx,
        tenant_id,
        source.map(|s| s.id.as_str()),
        filename,
        Some(&path.to_string_lossy()),
        now,
    )
    .await?;
    ee_store::jobs::enqueue(
        &mut w.tx,
        &ee_store::jobs::NewJob::new(IMPORT, json!({"import_id": import.id}), now).max_attempts(1),
        now,
    )
    .await?;
    w.record(crate::audit::Change {
        action: "contacts.import",
        resource_type: "import",
        resource_id: Some(&import.id),
        tenant_id: Some(tenant_id),
        before: None,
        after: Some(json!({"filename": import.filename, "source": source.map(|s| &s.slug)})),
    })
    .await?;
    Ok(import)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(
            sniff(b"email,name\na@x.com,A\n"),
            Dialect {
                delimiter: b',',
                encoding: Encoding::Utf8,
                bom: false
            }
        );
        assert_eq!(sniff(b"\xEF\xBB\xBFemail;nom;ville\n").delimiter, b';');
        assert!(sniff(b"\xEF\xBB\xBFemail;nom\n").bom);
        assert_eq!(sniff(b"email\tname\n").delimiter, b'\t');
        assert_eq!(
            sniff(b"\"a,b\";c;d\n").delimiter,
            b';',
            "quoted delimiters do not count"
        );
        assert_eq!(
            sniff(b"email;nom\nx@y.fr;Ren\xE9\n").encoding,
            Encoding::Latin1
        );
        assert_eq!(
            sniff("email;nom\nx@y.fr;René\n".as_bytes()).encoding,
            Encoding::Utf8
        );
        assert_eq!(Encoding::Latin1.decode(b"Ren\xE9"), "René");
    }

    /// The line numbers of rejected lines, for a file written with `eol`.
    fn rejected_lines(eol: &str) -> Vec<u64> {
        let text = [
            "email,first_name",
            "a@example.test,A",
            ",no address",
            "b@example.test,\"two",
            "lines\"",
            "ragged,line,here",
            "c@example.test,C",
            ",again",
        ]
        .join(eol)
            + eol;
        let dir = std::env::temp_dir().join(format!("ee-csv-{}", ee_core::ids::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("contacts.csv");
        std::fs::write(&path, text).unwrap();
        let mut reader = ContactReader::open(&path).unwrap();
        let (good, bad, done) = reader.next_chunk(100);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(done);
        assert_eq!(
            good.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            [2, 4, 7],
            "{eol:?}"
        );
        bad.iter().map(|(l, _)| *l).collect()
    }

    #[test]
    fn line_numbers_are_right_for_lf_and_crlf_files() {
        assert_eq!(rejected_lines("\n"), [3, 6, 8]);
        assert_eq!(rejected_lines("\r\n"), [3, 6, 8]);
    }

    #[test]
    fn headers() {
        let h: Vec<String> = [
            "Prénom",
            "E-mail",
            "Nom",
            "Ville",
            "Tags",
            "Favourite colour",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let c = map_headers(&h).unwrap();
        assert_eq!((c.email, c.tags), (1, Some(4)));
        assert_eq!(
            c.fields,
            vec![(0, "first_name"), (2, "last_name"), (3, "city")]
        );
        assert_eq!(c.custom, vec![(5, "Favourite colour".to_owned())]);
        assert!(map_headers(&["name".to_owned()]).is_err());
    }
}
