//! The monitoring bundle (`monitoring/`): the alert rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), the dashboards are Grafana JSON, and every
//! metric a rule or a dashboard queries is one a running server's /metrics exposes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use common::sending::brand;
use common::{BROWSER, TestApp};
use ee_core::tracking::{Kind, sign};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn bundle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../monitoring")
}

/// promtool, or `None` when it is not installed and the run does not require it
/// (`EE_REQUIRE_PROMTOOL=1`, as CI sets, makes its absence a failure).
fn promtool() -> Option<&'static str> {
    if std::path::Path::new("/usr/bin/promtool").exists() {
        return Some("/usr/bin/promtool");
    }
    assert!(
        !std::env::var("EE_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1"),
        "EE_REQUIRE_PROMTOOL=1 but promtool is missing (apt-get install prometheus)"
    );
    eprintln!("promtool checks skipped: install Debian's prometheus package to run them");
    None
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = promtool() else {
        return;
    };
    let rules = bundle().join("rules");
    for args in [
        vec!["check", "rules", "email-engine.rules.yml"],
        vec!["test", "rules", "email-engine.tests.yml"],
    ] {
        let out = std::process::Command::new(promtool)
            .args(&args)
            .current_dir(&rules)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let config = std::process::Command::new(promtool)
        .args(["check", "config", "--syntax-only", "prometheus.yml"])
        .current_dir(bundle())
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "{}{}",
        String::from_utf8_lossy(&config.stdout),
        String::from_utf8_lossy(&config.stderr)
    );
}

/// amtool, or `None` when it is not installed and the run does not require it
/// (`EE_REQUIRE_AMTOOL=1`, as CI sets).
fn amtool() -> Option<&'static str> {
    if std::path::Path::new("/usr/bin/amtool").exists() {
        return Some("/usr/bin/amtool");
    }
    assert!(
        !std::env::var("EE_REQUIRE_AMTOOL").is_ok_and(|v| v == "1"),
        "EE_REQUIRE_AMTOOL=1 but amtool is missing (apt-get install prometheus-alertmanager)"
    );
    eprintln!("amtool checks skipped: install Debian's prometheus-alertmanager to run them");
    None
}

/// The rules file's alerts: (name, severity), in order.
fn alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(bundle().join("rules/email-engine.rules.yml")).unwrap();
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            found.push((name.to_owned(), String::new()));
        } else if let Some(severity) = line.strip_prefix("severity: ") {
            found.last_mut().unwrap().1 = severity.to_owned();
        }
    }
    found
}

#[test]
fn alertmanager_routes_every_alert_by_its_severity() {
    let alerts = alerts();
    assert_eq!(alerts.len(), 12, "{alerts:?}");
    let Some(amtool) = amtool() else {
        return;
    };
    let config = bundle().join("alertmanager.yml");
    let out = std::process::Command::new(amtool)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_severity = BTreeSet::new();
    for (name, severity) in &alerts {
        let expected = match severity.as_str() {
            "critical" => "telegram-oncall,operators-mail",
            "warning" => "operators-mail",
            other => panic!("{name}: severity {other:?} has no route"),
        };
        by_severity.insert(severity.clone());
        let out = std::process::Command::new(amtool)
            .arg("config")
            .arg("routes")
            .arg("test")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--verify.receivers={expected}"))
            .arg(format!("alertname={name}"))
            .arg(format!("severity={severity}"))
            .arg("tenant=brand")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} ({severity}) should reach {expected}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        by_severity.into_iter().collect::<Vec<_>>(),
        ["critical", "warning"]
    );
}

