//! The bulk-sender compliance view of a tenant: each of Gmail's and Yahoo's 2024 rules
//! for bulk senders, green or red with its evidence, from what is already measured (the
//! daily DNS checks, the delivery settings, the templates, the report counters). What
//! cannot be shown is `unknown`, which counts as red.

use ee_core::delivery::Mode;
use ee_store::Scope;
use ee_store::report_counters::Dimension;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::read::Read;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    Pass,
    /// Within the rule, near its limit.
    Warn,
    Fail,
    /// Not shown by what is measured: red.
    Unknown,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ComplianceRule)]
pub struct RuleOut {
    /// spf, dkim, dmarc, dns, tls, headers, one_click_unsubscribe, unsubscribe_link,
    /// unsubscribes_honoured, complaint_rate.
    pub rule: &'static str,
    pub title: &'static str,
    pub status: RuleStatus,
    /// Green: pass or warn.
    pub green: bool,
    /// What the status rests on.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Compliance {
    pub tenant_id: String,
    /// Every rule green.
    pub compliant: bool,
    pub rules: Vec<RuleOut>,
}

fn rule(
    rule: &'static str,
    title: &'static str,
    status: RuleStatus,
    evidence: Vec<String>,
) -> RuleOut {
    RuleOut {
        rule,
        title,
        green: matches!(status, RuleStatus::Pass | RuleStatus::Warn),
        status,
        evidence,
    }
}

/// A rule over every sending domain's latest check: pass when each passes, unknown when
/// one was never checked.
fn over_domains(
    checks: &[(String, Option<(i64, serde_json::Value)>)],
    mut verdict: impl FnMut(&serde_json::Value) -> (bool, String),
) -> (RuleStatus, Vec<String>) {
    if checks.is_empty() {
        return (RuleStatus::Unknown, vec!["no sending domain".into()]);
    }
    let mut status = RuleStatus::Pass;
    let mut evidence = Vec::new();
    for (domain, check) in checks {
        match check {
            None => {
                status = RuleStatus::Unknown.max_with(status);
                evidence.push(format!("{domain}: never checked"));
            }
            Some((at, report)) => {
                let (ok, why) = verdict(report);
                if !ok {
                    status = RuleStatus::Fail;
                }
                evidence.push(format!(
                    "{domain}: {why} (checked {})",
                    ee_core::timefmt::to_rfc3339(*at)
                ));
            }
        }
    }
    (status, evidence)
}

impl RuleStatus {
    /// The worse of two.
    fn max_with(self, other: RuleStatus) -> RuleStatus {
        let rank = |s: RuleStatus| match s {
            RuleStatus::Pass => 0,
            RuleStatus::Warn => 1,
            RuleStatus::Unknown => 2,
            RuleStatus::Fail => 3,
        };
        if rank(self) >= rank(other) {
            self
        } else {
            other
        }
    }
}

fn all_ok(
    list: &serde_json::Value,
    describe: impl Fn(&serde_json::Value) -> String,
) -> (bool, String) {
    let items = list.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return (false, "nothing to check".into());
    }
    let ok = items.iter().all(|i| i["ok"] == true);
    (
        ok,
        items.iter().map(describe).collect::<Vec<_>>().join(", "),
    )
}

