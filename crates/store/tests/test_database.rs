//! A test database goes away even when its test never reaches its end: dropping the
//! handle (as a panic unwinding does) removes it, with its pool still open.
#![allow(clippy::unwrap_used)]

use ee_store::Backend;
use ee_store::testing::{TEST_DATABASE_ENV, TestDatabase};
use sqlx::Connection;

#[tokio::test]
async fn a_test_database_dropped_half_way_is_removed() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    sqlx::query("SELECT 1").execute(db.pool()).await.unwrap();
    match db.backend() {
        Backend::Postgres => {
            let name = test_db
                .url
                .rsplit('/')
                .next()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let server = std::env::var(TEST_DATABASE_ENV).unwrap();
            let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
            let exists = "SELECT COUNT(*) FROM pg_database WHERE datname = $1";
            let before: i64 = sqlx::query_scalar(exists)
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(before, 1, "{name} exists while in use");
            drop(test_db);
            let after: i64 = sqlx::query_scalar(exists)
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(after, 0, "{name} is gone");
        }
        Backend::Sqlite => {
            let file = test_db.url.trim_start_matches("sqlite://").to_owned();
            assert!(std::path::Path::new(&file).exists());
            drop(test_db);
            assert!(!std::path::Path::new(&file).exists(), "{file} is gone");
        }
    }
}
