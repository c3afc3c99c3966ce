//! SPF evaluation, RFC 7208 §4–6: `check_host()` against the DNS, with the limits of
//! §4.6.4 (10 look-up terms, 2 void look-ups, 10 MX and PTR names).

use std::net::IpAddr;

use ee_core::spf::{self, Directive, MacroContext, Mechanism, Qualifier};

use crate::{DnsError, Resolver, SpfVerdict};

/// The identity and state of one evaluation.
struct Evaluation<'a> {
    resolver: &'a Resolver,
    ip: IpAddr,
    sender_local: String,
    sender_domain: String,
    helo: String,
    lookups: u32,
    void_lookups: u32,
}

const MAX_LOOKUPS: u32 = 10;
const MAX_VOID: u32 = 2;
const MAX_NAMES: usize = 10;

/// Why evaluation stopped early.
enum Stop {
    Temp,
    Perm,
}

impl From<DnsError> for Stop {
    fn from(_: DnsError) -> Self {
        Stop::Temp
    }
}

/// Evaluates SPF for mail from `ip`: the MAIL FROM identity, or the HELO identity
/// when MAIL FROM is empty (bounces), as `postmaster@<helo>`.
pub async fn check(resolver: &Resolver, ip: IpAddr, helo: &str, mail_from: &str) -> SpfVerdict {
    // An IPv4-mapped IPv6 address is the IPv4 address (§5).
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (local, domain) = match mail_from.rsplit_once('@') {
        Some((local, domain)) if !mail_from.is_empty() => (
            if local.is_empty() {
                "postmaster"
            } else {
                local
            },
            domain,
        ),
        _ if mail_from.is_empty() => ("postmaster", helo),
        _ => ("postmaster", mail_from),
    };
    let domain = domain.trim_end_matches('.').to_owned();
    if !spf::is_valid_domain(&domain) {
        return SpfVerdict::None;
    }
    let mut evaluation = Evaluation {
        resolver,
        ip,
        sender_local: local.to_owned(),
        sender_domain: domain.clone(),
        helo: helo.to_owned(),
        lookups: 0,
        void_lookups: 0,
    };
    evaluation.check_host(&domain).await
}