/// The compliance view of a tenant (one the caller may see: `Read::tenant`).
pub async fn compliance(
    read: &mut Read,
    tenant_id: &str,
    public_url: &str,
    now: i64,
) -> Result<Compliance, AppError> {
    let conn = read.conn();
    let tenant = ee_store::tenants::get(&mut *conn, tenant_id)
        .await
        .map_err(AppError::from_store("tenant"))?;
    let delivery = crate::delivery::tenant_delivery(&tenant);
    let mut checks = Vec::new();
    for domain in ee_store::domains::list(&mut *conn, Scope::Tenant(tenant_id)).await? {
        let latest = ee_store::domains::checks(&mut *conn, &domain.id, 1)
            .await?
            .into_iter()
            .next()
            .and_then(|c| Some((c.checked_at, serde_json::from_str(&c.results).ok()?)));
        checks.push((domain.domain_name, latest));
    }
    let mut rules = Vec::new();

    let (s, e) = over_domains(&checks, |r| {
        all_ok(&r["spf"], |c| {
            format!(
                "SPF {} for {}",
                c["result"].as_str().unwrap_or("?"),
                c["ip"].as_str().unwrap_or("?")
            )
        })
    });
    rules.push(rule("spf", "SPF passes for the sending IPs", s, e));
    let (s, e) = over_domains(&checks, |r| {
        all_ok(&r["dkim"], |c| {
            format!(
                "DKIM {} {}",
                c["selector"].as_str().unwrap_or("?"),
                if c["matches"] == true {
                    "published and matching"
                } else {
                    "missing or different"
                }
            )
        })
    });
    rules.push(rule("dkim", "DKIM keys published and matching", s, e));
    let (s, e) = over_domains(&checks, |r| {
        let d = &r["dmarc"];
        let published = d["record"].is_string();
        let aligned = d["dkim_alignment"] == true || d["spf_alignment"] == true;
        (
            published && aligned,
            format!(
                "DMARC {}, {}",
                if published {
                    format!("p={}", d["policy"].as_str().unwrap_or("?"))
                } else {
                    "not published".into()
                },
                if aligned {
                    "aligned with From"
                } else {
                    "not aligned"
                }
            ),
        )
    });
    rules.push(rule("dmarc", "DMARC published and aligned with From", s, e));
    let (s, e) = over_domains(&checks, |r| {
        all_ok(&r["ptr"], |c| {
            format!(
                "{} → {} {}",
                c["ip"].as_str().unwrap_or("?"),
                c["names"]
                    .as_array()
                    .and_then(|n| n.first())
                    .and_then(|n| n.as_str())
                    .unwrap_or("no PTR"),
                if c["forward_confirmed"] == true {
                    "(forward-confirmed)"
                } else {
                    "(not confirmed)"
                }
            )
        })
    });
    rules.push(rule(
        "dns",
        "Valid forward and reverse DNS for the sending IPs",
        s,
        e,
    ));

    rules.push(match delivery.mode {
        Mode::Direct => rule(
            "tls",
            "TLS to the receiving servers",
            RuleStatus::Pass,
            vec!["direct delivery uses STARTTLS whenever the receiving server offers it".into()],
        ),
        Mode::Relay => rule(
            "tls",
            "TLS to the receiving servers",
            RuleStatus::Pass,
            vec![
                "the generated PowerMTA configuration sets use-starttls for every destination"
                    .into(),
            ],
        ),
        Mode::Mailwizz => rule(
            "tls",
            "TLS to the receiving servers",
            RuleStatus::Unknown,
            vec!["MailWizz's delivery servers send: their TLS is not visible here".into()],
        ),
    });
    rules.push(rule(
        "headers",
        "RFC 5322 headers: one From, a Message-ID",
        RuleStatus::Pass,
        vec![
            "every message is built with one From and a Message-ID fixed when it is queued".into(),
        ],
    ));
    let https = public_url.starts_with("https://");
    rules.push(rule(
        "one_click_unsubscribe",
        "One-click unsubscribe (RFC 8058)",
        if https { RuleStatus::Pass } else { RuleStatus::Fail },
        vec![if https {
            format!("every message carries List-Unsubscribe <{public_url}/u/…> and List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        } else {
            format!("List-Unsubscribe points at {public_url}: the providers want an HTTPS URL (set public_url)")
        }],
    ));

    let templates = ee_store::templates::list(
        &mut *conn,
        &ee_store::templates::Filter {
            tenant_id: Some(tenant_id),
            active: true,
            ..Default::default()
        },
    )
    .await?;
    let without: Vec<String> = templates
        .iter()
        .filter(|t| !t.html_content.contains("[UNSUBSCRIBE_URL]"))
        .map(|t| t.name.clone())
        .collect();
    rules.push(if templates.is_empty() {
        rule(
            "unsubscribe_link",
            "A visible unsubscribe link",
            RuleStatus::Unknown,
            vec!["no active template".into()],
        )
    } else if without.is_empty() {
        rule(
            "unsubscribe_link",
            "A visible unsubscribe link",
            RuleStatus::Pass,
            vec![format!(
                "all {} active templates link to [UNSUBSCRIBE_URL]",
                templates.len()
            )],
        )
    } else {
        rule(
            "unsubscribe_link",
            "A visible unsubscribe link",
            RuleStatus::Fail,
            vec![format!(
                "templates without [UNSUBSCRIBE_URL]: {}",
                without.join(", ")
            )],
        )
    });

    let (from_day, to_day) = (
        (now - 29 * DAY_MS).div_euclid(DAY_MS),
        now.div_euclid(DAY_MS),
    );
    let sums = ee_store::report_counters::sums(
        &mut *conn,
        ee_store::Scope::Tenant(tenant_id),
        from_day,
        to_day,
        Dimension::Day,
    )
    .await?;
    let total = |name: &str| {
        sums.iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, v)| *v)
            .sum::<i64>()
    };
    rules.push(rule(
        "unsubscribes_honoured",
        "Unsubscribes honoured within 48 hours",
        RuleStatus::Pass,
        vec![format!(
            "{} unsubscribes in 30 days, each suppressed when it was received",
            total("unsubscribed")
        )],
    ));

    let week_from = (now - 6 * DAY_MS).div_euclid(DAY_MS);
    let week = ee_store::report_counters::sums(
        &mut *conn,
        ee_store::Scope::Tenant(tenant_id),
        week_from,
        to_day,
        Dimension::Day,
    )
    .await?;
    let week_total = |name: &str| {
        week.iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, v)| *v)
            .sum::<i64>()
    };
    let handed = week_total("sent") + week_total("refused");
    let complaints = week_total("complained");
    rules.push(if handed == 0 {
        rule(
            "complaint_rate",
            "Complaint rate under 0.3 % (warning above 0.1 %)",
            RuleStatus::Unknown,
            vec!["nothing sent in the last 7 days".into()],
        )
    } else {
        let rate = complaints as f64 / handed as f64;
        let status = if rate >= 0.003 {
            RuleStatus::Fail
        } else if rate > 0.001 {
            RuleStatus::Warn
        } else {
            RuleStatus::Pass
        };
        rule(
            "complaint_rate",
            "Complaint rate under 0.3 % (warning above 0.1 %)",
            status,
            vec![format!(
                "{complaints} complaints for {handed} messages in 7 days: {:.3} %",
                rate * 100.0
            )],
        )
    });
    Ok(Compliance {
        tenant_id: tenant_id.to_owned(),
        compliant: rules.iter().all(|r| r.green),
        rules,
    })
}
