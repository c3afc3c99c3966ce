//! The SQLite and PostgreSQL migration sets say the same thing. They stay two sets because
//! installed databases keep each applied file's checksum (merging them would change the
//! SQLite files and stop every existing installation at start); this test fails when
//! they drift apart: same files, same statements, up to the type names that differ
//! (BIGINT / INTEGER, DOUBLE PRECISION / REAL) and comments.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dir(flavour: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(flavour)
}

fn names(flavour: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir(flavour))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect()
}

fn normalised(flavour: &str, name: &str) -> Vec<String> {
    normalise(&std::fs::read_to_string(dir(flavour).join(name)).unwrap())
}

/// The statements of a file, comments removed, whitespace folded, type names unified.
fn normalise(text: &str) -> Vec<String> {
    let without_comments: String = text
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|statement| {
            statement
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("BIGINT", "INTEGER")
                .replace("DOUBLE PRECISION", "REAL")
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn both_sets_have_the_same_files() {
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

/// Where two files' statements differ, if they do.
fn drift(sqlite: &[String], postgres: &[String]) -> Option<String> {
    if sqlite.len() != postgres.len() {
        return Some(format!(
            "{} statements against {}",
            sqlite.len(),
            postgres.len()
        ));
    }
    sqlite
        .iter()
        .zip(postgres)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("sqlite: {a}\npostgres: {b}"))
}

#[test]
fn both_sets_say_the_same_thing() {
    for name in names("sqlite") {
        let (sqlite, postgres) = (normalised("sqlite", &name), normalised("postgres", &name));
        assert!(!sqlite.is_empty(), "{name} holds statements");
        if let Some(difference) = drift(&sqlite, &postgres) {
            panic!("{name}: the two flavours differ\n{difference}");
        }
    }
}

#[test]
fn a_drift_is_seen() {
    let sqlite =
        normalise("-- one\nCREATE TABLE t (a INTEGER NOT NULL, b TEXT);\nCREATE INDEX i ON t (a);");
    let same = normalise(
        "CREATE TABLE t (a BIGINT NOT NULL,\n    b TEXT); -- two\nCREATE INDEX i ON t (a);",
    );
    assert_eq!(
        drift(&sqlite, &same),
        None,
        "types and layout aside, the same"
    );
    let missing_column = normalise("CREATE TABLE t (a BIGINT NOT NULL); CREATE INDEX i ON t (a);");
    assert!(drift(&sqlite, &missing_column).is_some());
    let missing_index = normalise("CREATE TABLE t (a BIGINT NOT NULL, b TEXT);");
    assert!(drift(&sqlite, &missing_index).is_some());
}
