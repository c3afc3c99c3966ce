//! `backup` and `restore`: a consistent online copy of the database with the keys that
//! unseal its secrets (master key, JWT key, metrics token), in one tar archive encrypted
//! with age — to a passphrase or to X25519 recipients — so that a stolen backup tells
//! nothing and a lost data directory loses nothing. SQLite is copied with `VACUUM INTO`
//! (a transactionally consistent copy of a live database); PostgreSQL with `pg_dump`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use age::secrecy::SecretString;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::files::{open_db, sqlite_file, write_private};
use crate::config::Config;

/// The keys a backup carries, as files of the data directory.
const KEY_FILES: [&str; 3] = ["master.key", "jwt.key", "metrics.token"];
const MANIFEST: &str = "manifest.json";
const SQLITE_COPY: &str = "database.sqlite";
const PG_DUMP: &str = "database.pgdump";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    /// The binary that wrote it.
    version: String,
    /// `sqlite` or `postgres`.
    backend: String,
    schema_version: Option<i64>,
    created_at: String,
}

/// How a backup is sealed or opened.
pub struct Secret {
    /// A passphrase (from `--passphrase-file` or `EE_BACKUP_PASSPHRASE`).
    pub passphrase: Option<String>,
    /// age X25519 recipients (`age1…`), for `backup`.
    pub recipients: Vec<String>,
    /// age identity files (`AGE-SECRET-KEY-1…`), for `restore`.
    pub identities: Vec<PathBuf>,
}

impl Secret {
    pub fn read_passphrase(file: Option<&Path>) -> anyhow::Result<Option<String>> {
        let text = match file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            ),
            None => std::env::var("EE_BACKUP_PASSPHRASE").ok(),
        };
        Ok(text
            .map(|t| t.trim_end_matches(['\r', '\n']).to_owned())
            .filter(|t| !t.is_empty()))
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

pub(super) async fn backup(config: &Config, out: &Path, secret: &Secret) -> anyhow::Result<()> {
    let encryptor = encryptor(secret)?;
    let url = config.database_url();
    let work = tempfile::Builder::new()
        .prefix(".ee-backup-")
        .tempdir_in(
            out.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .context("cannot make a working directory beside the backup")?;
    let db = open_db(config).await?;
    let schema_version = db.schema_version().await?;
    let (backend, dump, dump_name) = if is_postgres(&url) {
        db.close().await;
        let dump = work.path().join(PG_DUMP);
        let status = Command::new("pg_dump")
            .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
            .arg(&dump)
            .arg("--dbname")
            .arg(&url)
            .status()
            .context("cannot run pg_dump (install PostgreSQL's client tools)")?;
        if !status.success() {
            bail!("pg_dump failed ({status})");
        }
        ("postgres", dump, PG_DUMP)
    } else {
        let copy = work.path().join(SQLITE_COPY);
        let target = copy.display().to_string().replace('\'', "''");
        // A consistent copy of the live database, taken in one read transaction.
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{target}'")))
            .execute(db.pool())
            .await
            .context("cannot copy the database (VACUUM INTO)")?;
        db.close().await;
        ("sqlite", copy, SQLITE_COPY)
    };
    let manifest = Manifest {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: backend.to_owned(),
        schema_version,
        created_at: ee_core::timefmt::to_rfc3339(ee_core::clock::Clock::System.now_ms()),
    };
    // Written beside the target, then renamed: a backup is whole or absent.
    let partial = work.path().join("backup.age");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        let mut sealed = encryptor
            .wrap_output(std::io::BufWriter::new(file))
            .context("cannot start the encryption")?;
        {
            let mut archive = tar::Builder::new(&mut sealed);
            append_bytes(
                &mut archive,
                MANIFEST,
                &serde_json::to_vec_pretty(&manifest)?,
            )?;
            for name in KEY_FILES {
                let path = config.data_dir.join(name);
                let bytes = match name {
                    // A master key given in the configuration is the one the data needs.
                    "master.key" if config.master_key.is_some() => config
                        .master_key
                        .as_deref()
                        .map(|k| k.trim().as_bytes().to_vec()),
                    _ => std::fs::read(&path).ok(),
                };
                if let Some(bytes) = bytes {
                    append_bytes(&mut archive, &format!("keys/{name}"), &bytes)?;
                }
            }
            let mut file = std::fs::File::open(&dump)?;
            archive.append_file(dump_name, &mut file)?;
            archive.finish()?;
        }
        sealed.finish()?.flush()?;
    }
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "Backed up the {backend} database (schema {}) and its keys to {}",
        schema_version.map_or("none".to_owned(), |v| v.to_string()),
        out.display()
    );
    Ok(())
}

fn append_bytes<W: Write>(
    archive: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    archive.append_data(&mut header, name, bytes)?;
    Ok(())
}

