//! MTA-STS in direct delivery (RFC 8461): a recipient domain's policy, looked up by its
//! `_mta-sts` TXT id and fetched over HTTPS, kept for its `max_age` on this node (a
//! policy whose TXT record went away still holds until then), the TXT looked at again
//! after an hour. A fetch that fails leaves the cached policy in force, or none.

use super::*;
use ee_core::mta_sts::Policy;
use ee_core::tls_rpt::Failure;

/// How long a node trusts what it found before asking the TXT record again (ms).
const RECHECK_MS: i64 = 3_600_000;

#[derive(Clone)]
pub(super) struct Cached {
    id: Option<String>,
    policy: Option<Policy>,
    expires_at: i64,
    checked_at: i64,
    /// Why the policy the record announces could not be had (none in force).
    failure: Option<Failure>,
}

impl Cached {
    /// Nothing found (asked at `now`).
    fn none(now: i64) -> Self {
        Self {
            id: None,
            policy: None,
            expires_at: 0,
            checked_at: now,
            failure: None,
        }
    }
}

impl Engine {
    /// The policy in force for `domain`, if any, and when none is because the one its
    /// record announces could not be fetched or read, why (RFC 8460's terms).
    pub(super) async fn mta_sts(&self, domain: &str) -> (Option<Policy>, Option<Failure>) {
        let now = self.services.clock.now_ms();
        let cached = self.mta_sts.lock().await.get(domain).cloned();
        let valid = |c: &Cached| c.policy.is_some() && now < c.expires_at;
        if let Some(c) = &cached
            && now - c.checked_at < RECHECK_MS
            && (c.policy.is_none() || valid(c))
        {
            return (c.policy.clone(), c.failure);
        }
        let kept = cached.as_ref().filter(|c| valid(c)).cloned();
        let found = match self.services.resolver.mta_sts_id(domain).await {
            Err(e) => {
                tracing::debug!(domain, error = %e, "MTA-STS record not read");
                return (kept.and_then(|c| c.policy), None);
            }
            Ok(None) => kept.map_or(Cached::none(now), |c| Cached {
                checked_at: now,
                ..c
            }),
            Ok(Some(id)) => match kept
                .clone()
                .filter(|c| c.id.as_deref() == Some(id.as_str()))
            {
                // The same policy: kept without a fetch.
                Some(same) => Cached {
                    checked_at: now,
                    failure: None,
                    ..same
                },
                None => match self.fetch_policy(domain).await {
                    Ok(policy) => Cached {
                        id: Some(id),
                        expires_at: now + policy.max_age_secs as i64 * 1000,
                        policy: Some(policy),
                        checked_at: now,
                        failure: None,
                    },
                    Err((failure, why)) => {
                        tracing::warn!(domain, error = %why, "MTA-STS policy not fetched");
                        kept.unwrap_or_else(|| Cached {
                            failure: Some(failure),
                            ..Cached::none(now)
                        })
                    }
                },
            },
        };
        let got = (found.policy.clone(), found.failure);
        self.mta_sts.lock().await.insert(domain.to_owned(), found);
        got
    }

    async fn fetch_policy(&self, domain: &str) -> Result<Policy, (Failure, String)> {
        let fetch_error = |e: String| (Failure::StsPolicyFetchError, e);
        let services = &self.services;
        let host = format!("mta-sts.{domain}");
        let addresses = services
            .resolver
            .addresses(&host)
            .await
            .map_err(|e| fetch_error(e.to_string()))?;
        // The policy host is the recipient's to name: the outbound policy applies.
        let address = addresses
            .into_iter()
            .find(|a| services.outbound.check_ip(*a).is_ok())
            .ok_or_else(|| fetch_error(format!("{host} has no address we may connect to")))?;
        let bytes = ee_connectors::mta_sts::fetch_policy(&ee_connectors::mta_sts::Fetch {
            domain,
            address,
            port: services.delivery.mta_sts_port,
            extra_roots: &services.delivery.mta_sts_roots,
            timeout: Duration::from_secs(10),
        })
        .await
        .map_err(fetch_error)?;
        Policy::parse(&bytes).map_err(|e| (Failure::StsPolicyInvalid, e.to_string()))
    }
}

/// The MX hosts to try and how: under an `enforce` policy only those it names, over
/// STARTTLS with a verified certificate (`Err` when it names none of them: the message
/// waits, never sent in clear); otherwise all, opportunistic.
pub(super) fn hosts_for(
    policy: Option<&Policy>,
    hosts: &[String],
) -> Result<(Vec<String>, Security), String> {
    match policy {
        Some(p) if p.mode == ee_core::mta_sts::Mode::Enforce => {
            let named: Vec<String> = hosts.iter().filter(|h| p.names(h)).cloned().collect();
            if named.is_empty() {
                return Err(format!(
                    "MTA-STS (enforce): none of the MX hosts ({}) is one the policy names",
                    hosts.join(", ")
                ));
            }
            Ok((named, Security::Starttls))
        }
        _ => Ok((hosts.to_vec(), Security::Opportunistic)),
    }
}

/// Under a `testing` policy, what it would have refused of a delivery that went to
/// `hosts` with `tls` (RFC 8461 §5: delivered anyway, and recorded).
pub(super) fn testing_failure(
    policy: Option<&Policy>,
    hosts: &[String],
    tls: Option<&str>,
) -> Option<String> {
    let p = policy.filter(|p| p.mode == ee_core::mta_sts::Mode::Testing)?;
    if !hosts.iter().any(|h| p.names(h)) {
        return Some("testing: MX not in the policy".into());
    }
    match tls {
        None => Some("testing: no TLS".into()),
        Some(t) if !t.ends_with(" verified") => Some("testing: certificate not verified".into()),
        Some(_) => None,
    }
}
