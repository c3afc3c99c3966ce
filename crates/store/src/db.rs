use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

use crate::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Url(
                "expected sqlite:… or postgres://… (the URL itself is not shown: it may hold a password)"
                    .into(),
            ))
        }
    }

    /// The database a connection speaks to.
    pub fn of(conn: &sqlx::AnyConnection) -> Self {
        if crate::bulk::is_sqlite(conn) {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool on one of the two databases.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Its busy handler makes the others poll, sleeping
    /// 1, 2, 5, 10… ms between tries, so a writer often slept well past the moment the
    /// lock was free (a campaign send counted hundreds of such sleeps per 50 000
    /// messages). The process's write transactions queue here instead, in order, each
    /// woken as the one before ends; the busy timeout still orders writers of other
    /// processes.
    writer: Option<Writer>,
}

/// The process's queue of SQLite writers, and how long its turns have been held.
#[derive(Debug, Clone, Default)]
struct Writer {
    gate: Arc<tokio::sync::Mutex<()>>,
    held_us: Arc<AtomicU64>,
    /// The directory of the database file, whose disk is watched.
    dir: Option<std::path::PathBuf>,
    /// Below this many free bytes on that disk, write transactions are refused (0: never).
    min_free: Arc<AtomicU64>,
}

impl Writer {
    /// `Err(DiskFull)` when the database's disk has less free space than the floor: the
    /// write is refused before it starts, rather than failing half-way (SQLite would roll
    /// it back, but every write after it would fail the same way).
    fn check_disk(&self) -> Result<()> {
        let min = self.min_free.load(Ordering::Relaxed);
        let Some(dir) = self.dir.as_deref().filter(|_| min > 0) else {
            return Ok(());
        };
        let Ok(stat) = rustix::fs::statvfs(dir) else {
            return Ok(());
        };
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        if free < min {
            return Err(StoreError::DiskFull {
                free_bytes: Some(free),
            });
        }
        Ok(())
    }
}

/// One writer's turn: counted as held from when it is given until it is dropped.
struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    held_us: Arc<AtomicU64>,
    since: std::time::Instant,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let us = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.held_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// How long a write transaction waits for its turn among this process's writers before
/// it goes to SQLite without it (whose busy timeout then decides): as long as that timeout.
const WRITER_WAIT: Duration = Duration::from_secs(15);

/// A write transaction: on SQLite it holds the process's writer turn until it ends.
pub struct Tx {
    // Declared first, so dropped first: the turn passes after the rollback is queued.
    inner: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<Turn>,
}

impl Tx {
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.commit().await
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Refreshes the planner's statistics of the contact tables after a bulk load
/// (PostgreSQL; SQLite's planner needs none to pick the unique index for an equality).
/// `tags` too: a tenant's few tags never reach autovacuum's threshold, and unanalyzed the
/// table is guessed at hundreds of rows, so a segment on a tag looked a hundred times
/// smaller than it is and its fan-out took one index look-up per contact.
pub async fn refresh_statistics(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::raw_sql("ANALYZE contacts, contact_tags, contact_events, tags")
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The file of a `sqlite:` URL (none for an in-memory database).
pub fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The directory of a `sqlite:` URL's file.
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    let parent = std::path::Path::new(sqlite_file(url)?).parent()?;
    Some(if parent.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        parent.to_owned()
    })
}

impl Db {
    /// Opens a pool. A SQLite file is created if missing and put in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Url(e.to_string()))?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Postgres {
                        // Our statements vary in their IN lists and optional filters; a generic
                        // plan chosen after five runs can fall back to sequential scans.
                        sqlx::raw_sql("SET plan_cache_mode = force_custom_plan")
                            .execute(&mut *conn)
                            .await?;
                    }
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; the busy timeout makes
                        // concurrent writers wait for each other instead of failing. The page
                        // cache is per connection (16 MiB each), so memory stays bounded by the
                        // pool, not by the size of the database (bulk imports: 16 MiB was
                        // the size that kept most of the gain of 64 MiB). The WAL is
                        // checkpointed every 10 000 pages (~40 MB) instead of 1 000: fewer
                        // checkpoints, each writing a hot page once.
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000; \
                             PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 10000; PRAGMA temp_store = MEMORY;",
                        )
                        .execute(conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _| {
                Box::pin(async move {
                    if backend != Backend::Sqlite {
                        return Ok(true);
                    }
                    // A statement that fails with SQLITE_FULL (or another error SQLite
                    // answers by rolling back itself) leaves no transaction to roll back:
                    // the driver's ROLLBACK then fails and it keeps counting one, so the
                    // connection's every later BEGIN failed ("non-zero transaction
                    // depth"), a 500 each time it came out of the pool. A connection
                    // released inside a transaction has its rollback queued: the ping
                    // runs it; one still counting a transaction after that is closed, not
                    // reused. (Most connections come back outside one: nothing to do.)
                    use sqlx::Connection as _;
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await?;
        let writer = (backend == Backend::Sqlite).then(|| Writer {
            dir: sqlite_dir(&url),
            ..Writer::default()
        });
        Ok(Self {
            pool,
            backend,
            writer,
        })
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The newest schema version this binary knows.
    pub fn known_schema(&self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The schema version of the database (its newest applied migration); `None` before
    /// the first.
    pub async fn schema_version(&self) -> Result<Option<i64>> {
        let exists: Option<i64> = match self.backend {
            Backend::Sqlite => sqlx::query_scalar(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            ),
            Backend::Postgres => sqlx::query_scalar(
                "SELECT 1 FROM information_schema.tables WHERE table_name = '_sqlx_migrations' \
                 AND table_schema = current_schema()",
            ),
        }
        .fetch_optional(&self.pool)
        .await?;
        if exists.is_none() {
            return Ok(None);
        }
        Ok(
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = true")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Applies the migrations this database has not seen yet; forward only: a database
    /// whose schema is newer than this binary's is refused with a clear message.
    pub async fn migrate(&self) -> Result<()> {
        if let Some(database) = self.schema_version().await?
            && database > self.known_schema()
        {
            return Err(crate::StoreError::NewerSchema {
                database,
                binary: self.known_schema(),
            });
        }
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Applies the migrations up to `version` only: what an installation of that release
    /// had (upgrade tests start from it).
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        self.migrator().run_to(version, &self.pool).await?;
        Ok(())
    }

    /// A transaction that may write. On SQLite it takes the write lock at `BEGIN`
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes cannot
    /// wait for another writer (SQLite answers "database is locked" at once, whatever the
    /// busy timeout, since waiting could deadlock), whereas one that asks first queues
    /// behind the busy timeout like any writer.
    /// On SQLite it also waits for its turn among this process's writers (`writer`).
    pub async fn begin(&self) -> Result<Tx> {
        if let Some(writer) = &self.writer {
            writer.check_disk()?;
        }
        let turn = match &self.writer {
            Some(writer) => tokio::time::timeout(WRITER_WAIT, writer.gate.clone().lock_owned())
                .await
                .ok()
                .map(|guard| Turn {
                    _guard: guard,
                    held_us: writer.held_us.clone(),
                    since: std::time::Instant::now(),
                }),
            None => None,
        };
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { inner, _turn: turn })
    }

    /// On SQLite, refuses write transactions (`StoreError::DiskFull`) while the disk of the
    /// database file has less than `bytes` free (0: never). PostgreSQL watches its own.
    pub fn set_min_free_disk(&self, bytes: u64) {
        if let Some(writer) = &self.writer {
            writer.min_free.store(bytes, Ordering::Relaxed);
        }
    }

    /// A transaction for writing many rows at once. On PostgreSQL it lets cached plans be
    /// generic again for its duration: under the pool's `force_custom_plan` every
    /// foreign-key check (one per inserted row, run from a cached plan) is planned anew,
    /// which halved an import's rate; a bulk statement's plan does not depend on its rows.
    pub async fn begin_bulk(&self) -> Result<Tx> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::raw_sql("SET LOCAL plan_cache_mode = auto")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// On SQLite, how long (ms) this process's write transactions have held the write
    /// lock in all (what bounds a write-heavy run: `bench campaign` reports it); `None` on
    /// PostgreSQL, whose writers run side by side.
    pub fn writer_held_ms(&self) -> Option<u64> {
        self.writer
            .as_ref()
            .map(|w| w.held_us.load(Ordering::Relaxed) / 1000)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pooled connection for reads (or a single statement), the pool's error as ours.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when a trivial query answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
