//! What the metrics endpoint reads from the database at each scrape, so every node reports
//! the same figures: the job queue's depth, the scheduled jobs' last outcomes, the latest
//! snapshots the scheduled jobs made (infrastructure, PowerMTA's status, health), the
//! delivery counters, shaping, and the feedback kept from strangers.

use ee_core::jobs::JobState;
use ee_core::shaping::Active;
use ee_store::jobs;
use serde_json::Value;

use crate::error::AppError;
use crate::read::Read;
use crate::schedule::{self, SCHEDULE};

/// The database's side of the metrics.
pub struct Gauges {
    /// Jobs by state.
    pub job_depth: Vec<(JobState, i64)>,
    /// Each scheduled job whose last run ended: its name, whether it succeeded, when.
    pub job_runs: Vec<(&'static str, bool, Option<i64>)>,
    /// The result of the last metrics job (the infrastructure snapshot).
    pub infrastructure: Option<Value>,
    /// The result of the last PowerMTA status poll.
    pub pmta: Option<Value>,
    /// The result of the last health check.
    pub health: Option<Value>,
    /// The delivery counters: (tenant, name, total).
    pub delivery: Vec<(String, String, i64)>,
    /// The shaping states in force.
    pub shaping_active: Vec<Active>,
    /// Deferrals by recipient provider and IP: (provider, ip_id, count).
    pub deferred: Vec<(String, String, i64)>,
    /// Feedback no tenant could be found for: events, unreadable mail and its bytes.
    pub feedback_kept: (i64, i64, i64),
}

/// The result of the last successful run of a job kind, as JSON.
async fn last_result(read: &mut Read, kind: &str) -> Result<Option<Value>, AppError> {
    Ok(jobs::latest_done_of_kind(read.conn(), kind)
        .await?
        .and_then(|job| job.result)
        .and_then(|r| serde_json::from_str(&r).ok()))
}

/// Reads every gauge the database holds.
pub async fn read(read: &mut Read, now: i64) -> Result<Gauges, AppError> {
    let job_depth = jobs::count_by_state(read.conn()).await?;
    let mut job_runs = Vec::new();
    for scheduled in SCHEDULE {
        if let Some(last) = jobs::latest_of_kind(read.conn(), scheduled.name).await?
            && matches!(last.state, JobState::Done | JobState::Dead)
        {
            job_runs.push((
                scheduled.name,
                last.state == JobState::Done,
                last.finished_at,
            ));
        }
    }
    let infrastructure = last_result(read, schedule::METRICS).await?;
    let pmta = last_result(read, schedule::PMTA_STATUS).await?;
    let health = last_result(read, schedule::HEALTH).await?;
    let conn = read.conn();
    let delivery = ee_store::report_counters::totals(&mut *conn).await?;
    let (shaping_active, deferred) = crate::delivery::shaping::metrics(&mut *conn, now).await?;
    let events = ee_store::delivery_events::unmatched_count(&mut *conn).await?;
    let (mail, mail_bytes) = ee_store::feedback_messages::totals(conn).await?;
    Ok(Gauges {
        job_depth,
        job_runs,
        infrastructure,
        pmta,
        health,
        delivery,
        shaping_active,
        deferred,
        feedback_kept: (events, mail, mail_bytes),
    })
}
