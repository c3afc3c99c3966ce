//! Public endpoints the messages point at: the open pixel and click redirects (the
//! unsubscribe pages are in `unsubscribe.rs`). Tokens are HMAC-signed and name the
//! message and link, so a click can only lead to a link of that message.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_core::tracking::{self, Kind};
use ee_store::Scope;
use ee_store::messages::{self, Message};
use serde_json::json;

use crate::error::{ApiError, ApiResult, ErrorBody};
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
    let mut conn = state.db.pool().acquire().await?;
    let message = messages::get(&mut conn, &parsed.message_id, Scope::All)
        .await
        .map_err(ApiError::from_store("link"))?;
    Ok((message, parsed.index))
}

/// Records an engagement on the message and on its contact (event and engagement date).
async fn engage(
    state: &AppState,
    message: &Message,
    event: &str,
    detail: serde_json::Value,
) -> ApiResult<()> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let first = !messages::has_event(&mut tx, &message.id, event).await?;
    messages::add_event(
        &mut tx,
        message,
        event,
        None,
        Some(&detail.to_string()),
        None,
        now,
    )
    .await?;
    if let Some(contact) = &message.contact_id {
        ee_store::contacts::add_event(
            &mut tx,
            &message.tenant_id,
            contact,
            &event.to_ascii_uppercase(),
            message.campaign_id.as_deref(),
            &detail,
            now,
        )
        .await?;
        ee_store::contacts::touch_engagement(&mut tx, contact, now).await?;
    }
    let link = detail["link"].as_u64().and_then(|l| u32::try_from(l).ok());
    ee_app::campaign_stats::record_engagement(&mut tx, message, event, first, link, now).await?;
    tx.commit().await?;
    Ok(())
}

#[utoipa::path(get, path = "/t/o/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 200, description = "a 1×1 GIF", content_type = "image/gif"), (status = 404, body = ErrorBody)))]
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    let (message, _) = message_of(&state, &token, Kind::Open).await?;
    engage(
        &state,
        &message,
        "opened",
        json!({"message_id": message.id}),
    )
    .await?;
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
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let (message, index) = message_of(&state, &token, Kind::Click).await?;
    let links: Vec<String> = serde_json::from_str(&message.links).unwrap_or_default();
    let target = links
        .get(index as usize)
        .cloned()
        .ok_or_else(|| ApiError::not_found("link"))?;
    engage(
        &state,
        &message,
        "clicked",
        json!({"message_id": message.id, "link": index, "url": target}),
    )
    .await?;
    let location = HeaderValue::from_str(&target).map_err(|_| ApiError::not_found("link"))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}
