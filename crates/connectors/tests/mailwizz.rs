//! The MailWizz client against a fake MailWizz (MailWizz is PHP software we cannot run
//! here) that implements the endpoints, the `X-API-KEY` check, PHP-nested form bodies,
//! base64 contents, the `status`/`error` answer shapes, 404s and pagination, and records
//! every request.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use ee_connectors::mailwizz::{Client, MailWizzError};
use serde_json::{Map, Value, json};

const KEY: &str = "mw-test-key";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    form: Vec<(String, String)>,
}

#[derive(Default)]
struct Fake {
    requests: Vec<Recorded>,
    /// Answer this many requests with 503 first.
    fail_next: usize,
    next_id: usize,
    lists: BTreeMap<String, Vec<Value>>,
    campaigns: BTreeMap<String, Value>,
    templates: BTreeMap<String, Value>,
    emails: BTreeMap<String, Value>,
}

type Shared = Arc<Mutex<Fake>>;

/// `a[b][0][c]=v` pairs into nested JSON (PHP's reading of a form).
fn unflatten(pairs: &[(String, String)]) -> Value {
    fn insert(node: &mut Value, parts: &[String], value: &str) {
        let map = node.as_object_mut().unwrap();
        if parts.len() == 1 {
            map.insert(parts[0].clone(), Value::String(value.to_owned()));
        } else {
            let child = map
                .entry(parts[0].clone())
                .or_insert_with(|| Value::Object(Map::new()));
            insert(child, &parts[1..], value);
        }
    }
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let (head, rest) = key.split_once('[').unwrap_or((key, ""));
        let mut parts = vec![head.to_owned()];
        parts.extend(
            rest.split('[')
                .map(|p| p.trim_end_matches(']').to_owned())
                .filter(|p| !p.is_empty()),
        );
        insert(&mut root, &parts, value);
    }
    root
}

