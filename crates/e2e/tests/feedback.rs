//! The feedback loop end to end: a relayed campaign's bounces and complaint come back in
//! PowerMTA's accounting file (matched by their per-message return paths), suppress the
//! addresses, move the campaign's counters and pause it; the seed's webhooks with their
//! own bodies, signed by data sources or sent with an API key; DSN and ARF messages; the
//! transport's own refusals; soft bounces counted to the tenant's limit; what matches no
//! tenant kept for an admin; another tenant's message never touched.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::sending::{action, brand, contacts};
use common::{TestApp, error_code};
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post_raw(
    app: &TestApp,
    path: &str,
    credential: Option<&str>,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.base))
        .body(body.to_owned());
    if let Some(key) = credential {
        request = request.header("X-API-KEY", key);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn delivery(app: &TestApp, key: &str, settings: Value) {
    let put = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(key),
            Some(settings),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
}

#[tokio::test]
async fn a_relayed_campaigns_accounting_records_suppress_count_and_pause_it() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "pmta", "bounce_domain": "bounces.brand.test",
               "campaign_auto_pause": {"bounce_rate": 0.05, "complaint_rate": 0.001, "min_sample": 20}}),
    )
    .await;
    let people: Vec<_> = (0..40)
        .map(|i| (format!("p{i:02}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "spring", "template_id": template, "audience": {"all": true}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    assert_eq!(app.dispatch().await.queued, 40);
    app.deliver().await;
    let received = smtp.received();
    assert_eq!(received.len(), 40);
    // Each message went out with its own return path on the bounce domain.
    let return_path = |to: &str| {
        received
            .iter()
            .find(|r| r.rcpt_to == to)
            .map(|r| r.mail_from.clone())
            .unwrap()
    };
    let rp = return_path("p01@example.test");
    assert!(
        rp.starts_with("b-") && rp.ends_with("@bounces.brand.test"),
        "{rp}"
    );
    assert_ne!(rp, return_path("p02@example.test"));

    // PowerMTA's accounting file: three unknown users, one delivery, one complaint (its
    // feedback loop), a reception (skipped) and a line that cannot be read.
    let t = ee_core::timefmt::to_rfc3339(app.clock.now_ms());
    let mut csv = String::from(
        "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,jobId\n",
    );
    for i in 1..=3 {
        let to = format!("p{i:02}@example.test");
        csv.push_str(&format!(
            "b,{t},{},{to},failed,5.1.1 (bad destination mailbox address),\"smtp;550 5.1.1 <{to}>: user unknown\",dns;mx.example.test,bad-mailbox,,{id}\n",
            return_path(&to)
        ));
    }
    csv.push_str(&format!(
        "d,{t},{},p05@example.test,relayed,2.0.0 (success),smtp;250 ok,dns;mx.example.test,,,{id}\n",
        return_path("p05@example.test")
    ));
    csv.push_str(&format!(
        "f,{t},{},p06@example.test,,,,,,,{id}\n",
        return_path("p06@example.test")
    ));
    csv.push_str(&format!("r,{t},x@example.test,y@example.test,,,,,,,\n"));
    csv.push_str("b,not a time,x@example.test,y@example.test,failed,5.0.0,,,,,\n");
    let path = "/api/v1/feedback/pmta-accounting?name=acct-2026-12-01.csv";
    let (status, report) = post_raw(&app, path, Some(&key), &[], &csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["read"], 7, "{report}");
    assert_eq!(report["applied"], 5);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["suppressed"], 4);
    assert_eq!(report["errors"][0]["at"], 8, "{report}");
    assert!(
        report["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message_id"].is_string())
    );
    // The same file posted again changes nothing.
    let (_, again) = post_raw(&app, path, Some(&key), &[], &csv).await;
    assert_eq!(
        (again["applied"].clone(), again["duplicates"].clone()),
        (json!(0), json!(5)),
        "{again}"
    );

    // The counters moved from sent to bounced; the next pass pauses the campaign.
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    let totals = &stats.body["totals"];
    assert_eq!(totals["sent"], 37, "{}", stats.body);
    assert_eq!(totals["bounced"], 3);
    assert_eq!(totals["bounced_hard"], 3);
    assert_eq!(totals["delivered"], 1);
    assert_eq!(totals["complained"], 1);
    app.dispatch().await;
    let paused = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(paused.body["status"], "auto_paused", "{}", paused.body);
    assert!(
        paused.body["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("bounce rate 7.5 %"),
        "{}",
        paused.body
    );

    // The addresses are suppressed, the contacts marked, the messages bounced.
    let suppressed = app.get("/api/v2/suppressions", &key).await;
    let listed: Vec<&str> = suppressed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    for email in [
        "p01@example.test",
        "p02@example.test",
        "p03@example.test",
        "p06@example.test",
    ] {
        assert!(listed.contains(&email), "{email}: {}", suppressed.body);
    }
    let events = app.get("/api/v1/feedback/events?class=hard", &key).await;
    let items = events.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", events.body);
    assert_eq!(items[0]["category"], "bad-mailbox");
    assert_eq!(items[0]["campaign_id"], id.as_str());
    let message = items[0]["message_id"].as_str().unwrap();
    let m = app.get(&format!("/api/v2/messages/{message}"), &key).await;
    assert_eq!(m.body["state"], "bounced", "{}", m.body);
    let complaint = app
        .get(
            "/api/v1/feedback/events?class=complaint&source=pmta_accounting",
            &key,
        )
        .await;
    assert_eq!(complaint.body["items"][0]["recipient"], "p06@example.test");
    // The sending domain's rates raised an alert too.
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert!(
        alerts.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |a| a["title"] == "Sending domain over its bounce or complaint threshold"
                    && a["message"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("Mail from brand.test")
            ),
        "{}",
        alerts.body
    );

    // The delivery report and the metrics read the same counters.
    let report = app.get("/api/v1/reports", &key).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let totals = &report.body["totals"];
    assert_eq!(totals["sent"], 40, "{}", report.body);
    assert_eq!(totals["delivered"], 1);
    assert_eq!(totals["bounced"]["hard"], 3);
    assert_eq!(totals["bounced"]["by_category"]["bad-mailbox"], 3);
    assert_eq!(totals["complaints"], 1);
    assert_eq!(totals["rates"]["bounce"].as_f64().unwrap(), 3.0 / 40.0);
    let by_campaign = app.get("/api/v1/reports?by=campaign", &key).await;
    let row = &by_campaign.body["rows"][0];
    assert_eq!(
        (row["key"].as_str(), row["label"].as_str()),
        (Some(id.as_str()), Some("spring")),
        "{}",
        by_campaign.body
    );
    let by_provider = app.get("/api/v1/reports?by=provider", &key).await;
    assert_eq!(
        by_provider.body["rows"][0]["key"], "other",
        "{}",
        by_provider.body
    );
    let wrong = app.get("/api/v1/reports?by=color", &key).await;
    assert_eq!(wrong.body["error"]["field"], "by", "{}", wrong.body);
    let wrong = app
        .get("/api/v1/reports?from=2026-12-10&to=2026-12-01", &key)
        .await;
    assert_eq!(wrong.body["error"]["field"], "to", "{}", wrong.body);
    let metrics = app.metrics().await;
    let tenant = report.body["tenant_id"].as_str().unwrap();
    for line in [
        format!("ee_sent_total{{tenant=\"{tenant}\"}} 40"),
        format!("ee_bounced_total{{tenant=\"{tenant}\",class=\"hard\"}} 3"),
        format!("ee_complained_total{{tenant=\"{tenant}\"}} 1"),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    // The bulk-sender rules: 1 complaint in 40 is far over 0.3 %.
    let view = app.get("/api/v1/tenants/brand/compliance", &key).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    let rule = |name: &str| {
        view.body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(rule("complaint_rate")["status"], "fail", "{}", view.body);
    assert!(
        rule("complaint_rate")["evidence"][0]
            .as_str()
            .unwrap()
            .starts_with("1 complaints for 40 messages")
    );
    assert_eq!(rule("unsubscribe_link")["status"], "pass");
    assert_eq!(
        rule("spf")["status"],
        "unknown",
        "never checked is not a pass"
    );
    assert_eq!(rule("spf")["green"], false);
    assert_eq!(
        rule("one_click_unsubscribe")["status"],
        "fail",
        "the tests' public URL is http"
    );
    assert_eq!(view.body["compliant"], false);
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let hidden = app
        .get("/api/v1/tenants/brand/compliance", &other_key)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let bad = app.get("/api/v1/feedback/events?class=weird", &key).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["field"], "class");
    app.finish().await;
}

#[tokio::test]
async fn the_seeds_webhooks_reports_and_the_transports_refusals() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    let people: Vec<_> = [
        "hard", "soft", "signed", "mw", "full", "dsn", "arf", "refused",
    ]
    .iter()
    .map(|n| (format!("{n}@example.test"), "en", vec![]))
    .collect();
    contacts(&app, &key, &people).await;
    let status_of = |email: &'static str| {
        let pool = app.db.pool().clone();
        async move {
            let status: String = sqlx::query_scalar("SELECT status FROM contacts WHERE email = $1")
                .bind(email)
                .fetch_one(&pool)
                .await
                .unwrap();
            status
        }
    };

    // The seed's body as written, with an API key.
    let r = app
        .post(
            "/api/v1/webhooks/pmta-bounce",
            &key,
            json!({"email": "hard@example.test", "type": "hard"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["class"].clone(), r.body["suppressed"].clone()),
        (json!("hard"), json!(true))
    );
    assert_eq!(status_of("hard@example.test").await, "bounced");

    // Soft bounces suppress at the tenant's limit (3 in 7 days by default).
    for n in 1..=3 {
        let r = app
            .post("/api/v1/webhooks/pmta-bounce", &key,
                json!({"email": "soft@example.test", "type": "soft", "code": 452, "diagnostic": "4.2.2 Mailbox full"}))
            .await;
        assert_eq!(r.body["class"], "soft", "{}", r.body);
        assert_eq!(r.body["category"], "quota-issues");
        assert_eq!(r.body["suppressed"], n == 3, "bounce {n}: {}", r.body);
    }
    assert_eq!(status_of("soft@example.test").await, "bounced");

    // Bad input is named; no credential is refused.
    for (body, field) in [
        (json!({"type": "hard"}), "email"),
        (json!({"email": "x@example.test"}), "type"),
        (json!({"email": "x@example.test", "type": "weird"}), "type"),
        (json!({"email": "not an address", "type": "hard"}), "email"),
        (
            json!({"email": "x@example.test", "type": "hard", "code": 99}),
            "code",
        ),
    ] {
        let r = app.post("/api/v1/webhooks/pmta-bounce", &key, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{}", r.body);
    }
    let (status, _) = post_raw(
        &app,
        "/api/v1/webhooks/pmta-bounce",
        None,
        &[],
        r#"{"email": "x@example.test", "type": "hard"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A PowerMTA data source signs with its secret (timestamped).
    let source = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "pmta-1", "name": "PowerMTA", "type": "powermta"}),
        )
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    let secret = source.body["secret"].as_str().unwrap().to_owned();
    let body = r#"{"email": "signed@example.test", "type": "hard", "code": 550, "diagnostic": "5.1.1 no such user"}"#;
    let ts = app.clock.now_ms() / 1000;
    let sig = ee_core::signing::sign(secret.as_bytes(), ts, body.as_bytes());
    let headers = [
        ("x-ee-source", "pmta-1".to_owned()),
        ("x-ee-timestamp", ts.to_string()),
        ("x-ee-signature", sig.clone()),
    ];
    let (status, applied) =
        post_raw(&app, "/api/v1/webhooks/pmta-bounce", None, &headers, body).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(status_of("signed@example.test").await, "bounced");
    let forged = [
        ("x-ee-source", "pmta-1".to_owned()),
        ("x-ee-timestamp", ts.to_string()),
        (
            "x-ee-signature",
            ee_core::signing::sign(b"wrong", ts, body.as_bytes()),
        ),
    ];
    let (status, _) = post_raw(&app, "/api/v1/webhooks/pmta-bounce", None, &forged, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A source not set to the body-only scheme needs the timestamp.
    let body_only = [
        ("x-ee-source", "pmta-1".to_owned()),
        (
            "signature",
            ee_core::signing::sign_body(secret.as_bytes(), body.as_bytes()),
        ),
    ];
    let (status, _) = post_raw(&app, "/api/v1/webhooks/pmta-bounce", None, &body_only, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A MailWizz source set to sign the body alone, with MailWizz's nested shape.
    let mw = app
        .post("/api/v1/data-sources", &key,
            json!({"slug": "mailwizz-main", "name": "MailWizz", "type": "mailwizz", "config": {"signature": "body"}}))
        .await;
    assert_eq!(mw.status, StatusCode::CREATED, "{}", mw.body);
    let mw_secret = mw.body["secret"].as_str().unwrap().to_owned();
    let body = r#"{"source": "mailwizz-main", "data": {"subscriber": {"email": "mw@example.test"}, "bounce_type": "hard", "message": "550 5.1.1 unknown user", "date_added": "2026-12-01 10:00:00"}}"#;
    let headers = [(
        "signature",
        ee_core::signing::sign_body(mw_secret.as_bytes(), body.as_bytes()),
    )];
    let (status, applied) = post_raw(
        &app,
        "/api/v1/webhooks/mailwizz-bounce",
        None,
        &headers,
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["class"], "hard");
    assert_eq!(status_of("mw@example.test").await, "bounced");
    let bad = app
        .post("/api/v1/data-sources", &key, json!({"slug": "mw-bad", "name": "X", "type": "mailwizz", "config": {"signature": "none"}}))
        .await;
    assert_eq!(
        bad.body["error"]["field"], "config.signature",
        "{}",
        bad.body
    );

    // A message refused by the relay with a full mailbox: soft, classified as the rules say.
    smtp.script(
        "full@example.test",
        vec![Behaviour::RefuseRcpt(552, "5.2.2 Mailbox full".into())],
    );
    smtp.script(
        "refused@example.test",
        vec![Behaviour::RefuseRcpt(550, "5.1.1 User unknown".into())],
    );
    for to in [
        "full@example.test",
        "refused@example.test",
        "dsn@example.test",
        "arf@example.test",
    ] {
        let sent = app
            .post("/api/v2/messages", &key,
                json!({"to": to, "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}))
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    }
    app.deliver().await;
    let smtp_events = app.get("/api/v1/feedback/events?source=smtp", &key).await;
    let by: std::collections::BTreeMap<String, String> = smtp_events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["recipient"].as_str().unwrap().to_owned(),
                e["class"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        by.get("full@example.test").map(String::as_str),
        Some("soft"),
        "{}",
        smtp_events.body
    );
    assert_eq!(
        by.get("refused@example.test").map(String::as_str),
        Some("hard")
    );
    assert_eq!(status_of("refused@example.test").await, "bounced");
    assert_eq!(status_of("full@example.test").await, "active");

    // A DSN for a delivered message, naming it by our Message-ID.
    let accepted = smtp.received();
    let original = accepted
        .iter()
        .find(|r| r.rcpt_to == "dsn@example.test")
        .unwrap();
    let text = String::from_utf8_lossy(&original.data).to_string();
    let message_id = common::sending::header(&text, "Message-ID")
        .unwrap()
        .to_owned();
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.test\r\nTo: hello@brand.test\r\nSubject: failure\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; dsn@example.test\r\n\
Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Message-ID: {message_id}\r\nTo: dsn@example.test\r\n\r\n--B--\r\n"
    );
    let (status, report) = post_raw(&app, "/api/v1/feedback/reports", Some(&key), &[], &dsn).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["suppressed"], 1, "{report}");
    let message = report["events"][0]["message_id"].as_str().unwrap();
    let m = app.get(&format!("/api/v2/messages/{message}"), &key).await;
    assert_eq!(m.body["state"], "bounced", "{}", m.body);
    let (status, not_a_report) = post_raw(
        &app,
        "/api/v1/feedback/reports",
        Some(&key),
        &[],
        "From: a@b.test\r\n\r\nhello\r\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{not_a_report}");

    // An ARF complaint.
    let arf = "From: fbl@isp.test\r\nTo: fbl@brand.test\r\nSubject: report\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n--F\r\nContent-Type: text/plain\r\n\r\nabuse\r\n\
--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\nOriginal-Rcpt-To: arf@example.test\r\n\r\n--F--\r\n";
    let (_, report) = post_raw(&app, "/api/v1/feedback/reports", Some(&key), &[], arf).await;
    assert_eq!(report["events"][0]["class"], "complaint", "{report}");
    assert_eq!(status_of("arf@example.test").await, "complained");

    // Another tenant's key naming this tenant's message touches nothing of it.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let r = app
        .post(
            "/api/v1/webhooks/pmta-bounce",
            &other_key,
            json!({"email": "dsn@example.test", "type": "complaint", "message_id": message}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["message_id"], Value::Null, "{}", r.body);
    assert_eq!(r.body["tenant_id"], other.as_str());
    assert_eq!(status_of("dsn@example.test").await, "bounced");
    let mine = app
        .get("/api/v1/feedback/events?class=complaint", &key)
        .await;
    assert!(
        mine.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["recipient"] != "dsn@example.test")
    );

    // What matches no tenant is kept for an admin.
    let stray = dsn
        .replace("dsn@example.test", "nobody@elsewhere.test")
        .replace(&message_id, "<x@y.test>");
    let (_, report) = post_raw(
        &app,
        "/api/v1/feedback/reports?name=stray-1",
        Some(&app.admin),
        &[],
        &stray,
    )
    .await;
    assert_eq!(report["unmatched"], 1, "{report}");
    let unmatched = app
        .get("/api/v1/feedback/events?unmatched=true", &app.admin)
        .await;
    assert_eq!(
        unmatched.body["items"][0]["recipient"], "nobody@elsewhere.test",
        "{}",
        unmatched.body
    );
    let refused = app
        .get("/api/v1/feedback/events?unmatched=true", &key)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&refused), "forbidden");
    app.finish().await;
}

/// What the fake Scraper-Pro received: (headers, body).
type Inbox = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A Scraper-Pro on loopback taking `POST /api/bounces`: answers 500 to the first call,
/// 200 after.
async fn scraper_pro() -> (u16, Inbox) {
    let inbox: Inbox = Default::default();
    let kept = inbox.clone();
    let app = axum::Router::new().route(
        "/api/bounces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let mut inbox = kept.lock().unwrap();
                inbox.push((headers, body));
                if inbox.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, inbox)
}

async fn run_retry_queue(app: &TestApp) {
    ee_app::schedule::trigger(
        &app.db,
        ee_app::schedule::find(ee_app::schedule::RETRY).unwrap(),
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    app.run_jobs().await;
}

#[tokio::test]
async fn bounces_are_forwarded_to_the_contacts_source_signed_and_retried() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    let (port, inbox) = scraper_pro().await;
    // Scraper-Pro's contract: the body alone signed, `{source, contacts}`.
    let source = app
        .post("/api/v1/data-sources", &key, json!({"slug": "scraper-pro-1", "name": "Scraper-Pro", "type": "scraper_pro",
            "config": {"signature": "body", "bounce_url": format!("http://127.0.0.1:{port}/api/bounces")}}))
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    let secret = source.body["secret"].as_str().unwrap().to_owned();
    let body = r#"{"source": "scraper-pro-1", "contacts": [{"email": "lead@example.test", "firstName": "Lea"}]}"#;
    let signed = [(
        "signature",
        ee_core::signing::sign_body(secret.as_bytes(), body.as_bytes()),
    )];
    let (status, ingested) =
        post_raw(&app, "/api/v1/webhooks/scraper-pro", None, &signed, body).await;
    assert_eq!(status, StatusCode::OK, "{ingested}");
    assert_eq!(ingested["counts"]["created"], 1, "{ingested}");
    let tampered = [(
        "signature",
        ee_core::signing::sign_body(b"wrong", body.as_bytes()),
    )];
    let (status, _) = post_raw(&app, "/api/v1/webhooks/scraper-pro", None, &tampered, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bad_url = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "sp-2", "name": "SP", "type": "scraper_pro",
            "config": {"bounce_url": "ftp://x"}}),
        )
        .await;
    assert_eq!(
        bad_url.body["error"]["field"], "config.bounce_url",
        "{}",
        bad_url.body
    );

    let r = app
        .post(
            "/api/v1/webhooks/pmta-bounce",
            &key,
            json!({"email": "lead@example.test", "type": "hard"}),
        )
        .await;
    assert_eq!(r.body["forwarded"], true, "{}", r.body);
    // A block is about the sender: not forwarded.
    let r = app
        .post(
            "/api/v1/webhooks/pmta-bounce",
            &key,
            json!({"email": "lead@example.test", "type": "block"}),
        )
        .await;
    assert_eq!(r.body["forwarded"], false, "{}", r.body);

    // The first attempt fails (500): kept, due again in 2 minutes.
    run_retry_queue(&app).await;
    let listed = app.get("/api/v1/feedback/forwards", &key).await;
    let forward = &listed.body["items"][0];
    assert_eq!(forward["state"], "pending", "{}", listed.body);
    assert_eq!(forward["attempts"], 1);
    assert_eq!(forward["last_status"], 500);
    assert_eq!(
        forward["body"],
        json!({"email": "lead@example.test", "type": "hard", "source": "scraper-pro-1"})
    );
    let id = forward["id"].as_str().unwrap().to_owned();
    run_retry_queue(&app).await;
    assert_eq!(inbox.lock().unwrap().len(), 1, "not due yet");
    app.clock.advance_ms(2 * 60_000 + 1_000);
    run_retry_queue(&app).await;
    let listed = app
        .get("/api/v1/feedback/forwards?state=delivered", &key)
        .await;
    assert_eq!(listed.body["items"][0]["attempts"], 2, "{}", listed.body);
    let (headers, body) = inbox.lock().unwrap()[1].clone();
    let sig = headers.get("signature").unwrap().to_str().unwrap();
    ee_core::signing::verify_body(secret.as_bytes(), body.as_bytes(), sig).unwrap();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        sent,
        json!({"email": "lead@example.test", "type": "hard", "source": "scraper-pro-1"})
    );

    // Another tenant sees none of it.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let theirs = app.get("/api/v1/feedback/forwards", &other_key).await;
    assert_eq!(theirs.body["items"], json!([]));
    let r = app
        .post(
            &format!("/api/v1/feedback/forwards/{id}/retry"),
            &other_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test]
