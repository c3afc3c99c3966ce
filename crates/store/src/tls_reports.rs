//! SMTP TLS reporting (RFC 8460): the day's sessions per tenant and recipient domain,
//! counted as they happen (in the delivery's own transaction), and the reports sent of
//! them.

use ee_core::ids::new_id;
use ee_core::tls_rpt::{Outcome, PolicyKind, ReportState, Session};
use sqlx::AnyConnection;

use crate::{Result, Scope, StoreError};

/// Adds sessions to the day's counts of `tenant_id`.
pub async fn add_sessions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    day: &str,
    sessions: &[(Session, u64)],
) -> Result<()> {
    for (s, n) in sessions {
        let lines = serde_json::to_string(&s.policy_lines).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO tls_sessions (tenant_id, day, domain, policy_type, policy_lines, mx_host, outcome, \
             sending_ip, receiving_ip, sessions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (tenant_id, day, domain, policy_type, policy_lines, mx_host, outcome, sending_ip, receiving_ip) \
             DO UPDATE SET sessions = tls_sessions.sessions + excluded.sessions",
        )
        .bind(tenant_id)
        .bind(day)
        .bind(&s.domain)
        .bind(s.policy.as_str())
        .bind(lines)
        .bind(&s.mx_host)
        .bind(s.outcome.as_str())
        .bind(&s.sending_ip)
        .bind(&s.receiving_ip)
        .bind(i64::try_from(*n).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The (tenant, domain, day) whose sessions wait for a report, days before `today`.
pub async fn pending(
    conn: &mut AnyConnection,
    today: &str,
    limit: i64,
) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT tenant_id, domain, day FROM tls_sessions WHERE day < $1 \
         ORDER BY day, tenant_id, domain LIMIT $2",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The day's sessions of a tenant to a domain, each with its count.
pub async fn sessions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    domain: &str,
    day: &str,
) -> Result<Vec<(Session, u64)>> {
    type Row = (String, String, String, String, String, String, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT policy_type, policy_lines, mx_host, outcome, sending_ip, receiving_ip, sessions \
         FROM tls_sessions WHERE tenant_id = $1 AND domain = $2 AND day = $3 \
         ORDER BY policy_type, policy_lines, outcome, mx_host, sending_ip, receiving_ip",
    )
    .bind(tenant_id)
    .bind(domain)
    .bind(day)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(
            |(policy, lines, mx_host, outcome, sending_ip, receiving_ip, n)| {
                let corrupt = |what: &str| {
                    StoreError::Unstorable(format!("tls_sessions holds an unknown {what}"))
                };
                Ok((
                    Session {
                        domain: domain.to_owned(),
                        policy: PolicyKind::parse(&policy).ok_or_else(|| corrupt("policy type"))?,
                        policy_lines: serde_json::from_str(&lines)
                            .map_err(|_| corrupt("policy string"))?,
                        mx_host,
                        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome"))?,
                        sending_ip,
                        receiving_ip,
                    },
                    u64::try_from(n).unwrap_or(0),
                ))
            },
        )
        .collect()
}

/// What became of one day's report to a domain.
pub struct Done<'a> {
    pub tenant_id: &'a str,
    pub domain: &'a str,
    pub day: &'a str,
    pub state: ReportState,
    pub destinations: &'a str,
    pub successful: u64,
    pub failed: u64,
    pub detail: Option<&'a str>,
    pub now: i64,
}

/// Records a report's state (one row per tenant, domain and day; attempts counted), and
/// when it is final (anything but `Failed`), drops the sessions it reported.
pub async fn record(conn: &mut AnyConnection, done: &Done<'_>) -> Result<()> {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO tls_reports (id, tenant_id, domain, day, state, destinations, successful, failed, \
         attempts, detail, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10) \
         ON CONFLICT (tenant_id, domain, day) DO UPDATE SET state = excluded.state, \
         destinations = excluded.destinations, successful = excluded.successful, \
         failed = excluded.failed, attempts = tls_reports.attempts + 1, detail = excluded.detail, \
         updated_at = excluded.updated_at",
    )
    .bind(new_id())
    .bind(done.tenant_id)
    .bind(done.domain)
    .bind(done.day)
    .bind(done.state.as_str())
    .bind(done.destinations)
    .bind(count(done.successful))
    .bind(count(done.failed))
    .bind(done.detail)
    .bind(done.now)
    .execute(&mut *conn)
    .await?;
    if done.state != ReportState::Failed {
        sqlx::query("DELETE FROM tls_sessions WHERE tenant_id = $1 AND domain = $2 AND day = $3")
            .bind(done.tenant_id)
            .bind(done.domain)
            .bind(done.day)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Report {
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    pub day: String,
    #[sqlx(try_from = "String")]
    pub state: ReportState,
    pub destinations: String,
    pub successful: i64,
    pub failed: i64,
    pub attempts: i64,
    pub detail: Option<String>,
    pub updated_at: i64,
}

/// The reports of the last `days` days before `today` (a tenant's, or all), the latest
/// day first.
pub async fn list(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    since_day: &str,
) -> Result<Vec<Report>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, domain, day, state, destinations, successful, failed, attempts, detail, \
         updated_at FROM tls_reports WHERE ($1 IS NULL OR tenant_id = $1) AND day >= $2 \
         ORDER BY day DESC, domain, id",
    )
    .bind(scope.tenant())
    .bind(since_day)
    .fetch_all(conn)
    .await?)
}
