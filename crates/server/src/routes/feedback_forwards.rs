//! The forwarding outbox as an operator follows it: bounces and complaints on their way
//! to the data sources contacts came from, with their attempts, and "retry now".

use axum::Json;
use axum::extract::{Path, State};
use ee_app::feedback::forwards::{self, Forward};
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{List, limit_param, one_of, parse_cursor};
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForwardQuery {
    /// pending, delivered or dead.
    pub state: Option<String>,
    /// An admin names the tenant (slug or id); all tenants when absent.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardOut {
    pub id: String,
    pub tenant_id: String,
    /// The data source it goes to.
    pub source_id: String,
    /// The delivery event it forwards.
    pub event_id: String,
    pub url: String,
    /// What is sent: `{email, type, source}`.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// pending, delivered or dead.
    pub state: ee_core::feedback::ForwardState,
    pub attempts: i64,
    /// When the next attempt is due (pending ones).
    pub next_attempt_at: Option<String>,
    /// The HTTP status of the last answer.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

fn forward_out(f: Forward) -> ForwardOut {
    ForwardOut {
        body: serde_json::from_str(&f.body).unwrap_or_default(),
        next_attempt_at: (f.state == ee_core::feedback::ForwardState::Pending)
            .then(|| to_rfc3339(f.next_attempt_at)),
        delivered_at: f.delivered_at.map(to_rfc3339),
        created_at: to_rfc3339(f.created_at),
        id: f.id,
        tenant_id: f.tenant_id,
        source_id: f.source_id,
        event_id: f.event_id,
        url: f.url,
        state: f.state,
        attempts: f.attempts,
        last_status: f.last_status,
        last_error: f.last_error,
    }
}

/// Bounces and complaints forwarded (or being forwarded) to data sources, newest first.
#[utoipa::path(get, path = "/api/v1/feedback/forwards", tag = "feedback", params(ForwardQuery),
    responses((status = 200, body = List<ForwardOut>), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ForwardQuery>,
) -> ApiResult<Json<List<ForwardOut>>> {
    one_of(
        q.state.as_deref(),
        "state",
        ee_core::feedback::ForwardState::NAMES,
    )?;
    let limit = limit_param(q.limit, 50, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let tenant = match (&q.tenant_id, principal.is_admin()) {
        (None, true) => None,
        _ => Some(read.tenant(q.tenant_id.as_deref()).await?),
    };
    let rows = forwards::page(
        &mut read,
        tenant.as_deref(),
        q.state.as_deref(),
        parse_cursor(q.cursor.as_deref())?,
        limit,
    )
    .await?;
    let page = List::keyset(rows, limit, |f| format!("{}_{}", f.created_at, f.id));
    Ok(Json(page.map(forward_out)))
}

/// Makes a pending or dead forward due now (the retry-queue job sends it on its next run,
/// within 2 minutes).
#[utoipa::path(post, path = "/api/v1/feedback/forwards/{id}/retry", tag = "feedback", params(("id" = String, Path)),
    responses((status = 200, body = ForwardOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<ForwardOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let forward = forwards::retry(&mut w, &id).await?;
    w.finish().await?;
    Ok(Json(forward_out(forward)))
}
