use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ee_app::access::sessions::{self, Login, Refreshed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::auth::principal::authenticate;
use crate::auth::{passwords, throttle};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LogoutRequest {
    /// Ends the session of this refresh token; without it, the session of the
    /// bearer access token ends.
    pub refresh_token: Option<String>,
}

const BAD_LOGIN: &str = "wrong e-mail or password";

/// Exchanges an e-mail and password for an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "too many failed logins from this client or for this account", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    let (opened, now) = open_session(&state, &meta, body).await?;
    Ok(Json(token_pair(&state, opened, now)))
}

/// Checks an e-mail and password (throttled, in constant time whether the account
/// exists or not) and opens a login session: what `login` and the admin UI's cookie
/// session share.
pub(crate) async fn open_session(
    state: &AppState,
    meta: &RequestMeta,
    body: LoginRequest,
) -> ApiResult<(sessions::Opened, i64)> {
    let throttle = throttle::keys(&body.email, meta);
    throttle::check(state, &throttle).await?;
    let mut read = Read::unscoped(state).await?;
    let user = ee_app::access::users::by_email(&mut read, body.email.trim()).await?;
    drop(read);
    let stored = user.as_ref().map_or_else(
        || passwords::decoy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password_ok = passwords::verify_blocking(body.password, stored).await;
    let user = match user {
        Some(user) if password_ok && user.is_active => user,
        _ => {
            throttle::failed(state, &throttle, &body.email, meta).await?;
            return Err(ApiError::unauthorized(BAD_LOGIN));
        }
    };
    let mut w = Write::begin_for(state, Actor::anonymous(), meta, state.now()).await?;
    let login = sessions::login(
        &mut w,
        &throttle,
        &user,
        state.settings.refresh_token_ttl_secs * 1000,
        meta.ip.as_deref(),
        meta.user_agent.as_deref(),
    )
    .await?;
    let Login::Opened(opened) = login else {
        return Err(ApiError::forbidden(
            "the tenant of this account is disabled",
        ));
    };
    let now = w.now;
    w.finish().await?;
    Ok((opened, now))
}

/// The access token the door issues for a session, with the session's refresh token.
fn token_pair(state: &AppState, opened: sessions::Opened, now: i64) -> TokenPair {
    let ttl = state.settings.access_token_ttl_secs;
    TokenPair {
        access_token: state
            .jwt
            .issue(&opened.user_id, &opened.session_id, now, ttl),
        refresh_token: opened.refresh_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
    }
}

/// Spends a refresh token for a new pair. Each refresh token works once; presenting
/// a used one ends its session (it has leaked).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    let mut w = Write::begin_for(&state, Actor::anonymous(), &meta, state.now()).await?;
    match sessions::refresh(&mut w, &body.refresh_token).await? {
        Refreshed::Rotated(opened) => {
            let pair = token_pair(&state, opened, w.now);
            w.finish().await?;
            Ok(Json(pair))
        }
        Refreshed::Reused => {
            w.finish().await?;
            Err(ApiError::unauthorized(
                "this refresh token was already used; its session has been ended",
            ))
        }
        Refreshed::Invalid => Err(ApiError::unauthorized(
            "the refresh token is invalid or expired",
        )),
        Refreshed::Disabled => Err(ApiError::unauthorized("the account is disabled")),
    }
}

/// Ends a session: the one of the given refresh token, or of the bearer access token.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = LogoutRequest, description = "optional"),
    responses((status = 204, description = "session ended"), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ()))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    meta: RequestMeta,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let body: LogoutRequest = crate::extract::parse_optional_json(&body)?;
    let mut w = Write::begin_for(&state, Actor::anonymous(), &meta, state.now()).await?;
    let (session_id, actor) = match body.refresh_token {
        Some(token) => {
            let session = sessions::of_refresh_token(&mut w, &token)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the refresh token is unknown"))?;
            (session, Actor::anonymous())
        }
        None => {
            let principal = authenticate(&state, &axum::http::Method::POST, &headers).await?;
            let session = principal.session_id.clone().ok_or_else(|| {
                ApiError::bad_request("an API key has no session to end; revoke the key instead")
            })?;
            (session, Actor::from(&principal))
        }
    };
    sessions::close(&mut w, &session_id, actor).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` or `api_key`.
    pub kind: &'static str,
    pub id: String,
    pub label: String,
    pub role: &'static str,
    pub tenant_id: Option<String>,
}

/// The caller, as the server sees it.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn me(principal: crate::auth::Principal) -> Json<Me> {
    Json(Me::from(principal))
}

impl From<crate::auth::Principal> for Me {
    fn from(principal: crate::auth::Principal) -> Self {
        Me {
            kind: principal.kind.as_str(),
            id: principal.id,
            label: principal.label,
            role: principal.role.as_str(),
            tenant_id: principal.tenant_id,
        }
    }
}
