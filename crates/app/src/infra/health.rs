//! The 5-minute health job (seed 002): the database, dead-lettered jobs, the message
//! queue's backlog, the data directory's free disk space, the machine's memory and
//! PowerMTA's management interface (when polled), each against its threshold, with an
//! alert when it is crossed; the result is what `/metrics` reads back.

use std::path::PathBuf;

use ee_store::Db;
use serde::Serialize;
use serde_json::{Value, json};

use crate::infra::alerts::{self, AlertSpec};
use crate::{JobError, Services};

/// The thresholds of the health job.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// The data directory whose file system's free space is watched.
    pub data_dir: Option<PathBuf>,
    /// Below this share of free space the disk check fails (0.10 = 10 %).
    pub min_free_disk: f64,
    /// Above this share of memory in use the memory check fails.
    pub max_memory: f64,
    /// More messages than this due and waiting fail the backlog check.
    pub max_backlog: i64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            data_dir: None,
            min_free_disk: 0.10,
            max_memory: 0.90,
            max_backlog: 100_000,
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    /// The measured value (a share, or a count), when there is one.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub detail: String,
}

/// Free space of the file system holding `path`, as a share of its size.
fn free_disk_share(path: &std::path::Path) -> Result<f64, String> {
    let stat = rustix::fs::statvfs(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if stat.f_blocks == 0 {
        return Err("the file system reports no size".into());
    }
    Ok(stat.f_bavail as f64 / stat.f_blocks as f64)
}

/// Memory in use as a share, from /proc/meminfo (MemTotal, MemAvailable). Read by hand:
/// two lines of a Linux file; a crate for it would bring a whole system inventory.
fn memory_used_share() -> Result<f64, String> {
    let text =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(total), Some(available)) if total > 0.0 => Ok(1.0 - available / total),
        _ => Err("/proc/meminfo has no MemTotal or MemAvailable".into()),
    }
}

/// Runs every check; raises an alert for each that fails. Fails (so that the job's own
/// failure alerts too) only when the database does not answer.
pub async fn health(services: &Services, now: i64) -> Result<Value, JobError> {
    let db: &Db = &services.db;
    if !db.ping().await {
        return Err(JobError("the database does not answer".into()));
    }
    let settings = &services.health;
    let mut conn = db.pool().acquire().await?;
    let dead = ee_store::jobs::count_by_state(&mut conn)
        .await?
        .into_iter()
        .find_map(|(state, n)| (state == ee_core::jobs::JobState::Dead).then_some(n))
        .unwrap_or(0);
    let mut checks = vec![Check {
        check: "dead_jobs",
        ok: dead == 0,
        value: Some(dead as f64),
        threshold: Some(0.0),
        detail: format!("{dead} job(s) failed for good; see GET /api/v1/jobs"),
    }];
    let backlog = ee_store::message_queries::due_count(&mut conn, now).await?;
    checks.push(Check {
        check: "queue_backlog",
        ok: backlog <= settings.max_backlog,
        value: Some(backlog as f64),
        threshold: Some(settings.max_backlog as f64),
        detail: format!(
            "{backlog} messages due and waiting (threshold {})",
            settings.max_backlog
        ),
    });
    if let Some(dir) = &settings.data_dir {
        checks.push(match free_disk_share(dir) {
            Ok(free) => Check {
                check: "disk",
                ok: free >= settings.min_free_disk,
                value: Some(free),
                threshold: Some(settings.min_free_disk),
                detail: format!(
                    "{:.1} % free where {} is (threshold {:.1} %)",
                    free * 100.0,
                    dir.display(),
                    settings.min_free_disk * 100.0
                ),
            },
            Err(e) => Check {
                check: "disk",
                ok: false,
                value: None,
                threshold: Some(settings.min_free_disk),
                detail: e,
            },
        });
    }
    checks.push(match memory_used_share() {
        Ok(used) => Check {
            check: "memory",
            ok: used <= settings.max_memory,
            value: Some(used),
            threshold: Some(settings.max_memory),
            detail: format!(
                "{:.1} % of memory in use (threshold {:.1} %)",
                used * 100.0,
                settings.max_memory * 100.0
            ),
        },
        Err(e) => Check {
            check: "memory",
            ok: false,
            value: None,
            threshold: Some(settings.max_memory),
            detail: e,
        },
    });
    if let Some(poll) =
        ee_store::jobs::latest_done_of_kind(&mut conn, crate::schedule::PMTA_STATUS).await?
        && let Some(result) = poll
            .result
            .and_then(|r| serde_json::from_str::<Value>(&r).ok())
        && result["configured"] == true
    {
        let reachable = result["reachable"] == true;
        checks.push(Check {
            check: "pmta",
            ok: reachable,
            value: None,
            threshold: None,
            detail: if reachable {
                "PowerMTA's management interface answers".into()
            } else {
                format!(
                    "PowerMTA's management interface does not answer: {}",
                    result["error"].as_str().unwrap_or("no answer")
                )
            },
        });
    }
    for check in checks.iter().filter(|c| !c.ok) {
        let title = match check.check {
            "dead_jobs" => "Dead-lettered jobs",
            "queue_backlog" => "Message queue backlog over its threshold",
            "disk" => "Disk space low in the data directory",
            "memory" => "Memory nearly exhausted",
            _ => "PowerMTA does not answer",
        };
        alerts::raise(
            &mut conn,
            AlertSpec {
                tenant_id: None,
                cause: &format!("health.{}", check.check),
                severity: if check.check == "dead_jobs" {
                    ee_core::alert::Severity::Warning
                } else {
                    ee_core::alert::Severity::Critical
                },
                title,
                message: &check.detail,
            },
            now,
        )
        .await?;
    }
    Ok(json!({ "database": "ok", "dead_jobs": dead, "checks": checks }))
}

/// The database as the liveness endpoint shows it.
pub struct Database {
    /// A trivial query answers.
    pub reachable: bool,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The database's schema version (its newest applied migration).
    pub schema_version: Option<i64>,
    /// The newest schema version this binary knows.
    pub schema_latest: i64,
}

/// Whether the database answers, and its schema against this binary's.
pub async fn database(db: &Db) -> Database {
    let reachable = db.ping().await;
    let schema_version = db.schema_version().await.ok().flatten();
    Database {
        reachable,
        backend: db.backend().as_str(),
        schema_version,
        schema_latest: db.known_schema(),
    }
}
