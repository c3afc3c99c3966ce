//! An autoresponder sequence of a tenant that delivers through MailWizz runs there as
//! MailWizz autoresponders, against the fake that follows MailWizz's published API: per
//! language a list and one `autoresponder` campaign per step (after subscription, at the
//! step's time), contacts enrolled here subscribed to the list of their language, a contact
//! who reaches the goal unsubscribed there, pause and resume followed, figures read back.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::TestApp;
use common::sending::{HOUR_MS, action, contacts, mailwizz_brand};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The subscribers of each list made for the sequence, by status.
fn lists(fake: &ee_connectors::testing::Shared) -> BTreeMap<String, Vec<(String, String)>> {
    let f = fake.lock().unwrap();
    f.lists
        .iter()
        .filter(|(uid, _)| uid.as_str() != "list-a")
        .map(|(uid, subs)| {
            let mut members: Vec<(String, String)> = subs
                .iter()
                .map(|s| {
                    (
                        s["EMAIL"].as_str().unwrap().to_owned(),
                        s["status"].as_str().unwrap_or("confirmed").to_owned(),
                    )
                })
                .collect();
            members.sort();
            (uid.clone(), members)
        })
        .collect()
}

#[tokio::test]
async fn a_sequence_runs_as_mailwizz_autoresponders() {
    let app = TestApp::spawn().await;
    let (key, fake) = mailwizz_brand(&app).await;
    // Two steps, each a category in French and English.
    let mut steps = Vec::new();
    for (category, delay) in [("welcome", 1), ("follow", 24)] {
        let mut fr = String::new();
        for language in ["fr", "en"] {
            let t = app
                .post(
                    "/api/v2/templates",
                    &key,
                    json!({"name": format!("{category}_{language}"),
                           "subject": format!("{category} {language} [FNAME]"),
                           "html": format!("<p>{category} {language} [FNAME] <a href=\"[UNSUBSCRIBE_URL]\">x</a></p>"),
                           "language": language, "category": category,
                           "from_email": "hello@brand.test", "from_name": "Brand"}),
                )
                .await;
            assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
            if language == "fr" {
                fr = t.body["id"].as_str().unwrap().to_owned();
            }
        }
        steps.push(json!({"template_id": fr, "delay_hours": delay}));
    }
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "nurture", "type": "autoresponder", "trigger": "subscription",
                   "goal": "purchase", "steps": steps}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    app.clock.advance_ms(1);
    let people: Vec<_> = [
        ("jean@example.test", "fr"),
        ("marie@example.test", "fr"),
        ("john@example.test", "en"),
    ]
    .iter()
    .map(|(e, l)| ((*e).to_owned(), *l, vec![]))
    .collect();
    contacts(&app, &key, &people).await;
    assert_eq!(app.dispatch().await.queued, 3, "three contacts handed over");

    // A list per language, with its contacts.
    let made = lists(&fake);
    let mut by_size: Vec<_> = made.iter().collect();
    by_size.sort_by_key(|(_, m)| m.len());
    assert_eq!(by_size.len(), 2, "{made:?}");
    let (en_list, en_members) = by_size[0];
    let (fr_list, fr_members) = by_size[1];
    assert_eq!(en_members.len(), 1);
    assert_eq!(en_members[0].0, "john@example.test");
    let fr_emails: Vec<&str> = fr_members.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(fr_emails, ["jean@example.test", "marie@example.test"]);

    // One autoresponder per step and language, after subscription, the delays added up.
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.campaigns.len(), 4, "{:?}", f.campaigns);
        assert!(f.emails.is_empty(), "no message went one by one");
        for (list, language) in [(fr_list, "fr"), (en_list, "en")] {
            let mut on_list: Vec<&Value> = f
                .campaigns
                .values()
                .filter(|c| c["list_uid"] == list.as_str())
                .collect();
            on_list.sort_by_key(|c| {
                c["options"]["autoresponder_time_value"]
                    .as_str()
                    .unwrap()
                    .parse::<u32>()
                    .unwrap()
            });
            assert_eq!(on_list.len(), 2, "{on_list:?}");
            for (c, (category, hours)) in on_list.iter().zip([("welcome", "1"), ("follow", "25")]) {
                assert_eq!(c["type"], "autoresponder");
                assert_eq!(c["options"]["autoresponder_event"], "AFTER-SUBSCRIBE");
                assert_eq!(c["options"]["autoresponder_time_unit"], "hour");
                assert_eq!(c["options"]["autoresponder_time_value"], hours);
                assert_eq!(c["subject"], format!("{category} {language} [FNAME]"));
                assert!(
                    c["template"]["content"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("<p>{category} {language}")),
                    "{c}"
                );
            }
        }
    }
    let enrolled = app
        .get(&format!("/api/v2/campaigns/{id}/enrollments"), &key)
        .await;
    let items = enrolled.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", enrolled.body);
    assert!(
        items.iter().all(|e| e["state"] == "mirrored"),
        "{}",
        enrolled.body
    );
    // Handed over once: another pass hands nobody again.
    assert_eq!(app.dispatch().await.queued, 0);
    assert_eq!(lists(&fake)[fr_list.as_str()].len(), 2);

    // Marie reaches the goal here: MailWizz sends her no more.
    let goal = app
        .post(
            "/api/v2/events",
            &key,
            json!({"contact": "marie@example.test", "name": "purchase"}),
        )
        .await;
    assert_eq!(goal.status, StatusCode::ACCEPTED, "{}", goal.body);
    app.dispatch().await;
    let now = lists(&fake);
    let status = |email: &str| {
        now[fr_list.as_str()]
            .iter()
            .find(|m| m.0 == email)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(status("marie@example.test"), "unsubscribed");
    assert_ne!(status("jean@example.test"), "unsubscribed");
    let enrolled = app
        .get(&format!("/api/v2/campaigns/{id}/enrollments"), &key)
        .await;
    let marie = enrolled.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["email"] == "marie@example.test")
        .unwrap()
        .clone();
    assert_eq!(marie["state"], "left", "{marie}");
    assert_eq!(marie["detail"], "goal reached", "{marie}");

    // Paused here, paused there; resumed, sending again.
    action(&app, &key, &id, "pause").await;
    app.dispatch().await;
    assert!(
        fake.lock()
            .unwrap()
            .campaigns
            .values()
            .all(|c| c["status"] == "paused")
    );
    action(&app, &key, &id, "resume").await;
    app.dispatch().await;
    assert!(
        fake.lock()
            .unwrap()
            .campaigns
            .values()
            .all(|c| c["status"] == "sending")
    );

    // The figures MailWizz reports (the fake's: 3 sent and 2 opens per campaign) are read
    // back once into the sequence's statistics.
    app.clock.advance_ms(HOUR_MS);
    app.dispatch().await;
    app.clock.advance_ms(HOUR_MS);
    app.dispatch().await;
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.body["totals"]["sent"], 12, "{}", stats.body);
    assert_eq!(stats.body["totals"]["opened"], 8, "{}", stats.body);
    assert_eq!(stats.body["by_language"]["fr"], 2, "{}", stats.body);
    assert_eq!(stats.body["by_language"]["en"], 1, "{}", stats.body);
    app.finish().await;
}
