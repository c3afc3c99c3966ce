//! Bounces in free text: the failed recipients on the lines that report a failure, before
//! the copy of the original, each with the lines that say why (its "block": the lines
//! after it up to a blank one, or the server's reply quoted near it). The families differ
//! in where they put the reason; the reading below takes what each of them writes.

use ee_core::feedback::{EventKind, Reply, parse_status};
use mail_parser::{Message, MessageParser};

use super::{Family, Limits, Recipient, Report, ReportError, clip};

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
    "not reach",
    "not be delivered",
    "deferred",
    "delayed",
    "blocked",
    "died",
    "addressed to",
    "not known",
    "no longer",
    "not valid",
    "reached our",
    "did not",
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
    "original message headers",
    "headers of the original",
    "rfc822 header",
];

/// Lines that say the server will keep trying: a delay warning, not a failure. Only these
/// (or a delay subject) make a report a deferral: a non-delivery report in free text is
/// final even when the last attempt met a 4xx ("mailfolder is full", "#4.4.1 … I'm not
/// going to try again"), as a DSN's `Action: failed` with a 4.x.x status is.
const DELAY_MARKS: &[&str] = &[
    "will continue trying",
    "will continue to try",
    "attempts will continue",
    "has been postponed",
    "will keep trying",
    "will retry",
    "still trying",
    "still being retried",
    "not yet been delivered",
    "has not been delivered yet",
    "delivery has been delayed",
    "message delayed",
    "is delayed",
    "delivery delayed",
    "no action is required on your part",
    "this is a warning",
    "warning: message",
    "warning: could not send message",
    "delivery status notification (delay)",
];

/// The failed recipients of a bounce in free text.
pub(super) fn read(
    message: &Message<'_>,
    family: Family,
    limits: &Limits,
) -> Result<Vec<Recipient>, ReportError> {
    let text = body_text(message, limits);
    if text.trim().is_empty() {
        return Ok(fallback(message, &[], "", limits));
    }
    let own: Vec<String> = [message.from(), message.to(), message.sender()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(str::to_ascii_lowercase)
        .collect();
    let lines: Vec<String> = text
        .lines()
        .take(limits.max_lines)
        .map(|l| {
            clip(
                &l.replace("&nbsp;", " ").replace('\u{a0}', " "),
                limits.max_line,
            )
        })
        .collect();
    let end = lines
        .iter()
        .position(|l| starts_original(l))
        .unwrap_or(lines.len());
    let lines = &lines[..end];
    let mut found: Vec<(Recipient, usize)> = Vec::new();
    // Lines after one that announces the failed recipients ("did not reach the following
    // recipient(s):") name them, whatever words they hold.
    let mut announced = 0;
    for (at, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        let announced_here = announced > 0;
        if ANNOUNCES.iter().any(|a| lower.contains(a)) {
            announced = 6;
        } else if announced > 0 && !line.trim().is_empty() {
            announced -= 1;
        }
        // A quoted header of the original (`To: list@…`) names no failed recipient.
        let field_name = lower.trim_start().split(':').next().unwrap_or("");
        if lower.trim_start().contains(':')
            && matches!(
                field_name,
                "to" | "from" | "cc" | "sent" | "date" | "subject" | "reply-to" | "sender"
            )
        {
            continue;
        }
        let lone = line.trim().trim_matches(['<', '>', ':', '"']).contains('@')
            && line.split_whitespace().count() <= 2;
        // `<a@b.example>: host … said: …` (Postfix, qmail): an address opening a line and
        // closed by a colon is the failed recipient's.
        let opening = line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.ends_with(':') && w.contains('@'));
        let reports =
            lone || opening || announced_here || FAILURE_WORDS.iter().any(|w| lower.contains(w));
        if !reports {
            continue;
        }
        for address in addresses_in(line) {
            let lower_address = address.to_ascii_lowercase();
            let local = lower_address.split('@').next().unwrap_or("");
            if own.contains(&lower_address)
                || matches!(local, "postmaster" | "mailer-daemon" | "root" | "abuse")
                || found
                    .iter()
                    .any(|(r, _)| r.address.eq_ignore_ascii_case(&address))
            {
                continue;
            }
            if found.len() == limits.max_recipients {
                return Err(ReportError::TooManyRecipients(limits.max_recipients));
            }
            found.push((
                Recipient {
                    address,
                    kind: EventKind::Bounced,
                    reply: Reply::default(),
                    remote_mta: None,
                },
                at,
            ));
        }
    }
    let whole = lines.join("\n").to_ascii_lowercase();
    if found.is_empty() {
        return Ok(fallback(message, lines, &whole, limits));
    }
    let delayed = DELAY_MARKS.iter().any(|m| whole.contains(m))
        || message
            .subject()
            .is_some_and(|s| is_delay_subject(&s.to_ascii_lowercase()));
    // The reply is the block of the address when it holds a code or the reason; else the
    // first line of the text with a code.
    let coded = lines
        .iter()
        .find(|l| has_code(l))
        .map(|l| l.trim().to_owned());
    // Lines elsewhere in the text that say why ("Reason: …", "Technical details …"),
    // for a recipient whose own lines hold no code.
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !l.contains('@') && REASON_LINES.iter().any(|w| lower.contains(w))
        })
        .take(4)
        .collect();
    let starts: Vec<usize> = found.iter().map(|(_, at)| *at).collect();
    for (index, (recipient, at)) in found.iter_mut().enumerate() {
        let next = starts.get(index + 1).copied().unwrap_or(lines.len());
        let block = block_of(lines, *at, next, family);
        let reason = if has_code(&block) {
            block
        } else {
            let mut reason = coded.clone().unwrap_or_default();
            for r in &reasons {
                if !block.contains(r) && !reason.contains(r) {
                    reason.push(' ');
                    reason.push_str(r);
                }
            }
            format!("{reason} {block}")
        };
        recipient.reply = reply_of(&clip(&reason, limits.max_line));
        if delayed {
            recipient.kind = EventKind::Deferred;
        }
    }
    Ok(found.into_iter().map(|(r, _)| r).collect())
}

