//! A DNS blacklist is checked with its test addresses before its answers are trusted: a
//! closed list that answers every address as listed (AHBL did) marks no IP blacklisted,
//! and the operator is told.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Options, TestApp};
use ee_dns::testing::{Rec, Zone};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_misbehaving_list_is_not_trusted_and_raises_an_alert() {
    let mut zone = Zone::new();
    let listed = Rec::A("127.0.0.2".parse().unwrap());
    // dnsbl.test.example lists everything, its clean test address too; bl.test.example
    // behaves and has nothing against the IP.
    for name in [
        "1.0.0.127.dnsbl.test.example",
        "20.2.0.192.dnsbl.test.example",
    ] {
        zone.add(name, listed.clone());
    }
    let app = TestApp::builder()
        .options(Options {
            zone,
            ..Default::default()
        })
        .spawn()
        .await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "192.0.2.20", "hostname": "mta.brand.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let check = app
        .get("/api/v1/blacklists/check?ip=192.0.2.20", &key)
        .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    assert_eq!(check.body["listed"], false, "{}", check.body);
    assert_eq!(check.body["state"], "active", "{}", check.body);
    let lists = check.body["lists"].as_array().unwrap();
    let bad = lists
        .iter()
        .find(|l| l["zone"] == "dnsbl.test.example")
        .unwrap();
    assert_eq!(bad["misbehaving"], true, "{bad}");
    assert_eq!(bad["listed"], false);
    assert!(
        bad["error"].as_str().unwrap().contains("127.0.0.1"),
        "{bad}"
    );
    let good = lists
        .iter()
        .find(|l| l["zone"] == "bl.test.example")
        .unwrap();
    assert_eq!(
        (good["listed"].clone(), good["misbehaving"].clone()),
        (json!(false), json!(false))
    );

    let alerts = app.get("/api/v1/alerts", &app.admin).await;
    let text = alerts.body.to_string();
    assert!(
        text.contains("failed its self-test") && text.contains("dnsbl.test.example"),
        "{text}"
    );
    app.finish().await;
}
