//! What strangers send the feedback listener is kept for a look, but capped: unmatched
//! events by count, unreadable mail by count and bytes, the oldest dropped first.
#![allow(clippy::unwrap_used)]

use ee_store::delivery_events::{self, DeliveryEventRow};
use ee_store::feedback_messages::{self, KeptMessage};
use ee_store::testing::TestDatabase;

fn event(i: i64, tenant: Option<&str>) -> DeliveryEventRow {
    DeliveryEventRow {
        id: format!("e{i:04}"),
        tenant_id: tenant.map(str::to_owned),
        message_id: None,
        campaign_id: None,
        contact_id: None,
        ip_id: None,
        recipient: format!("r{i}@example.org"),
        kind: ee_core::feedback::EventKind::Complaint,
        class: ee_core::feedback::Class::Complaint,
        category: ee_core::feedback::Category::SpamRelated,
        source: ee_core::feedback::Source::Arf,
        code: None,
        status: None,
        diagnostic: None,
        remote_mta: None,
        ip_address: None,
        raw_ref: None,
        dedupe_key: Some(format!("k{i}")),
        occurred_at: i,
        received_at: 1_000 + i,
    }
}

#[tokio::test]
async fn unmatched_events_and_unreadable_mail_keep_only_the_newest() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    for i in 0..30 {
        assert!(
            delivery_events::insert(&mut conn, &event(i, None))
                .await
                .unwrap()
        );
    }
    assert_eq!(
        delivery_events::cap_unmatched(&mut conn, 40).await.unwrap(),
        0
    );
    assert_eq!(
        delivery_events::cap_unmatched(&mut conn, 10).await.unwrap(),
        20
    );
    assert_eq!(
        delivery_events::unmatched_count(&mut conn).await.unwrap(),
        10
    );
    let kept: Vec<String> = sqlx::query_scalar("SELECT id FROM delivery_events ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(kept.first().map(String::as_str), Some("e0020"));
    assert_eq!(kept.last().map(String::as_str), Some("e0029"));

    let mail = |i: i64, size: usize| KeptMessage {
        id: format!("m{i:04}"),
        envelope_from: None,
        envelope_to: "fbl@bounces.example".into(),
        raw: "x".repeat(size),
        size: size as i64,
        reason: "no report".into(),
        received_at: 1_000 + i,
    };
    for i in 0..10 {
        feedback_messages::insert(&mut conn, &mail(i, 100))
            .await
            .unwrap();
    }
    // By count: the five newest.
    assert_eq!(
        feedback_messages::cap(&mut conn, 5, 1 << 20).await.unwrap(),
        5
    );
    assert_eq!(
        feedback_messages::totals(&mut conn).await.unwrap(),
        (5, 500)
    );
    // By bytes: what fits in 250 bytes, newest first.
    assert_eq!(feedback_messages::cap(&mut conn, 5, 250).await.unwrap(), 3);
    assert_eq!(
        feedback_messages::totals(&mut conn).await.unwrap(),
        (2, 200)
    );
    let newest = feedback_messages::page(&mut conn, None, 10).await.unwrap();
    assert_eq!(newest[0].id, "m0009");
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}
