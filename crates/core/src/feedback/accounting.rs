//! PowerMTA's accounting records (`acct.csv`) as delivery events. The columns are named by
//! the file's header line, so the mapping reads them by name: `type`, `timeLogged`, `orig`,
//! `rcpt`, `dsnAction`, `dsnStatus`, `dsnDiag`, `dsnMta`, `bounceCat`, `dlvSourceIp`, `vmta`,
//! `jobId`, `envId`, `header_*`.

use super::{Category, Class, DeliveryEvent, EventKind, Reply, Rules, Source, parse_status, verp};

/// What a record becomes: an event, nothing (a record type that is no delivery outcome,
/// such as a reception), or why it cannot be read.
pub type RecordResult = Result<Option<DeliveryEvent>, String>;

/// Reads one record; `get` gives a column's value by its header name (any case).
pub fn event<'a>(
    rules: &Rules,
    verp_key: &[u8],
    get: impl Fn(&str) -> Option<&'a str>,
) -> RecordResult {
    let field = |name: &str| get(name).map(str::trim).filter(|v| !v.is_empty());
    let Some(record_type) = field("type") else {
        return Err("no type".into());
    };
    let kind = match record_type {
        "d" => EventKind::Delivered,
        "b" | "rb" => EventKind::Bounced,
        "t" | "tq" => EventKind::Deferred,
        "f" => EventKind::Complaint,
        "rs" => match field("dsnAction").unwrap_or("") {
            "delivered" | "relayed" | "expanded" => EventKind::Delivered,
            "delayed" => EventKind::Deferred,
            _ => EventKind::Bounced,
        },
        _ => return Ok(None),
    };
    let recipient = field("rcpt")
        .or_else(|| field("header_To"))
        .map(|r| r.trim_matches(['<', '>']).to_owned())
        .filter(|r| r.contains('@'))
        .ok_or_else(|| format!("a {record_type} record without rcpt"))?;
    let occurred_at = field("timeLogged")
        .map(parse_time)
        .transpose()?
        .ok_or_else(|| "no timeLogged".to_owned())?;
    let diagnostic = field("dsnDiag")
        .map(|d| {
            d.split_once(';').map_or(d, |(proto, text)| {
                if proto.eq_ignore_ascii_case("smtp") {
                    text.trim()
                } else {
                    d
                }
            })
        })
        .unwrap_or("");
    let mut reply = Reply::from_smtp(None, diagnostic);
    if let Some(status) = field("dsnStatus")
        .and_then(|s| s.split_whitespace().next())
        .and_then(parse_status)
    {
        reply.status = Some(status);
    }
    let (mut class, mut category) = super::classify(rules, kind, &reply);
    let reported = field("bounceCat").and_then(Category::parse);
    if kind == EventKind::Bounced
        && rules.classify_by_words(&reply).is_none()
        && let Some(cat) = reported
    {
        // Our rules know nothing of the reply: PowerMTA's own category decides.
        category = cat;
        class = cat.default_class();
        if class == Class::Hard && reply.is_temporary() {
            class = Class::Soft;
        }
    }
    let message_id = field("orig")
        .and_then(|o| verp::message_of(verp_key, o))
        .or_else(|| {
            field("header_Message-ID")
                .or_else(|| field("header_Message-Id"))
                .and_then(verp::message_of_message_id)
        });
    Ok(Some(DeliveryEvent {
        kind,
        class,
        category,
        source: Source::PmtaAccounting,
        recipient,
        reply,
        message_id,
        campaign_id: field("header_X-Campaign-ID")
            .or_else(|| field("jobId"))
            .map(str::to_owned),
        ip_address: field("dlvSourceIp").map(str::to_owned),
        remote_mta: field("dsnMta").map(|m| {
            m.split_once(';')
                .map_or(m, |(_, host)| host.trim())
                .to_owned()
        }),
        occurred_at,
        raw_ref: None,
    }))
}

/// `2026-12-01 10:00:00+0000` (PowerMTA's default), or RFC 3339: epoch ms.
fn parse_time(text: &str) -> Result<i64, String> {
    let parsed = jiff::Timestamp::strptime("%Y-%m-%d %H:%M:%S%z", text)
        .or_else(|_| text.parse::<jiff::Timestamp>())
        .map_err(|_| format!("timeLogged {text:?} is not a time"))?;
    Ok(parsed.as_millisecond())
}

