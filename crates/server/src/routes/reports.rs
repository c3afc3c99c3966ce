//! `GET /api/v1/reports`: a tenant's delivery figures over a period, by day, IP, sending
//! domain, recipient provider or campaign.

use axum::Json;
use axum::extract::State;
use ee_app::feedback::reports::Report;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::read::{Read, Reading};
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// An admin names the tenant (slug or id), or none for every tenant's figures.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// The first day (YYYY-MM-DD, UTC); six days before `to` when absent.
    pub from: Option<String>,
    /// The last day, included (YYYY-MM-DD, UTC); today when absent.
    pub to: Option<String>,
    /// day (default), ip, domain, provider or campaign.
    pub by: Option<String>,
}

fn day_of(value: Option<&str>, field: &str) -> ApiResult<Option<i64>> {
    value
        .map(|text| {
            let text = text.trim();
            let full = if text.len() == 10 {
                format!("{text}T00:00:00Z")
            } else {
                text.to_owned()
            };
            ee_core::timefmt::parse_rfc3339(&full).ok_or_else(|| {
                ApiError::invalid_field(field, "must be a day (YYYY-MM-DD) or an RFC 3339 time")
            })
        })
        .transpose()
}

/// Sent, delivered, bounced by class and category, complaints, people's and machines'
/// opens and clicks, unsubscribes, with their rates, per row and in total.
#[utoipa::path(get, path = "/api/v1/reports", tag = "feedback", params(ReportQuery),
    responses((status = 200, body = Report), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn report(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<Report>> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant = read.tenant_view(q.tenant_id.as_deref()).await?;
    let to = day_of(q.to.as_deref(), "to")?.unwrap_or_else(|| state.now());
    let from = day_of(q.from.as_deref(), "from")?.unwrap_or(to - 6 * DAY_MS);
    let report = ee_app::feedback::reports::report(
        &mut read,
        tenant.as_deref(),
        from,
        to,
        q.by.as_deref().unwrap_or("day"),
    )
    .await?;
    Ok(Json(report))
}
