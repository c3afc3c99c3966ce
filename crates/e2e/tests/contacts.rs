//! Contacts end to end: ingestion in both shapes, dedupe and merge, validation against a
//! loopback DNS server (and an SMTP probe against a loopback SMTP server), webhooks,
//! routing, tags and segments, CSV imports, suppression and GDPR.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Options, TestApp, error_code};
use ee_dns::testing::{Rec, Zone};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn zone() -> Zone {
    let mut zone = Zone::new();
    zone.add("brand.test", Rec::Mx(10, "mx.brand.test".into()))
        .add("mx.brand.test", Rec::A("127.0.0.1".parse().unwrap()))
        .add("nullmx.test", Rec::Mx(0, ".".into()))
        .add("implicit.test", Rec::A("192.0.2.7".parse().unwrap()))
        .add("gmail.com", Rec::Mx(5, "gmail-smtp-in.l.google.com".into()));
    zone
}

async fn setup(app: &TestApp) -> (String, String) {
    let tenant = app.tenant("sos-expat").await;
    let (_, key) = app.api_key(&tenant, "scraper").await;
    (tenant, key)
}

fn statuses(reply: &common::Reply) -> Vec<String> {
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

/// How many of the key's tenant's contacts a segment expression matches.
async fn segment_count(app: &TestApp, key: &str, expression: Value) -> i64 {
    let reply = app
        .post(
            "/api/v2/segments/count",
            key,
            json!({"expression": expression}),
        )
        .await;
    reply.body["count"]
        .as_i64()
        .unwrap_or_else(|| panic!("{}", reply.body))
}

/// Uploads a CSV file, runs the import job and returns the finished import.
async fn import_csv(app: &TestApp, key: &str, body: impl Into<reqwest::Body>) -> Value {
    let upload = app
        .client
        .post(format!("{}/api/v2/contacts/import", app.base))
        .header("x-api-key", key)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);
    let import: Value = upload.json().await.unwrap();
    app.run_jobs().await;
    let done = app
        .get(
            &format!("/api/v2/imports/{}", import["id"].as_str().unwrap()),
            key,
        )
        .await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    done.body
}

