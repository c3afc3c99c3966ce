//! Reading what comes back after a send: delivery status notifications (RFC 3464),
//! abuse reports (ARF, RFC 5965) and the free-text bounces older servers still write,
//! into the recipients they concern and what they say. MIME and header parsing is
//! mail-parser's; the delivery-status and feedback-report fields are header blocks it
//! parses too. Only the free-text fallback reads lines by hand: no crate knows those.

use ee_core::feedback::{EventKind, Reply, parse_status};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// What kind of report a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A delivery status notification (multipart/report; report-type=delivery-status).
    Dsn,
    /// An abuse feedback report (multipart/report; report-type=feedback-report).
    Arf,
    /// A bounce in free text, read by patterns.
    Text,
}

/// One recipient a report speaks of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub kind: EventKind,
    pub reply: Reply,
    /// The server that answered (`Remote-MTA`).
    pub remote_mta: Option<String>,
}

/// What a report says and what it lets us find the original message by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    pub recipients: Vec<Recipient>,
    /// The original message's `Message-ID`, without angle brackets.
    pub original_message_id: Option<String>,
    /// The original message's `X-Campaign-ID`.
    pub original_campaign_id: Option<String>,
    /// An ARF report's `Feedback-Type` (abuse, fraud, virus, other, not-spam…).
    pub feedback_type: Option<String>,
    /// An ARF report's `Source-IP`: the IP the original was sent from.
    pub source_ip: Option<String>,
}

/// Reads a report; `None` when the message is not one (no recipient found).
pub fn parse(raw: &[u8]) -> Option<Report> {
    let message = MessageParser::default().parse(raw)?;
    let report_type = message
        .content_type()
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let mut report = Report {
        kind: ReportKind::Text,
        recipients: Vec::new(),
        original_message_id: None,
        original_campaign_id: None,
        feedback_type: None,
        source_ip: None,
    };
    for part in message.parts.iter() {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let (ctype, subtype) = (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase(),
        );
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status") | ("message", "global-delivery-status") => {
                report.kind = ReportKind::Dsn;
                report.recipients.extend(delivery_status(part.contents()));
            }
            ("message", "feedback-report") => {
                report.kind = ReportKind::Arf;
                feedback_report(part.contents(), &mut report);
            }
            ("message", "rfc822") | ("message", "global") => {
                if let PartType::Message(original) = &part.body {
                    original_headers(original, &mut report);
                }
            }
            ("text", "rfc822-headers") => {
                if let Some(headers) = MessageParser::default().parse_headers(part.contents()) {
                    original_headers(&headers, &mut report);
                }
            }
            _ => {}
        }
    }
    if report.recipients.is_empty() {
        // A report forwarded inside another message (a mailing list, a mailbox rule).
        let nested = message.parts.iter().find_map(|part| match &part.body {
            PartType::Message(inner) if is_report(inner) => parse(inner.raw_message()),
            _ => None,
        });
        if nested.is_some() {
            return nested;
        }
    }
    if report.kind == ReportKind::Text && report_type.as_deref() != Some("feedback-report") {
        report.recipients = free_text(&message);
    }
    (!report.recipients.is_empty()).then_some(report)
}

fn is_report(message: &Message<'_>) -> bool {
    message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && ct.attribute("report-type").is_some()
    })
}

/// A header block's field, unfolded.
fn field(block: &Message<'_>, name: &str) -> Option<String> {
    let raw = block.header_raw(name)?;
    let unfolded = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!unfolded.is_empty()).then_some(unfolded)
}

/// `rfc822; a@b.example` → `a@b.example`.
fn address_field(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, a)| a).trim();
    let address = address.trim_matches(['<', '>']).trim();
    address.contains('@').then(|| address.to_owned())
}

