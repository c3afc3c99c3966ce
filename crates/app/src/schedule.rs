//! The schedule: what runs when. Every node ticks it (the loop is in `ee-jobs`); each due slot is enqueued with the unique key
//! `<job>@<slot>`, so however many nodes share the database, each slot runs once.

use ee_core::jobs::JobState;
use ee_core::schedule::Every;
pub use ee_store::Job;
use ee_store::jobs::{self, Enqueued, NewJob};
use ee_store::{Db, StoreError};
use serde_json::json;

use crate::read::Read;

/// A job that runs on a schedule. Its name is also its job kind.
#[derive(Debug, Clone, Copy)]
pub struct ScheduledJob {
    pub name: &'static str,
    pub every: Every,
    pub description: &'static str,
}

pub const HEALTH: &str = "scheduled.health";
pub const BLACKLIST: &str = "scheduled.blacklist_check";
pub const WARMUP: &str = "scheduled.warmup_advance";
pub const QUOTA_SYNC: &str = "scheduled.quota_sync";
pub const ROTATION: &str = "scheduled.rotation";
pub const DNS: &str = "scheduled.dns_validation";
pub const QUARANTINE: &str = "scheduled.quarantine_release";
pub const METRICS: &str = "scheduled.metrics";
pub const RETRY: &str = "scheduled.retry_queue";
pub const HOUSEKEEPING: &str = "scheduled.housekeeping";
pub const PMTA_STATUS: &str = "scheduled.pmta_status";
pub const TLS_REPORTS: &str = "scheduled.tls_reports";
pub const RSS_FEEDS: &str = "scheduled.rss_feeds";

/// Seed 002's scheduled jobs, and our housekeeping.
pub const SCHEDULE: [ScheduledJob; 13] = [
    ScheduledJob {
        name: HEALTH,
        every: Every::minutes(5),
        description: "database and job-queue health",
    },
    ScheduledJob {
        name: BLACKLIST,
        every: Every::hours(4),
        description: "every IP against the DNS blacklists",
    },
    ScheduledJob {
        name: WARMUP,
        every: Every::DailyAt { hour: 0, minute: 0 },
        description: "warm-up plans move one day forward",
    },
    ScheduledJob {
        name: QUOTA_SYNC,
        every: Every::hours(1),
        description: "warm-up quotas pushed to MailWizz delivery servers",
    },
    ScheduledJob {
        name: ROTATION,
        every: Every::MonthlyAt {
            day: 1,
            hour: 3,
            minute: 0,
        },
        description: "monthly IP rotation per pool",
    },
    ScheduledJob {
        name: DNS,
        every: Every::DailyAt { hour: 6, minute: 0 },
        description: "SPF, DKIM, DMARC, MX and PTR of every domain",
    },
    ScheduledJob {
        name: QUARANTINE,
        every: Every::DailyAt { hour: 4, minute: 0 },
        description: "quarantined IPs released after their cool-down",
    },
    ScheduledJob {
        name: METRICS,
        every: Every::minutes(1),
        description: "infrastructure snapshot for /metrics",
    },
    ScheduledJob {
        name: PMTA_STATUS,
        every: Every::minutes(1),
        description: "PowerMTA's management interface polled for /metrics",
    },
    ScheduledJob {
        name: RETRY,
        every: Every::minutes(2),
        description: "lost jobs reaped, queue depth reported, bounces forwarded to their sources",
    },
    ScheduledJob {
        name: TLS_REPORTS,
        every: Every::hours(1),
        description: "SMTP TLS reports (RFC 8460) of past days sent to the domains that ask for them",
    },
    ScheduledJob {
        name: RSS_FEEDS,
        every: Every::minutes(5),
        description: "RSS campaigns' feeds checked when due; new items sent as a run",
    },
    ScheduledJob {
        name: HOUSEKEEPING,
        every: Every::DailyAt {
            hour: 3,
            minute: 30,
        },
        description: "ended sessions and finished jobs older than a week removed",
    },
];

pub fn find(name: &str) -> Option<&'static ScheduledJob> {
    SCHEDULE.iter().find(|job| job.name == name)
}

/// Enqueues the latest slot of every job that is due and still within its grace period.
/// Returns how many were new.
pub async fn tick(db: &Db, now: i64) -> Result<u32, StoreError> {
    let mut conn = db.pool().acquire().await?;
    let mut created = 0;
    for job in SCHEDULE {
        let slot = job.every.latest_slot(now);
        if now - slot > job.every.grace_ms() {
            continue;
        }
        let new = NewJob::new(job.name, json!({ "slot": slot }), now)
            .unique_key(format!("{}@{slot}", job.name))
            .max_attempts(3);
        if let Enqueued::Created(_) = jobs::enqueue(&mut conn, &new, now).await? {
            created += 1;
        }
    }
    Ok(created)
}

/// Enqueues a run now, outside the schedule (an admin's trigger).
pub async fn trigger(db: &Db, job: &ScheduledJob, now: i64) -> Result<String, StoreError> {
    let mut conn = db.pool().acquire().await?;
    trigger_in(&mut conn, job, now).await
}

/// `trigger` on a connection (or transaction) the caller holds.
pub async fn trigger_in(
    conn: &mut ee_store::AnyConnection,
    job: &ScheduledJob,
    now: i64,
) -> Result<String, StoreError> {
    let new = NewJob::new(job.name, json!({ "slot": now, "manual": true }), now)
        .unique_key(format!("{}@manual:{}", job.name, ee_core::ids::new_id()))
        .max_attempts(1);
    Ok(jobs::enqueue(conn, &new, now).await?.id().to_owned())
}

/// Runs the scheduled job `name` now, audited; returns the queued job's id.
pub async fn run_now(w: &mut crate::write::Write, name: &str) -> Result<String, crate::AppError> {
    let job = find(name).ok_or_else(|| crate::AppError::NotFound("scheduled job"))?;
    let job_id = trigger_in(&mut w.tx, job, w.now).await?;
    w.record(crate::audit::Change {
        action: "job.trigger",
        resource_type: "job",
        resource_id: Some(&job_id),
        tenant_id: None,
        before: None,
        after: Some(json!({"name": name})),
    })
    .await?;
    Ok(job_id)
}

/// Puts a dead job back in the queue with fresh attempts, audited.
pub async fn retry_dead(w: &mut crate::write::Write, id: &str) -> Result<(), crate::AppError> {
    jobs::retry_dead(&mut w.tx, id, w.now)
        .await
        .map_err(crate::AppError::from_store("dead job"))?;
    w.record(crate::audit::Change {
        action: "job.retry",
        resource_type: "job",
        resource_id: Some(id),
        tenant_id: None,
        before: None,
        after: None,
    })
    .await
}

/// The last run of a job kind (queued, running or ended), if any.
pub async fn last_run(read: &mut Read, kind: &str) -> Result<Option<Job>, crate::AppError> {
    Ok(jobs::latest_of_kind(read.conn(), kind).await?)
}

/// Jobs in the queue (of a state), newest first: a page of `limit` from `offset`.
pub async fn queue(
    read: &mut Read,
    state: Option<JobState>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Job>, crate::AppError> {
    Ok(jobs::list(read.conn(), state, limit, offset).await?)
}
