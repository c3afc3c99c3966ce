//! Campaigns end to end: seed 004's body, the audience fixed at start (segment minus
//! suppressed and inactive contacts, each once), per-contact language, delivery through a
//! relay on loopback, pause and resume without a second message or a skipped recipient,
//! cancel, a schedule in the tenant's time zone on the settable clock, the ledger and its
//! retry, and the 404s and 422s (the throttle and the window: `campaign_pace.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::mail_check::{inspect, published_dkim};
use common::sending::{HOUR_MS, action, brand, contacts, header, received_by};
use common::{TestApp, error_code};
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_regular_campaign_reaches_its_segment_once_each_in_their_language() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people = vec![
        ("marie@example.test".to_owned(), "fr", vec!["TYPE:CLIENT"]),
        ("john@example.test".to_owned(), "en", vec!["TYPE:CLIENT"]),
        ("hans@example.test".to_owned(), "de", vec!["TYPE:CLIENT"]),
        ("stop@example.test".to_owned(), "fr", vec!["TYPE:CLIENT"]),
        ("other@example.test".to_owned(), "fr", vec!["TYPE:PROSPECT"]),
    ];
    contacts(&app, &key, &people).await;
    app.suppress(&key, "stop@example.test", "unsubscribed")
        .await;
    let segment = app
        .post(
            "/api/v2/segments",
            &key,
            json!({"name": "clients", "expression": {"tag": "TYPE:CLIENT"}}),
        )
        .await;
    assert_eq!(segment.status, StatusCode::CREATED, "{}", segment.body);

    // Seed 004's body as written (our template's id), plus an audience.
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "news_v2", "template_id": template, "type": "regular",
                   "tenant": "brand", "audience": {"segments": [segment.body["id"]]}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "draft");
    let id = created.body["id"].as_str().unwrap().to_owned();

    // The count before sending: the segment minus the suppressed address.
    let count = app
        .get(&format!("/api/v2/campaigns/{id}/audience"), &key)
        .await;
    assert_eq!(count.body, json!({"count": 3, "fixed": false}));

    // A test send: the template as marie gets it, to a QA address, kept out of the campaign.
    let list = app.get("/api/v2/contacts?limit=50", &key).await;
    let marie = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "marie@example.test")
        .unwrap()["id"]
        .clone();
    let test = app
        .post(
            &format!("/api/v2/campaigns/{id}/test"),
            &key,
            json!({"emails": ["qa@example.test"], "contact_id": marie}),
        )
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{}", test.body);
    assert_eq!(test.body[0]["state"], "queued");
    app.deliver().await;
    let qa = smtp.received();
    assert_eq!(qa.len(), 1);
    let data = String::from_utf8_lossy(&qa[0].data).into_owned();
    assert_eq!(header(&data, "Subject"), Some("Bonjour marie"));
    assert_eq!(header(&data, "X-Campaign-Test"), Some(id.as_str()));
    assert_eq!(header(&data, "X-Campaign-ID"), None);
    for (body, field) in [
        (json!({"emails": []}), "emails"),
        (json!({"emails": ["not an address"]}), "emails"),
        (
            json!({"emails": ["qa@example.test"], "contact_id": "nope"}),
            "contact_id",
        ),
    ] {
        let r = app
            .post(&format!("/api/v2/campaigns/{id}/test"), &key, body)
            .await;
        assert_eq!(r.body["error"]["field"], field, "{}", r.body);
    }

    let started = action(&app, &key, &id, "start").await;
    assert_eq!(started["status"], "sending");
    assert_eq!(started["recipients"], 3);
    // A contact added now is not in the fixed audience.
    contacts(
        &app,
        &key,
        &[("late@example.test".to_owned(), "fr", vec!["TYPE:CLIENT"])],
    )
    .await;

    let pass = app.dispatch().await;
    let ledger = app
        .get(&format!("/api/v2/campaigns/{id}/recipients"), &key)
        .await;
    assert_eq!((pass.queued, pass.finished), (3, 0), "{}", ledger.body);
    // Sent only once its messages have left the queue (a second after they were queued).
    app.clock.advance_ms(1_000);
    app.deliver().await;
    assert_eq!(app.dispatch().await.finished, 1);
    let mut got = received_by(&smtp);
    assert_eq!(got.remove("qa@example.test"), Some(1), "the test, once");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        [
            "hans@example.test",
            "john@example.test",
            "marie@example.test"
        ]
    );
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    // Campaign mail is signed as transactional mail is: verified by dkimpy against the
    // key published only at brand.test's selector.
    let dkim = published_dkim(&app, &key, "brand.test", "s1").await;
    for r in smtp.received().iter().skip(1) {
        let checked = inspect(&r.data, &dkim);
        assert_eq!(checked["dkim"], true, "{}: {checked}", r.rcpt_to);
        let data = String::from_utf8_lossy(&r.data).into_owned();
        assert_eq!(header(&data, "X-Campaign-ID"), Some(id.as_str()));
        assert_eq!(
            header(&data, "X-Job"),
            Some(id.as_str()),
            "PowerMTA's job id"
        );
        let subject = header(&data, "Subject").unwrap();
        let expected = match r.rcpt_to.as_str() {
            "marie@example.test" => "Bonjour marie",
            "john@example.test" => "Hello john",
            // No German template and no general one: the category in English.
            _ => "Hello hans",
        };
        assert_eq!(subject, expected, "{}", r.rcpt_to);
    }

    let done = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(done.body["status"], "sent", "{}", done.body);
    let sent = app
        .get(
            &format!("/api/v2/campaigns/{id}/recipients?state=sent"),
            &key,
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let items = sent.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|r| r["message_id"].is_string() && r["last_code"] == 250)
    );
    // A line was last updated when its message was sent, not when it was queued.
    for r in items {
        assert!(
            r["updated_at"].as_str() >= r["sent_at"].as_str()
                && r["sent_at"].as_str() > r["queued_at"].as_str(),
            "{r}"
        );
    }
    // Opens are counted as they come, unique ones once per message (a person's, a minute
    // after sending: see feedback.rs for machines').
    app.clock.advance_ms(60_000);
    let message = items[0]["message_id"].as_str().unwrap();
    let tracking_key = app.services.delivery.tracking_key.clone();
    let open = ee_core::tracking::sign(&tracking_key, ee_core::tracking::Kind::Open, message, 0);
    for _ in 0..2 {
        let pixel = app
            .client
            .get(format!("{}/t/o/{open}", app.base))
            .header("user-agent", common::BROWSER)
            .send()
            .await
            .unwrap();
        assert_eq!(pixel.status(), StatusCode::OK);
    }
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.body["recipients"], 3);
    assert_eq!(stats.body["by_state"], json!({"sent": 3}));
    let totals = &stats.body["totals"];
    assert_eq!(
        [
            &totals["queued"],
            &totals["sent"],
            &totals["opened"],
            &totals["opened_unique"]
        ],
        [&json!(3), &json!(3), &json!(2), &json!(1)],
        "{}",
        stats.body
    );
    assert_eq!(stats.body["rates"]["open"].as_f64().unwrap(), 1.0 / 3.0);
    assert_eq!(stats.body["rates"]["bounce"], 0.0);
    assert_eq!(stats.body["hourly"][0]["counts"]["sent"], 3);
    assert_eq!(stats.body["by_language"], json!({"en": 2, "fr": 1}));
    // A click on the first link is counted for that link.
    let click = ee_core::tracking::sign(&tracking_key, ee_core::tracking::Kind::Click, message, 0);
    let clicked = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/t/c/{click}", app.base))
        .header("user-agent", common::BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), StatusCode::FOUND);
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(
        stats.body["by_link"],
        json!({"https://brand.test/offer": 1}),
        "clicks by the link's address: {}",
        stats.body
    );
    assert_eq!(stats.body["totals"]["clicked_unique"], 1);

    // A sent campaign can no longer be changed or deleted.
    let change = app
        .call(
            Method::PATCH,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            Some(json!({"name": "again"})),
        )
        .await;
    assert_eq!(change.status, StatusCode::CONFLICT, "{}", change.body);
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::CONFLICT, "{}", gone.body);
    app.finish().await;
}

