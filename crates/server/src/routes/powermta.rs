//! `/api/v1/powermta`: the configuration PowerMTA should run with, from the database.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
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
    let generated = ee_jobs::powermta::generate(&state.services, &state.services.pmta, false)
        .await
        .map_err(|e| match e {
            ee_jobs::powermta::PmtaError::Store(e) => ApiError::from(e),
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
