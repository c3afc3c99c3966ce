use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::Name;
use hickory_resolver::proto::rr::RData;
use serde::Serialize;

/// Where queries go and how patiently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSettings {
    /// Name servers (UDP, then TCP for truncated answers); the system's when empty.
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolverSettings {
    /// Parses `EE_DNS_SERVERS`: comma-separated `ip` or `ip:port`.
    pub fn parse_servers(text: &str) -> Result<Vec<SocketAddr>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| format!("{s:?} is not an address or address:port"))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN).
    #[error("{0} does not exist")]
    NxDomain(String),
    /// The name exists but has no record of the type asked.
    #[error("{0} has no such record")]
    NoRecords(String),
    /// Time-out, SERVFAIL, refused, malformed answer…: try again later.
    #[error("DNS lookup of {name} failed: {reason}")]
    Failed { name: String, reason: String },
    #[error("{0:?} is not a valid DNS name")]
    BadName(String),
}

impl DnsError {
    /// No data, as opposed to a lookup that could not be done.
    pub fn is_absent(&self) -> bool {
        matches!(self, DnsError::NxDomain(_) | DnsError::NoRecords(_))
    }
}

/// The SPF result of one identity (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfVerdict {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl SpfVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            SpfVerdict::Pass => "pass",
            SpfVerdict::Fail => "fail",
            SpfVerdict::SoftFail => "softfail",
            SpfVerdict::Neutral => "neutral",
            SpfVerdict::None => "none",
            SpfVerdict::TempError => "temperror",
            SpfVerdict::PermError => "permerror",
        }
    }
}

