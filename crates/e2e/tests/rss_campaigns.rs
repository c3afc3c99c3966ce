//! RSS-to-email campaigns end to end: a loopback HTTP server serves an RSS 2.0 feed, then
//! an RSS 1.0 one, then Atom; each set of new items is one run, one message per contact
//! through the test SMTP peer holding the items' titles and links; an unchanged feed sends
//! nothing; a malformed feed and one over the byte limit are recorded on the campaign with
//! why, nothing sent; a feed URL the outbound rule refuses is a 422 at creation; another
//! tenant's campaign is a 404.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use common::sending::{HOUR_MS, action, brand, contacts};
use common::{TestApp, error_code};
use ee_mail::testing::TestSmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A loopback HTTP server answering `/feed.xml` with whatever the test sets.
async fn feed_server() -> (String, Arc<Mutex<Vec<u8>>>) {
    let body: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let served = body.clone();
    let router = axum::Router::new().route(
        "/feed.xml",
        axum::routing::get(move || {
            let served = served.clone();
            async move {
                let bytes = served.lock().unwrap().clone();
                ([("content-type", "application/xml")], bytes)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}/feed.xml"), body)
}

fn rss2(items: &[(&str, &str)]) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>https://blog.test/</link><description>d</description>"#,
    );
    for (i, (title, link)) in items.iter().enumerate() {
        out.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><guid>{link}</guid><description>About {title}</description><pubDate>Mon, 0{} Mar 2026 10:00:00 GMT</pubDate></item>",
            i + 1
        ));
    }
    out.push_str("</channel></rss>");
    out
}

fn rss1(title: &str, link: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="https://blog.test/"><title>Blog</title><link>https://blog.test/</link><description>d</description></channel>
<item rdf:about="{link}"><title>{title}</title><link>{link}</link><description>About</description></item></rdf:RDF>"#
    )
}

fn atom(title: &str, link: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><id>urn:blog</id><updated>2026-03-09T00:00:00Z</updated>
<entry><title>{title}</title><id>{link}</id><link href="{link}"/><updated>2026-03-09T08:00:00Z</updated><summary>Sum</summary></entry></feed>"#
    )
}

/// A message's text with quoted-printable soft breaks joined and `=XX` decoded.
fn decoded(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data).replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn check(app: &TestApp) -> ee_app::campaigns::rss_runs::Checks {
    let checks = ee_app::campaigns::rss_runs::check_due(&app.services)
        .await
        .unwrap();
    app.deliver().await;
    checks
}

