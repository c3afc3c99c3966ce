//! The message pipeline's settings, and the rules the queue and the engine share.
pub mod mailwizz;
pub mod mailwizz_instances;
pub mod mailwizz_servers;
pub mod powermta;
pub mod relays;
pub mod routing_rules;
pub mod settings;
pub mod shaping;
pub mod tls_reports;

use std::time::Duration;

use ee_core::delivery::{DestinationLimits, RetryPolicy, TenantDelivery};
use ee_core::secrets::Sealer;
use ee_core::tracking::{self, Kind};
use ee_store::StoreError;
use serde_json::Value;

/// Sealing purpose of relay passwords.
pub const RELAY_PASSWORD_PURPOSE: &str = "relay-password";

/// How the pipeline runs; one per node.
#[derive(Clone)]
pub struct DeliverySettings {
    /// Where tracking and unsubscribe links point (`EE_PUBLIC_URL`).
    pub public_url: String,
    /// Signs tracking and unsubscribe tokens.
    pub tracking_key: Vec<u8>,
    /// Opens DKIM keys and relay passwords.
    pub sealer: Option<Sealer>,
    pub retry: RetryPolicy,
    pub limits: DestinationLimits,
    /// Messages per second towards a provider across IPs and nodes.
    pub rates: ee_core::provider_rates::ProviderRates,
    /// The providers and how their replies slow us down (`ee_core::shaping`).
    pub shaping: std::sync::Arc<ee_core::shaping::Shaping>,
    /// The port MX hosts are reached on: 25, tests use another.
    pub mx_port: u16,
    /// The port MTA-STS policies are fetched on (443; tests use another) and roots
    /// trusted beside the system's for that fetch (DER; a test CA).
    pub mta_sts_port: u16,
    pub mta_sts_roots: Vec<Vec<u8>>,
    pub timeout: Duration,
    /// Messages claimed at once, and sent at once.
    pub batch: i64,
    pub concurrency: usize,
    /// How long a claimed message is ours before another worker may take it over, unless
    /// its node's heartbeat renews it (every third of it): a dead node's messages move
    /// again within this.
    pub lease_ms: i64,
    /// Accept any certificate from relays (self-signed smarthosts, tests).
    pub allow_invalid_certs: bool,
    /// How opens and clicks of machines are told from people's.
    pub machine: ee_core::machine_hits::MachineRules,
    /// This node's name, which starts its lease tokens (which node holds a message).
    pub node: String,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        Self {
            public_url: "http://localhost:8080".into(),
            tracking_key: key,
            sealer: None,
            retry: RetryPolicy::default(),
            limits: DestinationLimits::default(),
            rates: Default::default(),
            shaping: std::sync::Arc::new(ee_core::shaping::Shaping::shipped()),
            mx_port: 25,
            mta_sts_port: 443,
            mta_sts_roots: Vec::new(),
            timeout: Duration::from_secs(60),
            batch: 200,
            concurrency: 16,
            lease_ms: 15_000,
            allow_invalid_certs: false,
            machine: ee_core::machine_hits::MachineRules::default(),
            node: "node".into(),
        }
    }
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySettings")
            .field("public_url", &self.public_url)
            .field("mx_port", &self.mx_port)
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A field of the request is wrong.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
        details: Value,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> QueueError {
    QueueError::Invalid {
        field,
        message: message.into(),
        details: Value::Null,
    }
}

/// A tenant's delivery settings (key `delivery` of its settings).
pub fn tenant_delivery(tenant: &ee_store::tenants::Tenant) -> TenantDelivery {
    crate::access::tenant_settings::TenantSettings::of(tenant).delivery
}

/// A tenant's time zone (UTC when it names none): schedules written without an offset and
/// sending windows are read in it.
pub async fn tenant_zone(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
) -> Result<ee_core::zone::TimeZone, StoreError> {
    let tenant = ee_store::tenants::get(conn, tenant_id).await?;
    Ok(ee_core::zone::zone_or_utc(
        tenant_delivery(&tenant).time_zone.as_deref(),
    ))
}

/// Contacts' own zones by id: their `time_zone`, else their country's most populous one;
/// those with neither are left out (the tenant's zone applies to them).
pub async fn recipient_zones(
    conn: &mut ee_store::AnyConnection,
    contact_ids: &[String],
) -> Result<std::collections::HashMap<String, ee_core::zone::TimeZone>, StoreError> {
    Ok(ee_store::contact_batches::zones_of(conn, contact_ids)
        .await?
        .into_iter()
        .filter_map(|(id, (zone, country))| {
            let zone = ee_core::zone::recipient_zone(zone.as_deref(), country.as_deref())?;
            Some((id, zone))
        })
        .collect())
}

pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

pub fn unsubscribe_url(settings: &DeliverySettings, message_id: &str) -> String {
    format!(
        "{}/u/{}",
        settings.public_url.trim_end_matches('/'),
        tracking::sign(&settings.tracking_key, Kind::Unsubscribe, message_id, 0)
    )
}

/// The host name this installation greets with when nothing better is known: its public
/// URL's host.
pub fn helo_default(public_url: &str) -> String {
    public_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
        .to_owned()
}

/// A domain's DKIM key opened into a signer (the master key unseals it).
pub fn open_signer(
    settings: &DeliverySettings,
    key: &ee_store::domains::DkimKey,
    domain: &str,
) -> Result<ee_mail::message::Signer, String> {
    let sealer = settings
        .sealer
        .as_ref()
        .ok_or("no master key to open the DKIM key")?;
    let pem = sealer
        .open(ee_core::dkim::SEAL_PURPOSE, &key.private_key_sealed)
        .map_err(|e| format!("the DKIM key of {domain} cannot be opened: {e}"))?;
    let pem = String::from_utf8(pem).map_err(|e| e.to_string())?;
    let algorithm = ee_mail::dkim::Algorithm::parse(&key.algorithm)
        .ok_or_else(|| format!("unknown DKIM algorithm {}", key.algorithm))?;
    ee_mail::message::Signer::new(algorithm, &pem, domain, &key.selector).map_err(|e| e.to_string())
}
