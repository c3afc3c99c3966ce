//! A tenant's delivery settings: mode (direct, relay, MailWizz), tracking defaults,
//! frequency cap, return path, default sender.

use axum::Json;
use axum::extract::{Path, State};
use ee_app::delivery::tenant_delivery;
use ee_core::delivery::TenantDelivery;
use ee_store::relays;
use ee_store::tenants;
use serde_json::{Value, json};

use super::tenant_of;
use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[utoipa::path(get, path = "/api/v1/tenants/{id}/delivery", tag = "delivery", params(("id" = String, Path, description = "slug or id")),
    responses((status = 200, body = TenantDelivery), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantDelivery>> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, Some(&id)).await?;
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
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let tenant_id = tenant_of(&mut w.tx, &principal, Some(&id)).await?;
    let mut tenant = tenants::get(&mut w.tx, &tenant_id).await?;
    if body.mode == ee_core::delivery::Mode::Relay {
        let key = body
            .relay
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("relay", "is required in relay mode"))?;
        relays::find(&mut w.tx, &tenant_id, key)
            .await
            .map_err(|_| {
                ApiError::invalid_field("relay", format!("no relay `{key}` for this tenant"))
            })?;
    }
    if body.mode == ee_core::delivery::Mode::Mailwizz {
        let instance = ee_store::mailwizz::find(&mut w.tx, &tenant_id, body.mailwizz.as_deref())
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
        ("default_from_email", &body.default_from_email),
        ("default_reply_to", &body.default_reply_to),
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
    tenants::update(&mut w.tx, &tenant).await?;
    let change = Change {
        action: "tenant.delivery",
        resource_type: "tenant",
        resource_id: Some(&tenant.id),
        tenant_id: Some(&tenant.id),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&body).ok(),
    };
    w.commit(change).await?;
    Ok(Json(body))
}