/// A bounce whose text names no failed address we can read: the address the bounce's
/// own fields give (`X-Failed-Recipients`, the copy of the original's `To`), else none
/// (the message it came back for, named by its return path, tells whose), with the
/// lines that say why. Empty when the message is no bounce at all.
fn fallback(
    message: &Message<'_>,
    lines: &[String],
    whole: &str,
    limits: &Limits,
) -> Vec<Recipient> {
    if !is_bounce(message, whole) {
        return Vec::new();
    }
    let reason: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            has_code(l) || REASON_WORDS.iter().any(|w| lower.contains(w))
        })
        .take(6)
        .collect();
    let reason = if reason.is_empty() {
        lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .take(6)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        reason.join(" ")
    };
    let mut reply = reply_of(&clip(&reason, limits.max_line));
    if reply.diagnostic.is_empty() {
        reply.diagnostic = message.subject().unwrap_or("").to_owned();
    }
    let delayed = DELAY_MARKS.iter().any(|m| whole.contains(m));
    let kind = if delayed {
        EventKind::Deferred
    } else {
        EventKind::Bounced
    };
    let mut addresses: Vec<String> = message
        .header_values("X-Failed-Recipients")
        .filter_map(|v| v.as_text())
        .flat_map(|v| v.split(','))
        .filter_map(super::dsn::address_field)
        .take(limits.max_recipients)
        .collect();
    if addresses.is_empty()
        && let Some(to) = original_to(message)
    {
        addresses.push(to);
    }
    if addresses.is_empty() {
        addresses.push(String::new());
    }
    addresses
        .into_iter()
        .map(|address| Recipient {
            address,
            kind,
            reply: reply.clone(),
            remote_mta: None,
        })
        .collect()
}

