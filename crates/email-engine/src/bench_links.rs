//! `email-engine bench links`: link rewriting (the tracking step every message of a
//! campaign goes through) on one 1 MB body against ten 100 KB ones of the same kind, in
//! time and in work (the bytes its searches read, which does not depend on the machine),
//! for the hostile body that was quadratic (`<a ` repeated before one `>`) and for a
//! body of ordinary links. The floor: one search of the same bytes for a byte that is not
//! there, the least any reader of them does.

use std::hint::black_box;
use std::time::Instant;

use ee_core::tracking::rewrite_links_counted;

struct Measure {
    seconds: f64,
    work: u64,
    floor_seconds: f64,
}

fn measure(bodies: &[String], rounds: u32) -> Measure {
    let (mut seconds, mut work, mut floor_seconds) = (f64::MAX, 0, f64::MAX);
    for _ in 0..rounds {
        let started = Instant::now();
        work = 0;
        for body in bodies {
            let (out, _, w) = rewrite_links_counted(black_box(body), None, |i, _| {
                format!("https://t.example/c/{i}")
            });
            black_box(out);
            work += w;
        }
        seconds = seconds.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        for body in bodies {
            black_box(black_box(body).find('\u{1}'));
        }
        floor_seconds = floor_seconds.min(started.elapsed().as_secs_f64());
    }
    Measure {
        seconds,
        work,
        floor_seconds,
    }
}

pub fn run(rounds: u32) {
    println!(
        "{:<22} {:>12} {:>12} {:>14} {:>10} {:>12}",
        "body", "bytes", "ms", "bytes read", "read/byte", "× floor"
    );
    for (name, unit, close) in [
        ("unclosed <a ", "<a ", ">"),
        (
            "ordinary links",
            "<a href=\"https://brand.test/p\">offre</a> ",
            "",
        ),
    ] {
        let body = |size: usize| {
            let mut html = unit.repeat(size / unit.len());
            html.push_str(close);
            html
        };
        let one = vec![body(1_048_576)];
        let ten: Vec<String> = (0..10).map(|_| body(104_857)).collect();
        for (label, bodies) in [("1 × 1 MB", &one), ("10 × 100 KB", &ten)] {
            let bytes: usize = bodies.iter().map(String::len).sum();
            let m = measure(bodies, rounds.max(1));
            println!(
                "{:<22} {:>12} {:>12.2} {:>14} {:>10.2} {:>12.1}",
                format!("{name}, {label}"),
                bytes,
                m.seconds * 1e3,
                m.work,
                m.work as f64 / bytes as f64,
                m.seconds / m.floor_seconds.max(1e-9)
            );
        }
    }
}
