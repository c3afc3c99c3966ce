//! Faults on the receiving side lose nothing: a real SMTP peer that answers 4xx to a fifth
//! of the messages, 5xx to one in twenty, drops the connection after the data and stalls
//! past the time-out; and a relay that is unreachable for ten minutes. Every message ends
//! in the state that matches what the peer did, and nothing is received twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::TestApp;
use common::sending::{action, brand, contacts};
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::StatusCode;
use serde_json::json;

/// What the peer does with recipient `i` (first, then every later time).
fn script(i: usize) -> (Vec<Behaviour>, &'static str) {
    match i % 20 {
        0..=3 => (
            vec![
                Behaviour::RefuseRcpt(451, "4.7.1 Try again later".into()),
                Behaviour::Accept,
            ],
            "4xx",
        ),
        4 => (
            vec![Behaviour::RefuseRcpt(550, "5.1.1 No such user".into())],
            "5xx",
        ),
        5 => (vec![Behaviour::DropAfterData, Behaviour::Accept], "drop"),
        6 => (vec![Behaviour::HangAfterData, Behaviour::Accept], "stall"),
        _ => (vec![Behaviour::Accept], "accept"),
    }
}

#[tokio::test]
async fn a_peer_that_fails_in_every_way_loses_nothing_and_sends_nothing_twice() {
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    const N: usize = 100;
    for i in 0..N {
        let to = format!("r{i}@example.test");
        smtp.script(&to, script(i).0);
        let r = app
            .post(
                "/api/v2/messages",
                &key,
                json!({"to": to, "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    // Deliver, let the retry delay pass, again, until nothing waits.
    for _ in 0..10 {
        app.deliver().await;
        app.clock.advance_ms(3_600_000);
    }
    let mut conn = app.db.pool().acquire().await.unwrap();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT to_email, state, attempts FROM messages")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    assert_eq!(rows.len(), N);
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for r in smtp.received() {
        *received.entry(r.rcpt_to).or_default() += 1;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (to, state, attempts) in &rows {
        let i: usize = to[1..to.find('@').unwrap()].parse().unwrap();
        let (_, kind) = script(i);
        *seen.entry(kind).or_default() += 1;
        let got = received.get(to).copied().unwrap_or(0);
        let expected = match kind {
            // Refused for good: bounced at once, never received.
            "5xx" => ("bounced", 1, 0),
            // Refused for now, cut off, or stalled: tried again, received once.
            "4xx" | "drop" | "stall" => ("sent", 2, 1),
            _ => ("sent", 1, 1),
        };
        assert_eq!((state.as_str(), *attempts, got), expected, "{to} ({kind})");
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            ("4xx", 20),
            ("5xx", 5),
            ("drop", 5),
            ("stall", 5),
            ("accept", 65)
        ])
    );
    app.finish().await;
}

#[tokio::test]
async fn a_relay_unreachable_for_ten_minutes_holds_the_campaign_which_then_resumes() {
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let addr = smtp.addr;
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<(String, &str, Vec<&str>)> = (0..20)
        .map(|i| (format!("p{i}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    // The relay goes away: nothing listens on its port any more.
    smtp.shutdown();
    drop(smtp);
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "during the outage", "template_id": template, "audience": {"all": true}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    // Ten minutes of outage, a minute at a time.
    for _ in 0..10 {
        app.dispatch_and_deliver().await;
        let campaign = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
        assert_eq!(campaign.body["status"], "sending", "{}", campaign.body);
        app.clock.advance_ms(60_000);
    }
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(
        stats.body["by_state"],
        json!({"deferred": 20}),
        "{}",
        stats.body
    );
    // The relay is back on its port; the messages go at their next attempt.
    let back = TestSmtpServer::start_on(addr).await.unwrap();
    for _ in 0..6 {
        app.clock.advance_ms(300_000);
        app.dispatch_and_deliver().await;
    }
    let campaign = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(campaign.body["status"], "sent", "{}", campaign.body);
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(
        stats.body["by_state"],
        json!({"sent": 20}),
        "{}",
        stats.body
    );
    let mut got: Vec<String> = back.received().into_iter().map(|r| r.rcpt_to).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 20);
    assert_eq!(back.received().len(), 20, "each once");
    app.finish().await;
}
