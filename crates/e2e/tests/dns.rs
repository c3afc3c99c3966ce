//! Domains, DKIM keys, the records to publish and their validation, and blacklist
//! checks — against a real DNS server on loopback whose zones the tests edit.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, error_code};
use ee_dns::testing::{Rec, Zone};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Tenant A with a key, a warming IP with a host name, and the domain brand-a.test.
async fn setup(app: &TestApp) -> (String, String, String, String) {
    let tenant = app.tenant("brand-a").await;
    let (_, key) = app.api_key(&tenant, "dns").await;
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "192.0.2.10", "hostname": "mail1.brand-a.test"}),
        )
        .await;
    let domain = app
        .post(
            "/api/v1/domains",
            &key,
            json!({"domain": "Brand-A.test", "dkim_selector": "s1"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.body);
    (
        tenant,
        key,
        ip.body["id"].as_str().unwrap().to_owned(),
        domain.body["id"].as_str().unwrap().to_owned(),
    )
}

/// Publishes records as GET /dns-records lists them.
fn publish(zone: &mut Zone, records: &Value) {
    for r in records.as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let value = r["value"].as_str().unwrap();
        let rec = match r["type"].as_str().unwrap() {
            "TXT" => match r["strings"].as_array() {
                Some(parts) => Rec::Txt(
                    parts
                        .iter()
                        .map(|p| p.as_str().unwrap().as_bytes().to_vec())
                        .collect(),
                ),
                None => Rec::txt(value),
            },
            "MX" => {
                let (pref, host) = value.split_once(' ').unwrap();
                Rec::Mx(pref.parse().unwrap(), host.to_owned())
            }
            "A" => Rec::A(value.parse().unwrap()),
            "AAAA" => Rec::Aaaa(value.parse().unwrap()),
            "PTR" => Rec::Ptr(value.to_owned()),
            other => panic!("unexpected record type {other}"),
        };
        zone.add(name, rec);
    }
}

#[tokio::test]
async fn domains_dkim_keys_and_the_records_to_publish() {
    let app = TestApp::spawn().await;
    let (tenant, key, _ip, domain) = setup(&app).await;
    let got = app.get(&format!("/api/v1/domains/{domain}"), &key).await;
    assert_eq!(
        (
            got.body["domain"].as_str(),
            got.body["dkim_selector"].as_str()
        ),
        (Some("brand-a.test"), Some("s1"))
    );
    let keys = got.body["dkim_keys"].as_array().unwrap();
    assert_eq!(
        (
            keys.len(),
            keys[0]["algorithm"].as_str(),
            keys[0]["status"].as_str()
        ),
        (1, Some("rsa"), Some("active"))
    );
    assert!(
        !got.body.to_string().contains("PRIVATE"),
        "the private key is never returned"
    );
    let sealed: String = sqlx::query_scalar("SELECT private_key_sealed FROM dkim_keys")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains("PRIVATE"),
        "sealed at rest"
    );

    let records = app
        .get(&format!("/api/v1/domains/{domain}/dns-records"), &key)
        .await;
    let find = |name: &str, kind: &str| -> Vec<String> {
        records.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == name && r["type"] == kind)
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .collect()
    };
    let dkim = find("s1._domainkey.brand-a.test", "TXT");
    assert!(
        dkim[0].starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"),
        "{dkim:?}"
    );
    assert!(
        records.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["strings"].is_array()),
        "a 2048-bit key is split into 255-byte strings"
    );
    assert_eq!(find("brand-a.test", "TXT"), ["v=spf1 ip4:192.0.2.10 ~all"]);
    assert_eq!(
        find("_dmarc.brand-a.test", "TXT"),
        ["v=DMARC1; p=none; adkim=r; aspf=r"]
    );
    assert_eq!(find("brand-a.test", "MX"), ["10 mail1.brand-a.test."]);
    assert_eq!(find("mail1.brand-a.test", "A"), ["192.0.2.10"]);
    assert_eq!(
        find("10.2.0.192.in-addr.arpa", "PTR"),
        ["mail1.brand-a.test."]
    );

    // Rotation: a new selector signs, the old key stays published until retired.
    let rotated = app
        .post(
            &format!("/api/v1/domains/{domain}/dkim/rotate"),
            &key,
            json!({"algorithm": "ed25519", "selector": "s2"}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.body["dkim_selector"], "s2");
    let statuses: Vec<(String, String)> = rotated.body["dkim_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["selector"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("s2".to_owned(), "active".to_owned()),
            ("s1".to_owned(), "published".to_owned())
        ]
    );
    let records = app
        .get(&format!("/api/v1/domains/{domain}/dns-records"), &key)
        .await;
    let dkim_names: Vec<&str> = records.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"].as_str().unwrap().contains("_domainkey"))
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        dkim_names,
        ["s2._domainkey.brand-a.test", "s1._domainkey.brand-a.test"]
    );
    let ed = records.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "s2._domainkey.brand-a.test")
        .unwrap();
    assert!(
        ed["value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=ed25519; p=")
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/domains/{domain}/dkim/s2"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "the active key cannot be retired"
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/v1/domains/{domain}/dkim/s1"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let again = app
        .post(
            &format!("/api/v1/domains/{domain}/dkim/rotate"),
            &key,
            json!({"selector": "s2"}),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "a selector is never reused"
    );

    for (body, field) in [
        (json!({"domain": "not a domain"}), "domain"),
        (
            json!({"domain": "x.test", "dkim_algorithm": "dsa"}),
            "dkim_algorithm",
        ),
        (
            json!({"domain": "x.test", "dkim_selector": "bad selector"}),
            "dkim_selector",
        ),
        (
            json!({"domain": "x.test", "dmarc_policy": "maybe"}),
            "dmarc_policy",
        ),
    ] {
        let reply = app.post("/api/v1/domains", &key, body.clone()).await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
    let dup = app
        .post("/api/v1/domains", &key, json!({"domain": "brand-a.test"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let idn = app
        .post("/api/v1/domains", &key, json!({"domain": "bücher.test"}))
        .await;
    assert_eq!(idn.body["domain"], "xn--bcher-kva.test");

    let other = app.tenant("brand-b").await;
    let (_, other_key) = app.api_key(&other, "b").await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/domains/{domain}")),
        (Method::PATCH, format!("/api/v1/domains/{domain}")),
        (Method::DELETE, format!("/api/v1/domains/{domain}")),
        (Method::GET, format!("/api/v1/domains/{domain}/dns-records")),
        (Method::POST, format!("/api/v1/domains/{domain}/validate")),
        (Method::GET, format!("/api/v1/domains/{domain}/checks")),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/dkim/rotate"),
        ),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"dmarc_policy": "reject"}));
        let reply = app
            .call(method.clone(), &path, Some(&other_key), body)
            .await;
        assert_eq!(
            (reply.status, error_code(&reply).as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path}"
        );
    }
    let audit = app
        .get(
            &format!("/api/v1/audit/logs?resource_id={domain}"),
            &app.admin,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"domain.create")
            && actions.contains(&"domain.dkim_rotate")
            && actions.contains(&"domain.dkim_retire"),
        "{actions:?}"
    );
    let _ = tenant;
    app.finish().await;
}