async fn runs(app: &TestApp, key: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v2/campaigns/{id}/runs"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn an_rss_campaign_sends_each_new_set_of_items_once_to_its_audience() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    let people = vec![
        ("ana@example.test".to_owned(), "en", vec!["READER"]),
        ("bob@example.test".to_owned(), "en", vec!["READER"]),
        ("other@example.test".to_owned(), "en", vec!["NOPE"]),
    ];
    contacts(&app, &key, &people).await;
    let template = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "digest", "subject": "The blog", "language": "en",
                   "from_email": "hello@brand.test",
                   "html": "<p>Hi [FNAME|you]</p><ul>[RSS_ITEMS]<li><a href=\"[RSS_ITEM_LINK]\">[RSS_ITEM_TITLE]</a> [RSS_ITEM_SUMMARY]</li>[/RSS_ITEMS]</ul><a href=\"[UNSUBSCRIBE_URL]\">stop</a>"}),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.body);
    let template = template.body["id"].as_str().unwrap().to_owned();
    let (url, feed) = feed_server().await;

    // Refused at creation: a feed the outbound rule forbids, an interval out of bounds.
    let base = json!({"name": "blog", "type": "rss", "template_id": template,
                      "audience": {"tags": ["READER"]}});
    let mut refused = base.clone();
    refused["rss"] = json!({"url": "http://169.254.169.254/latest/meta-data"});
    let r = app.post("/api/v2/campaigns", &key, refused).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("rss.url"), "{}", r.body);
    let mut short = base.clone();
    short["rss"] = json!({"url": url, "interval_minutes": 5});
    let r = app.post("/api/v2/campaigns", &key, short).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.to_string().contains("rss.interval_minutes"),
        "{}",
        r.body
    );
    let r = app.post("/api/v2/campaigns", &key, base.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_code(&r), "validation_failed");
    assert!(r.body.to_string().contains("\"rss\""), "{}", r.body);

    let mut good = base.clone();
    good["rss"] = json!({"url": url, "interval_minutes": 60});
    let created = app.post("/api/v2/campaigns", &key, good).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["type"], "rss");
    assert_eq!(
        created.body["rss"],
        json!({"url": url, "interval_minutes": 60})
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    *feed.lock().unwrap() = rss2(&[
        ("First post", "https://blog.test/p1"),
        ("Second post", "https://blog.test/p2"),
    ])
    .into_bytes();
    action(&app, &key, &id, "start").await;

    // The first check sends the items present: one message per reader, both items in it.
    let checks = check(&app).await;
    assert_eq!((checks.runs, checks.queued), (1, 2), "{checks:?}");
    let got = smtp.received();
    assert_eq!(got.len(), 2);
    for m in &got {
        let body = decoded(&m.data);
        for text in ["First post", "Second post", "blog.test/p1", "blog.test/p2"] {
            assert!(body.contains(text), "{text} missing: {body}");
        }
    }
    // The dispatcher leaves a sending rss campaign as it is.
    app.dispatch().await;
    let c = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(c.body["status"], "sending", "{}", c.body);

    // Not due before its interval; unchanged when due: nothing sent.
    assert_eq!(check(&app).await.checked, 0);
    app.clock.advance_ms(HOUR_MS);
    let checks = check(&app).await;
    assert_eq!((checks.checked, checks.runs), (1, 0), "{checks:?}");
    assert_eq!(smtp.received_count(), 2);

    // RSS 1.0, then Atom: each new item one run.
    for (n, body, title) in [
        (3, rss1("Third post", "https://blog.test/p3"), "Third post"),
        (
            4,
            atom("Fourth post", "https://blog.test/p4"),
            "Fourth post",
        ),
    ] {
        *feed.lock().unwrap() = body.into_bytes();
        app.clock.advance_ms(HOUR_MS);
        let checks = check(&app).await;
        assert_eq!((checks.runs, checks.queued), (1, 2), "{n}: {checks:?}");
        let got = smtp.received();
        assert_eq!(got.len(), 2 * (n - 1));
        for m in &got[got.len() - 2..] {
            let body = decoded(&m.data);
            assert!(body.contains(title), "{body}");
            assert!(!body.contains("First post"), "{body}");
        }
    }
    let mut rcpts: Vec<String> = smtp.received().iter().map(|m| m.rcpt_to.clone()).collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!(rcpts, ["ana@example.test", "bob@example.test"]);

    // A malformed feed, then one over the limit: the reason kept, nothing sent.
    *feed.lock().unwrap() = b"<html><body>not a feed".to_vec();
    app.clock.advance_ms(HOUR_MS);
    assert_eq!(check(&app).await.failed, 1);
    let r = runs(&app, &key, &id).await;
    assert!(
        r["last_error"].as_str().unwrap().contains("not a feed"),
        "{r}"
    );
    let mut huge = rss2(&[("Huge", "https://blog.test/huge")]).into_bytes();
    huge.extend(std::iter::repeat_n(b' ', ee_core::rss::MAX_FEED_BYTES));
    *feed.lock().unwrap() = huge;
    app.clock.advance_ms(HOUR_MS);
    assert_eq!(check(&app).await.failed, 1);
    let r = runs(&app, &key, &id).await;
    assert!(r["last_error"].as_str().unwrap().contains("bytes"), "{r}");
    assert_eq!(smtp.received_count(), 6);

    // The history: three runs, the latest first; the error gone after a good check.
    assert_eq!(r["runs_count"], 3);
    assert_eq!(r["runs"][0]["titles"], json!(["Fourth post"]));
    assert_eq!(r["runs"][0]["recipients"], 2);
    assert_eq!(r["runs"][2]["items"], 2);
    *feed.lock().unwrap() = atom("Fourth post", "https://blog.test/p4").into_bytes();
    app.clock.advance_ms(HOUR_MS);
    assert_eq!(check(&app).await.runs, 0);
    assert_eq!(runs(&app, &key, &id).await["last_error"], Value::Null);

    // The scheduled job does the same: a new item, one run.
    *feed.lock().unwrap() = rss2(&[("Fifth post", "https://blog.test/p5")]).into_bytes();
    app.clock.advance_ms(HOUR_MS);
    let r = app
        .post(
            "/api/v1/jobs/scheduled.rss_feeds/run",
            &app.admin,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    app.run_jobs().await;
    app.deliver().await;
    assert_eq!(smtp.received_count(), 8);
    assert_eq!(runs(&app, &key, &id).await["runs_count"], 4);

    // Paused, it is not checked.
    action(&app, &key, &id, "pause").await;
    *feed.lock().unwrap() = rss2(&[("Sixth post", "https://blog.test/p6")]).into_bytes();
    app.clock.advance_ms(HOUR_MS);
    assert_eq!(check(&app).await.checked, 0);
    assert_eq!(smtp.received_count(), 8);

    // Another tenant sees no such campaign.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "theirs").await;
    let r = app
        .get(&format!("/api/v2/campaigns/{id}/runs"), &other_key)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.finish().await;
}
