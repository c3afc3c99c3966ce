//! Traffic shaping from replies: a provider that says "slow down" (Gmail's 421 4.7.28)
//! is obeyed at once, for every domain it hosts, by every node, for the rule's time;
//! other providers keep their rate; an operator sees and may lift what holds.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;

use common::{Options, TestApp};
use ee_dns::testing::{Rec, Zone};
use ee_mail::testing::{Behaviour, TestSmtpServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const THROTTLE: &str = "4.7.28 [127.0.0.6] Our system has detected an unusual rate of \
     unsolicited mail originating from your IP address. To protect our users from spam, \
     mail sent from your IP address has been temporarily rate limited.";

/// Two domains hosted at Google (MX under google.com) and one elsewhere, all served by
/// the loopback peer.
fn zone() -> Zone {
    let mut zone = Zone::new();
    zone.add(
        "hosted-a.test",
        Rec::Mx(5, "alt1.aspmx.l.google.com".into()),
    )
    .add("hosted-b.test", Rec::Mx(1, "aspmx.l.google.com".into()))
    .add("elsewhere.test", Rec::Mx(10, "mx.elsewhere.test".into()))
    .add("alt1.aspmx.l.google.com", Rec::A(Ipv4Addr::LOCALHOST))
    .add("aspmx.l.google.com", Rec::A(Ipv4Addr::LOCALHOST))
    .add("mx.elsewhere.test", Rec::A(Ipv4Addr::LOCALHOST));
    zone
}

struct Setup {
    app: TestApp,
    smtp: TestSmtpServer,
    tenant: String,
    key: String,
}

async fn setup(shaping: Option<&str>) -> Setup {
    setup_with(shaping, "").await
}

async fn setup_with(shaping: Option<&str>, limits: &str) -> Setup {
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let shaping = match shaping {
        Some(extra) => ee_core::shaping::Shaping::with_extra(extra).unwrap(),
        None => ee_core::shaping::Shaping::shipped(),
    };
    let app = TestApp::builder()
        .options(Options {
            zone: zone(),
            mx_port: smtp.addr.port(),
            shaping: Arc::new(shaping),
            limits: ee_core::delivery::DestinationLimits::parse(limits).unwrap(),
            // Shaping alone: Gmail's rate across IPs (50/s, the test clock standing still)
            // is `provider_rates.rs`'s.
            rates: ee_core::provider_rates::ProviderRates::parse("gmail=none").unwrap(),
            ..Default::default()
        })
        .spawn()
        .await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "k").await;
    app.signing_domain(&key).await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "127.0.0.6", "hostname": "mta6.brand.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    Setup {
        app,
        smtp,
        tenant,
        key,
    }
}

