//! What housekeeping forgets: DMARC reports past their keeping (with their records), and
//! an RSS campaign's item keys and runs beyond the newest ones, per campaign.
#![allow(clippy::unwrap_used)]

use ee_core::dmarc::ReportState;
use ee_store::dmarc_reports::{self, NewRecord, NewReport};
use ee_store::testing::TestDatabase;
use ee_store::{AnyConnection, campaign_feeds};

async fn exec(conn: &mut AnyConnection, sql: &str, texts: &[&str]) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for t in texts {
        q = q.bind(t.to_string());
    }
    q.execute(conn).await.unwrap();
}

async fn count(conn: &mut AnyConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn old_reports_and_old_feed_keys_are_forgotten_the_newest_kept() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    exec(
        &mut conn,
        "INSERT INTO tenants (id, name, slug, settings, created_at, updated_at) VALUES ($1, $1, $1, '{}', 0, 0)",
        &["t"],
    )
    .await;

    // Reports received at 1 000, 2 000 and 3 000, each with a record.
    for (i, at) in [1_000i64, 2_000, 3_000].into_iter().enumerate() {
        let id = format!("r{i}");
        let report = NewReport {
            id: &id,
            tenant_id: None,
            domain_id: None,
            state: ReportState::Unattributed,
            reason: None,
            domain: "brand.test",
            org_name: "receiver",
            email: "r@receiver.test",
            report_id: &id,
            begin_at: 0,
            end_at: 1,
            policy: "p=none",
            messages: 1,
            skipped: 0,
            sender: None,
            size: 10,
            dedupe_key: Some(&id),
            received_at: at,
        };
        let record = NewRecord {
            source_ip: "192.0.2.1".into(),
            own: false,
            count: 1,
            disposition: "none".into(),
            dkim_aligned: true,
            spf_aligned: true,
            header_from: "brand.test".into(),
            envelope_from: None,
            dkim: String::new(),
            spf: String::new(),
        };
        assert!(
            dmarc_reports::insert(&mut conn, &report, &[record])
                .await
                .unwrap()
        );
    }
    assert_eq!(dmarc_reports::purge(&mut conn, 2_500).await.unwrap(), 2);
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM dmarc_reports").await,
        1
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM dmarc_records").await,
        1
    );
    let kept: String = sqlx::query_scalar("SELECT id FROM dmarc_reports")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(kept, "r2");

    // Two campaigns: one with 4 runs of 3 items, one with a single run.
    for id in ["c1", "c2"] {
        exec(
            &mut conn,
            "INSERT INTO campaigns (id, tenant_id, name, type, status, created_at, updated_at) \
             VALUES ($1, 't', $1, 'rss', 'sending', 0, 0)",
            &[id],
        )
        .await;
        campaign_feeds::ensure(&mut conn, id, "t", 0).await.unwrap();
    }
    for run in 0..4 {
        let keys: Vec<String> = (0..3).map(|i| format!("item-{run}-{i}")).collect();
        let items: Vec<campaign_feeds::SentItem<'_>> = keys
            .iter()
            .map(|k| campaign_feeds::SentItem {
                key: k,
                link: "https://brand.test/",
                published_at: None,
            })
            .collect();
        campaign_feeds::add_run(&mut conn, "c1", &items, "[]", run)
            .await
            .unwrap();
    }
    let one = [campaign_feeds::SentItem {
        key: "only",
        link: "https://brand.test/",
        published_at: None,
    }];
    campaign_feeds::add_run(&mut conn, "c2", &one, "[]", 0)
        .await
        .unwrap();
    // Keep 4 keys and 2 runs a campaign: c1 loses 8 keys and 2 runs, c2 nothing.
    assert_eq!(
        campaign_feeds::prune(&mut conn, 4, 2).await.unwrap(),
        (8, 2)
    );
    let mut keys = campaign_feeds::sent_keys(&mut conn, "c1").await.unwrap();
    keys.sort();
    // The newest run's three, and the first by name of the run before.
    assert_eq!(keys, ["item-2-0", "item-3-0", "item-3-1", "item-3-2"]);
    assert_eq!(
        campaign_feeds::sent_keys(&mut conn, "c2").await.unwrap(),
        ["only"]
    );
    let runs: Vec<i64> = sqlx::query_scalar(
        "SELECT run FROM campaign_feed_runs WHERE campaign_id = 'c1' ORDER BY run",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(runs, [3, 4]);
    // Nothing more to forget.
    assert_eq!(
        campaign_feeds::prune(&mut conn, 4, 2).await.unwrap(),
        (0, 0)
    );
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}
