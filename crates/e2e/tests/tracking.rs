//! Opens and clicks told apart: a person's browser a minute after sending counts (its
//! first hit unique, the next ones repeats); a HEAD request, a scanner's user agent, a hit
//! within seconds of sending, the hidden decoy link are machines', kept with their reason
//! and counted apart. Each hit keeps its time, IP (behind a local proxy, the one it
//! forwarded) and user agent.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::sending::brand;
use common::{BROWSER, TestApp};
use ee_core::tracking::{Kind, sign};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn people_and_machines_are_counted_apart() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    let sent = app
        .post("/api/v2/messages", &key,
            json!({"to": "reader@example.test", "subject": "Hi", "from_email": "hello@brand.test",
                   "html": "<html><body><p><a href=\"https://brand.test/a\">a</a></p></body></html>"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap().to_owned();
    app.deliver().await;
    // The message carries the hidden decoy link after the author's.
    let raw = String::from_utf8_lossy(&smtp.received()[0].data).to_string();
    // Quoted-printable undone by hand: soft breaks and the escaped `=`.
    let html = raw.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        html.contains("style=\"display:none\" aria-hidden=\"true\""),
        "{html}"
    );

    let key_bytes = app.services.delivery.tracking_key.clone();
    let open = format!("{}/t/o/{}", app.base, sign(&key_bytes, Kind::Open, &id, 0));
    let click = format!("{}/t/c/{}", app.base, sign(&key_bytes, Kind::Click, &id, 0));
    let decoy = format!(
        "{}/t/c/{}",
        app.base,
        sign(&key_bytes, Kind::Click, &id, u32::MAX)
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let hit = |method: Method, url: &str, agent: &str| {
        client
            .request(method, url)
            .header("user-agent", agent)
            .header("x-forwarded-for", "203.0.113.9")
            .send()
    };
    // Within a second of sending, even a browser is a prefetcher.
    assert_eq!(
        hit(Method::GET, &open, BROWSER).await.unwrap().status(),
        StatusCode::OK
    );
    app.clock.advance_ms(60_000);
    assert_eq!(
        hit(Method::HEAD, &open, BROWSER).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        hit(Method::GET, &click, "Mimecast Link Checker/1.0")
            .await
            .unwrap()
            .status(),
        StatusCode::FOUND
    );
    let decoyed = hit(Method::GET, &decoy, BROWSER).await.unwrap();
    assert_eq!(
        decoyed.status(),
        StatusCode::OK,
        "the decoy answers, and leads nowhere"
    );
    // A person: the first open and click are unique, the next open a repeat.
    assert_eq!(
        hit(Method::GET, &open, BROWSER).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        hit(Method::GET, &open, BROWSER).await.unwrap().status(),
        StatusCode::OK
    );
    let clicked = hit(Method::GET, &click, BROWSER).await.unwrap();
    assert_eq!(clicked.headers()["location"], "https://brand.test/a");

    let hits = app.get(&format!("/api/v2/messages/{id}/hits"), &key).await;
    let items = hits.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 7, "{}", hits.body);
    let reasons: Vec<&str> = items
        .iter()
        .map(|h| h["machine_reason"].as_str().unwrap_or("person"))
        .collect();
    assert!(reasons[0].contains("ms after sending"), "{reasons:?}");
    assert_eq!(reasons[1], "a HEAD request");
    assert!(reasons[2].contains("mimecast"), "{reasons:?}");
    assert_eq!(reasons[3], "the hidden decoy link");
    assert_eq!(&reasons[4..], ["person", "person", "person"]);
    assert_eq!(items[4]["repeat"], false);
    assert_eq!(items[5]["repeat"], true);
    assert_eq!(items[6]["repeat"], false);
    assert_eq!(items[6]["url"], "https://brand.test/a");
    assert!(
        items
            .iter()
            .all(|h| h["ip"] == "203.0.113.9" && h["user_agent"].is_string()),
        "{}",
        hits.body
    );

    // The message's events and the contact's engagement count only the person.
    let message = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    let types: Vec<&str> = message.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "opened").count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "opened_machine").count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "clicked_machine").count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "clicked").count(),
        1,
        "{types:?}"
    );

    // The report counts people and machines apart.
    let report = app.get("/api/v1/reports", &key).await;
    let totals = &report.body["totals"];
    assert_eq!(
        totals["opens"],
        json!({"unique": 1, "total": 2, "machine": 2}),
        "{}",
        report.body
    );
    assert_eq!(
        totals["clicks"],
        json!({"unique": 1, "total": 1, "machine": 2}),
        "{}",
        report.body
    );

    // Another tenant does not see the hits.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let theirs = app
        .get(&format!("/api/v2/messages/{id}/hits"), &other_key)
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    app.finish().await;
}
