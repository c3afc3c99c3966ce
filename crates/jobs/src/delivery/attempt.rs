//! What one attempt came to.

use ee_core::delivery::{self as rules, MessageState, Outcome};
use ee_core::route::Route;

/// What one attempt came to.
pub(super) struct AttemptResult {
    pub(super) state: MessageState,
    pub(super) reason: Option<String>,
    pub(super) code: Option<i64>,
    pub(super) reply: Option<String>,
    pub(super) ip_id: Option<String>,
    pub(super) route: Option<Route>,
    pub(super) next_attempt_at: Option<i64>,
    pub(super) links: Option<String>,
    /// The attempt did not reach a server (no quota): not counted.
    pub(super) uncounted: bool,
    /// A connection was made: the send counts against the IP's quota.
    pub(super) reached_server: bool,
    /// The connection's TLS session, as recorded on the message's event.
    pub(super) tls: Option<String>,
    /// What an MTA-STS policy in testing mode would have refused.
    pub(super) mta_sts: Option<String>,
    /// The TLS sessions the attempt made (or a policy stopped), for the TLS reports.
    pub(super) tls_sessions: Vec<ee_core::tls_rpt::Session>,
}

impl AttemptResult {
    pub(super) fn new(state: MessageState) -> Self {
        Self {
            state,
            reason: None,
            code: None,
            reply: None,
            ip_id: None,
            route: None,
            next_attempt_at: None,
            links: None,
            uncounted: false,
            reached_server: false,
            tls: None,
            mta_sts: None,
            tls_sessions: Vec::new(),
        }
    }
}

pub(super) fn reply_result(code: u16, text: String) -> AttemptResult {
    let state = match rules::classify(code) {
        Outcome::Sent => MessageState::Sent,
        Outcome::Deferred => MessageState::Deferred,
        Outcome::Bounced => MessageState::Bounced,
    };
    let mut r = AttemptResult::new(state);
    r.code = Some(i64::from(code));
    r.reply = Some(text);
    r
}
