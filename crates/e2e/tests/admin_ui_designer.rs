//! The visual template editor in a real browser (headless Chromium): a template built
//! from blocks dragged with the mouse, its fields filled, saved (the API's design is the
//! page's, block for block), previewed in French and in English, sent as a test to a
//! real SMTP peer, copied into English; a problem the server finds shows on its block;
//! no Content-Security-Policy violation on the way. Screenshots in both UI languages.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::browser::Browser;
use common::sending::{brand, header};
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};
use ee_mail::testing::TestSmtpServer;
use serde_json::{Value, json};

/// The kinds of the blocks on the canvas, top to bottom (a columns block's inner blocks
/// as `columns[kind,…|kind,…]`).
async fn canvas(b: &Browser) -> Value {
    b.client
        .execute(
            "return [...document.querySelectorAll('#design-canvas > .block')].map((el) => el.dataset.kind === 'columns'
               ? 'columns[' + [...el.querySelectorAll('.design-column')].map((c) => [...c.querySelectorAll('.block')].map((i) => i.dataset.kind).join(',')).join('|') + ']'
               : el.dataset.kind);",
            vec![],
        )
        .await
        .unwrap()
}

/// The same, of a design as the API gives it.
fn kinds(design: &Value) -> Value {
    design["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|block| {
            let kind = block["type"].as_str().unwrap().to_owned();
            if kind == "columns" {
                let inner: Vec<String> = block["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        c["blocks"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|i| i["type"].as_str().unwrap().to_owned())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                json!(format!("columns[{}]", inner.join("|")))
            } else {
                json!(kind)
            }
        })
        .collect()
}

