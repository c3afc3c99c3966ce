//! The campaign dispatcher's loop: one per worker node. Each pass starts the scheduled
//! campaigns whose time has come and hands a batch of every sending campaign's recipients
//! to the queue (`ee_app::campaign_dispatch`); it runs again at once while there is work,
//! every second otherwise, so a pause or a cancel holds within a batch on every node.

use std::time::Duration;

use ee_app::Services;
use ee_app::campaign_dispatch::{Pass, run_once};

/// The pause between passes that found nothing to do.
const IDLE: Duration = Duration::from_secs(1);

pub async fn run(services: Services, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let busy = match run_once(&services).await {
            Ok(pass) => pass != Pass::default(),
            Err(e) => {
                tracing::error!(error = %e, "campaign dispatch failed");
                false
            }
        };
        if *stop.borrow() {
            break;
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
