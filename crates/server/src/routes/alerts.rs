use axum::Json;
use axum::extract::State;
use ee_app::infra::alerts::{self, Alert};
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::read::{Read, Reading};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub id: String,
    pub tenant_id: Option<String>,
    /// What makes repeats the same alert.
    pub cause: String,
    pub severity: ee_core::alert::Severity,
    pub title: String,
    pub message: String,
    /// How many times the cause was seen while the alert was open.
    pub occurrences: i64,
    pub first_at: String,
    pub last_at: String,
    pub notified_at: Option<String>,
}

impl From<Alert> for AlertOut {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            cause: a.cause,
            severity: a.severity,
            title: a.title,
            message: a.message,
            occurrences: a.occurrences,
            first_at: to_rfc3339(a.first_at),
            last_at: to_rfc3339(a.last_at),
            notified_at: a.notified_at.map(to_rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertQuery {
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Alerts, newest first: all for an admin, the tenant's own otherwise.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, body = super::List<AlertOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<super::List<AlertOut>>> {
    let window = super::window(q.limit, q.cursor.as_deref(), 100, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = alerts::list(&mut read, window.fetch(), window.offset).await?;
    let rows = rows.into_iter().map(AlertOut::from).collect();
    Ok(Json(super::List::from_window(rows, window)))
}
