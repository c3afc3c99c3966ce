//! PowerMTA's accounting file (`acct.csv`): its records read through the csv crate, the
//! columns named by the file's header line, each record turned into a delivery event by
//! `ee_core::feedback::accounting`. Also what following the file across rotations needs:
//! reading from an offset to the last complete line, and finding a rotated file by its
//! inode.

use ee_core::feedback::Rules;
use ee_core::feedback::accounting::{self, RecordResult};

/// One record of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Where the record starts in the file (what a second read of it is known by).
    pub offset: u64,
    /// Its line number in the file, from 1.
    pub line: u64,
    /// A digest of its fields: with its offset, what tells a line read again from one
    /// written anew at the same place (a file replaced in place).
    pub digest: String,
    pub result: RecordResult,
}

/// What a read gave.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Read {
    /// The header line's column names (read from the chunk when it starts the file).
    pub header: Vec<String>,
    pub lines: Vec<Line>,
    /// How many bytes of the chunk were read: up to its last complete line.
    pub consumed: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountingError {
    #[error("the accounting file has no header line (type, timeLogged, rcpt …)")]
    NoHeader,
    #[error("line {0}: {1}")]
    Csv(u64, String),
}

/// The longest record read (PowerMTA's lines are a few hundred bytes; a quote left open
/// would otherwise make the rest of a file one field).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The most columns a header may name.
pub const MAX_COLUMNS: usize = 512;

/// Reads the complete lines of `chunk`, which starts at `start` in its file. At offset 0
/// the first line is the header; later chunks use the `header` read before. Lines after
/// the last newline are left for the next read (PowerMTA may be writing them).
pub fn read(
    chunk: &[u8],
    start: u64,
    header: Option<&[String]>,
    rules: &Rules,
    verp_key: &[u8],
) -> Result<Read, AccountingError> {
    let complete = match chunk.iter().rposition(|b| *b == b'\n') {
        Some(end) => &chunk[..=end],
        None => {
            return Ok(Read {
                header: header.map(<[String]>::to_vec).unwrap_or_default(),
                ..Read::default()
            });
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(complete);
    let mut records = reader.byte_records();
    let mut columns: Vec<String> = match header {
        Some(h) if start > 0 || !h.is_empty() && !starts_with_header(complete) => h.to_vec(),
        _ => Vec::new(),
    };
    let mut out = Read::default();
    let mut line_no = 0;
    if columns.is_empty() {
        let first = records
            .next()
            .ok_or(AccountingError::NoHeader)?
            .map_err(|e| AccountingError::Csv(1, e.to_string()))?;
        columns = first
            .iter()
            .map(|c| String::from_utf8_lossy(c).trim().to_owned())
            .collect();
        if columns.len() > MAX_COLUMNS
            || !columns.iter().any(|c| c == "type")
            || !columns.iter().any(|c| c == "rcpt")
        {
            return Err(AccountingError::NoHeader);
        }
        line_no = 1;
    }
    let lower: Vec<String> = columns.iter().map(|c| c.to_ascii_lowercase()).collect();
    for record in records {
        line_no += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let offset = e.position().map_or(0, |p| p.byte());
                out.lines.push(Line {
                    offset: start + offset,
                    line: line_no,
                    digest: String::new(),
                    result: Err(e.to_string()),
                });
                continue;
            }
        };
        let offset = start + record.position().map_or(0, |p| p.byte());
        if record.as_slice().len() > MAX_RECORD_BYTES || record.len() > MAX_COLUMNS {
            out.lines.push(Line {
                offset,
                line: line_no,
                digest: String::new(),
                result: Err(format!(
                    "the record is longer than {MAX_RECORD_BYTES} bytes or {MAX_COLUMNS} columns \
                     (a quote left open?)"
                )),
            });
            continue;
        }
        let values: Vec<String> = record
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        let mut digest = ee_core::auth::token_digest(&values.join("\u{1f}"));
        digest.truncate(16);
        let result = accounting::event(rules, verp_key, |name| {
            let name = name.to_ascii_lowercase();
            lower
                .iter()
                .position(|c| *c == name)
                .and_then(|i| values.get(i))
                .map(String::as_str)
        })
        // The closure borrows `values`: own the event before they go.
        .map(|e| {
            e.map(|mut e| {
                e.raw_ref = Some(format!("line {line_no}"));
                e
            })
        });
        out.lines.push(Line {
            offset,
            line: line_no,
            digest,
            result,
        });
    }
    out.header = columns;
    out.consumed = complete.len() as u64;
    Ok(out)
}

