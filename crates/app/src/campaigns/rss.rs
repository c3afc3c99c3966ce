//! An RSS campaign's feed as a client writes it and as the campaign keeps it (in its
//! settings), the checks made when it is saved, and what the campaign shows of its
//! checks and runs.

use ee_core::ValidationErrors;
use ee_core::campaign::CampaignKind;
use ee_core::rss::{MAX_URL_LEN, check_interval};
use ee_store::AnyConnection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppError;
pub use crate::campaigns::settings::RssFeed;

/// The check interval when none is given: an hour.
pub const DEFAULT_INTERVAL_MINUTES: u32 = 60;

/// The feed as a client writes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RssIn {
    pub url: Option<String>,
    /// Minutes between two checks: 15 to 10080 (7 days); 60 when left out.
    pub interval_minutes: Option<u32>,
}

/// Checks the feed of a campaign of `kind`; the feed to keep when it is right.
pub fn checked(
    kind: CampaignKind,
    input: Option<RssIn>,
    errors: &mut ValidationErrors,
) -> Option<RssFeed> {
    let input = match (kind, input) {
        (CampaignKind::Rss, Some(input)) => input,
        (CampaignKind::Rss, None) => {
            errors.add("rss", "is required for an rss campaign: {\"url\": …}");
            return None;
        }
        (_, Some(_)) => {
            errors.add("rss", "only an rss campaign has a feed");
            return None;
        }
        (_, None) => return None,
    };
    let url = input.url.as_deref().map(str::trim).unwrap_or_default();
    if url.is_empty() {
        errors.add("rss.url", "is required");
    } else if url.len() > MAX_URL_LEN || url.contains(char::is_whitespace) {
        errors.add(
            "rss.url",
            format!("must be an http(s) address of at most {MAX_URL_LEN} bytes"),
        );
    }
    let interval = input.interval_minutes.unwrap_or(DEFAULT_INTERVAL_MINUTES);
    if let Err(why) = check_interval(interval) {
        errors.add("rss.interval_minutes", why);
    }
    Some(RssFeed {
        url: url.to_owned(),
        interval_minutes: interval,
    })
}

/// The outbound rule every URL a tenant names is held to (checked again at each fetch):
/// a feed URL it refuses is a 422 naming `rss.url`.
pub fn check_outbound(
    outbound: &ee_core::outbound::OutboundPolicy,
    input: Option<&RssIn>,
) -> Result<(), AppError> {
    let Some(url) = input.and_then(|i| i.url.as_deref()).map(str::trim) else {
        return Ok(());
    };
    if url.is_empty() {
        return Ok(());
    }
    match ee_connectors::outbound::check_url(outbound, url) {
        Ok(()) => Ok(()),
        Err(ee_connectors::outbound::UrlError::Refused(refused)) => {
            Err(crate::input::invalid("rss.url", refused.to_string()))
        }
        Err(e) => Err(crate::input::invalid("rss.url", e.to_string())),
    }
}

/// What a campaign shows of its feed: its checks and its runs, the latest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedRuns {
    pub url: String,
    pub interval_minutes: u32,
    /// When the feed is checked next (ms since the epoch); none before the campaign starts.
    pub next_check_at: Option<i64>,
    pub last_checked_at: Option<i64>,
    pub last_run_at: Option<i64>,
    /// Why the last check sent nothing although it should have (the feed could not be
    /// fetched, was too long, or was not a feed); none when it went well.
    pub last_error: Option<String>,
    pub runs_count: i64,
    pub runs: Vec<RunOut>,
}

/// One run: the new items a check found, sent to the audience.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    pub run: i64,
    pub items: i64,
    /// Messages queued: one per contact of the audience.
    pub recipients: i64,
    pub titles: Vec<String>,
    pub created_at: i64,
}

/// The feed and runs of an rss campaign (the caller found it in its scope).
pub async fn runs(
    read: &mut crate::read::Read,
    campaign: &ee_store::campaigns::Campaign,
) -> Result<FeedRuns, AppError> {
    let conn: &mut AnyConnection = read.conn();
    if campaign.kind != CampaignKind::Rss {
        return Err(AppError::NotFound("campaign feed"));
    }
    let feed = crate::campaigns::settings::CampaignSettings::of(campaign).rss;
    let state = ee_store::campaign_feeds::get(conn, &campaign.id).await?;
    let runs = ee_store::campaign_feeds::runs(conn, &campaign.id, 100).await?;
    Ok(FeedRuns {
        url: feed.as_ref().map(|f| f.url.clone()).unwrap_or_default(),
        interval_minutes: feed.map_or(DEFAULT_INTERVAL_MINUTES, |f| f.interval_minutes),
        next_check_at: state.as_ref().map(|s| s.next_check_at),
        last_checked_at: state.as_ref().and_then(|s| s.last_checked_at),
        last_run_at: state.as_ref().and_then(|s| s.last_run_at),
        last_error: state.as_ref().and_then(|s| s.last_error.clone()),
        runs_count: state.as_ref().map_or(0, |s| s.runs),
        runs: runs
            .into_iter()
            .map(|r| RunOut {
                run: r.run,
                items: r.items,
                recipients: r.recipients,
                titles: serde_json::from_str(&r.titles).unwrap_or_default(),
                created_at: r.created_at,
            })
            .collect(),
    })
}
