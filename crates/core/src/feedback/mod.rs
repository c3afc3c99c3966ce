//! Feedback: what became of a message after it left, from every source (the replies of
//! our own transports, DSNs, ARF complaints, PowerMTA's accounting file, the PowerMTA and
//! MailWizz webhooks) as one delivery-event type, classified once here by rules kept as
//! data (`rules.txt`, extendable per deployment).

pub mod accounting;
mod rules;
pub mod verp;

pub use rules::{Origin, Rule, Rules, RulesError};

use serde::{Deserialize, Serialize};

use crate::names::names as named;

/// What happened to a message at its destination, before any classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Accepted by the receiving server.
    Delivered,
    /// Refused for now; the sender tries again. Changes nothing by itself.
    Deferred,
    /// Refused for good (or given up after retries).
    Bounced,
    /// The recipient reported the message as spam (an ARF report, a provider's loop).
    Complaint,
}

named!(EventKind {
    Delivered => "delivered",
    Deferred => "deferred",
    Bounced => "bounced",
    Complaint => "complaint",
});

/// What an event means for the address, the IP and the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The address will not work: unknown user, unknown or null-MX domain, moved. The
    /// address is suppressed at once.
    Hard,
    /// It may work later: a full mailbox, a disabled account, a time-out. Suppressed
    /// after several in a few days (per tenant).
    Soft,
    /// The recipient complained: suppressed at once.
    Complaint,
    /// Refused for the sender's sake (reputation, a block list, policy): counts against
    /// the IP, not the address.
    Block,
    Delivered,
    /// No effect (a deferral, an auto-reply).
    #[serde(rename = "none")]
    NoEffect,
}

named!(Class {
    Hard => "hard",
    Soft => "soft",
    Complaint => "complaint",
    Block => "block",
    Delivered => "delivered",
    NoEffect => "none",
});

/// PowerMTA's seventeen bounce categories (its `bounceCat` column), which every source's
/// events are put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    BadMailbox,
    BadDomain,
    InactiveMailbox,
    QuotaIssues,
    SpamRelated,
    PolicyRelated,
    ContentRelated,
    RoutingErrors,
    RelayingIssues,
    MessageExpired,
    NoAnswerFromHost,
    BadConnection,
    BadConfiguration,
    ProtocolErrors,
    InvalidSender,
    VirusRelated,
    Other,
}

named!(Category {
    BadMailbox => "bad-mailbox",
    BadDomain => "bad-domain",
    InactiveMailbox => "inactive-mailbox",
    QuotaIssues => "quota-issues",
    SpamRelated => "spam-related",
    PolicyRelated => "policy-related",
    ContentRelated => "content-related",
    RoutingErrors => "routing-errors",
    RelayingIssues => "relaying-issues",
    MessageExpired => "message-expired",
    NoAnswerFromHost => "no-answer-from-host",
    BadConnection => "bad-connection",
    BadConfiguration => "bad-configuration",
    ProtocolErrors => "protocol-errors",
    InvalidSender => "invalid-sender",
    VirusRelated => "virus-related",
    Other => "other",
});

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The reply of our own transport (direct or relay) during the SMTP session.
    Smtp,
    /// A delivery status notification (RFC 3464) or a bounce mail.
    Dsn,
    /// An abuse report (RFC 5965).
    Arf,
    /// A record of PowerMTA's accounting file.
    PmtaAccounting,
    /// `POST /api/v1/webhooks/pmta-bounce`.
    PmtaWebhook,
    /// `POST /api/v1/webhooks/mailwizz-bounce`.
    MailwizzWebhook,
}

named!(Source {
    Smtp => "smtp",
    Dsn => "dsn",
    Arf => "arf",
    PmtaAccounting => "pmta_accounting",
    PmtaWebhook => "pmta_webhook",
    MailwizzWebhook => "mailwizz_webhook",
});

/// Where a bounce forwarded to its data source (`bounce_url`) is: waiting for its next
/// try, taken by the source, or given up after the last retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForwardState {
    Pending,
    Delivered,
    Dead,
}

named!(ForwardState {
    Pending => "pending",
    Delivered => "delivered",
    Dead => "dead",
});

/// What an event says about the reply it reports: as much as its source knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The SMTP reply code (550).
    pub code: Option<u16>,
    /// The enhanced status code (RFC 3463: `5.1.1`).
    pub status: Option<String>,
    /// The server's text, or the DSN's diagnostic.
    pub diagnostic: String,
}

impl Reply {
    /// A reply from an SMTP line such as `550 5.1.1 <a@b> User unknown`: the code, the
    /// enhanced status when the text starts with one, and the whole line as diagnostic.
    pub fn from_smtp(code: Option<u16>, text: &str) -> Self {
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("");
        // A continuation line as servers write it (`421-4.7.28 Our system…`) names its
        // code and status the same way.
        let dash = first
            .split_once('-')
            .filter(|(c, _)| c.len() == 3)
            .and_then(|(c, s)| Some((c.parse::<u16>().ok()?, s)));
        let (code, status) = match (first.parse::<u16>(), dash) {
            (Ok(c), _) if (200..600).contains(&c) => (Some(c), words.next().and_then(parse_status)),
            (_, Some((c, s))) if (200..600).contains(&c) => (Some(c), parse_status(s)),
            _ => (code, parse_status(first)),
        };
        Self {
            code,
            status,
            diagnostic: text.trim().to_owned(),
        }
    }

