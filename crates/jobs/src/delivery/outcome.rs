//! What one attempt came to, its retry, and its recording on the message.

use super::*;

/// What one attempt came to.
pub(super) struct Result1 {
    pub(super) state: MessageState,
    pub(super) reason: Option<String>,
    pub(super) code: Option<i64>,
    pub(super) reply: Option<String>,
    pub(super) ip_id: Option<String>,
    pub(super) route: Option<Route>,
    pub(super) next_attempt_at: Option<i64>,
    pub(super) links: Option<String>,
    /// The attempt did not reach a server (no quota): not counted.
    pub(super) uncounted: bool,
    /// A connection was made: the send counts against the IP's quota.
    pub(super) reached_server: bool,
}

impl Result1 {
    pub(super) fn new(state: MessageState) -> Self {
        Self {
            state,
            reason: None,
            code: None,
            reply: None,
            ip_id: None,
            route: None,
            next_attempt_at: None,
            links: None,
            uncounted: false,
            reached_server: false,
        }
    }
}

impl Engine {
    pub(super) async fn record(
        &self,
        conn: &mut ee_store::AnyConnection,
        message: &Message,
        lease: &str,
        result: &Result1,
        now: i64,
    ) -> Result<(), StoreError> {
        let route = result.route.as_ref().map(Route::to_string);
        let attempt = Attempt {
            state: result.state,
            reason: result.reason.as_deref(),
            code: result.code,
            reply: result.reply.as_deref(),
            ip_id: result.ip_id.as_deref(),
            route: route.as_deref(),
            next_attempt_at: result.next_attempt_at,
            links: result.links.as_deref(),
            uncounted: result.uncounted,
        };
        if !messages::finish(conn, message, lease, &attempt, now).await? {
            return Ok(());
        }
        let detail =
            json!({"message_id": message.id, "reply": result.reply, "ip_id": result.ip_id});
        match result.state {
            MessageState::Sent => {
                if let Some(contact) = &message.contact_id {
                    contact_store::add_event(
                        &mut *conn,
                        &message.tenant_id,
                        contact,
                        "SENT",
                        message.campaign_id.as_deref(),
                        &detail,
                        now,
                    )
                    .await?;
                }
            }
            MessageState::Bounced => {
                if let Some(ip_id) = &result.ip_id
                    && let Ok(ip) = ee_store::ips::get(&mut *conn, ip_id, None).await
                {
                    let delta = ee_core::warmup::Traffic {
                        sent: 0,
                        bounced: 1,
                        complained: 0,
                    };
                    if let Err(e) = ee_app::infra::record_traffic(
                        &mut *conn,
                        &ip,
                        delta,
                        &self.services.infra,
                        now,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "bounce not counted for the IP");
                    }
                }
                let code = result.code.unwrap_or(0) as u16;
                if rules::is_address_failure(code, result.reply.as_deref().unwrap_or("")) {
                    suppressions::suppress_address(
                        &mut *conn,
                        &message.tenant_id,
                        &message.to_email,
                        "bounced",
                        Some("smtp"),
                        &detail,
                        now,
                    )
                    .await?;
                } else if let Some(contact) = &message.contact_id {
                    contact_store::add_event(
                        &mut *conn,
                        &message.tenant_id,
                        contact,
                        "BOUNCED",
                        message.campaign_id.as_deref(),
                        &detail,
                        now,
                    )
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn retry(&self, message: &Message, mut result: Result1) -> Result1 {
        let now = self.services.clock.now_ms();
        match self.services.delivery.retry.next_attempt(
            message.attempts.max(1) as u32,
            message.queued_at,
            now,
        ) {
            Some(at) => {
                result.state = MessageState::Deferred;
                result.next_attempt_at = Some(at);
            }
            None => {
                result.state = MessageState::Expired;
                result.reason = Some(format!(
                    "not delivered within {} h",
                    self.services.delivery.retry.max_age_secs / 3600
                ));
            }
        }
        result
    }
}

pub(super) fn reply_result(code: u16, text: String) -> Result1 {
    let state = match rules::classify(code) {
        Outcome::Sent => MessageState::Sent,
        Outcome::Deferred => MessageState::Deferred,
        Outcome::Bounced => MessageState::Bounced,
    };
    let mut r = Result1::new(state);
    r.code = Some(i64::from(code));
    r.reply = Some(text);
    r
}
