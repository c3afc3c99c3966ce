//! The development corpus of real bounces, delay warnings, abuse reports and auto-replies
//! (`crates/mail/tests/data/bounce-corpus/*` and the flufl set, each labelled by hand
//! with the reason its receiving side gave; sources and licences beside them), read as
//! the listener reads them (`feedback_intake::read_report` with the shipped rules). Prints
//! per writer family: recognised, the suppress-or-not decision, the category; and holds
//! the targets: recognised ≥ 97 %, decision ≥ 97 %, category ≥ 85 %.
//! `EE_CORPUS_VERBOSE=1` lists every message read wrong, with what was read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ee_app::feedback::intake::read_report;
use ee_core::feedback::{Class, EventKind, Rules};
use ee_mail::report::ReportKind;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/tests/data");

struct Label {
    path: PathBuf,
    family: String,
    kind: String,
    suppress: bool,
    category: String,
    recipient: String,
}

fn labels() -> Vec<Label> {
    let mut dirs = vec![PathBuf::from(format!("{DATA}/bounces-flufl"))];
    let mut collections: Vec<PathBuf> = std::fs::read_dir(format!("{DATA}/bounce-corpus"))
        .expect("the corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("labels.tsv").exists())
        .collect();
    collections.sort();
    dirs.extend(collections);
    let mut out = Vec::new();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("labels.tsv")).expect("labels");
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 6, "{}: {line}", dir.display());
            out.push(Label {
                path: dir.join(cols[0]),
                family: cols[1].to_owned(),
                kind: cols[2].to_owned(),
                suppress: cols[3] == "suppress",
                category: cols[4].to_owned(),
                recipient: cols[5].to_ascii_lowercase(),
            });
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    messages: u32,
    recognised: u32,
    decided: u32,
    decisions: u32,
    categorised: u32,
    categories: u32,
}

fn share(n: u32, of: u32) -> f64 {
    if of == 0 {
        100.0
    } else {
        f64::from(n) * 100.0 / f64::from(of)
    }
}

fn name(path: &Path) -> String {
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "{parent}/{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

#[test]
fn the_development_corpus_is_read_right() {
    let rules = Rules::shipped();
    let verbose = std::env::var("EE_CORPUS_VERBOSE").is_ok_and(|v| v == "1");
    let mut by_family: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut wrong = Vec::new();
    let mut not_reports = (0, 0);
    for label in labels() {
        let raw = std::fs::read(&label.path).expect("message");
        let read = read_report(&rules, b"", &raw, None, "corpus", 0);
        if label.kind == "not-report" {
            not_reports.1 += 1;
            if read.is_err() {
                not_reports.0 += 1;
            }
            continue;
        }
        let tally = by_family.entry(label.family.clone()).or_default();
        let seen = |t: &mut Tally| t.messages += 1;
        seen(tally);
        seen(&mut total);
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                wrong.push(format!("{}: not recognised ({e})", name(&label.path)));
                continue;
            }
        };
        let event = read
            .events
            .iter()
            .find(|e| e.recipient.eq_ignore_ascii_case(&label.recipient))
            .or(read.events.first());
        let (kind, suppress, category) = match (read.report.kind, event) {
            (ReportKind::AutoReply, _) | (_, None) => ("auto-reply", false, "-".to_owned()),
            (_, Some(e)) => (
                match e.kind {
                    EventKind::Bounced => "bounce",
                    EventKind::Deferred => "delay",
                    EventKind::Complaint => "complaint",
                    EventKind::Delivered => "delivered",
                },
                matches!(e.class, Class::Hard | Class::Complaint),
                e.category.as_str().to_owned(),
            ),
        };
        let decided = suppress == label.suppress;
        let judged_category =
            matches!(label.kind.as_str(), "bounce" | "delay") && label.category != "-";
        let categorised = !judged_category || category == label.category;
        for t in [by_family.get_mut(&label.family).expect("tally"), &mut total] {
            t.recognised += 1;
            t.decisions += 1;
            t.decided += u32::from(decided);
            t.categories += u32::from(judged_category);
            t.categorised += u32::from(judged_category && categorised);
        }
        if !decided || !categorised {
            let e = event.map(|e| {
                format!(
                    "{} {:?} {} [{}]",
                    e.recipient,
                    e.class,
                    e.category,
                    e.reply.diagnostic.chars().take(160).collect::<String>()
                )
            });
            wrong.push(format!(
                "{}: want {} {} {}, read {kind} {} {category} ({}) {}",
                name(&label.path),
                label.kind,
                if label.suppress { "suppress" } else { "keep" },
                label.category,
                if suppress { "suppress" } else { "keep" },
                read.report.family.as_str(),
                e.unwrap_or_default()
            ));
        }
    }
    println!(
        "{:<16} {:>5} {:>11} {:>11} {:>11}",
        "family", "msgs", "recognised", "decision", "category"
    );
    for (family, t) in by_family.iter().chain([(&"ALL".to_owned(), &total)]) {
        println!(
            "{family:<16} {:>5} {:>10.1}% {:>10.1}% {:>10.1}%",
            t.messages,
            share(t.recognised, t.messages),
            share(t.decided, t.decisions),
            share(t.categorised, t.categories),
        );
    }
    println!(
        "not reports left unrecognised: {} of {}",
        not_reports.0, not_reports.1
    );
    if verbose {
        for w in &wrong {
            println!("{w}");
        }
    }
    let recognised = share(total.recognised, total.messages);
    let decision = share(total.decided, total.decisions);
    let category = share(total.categorised, total.categories);
    println!("recognised {recognised:.1} %, decision {decision:.1} %, category {category:.1} %");
    assert!(total.messages > 250, "{}", total.messages);
    assert!(
        recognised >= 97.0 && decision >= 97.0 && category >= 85.0,
        "recognised {recognised:.1} %, decision {decision:.1} %, category {category:.1} %\n{}",
        wrong.join("\n")
    );
}
