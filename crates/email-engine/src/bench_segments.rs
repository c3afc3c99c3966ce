//! `email-engine bench segments`: the count of segments over N contacts of one tenant,
//! each with custom fields (a profession, an age as a JSON number or as text, a code), a
//! message sent within the last 60 days (half of them of one campaign), opens for a third
//! (a ninth a machine's), clicks for a tenth, and one to four soft bounces for a seventh,
//! all written by the database itself (a recursive sequence). Each segment's count time
//! (the best of three) is reported beside the floor measured in the same run: a plain
//! `SELECT COUNT(*) FROM contacts WHERE tenant_id = …`.

use std::time::Instant;

use anyhow::Context;
use ee_core::clock::Clock;
use ee_core::segment::Expr;
use ee_store::{AnyConnection, Backend, Db};
use serde::Serialize;
use serde_json::json;

const CAMPAIGN: &str = "bench-campaign";
const ROUNDS: usize = 3;

#[derive(Debug, Serialize)]
struct Measured {
    segment: &'static str,
    count: i64,
    ms: f64,
    /// Count time ÷ floor time.
    times_floor: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    contacts: i64,
    fill_seconds: f64,
    floor_ms: f64,
    segments: Vec<Measured>,
}

/// `WITH RECURSIVE seq(i)` over 0..n, then `body` (which reads `i`); `$1` is n.
async fn per_row(
    conn: &mut AnyConnection,
    n: i64,
    body: &str,
    tenant_id: &str,
    now: i64,
) -> anyhow::Result<()> {
    let sql = format!(
        "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $1 - 1) {body}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(n)
        .bind(tenant_id)
        .bind(now)
        .execute(conn)
        .await
        .with_context(|| format!("filling: {body}"))?;
    Ok(())
}

async fn fill(db: &Db, tenant_id: &str, n: i64, now: i64) -> anyhow::Result<()> {
    let mut conn = db.pool().acquire().await?;
    let contact = "'c' || CAST(10000000 + i AS TEXT)";
    let metadata = "'{\"profession\":\"' || (CASE i % 5 WHEN 0 THEN 'lawyer' WHEN 1 THEN 'notary' \
         WHEN 2 THEN 'doctor' WHEN 3 THEN 'architect' ELSE 'nurse' END) || '\",\"age\":' || \
         (CASE WHEN i % 2 = 0 THEN CAST(18 + i % 60 AS TEXT) ELSE '\"' || CAST(18 + i % 60 AS TEXT) || '\"' END) \
         || ',\"code\":\"Z' || CAST(i % 1000 AS TEXT) || '\"}'";
    let days_ago = |modulo: i64| format!("$3 - CAST(i % {modulo} AS BIGINT) * 86400000");
    per_row(
        &mut conn,
        n,
        &format!(
            "INSERT INTO contacts (id, tenant_id, email, email_hash, status, metadata, created_at, updated_at) \
             SELECT {contact}, $2, 'p' || CAST(i AS TEXT) || '@example.test', 'h' || CAST(i AS TEXT), 'active', \
             {metadata}, $3, $3 FROM seq"
        ),
        tenant_id,
        now,
    )
    .await?;
    per_row(
        &mut conn,
        n,
        &format!(
            "INSERT INTO messages (id, tenant_id, contact_id, campaign_id, kind, to_email, from_email, subject, \
             track_opens, track_clicks, message_id_header, state, next_attempt_at, queued_at, sent_at, updated_at) \
             SELECT 'm' || CAST(i AS TEXT), $2, {contact}, CASE WHEN i % 2 = 0 THEN '{CAMPAIGN}' ELSE 'other' END, \
             'campaign', 'p' || CAST(i AS TEXT) || '@example.test', 'from@brand.test', 's', 1, 1, \
             'm' || CAST(i AS TEXT) || '@brand.test', 'sent', 0, $3, {sent}, $3 FROM seq",
            sent = days_ago(60)
        ),
        tenant_id,
        now,
    )
    .await?;
    for (kind, modulo, days, machine) in [
        ("open", 3, 90, "CASE WHEN i % 9 = 0 THEN 1 ELSE 0 END"),
        ("click", 10, 20, "0"),
    ] {
        per_row(
            &mut conn,
            n,
            &format!(
                "INSERT INTO tracking_hits (id, tenant_id, message_id, campaign_id, contact_id, kind, machine, repeat, occurred_at) \
                 SELECT '{kind}' || CAST(i AS TEXT), $2, 'm' || CAST(i AS TEXT), NULL, {contact}, '{kind}', {machine}, 0, \
                 {at} FROM seq WHERE i % {modulo} = 0",
                at = days_ago(days)
            ),
            tenant_id,
            now,
        )
        .await?;
    }
    for k in 0..4 {
        per_row(
            &mut conn,
            n,
            &format!(
                "INSERT INTO delivery_events (id, tenant_id, message_id, contact_id, recipient, kind, class, category, \
                 source, occurred_at, received_at) \
                 SELECT 'e{k}-' || CAST(i AS TEXT), $2, 'm' || CAST(i AS TEXT), {contact}, \
                 'p' || CAST(i AS TEXT) || '@example.test', 'bounced', 'soft', 'bad-mailbox', 'smtp', \
                 $3 - {k} * 86400000, $3 FROM seq WHERE i % 7 = 0 AND i % 4 >= {k}"
            ),
            tenant_id,
            now,
        )
        .await?;
    }
    sqlx::query(
        "INSERT INTO campaigns (id, tenant_id, name, type, status, created_at, updated_at) \
         VALUES ($1, $2, 'bench', 'regular', 'sent', $3, $3)",
    )
    .bind(CAMPAIGN)
    .bind(tenant_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The best of `ROUNDS` counts, in ms, with the count: the tenant's contacts when `expr`
/// is `None` (the floor), else the segment's.
async fn best(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: Option<&Expr>,
    now: i64,
) -> anyhow::Result<(i64, f64)> {
    let mut best = f64::INFINITY;
    let mut answer = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        answer = match expr {
            None => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM contacts WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_one(&mut *conn)
                    .await?
            }
            Some(e) => ee_store::segments::count(conn, tenant_id, e, now).await?,
        };
        best = best.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((answer, best))
}

fn segments() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "custom profession eq lawyer",
            json!({"custom": "profession", "op": "eq", "value": "lawyer"}),
        ),
        (
            "custom age gt 40 (number or text)",
            json!({"custom": "age", "op": "gt", "value": 40}),
        ),
        (
            "opened in the last 30 days",
            json!({"engagement": "opened", "days": 30}),
        ),
        (
            "received the campaign",
            json!({"engagement": "received", "campaign": CAMPAIGN}),
        ),
        (
            "not clicked in the last 7 days",
            json!({"not": {"engagement": "clicked", "days": 7}}),
        ),
        (
            "soft-bounced at least 3 times",
            json!({"engagement": "soft_bounced", "at_least": 3}),
        ),
        (
            "lawyers who opened in 30 days and never soft-bounced",
            json!({"and": [{"custom": "profession", "op": "eq", "value": "lawyer"},
                          {"engagement": "opened", "days": 30},
                          {"not": {"engagement": "soft_bounced"}}]}),
        ),
    ]
}

