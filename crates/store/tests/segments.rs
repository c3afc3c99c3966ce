//! Segment conditions on custom fields and engagement, run on a real database (SQLite, or
//! PostgreSQL when EE_TEST_DATABASE_URL is set): each selects exactly the expected
//! contacts among decoys, another tenant's contacts and events included; the window moves
//! with the clock the caller passes; and any expression is either refused or compiled to
//! SQL that carries none of its values and runs.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use ee_core::segment::{self, Expr};
use ee_store::segments::{self, compile};
use ee_store::testing::TestDatabase;
use ee_store::{AnyConnection, Backend, Db};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

async fn exec(conn: &mut AnyConnection, sql: &str, texts: &[&str], ints: &[i64]) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for t in texts {
        q = q.bind(t.to_string());
    }
    for i in ints {
        q = q.bind(*i);
    }
    q.execute(conn).await.unwrap();
}

async fn tenant(conn: &mut AnyConnection, id: &str) {
    exec(
        conn,
        "INSERT INTO tenants (id, name, slug, settings, created_at, updated_at) VALUES ($1, $1, $1, '{}', $2, $2)",
        &[id],
        &[0],
    )
    .await;
}

async fn contact(conn: &mut AnyConnection, tenant: &str, id: &str, metadata: Value) {
    exec(
        conn,
        "INSERT INTO contacts (id, tenant_id, email, email_hash, status, metadata, created_at, updated_at) \
         VALUES ($1, $2, $3, $1, 'active', $4, $5, $5)",
        &[id, tenant, &format!("{id}@x.test"), &metadata.to_string()],
        &[0],
    )
    .await;
}

async fn campaign(conn: &mut AnyConnection, tenant: &str, id: &str) {
    exec(
        conn,
        "INSERT INTO campaigns (id, tenant_id, name, type, status, created_at, updated_at) \
         VALUES ($1, $2, $1, 'regular', 'sent', $3, $3)",
        &[id, tenant],
        &[0],
    )
    .await;
}

/// A message to `contact`, sent at `sent_at` (not sent when `None`).
async fn message(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    contact: &str,
    campaign: &str,
    sent_at: Option<i64>,
) {
    let state = if sent_at.is_some() { "sent" } else { "queued" };
    let q = sqlx::query(
        "INSERT INTO messages (id, tenant_id, contact_id, campaign_id, kind, to_email, from_email, subject, \
         track_opens, track_clicks, message_id_header, state, next_attempt_at, queued_at, sent_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'campaign', 'to@x.test', 'from@x.test', 's', 1, 1, $1, $5, 0, 0, $6, 0)",
    )
    .bind(id)
    .bind(tenant)
    .bind(contact)
    .bind(campaign)
    .bind(state)
    .bind(sent_at);
    q.execute(conn).await.unwrap();
}

/// An open or click of `message` by a person (or a machine).
async fn hit(
    conn: &mut AnyConnection,
    (tenant, contact, message): (&str, &str, &str),
    kind: &str,
    machine: bool,
    at: i64,
) {
    let id = format!("h-{tenant}-{contact}-{message}-{kind}-{at}-{machine}");
    exec(
        conn,
        "INSERT INTO tracking_hits (id, tenant_id, message_id, campaign_id, contact_id, kind, machine, repeat, occurred_at) \
         VALUES ($1, $2, $3, NULL, $4, $5, $6, 0, $7)",
        &[&id, tenant, message, contact, kind],
        &[i64::from(machine), at],
    )
    .await;
}

async fn bounce(conn: &mut AnyConnection, tenant: &str, contact: &str, class: &str, at: i64) {
    let id = format!("e-{tenant}-{contact}-{class}-{at}");
    exec(
        conn,
        "INSERT INTO delivery_events (id, tenant_id, contact_id, recipient, kind, class, category, source, occurred_at, received_at) \
         VALUES ($1, $2, $3, 'r@x.test', 'bounced', $4, 'other', 'smtp', $5, $5)",
        &[&id, tenant, contact, class],
        &[at],
    )
    .await;
}

