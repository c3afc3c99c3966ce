//! `/api/v1/powermta`: the configuration PowerMTA should run with, from the database; its
//! deploy over SSH.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_app::delivery::powermta::{Outcome, PmtaError, Report, Status, StatusError};

use crate::audit;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::RequestMeta;
use crate::state::AppState;

/// The generated PowerMTA configuration (admin): one virtual MTA per IP that may send,
/// a pool per tenant, DKIM key paths, warm-up limits, ISP blocks. The relay password is
/// redacted here; `email-engine pmta config --out DIR` writes the real file and the keys.
#[utoipa::path(get, path = "/api/v1/powermta/config", tag = "powermta",
    responses((status = 200, description = "the configuration file", content_type = "text/plain"),
        (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn config(State(state): State<AppState>, principal: Principal) -> ApiResult<Response> {
    principal.require_admin()?;
    let generated =
        ee_app::delivery::powermta::generate(&state.services, &state.services.pmta, false)
            .await
            .map_err(|e| match e {
                PmtaError::Store(e) => ee_app::StoreFailure::from(e).into(),
                PmtaError::NotConfigured => ApiError::conflict("no PowerMTA host configured"),
                other => {
                    tracing::error!(error = %other, "PowerMTA configuration");
                    ApiError::internal()
                }
            })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        generated.config,
    )
        .into_response())
}

/// Deploys the generated configuration and DKIM keys to the PowerMTA host over SSH
/// (admin): the running file backed up, the new one validated before it replaces anything,
/// reloaded and checked, the backup restored on any failure after the swap. Audited with
/// the diff (passwords redacted). 200 when deployed; 502 with the report otherwise.
#[utoipa::path(post, path = "/api/v1/powermta/deploy", tag = "powermta",
    responses((status = 200, body = Report),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "rejected, rolled back or failed; `details` holds the report")),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn deploy(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
) -> ApiResult<Json<Report>> {
    principal.require_admin()?;
    let caller = audit::caller(&principal, &meta);
    let report = ee_app::delivery::powermta::deploy_audited(&state.services, &caller)
        .await
        .map_err(|e| match e {
            PmtaError::Store(e) => ee_app::StoreFailure::from(e).into(),
            PmtaError::Write(e) => ApiError::from(e),
            PmtaError::NotConfigured => ApiError::conflict(e.to_string()),
            PmtaError::Key(_) => {
                tracing::error!(error = %e, "PowerMTA deploy");
                ApiError::internal()
            }
        })?;
    if report.outcome == Outcome::Deployed {
        return Ok(Json(report));
    }
    let mut error = ApiError::new(
        StatusCode::BAD_GATEWAY,
        "deploy_failed",
        format!(
            "PowerMTA deploy {}: {}",
            report.outcome.as_str(),
            report.reason.clone().unwrap_or_default()
        ),
    );
    error.details = serde_json::to_value(&report).ok();
    Err(error)
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatusOut {
    pub polled_at: String,
    pub status: Status,
}

/// PowerMTA's status now, read from its HTTP management interface (admin): traffic,
/// connections and queue totals, each queue (domain through virtual MTA, with backoff),
/// each virtual MTA and domain. 409 when no address is configured (EE_PMTA_STATUS_URL),
/// 502 when PowerMTA does not answer as expected.
#[utoipa::path(get, path = "/api/v1/powermta/status", tag = "powermta",
    responses((status = 200, body = StatusOut), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<StatusOut>> {
    principal.require_admin()?;
    let status = ee_app::delivery::powermta::status(&state.services)
        .await
        .map_err(|e| match e {
            StatusError::NotConfigured => ApiError::conflict(e.to_string()),
            StatusError::Unavailable(message) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "pmta_unavailable", message)
            }
        })?;
    Ok(Json(StatusOut {
        polled_at: ee_core::timefmt::to_rfc3339(state.now()),
        status,
    }))
}