/// The metric names in a PromQL expression (ours and the HTTP ones; not `up`, which
/// Prometheus makes).
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (expr[i..].starts_with("ee_") || expr[i..].starts_with("http_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            into.insert(expr[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
}

fn queried_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let rules = std::fs::read_to_string(bundle().join("rules/email-engine.rules.yml")).unwrap();
    for line in rules.lines() {
        let line = line.trim();
        // `expr:` lines and the lines of a multi-line expression.
        if !line.starts_with("summary:") && !line.starts_with("description:") {
            metric_names(line, &mut names);
        }
    }
    let mut dashboards = 0;
    for entry in std::fs::read_dir(bundle().join("grafana")).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                metric_names(target["expr"].as_str().unwrap(), &mut names);
            }
        }
        dashboards += 1;
    }
    assert!(dashboards >= 4, "the seeds' four dashboards");
    names
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboards_query_is_exposed() {
    let queried = queried_metrics();
    assert!(queried.len() > 15, "{queried:?}");

    // A server that has done a bit of everything: PowerMTA polled, an IP and a domain,
    // mail sent, bounced, complained about, opened, clicked and unsubscribed from, and
    // the scheduled jobs run.
    let (pmta_url, monitor) = ee_connectors::testing::start_pmta_monitor().await;
    {
        let mut m = monitor.lock().unwrap();
        m.pages.insert(
            "/status".into(),
            "<rsp><data><status><version>5.0r3</version><traffic><lastHr><out><rcp>12</rcp></out></lastHr>\
             <lastMin><out><rcp>2</rcp></out></lastMin></traffic><conn><smtpIn><cur>1</cur></smtpIn>\
             <smtpOut><cur>2</cur></smtpOut></conn><queue><smtp><rcp>3</rcp><dom>1</dom><kb>9</kb></smtp>\
             </queue></status></data></rsp>"
                .into(),
        );
        m.pages.insert(
            "/queues".into(),
            "<rsp><data><queue><name>example.test/vmta-1</name><rcp>3</rcp><kb>9</kb><conn>1</conn>\
             <paused>false</paused><mode>normal</mode></queue></data></rsp>"
                .into(),
        );
        m.pages.insert(
            "/vmtas".into(),
            "<rsp><data><vmta><name>vmta-1</name><rcp>3</rcp><dom>1</dom><conn>1</conn></vmta></data></rsp>"
                .into(),
        );
        m.pages.insert(
            "/domains".into(),
            "<rsp><data><domain><name>example.test</name><rcp>3</rcp><conn>1</conn></domain></data></rsp>"
                .into(),
        );
    }
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::builder()
        .options(common::Options {
            pmta: ee_app::delivery::powermta::PmtaSettings {
                status_url: Some(pmta_url),
                ..Default::default()
            },
            ..Default::default()
        })
        .spawn()
        .await;
    let (key, _) = brand(&app, &smtp).await;
    let ip = app
        .post(
            "/api/v1/ips",
            &app.admin,
            json!({"ip": "192.0.2.50", "tenant_id": "brand", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let mut ids = Vec::new();
    for who in ["a", "b", "c", "d"] {
        let sent = app
            .post("/api/v2/messages", &key,
                json!({"to": format!("{who}@example.test"), "subject": "Hi", "from_email": "hello@brand.test",
                       "html": "<p><a href=\"https://brand.test/a\">a</a></p>"}))
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
        ids.push(sent.body["id"].as_str().unwrap().to_owned());
    }
    app.deliver().await;
    for (email, kind) in [("a@example.test", "hard"), ("b@example.test", "complaint")] {
        let r = app
            .post(
                "/api/v1/webhooks/pmta-bounce",
                &key,
                json!({"email": email, "type": kind}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // PowerMTA's accounting says the third was delivered.
    let t = ee_core::timefmt::to_rfc3339(app.clock.now_ms());
    let csv = format!(
        "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag\nd,{t},hello@brand.test,c@example.test,relayed,2.0.0 (success),smtp;250 ok\n"
    );
    let accounted = app
        .client
        .post(format!(
            "{}/api/v1/feedback/pmta-accounting?name=acct.csv",
            app.base
        ))
        .header("x-api-key", &key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(accounted.status(), StatusCode::OK);
    app.clock.advance_ms(120_000);
    let tracking = app.services.delivery.tracking_key.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (kind, agent) in [
        (Kind::Open, BROWSER),
        (Kind::Open, "Barracuda Sentinel"),
        (Kind::Click, BROWSER),
        (Kind::Click, "Mimecast Link Checker/1.0"),
    ] {
        let path = if kind == Kind::Open { "t/o" } else { "t/c" };
        let url = format!("{}/{path}/{}", app.base, sign(&tracking, kind, &ids[2], 0));
        let hit = client
            .get(url)
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert!(
            hit.status().is_success() || hit.status().is_redirection(),
            "{}",
            hit.status()
        );
    }
    let unsubscribe = format!(
        "{}/u/{}",
        app.base,
        sign(&tracking, Kind::Unsubscribe, &ids[3], 0)
    );
    let done = client
        .post(unsubscribe)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert!(done.status().is_success(), "{}", done.status());
    for job in [
        "scheduled.metrics",
        "scheduled.health",
        "scheduled.pmta_status",
    ] {
        let run = app
            .call(
                Method::POST,
                &format!("/api/v1/jobs/{job}/run"),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(run.status, StatusCode::ACCEPTED, "{job}: {}", run.body);
    }
    app.run_jobs().await;
    let _ = app.get("/api/v1/jobs/queue", &app.admin).await;
    let text = app.metrics().await;
    let exposed: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = queried.iter().filter(|m| !exposed.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exposed: {missing:?}\n{text}"
    );
    app.finish().await;
}
