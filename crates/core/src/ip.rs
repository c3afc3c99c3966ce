//! Sending IPs: their life cycle.
//!
//! The normal cycle is ACTIVE → RETIRING → RESTING → WARMING → ACTIVE. From any state
//! that sends (ACTIVE, WARMING, RETIRING) an IP can be put in QUARANTINED (its own
//! bounce or complaint rates were too high) or BLACKLISTED (standby while a DNSBL lists
//! it). A quarantined IP comes back through WARMING; a blacklisted one returns to the
//! state it had before, or is sent to rest.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpState {
    Active,
    Retiring,
    Resting,
    Warming,
    Quarantined,
    Blacklisted,
}

impl IpState {
    pub const ALL: [IpState; 6] = [
        IpState::Active,
        IpState::Retiring,
        IpState::Resting,
        IpState::Warming,
        IpState::Quarantined,
        IpState::Blacklisted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IpState::Active => "active",
            IpState::Retiring => "retiring",
            IpState::Resting => "resting",
            IpState::Warming => "warming",
            IpState::Quarantined => "quarantined",
            IpState::Blacklisted => "blacklisted",
        }
    }

    /// Accepts any case (the seeds' clients send `"warming"`, PowerMTA-era scripts `"WARMING"`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// States in which the IP carries mail. RETIRING still drains its last traffic.
    pub fn sends(self) -> bool {
        matches!(self, IpState::Active | IpState::Warming | IpState::Retiring)
    }

    /// States the delivery pipeline may pick an IP in for new messages.
    pub fn selectable(self) -> bool {
        matches!(self, IpState::Active | IpState::Warming)
    }

    /// The states this one may move to.
    pub fn allowed_next(self) -> &'static [IpState] {
        use IpState::*;
        match self {
            Active => &[Retiring, Quarantined, Blacklisted],
            Retiring => &[Resting, Active, Quarantined, Blacklisted],
            Resting => &[Warming],
            Warming => &[Active, Quarantined, Blacklisted],
            Quarantined => &[Warming, Resting],
            Blacklisted => &[Active, Warming, Retiring, Resting],
        }
    }

    /// States an IP may be created in.
    pub const INITIAL: [IpState; 3] = [IpState::Warming, IpState::Active, IpState::Resting];
}

impl TryFrom<String> for IpState {
    type Error = crate::names::UnknownName;

    /// A stored state (the database holds the names `as_str` writes).
    fn try_from(s: String) -> Result<Self, crate::names::UnknownName> {
        Self::parse(&s).ok_or(crate::names::UnknownName {
            of: "IP state",
            name: s,
        })
    }
}

/// What the last blacklist check found for an IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlacklistStatus {
    /// No list that answered names it (or it was never checked).
    Clean,
    /// At least one list names it.
    Listed,
}

impl BlacklistStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BlacklistStatus::Clean => "clean",
            BlacklistStatus::Listed => "listed",
        }
    }
}

impl TryFrom<String> for BlacklistStatus {
    type Error = crate::names::UnknownName;

    fn try_from(s: String) -> Result<Self, crate::names::UnknownName> {
        match s.as_str() {
            "clean" => Ok(BlacklistStatus::Clean),
            "listed" => Ok(BlacklistStatus::Listed),
            _ => Err(crate::names::UnknownName {
                of: "blacklist status",
                name: s,
            }),
        }
    }
}

impl std::fmt::Display for IpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an IP cannot go from {from} to {to}; allowed: {}", allowed_list(*.from))]
pub struct IllegalTransition {
    pub from: IpState,
    pub to: IpState,
}

fn allowed_list(from: IpState) -> String {
    from.allowed_next()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one move of the state machine.
pub fn check_transition(from: IpState, to: IpState) -> Result<(), IllegalTransition> {
    if from.allowed_next().contains(&to) {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// The canonical text of an address (IPv6 compressed, IPv4-mapped kept as IPv6).
pub fn normalize_ip(text: &str) -> Option<String> {
    text.trim().parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// The name a PTR record for `ip` lives at (`4.3.2.1.in-addr.arpa`, nibbles for IPv6).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// The name to look up in a DNSBL zone for `ip` (the reverse labels, then the zone).
pub fn dnsbl_query_name(ip: IpAddr, zone: &str) -> String {
    let reverse = reverse_name(ip);
    let labels = reverse
        .trim_end_matches(".in-addr.arpa")
        .trim_end_matches(".ip6.arpa");
    format!("{labels}.{}", zone.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_cycle_is_allowed() {
        use IpState::*;
        for (from, to) in [
            (Active, Retiring),
            (Retiring, Resting),
            (Resting, Warming),
            (Warming, Active),
        ] {
            assert_eq!(check_transition(from, to), Ok(()), "{from} → {to}");
        }
    }

    #[test]
    fn quarantine_and_blacklist_from_every_sending_state() {
        for from in IpState::ALL.into_iter().filter(|s| s.sends()) {
            assert!(
                check_transition(from, IpState::Quarantined).is_ok(),
                "{from}"
            );
            assert!(
                check_transition(from, IpState::Blacklisted).is_ok(),
                "{from}"
            );
        }
        assert!(check_transition(IpState::Resting, IpState::Quarantined).is_err());
    }

    #[test]
    fn illegal_moves_name_the_allowed_ones() {
        let err = check_transition(IpState::Resting, IpState::Active).unwrap_err();
        assert_eq!(
            err.to_string(),
            "an IP cannot go from resting to active; allowed: warming"
        );
        assert!(
            check_transition(IpState::Quarantined, IpState::Active).is_err(),
            "quarantine comes back through warming"
        );
        assert!(check_transition(IpState::Active, IpState::Active).is_err());
    }

    #[test]
    fn parsing_and_sending_states() {
        assert_eq!(IpState::parse("WARMING"), Some(IpState::Warming));
        assert_eq!(IpState::parse(" active "), Some(IpState::Active));
        assert_eq!(IpState::parse("standby"), None);
        assert!(IpState::Retiring.sends() && !IpState::Retiring.selectable());
        assert!(!IpState::Quarantined.sends() && !IpState::Resting.sends());
    }

    #[test]
    fn addresses_and_reverse_names() {
        assert_eq!(normalize_ip(" 192.0.2.10 ").as_deref(), Some("192.0.2.10"));
        assert_eq!(
            normalize_ip("2001:DB8:0:0::1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(normalize_ip("192.0.2.300"), None);
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert_eq!(
            dnsbl_query_name("127.0.0.2".parse().unwrap(), "zen.spamhaus.org."),
            "2.0.0.127.zen.spamhaus.org"
        );
    }
}
