//! SMTP TLS reporting (RFC 8460) end to end: direct deliveries to domains with and
//! without an MTA-STS policy (a loopback DNS server, a real SMTP peer, a loopback HTTPS
//! server), counted as sessions, reported the next day to the destinations each domain's
//! `_smtp._tls` record names: by mail (DKIM-signed) and over HTTPS; nothing to a domain
//! without a record; a destination that refuses tried again at the next run.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::Ipv4Addr;

use common::{Options, TestApp};
use ee_dns::testing::{Rec, Zone};
use ee_mail::testing::{Behaviour, TestHttpsServer, TestSmtpServer};
use mail_auth::report::tlsrpt::{PolicyType, ResultType, TlsReport};
use reqwest::StatusCode;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

fn zone(https_port: u16) -> Zone {
    let mut zone = Zone::new();
    for domain in [
        "sts.test",
        "plain.test",
        "quiet.test",
        "broken.test",
        "reports.test",
    ] {
        zone.add(domain, Rec::Mx(10, format!("mx.{domain}")))
            .add(&format!("mx.{domain}"), Rec::A(Ipv4Addr::LOCALHOST));
    }
    zone.add("mta-sts.sts.test", Rec::A(Ipv4Addr::LOCALHOST))
        .add("_mta-sts.sts.test", Rec::txt("v=STSv1; id=1;"))
        .add(
            "_smtp._tls.sts.test",
            Rec::txt("v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"),
        )
        // A policy announced but not to be had: its host has no address.
        .add("_mta-sts.broken.test", Rec::txt("v=STSv1; id=1;"))
        .add(
            "_smtp._tls.broken.test",
            Rec::txt("v=TLSRPTv1; rua=mailto:tls@reports.test"),
        )
        .add("tlsrpt.plain.test", Rec::A(Ipv4Addr::LOCALHOST))
        .add(
            "_smtp._tls.plain.test",
            Rec::txt(&format!(
                "v=TLSRPTv1; rua=https://tlsrpt.plain.test:{https_port}/v1/report"
            )),
        );
    zone
}

