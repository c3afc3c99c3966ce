//! Sending IPs, their transitions and their daily traffic.

use crate::Scope;
use ee_core::auth::Actor;
use ee_core::ids::new_id;
use ee_core::ip::{BlacklistStatus, IpState};
use ee_core::warmup::Traffic;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Ip {
    pub id: String,
    pub tenant_id: Option<String>,
    pub ip_address: String,
    pub hostname: Option<String>,
    pub pool: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: IpState,
    #[sqlx(try_from = "crate::maybe_name::MaybeName")]
    pub previous_state: Option<IpState>,
    pub state_reason: Option<String>,
    pub state_changed_at: i64,
    pub warmup_plan_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub blacklist_status: BlacklistStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, ip_address, hostname, pool, state, previous_state, state_reason, \
    state_changed_at, warmup_plan_id, blacklist_status, created_at, updated_at";

pub struct NewIp<'a> {
    pub tenant_id: Option<&'a str>,
    pub ip_address: &'a str,
    pub hostname: Option<&'a str>,
    pub pool: Option<&'a str>,
    pub state: IpState,
}

pub async fn insert(conn: &mut AnyConnection, new: NewIp<'_>, now: i64) -> Result<Ip> {
    let ip = Ip {
        id: new_id(),
        tenant_id: new.tenant_id.map(str::to_owned),
        ip_address: new.ip_address.to_owned(),
        hostname: new.hostname.map(str::to_owned),
        pool: new.pool.map(str::to_owned),
        state: new.state,
        previous_state: None,
        state_reason: None,
        state_changed_at: now,
        warmup_plan_id: None,
        blacklist_status: BlacklistStatus::Clean,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO ips ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(&ip.id)
    .bind(&ip.tenant_id)
    .bind(&ip.ip_address)
    .bind(&ip.hostname)
    .bind(&ip.pool)
    .bind(ip.state.as_str())
    .bind(ip.previous_state.map(IpState::as_str))
    .bind(&ip.state_reason)
    .bind(now)
    .bind(&ip.warmup_plan_id)
    .bind(ip.blacklist_status.as_str())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| StoreError::unique(e, "this IP address is registered already"))?;
    Ok(ip)
}

/// One IP through a tenant scope (`None` = all): another tenant's IP is "not found".
pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Ip> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ips WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn get_by_address(conn: &mut AnyConnection, address: &str) -> Result<Ip> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ips WHERE ip_address = $1"
    )))
    .bind(address)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

#[derive(Debug, Clone, Default)]
pub struct IpFilter<'a> {
    pub scope: Scope<'a>,
    pub pool: Option<&'a str>,
    pub state: Option<&'a str>,
}

pub async fn list(conn: &mut AnyConnection, filter: &IpFilter<'_>) -> Result<Vec<Ip>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ips WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR pool = $2) \
         AND ($3 IS NULL OR state = $3) ORDER BY ip_address"
    )))
    .bind(filter.scope.tenant())
    .bind(filter.pool)
    .bind(filter.state)
    .fetch_all(conn)
    .await?)
}

/// Every IP of every tenant (scheduled checks).
pub async fn list_all(conn: &mut AnyConnection) -> Result<Vec<Ip>> {
    list(conn, &IpFilter::default()).await
}

