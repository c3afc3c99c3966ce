//! Counting for the reports as events happen: each count keyed by tenant, UTC day, IP,
//! sending domain, recipient provider and campaign, summed per key and written at once.

use std::collections::BTreeMap;

use ee_core::delivery::Provider;
use ee_store::messages::Message;
use ee_store::report_counters::{self, CounterKey};
use ee_store::{AnyConnection, StoreError};

const DAY_MS: i64 = 86_400_000;

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// The key of something that happened to a message at `at` (its IP, when it has none
/// yet, the one given).
pub fn key_of_message(message: &Message, ip_id: Option<&str>, at: i64) -> CounterKey {
    CounterKey {
        tenant_id: message.tenant_id.clone(),
        day: at.div_euclid(DAY_MS),
        ip_id: ip_id.or(message.ip_id.as_deref()).unwrap_or("").to_owned(),
        domain: domain_of(&message.from_email).to_ascii_lowercase(),
        provider: Provider::of_address_domain(domain_of(&message.to_email))
            .as_str()
            .to_owned(),
        campaign_id: message.campaign_id.clone().unwrap_or_default(),
    }
}

/// The key of an event that names no message of ours.
pub fn key_of_recipient(
    tenant_id: &str,
    recipient: &str,
    ip_id: Option<&str>,
    campaign_id: Option<&str>,
    at: i64,
) -> CounterKey {
    CounterKey {
        tenant_id: tenant_id.to_owned(),
        day: at.div_euclid(DAY_MS),
        ip_id: ip_id.unwrap_or("").to_owned(),
        domain: String::new(),
        provider: Provider::of_address_domain(domain_of(recipient))
            .as_str()
            .to_owned(),
        campaign_id: campaign_id.unwrap_or("").to_owned(),
    }
}

/// Adds counts, summed per key and name first.
pub async fn add<S: Into<String>>(
    conn: &mut AnyConnection,
    counts: impl IntoIterator<Item = (CounterKey, S, i64)>,
) -> Result<(), StoreError> {
    let mut summed: BTreeMap<(CounterKey, String), i64> = BTreeMap::new();
    for (key, name, n) in counts {
        *summed.entry((key, name.into())).or_default() += n;
    }
    let rows: Vec<(CounterKey, &str, i64)> = summed
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|((k, name), n)| (k.clone(), name.as_str(), *n))
        .collect();
    report_counters::add(conn, &rows).await
}

/// The counter of a bounce's category: `category:<name>`.
pub const CATEGORY: &str = "category:";
