use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: &'static str,
    pub version: &'static str,
    pub database: DatabaseHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    pub reachable: bool,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The database's schema version (its newest applied migration).
    pub schema_version: Option<i64>,
    /// The newest schema version this binary knows.
    pub schema_latest: i64,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let database = ee_app::infra::health::database(&state.db).await;
    let reachable = database.reachable;
    let body = Health {
        status: if reachable { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth {
            reachable,
            backend: database.backend,
            schema_version: database.schema_version,
            schema_latest: database.schema_latest,
        },
    };
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus text exposition, for the bearer token of the configuration
/// (`EE_METRICS_TOKEN`, or the one generated into `<data dir>/metrics.token`).
#[utoipa::path(get, path = "/metrics", tag = "system", security(("metrics_token" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "no or a wrong metrics token", body = ErrorBody),
        (status = 404, description = "metrics are turned off", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(expected) = &state.settings.metrics_token else {
        return Err(ApiError::not_found("metrics endpoint"));
    };
    let presented = crate::auth::credentials::bearer(&headers);
    if !presented.is_some_and(|token| ee_core::auth::constant_time_eq(token, expected)) {
        return Err(ApiError::unauthorized(
            "metrics need Authorization: Bearer <metrics token>",
        ));
    }
    if let Err(e) = read_gauges(&state).await {
        tracing::warn!(error = %e, "reading gauges from the database failed");
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}

/// Job-queue depth, scheduled-job outcomes and the latest infrastructure snapshot.
async fn read_gauges(state: &AppState) -> Result<(), ee_app::AppError> {
    let mut read = ee_app::read::Read::open(&state.db, None).await?;
    let gauges = ee_app::infra::gauges::read(&mut read, state.now()).await?;
    drop(read);
    let metrics = &state.metrics;
    for (job_state, n) in gauges.job_depth {
        metrics.set_job_depth(job_state.as_str(), n);
    }
    for (name, succeeded, finished_at) in gauges.job_runs {
        metrics.set_job_run(name, succeeded, finished_at);
    }
    if let Some(snapshot) = &gauges.infrastructure {
        metrics.set_infrastructure(snapshot);
    }
    if let Some(poll) = &gauges.pmta {
        metrics.set_pmta(poll);
    }
    if let Some(health) = &gauges.health {
        metrics.set_health(health);
    }
    metrics.set_delivery(&gauges.delivery);
    metrics.set_shaping(&gauges.shaping_active, &gauges.deferred);
    let (events, mail, mail_bytes) = gauges.feedback_kept;
    metrics.set_feedback_kept(events, mail, mail_bytes);
    Ok(())
}