async fn the_accounting_file_is_followed_across_rotations_without_loss_or_repeat() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "pmta", "bounce_domain": "bounces.brand.test"}),
    )
    .await;
    let names = ["a", "b", "c", "d", "e"];
    for n in names {
        let sent = app
            .post("/api/v2/messages", &key,
                json!({"to": format!("{n}@example.test"), "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}))
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    }
    app.deliver().await;
    let received = smtp.received();
    let line = |n: &str| {
        let to = format!("{n}@example.test");
        let orig = &received.iter().find(|r| r.rcpt_to == to).unwrap().mail_from;
        let t = ee_core::timefmt::to_rfc3339(app.clock.now_ms());
        format!("b,{t},{orig},{to},failed,5.1.1,smtp;550 5.1.1 user unknown\n")
    };
    const HEADER: &str = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acct.csv");
    let follow = || ee_jobs::accounting::follow_once(&app.services, &path);

    // A line PowerMTA is still writing waits for its end.
    let b = line("b");
    let (b_start, b_end) = b.split_at(20);
    std::fs::write(&path, format!("{HEADER}{}{b_start}", line("a"))).unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b_end.as_bytes()).unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);
    assert_eq!(follow().await.unwrap().applied, 0, "nothing read twice");

    // Rotation: the old file gets one more line after it was renamed, the new one starts.
    let rotated = dir.path().join("acct-2026-12-01.csv");
    std::fs::rename(&path, &rotated).unwrap();
    std::io::Write::write_all(&mut file, line("c").as_bytes()).unwrap();
    std::fs::write(&path, format!("{HEADER}{}", line("d"))).unwrap();
    let report = follow().await.unwrap();
    assert_eq!((report.rotated_lines, report.applied), (1, 2), "{report:?}");

    // Cut short in place (copytruncate): read again from the start.
    std::fs::write(&path, format!("{HEADER}{}", line("e"))).unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);

    let events = app
        .get("/api/v1/feedback/events?source=pmta_accounting", &key)
        .await;
    let mut recipients: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recipient"].as_str().unwrap())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "a@example.test",
            "b@example.test",
            "c@example.test",
            "d@example.test",
            "e@example.test"
        ]
    );
    assert!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message_id"].is_string())
    );
    app.finish().await;
}

