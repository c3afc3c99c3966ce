//! Contact enrichment at ingest (seed 001 §3.2, step 3), end to end through the signed
//! webhook, the ingest API and a CSV import: countries written as codes or names in
//! several languages land as ISO 3166-1 alpha-2 codes, an unknown country refuses that
//! contact (with the reason) while the rest of the batch is stored, an absent language is
//! inferred from the country and marked, a given one kept and not marked, and a source's
//! category rules give a category to contacts that have none.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, error_code};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A contact as the API shows it: (country, language, language_inferred, category).
async fn shown(
    app: &TestApp,
    key: &str,
    id: &str,
) -> (Option<String>, Option<String>, bool, Option<String>) {
    let c = app.get(&format!("/api/v2/contacts/{id}"), key).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    (
        text(&c.body["country"]),
        text(&c.body["language"]),
        c.body["language_inferred"].as_bool().unwrap(),
        text(&c.body["category"]),
    )
}

fn expect(
    country: Option<&str>,
    language: Option<&str>,
    inferred: bool,
    category: Option<&str>,
) -> (Option<String>, Option<String>, bool, Option<String>) {
    (
        country.map(str::to_owned),
        language.map(str::to_owned),
        inferred,
        category.map(str::to_owned),
    )
}

#[tokio::test]
async fn a_webhook_batch_is_enriched_and_an_unknown_country_refused_alone() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("sos-expat").await;
    let (_, key) = app.api_key(&tenant, "scraper").await;
    let spain = app.tenant("sos-expat-es").await;

    // Category rules are checked when the source is created: 422 naming the field.
    let bad = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "scraper-pro-001", "name": "Scraper-Pro", "type": "scraper_pro",
                   "config": {"category_rules": [{"when": {"city": "Paris"}, "category": "X"}]}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(error_code(&bad), "validation_failed", "{}", bad.body);
    assert!(
        bad.body.to_string().contains("config.category_rules"),
        "{}",
        bad.body
    );
    let created = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "scraper-pro-001", "name": "Scraper-Pro", "type": "scraper_pro",
            "config": {"route": true, "category_rules": [
                {"when": {"tag": "SECTOR:LEGAL"}, "category": "LAWYER"},
                {"when": {"country": "Allemagne"}, "category": "EXPAT"},
            ]}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    // A routing rule written with a country's name holds for the code stored.
    let rule = app
        .post(
            "/api/v1/routing-rules",
            &app.admin,
            json!({"priority": 1, "conditions": {"country": "Espagne"}, "tenant_id": spain}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);

    let body = serde_json::to_vec(&json!({"source_id": "scraper-pro-001", "batch_id": "b1", "contacts": [
        {"email": "fr@brand.test", "country": "France"},
        {"email": "de-en@brand.test", "country": "Allemagne", "language": "en"},
        {"email": "de-legal@brand.test", "country": "Deutschland", "tags": ["SECTOR:LEGAL/NOTARY"]},
        {"email": "de-blog@brand.test", "country": "GERMANY", "category": "BLOGGER"},
        {"email": "atlantis@brand.test", "country": "Atlantis", "language": "fr"},
        {"email": "ru@brand.test", "country": "Германия"},
        {"email": "br@brand.test", "country": "bra"},
        {"email": "es@brand.test", "country": "España"},
        {"email": "es-pt@brand.test", "country": "espagne", "language": "pt"},
        {"email": "nowhere@brand.test", "firstName": "Nemo"},
    ]}))
    .unwrap();
    let now = app.clock.now_ms() / 1000;
    let reply = app
        .client
        .post(format!("{}/api/v1/webhooks/scraper-pro", app.base))
        .header("content-type", "application/json")
        .header("x-ee-timestamp", now.to_string())
        .header(
            "x-ee-signature",
            common::signatures::timestamped(secret.as_bytes(), now, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let result: Value = reply.json().await.unwrap();
    assert_eq!(
        result["counts"],
        json!({"created": 9, "updated": 0, "duplicate": 0, "rejected": 1}),
        "{result}"
    );
    let item = |i: usize| &result["results"][i];
    assert_eq!(item(4)["status"], "rejected");
    let reason = item(4)["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("country: \"Atlantis\" is not a country"),
        "{reason}"
    );
    let id = |i: usize| item(i)["contact_id"].as_str().unwrap().to_owned();
    for (i, want) in [
        (0, expect(Some("FR"), Some("FR"), true, None)),
        (1, expect(Some("DE"), Some("EN"), false, Some("EXPAT"))),
        (2, expect(Some("DE"), Some("DE"), true, Some("LAWYER"))),
        (3, expect(Some("DE"), Some("DE"), true, Some("BLOGGER"))),
        (5, expect(Some("DE"), Some("DE"), true, Some("EXPAT"))),
        (6, expect(Some("BR"), Some("PT"), true, None)),
        (9, expect(None, None, false, None)),
    ] {
        assert_eq!(item(i)["tenant_id"], tenant.as_str(), "{i}");
        assert_eq!(shown(&app, &key, &id(i)).await, want, "{i}: {}", item(i));
    }
    // The Spanish ones were routed by their code to the other tenant: not found here.
    for (i, want) in [
        (7, expect(Some("ES"), Some("ES"), true, None)),
        (8, expect(Some("ES"), Some("PT"), false, None)),
    ] {
        assert_eq!(item(i)["tenant_id"], spain.as_str(), "{i}");
        let here = app.get(&format!("/api/v2/contacts/{}", id(i)), &key).await;
        assert_eq!(here.status, StatusCode::NOT_FOUND, "{i}");
        assert_eq!(shown(&app, &app.admin, &id(i)).await, want, "{i}");
    }
    let atlantis = app
        .get("/api/v2/contacts?email=atlantis@brand.test", &key)
        .await;
    assert_eq!(atlantis.body["items"], json!([]), "nothing stored for it");
    let germans = app.get("/api/v2/contacts?country=DE", &key).await;
    assert_eq!(germans.body["items"].as_array().unwrap().len(), 4);

    // A language given later replaces the inferred one; an inferred one never replaces
    // a given one.
    let again = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [
                {"email": "fr@brand.test", "country": "FR", "language": "en"},
                {"email": "de-en@brand.test", "country": "Allemagne"},
            ]}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["results"][0]["status"], "updated");
    assert_eq!(again.body["results"][1]["status"], "duplicate");
    assert_eq!(
        shown(&app, &key, &id(0)).await,
        expect(Some("FR"), Some("EN"), false, None)
    );
    assert_eq!(
        shown(&app, &key, &id(1)).await,
        expect(Some("DE"), Some("EN"), false, Some("EXPAT"))
    );
    app.finish().await;
}

