//! The OpenSPF RFC 7208 test suite (tests/data/spf, BSD licence beside it), run through
//! our SPF check path: each scenario's zone is served by a real DNS server on loopback
//! and each test's identity is evaluated by `Resolver::spf`.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use ee_dns::Resolver;
use ee_dns::testing::{Rec, TestDnsServer, Zone};
use serde_yaml_ng::Value;

const SUITE: &str = include_str!("data/spf/rfc7208-tests.yml");

/// YAML "\xEF" escapes stand for raw bytes: characters up to U+00FF become one byte.
fn bytes(text: &str) -> Vec<u8> {
    if text.chars().all(|c| (c as u32) <= 0xFF) {
        text.chars().map(|c| c as u32 as u8).collect()
    } else {
        text.as_bytes().to_vec()
    }
}

fn strings(value: &Value) -> Vec<Vec<u8>> {
    match value {
        Value::Sequence(items) => items.iter().map(|v| bytes(&scalar(v))).collect(),
        other => vec![bytes(&scalar(other))],
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("unexpected zone value {other:?}"),
    }
}

/// The zone of one scenario. As the suite's drivers do, SPF-type records are also served
/// as TXT for names that list no TXT record of their own (`TXT: NONE` means none at all).
fn zone(zonedata: &Value) -> Zone {
    let mut zone = Zone::new();
    for (name, records) in zonedata.as_mapping().into_iter().flatten() {
        let name = scalar(name);
        zone.touch(&name);
        let records = records.as_sequence().cloned().unwrap_or_default();
        let has_txt = records.iter().any(|r| r.get("TXT").is_some());
        for record in &records {
            if record.as_str() == Some("TIMEOUT") {
                zone.timeout(&name);
                continue;
            }
            let (kind, value) = record
                .as_mapping()
                .and_then(|m| m.iter().next())
                .map(|(k, v)| (scalar(k), v.clone()))
                .unwrap();
            match kind.as_str() {
                "A" => {
                    for ip in strings(&value) {
                        zone.add(
                            &name,
                            Rec::A(String::from_utf8(ip).unwrap().parse().unwrap()),
                        );
                    }
                }
                "AAAA" => {
                    for ip in strings(&value) {
                        zone.add(
                            &name,
                            Rec::Aaaa(String::from_utf8(ip).unwrap().parse().unwrap()),
                        );
                    }
                }
                "MX" => {
                    let pair = value.as_sequence().unwrap();
                    zone.add(
                        &name,
                        Rec::Mx(pair[0].as_u64().unwrap() as u16, scalar(&pair[1])),
                    );
                }
                "PTR" => {
                    zone.add(&name, Rec::Ptr(scalar(&value)));
                }
                "CNAME" => {
                    zone.add(&name, Rec::Cname(scalar(&value)));
                }
                "TXT" if value.as_str() == Some("NONE") => {}
                "TXT" => {
                    zone.add(&name, Rec::Txt(strings(&value)));
                }
                "SPF" => {
                    zone.add(&name, Rec::Spf(strings(&value)));
                    if !has_txt {
                        zone.add(&name, Rec::Txt(strings(&value)));
                    }
                }
                other => panic!("record type {other} not handled"),
            }
        }
    }
    zone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openspf_rfc7208_suite_passes() {
    let mut total = 0;
    let mut failures = Vec::new();
    for scenario in serde_yaml_ng::Deserializer::from_str(SUITE) {
        let doc = Value::deserialize_from(scenario);
        let description = doc["description"].as_str().unwrap_or("?").to_owned();
        let server = TestDnsServer::start(zone(&doc["zonedata"])).await.unwrap();
        let resolver = Resolver::new(&server.resolver_settings()).unwrap();
        let mut runs = tokio::task::JoinSet::new();
        for (name, test) in doc["tests"].as_mapping().unwrap() {
            let name = scalar(name);
            let host: IpAddr = scalar(&test["host"]).parse().unwrap();
            let helo = scalar(&test["helo"]);
            let mail_from = test.get("mailfrom").map(scalar).unwrap_or_default();
            let expected: Vec<String> = match &test["result"] {
                Value::Sequence(items) => items.iter().map(scalar).collect(),
                other => vec![scalar(other)],
            };
            let resolver = resolver.clone();
            runs.spawn(async move {
                let got = resolver.spf(host, &helo, &mail_from).await;
                (name, expected, got)
            });
        }
        while let Some(run) = runs.join_next().await {
            let (name, expected, got) = run.unwrap();
            total += 1;
            if !expected.iter().any(|e| e == got.as_str()) {
                failures.push(format!(
                    "{description} / {name}: expected {expected:?}, got {}",
                    got.as_str()
                ));
            }
        }
    }
    assert_eq!(total, 203, "the whole suite ran");
    assert!(
        failures.is_empty(),
        "{} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

trait FromScenario {
    fn deserialize_from(de: serde_yaml_ng::Deserializer<'_>) -> Value;
}

impl FromScenario for Value {
    fn deserialize_from(de: serde_yaml_ng::Deserializer<'_>) -> Value {
        serde::Deserialize::deserialize(de).unwrap()
    }
}
