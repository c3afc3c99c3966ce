//! A campaign's ledger (one row per recipient, without foreign keys so that a fan-out of a
//! million rows checks none) still goes with what it belongs to: an erased contact's rows
//! with the contact, a deleted tenant's with the tenant.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{action, brand, contacts};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn ledger_rows(app: &TestApp, campaign_id: &str) -> i64 {
    let mut conn = app.services.db.pool().acquire().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = $1")
        .bind(campaign_id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_ledger_goes_with_an_erased_contact_and_a_deleted_tenant() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| (format!("{n}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "n", "template_id": template, "audience": {"all": true}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    assert_eq!(ledger_rows(&app, &id).await, 3);

    let found = app.get("/api/v2/contacts?email=b@example.test", &key).await;
    let contact = found.body["items"][0]["id"].as_str().unwrap().to_owned();
    let erased = app
        .call(
            Method::DELETE,
            &format!("/api/v2/contacts/{contact}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.body);
    assert_eq!(ledger_rows(&app, &id).await, 2);
    let listed = app
        .get(&format!("/api/v2/campaigns/{id}/recipients"), &key)
        .await;
    let emails: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(emails.len(), 2, "{}", listed.body);
    assert!(!emails.contains(&"b@example.test"), "{}", listed.body);

    let tenant = created.body["tenant_id"].as_str().unwrap().to_owned();
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{tenant}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    assert_eq!(ledger_rows(&app, &id).await, 0);
    app.finish().await;
}
