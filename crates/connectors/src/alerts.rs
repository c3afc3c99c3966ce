//! Alert channels: the Telegram Bot API and a generic webhook signed with HMAC-SHA256.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use crate::ConnectorError;

/// What is sent: the alert as the operator should read it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertMessage {
    pub id: String,
    pub tenant_id: Option<String>,
    pub severity: ee_core::alert::Severity,
    pub title: String,
    pub message: String,
    pub occurrences: i64,
    /// RFC 3339.
    pub first_at: String,
}

#[derive(Clone)]
pub struct Telegram {
    /// `https://api.telegram.org` in production; a local server in tests.
    pub api_base: String,
    pub bot_token: String,
    pub chat_id: String,
}

#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// The configured channels. Either may be absent.
#[derive(Clone, Default)]
pub struct AlertChannels {
    pub telegram: Option<Telegram>,
    pub webhook: Option<Webhook>,
    client: reqwest::Client,
}

impl std::fmt::Debug for AlertChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertChannels")
            .field("telegram", &self.telegram.is_some())
            .field("webhook", &self.webhook.is_some())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Telegram,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "telegram" => Some(Channel::Telegram),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

impl AlertChannels {
    pub fn new(telegram: Option<Telegram>, webhook: Option<Webhook>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self {
            telegram,
            webhook,
            client,
        }
    }

    /// The channels an alert goes to.
    pub fn configured(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.telegram.is_some() {
            out.push(Channel::Telegram);
        }
        if self.webhook.is_some() {
            out.push(Channel::Webhook);
        }
        out
    }

    pub async fn send(
        &self,
        channel: Channel,
        alert: &AlertMessage,
        now_secs: i64,
    ) -> Result<(), ConnectorError> {
        match channel {
            Channel::Telegram => match &self.telegram {
                Some(t) => self.send_telegram(t, alert).await,
                None => Err(ConnectorError::Refused {
                    service: "telegram",
                    reason: "not configured".into(),
                }),
            },
            Channel::Webhook => match &self.webhook {
                Some(w) => self.send_webhook(w, alert, now_secs).await,
                None => Err(ConnectorError::Refused {
                    service: "alert webhook",
                    reason: "not configured".into(),
                }),
            },
        }
    }

    async fn send_telegram(
        &self,
        telegram: &Telegram,
        alert: &AlertMessage,
    ) -> Result<(), ConnectorError> {
        let icon = if alert.severity == ee_core::alert::Severity::Critical {
            "🔴"
        } else {
            "🟠"
        };
        let repeats = if alert.occurrences > 1 {
            format!(" (×{})", alert.occurrences)
        } else {
            String::new()
        };
        let text = format!("{icon} {}{repeats}\n{}", alert.title, alert.message);
        let url = format!(
            "{}/bot{}/sendMessage",
            telegram.api_base.trim_end_matches('/'),
            telegram.bot_token
        );
        let response = self
            .client
            .post(url)
            .json(&json!({"chat_id": telegram.chat_id, "text": text, "disable_web_page_preview": true}))
            .send()
            .await
            .map_err(|e| ConnectorError::transport("telegram", e))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() && body["ok"] == true {
            Ok(())
        } else {
            let description = body["description"]
                .as_str()
                .unwrap_or("no description")
                .to_owned();
            Err(ConnectorError::Refused {
                service: "telegram",
                reason: format!("HTTP {status}: {description}"),
            })
        }
    }

    async fn send_webhook(
        &self,
        webhook: &Webhook,
        alert: &AlertMessage,
        now_secs: i64,
    ) -> Result<(), ConnectorError> {
        let body =
            serde_json::to_vec(&json!({"type": "alert", "alert": alert})).unwrap_or_default();
        let signature = ee_core::signing::sign(webhook.secret.as_bytes(), now_secs, &body);
        let response = self
            .client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("x-ee-timestamp", now_secs.to_string())
            .header("x-ee-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| ConnectorError::transport("alert webhook", e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ConnectorError::Refused {
                service: "alert webhook",
                reason: format!("HTTP {}", response.status()),
            })
        }
    }
}
