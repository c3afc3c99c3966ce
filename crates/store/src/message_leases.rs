//! Claims of due messages under a lease, in fair turns between tenants and their
//! streams, and the lease's renewal by its node's heartbeat while the batch is in hand
//! (`ee_jobs::delivery`).

use std::collections::HashMap;

use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::messages::{COLUMNS, Message};
use crate::{Backend, Result};

/// How many of the earliest due messages a claim shares out in fair turns, per message
/// claimed (split between the tenants that have some due).
const CANDIDATES: i64 = 25;

/// What the fair turns look at in a candidate.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: String,
    tenant_id: String,
    campaign_id: Option<String>,
    next_attempt_at: i64,
}

/// Claims up to `limit` due messages (queued or deferred and due, and not of a paused or
/// cancelled campaign) under a new lease token, `<node>:<unique id>`, after returning to
/// the queue those whose lease ran out (their worker died). Run it in a transaction.
///
/// Fair turns, first between tenants, then between a tenant's streams: each tenant's
/// earliest due messages are candidates (a range of its own index, so one tenant's
/// backlog never hides another's message behind it), and each tenant's first message
/// goes before any tenant's second. Within a tenant, each campaign's first goes before
/// any campaign's second (a transactional message is a stream of its own, so it never
/// waits behind a campaign), so campaigns started together share the IPs and their
/// quotas instead of the first one taking them all.
pub async fn claim_due(
    conn: &mut AnyConnection,
    backend: Backend,
    node: &str,
    limit: i64,
    lease_ms: i64,
    now: i64,
) -> Result<(String, Vec<Message>)> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // Messages whose worker died go back to the queue first.
    sqlx::query(
        "UPDATE messages SET state = 'queued', lease_token = NULL, lease_until = NULL, updated_at = $1 \
         WHERE state = 'sending' AND lease_until < $1",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let tenants: Vec<(String,)> = sqlx::query_as(
        "SELECT t.id FROM tenants t WHERE EXISTS (SELECT 1 FROM messages d \
         WHERE d.tenant_id = t.id AND d.state IN ('queued', 'deferred') AND d.next_attempt_at <= $1)",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let token = format!("{node}:{}", new_id());
    if tenants.is_empty() || limit <= 0 {
        return Ok((token, Vec::new()));
    }
    let per_tenant = (limit.saturating_mul(CANDIDATES) / tenants.len() as i64).max(limit);
    let sql = format!(
        "SELECT id, tenant_id, campaign_id, next_attempt_at FROM messages d WHERE d.tenant_id = $1 \
         AND d.state IN ('queued', 'deferred') AND d.next_attempt_at <= $2 \
         AND (d.campaign_id IS NULL OR NOT EXISTS (SELECT 1 FROM campaigns c \
             WHERE c.id = d.campaign_id AND c.status IN ('paused', 'auto_paused', 'cancelled'))) \
         ORDER BY d.next_attempt_at, d.id LIMIT $3 {lock}"
    );
    let mut candidates = Vec::new();
    for (tenant,) in &tenants {
        let some: Vec<Candidate> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(tenant)
            .bind(now)
            .bind(per_tenant)
            .fetch_all(&mut *conn)
            .await?;
        candidates.extend(some);
    }
    let chosen: Vec<String> = in_fair_turns(candidates, |c| {
        (
            &c.tenant_id,
            c.campaign_id.as_ref(),
            c.next_attempt_at,
            &c.id,
        )
    })
    .into_iter()
    .take(usize::try_from(limit).unwrap_or(usize::MAX))
    .map(|c| c.id)
    .collect();
    if chosen.is_empty() {
        return Ok((token, Vec::new()));
    }
    let marks: Vec<String> = (0..chosen.len()).map(|i| format!("${}", i + 4)).collect();
    let update = format!(
        "UPDATE messages SET state = 'sending', lease_token = $1, lease_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE state IN ('queued', 'deferred') AND id IN ({}) RETURNING {COLUMNS}",
        marks.join(", ")
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(update))
        .bind(token.clone())
        .bind(now + lease_ms)
        .bind(now);
    for id in chosen {
        query = query.bind(id);
    }
    let claimed: Vec<Message> = query.fetch_all(conn).await?;
    // In the same fair turns (RETURNING keeps no order): the engine reserves IP quota in
    // this order, so a batch sorted by time alone gave the first campaign all of it.
    Ok((
        token,
        in_fair_turns(claimed, |m| {
            (
                &m.tenant_id,
                m.campaign_id.as_ref(),
                m.next_attempt_at,
                &m.id,
            )
        }),
    ))
}

/// Orders messages in fair turns: each tenant's first before any tenant's second; within
/// a tenant, each stream's (a campaign's, or a transactional message's own) first before
/// any stream's second; then by due time. `key` gives (tenant, campaign, due, id).
fn in_fair_turns<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> (&String, Option<&String>, i64, &String),
) -> Vec<T> {
    items.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        (ka.2, ka.3).cmp(&(kb.2, kb.3))
    });
    let mut streams: HashMap<(String, String), usize> = HashMap::new();
    let mut by_stream: Vec<(usize, T)> = items
        .into_iter()
        .map(|item| {
            let (tenant, campaign, _, id) = key(&item);
            let stream = campaign.unwrap_or(id).clone();
            let turn = streams.entry((tenant.clone(), stream)).or_default();
            *turn += 1;
            (*turn, item)
        })
        .collect();
    // Stable sorts: equal turns stay in due order.
    by_stream.sort_by_key(|(turn, _)| *turn);
    let mut tenants: HashMap<String, usize> = HashMap::new();
    let mut by_tenant: Vec<(usize, T)> = by_stream
        .into_iter()
        .map(|(_, item)| {
            let turn = tenants.entry(key(&item).0.clone()).or_default();
            *turn += 1;
            (*turn, item)
        })
        .collect();
    by_tenant.sort_by_key(|(turn, _)| *turn);
    by_tenant.into_iter().map(|(_, item)| item).collect()
}

