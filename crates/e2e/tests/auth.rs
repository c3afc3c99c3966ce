//! Login, refresh rotation, logout, token validation, roles.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET, TestApp, error_code};
use ee_server::auth::tokens::JwtKeys;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn login_refresh_rotation_and_reuse() {
    let app = TestApp::spawn().await;
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let access = pair["access_token"].as_str().unwrap();
    let me = app.get("/api/v1/auth/me", access).await;
    assert_eq!(
        (me.status, me.body["role"].as_str()),
        (StatusCode::OK, Some("admin"))
    );

    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "not the password"})),
        )
        .await;
    assert_eq!(
        (wrong.status, error_code(&wrong).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "nobody@example.test", "password": "whatever-password"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.body, wrong.body,
        "an unknown e-mail looks like a wrong password"
    );

    let first_refresh = pair["refresh_token"].as_str().unwrap();
    let rotated = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": first_refresh})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let second_refresh = rotated.body["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    let new_access = rotated.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/auth/me", new_access).await.status,
        StatusCode::OK
    );

    // The used token is refused, and its reuse ends the session: the newer tokens die too.
    let reused = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": first_refresh})),
        )
        .await;
    assert_eq!(
        (reused.status, error_code(&reused).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let after = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": second_refresh})),
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/v1/auth/me", new_access).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Other sessions are untouched.
    assert_eq!(
        app.get("/api/v1/auth/me", &app.admin).await.status,
        StatusCode::OK
    );
    app.finish().await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let access = pair["access_token"].as_str().unwrap();
    let out = app
        .call(Method::POST, "/api/v1/auth/logout", Some(access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/auth/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);

    // Logout by refresh token, without an access token.
    let pair = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let out = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": pair["refresh_token"]})),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/auth/me", pair["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/logout", None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}

#[tokio::test]
async fn expired_tampered_foreign_and_missing_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let keys = JwtKeys::new(JWT_SECRET);
    let claims = keys.verify(&app.admin).expect("our own token verifies");
    let now = app.clock.now_ms();

    // Same user and live session, but expired an hour ago.
    let expired = keys.issue(&claims.sub, &claims.sid, now - 7_200_000, 3600);
    // Signed with another key.
    let foreign = JwtKeys::new(b"another-secret-another-secret-another!").issue(
        &claims.sub,
        &claims.sid,
        now,
        900,
    );
    // A claim changed after signing.
    let mut parts: Vec<String> = app.admin.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(base64_decode(&parts[1]))
        .unwrap()
        .replace(&claims.sub, "someone-else");
    parts[1] = base64_encode(payload.as_bytes());
    let tampered = parts.join(".");
    for token in [
        expired.as_str(),
        foreign.as_str(),
        tampered.as_str(),
        "not-a-token",
    ] {
        let reply = app.get("/api/v1/tenants", token).await;
        assert_eq!(
            (reply.status, error_code(&reply).as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{token}"
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    let missing = app.call(Method::GET, "/api/v1/tenants", None, None).await;
    assert_eq!(
        (missing.status, error_code(&missing).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let unknown_key = app.get("/api/v1/tenants", "ee_not-a-real-key").await;
    assert_eq!(unknown_key.status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn admin_only_routes_answer_403_to_tenant_credentials() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand-a").await;
    let user = app.tenant_user(&tenant, "user@brand-a.test").await;
    let (_, key) = app.api_key(&tenant, "scraper").await;
    for credential in [user.as_str(), key.as_str()] {
        let attempts = [
            (
                Method::POST,
                "/api/v1/tenants".to_owned(),
                Some(json!({"name": "X", "slug": "x-brand"})),
            ),
            (
                Method::PATCH,
                format!("/api/v1/tenants/{tenant}"),
                Some(json!({"name": "Mine now"})),
            ),
            (Method::DELETE, format!("/api/v1/tenants/{tenant}"), None),
            (Method::GET, "/api/v1/users".to_owned(), None),
            (
                Method::POST,
                "/api/v1/users".to_owned(),
                Some(json!({"email": "x@y.test", "password": "long-enough-pw", "role": "admin"})),
            ),
            (Method::GET, "/api/v1/audit/logs".to_owned(), None),
        ];
        for (method, path, body) in attempts {
            let reply = app
                .call(method.clone(), &path, Some(credential), body)
                .await;
            assert_eq!(
                (reply.status, error_code(&reply).as_str()),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{method} {path}"
            );
        }
    }
    // What a tenant's user may do: see its tenant.
    let own = app.get(&format!("/api/v1/tenants/{tenant}"), &user).await;
    assert_eq!(own.status, StatusCode::OK);
    app.finish().await;
}

#[tokio::test]
async fn deactivated_users_and_disabled_tenants_lose_access() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand-a").await;
    let user = app.tenant_user(&tenant, "user@brand-a.test").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let users = app
        .get(&format!("/api/v1/users?tenant_id={tenant}"), &app.admin)
        .await;
    let user_id = users.body["items"][0]["id"].as_str().unwrap().to_owned();

    let disabled = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tenants/{tenant}"),
            Some(&app.admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/auth/me", &user).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/auth/me", &key).await.status,
        StatusCode::FORBIDDEN
    );
    app.call(
        Method::PATCH,
        &format!("/api/v1/tenants/{tenant}"),
        Some(&app.admin),
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/auth/me", &user).await.status,
        StatusCode::OK
    );

    let off = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{user_id}"),
            Some(&app.admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(
        app.get("/api/v1/auth/me", &user).await.status,
        StatusCode::UNAUTHORIZED
    );
    let relogin = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "user@brand-a.test", "password": "user-password-1234"})),
        )
        .await;
    assert_eq!(relogin.status, StatusCode::UNAUTHORIZED);

    // The last admin can be neither deactivated nor deleted; nor can one delete oneself.
    let me = app.get("/api/v1/auth/me", &app.admin).await;
    let admin_id = me.body["id"].as_str().unwrap();
    let last = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            Some(&app.admin),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(
        (last.status, error_code(&last).as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let own = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{admin_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    app.finish().await;
}
