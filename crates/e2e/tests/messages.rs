//! The message pipeline end to end: templates, the transactional API, delivery through a
//! real SMTP server on loopback (relay and direct), tracking and unsubscribe. Received
//! messages are read with Python's `email` package and their DKIM signatures checked with
//! dkimpy, both independent of our code.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::mail_check::{Published, inspect, published_dkim};
use common::{Options, TestApp, error_code};
use ee_dns::testing::{Rec, Zone};
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn zone() -> Zone {
    let mut zone = Zone::new();
    zone.add("example.test", Rec::Mx(10, "mx.example.test".into()))
        .add("mx.example.test", Rec::A(Ipv4Addr::LOCALHOST))
        .add("nomail.test", Rec::Mx(0, ".".into()));
    zone
}

async fn setup_tenant(app: &TestApp, algorithm: &str) -> (String, String, Published) {
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "sender").await;
    let domain = app
        .post(
            "/api/v1/domains",
            &key,
            json!({"domain": "brand.test", "dkim_selector": "s1", "dkim_algorithm": algorithm}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.body);
    let dkim = published_dkim(app, &key, "brand.test", "s1").await;
    (tenant, key, dkim)
}

const HTML: &str = "<html><body><p>Bonjour [FNAME|ami],</p>\
    <p><a href=\"https://brand.test/profile?id=1&amp;x=2\">Votre profil</a></p>\
    <p><a href=\"[UNSUBSCRIBE_URL]\">Se désinscrire</a></p></body></html>";

fn path_of(url: &str) -> &str {
    url.strip_prefix("http://ee.test").unwrap()
}

fn find_url<'a>(html: &'a str, prefix: &str) -> &'a str {
    let start = html.find(prefix).unwrap();
    let end = html[start..].find('"').unwrap() + start;
    &html[start..end]
}

