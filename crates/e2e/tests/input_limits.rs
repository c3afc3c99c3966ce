//! Input over a limit is refused with the limit named, never stored cut.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn long_fields_are_refused_and_large_bodies_told_the_limit() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    let source = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "api", "name": "API", "type": "api"}),
        )
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    let long = "é".repeat(ee_core::contacts::MAX_FIELD_CHARS + 1);
    let ingest = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [
                {"email": "long@example.test", "first_name": long},
                {"email": "fine@example.test", "first_name": "Fine"},
            ]}),
        )
        .await;
    assert_eq!(ingest.status, StatusCode::OK, "{}", ingest.body);
    let results = ingest.body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "rejected", "{}", ingest.body);
    let reason = results[0]["reason"]
        .as_str()
        .or(results[0]["error"].as_str())
        .unwrap();
    assert!(
        reason.contains("first_name") && reason.contains("500"),
        "{reason}"
    );
    assert_eq!(results[1]["status"], "created");
    let stored = app.get("/api/v2/contacts?limit=10", &key).await;
    let emails: Vec<&str> = stored.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["fine@example.test"]);

    // Every text field has its limit (ee_core::limits), named when passed.
    for (body, field, max) in [
        (
            json!({"to": "a@example.test", "subject": "s".repeat(999), "text": "x"}),
            "subject",
            998,
        ),
        (
            json!({"name": "t", "subject": "s", "html": "h".repeat(1_048_577), "language": "FR"}),
            "html",
            1_048_576,
        ),
        (
            json!({"to": "a@example.test", "subject": "s", "text": "x",
                "variables": {"NOTE": "n".repeat(65_537)}}),
            "variables.NOTE",
            65_536,
        ),
    ] {
        let path = if field == "html" {
            "/api/v2/templates"
        } else {
            "/api/v2/messages"
        };
        let r = app.post(path, &key, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], field);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("at most {max}")), "{message}");
    }

    // A body over the route's limit: 413 in the JSON error shape, stating the limit.
    let big = "x".repeat(3 * 1024 * 1024);
    let reply = app
        .post(
            "/api/v1/tenants",
            &app.admin,
            json!({"name": big, "slug": "big"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error"]["code"], "payload_too_large");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2097152"), "{message}");
    app.finish().await;
}
