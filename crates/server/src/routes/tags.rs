//! Tags: the tenant's tags, and bulk tagging by segment expression.

use super::{List, ListParams};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTags {
    /// A segment expression choosing the contacts.
    #[schema(value_type = Object)]
    pub filter: Value,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
    /// An admin names the tenant.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

pub use ee_app::contacts::tagging::BulkTagsOut;

/// Adds and removes tags on every contact a filter matches (removing a tag removes its descendants).
#[utoipa::path(post, path = "/api/v2/contacts/tags", tag = "contacts", request_body = BulkTags,
    responses((status = 200, body = BulkTagsOut), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn bulk_tags(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<BulkTags>,
) -> ApiResult<Json<BulkTagsOut>> {
    let input = ee_app::contacts::tagging::BulkTagging {
        filter: body.filter,
        add: body.add,
        remove: body.remove,
        tenant: body.tenant_id,
    };
    let mut w = Write::begin_bulk(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::contacts::tagging::bulk_tags(&mut w, input).await?;
    w.finish().await?;
    Ok(Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagOut {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// TYPE, SECTOR, QUALITY, GEOGRAPHY, another word, or FREE.
    pub category: String,
    pub parent_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TenantQuery {
    /// An admin names the tenant (slug or id).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// The tenant's tags with their hierarchy.
#[utoipa::path(get, path = "/api/v2/tags", tag = "contacts", params(TenantQuery, ListParams),
    responses((status = 200, body = List<TagOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn tags(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<TenantQuery>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<TagOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(q.tenant_id.as_deref()).await?;
    let rows = ee_app::contacts::view::tags(&mut read, &tenant_id).await?;
    Ok(Json(List::of(
        rows.into_iter()
            .map(|t| TagOut {
                id: t.id,
                slug: t.slug,
                name: t.name,
                category: t.category,
                parent_id: t.parent_id,
            })
            .collect(),
        &page,
    )?))
}
