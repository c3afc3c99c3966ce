//! The admin UI's login session: the cookie flavour of `auth::login` and `auth::logout`.
//! Clients of the API use bearer tokens or API keys; the browser gets an HttpOnly cookie
//! it cannot read and a CSRF token it must send back on every change.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_app::access::sessions;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{LoginRequest, Me, open_session};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::auth::cookie::{self, UI_SESSION_SECS};
use crate::auth::principal::from_access_token;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct UiSession {
    /// Send it back as `X-CSRF-Token` on every POST, PUT, PATCH and DELETE made with the
    /// session cookie.
    pub csrf_token: String,
    pub me: Me,
}

/// Opens a browser session: sets the `ee_session` cookie (HttpOnly, SameSite=Strict,
/// Secure over TLS) and answers the CSRF token to send with changes.
#[utoipa::path(post, path = "/api/v1/auth/session", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = UiSession, headers(("set-cookie" = String, description = "the session cookie"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "too many failed logins from this client or for this account", body = ErrorBody)),
    security(()))]
pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    meta: RequestMeta,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let (opened, now) = open_session(&state, &meta, body).await?;
    let ttl = UI_SESSION_SECS.min(state.settings.refresh_token_ttl_secs);
    let token = state
        .jwt
        .issue(&opened.user_id, &opened.session_id, now, ttl);
    let principal = from_access_token(&state, &token).await?;
    let secure = cookie::over_tls(&headers, &state.settings.public_url);
    let body = Json(describe(&state, principal)?);
    Ok((
        [(header::SET_COOKIE, cookie::set(&token, ttl, secure))],
        body,
    )
        .into_response())
}

/// The browser session's user and CSRF token (the UI asks on load).
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 200, body = UiSession), (status = 400, description = "an API key has no session", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session_cookie" = []), ("bearer" = [])))]
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<UiSession>> {
    Ok(Json(describe(&state, principal)?))
}

/// Ends the browser session and removes its cookie.
#[utoipa::path(delete, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 204, description = "session ended"), (status = 400, description = "an API key has no session", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "without the CSRF token", body = ErrorBody)),
    security(("session_cookie" = []), ("bearer" = [])))]
pub async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    meta: RequestMeta,
    principal: Principal,
) -> ApiResult<Response> {
    let session_id = session_of(&principal)?.to_owned();
    let mut w = Write::begin_for(&state, Actor::from(&principal), &meta, state.now()).await?;
    sessions::close(&mut w, &session_id, Actor::from(&principal)).await?;
    w.finish().await?;
    let secure = cookie::over_tls(&headers, &state.settings.public_url);
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cookie::clear(secure))],
    )
        .into_response())
}

fn session_of(principal: &Principal) -> ApiResult<&str> {
    principal.session_id.as_deref().ok_or_else(|| {
        ApiError::bad_request("an API key has no session; log in with an e-mail and password")
    })
}

fn describe(state: &AppState, principal: Principal) -> ApiResult<UiSession> {
    let csrf_token = state.jwt.csrf_token(session_of(&principal)?);
    Ok(UiSession {
        csrf_token,
        me: Me::from(principal),
    })
}