fn success(extra: Value) -> Response {
    let mut body = json!({"status": "success"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error(status: StatusCode, text: &str) -> Response {
    (
        status,
        axum::Json(json!({"status": "error", "error": text})),
    )
        .into_response()
}

fn decode(b64: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

async fn handle(
    State(fake): State<Shared>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded_pairs(&body);
    let mut f = fake.lock().unwrap();
    f.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        form: form.clone(),
    });
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(StatusCode::UNAUTHORIZED, "Invalid API key.");
    }
    if f.fail_next > 0 {
        f.fail_next -= 1;
        return error(StatusCode::SERVICE_UNAVAILABLE, "Try again later.");
    }
    let data = unflatten(&form);
    let parts: Vec<&str> = path.split('/').collect();
    f.next_id += 1;
    let new_uid = format!("uid{:04}", f.next_id);
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["lists"]) => {
            if data["general"]["name"].as_str().unwrap_or("").is_empty() {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "general[name] is required",
                );
            }
            f.lists.insert(new_uid.clone(), Vec::new());
            success(json!({"list_uid": new_uid}))
        }
        ("GET", ["lists", uid]) => match f.lists.get(*uid) {
            Some(subs) => success(
                json!({"data": {"record": {"general": {"list_uid": uid}, "subscribers_count": subs.len()}}}),
            ),
            None => error(StatusCode::NOT_FOUND, "The list does not exist."),
        },
        ("POST", ["lists", uid, "subscribers"]) => {
            let Some(subs) = f.lists.get_mut(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let email = data["EMAIL"].as_str().unwrap_or("").to_owned();
            if !email.contains('@') {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Please provide a valid email address.",
                );
            }
            let mut record = data.clone();
            record["subscriber_uid"] = json!(new_uid);
            record["status"] = json!("confirmed");
            subs.push(record.clone());
            success(json!({"data": {"record": {"subscriber_uid": new_uid, "email": email}}}))
        }
        ("POST", ["lists", uid, "subscribers", "bulk"]) => {
            let next = f.next_id;
            let Some(subs) = f.lists.get_mut(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let mut out = Vec::new();
            // PHP keeps the indexes' order; a JSON map sorts them as text.
            let mut items: Vec<(usize, Value)> = data["subscribers"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.parse().unwrap_or(usize::MAX), v))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            for (i, (_, item)) in items.iter().enumerate() {
                let mut record = item.clone();
                let sub_uid = format!("bulk{next}-{i}");
                record["subscriber_uid"] = json!(sub_uid);
                record["status"] = json!("confirmed");
                subs.push(record);
                out.push(json!({"data": {"subscriber_uid": sub_uid}, "status": "success"}));
            }
            success(json!({"data": {"records": out}}))
        }
        ("GET", ["lists", uid, "subscribers"]) => {
            let Some(subs) = f.lists.get(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let page: usize = q("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let per_page: usize = q("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(10)
                .max(1);
            let records: Vec<Value> = subs
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .cloned()
                .collect();
            success(
                json!({"data": {"count": subs.len(), "total_pages": subs.len().div_ceil(per_page),
                "current_page": page, "records": records}}),
            )
        }
        ("GET", ["lists", uid, "subscribers", "search-by-email"]) => {
            let email = q("EMAIL").unwrap_or_default();
            match f
                .lists
                .get(*uid)
                .and_then(|s| s.iter().find(|r| r["EMAIL"] == email.as_str()))
            {
                Some(r) => success(
                    json!({"data": {"subscriber_uid": r["subscriber_uid"], "status": r["status"]}}),
                ),
                None => error(
                    StatusCode::NOT_FOUND,
                    "The subscriber does not exist in this list.",
                ),
            }
        }
        (m, ["lists", uid, "subscribers", sub]) | (m, ["lists", uid, "subscribers", sub, _]) => {
            let unsubscribe = parts.len() == 5 && parts[4] == "unsubscribe";
            let Some(subs) = f.lists.get_mut(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let Some(pos) = subs.iter().position(|r| r["subscriber_uid"] == *sub) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "The subscriber does not exist in this list.",
                );
            };
            match (m, unsubscribe) {
                ("PUT", true) => {
                    subs[pos]["status"] = json!("unsubscribed");
                    success(json!({}))
                }
                ("PUT", false) => {
                    for (k, v) in data.as_object().unwrap() {
                        subs[pos][k] = v.clone();
                    }
                    success(json!({"data": {"record": subs[pos].clone()}}))
                }
                ("DELETE", false) => {
                    subs.remove(pos);
                    success(json!({}))
                }
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed."),
            }
        }
        ("POST", ["campaigns"]) => {
            let mut campaign = data["campaign"].clone();
            let kind = campaign["type"].as_str().unwrap_or("regular").to_owned();
            if !["regular", "autoresponder"].contains(&kind.as_str()) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "campaign[type] is invalid",
                );
            }
            let content = campaign["template"]["content"].as_str().map(decode);
            campaign["template"]["content"] = json!(content);
            campaign["status"] = json!("sending");
            f.campaigns.insert(new_uid.clone(), campaign);
            success(json!({"campaign_uid": new_uid}))
        }
        ("GET", ["campaigns", uid]) => match f.campaigns.get(*uid) {
            Some(c) => success(json!({"data": {"record": c}})),
            None => error(StatusCode::NOT_FOUND, "The campaign does not exist."),
        },
        ("GET", ["campaigns", uid, "stats"]) => match f.campaigns.get(*uid) {
            Some(_) => success(
                json!({"data": {"subscribers_count": 3, "processed_count": 3,
                "delivery_success_count": 3, "opens_count": 2, "clicks_count": 1, "bounces_count": 0}}),
            ),
            None => error(StatusCode::NOT_FOUND, "The campaign does not exist."),
        },
        ("PUT", ["campaigns", uid, "pause-unpause"]) => match f.campaigns.get_mut(*uid) {
            Some(c) => {
                let now = if c["status"] == "paused" {
                    "sending"
                } else {
                    "paused"
                };
                c["status"] = json!(now);
                success(json!({"data": {"campaign": {"status": now}}}))
            }
            None => error(StatusCode::NOT_FOUND, "The campaign does not exist."),
        },
        ("POST", ["templates"]) => {
            let mut t = data["template"].clone();
            t["content"] = json!(t["content"].as_str().map(decode));
            f.templates.insert(new_uid.clone(), t);
            success(json!({"template_uid": new_uid}))
        }
        ("PUT", ["templates", uid]) => {
            let mut t = data["template"].clone();
            t["content"] = json!(t["content"].as_str().map(decode));
            match f.templates.get_mut(*uid) {
                Some(existing) => {
                    *existing = t;
                    success(json!({}))
                }
                None => error(StatusCode::NOT_FOUND, "The template does not exist."),
            }
        }
        ("POST", ["transactional-emails"]) => {
            let mut e = data["email"].clone();
            for field in ["body", "plain_text"] {
                if let Some(b) = e[field].as_str() {
                    e[field] = json!(decode(b));
                }
            }
            if e["to_email"].as_str().unwrap_or("").is_empty() {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "email[to_email] is required",
                );
            }
            f.emails.insert(new_uid.clone(), e);
            success(json!({"email_uid": new_uid}))
        }
        _ => error(StatusCode::NOT_FOUND, "The requested page does not exist."),
    }
}

