//! The feedback loop end to end: a relayed campaign's bounces and complaint come back in
//! PowerMTA's accounting file (matched by their per-message return paths), suppress the
//! addresses, move the campaign's counters and pause it; the seed's webhooks with their
//! own bodies, signed by data sources or sent with an API key; DSN and ARF messages; the
//! transport's own refusals; soft bounces counted to the tenant's limit; what matches no
//! tenant kept for an admin; another tenant's message never touched.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::sending::{action, brand, contacts, delivery, post_raw};
use common::{TestApp, error_code};
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
    // An admin who names no tenant gets every tenant's figures (here, one tenant's).
    let everyone = app.get("/api/v1/reports", &app.admin).await;
    assert_eq!(everyone.status, StatusCode::OK, "{}", everyone.body);
    assert_eq!(everyone.body["tenant_id"], Value::Null);
    assert_eq!(everyone.body["totals"], report.body["totals"]);
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
                // The code as a number, or as the string many senders write.
                json!({"email": "soft@example.test", "type": "soft",
                       "code": if n == 2 { json!("452") } else { json!(452) }, "diagnostic": "4.2.2 Mailbox full"}))
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
        (
            json!({"email": "x@example.test", "type": "hard", "code": "five-fifty"}),
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
    let sig = common::signatures::timestamped(secret.as_bytes(), ts, body.as_bytes());
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
            common::signatures::timestamped(b"wrong", ts, body.as_bytes()),
        ),
    ];
    let (status, _) = post_raw(&app, "/api/v1/webhooks/pmta-bounce", None, &forged, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A source not set to the body-only scheme needs the timestamp.
    let body_only = [
        ("x-ee-source", "pmta-1".to_owned()),
        (
            "signature",
            common::signatures::body_only(secret.as_bytes(), body.as_bytes()),
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
        common::signatures::body_only(mw_secret.as_bytes(), body.as_bytes()),
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
    let items = mine.body["items"].as_array().unwrap();
    assert!(
        items.iter().any(|e| e["recipient"] == "arf@example.test"),
        "the tenant's own complaint is listed: {}",
        mine.body
    );
    assert!(
        items.iter().all(|e| e["recipient"] != "dsn@example.test"),
        "{}",
        mine.body
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

/// The signatures these tests make (`common::signatures`) are the documented scheme.
#[test]
fn the_tests_signatures_give_the_known_answers() {
    // Computed with Python's `hmac` module (see ee_core::signing's tests).
    let body = br#"{"email":"a@example.test","type":"hard","source":"scraper-pro"}"#;
    assert_eq!(
        common::signatures::timestamped(b"whsec-known-answer-0001", 1_796_515_200, body),
        "sha256=51b291af0a4c8201531f8a536f628ad90d562c115be27c8df42fce1e04b48971"
    );
    assert_eq!(
        common::signatures::body_only(b"whsec-known-answer-0001", body),
        "sha256=6fc71461bbd637189aa15c915232a88d85a2deaef76dfa3bd860f3e6d547bfc2"
    );
}
