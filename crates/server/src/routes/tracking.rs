//! Public endpoints the messages point at: the open pixel and click redirects (the
//! unsubscribe pages are in `unsubscribe.rs`). Tokens are HMAC-signed and name the
//! message and link, so a click can only lead to a link of that message.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use ee_app::feedback::engagement::{self, HitIn};
use ee_app::queue::messages::Message;
use ee_core::machine_hits::{DECOY_INDEX, HitKind};
use ee_core::tracking::{self, Kind};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::RequestMeta;
use crate::read::{Read, Reading};
use crate::state::AppState;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

pub(crate) async fn message_of(
    state: &AppState,
    token: &str,
    kind: Kind,
) -> ApiResult<(Message, u32)> {
    let parsed = tracking::verify(&state.services.delivery.tracking_key, token, kind)
        .map_err(|_| ApiError::not_found("link"))?;
    let mut read = Read::unscoped(state).await?;
    let message = engagement::message_of(&mut read, &parsed.message_id).await?;
    Ok((message, parsed.index))
}

/// Records a hit through the batch writer (returns once it is committed).
#[allow(clippy::too_many_arguments)]
async fn engage(
    state: &AppState,
    message: Message,
    kind: HitKind,
    link: Option<u32>,
    url: Option<String>,
    method: &Method,
    meta: &RequestMeta,
) -> ApiResult<()> {
    let hit = HitIn {
        message,
        kind,
        decoy: link == Some(DECOY_INDEX),
        link: link.filter(|l| *l != DECOY_INDEX),
        url,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        head: method == Method::HEAD,
        at: state.now(),
    };
    state.hits.record(hit).await?;
    Ok(())
}

#[utoipa::path(get, path = "/t/o/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 200, description = "a 1×1 GIF", content_type = "image/gif"), (status = 404, body = ErrorBody)))]
pub async fn open(
    State(state): State<AppState>,
    method: Method,
    meta: RequestMeta,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let (message, _) = message_of(&state, &token, Kind::Open).await?;
    engage(&state, message, HitKind::Open, None, None, &method, &meta).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, max-age=0"),
            ),
        ],
        PIXEL,
    )
        .into_response())
}

#[utoipa::path(get, path = "/t/c/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 302, description = "to the link of the message"), (status = 404, body = ErrorBody)))]
pub async fn click(
    State(state): State<AppState>,
    method: Method,
    meta: RequestMeta,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let (message, index) = message_of(&state, &token, Kind::Click).await?;
    if index == DECOY_INDEX {
        // The hidden link: recorded as a machine's click, answered with nothing.
        engage(
            &state,
            message,
            HitKind::Click,
            Some(index),
            None,
            &method,
            &meta,
        )
        .await?;
        return Ok((
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Html("<!doctype html><title>.</title>"),
        )
            .into_response());
    }
    let links: Vec<String> = serde_json::from_str(&message.links).unwrap_or_default();
    let target = links
        .get(index as usize)
        .cloned()
        .ok_or_else(|| ApiError::not_found("link"))?;
    let location = HeaderValue::from_str(&target).map_err(|_| ApiError::not_found("link"))?;
    engage(
        &state,
        message,
        HitKind::Click,
        Some(index),
        Some(target),
        &method,
        &meta,
    )
    .await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HitOut {
    pub kind: ee_core::machine_hits::HitKind,
    /// A click's link (its index in the message) and where it led.
    pub link: Option<i64>,
    pub url: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A machine's (a privacy proxy, a link scanner), with why.
    pub machine: bool,
    pub machine_reason: Option<String>,
    /// The message had a hit of this kind (and class) before.
    pub repeat: bool,
    pub at: String,
}

/// A message's opens and clicks as they came: time, IP, user agent, a person's or a
/// machine's.
#[utoipa::path(get, path = "/api/v2/messages/{id}/hits", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = super::List<HitOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn hits(
    State(state): State<AppState>,
    principal: crate::auth::Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<super::List<HitOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let m = read.find::<Message>(&id).await?;
    let rows = engagement::hits(&mut read, &m).await?;
    let items = rows
        .into_iter()
        .map(|h| HitOut {
            kind: h.kind,
            link: h.link,
            url: h.url,
            ip: h.ip,
            user_agent: h.user_agent,
            machine: h.machine,
            machine_reason: h.machine_reason,
            repeat: h.repeat,
            at: ee_core::timefmt::to_rfc3339(h.occurred_at),
        })
        .collect();
    Ok(axum::Json(super::List {
        items,
        next_cursor: None,
    }))
}
