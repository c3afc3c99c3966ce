//! Templates built from blocks (the visual editor's design) end to end: the HTML is
//! rendered from the design and stored beside it, reads back with its blocks, follows a
//! change of language, gives way to hand-written HTML; problems name their place in the
//! design; a draft previews; a test send reaches a real SMTP peer with the blocks filled;
//! another tenant sees none of it.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::mail_check::{inspect, published_dkim};
use common::sending::{brand, header};
use common::{TestApp, error_code};
use ee_mail::testing::TestSmtpServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn design() -> Value {
    json!({
        "style": {"link_color": "#0055AA"},
        "blocks": [
            {"type": "heading", "text": "Bonjour [FNAME|ami]"},
            {"type": "text", "text": "Notre **offre** du mois.\n\n[Voir l'offre](https://brand.test/offre)"},
            {"type": "columns", "columns": [
                {"blocks": [{"type": "image", "src": "https://brand.test/a.png", "alt": "A"}]},
                {"blocks": [{"type": "button", "label": "Commander", "href": "https://brand.test/commande"}]}
            ]},
            {"type": "divider"},
            {"type": "footer", "text": "Brand, 1 rue de Paris", "unsubscribe": "Se désabonner"}
        ]
    })
}

async fn put(app: &TestApp, key: &str, id: &str, body: Value) -> common::Reply {
    app.call(
        Method::PUT,
        &format!("/api/v2/templates/{id}"),
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_template_built_from_blocks_round_trips_previews_and_sends() {
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = brand(&app, &smtp).await;

    // Created from blocks: the HTML is the design's, tables and inline styles.
    let created = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "promo_fr", "subject": "Offre pour [FNAME|vous]", "language": "fr",
                   "category": "promo", "from_email": "hello@brand.test", "design": design()}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let html = created.body["html"].as_str().unwrap();
    assert!(html.contains("<html lang=\"fr\" dir=\"ltr\">"), "{html}");
    assert!(html.contains("<table role=\"presentation\""));
    assert!(html.contains(">Commander</a>"));
    assert!(html.contains("<a href=\"[UNSUBSCRIBE_URL]\""));
    assert!(!html.contains("<style"));
    // The design reads back as stored: its blocks, colours in lower case, defaults set.
    let got = app.get(&format!("/api/v2/templates/{id}"), &key).await;
    assert_eq!(got.body["design"]["blocks"], design()["blocks"]);
    assert_eq!(got.body["design"]["style"]["link_color"], "#0055aa");
    assert_eq!(got.body["design"]["style"]["width"], 600);
    assert_eq!(got.body["html"], created.body["html"]);

    // Saving the design read back gives the same HTML (the editor's round trip).
    let again = put(&app, &key, &id, json!({"design": got.body["design"]})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["html"], created.body["html"]);
    assert_eq!(again.body["version"], 2);

    // A change of language alone renders the kept design again, right to left.
    let arabic = put(&app, &key, &id, json!({"language": "ar"})).await;
    assert_eq!(arabic.status, StatusCode::OK, "{}", arabic.body);
    assert!(
        arabic.body["html"]
            .as_str()
            .unwrap()
            .contains("<html lang=\"ar\" dir=\"rtl\">")
    );
    assert_eq!(arabic.body["design"], got.body["design"]);
    let back = put(&app, &key, &id, json!({"language": "fr"})).await;
    assert_eq!(back.body["html"], created.body["html"]);

    // Problems name their place in the design, and nothing is stored.
    for (body, field) in [
        (
            json!({"design": {"blocks": [{"type": "button", "label": "x", "href": "javascript:alert(1)"}]}}),
            "design.blocks[0].href",
        ),
        (
            json!({"design": {"blocks": [{"type": "columns", "columns": [{"blocks": []},
                {"blocks": [{"type": "image", "src": "data:image/png;base64,AAAA"}]}]}]}}),
            "design.blocks[0].columns[1].blocks[0].src",
        ),
        (
            json!({"design": {"blocks": [{"type": "marquee"}]}}),
            "design.blocks[0].type",
        ),
        (
            json!({"design": {"blocks": [{"type": "divider", "color": "red"}]}}),
            "design.blocks[0].color",
        ),
        (json!({"design": {"blocks": []}}), "design.blocks"),
        (json!({"design": design(), "html": "<p>both</p>"}), "design"),
    ] {
        let r = put(&app, &key, &id, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.body);
    }
    let unchanged = app.get(&format!("/api/v2/templates/{id}"), &key).await;
    assert_eq!(unchanged.body["version"], 4);
    // An unknown tag in a block is the template's usual error.
    let r = put(
        &app,
        &key,
        &id,
        json!({"design": {"blocks": [{"type": "text", "text": "[NOT_DECLARED]"}]}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("NOT_DECLARED"), "{}", r.body);

    // A draft of the design previews, filled for a made-up recipient; nothing is saved.
    let mut draft = design();
    draft["blocks"][0]["text"] = json!("Brouillon pour [FNAME|ami]");
    let preview = app
        .post(
            &format!("/api/v2/templates/{id}/preview"),
            &key,
            json!({"design": draft}),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    let shown = preview.body["html"].as_str().unwrap();
    assert!(shown.contains(">Brouillon pour "), "{shown}");
    assert!(!shown.contains("[FNAME"), "filled: {shown}");
    assert!(!shown.contains("[UNSUBSCRIBE_URL]"), "filled: {shown}");
    let bad = app
        .post(
            &format!("/api/v2/templates/{id}/preview"),
            &key,
            json!({"design": {"blocks": [{"type": "spacer", "height": 1}]}}),
        )
        .await;
    assert_eq!(
        bad.body["error"]["field"], "design.blocks[0].height",
        "{}",
        bad.body
    );
    assert_eq!(
        app.get(&format!("/api/v2/templates/{id}"), &key).await.body["version"],
        4
    );

    // A test send: this template, as saved, to a real SMTP peer, signed.
    let test = app
        .post(
            &format!("/api/v2/templates/{id}/test"),
            &key,
            json!({"emails": ["qa@example.test"]}),
        )
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{}", test.body);
    assert_eq!(test.body[0]["state"], "queued");
    app.deliver().await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let data = String::from_utf8_lossy(&received[0].data).into_owned();
    assert_eq!(header(&data, "X-Template-Test"), Some(id.as_str()));
    let dkim = published_dkim(&app, &key, "brand.test", "s1").await;
    let mail = inspect(&received[0].data, &dkim);
    assert_eq!(mail["dkim"], true, "{mail}");
    assert_eq!(mail["subject"], "Offre pour vous");
    let body = mail["html"].as_str().unwrap();
    assert!(body.contains(">Bonjour ami</h1>"), "{body}");
    assert!(body.contains(">Commander</a>"), "{body}");
    assert!(body.contains(">Se désabonner</a>"), "{body}");
    assert!(
        !body.contains("[UNSUBSCRIBE_URL]"),
        "the link is the recipient's"
    );
    assert!(
        mail["text"].as_str().unwrap().contains("Bonjour ami"),
        "{mail}"
    );
    let r = app
        .post(
            &format!("/api/v2/templates/{id}/test"),
            &key,
            json!({"emails": []}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "emails", "{}", r.body);

    // Hand-written HTML replaces the design: the template no longer has blocks.
    let by_hand = put(
        &app,
        &key,
        &id,
        json!({"html": "<p>[FNAME|ami]</p><a href=\"[UNSUBSCRIBE_URL]\">stop</a>"}),
    )
    .await;
    assert_eq!(by_hand.status, StatusCode::OK, "{}", by_hand.body);
    assert_eq!(by_hand.body["design"], Value::Null);
    // Each version keeps its own body: the one before has its blocks.
    let versions = app
        .get(&format!("/api/v2/templates/{id}/versions"), &key)
        .await;
    let items = versions.body["items"].as_array().unwrap();
    assert_eq!(items[0]["template"]["design"], Value::Null);
    assert_eq!(items[1]["template"]["design"]["blocks"], design()["blocks"]);

    // Another tenant sees none of it.
    let other = app.tenant("other").await;
    let (_, other_key) = app.api_key(&other, "k").await;
    for (method, path, body) in [
        (Method::GET, format!("/api/v2/templates/{id}"), None),
        (
            Method::PUT,
            format!("/api/v2/templates/{id}"),
            Some(json!({"design": design()})),
        ),
        (
            Method::POST,
            format!("/api/v2/templates/{id}/test"),
            Some(json!({"emails": ["x@example.test"]})),
        ),
        (
            Method::POST,
            format!("/api/v2/templates/{id}/preview"),
            Some(json!({"design": design()})),
        ),
    ] {
        let r = app.call(method, &path, Some(&other_key), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
        assert_eq!(error_code(&r), "not_found");
    }
    assert_eq!(smtp.received().len(), 1, "nothing sent for the stranger");
    app.finish().await;
}
