//! PowerMTA's status from its HTTP management interface (`http-mgmt-port`, loopback only):
//! the web monitor's pages with `?format=xml` — `/status` (traffic, connections, queue
//! totals), `/queues` (per domain/virtual-MTA queue), `/vmtas`, `/domains` — each wrapped
//! in `<rsp><data>…</data></rsp>`.
//!
//! Reading is tolerant: each figure is looked up by element name inside its block, and one
//! that is absent (another PowerMTA version) stays `None` instead of failing the poll.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("PowerMTA management interface unreachable: {0}")]
    Unreachable(String),
    #[error("PowerMTA answered {status} for {path}")]
    Http { path: String, status: u16 },
    #[error("PowerMTA's {path} is not the XML expected: {reason}")]
    Format { path: String, reason: String },
}

/// Recipients, messages and kilobytes over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Traffic {
    pub recipients: Option<u64>,
    pub messages: Option<u64>,
    pub kb: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub version: Option<String>,
    pub out_last_hour: Traffic,
    pub out_last_minute: Traffic,
    pub in_last_hour: Traffic,
    pub smtp_in_connections: Option<u64>,
    pub smtp_out_connections: Option<u64>,
    pub queued_recipients: Option<u64>,
    pub queued_domains: Option<u64>,
    pub queued_kb: Option<u64>,
}

/// One queue: a destination domain through one virtual MTA (`gmail.com/vmta-1-2-3-4`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Queue {
    pub name: String,
    pub domain: String,
    pub vmta: Option<String>,
    pub recipients: Option<u64>,
    pub kb: Option<u64>,
    pub connections: Option<u64>,
    pub paused: bool,
    /// `normal` or `backoff`.
    pub mode: Option<String>,
}

/// A virtual MTA or a domain, with what it has queued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub name: String,
    pub recipients: Option<u64>,
    pub domains: Option<u64>,
    pub kb: Option<u64>,
    pub connections: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub totals: Totals,
    pub queues: Vec<Queue>,
    pub vmtas: Vec<Summary>,
    pub domains: Vec<Summary>,
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn path<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    names: &[&str],
) -> Option<roxmltree::Node<'a, 'input>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

fn text_at(node: roxmltree::Node<'_, '_>, names: &[&str]) -> Option<String> {
    path(node, names)
        .and_then(|n| n.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn number_at(node: roxmltree::Node<'_, '_>, names: &[&str]) -> Option<u64> {
    // Figures may come as `12345` or `12,345`.
    text_at(node, names).and_then(|t| t.replace(',', "").parse().ok())
}

fn traffic(node: roxmltree::Node<'_, '_>, period: &str, direction: &str) -> Traffic {
    let at = |field: &str| number_at(node, &[period, direction, field]);
    Traffic {
        recipients: at("rcp"),
        messages: at("msg"),
        kb: at("kb"),
    }
}

/// The `<data>` element of an answer.
fn data<'a>(
    doc: &'a roxmltree::Document<'a>,
    page: &str,
) -> Result<roxmltree::Node<'a, 'a>, StatusError> {
    let root = doc.root_element();
    if root.tag_name().name() != "rsp" {
        return Err(StatusError::Format {
            path: page.to_owned(),
            reason: format!("root element <{}>, not <rsp>", root.tag_name().name()),
        });
    }
    child(root, "data").ok_or_else(|| StatusError::Format {
        path: page.to_owned(),
        reason: "no <data>".into(),
    })
}

fn parse<'a>(xml: &'a str, page: &str) -> Result<roxmltree::Document<'a>, StatusError> {
    roxmltree::Document::parse(xml).map_err(|e| StatusError::Format {
        path: page.to_owned(),
        reason: e.to_string(),
    })
}

/// `/status?format=xml`.
pub fn parse_totals(xml: &str) -> Result<Totals, StatusError> {
    let doc = parse(xml, "/status")?;
    let data = data(&doc, "/status")?;
    let status = child(data, "status").unwrap_or(data);
    let traffic_node = child(status, "traffic").unwrap_or(status);
    Ok(Totals {
        version: text_at(status, &["version"]),
        out_last_hour: traffic(traffic_node, "lastHr", "out"),
        out_last_minute: traffic(traffic_node, "lastMin", "out"),
        in_last_hour: traffic(traffic_node, "lastHr", "in"),
        smtp_in_connections: number_at(status, &["conn", "smtpIn", "cur"]),
        smtp_out_connections: number_at(status, &["conn", "smtpOut", "cur"]),
        queued_recipients: number_at(status, &["queue", "smtp", "rcp"]),
        queued_domains: number_at(status, &["queue", "smtp", "dom"]),
        queued_kb: number_at(status, &["queue", "smtp", "kb"]),
    })
}

