//! No request waits on itself for a database connection: four times the pool's size of
//! concurrent requests at each family of write routes (messages, ingest, campaigns,
//! tracking) all complete. A use-case that held a pooled connection while asking for a
//! transaction let the pool's worth of such requests wait on each other until the
//! acquire time-out (32 concurrent sends froze the API).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::brand;
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The test pool's size (`TestDatabase::connect`) times four.
const CONCURRENT: usize = 32;

async fn all(app: &TestApp, requests: Vec<(String, Option<Value>)>, key: &str) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    // A click answers with a redirect to the link: read, not followed.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, body) in requests {
        let client = client.clone();
        let url = format!("{}{path}", app.base);
        let key = key.to_owned();
        tasks.spawn(async move {
            let request = match body {
                Some(body) => client.post(url).json(&body),
                None => client.get(url),
            };
            request
                .header("X-API-KEY", key)
                .send()
                .await
                .map(|r| r.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
    }
    let mut out = Vec::new();
    while let Some(status) = tasks.join_next().await {
        out.push(status.unwrap());
    }
    out
}

#[tokio::test]
async fn four_times_the_pool_of_concurrent_writes_all_complete() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit_per_minute = 10_000;
            s.ip_rate_limit_per_minute = 10_000;
        })
        .spawn()
        .await;
    let (key, template) = brand(&app, &smtp).await;

    let sends = (0..CONCURRENT)
        .map(|i| {
            let body = json!({"to": format!("p{i}@example.test"), "subject": "Hi", "html": "<p>hi <a href=\"https://brand.test/x\">x</a></p>", "from_email": "hello@brand.test"});
            ("/api/v2/messages".to_owned(), Some(body))
        })
        .collect();
    let statuses = all(&app, sends, &key).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "messages: {statuses:?}"
    );

    let ingests = (0..CONCURRENT)
        .map(|i| {
            let contacts: Vec<Value> = (0..5)
                .map(|j| json!({"email": format!("c{i}-{j}@example.test"), "language": "fr", "tags": ["GROUP:A"]}))
                .collect();
            ("/api/v2/contacts/ingest".to_owned(), Some(json!({"source": "api", "contacts": contacts})))
        })
        .collect();
    let statuses = all(&app, ingests, &key).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "ingest: {statuses:?}"
    );

    let campaigns = (0..CONCURRENT)
        .map(|i| {
            let body = json!({"name": format!("c{i}"), "template_id": template, "audience": {"all": true}});
            ("/api/v2/campaigns".to_owned(), Some(body))
        })
        .collect();
    let statuses = all(&app, campaigns, &key).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "campaigns: {statuses:?}"
    );

    // Opens and clicks of one delivered message, all at once.
    app.deliver().await;
    let listed = app.get("/api/v2/messages?limit=1", &key).await;
    let id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    let secret = app.services.delivery.tracking_key.clone();
    let hits = (0..CONCURRENT)
        .map(|i| {
            let token = if i % 2 == 0 {
                ee_core::tracking::sign(&secret, ee_core::tracking::Kind::Open, &id, 0)
            } else {
                ee_core::tracking::sign(&secret, ee_core::tracking::Kind::Click, &id, 0)
            };
            let kind = if i % 2 == 0 { "o" } else { "c" };
            (format!("/t/{kind}/{token}"), None)
        })
        .collect();
    let statuses = all(&app, hits, &key).await;
    assert!(
        statuses
            .iter()
            .all(|s| s.is_success() || s.is_redirection()),
        "tracking: {statuses:?}"
    );
    app.finish().await;
}
