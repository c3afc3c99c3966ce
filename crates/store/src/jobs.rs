//! The durable job queue.
//!
//! A job is claimed under a lease (a random token and an expiry). Only the holder of the
//! current token can complete, fail or extend it, so a worker that stalled past its lease
//! and comes back cannot overwrite the work of the worker that re-claimed the job.
//! PostgreSQL claims with `FOR UPDATE SKIP LOCKED` so concurrent workers never wait on
//! each other; SQLite runs the same single `UPDATE … RETURNING`, which it serialises.

use ee_core::ids::new_id;
use ee_core::jobs::{AfterFailure, Backoff, JobState, after_failure};
use sqlx::AnyConnection;

use crate::{Backend, Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// A JSON value.
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub state: ee_core::jobs::JobState,
    pub unique_key: Option<String>,
    pub priority: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub lease_token: Option<String>,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// What the last successful run reported (JSON).
    pub result: Option<String>,
}

const COLUMNS: &str = "id, kind, payload, state, unique_key, priority, attempts, max_attempts, \
    run_at, lease_token, locked_by, locked_until, last_error, created_at, updated_at, finished_at, result";

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: String,
    pub run_at: i64,
    /// At most one job ever exists with a given key (e.g. a scheduler slot).
    pub unique_key: Option<String>,
    pub max_attempts: i64,
    pub priority: i64,
}

impl NewJob {
    /// A job to run now, with 5 attempts.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value, now: i64) -> Self {
        Self {
            kind: kind.into(),
            payload: payload.to_string(),
            run_at: now,
            unique_key: None,
            max_attempts: 5,
            priority: 0,
        }
    }

    pub fn run_at(mut self, at: i64) -> Self {
        self.run_at = at;
        self
    }

    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, n: i64) -> Self {
        self.max_attempts = n.max(1);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Created(String),
    /// A job with the same unique key exists already: its id.
    Duplicate(String),
}

impl Enqueued {
    pub fn id(&self) -> &str {
        match self {
            Enqueued::Created(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

pub async fn enqueue(conn: &mut AnyConnection, job: &NewJob, now: i64) -> Result<Enqueued> {
    let id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, kind, payload, state, unique_key, priority, attempts, max_attempts, \
         run_at, created_at, updated_at) VALUES ($1, $2, $3, 'queued', $4, $5, 0, $6, $7, $8, $8) \
         ON CONFLICT (unique_key) DO NOTHING",
    )
    .bind(&id)
    .bind(&job.kind)
    .bind(&job.payload)
    .bind(&job.unique_key)
    .bind(job.priority)
    .bind(job.max_attempts)
    .bind(job.run_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Enqueued::Created(id));
    }
    let existing: String = sqlx::query_scalar("SELECT id FROM jobs WHERE unique_key = $1")
        .bind(&job.unique_key)
        .fetch_one(conn)
        .await?;
    Ok(Enqueued::Duplicate(existing))
}

/// Takes the most urgent runnable job — queued and due, or running with an expired lease —
/// and leases it to `worker` until `now + lease_ms`.
pub async fn claim(
    conn: &mut AnyConnection,
    backend: Backend,
    worker: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Option<Job>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = $1, \
         locked_by = $2, locked_until = $3, updated_at = $4 \
         WHERE id = (SELECT id FROM jobs \
             WHERE ((state = 'queued' AND run_at <= $4) OR (state = 'running' AND locked_until < $4)) \
             AND attempts < max_attempts \
             ORDER BY priority DESC, run_at, id LIMIT 1 {lock}) \
         RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(new_id())
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(conn)
        .await?)
}

/// Marks the job done. False when the lease was lost (the job is someone else's now).
pub async fn complete(
    conn: &mut AnyConnection,
    id: &str,
    lease_token: &str,
    result: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', finished_at = $1, updated_at = $1, lease_token = NULL, \
         locked_until = NULL, last_error = NULL, result = $4 \
         WHERE id = $2 AND lease_token = $3 AND state = 'running'",
    )
    .bind(now)
    .bind(id)
    .bind(lease_token)
    .bind(result)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt: back to the queue after a back-off, or dead-lettered once
/// out of attempts. Returns what happened, or `None` when the lease was lost.
pub async fn fail(
    conn: &mut AnyConnection,
    id: &str,
    lease_token: &str,
    error: &str,
    backoff: Backoff,
    now: i64,
) -> Result<Option<AfterFailure>> {
    let job = match get(&mut *conn, id).await {
        Ok(job) if job.lease_token.as_deref() == Some(lease_token) => job,
        Ok(_) | Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let outcome = after_failure(job.attempts, job.max_attempts, now, backoff);
    let (state, run_at, finished_at) = match outcome {
        AfterFailure::RetryAt(at) => (JobState::Queued, at, None),
        AfterFailure::DeadLetter => (JobState::Dead, job.run_at, Some(now)),
    };
    let error: String = error.chars().take(4000).collect();
    let done = sqlx::query(
        "UPDATE jobs SET state = $1, run_at = $2, finished_at = $3, last_error = $4, \
         updated_at = $5, lease_token = NULL, locked_by = NULL, locked_until = NULL \
         WHERE id = $6 AND lease_token = $7 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(run_at)
    .bind(finished_at)
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(lease_token)
    .execute(conn)
    .await?;
    Ok((done.rows_affected() == 1).then_some(outcome))
}

/// Extends a lease the caller still holds. False when it was lost.
pub async fn extend_lease(
    conn: &mut AnyConnection,
    id: &str,
    lease_token: &str,
    until: i64,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET locked_until = $1, updated_at = $2 \
         WHERE id = $3 AND lease_token = $4 AND state = 'running'",
    )
    .bind(until)
    .bind(now)
    .bind(id)
    .bind(lease_token)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Dead-letters jobs whose worker vanished during their last allowed attempt.
pub async fn reap_exhausted(conn: &mut AnyConnection, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'dead', finished_at = $1, updated_at = $1, lease_token = NULL, \
         last_error = 'the worker was lost during the last allowed attempt' \
         WHERE state = 'running' AND locked_until < $1 AND attempts >= max_attempts",
    )
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Puts a dead job back in the queue with a fresh set of attempts.
pub async fn retry_dead(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, finished_at = NULL, \
         updated_at = $1 WHERE id = $2 AND state = 'dead'",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Job> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn list(
    conn: &mut AnyConnection,
    state: Option<JobState>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Job>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR state = $1) \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(state.map(JobState::as_str))
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?)
}

/// The most recent job of a kind (the last run of a scheduled job).
pub async fn latest_of_kind(conn: &mut AnyConnection, kind: &str) -> Result<Option<Job>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
    )))
    .bind(kind)
    .fetch_optional(conn)
    .await?)
}

/// The most recent successful run of a kind.
pub async fn latest_done_of_kind(conn: &mut AnyConnection, kind: &str) -> Result<Option<Job>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND state = 'done' ORDER BY finished_at DESC, id DESC LIMIT 1"
    )))
    .bind(kind)
    .fetch_optional(conn)
    .await?)
}

/// Removes finished (done) jobs older than `before`; dead ones stay for inspection.
pub async fn purge_done(conn: &mut AnyConnection, before: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND finished_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// The number of jobs in each state, zero included.
pub async fn count_by_state(conn: &mut AnyConnection) -> Result<Vec<(JobState, i64)>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(conn)
            .await?;
    Ok(JobState::ALL
        .into_iter()
        .map(|state| {
            let n = rows
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            (state, n)
        })
        .collect())
}
