//! Reading what comes back after a send: delivery status notifications (RFC 3464),
//! abuse reports (ARF, RFC 5965), the free-text bounces older servers still write, and
//! the auto-replies that are none of these, into the recipients they concern and what
//! they say. MIME and header parsing is mail-parser's; the delivery-status and
//! feedback-report fields are header blocks it parses too. Only the free-text readers go
//! through lines by hand: no crate knows those.
//!
//! What arrives is written by strangers: every reading is bounded ([`LIMITS`]) and a
//! message over a bound is refused with the bound it broke, never read at any cost.

mod autoreply;
mod dsn;
mod family;
mod text;

pub use family::Family;

use ee_core::feedback::{EventKind, Reply};
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
    /// A vacation or out-of-office reply, an auto-responder, a challenge to prove one is
    /// human: the message arrived; nothing to act on.
    AutoReply,
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
    /// The software or provider that wrote it, as far as its marks tell.
    pub family: Family,
    /// Why it was read as what it is (the part or the marks that told).
    pub why: String,
    /// The recipients it speaks of. An abuse report may name none (providers redact the
    /// address): the message it quotes tells which. An auto-reply names none.
    pub recipients: Vec<Recipient>,
    /// The original message's `Message-ID`, without angle brackets.
    pub original_message_id: Option<String>,
    /// The original message's `X-Campaign-ID`.
    pub original_campaign_id: Option<String>,
    /// The original message's reference header (`X-EE-Ref`), signed by us.
    pub original_reference: Option<String>,
    /// The original message's `Return-Path`, as the receiving side recorded it.
    pub original_return_path: Option<String>,
    /// An ARF report's `Feedback-Type` (abuse, fraud, virus, other, not-spam…).
    pub feedback_type: Option<String>,
    /// An ARF report's `Source-IP`: written by the reporter, so shown, never trusted.
    pub source_ip: Option<String>,
}

/// The bounds every reading keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message read.
    pub max_bytes: usize,
    /// MIME parts (counted by their `Content-Type` fields before parsing).
    pub max_parts: usize,
    /// Messages inside messages (`message/rfc822` in `message/rfc822`…).
    pub max_depth: usize,
    /// Recipients one report may name.
    pub max_recipients: usize,
    /// Lines of free text read for failed recipients.
    pub max_lines: usize,
    /// Characters of one line or one diagnostic kept.
    pub max_line: usize,
}

/// The bounds of every reading: far above what any real report needs (a DSN names one
/// recipient per message we send; RFC 5321 has servers take 100 per message).
pub const LIMITS: Limits = Limits {
    max_bytes: 10 * 1024 * 1024,
    max_parts: 256,
    max_depth: 8,
    max_recipients: 100,
    max_lines: 5_000,
    max_line: 2_000,
};

/// Why a message was not read as a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("is no delivery report, abuse report or bounce this reader knows")]
    NotAReport,
    #[error("is larger than {0} bytes")]
    TooLarge(usize),
    #[error("has more than {0} MIME parts")]
    TooManyParts(usize),
    #[error("nests messages more than {0} levels deep")]
    TooDeep(usize),
    #[error("names more than {0} recipients")]
    TooManyRecipients(usize),
}

impl ReportError {
    /// Over one of the bounds (refused), rather than simply no report (kept for a look).
    pub fn is_over_limit(&self) -> bool {
        !matches!(self, ReportError::NotAReport)
    }
}

/// Reads a report within [`LIMITS`].
pub fn parse(raw: &[u8]) -> Result<Report, ReportError> {
    parse_with(raw, &LIMITS)
}

