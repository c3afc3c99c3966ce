//! The transactional API (`/api/v2/messages`, seed 001 §3.3), delivery routes
//! (`/api/v1/relays`) and each tenant's delivery settings.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ee_core::delivery::TenantDelivery;
use ee_core::timefmt::to_rfc3339;
use ee_jobs::delivery::{RELAY_PASSWORD_PURPOSE, SendRequest, tenant_delivery};
use ee_mail::smtp::Security;
use ee_store::messages::{self, Message};
use ee_store::relays::{self, NewRelay, Relay};
use ee_store::tenants;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::contacts::tenant_of;
use super::parse_time;
use crate::audit::{self, Actor, Change};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// The recipient's address.
    pub to: String,
    pub to_name: Option<String>,
    /// Tenant slug or id (admins; others send as their own tenant).
    pub tenant: Option<String>,
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: String,
    pub tenant_id: String,
    /// queued, sending, sent, deferred, bounced, failed, suppressed, expired.
    pub state: String,
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
    pub events: Vec<MessageEventOut>,
}

async fn message_out(conn: &mut ee_store::AnyConnection, m: Message) -> ApiResult<MessageOut> {
    let events = messages::events(conn, &m.id).await?;
    let waiting = matches!(m.state.as_str(), "queued" | "deferred");
    Ok(MessageOut {
        events: events
            .into_iter()
            .map(|e| MessageEventOut {
                event: e.event_type,
                code: e.code,
                detail: e.detail,
                ip_id: e.ip_id,
                at: to_rfc3339(e.occurred_at),
            })
            .collect(),
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
    })
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
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, body.tenant.as_deref(), "tenant").await?;
    drop(conn);
    let request = SendRequest {
        tenant_id,
        kind: "transactional".into(),
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
    let (message, replay) = ee_jobs::delivery::queue(&state.services, request).await?;
    let mut conn = state.db.pool().acquire().await?;
    let out = message_out(&mut conn, message).await?;
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
    let mut conn = state.db.pool().acquire().await?;
    let m = messages::get(&mut conn, &id, principal.scope())
        .await
        .map_err(ApiError::from_store("message"))?;
    Ok(Json(message_out(&mut conn, m).await?))
}

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
    let mut tx = state.db.begin().await?;
    let tenant_id = tenant_of(&mut tx, &principal, body.tenant.as_deref(), "tenant").await?;
    let relay = relays::insert(
        &mut tx,
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
    audit::record(&mut tx, &Actor::from(&principal), &meta, change, now).await?;
    tx.commit().await?;
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
    let mut tx = state.db.begin().await?;
    let mut relay = relays::get(&mut tx, &id, principal.scope())
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
    relays::update(&mut tx, &relay, now).await?;
    let out = RelayOut::from(relays::get(&mut tx, &relay.id, None).await?);
    let change = Change {
        action: "relay.update",
        resource_type: "relay",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&out).ok(),
    };
    audit::record(&mut tx, &Actor::from(&principal), &meta, change, now).await?;
    tx.commit().await?;
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
    let mut tx = state.db.begin().await?;
    let relay = relays::get(&mut tx, &id, principal.scope())
        .await
        .map_err(ApiError::from_store("relay"))?;
    relays::delete(&mut tx, &relay.id).await?;
    let change = Change {
        action: "relay.delete",
        resource_type: "relay",
        resource_id: Some(&relay.id),
        tenant_id: Some(&relay.tenant_id),
        before: serde_json::to_value(RelayOut::from(relay.clone())).ok(),
        after: None,
    };
    audit::record(&mut tx, &Actor::from(&principal), &meta, change, now).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}/delivery", tag = "delivery", params(("id" = String, Path, description = "slug or id")),
    responses((status = 200, body = TenantDelivery), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantDelivery>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, Some(&id), "tenant").await?;
    let tenant = tenants::get(&mut conn, &tenant_id).await?;
    Ok(Json(tenant_delivery(&tenant.settings)))
}

/// Chooses how a tenant delivers: `direct` or `relay` (naming one of its relays), tracking
/// defaults, a frequency cap, the return path.
#[utoipa::path(put, path = "/api/v1/tenants/{id}/delivery", tag = "delivery", params(("id" = String, Path, description = "slug or id")),
    request_body = TenantDelivery,
    responses((status = 200, body = TenantDelivery), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn put_delivery(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TenantDelivery>,
) -> ApiResult<Json<TenantDelivery>> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let tenant_id = tenant_of(&mut tx, &principal, Some(&id), "tenant").await?;
    let mut tenant = tenants::get(&mut tx, &tenant_id).await?;
    if body.mode == ee_core::delivery::Mode::Relay {
        let key = body
            .relay
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("relay", "is required in relay mode"))?;
        relays::find(&mut tx, &tenant_id, key).await.map_err(|_| {
            ApiError::invalid_field("relay", format!("no relay `{key}` for this tenant"))
        })?;
    }
    if body.mode == ee_core::delivery::Mode::Mailwizz {
        let instance = ee_store::mailwizz::find(&mut tx, &tenant_id, body.mailwizz.as_deref())
            .await
            .map_err(|_| {
                ApiError::invalid_field(
                    "mailwizz",
                    match &body.mailwizz {
                        Some(key) => format!("no MailWizz instance `{key}` for this tenant"),
                        None => "the tenant has no primary MailWizz instance: name one".into(),
                    },
                )
            })?;
        if instance.default_list_uid.is_none() {
            return Err(ApiError::invalid_field(
                "mailwizz",
                format!(
                    "MailWizz instance `{}` has no default list for the tenant's contacts",
                    instance.name
                ),
            ));
        }
    }
    for (field, value) in [
        ("return_path", &body.return_path),
        ("unsubscribe_mailto", &body.unsubscribe_mailto),
    ] {
        if let Some(v) = value
            && ee_core::contacts::normalize(v, Default::default()).is_err()
        {
            return Err(ApiError::invalid_field(field, "is not a valid address"));
        }
    }
    if let Some(cap) = body.frequency_cap
        && (cap.max == 0 || cap.hours == 0)
    {
        return Err(ApiError::invalid_field(
            "frequency_cap",
            "max and hours must be at least 1",
        ));
    }
    let before = tenant_delivery(&tenant.settings);
    let mut settings: Value = serde_json::from_str(&tenant.settings).unwrap_or(json!({}));
    if !settings.is_object() {
        settings = json!({});
    }
    settings["delivery"] = serde_json::to_value(&body).unwrap_or(Value::Null);
    tenant.settings = settings.to_string();
    tenants::update(&mut tx, &tenant).await?;
    let change = Change {
        action: "tenant.delivery",
        resource_type: "tenant",
        resource_id: Some(&tenant.id),
        tenant_id: Some(&tenant.id),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&body).ok(),
    };
    audit::record(&mut tx, &Actor::from(&principal), &meta, change, now).await?;
    tx.commit().await?;
    Ok(Json(body))
}