#[tokio::test]
async fn pause_and_resume_give_every_recipient_exactly_one_message() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = (0..450)
        .map(|i| (format!("p{i:03}@example.test"), "fr", vec!["QUALITY:HIGH"]))
        .collect();
    contacts(&app, &key, &people).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "big", "template_id": template, "audience": {"tags": ["QUALITY:HIGH"]}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;

    // One pass hands one batch over; then the campaign pauses.
    let first = ee_app::campaigns::dispatch::run_once(&app.services)
        .await
        .unwrap();
    assert_eq!(first.queued, ee_app::campaigns::dispatch::BATCH as usize);
    let paused = action(&app, &key, &id, "pause").await;
    assert_eq!(paused["status"], "paused");
    // Paused: its queued messages wait, and nothing more is handed over.
    assert_eq!(app.deliver().await, 0);
    assert_eq!(app.dispatch().await, Default::default());
    assert!(smtp.received().is_empty());
    let waiting = app
        .get(
            &format!("/api/v2/campaigns/{id}/recipients?state=pending&limit=500"),
            &key,
        )
        .await;
    assert_eq!(waiting.body["items"].as_array().unwrap().len(), 250);

    // Started, it keeps what it sends (template, audience); its label and its pace may
    // still change until it is over (they apply to what is not handed over yet).
    let path = format!("/api/v2/campaigns/{id}");
    let patch = |body: serde_json::Value| app.call(Method::PATCH, &path, Some(&key), Some(body));
    for body in [
        json!({"template_id": template}),
        json!({"audience": {"all": true}}),
        json!({"name": "big, renamed", "audience": {"all": true}}),
    ] {
        let refused = patch(body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{body}: {}",
            refused.body
        );
        let message = refused.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(
                "a paused campaign cannot be changed but for its name, throttle and window"
            ),
            "{message}"
        );
    }
    let renamed = patch(json!({"name": "big, renamed", "throttle": {"per_hour": 10000}})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "big, renamed");
    assert_eq!(
        renamed.body["throttle"]["per_hour"], 10000,
        "{}",
        renamed.body
    );

    // Pausing twice is refused; resuming goes on where it stopped.
    let again = app
        .post(&format!("/api/v2/campaigns/{id}/pause"), &key, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    action(&app, &key, &id, "resume").await;
    assert_eq!(app.dispatch_and_deliver().await.finished, 1);
    let got = received_by(&smtp);
    assert_eq!(got.len(), 450, "every recipient");
    assert!(got.values().all(|n| *n == 1), "one message each");
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(
        stats.body["by_state"],
        json!({"sent": 450}),
        "{}",
        stats.body
    );
    app.finish().await;
}