fn encryptor(secret: &Secret) -> anyhow::Result<age::Encryptor> {
    match (&secret.passphrase, secret.recipients.is_empty()) {
        (Some(_), false) => bail!("give a passphrase or recipients, not both"),
        (Some(passphrase), true) => Ok(age::Encryptor::with_user_passphrase(SecretString::from(
            passphrase.clone(),
        ))),
        (None, false) => {
            let recipients = secret
                .recipients
                .iter()
                .map(|r| {
                    r.parse::<age::x25519::Recipient>()
                        .map_err(|e| anyhow::anyhow!("recipient {r:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        (None, true) => bail!(
            "a backup must be encrypted: give --passphrase-file (or EE_BACKUP_PASSPHRASE) or --recipient"
        ),
    }
}

/// Whether the data directory or database already holds a deployment.
async fn live(config: &Config) -> anyhow::Result<Option<String>> {
    let url = config.database_url();
    if config.data_dir.join("master.key").exists() {
        return Ok(Some(format!(
            "{} holds a master key",
            config.data_dir.display()
        )));
    }
    if let Some(path) = sqlite_file(&url)
        && std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
    {
        return Ok(Some(format!("{path} holds a database")));
    }
    if is_postgres(&url) {
        let db = ee_store::Db::connect(&url, 1)
            .await
            .context("cannot reach the database")?;
        let version = db.schema_version().await.ok().flatten();
        db.close().await;
        if version.is_some() {
            return Ok(Some("the PostgreSQL database holds a schema".to_owned()));
        }
    }
    Ok(None)
}

pub(super) async fn restore(
    config: &Config,
    file: &Path,
    secret: &Secret,
    force: bool,
) -> anyhow::Result<()> {
    let url = config.database_url();
    if let Some(what) = live(config).await?
        && !force
    {
        bail!(
            "refusing to restore over a live deployment: {what} (stop it and pass --force to replace it)"
        );
    }
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let decryptor = age::Decryptor::new(std::io::BufReader::new(input))
        .context("not an Email-Engine backup (not age-encrypted)")?;
    let reader: Box<dyn Read> = if decryptor.is_scrypt() {
        let passphrase = secret
            .passphrase
            .clone()
            .context("this backup is sealed with a passphrase: give --passphrase-file or EE_BACKUP_PASSPHRASE")?;
        let identity = age::scrypt::Identity::new(SecretString::from(passphrase));
        Box::new(
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot open the backup: wrong passphrase, or a damaged file ({e})"
                    )
                })?,
        )
    } else {
        let mut identities = Vec::new();
        for path in &secret.identities {
            identities.extend(
                age::IdentityFile::from_file(path.display().to_string())
                    .with_context(|| format!("cannot read the identity {}", path.display()))?
                    .into_identities()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
        if identities.is_empty() {
            bail!("this backup is sealed to recipients: give --identity with the matching key");
        }
        Box::new(
            decryptor
                .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                .map_err(|e| anyhow::anyhow!("cannot open the backup: not sealed to these identities, or a damaged file ({e})"))?,
        )
    };
    crate::secrets::private_dir(&config.data_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".ee-restore-")
        .tempdir_in(&config.data_dir)?;
    let mut archive = tar::Archive::new(reader);
    let mut manifest: Option<Manifest> = None;
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    let mut dump: Option<PathBuf> = None;
    for entry in archive.entries().context("the backup cannot be read")? {
        let mut entry = entry.context("the backup is damaged")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        match name.as_str() {
            MANIFEST => {
                let mut text = Vec::new();
                entry.read_to_end(&mut text)?;
                manifest = Some(
                    serde_json::from_slice(&text).context("the backup's manifest is damaged")?,
                );
            }
            SQLITE_COPY | PG_DUMP => {
                let path = work.path().join(&name);
                entry.unpack(&path)?;
                dump = Some(path);
            }
            key if key
                .strip_prefix("keys/")
                .is_some_and(|k| KEY_FILES.contains(&k)) =>
            {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                keys.push((key["keys/".len()..].to_owned(), bytes));
            }
            other => bail!("the backup holds an unexpected entry {other:?}"),
        }
    }
    let manifest = manifest.context("the backup has no manifest")?;
    if manifest.format != FORMAT {
        bail!(
            "backup format {} is not one this release reads ({FORMAT})",
            manifest.format
        );
    }
    let dump = dump.context("the backup holds no database")?;
    match (manifest.backend.as_str(), is_postgres(&url)) {
        ("sqlite", false) => {
            let target = sqlite_file(&url).context("the database URL names no SQLite file")?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{target}{suffix}"));
            }
            std::fs::rename(&dump, target).with_context(|| format!("cannot write {target}"))?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o600))?;
        }
        ("postgres", true) => {
            let status = Command::new("pg_restore")
                .args([
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--dbname",
                ])
                .arg(&url)
                .arg(&dump)
                .status()
                .context("cannot run pg_restore (install PostgreSQL's client tools)")?;
            if !status.success() {
                bail!("pg_restore failed ({status})");
            }
        }
        (backend, _) => bail!(
            "this is a {backend} backup and the configured database is not: restore it into a {backend} database"
        ),
    }
    for (name, bytes) in &keys {
        write_private(&config.data_dir.join(name), bytes)?;
    }
    println!(
        "Restored the {} database (schema {}) of {} and {} key file(s) into {}",
        manifest.backend,
        manifest
            .schema_version
            .map_or("none".to_owned(), |v| v.to_string()),
        manifest.created_at,
        keys.len(),
        config.data_dir.display()
    );
    Ok(())
}
