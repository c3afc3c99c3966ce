//! `PATCH /api/v1/tenants/{id}/delivery`: a JSON Merge Patch of a tenant's delivery
//! settings changes what it names and keeps the rest (a PUT replaces them all: the relays
//! of a tenant that only wanted a default sender were lost); `null` puts a setting back to
//! its default; the result is checked as a whole, problems named, nothing stored; audited;
//! another tenant gets 404.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn patch(app: &TestApp, key: &str, tenant: &str, body: Value) -> common::Reply {
    app.call(
        Method::PATCH,
        &format!("/api/v1/tenants/{tenant}/delivery"),
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_patch_changes_what_it_names_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let brand = app.tenant("brand").await;
    let (_, key) = app.api_key(&brand, "k").await;
    for name in ["one", "two"] {
        let relay = app
            .post(
                "/api/v1/relays",
                &key,
                json!({"name": name, "host": "127.0.0.1", "port": 2525, "tls": "none"}),
            )
            .await;
        assert_eq!(relay.status, StatusCode::CREATED, "{}", relay.body);
    }
    let put = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "one", "relays": ["two"], "relay_order": "weighted",
                        "track_opens": false, "time_zone": "Europe/Paris"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    // A default sender alone: the relays, their order, tracking and zone are kept.
    let r = patch(
        &app,
        &key,
        "brand",
        json!({"default_from_email": "news@brand.test", "soft_bounces": {"limit": 5}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = app.get("/api/v1/tenants/brand/delivery", &key).await;
    assert_eq!(got.body, r.body);
    assert_eq!(got.body["mode"], "relay");
    assert_eq!(got.body["relay"], "one");
    assert_eq!(got.body["relays"], json!(["two"]));
    assert_eq!(got.body["relay_order"], "weighted");
    assert_eq!(got.body["track_opens"], false);
    assert_eq!(got.body["time_zone"], "Europe/Paris");
    assert_eq!(got.body["default_from_email"], "news@brand.test");
    // Objects merge member by member: the soft-bounce window is kept.
    assert_eq!(got.body["soft_bounces"], json!({"limit": 5, "days": 7}));

    // null puts a setting back to its default.
    let r = patch(
        &app,
        &key,
        &brand,
        json!({"time_zone": null, "track_opens": null}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["time_zone"], Value::Null);
    assert_eq!(r.body["track_opens"], true, "opens are tracked by default");
    assert_eq!(r.body["relay"], "one");

    // The result is checked as a whole; nothing is stored when it fails.
    for (body, field) in [
        (json!({"mode": "carrier-pigeon"}), "mode"),
        (json!({"relay": "ghost"}), "relay"),
        (json!({"relays": ["two", "ghost"]}), "relays"),
        (
            json!({"default_from_email": "not an address"}),
            "default_from_email",
        ),
        (json!({"soft_bounces": {"days": 0}}), "soft_bounces"),
        (json!({"colour": "blue"}), "colour"),
        (json!(["mode"]), "body"),
        (
            json!({"mode": "direct", "relay": null, "relays": null, "track_opens": "yes"}),
            "track_opens",
        ),
    ] {
        let r = patch(&app, &key, "brand", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert!(
            r.body["error"]["field"]
                .as_str()
                .is_some_and(|f| f == field || f.starts_with(&format!("{field}."))),
            "{body}: {}",
            r.body
        );
    }
    let after = app.get("/api/v1/tenants/brand/delivery", &key).await;
    assert_eq!(after.body["mode"], "relay");
    assert_eq!(after.body["relays"], json!(["two"]));
    assert_eq!(after.body["soft_bounces"], json!({"limit": 5, "days": 7}));

    // Each accepted patch is one audit entry with the settings before and after.
    let audit = app
        .get(
            "/api/v1/audit/logs?action=tenant.delivery&limit=10",
            &app.admin,
        )
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the PUT and two patches: {}", audit.body);

    // Another tenant's settings are not found.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let r = patch(&app, &other_key, "brand", json!({"track_opens": true})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(error_code(&r), "not_found");
    let r = patch(&app, &other_key, &brand, json!({"track_opens": true})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    app.finish().await;
}
