//! A campaign as the API shows it and the audit log records it.

use ee_core::campaign::RecipientState;
use ee_core::campaign::{CampaignKind, CampaignStatus, Throttle};
use ee_core::timefmt::to_rfc3339;
use ee_core::zone::SendWindow;
use ee_store::Scope;
use ee_store::campaigns::{self as store, Campaign};
pub use ee_store::campaigns::{CampaignFilter, Recipient};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::campaigns::settings::{AbTest, Audience, CampaignSettings, Step};
use crate::read::Read;

/// A campaign as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// regular, autoresponder, ab_test or rss.
    #[serde(rename = "type")]
    pub kind: CampaignKind,
    pub status: CampaignStatus,
    /// Why it paused itself, or was paused.
    pub status_reason: Option<String>,
    pub template_id: Option<String>,
    /// What starts an autoresponder (seed 004: `subscription`).
    pub trigger: Option<String>,
    pub audience: Audience,
    pub throttle: Option<Throttle>,
    /// Daily hours in which its messages are handed to a transport.
    pub window: Option<SendWindow>,
    /// An autoresponder's sequence.
    pub steps: Vec<Step>,
    /// The custom event on which a contact leaves the sequence.
    pub goal: Option<String>,
    /// An A/B test's variants, rules and winner.
    pub ab: Option<AbTest>,
    /// An rss campaign's feed (its checks and runs: `GET /api/v2/campaigns/{id}/runs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss: Option<crate::campaigns::settings::RssFeed>,
    pub send_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How many recipients the audience held when sending started.
    pub recipients: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Campaign> for CampaignOut {
    fn from(c: Campaign) -> Self {
        let settings = CampaignSettings::of(&c);
        Self {
            audience: serde_json::from_str(&c.audience).unwrap_or_default(),
            throttle: settings.throttle,
            window: settings.window,
            steps: settings.steps,
            goal: settings.goal,
            ab: settings.ab,
            rss: settings.rss,
            send_at: c.scheduled_at.map(to_rfc3339),
            started_at: c.started_at.map(to_rfc3339),
            finished_at: c.finished_at.map(to_rfc3339),
            recipients: c.audience_count,
            created_at: to_rfc3339(c.created_at),
            updated_at: to_rfc3339(c.updated_at),
            id: c.id,
            tenant_id: c.tenant_id,
            name: c.name,
            kind: c.kind,
            status: c.status,
            status_reason: c.status_reason,
            template_id: c.template_id,
            trigger: c.trigger_event,
        }
    }
}

crate::write::audited!(CampaignOut, "campaign");

/// A page of campaigns, newest first, filtered, strictly before the key-set cursor: of
/// the tenant a request named (resolved by `Read::tenant`), else of every tenant the
/// caller may see.
pub async fn list(
    read: &mut Read,
    tenant: Option<&str>,
    filter: &CampaignFilter,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Campaign>, AppError> {
    let (conn, own) = read.parts();
    let scope = tenant.map_or(own, Scope::Tenant);
    Ok(store::list(conn, scope, filter, before, limit).await?)
}

/// A campaign's recipient ledger (of a state), a page of `limit` after the cursor (a
/// contact id).
pub async fn recipients(
    read: &mut Read,
    campaign: &Campaign,
    state: Option<RecipientState>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Recipient>, AppError> {
    Ok(store::recipients(read.conn(), &campaign.id, state, after, limit).await?)
}