#[tokio::test]
async fn relay_delivery_with_template_dkim_tracking_and_unsubscribe() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    smtp.require_auth("pmta-user", "pmta-pass");
    smtp.enable_starttls();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (_tenant, key, dkim_txt) = setup_tenant(&app, "rsa").await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "46.62.168.55", "hostname": "mta1.brand.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let relay = app
        .post(
            "/api/v1/relays",
            &key,
            json!({"name": "pmta", "host": "127.0.0.1", "port": smtp.addr.port(),
                   "username": "pmta-user", "password": "pmta-pass", "tls": "starttls"}),
        )
        .await;
    assert_eq!(relay.status, StatusCode::CREATED, "{}", relay.body);
    assert_eq!(relay.body["has_password"], true);
    assert!(relay.body.get("password").is_none());
    let settings = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"mode": "relay", "relay": "pmta"})),
        )
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.body);

    // Seed 004's shape, plus a sender.
    let template = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "welcome_v2_fr", "subject": "Bienvenue sur [COMPANY]", "html": HTML,
                   "language": "FR", "tenant": "brand", "from_email": "hello@brand.test", "from_name": "Brand"}),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.body);

    let body = json!({"to": "Jean.Dupont@Example.test", "template": "welcome_v2_fr",
                      "variables": {"FNAME": "Jean <3", "COMPANY": "Brand & Co"}});
    let send = |idempotency: &'static str| {
        let app = &app;
        let key = key.clone();
        let body = body.clone();
        async move {
            app.client
                .post(format!("{}/api/v2/messages", app.base))
                .header("x-api-key", key)
                .header("idempotency-key", idempotency)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send("signup-42").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["state"], "queued", "{first}");
    let again = send("signup-42").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["x-idempotent-replay"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    assert_eq!(app.deliver().await, 1);
    // The same key after delivery still sends nothing more.
    assert_eq!(send("signup-42").await.status(), StatusCode::OK);
    assert_eq!(app.deliver().await, 0);

    let id = first["id"].as_str().unwrap();
    let state = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(state.body["state"], "sent", "{}", state.body);
    assert_eq!(state.body["route"], "relay:pmta");
    assert_eq!(state.body["ip_id"], ip.body["id"]);
    assert_eq!(state.body["last_code"], 250);
    let events: Vec<&str> = state.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, vec!["queued", "sent"]);

    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].auth_user.as_deref(), Some("pmta-user"));
    assert!(received[0].tls, "STARTTLS before AUTH");
    assert_eq!(received[0].rcpt_to, "jean.dupont@example.test");
    assert_eq!(received[0].mail_from, "hello@brand.test");
    assert_eq!(received[0].helo, "mta1.brand.test");
    let mail = inspect(&received[0].data, &dkim_txt);
    assert_eq!(mail["dkim"], true, "DKIM must verify: {mail}");
    // The key is found only where the signature points: published under another
    // selector, the same key does not verify it.
    let elsewhere = Published {
        name: "s9._domainkey.brand.test".into(),
        ..dkim_txt.clone()
    };
    assert_eq!(inspect(&received[0].data, &elsewhere)["dkim"], false);
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(mail["subject"], "Bienvenue sur Brand & Co");
    assert_eq!(mail["from"], "Brand <hello@brand.test>");
    assert_eq!(
        mail["message_id"],
        state.body["message_id"].as_str().unwrap()
    );
    assert_eq!(mail["virtual_mta"], "vmta-46-62-168-55");
    // The tenant's internal name does not go out.
    assert_eq!(mail["tenant"], "None");
    assert_eq!(mail["list_unsubscribe_post"], "List-Unsubscribe=One-Click");
    let html = mail["html"].as_str().unwrap();
    // Recipient values escaped in HTML, the author's link rewritten, the pixel added.
    assert!(html.contains("Bonjour Jean &lt;3,"), "{html}");
    assert!(!html.contains("https://brand.test/profile"), "{html}");
    let click = find_url(html, "http://ee.test/t/c/");
    let pixel = find_url(html, "http://ee.test/t/o/");
    let unsubscribe = find_url(html, "http://ee.test/u/");
    assert_eq!(
        mail["list_unsubscribe"].as_str().unwrap(),
        format!("<{unsubscribe}>")
    );
    let text = mail["text"].as_str().unwrap();
    assert!(text.contains("Bonjour Jean <3,"), "{text}");
    assert!(
        text.contains("Votre profil (https://brand.test/profile?id=1&x=2)"),
        "{text}"
    );

    // The click leads to the original link, and only with a valid token (a person's
    // browser, a minute after sending).
    app.clock.advance_ms(60_000);
    let no_redirects = reqwest::Client::builder()
        .user_agent(common::BROWSER)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let clicked = no_redirects
        .get(format!("{}{}", app.base, path_of(click)))
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), StatusCode::FOUND);
    assert_eq!(
        clicked.headers()["location"],
        "https://brand.test/profile?id=1&x=2"
    );
    let forged = format!("{}{}", app.base, path_of(click).replace(".0.", ".1."));
    assert_eq!(
        no_redirects.get(forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let opened = app
        .client
        .get(format!("{}{}", app.base, path_of(pixel)))
        .header("user-agent", common::BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(opened.headers()["content-type"], "image/gif");

    // A GET shows a page; the RFC 8058 one-click POST unsubscribes.
    let page = app
        .client
        .get(format!("{}{}", app.base, path_of(unsubscribe)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("jean.dupont@example.test")
    );
    let one_click = app
        .client
        .post(format!("{}{}", app.base, path_of(unsubscribe)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), StatusCode::OK);
    let state = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    let events: Vec<&str> = state.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec!["queued", "sent", "clicked", "opened", "unsubscribed"]
    );
    let suppressed = app
        .get("/api/v2/suppressions?reason=unsubscribed", &key)
        .await;
    assert_eq!(suppressed.body["items"].as_array().unwrap().len(), 1);

    // The unsubscribed address gets nothing more.
    let later = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "jean.dupont@example.test", "subject": "Hi", "text": "Hello",
                   "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    assert_eq!(later.body["state"], "suppressed");
    assert_eq!(app.deliver().await, 0);
    assert_eq!(smtp.received().len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn templates_are_checked_versioned_previewed_and_selected() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "t").await;
    let bad = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "x", "subject": "Hi [FNAME", "html": "<p>[ZIP] [PROFIL_URL]</p>", "language": "fr"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&bad), "validation_failed");
    let message = bad.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("[PROFIL_URL]") && message.contains("[ZIP]") && message.contains("[FNAME"),
        "{message}"
    );
    let wrong_language = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "x", "subject": "Hi", "html": "<p>x</p>", "language": "it"}),
        )
        .await;
    assert_eq!(wrong_language.body["error"]["field"], "language");
    // PostgreSQL's text cannot hold NUL: a clear 422, never a 500. SQLite stores it.
    let nul = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "nul\u{0}name", "subject": "Hi", "html": "<p>x</p>", "language": "fr"}),
        )
        .await;
    match app.db.backend() {
        ee_store::Backend::Postgres => {
            assert_eq!(nul.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", nul.body);
            assert!(
                nul.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("NUL character"),
                "{}",
                nul.body
            );
        }
        ee_store::Backend::Sqlite => assert_eq!(nul.status, StatusCode::CREATED, "{}", nul.body),
    }

    let mut ids = std::collections::HashMap::new();
    for (name, language, category, html) in [
        (
            "fr-blogger",
            "fr",
            Some("blogger"),
            "<p>Salut blogueur [FNAME]</p>",
        ),
        ("fr-general", "fr", None, "<p>Bonjour [FNAME]</p>"),
        (
            "en-general",
            "en",
            Some("general"),
            "<p>Hello [FNAME|there]</p>",
        ),
        ("ar-general", "ar", None, "<p>مرحبا [FNAME]</p>"),
        (
            "zh-general",
            "zh",
            None,
            "<p>你好 [FNAME] [PROFILE_URL]</p>",
        ),
    ] {
        let mut body = json!({"name": name, "subject": "S", "html": html, "language": language});
        if let Some(c) = category {
            body["category"] = json!(c);
        }
        if name == "zh-general" {
            body["variables"] = json!({"PROFILE_URL": "https://brand.test/me"});
        }
        let created = app.post("/api/v2/templates", &key, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.insert(name, created.body["id"].as_str().unwrap().to_owned());
    }
    for (language, category, expected, level) in [
        ("fr", "blogger", "fr-blogger", "category_and_language"),
        ("fr", "media", "fr-general", "language_general"),
        ("de", "blogger", "en-general", "english_general"),
    ] {
        let chosen = app
            .get(
                &format!("/api/v2/templates/select?language={language}&category={category}"),
                &key,
            )
            .await;
        assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.body);
        assert_eq!(chosen.body["template"]["name"], expected);
        assert_eq!(chosen.body["level"], level);
    }
    // A tenant with only an English `welcome`: German and Spanish contacts of a welcome
    // campaign get it when sent, and `select` (the preview's source) says the same.
    let other = app.tenant("welcome-only").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    let created = app
        .post(
            "/api/v2/templates",
            &other_key,
            json!({"name": "welcome_en", "subject": "Welcome", "html": "<p>Welcome</p>", "language": "en", "category": "welcome"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for language in ["de", "es"] {
        let chosen = app
            .get(
                &format!("/api/v2/templates/select?language={language}&category=welcome"),
                &other_key,
            )
            .await;
        assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.body);
        assert_eq!(chosen.body["template"]["name"], "welcome_en");
        assert_eq!(chosen.body["level"], "english_category");
    }
    let none = app
        .get(
            "/api/v2/templates/select?language=de&category=news",
            &other_key,
        )
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);

    // Preview with a real contact, and with samples; Arabic right to left.
    let ingest = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "ali@example.test", "first_name": "Ali"}),
        )
        .await;
    assert!(ingest.status.is_success(), "{}", ingest.body);
    let preview = |name: &str, body: Value| {
        let path = format!("/api/v2/templates/{}/preview", ids[name]);
        let (app, key) = (&app, &key);
        async move { app.post(&path, key, body).await }
    };
    let ar = preview("ar-general", json!({"email": "ali@example.test"})).await;
    assert_eq!(ar.status, StatusCode::OK, "{}", ar.body);
    assert_eq!(ar.body["html"], "<div dir=\"rtl\"><p>مرحبا Ali</p></div>");
    assert_eq!(ar.body["rtl"], true);
    assert_eq!(ar.body["text"], "مرحبا Ali");
    let en = preview("en-general", json!({})).await;
    assert_eq!(en.body["html"], "<p>Hello Jane</p>", "a sample recipient");
    let fallbacks = preview("en-general", json!({"samples": false})).await;
    assert_eq!(fallbacks.body["html"], "<p>Hello there</p>", "the fallback");
    let fr = preview("fr-general", json!({})).await;
    assert_eq!(fr.body["html"], "<p>Bonjour Marie</p>", "named in French");
    let zh = preview("zh-general", json!({"variables": {"FNAME": "李"}})).await;
    assert_eq!(zh.body["html"], "<p>你好 李 https://brand.test/me</p>");

    // Versions are kept.
    let updated = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v2/templates/{}", ids["fr-general"]),
            Some(&key),
            Some(json!({"subject": "Nouveau [FNAME]"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["version"], 2);
    let versions = app
        .get(
            &format!("/api/v2/templates/{}/versions", ids["fr-general"]),
            &key,
        )
        .await;
    let subjects: Vec<&str> = versions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["template"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["Nouveau [FNAME]", "S"]);
    let broken = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v2/templates/{}", ids["fr-general"]),
            Some(&key),
            Some(json!({"html": "<p>[UNKNOWN_THING]</p>"})),
        )
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Another tenant sees none of it.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "o").await;
    let hidden = app
        .get(
            &format!("/api/v2/templates/{}", ids["fr-general"]),
            &other_key,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    app.finish().await;
}