/// A resolver on configurable name servers, with the look-ups the checks need.
#[derive(Clone)]
pub struct Resolver {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Resolver {
    pub fn new(settings: &ResolverSettings) -> Result<Self, String> {
        let (config, mut options) = if settings.servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
        } else {
            let servers = settings
                .servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    server.connections = vec![udp, tcp];
                    server
                })
                .collect();
            (
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        };
        options.timeout = settings.timeout;
        options.attempts = settings.attempts.max(1);
        // Checks must see the DNS as it is now, not as it was at the last check.
        options.cache_size = 0;
        options.ndots = 0;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { resolver })
    }

    fn name(text: &str) -> Result<Name, DnsError> {
        let fqdn = if text.ends_with('.') {
            text.to_owned()
        } else {
            format!("{text}.")
        };
        let plain = fqdn
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        let parsed = if plain {
            Name::from_str_relaxed(&fqdn)
        } else {
            Err(hickory_resolver::proto::ProtoError::from(
                "unusual characters",
            ))
        };
        parsed
            .or_else(|_| {
                // SPF domain-specs may hold any visible character (`foo:bar/baz.example.com`).
                let labels: Vec<&[u8]> = text
                    .trim_end_matches('.')
                    .split('.')
                    .map(str::as_bytes)
                    .collect();
                Name::from_labels(labels).map(|mut n| {
                    n.set_fqdn(true);
                    n
                })
            })
            .map_err(|_| DnsError::BadName(text.to_owned()))
    }

    fn error(name: &str, e: NetError) -> DnsError {
        if e.is_nx_domain() {
            DnsError::NxDomain(name.to_owned())
        } else if e.is_no_records_found() {
            DnsError::NoRecords(name.to_owned())
        } else {
            DnsError::Failed {
                name: name.to_owned(),
                reason: e.to_string(),
            }
        }
    }

    /// TXT records, each record's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .resolver
            .txt_lookup(Self::name(name)?)
            .await
            .map_err(|e| Self::error(name, e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The id of a domain's MTA-STS policy (RFC 8461 §3.1: `_mta-sts.<domain>` TXT
    /// `v=STSv1; id=…`, read with mail-auth); `None` when it publishes none (or several).
    pub async fn mta_sts_id(&self, domain: &str) -> Result<Option<String>, DnsError> {
        use mail_auth::common::parse::TxtRecordParser;
        let name = format!("_mta-sts.{}", domain.trim_end_matches('.'));
        let records = match self.txt(&name).await {
            Ok(records) => records,
            Err(DnsError::NxDomain(_) | DnsError::NoRecords(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let ids: Vec<String> = records
            .iter()
            .filter(|r| r.trim_start().starts_with("v=STSv1"))
            .filter_map(|r| mail_auth::mta_sts::MtaSts::parse(r.as_bytes()).ok())
            .map(|p| p.id)
            .collect();
        // RFC 8461 §3.1: more than one record is as none.
        Ok(match ids.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        })
    }

    /// Where a domain wants its SMTP TLS reports (RFC 8460 §3: the `_smtp._tls` TXT
    /// record, read by mail-auth), at most `MAX_DESTINATIONS`; `None` without a record
    /// (or with more than one, which is as none).
    pub async fn tls_rpt(
        &self,
        domain: &str,
    ) -> Result<Option<Vec<ee_core::tls_rpt::Destination>>, DnsError> {
        use ee_core::tls_rpt::{Destination, MAX_DESTINATIONS};
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::mta_sts::{ReportUri, TlsRpt};
        let name = format!("_smtp._tls.{}", domain.trim_end_matches('.'));
        let records = match self.txt(&name).await {
            Ok(records) => records,
            Err(DnsError::NxDomain(_) | DnsError::NoRecords(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let found: Vec<TlsRpt> = records
            .iter()
            .filter(|r| r.trim_start().starts_with("v=TLSRPTv1"))
            .filter_map(|r| TlsRpt::parse(r.as_bytes()).ok())
            .collect();
        let [one] = found.as_slice() else {
            return Ok(None);
        };
        let destinations: Vec<Destination> = one
            .rua
            .iter()
            .filter_map(|uri| match uri {
                ReportUri::Mail(address) => Some(Destination::Mail(address.clone())),
                ReportUri::Http(url) if url.starts_with("https://") => {
                    Some(Destination::Https(url.clone()))
                }
                // RFC 8460 §3: only HTTPS.
                ReportUri::Http(_) => None,
            })
            .take(MAX_DESTINATIONS)
            .collect();
        Ok(Some(destinations).filter(|d| !d.is_empty()))
    }

    /// MX records as (preference, exchange without the final dot), by preference.
    pub async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, DnsError> {
        let lookup = self
            .resolver
            .mx_lookup(Self::name(name)?)
            .await
            .map_err(|e| Self::error(name, e))?;
        let mut out: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, name_text(&mx.exchange))),
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// A and AAAA addresses of a name.
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let fqdn = Self::name(name)?;
        let v4 = self.resolver.ipv4_lookup(fqdn.clone()).await;
        let v6 = self.resolver.ipv6_lookup(fqdn).await;
        let mut out = Vec::new();
        let mut first_error = None;
        for result in [v4, v6] {
            match result {
                Ok(lookup) => out.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                })),
                Err(e) => {
                    let e = Self::error(name, e);
                    if !e.is_absent() || first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        match (out.is_empty(), first_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// AAAA records only.
    pub async fn ipv6(&self, name: &str) -> Result<Vec<std::net::Ipv6Addr>, DnsError> {
        let lookup = self
            .resolver
            .ipv6_lookup(Self::name(name)?)
            .await
            .map_err(|e| Self::error(name, e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// A records only (DNSBL answers).
    pub async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let lookup = self
            .resolver
            .ipv4_lookup(Self::name(name)?)
            .await
            .map_err(|e| Self::error(name, e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// PTR names of an address, without the final dot.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = ee_core::ip::reverse_name(ip);
        let lookup = self
            .resolver
            .reverse_lookup(Self::name(&name)?)
            .await
            .map_err(|e| Self::error(&name, e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(ptr) => Some(name_text(&ptr.0)),
                _ => None,
            })
            .collect())
    }

    /// The SPF result for mail from `ip`: of the MAIL FROM identity when there is one,
    /// else of the HELO identity (RFC 7208 §2.3–2.4). An evaluation, not a string match.
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfVerdict {
        crate::spf::check(self, ip, helo, mail_from).await
    }
}

/// A name's raw labels joined by dots, lower-cased: `to_ascii()` would escape characters
/// such as ':' that SPF domain-specs may contain.
fn name_text(name: &Name) -> String {
    name.iter()
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".")
        .to_lowercase()
}
