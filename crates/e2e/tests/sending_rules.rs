//! What a caller may and may not make a message say: the engine's own headers cannot be
//! set, a sender must be on a signing domain of the tenant (or the tenant allows unsigned
//! senders), and a tenant's default sender fills what a request leaves out.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::header;
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn tenant_with_signing_domain(app: &TestApp) -> String {
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    key
}

#[tokio::test]
async fn engine_headers_cannot_be_set() {
    let app = TestApp::spawn().await;
    let key = tenant_with_signing_domain(&app).await;
    for header in [
        "From",
        "bcc",
        "DKIM-Signature",
        "List-Unsubscribe",
        "X-Virtual-MTA",
        "Content-Type",
    ] {
        let r = app
            .post(
                "/api/v2/messages",
                &key,
                json!({"to": "a@example.test", "subject": "Hi", "text": "x",
                       "from_email": "hello@brand.test", "headers": {header: "ceo@bank.example"}}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{header}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], "headers");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(header),
            "{}",
            r.body
        );
    }
    let fine = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "a@example.test", "subject": "Hi", "text": "x",
                   "from_email": "hello@brand.test", "headers": {"X-Ref": "order-42"}}),
        )
        .await;
    assert_eq!(fine.status, StatusCode::ACCEPTED, "{}", fine.body);
    app.finish().await;
}

#[tokio::test]
async fn senders_must_be_on_a_signing_domain_unless_allowed() {
    let app = TestApp::spawn().await;
    let key = tenant_with_signing_domain(&app).await;
    let send = |from: &'static str| {
        app.post(
            "/api/v2/messages",
            &key,
            json!({"to": "a@example.test", "subject": "Hi", "text": "x", "from_email": from}),
        )
    };
    let refused = send("someone@gmail.com").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["field"], "from_email");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gmail.com") && message.contains("brand.test"),
        "{message}"
    );
    assert_eq!(send("hello@brand.test").await.status, StatusCode::ACCEPTED);

    let allowed = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"allow_unsigned_senders": true})),
        )
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    assert_eq!(send("someone@gmail.com").await.status, StatusCode::ACCEPTED);
    app.finish().await;
}

#[tokio::test]
async fn the_tenants_default_sender_fills_in() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let key = tenant_with_signing_domain(&app).await;
    // The relay first: a PUT of the delivery settings replaces them all.
    app.relay_mode(&key, "brand", smtp.addr.port()).await;
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"default_from_email": "not an address"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["field"], "default_from_email");
    let set = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta",
                       "default_from_email": "news@brand.test", "default_from_name": "Brand",
                       "default_reply_to": "support@brand.test"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let sent = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "a@example.test", "subject": "Hi", "text": "x"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert_eq!(sent.body["from"], "news@brand.test", "{}", sent.body);
    // What arrives says so too, not only the API's answer.
    app.deliver().await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let data = String::from_utf8_lossy(&received[0].data).into_owned();
    assert_eq!(
        header(&data, "From"),
        Some("\"Brand\" <news@brand.test>"),
        "{data}"
    );
    assert_eq!(
        header(&data, "Reply-To"),
        Some("<support@brand.test>"),
        "{data}"
    );
    app.finish().await;
}
