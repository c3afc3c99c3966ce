//! The 5-minute health job: the message queue's backlog, the data directory's free disk
//! space and the memory in use, each against its threshold, with an alert when crossed
//! and a metric either way.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::brand;
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::json;

async fn run_health(app: &TestApp, health: ee_app::infra::health::HealthSettings) {
    let services = ee_app::Services {
        health,
        ..app.services.clone()
    };
    ee_app::schedule::trigger(
        &app.db,
        ee_app::schedule::find(ee_app::schedule::HEALTH).unwrap(),
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    let worker = ee_jobs::Worker::new(
        app.db.clone(),
        app.clock.clone(),
        ee_jobs::WorkerConfig::new("health-test"),
        ee_jobs::standard_registry(services),
    );
    while worker.run_once().await.unwrap() {}
}

#[tokio::test]
async fn crossed_thresholds_alert_and_every_check_is_a_metric() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    // One message waits in the queue (nothing delivers it here).
    let sent = app
        .post("/api/v2/messages", &key,
            json!({"to": "a@example.test", "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let dir = tempfile::tempdir().unwrap();

    // Thresholds no machine meets: more free disk than there is, no memory in use, no
    // message waiting.
    run_health(
        &app,
        ee_app::infra::health::HealthSettings {
            data_dir: Some(dir.path().to_owned()),
            min_free_disk: 1.01,
            max_memory: 0.0,
            max_backlog: 0,
        },
    )
    .await;
    let alerts = app.get("/api/v1/alerts", &app.admin).await;
    let titles: Vec<&str> = alerts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    for title in [
        "Disk space low in the data directory",
        "Memory nearly exhausted",
        "Message queue backlog over its threshold",
    ] {
        assert!(titles.contains(&title), "{title}: {titles:?}");
    }
    let metrics = app.metrics().await;
    for line in [
        "ee_health_check_ok{check=\"disk\"} 0",
        "ee_health_check_ok{check=\"memory\"} 0",
        "ee_health_check_ok{check=\"queue_backlog\"} 0",
        "ee_health_check_value{check=\"queue_backlog\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    let free: f64 = metrics
        .lines()
        .find(|l| l.starts_with("ee_health_check_value{check=\"disk\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(free > 0.0 && free <= 1.0, "{free}");

    // The defaults pass on this machine's queue (one message is no backlog).
    run_health(
        &app,
        ee_app::infra::health::HealthSettings {
            data_dir: Some(dir.path().to_owned()),
            ..Default::default()
        },
    )
    .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("ee_health_check_ok{check=\"queue_backlog\"} 1"),
        "{metrics}"
    );
    app.finish().await;
}
