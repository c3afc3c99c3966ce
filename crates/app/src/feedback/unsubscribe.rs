//! A recipient's unsubscribe through the link of one of our messages (RFC 8058's one-click
//! POST, or the confirmation page's button): the address suppressed for the message's
//! tenant and, the first time only, the message's event, its campaign's count, the report
//! counters and the tenant's MailWizz lists told. A repeat changes nothing.

use ee_store::Db;
use ee_store::messages::{self, Message};
use serde_json::json;

use crate::AppError;
use crate::feedback::report_counts;

/// Unsubscribes the recipient of `message`; whether this was the first time.
pub async fn by_link(db: &Db, message: &Message, now: i64) -> Result<bool, AppError> {
    let mut tx = db.begin().await?;
    let detail = json!({"message_id": message.id, "campaign_id": message.campaign_id});
    let added = super::suppress(
        &mut tx,
        &message.tenant_id,
        &message.to_email,
        ee_core::contacts::SuppressionReason::Unsubscribed,
        Some("list-unsubscribe"),
        &detail,
        now,
    )
    .await?;
    if added {
        messages::add_event(&mut tx, message, "unsubscribed", None, None, None, now).await?;
        crate::campaigns::stats::record_engagement(
            &mut tx,
            message,
            "unsubscribed",
            false,
            None,
            now,
        )
        .await?;
        report_counts::add(
            &mut tx,
            [(
                report_counts::key_of_message(message, None, now),
                "unsubscribed",
                1,
            )],
        )
        .await?;
        crate::delivery::mailwizz::enqueue_sync(&mut tx, &message.tenant_id, now).await?;
    }
    tx.commit().await?;
    Ok(added)
}
