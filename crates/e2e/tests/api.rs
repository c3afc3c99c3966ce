//! Tenancy, API keys, rate limits, audit, bad input, and the system endpoints.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn tenants_crud_and_validation() {
    let app = TestApp::spawn().await;
    let created = app
        .post(
            "/api/v1/tenants",
            &app.admin,
            json!({"name": "SOS-Expat", "slug": "sos-expat", "settings": {"mode": "relay"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["settings"], json!({"mode": "relay"}));
    assert_eq!(created.body["is_active"], true);

    let dup = app
        .post(
            "/api/v1/tenants",
            &app.admin,
            json!({"name": "Again", "slug": "sos-expat"}),
        )
        .await;
    assert_eq!(
        (dup.status, error_code(&dup).as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let bad_slug = app
        .post(
            "/api/v1/tenants",
            &app.admin,
            json!({"name": "Bad", "slug": "Not A Slug"}),
        )
        .await;
    assert_eq!(
        (bad_slug.status, bad_slug.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("slug"))
    );
    let bad_settings = app
        .post(
            "/api/v1/tenants",
            &app.admin,
            json!({"name": "Bad", "slug": "bad-one", "settings": [1]}),
        )
        .await;
    assert_eq!(bad_settings.body["error"]["field"], "settings");
    // A known part that does not read as what it is for is refused by name when written,
    // not replaced by defaults each time it is read.
    let bad_delivery = app
        .post(
            "/api/v1/tenants",
            &app.admin,
            json!({"name": "Bad", "slug": "bad-two", "settings": {"delivery": {"mode": "pigeon"}}}),
        )
        .await;
    assert_eq!(bad_delivery.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_delivery.body["error"]["field"], "settings.delivery");
    let bad_probe = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{id}"),
            Some(&app.admin),
            Some(json!({"settings": {"contacts": {"smtp_probe": "yes"}}})),
        )
        .await;
    assert_eq!(bad_probe.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad_probe.body["error"]["field"],
        "settings.contacts.smtp_probe"
    );

    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{id}"),
            Some(&app.admin),
            Some(json!({"name": "SOS Expat"})),
        )
        .await;
    assert_eq!(
        (patched.status, patched.body["name"].as_str()),
        (StatusCode::OK, Some("SOS Expat"))
    );
    assert_eq!(patched.body["slug"], "sos-expat");
    let list = app.get("/api/v1/tenants", &app.admin).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tenants/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/api/v1/tenants/{id}"), &app.admin).await;
    assert_eq!(
        (gone.status, error_code(&gone).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    app.finish().await;
}

#[tokio::test]
async fn another_tenants_resources_answer_404() {
    let app = TestApp::spawn().await;
    let a = app.tenant("brand-a").await;
    let b = app.tenant("brand-b").await;
    let user_a = app.tenant_user(&a, "user@brand-a.test").await;
    let (_, key_a) = app.api_key(&a, "a-key").await;
    let (key_b_id, key_b) = app.api_key(&b, "b-key").await;

    for credential in [user_a.as_str(), key_a.as_str()] {
        let attempts = [
            (Method::GET, format!("/api/v1/tenants/{b}"), None),
            (
                Method::PATCH,
                format!("/api/v1/tenants/{b}"),
                Some(json!({"name": "taken"})),
            ),
            (Method::DELETE, format!("/api/v1/tenants/{b}"), None),
            (Method::DELETE, format!("/api/v1/api-keys/{key_b_id}"), None),
            (
                Method::POST,
                format!("/api/v1/api-keys/{key_b_id}/rotate"),
                None,
            ),
            (
                Method::POST,
                "/api/v1/api-keys".to_owned(),
                Some(json!({"name": "sneaky", "tenant_id": b})),
            ),
        ];
        for (method, path, body) in attempts {
            let reply = app
                .call(method.clone(), &path, Some(credential), body)
                .await;
            assert_eq!(
                (reply.status, error_code(&reply).as_str()),
                (StatusCode::NOT_FOUND, "not_found"),
                "{method} {path}"
            );
        }
        let tenants = app.get("/api/v1/tenants", credential).await;
        let ids: Vec<&str> = tenants.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [a.as_str()]);
        let keys = app.get("/api/v1/api-keys", credential).await;
        assert!(
            keys.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["tenant_id"] == a.as_str()),
            "{}",
            keys.body
        );
    }
    // B's key was not touched by any of this.
    assert_eq!(
        app.get("/api/v1/auth/me", &key_b).await.status,
        StatusCode::OK
    );
    let b_tenant = app.get(&format!("/api/v1/tenants/{b}"), &app.admin).await;
    assert_eq!(b_tenant.body["name"], "BRAND-B");
    // A tenant user creates keys for its own tenant without naming it.
    let own = app
        .post("/api/v1/api-keys", &user_a, json!({"name": "mine"}))
        .await;
    assert_eq!(
        (own.status, own.body["tenant_id"].as_str()),
        (StatusCode::CREATED, Some(a.as_str()))
    );
    app.finish().await;
}

#[tokio::test]
async fn api_keys_shown_once_revoked_expired_and_rotated() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand-a").await;
    let (id, key) = app.api_key(&tenant, "scraper-pro").await;
    assert!(key.starts_with("ee_"));
    let listed = app.get("/api/v1/api-keys", &app.admin).await;
    let text = listed.body.to_string();
    assert!(
        !text.contains(&key) && !text.contains("\"key\""),
        "no secret in lists: {text}"
    );
    assert_eq!(listed.body["items"][0]["status"], "active");
    let me = app.get("/api/v1/auth/me", &key).await;
    assert_eq!(
        (me.body["kind"].as_str(), me.body["tenant_id"].as_str()),
        (Some("api_key"), Some(tenant.as_str()))
    );
    // Bearer works for keys too.
    let bearer = app
        .client
        .get(format!("{}/api/v1/auth/me", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    // Rotation: the new key works, the old one too during the grace period, then not.
    let rotated = app
        .call(
            Method::POST,
            &format!("/api/v1/api-keys/{id}/rotate"),
            Some(&app.admin),
            Some(json!({"grace_secs": 3600})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert!(rotated.body["previous_valid_until"].is_string());
    assert_eq!(
        app.get("/api/v1/auth/me", &new_key).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &key).await.status,
        StatusCode::OK
    );
    app.clock.advance_ms(3_600_001);
    assert_eq!(
        app.get("/api/v1/auth/me", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &new_key).await.status,
        StatusCode::OK
    );

    // Revocation is immediate.
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/auth/me", &new_key).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .call(
            Method::POST,
            &format!("/api/v1/api-keys/{id}/rotate"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Expiry.
    let soon = ee_core::timefmt::to_rfc3339(app.clock.now_ms() + 60_000);
    let expiring = app
        .post(
            "/api/v1/api-keys",
            &app.admin,
            json!({"name": "short", "tenant_id": tenant, "expires_at": soon}),
        )
        .await;
    assert_eq!(expiring.status, StatusCode::CREATED);
    let short_key = expiring.body["key"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/auth/me", short_key).await.status,
        StatusCode::OK
    );
    app.clock.advance_ms(60_000);
    let expired = app.get("/api/v1/auth/me", short_key).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    let past = app
        .post(
            "/api/v1/api-keys",
            &app.admin,
            json!({"name": "past", "tenant_id": tenant, "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (past.status, past.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_at"))
    );
    let no_tenant = app
        .post("/api/v1/api-keys", &app.admin, json!({"name": "orphan"}))
        .await;
    assert_eq!(no_tenant.body["error"]["field"], "tenant_id");
    app.finish().await;
}

#[tokio::test]
async fn rate_limits_per_credential_and_per_ip() {
    let app = TestApp::builder()
        .settings(|s| {
            s.rate_limit_per_minute = 5;
            s.ip_rate_limit_per_minute = 12;
        })
        .spawn()
        .await;
    // The login in spawn used one request of this IP's budget.
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/v1/auth/me", &app.admin).await.status,
            StatusCode::OK
        );
    }
    let limited = app.get("/api/v1/auth/me", &app.admin).await;
    assert_eq!(
        (limited.status, error_code(&limited).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Requests without that credential still have the IP's budget (12: the login and
    // the 5 above used 6; the refused request used none), until it is spent.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            app.call(Method::GET, "/api/v1/auth/me", None, None)
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);
    // Health checks and metrics are not limited.
    assert_eq!(
        app.call(Method::GET, "/health", None, None).await.status,
        StatusCode::OK
    );
    app.finish().await;
}

#[tokio::test]
async fn every_mutation_is_audited_with_redacted_secrets() {
    let app = TestApp::spawn().await;
    let start = ee_core::timefmt::to_rfc3339(app.clock.now_ms());
    let tenant = app.tenant("brand-a").await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/tenants/{tenant}"),
        Some(&app.admin),
        Some(json!({"name": "Renamed"})),
    )
    .await;
    let user = app
        .client
        .post(format!("{}/api/v1/users", app.base))
        .bearer_auth(&app.admin)
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"email": "u@brand-a.test", "password": "user-password-1234", "role": "user", "tenant_id": tenant}))
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), StatusCode::CREATED);
    let user_id = user.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(&app.admin),
            Some(json!({"username": "ops", "password": "another-password-99"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    let removed = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{user_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let (key_id, _key) = app.api_key(&tenant, "k").await;
    app.call(
        Method::POST,
        &format!("/api/v1/api-keys/{key_id}/rotate"),
        Some(&app.admin),
        None,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        Some(&app.admin),
        None,
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/v1/tenants/{tenant}"),
        Some(&app.admin),
        None,
    )
    .await;

    let all = app.get("/api/v1/audit/logs?limit=100", &app.admin).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let items = all.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "user.create",
        "auth.login",
        "tenant.create",
        "tenant.update",
        "api_key.create",
        "api_key.rotate",
        "api_key.revoke",
        "tenant.delete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let text = all.body.to_string();
    assert!(
        !text.contains("user-password-1234") && !text.contains("$argon2"),
        "secrets in the audit log"
    );

    let me = app.get("/api/v1/auth/me", &app.admin).await;
    let admin_id = me.body["id"].as_str().unwrap();
    let update = app
        .get(
            &format!("/api/v1/audit/logs?action=tenant.update&resource_id={tenant}"),
            &app.admin,
        )
        .await;
    let entry = &update.body["items"][0];
    assert_eq!(update.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            entry["before"]["name"].as_str(),
            entry["after"]["name"].as_str()
        ),
        (Some("BRAND-A"), Some("Renamed"))
    );
    assert_eq!(
        (entry["actor_type"].as_str(), entry["actor_id"].as_str()),
        (Some("user"), Some(admin_id))
    );
    assert_eq!(entry["ip_address"], "127.0.0.1");
    assert!(entry["request_id"].is_string());
    let created_user = app
        .get(
            "/api/v1/audit/logs?action=user.create&resource_type=user",
            &app.admin,
        )
        .await;
    let by_request = created_user.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor_type"] == "user")
        .unwrap();
    assert_eq!(by_request["user_agent"], "audit-test/1.0");
    assert!(by_request["before"].is_null());
    assert_eq!(by_request["after"]["email"], "u@brand-a.test");
    let deletion = app
        .get(
            &format!(
                "/api/v1/audit/logs?action=tenant.delete&resource_type=tenant&actor={admin_id}"
            ),
            &app.admin,
        )
        .await;
    let deletion = &deletion.body["items"][0];
    assert!(deletion["after"].is_null());
    assert_eq!(deletion["before"]["slug"], "brand-a");

    // Time range and cursor pagination walk the same entries, newest first, without overlap.
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/audit/logs?limit=3&from={start}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path, &app.admin).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let in_range: Vec<&Value> = items
        .iter()
        .filter(|e| e["created_at"].as_str().unwrap() >= start.as_str())
        .collect();
    assert_eq!(seen.len(), in_range.len());
    let ids: Vec<&str> = seen.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), unique.len());
    let future = app
        .get("/api/v1/audit/logs?from=2999-01-01T00:00:00Z", &app.admin)
        .await;
    assert_eq!(future.body["items"].as_array().unwrap().len(), 0);
    let bad = app
        .get("/api/v1/audit/logs?from=yesterday", &app.admin)
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("from"))
    );
    app.finish().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_json_error() {
    let app = TestApp::builder()
        .settings(|s| s.max_body_bytes = 4096)
        .spawn()
        .await;
    let raw = |body: &'static str| {
        app.client
            .post(format!("{}/api/v1/tenants", app.base))
            .bearer_auth(&app.admin)
            .header("content-type", "application/json")
            .body(body)
    };
    let malformed = raw("{\"name\": \"x\", ").send().await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    let wrong_type = raw("{\"name\": 42, \"slug\": \"abc\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(
        (
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (Some("validation_failed"), Some("name"))
    );

    let missing = raw("{\"name\": \"x\"}").send().await.unwrap();
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["field"], "slug");
    let unknown = raw("{\"name\": \"x\", \"slug\": \"abc\", \"colour\": 1}")
        .send()
        .await
        .unwrap();
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["field"], "colour");

    let huge = json!({"name": "x".repeat(10_000), "slug": "big"});
    let too_large = app.post("/api/v1/tenants", &app.admin, huge).await;
    assert_eq!(
        (too_large.status, error_code(&too_large).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // JSON sent by `curl -d` (form content type), as the seeds' clients do, is accepted.
    let form_typed = app
        .client
        .post(format!("{}/api/v1/tenants", app.base))
        .bearer_auth(&app.admin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"name": "Curl", "slug": "curl-brand"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form_typed.status(), StatusCode::CREATED);

    let no_route = app.get("/api/v1/nothing-here", &app.admin).await;
    assert_eq!(
        (no_route.status, error_code(&no_route).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let wrong_method = app
        .call(Method::PUT, "/api/v1/tenants", Some(&app.admin), None)
        .await;
    assert_eq!(
        (wrong_method.status, error_code(&wrong_method).as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    // A query parameter of the wrong type is named (422), as a body field is.
    let bad_query = app.get("/api/v1/tenants?limit=many", &app.admin).await;
    assert_eq!(
        (bad_query.status, error_code(&bad_query).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    assert_eq!(bad_query.body["error"]["field"], "limit");
    let negative = app.get("/api/v1/tenants?limit=-1", &app.admin).await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(negative.body["error"]["field"], "limit");
    let bad_user = app
        .post(
            "/api/v1/users",
            &app.admin,
            json!({"email": "not-an-email", "password": "short", "role": "root"}),
        )
        .await;
    assert_eq!(bad_user.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad_user.body["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "role"]);
    app.finish().await;
}

#[tokio::test]
async fn health_metrics_openapi_docs_request_ids_and_cors() {
    let app = TestApp::builder()
        .settings(|s| s.cors_origins = vec!["https://admin.example.test".into()])
        .spawn()
        .await;
    let health = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        (
            health.body["status"].as_str(),
            health.body["database"]["reachable"].as_bool()
        ),
        (Some("ok"), Some(true))
    );
    assert_eq!(health.body["version"], env!("CARGO_PKG_VERSION"));
    // The schema version: the database is at the newest this binary knows.
    let latest = health.body["database"]["schema_latest"].as_i64().unwrap();
    assert!(latest >= 17, "{}", health.body);
    assert_eq!(health.body["database"]["schema_version"], latest);
    assert!(health.headers.contains_key("x-request-id"));
    let echoed = app
        .client
        .get(format!("{}/health", app.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");

    app.get("/api/v1/tenants", &app.admin).await;
    app.get("/api/v1/tenants/missing", &app.admin).await;
    let text = &app.metrics().await;
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/v1/tenants",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/tenants/{id}",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains(r#"ee_jobs{state="queued"} 0"#), "{text}");

    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    for path in [
        "/api/v1/auth/login",
        "/api/v1/tenants/{id}",
        "/api/v1/api-keys/{id}/rotate",
        "/api/v1/audit/logs",
        "/health",
    ] {
        assert!(
            doc.body["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(
        doc.body["components"]["securitySchemes"]
            .get("api_key")
            .is_some()
    );
    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI is served"
    );

    let preflight = app
        .client
        .request(Method::OPTIONS, format!("{}/api/v1/tenants", app.base))
        .header("origin", "https://admin.example.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://admin.example.test"
    );
    let foreign = app
        .client
        .get(format!("{}/health", app.base))
        .header("origin", "https://evil.example.test")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
    app.finish().await;
}

/// Every list has one shape, `{items, next_cursor}`, pages by `limit` and `cursor`, and a
/// tenant is named `tenant_id` everywhere (`tenant` accepted, as the seeds' clients send it).
#[tokio::test]
async fn lists_share_one_shape_and_the_tenant_one_name() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand-a").await;
    for (i, field) in ["tenant_id", "tenant", "tenant_id"].iter().enumerate() {
        let mut body = json!({"name": format!("relay-{i}"), "host": "127.0.0.1", "port": 2525});
        body[*field] = json!("brand-a");
        let relay = app.post("/api/v1/relays", &app.admin, body).await;
        assert_eq!(relay.status, StatusCode::CREATED, "{field}: {}", relay.body);
        assert_eq!(relay.body["tenant_id"], tenant.as_str());
    }
    let first = app.get("/api/v1/relays?limit=2", &app.admin).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first.body).len(), 2);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get(
            &format!("/api/v1/relays?limit=2&cursor={cursor}"),
            &app.admin,
        )
        .await;
    assert_eq!(names(&second.body).len(), 1);
    assert!(second.body["next_cursor"].is_null(), "{}", second.body);
    let mut all = names(&first.body);
    all.extend(names(&second.body));
    all.sort();
    assert_eq!(all, ["relay-0", "relay-1", "relay-2"]);

    // Lists read page by page in the database answer the same way.
    app.tenant("brand-b").await;
    let tenants = app.get("/api/v1/tenants?limit=1", &app.admin).await;
    assert_eq!(tenants.body["items"].as_array().unwrap().len(), 1);
    assert!(tenants.body["next_cursor"].is_string(), "{}", tenants.body);
    let alerts = app.get("/api/v1/alerts", &app.admin).await;
    assert!(alerts.body["items"].is_array(), "{}", alerts.body);

    for bad in ["/api/v1/relays?cursor=soon", "/api/v1/relays?cursor=-3"] {
        let reply = app.get(bad, &app.admin).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(reply.body["error"]["field"], "cursor", "{bad}");
    }
    // An admin who names no tenant reads every tenant's IPs.
    let unnamed = app.get("/api/v1/warmup/quota", &app.admin).await;
    assert_eq!(unnamed.status, StatusCode::OK, "{}", unnamed.body);
    assert!(unnamed.body["items"].is_array(), "{}", unnamed.body);
    app.finish().await;
}

/// "The tenant" is `tenant_id` or `tenant` in every body and query: the bodies that took
/// only one spelling take both, and say the same thing with either.
#[tokio::test]
async fn every_body_names_the_tenant_either_way() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    for (path, body) in [
        ("/api/v1/ips", json!({"ip": "192.0.2.41", "tenant": tenant})),
        (
            "/api/v1/ips",
            json!({"ip": "192.0.2.42", "tenant_id": tenant}),
        ),
        (
            "/api/v1/domains",
            json!({"domain": "a.brand.test", "tenant": tenant}),
        ),
        (
            "/api/v1/domains",
            json!({"domain": "b.brand.test", "tenant_id": tenant}),
        ),
        ("/api/v1/api-keys", json!({"name": "one", "tenant": tenant})),
        (
            "/api/v1/api-keys",
            json!({"name": "two", "tenant_id": tenant}),
        ),
        (
            "/api/v1/users",
            json!({"email": "u1@brand.test", "password": "a-long-password-1", "role": "user", "tenant": tenant}),
        ),
        (
            "/api/v1/users",
            json!({"email": "u2@brand.test", "password": "a-long-password-2", "role": "user", "tenant_id": tenant}),
        ),
    ] {
        let r = app.post(path, &app.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{path} {body}: {}", r.body);
        assert_eq!(
            r.body["tenant_id"],
            tenant.as_str(),
            "{path} {body}: {}",
            r.body
        );
    }
    for query in ["tenant", "tenant_id"] {
        let users = app
            .get(&format!("/api/v1/users?{query}={tenant}"), &app.admin)
            .await;
        assert_eq!(users.status, StatusCode::OK, "{query}: {}", users.body);
        assert_eq!(users.body["items"].as_array().unwrap().len(), 2, "{query}");
        let audit = app
            .get(&format!("/api/v1/audit/logs?{query}={tenant}"), &app.admin)
            .await;
        assert_eq!(audit.status, StatusCode::OK, "{query}: {}", audit.body);
        assert!(
            !audit.body["items"].as_array().unwrap().is_empty(),
            "{query}: {}",
            audit.body
        );
    }
    app.finish().await;
}
