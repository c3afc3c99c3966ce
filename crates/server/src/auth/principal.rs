//! Who is calling: a logged-in user (bearer access token, or the admin UI's session
//! cookie with its CSRF token on changes) or an API key (`X-API-KEY: …`, or
//! `Authorization: Bearer ee_…`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use ee_app::access::Credential;
use ee_core::auth::{ActorKind, Role};

use crate::auth::cookie;
use crate::auth::credentials::presented_credential;
use crate::error::ApiError;
use crate::read::{Read, Reading};
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
    pub fn scope(&self) -> ee_app::Scope<'_> {
        if self.is_admin() {
            ee_app::Scope::All
        } else {
            ee_app::Scope::from(self.tenant_id.as_deref())
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

fn tenant_disabled() -> ApiError {
    ApiError::forbidden("the tenant of these credentials is disabled")
}

async fn from_api_key(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    let mut read = Read::unscoped(state).await?;
    let key = match ee_app::access::api_keys::authenticate(&mut read, key, state.now()).await? {
        Credential::Valid(key) => key,
        Credential::Refused => {
            return Err(ApiError::unauthorized(
                "the API key is unknown, revoked or expired",
            ));
        }
        Credential::TenantDisabled => return Err(tenant_disabled()),
    };
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
    let mut read = Read::unscoped(state).await?;
    let user = match ee_app::access::sessions::authenticate(
        &mut read,
        &claims.sid,
        &claims.sub,
        state.now(),
    )
    .await?
    {
        Credential::Valid(user) => user,
        Credential::Refused => {
            return Err(ApiError::unauthorized(
                "the session has ended; log in again",
            ));
        }
        Credential::TenantDisabled => return Err(tenant_disabled()),
    };
    Ok(Principal {
        kind: ActorKind::User,
        id: user.id,
        label: user.email,
        role: user.role,
        tenant_id: user.tenant_id,
        session_id: Some(claims.sid),
    })
}
