//! DNS blacklist look-ups (RFC 5782): an IP is listed in a zone when
//! `<reversed ip>.<zone>` has an A record in 127.0.0.0/8; the TXT record says why.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::Resolver;

/// Seed 002's lists but AHBL: AHBL closed in 2015 and answers every query as listed, so on
/// real DNS it would mark every IP blacklisted and stop all sending. Any list is also
/// checked with its test addresses before its answers are trusted (`verify`).
pub const DEFAULT_ZONES: [(&str, &str); 8] = [
    ("Spamhaus ZEN", "zen.spamhaus.org"),
    ("SpamCop", "bl.spamcop.net"),
    ("SORBS", "dnsbl.sorbs.net"),
    ("Barracuda", "b.barracudacentral.org"),
    ("PSBL", "psbl.surriel.com"),
    ("UCEPROTECT", "dnsbl-1.uceprotect.net"),
    ("DroneBL", "dnsbl.dronebl.org"),
    ("Mailspike", "bl.mailspike.net"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub zone: String,
    pub listed: bool,
    /// The A records returned (e.g. 127.0.0.2).
    pub codes: Vec<String>,
    /// The TXT reason, when the list gives one.
    pub reason: Option<String>,
    /// Set when the list could not be asked (time-out, refusal) or failed its self-test:
    /// neither listed nor clean.
    pub error: Option<String>,
    /// The list failed its self-test (RFC 5782 §5): it lists the clean test address
    /// 127.0.0.1, or does not list 127.0.0.2. Its answer is not trusted.
    pub misbehaving: bool,
}

/// Answers in 127.255.255.0/24 are Spamhaus's "your query was refused" codes, not listings.
fn is_listing_code(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 127 && !(o[1] == 255 && o[2] == 255)
}

pub async fn check(resolver: &Resolver, ip: IpAddr, zone: &str) -> Listing {
    let name = ee_core::ip::dnsbl_query_name(ip, zone);
    let mut listing = Listing {
        zone: zone.to_owned(),
        listed: false,
        codes: Vec::new(),
        reason: None,
        error: None,
        misbehaving: false,
    };
    match resolver.ipv4(&name).await {
        Ok(codes) => {
            listing.codes = codes.iter().map(Ipv4Addr::to_string).collect();
            if codes.iter().any(|c| is_listing_code(*c)) {
                listing.listed = true;
                listing.reason = resolver
                    .txt(&name)
                    .await
                    .ok()
                    .map(|t| t.join(" "))
                    .filter(|t| !t.is_empty());
            } else if !codes.is_empty() {
                listing.error = Some(format!(
                    "the list refused the query ({})",
                    listing.codes.join(", ")
                ));
            }
        }
        Err(e) if e.is_absent() => {}
        Err(e) => listing.error = Some(e.to_string()),
    }
    listing
}

/// The outcome of a list's self-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfTest {
    Passed,
    /// The list answers wrongly: its answers are not trusted, and an operator should
    /// hear of it.
    Misbehaving(String),
    /// The list could not be asked (time-out, refusal): its answers are unknown.
    Unreachable(String),
}

/// A list's self-test (RFC 5782 §5): it must list 127.0.0.2 and must not list 127.0.0.1.
pub async fn self_test(resolver: &Resolver, zone: &str) -> SelfTest {
    let clean = check(resolver, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), zone).await;
    if clean.listed {
        return SelfTest::Misbehaving(format!(
            "lists the clean test address 127.0.0.1 ({}): it is closed or misbehaves",
            clean.codes.join(",")
        ));
    }
    let listed = check(resolver, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), zone).await;
    match (&clean.error, &listed.error, listed.listed) {
        (Some(e), _, _) | (None, Some(e), _) => SelfTest::Unreachable(e.clone()),
        (None, None, false) => {
            SelfTest::Misbehaving("does not list its test address 127.0.0.2".to_owned())
        }
        (None, None, true) => SelfTest::Passed,
    }
}

/// The self-test of each zone, at once; in the order of `zones`.
pub async fn verify(resolver: &Resolver, zones: &[String]) -> Vec<SelfTest> {
    let mut set = tokio::task::JoinSet::new();
    for (index, zone) in zones.iter().enumerate() {
        let (resolver, zone) = (resolver.clone(), zone.clone());
        set.spawn(async move { (index, self_test(&resolver, &zone).await) });
    }
    let mut out =
        vec![SelfTest::Unreachable("the self-test did not finish".to_owned()); zones.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((index, verdict)) = joined {
            out[index] = verdict;
        }
    }
    out
}

/// Checks an IP against every zone at once; results in the order of `zones`. A zone whose
/// self-test did not pass (`verdicts`, from `verify`) answers unknown.
pub async fn check_verified(
    resolver: &Resolver,
    ip: IpAddr,
    zones: &[String],
    verdicts: &[SelfTest],
) -> Vec<Listing> {
    let mut set = tokio::task::JoinSet::new();
    for (index, zone) in zones.iter().enumerate() {
        if verdicts.get(index).is_some_and(|v| *v != SelfTest::Passed) {
            continue;
        }
        let (resolver, zone) = (resolver.clone(), zone.clone());
        set.spawn(async move { (index, check(&resolver, ip, &zone).await) });
    }
    let mut out: Vec<Option<Listing>> = vec![None; zones.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((index, listing)) = joined {
            out[index] = Some(listing);
        }
    }
    zones
        .iter()
        .zip(out)
        .enumerate()
        .map(
            |(index, (zone, listing))| match (listing, verdicts.get(index)) {
                (Some(listing), _) => listing,
                (None, verdict) => Listing {
                    zone: zone.clone(),
                    listed: false,
                    codes: Vec::new(),
                    reason: None,
                    error: Some(match verdict {
                        Some(SelfTest::Misbehaving(why)) => format!("not trusted: the list {why}"),
                        Some(SelfTest::Unreachable(why)) => why.clone(),
                        _ => "the check did not finish".to_owned(),
                    }),
                    misbehaving: matches!(verdict, Some(SelfTest::Misbehaving(_))),
                },
            },
        )
        .collect()
}

/// Self-tests every zone, then checks the IP against those that passed.
pub async fn check_all(resolver: &Resolver, ip: IpAddr, zones: &[String]) -> Vec<Listing> {
    let verdicts = verify(resolver, zones).await;
    check_verified(resolver, ip, zones, &verdicts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_are_not_listings() {
        assert!(is_listing_code("127.0.0.2".parse().unwrap()));
        assert!(is_listing_code("127.0.0.10".parse().unwrap()));
        assert!(!is_listing_code("127.255.255.254".parse().unwrap()));
        assert!(!is_listing_code("10.0.0.1".parse().unwrap()));
    }
}