impl Category {
    /// The class a category stands for when nothing more is known (PowerMTA names the
    /// category but not the reply).
    pub fn default_class(self) -> Class {
        use Category::*;
        match self {
            BadMailbox | BadDomain => Class::Hard,
            SpamRelated | PolicyRelated | ContentRelated | VirusRelated => Class::Block,
            BadConfiguration | ProtocolErrors | InvalidSender | RelayingIssues => Class::NoEffect,
            InactiveMailbox | QuotaIssues | RoutingErrors | MessageExpired | NoAnswerFromHost
            | BadConnection | Other => Class::Soft,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> RecordResult {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        event(&Rules::shipped(), b"key", |name| {
            map.get(&name.to_ascii_lowercase()).map(String::as_str)
        })
    }

    #[test]
    fn records_become_events() {
        let id = "0191f00d-0000-7000-8000-000000000002";
        let orig = verp::return_path(b"key", id, "bounces.brand.example");
        let e = read(&[
            ("type", "b"),
            ("timeLogged", "2026-12-01 10:00:00+0100"),
            ("orig", &orig),
            ("rcpt", "gone@example.org"),
            ("dsnAction", "failed"),
            ("dsnStatus", "5.1.1 (bad destination mailbox address)"),
            ("dsnDiag", "smtp;550 5.1.1 <gone@example.org>: user unknown"),
            ("dsnMta", "dns;mx.example.org (192.0.2.9)"),
            ("bounceCat", "bad-mailbox"),
            ("dlvSourceIp", "198.51.100.7"),
            ("jobId", "campaign-1"),
        ])
        .expect("read")
        .expect("an event");
        assert_eq!(
            (e.kind, e.class, e.category),
            (EventKind::Bounced, Class::Hard, Category::BadMailbox)
        );
        assert_eq!(e.message_id.as_deref(), Some(id));
        assert_eq!(e.occurred_at, 1_796_115_600_000);
        assert_eq!(
            (e.reply.code, e.reply.status.as_deref()),
            (Some(550), Some("5.1.1"))
        );
        assert_eq!(e.ip_address.as_deref(), Some("198.51.100.7"));
        assert_eq!(e.campaign_id.as_deref(), Some("campaign-1"));
        assert_eq!(e.remote_mta.as_deref(), Some("mx.example.org (192.0.2.9)"));

        let d = read(&[
            ("type", "d"),
            ("timeLogged", "2026-12-01 10:00:00+0000"),
            ("rcpt", "a@b.example"),
            ("header_Message-ID", &format!("<{id}@brand.example>")),
        ])
        .expect("read")
        .expect("an event");
        assert_eq!(
            (d.kind, d.class, d.message_id.as_deref()),
            (EventKind::Delivered, Class::Delivered, Some(id))
        );
        let t = read(&[
            ("type", "t"),
            ("timeLogged", "2026-12-01 10:00:00+0000"),
            ("rcpt", "a@b.example"),
            ("dsnDiag", "smtp;452 4.2.2 mailbox full"),
        ])
        .expect("read")
        .expect("an event");
        assert_eq!(
            (t.kind, t.class, t.category),
            (EventKind::Deferred, Class::NoEffect, Category::QuotaIssues)
        );
        let f = read(&[
            ("type", "f"),
            ("timeLogged", "2026-12-01 10:00:00+0000"),
            ("header_To", "reader@example.net"),
        ])
        .expect("read")
        .expect("an event");
        assert_eq!(
            (f.kind, f.class, f.recipient.as_str()),
            (EventKind::Complaint, Class::Complaint, "reader@example.net")
        );
    }

    #[test]
    fn powermtas_category_decides_when_our_rules_know_nothing() {
        let e = read(&[
            ("type", "b"),
            ("timeLogged", "2026-12-01 10:00:00+0000"),
            ("rcpt", "a@b.example"),
            ("dsnDiag", "smtp;554 refused here"),
            ("bounceCat", "policy-related"),
        ])
        .expect("read")
        .expect("an event");
        assert_eq!(
            (e.class, e.category),
            (Class::Block, Category::PolicyRelated)
        );
    }

    #[test]
    fn other_records_are_skipped_and_bad_ones_named() {
        assert_eq!(read(&[("type", "r"), ("rcpt", "a@b.example")]), Ok(None));
        assert_eq!(read(&[("rcpt", "a@b.example")]), Err("no type".into()));
        assert_eq!(
            read(&[("type", "b"), ("timeLogged", "2026-12-01 10:00:00+0000")]),
            Err("a b record without rcpt".into())
        );
        assert_eq!(
            read(&[
                ("type", "d"),
                ("rcpt", "a@b.example"),
                ("timeLogged", "yesterday")
            ]),
            Err("timeLogged \"yesterday\" is not a time".into())
        );
    }
}
