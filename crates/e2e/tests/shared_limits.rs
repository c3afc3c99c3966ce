//! Limits hold across API nodes: two nodes over one PostgreSQL database give one rate
//! limit and one failed-login count, not one each. (A SQLite database is one file served
//! by one node: there the node's own count is the whole count, checked here too.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn on_postgres() -> bool {
    std::env::var("EE_TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

#[tokio::test]
async fn two_nodes_give_one_rate_limit() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit_per_minute = 8;
            s.ip_rate_limit_per_minute = 1_000;
        })
        .spawn()
        .await;
    let other = app.another_node().await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let base = if i % 2 == 0 { &app.base } else { &other.base };
        let r = app
            .call_on(base, Method::GET, "/api/v1/auth/me", Some(&app.admin), None)
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&r), "rate_limited");
            let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(r.status.as_u16());
    }
    if on_postgres() {
        // Eight in all, whichever node took them.
        assert_eq!(
            statuses,
            [200, 200, 200, 200, 200, 200, 200, 200, 429, 429, 429, 429]
        );
    } else {
        // One node's memory each: six requests each are within eight.
        assert_eq!(statuses, [200; 12]);
    }
    other.stop().await;
    app.finish().await;
}

#[tokio::test]
async fn failed_logins_on_two_nodes_lock_as_one_count() {
    let app = TestApp::spawn().await;
    let other = app.another_node().await;
    let wrong = json!({"email": common::ADMIN_EMAIL, "password": "not-the-password"});
    let right = json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD});
    // The failures the account is allowed, spread over both nodes, and one more.
    let free = ee_core::login_throttle::ACCOUNT.free_failures;
    for i in 0..=free {
        let base = if i % 2 == 0 { &app.base } else { &other.base };
        let r = app
            .call_on(
                base,
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(wrong.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // Locked on both nodes, though neither saw more than half the failures.
    for base in [&app.base, &other.base] {
        let r = app
            .call_on(
                base,
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(right.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    }
    other.stop().await;
    app.finish().await;
}

/// Failed logins that race on two nodes are each counted (on PostgreSQL the count's row
/// is locked while it is read and written).
#[tokio::test]
async fn concurrent_failed_logins_are_all_counted() {
    let app = TestApp::spawn().await;
    let other = app.another_node().await;
    let free = ee_core::login_throttle::ACCOUNT.free_failures;
    let wrong = json!({"email": common::ADMIN_EMAIL, "password": "not-the-password"});
    let mut all = tokio::task::JoinSet::new();
    for i in 0..=free {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            other.base.clone()
        };
        let (client, wrong) = (app.client.clone(), wrong.clone());
        // Sent together: the requests are in flight at once.
        all.spawn(async move {
            client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&wrong)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = all.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let right = json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD});
    let r = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(right))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    other.stop().await;
    app.finish().await;
}
