//! `email-engine bench import`: imports a generated CSV of N contacts through the real
//! import path (syntax, disposable, role and free checks; no network) on SQLite and on
//! PostgreSQL, each in a child process so that its peak RSS is its own, and measures the
//! floor of each database on the same file: `sqlite3 .import` into a table with a unique
//! index on email, and `psql \copy`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use ee_core::clock::Clock;
use ee_store::Db;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub backend: String,
    pub rows: u64,
    pub created: u64,
    pub rejected: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub peak_rss_mb: f64,
}

/// Writes `rows` contacts: most ordinary, some disposable, role or free addresses, a few
/// invalid lines, with names, city, country, language and tags.
pub fn generate(path: &Path, rows: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "email,first_name,last_name,city,country,language,tags")?;
    let cities = [
        "Paris",
        "Lyon",
        "Marseille",
        "Bruxelles",
        "Genève",
        "Montréal",
    ];
    for i in 0..rows {
        let email = match i % 50 {
            0 => format!("user{i}@mailinator.com"),
            1 => format!("info{i}@company{}.test", i % 997),
            2 => format!("user{i}@gmail.com"),
            3 if i % 1000 == 3 => format!("broken-address-{i}"),
            _ => format!("user{i}@company{}.test", i % 997),
        };
        writeln!(
            out,
            "{email},First{i},Last{i},{},FR,fr,TYPE:LAWYER",
            cities[(i % 6) as usize]
        )?;
    }
    out.flush()?;
    Ok(())
}

