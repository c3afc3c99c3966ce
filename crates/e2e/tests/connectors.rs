//! PowerMTA configuration and MailWizz instances over the API and a real database.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_config_follows_ips_quotas_and_keys() {
    let app = TestApp::spawn().await;
    let a = app.tenant("brand-a").await;
    let (_, key_a) = app.api_key(&a, "a").await;
    let b = app.tenant("brand-b").await;
    let (_, key_b) = app.api_key(&b, "b").await;
    let mut ids = Vec::new();
    for (key, ip, host, state) in [
        (&key_a, "46.62.168.55", "mail1.brand-a.test", "active"),
        (&key_a, "46.62.168.56", "mail2.brand-a.test", "warming"),
        (&key_a, "46.62.168.57", "mail3.brand-a.test", "active"),
        (&key_b, "95.216.179.163", "mail1.brand-b.test", "warming"),
    ] {
        let r = app
            .post(
                "/api/v1/ips",
                key,
                json!({"ip": ip, "hostname": host, "state": state}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let plan = app
        .post(
            "/api/v1/warmup/plans",
            &key_a,
            json!({"ip_id": ids[1], "schedule": [120, 240], "replace": true}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{}", plan.body);
    // A quarantined IP gets no virtual MTA.
    let quarantined = app
        .post(
            &format!("/api/v1/ips/{}/transition", ids[2]),
            &key_a,
            json!({"to": "quarantined", "reason": "test"}),
        )
        .await;
    assert!(quarantined.status.is_success(), "{}", quarantined.body);
    let domain = app
        .post(
            "/api/v1/domains",
            &key_a,
            json!({"domain": "brand-a.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED);

    let fetch = || async {
        app.client
            .get(format!("{}/api/v1/powermta/config", app.base))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap()
    };
    let reply = fetch().await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(
        reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let config = reply.text().await.unwrap();
    let block = |name: &str| -> String {
        let start = config.find(&format!("<virtual-mta {name}>")).unwrap();
        let end = config[start..].find("</virtual-mta>").unwrap() + start;
        config[start..end].to_owned()
    };
    let active = block("vmta-46-62-168-55");
    assert!(active.contains("smtp-source-host 46.62.168.55 mail1.brand-a.test"));
    assert!(active.contains("domain-key s1,brand-a.test,/etc/pmta/dkim/brand-a.test.s1.pem"));
    assert!(
        !active.contains("max-cold-virtual-mta-msg"),
        "active: no cold limit"
    );
    let warming = block("vmta-46-62-168-56");
    assert!(
        warming.contains("max-cold-virtual-mta-msg 120/day"),
        "{warming}"
    );
    assert!(warming.contains("max-msg-rate 5/h"), "{warming}");
    let other = block("vmta-95-216-179-163");
    assert!(
        !other.contains("domain-key"),
        "another tenant's keys stay out"
    );
    assert!(
        !config.contains("46.62.168.57"),
        "quarantined IPs get no traffic"
    );
    assert!(config.contains("<virtual-mta-pool pool-brand-a>\n    virtual-mta vmta-46-62-168-55\n    virtual-mta vmta-46-62-168-56\n</virtual-mta-pool>"));
    assert!(config.contains("<virtual-mta-pool pool-brand-b>"));
    assert!(config.contains("http-access 0/0 none"));
    assert_eq!(fetch().await.text().await.unwrap(), config, "deterministic");

    let refused = app.get("/api/v1/powermta/config", &key_a).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.finish().await;
}

#[tokio::test]
async fn mailwizz_instances_keep_their_keys_sealed() {
    let app = TestApp::spawn().await;
    let a = app.tenant("brand-a").await;
    let (_, key_a) = app.api_key(&a, "a").await;
    let b = app.tenant("brand-b").await;
    let (_, key_b) = app.api_key(&b, "b").await;
    let bad = app
        .post(
            "/api/v1/mailwizz/instances",
            &key_a,
            json!({"name": "x", "api_url": "ftp://mw.test", "api_key": "k"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["field"], "api_url");
    let missing = app
        .post(
            "/api/v1/mailwizz/instances",
            &key_a,
            json!({"name": "x", "api_url": "https://mw.test/api"}),
        )
        .await;
    assert_eq!(missing.body["error"]["field"], "api_key");
    let first = app
        .post(
            "/api/v1/mailwizz/instances",
            &key_a,
            json!({"name": "sos-holidays", "api_url": "https://sos-holidays.com/api/", "api_key": "secret-mw-key-1",
                   "default_list_uid": "ab12", "is_primary": true}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["api_url"], "https://sos-holidays.com/api");
    assert_eq!(first.body["has_key"], true);
    assert!(!first.body.to_string().contains("secret-mw-key-1"));
    let second = app
        .post(
            "/api/v1/mailwizz/instances",
            &key_a,
            json!({"name": "second", "api_url": "https://mw2.test/api", "api_key": "secret-mw-key-2", "is_primary": true}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    let listed = app.get("/api/v1/mailwizz/instances", &key_a).await;
    let primaries: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["is_primary"] == true)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(primaries, vec!["second"], "one primary per tenant");
    // Sealed at rest: the stored value is not the key, and it opens with the master key.
    let mut conn = app.db.pool().acquire().await.unwrap();
    let stored = ee_store::mailwizz::get(
        &mut conn,
        first.body["id"].as_str().unwrap(),
        ee_store::Scope::All,
    )
    .await
    .unwrap();
    drop(conn);
    assert!(!stored.api_key_sealed.contains("secret-mw-key-1"));
    let sealer = app.services.delivery.sealer.clone().unwrap();
    assert_eq!(
        sealer
            .open("mailwizz-api-key", &stored.api_key_sealed)
            .unwrap(),
        b"secret-mw-key-1"
    );
    // Another tenant sees none of it; the audit log holds no key.
    let path = format!(
        "/api/v1/mailwizz/instances/{}",
        first.body["id"].as_str().unwrap()
    );
    assert_eq!(app.get(&path, &key_b).await.status, StatusCode::NOT_FOUND);
    let audit = app
        .get(
            "/api/v1/audit/logs?resource_type=mailwizz_instance",
            &app.admin,
        )
        .await;
    assert!(audit.status.is_success());
    assert!(!audit.body.to_string().contains("secret-mw-key"));
    let deleted = app
        .call(reqwest::Method::DELETE, &path, Some(&key_a), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &key_a).await.status, StatusCode::NOT_FOUND);
    app.finish().await;
}

/// Delivery through MailWizz (seed 000 §8.3, option A) against the fake MailWizz: contacts
/// injected into the default list with their subscriber ids kept, a transactional message
/// sent by MailWizz's transactional-emails endpoint (a 5xx deferred, then sent), a template
/// pushed then updated, a campaign's stats read back.
#[tokio::test]
async fn a_tenant_delivers_through_mailwizz() {
    use ee_connectors::testing::{self, KEY};
    use ee_dns::testing::{Rec, Zone};
    let mut zone = Zone::new();
    zone.add("brand.test", Rec::Mx(10, "mx.brand.test".into()))
        .add("mx.brand.test", Rec::A(std::net::Ipv4Addr::LOCALHOST));
    let app = TestApp::builder()
        .options(common::Options {
            zone,
            ..Default::default()
        })
        .spawn()
        .await;
    let (base, fake) = testing::start().await;
    fake.lock()
        .unwrap()
        .lists
        .insert("list-a".into(), Vec::new());
    let a = app.tenant("brand-a").await;
    let (_, key) = app.api_key(&a, "a").await;

    // MailWizz mode needs an instance with a default list.
    let no_instance = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{a}/delivery"),
            Some(&key),
            Some(json!({"mode": "mailwizz"})),
        )
        .await;
    assert_eq!(no_instance.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_instance.body["error"]["field"], "mailwizz");
    let instance = app
        .post(
            "/api/v1/mailwizz/instances",
            &key,
            json!({"name": "main", "api_url": base, "api_key": KEY, "default_list_uid": "list-a", "is_primary": true}),
        )
        .await;
    assert_eq!(instance.status, StatusCode::CREATED, "{}", instance.body);
    let instance_id = instance.body["id"].as_str().unwrap().to_owned();
    let mode = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{a}/delivery"),
            Some(&key),
            Some(json!({"mode": "mailwizz", "mailwizz": "main"})),
        )
        .await;
    assert_eq!(mode.status, StatusCode::OK, "{}", mode.body);

    // Ingestion injects the contacts into the default list, in bulk.
    let source = app
        .post(
            "/api/v1/data-sources",
            &key,
            json!({"slug": "scraper-pro-001", "name": "Scraper-Pro", "type": "scraper_pro"}),
        )
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{}", source.body);
    let ingested = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"source_id": "scraper-pro-001", "batch_id": "b1", "contacts": [
                {"email": "jean@brand.test", "firstName": "Jean", "lastName": "Dupont", "city": "Lyon"},
                {"email": "marie@brand.test", "firstName": "Marie"},
                {"email": "not-an-address"}]}),
        )
        .await;
    assert_eq!(ingested.status, StatusCode::OK, "{}", ingested.body);
    app.run_jobs().await;
    let jean_id = ingested.body["results"][0]["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    {
        let f = fake.lock().unwrap();
        let subscribers = &f.lists["list-a"];
        assert_eq!(subscribers.len(), 2, "{subscribers:?}");
        let jean = subscribers
            .iter()
            .find(|s| s["EMAIL"] == "jean@brand.test")
            .unwrap();
        assert_eq!(
            (&jean["FNAME"], &jean["LNAME"], &jean["CITY"]),
            (&json!("Jean"), &json!("Dupont"), &json!("Lyon"))
        );
        // Seed 002's flow: each subscriber says where it came from and for whom.
        for s in subscribers {
            assert_eq!(
                (&s["SOURCE"], &s["TENANT"]),
                (&json!("scraper-pro-001"), &json!("brand-a")),
                "{s}"
            );
        }
        let bulk: Vec<_> = f
            .requests
            .iter()
            .filter(|r| r.path == "lists/list-a/subscribers/bulk")
            .collect();
        assert_eq!(bulk.len(), 1, "one bulk request");
    }
    let kept = app
        .get(&format!("/api/v2/contacts/{jean_id}/mailwizz"), &key)
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    let uid = kept.body["items"][0]["subscriber_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fake.lock().unwrap().lists["list-a"]
            .iter()
            .filter(|s| s["subscriber_uid"] == uid.as_str())
            .count(),
        1
    );
    // A second ingest of the same contacts injects nothing twice.
    let again = app
        .post(
            "/api/v2/contacts/ingest",
            &key,
            json!({"email": "jean@brand.test", "first_name": "Jean", "source": "scraper-pro-001"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    app.run_jobs().await;
    assert_eq!(fake.lock().unwrap().lists["list-a"].len(), 2);

    // A contact we may no longer mail leaves the MailWizz list too.
    app.suppress(&key, "marie@brand.test", "unsubscribed").await;
    app.run_jobs().await;
    {
        let f = fake.lock().unwrap();
        let marie = f.lists["list-a"]
            .iter()
            .find(|s| s["EMAIL"] == "marie@brand.test")
            .unwrap();
        assert_eq!(marie["status"], "unsubscribed");
        let jean = f.lists["list-a"]
            .iter()
            .find(|s| s["EMAIL"] == "jean@brand.test")
            .unwrap();
        assert_eq!(jean["status"], "confirmed");
    }

    // A GDPR erasure deletes the subscriber in MailWizz too.
    let marie_id = ingested.body["results"][1]["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let erased = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v2/contacts/{marie_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT);
    app.run_jobs().await;
    {
        let f = fake.lock().unwrap();
        assert!(
            !f.lists["list-a"]
                .iter()
                .any(|s| s["EMAIL"] == "marie@brand.test"),
            "deleted in MailWizz"
        );
        assert!(
            f.requests
                .iter()
                .any(|r| r.method == "DELETE" && r.path.starts_with("lists/list-a/subscribers/")),
        );
    }

    // A transactional message goes out by MailWizz; a 503 first defers it.
    fake.lock().unwrap().fail_next = 3;
    let sent = app
        .post(
            "/api/v2/messages",
            &key,
            json!({"to": "jean@brand.test", "subject": "Bienvenue [FNAME]", "from_email": "hello@brand.test",
                   "from_name": "Brand A", "html": "<p>Bonjour [FNAME], <a href=\"https://brand.test/start\">start</a></p>",
                   "text": "Bonjour [FNAME]"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let message_id = sent.body["id"].as_str().unwrap().to_owned();
    app.deliver().await;
    let deferred = app
        .get(&format!("/api/v2/messages/{message_id}"), &key)
        .await;
    assert_eq!(deferred.body["state"], "deferred", "{}", deferred.body);
    assert!(fake.lock().unwrap().emails.is_empty());
    app.clock.advance_ms(4 * 3_600_000 + 1_000);
    app.deliver().await;
    let done = app
        .get(&format!("/api/v2/messages/{message_id}"), &key)
        .await;
    assert_eq!(done.body["state"], "sent", "{}", done.body);
    assert_eq!(done.body["route"], "mailwizz:main", "{}", done.body);
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.emails.len(), 1);
        let email = f.emails.values().next().unwrap();
        assert_eq!(email["to_email"], "jean@brand.test");
        assert_eq!(email["subject"], "Bienvenue Jean");
        assert_eq!(email["from_name"], "Brand A");
        assert_eq!(email["plain_text"], "Bonjour Jean");
        let body = email["body"].as_str().unwrap();
        assert!(body.contains("Bonjour Jean"), "{body}");
        // Our click tracking and open pixel travel in the body MailWizz sends.
        assert!(body.contains("http://ee.test/t/c/"), "{body}");
        assert!(body.contains("http://ee.test/t/o/"), "{body}");
        assert!(!body.contains("https://brand.test/start"), "{body}");
    }

    // A template pushed, then updated in place.
    let template = app
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "welcome", "language": "fr", "subject": "Bienvenue", "html": "<p>Bonjour [FNAME|ami]</p>"}),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.body);
    let template_id = template.body["id"].as_str().unwrap().to_owned();
    let push_path = format!("/api/v2/templates/{template_id}/mailwizz");
    let pushed = app.post(&push_path, &key, json!({})).await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.body);
    assert_eq!(pushed.body["created"], true);
    let template_uid = pushed.body["template_uid"].as_str().unwrap().to_owned();
    assert_eq!(
        fake.lock().unwrap().templates[&template_uid]["content"],
        "<p>Bonjour [FNAME|ami]</p>"
    );
    let edited = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v2/templates/{template_id}"),
            Some(&key),
            Some(json!({"html": "<p>Salut [FNAME|ami]</p>"})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let again = app.post(&push_path, &key, json!({})).await;
    assert_eq!(
        (&again.body["created"], &again.body["template_uid"]),
        (&json!(false), &json!(template_uid))
    );
    assert_eq!(
        fake.lock().unwrap().templates[&template_uid]["content"],
        "<p>Salut [FNAME|ami]</p>"
    );
    let unknown = app
        .post(&push_path, &key, json!({"instance": "nope"}))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A campaign's stats read back by its uid; an unknown one is a 404 naming MailWizz.
    fake.lock()
        .unwrap()
        .campaigns
        .insert("camp-1".into(), json!({"name": "Welcome"}));
    let stats = app
        .get(
            &format!("/api/v1/mailwizz/instances/{instance_id}/campaigns/camp-1/stats"),
            &key,
        )
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(stats.body["stats"]["opens_count"], 2);
    let missing = app
        .get(
            &format!("/api/v1/mailwizz/instances/{instance_id}/campaigns/nope/stats"),
            &key,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MailWizz")
    );
}

/// The hourly quota sync: stock MailWizz has no delivery-server endpoint, so the mapping
/// is marked unsupported and nothing is reported synced; an installation that has one gets
/// each IP's quota.
#[tokio::test]
async fn the_quota_sync_never_claims_a_push_it_did_not_make() {
    use ee_connectors::testing::{self, KEY};
    let app = TestApp::spawn().await;
    let a = app.tenant("brand-a").await;
    let (_, key) = app.api_key(&a, "a").await;
    let (base, fake) = testing::start().await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "46.62.168.55", "hostname": "mail1.brand-a.test", "state": "warming"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let plan = app
        .post(
            "/api/v1/warmup/plans",
            &key,
            json!({"ip_id": ip.body["id"], "schedule": [240, 480], "replace": true}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{}", plan.body);
    let instance = app
        .post(
            "/api/v1/mailwizz/instances",
            &key,
            json!({"name": "main", "api_url": base, "api_key": KEY}),
        )
        .await;
    let instance_id = instance.body["id"].as_str().unwrap().to_owned();
    let unknown_ip = app
        .post(
            "/api/v1/mailwizz/delivery-servers",
            &key,
            json!({"instance": instance_id, "ip": "10.9.9.9", "server_id": "7"}),
        )
        .await;
    assert_eq!(unknown_ip.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown_ip.body["error"]["field"], "ip");
    let mapped = app
        .post(
            "/api/v1/mailwizz/delivery-servers",
            &key,
            json!({"instance": instance_id, "ip": "46.62.168.55", "server_id": "7"}),
        )
        .await;
    assert_eq!(mapped.status, StatusCode::CREATED, "{}", mapped.body);
    let twice = app
        .post(
            "/api/v1/mailwizz/delivery-servers",
            &key,
            json!({"instance": instance_id, "ip": "46.62.168.55", "server_id": "7"}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    let sync = || async {
        app.call(
            reqwest::Method::POST,
            "/api/v1/jobs/scheduled.quota_sync/run",
            Some(&app.admin),
            None,
        )
        .await;
        app.run_jobs().await;
        app.get("/api/v1/mailwizz/delivery-servers", &key)
            .await
            .body["items"][0]
            .clone()
    };
    // Stock MailWizz: no endpoint.
    let first = sync().await;
    assert_eq!(first["last_status"], "unsupported", "{first}");
    assert!(first["last_hourly_quota"].is_null());
    assert!(
        first["last_detail"]
            .as_str()
            .unwrap()
            .contains("no delivery-server endpoint")
    );
    assert!(
        !fake
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|r| r.method == "PUT"),
        "nothing written"
    );

    // An installation with the endpoint: today's quota (240, day 1 of the plan) pushed.
    fake.lock().unwrap().delivery_servers =
        Some([("7".to_owned(), json!({"name": "pmta-1"}))].into());
    let second = sync().await;
    assert_eq!(second["last_status"], "synced", "{second}");
    assert_eq!(second["last_daily_quota"], 240);
    let hourly = second["last_hourly_quota"].as_i64().unwrap();
    assert!((10..=240).contains(&hourly), "{hourly}");
    let server = fake.lock().unwrap().delivery_servers.as_ref().unwrap()["7"].clone();
    assert_eq!(server["daily_quota"], "240");
    assert_eq!(server["hourly_quota"], hourly.to_string());

    // A wrong key: failed, with the reason.
    let bad = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/mailwizz/instances/{instance_id}"),
            Some(&key),
            Some(json!({"api_key": "wrong"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    let third = sync().await;
    assert_eq!(third["last_status"], "failed", "{third}");
    assert!(third["last_detail"].as_str().unwrap().contains("API key"));
}

/// `POST /api/v1/powermta/deploy` against a real sshd on loopback: deployed with the keys,
/// then refused by the validation (502 with the report, the running file untouched); each
/// deploy in the audit log with its diff and no password.
#[tokio::test]
async fn the_api_deploys_the_config_and_audits_the_diff() {
    let Some(host) = ee_connectors::testing::PmtaHost::start() else {
        return;
    };
    let pmta = ee_app::delivery::powermta::PmtaSettings {
        smtp_user: Some(("ee-relay".into(), "relay-secret-1".into())),
        dkim_dir: host.plan.dkim_dir.clone(),
        ssh: Some(host.sshd.target()),
        remote: host.plan.clone(),
        ..Default::default()
    };
    let unconfigured = TestApp::spawn().await;
    let refused = unconfigured
        .post("/api/v1/powermta/deploy", &unconfigured.admin, json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    let app = TestApp::builder()
        .options(common::Options {
            pmta,
            ..Default::default()
        })
        .spawn()
        .await;
    let a = app.tenant("brand-a").await;
    let (_, key_a) = app.api_key(&a, "a").await;
    let forbidden = app.post("/api/v1/powermta/deploy", &key_a, json!({})).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let ip = app
        .post(
            "/api/v1/ips",
            &key_a,
            json!({"ip": "46.62.168.55", "hostname": "mail1.brand-a.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED);
    let domain = app
        .post(
            "/api/v1/domains",
            &key_a,
            json!({"domain": "brand-a.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED);

    let deployed = app
        .post("/api/v1/powermta/deploy", &app.admin, json!({}))
        .await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.body);
    assert_eq!(deployed.body["outcome"], "deployed");
    let running = std::fs::read_to_string(&host.plan.config_path).unwrap();
    assert!(
        running.contains("<virtual-mta vmta-46-62-168-55>"),
        "{running}"
    );
    assert!(
        running.contains("password relay-secret-1"),
        "the real file has it"
    );
    let key_file = format!("{}/brand-a.test.s1.pem", host.plan.dkim_dir);
    assert!(
        std::fs::read_to_string(&key_file)
            .unwrap()
            .contains("PRIVATE KEY")
    );

    std::fs::write(host.state.join("refuse-config"), "line 3: bad").unwrap();
    let second_ip = app
        .post(
            "/api/v1/ips",
            &key_a,
            json!({"ip": "46.62.168.56", "hostname": "mail2.brand-a.test", "state": "active"}),
        )
        .await;
    assert_eq!(second_ip.status, StatusCode::CREATED);
    let rejected = app
        .post("/api/v1/powermta/deploy", &app.admin, json!({}))
        .await;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.body["error"]["code"], "deploy_failed");
    assert_eq!(rejected.body["error"]["details"]["outcome"], "rejected");
    assert_eq!(
        std::fs::read_to_string(&host.plan.config_path).unwrap(),
        running
    );

    let audit = app
        .get("/api/v1/audit/logs?resource_type=powermta", &app.admin)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let text = audit.body.to_string();
    assert!(
        !text.contains("relay-secret-1"),
        "no password in the audit log"
    );
    assert!(!text.contains("PRIVATE KEY"), "no key in the audit log");
    let entries = audit.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", audit.body);
    let diffs: Vec<String> = entries
        .iter()
        .map(|e| e["after"]["diff"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        diffs
            .iter()
            .any(|d| d.contains("+<virtual-mta vmta-46-62-168-56>")),
        "{diffs:?}"
    );
}

/// PowerMTA's management interface (a stand-in serving its XML pages) read by
/// `GET /api/v1/powermta/status` and by the scheduled poll into `/metrics`; when it stops
/// answering: 502, `ee_pmta_up 0` and an alert.
#[tokio::test]
async fn powermta_status_is_polled_into_the_api_and_metrics() {
    let (url, monitor) = ee_connectors::testing::start_pmta_monitor().await;
    {
        let mut m = monitor.lock().unwrap();
        m.pages.insert(
            "/status".into(),
            "<rsp><data><status><version>5.0r3</version><traffic><lastHr><out><rcp>1200</rcp>\
             <msg>1100</msg><kb>4800</kb></out></lastHr><lastMin><out><rcp>25</rcp></out></lastMin>\
             </traffic><conn><smtpIn><cur>3</cur></smtpIn><smtpOut><cur>14</cur></smtpOut></conn>\
             <queue><smtp><rcp>310</rcp><dom>2</dom><kb>1500</kb></smtp></queue></status></data></rsp>"
                .into(),
        );
        m.pages.insert(
            "/queues".into(),
            "<rsp><data><queue><name>gmail.com/vmta-46-62-168-55</name><rcp>300</rcp><kb>1400</kb>\
             <conn>9</conn><paused>false</paused><mode>backoff</mode></queue><queue>\
             <name>yahoo.com/vmta-46-62-168-56</name><rcp>10</rcp><conn>5</conn><mode>normal</mode>\
             </queue></data></rsp>"
                .into(),
        );
        m.pages.insert(
            "/vmtas".into(),
            "<rsp><data><vmta><name>vmta-46-62-168-55</name><rcp>300</rcp><dom>1</dom><conn>9</conn>\
             </vmta><vmta><name>vmta-46-62-168-56</name><rcp>10</rcp><dom>1</dom><conn>5</conn></vmta>\
             </data></rsp>"
                .into(),
        );
        m.pages.insert(
            "/domains".into(),
            "<rsp><data><domain><name>gmail.com</name><rcp>300</rcp><conn>9</conn></domain>\
             <domain><name>yahoo.com</name><rcp>10</rcp><conn>5</conn></domain></data></rsp>"
                .into(),
        );
    }
    let unconfigured = TestApp::spawn().await;
    let refused = unconfigured
        .get("/api/v1/powermta/status", &unconfigured.admin)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let app = TestApp::builder()
        .options(common::Options {
            pmta: ee_app::delivery::powermta::PmtaSettings {
                status_url: Some(url),
                ..Default::default()
            },
            ..Default::default()
        })
        .spawn()
        .await;
    let a = app.tenant("brand-a").await;
    let (_, key_a) = app.api_key(&a, "a").await;
    assert_eq!(
        app.get("/api/v1/powermta/status", &key_a).await.status,
        StatusCode::FORBIDDEN
    );
    let live = app.get("/api/v1/powermta/status", &app.admin).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    let status = &live.body["status"];
    assert_eq!(status["totals"]["version"], "5.0r3");
    assert_eq!(status["totals"]["queued_recipients"], 310);
    assert_eq!(status["totals"]["out_last_hour"]["recipients"], 1200);
    assert_eq!(status["queues"][0]["domain"], "gmail.com");
    assert_eq!(status["queues"][0]["vmta"], "vmta-46-62-168-55");
    assert_eq!(status["queues"][0]["mode"], "backoff");
    assert_eq!(status["vmtas"][1]["connections"], 5);
    assert_eq!(status["domains"][1]["recipients"], 10);
    {
        let m = monitor.lock().unwrap();
        for page in ["/status", "/queues", "/vmtas", "/domains"] {
            assert!(m.requests.iter().any(|r| r == page), "{page} polled");
        }
    }

    let poll = || async {
        app.call(
            reqwest::Method::POST,
            "/api/v1/jobs/scheduled.pmta_status/run",
            Some(&app.admin),
            None,
        )
        .await;
        app.run_jobs().await;
        app.metrics().await
    };
    let text = poll().await;
    for expected in [
        "ee_pmta_up 1",
        "ee_pmta_queued_recipients 310",
        "ee_pmta_smtp_out_connections 14",
        "ee_pmta_out_recipients_last_hour 1200",
        r#"ee_pmta_queue_recipients{domain="gmail.com",vmta="vmta-46-62-168-55"} 300"#,
        r#"ee_pmta_queue_backoff{domain="gmail.com",vmta="vmta-46-62-168-55"} 1"#,
        r#"ee_pmta_queue_backoff{domain="yahoo.com",vmta="vmta-46-62-168-56"} 0"#,
        r#"ee_pmta_vmta_connections{vmta="vmta-46-62-168-56"} 5"#,
        r#"ee_pmta_domain_recipients{domain="yahoo.com"} 10"#,
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }

    monitor.lock().unwrap().down = true;
    let down = app.get("/api/v1/powermta/status", &app.admin).await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY, "{}", down.body);
    assert_eq!(down.body["error"]["code"], "pmta_unavailable");
    app.clock.advance_ms(60_000);
    let text = poll().await;
    assert!(text.contains("ee_pmta_up 0"), "{text}");
    let alerts = app.get("/api/v1/alerts", &app.admin).await;
    assert!(
        alerts.body.to_string().contains("pmta.unreachable"),
        "{}",
        alerts.body
    );
}
