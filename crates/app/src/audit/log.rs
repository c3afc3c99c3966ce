//! The audit log as an administrator reads it: who changed what, newest first.

pub use ee_store::audit::{AuditEntry, AuditFilter};

use crate::AppError;
use crate::read::Read;

/// The entries a filter selects, newest first.
pub async fn list(read: &mut Read, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AppError> {
    Ok(ee_store::audit::list(read.conn(), filter).await?)
}
