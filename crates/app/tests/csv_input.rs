//! CSV imports as anyone could upload them: any bytes after a header are read contact by
//! contact or refused line by line (with the line's number), without a panic; a line past
//! the bound is one refused line.
#![allow(clippy::unwrap_used)]

use ee_app::sources::csv_import::ContactReader;
use proptest::prelude::*;

fn file(bytes: &[u8]) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("ee-csv-input-{}-{n}.csv", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reads a whole file: (contacts, refused lines).
fn read_all(bytes: &[u8]) -> Option<(usize, Vec<(u64, String)>)> {
    let path = file(bytes);
    let reader = ContactReader::open(&path);
    let out = reader.ok().map(|mut reader| {
        let (mut good, mut bad) = (0, Vec::new());
        loop {
            let (ok, refused, done) = reader.next_chunk(100);
            good += ok.len();
            bad.extend(refused);
            if done {
                break;
            }
        }
        (good, bad)
    });
    std::fs::remove_file(&path).unwrap();
    out
}

#[test]
fn a_quote_left_open_is_one_refused_line() {
    let mut csv = b"email,firstName\na@example.org,\"Ann\n".to_vec();
    csv.extend(std::iter::repeat_n(b'x', (1 << 20) + 10));
    csv.extend_from_slice(b"\n");
    let (good, bad) = read_all(&csv).unwrap();
    assert_eq!(good, 0);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].0, 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_after_a_header_are_read_or_refused(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut csv = b"email,firstName,tags\n".to_vec();
        csv.extend_from_slice(&body);
        let (good, bad) = read_all(&csv).unwrap();
        // A CR alone ends a record too.
        let lines = body.iter().filter(|b| matches!(**b, b'\n' | b'\r')).count() + 1;
        prop_assert!(good + bad.len() <= lines, "{good} + {} > {lines}", bad.len());
    }

    #[test]
    fn any_header_is_taken_or_refused(head in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_all(&head);
    }
}
