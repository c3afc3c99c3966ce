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

/// Lines that say the server will keep trying: a delay warning, not a failure.
const DELAY_MARKS: &[&str] = &[
    "will continue trying",
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
        return Ok(Vec::new());
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
        .position(|l| {
            let lower = l.to_ascii_lowercase();
            ORIGINAL_STARTS.iter().any(|s| lower.contains(s))
                || lower.starts_with("received:")
                || lower.starts_with("return-path:")
        })
        .unwrap_or(lines.len());
    let lines = &lines[..end];
    let mut found: Vec<(Recipient, usize)> = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
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
        let reports = lone || FAILURE_WORDS.iter().any(|w| lower.contains(w));
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
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let whole = lines.join("\n").to_ascii_lowercase();
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
    let starts: Vec<usize> = found.iter().map(|(_, at)| *at).collect();
    for (index, (recipient, at)) in found.iter_mut().enumerate() {
        let next = starts.get(index + 1).copied().unwrap_or(lines.len());
        let block = block_of(lines, *at, next, family);
        let reason = if has_code(&block) || coded.is_none() {
            block
        } else {
            format!("{} {block}", coded.clone().unwrap_or_default())
        };
        recipient.reply = reply_of(&clip(&reason, limits.max_line));
        if delayed || recipient.reply.is_temporary() {
            recipient.kind = EventKind::Deferred;
        }
    }
    Ok(found.into_iter().map(|(r, _)| r).collect())
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
            if out.len() > 1 {
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
