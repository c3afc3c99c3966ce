//! The OpenAPI document is valid by an independent validator (openapi-spec-validator, from
//! PyPI: `pip install openapi-spec-validator`), its operation ids are unique, its query
//! parameters are query parameters, and the router serves every operation it lists.
//! (The converse holds by construction: every route is added with `routes!`, which adds it
//! to the document too; a path the document lacks answers the fallback's "no such route".)
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const VALIDATE: &str = r#"
import sys
from openapi_spec_validator import OpenAPIV31SpecValidator
from openapi_spec_validator.readers import read_from_filename
spec, _ = read_from_filename(sys.argv[1])
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for e in errors[:20]:
    print(e.message)
sys.exit(1 if errors else 0)
"#;

async fn document(app: &TestApp) -> Value {
    let reply = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

#[tokio::test]
async fn the_document_is_valid_by_an_independent_validator() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&file)
        .output()
        .expect("python3 with openapi-spec-validator (pip install openapi-spec-validator)");
    assert!(
        out.status.success(),
        "openapi-spec-validator:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut ids = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{method} {path}: {id} twice");
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name} is not in the path"
                    );
                }
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}: no description"
                );
            }
        }
    }
    // The filters of a list are query parameters that Swagger UI can send.
    let audit = &doc["paths"]["/api/v1/audit/logs"]["get"]["parameters"];
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "action" && p["in"] == "query" && p["required"] == false),
        "{audit}"
    );
    app.finish().await;
}

#[tokio::test]
async fn the_router_serves_every_operation_of_the_document() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Path parameters get a value no row has: the route exists, the row does not.
        let concrete: String = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "no-such-id"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body =
                matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
            let reply = app
                .call(method.clone(), &concrete, Some(&app.admin), body)
                .await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                reply.body
            );
            assert!(
                !(reply.status == StatusCode::NOT_FOUND
                    && reply.body["error"]["message"] == "no such route"),
                "{method} {path} is in the document but not served"
            );
            assert!(
                !reply.status.is_server_error(),
                "{method} {concrete}: {} {}",
                reply.status,
                reply.body
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} operations");
    let missing = app
        .call(Method::GET, "/api/v1/no-such-thing", Some(&app.admin), None)
        .await;
    assert_eq!(missing.body["error"]["message"], "no such route");
    app.finish().await;
}

/// Every operation the README's troubleshooting section sends a reader to is one the API
/// has (method and path, `{id}` for an identifier).
#[tokio::test]
async fn the_troubleshooting_section_names_operations_that_exist() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("\n## Troubleshooting").expect("the section");
    let section = &readme[start..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |e| e + 1)];
    // Lines are wrapped: read the section as one line.
    let text = section.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut named = Vec::new();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        for (at, _) in text.match_indices(&format!("{method} /api/")) {
            let rest = &text[at + method.len() + 1..];
            let end = rest
                .find(|c: char| c == '`' || c == '?' || c.is_whitespace())
                .unwrap_or(rest.len());
            named.push((method.to_ascii_lowercase(), rest[..end].to_owned()));
        }
    }
    assert!(named.len() >= 10, "{named:?}");
    for (method, path) in &named {
        assert!(
            doc["paths"][path.as_str()][method.as_str()].is_object(),
            "README troubleshooting names {method} {path}, which the API does not have"
        );
    }
    app.finish().await;
}
