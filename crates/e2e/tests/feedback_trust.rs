//! Feedback that strangers write: a report can neither crash the server nor act on a
//! tenant it was not sent about. Only what we signed (a message's return path, its
//! `X-EE-Ref` header) or our own Message-ID quoted back names a message; `Source-IP`,
//! `Original-Rcpt-To` and every other field the reporter writes choose nothing. Over the
//! API and over SMTP, on both databases.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use common::sending::{bounce_listener, bouncing_brand, contacts, post_raw, smtp_dialog};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An abuse report: its fields, then the original (or its headers) when given.
fn arf(to: &str, fields: &str, original: Option<&str>) -> String {
    let mut out = format!(
        "From: fbl@isp.example\r\nTo: {to}\r\nSubject: Abuse report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
         --F\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\r\n\
         --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: isp/1\r\n\
         Version: 1\r\n{fields}\r\n"
    );
    if let Some(original) = original {
        out.push_str(&format!(
            "--F\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n"
        ));
    }
    out.push_str("--F--\r\n");
    out
}

/// A DSN that names `rcpt` as failed.
fn dsn(rcpt: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test\r\nTo: whoever\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"Z\"\r\n\r\n\
         --Z\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\r\n--Z\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\n\
         Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--Z--\r\n"
    )
}

/// A report nested `depth` levels deep (multipart/report → message/rfc822 → …).
fn nested(depth: usize) -> String {
    let mut message = dsn("gone@example.test");
    for level in 0..depth {
        message = format!(
            "From: a@example.net\r\nSubject: {level}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"n{level}\"\r\n\r\n\
             --n{level}\r\nContent-Type: message/rfc822\r\n\r\n{message}\r\n--n{level}--\r\n"
        );
    }
    message
}

