//! Bulk tagging: tags added to and removed from every contact a segment expression
//! matches, in one transaction with one audit entry.

use ee_core::tags::Tag;
use ee_store::contacts as store;
use ee_store::segments;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AppError;
use crate::audit::Change;
use crate::input::invalid;
use crate::write::Write;

/// What a bulk tagging asks for.
#[derive(Debug)]
pub struct BulkTagging {
    /// A segment expression choosing the contacts.
    pub filter: Value,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// The tenant's id or slug; the caller's own when absent.
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkTagsOut {
    pub matched: u64,
    pub tagged: u64,
    pub untagged: u64,
}

fn parse_tags(tags: &[String], field: &str) -> Result<Vec<Tag>, AppError> {
    tags.iter()
        .map(|t| ee_core::tags::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(field, e.to_string()))
}

/// How many contacts are read at a time.
const BATCH: i64 = 1000;

/// Adds and removes tags on every contact the filter matches (removing a tag removes its
/// descendants). Open the scope with `open_bulk`: this may change many rows.
pub async fn bulk_tags(w: &mut Write, input: BulkTagging) -> Result<BulkTagsOut, AppError> {
    let now = w.now;
    let expr = crate::campaigns::segments::parse_expr_in(&input.filter, "filter", now)?;
    let add = parse_tags(&input.add, "add")?;
    let remove = parse_tags(&input.remove, "remove")?;
    let tenant_id = w.tenant(input.tenant.as_deref()).await?;
    crate::campaigns::segments::check_campaigns(&mut w.tx, &tenant_id, &expr, "filter").await?;
    let mut add_ids = Vec::new();
    for tag in &add {
        add_ids.push(store::ensure_tag(&mut w.tx, &tenant_id, tag, now).await?);
    }
    let (mut matched, mut tagged, mut untagged) = (0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let ids = segments::ids(&mut w.tx, &tenant_id, &expr, after.as_deref(), BATCH, now).await?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        matched += ids.len() as u64;
        let pairs: Vec<(String, String)> = ids
            .iter()
            .flat_map(|id| add_ids.iter().map(move |tag| (id.clone(), tag.clone())))
            .collect();
        tagged += store::tag_many(&mut w.tx, &pairs, now).await?;
        for tag in &remove {
            untagged += store::untag_many(&mut w.tx, &tenant_id, &ids, &tag.slug()).await?;
        }
        after = Some(last);
    }
    w.record(Change {
        action: "contacts.bulk_tags",
        resource_type: "contact",
        resource_id: None,
        tenant_id: Some(&tenant_id),
        before: None,
        after: Some(
            json!({"filter": input.filter, "add": input.add, "remove": input.remove, "matched": matched}),
        ),
    })
    .await?;
    Ok(BulkTagsOut {
        matched,
        tagged,
        untagged,
    })
}
