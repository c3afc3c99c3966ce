//! A/B tests: at the start, a share of the fixed audience is spread over the variants (an
//! even split of a systematic sample: every k-th recipient in contact order, so the test
//! group spans the whole audience, read a page at a time); once the test messages are out
//! and the wait is over, the variant with the most unique opens (or clicks) wins and goes
//! to the rest. An operator may name the winner before that.

use ee_core::campaign::CampaignKind;
use ee_store::AnyConnection;
use ee_store::campaigns::{self as store, Campaign};
use serde_json::json;

use crate::AppError;
use crate::campaigns::settings::{AbTest, CampaignSettings, WinnerBy};
use crate::campaigns::view::CampaignOut;
use crate::write::Write;

const PAGE: i64 = 1000;
const HOUR_MS: i64 = 3_600_000;

fn ab_of(campaign: &Campaign) -> Option<(CampaignSettings, AbTest)> {
    let settings = CampaignSettings::of(campaign);
    let ab = settings.ab.clone()?;
    Some((settings, ab))
}

/// Spreads the test share of a campaign's `total` recipients over its variants.
pub async fn assign_test_group(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    total: i64,
) -> Result<(), AppError> {
    let Some((_, ab)) = ab_of(campaign) else {
        return Ok(());
    };
    let variants = ab.variants.len() as i64;
    if total == 0 || variants == 0 {
        return Ok(());
    }
    let size = ((total as f64 * ab.test_share).ceil() as i64).clamp(variants.min(total), total);
    let every = (total / size).max(1);
    let (mut index, mut assigned) = (0i64, 0i64);
    let mut after = String::new();
    while assigned < size {
        let ids = store::recipient_ids(conn, &campaign.id, &after, PAGE).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let mut groups: Vec<Vec<String>> = vec![Vec::new(); ab.variants.len()];
        for id in ids {
            if index % every == 0 && assigned < size {
                groups[(assigned % variants) as usize].push(id);
                assigned += 1;
            }
            index += 1;
        }
        for (variant, ids) in ab.variants.iter().zip(groups) {
            store::set_variant(conn, &campaign.id, &variant.name, &ids).await?;
        }
        after = last;
    }
    Ok(())
}

/// The winner, if the test is over: every test message handed over `wait_hours` ago.
/// Unique opens (or clicks) decide; a tie goes to the first variant listed.
async fn judge(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    ab: &AbTest,
    now: i64,
) -> Result<Option<(String, serde_json::Value)>, AppError> {
    let Some(last) = store::last_variant_queued_at(conn, &campaign.id).await? else {
        return Ok(None);
    };
    if now < last + i64::from(ab.wait_hours) * HOUR_MS {
        return Ok(None);
    }
    let event = match ab.winner_by {
        WinnerBy::Opens => "opened",
        WinnerBy::Clicks => "clicked",
    };
    let counts: std::collections::BTreeMap<String, i64> =
        store::variant_engagement(conn, &campaign.id, event)
            .await?
            .into_iter()
            .collect();
    let mut best: Option<(&str, i64)> = None;
    for v in &ab.variants {
        let n = counts.get(&v.name).copied().unwrap_or(0);
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((&v.name, n));
        }
    }
    Ok(best.map(|(name, _)| (name.to_owned(), json!({ "by": event, "counts": counts }))))
}

/// Records the winner and gives it to the recipients still without a variant, audited.
async fn crown(
    w: &mut Write,
    campaign: &Campaign,
    mut settings: CampaignSettings,
    winner: &str,
    why: serde_json::Value,
) -> Result<(), AppError> {
    let before = CampaignOut::from(campaign.clone());
    if let Some(ab) = settings.ab.as_mut() {
        ab.winner = Some(winner.to_owned());
    }
    let text = serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into());
    store::set_settings(&mut w.tx, &campaign.id, &text, w.now).await?;
    let rest = store::set_variant_of_rest(&mut w.tx, &campaign.id, winner).await?;
    let after = CampaignOut::from(w.find::<Campaign>(&campaign.id).await?);
    w.changed("campaign.ab_winner", &before, &after).await?;
    w.record(crate::audit::Change {
        action: "campaign.ab_winner.decided",
        resource_type: "campaign",
        resource_id: Some(&campaign.id),
        tenant_id: Some(&campaign.tenant_id),
        before: None,
        after: Some(json!({"winner": winner, "why": why, "rest": rest})),
    })
    .await
}

/// In the dispatcher, once the test group is handed over: picks the winner when the test
/// is over. Returns whether it did.
pub async fn decide_if_over(w: &mut Write, campaign: &Campaign) -> Result<bool, AppError> {
    let Some((settings, ab)) = ab_of(campaign) else {
        return Ok(false);
    };
    if ab.winner.is_some() {
        return Ok(false);
    }
    let Some((winner, why)) = judge(&mut w.tx, campaign, &ab, w.now).await? else {
        return Ok(false);
    };
    crown(w, campaign, settings, &winner, why).await?;
    Ok(true)
}

/// An operator names the winner before the test is over.
pub async fn choose(w: &mut Write, id: &str, winner: &str) -> Result<CampaignOut, AppError> {
    let campaign: Campaign = w.find(id).await?;
    if campaign.kind != CampaignKind::AbTest || campaign.status.is_final() {
        return Err(AppError::Conflict(
            "only a running A/B test takes a winner".into(),
        ));
    }
    let Some((settings, ab)) = ab_of(&campaign) else {
        return Err(AppError::Conflict("the campaign has no A/B test".into()));
    };
    if let Some(chosen) = &ab.winner {
        return Err(AppError::Conflict(format!(
            "the winner is {chosen} already"
        )));
    }
    if !ab.variants.iter().any(|v| v.name == winner) {
        return Err(crate::input::invalid(
            "variant",
            "names none of the test's variants",
        ));
    }
    crown(w, &campaign, settings, winner, json!({"by": "operator"})).await?;
    Ok(CampaignOut::from(w.find::<Campaign>(id).await?))
}
