//! The campaign dispatcher's loop: one per worker node. Each pass starts the scheduled
//! campaigns whose time has come and hands a batch of every sending campaign's recipients
//! to the queue (`ee_app::campaigns::dispatch`); it runs again at once while there is work,
//! within 50 ms while a campaign's share of the queue is being sent, every second
//! otherwise, so a pause or a cancel holds within a batch on every node.

use std::time::Duration;

use ee_app::Services;
use ee_app::campaigns::dispatch::run_once;

/// The pause between passes that found nothing to do.
const IDLE: Duration = Duration::from_secs(1);
/// The pause when a campaign waits for its share of the queue to be sent: short, so the
/// delivery engine is never left without work.
const DRAINING: Duration = Duration::from_millis(50);

pub async fn run(services: Services, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let pause = match run_once(&services).await {
            Ok(pass) if pass.did_work() => None,
            Ok(pass) if pass.draining > 0 => Some(DRAINING),
            Ok(_) => Some(IDLE),
            Err(e) => {
                tracing::error!(error = %e, "campaign dispatch failed");
                Some(IDLE)
            }
        };
        if *stop.borrow() {
            break;
        }
        if let Some(pause) = pause {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
