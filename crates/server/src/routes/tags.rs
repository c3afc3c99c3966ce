//! Tags: the tenant's tags, and bulk tagging by segment expression.

use super::{List, ListParams};
use axum::Json;
use axum::extract::State;
use ee_core::segment::Expr;
use ee_store::contacts as store;
use ee_store::segments;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::audit::Change;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::state::AppState;
use crate::write::{Begin, Write};

use super::tenant_of;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkTagsOut {
    pub matched: u64,
    pub tagged: u64,
    pub untagged: u64,
}

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
    let now = state.now();
    let expr: Expr = serde_json::from_value(body.filter.clone())
        .map_err(|e| ApiError::invalid_field("filter", e.to_string()))?;
    ee_core::segment::check(&expr, now)
        .map_err(|e| ApiError::invalid_field("filter", e.to_string()))?;
    let add = body
        .add
        .iter()
        .map(|t| ee_core::tags::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid_field("add", e.to_string()))?;
    let remove = body
        .remove
        .iter()
        .map(|t| ee_core::tags::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid_field("remove", e.to_string()))?;
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, body.tenant_id.as_deref()).await?;
    drop(conn);
    let mut w = Write::begin_bulk(&state, &principal, &meta, now).await?;
    let mut add_ids = Vec::new();
    for tag in &add {
        add_ids.push(store::ensure_tag(&mut w.tx, &tenant_id, tag, now).await?);
    }
    let (mut matched, mut tagged, mut untagged) = (0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let ids = segments::ids(&mut w.tx, &tenant_id, &expr, after.as_deref(), 1000, now).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        matched += ids.len() as u64;
        let pairs: Vec<(String, String)> = ids
            .iter()
            .flat_map(|id| add_ids.iter().map(move |tag| (id.clone(), tag.clone())))
            .collect();
        tagged += store::tag_many(&mut w.tx, &pairs, now).await?;
        for tag in &remove {
            untagged += store::untag_many(&mut w.tx, &tenant_id, &ids, &tag.slug()).await?;
        }
        after = Some(last);
    }
    let change = Change {
        action: "contacts.bulk_tags",
        resource_type: "contact",
        resource_id: None,
        tenant_id: Some(&tenant_id),
        before: None,
        after: Some(
            json!({"filter": body.filter, "add": body.add, "remove": body.remove, "matched": matched}),
        ),
    };
    w.record(change).await?;
    w.finish().await?;
    Ok(Json(BulkTagsOut {
        matched,
        tagged,
        untagged,
    }))
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
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, q.tenant_id.as_deref()).await?;
    let rows = store::list_tags(&mut conn, &tenant_id).await?;
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
