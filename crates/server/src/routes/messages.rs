//! The transactional API (`/api/v2/messages`, seed 001 §3.3): queueing a message and
//! reading its state and events.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ee_app::queue::messages::{self as queue, Message, SendRequest};
use ee_core::delivery::MessageState;
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::parse_time;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::read::{Read, Reading};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// The recipient's address.
    pub to: String,
    pub to_name: Option<String>,
    /// Tenant slug or id (admins; others send as their own tenant).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// A template by id or name …
    pub template: Option<String>,
    /// … or chosen by category and language (seed 000 §4.3's fallback).
    pub category: Option<String>,
    /// The language for the selection; the contact's, else English, when absent.
    pub language: Option<String>,
    /// Values of the template's variables: `{"FNAME": "Jean", "PROFILE_URL": "…"}`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Without a template: the subject and bodies (variables allowed in them too).
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// RFC 3339; now when absent.
    pub send_at: Option<String>,
    pub track_opens: Option<bool>,
    pub track_clicks: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageEventOut {
    /// queued, suppressed, sent, deferred, bounced, failed, expired, opened, clicked, unsubscribed.
    pub event: String,
    pub code: Option<i64>,
    pub detail: Option<String>,
    pub ip_id: Option<String>,
    pub at: String,
    /// A delivery attempt's TLS session: version, cipher and whether the receiver's
    /// certificate verified (`TLSv1_3 TLS13_AES_256_GCM_SHA384 unverified`); absent in
    /// clear and for other events.
    pub tls: Option<String>,
    /// For a recipient domain whose MTA-STS policy is in `testing` mode, what the policy
    /// would have refused (`no TLS`, `certificate not verified`, `MX not in the policy`).
    pub mta_sts: Option<String>,
    /// Where a delivery attempt went: `direct`, or `relay:<name>` (the relay that took
    /// it, after any that refused).
    pub route: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: String,
    pub tenant_id: String,
    /// queued, sending, sent, deferred, bounced, failed, suppressed, expired.
    pub state: MessageState,
    pub state_reason: Option<String>,
    pub to: String,
    pub from: String,
    pub subject: String,
    pub template_id: Option<String>,
    pub contact_id: Option<String>,
    pub language: Option<String>,
    /// The Message-ID header, fixed when queued.
    pub message_id: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_code: Option<i64>,
    pub last_reply: Option<String>,
    pub ip_id: Option<String>,
    pub route: Option<String>,
    pub queued_at: String,
    pub sent_at: Option<String>,
    /// The message's life, oldest first (on a single message; left out of lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<MessageEventOut>>,
}

pub(crate) async fn message_out(
    r: &mut impl ee_app::read::Reader,
    m: Message,
) -> ApiResult<MessageOut> {
    let events = queue::events(r, &m).await?;
    let mut out = message_summary(m);
    out.events = Some(
        events
            .into_iter()
            .map(|e| MessageEventOut {
                event: e.event_type,
                code: e.code,
                detail: e.detail,
                ip_id: e.ip_id,
                at: to_rfc3339(e.occurred_at),
                tls: e.tls,
                mta_sts: e.mta_sts,
                route: e.route,
            })
            .collect(),
    );
    Ok(out)
}

/// A message without its events, as lists show it.
pub(crate) fn message_summary(m: Message) -> MessageOut {
    let waiting = matches!(m.state, MessageState::Queued | MessageState::Deferred);
    MessageOut {
        events: None,
        id: m.id,
        tenant_id: m.tenant_id,
        state: m.state,
        state_reason: m.state_reason,
        to: m.to_email,
        from: m.from_email,
        subject: m.subject,
        template_id: m.template_id,
        contact_id: m.contact_id,
        language: m.language,
        message_id: format!("<{}>", m.message_id_header),
        attempts: m.attempts,
        next_attempt_at: waiting.then(|| to_rfc3339(m.next_attempt_at)),
        last_code: m.last_code,
        last_reply: m.last_reply,
        ip_id: m.ip_id,
        route: m.route,
        queued_at: to_rfc3339(m.queued_at),
        sent_at: m.sent_at.map(to_rfc3339),
    }
}

/// Queues a transactional message. With an `Idempotency-Key` header, the same key
/// answers with the message it queued first (200 and `x-idempotent-replay: true`)
/// instead of sending again.
#[utoipa::path(post, path = "/api/v2/messages", tag = "messages", request_body = MessageIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: one message per key and tenant")),
    responses((status = 202, body = MessageOut), (status = 200, body = MessageOut, description = "replay of an Idempotency-Key"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn send(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MessageIn>,
) -> ApiResult<(StatusCode, HeaderMap, Json<MessageOut>)> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "the Idempotency-Key header must be 1 to 200 visible characters",
                    )
                })?
                .to_owned(),
        ),
    };
    let send_at = parse_time(body.send_at.as_deref(), "send_at")?;
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(body.tenant_id.as_deref()).await?;
    drop(read);
    let request = SendRequest {
        tenant_id,
        kind: ee_core::delivery::MessageKind::Transactional,
        campaign_id: None,
        to_email: body.to,
        to_name: body.to_name,
        template: body.template,
        category: body.category,
        language: body.language,
        variables: body.variables,
        subject: body.subject,
        html: body.html,
        text: body.text,
        from_email: body.from_email,
        from_name: body.from_name,
        reply_to: body.reply_to,
        headers: body.headers,
        idempotency_key: key,
        send_at,
        track_opens: body.track_opens,
        track_clicks: body.track_clicks,
    };
    let (message, replay) = queue::queue(&state.services, request).await?;
    let mut read = Read::begin(&state, &principal).await?;
    let out = message_out(&mut read, message).await?;
    let mut response_headers = HeaderMap::new();
    if replay {
        response_headers.insert(
            "x-idempotent-replay",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    let status = if replay {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, response_headers, Json(out)))
}

#[utoipa::path(get, path = "/api/v2/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = MessageOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let m = read.find::<Message>(&id).await?;
    Ok(Json(message_out(&mut read, m).await?))
}
