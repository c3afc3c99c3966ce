//! The scheduler loop: every node runs it; each due slot of `ee_app::schedule` is enqueued
//! with the unique key `<job>@<slot>`, so however many nodes share the database, each
//! slot runs once.

use std::time::Duration;

use ee_app::schedule::tick;
use ee_core::clock::Clock;
use ee_store::Db;
use tokio::sync::watch;

/// Ticks every few seconds until `shutdown` turns true.
pub async fn run(db: Db, clock: Clock, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("scheduler started");
    while !*shutdown.borrow() {
        if let Err(e) = tick(&db, clock.now_ms()).await {
            tracing::warn!(error = %e, "scheduler tick failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
