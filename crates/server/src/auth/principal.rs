//! Who is calling: a logged-in user (bearer access token, or the admin UI's session
//! cookie with its CSRF token on changes) or an API key (`X-API-KEY: …`, or
//! `Authorization: Bearer ee_…`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use ee_core::auth::{ActorKind, Role, token_digest};
use ee_store::{StoreError, api_keys, sessions, tenants, users};

use crate::auth::cookie;
use crate::auth::credentials::presented_credential;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: ActorKind,
    /// The user's or the API key's id.
    pub id: String,
    /// E-mail of the user, or name of the key, for the audit log.
    pub label: String,
    pub role: Role,
    /// The tenant a `user` belongs to; `None` for admins.
    pub tenant_id: Option<String>,
    pub session_id: Option<String>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this action needs the admin role"))
        }
    }

    /// The tenants this caller's queries may see: all for an admin, else its own.
    pub fn scope(&self) -> ee_store::Scope<'_> {
        if self.is_admin() {
            ee_store::Scope::All
        } else {
            ee_store::Scope::from(self.tenant_id.as_deref())
        }
    }

    /// The tenant a new resource belongs to: the caller's own, or for an admin the one
    /// named in the request. A user naming another tenant gets 404, as if it did not exist.
    pub fn owning_tenant(&self, requested: Option<&str>, field: &str) -> Result<String, ApiError> {
        match (self.scope().tenant(), requested) {
            (Some(own), Some(asked)) if asked != own => Err(ApiError::not_found("tenant")),
            (Some(own), _) => Ok(own.to_owned()),
            (None, Some(asked)) => Ok(asked.to_owned()),
            (None, None) => Err(ApiError::invalid_field(field, "is required for an admin")),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let principal = authenticate(state, &parts.method, &parts.headers).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// Resolves the credential of a request to its principal, or 401. A header credential
/// wins over the session cookie; with the cookie alone, a request that may change
/// something (any method but GET, HEAD and OPTIONS) must carry the session's CSRF token.
pub async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    if let Some(credential) = presented_credential(headers)? {
        return if credential.starts_with(ee_core::auth::API_KEY_PREFIX) {
            from_api_key(state, &credential).await
        } else {
            from_access_token(state, &credential).await
        };
    }
    let Some(token) = cookie::session_token(headers) else {
        return Err(ApiError::unauthorized(
            "credentials required: Authorization: Bearer <token> or X-API-KEY: <key>",
        ));
    };
    let principal = from_access_token(state, token).await?;
    if !method.is_safe() {
        let session = principal.session_id.as_deref().unwrap_or_default();
        let presented = headers
            .get(cookie::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !state.jwt.csrf_matches(session, presented) {
            return Err(ApiError::forbidden(
                "a change made with the session cookie needs the session's X-CSRF-Token header",
            ));
        }
    }
    Ok(principal)
}

async fn from_api_key(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    let now = state.now();
    let mut conn = state.db.pool().acquire().await?;
    let key = match api_keys::find_valid(&mut conn, &token_digest(key), now).await {
        Ok(key) => key,
        Err(StoreError::NotFound) => {
            return Err(ApiError::unauthorized(
                "the API key is unknown, revoked or expired",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    ensure_tenant_active(&mut conn, &key.tenant_id).await?;
    // At most once a minute: a write on every request would serialise SQLite writers.
    if key.last_used_at.is_none_or(|at| now - at >= 60_000) {
        api_keys::touch(&mut conn, &key.id, now).await?;
    }
    Ok(Principal {
        kind: ActorKind::ApiKey,
        id: key.id,
        label: key.name,
        role: Role::User,
        tenant_id: Some(key.tenant_id),
        session_id: None,
    })
}

pub(crate) async fn from_access_token(
    state: &AppState,
    token: &str,
) -> Result<Principal, ApiError> {
    let claims = state
        .jwt
        .verify(token)
        .map_err(|_| ApiError::unauthorized("the access token is invalid or expired"))?;
    let mut conn = state.db.pool().acquire().await?;
    let ended = || ApiError::unauthorized("the session has ended; log in again");
    match sessions::get_live(&mut conn, &claims.sid, state.now()).await {
        Ok(session) if session.user_id == claims.sub => {}
        Ok(_) | Err(StoreError::NotFound) => return Err(ended()),
        Err(e) => return Err(e.into()),
    }
    let user = match users::get(&mut conn, &claims.sub).await {
        Ok(user) if user.is_active => user,
        Ok(_) | Err(StoreError::NotFound) => return Err(ended()),
        Err(e) => return Err(e.into()),
    };
    if let Some(tenant_id) = &user.tenant_id {
        ensure_tenant_active(&mut conn, tenant_id).await?;
    }
    Ok(Principal {
        kind: ActorKind::User,
        id: user.id,
        label: user.email,
        role: user.role,
        tenant_id: user.tenant_id,
        session_id: Some(claims.sid),
    })
}

async fn ensure_tenant_active(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
) -> Result<(), ApiError> {
    let tenant = tenants::get(conn, tenant_id).await?;
    if tenant.is_active {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "the tenant of these credentials is disabled",
        ))
    }
}
