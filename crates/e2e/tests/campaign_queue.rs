//! A batch of a campaign's recipients handed to the queue at once keeps the rules of one
//! message's queueing: an address suppressed after the start, or over the tenant's
//! frequency cap by then, is skipped with why; the others are queued and delivered once.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{action, brand, contacts, received_by};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_batch_skips_addresses_suppressed_or_capped_since_the_start() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = ["ok", "gone", "busy", "also"]
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

    // After the start: one address is suppressed, another gets a message, and the tenant
    // caps campaign mail at one message a day.
    app.suppress(&key, "gone@example.test", "manual").await;
    // A campaign message of another sender (transactional ones do not count).
    let (earlier, _) = ee_app::queue::messages::queue(
        &app.services,
        ee_app::queue::messages::SendRequest {
            tenant_id: created.body["tenant_id"].as_str().unwrap().to_owned(),
            kind: ee_core::delivery::MessageKind::Campaign,
            to_email: "busy@example.test".into(),
            subject: Some("s".into()),
            text: Some("t".into()),
            from_email: Some("hello@brand.test".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(earlier.state.as_str(), "queued");
    let capped = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta",
                        "frequency_cap": {"max": 1, "hours": 24}})),
        )
        .await;
    assert_eq!(capped.status, StatusCode::OK, "{}", capped.body);

    assert_eq!(app.dispatch_and_deliver().await.finished, 1);
    let got = received_by(&smtp);
    assert_eq!(got.get("ok@example.test"), Some(&1), "{got:?}");
    assert_eq!(got.get("also@example.test"), Some(&1), "{got:?}");
    assert_eq!(got.get("gone@example.test"), None);
    assert_eq!(
        got.get("busy@example.test"),
        Some(&1),
        "only the earlier message"
    );
    let ledger = app
        .get(&format!("/api/v2/campaigns/{id}/recipients"), &key)
        .await;
    let row = |email: &str| -> Value {
        ledger.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["email"] == email)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("ok@example.test")["state"], "sent");
    assert_eq!(row("gone@example.test")["state"], "skipped");
    assert!(
        row("gone@example.test")["detail"]
            .as_str()
            .unwrap()
            .contains("suppressed"),
        "{}",
        ledger.body
    );
    assert_eq!(row("busy@example.test")["state"], "skipped");
    assert!(
        row("busy@example.test")["detail"]
            .as_str()
            .unwrap()
            .contains("frequency cap"),
        "{}",
        ledger.body
    );
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.body["totals"]["skipped"], 2, "{}", stats.body);
    assert_eq!(stats.body["totals"]["sent"], 2, "{}", stats.body);
    app.finish().await;
}

/// Two nodes may read the same pending recipients and both hand them over: the second
/// finds the messages the first made (or, racing it, loses on the idempotency key), and
/// each recipient still has one message and gets one mail.
#[tokio::test]
async fn a_batch_handed_over_twice_gives_each_recipient_one_message() {
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
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    let mut conn = app.services.db.pool().acquire().await.unwrap();
    let campaign = ee_store::campaigns::get(&mut conn, &id, ee_store::Scope::All)
        .await
        .unwrap();
    let batch = ee_store::campaigns::pending(&mut conn, &id, 10, false)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(batch.len(), 3);
    for _ in 0..2 {
        ee_app::campaigns::queue::queue_batch(&app.services, &campaign, &batch, &[])
            .await
            .unwrap();
    }
    let mut conn = app.services.db.pool().acquire().await.unwrap();
    let made: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, idempotency_key FROM messages WHERE campaign_id = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(made.len(), 3, "{made:?}");
    // The race itself: a message for a key already taken is not inserted.
    let mut twin = ee_store::messages::NewMessage {
        id: ee_core::ids::new_id(),
        tenant_id: campaign.tenant_id.clone(),
        idempotency_key: Some(made[0].1.clone()),
        to_email: "a@example.test".into(),
        from_email: "hello@brand.test".into(),
        subject: "s".into(),
        headers: "{}".into(),
        kind: ee_core::delivery::MessageKind::Campaign,
        state: "queued".into(),
        ..Default::default()
    };
    twin.message_id_header = format!("{}@brand.test", twin.id);
    let inserted = ee_store::campaign_batches::insert_messages(&mut conn, &[&twin], 1)
        .await
        .unwrap();
    assert!(inserted.is_empty(), "{inserted:?}");
    let ledger: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT state, message_id FROM campaign_recipients WHERE campaign_id = $1")
            .bind(&id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    for (state, message) in &ledger {
        assert_eq!(state, "queued");
        assert!(
            made.iter().any(|(m, _)| Some(m) == message.as_ref()),
            "{ledger:?}"
        );
    }
    assert_eq!(app.dispatch_and_deliver().await.finished, 1);
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(
        stats.body["totals"]["queued"], 3,
        "counted once: {}",
        stats.body
    );
    let got = received_by(&smtp);
    assert_eq!(got.values().sum::<usize>(), 3, "{got:?}");
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    app.finish().await;
}
