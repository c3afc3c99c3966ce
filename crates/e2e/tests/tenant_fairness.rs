//! One tenant's backlog does not hold another's mail: with 20 000 of tenant A's messages
//! due before it, tenant C's one message goes in the engine's very next batch (a claim
//! takes each tenant's earliest due messages, in turns between tenants).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::brand;
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::json;

const BACKLOG: i64 = 20_000;

/// Tenant C's one message, to c@example.test: its id.
async fn send_c(app: &TestApp, key: &str) -> String {
    let c = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": "c@example.test", "subject": "C", "html": "<p>c</p>", "from_email": "hello@other.test"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::ACCEPTED, "{}", c.body);
    c.body["id"].as_str().unwrap().to_owned()
}

/// A second tenant, `other`, signing for other.test and relaying to `smtp`: its id and key.
async fn other_tenant(app: &TestApp, smtp: &TestSmtpServer) -> (String, String) {
    let tenant = app.tenant("other").await;
    let (_, key) = app.api_key(&tenant, "mail").await;
    let domain = app
        .post(
            "/api/v1/domains",
            &key,
            json!({"domain": "other.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.body);
    app.relay_mode(&key, "other", smtp.addr.port()).await;
    (tenant, key)
}

#[tokio::test]
async fn a_tenants_single_message_is_not_queued_behind_anothers_backlog() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (a_key, _) = brand(&app, &smtp).await;
    let (c_tenant, c_key) = other_tenant(&app, &smtp).await;

    // Tenant A's backlog: one message by the API, copied 20 000 times in the database.
    let first = app
        .post(
            "/api/v2/messages",
            &a_key,
            json!({"to": "a@example.test", "subject": "A", "html": "<p>a</p>", "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let first_id = first.body["id"].as_str().unwrap().to_owned();
    {
        let mut conn = app.db.pool().acquire().await.unwrap();
        let copied = sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
             INSERT INTO messages (id, tenant_id, kind, to_email, from_email, subject, html, \
                 headers, track_opens, track_clicks, links, message_id_header, state, attempts, \
                 next_attempt_at, queued_at, updated_at) \
             SELECT m.id || '-' || n.i, m.tenant_id, m.kind, 'a' || n.i || '@example.test', \
                 m.from_email, m.subject, m.html, m.headers, m.track_opens, m.track_clicks, \
                 m.links, n.i || m.message_id_header, m.state, 0, m.next_attempt_at, \
                 m.queued_at, m.updated_at \
             FROM messages m, n WHERE m.id = $1",
        )
        .bind(&first_id)
        .bind(BACKLOG)
        .execute(&mut *conn)
        .await
        .unwrap();
        assert_eq!(copied.rows_affected(), BACKLOG as u64);
    }
    // Tenant C's one message, queued after all of them.
    app.clock.advance_ms(1_000);
    let c_id = send_c(&app, &c_key).await;

    // One batch: C's message is in it (before, the claim looked at the earliest 5 000
    // due messages, all of them A's, and C waited for the backlog to drain).
    let engine = ee_jobs::delivery::Engine::new(app.services.clone());
    let batch = app.services.delivery.batch as usize;
    assert_eq!(engine.run_once().await.unwrap(), batch);
    let m = app.get(&format!("/api/v2/messages/{c_id}"), &c_key).await;
    assert_eq!(m.body["state"], "sent", "{}", m.body);
    let received = smtp.received();
    assert_eq!(received.len(), batch);
    assert_eq!(
        received
            .iter()
            .filter(|r| r.rcpt_to == "c@example.test")
            .count(),
        1
    );
    // A's messages took the rest of the batch, oldest first: fairness takes nothing away
    // from a tenant alone in the queue.
    let a_sent: i64 = {
        let mut conn = app.db.pool().acquire().await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE tenant_id <> $1 AND state = 'sent'")
            .bind(&c_tenant)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(a_sent, batch as i64 - 1);
    app.finish().await;
}

/// A tenant whose receiver stalls (each conversation until the time-out) holds at most
/// its share of the node's connections, and not the node's next claims: another
/// tenant's message goes meanwhile.
#[tokio::test]
async fn a_tenants_stalling_receiver_does_not_hold_anothers_message() {
    use ee_mail::testing::Behaviour;
    use std::time::Duration;
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (a_key, _) = brand(&app, &smtp).await;
    let (c_tenant, c_key) = other_tenant(&app, &smtp).await;
    // A's receiver takes the data and never answers, for each of 30 messages.
    for i in 0..30 {
        let to = format!("stall{i}@example.test");
        smtp.script(&to, vec![Behaviour::HangAfterData]);
        let r = app
            .post(
                "/api/v2/messages",
                &a_key,
                json!({"to": to, "subject": "A", "html": "<p>a</p>", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    // A node of four connections, whose conversations time out after a minute.
    let mut services = app.services.clone();
    services.delivery.concurrency = 4;
    services.delivery.timeout = Duration::from_secs(60);
    let engine = ee_jobs::delivery::Engine::new(services);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(engine.run(stopped));
    // A's conversations are under way (and stalled).
    for _ in 0..100 {
        if smtp.connections() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c_id = send_c(&app, &c_key).await;
    // Sent within seconds, not after A's minute-long time-outs.
    let mut state = String::new();
    for _ in 0..100 {
        let m = app.get(&format!("/api/v2/messages/{c_id}"), &c_key).await;
        state = m.body["state"].as_str().unwrap().to_owned();
        if state == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "sent");
    // A's were still stalled: none of them has ended.
    let waiting: i64 = {
        let mut conn = app.db.pool().acquire().await.unwrap();
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE tenant_id <> $1 AND state = 'sending'",
        )
        .bind(&c_tenant)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    };
    assert_eq!(waiting, 30);
    let _ = stop.send(true);
    running.abort();
    let _ = running.await;
    app.finish().await;
}