/// Writes back hostname, pool, tenant and the warm-up plan pointer.
pub async fn update_details(conn: &mut AnyConnection, ip: &Ip, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE ips SET hostname = $1, pool = $2, tenant_id = $3, warmup_plan_id = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(&ip.hostname)
    .bind(&ip.pool)
    .bind(&ip.tenant_id)
    .bind(&ip.warmup_plan_id)
    .bind(now)
    .bind(&ip.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_blacklist_status(
    conn: &mut AnyConnection,
    id: &str,
    status: BlacklistStatus,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE ips SET blacklist_status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes an IP with its history, counters and warm-up plans.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM ips WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    // Plans point at their IP without a foreign key (the IP points at its plan).
    sqlx::query("DELETE FROM warmup_plans WHERE ip_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves an IP to `to`, keeping the state it leaves and writing the history row.
/// The `WHERE state = from` guard makes concurrent moves of one IP fail rather than race.
pub async fn record_transition(
    conn: &mut AnyConnection,
    ip: &Ip,
    to: IpState,
    reason: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<Ip> {
    let done = sqlx::query(
        "UPDATE ips SET state = $1, previous_state = $2, state_reason = $3, state_changed_at = $4, \
         updated_at = $4 WHERE id = $5 AND state = $2",
    )
    .bind(to.as_str())
    .bind(ip.state.as_str())
    .bind(reason)
    .bind(now)
    .bind(&ip.id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "the IP changed state meanwhile; retry".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO ip_transitions (id, ip_id, tenant_id, from_state, to_state, reason, actor_type, \
         actor_id, actor_label, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id())
    .bind(&ip.id)
    .bind(&ip.tenant_id)
    .bind(ip.state.as_str())
    .bind(to.as_str())
    .bind(reason)
    .bind(actor.kind.as_str())
    .bind(&actor.id)
    .bind(&actor.label)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let mut moved = ip.clone();
    moved.previous_state = Some(ip.state);
    moved.state = to;
    moved.state_reason = reason.map(str::to_owned);
    moved.state_changed_at = now;
    moved.updated_at = now;
    Ok(moved)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Transition {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub from_state: IpState,
    #[sqlx(try_from = "String")]
    pub to_state: IpState,
    pub reason: Option<String>,
    #[sqlx(try_from = "String")]
    pub actor_type: ee_core::auth::ActorKind,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub created_at: i64,
}

pub async fn transitions(conn: &mut AnyConnection, ip_id: &str) -> Result<Vec<Transition>> {
    Ok(sqlx::query_as(
        "SELECT id, from_state, to_state, reason, actor_type, actor_id, actor_label, created_at \
         FROM ip_transitions WHERE ip_id = $1 ORDER BY created_at, id",
    )
    .bind(ip_id)
    .fetch_all(conn)
    .await?)
}

/// Adds to an IP's counters for a UTC day (days since the epoch).
pub async fn add_traffic(
    conn: &mut AnyConnection,
    ip_id: &str,
    day: i64,
    delta: Traffic,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ip_daily_stats (ip_id, day, sent, bounced, complained) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (ip_id, day) DO UPDATE SET sent = ip_daily_stats.sent + excluded.sent, \
         bounced = ip_daily_stats.bounced + excluded.bounced, \
         complained = ip_daily_stats.complained + excluded.complained",
    )
    .bind(ip_id)
    .bind(day)
    .bind(delta.sent)
    .bind(delta.bounced)
    .bind(delta.complained)
    .execute(conn)
    .await?;
    Ok(())
}

/// An IP's traffic over the days `from_day..=to_day`.
pub async fn traffic(
    conn: &mut AnyConnection,
    ip_id: &str,
    from_day: i64,
    to_day: i64,
) -> Result<Traffic> {
    let (sent, bounced, complained): (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT CAST(SUM(sent) AS BIGINT), CAST(SUM(bounced) AS BIGINT), CAST(SUM(complained) AS BIGINT) \
         FROM ip_daily_stats WHERE ip_id = $1 AND day >= $2 AND day <= $3",
    )
    .bind(ip_id)
    .bind(from_day)
    .bind(to_day)
    .fetch_one(conn)
    .await?;
    Ok(Traffic {
        sent: sent.unwrap_or(0),
        bounced: bounced.unwrap_or(0),
        complained: complained.unwrap_or(0),
    })
}

/// An IP's counters day by day over `[from_day, to_day]` (days without traffic absent).
pub async fn traffic_days(
    conn: &mut AnyConnection,
    ip_id: &str,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<(i64, Traffic)>> {
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, sent, bounced, complained FROM ip_daily_stats \
         WHERE ip_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
    )
    .bind(ip_id)
    .bind(from_day)
    .bind(to_day)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(day, sent, bounced, complained)| {
            (
                day,
                Traffic {
                    sent,
                    bounced,
                    complained,
                },
            )
        })
        .collect())
}

/// Records one list's answer for an IP; `details` is JSON (codes, reason, error).
pub async fn add_blacklist_check(
    conn: &mut AnyConnection,
    ip_id: &str,
    zone: &str,
    listed: bool,
    details: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO blacklist_checks (id, ip_id, blacklist_name, is_listed, checked_at, details) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(new_id())
        .bind(ip_id)
        .bind(zone)
        .bind(i64::from(listed))
        .bind(now)
        .bind(details)
        .execute(conn)
        .await?;
    Ok(())
}

/// An IP's recorded blacklist answers, newest first: (zone, listed, checked_at, details).
pub async fn blacklist_history(
    conn: &mut AnyConnection,
    ip_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<(String, i64, i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT blacklist_name, is_listed, checked_at, details FROM blacklist_checks WHERE ip_id = $1 \
         ORDER BY checked_at DESC, blacklist_name LIMIT $2 OFFSET $3",
    )
    .bind(ip_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?)
}
