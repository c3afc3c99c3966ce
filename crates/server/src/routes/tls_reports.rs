//! SMTP TLS reports (RFC 8460) sent to the recipient domains that ask for them.

use axum::Json;
use axum::extract::State;
use ee_app::delivery::tls_reports::TlsReportOut;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{List, ListParams};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::read::{Read, Reading};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TlsReportsQuery {
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The last 30 days' reports, the latest day first: what each covered (sessions that
/// succeeded and failed), where it went, or why it did not. An administrator's all, a
/// tenant's its own.
#[utoipa::path(get, path = "/api/v1/tls-reports", tag = "delivery", params(TlsReportsQuery),
    responses((status = 200, body = List<TlsReportOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_tls_reports(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TlsReportsQuery>,
) -> ApiResult<Json<List<TlsReportOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ee_app::delivery::tls_reports::list(&mut read, state.now()).await?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    Ok(Json(List::of(rows, &page)?))
}