/// Tenant A's five contacts with custom fields and activity; tenant B's look-alike, with
/// every kind of activity, and B's events that name A's quiet contact.
async fn fill(conn: &mut AnyConnection) {
    tenant(conn, "ta").await;
    tenant(conn, "tb").await;
    contact(
        conn,
        "ta",
        "a1",
        json!({"profession": "Lawyer", "age": "42", "vip": true, "Favourite colour": "blue"}),
    )
    .await;
    contact(conn, "ta", "a2", json!({"profession": "notary", "age": 29})).await;
    contact(
        conn,
        "ta",
        "a3",
        json!({"profession": "doctor", "age": "n/a"}),
    )
    .await;
    contact(conn, "ta", "a4", json!({})).await;
    contact(conn, "ta", "a5", json!({"profession": null, "age": 35.5})).await;
    contact(
        conn,
        "tb",
        "b1",
        json!({"profession": "lawyer", "age": "50", "vip": true, "Favourite colour": "blue"}),
    )
    .await;
    for (t, c) in [("ta", "ca1"), ("ta", "ca2"), ("tb", "cb")] {
        campaign(conn, t, c).await;
    }
    // a1: sent and opened two days ago.
    message(conn, "ta", "m1", "a1", "ca1", Some(NOW - 2 * DAY)).await;
    hit(conn, ("ta", "a1", "m1"), "open", false, NOW - 2 * DAY).await;
    // a2: a machine's open yesterday, a click 40 days ago, three soft bounces.
    message(conn, "ta", "m2", "a2", "ca2", Some(NOW - 40 * DAY)).await;
    hit(conn, ("ta", "a2", "m2"), "open", true, NOW - DAY).await;
    hit(conn, ("ta", "a2", "m2"), "click", false, NOW - 40 * DAY).await;
    for days in [1, 3, 8] {
        bounce(conn, "ta", "a2", "soft", NOW - days * DAY).await;
    }
    // a3: a message of ca1 never sent, one soft and two hard bounces.
    message(conn, "ta", "m3", "a3", "ca1", None).await;
    bounce(conn, "ta", "a3", "soft", NOW - DAY).await;
    bounce(conn, "ta", "a3", "hard", NOW - 2 * DAY).await;
    bounce(conn, "ta", "a3", "hard", NOW - 3 * DAY).await;
    // a4: three messages opened in the last hour, one of them twice.
    for m in ["m41", "m42", "m43"] {
        message(conn, "ta", m, "a4", "ca2", Some(NOW - 2 * 3_600_000)).await;
        hit(conn, ("ta", "a4", m), "open", false, NOW - 3_600_000).await;
    }
    hit(conn, ("ta", "a4", "m41"), "open", false, NOW - 1_800_000).await;
    // Tenant B: everything, for b1 and (as a forged attribution) for a5.
    for c in ["b1", "a5"] {
        let m = format!("mb-{c}");
        message(conn, "tb", &m, c, "cb", Some(NOW - DAY)).await;
        for kind in ["open", "click"] {
            hit(conn, ("tb", c, &m), kind, false, NOW - DAY).await;
        }
        for days in [1, 2, 3, 4] {
            bounce(conn, "tb", c, "soft", NOW - days * DAY).await;
        }
    }
}

async fn matching(conn: &mut AnyConnection, tenant: &str, expr: Value, now: i64) -> Vec<String> {
    let expr: Expr = serde_json::from_value(expr).unwrap();
    segment::check(&expr, now).unwrap();
    let ids: BTreeSet<String> = segments::ids(conn, tenant, &expr, None, 100, now)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let count = segments::count(conn, tenant, &expr, now).await.unwrap();
    assert_eq!(count, ids.len() as i64, "count and ids agree on {expr:?}");
    ids.into_iter().collect()
}

async fn fresh() -> (TestDatabase, Db) {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    (test_db, db)
}

