//! Talking to the outside: alerts (Telegram, signed webhooks), PowerMTA (configuration,
//! deploy over SSH, the HTTP management API) and the MailWizz API client.

pub mod alerts;
pub mod feeds;
pub mod mailwizz;
pub mod mta_sts;
pub mod outbound;
pub mod pmta_accounting;
pub mod pmta_deploy;
pub mod pmta_status;
pub mod powermta;
pub mod ssh;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls_rpt;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The peer could not be reached or did not answer in time.
    #[error("{service} unreachable: {reason}")]
    Unreachable {
        service: &'static str,
        reason: String,
    },
    /// The peer answered with an error.
    #[error("{service} refused: {reason}")]
    Refused {
        service: &'static str,
        reason: String,
    },
}

impl ConnectorError {
    /// Describes a transport error without its URL, which may hold a credential
    /// (the Telegram bot token is part of the path).
    pub(crate) fn transport(service: &'static str, e: reqwest::Error) -> Self {
        let reason = if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            e.without_url().to_string()
        };
        ConnectorError::Unreachable { service, reason }
    }
}
