//! The security defects of the safety issue, each reproduced through the real API:
//! request forgery through tenant-named hosts, forged tracking tokens, login guessing,
//! the metrics endpoint, two credentials at once, and the unsubscribe page's framing.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Options, TestApp, error_code};
use ee_core::outbound::OutboundPolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An internal HTTP service on loopback, as a metadata endpoint or an admin port would
/// be: it records every path and query it is asked for and answers with a secret.
struct Internal {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

const SECRET: &str = "INTERNAL-SECRET-7f3a";

async fn internal_service(status: StatusCode) -> Internal {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = |State((seen, status)): State<(Arc<Mutex<Vec<String>>>, StatusCode)>,
                  request: Request| async move {
        seen.lock().unwrap().push(request.uri().to_string());
        let body = if status.is_success() {
            json!({"status": "success", "data": {"opens_count": "3", "secret": SECRET,
                   "campaign_status": SECRET}})
        } else {
            json!({"status": "error", "error": SECRET})
        };
        (status, axum::Json(body)).into_response()
    };
    let app = Router::new()
        .fallback(record)
        .with_state((seen.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Internal {
        base: format!("http://{addr}"),
        seen,
    }
}

fn public_only() -> Options {
    Options {
        outbound: Arc::new(OutboundPolicy::public_only()),
        ..Default::default()
    }
}

#[tokio::test]
async fn tenant_named_hosts_cannot_reach_internal_addresses() {
    let internal = internal_service(StatusCode::OK).await;
    let app = TestApp::builder().options(public_only()).spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;

    // Refused when saved, with the field named.
    for url in [
        format!("{}/api", internal.base),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]:8080/api".to_owned(),
        "http://localhost/api".to_owned(),
        "http://10.0.0.8/api".to_owned(),
        "http://2130706433/api".to_owned(),
    ] {
        let r = app
            .post(
                "/api/v1/mailwizz/instances",
                &key,
                json!({"name": "mw", "api_url": url, "api_key": "k"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], "api_url", "{}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("EE_OUTBOUND_ALLOW")
        );
    }
    for host in [
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "::1",
        "192.168.1.10",
    ] {
        let r = app
            .post(
                "/api/v1/relays",
                &key,
                json!({"name": "r", "host": host, "port": 25, "tls": "none"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{host}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], "host");
    }
    let public = app
        .post(
            "/api/v1/mailwizz/instances",
            &key,
            json!({"name": "mw", "api_url": "https://news.example.com/api", "api_key": "k"}),
        )
        .await;
    assert_eq!(public.status, StatusCode::CREATED, "{}", public.body);

    // Checked again when used: an instance saved before the rule (or under a wider
    // policy) never reaches the internal address.
    let sealed = app
        .services
        .delivery
        .sealer
        .as_ref()
        .unwrap()
        .seal(ee_app::delivery::mailwizz::KEY_PURPOSE, b"k");
    let mut conn = app.db.pool().acquire().await.unwrap();
    let old = ee_store::mailwizz::insert(
        &mut conn,
        &tenant,
        &ee_store::mailwizz::NewInstance {
            name: "old",
            api_url: &format!("{}/api", internal.base),
            api_key_sealed: &sealed,
            default_list_uid: None,
            is_primary: false,
        },
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    drop(conn);
    let stats = app
        .get(
            &format!("/api/v1/mailwizz/instances/{}/campaigns/c1/stats", old.id),
            &key,
        )
        .await;
    assert_eq!(
        stats.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stats.body
    );
    assert_eq!(stats.body["error"]["field"], "api_url");
    assert!(internal.seen.lock().unwrap().is_empty());
    app.finish().await;
}

#[tokio::test]
async fn path_segments_are_encoded_and_upstream_bodies_never_relayed() {
    let internal = internal_service(StatusCode::OK).await;
    // Loopback allowed, as an operator running MailWizz beside us would.
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let instance = app
        .post(
            "/api/v1/mailwizz/instances",
            &key,
            json!({"name": "mw", "api_url": format!("{}/api", internal.base), "api_key": "k"}),
        )
        .await;
    assert_eq!(instance.status, StatusCode::CREATED, "{}", instance.body);
    let id = instance.body["id"].as_str().unwrap();
    let stats = app
        .get(
            &format!("/api/v1/mailwizz/instances/{id}/campaigns/..%2F..%2Fany%3Fx%3D1/stats"),
            &key,
        )
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    // Only MailWizz's figures come back, as numbers; nothing else the peer said.
    assert_eq!(stats.body["stats"]["opens_count"], 3);
    assert!(!stats.body.to_string().contains(SECRET), "{}", stats.body);
    let seen = internal.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["/api/campaigns/..%2F..%2Fany%3Fx%3D1/stats"],
        "the uid stays one segment of the campaigns path"
    );

    // An error answer's text goes to the log, not to the caller.
    let failing = internal_service(StatusCode::UNPROCESSABLE_ENTITY).await;
    let bad = app
        .post(
            "/api/v1/mailwizz/instances",
            &key,
            json!({"name": "mw2", "api_url": format!("{}/api", failing.base), "api_key": "k"}),
        )
        .await;
    let bad_id = bad.body["id"].as_str().unwrap();
    let refused = app
        .get(
            &format!("/api/v1/mailwizz/instances/{bad_id}/campaigns/c1/stats"),
            &key,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert!(
        !refused.body.to_string().contains(SECRET),
        "{}",
        refused.body
    );
    app.finish().await;
}

#[tokio::test]
async fn a_relay_is_checked_again_when_delivering() {
    let smtp = ee_mail::testing::TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.relay_mode(&key, "brand", smtp.addr.port()).await;
    app.signing_domain(&key).await;
    let sent = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "someone@example.test", "subject": "Hi", "text": "Hello",
                   "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    // The operator has since narrowed the policy: the engine refuses the address.
    let mut services = app.services.clone();
    services.outbound = Arc::new(OutboundPolicy::public_only());
    ee_jobs::delivery::Engine::new(services)
        .run_until_idle()
        .await
        .unwrap();
    let id = sent.body["id"].as_str().unwrap();
    let message = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(message.body["state"], "failed", "{}", message.body);
    let reason = message.body["state_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("loopback"), "{}", message.body);
    assert!(smtp.received().is_empty());
    app.finish().await;
}

/// Queues one message (to a French-speaking contact) and returns its id.
async fn queued_message(app: &TestApp, key: &str) -> String {
    app.signing_domain(key).await;
    let source = app
        .post(
            "/api/v1/data-sources",
            key,
            json!({"slug": "api", "name": "API", "type": "api"}),
        )
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    let contact = app
        .post(
            "/api/v2/contacts/ingest",
            key,
            json!({"email": "marie@example.test", "first_name": "Marie", "language": "fr",
                   "source": "api"}),
        )
        .await;
    assert_eq!(contact.status, StatusCode::OK, "{}", contact.body);
    let sent = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": "marie@example.test", "subject": "Hi", "text": "Hello",
                   "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    sent.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tracking_tokens_need_their_whole_tag() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let id = queued_message(&app, &key).await;
    // Every one-byte tag (what a truncated check accepted): none opens the page.
    for byte in 0..=255u8 {
        let tag = URL_SAFE_NO_PAD.encode([byte]);
        let reply = app
            .call(Method::GET, &format!("/u/u.{id}.0.{tag}"), None, None)
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "tag {tag} accepted");
    }
    for path in [format!("/t/o/o.{id}.0.AA"), format!("/t/c/c.{id}.0.AA")] {
        let reply = app.call(Method::GET, &path, None, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The whole tag opens them: the routes are there, and only the truncated tags failed.
    let key = &app.services.delivery.tracking_key;
    let unsubscribe = ee_core::tracking::sign(key, ee_core::tracking::Kind::Unsubscribe, &id, 0);
    let reply = app
        .call(Method::GET, &format!("/u/{unsubscribe}"), None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "the whole unsubscribe token");
    let open = ee_core::tracking::sign(key, ee_core::tracking::Kind::Open, &id, 0);
    let reply = app
        .call(Method::GET, &format!("/t/o/{open}"), None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "the whole open token");
    app.finish().await;
}

#[tokio::test]
async fn the_unsubscribe_page_speaks_the_contacts_language_and_cannot_be_framed() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let id = queued_message(&app, &key).await;
    let token = ee_core::tracking::sign(
        &app.services.delivery.tracking_key,
        ee_core::tracking::Kind::Unsubscribe,
        &id,
        0,
    );
    let url = format!("{}/u/{token}", app.base);
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("lang=\"fr\"") && html.contains("Me désinscrire"),
        "{html}"
    );
    assert!(html.contains("marie@example.test"));

    // Twice: one suppression, one event on the message and on the contact.
    for _ in 0..2 {
        let done = app
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::OK);
        assert!(done.text().await.unwrap().contains("Vous êtes désinscrit"));
    }
    let message = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    let unsubscribed = message.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "unsubscribed")
        .count();
    assert_eq!(unsubscribed, 1, "{}", message.body);
    let contact_id = message.body["contact_id"].as_str().unwrap();
    let events = app
        .get(&format!("/api/v2/contacts/{contact_id}/events"), &key)
        .await;
    let count = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "UNSUBSCRIBED")
        .count();
    assert_eq!(count, 1, "{}", events.body);

    // A tampered link gets a page, not JSON, in the browser's language.
    let tampered = app
        .client
        .get(format!("{}/u/{}", app.base, token.replace(".0.", ".1.")))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::NOT_FOUND);
    assert!(
        tampered.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = tampered.text().await.unwrap();
    assert!(
        text.contains("This unsubscribe link is not valid"),
        "{text}"
    );
    assert!(text.contains("lien de désinscription"), "{text}");
    app.finish().await;
}

#[tokio::test]
async fn failed_logins_lock_the_account_and_the_client_alike() {
    let app = TestApp::spawn().await;
    let wrong = json!({"email": common::ADMIN_EMAIL, "password": "not-the-password"});
    let right = json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD});
    let login =
        |body: &Value| app.call(Method::POST, "/api/v1/auth/login", None, Some(body.clone()));
    let free = ee_core::login_throttle::ACCOUNT.free_failures;
    for _ in 0..=free {
        assert_eq!(login(&wrong).await.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused for now, with a wait to respect.
    let locked = login(&right).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert_eq!(error_code(&locked), "rate_limited");
    let wait: i64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let account_message = locked.body["error"]["message"].clone();

    // Audited and alerted.
    let audit = app
        .get("/api/v1/audit/logs?action=auth.login_locked", &app.admin)
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
    let alerts = app.get("/api/v1/alerts", &app.admin).await;
    assert!(
        alerts.body.to_string().contains("Logins locked"),
        "{}",
        alerts.body
    );

    // After the lock, the right password works and clears the account's count.
    app.clock.advance_ms(wait * 1000 + 1);
    assert_eq!(login(&right).await.status, StatusCode::OK);
    assert_eq!(login(&wrong).await.status, StatusCode::UNAUTHORIZED);

    // One client guessing at many accounts is stopped too, and hears the same thing.
    let client_free = ee_core::login_throttle::CLIENT.free_failures;
    for i in 0..client_free {
        let guess = json!({"email": format!("nobody{i}@example.test"), "password": "x"});
        let r = login(&guess).await;
        assert!(
            matches!(
                r.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{}",
            r.body
        );
    }
    let stopped = login(&json!({"email": "someone-else@example.test", "password": "x"})).await;
    assert_eq!(
        stopped.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        stopped.body
    );
    assert_eq!(stopped.body["error"]["message"], account_message);
    app.finish().await;
}

#[tokio::test]
async fn metrics_need_their_token_and_keep_labels_bounded() {
    let app = TestApp::spawn().await;
    let anonymous = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let wrong = app
        .call(Method::GET, "/metrics", Some("wrong-token"), None)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // An admin's access token is not the metrics token either.
    let admin = app
        .call(Method::GET, "/metrics", Some(&app.admin), None)
        .await;
    assert_eq!(admin.status, StatusCode::UNAUTHORIZED);
    for method in ["ZZRAND1", "ZZRAND2", "BREW"] {
        app.client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/health", app.base),
            )
            .send()
            .await
            .unwrap();
    }
    let text = app.metrics().await;
    assert!(!text.contains("ZZRAND"), "{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
    app.finish().await;
}

#[tokio::test]
async fn two_credentials_in_one_request_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    for bearer in ["not-a-valid-token", app.admin.as_str()] {
        let reply = app
            .client
            .get(format!("{}/api/v1/auth/me", app.base))
            .header("x-api-key", &key)
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
        let body: Value = reply.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not both")
        );
    }
    assert_eq!(
        app.get("/api/v1/auth/me", &key).await.status,
        StatusCode::OK
    );
    app.finish().await;
}

/// A recipient domain whose MX points at this machine (where a local MTA may relay for
/// loopback clients) gets nothing under the default policy.
#[tokio::test]
async fn direct_delivery_does_not_follow_an_mx_to_internal_addresses() {
    use ee_dns::testing::{Rec, Zone};
    let smtp = ee_mail::testing::TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut zone = Zone::new();
    zone.add("evil.test", Rec::Mx(10, "mx.evil.test".into()))
        .add("mx.evil.test", Rec::A("127.0.0.1".parse().unwrap()));
    let app = TestApp::builder()
        .options(Options {
            zone,
            mx_port: smtp.addr.port(),
            ..public_only()
        })
        .spawn()
        .await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    let sent = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "victim@evil.test", "subject": "Hi", "text": "x",
                   "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    app.deliver().await;
    let id = sent.body["id"].as_str().unwrap();
    let message = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(message.body["state"], "failed", "{}", message.body);
    assert!(
        message.body["state_reason"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{}",
        message.body
    );
    assert!(smtp.received().is_empty());
    app.finish().await;
}
