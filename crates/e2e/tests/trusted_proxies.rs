//! Behind the shipped nginx (a proxy on loopback) everyone used to be one client: the
//! login throttle, the rate limits and the audit log saw 127.0.0.1. From a trusted proxy
//! the client is now the right-most `X-Forwarded-For` entry that is not a proxy of ours;
//! from any other peer, or with `EE_TRUSTED_PROXIES=none`, the header is ignored.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post_from(
    app: &TestApp,
    path: &str,
    forwarded: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.base))
        .header("x-forwarded-for", forwarded)
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_from(app: &TestApp, path: &str, forwarded: &str) -> StatusCode {
    app.client
        .get(format!("{}{path}", app.base))
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .unwrap()
        .status()
}

/// Creates a tenant with `X-Forwarded-For: forwarded`; the address its audit entry records.
async fn audited_address(app: &TestApp, forwarded: &str, token: &str) -> Value {
    let (status, body) = post_from(
        app,
        "/api/v1/tenants",
        forwarded,
        Some(token),
        json!({"name": "Brand", "slug": "brand"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let audit = app
        .get("/api/v1/audit/logs?action=tenant.create", &app.admin)
        .await;
    audit.body["items"][0]["ip_address"].clone()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_its_own() {
    let app = TestApp::builder()
        .settings(|s| s.ip_rate_limit_per_minute = 30)
        .spawn()
        .await;
    // Failed logins for unknown addresses from one client lock that client only.
    let free = ee_core::login_throttle::CLIENT.free_failures;
    for i in 0..=free {
        let (status, _) = post_from(
            &app,
            "/api/v1/auth/login",
            "198.51.100.1",
            None,
            json!({"email": format!("nobody{i}@example.test"), "password": "wrong-password"}),
        )
        .await;
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}"
        );
    }
    // The admin's right password, from: the locked client; the locked client behind a
    // forged left-most entry (nginx appends the address it saw, and that one is read);
    // another client.
    let admin = json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD});
    let mut login = Value::Null;
    for (forwarded, want) in [
        ("198.51.100.1", StatusCode::TOO_MANY_REQUESTS),
        ("203.0.113.77, 198.51.100.1", StatusCode::TOO_MANY_REQUESTS),
        ("203.0.113.77", StatusCode::OK),
    ] {
        let (status, body) =
            post_from(&app, "/api/v1/auth/login", forwarded, None, admin.clone()).await;
        assert_eq!(status, want, "from {forwarded}: {body}");
        login = body;
    }
    let token = login["access_token"].as_str().unwrap().to_owned();

    // The audit log records the client, not the proxy.
    assert_eq!(
        audited_address(&app, "203.0.113.77", &token).await,
        "203.0.113.77"
    );

    // One client's anonymous requests spend its own budget, not another's.
    let mut limited = false;
    for _ in 0..40 {
        limited |= get_from(&app, "/api/v1/auth/me", "198.51.100.9").await
            == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the busy client is limited");
    assert_eq!(
        get_from(&app, "/api/v1/auth/me", "198.51.100.10").await,
        StatusCode::UNAUTHORIZED,
        "another client is not"
    );
    app.finish().await;
}

#[tokio::test]
async fn without_trusted_proxies_the_header_is_ignored() {
    let app = TestApp::builder()
        .settings(|s| {
            s.trusted_proxies = ee_core::client_address::TrustedProxies::parse("none").unwrap()
        })
        .spawn()
        .await;
    let (status, login) = post_from(
        &app,
        "/api/v1/auth/login",
        "203.0.113.77",
        None,
        json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(
        audited_address(&app, "203.0.113.77", token).await,
        "127.0.0.1"
    );
    app.finish().await;
}
