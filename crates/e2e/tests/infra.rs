//! Sending infrastructure through the API: IPs and their state machine, warm-up plans
//! and quotas, the safety rule, quarantine release, scheduled jobs and alerts.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use common::{TestApp, error_code};
use ee_connectors::alerts::{AlertChannels, Telegram, Webhook};
use ee_core::timefmt::{DAY_MS, epoch_day};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Admin, tenant A with a key, and an IP of A created with the seeds' shape.
async fn setup(app: &TestApp) -> (String, String, String) {
    let tenant = app.tenant("brand-a").await;
    let (_, key) = app.api_key(&tenant, "infra").await;
    let created = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "192.0.2.10", "domain": "mail1.brand-a.test", "status": "warming"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    (tenant, key, created.body["id"].as_str().unwrap().to_owned())
}

async fn transition(app: &TestApp, credential: &str, ip: &str, to: &str) -> common::Reply {
    app.post(
        &format!("/api/v1/ips/{ip}/transition"),
        credential,
        json!({"to": to, "reason": format!("test: to {to}")}),
    )
    .await
}

#[tokio::test]
async fn ips_crud_validation_and_tenant_isolation() {
    let app = TestApp::spawn().await;
    let (tenant, key, ip) = setup(&app).await;
    let got = app.get(&format!("/api/v1/ips/{ip}"), &key).await;
    assert_eq!(
        (got.body["ip"].as_str(), got.body["hostname"].as_str()),
        (Some("192.0.2.10"), Some("mail1.brand-a.test"))
    );
    assert_eq!(
        (got.body["state"].as_str(), got.body["tenant_id"].as_str()),
        (Some("warming"), Some(tenant.as_str()))
    );
    assert!(
        got.body["warmup_plan_id"].is_string(),
        "a warming IP gets the default plan"
    );

    let v6 = app.post("/api/v1/ips", &key, json!({"ip": "2001:DB8::25", "hostname": "mail6.brand-a.test", "pool": "bulk", "state": "ACTIVE"})).await;
    assert_eq!(
        (v6.status, v6.body["ip"].as_str(), v6.body["state"].as_str()),
        (StatusCode::CREATED, Some("2001:db8::25"), Some("active"))
    );
    let dup = app
        .post(
            "/api/v1/ips",
            &app.admin,
            json!({"ip": "192.0.2.10", "tenant_id": tenant}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    for (body, field) in [
        (json!({"ip": "300.1.2.3"}), "ip"),
        (
            json!({"ip": "192.0.2.11", "hostname": "not a host"}),
            "hostname",
        ),
        (json!({"ip": "192.0.2.11", "state": "quarantined"}), "state"),
        (json!({"ip": "192.0.2.11", "pool": "Bad Pool"}), "pool"),
        (json!({"ip": 12}), "ip"),
    ] {
        let reply = app.post("/api/v1/ips", &key, body.clone()).await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
    let bulk = app.get("/api/v1/ips?pool=bulk", &key).await;
    assert_eq!(bulk.body["items"].as_array().unwrap().len(), 1);
    let warming = app.get("/api/v1/ips?state=warming", &key).await;
    assert_eq!(warming.body["items"][0]["id"], ip.as_str());
    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/v1/ips/{ip}"),
            Some(&key),
            Some(json!({"pool": "bulk"})),
        )
        .await;
    assert_eq!(patched.body["pool"], "bulk");
    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/v1/ips/{ip}"),
            Some(&key),
            Some(json!({"tenant_id": tenant})),
        )
        .await;
    assert_eq!(
        moved.status,
        StatusCode::FORBIDDEN,
        "only an admin moves IPs between tenants"
    );

    // Another tenant sees none of it.
    let other = app.tenant("brand-b").await;
    let (_, other_key) = app.api_key(&other, "b").await;
    let attempts = [
        (Method::GET, format!("/api/v1/ips/{ip}"), None),
        (
            Method::PATCH,
            format!("/api/v1/ips/{ip}"),
            Some(json!({"pool": "mine"})),
        ),
        (Method::DELETE, format!("/api/v1/ips/{ip}"), None),
        (
            Method::POST,
            format!("/api/v1/ips/{ip}/transition"),
            Some(json!({"to": "active"})),
        ),
        (Method::GET, format!("/api/v1/ips/{ip}/transitions"), None),
        (
            Method::POST,
            format!("/api/v1/ips/{ip}/traffic"),
            Some(json!({"sent": 1})),
        ),
        (
            Method::POST,
            "/api/v1/warmup/plans".to_owned(),
            Some(json!({"ip_id": ip, "replace": true})),
        ),
        (
            Method::GET,
            format!("/api/v1/warmup/quota?tenant={tenant}"),
            None,
        ),
    ];
    for (method, path, body) in attempts {
        let reply = app
            .call(method.clone(), &path, Some(&other_key), body)
            .await;
        assert_eq!(
            (reply.status, error_code(&reply).as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path}"
        );
    }
    assert_eq!(
        app.get("/api/v1/ips", &other_key).await.body["items"],
        json!([])
    );
    let plans = app.get("/api/v1/warmup/plans", &other_key).await;
    assert_eq!(plans.body["items"], json!([]));

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/ips/{ip}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/warmup/plans", &key).await.body["items"],
        json!([]),
        "its plan went with it"
    );
    let audit = app
        .get("/api/v1/audit/logs?resource_type=ip", &app.admin)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in ["ip.create", "ip.update", "ip.delete"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    app.finish().await;
}

#[tokio::test]
async fn the_state_machine_with_history_and_illegal_moves() {
    let app = TestApp::spawn().await;
    let (_, key, ip) = setup(&app).await;
    for to in ["active", "retiring", "resting", "warming", "active"] {
        let reply = transition(&app, &key, &ip, to).await;
        assert_eq!(
            (reply.status, reply.body["state"].as_str()),
            (StatusCode::OK, Some(to)),
            "{}",
            reply.body
        );
    }
    let illegal = transition(&app, &key, &ip, "resting").await;
    assert_eq!(
        (illegal.status, error_code(&illegal).as_str()),
        (StatusCode::CONFLICT, "illegal_transition")
    );
    assert_eq!(
        illegal.body["error"]["details"]["allowed"],
        json!(["retiring", "quarantined", "blacklisted"])
    );
    assert!(
        illegal.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed: retiring, quarantined, blacklisted")
    );
    let unknown = transition(&app, &key, &ip, "standby").await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to"))
    );

    let history = app
        .get(&format!("/api/v1/ips/{ip}/transitions"), &key)
        .await;
    let moves: Vec<(String, String)> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_owned(),
                t["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(moves.len(), 5);
    assert_eq!(moves[0], ("warming".to_owned(), "active".to_owned()));
    assert_eq!(moves[4], ("warming".to_owned(), "active".to_owned()));
    let first = &history.body["items"][0];
    assert_eq!(
        (
            first["reason"].as_str(),
            first["actor_type"].as_str(),
            first["actor_label"].as_str()
        ),
        (Some("test: to active"), Some("api_key"), Some("infra"))
    );
    assert!(first["at"].is_string());

    // Blacklisted (standby) from a sending state; the alert is raised once per cause.
    assert_eq!(
        transition(&app, &key, &ip, "blacklisted").await.status,
        StatusCode::OK
    );
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert_eq!(alerts.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(alerts.body["items"][0]["severity"], "critical");
    assert!(
        alerts.body["items"][0]["title"]
            .as_str()
            .unwrap()
            .contains("192.0.2.10")
    );
    assert_eq!(
        transition(&app, &key, &ip, "active").await.status,
        StatusCode::OK
    );
    assert_eq!(
        transition(&app, &key, &ip, "blacklisted").await.status,
        StatusCode::OK
    );
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert_eq!(
        alerts.body["items"].as_array().unwrap().len(),
        1,
        "the repeat was merged"
    );
    assert_eq!(alerts.body["items"][0]["occurrences"], 2);
    app.finish().await;
}

#[tokio::test]
async fn warmup_quota_counters_and_daily_advancement() {
    let app = TestApp::spawn().await;
    let (tenant, key, ip) = setup(&app).await;
    let plans = app.get("/api/v1/warmup/plans", &key).await;
    let plan = &plans.body["items"][0];
    assert_eq!(
        (
            plan["current_day"].as_i64(),
            plan["daily_quota"].as_i64(),
            plan["total_days"].as_i64()
        ),
        (Some(1), Some(100), Some(42))
    );
    let plan_id = plan["id"].as_str().unwrap().to_owned();

    let sent = app
        .post(
            &format!("/api/v1/ips/{ip}/traffic"),
            &key,
            json!({"sent": 60}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(
        (
            sent.body["quota"]["sent_today"].as_i64(),
            sent.body["quota"]["remaining"].as_i64()
        ),
        (Some(60), Some(40))
    );
    let quota = app
        .get("/api/v1/warmup/quota?tenant=brand-a", &app.admin)
        .await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
    assert_eq!(
        (
            quota.body["items"][0]["daily_quota"].as_i64(),
            quota.body["items"][0]["remaining"].as_i64()
        ),
        (Some(100), Some(40))
    );
    let own = app.get("/api/v1/warmup/quota", &key).await;
    assert_eq!(
        own.body, quota.body,
        "a tenant's key reads its own quota without naming it"
    );
    // An admin who names no tenant reads every tenant's IPs: this one's among them.
    let everyone = app.get("/api/v1/warmup/quota", &app.admin).await;
    assert_eq!(everyone.status, StatusCode::OK, "{}", everyone.body);
    assert!(
        everyone.body["items"]
            .as_array()
            .unwrap()
            .contains(&quota.body["items"][0]),
        "{}",
        everyone.body
    );
    let negative = app
        .post(
            &format!("/api/v1/ips/{ip}/traffic"),
            &key,
            json!({"sent": -5}),
        )
        .await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Midnight UTC: the scheduler enqueues the advancement, a worker runs it, once per day.
    let next_midnight = (epoch_day(app.clock.now_ms()) + 1) * DAY_MS;
    app.clock
        .advance_ms(next_midnight - app.clock.now_ms() + 1_000);
    ee_app::schedule::tick(&app.db, app.clock.now_ms())
        .await
        .unwrap();
    assert!(app.run_jobs().await >= 1);
    let plan = app
        .get(&format!("/api/v1/warmup/plans/{plan_id}"), &key)
        .await;
    assert_eq!(
        (
            plan.body["current_day"].as_i64(),
            plan.body["sent_today"].as_i64()
        ),
        (Some(2), Some(0))
    );
    // Day by day, planned against sent: yesterday's 60 of 100, today nothing yet.
    let days = app
        .get(&format!("/api/v1/warmup/plans/{plan_id}/days"), &key)
        .await;
    assert_eq!(days.status, StatusCode::OK, "{}", days.body);
    let days = days.body["items"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{days:?}");
    assert_eq!(
        (days[0]["planned"].as_i64(), days[0]["sent"].as_i64()),
        (Some(100), Some(60))
    );
    assert_eq!(
        (days[1]["planned"].as_i64(), days[1]["sent"].as_i64()),
        (plan.body["schedule"][1].as_i64(), Some(0))
    );
    assert_eq!(
        days[1]["date"].as_str().unwrap(),
        &ee_core::timefmt::date_of(app.clock.now_ms())
    );
    let again = ee_app::infra::advance_warmups(&app.db, app.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(
        (again.advanced, again.skipped),
        (0, 1),
        "a second run the same day does nothing"
    );

    // A paused plan gives no quota and does not advance.
    let paused = app
        .post(
            &format!("/api/v1/warmup/plans/{plan_id}/pause"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(paused.body["status"], "paused");
    let quota = app.get("/api/v1/warmup/quota", &key).await;
    assert_eq!(quota.body["items"][0]["remaining"], 0);
    assert_eq!(
        app.post(
            &format!("/api/v1/warmup/plans/{plan_id}/pause"),
            &key,
            json!({})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    app.post(
        &format!("/api/v1/warmup/plans/{plan_id}/resume"),
        &key,
        json!({}),
    )
    .await;

    // A custom schedule replaces the plan; at its end the IP becomes ACTIVE.
    let custom = app
        .post(
            "/api/v1/warmup/plans",
            &key,
            json!({"ip_id": ip, "schedule": [10, 20]}),
        )
        .await;
    assert_eq!(
        custom.status,
        StatusCode::CONFLICT,
        "a running plan is not replaced silently"
    );
    let custom = app
        .post(
            "/api/v1/warmup/plans",
            &key,
            json!({"ip_id": ip, "schedule": [10, 20], "replace": true}),
        )
        .await;
    assert_eq!(
        (custom.status, custom.body["daily_quota"].as_i64()),
        (StatusCode::CREATED, Some(10))
    );
    let bad = app
        .post(
            "/api/v1/warmup/plans",
            &key,
            json!({"ip_id": ip, "schedule": [10, 0], "replace": true}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("schedule"))
    );
    for _ in 0..2 {
        app.clock.advance_ms(DAY_MS);
        ee_app::infra::advance_warmups(&app.db, app.clock.now_ms())
            .await
            .unwrap();
    }
    let ip_now = app.get(&format!("/api/v1/ips/{ip}"), &key).await;
    assert_eq!(ip_now.body["state"], "active");
    let quota = app
        .get(&format!("/api/v1/warmup/quota?tenant={tenant}"), &key)
        .await;
    assert!(
        quota.body["items"][0]["daily_quota"].is_null(),
        "an ACTIVE IP has no warm-up limit"
    );
    let done = app.get("/api/v1/warmup/plans?status=completed", &key).await;
    assert_eq!(done.body["items"].as_array().unwrap().len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn bounces_quarantine_and_the_cool_down_releases_at_a_lower_step() {
    let app = TestApp::spawn().await;
    let (_, key, ip) = setup(&app).await;
    // Move the plan to day 10, as if it had been warming for a while.
    for _ in 0..9 {
        app.clock.advance_ms(DAY_MS);
        ee_app::infra::advance_warmups(&app.db, app.clock.now_ms())
            .await
            .unwrap();
    }
    let fine = app
        .post(
            &format!("/api/v1/ips/{ip}/traffic"),
            &key,
            json!({"sent": 200, "bounced": 10}),
        )
        .await;
    assert_eq!(
        fine.body["ip"]["state"], "warming",
        "exactly 5 % is within the threshold"
    );
    let bad = app
        .post(
            &format!("/api/v1/ips/{ip}/traffic"),
            &key,
            json!({"bounced": 1}),
        )
        .await;
    assert_eq!(bad.body["ip"]["state"], "quarantined", "{}", bad.body);
    assert!(
        bad.body["ip"]["state_reason"]
            .as_str()
            .unwrap()
            .starts_with("bounce rate 5.50 %")
    );
    assert_eq!(bad.body["quota"]["remaining"], 0);
    let history = app
        .get(&format!("/api/v1/ips/{ip}/transitions"), &key)
        .await;
    let last = history.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["actor_type"].as_str(), last["to"].as_str()),
        (Some("system"), Some("quarantined"))
    );
    // The audit log holds both changes of that request, each by its own actor: the
    // traffic by the key, the quarantine by the safety rule, from the same request.
    let audit = app
        .get(&format!("/api/v1/audit/logs?resource_id={ip}"), &app.admin)
        .await;
    let items = audit.body["items"].as_array().unwrap();
    let quarantine = items
        .iter()
        .find(|e| e["action"] == "ip.transition" && e["after"]["state"] == "quarantined")
        .unwrap_or_else(|| panic!("the quarantine in {}", audit.body));
    assert_eq!(quarantine["actor_type"], "system");
    assert_eq!(quarantine["actor_label"], "warm-up safety check");
    let traffic = items
        .iter()
        .find(|e| e["action"] == "ip.traffic" && e["request_id"] == quarantine["request_id"])
        .unwrap_or_else(|| panic!("the traffic of the same request in {}", audit.body));
    assert_eq!(traffic["actor_type"], "api_key");
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert!(
        alerts.body["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("bounce rate")
    );

    // Not yet: the cool-down (72 h) is not over.
    app.clock.advance_ms(DAY_MS);
    assert_eq!(
        ee_app::infra::release_quarantined(&app.db, &app.services.infra, app.clock.now_ms())
            .await
            .unwrap(),
        0
    );
    app.clock.advance_ms(2 * DAY_MS);
    ee_app::schedule::trigger(
        &app.db,
        ee_app::schedule::find(ee_app::schedule::QUARANTINE).unwrap(),
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    app.run_jobs().await;
    let released = app.get(&format!("/api/v1/ips/{ip}"), &key).await;
    assert_eq!(released.body["state"], "warming");
    let plan = app
        .get(
            &format!(
                "/api/v1/warmup/plans/{}",
                released.body["warmup_plan_id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(
        (
            plan.body["current_day"].as_i64(),
            plan.body["daily_quota"].as_i64()
        ),
        (Some(3), Some(100)),
        "a week back from day 10"
    );
    // Complaints quarantine too: 2 in 1 000 > 0.1 % (the window still holds the 211 above).
    let complaints = app
        .post(
            &format!("/api/v1/ips/{ip}/traffic"),
            &key,
            json!({"sent": 1000, "complained": 2}),
        )
        .await;
    assert_eq!(complaints.body["ip"]["state"], "quarantined");
    assert!(
        complaints.body["ip"]["state_reason"]
            .as_str()
            .unwrap()
            .starts_with("complaint rate")
    );
    app.finish().await;
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, HeaderMap, String)>>>);

async fn fake_alert_receivers() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/bot{token}/sendMessage",
            axum::routing::post(
                |State(r): State<Received>,
                 Path(token): Path<String>,
                 headers: HeaderMap,
                 body: String| async move {
                    r.0.lock()
                        .unwrap()
                        .push((format!("telegram:{token}"), headers, body));
                    axum::Json(json!({"ok": true, "result": {"message_id": 1}}))
                },
            ),
        )
        .route(
            "/hook",
            axum::routing::post(
                |State(r): State<Received>, headers: HeaderMap, body: String| async move {
                    r.0.lock().unwrap().push(("webhook".into(), headers, body));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

#[tokio::test]
async fn alerts_reach_telegram_and_a_signed_webhook_once_per_cause() {
    let (base, received) = fake_alert_receivers().await;
    let channels = AlertChannels::new(
        Some(Telegram {
            api_base: base.clone(),
            bot_token: "123:secret-token".into(),
            chat_id: "-100200".into(),
        }),
        Some(Webhook {
            url: format!("{base}/hook"),
            secret: "hook-secret".into(),
        }),
    );
    let app = TestApp::builder().alerts(channels).spawn().await;
    let (_, key, ip) = setup(&app).await;
    transition(&app, &key, &ip, "blacklisted").await;
    assert!(
        app.run_jobs().await >= 3,
        "deliver, then one send per channel"
    );
    {
        let got = received.0.lock().unwrap();
        assert_eq!(
            got.len(),
            2,
            "{:?}",
            got.iter().map(|r| &r.0).collect::<Vec<_>>()
        );
        let telegram = got.iter().find(|r| r.0.starts_with("telegram")).unwrap();
        assert_eq!(telegram.0, "telegram:123:secret-token");
        let body: Value = serde_json::from_str(&telegram.2).unwrap();
        assert_eq!(body["chat_id"], "-100200");
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .contains("192.0.2.10 is blacklisted"),
            "{body}"
        );
        let hook = got.iter().find(|r| r.0 == "webhook").unwrap();
        let timestamp: i64 = hook.1["x-ee-timestamp"].to_str().unwrap().parse().unwrap();
        let signature = hook.1["x-ee-signature"].to_str().unwrap();
        assert!(
            (timestamp - app.clock.now_ms() / 1000).abs() <= 300,
            "a fresh timestamp"
        );
        assert_eq!(
            signature,
            common::signatures::timestamped(b"hook-secret", timestamp, hook.2.as_bytes()),
            "the webhook is signed"
        );
        let payload: Value = serde_json::from_str(&hook.2).unwrap();
        assert_eq!(payload["alert"]["severity"], "critical");
    }
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert!(alerts.body["items"][0]["notified_at"].is_string());
    // The same cause again: merged, nothing more sent.
    transition(&app, &key, &ip, "active").await;
    transition(&app, &key, &ip, "blacklisted").await;
    app.run_jobs().await;
    assert_eq!(received.0.lock().unwrap().len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn scheduled_jobs_listed_triggered_and_measured() {
    let app = TestApp::spawn().await;
    let (_, key, _ip) = setup(&app).await;
    let jobs = app.get("/api/v1/jobs", &app.admin).await;
    assert_eq!(jobs.status, StatusCode::OK);
    let names: Vec<&str> = jobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), ee_app::schedule::SCHEDULE.len());
    assert!(names.contains(&"scheduled.pmta_status"));
    let warmup = jobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "scheduled.warmup_advance")
        .unwrap();
    assert_eq!(warmup["schedule"], "daily at 00:00 UTC");
    assert!(warmup["next_run"].as_str().unwrap().ends_with("T00:00:00Z"));
    assert_eq!(
        app.get("/api/v1/jobs", &key).await.status,
        StatusCode::FORBIDDEN
    );

    let triggered = app
        .call(
            Method::POST,
            "/api/v1/jobs/scheduled.metrics/run",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(triggered.status, StatusCode::ACCEPTED, "{}", triggered.body);
    assert_eq!(
        app.call(
            Method::POST,
            "/api/v1/jobs/nope/run",
            Some(&app.admin),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    app.run_jobs().await;
    let jobs = app.get("/api/v1/jobs", &app.admin).await;
    let metrics_job = jobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "scheduled.metrics")
        .unwrap();
    assert_eq!(metrics_job["last_run"]["state"], "done");
    assert_eq!(
        metrics_job["last_run"]["result"]["ips"][0]["ip"],
        "192.0.2.10"
    );

    let text = &app.metrics().await;
    assert!(
        text.contains(r#"ee_ips{tenant="#) && text.contains(r#"state="warming"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ee_ip_daily_quota{ip="192.0.2.10""#),
        "{text}"
    );
    assert!(
        text.contains(r#"ee_scheduled_job_last_run_ok{job="scheduled.metrics"} 1"#),
        "{text}"
    );

    // With no IP mapped to a MailWizz delivery server, the quota sync pushes nothing.
    app.call(
        Method::POST,
        "/api/v1/jobs/scheduled.quota_sync/run",
        Some(&app.admin),
        None,
    )
    .await;
    app.run_jobs().await;
    let jobs = app.get("/api/v1/jobs", &app.admin).await;
    let sync = jobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "scheduled.quota_sync")
        .unwrap();
    assert_eq!(sync["last_run"]["result"]["synced"], 0);
    assert_eq!(sync["last_run"]["result"]["results"], json!([]));
    let dead = app.get("/api/v1/jobs/queue?state=dead", &app.admin).await;
    assert_eq!(dead.body["items"], json!([]));

    // A week on, housekeeping removes the finished runs.
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'done'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    app.clock.advance_ms(8 * DAY_MS);
    app.call(
        Method::POST,
        "/api/v1/jobs/scheduled.housekeeping/run",
        Some(&app.admin),
        None,
    )
    .await;
    app.run_jobs().await;
    let jobs = app.get("/api/v1/jobs", &app.admin).await;
    let housekeeping = jobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "scheduled.housekeeping")
        .unwrap();
    assert_eq!(
        housekeeping["last_run"]["result"]["jobs_removed"].as_i64(),
        Some(before)
    );
    app.finish().await;
}

#[tokio::test]
async fn monthly_rotation_retires_the_busiest_and_brings_rested_ips_back() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand-a").await;
    let (_, key) = app.api_key(&tenant, "rotation").await;
    let mut ids = Vec::new();
    for (n, sent) in [(1, 5_000), (2, 40_000), (3, 12_000), (4, 800), (5, 2_000)] {
        let ip = app
            .post(
                "/api/v1/ips",
                &key,
                json!({"ip": format!("198.51.100.{n}"), "pool": "bulk", "state": "active"}),
            )
            .await;
        let id = ip.body["id"].as_str().unwrap().to_owned();
        app.post(
            &format!("/api/v1/ips/{id}/traffic"),
            &key,
            json!({"sent": sent}),
        )
        .await;
        ids.push(id);
    }
    let resting = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "198.51.100.9", "pool": "bulk", "state": "resting"}),
        )
        .await;
    let resting_id = resting.body["id"].as_str().unwrap().to_owned();
    let policy = app
        .call(
            Method::PUT,
            "/api/v1/pools/bulk",
            Some(&key),
            Some(json!({"rotation": {"retire_fraction": 0.4, "rest_days": 20}})),
        )
        .await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.body);
    assert_eq!(
        (
            policy.body["rotation"]["min_active"].as_i64(),
            policy.body["rotation"]["drain_hours"].as_i64()
        ),
        (Some(1), Some(24))
    );
    let bad = app
        .call(
            Method::PUT,
            "/api/v1/pools/bulk",
            Some(&key),
            Some(json!({"rotation": {"retire_fraction": 2.0}})),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rotation"))
    );

    // (Less than the 30-day session of the test's admin login.)
    app.clock.advance_ms(21 * DAY_MS);
    let run = app
        .call(
            Method::POST,
            "/api/v1/jobs/scheduled.rotation/run",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(run.status, StatusCode::ACCEPTED);
    app.run_jobs().await;
    let state_of = |body: &Value, id: &str| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ip| ip["id"] == id)
            .unwrap()["state"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let all = app.get("/api/v1/ips?pool=bulk", &key).await;
    // 40 % of 5 rounds up to 2: the two busiest (…2 and …3) retire.
    let states: Vec<String> = ids.iter().map(|id| state_of(&all.body, id)).collect();
    assert_eq!(
        states,
        ["active", "retiring", "retiring", "active", "active"]
    );
    assert_eq!(
        state_of(&all.body, &resting_id),
        "warming",
        "rested 21 days of 20: back through warm-up"
    );

    // A day later the retiring IPs have drained and rest.
    app.clock.advance_ms(DAY_MS);
    app.call(
        Method::POST,
        "/api/v1/jobs/scheduled.warmup_advance/run",
        Some(&app.admin),
        None,
    )
    .await;
    app.run_jobs().await;
    let all = app.get("/api/v1/ips?pool=bulk", &key).await;
    assert_eq!(state_of(&all.body, &ids[1]), "resting");
    assert_eq!(state_of(&all.body, &ids[2]), "resting");
    let history = app
        .get(&format!("/api/v1/ips/{}/transitions", ids[1]), &key)
        .await;
    let reasons: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "monthly rotation: most used in its pool",
            "drained after retirement"
        ]
    );
    app.finish().await;
}
