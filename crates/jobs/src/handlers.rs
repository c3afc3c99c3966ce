use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ee_core::clock::Clock;
use ee_store::Job;
use serde_json::{Value, json};

use ee_app::schedule as scheduler;
use ee_app::{JobError, Services, infra, infra::alerts, infra::snapshot};

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send>>;
type HandlerFn = Arc<dyn Fn(Job) -> BoxFuture + Send + Sync>;

/// The job kinds this node knows how to run.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, HandlerFn>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_owned(), Arc::new(move |job| Box::pin(handler(job))));
        self
    }

    pub(crate) fn get(&self, kind: &str) -> Option<HandlerFn> {
        self.handlers.get(kind).cloned()
    }
}

/// The instant a scheduled run stands for: its slot, or now for other jobs.
fn slot_of(job: &Job, clock: &Clock) -> i64 {
    serde_json::from_str::<Value>(&job.payload)
        .ok()
        .and_then(|p| p["slot"].as_i64())
        .unwrap_or_else(|| clock.now_ms())
}

/// Registers `kind` with a handler taking the services and the job.
fn add<F, Fut>(registry: &mut Registry, services: &Services, kind: &str, handler: F)
where
    F: Fn(Services, Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
{
    let services = services.clone();
    registry.register(kind, move |job| handler(services.clone(), job));
}

/// DMARC aggregate reports are kept 400 days (a year and its month of comparison).
const DMARC_KEPT_MS: i64 = 400 * 86_400_000;
/// An RSS campaign keeps the keys of its newest 1 000 items sent (five feeds' worth at
/// `ee_core::rss::MAX_ITEMS`) and its newest 500 runs (the page shows 100).
const FEED_ITEMS_KEPT: i64 = 1_000;
const FEED_RUNS_KEPT: i64 = 500;

/// The handlers every node runs.
pub fn standard_registry(services: Services) -> Registry {
    let mut r = Registry::new();
    let s = &services;
    add(&mut r, s, scheduler::HOUSEKEEPING, |s, _job| async move {
        const WEEK_MS: i64 = 7 * 86_400_000;
        let now = s.clock.now_ms();
        let mut conn = s.db.pool().acquire().await?;
        let sessions = ee_store::sessions::purge_ended(&mut conn, now, WEEK_MS).await?;
        let jobs = ee_store::jobs::purge_done(&mut conn, now - WEEK_MS).await?;
        let throttles = ee_store::login_throttles::purge(&mut conn, now - WEEK_MS).await?;
        let rate_limits = ee_store::rate_limits::purge(&mut conn, now).await?;
        let shaping = ee_store::shaping::purge(&mut conn, now / 3_600_000 - 2, now).await?;
        let dmarc = ee_store::dmarc_reports::purge(&mut conn, now - DMARC_KEPT_MS).await?;
        let (feed_items, feed_runs) =
            ee_store::campaign_feeds::prune(&mut conn, FEED_ITEMS_KEPT, FEED_RUNS_KEPT).await?;
        Ok(json!({
            "dmarc_reports_removed": dmarc,
            "feed_items_removed": feed_items,
            "feed_runs_removed": feed_runs,
            "shaping_removed": shaping,
            "sessions_removed": sessions,
            "jobs_removed": jobs,
            "login_throttles_removed": throttles,
            "rate_limits_removed": rate_limits,
        }))
    });
    add(&mut r, s, ee_app::contacts::VALIDATE, |s, job| async move {
        ee_app::contacts::validation::validate_job(&s, &job, s.clock.now_ms()).await
    });
    add(
        &mut r,
        s,
        ee_app::sources::csv_import::IMPORT,
        |s, job| async move { ee_app::sources::csv_import::job(&s, &job).await },
    );
    add(&mut r, s, alerts::DELIVER, |s, job| async move {
        alerts::deliver(&s.db, &s.alerts, &job, s.clock.now_ms()).await
    });
    add(&mut r, s, alerts::SEND, |s, job| async move {
        alerts::send(&s.db, &s.alerts, &job, s.clock.now_ms()).await
    });
    add(&mut r, s, scheduler::WARMUP, |s, job| async move {
        let report = infra::advance_warmups(&s.db, slot_of(&job, &s.clock)).await?;
        let rested = infra::rest_drained(&s.db, s.clock.now_ms()).await?;
        Ok(json!({ "warmup": report, "rested_after_retirement": rested }))
    });
    add(&mut r, s, scheduler::ROTATION, |s, _job| async move {
        let report = infra::rotate_pools(&s.db, s.clock.now_ms()).await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    });
    add(&mut r, s, scheduler::QUARANTINE, |s, _job| async move {
        let released = infra::release_quarantined(&s.db, &s.infra, s.clock.now_ms()).await?;
        Ok(json!({ "released": released }))
    });
    add(&mut r, s, scheduler::HEALTH, |s, _job| async move {
        ee_app::infra::health::health(&s, s.clock.now_ms()).await
    });
    add(&mut r, s, scheduler::METRICS, |s, _job| async move {
        snapshot::infrastructure(&s.db, s.clock.now_ms()).await
    });
    add(&mut r, s, scheduler::RETRY, |s, _job| async move {
        let mut conn = s.db.pool().acquire().await?;
        let reaped = ee_store::jobs::reap_exhausted(&mut conn, s.clock.now_ms()).await?;
        let depth = ee_store::jobs::count_by_state(&mut conn).await?;
        let depth: serde_json::Map<String, Value> = depth
            .into_iter()
            .map(|(state, n)| (state.as_str().to_owned(), json!(n)))
            .collect();
        drop(conn);
        // Seed 002's retry queue: bounces and complaints forwarded to their sources.
        let forwards = ee_app::feedback::forwards::send_due(&s).await?;
        Ok(json!({ "reaped": reaped, "depth": depth, "forwards": forwards }))
    });
    add(&mut r, s, scheduler::BLACKLIST, |s, _job| async move {
        let report = ee_app::infra::blacklists::check_all_blacklists(&s, s.clock.now_ms()).await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    });
    add(&mut r, s, scheduler::RSS_FEEDS, |s, _job| async move {
        let checks = ee_app::campaigns::rss_runs::check_due(&s)
            .await
            .map_err(|e| JobError(e.to_string()))?;
        Ok(serde_json::to_value(checks).unwrap_or_default())
    });
    add(&mut r, s, scheduler::TLS_REPORTS, |s, _job| async move {
        ee_app::delivery::tls_reports::send_due(&s).await
    });
    add(&mut r, s, scheduler::DNS, |s, _job| async move {
        let report = infra::validate_all_domains(&s, s.clock.now_ms()).await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    });
    add(&mut r, s, scheduler::PMTA_STATUS, |s, _job| async move {
        ee_app::delivery::powermta::poll_status(&s, s.clock.now_ms()).await
    });
    add(
        &mut r,
        s,
        ee_app::delivery::mailwizz::ERASE_SUBSCRIBERS,
        |s, job| async move {
            let payload: Value = serde_json::from_str(&job.payload).unwrap_or_default();
            Ok(ee_app::delivery::mailwizz::erase_subscribers(&s, &payload).await?)
        },
    );
    add(&mut r, s, scheduler::QUOTA_SYNC, |s, _job| async move {
        Ok(ee_app::delivery::mailwizz::sync_quotas(&s).await?)
    });
    add(
        &mut r,
        s,
        ee_app::delivery::mailwizz::SYNC_SUBSCRIBERS,
        |s, job| async move {
            let payload: Value = serde_json::from_str(&job.payload).unwrap_or_default();
            let tenant = payload["tenant_id"].as_str().unwrap_or_default().to_owned();
            Ok(ee_app::delivery::mailwizz::sync_subscribers(&s, &tenant).await?)
        },
    );
    r
}
