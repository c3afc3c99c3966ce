use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
pub use ee_app::infra::pools::{PoolOut, PutPool};

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

/// Pools with a configured rotation policy (others use the default policy).
#[utoipa::path(get, path = "/api/v1/pools", tag = "ips", params(ListParams),
    responses((status = 200, body = List<PoolOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<PoolOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ee_app::infra::pools::list(&mut read).await?;
    Ok(Json(List::of(
        rows.into_iter().map(PoolOut::from).collect(),
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
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = ee_app::infra::pools::put(&mut w, &tenant_id, &name, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}