/// The per-recipient blocks of a message/delivery-status part (the first block is the
/// per-message one).
fn delivery_status(contents: &[u8]) -> Vec<Recipient> {
    let text = String::from_utf8_lossy(contents).replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let Some(fields) = MessageParser::default().parse_headers(block.trim().as_bytes()) else {
            continue;
        };
        let recipient = field(&fields, "Original-Recipient")
            .and_then(|v| address_field(&v))
            .or_else(|| field(&fields, "Final-Recipient").and_then(|v| address_field(&v)));
        let Some(address) = recipient else {
            continue;
        };
        let action = field(&fields, "Action")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let status_text = field(&fields, "Status").unwrap_or_default();
        let status = status_text.split_whitespace().next().and_then(parse_status);
        let kind = match action.split_whitespace().next().unwrap_or("") {
            "delivered" | "relayed" | "expanded" => EventKind::Delivered,
            "delayed" => EventKind::Deferred,
            "failed" => EventKind::Bounced,
            _ if status.as_deref().is_some_and(|s| s.starts_with('4')) => EventKind::Deferred,
            _ if status.as_deref().is_some_and(|s| s.starts_with('2')) => EventKind::Delivered,
            _ => EventKind::Bounced,
        };
        // `Diagnostic-Code: smtp; 550 5.1.1 … User unknown`.
        let diagnostic = field(&fields, "Diagnostic-Code")
            .map(|d| {
                d.split_once(';')
                    .map_or(d.clone(), |(_, t)| t.trim().to_owned())
            })
            .unwrap_or_else(|| status_text.clone());
        let mut reply = Reply::from_smtp(None, &diagnostic);
        if status.is_some() {
            reply.status = status;
        }
        out.push(Recipient {
            address,
            kind,
            reply,
            remote_mta: field(&fields, "Remote-MTA").map(|v| {
                v.split_once(';')
                    .map_or(v.clone(), |(_, h)| h.trim().to_owned())
            }),
        });
    }
    out
}

/// The machine-readable part of an abuse report.
fn feedback_report(contents: &[u8], report: &mut Report) {
    let Some(fields) = MessageParser::default().parse_headers(contents) else {
        return;
    };
    report.feedback_type = field(&fields, "Feedback-Type").map(|t| t.to_ascii_lowercase());
    report.source_ip = field(&fields, "Source-IP");
    let kind = match report.feedback_type.as_deref() {
        // A report that the message was *not* spam changes nothing.
        Some("not-spam") => EventKind::Delivered,
        _ => EventKind::Complaint,
    };
    let mut recipients: Vec<String> = fields
        .header_values("Original-Rcpt-To")
        .filter_map(|v| v.as_text())
        .filter_map(address_field)
        .collect();
    if recipients.is_empty()
        && let Some(r) = field(&fields, "Original-Rcpt-To").and_then(|v| address_field(&v))
    {
        recipients.push(r);
    }
    for address in recipients {
        report.recipients.push(Recipient {
            address,
            kind,
            reply: Reply {
                diagnostic: format!(
                    "feedback report: {}",
                    report.feedback_type.as_deref().unwrap_or("abuse")
                ),
                ..Reply::default()
            },
            remote_mta: field(&fields, "Reporting-MTA"),
        });
    }
}

/// The original message's identifiers, from its copy or its headers. An ARF report
/// without `Original-Rcpt-To` names the recipient in the original's `To`.
fn original_headers(original: &Message<'_>, report: &mut Report) {
    if report.original_message_id.is_none() {
        report.original_message_id = original.message_id().map(str::to_owned);
    }
    if report.original_campaign_id.is_none() {
        report.original_campaign_id = field(original, "X-Campaign-ID");
    }
    if report.kind == ReportKind::Arf
        && report.recipients.is_empty()
        && let Some(to) = original.to().and_then(|a| a.first())
        && let Some(address) = to.address()
    {
        report.recipients.push(Recipient {
            address: address.to_owned(),
            kind: EventKind::Complaint,
            reply: Reply {
                diagnostic: "feedback report".into(),
                ..Reply::default()
            },
            remote_mta: None,
        });
    }
}

/// Words that put an address on a line in the failed recipient's place.
const FAILURE_WORDS: &[&str] = &[
    "unknown",
    "fail",
    "reject",
    "not exist",
    "doesn't exist",
    "not found",
    "undeliver",
    "quota",
    "invalid",
    "no such",
    "unavailable",
    "user",
    "mailbox",
    "refused",
    "could not",
    "couldn't",
    "unable",
    "permanent",
    "bad",
    "error",
    "disabled",
    "full",
    "550",
    "551",
    "552",
    "553",
    "554",
    "recipient",
    "not delivered",
    "delivery to",
];

/// Lines that start the copy of the original message: nothing after them is the report.
const ORIGINAL_STARTS: &[&str] = &[
    "original message",
    "returned message",
    "copy of the message",
    "message headers follow",
    "unsent message below",
    "undelivered message",
    "below this line is a copy",
    "the text of your message",
    "your message reads",
];

