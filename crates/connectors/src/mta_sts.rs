//! Fetching a domain's MTA-STS policy (RFC 8461 §3.3): `https://mta-sts.<domain>/.well-
//! known/mta-sts.txt`, over HTTPS with a certificate valid for that host, no redirect
//! followed, a time-out, and at most `ee_core::mta_sts::MAX_POLICY_BYTES` read. The
//! address is resolved (and checked against the outbound policy) by the caller.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ee_core::mta_sts::MAX_POLICY_BYTES;

pub struct Fetch<'a> {
    pub domain: &'a str,
    pub address: IpAddr,
    /// 443; tests use another.
    pub port: u16,
    /// Roots trusted beside the system's (DER): a private CA, tests.
    pub extra_roots: &'a [Vec<u8>],
    pub timeout: Duration,
}

/// The policy file's bytes, or why it could not be had.
pub async fn fetch_policy(f: &Fetch<'_>) -> Result<Vec<u8>, String> {
    let host = format!("mta-sts.{}", f.domain.trim_end_matches('.'));
    let mut builder = reqwest::Client::builder()
        .timeout(f.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .resolve(&host, SocketAddr::new(f.address, f.port));
    for der in f.extra_roots {
        let root = reqwest::Certificate::from_der(der).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(root);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let url = if f.port == 443 {
        format!("https://{host}/.well-known/mta-sts.txt")
    } else {
        format!("https://{host}:{}/.well-known/mta-sts.txt", f.port)
    };
    let mut response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("{url}: HTTP {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_POLICY_BYTES {
            return Err(format!("{url}: over {MAX_POLICY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
