//! The machine-readable parts: a DSN's per-recipient blocks (RFC 3464), an abuse
//! report's fields (RFC 5965) and the original message's identifying headers.

use ee_core::feedback::{EventKind, Reply, parse_status};
use mail_parser::{Message, MessageParser};

use super::{Limits, Recipient, Report, ReportError, ReportKind, clip};

/// A header block's field, unfolded.
pub(super) fn field(block: &Message<'_>, name: &str) -> Option<String> {
    let raw = block.header_raw(name)?;
    let unfolded = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!unfolded.is_empty()).then_some(unfolded)
}

/// `rfc822; a@b.example` → `a@b.example`.
pub(super) fn address_field(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, a)| a).trim();
    let address = address.trim_matches(['<', '>']).trim();
    // A quoted local part may hold spaces (`"a b"@example.org`); nothing else may.
    let spaced = match address.rsplit_once('@') {
        Some((local, _)) if local.starts_with('"') && local.ends_with('"') && local.len() > 1 => {
            address
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.contains(char::is_whitespace))
        }
        _ => address.contains(char::is_whitespace),
    };
    (address.contains('@') && address.len() <= 320 && !spaced).then(|| address.to_owned())
}

/// The per-recipient blocks of a message/delivery-status part (the first block is the
/// per-message one).
pub(super) fn delivery_status(
    contents: &[u8],
    limits: &Limits,
) -> Result<Vec<Recipient>, ReportError> {
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
        if out.len() == limits.max_recipients {
            return Err(ReportError::TooManyRecipients(limits.max_recipients));
        }
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
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| status_text.clone());
        let mut reply = Reply::from_smtp(None, &clip(&diagnostic, limits.max_line));
        if status.is_some() && !(reply.status.is_some() && status.as_deref() == Some("5.0.0")) {
            reply.status = status;
        }
        out.push(Recipient {
            address,
            kind,
            reply,
            remote_mta: field(&fields, "Remote-MTA").map(|v| {
                clip(
                    v.split_once(';').map_or(v.as_str(), |(_, h)| h.trim()),
                    limits.max_line,
                )
            }),
        });
    }
    Ok(out)
}

/// The machine-readable part of an abuse report.
pub(super) fn feedback_report(
    contents: &[u8],
    report: &mut Report,
    limits: &Limits,
) -> Result<(), ReportError> {
    let Some(fields) = MessageParser::default().parse_headers(contents) else {
        return Ok(());
    };
    report.feedback_type = field(&fields, "Feedback-Type").map(|t| clip(&t, 64).to_lowercase());
    report.source_ip = field(&fields, "Source-IP").map(|ip| clip(&ip, 64));
    let kind = match report.feedback_type.as_deref() {
        // A report that the message was *not* spam changes nothing.
        Some("not-spam") => EventKind::Delivered,
        _ => EventKind::Complaint,
    };
    let mut recipients: Vec<String> = Vec::new();
    // `Removal-Recipient` is the draft ARF's opt-out field for the same address.
    for value in fields
        .header_values("Original-Rcpt-To")
        .chain(fields.header_values("Removal-Recipient"))
        .filter_map(|v| v.as_text())
    {
        if recipients.len() == limits.max_recipients {
            return Err(ReportError::TooManyRecipients(limits.max_recipients));
        }
        if let Some(address) = address_field(value) {
            recipients.push(address);
        }
    }
    if recipients.is_empty()
        && let Some(r) = field(&fields, "Original-Rcpt-To").and_then(|v| address_field(&v))
    {
        recipients.push(r);
    }
    let remote_mta = field(&fields, "Reporting-MTA").map(|m| clip(&m, limits.max_line));
    for address in recipients {
        report.recipients.push(Recipient {
            address,
            kind,
            reply: complaint_reply(report.feedback_type.as_deref()),
            remote_mta: remote_mta.clone(),
        });
    }
    Ok(())
}

fn complaint_reply(feedback_type: Option<&str>) -> Reply {
    Reply {
        diagnostic: format!("feedback report: {}", feedback_type.unwrap_or("abuse")),
        ..Reply::default()
    }
}

/// The original message's identifiers, from its copy or its headers. An ARF report
/// without `Original-Rcpt-To` names the recipient in the original's `To`.
pub(super) fn original_headers(original: &Message<'_>, report: &mut Report) {
    if report.original_message_id.is_none() {
        report.original_message_id = original.message_id().map(|m| clip(m, 998));
    }
    if report.original_campaign_id.is_none() {
        report.original_campaign_id = field(original, "X-Campaign-ID").map(|c| clip(&c, 128));
    }
    if report.original_reference.is_none() {
        report.original_reference = field(original, "X-EE-Ref").map(|r| clip(&r, 128));
    }
    if report.original_return_path.is_none() {
        report.original_return_path = field(original, "Return-Path").map(|r| clip(&r, 320));
    }
    if report.kind == ReportKind::Arf
        && report.recipients.is_empty()
        && let Some(to) = original.to().and_then(|a| a.first())
        && let Some(address) = to.address()
        && let Some(address) = address_field(address)
    {
        report.recipients.push(Recipient {
            address,
            kind: match report.feedback_type.as_deref() {
                Some("not-spam") => EventKind::Delivered,
                _ => EventKind::Complaint,
            },
            reply: complaint_reply(report.feedback_type.as_deref()),
            remote_mta: None,
        });
    }
}

/// Hotmail's older complaint loop: no ARF part, the complained-of message attached with
/// the recipient in `X-HmXmrOriginalRecipient` (Microsoft's JMRP keeps that header).
pub(super) fn hotmail_complaint(message: &Message<'_>) -> Option<Report> {
    let original = message.parts.iter().find_map(|p| match &p.body {
        mail_parser::PartType::Message(m) if m.header_raw("X-HmXmrOriginalRecipient").is_some() => {
            Some(m)
        }
        _ => None,
    })?;
    let address = field(original, "X-HmXmrOriginalRecipient").and_then(|v| address_field(&v))?;
    let mut report = Report::new(
        ReportKind::Arf,
        super::Family::OutlookCom,
        "a complaint from Microsoft's loop (X-HmXmrOriginalRecipient)",
    );
    report.feedback_type = Some("abuse".into());
    report.recipients.push(Recipient {
        address,
        kind: EventKind::Complaint,
        reply: complaint_reply(Some("abuse")),
        remote_mta: None,
    });
    original_headers(original, &mut report);
    Some(report)
}