#[tokio::test]
async fn dns_validation_passes_when_published_and_names_what_is_wrong() {
    let app = TestApp::spawn().await;
    let (_, key, _ip, domain) = setup(&app).await;
    let records = app
        .get(&format!("/api/v1/domains/{domain}/dns-records"), &key)
        .await;
    app.dns.edit(|zone| publish(zone, &records.body["items"]));

    let check = app
        .post(
            &format!("/api/v1/domains/{domain}/validate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    let r = &check.body["results"];
    assert_eq!(check.body["ok"], true, "{r}");
    assert_eq!(
        (r["spf"][0]["ip"].as_str(), r["spf"][0]["result"].as_str()),
        (Some("192.0.2.10"), Some("pass"))
    );
    assert_eq!(
        (
            r["dkim"][0]["selector"].as_str(),
            r["dkim"][0]["matches"].as_bool()
        ),
        (Some("s1"), Some(true))
    );
    assert_eq!(
        (
            r["dmarc"]["policy"].as_str(),
            r["dmarc"]["dkim_alignment"].as_bool(),
            r["dmarc"]["spf_alignment"].as_bool()
        ),
        (Some("none"), Some(true), Some(true))
    );
    assert_eq!(r["mx"]["hosts"], json!(["10 mail1.brand-a.test"]));
    assert_eq!(
        (
            r["ptr"][0]["forward_confirmed"].as_bool(),
            r["ptr"][0]["matches_hostname"].as_bool()
        ),
        (Some(true), Some(true))
    );

    // Now break each record.
    app.dns.edit(|zone| {
        zone.remove("brand-a.test");
        zone.add("brand-a.test", Rec::txt("v=spf1 ip4:198.51.100.0/24 -all"));
        zone.add("brand-a.test", Rec::Mx(0, ".".into()));
        zone.remove("s1._domainkey.brand-a.test");
        zone.add(
            "s1._domainkey.brand-a.test",
            Rec::txt("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsomeoneelse"),
        );
        zone.remove("10.2.0.192.in-addr.arpa");
        zone.add(
            "10.2.0.192.in-addr.arpa",
            Rec::Ptr("elsewhere.example.net".into()),
        );
        zone.remove("_dmarc.brand-a.test");
        zone.add("_dmarc.brand-a.test", Rec::txt("v=DMARC1; p=sometimes"));
    });
    let check = app
        .post(
            &format!("/api/v1/domains/{domain}/validate"),
            &key,
            json!({}),
        )
        .await;
    let r = &check.body["results"];
    assert_eq!(check.body["ok"], false);
    assert_eq!(
        r["spf"][0]["result"], "fail",
        "an evaluation of the record for the IP, not a string match"
    );
    assert_eq!(
        (
            r["dkim"][0]["found"].as_bool(),
            r["dkim"][0]["matches"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert!(r["dmarc"]["error"].as_str().unwrap().contains("sometimes"));
    assert_eq!(r["mx"]["null_mx"], true);
    assert_eq!(r["ptr"][0]["forward_confirmed"], false);

    let history = app
        .get(&format!("/api/v1/domains/{domain}/checks"), &key)
        .await;
    let oks: Vec<bool> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [false, true], "newest first");
    let shown = app.get(&format!("/api/v1/domains/{domain}"), &key).await;
    assert_eq!(shown.body["dns_ok"], false);
    let alerts = app.get("/api/v1/alerts", &key).await;
    let dns_alert = alerts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["cause"].as_str().unwrap().starts_with("domain.dns:"))
        .unwrap();
    assert!(
        dns_alert["message"]
            .as_str()
            .unwrap()
            .contains("SPF fail for 192.0.2.10"),
        "{dns_alert}"
    );

    // The 06:00 job checks every domain.
    app.call(
        Method::POST,
        "/api/v1/jobs/scheduled.dns_validation/run",
        Some(&app.admin),
        None,
    )
    .await;
    app.run_jobs().await;
    let jobs = app.get("/api/v1/jobs", &app.admin).await;
    let dns_job = jobs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "scheduled.dns_validation")
        .unwrap();
    assert_eq!(
        dns_job["last_run"]["result"],
        json!({"checked": 1, "failing": ["brand-a.test"]})
    );
    assert_eq!(
        app.get(&format!("/api/v1/domains/{domain}/checks"), &key)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    app.finish().await;
}

#[tokio::test]
async fn blacklisted_ips_stand_by_and_come_back_when_delisted() {
    let mut zone = Zone::new();
    zone.add(
        "10.2.0.192.bl.test.example",
        Rec::A("127.0.0.2".parse().unwrap()),
    );
    zone.add(
        "10.2.0.192.bl.test.example",
        Rec::txt("Listed for spam, see https://bl.test.example/192.0.2.10"),
    );
    let app = TestApp::builder().zone(zone).spawn().await;
    let (_, key, ip, _) = setup(&app).await;

    let check = app
        .get("/api/v1/blacklists/check?ip=192.0.2.10", &key)
        .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    assert_eq!(
        (
            check.body["listed"].as_bool(),
            check.body["ip_id"].as_str(),
            check.body["state"].as_str()
        ),
        (Some(true), Some(ip.as_str()), Some("blacklisted"))
    );
    let lists = check.body["lists"].as_array().unwrap();
    assert_eq!(
        (lists[0]["zone"].as_str(), lists[0]["listed"].as_bool()),
        (Some("bl.test.example"), Some(true))
    );
    assert_eq!(lists[0]["codes"], json!(["127.0.0.2"]));
    assert!(
        lists[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Listed for spam")
    );
    assert_eq!(
        (lists[1]["zone"].as_str(), lists[1]["listed"].as_bool()),
        (Some("dnsbl.test.example"), Some(false))
    );
    let shown = app.get(&format!("/api/v1/ips/{ip}"), &key).await;
    assert_eq!(
        (
            shown.body["state"].as_str(),
            shown.body["blacklist_status"].as_str()
        ),
        (Some("blacklisted"), Some("listed"))
    );
    assert!(
        shown.body["state_reason"]
            .as_str()
            .unwrap()
            .contains("bl.test.example (127.0.0.2: Listed for spam")
    );
    let alerts = app.get("/api/v1/alerts", &key).await;
    assert!(
        alerts.body["items"][0]["cause"]
            .as_str()
            .unwrap()
            .starts_with("ip.blacklisted:")
    );

    // Delisted: the 4-hourly job brings it back to the state it had (warming).
    app.dns.edit(|zone| {
        zone.remove("10.2.0.192.bl.test.example");
    });
    app.call(
        Method::POST,
        "/api/v1/jobs/scheduled.blacklist_check/run",
        Some(&app.admin),
        None,
    )
    .await;
    app.run_jobs().await;
    let shown = app.get(&format!("/api/v1/ips/{ip}"), &key).await;
    assert_eq!(
        (
            shown.body["state"].as_str(),
            shown.body["blacklist_status"].as_str()
        ),
        (Some("warming"), Some("clean"))
    );
    let history = app
        .get(&format!("/api/v1/blacklists/history?ip_id={ip}"), &key)
        .await;
    let entries = history.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "two lists, two checks");
    assert_eq!(entries.iter().filter(|e| e["listed"] == true).count(), 1);

    // An address we do not manage: answers only, nothing recorded.
    app.dns.edit(|zone| {
        zone.add(
            "9.113.0.203.dnsbl.test.example",
            Rec::A("127.0.0.4".parse().unwrap()),
        );
    });
    let foreign = app
        .get("/api/v1/blacklists/check?ip=203.0.113.9", &key)
        .await;
    assert_eq!(
        (
            foreign.body["listed"].as_bool(),
            foreign.body["ip_id"].clone()
        ),
        (Some(true), Value::Null)
    );
    let bad = app.get("/api/v1/blacklists/check?ip=nope", &key).await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ip"))
    );
    app.finish().await;
}
