//! Who a request comes from behind reverse proxies. From a peer we trust (a proxy of ours,
//! loopback by default), the client is the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy: entries further left were written by whoever the proxies were
//! talking to, so anybody could have put them there. From any other peer the header is
//! ignored: the peer is the client.

use std::net::IpAddr;

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl Default for TrustedProxies {
    /// Loopback: a proxy on this machine (the shipped nginx site).
    fn default() -> Self {
        Self(vec![
            IpNet::V4(ipnet::Ipv4Net::new_assert(
                std::net::Ipv4Addr::new(127, 0, 0, 0),
                8,
            )),
            IpNet::V6(ipnet::Ipv6Net::new_assert(
                std::net::Ipv6Addr::LOCALHOST,
                128,
            )),
        ])
    }
}

/// The most entries of an `X-Forwarded-For` chain read.
const MAX_HOPS: usize = 32;

impl TrustedProxies {
    /// Comma-separated addresses or networks (`127.0.0.1, 10.0.0.0/8, ::1`); `none` trusts
    /// no proxy; empty is the default (loopback).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        if text.eq_ignore_ascii_case("none") {
            return Ok(Self(Vec::new()));
        }
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{p:?} is not an IP address or network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For` values (in
    /// the order the headers came).
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev().take(MAX_HOPS) {
            let Some(ip) = parse_entry(entry) else {
                // Garbage where an address should be: the last hop we could read says
                // who handed it to us.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// `203.0.113.7`, `[2001:db8::1]:443`, `203.0.113.7:51000`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = entry.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    None
}

/// An IPv4 address mapped into IPv6 (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn from_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        // nginx on loopback appended the address it saw.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), ["203.0.113.77"]),
            ip("203.0.113.77")
        );
        // A client's own forged entry is left of what our proxy appended: ignored.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), ["198.51.100.1, 203.0.113.77"]),
            ip("203.0.113.77")
        );
        // Two proxies of ours in a row.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), ["198.51.100.1", "203.0.113.77, 10.1.2.3"]),
            ip("203.0.113.77")
        );
        // Only proxies: the left-most.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), ["10.0.0.9"]),
            ip("10.0.0.9")
        );
        // No header: the proxy itself.
        assert_eq!(trusted.client(ip("127.0.0.1"), []), ip("127.0.0.1"));
        // Garbage: the last hop read.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), ["198.51.100.1, junk, 10.1.2.3"]),
            ip("10.1.2.3")
        );
        assert_eq!(
            trusted.client(ip("127.0.0.1"), ["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn from_any_other_peer_the_header_is_ignored() {
        let trusted = TrustedProxies::default();
        assert_eq!(
            trusted.client(ip("203.0.113.5"), ["198.51.100.1"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), ["198.51.100.1"]),
            ip("198.51.100.1")
        );
        let none = TrustedProxies::parse("none").unwrap();
        assert_eq!(
            none.client(ip("127.0.0.1"), ["198.51.100.1"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_bad_list_is_refused_with_the_entry() {
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, nginx"),
            Err("\"nginx\" is not an IP address or network".into())
        );
        assert_eq!(TrustedProxies::parse(""), Ok(TrustedProxies::default()));
    }
}
