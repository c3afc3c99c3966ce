use std::sync::Arc;
use std::time::Duration;

use ee_core::clock::Clock;
use ee_core::jobs::{AfterFailure, Backoff};
use ee_store::{Db, Job, jobs};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::Registry;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in job leases and logs.
    pub id: String,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat; a crashed worker's jobs are
    /// taken again once it runs out.
    pub lease: Duration,
    /// Pause between polls when the queue is empty.
    pub poll_interval: Duration,
    pub backoff: Backoff,
}

impl WorkerConfig {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            concurrency: 4,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            backoff: Backoff::default(),
        }
    }
}

/// Claims jobs from the queue and runs them with the registered handlers.
#[derive(Clone)]
pub struct Worker {
    db: Db,
    clock: Clock,
    config: Arc<WorkerConfig>,
    registry: Arc<Registry>,
}

impl Worker {
    pub fn new(db: Db, clock: Clock, config: WorkerConfig, registry: Registry) -> Self {
        Self {
            db,
            clock,
            config: Arc::new(config),
            registry: Arc::new(registry),
        }
    }

    /// Runs until `shutdown` turns true, then waits for the jobs in hand to finish.
    /// Dropping the future instead (a crash, an abort) drops the jobs in hand: their
    /// leases run out and other workers take them.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut running = JoinSet::new();
        let mut idle_polls: u32 = 0;
        tracing::info!(worker = %self.config.id, "worker started");
        while !*shutdown.borrow() {
            while running.try_join_next().is_some() {}
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            match self.claim().await {
                Ok(Some(job)) => {
                    idle_polls = 0;
                    let worker = self.clone();
                    running.spawn(async move {
                        worker.execute(job).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    idle_polls += 1;
                    if idle_polls % 20 == 1 {
                        self.reap().await;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(worker = %self.config.id, error = %e, "claiming a job failed");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval * 4) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        while running.join_next().await.is_some() {}
        tracing::info!(worker = %self.config.id, "worker stopped");
    }

    /// Claims and runs one job if one is due; true when it did.
    pub async fn run_once(&self) -> Result<bool, ee_store::StoreError> {
        match self.claim().await? {
            Some(job) => {
                self.execute(job).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn claim(&self) -> Result<Option<Job>, ee_store::StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let lease_ms = self.config.lease.as_millis() as i64;
        jobs::claim(
            &mut conn,
            self.db.backend(),
            &self.config.id,
            lease_ms,
            self.clock.now_ms(),
        )
        .await
    }

    async fn reap(&self) {
        let result = async {
            let mut conn = self.db.pool().acquire().await?;
            jobs::reap_exhausted(&mut conn, self.clock.now_ms()).await
        }
        .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::warn!(dead = n, "dead-lettered jobs whose worker was lost"),
            Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
        }
    }

    /// Runs the handler while a heartbeat keeps the lease, then records the outcome.
    async fn execute(&self, job: Job) {
        let Some(token) = job.lease_token.clone() else {
            return;
        };
        let id = job.id.clone();
        let kind = job.kind.clone();
        let outcome = match self.registry.get(&kind) {
            Some(handler) => {
                let heartbeat = self.heartbeat(id.clone(), token.clone());
                tokio::select! {
                    result = handler(job) => result.map_err(|e| e.0),
                    () = heartbeat => Err("the lease was lost while the job ran".to_owned()),
                }
            }
            None => Err(format!("no handler for job kind {kind:?} on this node")),
        };
        let recorded = async {
            let mut conn = self.db.pool().acquire().await?;
            let now = self.clock.now_ms();
            match &outcome {
                Ok(result) => {
                    let result = result.to_string();
                    jobs::complete(&mut conn, &id, &token, Some(&result), now)
                        .await
                        .map(|ok| ok.then_some(None))
                }
                Err(error) => jobs::fail(&mut conn, &id, &token, error, self.config.backoff, now)
                    .await
                    .map(|after| after.map(Some)),
            }
        }
        .await;
        match (recorded, outcome) {
            (Ok(Some(None)), _) => tracing::debug!(job = %id, %kind, "job done"),
            (Ok(Some(Some(AfterFailure::RetryAt(at)))), Err(error)) => {
                tracing::warn!(job = %id, %kind, %error, retry_at = at, "job failed; will retry")
            }
            (Ok(Some(Some(AfterFailure::DeadLetter))), Err(error)) => {
                tracing::error!(job = %id, %kind, %error, "job failed for the last time; dead-lettered")
            }
            (Ok(_), _) => {
                tracing::warn!(job = %id, %kind, "lease lost before the outcome was recorded")
            }
            (Err(e), _) => {
                tracing::error!(job = %id, %kind, error = %e, "recording the job outcome failed")
            }
        }
    }

    /// Extends the lease every third of its length; returns only if the lease is lost.
    async fn heartbeat(&self, id: String, token: String) {
        let lease = self.config.lease;
        let mut ticker = tokio::time::interval(lease / 3);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let extended = async {
                let mut conn = self.db.pool().acquire().await?;
                let now = self.clock.now_ms();
                jobs::extend_lease(&mut conn, &id, &token, now + lease.as_millis() as i64, now)
                    .await
            }
            .await;
            match extended {
                Ok(true) => {}
                Ok(false) => return,
                // A database hiccup: keep running, the next beat may succeed.
                Err(e) => tracing::warn!(job = %id, error = %e, "lease extension failed"),
            }
        }
    }
}
