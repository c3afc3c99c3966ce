//! Mail: DKIM keys, message building and signing, SMTP delivery (relay and direct).

pub mod dkim;
pub mod dmarc_report;
#[cfg(feature = "testing")]
pub mod dmarc_testing;
pub mod message;
pub mod report;
pub mod smtp;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls_report;
