//! The DNS checks of a sending domain: what must be published for its mail to
//! authenticate, compared with what the DNS says.

use std::net::IpAddr;

use serde::Serialize;

use crate::records::{aligned, parse_dmarc};
use crate::{Resolver, SpfVerdict};

/// What we expect of a domain: our DKIM keys and the IPs that send for it.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub domain: String,
    /// (selector, base64 public key) of each key that should be published.
    pub dkim: Vec<(String, String)>,
    /// Each sending IP with the host name it announces (and its PTR should name).
    pub ips: Vec<(IpAddr, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpfCheck {
    pub ip: String,
    pub result: SpfVerdict,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DkimCheck {
    pub selector: String,
    pub found: bool,
    /// The published key equals ours.
    pub matches: bool,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DmarcCheck {
    pub record: Option<String>,
    pub policy: Option<String>,
    /// Our DKIM signature (d= the domain) passes and aligns under the record's adkim.
    pub dkim_alignment: bool,
    /// SPF passes for our MAIL FROM domain (the domain) and aligns under aspf.
    pub spf_alignment: bool,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MxCheck {
    pub hosts: Vec<String>,
    /// RFC 7505: a single "." MX says the domain accepts no mail (bounces could not come back).
    pub null_mx: bool,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PtrCheck {
    pub ip: String,
    pub names: Vec<String>,
    /// One PTR name resolves back to the IP.
    pub forward_confirmed: bool,
    /// The confirmed name is the IP's configured host name.
    pub matches_hostname: bool,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub ok: bool,
    pub spf: Vec<SpfCheck>,
    pub dkim: Vec<DkimCheck>,
    pub dmarc: DmarcCheck,
    pub mx: MxCheck,
    pub ptr: Vec<PtrCheck>,
}

pub async fn check_domain(resolver: &Resolver, expect: &Expectation) -> DomainReport {
    let domain = expect.domain.trim_end_matches('.').to_lowercase();
    let mail_from = format!("postmaster@{domain}");

    let mut spf = Vec::new();
    for (ip, hostname) in &expect.ips {
        let helo = hostname.clone().unwrap_or_else(|| domain.clone());
        let result = resolver.spf(*ip, &helo, &mail_from).await;
        spf.push(SpfCheck {
            ip: ip.to_string(),
            result,
            ok: result == SpfVerdict::Pass,
        });
    }

    let mut dkim = Vec::new();
    for (selector, ours) in &expect.dkim {
        let name = format!("{selector}._domainkey.{domain}");
        let check = match resolver.txt(&name).await {
            Ok(records) => {
                let published: Vec<String> = records
                    .iter()
                    .filter_map(|r| ee_core::dkim::published_key(r))
                    .collect();
                let matches = published.iter().any(|p| p == ours);
                DkimCheck {
                    selector: selector.clone(),
                    found: !published.is_empty(),
                    matches,
                    ok: matches,
                    error: (!matches).then(|| {
                        if published.is_empty() {
                            format!("no DKIM record at {name}")
                        } else {
                            format!("the key at {name} is not ours")
                        }
                    }),
                }
            }
            Err(e) => DkimCheck {
                selector: selector.clone(),
                found: false,
                matches: false,
                ok: false,
                error: Some(e.to_string()),
            },
        };
        dkim.push(check);
    }

    let dmarc_name = format!("_dmarc.{domain}");
    let dkim_ok = !dkim.is_empty() && dkim.iter().any(|d| d.ok);
    let spf_ok = !spf.is_empty() && spf.iter().all(|s| s.ok);
    let dmarc = match resolver.txt(&dmarc_name).await {
        Ok(records) => {
            let candidates: Vec<&String> = records
                .iter()
                .filter(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
                .collect();
            match candidates.as_slice() {
                [record] => match parse_dmarc(record) {
                    Ok(parsed) => {
                        let dkim_alignment = dkim_ok && aligned(&domain, &domain, &parsed.adkim);
                        let spf_alignment = spf_ok && aligned(&domain, &domain, &parsed.aspf);
                        DmarcCheck {
                            record: Some((*record).clone()),
                            policy: Some(parsed.policy),
                            dkim_alignment,
                            spf_alignment,
                            ok: dkim_alignment || spf_alignment,
                            error: (!dkim_alignment && !spf_alignment)
                                .then(|| "neither DKIM nor SPF can pass aligned".to_owned()),
                        }
                    }
                    Err(e) => DmarcCheck {
                        record: Some((*record).clone()),
                        policy: None,
                        dkim_alignment: false,
                        spf_alignment: false,
                        ok: false,
                        error: Some(e),
                    },
                },
                [] => DmarcCheck {
                    record: None,
                    policy: None,
                    dkim_alignment: false,
                    spf_alignment: false,
                    ok: false,
                    error: Some(format!("no DMARC record at {dmarc_name}")),
                },
                _ => DmarcCheck {
                    record: None,
                    policy: None,
                    dkim_alignment: false,
                    spf_alignment: false,
                    ok: false,
                    error: Some(format!("several DMARC records at {dmarc_name}")),
                },
            }
        }
        Err(e) => DmarcCheck {
            record: None,
            policy: None,
            dkim_alignment: false,
            spf_alignment: false,
            ok: false,
            error: Some(e.to_string()),
        },
    };

    let mx = match resolver.mx(&domain).await {
        Ok(records) => {
            let null_mx = records.len() == 1 && (records[0].1.is_empty() || records[0].1 == ".");
            let hosts: Vec<String> = records
                .into_iter()
                .map(|(pref, host)| format!("{pref} {host}"))
                .collect();
            MxCheck {
                ok: !null_mx && !hosts.is_empty(),
                error: null_mx.then(|| "null MX (RFC 7505): the domain receives no mail, so bounces cannot come back".to_owned()),
                hosts,
                null_mx,
            }
        }
        Err(e) => MxCheck {
            hosts: Vec::new(),
            null_mx: false,
            ok: false,
            error: Some(e.to_string()),
        },
    };

    let mut ptr = Vec::new();
    for (ip, hostname) in &expect.ips {
        let check = match resolver.ptr(*ip).await {
            Ok(names) => {
                let mut confirmed = Vec::new();
                for name in &names {
                    if resolver
                        .addresses(name)
                        .await
                        .is_ok_and(|addrs| addrs.contains(ip))
                    {
                        confirmed.push(name.clone());
                    }
                }
                let matches_hostname = hostname
                    .as_ref()
                    .is_some_and(|h| confirmed.iter().any(|c| c.eq_ignore_ascii_case(h)));
                let forward_confirmed = !confirmed.is_empty();
                let ok = forward_confirmed && (hostname.is_none() || matches_hostname);
                let error = if !forward_confirmed {
                    Some("no PTR name resolves back to the IP".to_owned())
                } else if !ok {
                    Some(format!(
                        "the PTR names {} rather than {}",
                        confirmed.join(", "),
                        hostname.clone().unwrap_or_default()
                    ))
                } else {
                    None
                };
                PtrCheck {
                    ip: ip.to_string(),
                    names,
                    forward_confirmed,
                    matches_hostname,
                    ok,
                    error,
                }
            }
            Err(e) => PtrCheck {
                ip: ip.to_string(),
                names: Vec::new(),
                forward_confirmed: false,
                matches_hostname: false,
                ok: false,
                error: Some(e.to_string()),
            },
        };
        ptr.push(check);
    }

    let ok = spf_ok
        && dkim.iter().all(|d| d.ok)
        && !dkim.is_empty()
        && dmarc.ok
        && mx.ok
        && ptr.iter().all(|p| p.ok);
    DomainReport {
        domain,
        ok,
        spf,
        dkim,
        dmarc,
        mx,
        ptr,
    }
}
