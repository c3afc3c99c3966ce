use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use ee_core::rotation::RotationPolicy;
use ee_store::{pools, tenants};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolOut {
    pub tenant_id: String,
    pub name: String,
    pub rotation: RotationPolicy,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPool {
    /// Required for an admin; a tenant's credential sets its own.
    pub tenant_id: Option<String>,
    pub rotation: RotationPolicy,
}

/// Pools with a configured rotation policy (others use the default policy).
#[utoipa::path(get, path = "/api/v1/pools", tag = "ips", params(ListParams),
    responses((status = 200, body = List<PoolOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<PoolOut>>> {
    let mut conn = state.db.pool().acquire().await?;
    let rows = pools::list(&mut conn, principal.scope()).await?;
    Ok(Json(List::of(
        rows.into_iter()
            .map(|p| PoolOut {
                rotation: p.policy(),
                tenant_id: p.tenant_id,
                name: p.name,
            })
            .collect(),
        &page,
    )?))
}

/// Sets the rotation policy of a pool (`default` is the pool of IPs without one).
#[utoipa::path(put, path = "/api/v1/pools/{name}", tag = "ips", params(("name" = String, Path)), request_body = PutPool,
    responses((status = 200, body = PoolOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutPool>,
) -> ApiResult<Json<PoolOut>> {
    let tenant_id = principal.owning_tenant(body.tenant_id.as_deref(), "tenant_id")?;
    let mut errors = ee_core::ValidationErrors::new();
    ee_core::tenant::validate_slug(&name, "name", &mut errors);
    if let Err(message) = body.rotation.check() {
        errors.add("rotation", message);
    }
    errors.into_result()?;
    let now = state.now();
    let mut w = Write::begin(&state, &principal, &meta, now).await?;
    tenants::get(&mut w.tx, &tenant_id)
        .await
        .map_err(ApiError::from_store("tenant"))?;
    let before = pools::get(&mut w.tx, &tenant_id, &name)
        .await?
        .map(|p| p.policy());
    let pool = pools::upsert(&mut w.tx, &tenant_id, &name, &body.rotation, now).await?;
    let out = PoolOut {
        rotation: pool.policy(),
        tenant_id: pool.tenant_id,
        name: pool.name,
    };
    let change = Change {
        action: "pool.update",
        resource_type: "pool",
        resource_id: Some(&out.name),
        tenant_id: Some(&out.tenant_id),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&out).ok(),
    };
    w.commit(change).await?;
    Ok(Json(out))
}