/// The error report of a finished import.
async fn error_report(app: &TestApp, key: &str, import: &Value) -> String {
    app.client
        .get(format!(
            "{}{}",
            app.base,
            import["errors_url"].as_str().unwrap()
        ))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn ingest_both_shapes_dedupe_merge_and_idempotent_batches() {
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            ..Default::default()
        })
        .spawn()
        .await;
    let (_, key) = setup(&app).await;
    let source = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "scraper-pro-001", "name": "Scraper-Pro", "type": "scraper_pro"}),
        )
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);

    // Seed 002's one-contact shape, as `curl -d` sends it.
    let one = app.post("/api/v2/contacts/ingest", &key, json!({"email": "John@Brand.test", "first_name": "John", "last_name": "Doe", "source": "scraper-pro-001", "tenant": "sos-expat"})).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(statuses(&one), ["created"]);
    assert_eq!(one.body["results"][0]["email"], "john@brand.test");

    // Seed 001's batch shape, camelCase.
    let batch = json!({"source_id": "scraper-pro-001", "batch_id": "gmaps-paris-lawyers-001", "contacts": [
        {"email": "avocat@brand.test", "firstName": "Jean", "lastName": "Dupont", "phone": "+33123456789", "address": "123 Rue Paris", "city": "Paris", "country": "fr", "language": "FR", "category": "LAWYER", "tags": ["TYPE:LAWYER", "SECTOR:LEGAL", "GEOGRAPHY:FRANCE"], "rating": 4.5},
        {"email": "john@brand.test", "lastName": "Smith", "phone": "+33999"},
        {"email": "avocat@BRAND.test"},
        {"email": "not-an-address"},
        {"email": "x@nullmx.test", "firstName": "Nul"},
    ]});
    let first = app
        .post("/api/v2/contacts/ingest", &key, batch.clone())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        statuses(&first),
        ["created", "updated", "duplicate", "rejected", "created"]
    );
    assert!(
        first.body["results"][3]["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid address")
    );
    assert_eq!(
        first.body["counts"],
        json!({"created": 2, "updated": 1, "duplicate": 1, "rejected": 1})
    );
    let replay = app.post("/api/v2/contacts/ingest", &key, batch).await;
    assert_eq!(
        replay.body, first.body,
        "the same batch_id answers the same"
    );
    assert_eq!(replay.headers["x-idempotent-replay"], "true");

    // Merge: gaps filled, nothing wiped, provenance kept.
    let john_id = one.body["results"][0]["contact_id"].as_str().unwrap();
    let john = app.get(&format!("/api/v2/contacts/{john_id}"), &key).await;
    assert_eq!(
        (john.body["last_name"].as_str(), john.body["phone"].as_str()),
        (Some("Doe"), Some("+33999")),
        "a source never wipes a field"
    );
    assert_eq!(john.body["field_sources"]["phone"], "scraper-pro-001");
    let lawyer_id = first.body["results"][0]["contact_id"].as_str().unwrap();
    let lawyer = app
        .get(&format!("/api/v2/contacts/{lawyer_id}"), &key)
        .await;
    assert_eq!(
        (
            lawyer.body["country"].as_str(),
            lawyer.body["category"].as_str()
        ),
        (Some("FR"), Some("LAWYER"))
    );
    assert_eq!(
        lawyer.body["tags"],
        json!(["geography:france", "sector:legal", "type:lawyer"])
    );
    assert_eq!(
        lawyer.body["metadata"]["rating"], 4.5,
        "unknown fields are kept as custom fields"
    );

    // Validation runs as jobs: MX found, null MX invalid.
    assert!(app.run_jobs().await >= 1);
    let lawyer = app
        .get(&format!("/api/v2/contacts/{lawyer_id}"), &key)
        .await;
    assert_eq!(
        lawyer.body["validation"]["status"], "valid",
        "{}",
        lawyer.body
    );
    let contacts = app.get("/api/v2/contacts?validation=invalid", &key).await;
    let invalid: Vec<&str> = contacts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(invalid, ["x@nullmx.test"]);
    let nul = &contacts.body["items"][0];
    assert_eq!(nul["validation"]["reasons"], json!(["null_mx"]));
    let events = app
        .get(&format!("/api/v2/contacts/{lawyer_id}/events"), &key)
        .await;
    let types: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["VALIDATED", "IMPORTED"]);
    let cached: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mx_cache WHERE domain = 'brand.test' AND outcome = 'found'",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(cached, 1, "the MX answer is cached per domain");

    // Bad requests.
    let empty = app
        .post("/api/v2/contacts/ingest", &key, json!({"contacts": []}))
        .await;
    assert_eq!(
        (empty.status, empty.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("contacts"))
    );
    let no_email = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"contacts": [{"firstName": "X"}]}),
        )
        .await;
    assert_eq!(no_email.body["error"]["field"], "contacts[0].email");
    // A source the tenant never registered is created on first use (the seeds' clients
    // never register one), once, audited; a name that cannot be a slug is refused.
    for email in ["a@brand.test", "b@brand.test"] {
        let first_use = app
            .post(
                "/api/v2/contacts/ingest",
                &key,
                json!({"email": email, "source_id": "scraper-pro-001"}),
            )
            .await;
        assert_eq!(first_use.status, StatusCode::OK, "{}", first_use.body);
    }
    let sources = app.get("/api/v1/data-sources", &key).await;
    let created: Vec<&Value> = sources.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["slug"] == "scraper-pro-001")
        .collect();
    assert_eq!(created.len(), 1, "{}", sources.body);
    assert_eq!(created[0]["type"], "scraper_pro");
    let audit = app
        .get("/api/v1/audit/logs?action=data_source.create", &app.admin)
        .await;
    assert_eq!(
        audit.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        audit.body
    );
    let bad_source = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "a@brand.test", "source": "Not a slug!"}),
        )
        .await;
    assert_eq!(bad_source.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_source.body["error"]["field"], "source");
    app.finish().await;
}

#[tokio::test]
async fn a_batch_of_ten_thousand_is_accepted() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    let contacts: Vec<Value> = (0..10_000).map(|i| json!({"email": format!("person{i}@bulk.test"), "firstName": format!("P{i}"), "tags": ["QUALITY:HIGH"]})).collect();
    let reply = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"batch_id": "big-1", "contacts": contacts}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body["error"]);
    assert_eq!(reply.body["counts"]["created"], 10_000);
    assert_eq!(
        segment_count(&app, &key, json!({"tag": "QUALITY:HIGH"})).await,
        10_000
    );
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"email": format!("p{i}@bulk.test")}))
        .collect();
    let refused = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"contacts": too_many}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}

