//! Providers' rates across IPs (seed 002: Gmail 50/s, Yahoo 30/s, Hotmail 20/s): a
//! provider's messages in one second are counted over every IP and every node, the rest
//! wait for the next second without an attempt counted; other providers are not held.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use common::{Options, TestApp};
use ee_dns::testing::{Rec, Zone};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn zone() -> Zone {
    let mut zone = Zone::new();
    zone.add("hosted-a.test", Rec::Mx(5, "aspmx.l.google.com".into()))
        .add("elsewhere.test", Rec::Mx(10, "mx.elsewhere.test".into()))
        .add("aspmx.l.google.com", Rec::A(Ipv4Addr::LOCALHOST))
        .add("mx.elsewhere.test", Rec::A(Ipv4Addr::LOCALHOST));
    zone
}

fn node(app: &TestApp, name: &str) -> Arc<ee_jobs::delivery::Engine> {
    let mut services = app.services.clone();
    services.delivery.node = name.into();
    ee_jobs::delivery::Engine::new(services)
}

#[tokio::test]
async fn a_providers_rate_is_counted_across_ips_and_nodes() {
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            // Each IP may send Gmail 2 an hour; Gmail takes 3 a second from all of them.
            limits: ee_core::delivery::DestinationLimits::parse("gmail=2/5").unwrap(),
            rates: ee_core::provider_rates::ProviderRates::parse("gmail=3").unwrap(),
            ..Default::default()
        })
        .spawn()
        .await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    for (ip, host) in [("127.0.0.6", "mta6"), ("127.0.0.7", "mta7")] {
        let created = app
            .post(
                "/api/v1/ips",
                &key,
                json!({"ip": ip, "hostname": format!("{host}.brand.test"), "state": "active"}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let mut gmail = Vec::new();
    let mut other = Vec::new();
    for i in 0..6 {
        for (domain, ids) in [
            ("hosted-a.test", &mut gmail),
            ("elsewhere.test", &mut other),
        ] {
            let (m, _) = ee_app::queue::messages::queue(
                &app.services,
                ee_app::queue::messages::SendRequest {
                    tenant_id: tenant.clone(),
                    kind: ee_core::delivery::MessageKind::Transactional,
                    to_email: format!("r{i}@{domain}"),
                    subject: Some("Hello".into()),
                    text: Some("Hello".into()),
                    from_email: Some("news@brand.test".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            ids.push(m.id);
        }
    }
    let read = |ids: Vec<String>| {
        let app = &app;
        let key = &key;
        async move {
            let mut out: Vec<Value> = Vec::new();
            for id in ids {
                out.push(app.get(&format!("/api/v2/messages/{id}"), key).await.body);
            }
            out
        }
    };
    let sent = |ms: &[Value]| ms.iter().filter(|m| m["state"] == "sent").count();

    // Two nodes in the same second (the test clock stands still).
    let (a, b) = (node(&app, "n1"), node(&app, "n2"));
    a.run_until_idle().await.unwrap();
    b.run_until_idle().await.unwrap();
    let g = read(gmail.clone()).await;
    assert_eq!(sent(&g), 3, "{g:#?}");
    // Three sends, more than one IP's hourly 2: both IPs carried them, one count.
    let ips: BTreeSet<&str> = g
        .iter()
        .filter(|m| m["state"] == "sent")
        .map(|m| m["ip_id"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2, "{g:#?}");
    for waiting in g.iter().filter(|m| m["state"] != "sent") {
        assert_eq!(waiting["state"], "deferred", "{waiting:#}");
        assert_eq!(
            waiting["attempts"], 0,
            "not counted as an attempt: {waiting:#}"
        );
        let reason = waiting["state_reason"].as_str().unwrap();
        assert!(reason.contains("gmail's rate across IPs (3/s)"), "{reason}");
    }
    // Another provider is not held by Gmail's rate.
    assert_eq!(sent(&read(other).await), 6);
    let mut conn = app.services.db.pool().acquire().await.unwrap();
    let second = ee_core::provider_rates::second_of(app.clock.now_ms());
    assert_eq!(
        ee_store::provider_seconds::sent(&mut conn, "gmail", second)
            .await
            .unwrap(),
        3
    );
    drop(conn);
    // The rates and the busiest second of the last minute, for an administrator; a
    // tenant sees the rates, not every tenant's counts.
    let provider = |body: &Value, name: &str| {
        body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {body}"))
            .clone()
    };
    let admin = app.get("/api/v1/shaping/rules", &app.admin).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    let g = provider(&admin.body, "gmail");
    assert_eq!(
        (&g["rate_per_second"], &g["peak_last_minute"]),
        (&json!(3), &json!(3))
    );
    let y = provider(&admin.body, "yahoo");
    assert_eq!(
        (&y["rate_per_second"], &y["peak_last_minute"]),
        (&json!(30), &json!(0))
    );
    let theirs = app.get("/api/v1/shaping/rules", &key).await;
    let g = provider(&theirs.body, "gmail");
    assert_eq!(g["rate_per_second"], 3);
    assert_eq!(g["peak_last_minute"], Value::Null);

    // The next second: the IPs' hour has one Gmail send left, and it goes.
    app.clock.advance_ms(1_000);
    a.run_until_idle().await.unwrap();
    let g = read(gmail.clone()).await;
    assert_eq!(sent(&g), 4, "{g:#?}");
    assert_eq!(smtp.received().len(), 6 + 4);
    app.finish().await;
}
