//! `serve`: the API, the workers and the scheduler of one node, and its logging.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use ee_app::access::bootstrap::{AdminBootstrap, ensure_admin};
use ee_core::clock::Clock;
use tracing_subscriber::EnvFilter;

use super::files::open_db;
use super::services::{self, hostname};
use crate::config::Config;

/// What a node runs: everything, only the API, or only workers.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum NodeRole {
    All,
    Api,
    Worker,
}

pub(super) fn init_logging(config: &Config, serving: bool) -> anyhow::Result<()> {
    let default_level = if serving {
        config.log_level.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_level))
        .context("invalid log_level")?;
    let json = match config.log_format.as_str() {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

pub(super) async fn serve(config: Config, role: NodeRole) -> anyhow::Result<()> {
    let keys = crate::secrets::load_or_create(&config)?;
    let sealer = services::sealer(&keys)?;
    let db = open_db(&config).await?;
    let clock = Clock::System;
    match ensure_admin(
        &db,
        &config.admin_email,
        config.admin_password.as_deref(),
        clock.now_ms(),
    )
    .await?
    {
        AdminBootstrap::Generated { email, password } => {
            // Printed once, to the terminal, never to the logs.
            println!(
                "First run: created the admin account\n  email:    {email}\n  password: {password}\nKeep this password: it is not shown again."
            );
        }
        AdminBootstrap::Created { email } => {
            tracing::info!(%email, "created the first admin account")
        }
        AdminBootstrap::Existing => {}
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let services = services::build(&config, &keys, sealer.clone(), db.clone(), clock.clone())?;
    if matches!(role, NodeRole::All | NodeRole::Worker) {
        let engine = ee_jobs::delivery::Engine::new(services.clone());
        let delivery_stop = stop_rx.clone();
        tasks.spawn(async move {
            engine.run(delivery_stop).await;
            Ok(())
        });
        let (dispatch_services, dispatch_stop) = (services.clone(), stop_rx.clone());
        tasks.spawn(async move {
            ee_jobs::campaigns::run(dispatch_services, dispatch_stop).await;
            Ok(())
        });
        let registry = ee_jobs::standard_registry(services.clone());
        let mut worker_config = ee_jobs::WorkerConfig::new(config.node_name());
        worker_config.concurrency = config.worker_concurrency;
        let worker = ee_jobs::Worker::new(db.clone(), clock.clone(), worker_config, registry);
        let worker_stop = stop_rx.clone();
        tasks.spawn(async move {
            worker.run(worker_stop).await;
            Ok(())
        });
        // The node PowerMTA runs on follows its accounting file (when configured).
        if let Some(path) = config.pmta_accounting_file.clone() {
            let (follow_services, follow_stop) = (services.clone(), stop_rx.clone());
            tasks.spawn(async move {
                ee_jobs::accounting::run(
                    follow_services,
                    path,
                    std::time::Duration::from_secs(5),
                    follow_stop,
                )
                .await;
                Ok(())
            });
        }
        if let Some(address) = &config.feedback_smtp_listen {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("feedback_smtp_listen {address}"))?;
            let accept = config
                .feedback_smtp_accept
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            let (listen_services, listen_stop) = (services.clone(), stop_rx.clone());
            tracing::info!(%address, "bounce listener started");
            tasks.spawn(async move {
                ee_jobs::bounce_listener::serve(
                    listen_services,
                    listener,
                    hostname(),
                    accept,
                    listen_stop,
                )
                .await;
                Ok(())
            });
        }
        // Every worker node runs the scheduler: unique slot keys make one run per slot.
        let (scheduler_db, scheduler_clock) = (db.clone(), clock.clone());
        tasks.spawn(async move {
            ee_jobs::scheduler::run(scheduler_db, scheduler_clock, stop_rx).await;
            Ok(())
        });
    }
    if matches!(role, NodeRole::All | NodeRole::Api) {
        let mut settings = ee_server::Settings::new(keys.jwt_secret, sealer);
        settings.public_url = config.public_url();
        settings.cors_origins = config.cors_origins();
        settings.trusted_proxies = config.trusted_proxies()?;
        settings.rate_limit_per_minute = config.rate_limit_per_minute;
        settings.ip_rate_limit_per_minute = config.ip_rate_limit_per_minute;
        settings.access_token_ttl_secs = config.access_token_ttl_secs;
        settings.refresh_token_ttl_secs = config.refresh_token_ttl_secs;
        settings.api_key_grace_secs = config.api_key_grace_secs;
        settings.max_body_bytes = config.max_body_bytes;
        settings.metrics_token = Some(keys.metrics_token);
        settings.uploads_dir = config
            .uploads_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("uploads"));
        let state = ee_server::AppState::new(settings, services.clone());
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(address = %listener.local_addr()?, backend = db.backend().as_str(), "listening");
        let mut stopped = stop_tx.subscribe();
        tasks.spawn(async move {
            ee_server::serve(listener, state, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
            .context("the HTTP server failed")
        });
    }
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            result.context("a server task panicked")??;
        }
    }
    let _ = stop_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tracing::warn!("tasks still running after 30 s; exiting anyway");
    }
    db.close().await;
    Ok(())
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
