//! Two workers, each with its own connection pool, on one database (PostgreSQL in CI):
//! every job runs exactly once, and a job whose worker dies mid-run is taken again
//! by the other once the lease runs out.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ee_core::clock::Clock;
use ee_jobs::{JobError, Registry, Worker, WorkerConfig};
use ee_store::jobs::{self, NewJob};
use ee_store::testing::TestDatabase;
use ee_store::{Db, Job};
use serde_json::json;
use tokio::sync::{mpsc, watch};

/// Records each run in a table, so the test can count runs per job.
fn recording_registry(db: Db, worker: &'static str) -> Registry {
    let mut registry = Registry::new();
    registry.register("record", move |job: Job| {
        let db = db.clone();
        async move {
            sqlx::query("INSERT INTO test_job_runs (job_id, worker) VALUES ($1, $2)")
                .bind(&job.id)
                .bind(worker)
                .execute(db.pool())
                .await
                .map_err(|e| JobError(e.to_string()))?;
            Ok(serde_json::Value::Null)
        }
    });
    registry
}

async fn wait_until_done(db: &Db, expected: i64) {
    for _ in 0..600 {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'done'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        if done == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("jobs did not finish within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_run_a_thousand_jobs_exactly_once() {
    let test_db = TestDatabase::create().await.unwrap();
    let db_a = test_db.connect().await.unwrap();
    let db_b = Db::connect(&test_db.url, 8).await.unwrap();
    sqlx::query("CREATE TABLE test_job_runs (job_id TEXT NOT NULL, worker TEXT NOT NULL)")
        .execute(db_a.pool())
        .await
        .unwrap();
    let mut conn = db_a.pool().acquire().await.unwrap();
    let now = Clock::System.now_ms();
    for n in 0..1000 {
        jobs::enqueue(
            &mut conn,
            &NewJob::new("record", json!({ "n": n }), now),
            now,
        )
        .await
        .unwrap();
    }
    drop(conn);

    let (stop, stopped) = watch::channel(false);
    let mut config = WorkerConfig::new("worker-a");
    config.poll_interval = Duration::from_millis(20);
    let a = Worker::new(
        db_a.clone(),
        Clock::System,
        config.clone(),
        recording_registry(db_a.clone(), "a"),
    );
    config.id = "worker-b".into();
    let b = Worker::new(
        db_b.clone(),
        Clock::System,
        config,
        recording_registry(db_b.clone(), "b"),
    );
    let run_a = tokio::spawn(a.run(stopped.clone()));
    let run_b = tokio::spawn(b.run(stopped));
    wait_until_done(&db_a, 1000).await;
    stop.send(true).unwrap();
    run_a.await.unwrap();
    run_b.await.unwrap();

    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM test_job_runs")
        .fetch_one(db_a.pool())
        .await
        .unwrap();
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT job_id) FROM test_job_runs")
        .fetch_one(db_a.pool())
        .await
        .unwrap();
    assert_eq!(
        (runs, distinct),
        (1000, 1000),
        "every job ran, and none twice"
    );
    let per_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT worker, COUNT(*) FROM test_job_runs GROUP BY worker ORDER BY worker",
    )
    .fetch_all(db_a.pool())
    .await
    .unwrap();
    assert_eq!(
        per_worker.len(),
        2,
        "both workers took part: {per_worker:?}"
    );
    db_a.close().await;
    db_b.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_of_a_killed_worker_is_reclaimed_after_its_lease() {
    let test_db = TestDatabase::create().await.unwrap();
    let db_a = test_db.connect().await.unwrap();
    let db_b = Db::connect(&test_db.url, 4).await.unwrap();
    sqlx::query("CREATE TABLE test_job_runs (job_id TEXT NOT NULL, worker TEXT NOT NULL)")
        .execute(db_a.pool())
        .await
        .unwrap();
    let now = Clock::System.now_ms();
    let mut conn = db_a.pool().acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &NewJob::new("record", json!({}), now), now)
        .await
        .unwrap();
    drop(conn);

    // Worker A starts the job and hangs in it; then the worker is killed.
    let (started_tx, mut started) = mpsc::channel(1);
    let mut hanging = Registry::new();
    hanging.register("record", move |_job| {
        let started_tx = started_tx.clone();
        async move {
            started_tx.send(()).await.ok();
            std::future::pending::<()>().await;
            Ok(serde_json::Value::Null)
        }
    });
    let mut config = WorkerConfig::new("worker-a");
    config.lease = Duration::from_millis(1500);
    config.poll_interval = Duration::from_millis(20);
    let (_stop, stopped) = watch::channel(false);
    let run_a = tokio::spawn(
        Worker::new(db_a.clone(), Clock::System, config.clone(), hanging).run(stopped.clone()),
    );
    tokio::time::timeout(Duration::from_secs(10), started.recv())
        .await
        .expect("worker A started the job");
    run_a.abort();
    assert!(run_a.await.unwrap_err().is_cancelled());
    let mut conn = db_a.pool().acquire().await.unwrap();
    let held = jobs::get(&mut conn, id.id()).await.unwrap();
    assert_eq!(
        (held.state.as_str(), held.locked_by.as_deref()),
        ("running", Some("worker-a"))
    );
    drop(conn);

    config.id = "worker-b".into();
    let run_b = tokio::spawn(
        Worker::new(
            db_b.clone(),
            Clock::System,
            config,
            recording_registry(db_b.clone(), "b"),
        )
        .run(stopped),
    );
    wait_until_done(&db_a, 1).await;
    run_b.abort();
    let mut conn = db_a.pool().acquire().await.unwrap();
    let job = jobs::get(&mut conn, id.id()).await.unwrap();
    assert_eq!(job.attempts, 2, "one lost attempt, one that finished");
    assert_eq!(job.locked_by.as_deref(), Some("worker-b"));
    let runs: Vec<String> = sqlx::query_scalar("SELECT worker FROM test_job_runs")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(runs, ["b"]);
    drop(conn);
    db_a.close().await;
    db_b.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_failing_job_backs_off_then_is_dead_lettered() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let clock = Clock::manual(1_000_000);
    let mut registry = Registry::new();
    registry.register("flaky", |_job| async {
        Err(JobError("upstream said no".into()))
    });
    let mut config = WorkerConfig::new("w");
    config.backoff = ee_core::jobs::Backoff {
        base_ms: 1_000,
        max_ms: 10_000,
    };
    let worker = Worker::new(db.clone(), clock.clone(), config, registry);
    let mut conn = db.pool().acquire().await.unwrap();
    let id = jobs::enqueue(
        &mut conn,
        &NewJob::new("flaky", json!({}), 1_000_000).max_attempts(3),
        1_000_000,
    )
    .await
    .unwrap();
    assert!(worker.run_once().await.unwrap());
    assert!(!worker.run_once().await.unwrap(), "backing off for 1 s");
    clock.advance_ms(1_000);
    assert!(worker.run_once().await.unwrap());
    clock.advance_ms(1_999);
    assert!(!worker.run_once().await.unwrap(), "second back-off is 2 s");
    clock.advance_ms(1);
    assert!(worker.run_once().await.unwrap());
    let job = jobs::get(&mut conn, id.id()).await.unwrap();
    assert_eq!((job.state.as_str(), job.attempts), ("dead", 3));
    assert_eq!(job.last_error.as_deref(), Some("upstream said no"));
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}