    /// Whether the reply says "try again": a 4xx code or a 4.x.x status.
    pub fn is_temporary(&self) -> bool {
        match (&self.status, self.code) {
            (Some(s), _) => s.starts_with('4'),
            (None, Some(c)) => (400..500).contains(&c),
            (None, None) => false,
        }
    }
}

/// An enhanced status code (`5.1.1`, `4.7.26`), normalised; `None` when the text is not
/// one (RFC 3463: class 2, 4 or 5, subject 0–999, detail 0–999).
pub fn parse_status(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches([',', ';', ':', ')']);
    let text = text.trim_start_matches(['(', '#']);
    let mut parts = text.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    if parts.next().is_some() || !matches!(class, "2" | "4" | "5") {
        return None;
    }
    let number = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    if !number(subject) || !number(detail) {
        return None;
    }
    let subject: u16 = subject.parse().ok()?;
    let detail: u16 = detail.parse().ok()?;
    Some(format!("{class}.{subject}.{detail}"))
}

/// A classified event: what it is, what it means, and what it refers to, so that the
/// one use-case that applies feedback can find the message and act.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryEvent {
    pub kind: EventKind,
    pub class: Class,
    pub category: Category,
    pub source: Source,
    /// The recipient's address, as the source reports it.
    pub recipient: String,
    pub reply: Reply,
    /// Our message id, when the source carries it (a per-message return path, our
    /// Message-ID in the original headers, a header column of the accounting file).
    pub message_id: Option<String>,
    /// The campaign, when the source carries it (PowerMTA's job id, `X-Campaign-ID`).
    pub campaign_id: Option<String>,
    /// The sending IP address, when the source knows it.
    pub ip_address: Option<String>,
    /// The receiving server that answered.
    pub remote_mta: Option<String>,
    /// When it happened (epoch ms), by the source's clock.
    pub occurred_at: i64,
    /// Where the raw record can be found again (a file and line, a stored report's id).
    pub raw_ref: Option<String>,
}

/// What an event's kind and reply make of it. The rules give the category and, for a
/// final refusal, the class; a temporary reply is never hard; a deferral has no effect.
pub fn classify(rules: &Rules, kind: EventKind, reply: &Reply) -> (Class, Category) {
    match kind {
        EventKind::Delivered => (Class::Delivered, Category::Other),
        EventKind::Complaint => (Class::Complaint, Category::SpamRelated),
        EventKind::Deferred => {
            let (_, category) = rules
                .classify(reply)
                .unwrap_or((Class::Soft, Category::Other));
            (Class::NoEffect, category)
        }
        EventKind::Bounced => match rules.classify(reply) {
            Some((Class::Hard, category)) if reply.is_temporary() => (Class::Soft, category),
            Some(found) => found,
            None => (Class::Soft, Category::Other),
        },
    }
}

/// What a webhook's `type` says: `hard`, `soft`, `block`, `complaint`… The kind of event
/// and the class its sender gave, if any.
pub fn reported_type(text: &str) -> Option<(EventKind, Option<Class>)> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "hard" | "permanent" | "hard_bounce" | "hard-bounce" => {
            (EventKind::Bounced, Some(Class::Hard))
        }
        "soft" | "transient" | "temporary" | "soft_bounce" | "soft-bounce" => {
            (EventKind::Bounced, Some(Class::Soft))
        }
        "block" | "blocked" => (EventKind::Bounced, Some(Class::Block)),
        // MailWizz's own refusals (its suppression, a blacklisted address).
        "internal" => (EventKind::Bounced, Some(Class::NoEffect)),
        "bounce" | "bounced" | "failed" => (EventKind::Bounced, None),
        "complaint" | "spam" | "abuse" | "fbl" => (EventKind::Complaint, None),
        "delivered" | "delivery" => (EventKind::Delivered, None),
        "deferred" | "delayed" => (EventKind::Deferred, None),
        _ => return None,
    })
}

/// A reported event's class and category: the rules read the reply when it says
/// something they know; otherwise the sender's word stands (a hard bounce without a
/// reply is a bad mailbox).
pub fn classify_reported(
    rules: &Rules,
    kind: EventKind,
    claimed: Option<Class>,
    reply: &Reply,
) -> (Class, Category) {
    if kind == EventKind::Bounced
        && let Some(claimed) = claimed
        && rules.classify_by_words(reply).is_none()
    {
        let category = match claimed {
            Class::Hard => Category::BadMailbox,
            Class::Block => Category::PolicyRelated,
            _ => Category::Other,
        };
        return (claimed, category);
    }
    classify(rules, kind, reply)
}

#[cfg(test)]
mod tests;
