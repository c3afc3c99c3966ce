//! HTTP clients for addresses a tenant supplied, held to the outbound policy
//! (`ee_core::outbound`): a name is resolved here and its non-public addresses dropped
//! before connecting; an address literal is checked before each request; redirects are
//! not followed (a redirect to an internal address would get around both).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ee_core::outbound::{OutboundPolicy, Refused};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves with the system's resolver, keeping only the addresses the policy allows.
struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(Refused {
                            host: host.clone(),
                            ..e
                        });
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(e)) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// A client whose connections obey `policy`.
pub fn http_client(
    policy: &Arc<OutboundPolicy>,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
        }))
        .build()
}

/// Checks the host of an http(s) URL as it is saved, and again before each request
/// (address literals never reach the resolver).
pub fn check_url(policy: &OutboundPolicy, url: &str) -> Result<(), UrlError> {
    let parsed = url::Url::parse(url).map_err(|_| UrlError::Malformed)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::Malformed);
    }
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => policy.check_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => policy.check_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => policy.check_host(name),
        None => return Err(UrlError::Malformed),
    }
    .map_err(UrlError::Refused)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must be an http(s) address with a host")]
    Malformed,
    #[error(transparent)]
    Refused(Refused),
}

/// One path segment, percent-encoded: a value pasted into a URL path (an id from a
/// request) can then not climb out of it with `../` or add a query.
pub fn segment(value: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(value, SEGMENT).to_string();
    // `.` and `..` alone are still relative segments.
    match encoded.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => encoded,
    }
}

/// The client `http_client` builds.
pub type HttpClient = reqwest::Client;

/// Posts a JSON body with extra headers: the status of the answer, or why there was none
/// (the URL left out of the message: it may hold a token).
pub async fn post_json(
    client: &HttpClient,
    url: &str,
    body: String,
    headers: &[(&str, String)],
) -> Result<u16, String> {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_climb_or_add_a_query() {
        assert_eq!(segment("ab12-CD_e.f~"), "ab12-CD_e.f~");
        assert_eq!(segment("../../any?x=1#y"), "..%2F..%2Fany%3Fx%3D1%23y");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("é /"), "%C3%A9%20%2F");
    }

    #[test]
    fn urls_are_checked() {
        let p = OutboundPolicy::public_only();
        assert!(check_url(&p, "https://news.example.com/api").is_ok());
        for url in [
            "http://127.0.0.1:8080/api",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x",
            "http://localhost/x",
            "http://0x7f000001/",
            "http://2130706433/",
        ] {
            assert!(
                matches!(check_url(&p, url), Err(UrlError::Refused(_))),
                "{url}"
            );
        }
        assert_eq!(check_url(&p, "ftp://x.test"), Err(UrlError::Malformed));
        assert_eq!(check_url(&p, "not a url"), Err(UrlError::Malformed));
    }
}
