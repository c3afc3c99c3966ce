//! What an infrastructure operation can answer besides success. In a file of its own so
//! that the crate's error (`AppError`, which every module uses) depends on this type
//! alone, not on all of `infra`.

use ee_core::ip::IllegalTransition;
use ee_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for InfraError {
    fn from(e: sqlx::Error) -> Self {
        InfraError::Store(e.into())
    }
}
