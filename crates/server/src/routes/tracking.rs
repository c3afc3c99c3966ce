//! Public endpoints the messages point at: the open pixel, click redirects and
//! unsubscribe (a confirmation page, and RFC 8058 one-click POST). Tokens are HMAC-signed
//! and name the message and link, so a click can only lead to a link of that message.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use ee_core::tracking::{self, Kind};
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

async fn message_of(state: &AppState, token: &str, kind: Kind) -> ApiResult<(Message, u32)> {
    let parsed = tracking::verify(&state.services.delivery.tracking_key, token, kind)
        .map_err(|_| ApiError::not_found("link"))?;
    let mut conn = state.db.pool().acquire().await?;
    let message = messages::get(&mut conn, &parsed.message_id, None)
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
    let mut tx = state.db.pool().begin().await?;
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

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">{body}</body></html>"
    ))
}

/// The page a person lands on from the unsubscribe link: a button that confirms (a GET
/// never unsubscribes, so link scanners cannot).
#[utoipa::path(get, path = "/u/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 200, description = "a confirmation page", content_type = "text/html"), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Html<String>> {
    let (message, _) = message_of(&state, &token, Kind::Unsubscribe).await?;
    let mut shown = String::new();
    ee_core::template::escape_html_into(&message.to_email, &mut shown);
    Ok(page(
        "Unsubscribe",
        &format!(
            "<p>Stop e-mails to <b>{shown}</b>?</p><form method=\"post\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>"
        ),
    ))
}

/// Unsubscribes the address of the message: RFC 8058 one-click (the body
/// `List-Unsubscribe=One-Click`) or the confirmation form. Idempotent.
#[utoipa::path(post, path = "/u/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 200, description = "unsubscribed", content_type = "text/html"), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Html<String>> {
    let (message, _) = message_of(&state, &token, Kind::Unsubscribe).await?;
    let now = state.now();
    let mut tx = state.db.pool().begin().await?;
    let detail = json!({"message_id": message.id, "campaign_id": message.campaign_id});
    let added = ee_store::suppressions::suppress_address(
        &mut tx,
        &message.tenant_id,
        &message.to_email,
        "unsubscribed",
        Some("list-unsubscribe"),
        &detail,
        now,
    )
    .await?;
    if added {
        messages::add_event(&mut tx, &message, "unsubscribed", None, None, None, now).await?;
        ee_jobs::mailwizz::enqueue_sync(&mut tx, &message.tenant_id, now).await?;
    }
    tx.commit().await?;
    Ok(page(
        "Unsubscribed",
        "<p>You are unsubscribed and will receive no more of these e-mails.</p>",
    ))
}