/// Reads a report within `limits`.
pub fn parse_with(raw: &[u8], limits: &Limits) -> Result<Report, ReportError> {
    if raw.len() > limits.max_bytes {
        return Err(ReportError::TooLarge(limits.max_bytes));
    }
    // Bound mail-parser's work before it starts: it parses every part, at any depth.
    if content_types(raw) > limits.max_parts {
        return Err(ReportError::TooManyParts(limits.max_parts));
    }
    // Some stores keep a message after blank lines or an mbox `From ` line.
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let mut raw = &raw[start..];
    if raw.starts_with(b"From ")
        && let Some(end) = raw.iter().position(|&b| b == b'\n')
    {
        raw = &raw[end + 1..];
    }
    let mended = mend_headers(raw);
    let message = MessageParser::default()
        .parse(mended.as_ref())
        .ok_or(ReportError::NotAReport)?;
    if depth(&message) > limits.max_depth {
        return Err(ReportError::TooDeep(limits.max_depth));
    }
    let family = family::detect(&message);
    // The report itself, else one forwarded inside this message (a mailing list, a
    // mailbox rule), the shallowest first.
    let mut level: Vec<&Message<'_>> = vec![&message];
    while !level.is_empty() {
        let mut next = Vec::new();
        for m in &level {
            if let Some(mut report) = structured(m, limits)? {
                if report.family == Family::Generic {
                    report.family = family;
                }
                return Ok(report);
            }
            next.extend(m.parts.iter().filter_map(|p| match &p.body {
                PartType::Message(inner) if is_report(inner) => Some(inner),
                _ => None,
            }));
        }
        level = next;
    }
    if let Some(report) = dsn::hotmail_complaint(&message) {
        return Ok(report);
    }
    if let Some(why) = autoreply::detect(&message) {
        let mut report = Report::new(ReportKind::AutoReply, family, why);
        original_of(&message, &mut report);
        return Ok(report);
    }
    let recipients = text::read(&message, family, limits)?;
    if recipients.is_empty() {
        return Err(ReportError::NotAReport);
    }
    let mut report = Report::new(
        ReportKind::Text,
        family,
        format!("a bounce in free text, read as {}", family.as_str()),
    );
    report.recipients = recipients;
    original_of(&message, &mut report);
    Ok(report)
}

impl Report {
    fn new(kind: ReportKind, family: Family, why: impl Into<String>) -> Self {
        Self {
            kind,
            family,
            why: why.into(),
            recipients: Vec::new(),
            original_message_id: None,
            original_campaign_id: None,
            original_reference: None,
            original_return_path: None,
            feedback_type: None,
            source_ip: None,
        }
    }
}

/// A DSN or an ARF report by its machine-readable part, when the message has one.
fn structured(message: &Message<'_>, limits: &Limits) -> Result<Option<Report>, ReportError> {
    let mut report: Option<Report> = None;
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
                let r = report.get_or_insert_with(|| {
                    Report::new(
                        ReportKind::Dsn,
                        Family::Generic,
                        format!("a delivery status notification ({ctype}/{subtype})"),
                    )
                });
                r.kind = ReportKind::Dsn;
                r.recipients
                    .extend(dsn::delivery_status(part.contents(), limits)?);
            }
            ("message", "feedback-report") => {
                let r = report.get_or_insert_with(|| {
                    Report::new(
                        ReportKind::Arf,
                        Family::Arf,
                        "an abuse report (message/feedback-report)",
                    )
                });
                r.kind = ReportKind::Arf;
                r.family = Family::Arf;
                dsn::feedback_report(part.contents(), r, limits)?;
            }
            _ => {}
        }
    }
    let Some(mut report) = report else {
        return Ok(None);
    };
    if report.kind == ReportKind::Dsn && report.recipients.is_empty() {
        // A delivery-status part naming nobody: perhaps the text says who.
        return Ok(None);
    }
    // Only where the codes say nothing either (no status, or x.0.0): a specific status
    // is better than the boilerplate around it.
    let thin = |r: &Reply| thin(r) && r.status.as_deref().is_none_or(|s| s.ends_with(".0.0"));
    if report.recipients.iter().any(|r| thin(&r.reply)) {
        // A DSN whose fields say no more than "5.0.0": its human-readable part may.
        let texts = text::read(message, Family::Generic, limits).unwrap_or_default();
        for r in report.recipients.iter_mut().filter(|r| thin(&r.reply)) {
            if let Some(t) = texts
                .iter()
                .find(|t| t.address.eq_ignore_ascii_case(&r.address))
                .or(texts.first().filter(|_| texts.len() == 1))
            {
                let mut reply = r.reply.clone();
                reply.diagnostic = clip(
                    &format!("{} {}", reply.diagnostic, t.reply.diagnostic),
                    limits.max_line,
                );
                if reply.code.is_none() {
                    reply.code = t.reply.code;
                }
                if reply.status.is_none()
                    || reply.status.as_deref().is_some_and(|s| s.ends_with(".0.0"))
                {
                    reply.status = t.reply.status.clone().or(reply.status);
                }
                r.reply = reply;
            }
        }
    }
    original_of(message, &mut report);
    Ok(Some(report))
}

