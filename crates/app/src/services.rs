//! What the use-cases need from the installation, built once from the configuration.

use ee_connectors::alerts::AlertChannels;
use ee_core::clock::Clock;
use ee_store::Db;

use crate::infra::InfraSettings;

/// What the handlers (and the API, for on-demand checks) need.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub clock: Clock,
    pub alerts: AlertChannels,
    pub infra: InfraSettings,
    pub resolver: ee_dns::Resolver,
    /// DNSBL zones every IP is checked against.
    pub dnsbl_zones: Vec<String>,
    /// The optional SMTP probe of contact validation.
    pub probe: crate::contacts::validation::ProbeSettings,
    /// The message pipeline's settings.
    pub delivery: crate::delivery::DeliverySettings,
    /// What the generated PowerMTA configuration says of this installation.
    pub pmta: crate::delivery::powermta::PmtaSettings,
    /// Where connections to hosts a tenant named (MailWizz, relays) may go.
    pub outbound: std::sync::Arc<ee_core::outbound::OutboundPolicy>,
    /// Rung when messages were queued on this node, so its delivery loop starts at once
    /// instead of at its next look (other nodes look every half second).
    pub queued: std::sync::Arc<tokio::sync::Notify>,
    /// How feedback is classified.
    pub feedback: crate::feedback::FeedbackSettings,
    /// The health job's thresholds.
    pub health: crate::infra::health::HealthSettings,
}

impl Services {
    /// The services of a node that set nothing but its database, clock and resolver: no
    /// alert channel, no DNSBL zone, the default pipeline, no outbound exception. The one
    /// constructor: the configuration (`serve`, the CLI), the benchmarks and the tests
    /// each set only what they change, as `Services { …, ..Services::new(…) }`.
    pub fn new(db: Db, clock: Clock, resolver: ee_dns::Resolver) -> Self {
        Self {
            db,
            clock,
            alerts: AlertChannels::default(),
            infra: InfraSettings::default(),
            resolver,
            dnsbl_zones: Vec::new(),
            probe: crate::contacts::validation::ProbeSettings::default(),
            delivery: crate::delivery::DeliverySettings::default(),
            pmta: crate::delivery::powermta::PmtaSettings::default(),
            outbound: std::sync::Arc::new(ee_core::outbound::OutboundPolicy::default()),
            queued: std::sync::Arc::new(tokio::sync::Notify::new()),
            feedback: crate::feedback::FeedbackSettings::default(),
            health: crate::infra::health::HealthSettings::default(),
        }
    }
}

/// Why a job attempt failed; the text is kept on the job as `last_error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl From<ee_store::StoreError> for JobError {
    fn from(e: ee_store::StoreError) -> Self {
        JobError(e.to_string())
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError(e.to_string())
    }
}

impl From<crate::infra::InfraError> for JobError {
    fn from(e: crate::infra::InfraError) -> Self {
        JobError(e.to_string())
    }
}
