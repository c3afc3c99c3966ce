use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Email-Engine API", description = "Self-hosted email infrastructure: tenants, sending infrastructure, contacts, campaigns, delivery."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Login, token refresh and logout"),
        (name = "tenants", description = "Brands, each fully isolated"),
        (name = "users", description = "Accounts (admin only)"),
        (name = "api-keys", description = "Keys for machine clients, sent as X-API-KEY"),
        (name = "audit", description = "Who changed what"),
        (name = "ips", description = "Sending IPs and their state machine"),
        (name = "warm-up", description = "Warm-up plans and sending quotas"),
        (name = "domains", description = "Sending domains, DKIM keys and DNS checks"),
        (name = "blacklists", description = "DNS blacklist checks"),
        (name = "contacts", description = "Ingestion, validation, tags, imports, suppression, GDPR"),
        (name = "segments", description = "Saved filters over contacts"),
        (name = "sources", description = "Data sources, their webhooks, routing rules"),
        (name = "templates", description = "Multilingual templates, variables, preview, selection"),
        (name = "messages", description = "The transactional API and message states"),
        (name = "delivery", description = "Delivery routes (relays) and tenants' delivery settings"),
        (name = "mailwizz", description = "A tenant's MailWizz instances (keys sealed, never returned)"),
        (name = "powermta", description = "The generated PowerMTA configuration (admin)"),
        (name = "feedback", description = "Bounces, complaints and deliveries from every source, classified and applied"),
        (name = "tracking", description = "Open pixel, click redirects, unsubscribe (public)"),
        (name = "jobs", description = "Scheduled jobs and the job queue (admin)"),
        (name = "alerts", description = "Alerts raised by the infrastructure checks"),
        (name = "system", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-KEY"))),
        );
        // The admin UI's session (`POST /api/v1/auth/session`); changes also need the
        // `X-CSRF-Token` header that call answers.
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("ee_session"))),
        );
        // A data source's HMAC: `x-ee-signature: sha256=HMAC(secret, "<x-ee-timestamp>.<body>")`
        // with `x-ee-source` naming it.
        components.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-ee-signature"))),
        );
    }
}

/// The finishing pass over the generated document, for what the derive macros leave out
/// or get wrong, applied to every operation alike:
/// - an operationId unique across the document (`<tag>_<handler>`: utoipa names each
///   operation after its handler, and seventeen handlers are called `list`);
/// - a parameter declared in the path but absent from the path template is a query
///   parameter (`IntoParams` defaults to the path), required only when not nullable;
/// - every response has a description (its status's reason phrase when none was given);
/// - the errors every operation can answer are listed: 400 (malformed request, two
///   credentials), 401 (secured operations), 404 (operations naming a row or a tenant),
///   413 and 422 (bodies and parameters), 429 (the API's rate limit).
pub fn finish(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        let mut used = std::collections::HashSet::new();
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    finish_operation(path, method, operation, &mut used);
                }
            }
        }
    }
    serde_json::from_value(value).unwrap_or(doc)
}

fn finish_operation(
    path: &str,
    method: &str,
    operation: &mut serde_json::Map<String, serde_json::Value>,
    used: &mut std::collections::HashSet<String>,
) {
    use serde_json::{Value, json};
    // `Map`'s index panics on a missing key: an operation without tags must not.
    let tag = operation
        .get("tags")
        .and_then(|tags| tags.get(0))
        .and_then(Value::as_str)
        .unwrap_or("api")
        .replace('-', "_");
    let handler = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or(method)
        .to_owned();
    let mut id = format!("{tag}_{handler}");
    if !used.insert(id.clone()) {
        id = format!("{method}_{}", path.replace(['/', '{', '}', '-'], "_"));
        used.insert(id.clone());
    }
    operation.insert("operationId".into(), json!(id));

    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters.iter_mut() {
            let name = parameter["name"].as_str().unwrap_or_default().to_owned();
            if parameter["in"] == "path" && !path.contains(&format!("{{{name}}}")) {
                let nullable = match &parameter["schema"]["type"] {
                    Value::Array(types) => types.iter().any(|t| t == "null"),
                    _ => parameter["schema"].get("oneOf").is_some(),
                };
                parameter["in"] = json!("query");
                parameter["required"] = json!(!nullable);
            }
        }
    }

    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.contains_key("requestBody");
    let has_parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let names_a_row = path.contains('{')
        || has_body
        || operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| {
                p.iter()
                    .any(|p| p["name"] == "tenant" || p["name"] == "tenant_id")
            });
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    let mut standard = vec![(
        "400",
        "The request is malformed, or carries two credentials",
    )];
    if secured {
        standard.push(("401", "No valid credential"));
    }
    if has_body {
        standard.push((
            "413",
            "The body is larger than allowed; `details.limit` says by how much",
        ));
    }
    if names_a_row {
        standard.push((
            "404",
            "What the request names does not exist, or is another tenant's",
        ));
    }
    if has_body || has_parameters {
        standard.push(("422", "A field or parameter is invalid; the error names it"));
    }
    if path.starts_with("/api/") {
        standard.push((
            "429",
            "Too many requests; retry after the `retry-after` header",
        ));
    }
    for (status, description) in standard {
        responses
            .entry(status)
            .or_insert_with(|| error(description));
    }
    for (status, response) in responses.iter_mut() {
        let missing = response
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if missing {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Answer");
            response["description"] = json!(reason);
        }
    }
}