/// One SMTP transaction by hand: the reply to each command, in order.
async fn smtp_dialog(port: u16, rcpt: &str, data: &str) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut replies = Vec::new();
    // The last line of a reply has a space after its code.
    async fn reply(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    ) -> String {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }
    replies.push(reply(&mut lines).await);
    for command in [
        "EHLO mx.example.test".to_owned(),
        "MAIL FROM:<>".into(),
        format!("RCPT TO:<{rcpt}>"),
    ] {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        replies.push(reply(&mut lines).await);
    }
    if replies.last().unwrap().starts_with("250") {
        write.write_all(b"DATA\r\n").await.unwrap();
        replies.push(reply(&mut lines).await);
        write
            .write_all(data.replace('\n', "\r\n").as_bytes())
            .await
            .unwrap();
        write.write_all(b"\r\n.\r\n").await.unwrap();
        replies.push(reply(&mut lines).await);
    }
    write.write_all(b"QUIT\r\n").await.unwrap();
    replies
}

#[tokio::test]
async fn the_bounce_listener_takes_reports_for_return_paths_and_keeps_what_it_cannot_read() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    delivery(
        &app,
        &key,
        json!({"mode": "relay", "relay": "pmta", "bounce_domain": "bounces.brand.test"}),
    )
    .await;
    let sent = app
        .post("/api/v2/messages", &key,
            json!({"to": "gone@example.test", "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}))
        .await;
    let id = sent.body["id"].as_str().unwrap().to_owned();
    app.deliver().await;
    let return_path = smtp.received()[0].mail_from.clone();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_stop, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(ee_jobs::bounce_listener::serve(
        app.services.clone(),
        listener,
        "bounces.brand.test".into(),
        vec!["fbl@bounces.brand.test".into()],
        stop,
    ));

    // A DSN to the message's return path: no Message-ID needed, the address names it.
    let dsn = "From: MAILER-DAEMON@mx.example.test\nTo: whoever\nSubject: Undelivered\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"Z\"\n\n--Z\nContent-Type: text/plain\n\nfailed\n\
--Z\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\nFinal-Recipient: rfc822; gone@example.test\n\
Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist\n\n--Z--";
    let replies = smtp_dialog(port, &return_path, dsn).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let m = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(m.body["state"], "bounced", "{}", m.body);
    let events = app.get("/api/v1/feedback/events?source=dsn", &key).await;
    assert_eq!(
        events.body["items"][0]["message_id"],
        id.as_str(),
        "{}",
        events.body
    );
    assert_eq!(events.body["items"][0]["class"], "hard");

    // A forged return path and a stranger are refused at RCPT.
    let forged = return_path.replacen("b-", "b-0", 1);
    for rcpt in [forged.as_str(), "postmaster@example.test"] {
        let replies = smtp_dialog(port, rcpt, "").await;
        assert!(
            replies.last().unwrap().starts_with("550"),
            "{rcpt}: {replies:?}"
        );
    }

    // An out-of-office reply to the feedback address is kept, not dropped.
    let auto = "From: someone@example.test\nTo: fbl@bounces.brand.test\nSubject: Out of office\n\nBack on Monday.";
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", auto).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let kept = app.get("/api/v1/feedback/unread", &app.admin).await;
    assert_eq!(
        kept.body["items"][0]["envelope_to"], "fbl@bounces.brand.test",
        "{}",
        kept.body
    );
    assert!(
        kept.body["items"][0]["raw"]
            .as_str()
            .unwrap()
            .contains("Back on Monday")
    );
    assert_eq!(
        app.get("/api/v1/feedback/unread", &key).await.status,
        StatusCode::FORBIDDEN
    );
    app.finish().await;
}