/// Tenant `other`: its own domain, relay, return-path domain, IP and contact paul.
async fn other_tenant(app: &TestApp, smtp: &TestSmtpServer) -> (String, String) {
    let tenant = app.tenant("other").await;
    let (_, key) = app.api_key(&tenant, "marketing").await;
    let domain = app
        .post(
            "/api/v1/domains",
            &key,
            json!({"domain": "other.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.body);
    app.relay_mode(&key, "other", smtp.addr.port()).await;
    let put = app
        .call(
            Method::PUT,
            "/api/v1/tenants/other/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta", "bounce_domain": "bounces.other.test"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "198.51.100.77", "hostname": "mta.other.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let r = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [{"email": "paul@example.org", "language": "fr"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (key, ip.body["id"].as_str().unwrap().to_owned())
}

/// What a forgery could have touched in tenant `other`: its feedback events, its
/// suppressions, paul's status, its IP's state and its alerts.
async fn untouched(app: &TestApp, key: &str, ip: &str) -> Value {
    let events = app.get("/api/v1/feedback/events", key).await;
    assert_eq!(events.body["items"], json!([]), "{}", events.body);
    let suppressed = app.get("/api/v2/suppressions", key).await;
    assert_eq!(suppressed.body["items"], json!([]), "{}", suppressed.body);
    let contacts = app
        .get("/api/v2/contacts?email=paul@example.org", key)
        .await;
    assert_eq!(
        contacts.body["items"][0]["status"], "active",
        "{}",
        contacts.body
    );
    let ip = app.get(&format!("/api/v1/ips/{ip}"), key).await;
    assert_eq!(ip.body["state"], "active", "{}", ip.body);
    let alerts = app.get("/api/v1/alerts", key).await;
    assert_eq!(alerts.body["items"], json!([]), "{}", alerts.body);
    app.get("/api/v1/feedback/events?unmatched=true", &app.admin)
        .await
        .body
}

async fn send_one(
    app: &TestApp,
    key: &str,
    from: &str,
    to: &str,
    smtp: &TestSmtpServer,
) -> (String, String, String) {
    let sent = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": to, "subject": "Hi", "html": "<p>hi</p>", "from_email": from}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap().to_owned();
    app.deliver().await;
    let received = smtp
        .received()
        .into_iter()
        .find(|r| r.rcpt_to == to)
        .unwrap();
    (
        id,
        received.mail_from,
        String::from_utf8_lossy(&received.data).into_owned(),
    )
}

#[tokio::test]
async fn forged_reports_leave_another_tenant_untouched_and_genuine_ones_still_act() {
    let (app, smtp, key_a) = bouncing_brand().await;
    contacts(
        &app,
        &key_a,
        &[("reader@example.test".into(), "fr", vec![])],
    )
    .await;
    let (key_b, ip_b) = other_tenant(&app, &smtp).await;
    // The attacker received one message of tenant A: its return path is all they know.
    let (_, return_path_a, _) = send_one(
        &app,
        &key_a,
        "hello@brand.test",
        "attacker@example.test",
        &smtp,
    )
    .await;

    let (port, _stop) = bounce_listener(&app, &["fbl@bounces.brand.test"]).await;

    // 1. An ARF to A's return path naming B's contact and B's IP: kept unmatched.
    let forged = arf(
        &return_path_a,
        "Original-Rcpt-To: paul@example.org\r\nSource-IP: 198.51.100.77\r\n",
        None,
    );
    let replies = smtp_dialog(port, &return_path_a, &forged).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    // 2. A DSN to A's return path naming B's contact.
    let replies = smtp_dialog(port, &return_path_a, &dsn("paul@example.org")).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    // 3. An ARF to the feedback-loop address with nothing of ours in it.
    let stray = arf(
        "fbl@bounces.brand.test",
        "Original-Rcpt-To: paul@example.org\r\nSource-IP: 198.51.100.77\r\n",
        Some(
            "From: x@other.test\r\nTo: paul@example.org\r\nMessage-ID: <made-up@other.test>\r\nSubject: x\r\n\r\nbody",
        ),
    );
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", &stray).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    // 4. One report naming ten thousand of B's addresses: refused outright.
    let mut many = String::new();
    for i in 0..10_000 {
        many.push_str(&format!("Original-Rcpt-To: paul{i}@example.org\r\n"));
    }
    let replies = smtp_dialog(port, &return_path_a, &arf(&return_path_a, &many, None)).await;
    assert!(replies.last().unwrap().starts_with("554"), "{replies:?}");
    // 5. The same by the API, with A's key: A's key speaks for A, never for B.
    let (status, report) = post_raw(
        &app,
        &format!("/api/v1/feedback/reports?name=forged&envelope_to={return_path_a}"),
        Some(&key_a),
        &[],
        &forged,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["unmatched"], 1, "{report}");
    let unmatched = untouched(&app, &key_b, &ip_b).await;
    let recipients: Vec<&str> = unmatched["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recipient"].as_str().unwrap())
        .collect();
    assert!(
        recipients
            .iter()
            .filter(|r| **r == "paul@example.org")
            .count()
            >= 3,
        "{unmatched}"
    );
    assert!(
        unmatched["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"].is_null())
    );

    // A genuine ARF for B's own message, sent to B's return path, still suppresses; the
    // Source-IP it carries (A's world) changes nothing.
    let (id_b, return_path_b, _) =
        send_one(&app, &key_b, "hello@other.test", "paul@example.org", &smtp).await;
    let genuine = arf(
        &return_path_b,
        "Original-Rcpt-To: paul@example.org\r\nSource-IP: 203.0.113.9\r\n",
        None,
    );
    let replies = smtp_dialog(port, &return_path_b, &genuine).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let events = app.get("/api/v1/feedback/events", &key_b).await;
    assert_eq!(
        events.body["items"][0]["message_id"],
        id_b.as_str(),
        "{}",
        events.body
    );
    assert_eq!(events.body["items"][0]["class"], "complaint");
    let suppressed = app.get("/api/v2/suppressions", &key_b).await;
    assert_eq!(
        suppressed.body["items"][0]["email"], "paul@example.org",
        "{}",
        suppressed.body
    );
    assert_eq!(suppressed.body["items"].as_array().unwrap().len(), 1);

    // A feedback loop's report to the accept-list address, quoting one of A's messages
    // (redacted: no Original-Rcpt-To, no To): applied to that message only.
    let (id_a, _, data_a) = send_one(
        &app,
        &key_a,
        "hello@brand.test",
        "reader@example.test",
        &smtp,
    )
    .await;
    assert!(data_a.contains("X-EE-Ref: "), "{data_a}");
    let headers_only: String = data_a
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("to:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let fbl = arf(
        "fbl@bounces.brand.test",
        "",
        Some(&format!("{headers_only}\r\n\r\nredacted")),
    );
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", &fbl).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let events = app
        .get("/api/v1/feedback/events?class=complaint", &key_a)
        .await;
    let items = events.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", events.body);
    assert_eq!(items[0]["message_id"], id_a.as_str());
    assert_eq!(items[0]["recipient"], "reader@example.test");
    let contacts = app
        .get("/api/v2/contacts?email=reader@example.test", &key_a)
        .await;
    assert_eq!(
        contacts.body["items"][0]["status"], "complained",
        "{}",
        contacts.body
    );
    // A forged reference (its tag changed), without our Message-ID, names nothing.
    let forged_ref = headers_only
        .replace("X-EE-Ref: ", "X-EE-Ref: 0")
        .replace("Message-ID: <", "Message-ID: <0");
    let fbl = arf(
        "fbl@bounces.brand.test",
        "",
        Some(&format!("{forged_ref}\r\n\r\nx")),
    );
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", &fbl).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let events = app
        .get("/api/v1/feedback/events?class=complaint", &key_a)
        .await;
    assert_eq!(
        events.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        events.body
    );
    app.finish().await;
}

#[tokio::test]
async fn a_report_nested_two_thousand_deep_is_refused_and_the_server_lives() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "marketing").await;
    let deep = nested(2_000);
    assert!(deep.len() > 250_000);
    let (status, body) = post_raw(
        &app,
        "/api/v1/feedback/reports?name=deep",
        Some(&key),
        &[],
        &deep,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "message", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MIME parts"),
        "{body}"
    );
    // Past the depth bound but within the parts bound: the depth is named.
    let (status, body) = post_raw(
        &app,
        "/api/v1/feedback/reports?name=deep9",
        Some(&key),
        &[],
        &nested(12),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("levels deep"),
        "{body}"
    );

    let (port, _stop) = bounce_listener(&app, &["fbl@bounces.brand.test"]).await;
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", &deep).await;
    assert!(
        replies.last().unwrap().starts_with("554 5.6.0"),
        "{replies:?}"
    );
    // Nothing of it was kept as unreadable mail, and the server still answers.
    let kept = app.get("/api/v1/feedback/unread", &app.admin).await;
    assert_eq!(kept.body["items"], json!([]), "{}", kept.body);
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", &dsn("gone@example.test")).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let health = app.get("/health", &app.admin).await;
    assert_eq!(health.status, StatusCode::OK);
    app.finish().await;
}

