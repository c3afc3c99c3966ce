//! MTA-STS in direct delivery (RFC 8461), against a loopback DNS server, a loopback HTTPS
//! server serving the policies (its certificate from a CA the test trusts) and a real SMTP
//! peer: `enforce` never sends in clear nor to a host the policy does not name nor over
//! an unverified certificate; `testing` delivers and records what it would have refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;

use common::{Options, TestApp};
use ee_dns::testing::{Rec, Zone};
use ee_mail::testing::{TestHttpsServer, TestSmtpServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn policy(mode: &str, mx: &str) -> Vec<u8> {
    format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n").into_bytes()
}

fn zone() -> Zone {
    let mut zone = Zone::new();
    for domain in [
        "enforced.test",
        "elsewhere.test",
        "testing.test",
        "verified.test",
    ] {
        zone.add(domain, Rec::Mx(10, format!("mx.{domain}")))
            .add(&format!("mx.{domain}"), Rec::A(Ipv4Addr::LOCALHOST))
            .add(&format!("mta-sts.{domain}"), Rec::A(Ipv4Addr::LOCALHOST))
            .add(
                &format!("_mta-sts.{domain}"),
                Rec::txt("v=STSv1; id=20261206T0000;"),
            );
    }
    zone
}

async fn send(app: &TestApp, key: &str, to: &str) -> String {
    let r = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": to, "subject": "Hi", "text": "Hi", "from_email": "hello@brand.test",
                   "track_opens": false, "track_clicks": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn message(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/api/v2/messages/{id}"), key).await.body
}

#[tokio::test]
async fn enforce_never_sends_in_clear_and_testing_records_what_it_would_refuse() {
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let https = TestHttpsServer::start(
        &[
            "mta-sts.enforced.test",
            "mta-sts.elsewhere.test",
            "mta-sts.testing.test",
            "mta-sts.verified.test",
        ],
        &policy("enforce", "mx.enforced.test"),
    )
    .await
    .unwrap();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
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

    // enforce, and the MX (no STARTTLS) is the one it names: deferred, never sent in clear.
    let enforced = send(&app, &key, "a@enforced.test").await;
    app.deliver().await;
    let m = message(&app, &key, &enforced).await;
    assert_eq!(m["state"], "deferred", "{m}");
    assert_eq!(smtp.received_count(), 0, "nothing in clear");
    assert!(smtp.connections() >= 1, "it did try the host");

    // enforce, naming another host than the MX: deferred before any connection.
    https.serve(&policy("enforce", "mx.other.test"));
    let before = smtp.connections();
    let elsewhere = send(&app, &key, "b@elsewhere.test").await;
    app.deliver().await;
    let m = message(&app, &key, &elsewhere).await;
    assert_eq!(m["state"], "deferred", "{m}");
    assert!(
        m["state_reason"]
            .as_str()
            .unwrap()
            .contains("none of the MX hosts (mx.elsewhere.test) is one the policy names"),
        "{m}"
    );
    assert_eq!(
        smtp.connections(),
        before,
        "no connection to a host not named"
    );

    // testing: delivered in clear, and what the policy would have refused recorded.
    https.serve(&policy("testing", "mx.testing.test"));
    let testing = send(&app, &key, "c@testing.test").await;
    app.deliver().await;
    let m = message(&app, &key, &testing).await;
    assert_eq!(m["state"], "sent", "{m}");
    let sent = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "sent")
        .cloned()
        .unwrap();
    assert_eq!(sent["mta_sts"], "testing: no TLS", "{m}");
    assert_eq!(sent["tls"], Value::Null);
    assert_eq!(smtp.received_count(), 1);

    // enforce with STARTTLS offered but a certificate that does not verify (self-signed):
    // still deferred, nothing sent.
    smtp.enable_starttls();
    https.serve(&policy("enforce", "mx.verified.test"));
    let unverified = send(&app, &key, "d@verified.test").await;
    app.deliver().await;
    let m = message(&app, &key, &unverified).await;
    assert_eq!(m["state"], "deferred", "{m}");
    assert_eq!(smtp.received_count(), 1, "nothing more was sent");
    app.finish().await;
}
