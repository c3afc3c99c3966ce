//! SMTP TLS reporting in direct delivery (RFC 8460): each connection to a recipient's MX
//! host, and each attempt a policy stopped before any, counted as a session of the day's
//! report to that domain (`ee_core::tls_rpt`), in the batch's own transaction.

use std::collections::BTreeMap;

use ee_core::mta_sts::Policy;
use ee_core::tls_rpt::{self, Failure, Outcome, Session};
use ee_mail::smtp::{Endpoint, TlsInfo};

use super::*;

/// What a direct delivery's sessions are judged by: the recipient domain, the policy in
/// force there and the IP we send from.
pub(super) struct Judge<'a> {
    domain: &'a str,
    policy: Option<&'a Policy>,
    sending_ip: &'a str,
}

impl<'a> Judge<'a> {
    pub(super) fn new(
        domain: &'a str,
        policy: Option<&'a Policy>,
        sending_ip: Option<&'a str>,
    ) -> Self {
        Self {
            domain,
            policy,
            sending_ip: sending_ip.unwrap_or_default(),
        }
    }

    fn session(&self, (host, address): (&str, &str), outcome: Outcome) -> Session {
        Session::new(
            self.domain,
            self.policy,
            (host, address),
            self.sending_ip,
            outcome,
        )
    }

    /// A connection opened to `endpoint`, in clear or with `tls`.
    pub(super) fn opened(&self, endpoint: &Endpoint, tls: Option<&TlsInfo>) -> Session {
        let outcome = tls_rpt::judge(
            self.policy,
            &endpoint.tls_name,
            tls.map(TlsInfo::verification),
        );
        self.session((&endpoint.tls_name, &endpoint.address), outcome)
    }

    /// A connection to `endpoint` that TLS failed.
    pub(super) fn failed(&self, endpoint: &Endpoint, why: Failure) -> Session {
        self.session(
            (&endpoint.tls_name, &endpoint.address),
            Outcome::Failed(why),
        )
    }

    /// An attempt the policy stopped: none of the MX hosts (the first is named) is one
    /// it names.
    pub(super) fn not_named(&self, host: &str) -> Session {
        self.session((host, ""), Outcome::Failed(Failure::ValidationFailure))
    }

    /// An attempt without the policy the domain's record announces.
    pub(super) fn without_policy(&self, why: Failure) -> Session {
        Session::policy_failure(self.domain, self.sending_ip, why)
    }
}

/// The batch's sessions, counted per tenant.
pub(super) fn count<'a>(
    done: impl Iterator<Item = (&'a Message, &'a AttemptResult)>,
) -> BTreeMap<&'a str, Vec<(Session, u64)>> {
    let mut counted: BTreeMap<&str, BTreeMap<&Session, u64>> = BTreeMap::new();
    for (message, result) in done {
        for session in &result.tls_sessions {
            *counted
                .entry(message.tenant_id.as_str())
                .or_default()
                .entry(session)
                .or_default() += 1;
        }
    }
    counted
        .into_iter()
        .map(|(tenant, sessions)| {
            (
                tenant,
                sessions.into_iter().map(|(s, n)| (s.clone(), n)).collect(),
            )
        })
        .collect()
}
