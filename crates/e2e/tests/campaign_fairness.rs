//! Several campaigns of one tenant sending at once share its IPs fairly: when the warm-up
//! quota of the tenant's only IP runs out, each campaign has had its share of it, not the
//! first one all of it; the rest wait for the next quota rather than fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{action, brand, contacts, received_by};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn campaigns_sending_together_share_the_ip_quota() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    // The tenant's one IP, warming: 30 messages today.
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "127.0.0.2", "hostname": "mta2.brand.test", "state": "warming"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let plan = app
        .post(
            "/api/v1/warmup/plans",
            &key,
            json!({"ip_id": ip.body["id"], "schedule": [30, 100], "replace": true}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{}", plan.body);

    // Three campaigns of 40 recipients each, started together: 120 messages for 30 sends.
    let groups = ["A", "B", "C"];
    let tags: Vec<String> = groups.iter().map(|g| format!("GROUP:{g}")).collect();
    let people: Vec<_> = groups
        .iter()
        .zip(&tags)
        .flat_map(|(g, tag)| {
            (0..40).map(move |i| {
                (
                    format!("{}{i:02}@example.test", g.to_lowercase()),
                    "fr",
                    vec![tag.as_str()],
                )
            })
        })
        .collect();
    contacts(&app, &key, &people).await;
    let mut ids = Vec::new();
    for g in groups {
        let created = app
            .post(
                "/api/v2/campaigns",
                &key,
                json!({"name": format!("campaign {g}"), "template_id": template,
                       "audience": {"tags": [format!("GROUP:{g}")]}}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        action(&app, &key, &id, "start").await;
        ids.push(id);
    }
    app.dispatch_and_deliver().await;

    let got = received_by(&smtp);
    assert_eq!(
        got.values().sum::<usize>(),
        30,
        "the quota, no more: {got:?}"
    );
    let mut shares = Vec::new();
    for (g, id) in groups.iter().zip(&ids) {
        let received = got
            .keys()
            .filter(|a| a.starts_with(&g.to_lowercase()))
            .count();
        let stats = app
            .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
            .await;
        assert_eq!(stats.body["totals"]["sent"], received, "{}", stats.body);
        shares.push(received);
    }
    // Fair turns: each campaign had about a third of the quota (ten), none was starved.
    for share in &shares {
        assert!((8..=12).contains(share), "shares {shares:?}");
    }
    // The others wait for the next quota, unattempted, in their campaigns' queues.
    for id in &ids {
        let campaign = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
        assert_eq!(campaign.body["status"], "sending", "{}", campaign.body);
    }
    let waiting = app
        .get("/api/v2/messages?state=deferred&limit=200", &key)
        .await;
    let items = waiting.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 90, "{}", waiting.body);
    assert!(
        items
            .iter()
            .all(|m| m["state_reason"].as_str().unwrap_or("").contains("quota")),
        "{}",
        waiting.body
    );
    app.finish().await;
}
