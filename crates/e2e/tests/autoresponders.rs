//! Autoresponders end to end: a three-step sequence in three languages with delays on the
//! settable clock, contacts leaving on an unsubscribe and on the goal event, a step added
//! while it runs, and the custom-event and tag triggers.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::sending::{HOUR_MS, action, brand, contacts, header, received_by};
use common::{TestApp, error_code};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Templates `s<step>_<language>` of category `s<step>` in French, English and Spanish;
/// returns the French ones' ids.
async fn step_templates(app: &TestApp, key: &str, steps: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for step in 1..=steps {
        for language in ["fr", "en", "es"] {
            let t = app
                .post(
                    "/api/v2/templates",
                    key,
                    json!({"name": format!("s{step}_{language}"), "subject": format!("S{step} {language}"),
                           "html": "<p>[FNAME|-]</p><a href=\"[UNSUBSCRIBE_URL]\">stop</a>",
                           "language": language, "category": format!("s{step}"),
                           "from_email": "hello@brand.test"}),
                )
                .await;
            assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
            if language == "fr" {
                ids.push(t.body["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

/// The subjects each address received, in order.
fn subjects(smtp: &TestSmtpServer, to: &str) -> Vec<String> {
    smtp.received()
        .iter()
        .filter(|r| r.rcpt_to == to)
        .map(|r| {
            let data = String::from_utf8_lossy(&r.data).into_owned();
            header(&data, "Subject").unwrap().to_owned()
        })
        .collect()
}

async fn enrollments(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v2/campaigns/{id}/enrollments"), key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

fn state_of<'a>(list: &'a [Value], email: &str) -> (&'a str, Option<&'a str>) {
    let e = list
        .iter()
        .find(|e| e["email"] == email)
        .unwrap_or_else(|| panic!("{email} not enrolled: {list:?}"));
    (e["state"].as_str().unwrap(), e["detail"].as_str())
}

#[tokio::test]
async fn a_three_step_sequence_in_three_languages_with_leavers_and_a_step_added() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;
    let steps = step_templates(&app, &key, 4).await;
    contacts(
        &app,
        &key,
        &[("before@example.test".to_owned(), "fr", vec![])],
    )
    .await;
    app.clock.advance_ms(1);

    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "nurture", "type": "autoresponder", "trigger": "subscription", "goal": "purchase",
                   "steps": [{"template_id": steps[0], "delay_hours": 0},
                             {"template_id": steps[1], "delay_hours": 24},
                             {"template_id": steps[2], "delay_hours": 48}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["steps"][1]["delay_hours"], 24);
    assert_eq!(action(&app, &key, &id, "start").await["status"], "sending");

    // Contacts subscribing now run the sequence; the one from before does not.
    let people = [
        ("marie@example.test", "fr"),
        ("john@example.test", "en"),
        ("pablo@example.test", "es"),
        ("quit@example.test", "fr"),
    ];
    let people: Vec<_> = people
        .iter()
        .map(|(e, l)| ((*e).to_owned(), *l, vec![]))
        .collect();
    contacts(&app, &key, &people).await;
    assert_eq!(app.dispatch().await.queued, 4);
    app.deliver().await;
    assert_eq!(subjects(&smtp, "marie@example.test"), ["S1 fr"]);
    assert_eq!(subjects(&smtp, "john@example.test"), ["S1 en"]);
    assert_eq!(subjects(&smtp, "pablo@example.test"), ["S1 es"]);
    assert!(subjects(&smtp, "before@example.test").is_empty());

    // Not before the delay.
    app.clock.advance_ms(23 * HOUR_MS);
    assert_eq!(app.dispatch().await.queued, 0);
    // One unsubscribes, one reaches the goal.
    let stop = app
        .post(
            "/api/v2/suppressions",
            &key,
            json!({"email": "quit@example.test", "reason": "unsubscribed"}),
        )
        .await;
    assert_eq!(stop.status, StatusCode::CREATED, "{}", stop.body);
    let goal = app
        .post(
            "/api/v2/events",
            &key,
            json!({"contact": "Marie@Example.test", "name": "purchase", "data": {"amount": 42}}),
        )
        .await;
    assert_eq!(goal.status, StatusCode::ACCEPTED, "{}", goal.body);
    app.clock.advance_ms(HOUR_MS);
    assert_eq!(app.dispatch().await.queued, 2);
    app.deliver().await;
    let list = enrollments(&app, &key, &id).await;
    assert_eq!(
        state_of(&list, "marie@example.test"),
        ("left", Some("goal reached"))
    );
    assert_eq!(
        state_of(&list, "quit@example.test"),
        ("left", Some("unsubscribed"))
    );
    assert_eq!(state_of(&list, "john@example.test"), ("active", None));

    // A step added while it runs applies to the contacts still in it.
    let mut more = created.body["steps"].as_array().unwrap().clone();
    more.push(json!({"template_id": steps[3], "delay_hours": 1}));
    let changed = app
        .call(
            Method::PATCH,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            Some(json!({"steps": more})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    // But its audience or template no longer change.
    let refused = app
        .call(
            Method::PATCH,
            &format!("/api/v2/campaigns/{id}"),
            Some(&key),
            Some(json!({"trigger": "event:x"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);

    app.clock.advance_ms(48 * HOUR_MS);
    assert_eq!(app.dispatch().await.queued, 2);
    app.deliver().await;
    app.clock.advance_ms(HOUR_MS);
    assert_eq!(app.dispatch().await.queued, 2);
    app.deliver().await;
    assert_eq!(
        subjects(&smtp, "john@example.test"),
        ["S1 en", "S2 en", "S3 en", "S4 en"]
    );
    assert_eq!(
        subjects(&smtp, "pablo@example.test"),
        ["S1 es", "S2 es", "S3 es", "S4 es"]
    );
    assert_eq!(subjects(&smtp, "marie@example.test"), ["S1 fr"]);
    assert_eq!(subjects(&smtp, "quit@example.test"), ["S1 fr"]);
    let list = enrollments(&app, &key, &id).await;
    assert_eq!(state_of(&list, "john@example.test"), ("completed", None));
    assert_eq!(list.len(), 4, "{list:?}");
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    let totals = &stats.body["totals"];
    assert_eq!(
        [
            &totals["enrolled"],
            &totals["queued"],
            &totals["sent"],
            &totals["goal_reached"]
        ],
        [&json!(4), &json!(10), &json!(10), &json!(1)],
        "{}",
        stats.body
    );
    assert_eq!(
        stats.body["by_step"],
        json!({"0": 4, "1": 2, "2": 2, "3": 2})
    );
    assert_eq!(
        stats.body["by_language"],
        json!({"en": 1 + 3, "es": 4, "fr": 2})
    );
    // Paused, nothing more is sent even when due.
    assert_eq!(action(&app, &key, &id, "pause").await["status"], "paused");
    contacts(
        &app,
        &key,
        &[("late@example.test".to_owned(), "en", vec![])],
    )
    .await;
    assert_eq!(app.dispatch().await, Default::default());
    action(&app, &key, &id, "resume").await;
    assert_eq!(app.dispatch().await.queued, 1, "the late subscriber");
    app.finish().await;
}

#[tokio::test]
async fn custom_events_and_tags_trigger_their_sequences() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    contacts(
        &app,
        &key,
        &[
            ("x@example.test".to_owned(), "fr", vec![]),
            ("y@example.test".to_owned(), "en", vec![]),
        ],
    )
    .await;
    contacts(
        &app,
        &key,
        &[("z@example.test".to_owned(), "en", vec!["QUALITY:VIP"])],
    )
    .await;
    let vip = app
        .post(
            "/api/v2/segments",
            &key,
            json!({"name": "vip", "expression": {"tag": "QUALITY:VIP"}}),
        )
        .await;
    let segment_trigger = format!("segment:{}", vip.body["id"].as_str().unwrap());
    let mut ids = Vec::new();
    for (name, trigger) in [
        ("trial", "event:trial.started"),
        ("lawyers", "tag:SECTOR:LEGAL"),
        ("vip", segment_trigger.as_str()),
    ] {
        // Seed 004's shape: one template, a trigger.
        let c = app
            .post(
                "/api/v2/campaigns",
                &key,
                json!({"name": name, "template_id": template, "type": "autoresponder", "trigger": trigger}),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
        assert_eq!(
            c.body["steps"],
            json!([{"template_id": template, "delay_hours": 0}])
        );
        let id = c.body["id"].as_str().unwrap().to_owned();
        action(&app, &key, &id, "start").await;
        ids.push(id);
    }
    assert_eq!(app.dispatch().await.queued, 0, "nobody triggered yet");

    let event = app
        .post(
            "/api/v2/events",
            &key,
            json!({"contact": "x@example.test", "name": "trial.started"}),
        )
        .await;
    assert_eq!(event.status, StatusCode::ACCEPTED, "{}", event.body);
    let tagged = app
        .post(
            "/api/v2/contacts/tags",
            &key,
            json!({"filter": {"field": "email", "op": "eq", "value": "y@example.test"},
                   "add": ["SECTOR:LEGAL/LAWYER", "QUALITY:VIP"]}),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.body);
    // y: the tag trigger and entering the segment; z was in the segment before: excluded.
    assert_eq!(app.dispatch().await.queued, 3);
    let vips = enrollments(&app, &key, &ids[2]).await;
    assert_eq!(state_of(&vips, "z@example.test"), ("excluded", None));
    assert_eq!(state_of(&vips, "y@example.test"), ("completed", None));
    app.deliver().await;
    let got = received_by(&smtp);
    assert_eq!(got.get("x@example.test"), Some(&1));
    assert_eq!(got.get("y@example.test"), Some(&2));
    assert_eq!(got.get("z@example.test"), None);
    let trial = enrollments(&app, &key, &ids[0]).await;
    assert_eq!(trial.len(), 1);
    assert_eq!(state_of(&trial, "x@example.test"), ("completed", None));
    // The same event again does not run the sequence a second time at once.
    app.post(
        "/api/v2/events",
        &key,
        json!({"contact": "x@example.test", "name": "trial.started"}),
    )
    .await;
    assert_eq!(app.dispatch().await.queued, 0);

    // Bad input is named; an unknown contact is not found.
    let unknown = app
        .post(
            "/api/v2/events",
            &key,
            json!({"contact": "nobody@example.test", "name": "trial.started"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let bad = app
        .post(
            "/api/v2/events",
            &key,
            json!({"contact": "x@example.test", "name": "no spaces"}),
        )
        .await;
    assert_eq!(error_code(&bad), "validation_failed");
    assert_eq!(bad.body["error"]["field"], "name");
    for (body, field) in [
        (
            json!({"name": "a", "type": "autoresponder", "trigger": "subscription",
                "steps": [{"template_id": template}]}),
            "steps[0].delay_hours",
        ),
        (
            json!({"name": "a", "type": "autoresponder", "trigger": "subscription",
                "steps": [{"template_id": "nope", "delay_hours": 1}]}),
            "steps[0].template_id",
        ),
        (
            json!({"name": "a", "type": "autoresponder", "trigger": "event:no spaces",
                "template_id": template}),
            "trigger",
        ),
        (
            json!({"name": "a", "type": "regular", "template_id": template,
                "steps": [{"template_id": template, "delay_hours": 1}]}),
            "steps",
        ),
    ] {
        let r = app.post("/api/v2/campaigns", &key, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        let fields: Vec<&str> = r.body["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body}: {}", r.body);
    }
    app.finish().await;
}

/// A contact who completed a sequence runs it again when its trigger fires again (the
/// event posted anew), with new messages; the event posted twice at once still gives one
/// run.
#[tokio::test]
async fn a_contact_runs_a_sequence_again_when_its_event_comes_after_completing() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, template) = brand(&app, &smtp).await;
    contacts(&app, &key, &[("x@example.test".to_owned(), "fr", vec![])]).await;
    let created = app
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "trial", "template_id": template, "type": "autoresponder",
                   "trigger": "event:trial.started"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    action(&app, &key, &id, "start").await;
    app.clock.advance_ms(1);
    let event = || async {
        let r = app
            .post(
                "/api/v2/events",
                &key,
                json!({"contact": "x@example.test", "name": "trial.started"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    };
    event().await;
    event().await;
    app.dispatch_and_deliver().await;
    assert_eq!(received_by(&smtp).get("x@example.test"), Some(&1));
    let list = enrollments(&app, &key, &id).await;
    assert_eq!(state_of(&list, "x@example.test").0, "completed");
    assert_eq!(list[0]["run"], 0);
    // Nothing new: no second run.
    app.clock.advance_ms(HOUR_MS);
    app.dispatch_and_deliver().await;
    assert_eq!(received_by(&smtp).get("x@example.test"), Some(&1));

    event().await;
    app.dispatch_and_deliver().await;
    assert_eq!(received_by(&smtp).get("x@example.test"), Some(&2));
    let list = enrollments(&app, &key, &id).await;
    assert_eq!(state_of(&list, "x@example.test").0, "completed");
    assert_eq!(list[0]["run"], 1);
    let stats = app
        .get(&format!("/api/v2/campaigns/{id}/stats"), &key)
        .await;
    assert_eq!(stats.body["totals"]["enrolled"], 2, "{}", stats.body);
    app.finish().await;
}
