//! Fetching a tenant's RSS or Atom feed: the outbound policy checked before the request
//! and held by the client's resolver, no redirect followed, a timeout, and the body read
//! up to a limit (a longer feed is refused, not cut).

use std::sync::Arc;
use std::time::Duration;

use ee_core::outbound::OutboundPolicy;

use crate::outbound::{check_url, http_client};

/// The feed's bytes, or why it was not read (the reason is shown to the tenant).
pub async fn fetch(
    policy: &Arc<OutboundPolicy>,
    url: &str,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    check_url(policy, url).map_err(|e| format!("feed url: {e}"))?;
    let client = http_client(policy, timeout).map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .header(
            "accept",
            "application/rss+xml, application/atom+xml, application/xml, text/xml;q=0.9, */*;q=0.1",
        )
        .send()
        .await
        .map_err(|e| format!("the feed could not be fetched: {}", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the feed answered HTTP {}", status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(format!("the feed is over {max_bytes} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the feed could not be read: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("the feed is over {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