#[tokio::test]
async fn ad_hoc_validation_with_lists_mx_and_an_smtp_probe() {
    #[derive(Clone)]
    struct Mailboxes;
    impl mailin_embedded::Handler for Mailboxes {
        fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
            if to.starts_with("nobody@") {
                mailin_embedded::response::NO_MAILBOX
            } else {
                mailin_embedded::response::OK
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(Mailboxes);
    server.with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });

    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            probe_port: port,
            ..Default::default()
        })
        .spawn()
        .await;
    let (_, key) = setup(&app).await;
    let emails = [
        "jane@brand.test",
        "info@brand.test",
        "x@nullmx.test",
        "a@mailinator.com",
        "b@implicit.test",
        "c@nowhere.test",
        "bad@@x",
        "jane@gmail.com",
    ];
    let reply = app
        .post("/api/v1/validation/emails", &key, json!({"emails": emails}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let verdicts: Vec<(String, String)> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["email"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("jane@brand.test", "valid"),
        ("info@brand.test", "risky"),
        ("x@nullmx.test", "invalid"),
        ("a@mailinator.com", "invalid"),
        ("b@implicit.test", "valid"),
        ("c@nowhere.test", "invalid"),
        ("bad@@x", "invalid"),
        ("jane@gmail.com", "valid"),
    ];
    for (got, (email, status)) in verdicts.iter().zip(want) {
        assert_eq!((got.0.as_str(), got.1.as_str()), (email, status));
    }
    let by = |i: usize| &reply.body[i];
    assert_eq!(by(1)["checks"]["role"], true);
    assert_eq!(by(3)["reasons"], json!(["disposable_domain"]));
    assert_eq!(by(5)["reasons"], json!(["no_mx_record"]));
    assert_eq!(by(7)["reasons"], json!(["free_provider"]));

    // The probe: the loopback SMTP server knows jane but not nobody.
    let probed = app
        .post(
            "/api/v1/validation/emails",
            &key,
            json!({"emails": ["jane@brand.test", "nobody@brand.test"], "smtp_probe": true}),
        )
        .await;
    assert_eq!(
        probed.body[0]["checks"]["smtp"], "accepted",
        "{}",
        probed.body
    );
    assert_eq!(
        (
            probed.body[1]["status"].as_str(),
            probed.body[1]["checks"]["smtp"].as_str()
        ),
        (Some("invalid"), Some("rejected"))
    );

    // A tenant's own list additions.
    let put = app
        .call(
            Method::PUT,
            "/api/v1/validation/lists/disposable",
            Some(&key),
            Some(json!({"values": ["brand.test"]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let again = app
        .post(
            "/api/v1/validation/emails",
            &key,
            json!({"emails": ["jane@brand.test"]}),
        )
        .await;
    assert_eq!(again.body[0]["status"], "invalid");
    let too_many = app
        .post("/api/v1/validation/emails", &key, json!({"emails": []}))
        .await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}

fn sign(secret: &str, body: &[u8], timestamp: i64) -> String {
    common::signatures::timestamped(secret.as_bytes(), timestamp, body)
}

#[tokio::test]
async fn webhooks_are_signed_and_routing_sends_contacts_to_their_tenant() {
    let app = TestApp::spawn().await;
    let (sos, key) = setup(&app).await;
    let other = app.tenant("ulixai").await;
    let created = app.post("/api/v1/data-sources", &key, json!({"slug": "scraper-pro-001", "name": "Scraper-Pro", "type": "scraper_pro", "config": {"route": true}})).await;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let listed = app.get("/api/v1/data-sources", &key).await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is shown once"
    );
    let rule = app
        .post(
            "/api/v1/routing-rules",
            &app.admin,
            json!({"priority": 1, "conditions": {"category": "EXPAT"}, "tenant_id": other}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);
    assert_eq!(
        app.post(
            "/api/v1/routing-rules",
            &key,
            json!({"priority": 1, "conditions": {"category": "X"}, "tenant_id": other})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let body = serde_json::to_vec(
        &json!({"source_id": "scraper-pro-001", "batch_id": "w1", "contacts": [
            {"email": "lawyer@brand.test", "category": "LAWYER"},
            {"email": "expat@brand.test", "category": "EXPAT"},
        ]}),
    )
    .unwrap();
    let now = app.clock.now_ms() / 1000;
    let send = |sig: Option<String>, ts: i64, path: &'static str| {
        let mut request = app
            .client
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/json")
            .header("x-ee-timestamp", ts.to_string())
            .body(body.clone());
        if let Some(sig) = sig {
            request = request.header("x-ee-signature", sig);
        }
        request.send()
    };
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM contacts")
            .fetch_one(app.db.pool())
            .await
            .unwrap()
    };
    for (sig, ts, path, why) in [
        (
            None,
            now,
            "/api/v1/webhooks/scraper-pro",
            "missing signature",
        ),
        (
            Some(sign("wrong", &body, now)),
            now,
            "/api/v1/webhooks/scraper-pro",
            "wrong secret",
        ),
        (
            Some(sign(&secret, &body, now - 301)),
            now - 301,
            "/api/v1/webhooks/scraper-pro",
            "older than 5 minutes",
        ),
        (
            Some(sign(&secret, &body, now)),
            now,
            "/api/v1/webhooks/backlinks-engine",
            "another kind of source",
        ),
    ] {
        let reply = send(sig, ts, path).await.unwrap();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(count().await, 0, "nothing stored: {why}");
    }
    let reply = send(
        Some(sign(&secret, &body, now)),
        now,
        "/api/v1/webhooks/scraper-pro",
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let result: Value = reply.json().await.unwrap();
    assert_eq!(
        result["results"][0]["tenant_id"],
        sos.as_str(),
        "no rule: the source's tenant"
    );
    assert_eq!(
        result["results"][1]["tenant_id"],
        other.as_str(),
        "category EXPAT is routed"
    );
    let tampered = [body.clone(), b" ".to_vec()].concat();
    let reply = app
        .client
        .post(format!("{}/api/v1/webhooks/scraper-pro", app.base))
        .header("x-ee-timestamp", now.to_string())
        .header("x-ee-signature", sign(&secret, &body, now))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        StatusCode::UNAUTHORIZED,
        "the signature covers the body"
    );

    let rotated = app
        .post(
            &format!(
                "/api/v1/data-sources/{}/rotate-secret",
                created.body["id"].as_str().unwrap()
            ),
            &key,
            json!({}),
        )
        .await;
    assert_ne!(rotated.body["secret"], secret.as_str());
    let old = send(
        Some(sign(&secret, &body, now)),
        now,
        "/api/v1/webhooks/scraper-pro",
    )
    .await
    .unwrap();
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret stops working"
    );
    app.finish().await;
}

/// Bulk tagging works a page of contacts at a time: 2 500 matches cross pages, tagging
/// twice adds nothing, untagging a parent removes its children, other tenants untouched.
#[tokio::test]
async fn bulk_tagging_spans_pages_and_stays_in_its_tenant() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    let other = app.tenant("other-brand").await;
    let (_, other_key) = app.api_key(&other, "other").await;
    let contacts: Vec<Value> = (0..2_500)
        .map(|i| json!({"email": format!("p{i}@pages.test"), "language": if i % 5 == 0 { "de" } else { "fr" }, "tags": ["SECTOR:LEGAL/LAWYER"]}))
        .collect();
    let reply = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"contacts": contacts}),
        )
        .await;
    assert_eq!(reply.body["counts"]["created"], 2_500, "{}", reply.body);
    let theirs = json!({"contacts": [{"email": "p1@pages.test", "language": "fr", "tags": ["SECTOR:LEGAL/LAWYER"]}]});
    app.post("/api/v2/contacts/ingest", &other_key, theirs)
        .await;
    let add = json!({"filter": {"field": "language", "op": "eq", "value": "fr"}, "add": ["QUALITY:HIGH", "TYPE:LAWYER"]});
    let tagged = app.post("/api/v2/contacts/tags", &key, add.clone()).await;
    assert_eq!(
        (
            tagged.body["matched"].as_i64(),
            tagged.body["tagged"].as_i64()
        ),
        (Some(2_000), Some(4_000)),
        "{}",
        tagged.body
    );
    let again = app.post("/api/v2/contacts/tags", &key, add).await;
    assert_eq!(
        (
            again.body["matched"].as_i64(),
            again.body["tagged"].as_i64()
        ),
        (Some(2_000), Some(0))
    );
    assert_eq!(
        segment_count(&app, &key, json!({"tag": "QUALITY:HIGH"})).await,
        2_000
    );
    assert_eq!(
        segment_count(&app, &key, json!({"tag": "TYPE:LAWYER"})).await,
        2_000
    );

    let untag = app
        .post(
            "/api/v2/contacts/tags",
            &key,
            json!({"filter": {"tag": "SECTOR:LEGAL"}, "remove": ["SECTOR:LEGAL"]}),
        )
        .await;
    assert_eq!(
        (
            untag.body["matched"].as_i64(),
            untag.body["untagged"].as_i64()
        ),
        (Some(2_500), Some(2_500)),
        "{}",
        untag.body
    );
    assert_eq!(
        segment_count(&app, &key, json!({"tag": "SECTOR:LEGAL"})).await,
        0
    );
    assert_eq!(
        segment_count(&app, &key, json!({"tag": "QUALITY:HIGH"})).await,
        2_000
    );
    assert_eq!(
        segment_count(&app, &other_key, json!({"tag": "SECTOR:LEGAL/LAWYER"})).await,
        1,
        "the other tenant's contact keeps its tag"
    );
    app.finish().await;
}