/// `/queues?format=xml`: `<queue>` elements.
pub fn parse_queues(xml: &str) -> Result<Vec<Queue>, StatusError> {
    let doc = parse(xml, "/queues")?;
    let data = data(&doc, "/queues")?;
    Ok(data
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "queue")
        .filter_map(|q| {
            let name = text_at(q, &["name"])?;
            let (domain, vmta) = match name.split_once('/') {
                Some((d, v)) => (d.to_owned(), Some(v.to_owned()).filter(|v| !v.is_empty())),
                None => (name.clone(), None),
            };
            Some(Queue {
                domain,
                vmta,
                recipients: number_at(q, &["rcp"]),
                kb: number_at(q, &["kb"]),
                connections: number_at(q, &["conn"]),
                paused: text_at(q, &["paused"])
                    .is_some_and(|p| p == "true" || p == "yes" || p == "1"),
                mode: text_at(q, &["mode"]),
                name,
            })
        })
        .collect())
}

/// `/vmtas?format=xml` (`<vmta>`) or `/domains?format=xml` (`<domain>`).
pub fn parse_summaries(xml: &str, page: &str, element: &str) -> Result<Vec<Summary>, StatusError> {
    let doc = parse(xml, page)?;
    let data = data(&doc, page)?;
    Ok(data
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == element)
        .filter_map(|n| {
            Some(Summary {
                name: text_at(n, &["name"])?,
                recipients: number_at(n, &["rcp"]),
                domains: number_at(n, &["dom"]),
                kb: number_at(n, &["kb"]),
                connections: number_at(n, &["conn"]),
            })
        })
        .collect())
}

/// How long a poll of the management interface may take (it is on loopback).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Polls the management interface at `base` (`http://127.0.0.1:1983`).
pub async fn fetch(base: &str, timeout: Duration) -> Result<Status, StatusError> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| StatusError::Unreachable(e.to_string()))?;
    let base = base.trim_end_matches('/');
    let get = |page: &'static str| {
        let http = http.clone();
        let url = format!("{base}{page}?format=xml");
        async move {
            let response = http
                .get(&url)
                .send()
                .await
                .map_err(|e| StatusError::Unreachable(e.without_url().to_string()))?;
            if !response.status().is_success() {
                return Err(StatusError::Http {
                    path: page.to_owned(),
                    status: response.status().as_u16(),
                });
            }
            response
                .text()
                .await
                .map_err(|e| StatusError::Unreachable(e.without_url().to_string()))
        }
    };
    let (status, queues, vmtas, domains) = tokio::try_join!(
        get("/status"),
        get("/queues"),
        get("/vmtas"),
        get("/domains")
    )?;
    Ok(Status {
        totals: parse_totals(&status)?,
        queues: parse_queues(&queues)?,
        vmtas: parse_summaries(&vmtas, "/vmtas", "vmta")?,
        domains: parse_summaries(&domains, "/domains", "domain")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_by_name_and_missing_ones_stay_none() {
        let xml = "<rsp><data><status><version>5.0r3</version><traffic>\
            <lastHr><in><rcp>10</rcp></in><out><rcp>1,234</rcp><msg>1200</msg><kb>5000</kb></out></lastHr>\
            <lastMin><out><rcp>20</rcp></out></lastMin></traffic>\
            <conn><smtpIn><cur>2</cur></smtpIn><smtpOut><cur>17</cur></smtpOut></conn>\
            <queue><smtp><rcp>340</rcp><dom>4</dom><kb>900</kb></smtp></queue></status></data></rsp>";
        let t = parse_totals(xml).unwrap();
        assert_eq!(t.version.as_deref(), Some("5.0r3"));
        assert_eq!(t.out_last_hour.recipients, Some(1234));
        assert_eq!(t.out_last_minute.recipients, Some(20));
        assert_eq!(t.out_last_minute.messages, None);
        assert_eq!(t.in_last_hour.recipients, Some(10));
        assert_eq!(
            (
                t.smtp_out_connections,
                t.queued_recipients,
                t.queued_domains
            ),
            (Some(17), Some(340), Some(4))
        );
    }

    #[test]
    fn queues_split_into_domain_and_virtual_mta() {
        let xml = "<rsp><data><queue><name>gmail.com/vmta-46-62-168-55</name><rcp>300</rcp>\
            <conn>5</conn><paused>false</paused><mode>backoff</mode></queue>\
            <queue><name>yahoo.com</name><rcp>7</rcp></queue><queue><rcp>1</rcp></queue></data></rsp>";
        let q = parse_queues(xml).unwrap();
        assert_eq!(q.len(), 2, "a queue without a name is skipped");
        assert_eq!(q[0].domain, "gmail.com");
        assert_eq!(q[0].vmta.as_deref(), Some("vmta-46-62-168-55"));
        assert_eq!(q[0].mode.as_deref(), Some("backoff"));
        assert_eq!((q[1].vmta.clone(), q[1].recipients), (None, Some(7)));
    }

    #[test]
    fn other_documents_are_refused_with_the_page_named() {
        let e = parse_totals("<html><body>login</body></html>").unwrap_err();
        assert!(e.to_string().contains("/status"), "{e}");
        assert!(parse_queues("not xml").is_err());
    }
}
