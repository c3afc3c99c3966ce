//! `check dns` and `check blacklist`: one-off checks from the command line.

use anyhow::{Context, bail};
use ee_store::Scope;
use ee_store::StoreError;

use super::files::open_db;
use crate::config::Config;

pub(super) async fn check_dns(
    config: &Config,
    domain: &str,
    ips: &[String],
    dkim: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    let mut expectation = ee_dns::checks::Expectation {
        domain: domain.clone(),
        dkim: Vec::new(),
        ips: Vec::new(),
    };
    for entry in ips {
        let (ip, host) = match entry.split_once('=') {
            Some((ip, host)) => (ip, Some(host.trim_end_matches('.').to_lowercase())),
            None => (entry.as_str(), None),
        };
        let ip = ip
            .parse()
            .with_context(|| format!("--ip {entry:?}: not an IP address"))?;
        expectation.ips.push((ip, host));
    }
    for entry in dkim {
        let (selector, key) = entry
            .split_once('=')
            .with_context(|| format!("--dkim {entry:?}: expected SELECTOR=KEY"))?;
        expectation.dkim.push((selector.to_owned(), key.to_owned()));
    }
    if expectation.ips.is_empty() && expectation.dkim.is_empty() {
        // A registered domain: its keys and its tenant's IPs.
        let db = open_db(config).await?;
        let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
        let registered = ee_store::domains::list(&mut conn, Scope::All)
            .await?
            .into_iter()
            .find(|d| d.domain_name == domain);
        let Some(registered) = registered else {
            bail!("{domain} is not registered here; name what to expect with --ip and --dkim");
        };
        for key in ee_store::domains::published_keys(&mut conn, &registered.id).await? {
            expectation.dkim.push((key.selector, key.public_key));
        }
        let filter = ee_store::ips::IpFilter {
            scope: Scope::Tenant(&registered.tenant_id),
            ..Default::default()
        };
        for ip in ee_store::ips::list(&mut conn, &filter).await? {
            if let Ok(addr) = ip.ip_address.parse() {
                expectation.ips.push((addr, ip.hostname));
            }
        }
    }
    let settings = config.resolver_settings()?;
    let resolver =
        ee_dns::Resolver::new(&settings).map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?;
    // One question first: when no name server answers, say so at once instead of every
    // check timing out in turn and ending as "incomplete".
    if let Err(e @ ee_dns::DnsError::Failed { .. }) = resolver.txt(&domain).await {
        bail!(
            "DNS unreachable: no answer within {} ms per query ({e}); check EE_DNS_SERVERS",
            settings.timeout.as_millis()
        );
    }
    let report = ee_dns::checks::check_domain(&resolver, &expectation).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
        for s in &report.spf {
            println!("{} SPF   {} -> {}", mark(s.ok), s.ip, s.result.as_str());
        }
        for d in &report.dkim {
            println!(
                "{} DKIM  {} {}",
                mark(d.ok),
                d.selector,
                d.error.clone().unwrap_or_default()
            );
        }
        println!(
            "{} DMARC {} {}",
            mark(report.dmarc.ok),
            report.dmarc.policy.clone().unwrap_or_default(),
            report.dmarc.error.clone().unwrap_or_default()
        );
        println!(
            "{} MX    {} {}",
            mark(report.mx.ok),
            report.mx.hosts.join(", "),
            report.mx.error.clone().unwrap_or_default()
        );
        for p in &report.ptr {
            println!(
                "{} PTR   {} -> {} {}",
                mark(p.ok),
                p.ip,
                p.names.join(", "),
                p.error.clone().unwrap_or_default()
            );
        }
    }
    if report.ok {
        Ok(())
    } else {
        bail!("{domain}: DNS is incomplete")
    }
}

pub(super) async fn check_blacklist(config: &Config, ip: &str, json: bool) -> anyhow::Result<()> {
    let address: std::net::IpAddr = ip
        .trim()
        .parse()
        .with_context(|| format!("{ip:?} is not an IP address"))?;
    let resolver = ee_dns::Resolver::new(&config.resolver_settings()?)
        .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?;
    let listings = ee_dns::dnsbl::check_all(&resolver, address, &config.dnsbl_zones()).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&listings)?);
    } else {
        for l in &listings {
            let status = match (&l.error, l.listed) {
                (Some(e), _) => format!("unknown ({e})"),
                (None, true) => format!(
                    "LISTED {} {}",
                    l.codes.join(","),
                    l.reason.clone().unwrap_or_default()
                ),
                (None, false) => "clean".to_owned(),
            };
            println!("{:<28} {status}", l.zone);
        }
    }
    let listed: Vec<&str> = listings
        .iter()
        .filter(|l| l.listed)
        .map(|l| l.zone.as_str())
        .collect();
    let unknown: Vec<&str> = listings
        .iter()
        .filter(|l| l.error.is_some())
        .map(|l| l.zone.as_str())
        .collect();
    if !listed.is_empty() {
        bail!("{address} is listed by {}", listed.join(", "))
    }
    // Unknown is not clean: a list that could not be asked, or failed its self-test,
    // says nothing about the address.
    if !unknown.is_empty() {
        bail!(
            "{address}: {} of {} lists could not be checked ({}); DNS may be unreachable",
            unknown.len(),
            listings.len(),
            unknown.join(", ")
        )
    }
    Ok(())
}