async fn measure(database_url: &str, n: i64) -> anyhow::Result<Report> {
    let db = Db::connect(database_url, 2).await?;
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
    drop(conn);
    let started = Instant::now();
    fill(&db, &tenant.id, n, now).await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let mut conn = db.pool().acquire().await?;
    ee_store::refresh_statistics(&mut conn, db.backend()).await?;
    if db.backend() == Backend::Postgres {
        // Settled tables (commit hints set), as a deployment's are.
        sqlx::raw_sql("VACUUM contacts, messages, tracking_hits, delivery_events")
            .execute(&mut *conn)
            .await?;
    }
    let (total, floor_ms) = best(&mut conn, &tenant.id, None, now).await?;
    anyhow::ensure!(total == n, "{total} contacts of {n}");
    let mut measured = Vec::new();
    for (name, value) in segments() {
        let expr: Expr = serde_json::from_value(value)?;
        ee_core::segment::check(&expr, now).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let (count, ms) = best(&mut conn, &tenant.id, Some(&expr), now).await?;
        measured.push(Measured {
            segment: name,
            count,
            ms,
            times_floor: ms / floor_ms,
        });
    }
    drop(conn);
    db.close().await;
    Ok(Report {
        backend: db.backend().as_str().into(),
        contacts: n,
        fill_seconds,
        floor_ms,
        segments: measured,
    })
}

/// Runs the counts on SQLite (in a temporary directory) and, when given, PostgreSQL.
pub async fn run(contacts: i64, postgres: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(contacts > 0, "--contacts must be at least 1");
    crate::bench::on_each_database("segments", postgres, |url| async move {
        measure(&url, contacts).await
    })
    .await
}
