//! PowerMTA accounting files as anyone could post them: any bytes are read or refused
//! line by line without a panic, and a record past its bound (a quote left open) is one
//! line's error, not the rest of the file swallowed.
#![allow(clippy::unwrap_used)]

use ee_connectors::pmta_accounting::{MAX_RECORD_BYTES, read};
use ee_core::feedback::Rules;
use proptest::prelude::*;

const HEADER: &str = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,bounceCat\n";

#[test]
fn an_open_quote_makes_one_line_an_error_and_the_rest_is_read() {
    let rules = Rules::shipped();
    let mut file = String::from(HEADER);
    file.push_str(
        "b,2026-12-01 10:00:00+0000,x@example.test,a@example.test,failed,5.1.1,\"smtp;550 ",
    );
    file.push_str(&"x".repeat(MAX_RECORD_BYTES + 10));
    file.push_str("\"\nb,2026-12-01 10:00:00+0000,x@example.test,b@example.test,failed,5.1.1,smtp;550 5.1.1 user unknown,bad-mailbox\n");
    let read = read(file.as_bytes(), 0, None, &rules, b"key").unwrap();
    assert_eq!(read.lines.len(), 2);
    assert!(
        read.lines[0]
            .result
            .as_ref()
            .unwrap_err()
            .contains("longer than")
    );
    let event = read.lines[1].result.clone().unwrap().unwrap();
    assert_eq!(event.recipient, "b@example.test");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_read_or_refused(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let rules = Rules::shipped();
        let _ = read(&body, 0, None, &rules, b"key");
        let mut file = HEADER.as_bytes().to_vec();
        file.extend_from_slice(&body);
        file.push(b'\n');
        if let Ok(read) = read(&file, 0, None, &rules, b"key") {
            // A CR alone ends a record too.
            prop_assert!(read.lines.len() <= body.iter().filter(|b| matches!(**b, b'\n' | b'\r')).count() + 1);
        }
    }

    #[test]
    fn lines_of_fields_are_read_or_refused(lines in prop::collection::vec("[bdf],[0-9: +-]{0,25},[a-z@.]{0,12},[a-z@.\"]{0,14},[a-z]{0,8},[0-9.]{0,6},[a-z0-9 ;\"]{0,30},[a-z-]{0,14}", 0..20)) {
        let rules = Rules::shipped();
        let file = format!("{HEADER}{}\n", lines.join("\n"));
        let _ = read(file.as_bytes(), 0, None, &rules, b"key");
    }
}
