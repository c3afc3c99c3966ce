//! Traffic shaping: what providers' replies hold back now (which rule and reply, until
//! when), lifting a state early, and the rules in effect.

use axum::Json;
use axum::extract::{Path, State};
use ee_app::delivery::shaping::ShapingOut;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{List, ListParams};
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShapingQuery {
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Also the states over or lifted within the last week (`active` tells them apart).
    #[serde(default)]
    pub all: bool,
}

/// The states in force (with `all`, the week's), newest first: an administrator's all,
/// a tenant's its own.
#[utoipa::path(get, path = "/api/v1/shaping", tag = "delivery", params(ShapingQuery),
    responses((status = 200, body = List<ShapingOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_shaping(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ShapingQuery>,
) -> ApiResult<Json<List<ShapingOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ee_app::delivery::shaping::list(&mut read, state.now(), query.all).await?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    Ok(Json(List::of(rows, &page)?))
}

/// Ends a state before its time (audited): the path is back to its limits within a
/// second or two on every node.
#[utoipa::path(post, path = "/api/v1/shaping/{id}/lift", tag = "delivery", params(("id" = String, Path)),
    responses((status = 200, body = ShapingOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn lift_shaping(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<ShapingOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::delivery::shaping::lift(&mut w, &id).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// A provider of the shaping data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShapingProviderOut {
    pub name: String,
    pub mx_suffixes: Vec<String>,
    /// `shipped` or `operator` (`EE_SHAPING_RULES_FILE`).
    pub origin: String,
    /// Its messages per second across every IP and node (`EE_PROVIDER_RATES`); absent
    /// when it has none.
    pub rate_per_second: Option<u32>,
    /// The most messages it was sent in one second over the last minute, across every
    /// tenant: for an administrator only (absent for a tenant's callers).
    pub peak_last_minute: Option<i64>,
}

/// A rule of the shaping data, as written.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShapingRuleOut {
    /// `shipped:41`, `operator:3`: what a state's `rule` names.
    pub key: String,
    /// The provider, `relay`, or `*` for any.
    pub provider: String,
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShapingRulesOut {
    pub providers: Vec<ShapingProviderOut>,
    /// In the order they are tried: the first a reply meets acts.
    pub rules: Vec<ShapingRuleOut>,
}

/// The providers and rules in effect (the deployment's file first).
#[utoipa::path(get, path = "/api/v1/shaping/rules", tag = "delivery",
    responses((status = 200, body = ShapingRulesOut)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn shaping_rules(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<ShapingRulesOut>> {
    let shaping = &state.services.delivery.shaping;
    let rates = &state.services.delivery.rates;
    let mut providers = Vec::new();
    let mut read = Read::begin(&state, &principal).await?;
    let peaks = ee_app::delivery::shaping::peaks_last_minute(&mut read, state.now()).await?;
    for p in shaping.providers() {
        let peak_last_minute = peaks
            .as_ref()
            .map(|peaks| peaks.get(&p.name).copied().unwrap_or(0));
        providers.push(ShapingProviderOut {
            name: p.name.clone(),
            mx_suffixes: p.mx_suffixes.clone(),
            origin: p.origin.as_str().into(),
            rate_per_second: rates.per_second.get(&p.name).copied(),
            peak_last_minute,
        });
    }
    Ok(Json(ShapingRulesOut {
        providers,
        rules: shaping
            .rules()
            .iter()
            .map(|r| ShapingRuleOut {
                key: r.key(),
                provider: r.provider.clone().unwrap_or_else(|| "*".into()),
                text: r.text.clone(),
            })
            .collect(),
    }))
}
