use super::{List, ListParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::schedule::{self, Job, SCHEDULE};
use ee_core::jobs::JobState;
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRun {
    pub id: String,
    pub kind: String,
    /// queued, running, done or dead.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: String,
    pub finished_at: Option<String>,
    /// What the run reported.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub last_error: Option<String>,
}

impl From<Job> for JobRun {
    fn from(j: Job) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            state: j.state.as_str().to_owned(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: to_rfc3339(j.run_at),
            finished_at: j.finished_at.map(to_rfc3339),
            result: j.result.and_then(|r| serde_json::from_str(&r).ok()),
            last_error: j.last_error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledJobOut {
    pub name: String,
    pub description: String,
    pub schedule: String,
    pub next_run: String,
    pub last_run: Option<JobRun>,
}

/// The scheduled jobs with their last run, its result, and their next run (admin).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(ListParams),
    responses((status = 200, body = List<ScheduledJobOut>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<ScheduledJobOut>>> {
    principal.require_admin()?;
    let now = state.now();
    let mut read = Read::begin(&state, &principal).await?;
    let mut out = Vec::with_capacity(SCHEDULE.len());
    for job in SCHEDULE {
        out.push(ScheduledJobOut {
            name: job.name.to_owned(),
            description: job.description.to_owned(),
            schedule: job.every.describe(),
            next_run: to_rfc3339(job.every.next_slot(now)),
            last_run: schedule::last_run(&mut read, job.name)
                .await?
                .map(JobRun::from),
        });
    }
    Ok(Json(List::of(out, &page)?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Triggered {
    pub job_id: String,
}

/// Runs a scheduled job now (admin).
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "jobs", params(("name" = String, Path)),
    responses((status = 202, body = Triggered), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn run(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Triggered>)> {
    principal.require_admin()?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let job_id = schedule::run_now(&mut w, &name).await?;
    w.finish().await?;
    Ok((StatusCode::ACCEPTED, Json(Triggered { job_id })))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueQuery {
    /// queued, running, done or dead.
    pub state: Option<String>,
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Jobs in the queue, newest first, e.g. `?state=dead` for the dead letters (admin).
#[utoipa::path(get, path = "/api/v1/jobs/queue", tag = "jobs", params(QueueQuery),
    responses((status = 200, body = super::List<JobRun>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn queue(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> ApiResult<Json<super::List<JobRun>>> {
    principal.require_admin()?;
    let job_state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::invalid_field("state", "must be queued, running, done or dead")
        })?),
    };
    let window = super::window(q.limit, q.cursor.as_deref(), 100, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = schedule::queue(&mut read, job_state, window.fetch(), window.offset).await?;
    let rows = rows.into_iter().map(JobRun::from).collect();
    Ok(Json(super::List::from_window(rows, window)))
}

/// Puts a dead job back in the queue with fresh attempts (admin).
#[utoipa::path(post, path = "/api/v1/jobs/queue/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses((status = 202, body = Triggered), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Triggered>)> {
    principal.require_admin()?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    schedule::retry_dead(&mut w, &id).await?;
    w.finish().await?;
    Ok((StatusCode::ACCEPTED, Json(Triggered { job_id: id })))
}