#[tokio::test]
async fn a_csv_import_reads_country_names_and_reports_an_unknown_one_by_line() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("ulixai").await;
    let (_, key) = app.api_key(&tenant, "import").await;
    let source = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "fichier", "name": "Fichier", "type": "csv",
                   "config": {"category_rules": [{"category": "PROSPECT"}]}}),
        )
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    // French headers (pays, langue), names in French, Spanish, German, Arabic and Chinese.
    let csv = "email;pays;langue;catégorie\n\
               marie@brand.test;France;;\n\
               hans@brand.test;Allemagne;de;PARTNER\n\
               lucia@brand.test;España;;\n\
               narnia@brand.test;Narnia;fr;\n\
               omar@brand.test;المغرب;;\n\
               li@brand.test;中国;en;\n\
               jo@brand.test;;;\n";
    let upload = app
        .client
        .post(format!(
            "{}/api/v2/contacts/import?source=fichier&filename=pays.csv",
            app.base
        ))
        .header("x-api-key", &key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);
    let import: Value = upload.json().await.unwrap();
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
        (Some(7), Some(6), Some(1)),
        "{}",
        done.body
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
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = report.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{report}");
    assert!(lines[0].starts_with("5,"), "line 5 of the file: {report}");
    assert!(lines[0].contains("Narnia"), "{report}");

    for (email, want) in [
        (
            "marie",
            expect(Some("FR"), Some("FR"), true, Some("PROSPECT")),
        ),
        (
            "hans",
            expect(Some("DE"), Some("DE"), false, Some("PARTNER")),
        ),
        (
            "lucia",
            expect(Some("ES"), Some("ES"), true, Some("PROSPECT")),
        ),
        (
            "omar",
            expect(Some("MA"), Some("AR"), true, Some("PROSPECT")),
        ),
        (
            "li",
            expect(Some("CN"), Some("EN"), false, Some("PROSPECT")),
        ),
        ("jo", expect(None, None, false, Some("PROSPECT"))),
    ] {
        let found = app
            .get(&format!("/api/v2/contacts?email={email}@brand.test"), &key)
            .await;
        let id = found.body["items"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{email}: {}", found.body))
            .to_owned();
        assert_eq!(shown(&app, &key, &id).await, want, "{email}");
    }
    app.finish().await;
}