#[tokio::test]
async fn cancel_stops_the_recipients_waiting_and_the_messages_not_sent() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let people: Vec<_> = (0..250)
        .map(|i| (format!("c{i:03}@example.test"), "en", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "oops", "template_id": template, "audience": {"all": true}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    ee_app::campaigns::dispatch::run_once(&app.services)
        .await
        .unwrap();
    let cancelled = action(&app, &key, &id, "cancel").await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(app.dispatch().await, Default::default());
    assert_eq!(app.deliver().await, 0);
    assert!(smtp.received().is_empty());
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(
        stats.body["by_state"],
        json!({"cancelled": 50, "failed": 200}),
        "{}",
        stats.body
    );
    let failed = app
        .get(
            &format!("/api/v2/campaigns/{id}/recipients?state=failed&limit=1"),
            &key,
        )
        .await;
    assert!(
        failed.body["items"][0]["message_id"].is_string(),
        "{}",
        failed.body
    );
    let resume = app
        .post(&format!("/api/v2/campaigns/{id}/resume"), &key, json!({}))
        .await;
    assert_eq!(resume.status, StatusCode::CONFLICT, "{}", resume.body);
    app.finish().await;
}

#[tokio::test]
async fn a_scheduled_campaign_starts_on_time_in_the_tenants_zone() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let zone = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta", "time_zone": "Asia/Tokyo"})),
        )
        .await;
    assert_eq!(zone.status, StatusCode::OK, "{}", zone.body);
    let people: Vec<_> = (0..5)
        .map(|i| (format!("t{i:02}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    // An hour from now, written as Tokyo's wall clock (UTC+9, no summer time).
    let at = app.clock.now_ms() / 60_000 * 60_000 + HOUR_MS;
    let tokyo = ee_core::timefmt::to_rfc3339(at + 9 * HOUR_MS);
    let local = &tokyo[..16];
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "later", "template_id": template, "audience": {"all": true},
                   "send_at": local}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["send_at"],
        ee_core::timefmt::to_rfc3339(at).as_str(),
        "{local} in Tokyo"
    );
    let scheduled = action(&app, &key, &id, "schedule").await;
    assert_eq!(scheduled["status"], "scheduled");

    // Not before its time.
    app.clock.advance_ms(at - app.clock.now_ms() - 1000);
    assert_eq!(app.dispatch().await, Default::default());
    app.clock.advance_ms(1000);
    let pass = app.dispatch().await;
    assert_eq!((pass.started, pass.queued), (1, 5));
    app.deliver().await;
    assert_eq!(app.dispatch().await.finished, 1);
    assert_eq!(received_by(&smtp).len(), 5);
    let run = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(run.body["status"], "sent");
    app.finish().await;
}