/// A reply that says little more than its codes: too thin to classify by.
fn thin(reply: &Reply) -> bool {
    let words = reply
        .diagnostic
        .split_whitespace()
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() > 2)
        .count();
    words < 3
}

/// The original message's identifiers, from its copy or its headers.
fn original_of(message: &Message<'_>, report: &mut Report) {
    for part in message.parts.iter() {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ctype = ct.ctype().to_ascii_lowercase();
        let subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "rfc822") | ("message", "global") => {
                if let PartType::Message(original) = &part.body {
                    dsn::original_headers(original, report);
                }
            }
            ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                if let Some(headers) = MessageParser::default().parse_headers(part.contents()) {
                    dsn::original_headers(&headers, report);
                }
            }
            _ => {}
        }
    }
    if report.original_reference.is_none() {
        // A free-text bounce quotes the original's headers in its body.
        text::quoted_headers(message, report);
    }
}

fn is_report(message: &Message<'_>) -> bool {
    message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") && ct.attribute("report-type").is_some()
    })
}

/// The top header block with its broken folds mended: some report writers continue a
/// field (`boundary="…"`) on a line without the leading space folding needs, and the
/// parser then loses the MIME structure. A line of the block that is no field and does
/// not start with a space is taken as a continuation.
fn mend_headers(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_field = |line: &[u8]| {
        let name_end = line.iter().position(|&b| b == b':');
        name_end.is_some_and(|end| {
            end > 0
                && line[..end]
                    .iter()
                    .all(|&b| b.is_ascii_graphic() && b != b':')
        })
    };
    let mut broken = Vec::new();
    let mut at = 0;
    for (index, line) in raw.split(|&b| b == b'\n').enumerate() {
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        if trimmed.is_empty() {
            break;
        }
        if index > 0 && !matches!(trimmed[0], b' ' | b'\t') && !is_field(trimmed) {
            broken.push(at);
        }
        at += line.len() + 1;
    }
    if broken.is_empty() {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + broken.len());
    let mut from = 0;
    for at in broken {
        out.extend_from_slice(&raw[from..at]);
        out.push(b' ');
        from = at;
    }
    out.extend_from_slice(&raw[from..]);
    std::borrow::Cow::Owned(out)
}

/// How many `Content-Type` fields the raw message has: a bound on its MIME parts, read
/// in one pass without parsing.
pub(crate) fn content_types(raw: &[u8]) -> usize {
    const NAME: &[u8] = b"content-type:";
    raw.split(|&b| b == b'\n')
        .filter(|line| line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME))
        .count()
}

/// How deep messages nest in a parsed message, walked without recursion.
fn depth(message: &Message<'_>) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Message<'_>, usize)> = vec![(message, 0)];
    while let Some((m, d)) = stack.pop() {
        deepest = deepest.max(d);
        for part in m.parts.iter() {
            if let PartType::Message(inner) = &part.body {
                stack.push((inner, d + 1));
            }
        }
    }
    deepest
}

/// The bounce's sender, name and address, in lower case (`mail delivery subsystem
/// mailer-daemon@…`): what the families and the auto-reply test read.
fn sender(message: &Message<'_>) -> String {
    message
        .from()
        .and_then(|a| a.first())
        .map(|a| format!("{} {}", a.name().unwrap_or(""), a.address().unwrap_or("")))
        .unwrap_or_default()
        .to_lowercase()
}

/// Cuts a text to `max` characters (on a character boundary).
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
