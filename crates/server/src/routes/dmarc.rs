//! DMARC aggregate reports received: a domain's figures and reports, and every report
//! the caller may see (an administrator's include those given to no tenant, with why).

use axum::Json;
use axum::extract::{Path, State};
use ee_app::feedback::dmarc_view::{
    self, DmarcReportOut, DmarcReportQuery, DmarcSummaryOut, MAX_LISTED,
};
use ee_app::infra::domains::Domain;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{List, ListParams};
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::read::{Read, Reading};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Reports received in the last this many days (1 to 366); 30 when absent.
    pub days: Option<i64>,
}

/// The domain's DMARC figures over the reports received in the last days: messages per
/// source IP, DKIM and SPF alignment pass rates, its own IPs failing DMARC, and the
/// senders that are not ours using the domain.
#[utoipa::path(get, path = "/api/v1/domains/{id}/dmarc", tag = "domains", params(("id" = String, Path), SummaryQuery),
    responses((status = 200, body = DmarcSummaryOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn domain_summary(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SummaryQuery>,
) -> ApiResult<Json<DmarcSummaryOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    let d = read.find::<Domain>(&id).await?;
    let out = dmarc_view::domain_summary(&mut read, &d, query.days, state.now()).await?;
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    /// `attributed`, `unattributed` (read, but its domain is none a tenant holds) or
    /// `refused` (not read: over a limit or no report).
    pub state: Option<String>,
    /// Received in the last this many days (1 to 366); 30 when absent.
    pub days: Option<i64>,
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn page(query: &ReportsQuery) -> ListParams {
    ListParams {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
}

/// The domain's DMARC reports, the latest received first.
#[utoipa::path(get, path = "/api/v1/domains/{id}/dmarc/reports", tag = "domains", params(("id" = String, Path), ReportsQuery),
    responses((status = 200, body = List<DmarcReportOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn domain_reports(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<List<DmarcReportOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let d = read.find::<Domain>(&id).await?;
    let rows = dmarc_view::reports(
        &mut read,
        &DmarcReportQuery {
            domain_id: Some(&d.id),
            state: query.state.as_deref(),
            days: query.days,
            limit: Some(MAX_LISTED),
        },
        state.now(),
    )
    .await?;
    Ok(Json(List::of(rows, &page(&query))?))
}

/// DMARC reports received, the latest first: a tenant's own; an administrator's all,
/// with those attributed to no tenant (a domain nobody holds) and those refused, each
/// with why.
#[utoipa::path(get, path = "/api/v1/dmarc-reports", tag = "feedback", params(ReportsQuery),
    responses((status = 200, body = List<DmarcReportOut>), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<List<DmarcReportOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = dmarc_view::reports(
        &mut read,
        &DmarcReportQuery {
            domain_id: None,
            state: query.state.as_deref(),
            days: query.days,
            limit: Some(MAX_LISTED),
        },
        state.now(),
    )
    .await?;
    Ok(Json(List::of(rows, &page(&query))?))
}
