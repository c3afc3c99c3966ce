use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the text names what already exists.
    #[error("{0}")]
    Conflict(String),
    #[error("invalid database URL: {0}")]
    Url(String),
    /// Text the database cannot hold (PostgreSQL refuses the NUL character): bad input,
    /// not a fault of the database.
    #[error("{0}")]
    Unstorable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The disk holding the database is full (SQLite's SQLITE_FULL), or has less free
    /// space than the floor set for writes (`Db::set_min_free_disk`).
    #[error("{}", disk_full_text(*free_bytes))]
    DiskFull { free_bytes: Option<u64> },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Migrations are forward-only: a database a newer release migrated is not opened by
    /// an older binary (it would not know the tables it finds).
    #[error(
        "the database's schema is version {database}, newer than this binary's {binary}: it was migrated by a newer Email-Engine; run that release or a later one"
    )]
    NewerSchema { database: i64, binary: i64 },
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, anything else unchanged.
    pub fn unique(err: sqlx::Error, what: &str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(what.to_owned())
            }
            _ => err.into(),
        }
    }
}

fn disk_full_text(free: Option<u64>) -> String {
    match free {
        Some(bytes) => format!(
            "the disk holding the database is nearly full ({:.1} MiB free): writes are refused until space is freed",
            bytes as f64 / 1_048_576.0
        ),
        None => "the disk holding the database is full: writes are refused until space is freed"
            .to_owned(),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        // SQLITE_FULL (13): the write was rolled back; the file is intact.
        if let sqlx::Error::Database(db) = &err
            && db.code().as_deref() == Some("13")
        {
            return StoreError::DiskFull { free_bytes: None };
        }
        // 22021 (a byte sequence invalid in the encoding: a NUL) and 22P05 (a `\u0000`
        // escape in JSON read as text), from PostgreSQL.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return StoreError::Unstorable(
                "text holds a NUL character, which cannot be stored".to_owned(),
            );
        }
        StoreError::Database(err)
    }
}
