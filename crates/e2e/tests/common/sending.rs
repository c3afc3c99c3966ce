//! What the campaign and autoresponder tests share: a tenant that sends through a relay
//! on loopback with French and English templates, contacts, actions, what the SMTP peer
//! received.

use std::collections::BTreeMap;

use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

pub const HOUR_MS: i64 = 3_600_000;

/// A tenant `brand` that signs for brand.test and relays to `smtp`, with a French and an
/// English template of one category; returns its key and the French template's id.
pub async fn brand(app: &TestApp, smtp: &TestSmtpServer) -> (String, String) {
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "marketing").await;
    app.signing_domain(&key).await;
    app.relay_mode(&key, "brand", smtp.addr.port()).await;
    let mut fr = String::new();
    for (language, subject) in [
        ("fr", "Bonjour [FNAME|ami]"),
        ("en", "Hello [FNAME|friend]"),
    ] {
        let t = app
            .post(
                "/api/v2/templates",
                &key,
                json!({"name": format!("news_{language}"), "subject": subject,
                       "html": "<p>[FNAME|-]</p><a href=\"https://brand.test/offer\">offer</a> <a href=\"[UNSUBSCRIBE_URL]\">stop</a>",
                       "language": language, "category": "news", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
        if language == "fr" {
            fr = t.body["id"].as_str().unwrap().to_owned();
        }
    }
    (key, fr)
}

/// Ingests contacts: (address, language, tags).
pub async fn contacts(app: &TestApp, key: &str, people: &[(String, &str, Vec<&str>)]) {
    for chunk in people.chunks(1000) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|(email, language, tags)| {
                json!({"email": email, "firstName": email.split('@').next().unwrap(),
                       "language": language, "tags": tags})
            })
            .collect();
        let r = app
            .post(
                "/api/v2/contacts/ingest",
                key,
                json!({"source": "api", "contacts": batch}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

pub async fn action(app: &TestApp, key: &str, id: &str, what: &str) -> Value {
    let r = app
        .post(&format!("/api/v2/campaigns/{id}/{what}"), key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
    r.body
}

/// Every recipient address the SMTP peer received, with how many messages each got.
pub fn received_by(smtp: &TestSmtpServer) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in smtp.received() {
        *by.entry(r.rcpt_to.clone()).or_default() += 1;
    }
    by
}

pub fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l.as_bytes()[name.len()] == b':'
        })
        .map(|l| l[name.len() + 1..].trim())
}

/// A POST with a raw body, optional API key and headers: (status, JSON or text body).
pub async fn post_raw(
    app: &TestApp,
    path: &str,
    credential: Option<&str>,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.base))
        .body(body.to_owned());
    if let Some(key) = credential {
        request = request.header("X-API-KEY", key);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Puts the delivery settings of the tenant `brand`.
pub async fn delivery(app: &TestApp, key: &str, settings: Value) {
    let put = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(key),
            Some(settings),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

/// A tenant `brand` that delivers through its MailWizz (the fake, which holds an empty
/// list `list-a`); returns its key and the fake.
pub async fn mailwizz_brand(app: &TestApp) -> (String, ee_connectors::testing::Shared) {
    let (base, fake) = ee_connectors::testing::start().await;
    fake.lock()
        .unwrap()
        .lists
        .insert("list-a".into(), Vec::new());
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "marketing").await;
    let instance = app
        .post(
            "/api/v1/mailwizz/instances",
            &key,
            json!({"name": "main", "api_url": base, "api_key": ee_connectors::testing::KEY,
                   "default_list_uid": "list-a", "is_primary": true}),
        )
        .await;
    assert_eq!(instance.status, StatusCode::CREATED, "{}", instance.body);
    delivery(
        app,
        &key,
        json!({"mode": "mailwizz", "mailwizz": "main", "allow_unsigned_senders": true}),
    )
    .await;
    (key, fake)
}

/// One SMTP transaction by hand: the reply to each command, in order.
pub async fn smtp_dialog(port: u16, rcpt: &str, data: &str) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut replies = Vec::new();
    // The last line of a reply has a space after its code.
    async fn reply(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    ) -> String {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }
    replies.push(reply(&mut lines).await);
    for command in [
        "EHLO mx.example.test".to_owned(),
        "MAIL FROM:<>".into(),
        format!("RCPT TO:<{rcpt}>"),
    ] {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        replies.push(reply(&mut lines).await);
    }
    if replies.last().unwrap().starts_with("250") {
        write.write_all(b"DATA\r\n").await.unwrap();
        replies.push(reply(&mut lines).await);
        write
            .write_all(data.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes())
            .await
            .unwrap();
        write.write_all(b"\r\n.\r\n").await.unwrap();
        replies.push(reply(&mut lines).await);
    }
    write.write_all(b"QUIT\r\n").await.unwrap();
    replies
}

/// Starts the bounce listener for `bounces.brand.test` on a free loopback port, taking
/// the `accept` addresses besides per-message return paths: its port, and the sender
/// that stops it when dropped.
pub async fn bounce_listener(
    app: &TestApp,
    accept: &[&str],
) -> (u16, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(ee_jobs::bounce_listener::serve(
        app.services.clone(),
        listener,
        "bounces.brand.test".into(),
        accept.iter().map(|a| (*a).to_owned()).collect(),
        stop,
    ));
    (port, stop_tx)
}

/// A new server with the tenant `brand` relaying to a loopback SMTP peer, each message
/// with its own return path on `bounces.brand.test`: the server, the peer, the key.
pub async fn bouncing_brand() -> (TestApp, TestSmtpServer, String) {
    let smtp = TestSmtpServer::start(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "pmta", "bounce_domain": "bounces.brand.test"}),
    )
    .await;
    (app, smtp, key)
}

/// The campaign's ledger rows.
pub async fn ledger(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v2/campaigns/{id}/recipients?limit=500"), key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Sets the tenant `brand`'s zone (it delivers through the relay `pmta`).
pub async fn set_zone(app: &TestApp, key: &str, zone: &str) {
    let r = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(key),
            Some(json!({"mode": "relay", "relay": "pmta", "time_zone": zone})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