#[tokio::test]
async fn tags_segments_filters_and_bulk_tagging() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    let contacts = json!({"contacts": [
        {"email": "a@x.test", "country": "FR", "language": "fr", "tags": ["SECTOR:LEGAL/LAWYER"]},
        {"email": "b@x.test", "country": "BE", "language": "fr", "tags": ["SECTOR:LEGAL/NOTARY"]},
        {"email": "c@x.test", "country": "FR", "language": "en", "tags": ["SECTOR:HEALTH"]},
        {"email": "d@x.test", "country": "DE", "language": "de"},
    ]});
    app.post("/api/v2/contacts/ingest", &key, contacts).await;
    let (app_ref, key_ref) = (&app, key.as_str());
    let count = move |e: Value| segment_count(app_ref, key_ref, e);
    assert_eq!(
        count(json!({"tag": "SECTOR:LEGAL"})).await,
        2,
        "a child tag matches its parent"
    );
    assert_eq!(count(json!({"tag": "SECTOR:LEGAL/LAWYER"})).await, 1);
    assert_eq!(count(json!({"and": [{"field": "language", "op": "eq", "value": "FR"}, {"not": {"field": "country", "op": "eq", "value": "BE"}}]})).await, 1);
    assert_eq!(count(json!({"or": [{"tag": "SECTOR:HEALTH"}, {"field": "country", "op": "in", "value": ["DE"]}]})).await, 2);
    assert_eq!(
        count(json!({"field": "email", "op": "ends_with", "value": "@x.test"})).await,
        4
    );
    assert_eq!(
        count(json!({"field": "created_at", "op": "after", "value": "-1d"})).await,
        4
    );
    let bad = app
        .post(
            "/api/v2/segments/count",
            &key,
            json!({"expression": {"field": "salary", "op": "eq", "value": "1"}}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expression"))
    );

    let seg = app.post("/api/v2/segments", &key, json!({"name": "French lawyers", "expression": {"and": [{"tag": "SECTOR:LEGAL"}, {"field": "country", "op": "eq", "value": "FR"}]}})).await;
    assert_eq!(seg.status, StatusCode::CREATED, "{}", seg.body);
    let id = seg.body["id"].as_str().unwrap();
    assert_eq!(
        app.post(&format!("/api/v2/segments/{id}/count"), &key, json!({}))
            .await
            .body["count"],
        1
    );
    let preview = app
        .get(&format!("/api/v2/segments/{id}/preview"), &key)
        .await;
    assert_eq!(preview.body["items"][0]["email"], "a@x.test");
    let listed = app
        .get(&format!("/api/v2/contacts?segment={id}"), &key)
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let dup = app
        .post(
            "/api/v2/segments",
            &key,
            json!({"name": "French lawyers", "expression": {"tag": "X"}}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    // Bulk tagging by filter, then untagging a parent removes its children.
    let bulk = app.post("/api/v2/contacts/tags", &key, json!({"filter": {"field": "language", "op": "eq", "value": "fr"}, "add": ["QUALITY:HIGH"]})).await;
    assert_eq!(
        (bulk.body["matched"].as_i64(), bulk.body["tagged"].as_i64()),
        (Some(2), Some(2)),
        "{}",
        bulk.body
    );
    assert_eq!(count(json!({"tag": "QUALITY:HIGH"})).await, 2);
    let untag = app
        .post(
            "/api/v2/contacts/tags",
            &key,
            json!({"filter": {"tag": "SECTOR:LEGAL"}, "remove": ["SECTOR:LEGAL"]}),
        )
        .await;
    assert_eq!(untag.body["untagged"], 2);
    assert_eq!(count(json!({"tag": "SECTOR:LEGAL"})).await, 0);
    let tags = app.get("/api/v2/tags", &key).await;
    let lawyer = tags.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "sector:legal/lawyer")
        .unwrap();
    let legal = tags.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "sector:legal")
        .unwrap();
    assert_eq!(lawyer["parent_id"], legal["id"]);

    // Filters and cursor pagination over the list.
    let fr = app.get("/api/v2/contacts?country=FR", &key).await;
    assert_eq!(fr.body["items"].as_array().unwrap().len(), 2);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v2/contacts?limit=3&cursor={c}"),
            None => "/api/v2/contacts?limit=3".into(),
        };
        let page = app.get(&path, &key).await;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["email"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["a@x.test", "b@x.test", "c@x.test", "d@x.test"]);

    // Another tenant sees none of it.
    let other = app.tenant("ulixai").await;
    let (_, other_key) = app.api_key(&other, "o").await;
    assert_eq!(
        app.get(&format!("/api/v2/segments/{id}"), &other_key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let contact_id = preview.body["items"][0]["id"].as_str().unwrap();
    for path in [
        format!("/api/v2/contacts/{contact_id}"),
        format!("/api/v2/contacts/{contact_id}/events"),
        format!("/api/v2/contacts/{contact_id}/export"),
    ] {
        let reply = app.get(&path, &other_key).await;
        assert_eq!(
            (reply.status, error_code(&reply).as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v2/contacts/{contact_id}"),
            Some(&other_key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v2/contacts", &other_key).await.body["items"],
        json!([])
    );
    app.finish().await;
}

#[tokio::test]
async fn csv_imports_streamed_with_dialects_aliases_and_an_error_report() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    app.post(
        "/api/v1/data-sources",
        &key,
        json!({"slug": "fichier", "name": "Fichier", "type": "csv"}),
    )
    .await;
    // UTF-8 with a BOM, semicolons, French headers, a custom column, a bad line.
    let utf8 = "\u{feff}Prénom;Nom;E-mail;Ville;Tags;Parrain\nRené;Dupont;rene@brand.test;Paris;TYPE:LAWYER,QUALITY:HIGH;Marc\nZoé;;pas-une-adresse;Lyon;;\n;;;;;\nAnne;Martin;anne@brand.test;Nice;;\n";
    let upload = app
        .client
        .post(format!(
            "{}/api/v2/contacts/import?source=fichier&filename=clients.csv",
            app.base
        ))
        .header("x-api-key", &key)
        .header("content-type", "text/csv")
        .body(utf8)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);
    let import: Value = upload.json().await.unwrap();
    assert_eq!(import["status"], "queued");
    app.run_jobs().await;
    let done = app
        .get(
            &format!("/api/v2/imports/{}", import["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    assert_eq!(
        (
            done.body["total"].as_i64(),
            done.body["created"].as_i64(),
            done.body["rejected"].as_i64()
        ),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(
        (
            done.body["delimiter"].as_str(),
            done.body["encoding"].as_str()
        ),
        (Some(";"), Some("utf-8"))
    );
    let report = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            done.body["errors_url"].as_str().unwrap()
        ))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(report.headers()["content-type"], "text/csv; charset=utf-8");
    let report = report.text().await.unwrap();
    assert!(
        report.starts_with("line,reason\n3,invalid address"),
        "{report}"
    );
    assert!(report.contains("\n4,no e-mail address"), "{report}");
    let rene = app.get("/api/v2/contacts?tag=TYPE:LAWYER", &key).await;
    let rene = &rene.body["items"][0];
    assert_eq!(
        (rene["first_name"].as_str(), rene["city"].as_str()),
        (Some("René"), Some("Paris"))
    );
    assert_eq!(rene["metadata"]["Parrain"], "Marc");
    assert_eq!(rene["field_sources"]["city"], "fichier");

    // Latin-1, tabs, multipart, at the path seed 003 names.
    let latin1: Vec<u8> = b"email\tfirst name\tcountry\nbeatrice@brand.test\tB\xe9atrice\tfr\nrene@brand.test\tRen\xe9\tFR\n".to_vec();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(latin1).file_name("export.csv"),
    );
    let upload = app
        .client
        .post(format!("{}/api/v2/campaigns/import-csv", app.base))
        .header("x-api-key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);
    let import: Value = upload.json().await.unwrap();
    assert_eq!(import["filename"], "export.csv");
    app.run_jobs().await;
    let done = app
        .get(
            &format!("/api/v2/imports/{}", import["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(
        (
            done.body["encoding"].as_str(),
            done.body["delimiter"].as_str()
        ),
        (Some("latin-1"), Some("\t"))
    );
    assert_eq!(
        (done.body["created"].as_i64(), done.body["updated"].as_i64()),
        (Some(1), Some(1)),
        "{}",
        done.body
    );
    let beatrice = app.get("/api/v2/contacts?country=FR", &key).await;
    assert!(
        beatrice.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["first_name"] == "Béatrice")
    );
    let no_email = app
        .client
        .post(format!("{}/api/v2/contacts/import", app.base))
        .header("x-api-key", &key)
        .body("name,city\nA,B\n")
        .send()
        .await
        .unwrap();
    let failed: Value = no_email.json().await.unwrap();
    app.run_jobs().await;
    let failed = app
        .get(
            &format!("/api/v2/imports/{}", failed["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(failed.body["status"], "failed");
    assert!(
        failed.body["error"]
            .as_str()
            .unwrap()
            .contains("no e-mail column")
    );
    let empty = app
        .client
        .post(format!("{}/api/v2/contacts/import", app.base))
        .header("x-api-key", &key)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}

/// A file longer than one chunk and one transaction (10 000 contacts each): rejected lines
/// keep their own line numbers in every chunk, an address met again in a later chunk
/// merges into the first, and every tag lands.
#[tokio::test]
async fn a_csv_of_several_chunks_keeps_line_numbers_and_merges_across_them() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    let mut csv = String::from("email,first_name,tags\n");
    // Data line k is on file line k + 1 (the header is line 1).
    for k in 1..=12_000u32 {
        match k {
            5_500 => csv.push_str("not-an-address,X,\n"),
            11_000 => csv.push_str("Person1@Chunks.test,Again,QUALITY:LOW\n"),
            11_500 => csv.push_str(",,\n"),
            _ => csv.push_str(&format!("person{k}@chunks.test,P{k},QUALITY:HIGH\n")),
        }
    }
    let done = import_csv(&app, &key, csv).await;
    assert_eq!(
        (
            done["total"].as_i64(),
            done["created"].as_i64(),
            done["rejected"].as_i64(),
            done["updated"].as_i64().unwrap() + done["duplicates"].as_i64().unwrap()
        ),
        (Some(12_000), Some(11_997), Some(2), 1),
        "{}",
        done
    );
    let report = error_report(&app, &key, &done).await;
    let lines: Vec<&str> = report
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(lines, ["5501", "11501"], "{report}");
    let count = |tag: &str| segment_count(&app, &key, json!({"tag": tag}));
    assert_eq!(count("QUALITY:HIGH").await, 11_997);
    assert_eq!(count("QUALITY:LOW").await, 1);
    let first = app.get("/api/v2/contacts?tag=QUALITY:LOW", &key).await;
    let first = &first.body["items"][0];
    assert_eq!(
        (first["email"].as_str(), first["first_name"].as_str()),
        (Some("person1@chunks.test"), Some("P1")),
        "a later source fills gaps, never overwrites"
    );
    app.finish().await;
}

/// Malformed lines each get their own error with their line number, and every good line
/// around them is kept: ragged lines (short and long), a stray quote, a 10 MB line, a
/// Latin-1 line in a UTF-8 file, binary junk, and a quote never closed at the end.
#[tokio::test]
async fn malformed_csv_lines_are_reported_one_by_one_and_good_lines_kept() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    let mut csv: Vec<u8> = b"email,first_name,city\n".to_vec();
    csv.extend_from_slice(b"good1@junk.test,Anne,Paris\n"); // 2
    csv.extend_from_slice(b"short@junk.test,Bob\n"); // 3
    csv.extend_from_slice(b"long@junk.test,Cid,Nice,extra\n"); // 4
    csv.extend_from_slice(b"bad\"quote@junk.test,Dan,Lyon\n"); // 5
    csv.extend_from_slice("good2@junk.test,Zoé,Lyon\n".as_bytes()); // 6
    csv.extend_from_slice(b"huge@junk.test,"); // 7: 10 MB, past the sniffed start
    csv.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    csv.extend_from_slice(b",Paris\n");
    csv.extend_from_slice(b"latin@junk.test,Ren\xe9,Paris\n"); // 8
    csv.extend_from_slice(b"\x00\x01\x02binary,\xff\xfe,\x00\n"); // 9
    csv.extend_from_slice(b"good3@junk.test,\"Quoted, with a comma\",Nice\n"); // 10
    csv.extend_from_slice(b"\"open@junk.test,Fay,Paris\n"); // 11
    let done = import_csv(&app, &key, csv).await;
    assert_eq!(
        (
            done["encoding"].as_str(),
            done["total"].as_i64(),
            done["created"].as_i64(),
            done["rejected"].as_i64()
        ),
        (Some("utf-8"), Some(10), Some(3), Some(7)),
        "{}",
        done
    );
    let report = error_report(&app, &key, &done).await;
    assert!(
        report.len() < 4096,
        "no line is copied into the report: {} bytes",
        report.len()
    );
    let reasons: Vec<(String, String)> = report
        .lines()
        .skip(1)
        .map(|l| {
            let (line, reason) = l.split_once(',').unwrap();
            (line.to_owned(), reason.trim_matches('"').to_owned())
        })
        .collect();
    let expected = [
        ("3", "ragged line: 2 fields where the header has 3"),
        ("4", "ragged line: 4 fields where the header has 3"),
        ("5", "invalid address"),
        ("7", "line too long"),
        ("8", "not UTF-8"),
        ("9", "binary data"),
        (
            "11",
            "a quote opened on this line is never closed: the rest of the file was read into one field (1 fields where the header has 3)",
        ),
    ];
    assert_eq!(reasons.len(), expected.len(), "{report}");
    for ((line, reason), (want_line, want)) in reasons.iter().zip(expected) {
        assert_eq!(line, want_line, "{report}");
        assert!(reason.starts_with(want), "line {line}: {reason}");
    }
    let kept = app.get("/api/v2/contacts?limit=50", &key).await;
    let mut names: Vec<&str> = kept.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["first_name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Anne", "Quoted, with a comma", "Zoé"]);
    // Each field remembers it came from the upload, not the API.
    for c in kept.body["items"].as_array().unwrap() {
        assert_eq!(c["field_sources"]["first_name"], "csv", "{c}");
    }
    app.finish().await;
}

/// A NUL character (which PostgreSQL's text cannot hold) refuses its contact with a
/// reason; the rest of the batch goes in.
#[tokio::test]
async fn a_nul_character_refuses_its_contact_not_the_batch() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    let reply = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"contacts": [
                {"email": "ok@nul.test", "firstName": "Ok", "metadata": {"note": "a\u{0}b"}},
                {"email": "name@nul.test", "firstName": "A\u{0}B"},
                {"email": "tag@nul.test", "tags": ["QUALITY:HI\u{0}GH"]},
            ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        statuses(&reply),
        ["created", "rejected", "rejected"],
        "{}",
        reply.body
    );
    let items = reply.body["results"].as_array().unwrap();
    assert_eq!(items[1]["reason"], "first_name contains a NUL character");
    assert!(
        items[2]["reason"].as_str().unwrap().contains("NUL"),
        "{}",
        items[2]
    );
    app.finish().await;
}

#[tokio::test]
async fn suppression_and_gdpr_export_and_erasure() {
    let app = TestApp::spawn().await;
    let (_, key) = setup(&app).await;
    app.suppress(&key, "Stop@Brand.test", "unsubscribed").await;
    let refused = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "stop@brand.test"}),
        )
        .await;
    assert_eq!(
        (
            statuses(&refused)[0].as_str(),
            refused.body["results"][0]["reason"].as_str()
        ),
        ("rejected", Some("suppressed (unsubscribed)"))
    );
    assert_eq!(
        app.post(
            "/api/v2/suppressions",
            &key,
            json!({"email": "stop@brand.test"})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );

    let created = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "gdpr@brand.test", "first_name": "Gina", "tags": ["TYPE:CLIENT"]}),
        )
        .await;
    let id = created.body["results"][0]["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = app
        .get(&format!("/api/v2/contacts/{id}/export"), &key)
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["contact"]["first_name"], "Gina");
    assert_eq!(export.body["contact"]["tags"], json!(["type:client"]));
    assert_eq!(export.body["events"][0]["type"], "IMPORTED");

    let erased = app
        .call(
            Method::DELETE,
            &format!("/api/v2/contacts/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v2/contacts/{id}"), &key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let leftovers: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM contact_events WHERE contact_id = $1")
            .bind(&id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(leftovers, 0);
    let list = app.get("/api/v2/suppressions?reason=erased", &key).await;
    assert_eq!(
        list.body["items"][0]["email"],
        Value::Null,
        "only the hash remains"
    );
    assert_eq!(
        list.body["items"][0]["email_hash"],
        ee_core::contacts::address_hash("gdpr@brand.test")
    );
    let again = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "GDPR@brand.test"}),
        )
        .await;
    assert_eq!(
        again.body["results"][0]["reason"], "suppressed (erased)",
        "never re-imported"
    );
    let audit = app
        .get("/api/v1/audit/logs?action=contact.erase", &app.admin)
        .await;
    assert!(
        !audit.body.to_string().contains("gdpr@brand.test"),
        "no address in the audit log"
    );
    let erased_id = list.body["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v2/suppressions/{erased_id}"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "an erasure stays"
    );
    let stop_id = app
        .get("/api/v2/suppressions?reason=unsubscribed", &key)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v2/suppressions/{stop_id}"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    app.finish().await;
}

