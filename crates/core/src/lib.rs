//! Domain types and rules of Email-Engine.
//!
//! Everything here is pure and synchronous: no I/O, no clock reads (callers pass the time),
//! so each rule is unit-tested beside its code and shared by every other crate.

pub mod address;
pub mod alert;
pub mod audit;
pub mod auth;
pub mod campaign;
pub mod client_address;
pub mod clock;
pub mod contact_conditions;
pub mod contacts;
pub mod country;
pub mod delivery;
pub mod design;
pub mod dkim;
pub mod dmarc;
pub mod enrichment;
pub mod feedback;
pub mod ids;
pub mod ip;
pub mod jobs;
pub mod limits;
pub mod login_throttle;
pub mod machine_hits;
pub mod merge_patch;
pub mod mta_sts;
pub mod names;
pub mod outbound;
pub mod provider_rates;
pub mod rate_limit;
pub mod relay_choice;
pub mod rendering;
pub mod reply_pattern;
pub mod rotation;
pub mod route;
pub mod rss;
pub mod schedule;
pub mod secrets;
pub mod segment;
pub mod shaping;
pub mod signing;
pub mod source;
pub mod spf;
pub mod tags;
pub mod template;
pub mod tenant;
pub mod tenant_relays;
pub mod timefmt;
pub mod tls_rpt;
pub mod tracking;
pub mod validation;
pub mod warmup;
pub mod zone;

pub use validation::{FieldError, ValidationErrors};