/// The preview frame's `<h1>` once it starts with `start` and ends with `end` (or what
/// it read last, after 10 s).
async fn preview_heading(b: &Browser, start: &str, end: &str) -> String {
    b.in_frame(
        "const e = document.querySelector('h1'); return e && e.textContent;",
        |seen| {
            seen.as_str()
                .is_some_and(|s| s.starts_with(start) && s.ends_with(end))
        },
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn hash_id(b: &Browser, not: &str) -> String {
    let script = format!(
        "return location.hash.startsWith('#/templates/') && !location.hash.endsWith({not}) ? location.hash.slice(12) : null;",
        not = json!(not)
    );
    b.until("a template's page", &script)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn save(b: &Browser) {
    b.click_button("#tpl-save-row", "Save as a new version")
        .await;
}

/// Waits until the API has the template at `version`.
async fn saved(app: &TestApp, key: &str, id: &str, version: i64) -> Value {
    for _ in 0..100 {
        let got = app.get(&format!("/api/v2/templates/{id}"), key).await;
        if got.body["version"] == version {
            return got.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("template {id} never reached version {version}");
}

#[tokio::test]
async fn a_template_is_built_from_blocks_with_the_mouse() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let (key, news) = brand(&app, &smtp).await;
    let tenant_id = app
        .get(&format!("/api/v2/templates/{news}"), &key)
        .await
        .body["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The sender a template made in the page (which asks none) sends from.
    let sender = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/tenants/brand/delivery",
            Some(&key),
            Some(
                json!({"mode": "relay", "relay": "pmta", "default_from_email": "news@brand.test"}),
            ),
        )
        .await;
    assert_eq!(sender.status, reqwest::StatusCode::OK, "{}", sender.body);

    b.log_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.select("#tenant-switch", &tenant_id).await;
    b.goto(&format!("{}/admin/#/templates", app.base)).await;
    // A new template starts from blocks: a greeting, a paragraph, a button, a footer.
    for (name, value) in [
        ("name", "promo_fr"),
        ("category", "promo"),
        ("subject", "Offre pour [FNAME|vous]"),
    ] {
        b.fill(&format!("[data-field=\"{name}\"] input"), value)
            .await;
    }
    b.select("[data-field=\"language\"] select", "fr").await;
    b.select("[data-field=\"body\"] select", "blocks").await;
    b.client
        .execute(
            "document.querySelector('[data-field=\"body\"]').closest('form').querySelector('button[type=submit]').click();",
            vec![],
        )
        .await
        .unwrap();
    let fr_id = hash_id(&b, "/templates").await;
    b.wait("#design-canvas .block").await;
    b.settled().await;
    assert_eq!(
        canvas(&b).await,
        json!(["heading", "text", "button", "footer"])
    );
    b.client
        .execute(
            "window.violations = []; document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .unwrap();

    // Blocks dragged from the palette: an image under the heading, columns under the
    // button, a button into the columns' second column.
    b.drag(
        ".palette-item[data-kind=image]",
        "#design-canvas > .block[data-place='1']",
        -8.0,
    )
    .await;
    b.until(
        "the image on the canvas",
        "return document.querySelectorAll('#design-canvas > .block').length === 5;",
    )
    .await;
    let order = canvas(&b).await;
    assert_eq!(order[0], "heading", "{order}");
    assert_eq!(order[1], "image", "{order}");
    b.drag(
        ".palette-item[data-kind=columns]",
        "#design-canvas > .block[data-kind=footer]",
        -8.0,
    )
    .await;
    b.until(
        "columns on the canvas",
        "return document.querySelector('#design-canvas .design-column');",
    )
    .await;
    b.drag(
        ".palette-item[data-kind=button]",
        "#design-canvas .design-column[data-list$='.1']",
        0.0,
    )
    .await;
    b.until(
        "a button in the second column",
        "return document.querySelector(\"#design-canvas .design-column[data-list$='.1'] .block[data-kind=button]\");",
    )
    .await;
    // A block moved by its handle: the text above the heading.
    b.drag(
        "#design-canvas > .block[data-kind=text] .handle",
        "#design-canvas > .block[data-place='0']",
        -12.0,
    )
    .await;
    b.until(
        "the text on top",
        "return document.querySelector('#design-canvas > .block').dataset.kind === 'text';",
    )
    .await;
    // A click adds a block above the footer (the palette's buttons still answer after
    // being dragged from).
    b.click(".palette-item[data-kind=button]").await;
    let order = canvas(&b).await;
    assert_eq!(
        order,
        json!([
            "text",
            "heading",
            "image",
            "button",
            "columns[|button]",
            "button",
            "footer"
        ]),
        "{order}"
    );
    b.shot("designer-blocks").await;

    // Each block's fields.
    b.click("#design-canvas > .block[data-kind=heading]").await;
    b.fill("#prop-text", "Bonjour [FNAME|ami], voici l'offre")
        .await;
    b.click("#design-canvas > .block[data-kind=image]").await;
    b.fill("#prop-src", "https://brand.test/banner.png").await;
    b.fill("#prop-alt", "Bannière").await;
    b.click("#design-canvas .design-column .block[data-kind=button]")
        .await;
    b.fill("#prop-label", "Commander").await;
    b.fill("#prop-href", "https://brand.test/commande").await;
    b.click("#design-canvas > .block[data-kind=footer]").await;
    b.fill("#prop-text", "Brand SAS, 1 rue de Paris").await;
    // The draft previews before it is saved, filled for a made-up French recipient.
    let shown = preview_heading(&b, "Bonjour ", ", voici l'offre").await;
    assert!(
        shown.starts_with("Bonjour ") && shown.ends_with(", voici l'offre"),
        "{shown}"
    );
    assert!(!shown.contains('['), "filled: {shown}");
    save(&b).await;
    let fr = saved(&app, &key, &fr_id, 2).await;
    b.settled().await;

    // The API holds what the page shows, block for block.
    let design = &fr["design"];
    assert_eq!(kinds(design), canvas(&b).await);
    assert_eq!(
        design["blocks"][1]["text"],
        "Bonjour [FNAME|ami], voici l'offre"
    );
    assert_eq!(design["blocks"][2]["src"], "https://brand.test/banner.png");
    assert_eq!(
        design["blocks"][4]["columns"][1]["blocks"][0]["label"],
        "Commander"
    );
    assert_eq!(design["blocks"][5]["type"], "button");
    assert_eq!(design["blocks"][6]["unsubscribe"], "Se désabonner");
    let html = fr["html"].as_str().unwrap();
    assert!(html.contains("<table role=\"presentation\""), "{html}");
    assert!(
        html.contains("src=\"https://brand.test/banner.png\""),
        "{html}"
    );
    assert!(!html.contains("<style"), "{html}");

    // A test of the saved template to a real SMTP peer.
    b.fill("#test-email", "qa@example.test").await;
    // Earlier toasts (the save's) gone, the next one is the test's.
    b.client
        .execute(
            "const t = document.getElementById('toasts'); if (t) t.replaceChildren();",
            vec![],
        )
        .await
        .unwrap();
    b.click("#send-test").await;
    let toast = b
        .until(
            "the test's toast",
            "const t = [...document.querySelectorAll('#toasts .toast')].pop(); return t && t.textContent;",
        )
        .await;
    assert!(
        toast.as_str().unwrap().contains("qa@example.test"),
        "{toast}"
    );
    app.deliver().await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let data = String::from_utf8_lossy(&received[0].data).into_owned();
    assert_eq!(header(&data, "X-Template-Test"), Some(fr_id.as_str()));
    let mail = common::mail_check::inspect(
        &received[0].data,
        &common::mail_check::published_dkim(&app, &key, "brand.test", "s1").await,
    );
    let body = mail["html"].as_str().unwrap();
    assert!(body.contains("https://brand.test/banner.png"), "{body}");
    assert!(body.contains(">Commander</a>"), "{body}");
    assert!(body.contains(">Se désabonner</a>"), "{body}");

    // Copied into English, translated there, previewed in both languages.
    b.select("#copy-language", "en").await;
    b.click("#copy-to-language").await;
    let en_id = hash_id(&b, &fr_id).await;
    b.wait("#design-canvas .block").await;
    b.settled().await;
    b.click("#design-canvas > .block[data-kind=heading]").await;
    b.fill("#prop-text", "Hello [FNAME|friend], here is the offer")
        .await;
    // A problem the server finds shows on its block and beside its field.
    b.click("#design-canvas > .block[data-kind=image]").await;
    b.fill("#prop-src", "javascript:alert(1)").await;
    save(&b).await;
    b.wait("#design-canvas > .block.invalid[data-kind=image]")
        .await;
    b.wait_text("[data-prop=src] .field-error", "https://")
        .await;
    b.fill("#prop-src", "https://brand.test/banner-en.png")
        .await;
    save(&b).await;
    let en = saved(&app, &key, &en_id, 2).await;
    b.settled().await;
    assert_eq!(en["language"], "en");
    assert_eq!(en["category"], "promo");
    assert_eq!(kinds(&en["design"]), kinds(design));
    assert_eq!(
        en["design"]["blocks"][2]["src"],
        "https://brand.test/banner-en.png"
    );
    assert!(en["html"].as_str().unwrap().contains("<html lang=\"en\""));
    let shown = preview_heading(&b, "Hello ", ", here is the offer").await;
    assert!(
        shown.starts_with("Hello ") && shown.ends_with(", here is the offer"),
        "{shown}"
    );
    b.click_button("#preview-languages", "FR").await;
    let shown = preview_heading(&b, "Bonjour ", ", voici l'offre").await;
    assert!(
        shown.ends_with(", voici l'offre"),
        "the French template: {shown}"
    );
    b.wait_text("#fallback", "promo_fr").await;
    b.shot("designer-en").await;

    // The same page in French.
    b.click_button(".langs", "FR").await;
    b.wait_text(".palette-item[data-kind=heading]", "Titre")
        .await;
    b.wait_text("#design-palette", "Pied de page").await;
    b.shot("designer-fr").await;

    let violations = b
        .client
        .execute("return window.violations || null;", vec![])
        .await
        .unwrap();
    assert_eq!(violations, json!([]), "the page keeps its policy");
    b.close().await;
    app.finish().await;
}