/// The `To` of the copy of the original a bounce carries, as a part or quoted in its text.
fn original_to(message: &Message<'_>) -> Option<String> {
    for part in message.parts.iter() {
        if let mail_parser::PartType::Message(original) = &part.body
            && let Some(address) = original
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
            && address.contains('@')
        {
            return Some(address.to_owned());
        }
    }
    None
}

/// Whether a message says it is a bounce, by its sender, subject or stock sentences.
fn is_bounce(message: &Message<'_>, whole: &str) -> bool {
    let from = super::sender(message);
    let subject = message.subject().unwrap_or("").to_lowercase();
    BOUNCE_SENDERS.iter().any(|s| from.contains(s))
        || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
        || BOUNCE_SENTENCES.iter().any(|s| whole.contains(s))
}

/// Senders of bounces.
const BOUNCE_SENDERS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail delivery",
    "mail administrator",
    "mail system",
    "delivery subsystem",
    "mailer daemon",
];

/// Subjects of bounces.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered",
    "undeliverd",
    "delivery failure",
    "delivery failed",
    "delivery status notification",
    "returned mail",
    "failure notice",
    "mail delivery failed",
    "could not be delivered",
    "not delivered",
    "delivery problem",
    "nondeliverable",
    "non-deliverable",
    "non remis",
    "failed mail",
    "mail error",
    "unzustellbar",
    "no entregado",
    "não entregue",
];

/// Sentences only bounces write.
const BOUNCE_SENTENCES: &[&str] = &[
    "could not be delivered",
    "did not reach",
    "permanent error",
    "delivery has failed",
    "was not delivered",
    "cannot be delivered",
    "couldn't be delivered",
    "undeliverable",
    "delivery to the following",
    "has not been delivered",
    "message could not be sent",
    "failed to deliver",
];

/// Words of the lines that say why, in a bounce naming no address.
const REASON_WORDS: &[&str] = &[
    "reason",
    "unknown",
    "not exist",
    "not found",
    "invalid",
    "quota",
    "full",
    "disabled",
    "reject",
    "refused",
    "denied",
    "blocked",
    "spam",
    "expired",
    "exceeded",
    "timed out",
    "not known",
    "no such",
    "no longer",
    "not valid",
    "failed",
    "error",
];

/// Lines that give the reason apart from the address (in the same text).
const REASON_LINES: &[&str] = &[
    "reason:",
    "error:",
    "diagnostic",
    "the error that the other server returned",
    "remote host said",
    "remote server said",
    "said:",
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "mailbox full",
    "mailbox is full",
    "quota",
    "disabled",
    "not found",
];

/// Lines that announce the failed recipients on the lines after them.
const ANNOUNCES: &[&str] = &[
    "following recipient",
    "following address",
    "following destination",
    "following user",
    "address(es) failed",
    "addresses failed",
    "could not be delivered to:",
    "did not reach the following",
    "delivery to the following",
    "was not delivered to:",
    "permanent fatal errors",
    "undeliverable to the following",
    "could not deliver to",
    "unable to deliver to",
    "originally addressed to",
    "generated from",
];

/// Whether a line starts the copy of the original (nothing after it is the report).
fn starts_original(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    if lower.starts_with("received:") || lower.starts_with("return-path:") {
        return true;
    }
    // Sendmail opens its report with "The original message was received at …".
    // … and Symantec's gateway asks not to "resend your original message" mid-report.
    if lower.contains("original message was received")
        || lower.contains("resend your original message")
    {
        return false;
    }
    ORIGINAL_STARTS.iter().any(|s| lower.contains(s))
}

fn is_delay_subject(subject: &str) -> bool {
    [
        "delayed mail",
        "delivery delayed",
        "warning: message",
        "delay",
        "still being retried",
    ]
    .iter()
    .any(|s| subject.contains(s))
        && !subject.contains("fail")
}

