//! The infrastructure snapshot that `/metrics` exposes (computed once a minute by one
//! node, read by every scrape); the health check is in `health.rs`.

use ee_store::Db;
use serde_json::{Value, json};

use crate::JobError;

/// IPs by state per tenant, warm-up quota and use per IP, blacklist and DNS status.
pub async fn infrastructure(db: &Db, now: i64) -> Result<Value, JobError> {
    let mut conn = db.pool().acquire().await?;
    let by_state: Vec<(Option<String>, String, i64)> =
        sqlx::query_as("SELECT tenant_id, state, COUNT(*) FROM ips GROUP BY tenant_id, state ORDER BY tenant_id, state")
            .fetch_all(&mut *conn)
            .await?;
    let ips = ee_store::ips::list_all(&mut conn).await?;
    let mut per_ip = Vec::with_capacity(ips.len());
    for ip in &ips {
        let quota = crate::infra::quota(&mut conn, ip, now).await?;
        per_ip.push(json!({
            "ip": ip.ip_address,
            "tenant_id": ip.tenant_id,
            "state": ip.state,
            "blacklisted": ip.blacklist_status == ee_core::ip::BlacklistStatus::Listed,
            "daily_quota": quota.daily_quota,
            "sent_today": quota.sent_today,
        }));
    }
    let domains: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT domain_name, tenant_id, last_check_ok FROM domains ORDER BY domain_name",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(json!({
        "generated_at": now,
        "ips_by_state": by_state.iter().map(|(t, s, n)| json!({"tenant_id": t, "state": s, "count": n})).collect::<Vec<_>>(),
        "ips": per_ip,
        "domains": domains.iter().map(|(d, t, ok)| json!({"domain": d, "tenant_id": t, "dns_ok": ok})).collect::<Vec<_>>(),
    }))
}
