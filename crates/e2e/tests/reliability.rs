//! Concurrent writes queue instead of failing: bursts of read-then-write requests from
//! several clients at once answer no 5xx (SQLite's "database is locked" was a 500).
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends `total` requests from `clients` concurrent clients; the statuses.
async fn burst(
    app: &TestApp,
    clients: usize,
    total: usize,
    method: Method,
    path: &str,
    credential: &str,
    body: impl Fn(usize) -> Value,
) -> Vec<StatusCode> {
    let bodies: Vec<Value> = (0..total).map(body).collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(bodies));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (queue, client, method) = (queue.clone(), app.client.clone(), method.clone());
        let url = format!("{}{path}", app.base);
        let auth = if credential.starts_with("ee_") {
            ("x-api-key", credential.to_owned())
        } else {
            ("authorization", format!("Bearer {credential}"))
        };
        set.spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    return statuses;
                };
                let reply = client
                    .request(method.clone(), &url)
                    .header(auth.0, &auth.1)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                statuses.push(reply.status());
            }
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

#[tokio::test]
async fn concurrent_writes_answer_no_server_error() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let domain = app
        .post(
            "/api/v1/domains",
            &key,
            json!({"domain": "brand.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.body);
    let id = domain.body["id"].as_str().unwrap().to_owned();

    let rotations = burst(
        &app,
        8,
        40,
        Method::POST,
        &format!("/api/v1/domains/{id}/dkim/rotate"),
        &key,
        |i| json!({"algorithm": "ed25519", "selector": format!("r{i}")}),
    )
    .await;
    let patches = burst(
        &app,
        8,
        40,
        Method::PATCH,
        &format!("/api/v1/domains/{id}"),
        &key,
        |i| json!({"dmarc_policy": if i % 2 == 0 { "quarantine" } else { "reject" }}),
    )
    .await;
    let keys = burst(
        &app,
        8,
        40,
        Method::POST,
        "/api/v1/api-keys",
        &app.admin,
        |i| json!({"name": format!("key-{i}"), "tenant_id": tenant}),
    )
    .await;
    for (what, statuses) in [
        ("rotate", &rotations),
        ("patch", &patches),
        ("api-keys", &keys),
    ] {
        assert_eq!(statuses.len(), 40);
        let failed: Vec<_> = statuses.iter().filter(|s| s.is_server_error()).collect();
        assert!(failed.is_empty(), "{what}: {failed:?}");
        assert!(
            statuses.iter().all(|s| s.is_success()),
            "{what}: {statuses:?}"
        );
    }
    let listed = app.get("/api/v1/api-keys?limit=100", &app.admin).await;
    let count = listed.body["items"].as_array().map_or(0, Vec::len);
    assert_eq!(count, 41, "every key created once: {}", listed.body);
    app.finish().await;
}

/// A relay that restarts between two batches closes the engine's pooled connections:
/// the next messages go out on new ones at once, each delivered once, none deferred.
#[tokio::test]
async fn a_relay_restart_does_not_defer_messages_on_pooled_connections() {
    use ee_mail::testing::TestSmtpServer;
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let addr = smtp.addr;
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    app.relay_mode(&key, "brand", addr.port()).await;
    let queue = |from: usize| {
        let (app, key) = (&app, key.clone());
        async move {
            for i in from..from + 12 {
                let r = app
                    .post(
                        "/api/v2/messages",
                        &key,
                        json!({"to": format!("user{i}@example.test"), "subject": "Hi",
                               "text": "x", "from_email": "hello@brand.test"}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            }
        }
    };
    // One engine across both batches, as a node's delivery loop keeps its connections.
    let engine = ee_jobs::delivery::Engine::new(app.services.clone());
    queue(0).await;
    engine.run_until_idle().await.unwrap();
    assert_eq!(smtp.received().len(), 12);

    smtp.shutdown();
    drop(smtp);
    // The aborted listener goes away at its next poll: bind again until the port is free.
    let mut restarted = None;
    for _ in 0..100 {
        if let Ok(server) = TestSmtpServer::start_on(addr).await {
            restarted = Some(server);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let restarted = restarted.expect("the relay restarts on its port");
    queue(12).await;
    engine.run_until_idle().await.unwrap();
    let received = restarted.received();
    assert_eq!(
        received.len(),
        12,
        "every message of the second batch, once"
    );
    let mut recipients: Vec<String> = received.iter().map(|r| r.rcpt_to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 12);
    let listed = app.get("/api/v2/messages?state=deferred", &key).await;
    assert!(
        listed.body["items"].as_array().unwrap().is_empty(),
        "{}",
        listed.body
    );
    let sent = app.get("/api/v2/messages?state=sent&limit=100", &key).await;
    let items = sent.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 24);
    assert!(items.iter().all(|m| m["attempts"] == 1), "{}", sent.body);
    engine.close_idle().await;
    app.finish().await;
}

/// With the name servers not answering for the recipients' domain, a relay still sends
/// the batch: the failed MX look-up is asked once per batch, not once per message (each
/// paid the resolver's time-out: a relay tenant sent a few messages a second).
#[tokio::test]
async fn a_failed_mx_look_up_is_asked_once_per_batch() {
    use ee_dns::testing::Zone;
    use ee_mail::testing::TestSmtpServer;
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut zone = Zone::new();
    zone.timeout("silent.test");
    let app = TestApp::builder().zone(zone).spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    app.relay_mode(&key, "brand", smtp.addr.port()).await;
    // One message at a time, so that each would ask if the failure were not kept.
    let mut services = app.services.clone();
    services.delivery.concurrency = 1;
    let engine = ee_jobs::delivery::Engine::new(services);
    let mut asked = Vec::new();
    for (round, count) in [(0, 1), (1, 8)] {
        for i in 0..count {
            let r = app
                .post(
                    "/api/v2/messages",
                    &key,
                    json!({"to": format!("r{round}-{i}@silent.test"), "subject": "Hi",
                           "html": "<p>hi</p>", "from_email": "hello@brand.test"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        }
        let before = app.dns.queries();
        assert_eq!(engine.run_once().await.unwrap(), count);
        asked.push(app.dns.queries() - before);
    }
    // The batch of eight asked about what the batch of one did (a resolver's retries
    // vary by one or two), not eight times that.
    assert!(asked[0] > 0, "{asked:?}");
    assert!(asked[1] < 2 * asked[0], "{asked:?}");
    assert_eq!(smtp.received().len(), 9, "all sent through the relay");
    app.finish().await;
}