#[tokio::test]
async fn folding_per_tenant_dedupes_plus_tags_and_gmail_dots() {
    let app = TestApp::spawn().await;
    let (tenant, key) = setup(&app).await;
    let reply = app.post("/api/v2/contacts/ingest", &key, json!({"contacts": [{"email": "jane+news@gmail.com"}, {"email": "j.a.n.e@googlemail.com"}]})).await;
    assert_eq!(
        statuses(&reply),
        ["created", "created"],
        "no folding by default"
    );
    let folded = app
        .call(Method::PATCH, &format!("/api/v1/tenants/{tenant}"), Some(&app.admin), Some(json!({"settings": {"contacts": {"folding": {"plus_tags": true, "gmail_dots": true}}}})))
        .await;
    assert_eq!(folded.status, StatusCode::OK);
    let reply = app.post("/api/v2/contacts/ingest", &key, json!({"contacts": [{"email": "Bob+a@gmail.com"}, {"email": "b.o.b+b@googlemail.com"}]})).await;
    assert_eq!(statuses(&reply), ["created", "duplicate"]);
    assert_eq!(reply.body["results"][1]["email"], "bob@gmail.com");
    app.finish().await;
}

/// Imports, suppressions and reports are the tenant's own: another tenant's key answers
/// 404 for them, whether by their id or by naming the tenant, and changes nothing.
#[tokio::test]
async fn imports_suppressions_and_reports_are_not_seen_across_tenants() {
    let app = TestApp::spawn().await;
    let (tenant, key) = setup(&app).await;
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;

    let import = import_csv(&app, &key, "email\nanne@brand.test\n").await;
    let id = import["id"].as_str().unwrap();
    for path in [
        format!("/api/v2/imports/{id}"),
        format!("/api/v2/imports/{id}/errors"),
    ] {
        assert_eq!(app.get(&path, &key).await.status, StatusCode::OK, "{path}");
        let r = app.get(&path, &other_key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let listed = app.get("/api/v2/imports", &other_key).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);

    let added = app
        .post(
            "/api/v2/suppressions",
            &key,
            json!({"email": "gone@brand.test", "reason": "manual"}),
        )
        .await;
    assert!(added.status.is_success(), "{}", added.body);
    let suppression = added.body["id"].as_str().unwrap().to_owned();
    let theirs = app.get("/api/v2/suppressions", &other_key).await;
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.body);
    let removed = app
        .call(
            Method::DELETE,
            &format!("/api/v2/suppressions/{suppression}"),
            Some(&other_key),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NOT_FOUND, "{}", removed.body);
    let mine = app.get("/api/v2/suppressions", &key).await;
    assert_eq!(
        mine.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        mine.body
    );

    for path in [
        format!("/api/v1/reports?tenant_id={tenant}"),
        "/api/v1/reports?tenant_id=sos-expat".to_owned(),
        format!("/api/v2/suppressions?tenant_id={tenant}"),
    ] {
        let r = app.get(&path, &other_key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    app.finish().await;
}