/// Whether a chunk begins with a header line (a file that starts again).
fn starts_with_header(chunk: &[u8]) -> bool {
    let first = chunk.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(first);
    text.split(',').any(|c| c.trim() == "type") && text.split(',').any(|c| c.trim() == "rcpt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_core::feedback::{Class, EventKind};

    const FILE: &str = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,bounceCat,dlvSourceIp,jobId\n\
        d,2026-12-01 10:00:00+0000,news@brand.example,a@example.org,relayed,2.0.0 (success),smtp;250 ok,,198.51.100.7,c1\n\
        b,2026-12-01 10:00:01+0000,news@brand.example,gone@example.org,failed,5.1.1 (bad destination mailbox address),\"smtp;550 5.1.1 user unknown, sorry\",bad-mailbox,198.51.100.7,c1\n\
        r,2026-12-01 10:00:02+0000,news@brand.example,x@example.org,,,,,,\n\
        b,yesterday,news@brand.example,y@example.org,failed,5.0.0,,,,\n\
        t,2026-12-01 10:00:03+0000,news@brand.example,slow@example.org,delayed,4.4.1,smtp;421 try later";

    #[test]
    fn a_file_is_read_by_its_header_to_its_last_complete_line() {
        let rules = Rules::shipped();
        let read = read(FILE.as_bytes(), 0, None, &rules, b"k").expect("read");
        assert_eq!(read.header[0], "type");
        // The last line has no newline yet: left for the next read.
        assert_eq!(read.lines.len(), 4);
        assert_eq!(
            read.consumed as usize,
            FILE.rfind('\n').expect("newline") + 1
        );
        let d = read.lines[0].result.clone().expect("ok").expect("event");
        assert_eq!(
            (d.kind, d.recipient.as_str()),
            (EventKind::Delivered, "a@example.org")
        );
        let b = read.lines[1].result.clone().expect("ok").expect("event");
        assert_eq!((b.kind, b.class), (EventKind::Bounced, Class::Hard));
        assert_eq!(b.reply.diagnostic, "550 5.1.1 user unknown, sorry");
        assert_eq!(read.lines[2].result, Ok(None));
        assert_eq!(read.lines[3].line, 5);
        assert!(read.lines[3].result.clone().is_err());
        // Each record's offset points at its line.
        for line in &read.lines {
            assert!(FILE[line.offset as usize..].starts_with(['d', 'b', 'r']));
        }
        // The rest, once complete, read from where the first read stopped.
        let rest = format!("{}\n", &FILE[read.consumed as usize..]);
        let more = super::read(
            rest.as_bytes(),
            read.consumed,
            Some(&read.header),
            &rules,
            b"k",
        )
        .expect("read");
        assert_eq!(more.lines.len(), 1);
        assert_eq!(more.lines[0].offset, read.consumed);
        let t = more.lines[0].result.clone().expect("ok").expect("event");
        assert_eq!(t.kind, EventKind::Deferred);
    }

    #[test]
    fn a_file_without_its_header_is_refused() {
        let rules = Rules::shipped();
        assert_eq!(
            read(b"d,2026-12-01 10:00:00+0000,a,b\n", 0, None, &rules, b"k"),
            Err(AccountingError::NoHeader)
        );
    }
}
