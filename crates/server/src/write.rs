//! The audited-write scope of a request: one transaction, the caller and the time. A
//! handler makes its change on `tx`, then `commit`s with the change's description: the
//! audit entry is written in the same transaction and the transaction commits, once. A
//! handler that returns early (an error, a 404) drops the scope, which rolls back.

use ee_app::audit::{self, Actor, Caller, Change};

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
        Self::begin_for(state, Actor::from(principal), meta, now).await
    }

    /// Opens the scope for an actor that is not the request's principal (a login, a
    /// failed one); `act_as` may name it later.
    pub async fn begin_for(
        state: &AppState,
        actor: Actor,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self> {
        Ok(Self {
            tx: state.db.begin().await?,
            caller: Caller {
                actor,
                origin: meta.origin(),
            },
            now,
        })
    }

    /// Opens the scope for a change of many rows (see `Db::begin_bulk`).
    pub async fn begin_bulk(
        state: &AppState,
        principal: &Principal,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self> {
        Ok(Self {
            tx: state.db.begin_bulk().await?,
            caller: crate::audit::caller(principal, meta),
            now,
        })
    }

    /// Who the change is by, once known (a login learns it inside the transaction).
    pub fn act_as(&mut self, actor: Actor) {
        self.caller.actor = actor;
    }

    /// Records one change of several (a bulk operation); `commit` ends the scope.
    pub async fn record(&mut self, change: Change<'_>) -> ApiResult<()> {
        audit::record(&mut self.tx, &self.caller, change, self.now).await?;
        Ok(())
    }

    /// Records one change made by another actor in the same transaction (a safety rule
    /// the caller's change set off).
    pub async fn record_by(&mut self, actor: Actor, change: Change<'_>) -> ApiResult<()> {
        let caller = Caller {
            actor,
            origin: self.caller.origin.clone(),
        };
        audit::record(&mut self.tx, &caller, change, self.now).await?;
        Ok(())
    }

    /// Commits what `record` recorded.
    pub async fn finish(self) -> ApiResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Records `change` and commits.
    pub async fn commit(mut self, change: Change<'_>) -> ApiResult<()> {
        self.record(change).await?;
        self.tx.commit().await?;
        Ok(())
    }
}
