//! A campaign's pace where its messages meet the transport: the throttle's sliding hour
//! and the sending window (in the tenant's zone or the recipient's) hold messages that
//! are already queued, the queue never holds the whole audience, and the pace of a
//! running campaign can be changed. Delivery through a relay on loopback, on the
//! settable clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{HOUR_MS, brand, contacts, ledger, received_by, set_zone};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The message handed over to `email`, as the API shows it.
async fn message_to(app: &TestApp, key: &str, id: &str, email: &str) -> Value {
    let row = ledger(app, key, id)
        .await
        .into_iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not a recipient"));
    let message = row["message_id"].as_str().expect("handed over");
    app.get(&format!("/api/v2/messages/{message}"), key)
        .await
        .body
}

#[tokio::test]
async fn the_throttle_holds_at_the_transport_over_a_sliding_hour() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = (0..25)
        .map(|i| (format!("t{i:02}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "slow", "template_id": template, "audience": {"all": true},
                   "throttle": {"per_hour": 10}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    common::sending::action(&app, &key, &id, "start").await;

    // The queue takes an hour's worth, and the transport all of it.
    assert_eq!(app.dispatch().await.queued, 10);
    assert_eq!(app.dispatch().await.queued, 0, "the queue is full");
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 10);

    // Ten more wait in the queue: the transport does not get them within the hour.
    assert_eq!(app.dispatch().await.queued, 10);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 10);
    let held = ledger(&app, &key, &id)
        .await
        .into_iter()
        .find(|r| r["state"] == "queued")
        .expect("a recipient waits");
    let message = app
        .get(
            &format!("/api/v2/messages/{}", held["message_id"].as_str().unwrap()),
            &key,
        )
        .await
        .body;
    assert_eq!(message["state"], "queued", "{message}");
    assert!(
        message["state_reason"]
            .as_str()
            .unwrap()
            .contains("throttle (10 an hour)"),
        "{message}"
    );
    // Not one more message before the hour slides past the first ten.
    app.clock.advance_ms(HOUR_MS - 120_000);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 10);
    app.clock.advance_ms(120_000);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 20);

    // Slower while it runs: the pace of a sending campaign may change.
    let slower = app
        .call(
            Method::PATCH,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            Some(json!({"throttle": {"per_hour": 12}})),
        )
        .await;
    assert_eq!(slower.status, StatusCode::OK, "{}", slower.body);
    assert_eq!(slower.body["throttle"]["per_hour"], 12);
    assert_eq!(app.dispatch().await.queued, 5);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 22, "12 in the sliding hour");
    app.clock.advance_ms(HOUR_MS);
    app.deliver().await;
    assert_eq!(app.dispatch().await.finished, 1);
    let got = received_by(&smtp);
    assert_eq!(got.len(), 25);
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    app.finish().await;
}

#[tokio::test]
async fn a_sending_window_holds_messages_until_it_opens_in_the_recipients_zone() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    set_zone(&app, &key, "Europe/Paris").await;
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta", "time_zone": "Europe/Atlantis"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["error"]["field"], "time_zone");
    let ingest = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [
                {"email": "paris@example.test", "language": "fr"},
                {"email": "tokyo@example.test", "language": "en", "time_zone": "Asia/Tokyo"},
            ]}),
        )
        .await;
    assert_eq!(ingest.status, StatusCode::OK, "{}", ingest.body);

    // 05:00 UTC on a winter day: 06:00 in Paris (closed), 14:00 in Tokyo (open).
    let now = app.clock.now_ms();
    let day = now - now.rem_euclid(24 * HOUR_MS) + 24 * HOUR_MS;
    let five = day + 5 * HOUR_MS;
    app.clock.advance_ms(five - now);
    let paris_opens = ee_core::zone::parse_datetime(
        &format!("{}T08:00", ee_core::timefmt::date_of(five)),
        &ee_core::zone::parse_zone("Europe/Paris").unwrap(),
    )
    .unwrap();
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "office hours", "template_id": template, "audience": {"all": true},
                   "window": {"from": "08:00", "to": "20:00", "zone": "recipient"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["window"]["zone"], "recipient");
    common::sending::action(&app, &key, &id, "start").await;
    assert_eq!(app.dispatch().await.queued, 2);
    app.deliver().await;
    assert_eq!(
        received_by(&smtp).keys().collect::<Vec<_>>(),
        ["tokyo@example.test"]
    );
    let waiting = message_to(&app, &key, &id, "paris@example.test").await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    let reason = waiting["state_reason"].as_str().unwrap();
    assert!(reason.contains("08:00–20:00 Europe/Paris"), "{reason}");
    assert_eq!(
        waiting["next_attempt_at"],
        ee_core::timefmt::to_rfc3339(paris_opens).as_str(),
        "{waiting}"
    );
    assert_eq!(app.dispatch().await.finished, 0, "a message still waits");

    // A minute before it opens, still nothing; at the opening, it goes.
    app.clock
        .advance_ms(paris_opens - app.clock.now_ms() - 60_000);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 1);
    app.clock.advance_ms(60_000);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 2);
    assert_eq!(app.dispatch().await.finished, 1);
    app.finish().await;
}

#[tokio::test]
async fn an_autoresponder_step_waits_for_its_window() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    // 22:00 UTC: the step's 09:00–12:00 window opens in 11 hours.
    let now = app.clock.now_ms();
    let day = now - now.rem_euclid(24 * HOUR_MS) + 24 * HOUR_MS;
    app.clock.advance_ms(day + 22 * HOUR_MS - now);
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "welcome", "type": "autoresponder", "trigger": "subscription",
                   "template_id": template,
                   "steps": [{"template_id": template, "delay_hours": 0,
                              "window": {"from": "09:00", "to": "12:00"}}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let bad = app
        .call(
            Method::PATCH,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            Some(json!({"steps": [{"template_id": template, "delay_hours": 0,
                                   "window": {"from": "09:00", "to": "9"}}]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["error"]["field"], "steps[0].window.to");
    common::sending::action(&app, &key, &id, "start").await;
    contacts(&app, &key, &[("new@example.test".to_owned(), "fr", vec![])]).await;
    assert_eq!(app.dispatch().await.queued, 0, "not before 09:00");
    let enrollment = app
        .get(&format!("/api/v2/campaigns/{id}/enrollments"), &key)
        .await;
    assert_eq!(
        enrollment.body["items"][0]["next_at"],
        ee_core::timefmt::to_rfc3339(day + 33 * HOUR_MS).as_str(),
        "{}",
        enrollment.body
    );
    app.clock.advance_ms(11 * HOUR_MS);
    assert_eq!(app.dispatch().await.queued, 1);
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 1);
    app.finish().await;
}
