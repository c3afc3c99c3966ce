//! The send half of `email-engine bench campaign`: a personalised, tracked campaign to N
//! contacts delivered to Postfix's `smtp-sink` on loopback by the production loops (the
//! campaign dispatcher and the delivery engine running side by side), from the start
//! (the fan-out included) until the campaign is sent; without DKIM and with RSA-2048,
//! each in a child process (its peak RSS is its own). Beside it: the floor, `smtp-source`
//! sending as many messages of the same size over as many connections, and for RSA the
//! signing ceiling, the cores times `openssl speed rsa2048` signatures per second. And
//! the share of the run during which SQLite's one write lock was held by the send's
//! transactions (`Db::writer_held_ms`): what bounds it when that share nears 100 %.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ee_app::audit::Caller;
use ee_app::write::Write;
use ee_core::campaign::{CampaignAction, CampaignStatus};
use ee_store::{Db, Scope};
use serde::{Deserialize, Serialize};

use crate::bench_send::{Setup, Sink, floor, run_child, setup};

#[derive(Debug, Serialize, Deserialize)]
pub struct CampaignSendReport {
    pub dkim: String,
    pub recipients: u64,
    pub sent: u64,
    /// From the start (the audience fixed) until the campaign is marked sent.
    pub seconds: f64,
    pub fan_out_seconds: f64,
    pub messages_per_second: f64,
    pub average_bytes: u64,
    pub peak_rss_mb: f64,
    /// The share of the run during which a write transaction of ours held SQLite's one
    /// write lock: near 1, the send is bounded by the database's writes.
    pub write_lock_share: f64,
}

/// N active French contacts with a first name and a company, written by the database.
async fn fill(db: &Db, tenant_id: &str, n: u64, now: i64) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    sqlx::query(
        "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $1 - 1) \
         INSERT INTO contacts (id, tenant_id, email, email_hash, first_name, company, language, \
         status, created_at, updated_at) \
         SELECT 'c' || CAST(10000000 + i AS TEXT), $2, 'user' || CAST(i AS TEXT) || '@example.test', \
         'h' || CAST(i AS TEXT), 'Prénom' || CAST(i AS TEXT), 'Société ' || CAST(i % 977 AS TEXT), \
         'fr', 'active', $3, $3 FROM seq",
    )
    .bind(n as i64)
    .bind(tenant_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("filling the contacts")?;
    ee_store::refresh_statistics(&mut conn, db.backend()).await?;
    Ok(())
}

