//! A/B tests end to end: the test share split over the variants, the winner chosen by
//! unique opens after the wait and sent to the rest, an operator naming the winner, and
//! the 422s and 409s.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{HOUR_MS, action, brand, contacts, header};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How many messages went out with each subject.
fn by_subject(smtp: &TestSmtpServer) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in smtp.received() {
        let data = String::from_utf8_lossy(&r.data).into_owned();
        *by.entry(header(&data, "Subject").unwrap().to_owned())
            .or_default() += 1;
    }
    by
}

async fn ab_campaign(app: &TestApp, key: &str, template: &str, name: &str) -> String {
    let created = app
        .post(
            "/api/v2/campaigns",
            key,
            json!({"name": name, "type": "ab_test", "template_id": template, "audience": {"all": true},
                   "ab": {"variants": [{"name": "A", "subject": "Subject A"},
                                       {"name": "B", "subject": "Subject B", "from_name": "Team B"}],
                          "test_share": 0.2, "wait_hours": 4}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["ab"]["winner_by"], "opens");
    created.body["id"].as_str().unwrap().to_owned()
}

async fn sent_of(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v2/campaigns/{id}/recipients?state=sent&limit=500"),
            key,
        )
        .await;
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_variant_with_more_opens_goes_to_the_rest_after_the_wait() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = (0..100)
        .map(|i| (format!("p{i:03}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    let id = ab_campaign(&app, &key, &template, "subjects").await;
    assert_eq!(action(&app, &key, &id, "start").await["recipients"], 100);

    // The test share: 20 recipients, 10 per variant; the rest waits for the winner.
    assert_eq!(app.dispatch().await.queued, 20);
    app.deliver().await;
    assert_eq!(
        by_subject(&smtp),
        BTreeMap::from([("Subject A".to_owned(), 10), ("Subject B".to_owned(), 10)])
    );
    // B's messages are opened more by people: 5 against 2 (one of A's twice: unique opens
    // count). A's other messages are all fetched by a link scanner, which must not count.
    app.clock.advance_ms(60_000);
    let sent = sent_of(&app, &key, &id).await;
    let tracking_key = app.services.delivery.tracking_key.clone();
    let mut opened = BTreeMap::<String, usize>::new();
    const PERSON: &str = common::BROWSER;
    for r in &sent {
        let variant = r["variant"].as_str().unwrap().to_owned();
        let wanted = if variant == "A" { 2 } else { 5 };
        let n = opened.entry(variant.clone()).or_default();
        let token = ee_core::tracking::sign(
            &tracking_key,
            ee_core::tracking::Kind::Open,
            r["message_id"].as_str().unwrap(),
            0,
        );
        let agent = if *n == wanted {
            if variant == "B" {
                continue;
            }
            "Barracuda Sentinel (link protection)"
        } else {
            *n += 1;
            PERSON
        };
        let times = if *n == 1 && agent == PERSON { 3 } else { 1 };
        for _ in 0..times {
            let pixel = app
                .client
                .get(format!("{}/t/o/{token}", app.base))
                .header("user-agent", agent)
                .send()
                .await
                .unwrap();
            assert_eq!(pixel.status(), StatusCode::OK);
        }
    }
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.body["totals"]["opened_unique"], 7, "{}", stats.body);
    // The first opener of each variant opened three times: two repeats each.
    assert_eq!(stats.body["totals"]["opened"], 11, "{}", stats.body);
    assert_eq!(stats.body["totals"]["opened_machine"], 8, "{}", stats.body);
    // Per variant: each has its ten, all sent; the scanner's opens count for neither.
    for (variant, opens) in [("A", 2), ("B", 5)] {
        let v = &stats.body["by_variant"][variant];
        assert_eq!(v["recipients"], 10, "{}", stats.body);
        assert_eq!(v["by_state"]["sent"], 10, "{}", stats.body);
        assert_eq!(v["opened_unique"], opens, "{}", stats.body);
        assert_eq!(v["clicked_unique"], 0, "{}", stats.body);
    }
    // Not before the wait is over (a minute of it went by before the opens).
    app.clock.advance_ms(4 * HOUR_MS - 60_001);
    assert_eq!(app.dispatch().await.queued, 0);
    app.clock.advance_ms(1);
    assert_eq!(app.dispatch().await.queued, 80);
    app.deliver().await;
    assert_eq!(
        by_subject(&smtp),
        BTreeMap::from([("Subject A".to_owned(), 10), ("Subject B".to_owned(), 90)])
    );
    let last = smtp.received().pop().unwrap();
    let data = String::from_utf8_lossy(&last.data).into_owned();
    assert!(header(&data, "From").unwrap().contains("Team B"), "{data}");
    app.dispatch().await;
    let done = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(done.body["ab"]["winner"], "B");
    assert_eq!(done.body["status"], "sent", "{}", done.body);
    let audit = app
        .get(
            "/api/v1/audit/logs?resource_type=campaign&action=campaign.ab_winner.decided",
            &app.admin,
        )
        .await;
    let decided = &audit.body["items"][0]["after"];
    assert_eq!(decided["winner"], "B", "{}", audit.body);
    assert_eq!(decided["why"]["counts"], json!({"A": 2, "B": 5}));
    assert_eq!(decided["rest"], 80);
    app.finish().await;
}

#[tokio::test]
async fn an_operator_names_the_winner_and_bad_tests_are_refused() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = (0..10)
        .map(|i| (format!("q{i}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    let id = ab_campaign(&app, &key, &template, "override").await;
    action(&app, &key, &id, "start").await;
    assert_eq!(app.dispatch().await.queued, 2);
    let unknown = app
        .post(
            &format!("/api/v2/campaigns/{id}/winner"),
            &key,
            json!({"variant": "C"}),
        )
        .await;
    assert_eq!(
        unknown.body["error"]["field"], "variant",
        "{}",
        unknown.body
    );
    let chosen = app
        .post(
            &format!("/api/v2/campaigns/{id}/winner"),
            &key,
            json!({"variant": "A"}),
        )
        .await;
    assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.body);
    assert_eq!(chosen.body["ab"]["winner"], "A");
    let again = app
        .post(
            &format!("/api/v2/campaigns/{id}/winner"),
            &key,
            json!({"variant": "B"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(app.dispatch().await.queued, 8, "the rest, at once");
    app.deliver().await;
    assert_eq!(
        by_subject(&smtp),
        BTreeMap::from([("Subject A".to_owned(), 9), ("Subject B".to_owned(), 1)])
    );

    for (body, field) in [
        (
            json!({"name": "x", "type": "ab_test", "template_id": template,
                   "ab": {"variants": [{"name": "A"}]}}),
            "ab.variants",
        ),
        (
            json!({"name": "x", "type": "ab_test", "template_id": template,
                   "ab": {"variants": [{"name": "A"}, {"name": "A"}]}}),
            "ab.variants[1].name",
        ),
        (
            json!({"name": "x", "type": "ab_test", "template_id": template,
                   "ab": {"variants": [{"name": "A"}, {"name": "B"}], "test_share": 0}}),
            "ab.test_share",
        ),
        (
            json!({"name": "x", "type": "ab_test", "template_id": template}),
            "ab",
        ),
        (
            json!({"name": "x", "template_id": template,
                   "ab": {"variants": [{"name": "A"}, {"name": "B"}]}}),
            "ab",
        ),
    ] {
        let r = app.post("/api/v2/campaigns", &key, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        let fields: Vec<&str> = r.body["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {}", r.body);
    }
    app.finish().await;
}