fn serde_urlencoded_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn start() -> (String, Shared) {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/api/{*path}",
            get(handle).post(handle).put(handle).delete(handle),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/api"), fake)
}

fn client(base: &str, key: &str) -> Client {
    Client::new(base, key, Duration::from_secs(5))
        .unwrap()
        .with_retries(2, Duration::from_millis(10))
}

fn fields(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

#[tokio::test]
async fn lists_and_subscribers() {
    let (base, fake) = start().await;
    let bad = client(&base, "wrong");
    assert!(matches!(
        bad.get_lists(1, 10).await,
        Err(MailWizzError::Unauthorized)
    ));
    let mw = client(&base, KEY);
    let missing = mw.create_list(&json!({"general": {"name": ""}})).await;
    assert!(
        matches!(missing, Err(MailWizzError::Rejected(ref e)) if e.contains("general[name]")),
        "{missing:?}"
    );
    let list = mw
        .create_list(&json!({"general": {"name": "SOS Expat FR", "description": "x"},
            "defaults": {"from_name": "SOS", "from_email": "hello@sos-expat.com", "reply_to": "hello@sos-expat.com"}}))
        .await
        .unwrap();
    assert_eq!(
        mw.get_list(&list).await.unwrap()["record"]["general"]["list_uid"],
        list.as_str()
    );
    assert!(matches!(
        mw.get_list("nope").await,
        Err(MailWizzError::NotFound(_))
    ));

    let uid = mw
        .create_subscriber(
            &list,
            &fields(&[
                ("EMAIL", "jean@example.test"),
                ("FNAME", "Jean"),
                ("LNAME", "Dupont"),
                ("CITY", "Lyon"),
            ]),
        )
        .await
        .unwrap();
    let found = mw
        .search_by_email(&list, "jean@example.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found["subscriber_uid"], uid.as_str());
    assert!(
        mw.search_by_email(&list, "nobody@example.test")
            .await
            .unwrap()
            .is_none()
    );
    mw.update_subscriber(&list, &uid, &fields(&[("FNAME", "Jean-Marc")]))
        .await
        .unwrap();
    mw.unsubscribe(&list, &uid).await.unwrap();
    {
        let f = fake.lock().unwrap();
        let sub = &f.lists[&list][0];
        assert_eq!(
            (sub["FNAME"].as_str(), sub["status"].as_str()),
            (Some("Jean-Marc"), Some("unsubscribed"))
        );
        let created = f
            .requests
            .iter()
            .find(|r| r.path.ends_with("/subscribers") && r.method == "POST")
            .unwrap();
        assert!(
            created
                .form
                .contains(&("EMAIL".into(), "jean@example.test".into()))
        );
    }
    mw.delete_subscriber(&list, &uid).await.unwrap();
    assert!(matches!(
        mw.delete_subscriber(&list, &uid).await,
        Err(MailWizzError::NotFound(_))
    ));

    // Bulk: one request, PHP-nested fields.
    let many: Vec<Map<String, Value>> = (0..25)
        .map(|i| {
            fields(&[
                ("EMAIL", &format!("user{i}@example.test")),
                ("FNAME", &format!("U{i}")),
            ])
        })
        .collect();
    let answer = mw.create_subscribers_bulk(&list, &many).await.unwrap();
    assert_eq!(answer["records"].as_array().unwrap().len(), 25);
    {
        let f = fake.lock().unwrap();
        let bulk = f
            .requests
            .iter()
            .find(|r| r.path.ends_with("/bulk"))
            .unwrap();
        assert!(bulk.form.contains(&(
            "subscribers[24][EMAIL]".into(),
            "user24@example.test".into()
        )));
    }
    // Pagination by page and per_page.
    let page3 = mw.get_subscribers(&list, 3, 10).await.unwrap();
    assert_eq!(
        (
            page3["count"].as_u64(),
            page3["records"].as_array().unwrap().len()
        ),
        (Some(25), 5)
    );
    assert_eq!(page3["records"][0]["EMAIL"], "user20@example.test");
}

#[tokio::test]
async fn campaigns_templates_and_transactional_emails() {
    let (base, fake) = start().await;
    let mw = client(&base, KEY);
    let html = "<html><body><p>Bonjour [FNAME] — été</p></body></html>";
    let campaign = mw
        .create_campaign(&json!({"name": "Welcome FR", "type": "autoresponder", "from_name": "SOS",
            "from_email": "hello@sos-expat.com", "subject": "Bienvenue", "reply_to": "hello@sos-expat.com",
            "send_at": "2026-11-22 10:00:00", "list_uid": "l1", "template": {"content": html, "inline_css": "no"}}))
        .await
        .unwrap();
    {
        let f = fake.lock().unwrap();
        let sent = f.requests.iter().find(|r| r.path == "campaigns").unwrap();
        let content = sent
            .form
            .iter()
            .find(|(k, _)| k == "campaign[template][content]")
            .unwrap();
        assert_eq!(decode(&content.1), html, "the template travels in base64");
        assert_eq!(f.campaigns[&campaign]["template"]["content"], html);
    }
    assert_eq!(
        mw.get_campaign(&campaign).await.unwrap()["record"]["name"],
        "Welcome FR"
    );
    assert_eq!(
        mw.campaign_stats(&campaign).await.unwrap()["opens_count"],
        2
    );
    assert_eq!(
        mw.pause_unpause(&campaign).await.unwrap()["campaign"]["status"],
        "paused"
    );
    assert_eq!(
        mw.pause_unpause(&campaign).await.unwrap()["campaign"]["status"],
        "sending"
    );
    assert!(matches!(
        mw.campaign_stats("missing").await,
        Err(MailWizzError::NotFound(_))
    ));
    let wrong = mw
        .create_campaign(&json!({"name": "x", "type": "weekly"}))
        .await;
    assert!(
        matches!(wrong, Err(MailWizzError::Rejected(_))),
        "{wrong:?}"
    );

    let template = mw.create_template("welcome_v2_fr", html).await.unwrap();
    mw.update_template(&template, "welcome_v2_fr", "<p>v2</p>")
        .await
        .unwrap();
    assert_eq!(
        fake.lock().unwrap().templates[&template]["content"],
        "<p>v2</p>"
    );
    assert!(matches!(
        mw.update_template("nope", "x", "y").await,
        Err(MailWizzError::NotFound(_))
    ));

    let email = mw
        .create_transactional_email(&json!({"to_name": "Jean", "to_email": "expert@test.com",
            "from_name": "SOS-Expat", "from_email": "noreply@sos-expat.com", "subject": "Bienvenue chez SOS",
            "body": html, "plain_text": "Bonjour", "send_at": "2026-11-21 12:00:00"}))
        .await
        .unwrap();
    let stored = fake.lock().unwrap().emails[&email].clone();
    assert_eq!(
        (stored["body"].as_str(), stored["plain_text"].as_str()),
        (Some(html), Some("Bonjour"))
    );
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let (base, fake) = start().await;
    let mw = client(&base, KEY);
    fake.lock().unwrap().fail_next = 2;
    let list = mw
        .create_list(&json!({"general": {"name": "L"}}))
        .await
        .unwrap();
    assert!(!list.is_empty());
    assert_eq!(
        fake.lock().unwrap().requests.len(),
        3,
        "two 503s, then success"
    );

    fake.lock().unwrap().requests.clear();
    let refused = mw
        .create_subscriber(&list, &fields(&[("EMAIL", "not-an-address")]))
        .await;
    assert!(
        matches!(refused, Err(MailWizzError::Rejected(ref e)) if e.contains("valid email")),
        "{refused:?}"
    );
    assert_eq!(
        fake.lock().unwrap().requests.len(),
        1,
        "a 4xx is not retried"
    );

    fake.lock().unwrap().requests.clear();
    fake.lock().unwrap().fail_next = 10;
    let down = mw.get_lists(1, 10).await;
    assert!(
        matches!(down, Err(MailWizzError::Unavailable(_))),
        "{down:?}"
    );
    assert_eq!(
        fake.lock().unwrap().requests.len(),
        3,
        "the first try and two retries"
    );

    // Nothing listening: a connection failure is retried, then reported.
    let closed = client("http://127.0.0.1:9/api", KEY);
    assert!(matches!(
        closed.get_lists(1, 10).await,
        Err(MailWizzError::Unavailable(_))
    ));
}
