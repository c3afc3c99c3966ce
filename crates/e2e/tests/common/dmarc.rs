//! DMARC aggregate reports for the tests: one written after RFC 7489 appendix C's shape,
//! mailed to the bounce listener.

use reqwest::StatusCode;
use serde_json::json;

use super::TestApp;
use super::sending::smtp_dialog;

pub const ADDRESS: &str = "dmarc@reports.ee.test";

/// A report written for this test (RFC 7489 appendix C's shape) about `domain`, period
/// ending at the test clock's day.
pub fn report(org: &str, id: &str, domain: &str, records: &[(&str, u64, &str, &str)]) -> String {
    let rows: String = records
        .iter()
        .map(|(ip, count, dkim, spf)| {
            format!(
                "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
                 <disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
                 <identifiers><header_from>{domain}</header_from></identifiers><auth_results><dkim>\
                 <domain>{domain}</domain><selector>s1</selector><result>{dkim}</result></dkim><spf>\
                 <domain>{domain}</domain><result>{spf}</result></spf></auth_results></record>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback><report_metadata><org_name>{org}</org_name>\
         <email>noreply@{org}</email><report_id>{id}</report_id><date_range><begin>1796428800</begin>\
         <end>1796515199</end></date_range></report_metadata><policy_published><domain>{domain}</domain>\
         <adkim>r</adkim><aspf>r</aspf><p>quarantine</p><pct>100</pct></policy_published>{rows}</feedback>"
    )
}

pub fn subject(org: &str, domain: &str, id: &str) -> String {
    format!("Report Domain: {domain} Submitter: {org} Report-ID: <{id}>")
}

pub async fn send(port: u16, data: &str) -> String {
    let replies = smtp_dialog(port, ADDRESS, data).await;
    replies.last().unwrap().clone()
}

pub async fn domain(app: &TestApp, key: &str, name: &str) -> String {
    let d = app
        .post(
            "/api/v1/domains",
            key,
            json!({"domain": name, "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    d.body["id"].as_str().unwrap().to_owned()
}
