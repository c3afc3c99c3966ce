//! The admin UI's HTTP side, on both databases: the cookie session and its CSRF token,
//! the security headers of the UI's files, the template preview document, and the API
//! additions the UI reads (the queue's backlog, the contact search).
#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

struct Session {
    cookie: String,
    csrf: String,
}

async fn open(app: &TestApp, forwarded_https: bool) -> (Session, String) {
    let mut request = app
        .client
        .post(format!("{}/api/v1/auth/session", app.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}));
    if forwarded_https {
        request = request.header("x-forwarded-proto", "https");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["me"]["role"], "admin");
    let cookie = set.split(';').next().unwrap().to_owned();
    (
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        },
        set,
    )
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    session: &Session,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header(COOKIE, &session.cookie);
    if let Some(token) = csrf {
        request = request.header("x-csrf-token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn slugs(app: &TestApp) -> Vec<String> {
    let list = app.get("/api/v1/tenants?limit=500", &app.admin).await;
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_cookie_session_needs_its_csrf_token_for_every_change_and_ends_at_logout() {
    let app = TestApp::spawn().await;
    let (session, set) = open(&app, false).await;
    for part in ["ee_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let (_, over_tls) = open(&app, true).await;
    assert!(over_tls.contains("; Secure"), "{over_tls}");

    // Reading needs no token; the session answers its own token again.
    let (status, me) = send(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/session",
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["csrf_token"], session.csrf.as_str());
    // A change without the token, or with another session's, is refused; with it, made.
    let tenant = json!({"name": "Cookie", "slug": "cookie"});
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/tenants",
        &session,
        None,
        Some(tenant.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (other, _) = open(&app, false).await;
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/tenants",
        &session,
        Some(&other.csrf),
        Some(tenant.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!slugs(&app).await.contains(&"cookie".to_owned()));
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/tenants",
        &session,
        Some(&session.csrf),
        Some(tenant),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The audit log names the user behind the cookie.
    let audit = app
        .get("/api/v1/audit/logs?action=tenant.create", &app.admin)
        .await;
    assert_eq!(
        audit.body["items"][0]["actor_label"], ADMIN_EMAIL,
        "{}",
        audit.body
    );
    assert!(slugs(&app).await.contains(&"cookie".to_owned()));

    // Logout needs the token too, clears the cookie, and the cookie opens nothing after.
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/auth/session",
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = app
        .client
        .delete(format!("{}/api/v1/auth/session", app.base))
        .header(COOKIE, &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = send(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/me",
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A wrong password opens nothing.
    let wrong = app
        .client
        .post(format!("{}/api/v1/auth/session", app.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": "wrong-password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    app.finish().await;
}

#[tokio::test]
async fn the_ui_files_come_with_a_strict_policy_and_the_preview_with_its_own() {
    let app = TestApp::spawn().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/admin/");

    let page = app
        .client
        .get(format!("{}/admin/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("/admin/js/main.js"));
    // Cached by ETag.
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(format!("{}/admin/", app.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let script = app
        .client
        .get(format!("{}/admin/js/main.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let missing = app
        .client
        .get(format!("{}/admin/js/nothing.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let escape = app
        .client
        .get(format!("{}/admin/..%2f..%2fCargo.toml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), StatusCode::NOT_FOUND);

    // ReDoc: the page names the document; the bundle is ours, not a CDN's.
    let redoc = app
        .client
        .get(format!("{}/redoc", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(redoc.status(), StatusCode::OK);
    let policy = redoc.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("http"),
        "{policy}"
    );
    let page = redoc.text().await.unwrap();
    assert!(
        page.contains("spec-url=\"/openapi.json\"")
            && page.contains("src=\"/redoc/redoc.standalone.js\""),
        "{page}"
    );
    let bundle = app
        .client
        .get(format!("{}/redoc/redoc.standalone.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    let bundle = bundle.bytes().await.unwrap();
    assert!(bundle.len() > 500_000);
    // Nothing it would load comes from elsewhere (Redocly's logo was a CDN's).
    let text = String::from_utf8_lossy(&bundle);
    assert!(!text.contains("cdn.redoc.ly"), "a CDN address is left");
    assert!(text.contains("data:image/svg+xml,"));

    // The preview: posted as a form with the session's token, answered as a document with
    // a policy of its own (inline styles, no scripts, sandboxed, framed by us only).
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let template = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "w", "subject": "Hi [FNAME|you]", "html": "<p style=\"color:red\">Hello [FNAME|friend]</p><script>alert(1)</script>", "language": "ar"}),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.body);
    let id = template.body["id"].as_str().unwrap();
    let (session, _) = open(&app, false).await;
    let post = |token: String, html: &'static str| {
        app.client
            .post(format!("{}/admin/preview", app.base))
            .header(COOKIE, &session.cookie)
            .form(&[
                ("id", id.to_owned()),
                ("csrf_token", token),
                ("html", html.to_owned()),
            ])
            .send()
    };
    let forged = post("00".repeat(32), "").await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let shown = post(session.csrf.clone(), "").await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let policy = shown.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("sandbox") && policy.contains("frame-ancestors 'self'"),
        "{policy}"
    );
    assert!(
        !policy.contains("script-src"),
        "no script may run: {policy}"
    );
    let document = shown.text().await.unwrap();
    assert!(document.contains("dir=\"rtl\""), "{document}");
    // Filled for a sample recipient named in the template's language (Arabic).
    assert!(document.contains("Hello فاطمة"), "{document}");
    // A draft is previewed as given, without being saved.
    let draft = post(session.csrf.clone(), "<p>Draft [FNAME|x]</p>")
        .await
        .unwrap();
    assert!(draft.text().await.unwrap().contains("Draft فاطمة"));
    let saved = app.get(&format!("/api/v2/templates/{id}"), &key).await;
    assert_eq!(saved.body["version"], 1);
    // Without a session: refused.
    let anonymous = app
        .client
        .post(format!("{}/admin/preview", app.base))
        .form(&[("id", id), ("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.finish().await;
}

#[tokio::test]
async fn the_backlog_and_the_contact_search_stay_in_their_tenant() {
    let app = TestApp::spawn().await;
    let a = app.tenant("alpha").await;
    let b = app.tenant("beta").await;
    let (_, key_a) = app.api_key(&a, "a").await;
    let (_, key_b) = app.api_key(&b, "b").await;
    app.signing_domain(&key_a).await;
    for i in 0..3 {
        let sent = app
            .post(
                "/api/v2/messages",
                &key_a,
                json!({"to": format!("p{i}@example.test"), "subject": "Hi", "text": "Hello", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    }
    let backlog = app.get("/api/v2/messages/backlog", &key_a).await;
    assert_eq!(backlog.status, StatusCode::OK, "{}", backlog.body);
    assert_eq!(
        backlog.body,
        json!({"queued": 3, "deferred": 0, "sending": 0})
    );
    let other = app.get("/api/v2/messages/backlog", &key_b).await;
    assert_eq!(other.body["queued"], 0);
    let all = app.get("/api/v2/messages/backlog", &app.admin).await;
    assert_eq!(all.body["queued"], 3);
    let named = app
        .get("/api/v2/messages/backlog?tenant_id=beta", &app.admin)
        .await;
    assert_eq!(named.body["queued"], 0);
    let foreign = app
        .get("/api/v2/messages/backlog?tenant_id=alpha", &key_b)
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    for (key, email) in [
        (&key_a, "Jean@Example.test"),
        (&key_a, "marie@other.test"),
        (&key_b, "jean@example.test"),
    ] {
        let r = app
            .post(
                "/api/v2/contacts/ingest",
                key,
                json!({"source": "api", "contacts": [{"email": email}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let emails = |reply: &common::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let exact = app
        .get("/api/v2/contacts?email=JEAN@example.test", &key_a)
        .await;
    assert_eq!(emails(&exact), vec!["jean@example.test"]);
    assert_eq!(exact.body["items"][0]["tenant_id"], a.as_str());
    let domain = app.get("/api/v2/contacts?email=@other.test", &key_a).await;
    assert_eq!(emails(&domain), vec!["marie@other.test"]);
    let none = app
        .get("/api/v2/contacts?email=@nowhere.test", &key_a)
        .await;
    assert_eq!(emails(&none), Vec::<String>::new());
    app.finish().await;
}
