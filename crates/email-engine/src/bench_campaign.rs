//! `email-engine bench campaign`: the fan-out of a campaign to a segment of N contacts
//! (the audience fixed into the recipient ledger when it starts), beside the floor: the
//! same database copying the same rows into a table of the same shape with one bare
//! `INSERT … SELECT`. Also reported: the ledger's bytes per recipient and the process's
//! peak memory before and after the fan-out (it must not grow with the audience: the
//! audience never passes through the process).

use std::time::Instant;

use anyhow::Context;
use ee_app::audit::Caller;
use ee_app::write::Write;
use ee_core::campaign::CampaignAction;
use ee_core::clock::Clock;
use ee_store::{Backend, Db};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    recipients: i64,
    fan_out_seconds: f64,
    floor_seconds: f64,
    /// Floor time ÷ fan-out time: 1 is as fast as the bare copy.
    ratio: f64,
    ledger_bytes_per_recipient: f64,
    peak_rss_mb_before: f64,
    peak_rss_mb_after: f64,
}

/// N contacts of one tenant, all with the tag `QUALITY:HIGH`, written by the database
/// itself (a recursive sequence), so filling them costs the benchmark no memory.
async fn fill(db: &Db, tenant_id: &str, tag_id: &str, n: i64, now: i64) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    sqlx::query(
        "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $1 - 1) \
         INSERT INTO contacts (id, tenant_id, email, email_hash, status, created_at, updated_at) \
         SELECT 'c' || CAST(10000000 + i AS TEXT), $2, 'p' || CAST(i AS TEXT) || '@example.test', \
         'h' || CAST(i AS TEXT), 'active', $3, $3 FROM seq",
    )
    .bind(n)
    .bind(tenant_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("filling the contacts")?;
    sqlx::query(
        "INSERT INTO contact_tags (contact_id, tag_id, created_at) SELECT id, $1, $2 FROM contacts",
    )
    .bind(tag_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("tagging the contacts")?;
    Ok(())
}

/// The ledger's size on disk: SQLite's pages in use, PostgreSQL's relation with its indexes.
async fn ledger_bytes(db: &Db) -> anyhow::Result<i64> {
    let mut conn = db.pool().acquire().await?;
    Ok(match db.backend() {
        Backend::Postgres => {
            sqlx::query_scalar(
                "SELECT CAST(pg_total_relation_size('campaign_recipients') AS BIGINT)",
            )
            .fetch_one(&mut *conn)
            .await?
        }
        Backend::Sqlite => {
            let pages: i64 = sqlx::query_scalar("SELECT page_count - freelist_count FROM pragma_page_count(), pragma_freelist_count()")
                .fetch_one(&mut *conn)
                .await?;
            let size: i64 = sqlx::query_scalar("SELECT page_size FROM pragma_page_size()")
                .fetch_one(&mut *conn)
                .await?;
            pages * size
        }
    })
}

/// The floor: the same rows copied by one bare `INSERT … SELECT` into a table of the
/// ledger's shape (same key and indexes), the same campaign id in every row as the ledger
/// holds (its length sizes all three indexes).
async fn floor(db: &Db, campaign_id: &str) -> anyhow::Result<f64> {
    let mut conn = db.pool().acquire().await?;
    for sql in [
        "CREATE TABLE floor_recipients (campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL, \
         tenant_id TEXT NOT NULL, state TEXT NOT NULL, detail TEXT, message_id TEXT, variant TEXT, \
         attempt BIGINT NOT NULL DEFAULT 0, queued_at BIGINT, created_at BIGINT NOT NULL, \
         updated_at BIGINT NOT NULL, PRIMARY KEY (campaign_id, contact_id))",
        "CREATE INDEX floor_pending ON floor_recipients(campaign_id, state, contact_id)",
        "CREATE INDEX floor_queued ON floor_recipients(campaign_id, queued_at)",
    ] {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO floor_recipients (campaign_id, contact_id, tenant_id, state, created_at, updated_at) \
         SELECT $1, c.id, c.tenant_id, 'pending', 0, 0 FROM contacts c",
    )
    .bind(campaign_id)
    .execute(&mut *conn)
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn measure(database_url: &str, n: i64) -> anyhow::Result<Report> {
    let db = Db::connect(database_url, 4).await?;
    db.migrate().await?;
    let now = Clock::System.now_ms();
    let mut conn = db.pool().acquire().await?;
    let tenant = ee_store::tenants::insert(
        &mut conn,
        ee_store::tenants::NewTenant {
            name: "Bench",
            slug: "bench",
            settings: "{}",
        },
        now,
    )
    .await?;
    let tag = ee_core::tags::parse("QUALITY:HIGH").map_err(|e| anyhow::anyhow!(e))?;
    let tag_id = ee_store::contacts::ensure_tag(&mut conn, &tenant.id, &tag, now).await?;
    let template = ee_store::templates::insert(
        &mut conn,
        &tenant.id,
        &ee_store::templates::Content {
            name: "bench",
            language: "en",
            category: None,
            subject: "Hello",
            html: "<p>Hello</p>",
            text: None,
            variables: "{}",
            from_name: None,
            from_email: None,
            reply_to: None,
            design: None,
        },
        None,
        now,
    )
    .await?;
    drop(conn);
    fill(&db, &tenant.id, &tag_id, n, now).await?;
    let mut conn = db.pool().acquire().await?;
    ee_store::refresh_statistics(&mut conn, db.backend()).await?;
    if db.backend() == Backend::Postgres {
        // Settled tables, as a deployment's contacts are: without it, whichever statement
        // reads the new rows first (the fan-out) pays for setting every row's commit hint
        // and the floor after it does not.
        sqlx::raw_sql("VACUUM contacts, contact_tags")
            .execute(&mut *conn)
            .await?;
    }
    drop(conn);
    let before = ledger_bytes(&db).await?;
    let rss_before = crate::bench::peak_rss_mb();

    let mut w = Write::open(&db, Caller::cli(), None, now).await?;
    let input = ee_app::campaigns::CampaignIn {
        name: Some("bench".into()),
        template_id: Some(template.id.clone()),
        audience: Some(ee_app::campaigns::Audience {
            tags: vec!["QUALITY:HIGH".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let campaign = ee_app::campaigns::create(&mut w, &tenant.id, input).await?;
    w.finish().await?;
    let started = Instant::now();
    let mut w = Write::open_bulk(&db, Caller::cli(), None, now).await?;
    let out = ee_app::campaigns::act(&mut w, &campaign.id, CampaignAction::Start, None).await?;
    w.finish().await?;
    let fan_out = started.elapsed().as_secs_f64();
    let rss_after = crate::bench::peak_rss_mb();
    let recipients = out.recipients.unwrap_or(0);
    anyhow::ensure!(
        recipients == n,
        "the fan-out took {recipients} of {n} recipients"
    );
    let after = ledger_bytes(&db).await?;
    let floor_seconds = floor(&db, &campaign.id).await?;
    db.close().await;
    Ok(Report {
        backend: db.backend().as_str().into(),
        recipients,
        fan_out_seconds: fan_out,
        floor_seconds,
        ratio: floor_seconds / fan_out,
        ledger_bytes_per_recipient: (after - before) as f64 / n as f64,
        peak_rss_mb_before: rss_before,
        peak_rss_mb_after: rss_after,
    })
}

/// Runs the fan-out on SQLite (in a temporary directory) and, when given, PostgreSQL.
pub async fn run(recipients: i64, postgres: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(recipients > 0, "--recipients must be at least 1");
    crate::bench::on_each_database("campaign", postgres, |url| async move {
        measure(&url, recipients).await
    })
    .await
}
