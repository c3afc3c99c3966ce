//! An attempt's retry, and its recording on the message.

use super::*;

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
            tls: result.tls.as_deref(),
            mta_sts: result.mta_sts.as_deref(),
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
                // Classified and applied as every source's bounces are (suppression,
                // timeline, the IP's traffic, the campaign's class counter); the message
                // itself is recorded above.
                let reply = ee_core::feedback::Reply::from_smtp(
                    result.code.and_then(|c| u16::try_from(c).ok()),
                    result
                        .reply
                        .as_deref()
                        .or(result.reason.as_deref())
                        .unwrap_or(""),
                );
                let mut event = ee_app::feedback::event(
                    &self.services.feedback.rules,
                    ee_core::feedback::Source::Smtp,
                    ee_core::feedback::EventKind::Bounced,
                    &message.to_email,
                    reply,
                    now,
                );
                event.message_id = Some(message.id.clone());
                let incoming = ee_app::feedback::Incoming {
                    event,
                    tenant_id: Some(message.tenant_id.clone()),
                    dedupe_key: Some(format!("smtp:{}:{}", message.id, message.attempts)),
                    named: ee_app::feedback::Named::Signed,
                };
                match ee_app::feedback::apply_own_refusal(&mut *conn, &self.services, incoming)
                    .await
                {
                    Ok(_) => {}
                    Err(ee_app::AppError::Store(e)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "bounce not applied"),
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
