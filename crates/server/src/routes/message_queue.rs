//! The message queue as an operator follows it: messages listed by state, recipient,
//! campaign, IP and time (cursor pages, newest first), and deferred messages retried now
//! instead of at their next scheduled attempt, one or by filter.

use axum::Json;
use axum::extract::{Path, State};
use ee_app::queue::messages::{self as queue, MessageFilter};
use ee_core::delivery::MessageState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::messages::{MessageOut, message_out, message_summary};
use super::parse_cursor;
use super::{limit_param, parse_time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// queued, sending, sent, deferred, bounced, failed, suppressed or expired.
    pub state: Option<String>,
    /// The recipient's address.
    pub to: Option<String>,
    pub campaign_id: Option<String>,
    pub ip_id: Option<String>,
    /// Queued at or after (RFC 3339).
    pub since: Option<String>,
    /// Queued before (RFC 3339).
    pub until: Option<String>,
    /// An admin names the tenant (slug or id); all tenants when absent.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The filter a query or a retry body describes, checked field by field.
struct Filter {
    tenant_id: Option<String>,
    state: Option<MessageState>,
    to: Option<String>,
    campaign_id: Option<String>,
    ip_id: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    async fn of(state: &AppState, principal: &Principal, q: &MessageQuery) -> ApiResult<Self> {
        let tenant_id = match &q.tenant_id {
            Some(_) => {
                let mut read = Read::begin(state, principal).await?;
                Some(read.tenant(q.tenant_id.as_deref()).await?)
            }
            None => principal.scope().tenant().map(str::to_owned),
        };
        let message_state = q
            .state
            .as_deref()
            .map(|s| {
                MessageState::parse(s).ok_or_else(|| {
                    ApiError::invalid_field(
                        "state",
                        "must be one of queued, sending, sent, deferred, bounced, failed, suppressed, expired",
                    )
                })
            })
            .transpose()?;
        let to = q
            .to
            .as_deref()
            .map(|t| {
                ee_core::contacts::normalize(t, Default::default())
                    .map_err(|e| ApiError::invalid_field("to", format!("is not an address: {e}")))
            })
            .transpose()?;
        Ok(Self {
            tenant_id,
            state: message_state,
            to,
            campaign_id: q.campaign_id.clone(),
            ip_id: q.ip_id.clone(),
            since: parse_time(q.since.as_deref(), "since")?,
            until: parse_time(q.until.as_deref(), "until")?,
        })
    }

    fn store(&self) -> MessageFilter<'_> {
        MessageFilter {
            tenant_id: self.tenant_id.as_deref(),
            state: self.state.map(MessageState::as_str),
            to_email: self.to.as_deref(),
            campaign_id: self.campaign_id.as_deref(),
            ip_id: self.ip_id.as_deref(),
            since: self.since,
            until: self.until,
        }
    }
}

/// Messages, newest first, filtered; cursor pagination.
#[utoipa::path(get, path = "/api/v2/messages", tag = "messages", params(MessageQuery),
    responses((status = 200, body = super::List<MessageOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> ApiResult<Json<super::List<MessageOut>>> {
    let filter = Filter::of(&state, &principal, &q).await?;
    let limit = limit_param(q.limit, 50, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = queue::page(
        &mut read,
        &filter.store(),
        parse_cursor(q.cursor.as_deref())?,
        limit,
    )
    .await?;
    let page = super::List::keyset(rows, limit, |m| format!("{}_{}", m.queued_at, m.id));
    Ok(Json(page.map(message_summary)))
}

/// Tries a deferred message again now instead of at its next scheduled attempt.
#[utoipa::path(post, path = "/api/v2/messages/{id}/retry", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = MessageOut), (status = 404, body = ErrorBody),
        (status = 409, description = "the message is not deferred", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let message = ee_app::queue::retry::retry(&mut w, &id).await?;
    let out = message_out(&mut w, message).await?;
    w.finish().await?;
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryIn {
    /// The recipient's address.
    pub to: Option<String>,
    pub campaign_id: Option<String>,
    pub ip_id: Option<String>,
    /// Queued at or after (RFC 3339).
    pub since: Option<String>,
    /// Queued before (RFC 3339).
    pub until: Option<String>,
    /// An admin names the tenant (slug or id); all tenants when absent.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// At most this many, oldest first: 1 to 10 000; 1 000 when absent.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetryOut {
    /// How many deferred messages are now due.
    pub retried: usize,
    pub ids: Vec<String>,
}

/// Tries the deferred messages matching a filter again now (oldest first, up to `limit`).
#[utoipa::path(post, path = "/api/v2/messages/retry", tag = "messages", request_body = RetryIn,
    responses((status = 200, body = RetryOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retry_many(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RetryIn>,
) -> ApiResult<Json<RetryOut>> {
    let query = MessageQuery {
        to: body.to,
        campaign_id: body.campaign_id,
        ip_id: body.ip_id,
        since: body.since,
        until: body.until,
        tenant_id: body.tenant_id,
        ..Default::default()
    };
    let filter = Filter::of(&state, &principal, &query).await?;
    let limit = limit_param(body.limit, 1000, 10_000)?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let ids = ee_app::queue::retry::retry_many(&mut w, &filter.store(), limit).await?;
    w.finish().await?;
    Ok(Json(RetryOut {
        retried: ids.len(),
        ids,
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BacklogQuery {
    /// An admin names the tenant (slug or id); all tenants when absent.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Backlog {
    /// Messages waiting for their first attempt.
    pub queued: i64,
    /// Messages waiting for another attempt.
    pub deferred: i64,
    /// Messages a node is sending now.
    pub sending: i64,
}

/// The queue's depth: what waits and what is in flight (a dashboard's figure).
#[utoipa::path(get, path = "/api/v2/messages/backlog", tag = "messages", params(BacklogQuery),
    responses((status = 200, body = Backlog), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn backlog(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<BacklogQuery>,
) -> ApiResult<Json<Backlog>> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = match &q.tenant_id {
        Some(_) => Some(read.tenant(q.tenant_id.as_deref()).await?),
        None => principal.scope().tenant().map(str::to_owned),
    };
    let counts: std::collections::BTreeMap<String, i64> =
        queue::backlog(&mut read, tenant_id.as_deref())
            .await?
            .into_iter()
            .collect();
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    Ok(Json(Backlog {
        queued: n("queued"),
        deferred: n("deferred"),
        sending: n("sending"),
    }))
}