async fn message(app: &TestApp, key: &str, to: &str) -> String {
    let sent = app
        .post(
            "/api/v2/messages",
            key,
            json!({"to": to, "subject": "Hello [FNAME|friend]", "html": "<p>Hi</p>",
                   "from_email": "news@brand.test", "track_opens": false, "track_clicks": false}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    sent.body["id"].as_str().unwrap().to_owned()
}

async fn state_of(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/api/v2/messages/{id}"), key).await.body
}

#[tokio::test]
async fn direct_delivery_spreads_over_ips_within_warmup_quotas() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    smtp.enable_starttls();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (tenant, key, dkim_txt) = setup_tenant(&app, "ed25519").await;
    // Three warming IPs on loopback addresses, quotas 2, 3 and 4 today.
    let mut ips = Vec::new();
    for (n, quota) in [(2, 2), (3, 3), (4, 4)] {
        let ip = app
            .post(
                "/api/v1/ips",
                &key,
                json!({"ip": format!("127.0.0.{n}"), "hostname": format!("mta{n}.brand.test"), "state": "warming"}),
            )
            .await;
        assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
        let id = ip.body["id"].as_str().unwrap().to_owned();
        let plan = app
            .post(
                "/api/v1/warmup/plans",
                &key,
                json!({"ip_id": id, "schedule": [quota, 100], "replace": true}),
            )
            .await;
        assert_eq!(plan.status, StatusCode::CREATED, "{}", plan.body);
        ips.push(id);
    }
    // A quarantined IP gets nothing.
    let resting = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "127.0.0.5", "hostname": "mta5.brand.test", "state": "resting"}),
        )
        .await;
    assert_eq!(resting.status, StatusCode::CREATED);

    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(message(&app, &key, &format!("user{i}@example.test")).await);
    }
    app.deliver().await;
    let received = smtp.received();
    assert_eq!(received.len(), 9, "2 + 3 + 4 fit in today's quotas");
    let mut by_source = std::collections::BTreeMap::new();
    for r in &received {
        *by_source.entry(r.peer.ip().to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        by_source,
        [("127.0.0.2", 2), ("127.0.0.3", 3), ("127.0.0.4", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    );
    assert!(
        received.iter().all(|r| r.tls),
        "opportunistic STARTTLS taken"
    );
    // Each sent event records the session: its version and cipher, and that the test
    // peer's self-signed certificate did not verify.
    for id in &ids {
        let s = state_of(&app, &key, id).await;
        if s["state"] != "sent" {
            continue;
        }
        let sent = s["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "sent")
            .unwrap_or_else(|| panic!("{s}"));
        let tls = sent["tls"].as_str().unwrap_or_else(|| panic!("{s}"));
        assert!(
            tls.starts_with("TLSv1_") && tls.contains("_GCM_") | tls.contains("CHACHA20"),
            "{tls}"
        );
        assert!(tls.ends_with(" unverified"), "{tls}");
    }
    // The reports count them: all nine over TLS, none verified.
    let today = ee_core::timefmt::date_of(app.clock.now_ms());
    let report = app
        .get(
            &format!("/api/v1/reports?tenant_id={tenant}&from={today}&to={today}&by=provider"),
            &key,
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let totals = &report.body["totals"];
    assert_eq!(
        (
            totals["sent"].as_i64(),
            totals["tls"].as_i64(),
            totals["tls_verified"].as_i64()
        ),
        (Some(9), Some(9), Some(0)),
        "{totals}"
    );
    assert_eq!(totals["rates"]["tls"], 1.0);
    for r in &received {
        let n = r
            .peer
            .ip()
            .to_string()
            .rsplit('.')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(r.helo, format!("mta{n}.brand.test"));
    }
    let mail = inspect(&received[0].data, &dkim_txt);
    assert_eq!(mail["dkim"], true, "Ed25519 DKIM must verify: {mail}");
    assert_eq!(mail["subject"], "Hello friend");
    assert_eq!(
        mail["virtual_mta"], "None",
        "no X-Virtual-MTA in direct mode"
    );
    let mut waiting = 0;
    for id in &ids {
        let s = state_of(&app, &key, id).await;
        match s["state"].as_str().unwrap() {
            "sent" => {}
            "deferred" => {
                waiting += 1;
                assert!(s["state_reason"].as_str().unwrap().contains("quota"), "{s}");
                assert_eq!(s["attempts"], 0, "waiting for quota is not an attempt");
            }
            other => panic!("{other}: {s}"),
        }
    }
    assert_eq!(waiting, 3);
    let quota = app.get("/api/v1/warmup/quota?tenant=brand", &key).await;
    let sent_today: i64 = quota.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["sent_today"].as_i64().unwrap())
        .sum();
    assert_eq!(sent_today, 9);

    // The next UTC day brings new quotas (after the daily warm-up advance, 100 each).
    app.clock.advance_ms(86_400_000);
    let ran = app
        .post(
            "/api/v1/jobs/scheduled.warmup_advance/run",
            &app.admin,
            json!({}),
        )
        .await;
    assert!(ran.status.is_success(), "{}", ran.body);
    app.run_jobs().await;
    app.deliver().await;
    assert_eq!(smtp.received().len(), 12);
    app.finish().await;
}

#[tokio::test]
async fn replies_decide_retries_bounces_and_suppression() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    smtp.script(
        "later@example.test",
        vec![
            Behaviour::RefuseData(451, "4.3.0 Try again later".into()),
            Behaviour::Accept,
        ],
    );
    smtp.script(
        "gone@example.test",
        vec![Behaviour::RefuseRcpt(550, "5.1.1 No such user".into())],
    );
    smtp.script(
        "spam@example.test",
        vec![Behaviour::RefuseData(554, "5.7.1 Message refused".into())],
    );
    smtp.script("drop@example.test", vec![Behaviour::DropAfterData]);
    smtp.script("slow@example.test", vec![Behaviour::HangAfterData]);
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (_tenant, key, _) = setup_tenant(&app, "rsa").await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "127.0.0.9", "hostname": "mta9.brand.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED);
    let later = message(&app, &key, "later@example.test").await;
    let gone = message(&app, &key, "gone@example.test").await;
    let spam = message(&app, &key, "spam@example.test").await;
    let dropped = message(&app, &key, "drop@example.test").await;
    let slow = message(&app, &key, "slow@example.test").await;
    let nomail = message(&app, &key, "someone@nomail.test").await;
    app.deliver().await;

    let s = state_of(&app, &key, &later).await;
    assert_eq!(
        (s["state"].as_str(), s["last_code"].as_i64()),
        (Some("deferred"), Some(451)),
        "{s}"
    );
    assert!(
        s["last_reply"]
            .as_str()
            .unwrap()
            .contains("Try again later")
    );
    let queued_at = ee_core::timefmt::parse_rfc3339(s["queued_at"].as_str().unwrap()).unwrap();
    let next = ee_core::timefmt::parse_rfc3339(s["next_attempt_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        (next - queued_at) / 60_000,
        5,
        "first retry after 5 minutes"
    );
    let s = state_of(&app, &key, &gone).await;
    assert_eq!(
        (s["state"].as_str(), s["last_code"].as_i64()),
        (Some("bounced"), Some(550)),
        "{s}"
    );
    let s = state_of(&app, &key, &spam).await;
    assert_eq!(s["state"], "bounced", "{s}");
    for id in [&dropped, &slow] {
        let s = state_of(&app, &key, id).await;
        assert_eq!(s["state"], "deferred", "{s}");
        assert!(
            s["state_reason"]
                .as_str()
                .unwrap()
                .contains("connection lost"),
            "{s}"
        );
    }
    let s = state_of(&app, &key, &nomail).await;
    assert_eq!(s["state"], "bounced", "{s}");
    assert_eq!(s["last_code"], 556, "{s}");
    assert!(s["last_reply"].as_str().unwrap().contains("null MX"), "{s}");

    // The unknown user and the domain without mail are suppressed; a policy refusal is
    // not about the address.
    let suppressed = app.get("/api/v2/suppressions?reason=bounced", &key).await;
    let mut emails: Vec<&str> = suppressed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    emails.sort_unstable();
    assert_eq!(emails, vec!["gone@example.test", "someone@nomail.test"]);
    // Bounces count against the IP's health.
    let today = ee_core::timefmt::epoch_day(app.clock.now_ms());
    let mut conn = app.db.pool().acquire().await.unwrap();
    let traffic = ee_store::ips::traffic(&mut conn, ip.body["id"].as_str().unwrap(), today, today)
        .await
        .unwrap();
    drop(conn);
    assert_eq!((traffic.sent, traffic.bounced), (5, 2), "{traffic:?}");

    // Nothing is due before the retry time; after it the 451 goes through.
    assert_eq!(app.deliver().await, 0);
    app.clock.advance_ms(5 * 60_000 + 1000);
    app.deliver().await;
    let s = state_of(&app, &key, &later).await;
    assert_eq!(s["state"], "sent", "{s}");
    assert_eq!(s["attempts"], 2);
    let events: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, vec!["queued", "deferred", "sent"]);

    // Past the maximum age a message expires instead of being tried again.
    app.clock.advance_ms(8 * 86_400_000);
    app.deliver().await;
    let s = state_of(&app, &key, &dropped).await;
    assert_eq!(s["state"], "expired", "{s}");
    app.finish().await;
}

#[tokio::test]
async fn provider_limits_cap_and_suppression_before_sending() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            limits: ee_core::delivery::DestinationLimits::parse("other=3/1").unwrap(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (tenant, key, _) = setup_tenant(&app, "rsa").await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "127.0.0.6", "hostname": "mta6.brand.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(message(&app, &key, &format!("p{i}@example.test")).await);
    }
    // Suppressed after queueing: checked again before sending.
    let late = message(&app, &key, "late@example.test").await;
    let added = app
        .post(
            "/api/v2/suppressions",
            &key,
            json!({"email": "late@example.test", "reason": "manual"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    app.deliver().await;
    assert_eq!(state_of(&app, &key, &late).await["state"], "suppressed");
    // Three an hour towards this provider from this IP, over one reused connection.
    assert_eq!(smtp.received().len(), 3);
    assert_eq!(smtp.connections(), 1);
    let mut deferred = 0;
    for id in &ids {
        let s = state_of(&app, &key, id).await;
        if s["state"] == "deferred" {
            deferred += 1;
            let next =
                ee_core::timefmt::parse_rfc3339(s["next_attempt_at"].as_str().unwrap()).unwrap();
            assert_eq!(next % 3_600_000, 0, "waits for the next hour: {s}");
        }
    }
    assert_eq!(deferred, 2);
    app.clock.advance_ms(3_600_000);
    app.deliver().await;
    assert_eq!(smtp.received().len(), 5);

    // The frequency cap: campaign mail beyond 2 a day to one address is held back;
    // transactional mail is not capped.
    let put = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(json!({"frequency_cap": {"max": 2, "hours": 24}})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut states = Vec::new();
    use ee_core::delivery::MessageKind;
    for kind in [
        MessageKind::Campaign,
        MessageKind::Campaign,
        MessageKind::Campaign,
        MessageKind::Transactional,
    ] {
        let (m, _) = ee_app::queue::messages::queue(
            &app.services,
            ee_app::queue::messages::SendRequest {
                tenant_id: tenant.clone(),
                kind,
                to_email: "reader@example.test".into(),
                subject: Some("News".into()),
                text: Some("News".into()),
                from_email: Some("news@brand.test".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        states.push(m.state.as_str());
    }
    assert_eq!(states, vec!["queued", "queued", "suppressed", "queued"]);
    app.finish().await;
}

#[tokio::test]
async fn nine_languages_arrive_intact() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (_tenant, key, dkim_txt) = setup_tenant(&app, "rsa").await;
    let samples = [
        (
            "fr",
            "Bienvenue, [FNAME] ! Déjà prêt ?",
            "Ça y est : votre compte est créé.",
        ),
        ("en", "Welcome, [FNAME]!", "Your account is ready."),
        (
            "es",
            "¡Bienvenido, [FNAME]!",
            "Tu cuenta está lista, señor.",
        ),
        (
            "de",
            "Willkommen, [FNAME]!",
            "Ihr Konto ist fertig – Grüße aus Köln.",
        ),
        (
            "pt",
            "Bem-vindo, [FNAME]!",
            "Sua conta está pronta, ação concluída.",
        ),
        (
            "ru",
            "Добро пожаловать, [FNAME]!",
            "Ваша учётная запись готова.",
        ),
        ("zh", "欢迎，[FNAME]！", "您的账户已准备就绪。"),
        ("hi", "स्वागत है, [FNAME]!", "आपका खाता तैयार है।"),
        ("ar", "مرحبا، [FNAME]!", "حسابك جاهز."),
    ];
    for (language, subject, body) in samples {
        let created = app
            .post(
                "/api/v2/templates",
                &key,
                json!({"name": format!("welcome-{language}"), "language": language, "subject": subject,
                       "html": format!("<p>{body}</p>"), "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let sent = app
            .post(
                "/api/v2/messages",
                &key,
                json!({"to": format!("{language}@example.test"), "template": format!("welcome-{language}"),
                       "variables": {"FNAME": "Zoë"}, "track_opens": false, "track_clicks": false}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    }
    app.deliver().await;
    let received = smtp.received();
    assert_eq!(received.len(), 9);
    for (language, subject, body) in samples {
        let got = received
            .iter()
            .find(|r| r.rcpt_to == format!("{language}@example.test"))
            .unwrap();
        // 7-bit on the wire: every non-ASCII byte is encoded.
        assert!(got.data.is_ascii(), "{language}: raw 8-bit data");
        let mail = inspect(&got.data, &dkim_txt);
        assert_eq!(mail["dkim"], true, "{language}: {mail}");
        assert_eq!(
            mail["subject"],
            subject.replace("[FNAME]", "Zoë"),
            "{language}"
        );
        assert_eq!(mail["html_charset"], "utf-8");
        let html = mail["html"].as_str().unwrap();
        assert!(html.contains(body), "{language}: {html}");
        assert_eq!(html.contains("dir=\"rtl\""), language == "ar", "{language}");
        assert_eq!(mail["text"].as_str().unwrap().trim(), body, "{language}");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_rotated_dkim_key_signs_within_a_minute() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (_tenant, key, s1_txt) = setup_tenant(&app, "rsa").await;
    // One engine for the whole test, as on a running node: its signers are cached.
    let engine = ee_jobs::delivery::Engine::new(app.services.clone());
    message(&app, &key, "first@example.test").await;
    engine.run_until_idle().await.unwrap();
    let domains = app.get("/api/v1/domains", &key).await;
    let domain_id = domains.body["items"][0]["id"].as_str().unwrap().to_owned();
    let rotated = app
        .post(
            &format!("/api/v1/domains/{domain_id}/dkim/rotate"),
            &key,
            json!({"selector": "s2", "algorithm": "ed25519"}),
        )
        .await;
    assert!(rotated.status.is_success(), "{}", rotated.body);
    let records = app
        .get(&format!("/api/v1/domains/{domain_id}/dns-records"), &key)
        .await;
    assert!(records.status.is_success(), "{}", records.body);
    let s2_txt = published_dkim(&app, &key, "brand.test", "s2").await;
    app.clock.advance_ms(61_000);
    message(&app, &key, "second@example.test").await;
    engine.run_until_idle().await.unwrap();
    let received = smtp.received();
    assert_eq!(received.len(), 2);
    let header = |data: &[u8]| {
        String::from_utf8_lossy(data)
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(header(&received[0].data).contains("s=s1"));
    assert_eq!(inspect(&received[0].data, &s1_txt)["dkim"], true);
    assert!(
        header(&received[1].data).contains("s=s2"),
        "the new key signs"
    );
    assert_eq!(inspect(&received[1].data, &s2_txt)["dkim"], true);
    app.finish().await;
}