/// The lines that say why an address failed: its own line and those after it, up to a
/// blank line after some text, the next address, or eight lines.
fn block_of(lines: &[String], at: usize, next: usize, _family: Family) -> String {
    let mut out: Vec<&str> = vec![lines[at].trim()];
    let mut i = at + 1;
    while i < next.min(at + 9) && i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            // A blank line ends the block once it holds more than the address, unless
            // the last line announces what follows ("because:", "Reason:").
            if out.len() > 1 && !out.last().is_some_and(|l| l.ends_with(':')) {
                break;
            }
        } else {
            out.push(line);
        }
        i += 1;
    }
    out.join(" ")
}

/// Whether a line holds a reply code or an enhanced status.
fn has_code(line: &str) -> bool {
    line.split_whitespace().any(|w| {
        parse_status(w).is_some_and(|s| !s.starts_with('2'))
            || w.trim_start_matches(['(', '#', '['])
                .trim_end_matches(['-', ':', ')', ']', ','])
                .parse::<u16>()
                .is_ok_and(|c| (400..600).contains(&c))
    })
}

/// A reply from a block: the code and status where they appear, the whole block as its
/// diagnostic.
fn reply_of(block: &str) -> Reply {
    let words: Vec<&str> = block.split_whitespace().collect();
    let code = words.iter().find_map(|w| {
        w.trim_start_matches(['(', '#', '['])
            .trim_end_matches(['-', ':', ')', ']', ','])
            .parse::<u16>()
            .ok()
            .filter(|c| (400..600).contains(c))
    });
    let status = words
        .iter()
        .filter_map(|w| parse_status(w))
        .find(|s| !s.starts_with('2'));
    Reply {
        code,
        status,
        diagnostic: block.trim().to_owned(),
    }
}

/// The text a bounce says, without the copy of the original: its plain text parts, or
/// its HTML made text.
fn body_text(message: &Message<'_>, limits: &Limits) -> String {
    let mut text = String::new();
    for body in message.text_bodies() {
        if let Some(t) = body.text_contents() {
            text.push_str(t);
            text.push('\n');
        }
        if text.len() > limits.max_bytes {
            break;
        }
    }
    if text.trim().is_empty() {
        for index in 0..message.html_body.len() {
            if let Some(t) = message.body_text(index) {
                text.push_str(&t);
                text.push('\n');
            }
        }
    }
    text
}

/// Our reference header quoted in a free-text bounce's body (a copy of the original's
/// headers pasted as text).
pub(super) fn quoted_headers(message: &Message<'_>, report: &mut Report) {
    let text = body_text(message, &super::LIMITS);
    let mut quoted = String::new();
    for line in text.lines().take(super::LIMITS.max_lines) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("x-ee-ref:")
            || lower.starts_with("message-id:")
            || lower.starts_with("x-campaign-id:")
            || lower.starts_with("return-path:")
        {
            quoted.push_str(line.trim());
            quoted.push_str("\r\n");
        }
    }
    if quoted.is_empty() {
        return;
    }
    if let Some(headers) = MessageParser::default().parse_headers(quoted.as_bytes()) {
        let kind = report.kind;
        super::dsn::original_headers(&headers, report);
        report.kind = kind;
    }
}

/// The mail addresses in a line of text, but those after "from" (the sender's).
fn addresses_in(line: &str) -> Vec<String> {
    let mut after_from = false;
    let mut previous = String::new();
    line.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '(' | ')' | '"' | '\'' | ',' | ';' | '[' | ']' | '='
            )
    })
    .filter(|w| !w.is_empty())
    .filter(|w| {
        let skip = after_from;
        // "(generated from a@b)": Exim names the failed address it expanded.
        after_from = w.eq_ignore_ascii_case("from") && !previous.eq_ignore_ascii_case("generated");
        previous = (*w).to_owned();
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
            && w.len() <= 320
            && domain.contains('.') | domain.eq_ignore_ascii_case("localhost")
            && !domain.contains('@')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    })
    .map(str::to_owned)
    .collect()
}
