//! The reports' counters: per tenant, UTC day, IP, sending domain, recipient provider and
//! campaign, added to in bulk and summed by one of those.

use sqlx::AnyConnection;

use crate::{Result, bulk};

/// Where a count goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct CounterKey {
    pub tenant_id: String,
    pub day: i64,
    pub ip_id: String,
    pub domain: String,
    pub provider: String,
    pub campaign_id: String,
}

/// Adds counts (each key and name once: the caller sums first).
pub async fn add(conn: &mut AnyConnection, counts: &[(CounterKey, &str, i64)]) -> Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = counts
        .iter()
        .map(|(k, name, n)| {
            serde_json::json!([
                k.tenant_id,
                k.day,
                k.ip_id,
                k.domain,
                k.provider,
                k.campaign_id,
                name,
                n
            ])
        })
        .collect();
    let sql = format!(
        "INSERT INTO report_counters (tenant_id, day, ip_id, domain, provider, campaign_id, name, value) \
         SELECT value ->> 0, CAST(value ->> 1 AS BIGINT), value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
         value ->> 6, CAST(value ->> 7 AS BIGINT) FROM {} WHERE true \
         ON CONFLICT (tenant_id, day, ip_id, domain, provider, campaign_id, name) \
         DO UPDATE SET value = report_counters.value + excluded.value",
        bulk::rows(conn, "$1")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bulk::encode(&rows))
        .execute(conn)
        .await?;
    Ok(())
}

/// What a report is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Day,
    Ip,
    Domain,
    Provider,
    Campaign,
}

impl Dimension {
    fn column(self) -> &'static str {
        match self {
            Dimension::Day => "CAST(day AS TEXT)",
            Dimension::Ip => "ip_id",
            Dimension::Domain => "domain",
            Dimension::Provider => "provider",
            Dimension::Campaign => "campaign_id",
        }
    }
}

/// A tenant's counters (or every tenant's) over days `[from_day, to_day]`, summed by
/// `by`: (key, name, sum).
pub async fn sums(
    conn: &mut AnyConnection,
    scope: crate::Scope<'_>,
    from_day: i64,
    to_day: i64,
    by: Dimension,
) -> Result<Vec<(String, String, i64)>> {
    let column = by.column();
    let sum = sum_as_bigint(conn);
    let sql = format!(
        "SELECT {column}, name, {sum} FROM report_counters WHERE ($1 IS NULL OR tenant_id = $1) \
         AND day >= $2 AND day <= $3 GROUP BY {column}, name ORDER BY 1, 2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.tenant())
        .bind(from_day)
        .bind(to_day)
        .fetch_all(conn)
        .await?)
}

/// Every tenant's totals by name, for /metrics.
pub async fn totals(conn: &mut AnyConnection) -> Result<Vec<(String, String, i64)>> {
    let sum = sum_as_bigint(conn);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, name, {sum} FROM report_counters GROUP BY tenant_id, name ORDER BY 1, 2"
    )))
    .fetch_all(conn)
    .await?)
}

/// Every tenant's counter `name` by recipient provider and IP (`ee_deferred_total`).
pub async fn totals_by_provider(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Vec<(String, String, i64)>> {
    let sum = sum_as_bigint(conn);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT provider, ip_id, {sum} FROM report_counters WHERE name = $1 \
         GROUP BY provider, ip_id ORDER BY 1, 2"
    )))
    .bind(name)
    .fetch_all(conn)
    .await?)
}

/// `SUM(value)` as a BIGINT on both databases (PostgreSQL sums BIGINTs into NUMERIC).
fn sum_as_bigint(conn: &AnyConnection) -> &'static str {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        "SUM(value)"
    } else {
        "CAST(SUM(value) AS BIGINT)"
    }
}

/// A tenant's sending domain's counters over days `[from_day, to_day]`: (name, sum).
pub async fn domain_sums(
    conn: &mut AnyConnection,
    tenant_id: &str,
    domain: &str,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<(String, i64)>> {
    let sum = sum_as_bigint(conn);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT name, {sum} FROM report_counters WHERE tenant_id = $1 AND domain = $2 AND day >= $3 \
         AND day <= $4 GROUP BY name"
    )))
    .bind(tenant_id)
    .bind(domain)
    .bind(from_day)
    .bind(to_day)
    .fetch_all(conn)
    .await?)
}
