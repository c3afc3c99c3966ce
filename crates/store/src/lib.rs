//! Storage for Email-Engine: one code base over SQLite (the embedded default) and
//! PostgreSQL, through sqlx's `Any` driver. Ids are TEXT, times epoch milliseconds,
//! booleans 0/1 and JSON TEXT, so the same statements run on both.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod bulk;
pub mod campaign_batches;
pub mod campaign_feeds;
pub mod campaign_mirrors;
pub mod campaigns;
pub mod connection_slots;
pub mod contact_batches;
pub mod contact_tags;
pub mod contacts;
mod db;
pub mod delivery_events;
pub mod dmarc_reports;
pub mod domains;
pub mod enrollments;
mod error;
pub mod feedback_files;
pub mod feedback_messages;
mod flag;
pub mod forwards;
pub mod handoffs;
pub mod imports;
pub mod ips;
pub mod jobs;
pub mod login_throttles;
pub mod mailwizz;
mod maybe_name;
pub mod message_leases;
pub mod message_queries;
pub mod messages;
pub mod pools;
pub mod provider_seconds;
pub mod rate_limits;
pub mod relays;
pub mod report_counters;
pub mod segments;
pub mod sessions;
pub mod shaping;
pub mod sources;
pub mod suppressions;
pub mod templates;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls_reports;
pub mod tracking_hits;
mod unowned_cap;
pub mod users;
pub mod warmup;

pub use db::{Backend, Db, Tx, refresh_statistics, sqlite_file};
pub use error::StoreError;
pub use jobs::Job;
pub use sqlx::AnyConnection;

/// Which tenants a query may see: all of them (an administrator, the command line, a
/// worker) or one (a tenant's user or key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope<'a> {
    #[default]
    All,
    Tenant(&'a str),
}

impl<'a> From<Option<&'a str>> for Scope<'a> {
    /// `None`: all tenants; `Some(id)`: that one.
    fn from(tenant: Option<&'a str>) -> Self {
        tenant.map_or(Scope::All, Scope::Tenant)
    }
}

impl<'a> Scope<'a> {
    /// The tenant a query filters on (`$n IS NULL OR tenant_id = $n`); none for all.
    pub fn tenant(self) -> Option<&'a str> {
        match self {
            Scope::All => None,
            Scope::Tenant(id) => Some(id),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
