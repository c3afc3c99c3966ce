//! The queue as an operator follows it: messages listed and filtered with cursor pages,
//! deferred ones retried now (one, or by filter), bad parameters named.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Log lines written while a test runs on its (current-thread) runtime.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// The JSON lines whose message is `message`.
    fn events(&self, message: &str) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }
}

fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn messages_are_listed_filtered_and_retried() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish(),
    );
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    for rcpt in ["a@example.test", "b@example.test"] {
        smtp.script(
            rcpt,
            vec![
                Behaviour::RefuseData(451, "4.3.0 Try again later".into()),
                Behaviour::Accept,
            ],
        );
    }
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    app.relay_mode(&key, "brand", smtp.addr.port()).await;
    let mut sent = Vec::new();
    for to in ["a@example.test", "b@example.test", "c@example.test"] {
        let r = app
            .post(
                "/api/v2/messages",
                &key,
                json!({"to": to, "subject": "Hi", "text": "x", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        sent.push(r.body["id"].as_str().unwrap().to_owned());
        app.clock.advance_ms(1);
    }
    let (a, b, c) = (&sent[0], &sent[1], &sent[2]);
    app.deliver().await;

    // Each attempt is one structured log line: id, recipient domain, route, reply code.
    let attempts = logs.events("delivery attempt");
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let of_c = attempts
        .iter()
        .find(|e| e["fields"]["message_id"] == c.as_str())
        .unwrap();
    assert_eq!(of_c["fields"]["recipient_domain"], "example.test");
    assert_eq!(of_c["fields"]["route"], "relay:pmta");
    assert_eq!(of_c["fields"]["code"], 250);
    assert_eq!(of_c["fields"]["state"], "sent");
    assert!(of_c["fields"]["duration_ms"].is_u64());
    assert!(!String::from_utf8_lossy(&logs.0.lock().unwrap()).contains("c@example.test"));

    let all = app.get("/api/v2/messages", &key).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        ids(&all.body),
        [c.clone(), b.clone(), a.clone()],
        "newest first"
    );
    assert!(all.body["items"][0].get("events").is_none());
    let deferred = app.get("/api/v2/messages?state=deferred", &key).await;
    assert_eq!(ids(&deferred.body), [b.clone(), a.clone()]);
    let to_c = app.get("/api/v2/messages?to=C@example.test", &key).await;
    assert_eq!(ids(&to_c.body), [c.as_str()]);
    let first = app.get("/api/v2/messages?limit=2", &key).await;
    assert_eq!(ids(&first.body), [c.clone(), b.clone()]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/api/v2/messages?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(ids(&second.body), [a.as_str()]);
    assert!(second.body["next_cursor"].is_null());

    // Bad parameters are named, with what would be right.
    for (query, field) in [
        ("state=bogus", "state"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("since=yesterday", "since"),
        ("colour=red", "colour"),
    ] {
        let r = app.get(&format!("/api/v2/messages?{query}"), &key).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], field, "{query}: {}", r.body);
    }
    let bogus = app.get("/api/v2/messages?state=bogus", &key).await;
    assert!(
        bogus.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deferred")
    );

    // A sent message cannot be retried; a deferred one goes out now, without waiting.
    let not_deferred = app
        .post(&format!("/api/v2/messages/{c}/retry"), &key, json!({}))
        .await;
    assert_eq!(
        not_deferred.status,
        StatusCode::CONFLICT,
        "{}",
        not_deferred.body
    );
    let retried = app
        .post(&format!("/api/v2/messages/{a}/retry"), &key, json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    app.deliver().await;
    let state = |id: String| {
        let app = &app;
        let key = key.clone();
        async move { app.get(&format!("/api/v2/messages/{id}"), &key).await.body["state"].clone() }
    };
    assert_eq!(state(a.clone()).await, "sent");
    assert_eq!(state(b.clone()).await, "deferred");

    // By filter: every deferred message of the tenant.
    let many = app.post("/api/v2/messages/retry", &key, json!({})).await;
    assert_eq!(many.status, StatusCode::OK, "{}", many.body);
    assert_eq!(many.body["retried"], 1);
    assert_eq!(many.body["ids"][0], b.as_str());
    app.deliver().await;
    assert_eq!(state(b.clone()).await, "sent");
    let audit = app
        .get("/api/v1/audit/logs?action=message.retry", &app.admin)
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );

    // Another tenant sees none of it.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "o").await;
    assert!(ids(&app.get("/api/v2/messages", &other_key).await.body).is_empty());
    let foreign = app
        .post(
            &format!("/api/v2/messages/{a}/retry"),
            &other_key,
            json!({}),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    app.finish().await;
}
