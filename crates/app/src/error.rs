//! What a use-case can answer besides success; each front door maps it once (HTTP status,
//! CLI message, job error).

use ee_core::ValidationErrors;
use ee_store::StoreError;

use crate::infra::error::InfraError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that breaks a rule, by field.
    #[error("invalid input: {}", .0.summary())]
    Invalid(#[from] ValidationErrors),
    /// Input over one of the bounds a parser of outside input keeps (depth, parts,
    /// recipients, size), by field: refused, never read at any cost.
    #[error("over a limit: {}", .0.summary())]
    OverLimit(ValidationErrors),
    /// The change contradicts the state of what it changes (a second running plan).
    #[error("{0}")]
    Conflict(String),
    /// A template's unknown variables or broken tags.
    #[error("{}", crate::campaigns::rendering::describe(.0))]
    Template(ee_core::template::Problems),
    /// What the caller named does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A move the IP state machine does not allow, or what its consequences refused.
    #[error(transparent)]
    Infra(#[from] InfraError),
    /// A failure that is ours (hashing, sealing), described without secrets.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// `NotFound(what)` for a missing row, the store's error otherwise.
    pub fn from_store(what: &'static str) -> impl Fn(StoreError) -> AppError {
        move |e| match e {
            StoreError::NotFound => AppError::NotFound(what),
            other => AppError::Store(other),
        }
    }
}

/// A failure of the store as a door shows it (the store's error itself stays in `app`):
/// what the caller did wrong (a row missing, a rule of uniqueness broken, text the
/// database cannot hold), the disk full, or the database's own fault.
#[derive(Debug)]
pub enum StoreFailure {
    /// A row that does not exist, unnamed (a use-case names it with `NotFound`).
    NotFound,
    /// A uniqueness rule broken: the text names what already exists.
    Conflict(String),
    /// Text the database cannot hold.
    Unstorable(String),
    /// The disk holding the database is full, or under the floor set for writes.
    DiskFull(String),
    /// Anything else, described for the log (never for a caller).
    Database(String),
}

impl From<StoreError> for StoreFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => StoreFailure::NotFound,
            StoreError::Conflict(what) => StoreFailure::Conflict(what),
            StoreError::Unstorable(what) => StoreFailure::Unstorable(what),
            full @ StoreError::DiskFull { .. } => StoreFailure::DiskFull(full.to_string()),
            other => StoreFailure::Database(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Store(e.into())
    }
}

/// What the audited write answers, where an infrastructure change records itself: the
/// store's error, or the infrastructure's own.
impl From<AppError> for InfraError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(e) => InfraError::Store(e),
            AppError::Infra(e) => e,
            other => InfraError::Invalid(other.to_string()),
        }
    }
}
