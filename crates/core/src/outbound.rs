//! Which addresses a connection we open on a tenant's behalf may reach. Tenants name
//! hosts (a MailWizz instance's API, a relay; later bounce-forwarding URLs): without a
//! rule, a tenant's key could make the server call its own loopback services or a
//! cloud's metadata address and read the answer (server-side request forgery). Only
//! public unicast addresses are reachable, plus the ranges the operator allows
//! (`EE_OUTBOUND_ALLOW`, e.g. the PowerMTA host on a private network).
//!
//! A host is checked when it is saved (an address literal, or a name that always means
//! this machine) and again when it is resolved, right before connecting, so a name that
//! later resolves to a private address is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The ranges allowed on top of the public address space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allowed: Vec<IpNet>,
}

/// Why a host or address may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{host}` is {reason}; connections to it are refused unless the operator allows its range (EE_OUTBOUND_ALLOW)"
)]
pub struct Refused {
    pub host: String,
    pub reason: &'static str,
}

impl OutboundPolicy {
    /// Public addresses only.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Public addresses and these ranges.
    pub fn allowing(ranges: Vec<IpNet>) -> Self {
        Self { allowed: ranges }
    }

    /// A comma-separated list of CIDR ranges or single addresses.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("`{item}` is not an address or a CIDR range"))?,
            };
            allowed.push(net.trunc());
        }
        Ok(Self { allowed })
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// May a connection go to `ip`?
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        match special_range(ip) {
            Some(reason) if !self.allowed.iter().any(|net| net.contains(&ip)) => Err(Refused {
                host: ip.to_string(),
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// The check when a host is saved: an address literal (bracketed or not) is checked
    /// now, and names that always mean this machine (`localhost`, `*.localhost`) are
    /// refused; any other name is checked when resolved.
    pub fn check_host(&self, host: &str) -> Result<(), Refused> {
        let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_ip(ip).map_err(|e| Refused {
                host: host.to_owned(),
                ..e
            });
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
            return self.check_ip(loopback).map_err(|e| Refused {
                host: host.to_owned(),
                ..e
            });
        }
        Ok(())
    }
}

/// What kind of non-public address `ip` is, if it is one.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return special_v4(v4);
            }
            special_v6(v6)
        }
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol address")
    } else {
        None
    }
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-compatible (::a.b.c.d) and NAT64 forms reach an IPv4 address.
        special_v4(v4)
    } else if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., c, d] = ip.segments();
        special_v4(Ipv4Addr::from((u32::from(c) << 16) | u32::from(d)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &OutboundPolicy, ip: &str) -> bool {
        policy.check_ip(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn internal_ranges_are_refused_public_ones_not() {
        let p = OutboundPolicy::public_only();
        for ip in [
            "127.0.0.1",
            "127.5.6.7",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(refused(&p, ip), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:4860::8888",
            "46.62.168.55",
        ] {
            assert!(!refused(&p, ip), "{ip} is public");
        }
    }

    #[test]
    fn the_operator_allows_ranges() {
        let p = OutboundPolicy::parse("127.0.0.0/8, 10.0.0.5,fd00::/8").unwrap();
        assert!(!refused(&p, "127.0.0.1") && !refused(&p, "10.0.0.5") && !refused(&p, "fd00::2"));
        assert!(refused(&p, "10.0.0.6") && refused(&p, "169.254.169.254"));
        assert!(OutboundPolicy::parse("nonsense").is_err());
        assert!(OutboundPolicy::parse("").unwrap().allowed().is_empty());
    }

    #[test]
    fn hosts_are_checked_when_saved() {
        let p = OutboundPolicy::public_only();
        for host in [
            "127.0.0.1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "169.254.169.254",
        ] {
            let e = p.check_host(host).unwrap_err();
            assert_eq!(e.host, host);
            assert!(e.to_string().contains("EE_OUTBOUND_ALLOW"));
        }
        for host in ["news.example.com", "46.62.168.55", "localhost.example.com"] {
            assert!(p.check_host(host).is_ok(), "{host}");
        }
        let open = OutboundPolicy::parse("127.0.0.0/8").unwrap();
        assert!(open.check_host("localhost").is_ok());
    }
}