#[tokio::test]
async fn custom_fields_select_exactly_their_contacts() {
    let (_t, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    fill(&mut conn).await;
    let cases = [
        (
            json!({"custom": "profession", "op": "eq", "value": "lawyer"}),
            vec!["a1"],
        ),
        (
            json!({"custom": "profession", "op": "neq", "value": "LAWYER"}),
            vec!["a2", "a3", "a4", "a5"],
        ),
        (
            json!({"custom": "profession", "op": "in", "value": ["lawyer", "Notary"]}),
            vec!["a1", "a2"],
        ),
        (
            json!({"custom": "profession", "op": "not_in", "value": ["lawyer"]}),
            vec!["a2", "a3", "a4", "a5"],
        ),
        (
            json!({"custom": "profession", "op": "contains", "value": "awy"}),
            vec!["a1"],
        ),
        (
            json!({"custom": "profession", "op": "starts_with", "value": "Doc"}),
            vec!["a3"],
        ),
        (
            json!({"custom": "profession", "op": "ends_with", "value": "ary"}),
            vec!["a2"],
        ),
        (
            json!({"custom": "profession", "op": "is_null"}),
            vec!["a4", "a5"],
        ),
        (
            json!({"custom": "profession", "op": "not_null"}),
            vec!["a1", "a2", "a3"],
        ),
        (
            json!({"custom": "age", "op": "gt", "value": 30}),
            vec!["a1", "a5"],
        ),
        (
            json!({"custom": "age", "op": "gte", "value": "42"}),
            vec!["a1"],
        ),
        (
            json!({"custom": "age", "op": "lte", "value": 29}),
            vec!["a2"],
        ),
        (
            json!({"custom": "age", "op": "lt", "value": 100}),
            vec!["a1", "a2", "a5"],
        ),
        (
            json!({"custom": "age", "op": "eq", "value": 42}),
            vec!["a1"],
        ),
        (
            json!({"custom": "age", "op": "eq", "value": "n/a"}),
            vec!["a3"],
        ),
        (
            json!({"custom": "vip", "op": "eq", "value": true}),
            vec!["a1"],
        ),
        (
            json!({"custom": "Favourite colour", "op": "eq", "value": "BLUE"}),
            vec!["a1"],
        ),
        (
            json!({"custom": "missing", "op": "eq", "value": "x"}),
            vec![],
        ),
        // As for the contact's own fields, a missing or non-numeric value is neither
        // greater nor not greater (`is_null` finds the missing ones).
        (
            json!({"not": {"custom": "age", "op": "gt", "value": 30}}),
            vec!["a2"],
        ),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            matching(&mut conn, "ta", expr.clone(), NOW).await,
            expected,
            "{expr}"
        );
    }
    // The look-alike of the other tenant is its own tenant's only.
    assert_eq!(
        matching(
            &mut conn,
            "tb",
            json!({"custom": "profession", "op": "eq", "value": "lawyer"}),
            NOW
        )
        .await,
        ["b1"]
    );
}

#[tokio::test]
async fn engagement_selects_exactly_its_contacts_within_the_clock_given() {
    let (_t, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    fill(&mut conn).await;
    let cases = [
        (json!({"engagement": "opened", "days": 7}), vec!["a1", "a4"]),
        (json!({"engagement": "opened"}), vec!["a1", "a4"]),
        (json!({"engagement": "opened", "days": 1}), vec!["a4"]),
        (
            json!({"engagement": "opened", "days": 7, "at_least": 3}),
            vec!["a4"],
        ),
        (json!({"engagement": "opened", "at_least": 4}), vec![]),
        (json!({"engagement": "clicked", "days": 30}), vec![]),
        (json!({"engagement": "clicked", "days": 60}), vec!["a2"]),
        (
            json!({"engagement": "received", "days": 7}),
            vec!["a1", "a4"],
        ),
        (
            json!({"engagement": "received", "days": 60}),
            vec!["a1", "a2", "a4"],
        ),
        (
            json!({"engagement": "received", "campaign": "ca1"}),
            vec!["a1"],
        ),
        (
            json!({"engagement": "received", "campaign": "ca2", "days": 7}),
            vec!["a4"],
        ),
        (
            json!({"not": {"engagement": "received", "campaign": "ca1"}}),
            vec!["a2", "a3", "a4", "a5"],
        ),
        // Another tenant's campaign: none of this tenant's contacts received it.
        (json!({"engagement": "received", "campaign": "cb"}), vec![]),
        (json!({"engagement": "soft_bounced"}), vec!["a2", "a3"]),
        (
            json!({"engagement": "soft_bounced", "at_least": 3}),
            vec!["a2"],
        ),
        (
            json!({"engagement": "soft_bounced", "at_least": 2, "days": 5}),
            vec!["a2"],
        ),
        (
            json!({"engagement": "soft_bounced", "at_least": 3, "days": 5}),
            vec![],
        ),
        (
            json!({"and": [{"custom": "profession", "op": "eq", "value": "lawyer"}, {"engagement": "opened", "days": 7}]}),
            vec!["a1"],
        ),
        (
            json!({"or": [{"engagement": "clicked"}, {"engagement": "soft_bounced", "days": 2}]}),
            vec!["a2", "a3"],
        ),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            matching(&mut conn, "ta", expr.clone(), NOW).await,
            expected,
            "{expr}"
        );
    }
    // Six days later, a1's open (eight days old) has left the week; a4's (six days and an
    // hour) has not.
    assert_eq!(
        matching(
            &mut conn,
            "ta",
            json!({"engagement": "opened", "days": 7}),
            NOW + 6 * DAY
        )
        .await,
        ["a4"]
    );
    // Tenant B's contact has all of it, and its events that name a5 count for no one.
    for activity in ["opened", "clicked", "received"] {
        assert_eq!(
            matching(
                &mut conn,
                "tb",
                json!({"engagement": activity, "days": 2}),
                NOW
            )
            .await,
            ["b1"],
            "{activity}"
        );
    }
    assert_eq!(
        matching(
            &mut conn,
            "tb",
            json!({"engagement": "soft_bounced", "at_least": 4}),
            NOW
        )
        .await,
        ["b1"]
    );
}