/// A bounce in free text: the addresses on the lines that report a failure, before the
/// copy of the original, minus the bounce's own correspondents.
fn free_text(message: &Message<'_>) -> Vec<Recipient> {
    let mut text = String::new();
    for body in message.text_bodies() {
        if let Some(t) = body.text_contents() {
            text.push_str(t);
            text.push('\n');
        }
    }
    if text.trim().is_empty() {
        return Vec::new();
    }
    let own: Vec<String> = [message.from(), message.to(), message.sender()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut found: Vec<Recipient> = Vec::new();
    let mut diagnostic_of: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = &line.replace("&nbsp;", " ");
        let lower = line.to_ascii_lowercase();
        if ORIGINAL_STARTS.iter().any(|s| lower.contains(s))
            || lower.starts_with("received:")
            || lower.starts_with("return-path:")
        {
            break;
        }
        // A quoted header of the original (`To: list@…`) names no failed recipient.
        let field_name = lower.trim_start().split(':').next().unwrap_or("");
        if lower.trim_start().contains(':')
            && matches!(
                field_name,
                "to" | "from" | "cc" | "sent" | "date" | "subject" | "reply-to"
            )
        {
            continue;
        }
        let addresses = addresses_in(line);
        let reports = FAILURE_WORDS.iter().any(|w| lower.contains(w))
            || line.trim().trim_matches(['<', '>', ':', '"']).contains('@')
                && line.split_whitespace().count() <= 2;
        for address in addresses {
            let lower_address = address.to_ascii_lowercase();
            let local = lower_address.split('@').next().unwrap_or("");
            if !reports
                || own.contains(&lower_address)
                || matches!(local, "postmaster" | "mailer-daemon" | "root")
                || found
                    .iter()
                    .any(|r| r.address.eq_ignore_ascii_case(&address))
            {
                continue;
            }
            diagnostic_of.push(line.trim().to_owned());
            found.push(Recipient {
                address,
                kind: EventKind::Bounced,
                reply: Reply::default(),
                remote_mta: None,
            });
        }
    }
    // The reply is the first line with a code or a status, else the address's line.
    let coded = text
        .lines()
        .find(|l| {
            l.split_whitespace().any(|w| {
                parse_status(w).is_some_and(|s| !s.starts_with('2'))
                    || w.trim_end_matches(['-', ':'])
                        .parse::<u16>()
                        .is_ok_and(|c| (400..600).contains(&c))
            })
        })
        .map(|l| l.trim().to_owned());
    for (recipient, own_line) in found.iter_mut().zip(diagnostic_of) {
        let line = coded.clone().unwrap_or(own_line);
        let from = line
            .split_whitespace()
            .position(|w| {
                w.trim_end_matches(['-', ':'])
                    .parse::<u16>()
                    .is_ok_and(|c| (400..600).contains(&c))
                    || parse_status(w).is_some()
            })
            .unwrap_or(0);
        let tail: Vec<&str> = line.split_whitespace().skip(from).collect();
        let tail = tail.join(" ");
        let tail = tail.replacen('-', " ", 1);
        recipient.reply = Reply::from_smtp(None, &tail);
        if recipient.reply.is_temporary() {
            recipient.kind = EventKind::Deferred;
        }
    }
    found
}

/// The mail addresses in a line of text, but those after "from" (the sender's).
fn addresses_in(line: &str) -> Vec<String> {
    let mut after_from = false;
    line.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '(' | ')' | '"' | '\'' | ',' | ';' | '[' | ']'
            )
    })
    .filter(|w| !w.is_empty())
    .filter(|w| {
        let skip = after_from;
        after_from = w.eq_ignore_ascii_case("from");
        !skip
    })
    .map(|w| w.trim_matches(|c: char| matches!(c, '.' | ':')))
    .map(|w| w.strip_prefix("mailto:").unwrap_or(w))
    .map(|w| w.strip_prefix("rfc822:").unwrap_or(w))
    .filter(|w| {
        let Some((local, domain)) = w.split_once('@') else {
            return false;
        };
        !local.is_empty()
            && domain.contains('.') | domain.eq_ignore_ascii_case("localhost")
            && !domain.contains('@')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    })
    .map(str::to_owned)
    .collect()
}

#[cfg(test)]
mod tests;
