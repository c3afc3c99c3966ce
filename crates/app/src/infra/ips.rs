//! Sending IPs: registered, changed, deleted, moved along their state machine and fed
//! their daily traffic, each with its audit entry in the change's transaction.

use ee_core::ValidationErrors;
use ee_core::address::is_host_name;
use ee_core::auth::Actor;
use ee_core::ip::{BlacklistStatus, IpState, normalize_ip};
use ee_core::timefmt::to_rfc3339;
use ee_core::warmup::Traffic;
use ee_store::ips::{self, NewIp};
pub use ee_store::ips::{Ip, IpFilter, Transition};
use ee_store::{AnyConnection, Scope, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Change;
use crate::error::AppError;
use crate::infra::{self, InfraSettings, Quota};
use crate::read::Read;
use crate::write::{Deletable, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct IpOut {
    pub id: String,
    pub ip: String,
    pub hostname: Option<String>,
    pub tenant_id: Option<String>,
    pub pool: Option<String>,
    pub state: IpState,
    pub previous_state: Option<IpState>,
    pub state_reason: Option<String>,
    pub state_changed_at: String,
    pub blacklist_status: BlacklistStatus,
    pub warmup_plan_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Ip> for IpOut {
    fn from(ip: Ip) -> Self {
        Self {
            id: ip.id,
            ip: ip.ip_address,
            hostname: ip.hostname,
            tenant_id: ip.tenant_id,
            pool: ip.pool,
            state: ip.state,
            previous_state: ip.previous_state,
            state_reason: ip.state_reason,
            state_changed_at: to_rfc3339(ip.state_changed_at),
            blacklist_status: ip.blacklist_status,
            warmup_plan_id: ip.warmup_plan_id,
            created_at: to_rfc3339(ip.created_at),
            updated_at: to_rfc3339(ip.updated_at),
        }
    }
}

/// Also accepts the seeds' shape: `{"ip", "domain", "status"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIp {
    /// IPv4 or IPv6.
    pub ip: String,
    /// The host name its PTR names and EHLO uses (`domain` is accepted too).
    #[serde(alias = "domain")]
    pub hostname: Option<String>,
    /// Admins may name a tenant, or leave the IP unassigned; users get their own.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub pool: Option<String>,
    /// warming (default), active or resting (`status` is accepted too).
    #[serde(alias = "status")]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIp {
    #[serde(alias = "domain")]
    pub hostname: Option<String>,
    pub pool: Option<String>,
    /// Admin only: move the IP to another tenant.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    pub to: String,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficRequest {
    #[serde(default)]
    pub sent: i64,
    #[serde(default)]
    pub bounced: i64,
    #[serde(default)]
    pub complained: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficOut {
    pub ip: IpOut,
    pub quota: Quota,
}

fn check_pool(pool: Option<&str>, errors: &mut ValidationErrors) {
    if let Some(pool) = pool {
        ee_core::tenant::validate_slug(pool, "pool", errors);
    }
}

/// A host name as stored: trimmed, without its final dot, lower case; refused unless
/// fully qualified.
fn hostname_of(hostname: Option<&str>, errors: &mut ValidationErrors) -> Option<String> {
    let hostname = hostname.map(|h| h.trim().trim_end_matches('.').to_lowercase());
    if hostname.as_deref().is_some_and(|h| !is_host_name(h)) {
        errors.add("hostname", "must be a fully qualified host name");
    }
    hostname
}

async fn tenant_exists(conn: &mut AnyConnection, tenant_id: &str) -> Result<(), AppError> {
    ee_store::tenants::get(conn, tenant_id)
        .await
        .map_err(AppError::from_store("tenant"))?;
    Ok(())
}

/// Registers a sending IP for `tenant_id` (or unassigned); a warming IP gets the
/// default warm-up plan.
pub async fn create(
    w: &mut Write,
    tenant_id: Option<&str>,
    input: CreateIp,
) -> Result<IpOut, AppError> {
    let mut errors = ValidationErrors::new();
    let address = normalize_ip(&input.ip);
    if address.is_none() {
        errors.add("ip", "must be an IPv4 or IPv6 address");
    }
    let hostname = hostname_of(input.hostname.as_deref(), &mut errors);
    check_pool(input.pool.as_deref(), &mut errors);
    let initial = match input.state.as_deref() {
        None => IpState::Warming,
        Some(text) => match IpState::parse(text) {
            Some(s) if IpState::INITIAL.contains(&s) => s,
            _ => {
                errors.add("state", "must be warming, active or resting for a new IP");
                IpState::Warming
            }
        },
    };
    errors.into_result()?;
    if let Some(tenant_id) = tenant_id {
        tenant_exists(&mut w.tx, tenant_id).await?;
    }
    let ip = ips::insert(
        &mut w.tx,
        NewIp {
            tenant_id,
            ip_address: &address.unwrap_or_default(),
            hostname: hostname.as_deref(),
            pool: input.pool.as_deref(),
            state: initial,
        },
        w.now,
    )
    .await?;
    let ip = if initial == IpState::Warming {
        let plan = infra::ensure_plan(&mut w.tx, &ip, None, w.now).await?;
        Ip {
            warmup_plan_id: Some(plan.id),
            ..ip
        }
    } else {
        ip
    };
    let out = IpOut::from(ip);
    w.created("ip.create", &out).await?;
    Ok(out)
}

/// Changes hostname, pool or tenant (the door checks that only an administrator moves
/// an IP to another tenant). The state changes only by transitions.
pub async fn update(w: &mut Write, id: &str, input: UpdateIp) -> Result<IpOut, AppError> {
    let mut ip: Ip = w.find(id).await?;
    let before = IpOut::from(ip.clone());
    let mut errors = ValidationErrors::new();
    let hostname = hostname_of(input.hostname.as_deref(), &mut errors);
    check_pool(input.pool.as_deref(), &mut errors);
    errors.into_result()?;
    if let Some(tenant_id) = input.tenant_id {
        tenant_exists(&mut w.tx, &tenant_id).await?;
        ip.tenant_id = Some(tenant_id);
    }
    if hostname.is_some() {
        ip.hostname = hostname;
    }
    if input.pool.is_some() {
        ip.pool = input.pool;
    }
    ips::update_details(&mut w.tx, &ip, w.now).await?;
    ip.updated_at = w.now;
    let out = IpOut::from(ip);
    w.changed("ip.update", &before, &out).await?;
    Ok(out)
}

/// Moves the IP along its state machine (an illegal move is refused with the allowed
/// ones), with what the move implies (`infra::transition`).
pub async fn transition(
    w: &mut Write,
    id: &str,
    input: &TransitionRequest,
) -> Result<IpOut, AppError> {
    let to = IpState::parse(&input.to).ok_or_else(|| {
        ValidationErrors::single(
            "to",
            "must be one of active, retiring, resting, warming, quarantined, blacklisted",
        )
    })?;
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 500) {
        return Err(ValidationErrors::single("reason", "must be at most 500 characters").into());
    }
    let ip: Ip = w.find(id).await?;
    let before = IpOut::from(ip.clone());
    let moved = infra::transition(&mut w.tx, &ip, to, reason, &w.caller.actor, w.now).await?;
    let out = IpOut::from(moved);
    w.changed("ip.transition", &before, &out).await?;
    Ok(out)
}

/// Adds to the IP's traffic of today; the warm-up safety rule may quarantine it, which is
/// recorded as the system's change in the same transaction.
pub async fn traffic(
    w: &mut Write,
    settings: &InfraSettings,
    id: &str,
    input: &TrafficRequest,
) -> Result<TrafficOut, AppError> {
    let ip: Ip = w.find(id).await?;
    let delta = Traffic {
        sent: input.sent,
        bounced: input.bounced,
        complained: input.complained,
    };
    let after = infra::record_traffic(&mut w.tx, &ip, delta, settings, w.now).await?;
    w.record(Change {
        action: "ip.traffic",
        resource_type: "ip",
        resource_id: Some(&ip.id),
        tenant_id: ip.tenant_id.as_deref(),
        before: None,
        after: serde_json::to_value(delta).ok(),
    })
    .await?;
    if after.state != ip.state {
        let change = Change {
            action: "ip.transition",
            resource_type: "ip",
            resource_id: Some(&ip.id),
            tenant_id: ip.tenant_id.as_deref(),
            before: serde_json::to_value(IpOut::from(ip.clone())).ok(),
            after: serde_json::to_value(IpOut::from(after.clone())).ok(),
        };
        w.record_by(Actor::system("warm-up safety check"), change)
            .await?;
    }
    let quota = infra::quota(&mut w.tx, &after, w.now).await?;
    Ok(TrafficOut {
        ip: after.into(),
        quota,
    })
}

impl Deletable for Ip {
    const DELETED: &'static str = "ip.delete";
    type Out = IpOut;

    async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
        ips::delete(conn, id).await
    }
}

crate::write::audited!(IpOut, "ip", optional);

/// The IPs the caller may see, by address, filtered: the filter's `scope` narrows the
/// caller's (another tenant than the caller's own sees none).
pub async fn list(read: &mut Read, filter: &IpFilter<'_>) -> Result<Vec<Ip>, AppError> {
    let (conn, own) = read.parts();
    let scope = match (own, filter.scope) {
        (Scope::All, asked) => asked,
        (own, Scope::All) => own,
        (own, asked) if own == asked => own,
        _ => return Ok(Vec::new()),
    };
    Ok(ips::list(conn, &IpFilter { scope, ..*filter }).await?)
}

/// Every state change of an IP the caller may see, oldest first.
pub async fn transitions(read: &mut Read, id: &str) -> Result<Vec<Transition>, AppError> {
    read.find::<Ip>(id).await?;
    Ok(ips::transitions(read.conn(), id).await?)
}
