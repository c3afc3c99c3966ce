//! Relays (smarthosts such as PowerMTA's listener) a tenant delivers through; their
//! passwords sealed, never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::delivery::RELAY_PASSWORD_PURPOSE;
use ee_core::timefmt::to_rfc3339;
use ee_mail::smtp::Security;
use ee_store::relays::{self, NewRelay, Relay};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tenant_of;
use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::state::AppState;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct RelayOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub host: String,
    pub port: i64,
    pub username: Option<String>,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    /// none, starttls or tls.
    pub tls: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Relay> for RelayOut {
    fn from(r: Relay) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            host: r.host,
            port: r.port,
            username: r.username,
            has_password: r.password_sealed.is_some(),
            tls: r.tls,
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayIn {
    pub name: Option<String>,
    /// Host name or IP of the smarthost (PowerMTA's listener, any relay).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    /// Sealed at rest, never returned.
    pub password: Option<String>,
    /// none, starttls (default) or tls.
    pub tls: Option<String>,
    pub tenant: Option<String>,
}

fn relay_tls(value: Option<&str>) -> ApiResult<String> {
    let tls = value.unwrap_or("starttls");
    match Security::parse(tls) {
        Some(Security::Opportunistic) | None => Err(ApiError::invalid_field(
            "tls",
            "must be none, starttls or tls",
        )),
        Some(s) => Ok(s.as_str().to_owned()),
    }
}

/// A relay's host: a name or an address this server may connect to
/// (`ee_core::outbound`; a name is checked again when resolved, before each connection).
fn relay_host(state: &AppState, value: &str) -> ApiResult<String> {
    let host = value.trim();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok {
        state
            .services
            .outbound
            .check_host(host)
            .map_err(|refused| ApiError::invalid_field("host", refused.to_string()))?;
        Ok(host.trim_matches(['[', ']']).to_owned())
    } else {
        Err(ApiError::invalid_field(
            "host",
            "must be a host name or an IP address",
        ))
    }
}

fn sealed_password(state: &AppState, password: Option<&str>) -> Option<String> {
    password.map(|p| {
        state
            .settings
            .sealer
            .seal(RELAY_PASSWORD_PURPOSE, p.as_bytes())
    })
}

#[utoipa::path(post, path = "/api/v1/relays", tag = "delivery", request_body = RelayIn,
    responses((status = 201, body = RelayOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_relay(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<RelayIn>,
) -> ApiResult<(StatusCode, Json<RelayOut>)> {
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid_field("name", "is required"))?;
    let host = relay_host(
        &state,
        body.host
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("host", "is required"))?,
    )?;
    let port = body
        .port
        .ok_or_else(|| ApiError::invalid_field("port", "is required"))?;
    if port == 0 {
        return Err(ApiError::invalid_field("port", "must be 1 to 65535"));
    }
    if body.password.is_some() && body.username.is_none() {
        return Err(ApiError::invalid_field(
            "username",
            "is required with a password",
        ));
    }
    let tls = relay_tls(body.tls.as_deref())?;
    let sealed = sealed_password(&state, body.password.as_deref());
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let tenant_id = tenant_of(&mut w.tx, &principal, body.tenant.as_deref(), "tenant").await?;
    let relay = relays::insert(
        &mut w.tx,
        &tenant_id,
        &NewRelay {
            name,
            host: &host,
            port,
            username: body.username.as_deref(),
            password_sealed: sealed.as_deref(),
            tls: &tls,
        },
        now,
    )
    .await?;
    let out = RelayOut::from(relay);
    let change = Change {
        action: "relay.create",
        resource_type: "relay",
        resource_id: Some(&out.id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/relays", tag = "delivery",
    responses((status = 200, body = Vec<RelayOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_relays(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<RelayOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let rows = relays::list(&mut conn, principal.scope()).await?;
    Ok(Json(rows.into_iter().map(RelayOut::from).collect()))
}

#[utoipa::path(put, path = "/api/v1/relays/{id}", tag = "delivery", params(("id" = String, Path)),
    request_body = RelayIn,
    responses((status = 200, body = RelayOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update_relay(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RelayIn>,
) -> ApiResult<Json<RelayOut>> {
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let mut relay = relays::get(&mut w.tx, &id, principal.scope())
        .await
        .map_err(ApiError::from_store("relay"))?;
    let before = RelayOut::from(relay.clone());
    if let Some(name) = body.name.as_deref().map(str::trim) {
        if name.is_empty() {
            return Err(ApiError::invalid_field("name", "must not be empty"));
        }
        relay.name = name.to_owned();
    }
    if let Some(host) = &body.host {
        relay.host = relay_host(&state, host)?;
    }
    if let Some(port) = body.port {
        if port == 0 {
            return Err(ApiError::invalid_field("port", "must be 1 to 65535"));
        }
        relay.port = i64::from(port);
    }
    if body.tls.is_some() {
        relay.tls = relay_tls(body.tls.as_deref())?;
    }
    if body.username.is_some() {
        relay.username = body.username.clone().filter(|u| !u.is_empty());
    }
    if body.password.is_some() {
        relay.password_sealed =
            sealed_password(&state, body.password.as_deref().filter(|p| !p.is_empty()));
    }
    relays::update(&mut w.tx, &relay, now).await?;
    let out = RelayOut::from(relays::get(&mut w.tx, &relay.id, None).await?);
    let change = Change {
        action: "relay.update",
        resource_type: "relay",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/relays/{id}", tag = "delivery", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_relay(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let relay = relays::get(&mut w.tx, &id, principal.scope())
        .await
        .map_err(ApiError::from_store("relay"))?;
    relays::delete(&mut w.tx, &relay.id).await?;
    let change = Change {
        action: "relay.delete",
        resource_type: "relay",
        resource_id: Some(&relay.id),
        tenant_id: Some(&relay.tenant_id),
        before: serde_json::to_value(RelayOut::from(relay.clone())).ok(),
        after: None,
    };
    w.commit(change).await?;
    Ok(StatusCode::NO_CONTENT)
}
