//! The domain page's DMARC figures in a real browser (headless Chromium) are the API's:
//! a report mailed to the bounce listener, then the page read against
//! `GET /api/v1/domains/{id}/dmarc`.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::Browser;
use common::dmarc::{ADDRESS, domain, report, send};
use common::sending::bounce_listener;
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, TestApp};
use ee_mail::dmarc_testing::{gzip, mail};
use reqwest::StatusCode;
use serde_json::json;

/// Only the digits of a figure as shown (grouping and decimal marks are the language's).
fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The text of the figure `name` on the page.
async fn figure(b: &Browser, name: &str) -> serde_json::Value {
    let script = format!(
        "const e = document.querySelector('[data-figure=\"{name}\"]'); return e ? e.textContent : null;"
    );
    b.until(&format!("figure {name}"), &script).await
}

#[tokio::test]
async fn the_domain_page_shows_the_apis_dmarc_figures() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let app = TestApp::builder()
        .options(Options {
            dmarc_address: Some(ADDRESS.into()),
            ..Default::default()
        })
        .spawn()
        .await;
    let brand = app.tenant("brand").await;
    let (_, key) = app.api_key(&brand, "k").await;
    let id = domain(&app, &key, "brand.test").await;
    let ip = app
        .post(
            "/api/v1/ips",
            &app.admin,
            json!({"ip": "192.0.2.10", "tenant_id": brand}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let (port, _stop) = bounce_listener(&app, &[]).await;
    let xml = report(
        "receiver.test",
        "ui-1",
        "brand.test",
        &[
            ("192.0.2.10", 1200, "pass", "pass"),
            ("192.0.2.10", 7, "fail", "fail"),
            ("198.51.100.7", 31, "fail", "fail"),
        ],
    );
    let m = mail(
        "r@receiver.test",
        "Report",
        "r.xml.gz",
        "application/gzip",
        &gzip(xml.as_bytes()),
    );
    assert!(send(port, &m).await.starts_with("250"));
    let api = app.get(&format!("/api/v1/domains/{id}/dmarc"), &key).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    assert_eq!(api.body["messages"], 1238);

    b.log_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto(&format!("{}/admin/#/domains/{id}", app.base)).await;
    b.wait("#dmarc-summary").await;
    b.settled().await;
    b.shot("domain-dmarc").await;
    for name in ["reports", "messages", "source_count"] {
        let shown = figure(&b, name).await;
        assert_eq!(
            digits(shown.as_str().unwrap()),
            api.body[name].to_string(),
            "{name}"
        );
    }
    for name in ["dmarc_pass_rate", "dkim_pass_rate", "spf_pass_rate"] {
        let shown = figure(&b, name).await;
        let rate = api.body[name].as_f64().unwrap();
        // Shown as a percentage with at most two decimals (97.17 %).
        let want = format!("{:.2}", rate * 100.0);
        let want = want.trim_end_matches('0').trim_end_matches('.');
        assert_eq!(
            digits(shown.as_str().unwrap()),
            digits(want),
            "{name}: {shown}"
        );
    }
    let own = b.wait_text("#dmarc-own-failing", "192.0.2.10").await;
    assert!(!own.contains("198.51.100.7"), "{own}");
    let unknown = b.wait_text("#dmarc-unknown", "198.51.100.7").await;
    assert!(unknown.contains("31"), "{unknown}");
    assert!(!unknown.contains("192.0.2.10"), "{unknown}");
    b.close().await;
    app.finish().await;
}
