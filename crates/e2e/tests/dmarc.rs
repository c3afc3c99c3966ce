//! DMARC aggregate reports mailed over SMTP to the bounce listener: gzip and zip reports
//! attributed to the tenant holding their domain and shown in its figures (pass rates,
//! sources, its own IP failing → an alert, senders not ours); a report for a domain we do
//! not hold given to nobody; a zip bomb and an oversized report refused with why; the
//! domain's routes answer 404 to another tenant.
#![allow(clippy::unwrap_used)]

mod common;

use common::dmarc::{ADDRESS, domain, report, send, subject};
use common::sending::bounce_listener;
use common::{Options, TestApp};
use ee_mail::dmarc_testing::{gzip, mail, zip};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn source<'a>(list: &'a Value, ip: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == ip)
        .unwrap_or_else(|| panic!("{ip} not in {list}"))
}

#[tokio::test]
async fn reports_by_mail_are_attributed_counted_and_refused_with_reason() {
    let app = TestApp::builder()
        .options(Options {
            dmarc_address: Some(ADDRESS.into()),
            ..Default::default()
        })
        .spawn()
        .await;
    let brand = app.tenant("brand").await;
    let (_, brand_key) = app.api_key(&brand, "k").await;
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let brand_domain = domain(&app, &brand_key, "brand.test").await;
    let other_domain = domain(&app, &other_key, "other.test").await;
    for (ip, tenant) in [("192.0.2.10", &brand), ("192.0.2.20", &other)] {
        let r = app
            .post(
                "/api/v1/ips",
                &app.admin,
                json!({"ip": ip, "tenant_id": tenant}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    // The published record asks for reports at our address, and the address's zone is
    // told to accept them.
    let records = app
        .get(
            &format!("/api/v1/domains/{brand_domain}/dns-records"),
            &brand_key,
        )
        .await;
    let items = records.body["items"].as_array().unwrap();
    let dmarc = items
        .iter()
        .find(|r| r["name"] == "_dmarc.brand.test")
        .unwrap();
    assert_eq!(
        dmarc["value"],
        "v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc@reports.ee.test"
    );
    assert!(
        items
            .iter()
            .any(|r| r["name"] == "brand.test._report._dmarc.reports.ee.test"
                && r["value"] == "v=DMARC1"),
        "{}",
        records.body
    );

    let (port, _stop) = bounce_listener(&app, &[]).await;

    // A gzip report: our IP mostly passing but 2 messages failing both; two senders not
    // ours, one of them DKIM-aligned.
    let xml = report(
        "receiver-one.test",
        "r1",
        "brand.test",
        &[
            ("192.0.2.10", 40, "pass", "pass"),
            ("192.0.2.10", 2, "fail", "fail"),
            ("198.51.100.7", 5, "fail", "fail"),
            ("203.0.113.9", 3, "pass", "fail"),
        ],
    );
    let gz = mail(
        "noreply@receiver-one.test",
        &subject("receiver-one.test", "brand.test", "r1"),
        "receiver-one.test!brand.test!1796428800!1796515199.xml.gz",
        "application/gzip",
        &gzip(xml.as_bytes()),
    );
    assert!(send(port, &gz).await.starts_with("250"));
    // The same report again (a retried mail) is stored once.
    assert!(send(port, &gz).await.starts_with("250"));
    // A zip report from another receiver, all passing.
    let xml = report(
        "receiver-two.test",
        "r2",
        "brand.test",
        &[("192.0.2.10", 10, "pass", "pass")],
    );
    let zipped = mail(
        "dmarc@receiver-two.test",
        &subject("receiver-two.test", "brand.test", "r2"),
        "receiver-two.test!brand.test!1796428800!1796515199.zip",
        "application/zip",
        &zip("receiver-two.test!brand.test.xml", xml.as_bytes()),
    );
    assert!(send(port, &zipped).await.starts_with("250"));
    // A report on the other tenant's domain goes to it, not to brand.
    let xml = report(
        "receiver-one.test",
        "r3",
        "other.test",
        &[("192.0.2.20", 7, "pass", "pass")],
    );
    let m = mail(
        "x@receiver-one.test",
        "Report",
        "r3.xml",
        "text/xml",
        xml.as_bytes(),
    );
    assert!(send(port, &m).await.starts_with("250"));
    // A report on a domain no tenant holds, which names brand's IP and brand itself in
    // its text: given to nobody.
    let xml = report(
        "brand",
        "r4",
        "stranger.test",
        &[("192.0.2.10", 9, "fail", "fail")],
    );
    let m = mail(
        "x@brand.test",
        "Report brand",
        "r4.xml.gz",
        "application/gzip",
        &gzip(xml.as_bytes()),
    );
    assert!(send(port, &m).await.starts_with("250"));

    // Brand's figures: 60 messages, 53 DKIM-aligned, 50 SPF-aligned, 53 passing.
    let summary = app
        .get(&format!("/api/v1/domains/{brand_domain}/dmarc"), &brand_key)
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    let s = &summary.body;
    assert_eq!(s["domain"], "brand.test");
    assert_eq!(s["reports"], 2, "{s}");
    assert_eq!(s["messages"], 60, "{s}");
    assert_eq!(s["dkim_aligned"], 53);
    assert_eq!(s["spf_aligned"], 50);
    assert_eq!(s["passed"], 53);
    assert_eq!(s["dkim_pass_rate"], 0.8833);
    assert_eq!(s["spf_pass_rate"], 0.8333);
    assert_eq!(s["dmarc_pass_rate"], 0.8833);
    assert_eq!(s["source_count"], 3);
    let own = source(&s["sources"], "192.0.2.10");
    assert_eq!(own["own"], true);
    assert_eq!(own["messages"], 52);
    assert_eq!(own["passed"], 50);
    assert_eq!(s["own_failing"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["own_failing"][0]["ip"], "192.0.2.10");
    let unknown: Vec<&str> = s["unknown_senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["ip"].as_str().unwrap())
        .collect();
    assert_eq!(unknown, ["198.51.100.7", "203.0.113.9"]);
    assert_eq!(
        source(&s["unknown_senders"], "203.0.113.9")["dkim_aligned"],
        3
    );
    // The other tenant's domain has its own report only.
    let theirs = app
        .get(&format!("/api/v1/domains/{other_domain}/dmarc"), &other_key)
        .await;
    assert_eq!(theirs.body["messages"], 7, "{}", theirs.body);
    assert_eq!(theirs.body["own_failing"], json!([]));

    // Brand's own IP failing raised its alert (once: the duplicate raised nothing).
    let alerts = app.get("/api/v1/alerts", &brand_key).await;
    let dmarc_alerts: Vec<&Value> = alerts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["cause"].as_str().unwrap().starts_with("dmarc."))
        .collect();
    assert_eq!(dmarc_alerts.len(), 1, "{}", alerts.body);
    assert_eq!(
        dmarc_alerts[0]["cause"],
        "dmarc.own_ip_failing:brand.test:192.0.2.10"
    );
    assert_eq!(dmarc_alerts[0]["severity"], "critical", "p=quarantine");
    assert_eq!(dmarc_alerts[0]["occurrences"], 1);
    let theirs = app.get("/api/v1/alerts", &other_key).await;
    assert!(
        !theirs.body.to_string().contains("dmarc."),
        "{}",
        theirs.body
    );

    // The domain's reports, the latest first.
    let listed = app
        .get(
            &format!("/api/v1/domains/{brand_domain}/dmarc/reports"),
            &brand_key,
        )
        .await;
    let items = listed.body["items"].as_array().unwrap();
    let orgs: Vec<&str> = items
        .iter()
        .map(|r| r["org_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        orgs,
        ["receiver-two.test", "receiver-one.test"],
        "{}",
        listed.body
    );
    assert_eq!(items[1]["state"], "attributed");
    assert_eq!(items[1]["messages"], 50);
    assert_eq!(items[1]["policy"], "p=quarantine; adkim=r; aspf=r; pct=100");
    assert_eq!(items[1]["begin"], "2026-12-05T00:00:00Z");

    // A zip bomb and a report over the record bound are refused to their sender, with why.
    let bomb = zip("r.xml", &vec![b' '; 30 * 1024 * 1024]);
    let m = mail("x@bomb.test", "Report", "r.zip", "application/zip", &bomb);
    let reply = send(port, &m).await;
    assert!(reply.starts_with("554"), "{reply}");
    assert!(reply.contains("decompresses to more than"), "{reply}");
    let many: Vec<(&str, u64, &str, &str)> = vec![("192.0.2.10", 1, "pass", "pass"); 10_001];
    let xml = report("big.test", "r5", "brand.test", &many);
    let m = mail(
        "x@big.test",
        "Report",
        "r5.xml.gz",
        "application/gzip",
        &gzip(xml.as_bytes()),
    );
    let reply = send(port, &m).await;
    assert!(reply.starts_with("554"), "{reply}");
    assert!(reply.contains("more than 10000 records"), "{reply}");
    // Mail that holds no report is taken and kept with why.
    let m = "From: someone@example.test\nSubject: hello\n\nNo report here.\n";
    assert!(send(port, m).await.starts_with("250"));

    // An administrator sees what went to nobody, and why; a tenant never does.
    let nobody = app
        .get("/api/v1/dmarc-reports?state=unattributed", &app.admin)
        .await;
    let items = nobody.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", nobody.body);
    assert_eq!(items[0]["domain"], "stranger.test");
    assert_eq!(items[0]["tenant_id"], Value::Null);
    assert!(
        items[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not one of ours")
    );
    let refused = app
        .get("/api/v1/dmarc-reports?state=refused", &app.admin)
        .await;
    let reasons: Vec<&str> = refused.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{}", refused.body);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("decompresses to more than"))
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("more than 10000 records"))
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no DMARC report attached"))
    );
    let mine = app.get("/api/v1/dmarc-reports", &brand_key).await;
    let items = mine.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", mine.body);
    assert!(items.iter().all(|r| r["tenant_id"] == brand.as_str()));
    let bad = app
        .get("/api/v1/dmarc-reports?state=maybe", &brand_key)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Brand's figures did not move.
    let again = app
        .get(&format!("/api/v1/domains/{brand_domain}/dmarc"), &brand_key)
        .await;
    assert_eq!(again.body["messages"], 60);

    // Another tenant's domain is not found.
    for path in ["dmarc", "dmarc/reports"] {
        let r = app
            .get(
                &format!("/api/v1/domains/{brand_domain}/{path}"),
                &other_key,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let bad = app
        .get(
            &format!("/api/v1/domains/{brand_domain}/dmarc?days=0"),
            &brand_key,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}
