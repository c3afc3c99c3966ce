use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_core::jobs::JobState;
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
    let reachable = state.db.ping().await;
    let schema_version = state.db.schema_version().await.ok().flatten();
    let body = Health {
        status: if reachable { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth {
            reachable,
            backend: state.db.backend().as_str(),
            schema_version,
            schema_latest: state.db.known_schema(),
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
async fn read_gauges(state: &AppState) -> Result<(), ee_store::StoreError> {
    use ee_store::jobs;
    let mut conn = state.db.pool().acquire().await?;
    for (job_state, n) in jobs::count_by_state(&mut conn).await? {
        state.metrics.set_job_depth(job_state.as_str(), n);
    }
    for scheduled in ee_app::schedule::SCHEDULE {
        if let Some(last) = jobs::latest_of_kind(&mut conn, scheduled.name).await?
            && matches!(last.state, JobState::Done | JobState::Dead)
        {
            state.metrics.set_job_run(
                scheduled.name,
                last.state == JobState::Done,
                last.finished_at,
            );
        }
    }
    if let Some(snapshot) = jobs::latest_done_of_kind(&mut conn, ee_app::schedule::METRICS).await?
        && let Some(result) = snapshot.result.and_then(|r| serde_json::from_str(&r).ok())
    {
        state.metrics.set_infrastructure(&result);
    }
    if let Some(poll) = jobs::latest_done_of_kind(&mut conn, ee_app::schedule::PMTA_STATUS).await?
        && let Some(result) = poll.result.and_then(|r| serde_json::from_str(&r).ok())
    {
        state.metrics.set_pmta(&result);
    }
    if let Some(health) = jobs::latest_done_of_kind(&mut conn, ee_app::schedule::HEALTH).await?
        && let Some(result) = health.result.and_then(|r| serde_json::from_str(&r).ok())
    {
        state.metrics.set_health(&result);
    }
    state
        .metrics
        .set_delivery(&ee_store::report_counters::totals(&mut conn).await?);
    let (active, deferred) = ee_app::delivery::shaping::metrics(&mut conn, state.now()).await?;
    state.metrics.set_shaping(&active, &deferred);
    let events = ee_store::delivery_events::unmatched_count(&mut conn).await?;
    let (mail, mail_bytes) = ee_store::feedback_messages::totals(&mut conn).await?;
    state.metrics.set_feedback_kept(events, mail, mail_bytes);
    Ok(())
}
