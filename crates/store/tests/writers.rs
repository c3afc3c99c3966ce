//! Write transactions of one process queue for their turn (`Db::begin`): many at once all
//! commit, none is refused as "database is locked", and one dropped without a commit (an
//! error half-way) hands its turn on at once.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ee_store::Backend;
use ee_store::testing::TestDatabase;

#[tokio::test]
async fn concurrent_writers_all_commit_and_a_dropped_one_passes_its_turn() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    sqlx::raw_sql("CREATE TABLE tally (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO tally (id, n) VALUES (1, 0)")
        .execute(db.pool())
        .await
        .unwrap();

    // Read, then write what was read plus one: lost updates would show in the total.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let db = db.clone();
        tasks.spawn(async move {
            let mut tx = db.begin().await?;
            // PostgreSQL's writers run side by side: the row is locked for the update.
            let lock = match db.backend() {
                Backend::Postgres => " FOR UPDATE",
                Backend::Sqlite => "",
            };
            let sql = format!("SELECT n FROM tally WHERE id = 1{lock}");
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?;
            tokio::task::yield_now().await;
            sqlx::query("UPDATE tally SET n = $1 WHERE id = 1")
                .bind(n + 1)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, ee_store::StoreError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT n FROM tally WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(n, 40, "every writer's increment is kept");

    // A transaction dropped without a commit: the next writer gets its turn at once, not
    // after the 15 s the queue waits before going to the database without it.
    let tx = db.begin().await.unwrap();
    drop(tx);
    let next = tokio::time::timeout(Duration::from_secs(5), db.begin()).await;
    let mut tx = next.expect("the turn was passed on").unwrap();
    sqlx::query("UPDATE tally SET n = n + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close().await;
    test_db.drop_database().await.unwrap();
}
