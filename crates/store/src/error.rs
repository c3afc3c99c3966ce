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
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, anything else unchanged.
    pub fn unique(err: sqlx::Error, what: &str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(what.to_owned())
            }
            _ => StoreError::Database(err),
        }
    }
}
