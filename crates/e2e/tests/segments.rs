//! Segments on custom fields and engagement through the HTTP API: contacts ingested with
//! custom fields, a campaign sent through the relay on loopback and opened by a person;
//! each condition counts exactly its contacts, never another tenant's look-alikes; the
//! window follows the application's clock; bad expressions and campaigns that are not
//! the tenant's are 422s naming the field.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::sending::{action, brand, ledger};
use common::{BROWSER, TestApp};
use ee_core::tracking::{Kind, sign};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

async fn count(app: &TestApp, key: &str, expression: Value) -> i64 {
    let reply = app
        .post(
            "/api/v2/segments/count",
            key,
            json!({"expression": expression}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{expression}: {}", reply.body);
    reply.body["count"].as_i64().unwrap()
}

async fn ingest(app: &TestApp, key: &str, contacts: Value) {
    let r = app
        .post(
            "/api/v2/contacts/ingest",
            key,
            json!({"source": "api", "contacts": contacts}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn custom_fields_and_engagement_count_their_contacts_only() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    ingest(&app, &key, json!([
        {"email": "ana@example.test", "language": "fr", "profession": "Lawyer", "age": 42, "tags": ["NEWS"]},
        {"email": "bob@example.test", "language": "fr", "profession": "notary", "age": "29", "tags": ["NEWS"]},
        {"email": "cid@example.test", "language": "fr", "profession": "doctor"},
        {"email": "dan@example.test", "language": "fr"},
    ]))
    .await;
    // Another tenant: look-alikes with the same custom fields, and a campaign of its own.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "o").await;
    ingest(
        &app,
        &other_key,
        json!([
            {"email": "ana@example.test", "profession": "lawyer", "age": 42},
            {"email": "eve@example.test", "profession": "lawyer", "age": 50},
        ]),
    )
    .await;
    let other_template = app
        .post("/api/v2/templates", &other_key,
            json!({"name": "t", "subject": "s", "html": "<p>x</p>", "language": "en", "from_email": "a@other.test"}))
        .await;
    let other_campaign = app
        .post("/api/v2/campaigns", &other_key,
            json!({"name": "theirs", "template_id": other_template.body["id"], "audience": {"all": true}}))
        .await;
    assert_eq!(
        other_campaign.status,
        StatusCode::CREATED,
        "{}",
        other_campaign.body
    );
    let other_campaign = other_campaign.body["id"].as_str().unwrap().to_owned();

    for (expression, expected) in [
        (
            json!({"custom": "profession", "op": "eq", "value": "lawyer"}),
            1,
        ),
        (
            json!({"custom": "profession", "op": "in", "value": ["LAWYER", "notary"]}),
            2,
        ),
        (
            json!({"custom": "profession", "op": "contains", "value": "o"}),
            2,
        ),
        (json!({"custom": "profession", "op": "is_null"}), 1),
        (json!({"custom": "age", "op": "gt", "value": 30}), 1),
        (json!({"custom": "age", "op": "lte", "value": "29"}), 1),
        (
            json!({"field": "email", "op": "starts_with", "value": "ana@"}),
            1,
        ),
    ] {
        assert_eq!(
            count(&app, &key, expression.clone()).await,
            expected,
            "{expression}"
        );
    }
    assert_eq!(
        count(
            &app,
            &other_key,
            json!({"custom": "profession", "op": "eq", "value": "lawyer"})
        )
        .await,
        2
    );

    // A campaign to the two tagged contacts, sent; the first opens it a minute later.
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "news", "template_id": template, "audience": {"tags": ["NEWS"]}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let campaign = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &campaign, "start").await;
    app.dispatch_and_deliver().await;
    assert_eq!(smtp.received().len(), 2);
    let rows = ledger(&app, &key, &campaign).await;
    let ana = rows
        .iter()
        .find(|r| r["email"] == "ana@example.test")
        .unwrap();
    let message = ana["message_id"].as_str().unwrap();
    app.clock.advance_ms(60_000);
    let tracking_key = app.services.delivery.tracking_key.clone();
    let open = format!(
        "{}/t/o/{}",
        app.base,
        sign(&tracking_key, Kind::Open, message, 0)
    );
    let opened = reqwest::Client::new()
        .get(&open)
        .header("user-agent", BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);

    let received = json!({"engagement": "received", "campaign": campaign});
    assert_eq!(count(&app, &key, received.clone()).await, 2);
    assert_eq!(count(&app, &key, json!({"not": received})).await, 2);
    assert_eq!(
        count(&app, &key, json!({"engagement": "received", "days": 1})).await,
        2
    );
    assert_eq!(
        count(&app, &key, json!({"engagement": "opened", "days": 7})).await,
        1
    );
    assert_eq!(
        count(&app, &key, json!({"engagement": "clicked", "days": 7})).await,
        0
    );
    assert_eq!(
        count(&app, &key, json!({"and": [{"engagement": "opened", "days": 7}, {"custom": "profession", "op": "neq", "value": "notary"}]})).await,
        1
    );
    // A saved segment counts the same, and the other tenant's contacts got nothing.
    let saved = app
        .post(
            "/api/v2/segments",
            &key,
            json!({"name": "openers", "expression": {"engagement": "opened", "days": 7}}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    let saved = saved.body["id"].as_str().unwrap().to_owned();
    let saved_count = || async {
        app.post(&format!("/api/v2/segments/{saved}/count"), &key, json!({}))
            .await
            .body["count"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(saved_count().await, 1);
    assert_eq!(
        count(
            &app,
            &other_key,
            json!({"engagement": "received", "days": 1})
        )
        .await,
        0
    );
    assert_eq!(
        count(&app, &other_key, json!({"engagement": "opened"})).await,
        0
    );
    // Eight days on (the application's clock), the open has left the week.
    app.clock.advance_ms(8 * DAY_MS);
    assert_eq!(saved_count().await, 0);
    assert_eq!(
        count(&app, &key, json!({"engagement": "opened", "days": 9})).await,
        1
    );
    assert_eq!(
        count(&app, &key, json!({"engagement": "received", "days": 1})).await,
        0
    );

    // Bad expressions, and campaigns that are not the tenant's: 422 naming the field.
    let refused = |path: &'static str, body: Value, field: &'static str| {
        let (app, key) = (&app, &key);
        async move {
            let r = app.post(path, key, body.clone()).await;
            assert_eq!(
                (r.status, r.body["error"]["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}: {}",
                r.body
            );
            r.body["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    for expression in [
        json!({"custom": "bad\"name", "op": "eq", "value": "x"}),
        json!({"custom": "x".repeat(65), "op": "eq", "value": "x"}),
        json!({"custom": "age", "op": "gt", "value": "old"}),
        json!({"field": "city", "op": "gt", "value": "3"}),
        json!({"engagement": "opened", "days": 0}),
        json!({"engagement": "opened", "days": 3651}),
        json!({"engagement": "soft_bounced", "at_least": 0}),
        json!({"engagement": "forwarded"}),
    ] {
        refused(
            "/api/v2/segments/count",
            json!({"expression": expression}),
            "expression",
        )
        .await;
    }
    for campaign in [
        other_campaign.as_str(),
        "0190aaaa-0000-7000-8000-000000000000",
    ] {
        let expression =
            json!({"or": [{"tag": "NEWS"}, {"engagement": "received", "campaign": campaign}]});
        let message = refused(
            "/api/v2/segments/count",
            json!({"expression": expression}),
            "expression",
        )
        .await;
        assert!(message.contains(campaign), "{message}");
        refused(
            "/api/v2/segments",
            json!({"name": "x", "expression": expression}),
            "expression",
        )
        .await;
        refused(
            "/api/v2/contacts/tags",
            json!({"filter": expression, "add": ["X"]}),
            "filter",
        )
        .await;
    }
    app.finish().await;
}
