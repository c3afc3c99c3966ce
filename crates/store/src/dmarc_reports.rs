//! DMARC aggregate reports received: the report (attributed to a tenant's domain, or
//! kept without one), its records per source IP, and the sums a domain's figures are
//! made of.

use ee_core::dmarc::ReportState;
use sqlx::AnyConnection;

use crate::{Result, Scope};

/// A report as stored.
pub struct NewReport<'a> {
    pub id: &'a str,
    pub tenant_id: Option<&'a str>,
    pub domain_id: Option<&'a str>,
    pub state: ReportState,
    pub reason: Option<&'a str>,
    /// Its `policy_published` domain (empty when it could not be read).
    pub domain: &'a str,
    pub org_name: &'a str,
    pub email: &'a str,
    pub report_id: &'a str,
    pub begin_at: i64,
    pub end_at: i64,
    /// The policy as published (`p=quarantine; adkim=r`).
    pub policy: &'a str,
    pub messages: i64,
    pub skipped: i64,
    /// The envelope sender of the mail it came in.
    pub sender: Option<&'a str>,
    pub size: i64,
    /// The same key twice is stored once (reporter, report id, domain).
    pub dedupe_key: Option<&'a str>,
    pub received_at: i64,
}

/// One source and outcome of a report.
pub struct NewRecord {
    pub source_ip: String,
    /// The IP is the tenant's (or the installation's, given to no tenant).
    pub own: bool,
    pub count: i64,
    pub disposition: String,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    pub header_from: String,
    pub envelope_from: Option<String>,
    /// The DKIM and SPF results (`brand.test=pass`, space-separated).
    pub dkim: String,
    pub spf: String,
}

/// Rows written per statement.
const CHUNK: usize = 50;

/// Stores a report and its records; `false` (nothing written) when its dedupe key was
/// stored before.
pub async fn insert(
    conn: &mut AnyConnection,
    r: &NewReport<'_>,
    records: &[NewRecord],
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO dmarc_reports (id, tenant_id, domain_id, state, reason, domain, org_name, email, \
         report_id, begin_at, end_at, policy, messages, records, skipped, sender, size, dedupe_key, \
         received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(r.id)
    .bind(r.tenant_id)
    .bind(r.domain_id)
    .bind(r.state.as_str())
    .bind(r.reason)
    .bind(r.domain)
    .bind(r.org_name)
    .bind(r.email)
    .bind(r.report_id)
    .bind(r.begin_at)
    .bind(r.end_at)
    .bind(r.policy)
    .bind(r.messages)
    .bind(i64::try_from(records.len()).unwrap_or(i64::MAX))
    .bind(r.skipped)
    .bind(r.sender)
    .bind(r.size)
    .bind(r.dedupe_key)
    .bind(r.received_at)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for chunk in records.chunks(CHUNK) {
        let mut sql = String::from(
            "INSERT INTO dmarc_records (report_id, source_ip, own, count, disposition, dkim_aligned, \
             spf_aligned, header_from, envelope_from, dkim, spf) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 10;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(r.id);
        for rec in chunk {
            q = q
                .bind(&rec.source_ip)
                .bind(i64::from(rec.own))
                .bind(rec.count)
                .bind(&rec.disposition)
                .bind(i64::from(rec.dkim_aligned))
                .bind(i64::from(rec.spf_aligned))
                .bind(&rec.header_from)
                .bind(&rec.envelope_from)
                .bind(&rec.dkim)
                .bind(&rec.spf);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(true)
}

/// Reports kept without a tenant at most, the oldest dropped first: strangers write them.
pub async fn cap_unattributed(conn: &mut AnyConnection, keep: i64) -> Result<u64> {
    crate::unowned_cap::keep_newest(conn, crate::unowned_cap::Unowned::DmarcReports, keep).await
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Report {
    pub id: String,
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: ReportState,
    pub reason: Option<String>,
    pub domain: String,
    pub org_name: String,
    pub email: String,
    pub report_id: String,
    pub begin_at: i64,
    pub end_at: i64,
    pub policy: String,
    pub messages: i64,
    pub records: i64,
    pub skipped: i64,
    pub sender: Option<String>,
    pub size: i64,
    pub received_at: i64,
}

/// Which reports a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportFilter<'a> {
    pub scope: Scope<'a>,
    pub domain_id: Option<&'a str>,
    pub state: Option<ReportState>,
    /// Received at or after (ms).
    pub since: i64,
    pub limit: i64,
}

/// Reports, the latest received first.
pub async fn list(conn: &mut AnyConnection, f: &ReportFilter<'_>) -> Result<Vec<Report>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, domain_id, state, reason, domain, org_name, email, report_id, begin_at, \
         end_at, policy, messages, records, skipped, sender, size, received_at FROM dmarc_reports \
         WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR domain_id = $2) \
         AND ($3 IS NULL OR state = $3) AND received_at >= $4 \
         ORDER BY received_at DESC, id DESC LIMIT $5",
    )
    .bind(f.scope.tenant())
    .bind(f.domain_id)
    .bind(f.state.map(|s| s.as_str()))
    .bind(f.since)
    .bind(f.limit)
    .fetch_all(conn)
    .await?)
}

/// A domain's messages per source IP in the reports received since `since` (ms):
/// (ip, own, messages, DKIM aligned, SPF aligned, passed).
pub async fn sources(
    conn: &mut AnyConnection,
    domain_id: &str,
    since: i64,
) -> Result<Vec<(String, i64, i64, i64, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT r.source_ip, MAX(r.own), CAST(SUM(r.count) AS BIGINT), \
         CAST(SUM(CASE WHEN r.dkim_aligned = 1 THEN r.count ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN r.spf_aligned = 1 THEN r.count ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN r.dkim_aligned = 1 OR r.spf_aligned = 1 THEN r.count ELSE 0 END) AS BIGINT) \
         FROM dmarc_records r JOIN dmarc_reports p ON p.id = r.report_id \
         WHERE p.domain_id = $1 AND p.received_at >= $2 GROUP BY r.source_ip",
    )
    .bind(domain_id)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// How many reports of a domain were received since `since` (ms).
pub async fn count(conn: &mut AnyConnection, domain_id: &str, since: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM dmarc_reports WHERE domain_id = $1 AND received_at >= $2",
    )
    .bind(domain_id)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

/// Deletes the reports received before `before`, their records with them (a tenant's
/// figures read the last weeks; a year and more is history no page shows).
pub async fn purge(conn: &mut AnyConnection, before: i64) -> Result<u64> {
    // Records first: SQLite deletes them by the foreign key too, but only where the
    // connection turned foreign keys on, and this holds on any connection.
    sqlx::query(
        "DELETE FROM dmarc_records WHERE report_id IN \
         (SELECT id FROM dmarc_reports WHERE received_at < $1)",
    )
    .bind(before)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query("DELETE FROM dmarc_reports WHERE received_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
