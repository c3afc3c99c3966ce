//! DNS blacklist checks of the sending IPs: each list's answers recorded, a listed IP
//! moved to BLACKLISTED and back once delisted, a list failing its self-test alerted.

use ee_core::auth::Actor;
use ee_core::ip::{BlacklistStatus, IpState};
pub use ee_dns::dnsbl::Listing;
use ee_store::ips::{self, Ip};
use ee_store::{Scope, StoreError};
use serde::Serialize;

use crate::AppError;
use crate::infra::{InfraError, transition};
use crate::read::Read;

/// The blacklist check of one IP: every zone's answer is kept; a listed sending IP goes
/// to BLACKLISTED (standby) with an alert; once no list has it, it returns to the state it
/// had before. A check someone asked for (`caller`) is audited with its result, in the
/// transaction that records it.
pub async fn check_blacklists(
    services: &crate::Services,
    ip: &Ip,
    caller: Option<&crate::audit::Caller>,
    now: i64,
) -> Result<(Ip, Vec<Listing>), InfraError> {
    let address: std::net::IpAddr = ip
        .ip_address
        .parse()
        .map_err(|_| InfraError::Invalid(format!("{} is not an IP address", ip.ip_address)))?;
    let listings =
        ee_dns::dnsbl::check_all(&services.resolver, address, &services.dnsbl_zones).await;
    record_blacklist_check(services, ip, listings, caller, now).await
}

/// Stores the answers of a blacklist check and acts on them; a list that failed its
/// self-test raises an alert (merged with its repeats) and counts as unknown.
async fn record_blacklist_check(
    services: &crate::Services,
    ip: &Ip,
    listings: Vec<ee_dns::dnsbl::Listing>,
    caller: Option<&crate::audit::Caller>,
    now: i64,
) -> Result<(Ip, Vec<Listing>), InfraError> {
    let mut tx = services.db.begin().await?;
    for listing in listings.iter().filter(|l| l.misbehaving) {
        let message = format!(
            "{}: {}. Its answers are ignored until it passes again; remove it from \
             EE_DNSBL_ZONES if it has closed.",
            listing.zone,
            listing.error.as_deref().unwrap_or("failed its self-test")
        );
        crate::infra::alerts::raise(
            &mut tx,
            crate::infra::alerts::AlertSpec {
                tenant_id: None,
                cause: &format!("dnsbl_misbehaving:{}", listing.zone),
                severity: ee_core::alert::Severity::Warning,
                title: "A DNS blacklist failed its self-test",
                message: &message,
            },
            now,
        )
        .await?;
    }
    for listing in &listings {
        let details = serde_json::json!({ "codes": listing.codes, "reason": listing.reason, "error": listing.error });
        ips::add_blacklist_check(
            &mut tx,
            &ip.id,
            &listing.zone,
            listing.listed,
            &details.to_string(),
            now,
        )
        .await?;
    }
    let listed: Vec<&ee_dns::dnsbl::Listing> = listings.iter().filter(|l| l.listed).collect();
    let unanswered = listings.iter().any(|l| l.error.is_some());
    let mut current = ips::get(&mut tx, &ip.id, Scope::All).await?;
    let actor = Actor::system("blacklist check");
    if !listed.is_empty() {
        ips::set_blacklist_status(&mut tx, &ip.id, BlacklistStatus::Listed, now).await?;
        current.blacklist_status = BlacklistStatus::Listed;
        if current.state.sends() {
            let reason = format!(
                "listed by {}",
                listed
                    .iter()
                    .map(|l| match &l.reason {
                        Some(r) => format!("{} ({}: {r})", l.zone, l.codes.join(",")),
                        None => format!("{} ({})", l.zone, l.codes.join(",")),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            current = transition(
                &mut tx,
                &current,
                IpState::Blacklisted,
                Some(&reason),
                &actor,
                now,
            )
            .await?;
        }
    } else if !unanswered {
        ips::set_blacklist_status(&mut tx, &ip.id, BlacklistStatus::Clean, now).await?;
        current.blacklist_status = BlacklistStatus::Clean;
        if current.state == IpState::Blacklisted {
            let back = current
                .previous_state
                .filter(|s| IpState::Blacklisted.allowed_next().contains(s))
                .unwrap_or(IpState::Warming);
            current = transition(
                &mut tx,
                &current,
                back,
                Some("delisted: back to its previous state"),
                &actor,
                now,
            )
            .await?;
        }
    }
    if let Some(caller) = caller {
        let change = crate::audit::Change {
            action: "ip.blacklist_check",
            resource_type: "ip",
            resource_id: Some(&ip.id),
            tenant_id: ip.tenant_id.as_deref(),
            before: None,
            after: Some(serde_json::json!({"listed": !listed.is_empty(), "state": current.state})),
        };
        crate::write::Write::within(tx, caller.clone(), None, now)
            .commit(change)
            .await?;
    } else {
        tx.commit().await?;
    }
    Ok((current, listings))
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BlacklistRunReport {
    pub checked: u32,
    pub listed: Vec<String>,
}

/// The 4-hourly run over every IP.
pub async fn check_all_blacklists(
    services: &crate::Services,
    now: i64,
) -> Result<BlacklistRunReport, InfraError> {
    let mut conn = services.db.pool().acquire().await?;
    let all = ips::list_all(&mut conn).await?;
    drop(conn);
    let mut report = BlacklistRunReport::default();
    // Each list's self-test once for the whole run.
    let verdicts = ee_dns::dnsbl::verify(&services.resolver, &services.dnsbl_zones).await;
    for ip in all {
        let Ok(address) = ip.ip_address.parse::<std::net::IpAddr>() else {
            continue;
        };
        let listings = ee_dns::dnsbl::check_verified(
            &services.resolver,
            address,
            &services.dnsbl_zones,
            &verdicts,
        )
        .await;
        let (after, _) = record_blacklist_check(services, &ip, listings, None, now).await?;
        report.checked += 1;
        if after.blacklist_status == BlacklistStatus::Listed {
            report.listed.push(after.ip_address);
        }
    }
    Ok(report)
}

/// A blacklist check of an address we do not manage: answers only, nothing stored.
pub async fn check_address(services: &crate::Services, address: std::net::IpAddr) -> Vec<Listing> {
    ee_dns::dnsbl::check_all(&services.resolver, address, &services.dnsbl_zones).await
}

/// The IP with this (normalised) address, if it is one the caller manages: its own
/// tenant's, or for an administrator anyone's.
pub async fn managed(read: &mut Read, address: &str) -> Result<Option<Ip>, AppError> {
    let (conn, scope) = read.parts();
    match ips::get_by_address(conn, address).await {
        Ok(ip)
            if scope
                .tenant()
                .is_none_or(|own| ip.tenant_id.as_deref() == Some(own)) =>
        {
            Ok(Some(ip))
        }
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The recorded checks of an IP the caller may see, newest first: (zone, listed,
/// checked_at, details), a page of `limit` from `offset`.
pub async fn history(
    read: &mut Read,
    ip_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<(String, i64, i64, String)>, AppError> {
    read.find::<Ip>(ip_id).await?;
    Ok(ips::blacklist_history(read.conn(), ip_id, limit, offset).await?)
}
