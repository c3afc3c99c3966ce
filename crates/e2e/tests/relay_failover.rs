//! Several relays per tenant (MailWizz's delivery servers): tried in the listed order or
//! drawn by weight, each with its own hourly limit; one that is unreachable or refuses
//! hands the message to the next, a recipient's own refusal does not; the message and its
//! events say which relay took it.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn relay(app: &TestApp, key: &str, body: Value) -> Value {
    let created = app.post("/api/v1/relays", key, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body
}

async fn delivery(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let put = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(key),
            Some(body),
        )
        .await;
    (put.status, put.body)
}

async fn send(app: &TestApp, key: &str, to: &str) -> String {
    let sent = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": to, "from_email": "news@brand.test", "subject": "Hi", "text": "Hello"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    sent.body["id"].as_str().unwrap().to_owned()
}

async fn message(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/api/v2/messages/{id}"), key).await.body
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn relays_fail_over_in_order_keep_their_limits_and_share_by_weight() {
    let a = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let b = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    let dead = closed_port().await;
    let peer = |name: &str, port: u16| json!({"name": name, "host": "127.0.0.1", "port": port, "tls": "none"});
    relay(&app, &key, peer("dead", dead)).await;
    let mut body = peer("a", a.addr.port());
    body["max_per_hour"] = json!(3);
    let out = relay(&app, &key, body).await;
    assert_eq!(
        (out["weight"].clone(), out["max_per_hour"].clone()),
        (json!(1), json!(3))
    );
    let mut body = peer("b", b.addr.port());
    body["weight"] = json!(3);
    relay(&app, &key, body).await;

    // Bad lists and limits are refused, naming the field.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    relay(&app, &other_key, peer("theirs", b.addr.port())).await;
    let (status, answer) = delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "a", "relays": ["theirs"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("relays"), "{answer}");
    let mut zero = peer("z", b.addr.port());
    zero["weight"] = json!(0);
    let refused = app.post("/api/v1/relays", &key, zero).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.to_string().contains("weight"),
        "{}",
        refused.body
    );

    // Listed: the dead relay first, then a (3 an hour), then b.
    let (status, answer) = delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "dead", "relays": ["a", "b"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(send(&app, &key, &format!("r{i}@example.test")).await);
    }
    app.deliver().await;
    let mut routes = Vec::new();
    for id in &ids {
        let m = message(&app, &key, id).await;
        assert_eq!(m["state"], "sent", "{m:#}");
        let sent = m["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "sent")
            .unwrap();
        assert_eq!(
            sent["route"], m["route"],
            "the event names the relay: {m:#}"
        );
        routes.push(m["route"].as_str().unwrap().to_owned());
    }
    routes.sort();
    assert_eq!(
        routes,
        ["relay:a", "relay:a", "relay:a", "relay:b", "relay:b"]
    );
    assert_eq!((a.received().len(), b.received().len()), (3, 2));

    // A relay refusing us (5.7.1 relaying denied) hands the message on; a recipient's own
    // refusal (5.1.1) is its answer.
    app.clock.advance_ms(3_600_000);
    a.script(
        "denied@example.test",
        vec![Behaviour::RefuseRcpt(
            554,
            "5.7.1 Relay access denied".into(),
        )],
    );
    a.script(
        "nobody@example.test",
        vec![Behaviour::RefuseRcpt(550, "5.1.1 no such user".into())],
    );
    let denied = send(&app, &key, "denied@example.test").await;
    let nobody = send(&app, &key, "nobody@example.test").await;
    app.deliver().await;
    let m = message(&app, &key, &denied).await;
    assert_eq!(
        (m["state"].as_str(), m["route"].as_str()),
        (Some("sent"), Some("relay:b")),
        "{m:#}"
    );
    let m = message(&app, &key, &nobody).await;
    assert_eq!(m["state"], "bounced", "{m:#}");
    assert_eq!(m["route"], "relay:a", "{m:#}");
    assert_eq!(b.received().len(), 3);

    // Every relay unusable: the dead one unreachable and a, b held by their limits.
    // (Only a has one: at its limit, with b gone from the list, the message waits.)
    let (status, _) = delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "dead", "relays": ["a"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance_ms(3_600_000);
    let mut waiting = Vec::new();
    for i in 0..4 {
        waiting.push(send(&app, &key, &format!("w{i}@example.test")).await);
    }
    app.deliver().await;
    let mut states = Vec::new();
    for id in &waiting {
        let m = message(&app, &key, id).await;
        states.push(m["state"].as_str().unwrap().to_owned());
        if m["state"] == "deferred" {
            let reason = m["state_reason"].as_str().unwrap();
            assert!(reason.contains("relay `dead`"), "{reason}");
            assert!(
                reason.contains("relay `a` at its hourly limit (3)"),
                "{reason}"
            );
        }
    }
    states.sort();
    assert_eq!(states, ["deferred", "sent", "sent", "sent"]);

    // Weighted: b (3) comes first for about three messages in four, a (1) for the rest.
    let (status, _) = delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "a", "relays": ["b"], "relay_order": "weighted"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance_ms(3_600_000);
    let (a_before, b_before) = (a.received().len(), b.received().len());
    let mut body = peer("a", a.addr.port());
    body.as_object_mut().unwrap().remove("name");
    body["max_per_hour"] = json!(0);
    let a_id = app.get("/api/v1/relays", &key).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = app
        .call(
            Method::PUT,
            &format!("/api/v1/relays/{a_id}"),
            Some(&key),
            Some(body),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["max_per_hour"], Value::Null);
    for i in 0..80 {
        send(&app, &key, &format!("s{i}@example.test")).await;
    }
    app.deliver().await;
    let (to_a, to_b) = (a.received().len() - a_before, b.received().len() - b_before);
    eprintln!("weighted 1:3 over 80 messages: a {to_a}, b {to_b}");
    // The 80, and the message that waited for a's next hour.
    assert_eq!(to_a + to_b, 81);
    // The draw follows the random message ids: a's share is about 20 of 81 (binomial,
    // sd about 4), so these bounds fail only if the weights are not used (p < 1e-9).
    assert!(to_a >= 3 && to_b > to_a, "a {to_a}, b {to_b}");
    app.finish().await;
}
