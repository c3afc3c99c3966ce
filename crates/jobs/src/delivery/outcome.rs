//! An attempt's retry, and its recording on the message.

use super::*;
use ee_store::Scope;

impl Engine {
    pub(super) async fn record(
        &self,
        conn: &mut ee_store::AnyConnection,
        message: &Message,
        lease: &str,
        result: &AttemptResult,
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
                    && let Ok(ip) = ee_store::ips::get(&mut *conn, ip_id, Scope::All).await
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

    pub(super) fn retry(&self, message: &Message, mut result: AttemptResult) -> AttemptResult {
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
