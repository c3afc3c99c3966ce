use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_core::timefmt::to_rfc3339;
use ee_store::suppressions::{self, REASONS, Suppression};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::tenant_of;
use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionOut {
    pub id: String,
    /// Absent once the contact was erased: only the hash remains.
    pub email: Option<String>,
    pub email_hash: String,
    /// bounced, complained, unsubscribed, manual, imported, erased.
    pub reason: String,
    pub source: Option<String>,
    pub created_at: String,
}

impl From<Suppression> for SuppressionOut {
    fn from(s: Suppression) -> Self {
        Self {
            id: s.id,
            email: s.email,
            email_hash: s.email_hash,
            reason: s.reason,
            source: s.source,
            created_at: to_rfc3339(s.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SuppressionQuery {
    pub reason: Option<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// 1 to 1000; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[serde(alias = "after")]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v2/suppressions", tag = "contacts", params(SuppressionQuery),
    responses((status = 200, body = super::List<SuppressionOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<SuppressionQuery>,
) -> ApiResult<Json<super::List<SuppressionOut>>> {
    super::one_of(q.reason.as_deref(), "reason", &suppressions::REASONS)?;
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, q.tenant_id.as_deref(), "tenant_id").await?;
    let limit = super::limit_param(q.limit, 100, 1000)?;
    let rows = suppressions::list(
        &mut conn,
        &tenant_id,
        q.reason.as_deref(),
        q.cursor.as_deref(),
        limit,
    )
    .await?;
    let page = super::List::keyset(rows, limit, |s| s.id.clone());
    Ok(Json(page.map(SuppressionOut::from)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    pub email: String,
    /// manual (default), bounced, complained, unsubscribed, imported.
    pub reason: Option<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Adds an address; a contact with it is marked accordingly.
#[utoipa::path(post, path = "/api/v2/suppressions", tag = "contacts", request_body = AddSuppression,
    responses((status = 201, body = SuppressionOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<AddSuppression>,
) -> ApiResult<(StatusCode, Json<SuppressionOut>)> {
    let reason = body.reason.unwrap_or_else(|| "manual".into());
    if !REASONS.contains(&reason.as_str()) || reason == "erased" {
        return Err(ApiError::invalid_field(
            "reason",
            "must be manual, bounced, complained, unsubscribed or imported",
        ));
    }
    let email = ee_core::contacts::normalize(&body.email, Default::default())
        .map_err(|e| ApiError::invalid_field("email", e.to_string()))?;
    let hash = ee_core::contacts::address_hash(&email);
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    let tenant_id = tenant_of(
        &mut w.tx,
        &principal,
        body.tenant_id.as_deref(),
        "tenant_id",
    )
    .await?;
    if !suppressions::add(
        &mut w.tx,
        &tenant_id,
        &hash,
        Some(&email),
        &reason,
        Some("api"),
        now,
    )
    .await?
    {
        return Err(ApiError::conflict("this address is suppressed already"));
    }
    if let Some(contact) = ee_store::contacts::get_by_email(&mut w.tx, &tenant_id, &email).await? {
        let status = match reason.as_str() {
            "bounced" | "complained" | "unsubscribed" => reason.as_str(),
            _ => "suppressed",
        };
        ee_store::contacts::set_status(&mut w.tx, &contact.id, status, now).await?;
        ee_app::mailwizz::enqueue_sync(&mut w.tx, &tenant_id, now).await?;
    }
    let entry = suppressions::find(&mut w.tx, &tenant_id, &hash)
        .await?
        .ok_or_else(ApiError::internal)?;
    let out = SuppressionOut::from(entry);
    let change = Change {
        action: "suppression.add",
        resource_type: "suppression",
        resource_id: Some(&out.id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: Some(json!({"email": email, "reason": reason})),
    };
    w.commit(change).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TenantParam {
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Removes an entry (not an erasure's: that one stays).
#[utoipa::path(delete, path = "/api/v2/suppressions/{id}", tag = "contacts", params(("id" = String, Path), TenantParam),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TenantParam>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = tenant_of(&mut w.tx, &principal, q.tenant_id.as_deref(), "tenant_id").await?;
    if !suppressions::remove(&mut w.tx, &tenant_id, &id).await? {
        return Err(ApiError::not_found(
            "suppression (erasures cannot be removed)",
        ));
    }
    let change = Change {
        action: "suppression.remove",
        resource_type: "suppression",
        resource_id: Some(&id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: None,
    };
    w.commit(change).await?;
    Ok(StatusCode::NO_CONTENT)
}
