//! A campaign of a tenant that delivers through MailWizz is mirrored there (seed 004:
//! "Email-Engine injects into MailWizz"), against the fake that follows MailWizz's
//! published API: one list and one MailWizz campaign per template the audience needs
//! (each recipient's language through the fallback chain), MailWizz's figures read back
//! into the campaign's statistics, pause and resume followed there, and the campaign sent
//! when MailWizz has sent every mirror.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use common::sending::{action, mailwizz_brand};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_campaign_is_mirrored_into_the_tenants_mailwizz_and_read_back() {
    let app = TestApp::spawn().await;
    let (key, fake) = mailwizz_brand(&app).await;
    let mut ids = std::collections::BTreeMap::new();
    for (language, subject) in [("fr", "Bonjour [FNAME]"), ("en", "Hello [FNAME]")] {
        let t = app
            .post(
                "/api/v2/templates",
                &key,
                json!({"name": format!("news_{language}"), "subject": subject,
                       "html": format!("<p>{language} [FNAME] <a href=\"[UNSUBSCRIBE_URL]\">x</a></p>"),
                       "language": language, "category": "news", "from_email": "hello@brand.test",
                       "from_name": "Brand"}),
            )
            .await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
        ids.insert(language, t.body["id"].as_str().unwrap().to_owned());
    }
    let ingest = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source": "api", "contacts": [
                {"email": "jean@example.test", "firstName": "Jean", "language": "fr"},
                {"email": "marie@example.test", "firstName": "Marie", "language": "fr"},
                {"email": "john@example.test", "firstName": "John", "language": "en"},
            ]}),
        )
        .await;
    assert_eq!(ingest.status, StatusCode::OK, "{}", ingest.body);
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "Newsletter", "template_id": ids["fr"], "type": "regular",
                   "tenant": "brand", "audience": {"all": true}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    let pass = app.dispatch().await;
    assert_eq!(pass.queued, 3, "three subscribers handed over");

    // Two lists and two MailWizz campaigns: French for Jean and Marie, English for John.
    let (fr_uid, en_uid) = {
        let f = fake.lock().unwrap();
        let mut lists: Vec<(&String, Vec<String>)> = f
            .lists
            .iter()
            .filter(|(uid, _)| uid.as_str() != "list-a")
            .map(|(uid, subs)| {
                let mut emails: Vec<String> = subs
                    .iter()
                    .map(|s| s["EMAIL"].as_str().unwrap().to_owned())
                    .collect();
                emails.sort();
                (uid, emails)
            })
            .collect();
        lists.sort_by_key(|l| l.1.len());
        assert_eq!(lists.len(), 2, "{lists:?}");
        assert_eq!(lists[0].1, ["john@example.test"]);
        assert_eq!(lists[1].1, ["jean@example.test", "marie@example.test"]);
        assert_eq!(f.campaigns.len(), 2, "{:?}", f.campaigns);
        let by_list = |list: &str| {
            let (uid, c) = f
                .campaigns
                .iter()
                .find(|(_, c)| c["list_uid"] == list)
                .unwrap();
            (uid.clone(), c.clone())
        };
        let (fr_uid, fr) = by_list(lists[1].0);
        let (en_uid, en) = by_list(lists[0].0);
        assert_eq!(fr["subject"], "Bonjour [FNAME]");
        assert_eq!(fr["from_email"], "hello@brand.test");
        assert_eq!(fr["type"], "regular");
        assert!(
            fr["template"]["content"]
                .as_str()
                .unwrap()
                .starts_with("<p>fr [FNAME]")
        );
        assert_eq!(en["subject"], "Hello [FNAME]");
        (fr_uid, en_uid)
    };
    let ledger = app
        .get(&format!("/api/v2/campaigns/{id}/recipients"), &key)
        .await;
    let states: Vec<&Value> = ledger.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["state"])
        .collect();
    assert_eq!(states, [&json!("mirrored"); 3], "{}", ledger.body);

    // MailWizz's figures come back into the campaign's statistics.
    {
        let mut f = fake.lock().unwrap();
        f.campaigns.get_mut(&fr_uid).unwrap()["stats"] = json!({"subscribers_count": 2,
            "delivery_success_count": 2, "opens_count": 3, "unique_opens_count": 2,
            "clicks_count": 1, "unique_clicks_count": 1, "bounces_count": 0});
        f.campaigns.get_mut(&en_uid).unwrap()["stats"] = json!({"subscribers_count": 1,
            "delivery_success_count": 1, "opens_count": 1, "unique_opens_count": 1,
            "unsubscribes_count": 1});
    }
    app.clock.advance_ms(61_000);
    app.dispatch().await;
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    let totals = &stats.body["totals"];
    assert_eq!(
        (
            &totals["sent"],
            &totals["opened"],
            &totals["opened_unique"],
            &totals["clicked_unique"],
            &totals["unsubscribed"]
        ),
        (&json!(3), &json!(4), &json!(3), &json!(1), &json!(1)),
        "{}",
        stats.body
    );
    assert_eq!(stats.body["by_language"], json!({"en": 1, "fr": 2}));
    // Read again, nothing is counted twice.
    app.clock.advance_ms(61_000);
    app.dispatch().await;
    let again = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(again.body["totals"]["sent"], 3);

    // Paused here, paused there; resumed, sending again.
    action(&app, &key, &id, "pause").await;
    app.dispatch().await;
    {
        let f = fake.lock().unwrap();
        assert!(f.campaigns.values().all(|c| c["status"] == "paused"));
    }
    action(&app, &key, &id, "resume").await;
    app.dispatch().await;
    {
        let f = fake.lock().unwrap();
        assert!(f.campaigns.values().all(|c| c["status"] == "sending"));
    }

    // Sent once MailWizz has sent both.
    fake.lock().unwrap().campaigns.get_mut(&fr_uid).unwrap()["status"] = json!("sent");
    app.clock.advance_ms(61_000);
    app.dispatch().await;
    let run = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(run.body["status"], "sending", "one mirror still sends");
    fake.lock().unwrap().campaigns.get_mut(&en_uid).unwrap()["status"] = json!("sent");
    app.clock.advance_ms(61_000);
    assert_eq!(app.dispatch().await.finished, 1);
    let run = app.get(&format!("/api/v2/campaigns/{id}"), &key).await;
    assert_eq!(run.body["status"], "sent");

    // The campaign's lists hold contacts too: one suppressed is unsubscribed from each
    // list that holds it, one erased is deleted from each (GDPR).
    let status_in = |list: &str, email: &str| -> Option<String> {
        let f = fake.lock().unwrap();
        f.lists[list]
            .iter()
            .find(|s| s["EMAIL"] == email)
            .map(|s| s["status"].as_str().unwrap().to_owned())
    };
    let fr_list = fake.lock().unwrap().campaigns[&fr_uid]["list_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    // The default list's sync (queued at ingestion) runs first.
    app.run_jobs().await;
    assert_eq!(
        status_in("list-a", "marie@example.test").as_deref(),
        Some("confirmed")
    );
    app.suppress(&key, "marie@example.test", "unsubscribed")
        .await;
    app.run_jobs().await;
    assert_eq!(
        status_in(&fr_list, "marie@example.test").as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        status_in("list-a", "marie@example.test").as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        status_in(&fr_list, "jean@example.test").as_deref(),
        Some("confirmed")
    );
    let jean = app
        .get("/api/v2/contacts?email=jean@example.test", &key)
        .await;
    let jean_id = jean.body["items"][0]["id"].as_str().unwrap().to_owned();
    let erased = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v2/contacts/{jean_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT);
    app.run_jobs().await;
    assert_eq!(
        status_in(&fr_list, "jean@example.test"),
        None,
        "erased there"
    );
    assert_eq!(
        status_in("list-a", "jean@example.test"),
        None,
        "erased there"
    );
    app.finish().await;
}