/// What a stranger can send the bounce listener over SMTP: garbage commands (the session
/// is closed after ten), an endless line, a hundred and one recipients, random bytes; each
/// gets its reply and the listener still takes the next report.
#[tokio::test]
async fn the_bounce_listener_answers_garbage_and_lives() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let (port, _stop) = bounce_listener(&app, &["fbl@bounces.brand.test"]).await;
    async fn talk(port: u16, bytes: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(bytes).await.unwrap();
        let _ = stream.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut out),
        )
        .await;
        String::from_utf8_lossy(&out).into_owned()
    }
    let garbage = "FOO bar\r\n".repeat(20);
    let replies = talk(port, garbage.as_bytes()).await;
    assert!(replies.contains("421 4.7.0 Too many errors"), "{replies}");
    let mut long = b"EHLO ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 100_000));
    long.extend_from_slice(b"\r\nQUIT\r\n");
    let replies = talk(port, &long).await;
    assert!(replies.contains("500 5.5.2"), "{replies}");
    let mut many = String::from("EHLO x\r\nMAIL FROM:<>\r\n");
    for _ in 0..101 {
        many.push_str("RCPT TO:<fbl@bounces.brand.test>\r\n");
    }
    many.push_str("QUIT\r\n");
    let replies = talk(port, many.as_bytes()).await;
    assert_eq!(replies.matches("250 2.1.5").count(), 100, "{replies}");
    assert!(
        replies.contains("452 4.5.3 Too many recipients"),
        "{replies}"
    );
    let random: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = talk(port, &random).await;
    // Still there.
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", &dsn("gone@example.test")).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    app.finish().await;
}

/// A bounce that names no address (old gateways write only "could not be delivered"),
/// sent to a message's return path: the signed return path says whose it was.
#[tokio::test]
async fn a_bounce_naming_no_address_acts_on_the_message_its_return_path_names() {
    let (app, smtp, key) = bouncing_brand().await;
    let (id, return_path, _) =
        send_one(&app, &key, "hello@brand.test", "gone@example.test", &smtp).await;
    let (port, _stop) = bounce_listener(&app, &[]).await;
    let bounce = "From: Mail Delivery Subsystem <postmaster@gateway.example.test>\r\n\
                  To: whoever\r\nSubject: Undeliverable mail\r\n\r\n\
                  Your message could not be delivered.\r\nReason: no such user here\r\n";
    let replies = smtp_dialog(port, &return_path, bounce).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let m = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(m.body["state"], "bounced", "{}", m.body);
    let events = app.get("/api/v1/feedback/events", &key).await;
    assert_eq!(
        events.body["items"][0]["recipient"], "gone@example.test",
        "{}",
        events.body
    );
    assert_eq!(events.body["items"][0]["class"], "hard");
    // The same bounce to no return path of ours (the accept list is empty): refused at RCPT.
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", bounce).await;
    assert!(replies.last().unwrap().starts_with("550"), "{replies:?}");
    app.finish().await;
}
