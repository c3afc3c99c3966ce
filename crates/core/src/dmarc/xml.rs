//! The aggregate report's XML, read event by event (quick-xml): elements are matched by
//! their path of local names (so `urn:ietf:params:xml:ns:dmarc-2.0` reports read too),
//! unknown elements are skipped, and every bound of `Limits` is checked as the document
//! is read. A document type declaration is refused outright and only the five
//! predefined entities and character references are understood: nothing outside the
//! document is ever fetched or expanded.

use std::net::IpAddr;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{
    AggregateReport, AuthResult, Disposition, DmarcError, LIMITS, Limits, MAX_COUNT,
    PolicyPublished, Record,
};

/// The latest time a report may name (9999-12-31T23:59:59Z).
const MAX_TIME: i64 = 253_402_300_799;
/// Element names longer than this are read as unknown.
const MAX_NAME: usize = 64;

/// Reads a report within [`LIMITS`].
pub fn parse(xml: &[u8]) -> Result<AggregateReport, DmarcError> {
    parse_with(xml, &LIMITS)
}

/// Reads a report within `limits`.
pub fn parse_with(xml: &[u8], limits: &Limits) -> Result<AggregateReport, DmarcError> {
    if xml.len() > limits.max_xml_bytes {
        return Err(DmarcError::TooLarge(limits.max_xml_bytes));
    }
    // Free-text fields aside, a report is ASCII: a stray byte is not worth a refusal.
    let doc = String::from_utf8_lossy(xml);
    let mut reader = Reader::from_str(&doc);
    let mut path: Vec<String> = Vec::new();
    let mut text = Text::default();
    let mut draft = Draft::new(limits);
    loop {
        let event = reader
            .read_event()
            .map_err(|e| DmarcError::Xml(short(&e.to_string())))?;
        match event {
            Event::Start(_) | Event::Empty(_) if path.len() >= limits.max_depth => {
                return Err(DmarcError::TooDeep(limits.max_depth));
            }
            Event::Start(e) => {
                path.push(name_of(e.local_name().as_ref()));
                text = Text::default();
                draft.open(&path)?;
            }
            Event::Empty(e) => {
                path.push(name_of(e.local_name().as_ref()));
                draft.open(&path)?;
                draft.close(&path, &Text::default())?;
                path.pop();
                text = Text::default();
            }
            Event::End(_) => {
                draft.close(&path, &text)?;
                path.pop();
                text = Text::default();
            }
            Event::Text(t) => text.push(&t, limits.max_text),
            Event::CData(c) => {
                text.push(&c.into_inner(), limits.max_text);
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => predefined(&r).ok_or_else(|| {
                        DmarcError::Xml(short(&format!("undefined entity &{};", &*r)))
                    })?,
                    Err(e) => return Err(DmarcError::Xml(short(&e.to_string()))),
                };
                text.push(c.encode_utf8(&mut [0; 4]), limits.max_text);
            }
            Event::DocType(_) => return Err(DmarcError::Doctype),
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if let Some(open) = path.last() {
        return Err(DmarcError::Xml(short(&format!(
            "the document ends inside <{open}>"
        ))));
    }
    draft.finish()
}

/// An element's text as read so far; `overflow` once it passed the bound.
#[derive(Default)]
struct Text {
    s: String,
    overflow: bool,
}

impl Text {
    fn push(&mut self, more: &str, max: usize) {
        if self.s.len() + more.len() > max {
            self.overflow = true;
        } else {
            self.s.push_str(more);
        }
    }
}

fn name_of(local: &str) -> String {
    if local.len() > MAX_NAME {
        String::new()
    } else {
        local.to_ascii_lowercase()
    }
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// A reason on one bounded line.
fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(160).collect()
}

/// A record as its elements are read.
#[derive(Default)]
struct RecordDraft {
    source_ip: Option<String>,
    count: Option<String>,
    disposition: Option<String>,
    dkim: Option<String>,
    spf: Option<String>,
    header_from: Option<String>,
    envelope_from: Option<String>,
    dkim_results: Vec<AuthResult>,
    spf_results: Vec<AuthResult>,
    /// The result being read is kept (not past the bound).
    keeping: bool,
}

impl RecordDraft {
    /// The record, or `None` when it cannot be read (counted as skipped).
    fn finish(self) -> Option<Record> {
        let source_ip: IpAddr = self.source_ip?.trim().parse().ok()?;
        let count: u64 = self.count?.trim().parse().ok()?;
        if count > MAX_COUNT {
            return None;
        }
        let verdict = |v: Option<String>| match v?.trim().to_ascii_lowercase().as_str() {
            "pass" => Some(true),
            "fail" => Some(false),
            _ => None,
        };
        Some(Record {
            source_ip,
            count,
            disposition: Disposition::parse(&self.disposition?.trim().to_ascii_lowercase())?,
            dkim_aligned: verdict(self.dkim)?,
            spf_aligned: verdict(self.spf)?,
            header_from: domain(self.header_from.as_deref().unwrap_or("")),
            envelope_from: self
                .envelope_from
                .map(|e| domain(&e))
                .filter(|e| !e.is_empty()),
            dkim: self.dkim_results,
            spf: self.spf_results,
        })
    }
}

fn domain(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The report as its elements are read.
struct Draft<'l> {
    limits: &'l Limits,
    org_name: Option<String>,
    email: Option<String>,
    report_id: Option<String>,
    begin: Option<String>,
    end: Option<String>,
    domain: Option<String>,
    adkim: Option<String>,
    aspf: Option<String>,
    p: Option<String>,
    sp: Option<String>,
    pct: Option<String>,
    records: Vec<Record>,
    record: Option<RecordDraft>,
    skipped: u64,
}

impl<'l> Draft<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            org_name: None,
            email: None,
            report_id: None,
            begin: None,
            end: None,
            domain: None,
            adkim: None,
            aspf: None,
            p: None,
            sp: None,
            pct: None,
            records: Vec::new(),
            record: None,
            skipped: 0,
        }
    }

    fn open(&mut self, path: &[String]) -> Result<(), DmarcError> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        match p.as_slice() {
            [root] if *root != "feedback" => Err(DmarcError::NotAReport(short(&format!(
                "its root element is <{root}>, not <feedback>"
            )))),
            ["feedback", "record"] => {
                if self.records.len() as u64 + self.skipped >= self.limits.max_records as u64 {
                    return Err(DmarcError::TooManyRecords(self.limits.max_records));
                }
                self.record = Some(RecordDraft::default());
                Ok(())
            }
            [
                "feedback",
                "record",
                "auth_results",
                kind @ ("dkim" | "spf"),
            ] => {
                let max = self.limits.max_auth_results;
                if let Some(r) = &mut self.record {
                    let list = if *kind == "dkim" {
                        &mut r.dkim_results
                    } else {
                        &mut r.spf_results
                    };
                    r.keeping = list.len() < max;
                    if r.keeping {
                        list.push(AuthResult {
                            domain: String::new(),
                            result: String::new(),
                        });
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn close(&mut self, path: &[String], text: &Text) -> Result<(), DmarcError> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let take = || -> Result<Option<String>, DmarcError> {
            if text.overflow {
                return Err(DmarcError::TextTooLong(self.limits.max_text));
            }
            Ok(Some(text.s.trim().to_owned()))
        };
        match p.as_slice() {
            ["feedback", "report_metadata", field] => match *field {
                "org_name" => self.org_name = take()?,
                "email" => self.email = take()?,
                "report_id" => self.report_id = take()?,
                _ => {}
            },
            ["feedback", "report_metadata", "date_range", "begin"] => self.begin = take()?,
            ["feedback", "report_metadata", "date_range", "end"] => self.end = take()?,
            ["feedback", "policy_published", field] => match *field {
                "domain" => self.domain = take()?,
                "adkim" => self.adkim = take()?,
                "aspf" => self.aspf = take()?,
                "p" => self.p = take()?,
                "sp" => self.sp = take()?,
                "pct" => self.pct = take()?,
                _ => {}
            },
            ["feedback", "record"] => {
                if let Some(draft) = self.record.take() {
                    match draft.finish() {
                        Some(r) => self.records.push(r),
                        None => self.skipped += 1,
                    }
                }
            }
            ["feedback", "record", rest @ ..] => {
                let value = take()?;
                let Some(r) = &mut self.record else {
                    return Ok(());
                };
                match rest {
                    ["row", "source_ip"] => r.source_ip = value,
                    ["row", "count"] => r.count = value,
                    ["row", "policy_evaluated", "disposition"] => r.disposition = value,
                    ["row", "policy_evaluated", "dkim"] => r.dkim = value,
                    ["row", "policy_evaluated", "spf"] => r.spf = value,
                    ["identifiers", "header_from"] => r.header_from = value,
                    ["identifiers", "envelope_from"] => r.envelope_from = value,
                    [
                        "auth_results",
                        kind @ ("dkim" | "spf"),
                        field @ ("domain" | "result"),
                    ] => {
                        let list = if *kind == "dkim" {
                            &mut r.dkim_results
                        } else {
                            &mut r.spf_results
                        };
                        if let (true, Some(last), Some(v)) = (r.keeping, list.last_mut(), value) {
                            if *field == "domain" {
                                last.domain = domain(&v);
                            } else {
                                last.result = v.trim().to_ascii_lowercase();
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<AggregateReport, DmarcError> {
        let missing = |what: &str| DmarcError::NotAReport(format!("it has no {what}"));
        let required = |v: Option<String>, what: &str| {
            v.map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing(what))
        };
        let org_name = required(self.org_name, "report_metadata/org_name")?;
        let report_id = required(self.report_id, "report_metadata/report_id")?;
        let time = |v: Option<String>, what: &str| -> Result<i64, DmarcError> {
            required(v, what)?
                .parse::<i64>()
                .ok()
                .filter(|t| (0..=MAX_TIME).contains(t))
                .ok_or_else(|| DmarcError::NotAReport(format!("its {what} is no time")))
        };
        let begin = time(self.begin, "date_range/begin")?;
        let end = time(self.end, "date_range/end")?;
        if end < begin {
            return Err(DmarcError::NotAReport(
                "its date range ends before it begins".into(),
            ));
        }
        let name = domain(&required(self.domain, "policy_published/domain")?);
        if !crate::address::is_host_name(&name) {
            return Err(DmarcError::NotAReport(
                "its policy_published/domain is no domain name".into(),
            ));
        }
        let alignment = |v: Option<String>| {
            v.and_then(|s| match s.trim().to_ascii_lowercase().as_str() {
                "r" => Some('r'),
                "s" => Some('s'),
                _ => None,
            })
        };
        let disposition =
            |v: Option<String>| v.and_then(|s| Disposition::parse(&s.trim().to_ascii_lowercase()));
        Ok(AggregateReport {
            org_name,
            email: self.email.map(|e| e.trim().to_owned()).unwrap_or_default(),
            report_id,
            begin,
            end,
            policy: PolicyPublished {
                domain: name,
                adkim: alignment(self.adkim),
                aspf: alignment(self.aspf),
                p: disposition(self.p),
                sp: disposition(self.sp),
                pct: self
                    .pct
                    .and_then(|p| p.trim().parse::<u8>().ok())
                    .filter(|p| *p <= 100),
            },
            records: self.records,
            skipped: self.skipped,
        })
    }
}
