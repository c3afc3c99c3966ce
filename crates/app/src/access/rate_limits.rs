//! The API's request rate limits as the nodes share them (the rule is
//! `ee_core::rate_limit::Gcra`): on PostgreSQL, where several API nodes may serve one
//! database, the counts are kept there (`ee_store::rate_limits`); a SQLite database is
//! one node's, whose memory is the whole count.

use ee_core::rate_limit::Gcra;
use ee_store::{Backend, Db};

use crate::AppError;

/// Whether the nodes share the counts through the database.
pub fn shared(db: &Db) -> bool {
    db.backend() == Backend::Postgres
}

/// Counts one request against each key at `now` (the keys must differ): for each, in
/// order, `None` when it may go or the milliseconds to wait.
pub async fn take(db: &Db, now: i64, keys: &[(&str, Gcra)]) -> Result<Vec<Option<i64>>, AppError> {
    Ok(ee_store::rate_limits::take_counted(db, now, keys).await?)
}