/// Queues `count` messages to `r<i>@<domain>`; their ids.
async fn queue(s: &Setup, domain: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let (m, _) = ee_app::queue::messages::queue(
            &s.app.services,
            ee_app::queue::messages::SendRequest {
                tenant_id: s.tenant.clone(),
                kind: ee_core::delivery::MessageKind::Transactional,
                to_email: format!("r{i}@{domain}"),
                subject: Some("Hello".into()),
                text: Some("Hello".into()),
                from_email: Some("news@brand.test".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        ids.push(m.id);
    }
    ids
}

/// (state, attempts, reason) of each message.
async fn states(s: &Setup, ids: &[String]) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for id in ids {
        let m = s
            .app
            .get(&format!("/api/v2/messages/{id}"), &s.key)
            .await
            .body;
        out.push((
            m["state"].as_str().unwrap_or("").to_owned(),
            m["attempts"].as_i64().unwrap_or(-1),
            m["state_reason"].as_str().unwrap_or("").to_owned(),
        ));
    }
    out
}

fn attempts(states: &[(String, i64, String)]) -> i64 {
    states.iter().map(|(_, a, _)| a).sum()
}

fn count(states: &[(String, i64, String)], state: &str) -> usize {
    states.iter().filter(|(s, ..)| s == state).count()
}

/// An engine of its own (a node), sending `concurrency` messages at once.
fn node(app: &TestApp, name: &str, concurrency: usize) -> Arc<ee_jobs::delivery::Engine> {
    let mut services = app.services.clone();
    services.delivery.node = name.into();
    services.delivery.concurrency = concurrency;
    ee_jobs::delivery::Engine::new(services)
}

async fn active(s: &Setup) -> Vec<Value> {
    let r = s.app.get("/api/v1/shaping", &s.key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Gmail's 421 4.7.28 on the first message: within the same batch the other 499 to that
/// domain and every message to a second domain hosted at Google wait (not attempted, not
/// counted) while a domain elsewhere goes at its full rate; the state names its rule and
/// reply; an alert says the IP is suspended at Gmail; after the suspension the messages
/// go, over one connection at a time as Google asks.
#[tokio::test]
async fn a_gmail_throttle_holds_every_google_domain_and_no_other() {
    let s = setup(None).await;
    let a = queue(&s, "hosted-a.test", 500).await;
    s.smtp.script(
        "r0@hosted-a.test",
        vec![
            Behaviour::RefuseRcpt(421, THROTTLE.into()),
            Behaviour::Accept,
        ],
    );
    let b = queue(&s, "hosted-b.test", 20).await;
    let elsewhere = queue(&s, "elsewhere.test", 20).await;
    let engine = node(&s.app, "n1", 4);
    engine.run_until_idle().await.unwrap();

    let at_a = states(&s, &a).await;
    let at_b = states(&s, &b).await;
    let other = states(&s, &elsewhere).await;
    // The first attempt at Gmail was refused; only those already in flight went on.
    let tried_at_google = attempts(&at_a) + attempts(&at_b);
    eprintln!(
        "attempts at Google in the batch of 520 that met the throttle: {tried_at_google}; \
         at elsewhere.test: {}",
        attempts(&other)
    );
    assert!(
        (1..=8).contains(&tried_at_google),
        "{tried_at_google} attempts at Google"
    );
    let held = |v: &[(String, i64, String)]| {
        v.iter()
            .filter(|(st, n, why)| {
                st == "deferred" && *n == 0 && why.contains("held by traffic shaping at gmail")
            })
            .count()
    };
    assert!(held(&at_a) >= 492, "{:?}", &at_a[..10]);
    assert!(held(&at_b) + count(&at_b, "sent") == 20 && held(&at_b) >= 12);
    assert_eq!(count(&other, "sent"), 20, "another provider keeps its rate");

    // What holds, and why.
    let states_now = active(&s).await;
    let suspend = states_now
        .iter()
        .find(|st| st["action"] == "suspend")
        .expect("a suspension");
    assert_eq!(suspend["provider"], "gmail");
    assert_eq!(suspend["scope"], "ip");
    assert!(suspend["rule"].as_str().unwrap().starts_with("shipped:"));
    assert!(suspend["reply"].as_str().unwrap().contains("4.7.28"));
    let connections = states_now
        .iter()
        .find(|st| st["action"] == "connections")
        .expect("one connection afterwards");
    assert_eq!(connections["value"], 1);
    let alerts = s.app.get("/api/v1/alerts", &s.app.admin).await.body;
    assert!(
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|al| al["title"] == "IP 127.0.0.6 suspended at gmail"),
        "{alerts}"
    );
    // The refusal counts as a deferral of the IP in the reports (the held ones do not).
    let today = ee_core::timefmt::date_of(s.app.clock.now_ms());
    let report = s
        .app
        .get(
            &format!(
                "/api/v1/reports?tenant_id={}&from={today}&to={today}&by=ip",
                s.tenant
            ),
            &s.key,
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let totals = &report.body["totals"];
    assert_eq!(totals["deferred"], 1, "{totals}");
    assert!(
        totals["rates"]["deferral"].as_f64().unwrap() > 0.0,
        "{totals}"
    );
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains(r#"ee_shaping_active{provider="gmail",action="suspend"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ee_deferred_total{") && l.ends_with(" 1")),
        "{metrics}"
    );

    // Fifteen minutes later the suspension is over: everything goes, one connection at
    // a time per domain (the connections state holds two hours).
    s.app.clock.advance_ms(16 * 60_000);
    let connections_before = s.smtp.connections();
    node(&s.app, "n1", 8).run_until_idle().await.unwrap();
    assert_eq!(count(&states(&s, &a).await, "sent"), 500);
    assert_eq!(count(&states(&s, &b).await, "sent"), 20);
    let opened = s.smtp.connections() - connections_before;
    assert!(opened <= 2, "{opened} connections opened for two domains");
    s.app.finish().await;
}

/// With a rate rule (an operator's file) the attempts at the provider drop to the rule's
/// rate: one a minute, the waiting messages spread a minute apart.
#[tokio::test]
async fn a_rate_rule_paces_the_provider_to_its_rate() {
    let s = setup(Some("rule gmail status 4.7.28 then rate 1/m for 1h\n")).await;
    // Before any throttle: Gmail takes what is due at once (within the configured
    // 3600 an hour).
    let before = queue(&s, "hosted-b.test", 30).await;
    node(&s.app, "n1", 4).run_until_idle().await.unwrap();
    let at_once = attempts(&states(&s, &before).await);
    assert_eq!(at_once, 30);
    let a = queue(&s, "hosted-a.test", 60).await;
    s.smtp.script(
        "r0@hosted-a.test",
        vec![
            Behaviour::RefuseRcpt(421, THROTTLE.into()),
            Behaviour::Accept,
        ],
    );
    node(&s.app, "n1", 1).run_until_idle().await.unwrap();
    let first = attempts(&states(&s, &a).await);
    // The refusal, then the one the pace lets through at once.
    assert!((1..=2).contains(&first), "{first}");
    let mut per_minute = Vec::new();
    for _ in 0..10 {
        s.app.clock.advance_ms(60_000);
        let before = attempts(&states(&s, &a).await);
        node(&s.app, "n1", 4).run_until_idle().await.unwrap();
        per_minute.push(attempts(&states(&s, &a).await) - before);
    }
    eprintln!(
        "attempts at gmail: {at_once} in the same instant before the rule fired; \
         {first} in the pass that met the throttle; then per simulated minute {per_minute:?}"
    );
    assert!(per_minute.iter().all(|n| *n <= 1), "{per_minute:?}");
    assert!(per_minute.iter().sum::<i64>() >= 8, "{per_minute:?}");
    let rate = active(&s).await;
    assert_eq!(rate[0]["action"], "rate");
    assert_eq!(
        (rate[0]["value"].as_i64(), rate[0]["per_secs"].as_i64()),
        (Some(1), Some(60))
    );
    s.app.finish().await;
}

/// A suspension set by one node holds on another node that never saw the reply.
#[tokio::test]
async fn two_nodes_honour_one_suspension() {
    let s = setup(None).await;
    queue(&s, "hosted-a.test", 1).await;
    s.smtp.script(
        "r0@hosted-a.test",
        vec![Behaviour::RefuseRcpt(421, THROTTLE.into())],
    );
    let first = node(&s.app, "n1", 2);
    first.run_until_idle().await.unwrap();
    assert_eq!(active(&s).await.len(), 2, "suspend, then one connection");
    let later = queue(&s, "hosted-b.test", 10).await;
    let second = node(&s.app, "n2", 8);
    second.run_until_idle().await.unwrap();
    let seen = states(&s, &later).await;
    assert_eq!(attempts(&seen), 0, "{seen:?}");
    assert_eq!(s.smtp.received_count(), 0);
    s.app.finish().await;
}

/// An operator lifts a suspension early (audited): the messages go at once. Another
/// tenant cannot see or lift it; a state lifted cannot be lifted again.
#[tokio::test]
async fn a_suspension_lifted_early_lets_the_messages_go() {
    let s = setup(None).await;
    let ids = queue(&s, "hosted-a.test", 5).await;
    s.smtp.script(
        "r0@hosted-a.test",
        vec![
            Behaviour::RefuseRcpt(421, THROTTLE.into()),
            Behaviour::Accept,
        ],
    );
    node(&s.app, "n1", 1).run_until_idle().await.unwrap();
    let suspend = active(&s)
        .await
        .into_iter()
        .find(|st| st["action"] == "suspend")
        .unwrap();
    let id = suspend["id"].as_str().unwrap().to_owned();

    let other = s.app.tenant("other").await;
    let (_, other_key) = s.app.api_key(&other, "k").await;
    let theirs = s.app.get("/api/v1/shaping", &other_key).await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 0);
    let path = format!("/api/v1/shaping/{id}/lift");
    let refused = s
        .app
        .call(Method::POST, &path, Some(&other_key), None)
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);

    let lifted = s.app.call(Method::POST, &path, Some(&s.key), None).await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.body);
    assert_eq!(lifted.body["active"], false);
    assert!(lifted.body["lifted_by"].is_string());
    let again = s.app.call(Method::POST, &path, Some(&s.key), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let audit = s
        .app
        .get("/api/v1/audit/logs?action=shaping.lift", &s.app.admin)
        .await;
    assert!(
        audit.body.to_string().contains("shaping.lift"),
        "{}",
        audit.body
    );

    // The held messages were due at the suspension's end: lifted, they go now (the
    // one-connection state still holds, so they go one at a time).
    node(&s.app, "n1", 2).run_until_idle().await.unwrap();
    let seen = states(&s, &ids).await;
    assert_eq!(count(&seen, "sent"), 4, "{seen:?}");
    // The refused one waits for its own retry (five minutes), as any 4xx.
    assert_eq!((seen[0].0.as_str(), seen[0].1), ("deferred", 1));
    s.app.clock.advance_ms(5 * 60_000);
    node(&s.app, "n1", 2).run_until_idle().await.unwrap();
    assert_eq!(count(&states(&s, &ids).await, "sent"), 5);
    s.app.finish().await;
}

/// A relay's own "too many connections" slows the hand-off: a state of scope relay.
#[tokio::test]
async fn a_relays_own_replies_shape_the_relay() {
    let s = setup(None).await;
    let relay = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    s.app.relay_mode(&s.key, "brand", relay.addr.port()).await;
    queue(&s, "elsewhere.test", 1).await;
    relay.script(
        "r0@elsewhere.test",
        vec![
            Behaviour::RefuseRcpt(421, "4.3.2 too many connections from your host".into()),
            Behaviour::Accept,
        ],
    );
    node(&s.app, "n1", 1).run_until_idle().await.unwrap();
    let states = active(&s).await;
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(
        (
            &states[0]["provider"],
            &states[0]["scope"],
            &states[0]["action"]
        ),
        (&json!("relay"), &json!("relay"), &json!("connections"))
    );
    let rules = s.app.get("/api/v1/shaping/rules", &s.key).await;
    let key = states[0]["rule"].as_str().unwrap();
    assert!(
        rules.body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == key && r["provider"] == "relay"),
        "{}",
        rules.body
    );
    s.app.finish().await;
}

