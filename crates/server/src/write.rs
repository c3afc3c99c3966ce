//! The audited-write scope of a request: `ee_app::write::Write` opened for the request's
//! principal (its tenant scope, its identity as the audit log's actor) and its origin.
//! A handler then finds what it changes with `w.find`, calls the use-case, and commits.

use ee_app::audit::Actor;
pub use ee_app::write::Write;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::RequestMeta;
use crate::state::AppState;

/// How a request opens its write scope.
pub(crate) trait Begin: Sized {
    /// Opens the scope for the request's principal.
    async fn begin(
        state: &AppState,
        principal: &Principal,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self>;

    /// Opens the scope for an actor that is not the request's principal (a login, a
    /// failed one), seeing every tenant; `act_as` may name the actor later.
    async fn begin_for(
        state: &AppState,
        actor: Actor,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self>;

    /// Opens the scope for a change of many rows (see `Db::begin_bulk`).
    async fn begin_bulk(
        state: &AppState,
        principal: &Principal,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self>;
}

impl Begin for Write {
    async fn begin(
        state: &AppState,
        principal: &Principal,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self> {
        let (caller, scope) = acting(principal, meta);
        Ok(Write::open(&state.db, caller, scope, now).await?)
    }

    async fn begin_for(
        state: &AppState,
        actor: Actor,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self> {
        let caller = ee_app::audit::Caller {
            actor,
            origin: meta.origin(),
        };
        Ok(Write::open(&state.db, caller, None, now).await?)
    }

    async fn begin_bulk(
        state: &AppState,
        principal: &Principal,
        meta: &RequestMeta,
        now: i64,
    ) -> ApiResult<Self> {
        let (caller, scope) = acting(principal, meta);
        Ok(Write::open_bulk(&state.db, caller, scope, now).await?)
    }
}

/// Who acts for a request, and the tenants they may see.
fn acting(principal: &Principal, meta: &RequestMeta) -> (ee_app::audit::Caller, Option<String>) {
    (
        crate::audit::caller(principal, meta),
        principal.scope().tenant().map(str::to_owned),
    )
}
