//! The admin UI in a real browser (headless Chromium over WebDriver): an operator logs
//! in, creates a tenant, an IP and a domain, imports contacts, builds a segment, writes
//! an Arabic template, sends a campaign to a real SMTP server and watches its figures; a
//! tenant's user sees nothing of another tenant; changes need the CSRF token. Every page
//! is photographed into target/ui-screenshots/.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::browser::Browser;
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Fills the fields of the page's form that holds `[data-field=first]` and submits it.
async fn submit(b: &Browser, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let css = format!("[data-field=\"{name}\"] input, [data-field=\"{name}\"] textarea");
        let is_select = b
            .client
            .execute(
                "return !!document.querySelector(arguments[0]);",
                vec![json!(format!("[data-field=\"{name}\"] select"))],
            )
            .await
            .unwrap();
        if is_select == json!(true) {
            b.select(&format!("[data-field=\"{name}\"] select"), value)
                .await;
        } else {
            b.fill(&css, value).await;
        }
    }
    let first = fields[0].0;
    b.client
        .execute(
            "document.querySelector(`[data-field=\"${arguments[0]}\"]`).closest('form').querySelector('button[type=submit]').click();",
            vec![json!(first)],
        )
        .await
        .unwrap();
}

/// The text of `#greeting` in the preview frame once it reads `want` (or what it read
/// last, after 10 s).
async fn preview_greeting(b: &Browser, want: &str) -> String {
    b.in_frame(
        "const p = document.getElementById('greeting'); return p && p.textContent;",
        |seen| seen == &json!(want),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn hash(b: &Browser) -> String {
    b.client
        .execute("return location.hash;", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits for the page to move to `#<prefix>…` and returns the id after the prefix.
async fn moved_to(b: &Browser, prefix: &str) -> String {
    let script = format!(
        "return location.hash.startsWith({p}) && location.hash.length > {n} && !location.hash.endsWith('/new') ? location.hash : null;",
        p = json!(format!("#{prefix}")),
        n = prefix.len() + 1
    );
    let h = b.until(&format!("the page #{prefix}…"), &script).await;
    h.as_str().unwrap()[prefix.len() + 1..].to_owned()
}

#[tokio::test]
async fn an_operator_runs_the_system_from_the_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;

    // Log in.
    b.goto(&format!("{}/admin/", app.base)).await;
    b.wait("#login-form").await;
    b.shot("login").await;
    b.log_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // A tenant, then work inside it.
    b.goto(&format!("{}/admin/#/tenants", app.base)).await;
    submit(&b, &[("name", "Brand"), ("slug", "brand")]).await;
    let tenant_id = moved_to(&b, "/tenants/").await;
    b.wait_text("main h1", "Brand").await;
    b.select("#tenant-switch", &tenant_id).await;
    b.wait_text("main h1", "Brand").await;

    // An IP, active at once (a warming IP's first-day quota would hold the campaign).
    b.goto(&format!("{}/admin/#/ips", app.base)).await;
    submit(
        &b,
        &[
            ("ip", "192.0.2.10"),
            ("hostname", "mail1.brand.test"),
            ("state", "active"),
        ],
    )
    .await;
    moved_to(&b, "/ips/").await;
    b.wait_text("main h1", "192.0.2.10").await;
    b.wait_text("main .facts", "active").await;
    b.shot("ip").await;

    // A domain and the DNS records to publish, with copy buttons. A bad name first: the
    // API's error shows beside the field it names.
    b.goto(&format!("{}/admin/#/domains", app.base)).await;
    submit(&b, &[("domain", "not a domain")]).await;
    let error = b
        .wait_text("[data-field=\"domain\"] .field-error", "domain")
        .await;
    assert!(!error.trim().is_empty());
    let invalid = b
        .client
        .execute("return document.querySelector('[data-field=\"domain\"] input').classList.contains('invalid');", vec![])
        .await
        .unwrap();
    assert_eq!(invalid, json!(true));
    b.shot("domain-error").await;
    submit(
        &b,
        &[
            ("domain", "brand.test"),
            ("dkim_selector", "s1"),
            ("dkim_algorithm", "ed25519"),
        ],
    )
    .await;
    moved_to(&b, "/domains/").await;
    let records = b
        .wait_text("#dns-records", "s1._domainkey.brand.test")
        .await;
    assert!(records.contains("v=DKIM1"), "{records}");
    assert!(records.contains("_dmarc.brand.test"), "{records}");
    let copies = b
        .client
        .execute(
            "return document.querySelectorAll('#dns-records .record button').length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(copies.as_u64().unwrap() >= 6, "copy buttons: {copies}");
    b.shot("domain").await;

    // Sending set-up the walk-through does not cover: a relay to the test SMTP server.
    let (_, key) = app.api_key(&tenant_id, "ops").await;
    app.relay_mode(&key, "brand", smtp.addr.port()).await;
    let mut french_template = String::new();
    for language in ["fr", "en"] {
        let t = app
            .post(
                "/api/v2/templates",
                &key,
                json!({"name": format!("news_{language}"), "subject": format!("News {language} [FNAME|friend]"),
                       "html": "<p>[FNAME|-]</p><a href=\"https://brand.test/offer\">offer</a> <a href=\"[UNSUBSCRIBE_URL]\">stop</a>",
                       "language": language, "category": "news", "from_email": "hello@brand.test"}),
            )
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
        if language == "fr" {
            french_template = t.body["id"].as_str().unwrap().to_owned();
        }
    }

    // A CSV import, watched to its end.
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("people.csv");
    let mut rows = String::from("email,first_name,language\n");
    for i in 0..250 {
        let language = if i < 150 { "fr" } else { "en" };
        rows.push_str(&format!("person{i:03}@example.test,P{i},{language}\n"));
    }
    rows.push_str("not-an-address,Broken,fr\n");
    std::fs::write(&csv, rows).unwrap();
    b.goto(&format!("{}/admin/#/imports", app.base)).await;
    b.wait("[data-field=\"file\"] input")
        .await
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    b.client
        .execute("document.querySelector('[data-field=\"file\"]').closest('form').querySelector('button[type=submit]').click();", vec![])
        .await
        .unwrap();
    b.wait("#import-watch .progress").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import did not end: {}",
            b.client
                .execute("return document.querySelector('main').innerText;", vec![])
                .await
                .unwrap()
        );
        app.run_jobs().await;
        let state = b
            .client
            .execute("const p = document.querySelector('#import-watch .progress'); return p && p.dataset.done || null;", vec![])
            .await
            .unwrap();
        if let Value::String(state) = state {
            break state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(done, "done");
    let bar = b
        .client
        .execute("const p = document.querySelector('#import-watch .progress'); return [p.getAttribute('aria-valuenow'), p.getAttribute('aria-valuemax'), document.querySelector('#import-watch .bar').style.width];", vec![])
        .await
        .unwrap();
    assert_eq!(bar[0], bar[1], "the bar ends full: {bar}");
    assert_eq!(bar[2], "100%", "{bar}");
    let status = b.wait_text("#import-status", "250 created").await;
    assert!(status.contains("1 rejected"), "{status}");
    // The list of imports shows it too, with its error report to download.
    b.wait_text("#recent-imports table", "people.csv").await;
    b.shot("import").await;

    // A segment built rule by rule, its count live.
    b.goto(&format!("{}/admin/#/segments", app.base)).await;
    b.fill("#segment-name", "French speakers").await;
    b.select(".rule select:nth-of-type(1)", "field").await;
    b.select(".rule select:nth-of-type(2)", "language").await;
    b.select(".rule select:nth-of-type(3)", "eq").await;
    b.fill(".rule input.rule-value", "fr").await;
    b.until(
        "the live count of 150",
        "return document.querySelector('#segment-count').textContent === '150';",
    )
    .await;
    b.shot("segment-builder").await;
    b.click_button("main", "Save").await;
    let segment_id = moved_to(&b, "/segments/").await;
    // The saved segment's page edits it with the same builder, which offers engagement
    // and custom fields: nobody opened anything yet (not saved).
    b.until(
        "the saved segment's count of 150",
        "return document.querySelector('#segment-count').textContent === '150';",
    )
    .await;
    b.click_button("main", "Add a rule").await;
    b.select(".rule:nth-of-type(2) select:nth-of-type(1)", "engagement")
        .await;
    b.until(
        "the count of French speakers who opened a message",
        "return document.querySelector('#segment-count').textContent === '0';",
    )
    .await;
    b.select(".rule:nth-of-type(2) select:nth-of-type(1)", "custom")
        .await;
    b.fill(".rule:nth-of-type(2) input[maxlength]", "plan")
        .await;
    b.select(".rule:nth-of-type(2) select:nth-of-type(3)", "not_null")
        .await;
    b.until(
        "the custom-field rule in the expression shown",
        "return document.querySelector('details pre').textContent.includes('\"custom\": \"plan\"') ? true : null;",
    )
    .await;

    // An Arabic template, previewed right to left with its own styles.
    b.goto(&format!("{}/admin/#/templates", app.base)).await;
    submit(
        &b,
        &[
            ("name", "welcome_ar"),
            ("language", "ar"),
            ("category", "welcome"),
            ("subject", "مرحبا [FNAME|صديقي]"),
            ("body", "html"),
            ("html", "<p id=\"greeting\" style=\"color: #123456\">مرحبا بكم</p><a href=\"[UNSUBSCRIBE_URL]\">إلغاء</a>"),
        ],
    )
    .await;
    moved_to(&b, "/templates/").await;
    b.wait("#preview-frame").await;
    let preview = b
        .in_frame(
            "const p = document.getElementById('greeting'); return p ? [document.documentElement.dir, p.textContent, getComputedStyle(p).color] : null;",
            |seen| !seen.is_null(),
        )
        .await;
    assert_eq!(preview, json!(["rtl", "مرحبا بكم", "rgb(18, 52, 86)"]));
    // The draft previews as it is typed, before it is saved.
    b.fill("#tpl-html", "<p id=\"greeting\">نص جديد</p>").await;
    assert_eq!(preview_greeting(&b, "نص جديد").await, "نص جديد");
    b.shot("template-arabic").await;
    // With an English `welcome` (and no general template), the German tab previews it, as
    // sending would use it for a German contact.
    let welcome_en = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "welcome_en", "subject": "Welcome [FNAME|friend]", "html": "<p id=\"greeting\">Welcome [FNAME]</p>",
                   "language": "en", "category": "welcome"}),
        )
        .await;
    assert_eq!(
        welcome_en.status,
        StatusCode::CREATED,
        "{}",
        welcome_en.body
    );
    b.click("#preview-languages [data-lang=\"de\"]").await;
    let shown = b.wait_text("#fallback", "welcome_en").await;
    assert!(shown.contains("this category in English"), "{shown}");
    // "With sample values": a made-up recipient's name, not an empty one.
    assert_eq!(preview_greeting(&b, "Welcome Jane").await, "Welcome Jane");

    // A campaign to the segment, sent to the test SMTP server, its figures moving.
    b.goto(&format!("{}/admin/#/campaigns/new", app.base)).await;
    b.wait("[data-field=\"segments\"] select").await;
    b.client
        .execute(
            "const s = document.querySelector('[data-field=\"segments\"] select'); [...s.options].forEach((o) => { o.selected = o.value === arguments[0]; });",
            vec![json!(segment_id)],
        )
        .await
        .unwrap();
    submit(&b, &[("name", "Launch"), ("template_id", &french_template)]).await;
    let campaign_id = moved_to(&b, "/campaigns/").await;
    b.wait_text("#audience-count", "150").await;
    b.shot("campaign-draft").await;
    b.client
        .execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    b.click_button("main .page-head", "Start now").await;
    b.wait_text("#campaign-status", "sending").await;
    app.dispatch_and_deliver().await;
    b.until(
        "150 sent in the live figures",
        "const k = document.querySelector('#kpi-sent .value'); return k && k.textContent === '150';",
    )
    .await;
    assert_eq!(smtp.received().len(), 150);
    // The hourly chart draws the sends.
    b.until(
        "the hourly chart",
        "return document.querySelectorAll('#campaign-stats svg.chart polyline.s0').length > 0;",
    )
    .await;
    b.shot("campaign-stats").await;
    let api = app
        .get(&format!("/api/v2/campaigns/{campaign_id}/stats"), &key)
        .await;
    assert_eq!(api.body["totals"]["sent"], 150, "{}", api.body);

    // The dashboard's figures are the API's: today's sends over every IP, and apart, a
    // new warming IP's sends against its quota (not the active IP's uncapped ones). For
    // the admin's "all tenants" view as for the tenant's.
    let warming = app
        .post(
            "/api/v1/ips",
            &app.admin,
            json!({"ip": "192.0.2.77", "tenant_id": tenant_id, "state": "warming"}),
        )
        .await;
    assert_eq!(warming.status, StatusCode::CREATED, "{}", warming.body);
    for view in ["", tenant_id.as_str()] {
        let query = if view.is_empty() {
            String::new()
        } else {
            format!("&tenant_id={view}")
        };
        let quota = app
            .get(
                &format!("/api/v1/warmup/quota?limit=500{query}"),
                &app.admin,
            )
            .await;
        assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
        let items = quota.body["items"].as_array().unwrap();
        let sent: i64 = items
            .iter()
            .map(|q| q["sent_today"].as_i64().unwrap())
            .sum();
        let capped: Vec<&Value> = items
            .iter()
            .filter(|q| !q["daily_quota"].is_null())
            .collect();
        let cap: i64 = capped
            .iter()
            .map(|q| q["daily_quota"].as_i64().unwrap())
            .sum();
        let sent_capped: i64 = capped
            .iter()
            .map(|q| q["sent_today"].as_i64().unwrap())
            .sum();
        assert_eq!(sent, 150, "{}", quota.body);
        assert!(cap > 0 && cap != sent, "{}", quota.body);
        b.goto(&format!("{}/admin/#/", app.base)).await;
        b.select("#tenant-switch", view).await;
        let shown = b
            .until(
                "the dashboard's sends",
                "const s = document.querySelector('#kpi-sent-today .value'); const w = document.querySelector('#kpi-warming-today .value'); return s && w ? [s.textContent, w.textContent] : null;",
            )
            .await;
        assert_eq!(
            shown,
            json!([sent.to_string(), format!("{sent_capped} / {cap}")]),
            "view {view:?}"
        );
    }
    b.select("#tenant-switch", &tenant_id).await;

    // The warm-up page draws each plan's schedule, one line per plan.
    let plans = app.get("/api/v1/warmup/plans?limit=500", &app.admin).await;
    let plan_count = plans.body["items"].as_array().unwrap().len();
    assert!(plan_count >= 1, "{}", plans.body);
    b.goto(&format!("{}/admin/#/warmup", app.base)).await;
    let lines = b
        .until(
            "the plans' chart",
            "return document.querySelectorAll('#warmup-plans-chart svg polyline').length;",
        )
        .await;
    assert_eq!(lines, json!(plan_count.min(6)));

    // What "unknown" and "invalid" mean is said where they show: a domain not checked yet,
    // an address whose domain has no mail server.
    let fresh = app
        .post(
            "/api/v1/domains",
            &key,
            json!({"domain": "fresh.brand.test"}),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    b.goto(&format!("{}/admin/#/domains", app.base)).await;
    b.wait_text("main", "Not checked yet").await;
    let nomx = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "someone@nomx.invalid-domain.test"}),
        )
        .await;
    assert!(nomx.status.is_success(), "{}", nomx.body);
    app.run_jobs().await;
    let judged = app
        .get(
            "/api/v2/contacts?email=someone@nomx.invalid-domain.test",
            &key,
        )
        .await;
    let judged = &judged.body["items"][0];
    assert_eq!(
        judged["validation"]["reasons"],
        json!(["no_mx_record"]),
        "{judged}"
    );
    b.goto(&format!(
        "{}/admin/#/contacts/{}",
        app.base,
        judged["id"].as_str().unwrap()
    ))
    .await;
    b.wait_text("#validation", "has no mail server").await;

    // A contact's timeline reads as words, not JSON.
    let contact = app
        .get("/api/v2/contacts?email=person000@example.test", &key)
        .await;
    let contact_id = contact.body["items"][0]["id"].as_str().unwrap().to_owned();
    let events = app
        .get(&format!("/api/v2/contacts/{contact_id}/events"), &key)
        .await;
    assert!(
        !events.body["items"].as_array().unwrap().is_empty(),
        "{}",
        events.body
    );
    b.goto(&format!("{}/admin/#/contacts/{contact_id}", app.base))
        .await;
    let cells = b
        .until(
            "the contact's timeline",
            "const rows = [...document.querySelectorAll('main section:last-of-type table tbody tr')]; \
             return rows.length ? rows.map((r) => r.lastElementChild.textContent) : null;",
        )
        .await;
    let cells = cells.as_array().unwrap();
    assert_eq!(cells.len(), events.body["items"].as_array().unwrap().len());
    for cell in cells {
        let cell = cell.as_str().unwrap();
        assert!(
            !cell.contains('{') && !cell.contains('"'),
            "JSON shown: {cell}"
        );
    }

    // An A/B test built with the variants editor.
    b.goto(&format!("{}/admin/#/campaigns/new", app.base)).await;
    b.wait("[data-field=\"ab\"]").await;
    // What shows is what is displayed, not only what carries `hidden`.
    let shown = "return ['ab', 'steps', 'trigger'].map((f) => getComputedStyle(document.querySelector(`[data-field=\"${f}\"]`)).display !== 'none');";
    assert_eq!(
        b.client.execute(shown, vec![]).await.unwrap(),
        json!([false, false, false]),
        "a one-time campaign shows neither variants nor steps nor trigger"
    );
    b.select("[data-field=\"type\"] select", "ab_test").await;
    b.client
        .execute(
            "const names = document.querySelectorAll('[data-field=\"ab\"] .variant-name'); const subjects = document.querySelectorAll('[data-field=\"ab\"] .variant-subject');
             names[0].value = 'A'; subjects[0].value = 'Short subject'; names[1].value = 'B'; subjects[1].value = 'A longer, friendlier subject';
             const s = document.querySelector('[data-field=\"segments\"] select'); [...s.options].forEach((o) => { o.selected = o.value === arguments[0]; });",
            vec![json!(segment_id)],
        )
        .await
        .unwrap();
    assert_eq!(
        b.client.execute(shown, vec![]).await.unwrap(),
        json!([true, false, false]),
        "the variants show for an A/B test, the steps do not"
    );
    b.shot("campaign-ab-builder").await;
    submit(
        &b,
        &[("name", "Subject test"), ("template_id", &french_template)],
    )
    .await;
    let ab_id = moved_to(&b, "/campaigns/").await;
    b.wait_text("main", "Short subject").await;
    let ab = app.get(&format!("/api/v2/campaigns/{ab_id}"), &key).await;
    assert_eq!(ab.body["type"], "ab_test", "{}", ab.body);
    assert_eq!(
        ab.body["ab"]["variants"][1]["subject"],
        "A longer, friendlier subject"
    );
    assert_eq!(ab.body["ab"]["winner_by"], "opens");

    // A change without the CSRF token is refused; the same with it goes through.
    let refused = b
        .run("const r = await fetch('/api/v1/tenants', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({name: 'Forged', slug: 'forged'})}); return [r.status, (await r.json()).error.code];")
        .await;
    assert_eq!(refused, json!([403, "forbidden"]));
    let wrong = b
        .run("const r = await fetch('/api/v1/tenants', {method: 'POST', headers: {'content-type': 'application/json', 'x-csrf-token': 'ab'.repeat(32)}, body: JSON.stringify({name: 'Forged', slug: 'forged'})}); return r.status;")
        .await;
    assert_eq!(wrong, json!(403));
    let tenants = app.get("/api/v1/tenants?limit=500", &app.admin).await;
    assert!(
        !tenants.body.to_string().contains("forged"),
        "{}",
        tenants.body
    );

    // An API key: shown once, with a copy button; the list keeps only its prefix.
    b.goto(&format!("{}/admin/#/api-keys", app.base)).await;
    submit(&b, &[("name", "scraper-pro")]).await;
    let shown = b.wait("#new-key").await.text().await.unwrap();
    assert!(shown.starts_with("ee_"), "{shown}");
    b.shot("api-key-created").await;
    let works = app.get("/api/v1/auth/me", &shown).await;
    assert_eq!(
        works.status,
        StatusCode::OK,
        "the key shown works: {}",
        works.body
    );
    b.client
        .execute("document.querySelector('dialog').close();", vec![])
        .await
        .unwrap();
    b.wait_text("main table", "scraper-pro").await;
    let listed = b
        .client
        .execute("return document.querySelector('main').innerText;", vec![])
        .await
        .unwrap();
    assert!(
        !listed.as_str().unwrap().contains(&shown),
        "the secret is shown once only"
    );

    // Delivery settings: a bad time zone is named beside its field; a good one is saved.
    b.goto(&format!("{}/admin/#/settings", app.base)).await;
    submit(&b, &[("time_zone", "Mars/Olympus_Mons")]).await;
    b.wait_text("[data-field=\"time_zone\"] .field-error", "time_zone")
        .await;
    // A relay list naming an unknown relay is refused beside its field.
    submit(&b, &[("relays", "nowhere")]).await;
    b.wait_text("[data-field=\"relays\"] .field-error", "nowhere")
        .await;
    submit(
        &b,
        &[
            ("time_zone", "Europe/Paris"),
            ("relays", "pmta"),
            ("relay_order", "weighted"),
        ],
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let delivery = app
            .get(&format!("/api/v1/tenants/{tenant_id}/delivery"), &key)
            .await;
        if delivery.body["time_zone"] == "Europe/Paris" {
            assert_eq!(
                delivery.body["mode"], "relay",
                "the rest is kept: {}",
                delivery.body
            );
            assert_eq!(
                delivery.body["relays"],
                json!(["pmta"]),
                "{}",
                delivery.body
            );
            assert_eq!(
                delivery.body["relay_order"], "weighted",
                "{}",
                delivery.body
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", delivery.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.shot("settings-delivery").await;

    // Every page renders without an error; each is photographed.
    for (path, name) in [
        ("/", "dashboard"),
        ("/tenants", "tenants"),
        ("/users", "users"),
        ("/api-keys", "api-keys"),
        ("/ips", "ips"),
        ("/warmup", "warmup"),
        ("/pools", "pools"),
        ("/domains", "domains"),
        ("/blacklists", "blacklists"),
        ("/contacts", "contacts"),
        ("/imports", "imports"),
        ("/segments", "segments"),
        ("/tags", "tags"),
        ("/suppressions", "suppressions"),
        ("/templates", "templates"),
        ("/campaigns", "campaigns"),
        ("/messages", "messages"),
        ("/bounces", "bounces"),
        ("/forwards", "forwards"),
        ("/reports", "reports"),
        ("/compliance", "compliance"),
        ("/jobs", "jobs"),
        ("/audit", "audit"),
        ("/settings", "settings"),
    ] {
        b.goto(&format!("{}/admin/#{path}", app.base)).await;
        b.until(
            &format!("{path} to render"),
            "const m = document.querySelector('main'); return m && m.querySelector('h1') && !m.textContent.includes('Loading…');",
        )
        .await;
        b.settled().await;
        let errors = b
            .client
            .execute("return [...document.querySelectorAll('main .form-error:not([hidden]), main p.muted')].map((e) => e.textContent).filter((t) => /error|not found|failed|invalid/i.test(t));", vec![])
            .await
            .unwrap();
        assert_eq!(errors, json!([]), "{path} shows an error");
        b.shot(&format!("page-{name}")).await;
    }
    assert!(hash(&b).await.ends_with("/settings"));

    // A recipient server's reply reads once (`250 …`), not with its code twice.
    b.goto(&format!("{}/admin/#/messages?state=sent", app.base))
        .await;
    let replies = b
        .until(
            "the sent messages' replies",
            "const cells = [...document.querySelectorAll('main table td')].map((td) => td.textContent); \
             return cells.some((c) => /^250 /.test(c)) ? cells.filter((c) => /^[245]\\d\\d /.test(c)) : null;",
        )
        .await;
    let replies = replies.as_array().unwrap();
    assert!(!replies.is_empty());
    for reply in replies {
        let reply = reply.as_str().unwrap();
        let code = &reply[..3];
        assert!(
            !reply[4..].starts_with(code),
            "the code is shown twice: {reply}"
        );
    }

    // The interface in French, and on a phone.
    b.goto(&format!("{}/admin/#/", app.base)).await;
    b.click_button(".langs", "FR").await;
    b.wait_text("nav.menu", "Tableau de bord").await;
    b.shot("dashboard-fr").await;
    // States, dates and numbers in French too: `envoyé`, `6 déc. 2026, 06:13`, not
    // `sent` and `12/6/2026, 6:13 AM`.
    b.goto(&format!("{}/admin/#/messages?state=sent", app.base))
        .await;
    let french = b
        .until(
            "French states and dates",
            "const badges = [...document.querySelectorAll('main .badge')].map((e) => e.textContent); \
             const cells = [...document.querySelectorAll('main table td')].map((td) => td.textContent); \
             return badges.includes('envoyé') ? [badges.includes('sent'), cells.some((c) => / 20\\d\\d\\D+\\d\\d:\\d\\d/.test(c)), cells.some((c) => /[AP]M/.test(c))] : null;",
        )
        .await;
    assert_eq!(french, json!([false, true, false]));
    b.shot("messages-fr").await;
    b.goto(&format!("{}/admin/#/", app.base)).await;
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{}/admin/#/campaigns/{campaign_id}", app.base))
        .await;
    b.wait("#campaign-kpis").await;
    let toggle = b
        .client
        .execute("return getComputedStyle(document.querySelector('.menu-toggle')).display !== 'none' && getComputedStyle(document.querySelector('nav.menu')).display === 'none';", vec![])
        .await
        .unwrap();
    assert_eq!(
        toggle,
        json!(true),
        "on a phone the menu folds behind its button"
    );
    b.shot("campaign-phone").await;

    // ReDoc beside Swagger UI, from the vendored bundle, over the same document.
    b.client.set_window_size(1280, 900).await.unwrap();
    b.goto(&format!("{}/redoc", app.base)).await;
    b.until(
        "ReDoc to render the API",
        "return document.body.innerText.includes('Email-Engine API') && document.body.innerText.includes('/api/v2/campaigns');",
    )
    .await;
    b.shot("redoc").await;

    // Logging out ends the session: the cookie no longer opens anything.
    b.goto(&format!("{}/admin/#/", app.base)).await;
    b.client.set_window_size(1280, 900).await.unwrap();
    b.click("#logout").await;
    b.wait("#login-form").await;
    let after = b
        .run("const r = await fetch('/api/v1/auth/session'); return r.status;")
        .await;
    assert_eq!(after, json!(401));
    b.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_tenant_user_sees_only_its_tenant_and_changes_need_the_token() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let a = app.tenant("alpha").await;
    let other = app.tenant("beta").await;
    let (_, beta_key) = app.api_key(&other, "beta").await;
    let contact = app
        .post(
            "/api/v2/contacts/ingest",
            &beta_key,
            json!({"source": "api", "contacts": [{"email": "secret-beta@beta.test", "firstName": "Hidden"}]}),
        )
        .await;
    assert_eq!(contact.status, StatusCode::OK, "{}", contact.body);
    let beta_contact = app
        .get("/api/v2/contacts?email=secret-beta@beta.test", &beta_key)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let template = app
        .post(
            "/api/v2/templates",
            &beta_key,
            json!({"name": "secret-beta-template", "subject": "s", "html": "<p>x</p>", "language": "en"}),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.body);
    let beta_template = template.body["id"].as_str().unwrap().to_owned();
    for (path, body) in [
        ("/api/v1/domains", json!({"domain": "secret-beta.test"})),
        (
            "/api/v2/segments",
            json!({"name": "secret-beta-segment", "expression": {"tag": "X"}}),
        ),
        (
            "/api/v1/relays",
            json!({"name": "secret-beta-relay", "host": "127.0.0.1", "port": 2525, "tls": "none"}),
        ),
    ] {
        let r = app.post(path, &beta_key, body).await;
        assert!(r.status.is_success(), "{path}: {}", r.body);
    }
    let campaign = app
        .post(
            "/api/v2/campaigns",
            &beta_key,
            json!({"name": "secret-beta-campaign", "template_id": beta_template, "audience": {"all": true}}),
        )
        .await;
    assert_eq!(campaign.status, StatusCode::CREATED, "{}", campaign.body);
    app.tenant_user(&a, "alice@alpha.test").await;
    let ingest = app
        .post(
            "/api/v2/contacts/ingest",
            &app.api_key(&a, "alpha").await.1,
            json!({"source": "api", "contacts": [{"email": "visible@alpha.test"}]}),
        )
        .await;
    assert_eq!(ingest.status, StatusCode::OK);

    b.log_in(&app.base, "alice@alpha.test", "user-password-1234")
        .await;
    // A user has no tenant switch and no admin menu.
    let chrome = b
        .client
        .execute("return [!!document.querySelector('#tenant-switch'), document.querySelector('nav.menu').textContent];", vec![])
        .await
        .unwrap();
    assert_eq!(chrome[0], json!(false));
    assert!(!chrome[1].as_str().unwrap().contains("Tenants"), "{chrome}");
    for path in [
        "/",
        "/contacts",
        "/campaigns",
        "/templates",
        "/domains",
        "/segments",
        "/messages",
        "/ips",
        "/api-keys",
        "/suppressions",
        "/imports",
        "/bounces",
        "/settings",
    ] {
        b.goto(&format!("{}/admin/#{path}", app.base)).await;
        b.until(
            &format!("{path} to render"),
            "const m = document.querySelector('main'); return m && m.querySelector('h1') && !m.textContent.includes('Loading…');",
        )
        .await;
        b.settled().await;
        let text = b
            .client
            .execute("return document.body.innerText;", vec![])
            .await
            .unwrap();
        let text = text.as_str().unwrap();
        assert!(
            !text.contains("secret-beta"),
            "{path} shows beta's data: {text}"
        );
        assert!(!text.contains(&other), "{path} shows beta's id");
        if path == "/contacts" {
            assert!(text.contains("visible@alpha.test"), "{text}");
        }
        if path == "/settings" {
            b.click_button(".tabs", "Relays").await;
            b.settled().await;
            let relays = b
                .client
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap();
            assert!(
                !relays.as_str().unwrap().contains("secret-beta"),
                "{relays}"
            );
        }
    }
    b.shot("user-alpha-contacts").await;
    // Beta's contact by its id: not found, in the page and through the API.
    b.goto(&format!("{}/admin/#/contacts/{beta_contact}", app.base))
        .await;
    b.wait_text("main .form-error", "not found").await;
    let direct = b
        .run(&format!(
            "const r = await fetch('/api/v2/contacts/{beta_contact}'); return r.status;"
        ))
        .await;
    assert_eq!(direct, json!(404));
    // Without the CSRF token even the user's own change is refused; with it, accepted.
    let forged = b
        .run("const r = await fetch('/api/v2/suppressions', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({email: 'x@alpha.test'})}); return r.status;")
        .await;
    assert_eq!(forged, json!(403));
    b.goto(&format!("{}/admin/#/suppressions", app.base)).await;
    submit(&b, &[("email", "blocked@alpha.test")]).await;
    b.wait_text("main table", "blocked@alpha.test").await;
    b.shot("user-alpha-suppressions").await;
    b.close().await;
    app.finish().await;
}