#[tokio::test]
async fn a_campaign_over_its_bounce_threshold_pauses_itself_with_an_alert() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    // The tenant keeps the seed's 5 %, judged from 20 finished messages.
    let settings = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta",
                        "campaign_auto_pause": {"bounce_rate": 0.05, "complaint_rate": 0.001, "min_sample": 20}})),
        )
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.body);
    // 200 recipients (one batch), 12 of them unknown users: 6 % bounces.
    let people: Vec<_> = (0..200)
        .map(|i| (format!("b{i:03}@example.test"), "fr", vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    for i in (0..200).step_by(17).take(12) {
        smtp.script(
            &format!("b{i:03}@example.test"),
            vec![Behaviour::RefuseRcpt(550, "5.1.1 User unknown".into())],
        );
    }
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "risky", "template_id": template, "audience": {"all": true}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    assert_eq!(app.dispatch().await.queued, 200);
    app.deliver().await;
    // The next pass judges the rate before anything else: paused, not finished.
    let pass = app.dispatch().await;
    assert_eq!(pass.finished, 0);
    let paused = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(paused.body["status"], "auto_paused", "{}", paused.body);
    let reason = paused.body["status_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("bounce rate 6.0 % over 5.0 % (12 of 200)"),
        "{reason}"
    );
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert!(
        alerts.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["title"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Campaign paused")),
        "{}",
        alerts.body
    );
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.body["totals"]["bounced"], 12, "{}", stats.body);
    assert_eq!(stats.body["rates"]["bounce"].as_f64().unwrap(), 0.06);
    let bounced = app
        .get(
            &format!("/api/v2/campaigns/{id}/recipients?state=bounced"),
            &key,
        )
        .await;
    assert_eq!(bounced.body["items"].as_array().unwrap().len(), 12);
    assert_eq!(bounced.body["items"][0]["last_code"], 550);
    // Thresholds are checked when written.
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta", "campaign_auto_pause": {"bounce_rate": 0.0}})),
        )
        .await;
    assert_eq!(
        bad.body["error"]["field"], "campaign_auto_pause",
        "{}",
        bad.body
    );
    app.finish().await;
}

