//! DNS blacklist look-ups (RFC 5782): an IP is listed in a zone when
//! `<reversed ip>.<zone>` has an A record in 127.0.0.0/8; the TXT record says why.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::Resolver;

/// Seed 002's nine lists. AHBL closed in 2015 and answers every query as listed, so a
/// deployment should drop it; it is kept so that the default is the list the seed names.
pub const DEFAULT_ZONES: [(&str, &str); 9] = [
    ("Spamhaus ZEN", "zen.spamhaus.org"),
    ("SpamCop", "bl.spamcop.net"),
    ("SORBS", "dnsbl.sorbs.net"),
    ("Barracuda", "b.barracudacentral.org"),
    ("PSBL", "psbl.surriel.com"),
    ("UCEPROTECT", "dnsbl-1.uceprotect.net"),
    ("DroneBL", "dnsbl.dronebl.org"),
    ("Mailspike", "bl.mailspike.net"),
    ("AHBL", "dnsbl.ahbl.org"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub zone: String,
    pub listed: bool,
    /// The A records returned (e.g. 127.0.0.2).
    pub codes: Vec<String>,
    /// The TXT reason, when the list gives one.
    pub reason: Option<String>,
    /// Set when the list could not be asked (time-out, refusal): neither listed nor clean.
    pub error: Option<String>,
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

/// Checks an IP against every zone at once; results in the order of `zones`.
pub async fn check_all(resolver: &Resolver, ip: IpAddr, zones: &[String]) -> Vec<Listing> {
    let mut set = tokio::task::JoinSet::new();
    for (index, zone) in zones.iter().enumerate() {
        let (resolver, zone) = (resolver.clone(), zone.clone());
        set.spawn(async move { (index, check(&resolver, ip, &zone).await) });
    }
    let mut out: Vec<(usize, Listing)> = Vec::with_capacity(zones.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(done) = joined {
            out.push(done);
        }
    }
    out.sort_by_key(|(index, _)| *index);
    out.into_iter().map(|(_, listing)| listing).collect()
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
