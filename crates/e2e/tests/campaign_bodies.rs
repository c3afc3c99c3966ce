//! A campaign's bodies are rendered when sent: the queue keeps the template's version and
//! the contact, no body; what goes out is that version (not a later edit) with the
//! contact as it is at send time; a template in use by a running campaign cannot be
//! deleted.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::TestApp;
use common::sending::{action, brand, contacts, received_by};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// (html, text, template version) of the campaign's stored messages.
async fn stored(
    app: &TestApp,
    campaign: &str,
) -> Vec<(Option<String>, Option<String>, Option<i64>)> {
    sqlx::query_as("SELECT html, text_body, template_version FROM messages WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_all(app.db.pool())
        .await
        .unwrap()
}

async fn campaign(app: &TestApp, key: &str, template: &str) -> String {
    let created = app
        .post(
            "/api/v2/campaigns",
            key,
            json!({"name": format!("c-{template}"), "template_id": template,
                   "audience": {"all": true}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(app, key, &id, "start").await;
    id
}

#[tokio::test]
async fn bodies_are_rendered_at_send_from_the_queued_version_with_todays_contact() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    // No first name yet: a later source fills the gap.
    let first = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [{"email": "marie@example.test", "language": "fr"}]}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let id = campaign(&app, &key, &template).await;
    assert_eq!(app.dispatch().await.queued, 1);
    assert_eq!(
        stored(&app, &id).await,
        [(None, None, Some(1))],
        "no body queued"
    );

    // Between queueing and sending: the contact gets a first name, the template is edited.
    let renamed = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [
                {"email": "marie@example.test", "firstName": "Maryse", "language": "fr"}]}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let edited = app
        .call(
            Method::PUT,
            &format!("/api/v2/templates/{template}"),
            Some(&key),
            Some(json!({"name": "news_fr", "subject": "Bonjour [FNAME|ami]",
                        "html": "<p>EDITED</p>", "language": "fr", "category": "news",
                        "from_email": "hello@brand.test"})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["version"], 2);

    app.deliver().await;
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let data = String::from_utf8_lossy(&got[0].data).into_owned();
    assert!(
        data.contains("Subject: Bonjour ami"),
        "the subject, rendered when queued: {data}"
    );
    assert!(
        data.contains("<p>Maryse</p>"),
        "the body, with today's contact: {data}"
    );
    assert!(
        !data.contains("EDITED"),
        "the version queued, not the edit: {data}"
    );
    // The HTML link is tracked: its href is the click route, not the target (the text
    // part names the target). Quoted-printable writes `=` as `=3D`.
    assert!(data.contains("href=3D\"http://ee.test/t/c/"), "{data}");
    assert!(
        !data.contains("href=3D\"https://brand.test/offer"),
        "{data}"
    );
    assert_eq!(
        stored(&app, &id).await,
        [(None, None, Some(1))],
        "nothing rendered is kept"
    );

    // A template that a running campaign renders from cannot be deleted.
    contacts(
        &app,
        &key,
        &[("jean@example.test".to_owned(), "fr", vec![])],
    )
    .await;
    let other = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "gone", "subject": "S", "html": "<p>[FNAME|-]</p>", "language": "fr",
                   "from_email": "hello@brand.test"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    let second = campaign(&app, &key, &other_id).await;
    assert_eq!(stored(&app, &second).await.len(), 0);
    assert_eq!(app.dispatch().await.queued, 2);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/api/v2/templates/{other_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::CONFLICT, "{}", deleted.body);
    assert!(
        deleted.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("c-"),
        "names the campaign: {}",
        deleted.body
    );
    app.deliver().await;
    assert_eq!(smtp.received().len(), 3, "{:?}", received_by(&smtp));
    assert_eq!(app.dispatch().await.finished, 1);
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/v2/templates/{other_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        gone.status,
        StatusCode::NO_CONTENT,
        "once the campaign is over: {}",
        gone.body
    );
    app.finish().await;
}