/// The child: a campaign to N contacts, sent by the dispatcher and the engine; the report
/// on stdout.
pub async fn run_one(
    database_url: &str,
    recipients: u64,
    port: u16,
    dkim: &str,
    concurrency: usize,
) -> anyhow::Result<()> {
    let Setup {
        db,
        services,
        tenant,
        template,
    } = setup(database_url, port, dkim, concurrency).await?;
    let now = services.clock.now_ms();
    fill(&db, &tenant.id, recipients, now).await?;
    let mut w = Write::open(&db, Caller::cli(), None, now).await?;
    let input = ee_app::campaigns::CampaignIn {
        name: Some("bench".into()),
        template_id: Some(template.id.clone()),
        audience: Some(ee_app::campaigns::Audience {
            all: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let campaign = ee_app::campaigns::create(&mut w, &tenant.id, input).await?;
    w.finish().await?;

    let held_before = db.writer_held_ms().unwrap_or(0);
    let started = Instant::now();
    let mut w = Write::open_bulk(&db, Caller::cli(), None, now).await?;
    ee_app::campaigns::act(&mut w, &campaign.id, CampaignAction::Start, None).await?;
    w.finish().await?;
    let fan_out_seconds = started.elapsed().as_secs_f64();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(ee_jobs::campaigns::run(services.clone(), stopped.clone()));
    let engine = ee_jobs::delivery::Engine::new(services.clone());
    let delivery = tokio::spawn(engine.clone().run(stopped));
    let limit = Instant::now() + Duration::from_secs(3600);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut conn = db.pool().acquire().await?;
        let status = ee_store::campaigns::get(&mut conn, &campaign.id, Scope::All)
            .await?
            .status;
        if status == CampaignStatus::Sent {
            break;
        }
        if status != CampaignStatus::Sending || Instant::now() > limit {
            bail!(
                "the campaign is {} after {:?}",
                status.as_str(),
                started.elapsed()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let held_ms = db.writer_held_ms().unwrap_or(0) - held_before;
    let _ = stop.send(true);
    let _ = dispatcher.await;
    let _ = delivery.await;
    let mut conn = db.pool().acquire().await?;
    let sent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE campaign_id = $1 AND state = 'sent'",
    )
    .bind(&campaign.id)
    .fetch_one(&mut *conn)
    .await?;
    drop(conn);
    let report = CampaignSendReport {
        dkim: dkim.into(),
        recipients,
        sent: sent as u64,
        seconds,
        fan_out_seconds,
        messages_per_second: sent as f64 / seconds,
        average_bytes: crate::bench_send::average_size(&services, &tenant.id).await?,
        peak_rss_mb: crate::bench::peak_rss_mb(),
        write_lock_share: held_ms as f64 / 1000.0 / seconds,
    };
    db.close().await;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn child(
    dir: &Path,
    recipients: u64,
    port: u16,
    dkim: &str,
    concurrency: usize,
) -> anyhow::Result<CampaignSendReport> {
    let db = dir.join(format!("campaign-send-{dkim}.db"));
    let _ = std::fs::remove_file(&db);
    run_child(
        "campaign-send-run",
        &db,
        &[
            ("--recipients", recipients.to_string()),
            ("--port", port.to_string()),
            ("--dkim", dkim.to_owned()),
            ("--concurrency", concurrency.to_string()),
        ],
    )
}

/// RSA-2048 signatures per second on all cores: `openssl speed rsa2048` (one core) times
/// the cores.
fn signing_ceiling() -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "3", "rsa2048"])
        .output()
        .context("cannot run openssl")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `rsa 2048 bits 0.000913s 0.000025s   1094.7  40810.8`: sign/s is the third number.
    let per_core = text
        .lines()
        .find(|l| l.starts_with("rsa 2048 bits"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|n| n.parse::<f64>().ok())
        .context("openssl speed printed no rsa 2048 line")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(per_core * cores as f64)
}

/// The send half: prints one line per run.
pub fn run(recipients: u64, concurrency: usize) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    println!(
        "campaign to {recipients} contacts (personalised, open and click tracking), {concurrency} connections, SQLite"
    );
    println!(
        "{:<6} {:>10} {:>12} {:>14} {:>8} {:>12} {:>10} {:>12}",
        "DKIM",
        "ours msg/s",
        "floor msg/s",
        "ours / floor",
        "bytes",
        "peak RSS MB",
        "fan-out s",
        "write lock"
    );
    let mut floor_rate = None;
    for dkim in ["none", "rsa"] {
        eprintln!("{dkim}: the campaign…");
        let sink = Sink::start()?;
        let ours = child(temp.path(), recipients, sink.port, dkim, concurrency)?;
        drop(sink);
        if ours.sent != recipients {
            bail!("{dkim}: {} of {recipients} sent", ours.sent);
        }
        let floor = match floor_rate {
            Some(f) => f,
            None => {
                eprintln!("floor: smtp-source…");
                let sink = Sink::start()?;
                let f = floor(recipients, ours.average_bytes, concurrency, sink.port)?;
                floor_rate = Some(f);
                f
            }
        };
        println!(
            "{:<6} {:>10.0} {:>12.0} {:>14.2} {:>8} {:>12.1} {:>10.1} {:>11.0}%",
            dkim,
            ours.messages_per_second,
            floor,
            ours.messages_per_second / floor,
            ours.average_bytes,
            ours.peak_rss_mb,
            ours.fan_out_seconds,
            ours.write_lock_share * 100.0
        );
        if dkim == "rsa" {
            let ceiling = signing_ceiling()?;
            println!(
                "RSA-2048 signing ceiling {ceiling:.0} signatures/s (openssl speed × cores): ours / ceiling {:.2}",
                ours.messages_per_second / ceiling
            );
        }
    }
    Ok(())
}
