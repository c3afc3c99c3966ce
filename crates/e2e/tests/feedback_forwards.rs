//! Bounces and complaints forwarded to the data source a contact came from: Scraper-Pro's
//! `{email, type, source}` signed with the source's secret (its body-only scheme), retried
//! by the retry queue after a failure, listed per tenant.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{brand, post_raw};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the fake Scraper-Pro received: (headers, body).
type Inbox = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A Scraper-Pro on loopback taking `POST /api/bounces`: answers 500 to the first call,
/// 200 after.
async fn scraper_pro() -> (u16, Inbox) {
    let inbox: Inbox = Default::default();
    let kept = inbox.clone();
    let app = axum::Router::new().route(
        "/api/bounces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let mut inbox = kept.lock().unwrap();
                inbox.push((headers, body));
                if inbox.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, inbox)
}

async fn run_retry_queue(app: &TestApp) {
    ee_app::schedule::trigger(
        &app.db,
        ee_app::schedule::find(ee_app::schedule::RETRY).unwrap(),
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    app.run_jobs().await;
}

#[tokio::test]
async fn bounces_are_forwarded_to_the_contacts_source_signed_and_retried() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    let (port, inbox) = scraper_pro().await;
    // Scraper-Pro's contract: the body alone signed, `{source, contacts}`.
    let source = app
        .post("/api/v1/data-sources", &key, json!({"slug": "scraper-pro-1", "name": "Scraper-Pro", "type": "scraper_pro",
            "config": {"signature": "body", "bounce_url": format!("http://127.0.0.1:{port}/api/bounces")}}))
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    let secret = source.body["secret"].as_str().unwrap().to_owned();
    let body = r#"{"source": "scraper-pro-1", "contacts": [{"email": "lead@example.test", "firstName": "Lea"}]}"#;
    let signed = [(
        "signature",
        common::signatures::body_only(secret.as_bytes(), body.as_bytes()),
    )];
    let (status, ingested) =
        post_raw(&app, "/api/v1/webhooks/scraper-pro", None, &signed, body).await;
    assert_eq!(status, StatusCode::OK, "{ingested}");
    assert_eq!(ingested["counts"]["created"], 1, "{ingested}");
    let tampered = [(
        "signature",
        common::signatures::body_only(b"wrong", body.as_bytes()),
    )];
    let (status, _) = post_raw(&app, "/api/v1/webhooks/scraper-pro", None, &tampered, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bad_url = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "sp-2", "name": "SP", "type": "scraper_pro",
            "config": {"bounce_url": "ftp://x"}}),
        )
        .await;
    assert_eq!(
        bad_url.body["error"]["field"], "config.bounce_url",
        "{}",
        bad_url.body
    );
    // A link-local or private address is refused when saved, by the rule every URL a
    // tenant names follows (it was accepted, then refused at each call).
    for url in [
        "http://169.254.169.254/latest",
        "http://10.0.0.5/hook",
        "http://[fe80::1]/x",
    ] {
        let refused = app
            .post(
                "/api/v1/data-sources",
                &key,
                json!({"slug": "sp-3", "name": "SP", "type": "scraper_pro",
                "config": {"bounce_url": url}}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            refused.body
        );
        assert_eq!(
            refused.body["error"]["field"], "config.bounce_url",
            "{}",
            refused.body
        );
    }

    let r = app
        .post(
            "/api/v1/webhooks/pmta-bounce",
            &key,
            json!({"email": "lead@example.test", "type": "hard"}),
        )
        .await;
    assert_eq!(r.body["forwarded"], true, "{}", r.body);
    // A block is about the sender: not forwarded.
    let r = app
        .post(
            "/api/v1/webhooks/pmta-bounce",
            &key,
            json!({"email": "lead@example.test", "type": "block"}),
        )
        .await;
    assert_eq!(r.body["forwarded"], false, "{}", r.body);

    // The first attempt fails (500): kept, due again in 2 minutes.
    run_retry_queue(&app).await;
    let listed = app.get("/api/v1/feedback/forwards", &key).await;
    let forward = &listed.body["items"][0];
    assert_eq!(forward["state"], "pending", "{}", listed.body);
    assert_eq!(forward["attempts"], 1);
    assert_eq!(forward["last_status"], 500);
    assert_eq!(
        forward["body"],
        json!({"email": "lead@example.test", "type": "hard", "source": "scraper-pro-1"})
    );
    let id = forward["id"].as_str().unwrap().to_owned();
    run_retry_queue(&app).await;
    assert_eq!(inbox.lock().unwrap().len(), 1, "not due yet");
    app.clock.advance_ms(2 * 60_000 + 1_000);
    run_retry_queue(&app).await;
    let listed = app
        .get("/api/v1/feedback/forwards?state=delivered", &key)
        .await;
    assert_eq!(listed.body["items"][0]["attempts"], 2, "{}", listed.body);
    let (headers, body) = inbox.lock().unwrap()[1].clone();
    let sig = headers.get("signature").unwrap().to_str().unwrap();
    assert_eq!(
        sig,
        common::signatures::body_only(secret.as_bytes(), body.as_bytes())
    );
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        sent,
        json!({"email": "lead@example.test", "type": "hard", "source": "scraper-pro-1"})
    );

    // Another tenant sees none of it.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let theirs = app.get("/api/v1/feedback/forwards", &other_key).await;
    assert_eq!(theirs.body["items"], json!([]));
    let r = app
        .post(
            &format!("/api/v1/feedback/forwards/{id}/retry"),
            &other_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.finish().await;
}
