//! The use-cases: one function per operation that the API, the CLI and the workers
//! perform, over the store and the protocol crates, and the services they need, built
//! once from the configuration.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod blacklists;
pub mod bootstrap;
pub mod campaign_dispatch;
pub mod campaign_stats;
pub mod campaign_test;
pub mod campaigns;
pub mod contact_view;
pub mod contacts;
pub mod csv_import;
pub mod delivery;
pub mod delivery_settings;
pub mod domains;
mod error;
pub mod field_names;
pub mod infra;
mod input;
pub mod ips;
pub mod login_throttle;
pub mod mailwizz;
pub mod mailwizz_instances;
pub mod mailwizz_servers;
pub mod message_retry;
pub mod messages;
mod owned;
pub mod passwords;
pub mod pools;
pub mod powermta;
pub mod privacy;
pub mod relays;
pub mod rendering;
pub mod routing_rules;
pub mod schedule;
pub mod segments;
mod services;
pub mod sessions;
pub mod snapshot;
pub mod sources;
pub mod suppressions;
pub mod tagging;
pub mod templates;
pub mod tenancy;
pub mod tenants;
pub mod users;
pub mod validation;
pub mod warmup;
pub mod write;

pub use error::AppError;
pub use services::{JobError, Services};
