//! The audited-write scope of a request: one transaction, the caller and the time. A
//! handler makes its change on `tx`, then `commit`s with the change's description: the
//! audit entry is written in the same transaction and the transaction commits, once. A
//! handler that returns early (an error, a 404) drops the scope, which rolls back.

use ee_app::audit::{self, Caller, Change};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::RequestMeta;
use crate::state::AppState;

pub struct Write {
    pub tx: sqlx::Transaction<'static, sqlx::Any>,
    pub caller: Caller,
    pub now: i64,
}

impl Write {
    /// Opens the scope (on SQLite, a transaction that holds the write lock from its start).
    pub async fn begin(
        state: &AppState,
        principal: &Principal,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self> {
        Ok(Self {
            tx: state.db.begin().await?,
            caller: crate::audit::caller(principal, meta),
            now,
        })
    }

    /// Records one change of several (a bulk operation); `commit` ends the scope.
    pub async fn record(&mut self, change: Change<'_>) -> ApiResult<()> {
        audit::record(&mut self.tx, &self.caller, change, self.now).await?;
        Ok(())
    }

    /// Records `change` and commits.
    pub async fn commit(mut self, change: Change<'_>) -> ApiResult<()> {
        self.record(change).await?;
        self.tx.commit().await?;
        Ok(())
    }
}
