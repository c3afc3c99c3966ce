//! The MailWizz client against the fake MailWizz of `ee_connectors::testing` (MailWizz is
//! PHP software we cannot run here).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ee_connectors::mailwizz::{Client, MailWizzError};
use ee_connectors::testing::{KEY, decode, start};
use serde_json::{Map, Value, json};

fn client(base: &str, key: &str) -> Client {
    // The fake listens on loopback: allowed explicitly.
    let policy =
        std::sync::Arc::new(ee_core::outbound::OutboundPolicy::parse("127.0.0.0/8").unwrap());
    Client::new(base, key, Duration::from_secs(5), &policy)
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