#[tokio::test]
async fn bad_input_is_named_and_other_tenants_campaigns_are_not_found() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let other = app.tenant("other").await;
    let (_, their_key) = app.api_key(&other, "k").await;
    let theirs = app
        .post(
            "/api/v2/templates",
            &their_key,
            json!({"name": "t", "subject": "s", "html": "<p>x</p>", "language": "fr"}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    let ours = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "welcome_v2_fr", "subject": "Bienvenue", "html": "<p>x</p>", "language": "fr"}),
        )
        .await;
    let template = ours.body["id"].as_str().unwrap();

    // Seed 004's body as written, the autoresponder with its trigger.
    let seed = app
        .client
        .post(format!("{}/api/v2/campaigns", app.base))
        .header("X-API-KEY", &key)
        .body(
            json!({"name": "nurture_v2_fr", "template_id": template, "type": "autoresponder",
                   "trigger": "subscription", "tenant": "brand"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), StatusCode::CREATED);
    let seed: Value = seed.json().await.unwrap();
    assert_eq!(
        (seed["type"].as_str(), seed["trigger"].as_str()),
        (Some("autoresponder"), Some("subscription"))
    );
    // The seed's literal `"template_id": 1` names no template of ours: a 422, not a type error.
    let numeric = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "n", "template_id": 1, "type": "autoresponder", "trigger": "subscription"}),
        )
        .await;
    assert_eq!(error_code(&numeric), "validation_failed");
    assert_eq!(numeric.body["error"]["field"], "template_id");

    let past = ee_core::timefmt::to_rfc3339(app.clock.now_ms() - 1000);
    for (body, field) in [
        (
            json!({"name": "a", "template_id": template, "audience": {"segments": ["nope"]}}),
            "audience.segments",
        ),
        (
            json!({"name": "a", "template_id": theirs.body["id"], "audience": {"all": true}}),
            "template_id",
        ),
        (
            json!({"name": "a", "template_id": template, "send_at": past}),
            "send_at",
        ),
        (
            json!({"name": "a", "template_id": template, "throttle": {"per_hour": 0}}),
            "throttle.per_hour",
        ),
        (
            json!({"name": "a", "template_id": template, "send_at": "next monday"}),
            "send_at",
        ),
        (
            json!({"name": "a", "template_id": template, "window": {"from": "8h", "to": "20:00"}}),
            "window.from",
        ),
        (
            json!({"name": "a", "template_id": template, "window": {"from": "08:00", "to": "08:00"}}),
            "window.to",
        ),
        (
            json!({"name": "a", "template_id": template, "type": "newsletter"}),
            "type",
        ),
        (json!({"name": " ", "template_id": template}), "name"),
        (
            json!({"name": "a", "template_id": template, "type": "autoresponder"}),
            "trigger",
        ),
        (
            json!({"name": "a", "template_id": template, "audience": {"tags": ["9:x"]}}),
            "audience.tags",
        ),
    ] {
        let r = app.post("/api/v2/campaigns", &key, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        let fields: Vec<&str> =
            std::iter::once(r.body["error"]["field"].as_str().unwrap_or_default())
                .chain(
                    r.body["error"]["details"]["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f["field"].as_str()),
                )
                .collect();
        assert!(fields.contains(&field), "{body}: {}", r.body);
    }

    // A draft with an empty audience cannot start.
    let draft = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "empty", "template_id": template}),
        )
        .await;
    let id = draft.body["id"].as_str().unwrap().to_owned();
    let start = app
        .post(&format!("/api/v2/campaigns/{id}/start"), &key, json!({}))
        .await;
    assert_eq!(
        start.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        start.body
    );
    assert_eq!(start.body["error"]["field"], "audience");
    let schedule = app
        .post(&format!("/api/v2/campaigns/{id}/schedule"), &key, json!({}))
        .await;
    assert_eq!(
        schedule.body["error"]["field"], "send_at",
        "{}",
        schedule.body
    );

    // Another tenant sees none of it.
    for (method, path) in [
        (Method::GET, format!("/api/v2/campaigns/{id}")),
        (Method::PATCH, format!("/api/v2/campaigns/{id}")),
        (Method::DELETE, format!("/api/v2/campaigns/{id}")),
        (Method::POST, format!("/api/v2/campaigns/{id}/start")),
        (Method::GET, format!("/api/v2/campaigns/{id}/recipients")),
        (Method::GET, format!("/api/v2/campaigns/{id}/stats")),
        (Method::GET, format!("/api/v2/campaigns/{id}/audience")),
    ] {
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let r = app
            .call(method.clone(), &path, Some(&their_key), body)
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.body
        );
    }
    let listed = app.get("/api/v2/campaigns", &their_key).await;
    assert_eq!(listed.body["items"], json!([]));
    let mine = app.get("/api/v2/campaigns?status=draft", &key).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    let bad = app.get("/api/v2/campaigns?status=running", &key).await;
    assert_eq!(bad.body["error"]["field"], "status");

    // A draft is changed and deleted.
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            Some(json!({"name": "renamed", "audience": {"all": true}})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["audience"]["all"], true);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let audit = app
        .get("/api/v1/audit/logs?resource_type=campaign", &app.admin)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"campaign.create") && actions.contains(&"campaign.delete"),
        "{actions:?}"
    );
    app.finish().await;
}

