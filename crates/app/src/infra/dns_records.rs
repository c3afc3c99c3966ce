//! What a sending domain needs published in DNS: its DKIM keys, SPF naming its tenant's
//! IPs, DMARC, MX, and the A/AAAA and PTR records each sending IP needs.

use ee_core::ip::reverse_name;
use ee_mail::dkim::{self, Algorithm};
use ee_store::Scope;
use ee_store::domains::{self, Domain};
use ee_store::ips::{self, IpFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::read::Read;

#[derive(Debug, Serialize, ToSchema)]
pub struct DnsRecord {
    /// TXT, MX, A, AAAA or PTR.
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    pub value: String,
    /// TXT values over 255 bytes are published as these strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strings: Option<Vec<String>>,
    pub purpose: String,
}

fn txt(name: String, value: String, purpose: &str) -> DnsRecord {
    let strings = (value.len() > 255).then(|| dkim::txt_strings(&value));
    DnsRecord {
        record_type: "TXT".into(),
        name,
        value,
        strings,
        purpose: purpose.into(),
    }
}

/// Exactly what to publish for a domain (one the caller may see); `dmarc_address` is
/// where its DMARC aggregate reports go (this installation's report address), if any.
pub async fn records(
    read: &mut Read,
    d: &Domain,
    dmarc_address: Option<&str>,
) -> Result<Vec<DnsRecord>, AppError> {
    let conn = read.conn();
    let keys = domains::published_keys(conn, &d.id).await?;
    let tenant_ips = ips::list(
        conn,
        &IpFilter {
            scope: Scope::Tenant(&d.tenant_id),
            ..Default::default()
        },
    )
    .await?;
    let mut out = Vec::new();
    for key in keys {
        let purpose = if key.status == ee_core::dkim::KeyStatus::Active {
            "DKIM key that signs"
        } else {
            "DKIM key replaced by a rotation, kept until retired"
        };
        let algorithm = Algorithm::parse(&key.algorithm).unwrap_or(Algorithm::Rsa);
        out.push(txt(
            format!("{}._domainkey.{}", key.selector, d.domain_name),
            dkim::dns_record(algorithm, &key.public_key),
            purpose,
        ));
    }
    let mechanisms: Vec<String> = tenant_ips
        .iter()
        .filter_map(|ip| ip.ip_address.parse::<std::net::IpAddr>().ok())
        .map(|ip| {
            if ip.is_ipv4() {
                format!("ip4:{ip}")
            } else {
                format!("ip6:{ip}")
            }
        })
        .collect();
    out.push(txt(
        d.domain_name.clone(),
        format!("v=spf1 {} ~all", mechanisms.join(" ")).replace("  ", " "),
        "SPF: the tenant's sending IPs",
    ));
    out.extend(dmarc_records(d, dmarc_address));
    let mut hosts: Vec<&str> = tenant_ips
        .iter()
        .filter_map(|ip| ip.hostname.as_deref())
        .collect();
    hosts.sort();
    hosts.dedup();
    for host in &hosts {
        out.push(DnsRecord {
            record_type: "MX".into(),
            name: d.domain_name.clone(),
            value: format!("10 {host}."),
            strings: None,
            purpose: "MX: where replies and bounces come back".into(),
        });
    }
    for ip in &tenant_ips {
        let (Some(host), Ok(addr)) = (&ip.hostname, ip.ip_address.parse::<std::net::IpAddr>())
        else {
            continue;
        };
        let kind = if addr.is_ipv4() { "A" } else { "AAAA" };
        out.push(DnsRecord {
            record_type: kind.into(),
            name: host.clone(),
            value: ip.ip_address.clone(),
            strings: None,
            purpose: "forward record the PTR is confirmed with".into(),
        });
        out.push(DnsRecord {
            record_type: "PTR".into(),
            name: reverse_name(addr),
            value: format!("{host}."),
            strings: None,
            purpose: "reverse DNS, set at the IP's provider".into(),
        });
    }
    Ok(out)
}

/// The DMARC policy, asking for aggregate reports at `address` when there is one; and
/// when that address is outside the domain, the record its own zone must publish to
/// accept the domain's reports (RFC 7489 §7.1), which receivers check before sending.
fn dmarc_records(d: &Domain, address: Option<&str>) -> Vec<DnsRecord> {
    let name = &d.domain_name;
    let policy = format!("v=DMARC1; p={}; adkim=r; aspf=r", d.dmarc_policy);
    let Some(address) = address else {
        return vec![txt(format!("_dmarc.{name}"), policy, "DMARC policy")];
    };
    let mut out = vec![txt(
        format!("_dmarc.{name}"),
        format!("{policy}; rua=mailto:{address}"),
        "DMARC policy; aggregate reports come to this installation",
    )];
    let host = address.rsplit_once('@').map_or("", |(_, h)| h);
    if host != name && !host.ends_with(&format!(".{name}")) {
        out.push(txt(
            format!("{name}._report._dmarc.{host}"),
            "v=DMARC1".into(),
            "DMARC: the report address's zone accepts this domain's reports (RFC 7489 §7.1)",
        ));
    }
    out
}
