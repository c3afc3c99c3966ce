//! A fresh, empty database for each test: a SQLite file in a temporary directory, or,
//! when `EE_TEST_DATABASE_URL` names a PostgreSQL server, a new database on it.

use crate::{Backend, Db, Result};
use sqlx::{AssertSqlSafe, Connection};

pub const TEST_DATABASE_ENV: &str = "EE_TEST_DATABASE_URL";

/// Owns a test database. A PostgreSQL one is removed by `drop_database`, or else when the
/// value is dropped (a test that failed half-way leaves nothing behind); SQLite's goes
/// with its temporary directory.
pub struct TestDatabase {
    pub url: String,
    server_url: Option<String>,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create() -> Result<Self> {
        match std::env::var(TEST_DATABASE_ENV) {
            Ok(server_url) if Backend::from_url(&server_url)? == Backend::Postgres => {
                let name = format!("ee_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&server_url).await?;
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok(Self {
                    url: with_database(&server_url, &name),
                    server_url: Some(server_url),
                    name: Some(name),
                    _dir: None,
                })
            }
            _ => {
                let dir = tempfile::tempdir().map_err(sqlx::Error::Io)?;
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Ok(Self {
                    url,
                    server_url: None,
                    name: None,
                    _dir: Some(dir),
                })
            }
        }
    }

    /// Opens a pool on this database and applies the migrations.
    pub async fn connect(&self) -> Result<Db> {
        let db = Db::connect(&self.url, 8).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub async fn drop_database(mut self) -> Result<()> {
        if let (Some(server_url), Some(name)) = (self.server_url.take(), self.name.take()) {
            drop_postgres(&server_url, &name).await?;
        }
        Ok(())
    }
}

impl Drop for TestDatabase {
    /// Not dropped explicitly (a test panicked before its end): the database is removed
    /// here, on a thread of its own since `drop` cannot wait for the async driver.
    fn drop(&mut self) {
        let (Some(server_url), Some(name)) = (self.server_url.take(), self.name.take()) else {
            return;
        };
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_postgres(&server_url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        if !matches!(removed, Ok(Ok(()))) {
            eprintln!("test database not removed: {removed:?}");
        }
    }
}

async fn drop_postgres(server_url: &str, name: &str) -> Result<()> {
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// The same server URL with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