/// A campaign's statistics show every counter, zeros included, so a client need not
/// guess what an absent one means.
#[tokio::test]
async fn statistics_show_every_counter_zeros_included() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "empty", "template_id": template, "audience": {"all": true}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    for name in ee_app::campaigns::stats::COUNTERS {
        assert_eq!(stats.body["totals"][name], 0, "{name}: {}", stats.body);
    }
    app.finish().await;
}

/// PowerMTA's directives (X-Virtual-MTA, X-Job) and X-Campaign-ID go to a relay marked as
/// PowerMTA (the default, as in the seeds) and to no other: another relay would pass
/// them on to the recipients.
#[tokio::test]
async fn powermta_headers_go_only_to_powermta() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    contacts(
        &app,
        &key,
        &[("one@example.test".to_owned(), "fr", vec!["QUALITY:HIGH"])],
    )
    .await;
    let relays = app.get("/api/v1/relays", &key).await;
    let relay = relays.body["items"][0].clone();
    assert_eq!(relay["powermta"], true, "{relay}");
    let send = |name: &'static str| {
        let (app, key, template) = (&app, &key, &template);
        async move {
            let created = app
                .post(
                    "/api/v2/campaigns",
                    key,
                    json!({"name": name, "template_id": template, "audience": {"tags": ["QUALITY:HIGH"]}}),
                )
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
            let id = created.body["id"].as_str().unwrap().to_owned();
            action(app, key, &id, "start").await;
            app.dispatch_and_deliver().await;
            id
        }
    };
    let first = send("to powermta").await;
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let data = String::from_utf8_lossy(&got[0].data).into_owned();
    assert_eq!(header(&data, "X-Job"), Some(first.as_str()));
    assert_eq!(header(&data, "X-Campaign-ID"), Some(first.as_str()));

    // The same relay marked as not PowerMTA: none of them.
    let changed = app
        .call(
            Method::PUT,
            &format!("/api/v1/relays/{}", relay["id"].as_str().unwrap()),
            Some(&key),
            Some(json!({"powermta": false})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["powermta"], false);
    send("elsewhere").await;
    let got = smtp.received();
    assert_eq!(got.len(), 2);
    let data = String::from_utf8_lossy(&got[1].data).into_owned();
    assert!(data.contains("X-EE-Ref:"), "the message is ours: {data}");
    for name in ["X-Job", "X-Campaign-ID", "X-Virtual-MTA"] {
        assert_eq!(header(&data, name), None, "{name}: {data}");
    }
    app.finish().await;
}