/// A hostile text: quotes, backslashes, SQL and JSON-path punctuation, and a marker that
/// must never reach the SQL text.
fn hostile() -> impl Strategy<Value = String> {
    "zq[a-z'\"\\\\$.;%_ -]{0,8}"
}

fn leaf() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just("eq"),
        Just("neq"),
        Just("in"),
        Just("not_in"),
        Just("contains"),
        Just("starts_with"),
        Just("ends_with"),
        Just("is_null"),
        Just("not_null"),
        Just("gt"),
        Just("gte"),
        Just("lt"),
        Just("lte"),
        Just("before"),
    ];
    let value = prop_oneof![
        hostile().prop_map(Value::String),
        any::<i32>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
        prop::collection::vec(hostile(), 0..3).prop_map(|v| json!(v)),
        Just(json!("-1.5")),
        Just(Value::Null),
    ];
    let activity = prop_oneof![
        Just("opened"),
        Just("clicked"),
        Just("received"),
        Just("soft_bounced")
    ];
    prop_oneof![
        (hostile(), op.clone(), value.clone())
            .prop_map(|(name, op, value)| json!({"custom": name, "op": op, "value": value})),
        (prop_oneof![Just("city"), Just("email"), Just("country")], op, value)
            .prop_map(|(field, op, value)| json!({"field": field, "op": op, "value": value})),
        (activity, prop::option::of(-2i64..4000), prop::option::of(hostile()), prop::option::of(0i64..1002))
            .prop_map(|(a, days, campaign, at_least)| json!({"engagement": a, "days": days, "campaign": campaign, "at_least": at_least})),
    ]
}

fn expression() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"and": v})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"or": v})),
            inner.prop_map(|e| json!({"not": e})),
        ]
    })
}

/// Whatever the expression, it is refused by the check, or it compiles to SQL that holds
/// none of its texts (the `zq` marker) on either database, and runs.
#[test]
fn any_expression_is_refused_or_runs_with_every_value_bound() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The pool's connection goes back through the runtime when dropped.
    let _context = runtime.enter();
    let (_t, db) = runtime.block_on(fresh());
    let conn = std::cell::RefCell::new(runtime.block_on(db.pool().acquire()).unwrap());
    runtime.block_on(fill(&mut conn.borrow_mut()));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    let (ran, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&expression(), |value| {
            let Ok(expr) = serde_json::from_value::<Expr>(value.clone()) else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            if segment::check(&expr, NOW).is_err() {
                refused.set(refused.get() + 1);
                return Ok(());
            }
            for backend in [Backend::Sqlite, Backend::Postgres] {
                let compiled = compile(&expr, 2, NOW, backend).unwrap();
                prop_assert!(
                    !compiled.sql.contains("zq"),
                    "{} in {}",
                    value,
                    compiled.sql
                );
            }
            let counted =
                runtime.block_on(segments::count(&mut conn.borrow_mut(), "ta", &expr, NOW));
            prop_assert!(counted.is_ok(), "{value}: {counted:?}");
            ran.set(ran.get() + 1);
            Ok(())
        })
        .unwrap();
    // The generator reaches both sides.
    let (ran, refused) = (ran.get(), refused.get());
    assert!(ran > 20 && refused > 20, "ran {ran}, refused {refused}");
}
