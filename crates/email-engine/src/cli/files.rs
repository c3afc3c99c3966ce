//! The database and the files the commands write (owner-only where they hold secrets).

use anyhow::Context;
use ee_store::Db;

use crate::config::Config;

pub(super) async fn open_db(config: &Config) -> anyhow::Result<Db> {
    crate::secrets::private_dir(&config.data_dir)?;
    if let Some(path) = sqlite_file(&config.database_url()) {
        create_private_file(std::path::Path::new(path))?;
    }
    let db = Db::connect(&config.database_url(), config.db_max_connections)
        .await
        .context("cannot open the database")?;
    db.migrate().await.context("cannot apply migrations")?;
    db.set_min_free_disk(config.min_free_disk_mb.saturating_mul(1_048_576));
    Ok(db)
}

pub(super) use ee_store::sqlite_file;

/// Creates an empty file readable by its owner only, unless it exists: SQLite then
/// keeps that mode, and gives it to the database's -wal and -shm files too.
pub(super) fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Writes a file readable by its owner only.
pub(super) fn write_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    Ok(())
}