async fn send_to(app: &TestApp, key: &str, to: &str) {
    let r = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": to, "subject": "Hi", "text": "Hi", "from_email": "hello@brand.test",
                   "track_opens": false, "track_clicks": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

/// Sends `n` messages to `domain` and delivers them; the connections this made.
async fn deliver_to(
    app: &TestApp,
    smtp: &TestSmtpServer,
    key: &str,
    domain: &str,
    n: usize,
) -> u32 {
    let before = smtp.connections();
    for i in 0..n {
        send_to(app, key, &format!("r{i}@{domain}")).await;
    }
    app.deliver().await;
    u32::try_from(smtp.connections() - before).unwrap()
}

fn mailed_report(smtp: &TestSmtpServer, to: &str) -> Vec<(String, TlsReport)> {
    smtp.received()
        .into_iter()
        .filter(|r| r.rcpt_to == to)
        .map(|r| {
            let text = String::from_utf8_lossy(&r.data).into_owned();
            (text, TlsReport::parse_rfc5322(&r.data, 1 << 20).unwrap())
        })
        .collect()
}

async fn run_reports(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/jobs/scheduled.tls_reports/run",
            &app.admin,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    app.run_jobs().await;
}

#[tokio::test]
async fn each_domain_gets_the_days_sessions_it_asked_for() {
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let https = TestHttpsServer::start(
        &["mta-sts.sts.test", "tlsrpt.plain.test"],
        b"version: STSv1\r\nmode: testing\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n",
    )
    .await
    .unwrap();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(https.addr.port()),
            mx_port: smtp.addr.port(),
            mta_sts_port: https.addr.port(),
            mta_sts_roots: vec![https.ca_der.clone()],
            ..Default::default()
        })
        .spawn()
        .await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;

    // In clear (the peer offers no STARTTLS): failures under sts.test's testing policy.
    let sts_sessions = deliver_to(&app, &smtp, &key, "sts.test", 3).await;
    let broken_sessions = deliver_to(&app, &smtp, &key, "broken.test", 1).await;
    // Over TLS (a self-signed certificate): successes where no policy asks for more.
    smtp.enable_starttls();
    let plain_sessions = deliver_to(&app, &smtp, &key, "plain.test", 2).await;
    deliver_to(&app, &smtp, &key, "quiet.test", 1).await;
    assert!(sts_sessions >= 1 && plain_sessions >= 1 && broken_sessions == 1);
    assert_eq!(smtp.received_count(), 7);

    // The same day: nothing is reported yet.
    run_reports(&app).await;
    assert!(mailed_report(&smtp, "tlsrpt@reports.test").is_empty());
    assert!(https.posted().is_empty());

    // The next day. The first report to tls@reports.test is refused, once.
    smtp.script(
        "tls@reports.test",
        vec![
            Behaviour::RefuseRcpt(451, "4.3.0 try later".into()),
            Behaviour::Accept,
        ],
    );
    app.clock.advance_ms(DAY_MS);
    run_reports(&app).await;

    // sts.test: by mail, DKIM-signed by the tenant's domain, its sessions all failures.
    let mailed = mailed_report(&smtp, "tlsrpt@reports.test");
    assert_eq!(mailed.len(), 1);
    let (text, report) = &mailed[0];
    assert!(text.contains("TLS-Report-Domain: sts.test"), "{text}");
    assert!(
        text.contains("DKIM-Signature:") && text.contains("d=brand.test"),
        "{text}"
    );
    assert!(text.contains("From: <tls-reports@brand.test>"), "{text}");
    assert_eq!(report.organization_name.as_deref(), Some("BRAND"));
    assert_eq!(report.policies.len(), 1, "{report:?}");
    let p = &report.policies[0];
    assert_eq!(p.policy.policy_type, PolicyType::Sts);
    assert_eq!(p.policy.policy_domain, "sts.test");
    assert!(p.policy.policy_string.contains(&"mode: testing".to_owned()));
    assert_eq!(p.policy.mx_host, ["mx.sts.test"]);
    assert_eq!(p.summary.total_success, 0);
    assert_eq!(p.summary.total_failure, sts_sessions);
    assert_eq!(p.failure_details.len(), 1);
    let d = &p.failure_details[0];
    assert_eq!(d.result_type, ResultType::StartTlsNotSupported);
    assert_eq!(d.receiving_mx_hostname.as_deref(), Some("mx.sts.test"));
    assert_eq!(d.receiving_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(d.failed_session_count, sts_sessions);

    // plain.test: posted over HTTPS, gzip JSON, its sessions successes.
    let posted = https.posted();
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].head.starts_with("POST /v1/report "),
        "{}",
        posted[0].head
    );
    assert!(
        posted[0]
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/tlsrpt+gzip"),
        "{}",
        posted[0].head
    );
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(posted[0].body.as_slice())
        .read_to_end(&mut json)
        .unwrap();
    let report = TlsReport::parse_json(&json).unwrap();
    assert_eq!(report.policies.len(), 1);
    let p = &report.policies[0];
    assert_eq!(p.policy.policy_type, PolicyType::NoPolicyFound);
    assert_eq!(p.policy.policy_domain, "plain.test");
    assert_eq!(p.summary.total_success, plain_sessions);
    assert_eq!(p.summary.total_failure, 0);

    // The reports as the API lists them: broken.test's refused, quiet.test without a record.
    let listed = app.get("/api/v1/tls-reports", &key).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let state = |domain: &str| {
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["domain"] == domain)
            .map(|r| r["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        state("sts.test").as_deref(),
        Some("sent"),
        "{}",
        listed.body
    );
    assert_eq!(state("plain.test").as_deref(), Some("sent"));
    assert_eq!(state("quiet.test").as_deref(), Some("no_record"));
    assert_eq!(state("broken.test").as_deref(), Some("failed"));
    assert!(mailed_report(&smtp, "tls@reports.test").is_empty());

    // The next run sends what was refused, and nothing twice.
    run_reports(&app).await;
    assert_eq!(mailed_report(&smtp, "tlsrpt@reports.test").len(), 1);
    assert_eq!(https.posted().len(), 1);
    let mailed = mailed_report(&smtp, "tls@reports.test");
    assert_eq!(mailed.len(), 1);
    let report = &mailed[0].1;
    // broken.test: the policy its record announced could not be fetched (a failure of
    // the sts kind), and the session itself held to no policy, over clear text.
    let kinds: Vec<(PolicyType, u32, u32)> = report
        .policies
        .iter()
        .map(|p| {
            (
                p.policy.policy_type,
                p.summary.total_success,
                p.summary.total_failure,
            )
        })
        .collect();
    assert!(kinds.contains(&(PolicyType::Sts, 0, 1)), "{report:?}");
    assert!(
        kinds.contains(&(PolicyType::NoPolicyFound, 0, 1)),
        "{report:?}"
    );
    let fetch = report
        .policies
        .iter()
        .find(|p| p.policy.policy_type == PolicyType::Sts)
        .unwrap();
    assert_eq!(
        fetch.failure_details[0].result_type,
        ResultType::StsPolicyFetchError
    );
    let listed = app.get("/api/v1/tls-reports", &key).await;
    let broken = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["domain"] == "broken.test")
        .cloned()
        .unwrap();
    assert_eq!(broken["state"], "sent", "{broken}");
    assert_eq!(broken["attempts"], 2);
    assert_eq!(broken["failed"], 2);

    // Another tenant sees none of them.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let listed = app.get("/api/v1/tls-reports", &other_key).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    app.finish().await;
}
