//! CSV imports as an operator follows them: listed, one read with its progress, and its
//! error report (the upload and the run are `csv_import`'s).

use ee_store::imports;
pub use ee_store::imports::Import;

use crate::AppError;
use crate::read::Read;

/// The caller's latest imports, newest first (at most `limit`).
pub async fn list(read: &mut Read, limit: i64) -> Result<Vec<Import>, AppError> {
    let (conn, scope) = read.parts();
    Ok(imports::list(conn, scope, limit).await?)
}

/// An import the caller may see, or `NotFound`.
pub async fn get(read: &mut Read, id: &str) -> Result<Import, AppError> {
    let (conn, scope) = read.parts();
    imports::get(conn, id, scope)
        .await
        .map_err(AppError::from_store("import"))
}

/// The lines an import rejected and why: (line, reason).
pub async fn errors(read: &mut Read, import: &Import) -> Result<Vec<(i64, String)>, AppError> {
    Ok(imports::errors(read.conn(), &import.id).await?)
}