impl Evaluation<'_> {
    fn check_host<'s>(
        &'s mut self,
        domain: &'s str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = SpfVerdict> + Send + 's>> {
        Box::pin(async move {
            if !spf::is_valid_domain(domain) {
                return SpfVerdict::None;
            }
            let records = match self.resolver.txt(domain).await {
                Ok(records) => records,
                Err(e) if e.is_absent() => return SpfVerdict::None,
                Err(_) => return SpfVerdict::TempError,
            };
            let spf_records: Vec<&String> =
                records.iter().filter(|r| spf::is_spf_record(r)).collect();
            let text = match spf_records.as_slice() {
                [] => return SpfVerdict::None,
                [one] => (*one).clone(),
                _ => return SpfVerdict::PermError,
            };
            let record = match spf::parse_record(&text) {
                Ok(record) => record,
                Err(_) => return SpfVerdict::PermError,
            };
            match self.evaluate(domain, &record).await {
                Ok(verdict) => verdict,
                Err(Stop::Temp) => SpfVerdict::TempError,
                Err(Stop::Perm) => SpfVerdict::PermError,
            }
        })
    }

    async fn evaluate(&mut self, domain: &str, record: &spf::Record) -> Result<SpfVerdict, Stop> {
        for Directive {
            qualifier,
            mechanism,
        } in &record.directives
        {
            if mechanism.does_lookup() {
                self.count_lookup()?;
            }
            if self.matches(domain, mechanism).await? {
                return Ok(match qualifier {
                    Qualifier::Pass => SpfVerdict::Pass,
                    Qualifier::Fail => SpfVerdict::Fail,
                    Qualifier::SoftFail => SpfVerdict::SoftFail,
                    Qualifier::Neutral => SpfVerdict::Neutral,
                });
            }
        }
        if let Some(redirect) = &record.redirect {
            self.count_lookup()?;
            let target = self.expand_domain(redirect, domain).await?;
            return match self.check_host(&target).await {
                SpfVerdict::None => Err(Stop::Perm),
                other => Ok(other),
            };
        }
        Ok(SpfVerdict::Neutral)
    }

    fn count_lookup(&mut self) -> Result<(), Stop> {
        self.lookups += 1;
        if self.lookups > MAX_LOOKUPS {
            Err(Stop::Perm)
        } else {
            Ok(())
        }
    }

    fn count_void(&mut self) -> Result<(), Stop> {
        self.void_lookups += 1;
        if self.void_lookups > MAX_VOID {
            Err(Stop::Perm)
        } else {
            Ok(())
        }
    }

    async fn expand_domain(&self, spec: &str, domain: &str) -> Result<String, Stop> {
        let validated = if spf::uses_p_macro(spec) {
            self.validated_name(domain).await
        } else {
            None
        };
        let ctx = MacroContext {
            ip: self.ip,
            sender_local: &self.sender_local,
            sender_domain: &self.sender_domain,
            domain,
            helo: &self.helo,
            validated_name: validated.as_deref(),
            receiver: "unknown",
            timestamp: 0,
        };
        let expanded = spf::expand(spec, &ctx, false).map_err(|_| Stop::Perm)?;
        Ok(spf::shorten_domain(&expanded))
    }

    /// Addresses of a name in the client's family; absent names count as void look-ups.
    async fn addresses_of(&mut self, name: &str, count_void: bool) -> Result<Vec<IpAddr>, Stop> {
        if !spf::is_valid_domain(name) {
            if count_void {
                self.count_void()?;
            }
            return Ok(Vec::new());
        }
        let result: Result<Vec<IpAddr>, DnsError> = if self.ip.is_ipv4() {
            self.resolver
                .ipv4(name)
                .await
                .map(|v| v.into_iter().map(IpAddr::V4).collect())
        } else {
            self.resolver
                .ipv6(name)
                .await
                .map(|v| v.into_iter().map(IpAddr::V6).collect())
        };
        match result {
            Ok(addrs) if !addrs.is_empty() => Ok(addrs),
            Ok(_) => {
                if count_void {
                    self.count_void()?;
                }
                Ok(Vec::new())
            }
            Err(e) if e.is_absent() => {
                if count_void {
                    self.count_void()?;
                }
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn in_network(&self, addr: IpAddr, cidr4: u8, cidr6: u8) -> bool {
        match (self.ip, addr) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => {
                let mask = if cidr4 == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(cidr4))
                };
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(ip), IpAddr::V6(net)) => {
                let mask = if cidr6 == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(cidr6))
                };
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }

    /// The IP's PTR names that resolve back to it (at most 10 are tried).
    async fn validated_names(&self) -> Vec<String> {
        let Ok(names) = self.resolver.ptr(self.ip).await else {
            return Vec::new();
        };
        let mut validated = Vec::new();
        for name in names.into_iter().take(MAX_NAMES) {
            let addrs: Result<Vec<IpAddr>, _> = if self.ip.is_ipv4() {
                self.resolver
                    .ipv4(&name)
                    .await
                    .map(|v| v.into_iter().map(IpAddr::V4).collect())
            } else {
                self.resolver
                    .ipv6(&name)
                    .await
                    .map(|v| v.into_iter().map(IpAddr::V6).collect())
            };
            if addrs.is_ok_and(|a| a.contains(&self.ip)) {
                validated.push(name);
            }
        }
        validated
    }

    /// `%{p}`: a validated name, preferably the domain or one of its sub-domains.
    async fn validated_name(&self, domain: &str) -> Option<String> {
        let names = self.validated_names().await;
        names
            .iter()
            .find(|n| is_same_or_sub(n, domain))
            .or(names.first())
            .cloned()
    }

    async fn matches(&mut self, domain: &str, mechanism: &Mechanism) -> Result<bool, Stop> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4 { addr, cidr } => Ok(self.in_network(IpAddr::V4(*addr), *cidr, 128)),
            Mechanism::Ip6 { addr, cidr } => Ok(self.in_network(IpAddr::V6(*addr), 32, *cidr)),
            Mechanism::A {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let target = match spec {
                    Some(spec) => self.expand_domain(spec, domain).await?,
                    None => domain.to_owned(),
                };
                let addrs = self.addresses_of(&target, true).await?;
                Ok(addrs
                    .into_iter()
                    .any(|a| self.in_network(a, *cidr4, *cidr6)))
            }
            Mechanism::Mx {
                domain: spec,
                cidr4,
                cidr6,
            } => {
                let target = match spec {
                    Some(spec) => self.expand_domain(spec, domain).await?,
                    None => domain.to_owned(),
                };
                let exchanges = match self.resolver.mx(&target).await {
                    Ok(mx) => mx,
                    Err(e) if e.is_absent() => {
                        self.count_void()?;
                        return Ok(false);
                    }
                    Err(e) => return Err(e.into()),
                };
                if exchanges.is_empty() {
                    self.count_void()?;
                    return Ok(false);
                }
                if exchanges.len() > MAX_NAMES {
                    return Err(Stop::Perm);
                }
                for (_, host) in exchanges {
                    let addrs = self.addresses_of(&host, false).await?;
                    if addrs
                        .into_iter()
                        .any(|a| self.in_network(a, *cidr4, *cidr6))
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let target = match spec {
                    Some(spec) => self.expand_domain(spec, domain).await?,
                    None => domain.to_owned(),
                };
                match self.resolver.ptr(self.ip).await {
                    Ok(names) if names.is_empty() => self.count_void()?,
                    Err(e) if e.is_absent() => self.count_void()?,
                    _ => {}
                }
                Ok(self
                    .validated_names()
                    .await
                    .iter()
                    .any(|n| is_same_or_sub(n, &target)))
            }
            Mechanism::Exists(spec) => {
                let target = self.expand_domain(spec, domain).await?;
                if !spf::is_valid_domain(&target) {
                    self.count_void()?;
                    return Ok(false);
                }
                match self.resolver.ipv4(&target).await {
                    Ok(addrs) if !addrs.is_empty() => Ok(true),
                    Ok(_) => {
                        self.count_void()?;
                        Ok(false)
                    }
                    Err(e) if e.is_absent() => {
                        self.count_void()?;
                        Ok(false)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Mechanism::Include(spec) => {
                let target = self.expand_domain(spec, domain).await?;
                match self.check_host(&target).await {
                    SpfVerdict::Pass => Ok(true),
                    SpfVerdict::Fail | SpfVerdict::SoftFail | SpfVerdict::Neutral => Ok(false),
                    SpfVerdict::TempError => Err(Stop::Temp),
                    SpfVerdict::PermError | SpfVerdict::None => Err(Stop::Perm),
                }
            }
        }
    }
}

fn is_same_or_sub(name: &str, domain: &str) -> bool {
    let (name, domain) = (
        name.trim_end_matches('.').to_ascii_lowercase(),
        domain.trim_end_matches('.').to_ascii_lowercase(),
    );
    name == domain || name.ends_with(&format!(".{domain}"))
}