/// This process's peak resident set (VmHWM), in MB; 0 where /proc is missing.
pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The child: one import into a fresh database, then a JSON report on stdout.
pub async fn run_one(file: &Path, database_url: &str) -> anyhow::Result<()> {
    let db = Db::connect(database_url, 4).await?;
    db.migrate().await?;
    let clock = Clock::System;
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(ee_store::StoreError::from)?;
    let tenant = ee_store::tenants::insert(
        &mut conn,
        ee_store::tenants::NewTenant {
            name: "Bench",
            slug: "bench",
            settings: "{}",
        },
        clock.now_ms(),
    )
    .await?;
    let mut import = ee_store::imports::insert(
        &mut conn,
        &tenant.id,
        None,
        Some("bench.csv"),
        None,
        clock.now_ms(),
    )
    .await?;
    drop(conn);
    let started = Instant::now();
    let counts = ee_app::sources::csv_import::run(
        &db,
        &mut import,
        None,
        file.to_path_buf(),
        || clock.now_ms(),
        |_, _, _| {},
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    let seconds = started.elapsed().as_secs_f64();
    let rows = import.total as u64;
    let report = RunReport {
        backend: db.backend().as_str().into(),
        rows,
        created: counts.created,
        rejected: counts.rejected,
        seconds,
        rows_per_second: rows as f64 / seconds,
        peak_rss_mb: peak_rss_mb(),
    };
    db.close().await;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn timed(mut command: Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(started.elapsed().as_secs_f64())
}

const FLOOR_TABLE: &str = "CREATE TABLE contacts (email TEXT NOT NULL, first_name TEXT, last_name TEXT, city TEXT, country TEXT, language TEXT, tags TEXT); \
     CREATE UNIQUE INDEX contacts_email ON contacts(email);";

fn sqlite_floor(dir: &Path, file: &Path) -> anyhow::Result<f64> {
    let db = dir.join("floor.db");
    let _ = std::fs::remove_file(&db);
    let script = format!(
        ".bail on\n{FLOOR_TABLE}\n.mode csv\n.import --skip 1 {} contacts\n",
        file.display()
    );
    let started = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run sqlite3 (Debian package sqlite3)")?;
    child
        .stdin
        .take()
        .context("sqlite3 has no stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() || !out.stderr.is_empty() {
        bail!(
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(started.elapsed().as_secs_f64())
}

fn psql(url: &str, sql: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.arg(url)
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-q")
        .arg("-c")
        .arg(sql);
    cmd
}

/// Runs `measure` on a SQLite database in a temporary directory and, when `postgres` is
/// given, on a PostgreSQL database of its own (`ee_bench_<name>_<pid>`, dropped after);
/// prints each report as a JSON line.
pub(crate) async fn on_each_database<R, F, Fut>(
    name: &str,
    postgres: Option<&str>,
    measure: F,
) -> anyhow::Result<()>
where
    R: serde::Serialize,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<R>>,
{
    let dir = tempfile::tempdir()?;
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let mut reports = vec![measure(sqlite).await?];
    if let Some(url) = postgres {
        let database = format!("ee_bench_{name}_{}", std::process::id());
        let mut admin = ee_store::Db::connect(url, 1).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(admin.pool())
            .await?;
        let measured = measure(with_database(url, &database)).await;
        admin = ee_store::Db::connect(url, 1).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database}")))
            .execute(admin.pool())
            .await?;
        admin.close().await;
        reports.push(measured?);
    }
    for report in reports {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = base[cut..]
        .find('/')
        .map_or(base, |slash| &base[..cut + slash]);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn postgres_floor(server_url: &str, file: &Path) -> anyhow::Result<f64> {
    let name = format!("ee_bench_floor_{}", std::process::id());
    timed(psql(server_url, &format!("DROP DATABASE IF EXISTS {name}")))?;
    timed(psql(server_url, &format!("CREATE DATABASE {name}")))?;
    let url = with_database(server_url, &name);
    timed(psql(&url, FLOOR_TABLE))?;
    let seconds = timed(psql(
        &url,
        &format!(
            "\\copy contacts FROM '{}' WITH (FORMAT csv, HEADER true)",
            file.display()
        ),
    ));
    let _ = timed(psql(server_url, &format!("DROP DATABASE IF EXISTS {name}")));
    seconds
}

fn child(file: &Path, database_url: &str) -> anyhow::Result<RunReport> {
    let out = Command::new(std::env::current_exe()?)
        .args(["bench", "import-run", "--file"])
        .arg(file)
        .args(["--database-url", database_url])
        .env("RUST_LOG", "error")
        .output()?;
    if !out.status.success() {
        bail!(
            "the import run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .context("the import run printed no report")
}

/// The whole benchmark; prints a table.
pub fn run(rows: u64, postgres: Option<&str>, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("contacts.csv");
    eprintln!("generating {rows} contacts into {}", file.display());
    generate(&file, rows)?;
    let size_mb = std::fs::metadata(&file)?.len() as f64 / 1_048_576.0;
    println!("{rows} contacts, {size_mb:.1} MB of CSV");
    println!(
        "{:<12} {:>12} {:>12} {:>14} {:>12} {:>8}",
        "database", "ours rows/s", "floor rows/s", "ours / floor", "peak RSS MB", "seconds"
    );

    eprintln!("SQLite: our import…");
    // A fresh database each run, also in a --dir used before.
    let database = dir.join("bench.db");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", database.display()));
    }
    let sqlite_url = format!("sqlite://{}", database.display());
    let ours = child(&file, &sqlite_url)?;
    eprintln!("SQLite: sqlite3 .import…");
    let floor = rows as f64 / sqlite_floor(&dir, &file)?;
    println!(
        "{:<12} {:>12.0} {:>12.0} {:>14.2} {:>12.1} {:>8.1}",
        "sqlite",
        ours.rows_per_second,
        floor,
        ours.rows_per_second / floor,
        ours.peak_rss_mb,
        ours.seconds
    );

    match postgres {
        Some(server) => {
            let name = format!("ee_bench_{}", std::process::id());
            timed(psql(server, &format!("DROP DATABASE IF EXISTS {name}")))?;
            timed(psql(server, &format!("CREATE DATABASE {name}")))?;
            eprintln!("PostgreSQL: our import…");
            let ours = child(&file, &with_database(server, &name));
            let _ = timed(psql(server, &format!("DROP DATABASE IF EXISTS {name}")));
            let ours = ours?;
            eprintln!("PostgreSQL: psql \\copy…");
            let floor = rows as f64 / postgres_floor(server, &file)?;
            println!(
                "{:<12} {:>12.0} {:>12.0} {:>14.2} {:>12.1} {:>8.1}",
                "postgres",
                ours.rows_per_second,
                floor,
                ours.rows_per_second / floor,
                ours.peak_rss_mb,
                ours.seconds
            );
        }
        None => println!("postgres     (skipped: pass --postgres-url)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_have_the_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        generate(&path, 2000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2001);
        assert!(
            text.contains("@mailinator.com")
                && text.contains("info51@")
                && text.contains("@gmail.com")
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("broken-address"))
                .count(),
            2
        );
        assert_eq!(
            with_database("postgres://u@h:5432/test?x=1", "b"),
            "postgres://u@h:5432/b?x=1"
        );
    }
}
