//! Time zones finished: a contact's zone is a field of its own (ingest, CSV, API; an IANA
//! name), its country's most populous zone stands in when it has none, else the tenant's;
//! windows take days of the week; the ledger tells each recipient's local time and when
//! a waiting one's window opens; a schedule written on a wall clock crosses summer time.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{action, brand, ledger, received_by, set_zone};
use ee_core::zone::{SendWindow, WindowZone, parse_zone};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn line<'a>(ledger: &'a [Value], email: &str) -> &'a Value {
    ledger
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("{email} not in {ledger:?}"))
}

/// Starts a campaign to everyone with `window`; its id.
async fn campaign(app: &TestApp, key: &str, template: &str, window: Value) -> String {
    let created = app
        .post(
            "/api/v2/campaigns",
            key,
            json!({"name": "local hours", "template_id": template, "audience": {"all": true},
                   "window": window}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(app, key, &id, "start").await;
    app.dispatch().await;
    app.deliver().await;
    id
}

/// A window around the current Paris hour: the Paris contact goes now; the Auckland one
/// (its own zone) and the one who names only New Zealand wait for the window's opening
/// on Auckland's clock, which the ledger shows, with each recipient's local time.
#[tokio::test]
async fn each_recipient_is_sent_in_its_own_hours() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    set_zone(&app, &key, "Europe/Paris").await;
    let ingest = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [
                {"email": "paris@example.test", "language": "fr", "time_zone": "europe/paris"},
                {"email": "auckland@example.test", "language": "en", "time_zone": "Pacific/Auckland"},
                {"email": "kiwi@example.test", "language": "en", "country": "nz"},
                {"email": "mars@example.test", "language": "en", "time_zone": "Mars/Olympus"},
            ]}),
        )
        .await;
    assert_eq!(ingest.status, StatusCode::OK, "{}", ingest.body);
    let results = ingest.body["results"].as_array().unwrap();
    assert_eq!(results[3]["status"], "rejected", "{}", ingest.body);
    assert!(
        results[3]["reason"]
            .as_str()
            .unwrap()
            .contains("time_zone: `Mars/Olympus` is not an IANA time zone"),
        "{}",
        ingest.body
    );
    let paris_id = results[0]["id"]
        .as_str()
        .or(results[0]["contact_id"].as_str())
        .unwrap()
        .to_owned();
    let contact = app
        .get(&format!("/api/v2/contacts/{paris_id}"), &key)
        .await
        .body;
    assert_eq!(
        contact["time_zone"], "Europe/Paris",
        "stored as spelled: {contact}"
    );

    let now = app.clock.now_ms();
    let paris = parse_zone("Europe/Paris").unwrap();
    let auckland = parse_zone("Pacific/Auckland").unwrap();
    let hour: i64 = ee_core::zone::local_rfc3339(now, &paris).unwrap()[11..13]
        .parse()
        .unwrap();
    let window = SendWindow {
        from: format!("{hour:02}:00"),
        to: format!("{:02}:00", (hour + 2) % 24),
        zone: WindowZone::Recipient,
        days: None,
    };
    assert_eq!(window.next_opening(now, &paris), None, "open in Paris now");
    let opens = window
        .next_opening(now, &auckland)
        .expect("closed in Auckland");
    let id = campaign(
        &app,
        &key,
        &template,
        json!({"from": window.from, "to": window.to, "zone": "recipient"}),
    )
    .await;
    assert_eq!(
        received_by(&smtp).keys().collect::<Vec<_>>(),
        ["paris@example.test"]
    );
    let rows = ledger(&app, &key, &id).await;
    let sent = line(&rows, "paris@example.test");
    assert_eq!(sent["state"], "sent");
    assert_eq!(sent["time_zone"], "Europe/Paris");
    assert!(
        sent["local_time"].as_str().unwrap().ends_with("+01:00"),
        "{sent}"
    );
    for email in ["auckland@example.test", "kiwi@example.test"] {
        let waiting = line(&rows, email);
        assert_eq!(waiting["state"], "queued", "{waiting}");
        assert_eq!(
            waiting["next_attempt_at"],
            ee_core::timefmt::to_rfc3339(opens).as_str(),
            "{waiting}"
        );
        assert_eq!(waiting["time_zone"], "Pacific/Auckland", "{waiting}");
        assert_eq!(
            waiting["local_time"],
            format!(
                "{}+13:00",
                &ee_core::zone::local_rfc3339(opens, &auckland).unwrap()[..19]
            )
            .as_str(),
            "{waiting}"
        );
        assert!(
            waiting["detail"]
                .as_str()
                .unwrap()
                .contains("Pacific/Auckland"),
            "{waiting}"
        );
    }
    // The campaign's recipients tab shows each one's local time as the API gives it.
    if let Some(b) = common::browser::Browser::start().await {
        b.log_in(&app.base, common::ADMIN_EMAIL, common::ADMIN_PASSWORD)
            .await;
        b.goto(&format!("{}/admin/#/campaigns/{id}", app.base))
            .await;
        b.click_button(".tabs", "Recipients").await;
        let shown = b
            .until(
                "the recipients' local times",
                "const table = document.querySelector('.tab-panel table'); if (!table) return null; \
                 const head = [...table.querySelectorAll('thead th')].map((c) => c.textContent.trim()); \
                 const at = head.indexOf(\"Recipient's local time\"); \
                 const rows = [...table.querySelectorAll('tbody tr')].map((r) => [r.cells[0].textContent.trim(), r.cells[at].textContent.trim()]); \
                 return rows.length === 3 ? rows : null;",
            )
            .await;
        for row in shown.as_array().unwrap() {
            let email = row[0].as_str().unwrap();
            let api = line(&rows, email);
            let local = api["local_time"].as_str().unwrap();
            let expected = format!(
                "{} ({})",
                local[..16].replace('T', " "),
                api["time_zone"].as_str().unwrap()
            );
            assert_eq!(row[1], expected.as_str(), "{email}");
        }
        b.shot("campaign-local-times").await;
        b.close().await;
    }

    // At the opening both go.
    app.clock.advance_ms(opens - app.clock.now_ms());
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 3);
    app.finish().await;
}

