//! A MailWizz REST API client, following its published contract: the base URL of the
//! instance's API plus the endpoint path; the key in `X-API-KEY`; bodies form-encoded with
//! PHP-style nesting (`campaign[template][content]`), HTML contents in base64; answers
//! `{"status": "success", "data": …}` or `{"status": "error", "error": "…"}`; 404 for an
//! unknown item; `page` and `per_page` for lists. 5xx answers and time-outs are retried
//! with back-off, 4xx never.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::outbound::{self, segment as seg};
use ee_core::outbound::OutboundPolicy;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MailWizzError {
    #[error("MailWizz refused the API key")]
    Unauthorized,
    #[error("not found in MailWizz: {0}")]
    NotFound(String),
    /// A 4xx with MailWizz's error text (validation and the like).
    #[error("MailWizz: {0}")]
    Rejected(String),
    /// 5xx or no answer after the retries.
    #[error("MailWizz unavailable: {0}")]
    Unavailable(String),
    /// The instance's address may not be connected to (`ee_core::outbound`).
    #[error("{0}")]
    Refused(String),
    #[error("MailWizz answered something unexpected: {0}")]
    Protocol(String),
}

impl MailWizzError {
    /// What went wrong in our own words, without the text MailWizz sent (which could be
    /// any service's answer): what a caller or a stored status may show. The full error
    /// goes to the log.
    pub fn summary(&self) -> String {
        match self {
            MailWizzError::Unauthorized => "MailWizz refused the API key".into(),
            MailWizzError::NotFound(_) => "not found in MailWizz".into(),
            MailWizzError::Rejected(_) => {
                "MailWizz refused the request; its answer is in the server log".into()
            }
            MailWizzError::Unavailable(_) => {
                "MailWizz did not answer or answered with a server error".into()
            }
            MailWizzError::Protocol(_) => {
                "MailWizz answered something unexpected; details are in the server log".into()
            }
            MailWizzError::Refused(ours) => ours.clone(),
        }
    }
}

/// Flattens JSON into PHP-style form fields: `{"campaign": {"name": "x"}}` →
/// `campaign[name]=x`; arrays by index. Written here: no form encoder does PHP nesting.
pub fn php_form(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}[{k}]")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Null => out.push((prefix.to_owned(), String::new())),
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// The figures of MailWizz's campaign statistics endpoint.
const CAMPAIGN_STATS: &[&str] = &[
    "subscribers_count",
    "processed_count",
    "delivery_success_count",
    "delivery_success_rate",
    "delivery_error_count",
    "delivery_error_rate",
    "opens_count",
    "opens_rate",
    "unique_opens_count",
    "unique_opens_rate",
    "clicks_count",
    "clicks_rate",
    "unique_clicks_count",
    "unique_clicks_rate",
    "unsubscribes_count",
    "unsubscribes_rate",
    "complaints_count",
    "complaints_rate",
    "bounces_count",
    "bounces_rate",
    "hard_bounces_count",
    "hard_bounces_rate",
    "soft_bounces_count",
    "soft_bounces_rate",
    "internal_bounces_count",
    "internal_bounces_rate",
];

/// Whether a request failed because the resolver refused every address of the host.
fn refused_by_policy(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<ee_core::outbound::Refused>() {
            return true;
        }
        source = err.source();
    }
    false
}

pub fn base64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

#[derive(Clone)]
pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    retries: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailWizzClient")
            .field("base", &self.base)
            .field("key", &"[redacted]")
            .finish()
    }
}

enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Client {
    /// `base` is the API's address, e.g. `https://news.example.com/api`; connections
    /// go only where `policy` allows.
    pub fn new(
        base: &str,
        key: &str,
        timeout: Duration,
        policy: &Arc<OutboundPolicy>,
    ) -> Result<Self, MailWizzError> {
        let http = outbound::http_client(policy, timeout)
            .map_err(|e| MailWizzError::Protocol(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            http,
            policy: policy.clone(),
            retries: 3,
            backoff: Duration::from_millis(500),
        })
    }

    /// Attempts after the first on 5xx and time-outs, and the first delay (doubling).
    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// `data` of a successful answer.
    async fn data(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<&Value>,
    ) -> Result<Value, MailWizzError> {
        let mut body = self.call(method, path, query, form).await?;
        Ok(body.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// The whole successful answer (creations put the new uid beside `status`).
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: Option<&Value>,
    ) -> Result<Value, MailWizzError> {
        outbound::check_url(&self.policy, &self.base)
            .map_err(|e| MailWizzError::Refused(format!("the instance's api_url {e}")))?;
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let fields = form.map(php_form);
        let mut delay = self.backoff;
        let mut attempt = 0;
        loop {
            let mut request = match method {
                Method::Get => self.http.get(&url),
                Method::Post => self.http.post(&url),
                Method::Put => self.http.put(&url),
                Method::Delete => self.http.delete(&url),
            }
            .header("X-API-KEY", &self.key)
            .header("Accept", "application/json");
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(fields) = &fields {
                request = request.form(fields);
            }
            let reason = match request.send().await {
                Err(e) if refused_by_policy(&e) => {
                    return Err(MailWizzError::Refused(
                        "the instance's api_url resolves only to addresses this server may not \
                         reach; the operator can allow their range (EE_OUTBOUND_ALLOW)"
                            .into(),
                    ));
                }
                Err(e) if e.is_timeout() || e.is_connect() => e.without_url().to_string(),
                Err(e) => return Err(MailWizzError::Protocol(e.without_url().to_string())),
                Ok(response) => {
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let error_text = || {
                        body.get("error")
                            .map(|e| match e {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .unwrap_or_else(|| status.to_string())
                    };
                    if status.is_server_error() {
                        error_text()
                    } else if status == reqwest::StatusCode::UNAUTHORIZED
                        || status == reqwest::StatusCode::FORBIDDEN
                    {
                        return Err(MailWizzError::Unauthorized);
                    } else if status == reqwest::StatusCode::NOT_FOUND {
                        return Err(MailWizzError::NotFound(error_text()));
                    } else if status.is_client_error() || body["status"] == "error" {
                        return Err(MailWizzError::Rejected(error_text()));
                    } else if body["status"] == "success" {
                        return Ok(body);
                    } else {
                        return Err(MailWizzError::Protocol(format!("{status}: {body}")));
                    }
                }
            };
            if attempt >= self.retries {
                return Err(MailWizzError::Unavailable(reason));
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    fn page(page: u32, per_page: u32) -> Vec<(&'static str, String)> {
        vec![
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
        ]
    }

    // Lists.

    /// `data`: `{"general": {name, description}, "defaults": {from_name, from_email, reply_to, subject}, …}`.
    pub async fn create_list(&self, data: &Value) -> Result<String, MailWizzError> {
        let answer = self.call(Method::Post, "lists", &[], Some(data)).await?;
        uid(&answer, "list_uid")
    }

    pub async fn get_list(&self, list_uid: &str) -> Result<Value, MailWizzError> {
        self.data(Method::Get, &format!("lists/{}", seg(list_uid)), &[], None)
            .await
    }

    pub async fn get_lists(&self, page: u32, per_page: u32) -> Result<Value, MailWizzError> {
        self.data(Method::Get, "lists", &Self::page(page, per_page), None)
            .await
    }

    // Subscribers.

    /// `fields`: `{"EMAIL": …, "FNAME": …, "LNAME": …, custom fields…}`; the new uid.
    pub async fn create_subscriber(
        &self,
        list_uid: &str,
        fields: &Map<String, Value>,
    ) -> Result<String, MailWizzError> {
        let answer = self
            .call(
                Method::Post,
                &format!("lists/{}/subscribers", seg(list_uid)),
                &[],
                Some(&Value::Object(fields.clone())),
            )
            .await?;
        uid(&answer, "subscriber_uid")
    }

    /// Many subscribers in one request (`subscribers[i][EMAIL]` …); MailWizz's per-item answer.
    pub async fn create_subscribers_bulk(
        &self,
        list_uid: &str,
        subscribers: &[Map<String, Value>],
    ) -> Result<Value, MailWizzError> {
        let body = serde_json::json!({ "subscribers": subscribers });
        self.data(
            Method::Post,
            &format!("lists/{}/subscribers/bulk", seg(list_uid)),
            &[],
            Some(&body),
        )
        .await
    }

    /// The subscriber's uid and status, or `None` when the list has no such address.
    pub async fn search_by_email(
        &self,
        list_uid: &str,
        email: &str,
    ) -> Result<Option<Value>, MailWizzError> {
        match self
            .data(
                Method::Get,
                &format!("lists/{}/subscribers/search-by-email", seg(list_uid)),
                &[("EMAIL", email.to_owned())],
                None,
            )
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(MailWizzError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get_subscribers(
        &self,
        list_uid: &str,
        page: u32,
        per_page: u32,
    ) -> Result<Value, MailWizzError> {
        self.data(
            Method::Get,
            &format!("lists/{}/subscribers", seg(list_uid)),
            &Self::page(page, per_page),
            None,
        )
        .await
    }

    pub async fn update_subscriber(
        &self,
        list_uid: &str,
        subscriber_uid: &str,
        fields: &Map<String, Value>,
    ) -> Result<Value, MailWizzError> {
        self.data(
            Method::Put,
            &format!(
                "lists/{}/subscribers/{}",
                seg(list_uid),
                seg(subscriber_uid)
            ),
            &[],
            Some(&Value::Object(fields.clone())),
        )
        .await
    }

    pub async fn unsubscribe(
        &self,
        list_uid: &str,
        subscriber_uid: &str,
    ) -> Result<Value, MailWizzError> {
        self.data(
            Method::Put,
            &format!(
                "lists/{}/subscribers/{}/unsubscribe",
                seg(list_uid),
                seg(subscriber_uid)
            ),
            &[],
            None,
        )
        .await
    }

    pub async fn delete_subscriber(
        &self,
        list_uid: &str,
        subscriber_uid: &str,
    ) -> Result<Value, MailWizzError> {
        self.data(
            Method::Delete,
            &format!(
                "lists/{}/subscribers/{}",
                seg(list_uid),
                seg(subscriber_uid)
            ),
            &[],
            None,
        )
        .await
    }

    // Campaigns.

    /// `campaign`: `{name, type: regular|autoresponder, from_name, from_email, subject,
    /// reply_to, send_at, list_uid, template: {content (HTML, sent in base64), …}}`.
    pub async fn create_campaign(&self, campaign: &Value) -> Result<String, MailWizzError> {
        let mut campaign = campaign.clone();
        if let Some(content) = campaign["template"]["content"].as_str() {
            campaign["template"]["content"] = Value::String(base64(content));
        }
        let body = serde_json::json!({ "campaign": campaign });
        let answer = self
            .call(Method::Post, "campaigns", &[], Some(&body))
            .await?;
        uid(&answer, "campaign_uid")
    }

    pub async fn get_campaign(&self, campaign_uid: &str) -> Result<Value, MailWizzError> {
        self.data(
            Method::Get,
            &format!("campaigns/{}", seg(campaign_uid)),
            &[],
            None,
        )
        .await
    }

    /// The campaign's counters and rates (MailWizz's published names), as numbers, and
    /// its status; anything else in the answer is left out, so nothing the instance
    /// sends reaches our caller unchecked.
    pub async fn campaign_stats(&self, campaign_uid: &str) -> Result<Value, MailWizzError> {
        let data = self
            .data(
                Method::Get,
                &format!("campaigns/{}/stats", seg(campaign_uid)),
                &[],
                None,
            )
            .await?;
        let mut out = Map::new();
        for &name in CAMPAIGN_STATS {
            let number = match &data[name] {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().trim_end_matches('%').parse::<f64>().ok(),
                _ => None,
            };
            if let Some(n) = number.filter(|n| n.is_finite()) {
                let value = if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    Value::from(n as i64)
                } else {
                    Value::from(n)
                };
                out.insert(name.to_owned(), value);
            }
        }
        if let Some(status) = data["campaign_status"].as_str().filter(|s| {
            s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_')
        }) {
            out.insert("campaign_status".into(), Value::from(status));
        }
        Ok(Value::Object(out))
    }

    pub async fn pause_unpause(&self, campaign_uid: &str) -> Result<Value, MailWizzError> {
        self.data(
            Method::Put,
            &format!("campaigns/{}/pause-unpause", seg(campaign_uid)),
            &[],
            None,
        )
        .await
    }

    // Templates.

    pub async fn create_template(&self, name: &str, html: &str) -> Result<String, MailWizzError> {
        let body = serde_json::json!({ "template": { "name": name, "content": base64(html) } });
        let answer = self
            .call(Method::Post, "templates", &[], Some(&body))
            .await?;
        uid(&answer, "template_uid")
    }

    pub async fn update_template(
        &self,
        template_uid: &str,
        name: &str,
        html: &str,
    ) -> Result<Value, MailWizzError> {
        let body = serde_json::json!({ "template": { "name": name, "content": base64(html) } });
        self.data(
            Method::Put,
            &format!("templates/{}", seg(template_uid)),
            &[],
            Some(&body),
        )
        .await
    }

    // Transactional emails.

    /// `email`: `{to_name, to_email, from_name, from_email?, reply_to_name?, reply_to_email?,
    /// subject, body (HTML, sent in base64), plain_text? (base64), send_at}`.
    pub async fn create_transactional_email(&self, email: &Value) -> Result<String, MailWizzError> {
        let mut email = email.clone();
        for field in ["body", "plain_text"] {
            if let Some(text) = email[field].as_str() {
                email[field] = Value::String(base64(text));
            }
        }
        let body = serde_json::json!({ "email": email });
        let answer = self
            .call(Method::Post, "transactional-emails", &[], Some(&body))
            .await?;
        uid(&answer, "email_uid")
    }

    // Delivery servers. Stock MailWizz's API has no endpoint for them; some installations
    // add one (an extension). These calls name what such an installation answers, and a 404
    // tells the caller that this one has none (or does not know the server).

    pub async fn get_delivery_server(&self, server_id: &str) -> Result<Value, MailWizzError> {
        self.data(
            Method::Get,
            &format!("delivery-servers/{}", seg(server_id)),
            &[],
            None,
        )
        .await
    }

    /// `fields`: `{hourly_quota, daily_quota, …}` (MailWizz's delivery-server attributes).
    pub async fn update_delivery_server(
        &self,
        server_id: &str,
        fields: &Value,
    ) -> Result<Value, MailWizzError> {
        let body = serde_json::json!({ "delivery_server": fields });
        self.data(
            Method::Put,
            &format!("delivery-servers/{}", seg(server_id)),
            &[],
            Some(&body),
        )
        .await
    }
}

/// A new item's uid: beside `status` (lists, campaigns, templates, emails) or in
/// `data.record` (subscribers).
fn uid(answer: &Value, field: &str) -> Result<String, MailWizzError> {
    answer[field]
        .as_str()
        .or_else(|| answer["data"]["record"][field].as_str())
        .or_else(|| answer["data"][field].as_str())
        .map(str::to_owned)
        .ok_or_else(|| MailWizzError::Protocol(format!("no {field} in {answer}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn php_nesting() {
        let fields = php_form(&json!({
            "campaign": {"name": "Welcome", "template": {"content": "PGI+"}, "list_uids": ["a", "b"]},
            "n": 3, "none": null
        }));
        assert!(fields.contains(&("campaign[name]".into(), "Welcome".into())));
        assert!(fields.contains(&("campaign[template][content]".into(), "PGI+".into())));
        assert!(fields.contains(&("campaign[list_uids][1]".into(), "b".into())));
        assert!(fields.contains(&("n".into(), "3".into())));
        assert!(fields.contains(&("none".into(), String::new())));
    }
}
