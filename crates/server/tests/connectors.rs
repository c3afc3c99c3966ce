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
    let primaries: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["is_primary"] == true)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(primaries, vec!["second"], "one primary per tenant");
    // Sealed at rest: the stored value is not the key, and it opens with the master key.
    let mut conn = app.db.pool().acquire().await.unwrap();
    let stored = ee_store::mailwizz::get(&mut conn, first.body["id"].as_str().unwrap(), None)
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