/// The delivery menu's shaping page shows what the API says holds (provider, action,
/// value, rule) and lifts a state: the API then says it is lifted.
#[tokio::test]
async fn the_shaping_page_shows_what_holds_and_lifts_it() {
    let Some(b) = common::browser::Browser::start().await else {
        return;
    };
    let s = setup(None).await;
    queue(&s, "hosted-a.test", 3).await;
    s.smtp.script(
        "r0@hosted-a.test",
        vec![
            Behaviour::RefuseRcpt(421, THROTTLE.into()),
            Behaviour::Accept,
        ],
    );
    node(&s.app, "n1", 1).run_until_idle().await.unwrap();
    let api = active(&s).await;
    assert_eq!(api.len(), 2);

    b.log_in(&s.app.base, common::ADMIN_EMAIL, common::ADMIN_PASSWORD)
        .await;
    b.goto(&format!("{}/admin/#/shaping", s.app.base)).await;
    let rows = b
        .until(
            "the shaping table",
            "const rows = [...document.querySelectorAll('main table')[0]?.querySelectorAll('tbody tr') || []]; \
             return rows.length >= 2 ? rows.map((r) => [...r.cells].map((c) => c.textContent.trim())) : null;",
        )
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), api.len());
    for state in &api {
        let action = state["action"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r[2] == action)
            .unwrap_or_else(|| panic!("no row for {action}: {rows:?}"));
        assert_eq!(row[0], "gmail");
        assert_eq!(state["subject_label"], "127.0.0.6");
        assert_eq!(row[1], "IP 127.0.0.6");
        assert_eq!(row[5], state["rule"].as_str().unwrap());
        if action == "connections" {
            assert_eq!(row[3], "1");
        }
    }
    b.shot("shaping").await;
    // The providers' rates across IPs and their busiest second are the API's.
    let rules = s.app.get("/api/v1/shaping/rules", &s.app.admin).await;
    let shown = b
        .until(
            "the providers' table",
            "const rows = [...document.querySelectorAll('main table')[2]?.querySelectorAll('tbody tr') || []]; \
             return rows.length ? rows.map((r) => [...r.cells].map((c) => c.textContent.trim())) : null;",
        )
        .await;
    let shown = shown.as_array().unwrap();
    let providers = rules.body["providers"].as_array().unwrap();
    assert_eq!(shown.len(), providers.len());
    let per_second = |v: &Value| v.as_i64().map_or("none".to_owned(), |n| format!("{n}/s"));
    for (row, p) in shown.iter().zip(providers) {
        assert_eq!(row[0], p["name"], "{row:?}");
        assert_eq!(
            row[3],
            json!(per_second(&p["rate_per_second"])),
            "{row:?}: {p}"
        );
        assert_eq!(
            row[4],
            json!(per_second(&p["peak_last_minute"])),
            "{row:?}: {p}"
        );
    }
    // Gmail's rate is lifted here (this file tests shaping alone): the page says so.
    let gmail = shown.iter().find(|r| r[0] == "gmail").unwrap();
    assert_eq!(gmail[3], "none");

    // Lift the suspension from the page.
    b.client
        .execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    let suspend_id = api.iter().find(|st| st["action"] == "suspend").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.client
        .execute(
            "const row = [...document.querySelectorAll('main table')[0].querySelectorAll('tbody tr')].find((r) => r.cells[2].textContent.trim() === 'suspend'); row.querySelector('button').click();",
            vec![],
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let all = s.app.get("/api/v1/shaping?all=true", &s.key).await.body;
        let lifted =
            all["items"].as_array().unwrap().iter().any(|st| {
                st["id"] == suspend_id.as_str() && st["lifted_by"] == common::ADMIN_EMAIL
            });
        if lifted {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{all}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.close().await;
    s.app.finish().await;
}

/// A provider's connection limit holds across the nodes: two nodes sending to it at once
/// keep no more connections open together than the limit (each alone would open that
/// many), and every message goes.
#[tokio::test]
async fn connections_are_counted_across_the_nodes() {
    let s = setup_with(None, "other=36000/2").await;
    let ids = queue(&s, "elsewhere.test", 60).await;
    // A busy receiver: each message takes a while, so both nodes send at once.
    for i in 0..60 {
        s.smtp.script(
            &format!("r{i}@elsewhere.test"),
            vec![Behaviour::AcceptAfter(std::time::Duration::from_millis(
                150,
            ))],
        );
    }
    // Small batches, so that both nodes have some.
    let small = |name: &str| {
        let mut services = s.app.services.clone();
        services.delivery.node = name.into();
        services.delivery.concurrency = 4;
        services.delivery.batch = 6;
        ee_jobs::delivery::Engine::new(services)
    };
    let (one, two) = (small("n1"), small("n2"));
    let (a, b) = tokio::join!(one.run_until_idle(), two.run_until_idle());
    a.unwrap();
    b.unwrap();
    // What waited for a slot is due again ten seconds later; the connections left idle
    // are closed (here at once; `IDLE_MAX` at most), which frees their slots.
    for _ in 0..30 {
        if count(&states(&s, &ids).await, "sent") == 60 {
            break;
        }
        one.close_idle().await;
        two.close_idle().await;
        s.app.clock.advance_ms(10_000);
        let (a, b) = tokio::join!(one.run_until_idle(), two.run_until_idle());
        a.unwrap();
        b.unwrap();
    }
    assert_eq!(count(&states(&s, &ids).await, "sent"), 60);
    // In clear (this peer offers no STARTTLS), the sent event names no TLS session.
    let one = s
        .app
        .get(&format!("/api/v2/messages/{}", ids[0]), &s.key)
        .await
        .body;
    let sent = one["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "sent")
        .cloned()
        .unwrap();
    assert_eq!(sent["tls"], Value::Null, "{one}");
    eprintln!("most connections open at once: {}", s.smtp.most_open());
    assert!(
        s.smtp.most_open() <= 2,
        "{} open at once",
        s.smtp.most_open()
    );
    s.app.finish().await;
}
