//! Posting an SMTP TLS report to the HTTPS address a domain's `_smtp._tls` record names
//! (RFC 8460 §5.4): `application/tlsrpt+gzip`, a certificate valid for the URL's host, no
//! redirect followed, a time-out. The address is resolved (and checked against the
//! outbound policy) by the caller.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub struct Post<'a> {
    /// `https://host[:port]/path`.
    pub url: &'a str,
    /// Where the URL's host was found.
    pub address: IpAddr,
    /// Roots trusted beside the system's (DER): a private CA, tests.
    pub extra_roots: &'a [Vec<u8>],
    pub timeout: Duration,
    /// The report's JSON, gzip-compressed.
    pub body: Vec<u8>,
}

/// The URL's host (what the caller resolves), or why the URL is unusable.
pub fn host_of(url: &str) -> Result<(String, u16), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!("{url}: not https"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, parsed.port().unwrap_or(443)))
}

/// Posts the report; `Ok` when the server took it (2xx).
pub async fn post_report(p: Post<'_>) -> Result<(), String> {
    let (host, port) = host_of(p.url)?;
    let mut builder = reqwest::Client::builder()
        .timeout(p.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .resolve(&host, SocketAddr::new(p.address, port));
    for der in p.extra_roots {
        let root = reqwest::Certificate::from_der(der).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(root);
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let response = client
        .post(p.url)
        .header(reqwest::header::CONTENT_TYPE, "application/tlsrpt+gzip")
        .body(p.body)
        .send()
        .await
        .map_err(|e| format!("{}: {e}", p.url))?;
    if !response.status().is_success() {
        return Err(format!("{}: HTTP {}", p.url, response.status().as_u16()));
    }
    Ok(())
}