/// Extends a batch's lease to `until` (its node's heartbeat), for what is still being
/// sent under it; the number of messages still held.
pub async fn extend_lease(conn: &mut AnyConnection, lease_token: &str, until: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE messages SET lease_until = $1 WHERE lease_token = $2 AND state = 'sending'",
    )
    .bind(until)
    .bind(lease_token)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::in_fair_turns;

    type Item = (String, Option<String>, i64, String);

    fn item(tenant: &str, campaign: Option<&str>, due: i64, id: &str) -> Item {
        (tenant.into(), campaign.map(Into::into), due, id.into())
    }

    fn order(items: Vec<Item>) -> Vec<String> {
        in_fair_turns(items, |i| (&i.0, i.1.as_ref(), i.2, &i.3))
            .into_iter()
            .map(|i| i.3)
            .collect()
    }

    #[test]
    fn a_late_tenant_goes_second_not_after_the_backlog() {
        let mut items: Vec<Item> = (0..5)
            .map(|n| item("a", None, n, &format!("a{n}")))
            .collect();
        items.push(item("c", None, 100, "c0"));
        assert_eq!(order(items), ["a0", "c0", "a1", "a2", "a3", "a4"]);
    }

    #[test]
    fn within_a_tenant_campaigns_take_turns_and_transactional_is_its_own_stream() {
        let items = vec![
            item("a", Some("k1"), 1, "k1-1"),
            item("a", Some("k1"), 2, "k1-2"),
            item("a", Some("k1"), 3, "k1-3"),
            item("a", Some("k2"), 4, "k2-1"),
            item("a", None, 5, "t1"),
        ];
        assert_eq!(order(items), ["k1-1", "k2-1", "t1", "k1-2", "k1-3"]);
    }

    #[test]
    fn tenants_alternate_and_each_keeps_its_own_order() {
        let items = vec![
            item("b", Some("x"), 1, "b1"),
            item("a", Some("y"), 2, "a1"),
            item("b", Some("x"), 3, "b2"),
            item("a", Some("y"), 4, "a2"),
            item("b", Some("x"), 5, "b3"),
        ];
        assert_eq!(order(items), ["b1", "a1", "b2", "a2", "b3"]);
    }
}
