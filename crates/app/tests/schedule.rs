//! Several nodes tick the scheduler against one database: each slot is enqueued once.
#![allow(clippy::unwrap_used)]

use ee_app::schedule::{self as scheduler, SCHEDULE};
use ee_core::timefmt::parse_rfc3339;
use ee_store::Db;
use ee_store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_run_per_slot_across_nodes() {
    let test_db = TestDatabase::create().await.unwrap();
    let node_a = test_db.connect().await.unwrap();
    let node_b = Db::connect(&test_db.url, 4).await.unwrap();
    // 2026-12-01 03:00:30 UTC: every job has a slot within its grace, the monthly one included.
    let now = parse_rfc3339("2026-12-01T03:00:30Z").unwrap();
    let mut handles = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 {
            node_a.clone()
        } else {
            node_b.clone()
        };
        handles.push(tokio::spawn(async move {
            scheduler::tick(&node, now + i * 1_000).await
        }));
    }
    let mut created = 0;
    for handle in handles {
        created += handle.await.unwrap().unwrap();
    }
    assert_eq!(created as usize, SCHEDULE.len(), "each job's slot once");
    let per_kind: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, COUNT(*) FROM jobs GROUP BY kind ORDER BY kind")
            .fetch_all(node_a.pool())
            .await
            .unwrap();
    assert_eq!(per_kind.len(), SCHEDULE.len());
    assert!(per_kind.iter().all(|(_, n)| *n == 1), "{per_kind:?}");
    // The next minute brings a new slot for the every-minute jobs only.
    let later = now + 60_000;
    let every_minute = SCHEDULE
        .iter()
        .filter(|j| j.name == scheduler::METRICS || j.name == scheduler::PMTA_STATUS)
        .count();
    assert_eq!(every_minute, 2);
    assert_eq!(
        scheduler::tick(&node_b, later).await.unwrap() as usize,
        every_minute
    );
    // A slot older than its grace is not run late: the monthly rotation two days on.
    let two_days = parse_rfc3339("2026-12-03T03:00:30Z").unwrap();
    scheduler::tick(&node_a, two_days).await.unwrap();
    let rotations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1")
        .bind(scheduler::ROTATION)
        .fetch_one(node_a.pool())
        .await
        .unwrap();
    assert_eq!(rotations, 1);
    node_a.close().await;
    node_b.close().await;
    test_db.drop_database().await.unwrap();
}