/// A Monday-to-Friday window holds a Saturday send until Monday's opening.
#[tokio::test]
async fn a_weekday_window_holds_a_saturday_send() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    set_zone(&app, &key, "Europe/Paris").await;
    common::sending::contacts(&app, &key, &[("w@example.test".into(), "fr", vec![])]).await;
    // The next Saturday, 10:00 in Paris.
    let paris = parse_zone("Europe/Paris").unwrap();
    let mut day = app.clock.now_ms() / 86_400_000 + 1;
    let saturday = loop {
        let at = ee_core::zone::parse_datetime(
            &format!("{}T10:00", ee_core::timefmt::date_of(day * 86_400_000)),
            &paris,
        )
        .unwrap();
        // 1970-01-01 was a Thursday: day 2 is a Saturday.
        if day.rem_euclid(7) == 2 {
            break at;
        }
        day += 1;
    };
    let monday = ee_core::zone::parse_datetime(
        &format!(
            "{}T08:00",
            ee_core::timefmt::date_of((day + 2) * 86_400_000)
        ),
        &paris,
    )
    .unwrap();
    app.clock.advance_ms(saturday - app.clock.now_ms());
    let bad = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "x", "template_id": template,
                   "window": {"from": "08:00", "to": "20:00", "days": ["mon", "mon"]}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["error"]["field"], "window.days");
    let id = campaign(
        &app,
        &key,
        &template,
        json!({"from": "08:00", "to": "20:00", "days": ["mon", "tue", "wed", "thu", "fri"]}),
    )
    .await;
    assert!(received_by(&smtp).is_empty());
    let rows = ledger(&app, &key, &id).await;
    let waiting = line(&rows, "w@example.test");
    assert_eq!(
        waiting["next_attempt_at"],
        ee_core::timefmt::to_rfc3339(monday).as_str(),
        "{waiting}"
    );
    assert!(
        waiting["detail"]
            .as_str()
            .unwrap()
            .contains("mon,tue,wed,thu,fri 08:00–20:00 Europe/Paris"),
        "{waiting}"
    );
    app.clock.advance_ms(monday - app.clock.now_ms());
    app.deliver().await;
    assert_eq!(received_by(&smtp).len(), 1);
    app.finish().await;
}

/// A schedule written on Paris's wall clock for the morning after summer time starts
/// (the last Sunday of March) lands two hours before UTC's, not one.
#[tokio::test]
async fn a_schedule_across_the_spring_change_lands_at_the_right_instant() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    set_zone(&app, &key, "Europe/Paris").await;
    common::sending::contacts(&app, &key, &[("s@example.test".into(), "fr", vec![])]).await;
    // The next last Sunday of March (1970-01-04, day 3, was a Sunday).
    let now = app.clock.now_ms();
    let year: i32 = ee_core::timefmt::date_of(now)[..4].parse().unwrap();
    let day = (year..=year + 1)
        .flat_map(|y| (25..=31).map(move |d| format!("{y}-03-{d}")))
        .find(|date| {
            let midnight = ee_core::timefmt::parse_rfc3339(&format!("{date}T00:00:00Z")).unwrap();
            (midnight / 86_400_000 + 4) % 7 == 0 && midnight > now
        })
        .unwrap();
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "spring", "template_id": template, "audience": {"all": true},
                   "send_at": format!("{day}T09:00")}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["send_at"], format!("{day}T07:00:00Z"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "schedule").await;
    let at = ee_core::timefmt::parse_rfc3339(&format!("{day}T07:00:00Z")).unwrap();
    app.clock.advance_ms(at - app.clock.now_ms() - 60_000);
    assert_eq!(app.dispatch().await.queued, 0);
    app.clock.advance_ms(60_000);
    assert_eq!(app.dispatch().await.queued, 1);
    app.finish().await;
}

/// A CSV's `fuseau horaire` (or `time_zone`, `tz`) column fills the field; a line whose
/// zone is not one is reported with its reason, the others imported.
#[tokio::test]
async fn a_csv_column_carries_the_time_zone() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let upload = app
        .client
        .post(format!("{}/api/v2/contacts/import", app.base))
        .header("x-api-key", &key)
        .header("content-type", "text/csv")
        .body("email;pays;fuseau horaire\na@example.test;FR;Europe/Paris\nb@example.test;NZ;\nc@example.test;FR;Paris\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);
    let import: Value = upload.json().await.unwrap();
    app.run_jobs().await;
    let id = import["id"].as_str().unwrap();
    let errors = app
        .client
        .get(format!("{}/api/v2/imports/{id}/errors", app.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = errors.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{errors}");
    assert!(lines[0].starts_with("4,"), "{errors}");
    assert!(
        lines[0].contains("`Paris` is not an IANA time zone"),
        "{errors}"
    );
    let list = app.get("/api/v2/contacts?limit=10", &key).await.body;
    let zone_of = |email: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["email"] == email)
            .map(|c| c["time_zone"].clone())
    };
    assert_eq!(zone_of("a@example.test"), Some(json!("Europe/Paris")));
    assert_eq!(zone_of("b@example.test"), Some(Value::Null));
    assert_eq!(zone_of("c@example.test"), None);
    app.finish().await;
}
