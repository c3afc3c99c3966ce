//! A node renews the lease of what it is sending (a heartbeat), so a slow receiver does
//! not let another node send the same message; a node that dies stops renewing, and its
//! messages move again once the lease runs out (15 s by default, not 5 minutes). What
//! goes twice is only what was inside the dead node's SMTP conversation, with the same
//! Message-ID.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::TestApp;
use common::sending::brand;
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_live_node_keeps_its_lease_and_a_dead_nodes_messages_move_after_it() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::builder().settings(|_| {}).spawn().await;
    assert_eq!(
        ee_app::delivery::DeliverySettings::default().lease_ms,
        15_000,
        "the default lease"
    );
    // The nodes here: a lease of 3 s (renewed every second) and a receiver's time-out
    // longer than the test, so that only the lease decides.
    let mut services = app.services.clone();
    services.delivery.lease_ms = 3_000;
    services.delivery.timeout = Duration::from_secs(60);
    let lease_ms = services.delivery.lease_ms;
    let (key, _) = brand(&app, &smtp).await;
    // The receiver takes the data and then says nothing (until the connection goes);
    // the second time it accepts.
    smtp.script(
        "slow@example.test",
        vec![Behaviour::KeepThenHang, Behaviour::Accept],
    );
    let sent = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "slow@example.test", "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap().to_owned();

    // Node A claims the message and is stuck in the SMTP conversation.
    let node_a = ee_jobs::delivery::Engine::new(services.clone());
    let a = tokio::spawn(async move { node_a.run_once().await });
    for _ in 0..200 {
        if !smtp.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(smtp.received().len(), 1, "node A handed the data over");

    // Past its first lease: node A's heartbeat has renewed it, so node B takes nothing.
    app.clock.advance_ms(lease_ms + 5_000);
    tokio::time::sleep(Duration::from_millis(lease_ms as u64 / 3 + 1_500)).await;
    let node_b = ee_jobs::delivery::Engine::new(services.clone());
    assert_eq!(
        node_b.run_once().await.unwrap(),
        0,
        "a renewed lease is not taken over"
    );
    assert_eq!(smtp.received().len(), 1);

    // Node A dies (its task is dropped mid-conversation): nothing renews the lease.
    a.abort();
    let _ = a.await;
    // Within the lease, still nobody's.
    app.clock.advance_ms(lease_ms / 2);
    assert_eq!(node_b.run_once().await.unwrap(), 0);
    // Once it runs out, node B sends it: the one message in the dead node's conversation
    // goes twice, with the same Message-ID.
    app.clock.advance_ms(lease_ms);
    assert_eq!(node_b.run_once().await.unwrap(), 1);
    let m = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(m.body["state"], "sent", "{}", m.body);
    let received = smtp.received();
    assert_eq!(received.len(), 2);
    let message_id = |data: &[u8]| {
        String::from_utf8_lossy(data)
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .map(str::to_owned)
            .unwrap()
    };
    assert_eq!(message_id(&received[0].data), message_id(&received[1].data));
    app.finish().await;
}

/// What a receiver accepted is recorded as it comes, not when the whole batch is done:
/// while one message of the batch hangs in its conversation, the others are already
/// `sent` (a node dying now would send again only the hanging one).
#[tokio::test]
async fn hand_offs_are_recorded_while_the_batch_is_still_sending() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let mut services = app.services.clone();
    services.delivery.timeout = Duration::from_secs(60);
    let (key, _) = brand(&app, &smtp).await;
    smtp.script("slow@example.test", vec![Behaviour::KeepThenHang]);
    let mut ids = Vec::new();
    for to in [
        "slow@example.test",
        "a@example.test",
        "b@example.test",
        "c@example.test",
    ] {
        let sent = app
            .post(
                "/api/v2/messages",
                &key,
                json!({"to": to, "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
        ids.push(sent.body["id"].as_str().unwrap().to_owned());
    }
    let node = ee_jobs::delivery::Engine::new(services);
    let running = tokio::spawn(async move { node.run_once().await });
    let state = |id: String| {
        let app = &app;
        let key = &key;
        async move {
            app.get(&format!("/api/v2/messages/{id}"), key).await.body["state"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let mut states = Vec::new();
    for _ in 0..100 {
        states.clear();
        for id in &ids {
            states.push(state(id.clone()).await);
        }
        if states[1..].iter().all(|s| s == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states, ["sending", "sent", "sent", "sent"]);
    assert!(!running.is_finished(), "the batch is still in hand");
    running.abort();
    let _ = running.await;
    app.finish().await;
}
