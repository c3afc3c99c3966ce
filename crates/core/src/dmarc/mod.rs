//! DMARC aggregate reports (RFC 7489 §7.2 and appendix C): what receivers tell a domain
//! about the mail they saw using it, per sending IP — how many messages, whether DKIM
//! and SPF passed aligned with the From domain, what the receiver did. The XML is read
//! here (`parse`, by events, with limits: outsiders write it); what a domain's reports
//! add up to and when they call for an alert is `summary`; to whom a report belongs is
//! `attribute`. Taking the XML out of a mail (gzip, zip) is `ee_mail::dmarc_report`'s.

mod attribution;
pub mod summary;
mod xml;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use attribution::{Holder, attribute};
pub use xml::{parse, parse_with};

/// The bounds a report is read within. A large receiver's daily report for a busy domain
/// is some hundred kilobytes and a few thousand records: these are far above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest XML document read (after decompression).
    pub max_xml_bytes: usize,
    /// Records (`<record>`) one report may hold.
    pub max_records: usize,
    /// Elements nested in elements.
    pub max_depth: usize,
    /// Bytes of one element's text that is read.
    pub max_text: usize,
    /// DKIM or SPF results kept per record (the rest are ignored).
    pub max_auth_results: usize,
}

pub const LIMITS: Limits = Limits {
    max_xml_bytes: 20 * 1024 * 1024,
    max_records: 10_000,
    max_depth: 12,
    max_text: 1024,
    max_auth_results: 8,
};

/// The most messages one record may claim (a larger count is no report we believe).
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// Why a report was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcError {
    #[error("is larger than {0} bytes of XML")]
    TooLarge(usize),
    #[error("has more than {0} records")]
    TooManyRecords(usize),
    #[error("nests elements more than {0} deep")]
    TooDeep(usize),
    #[error("has an element whose text is over {0} bytes")]
    TextTooLong(usize),
    #[error("declares a document type (DTD): entities are not read")]
    Doctype,
    #[error("is not well-formed XML: {0}")]
    Xml(String),
    #[error("is no DMARC aggregate report: {0}")]
    NotAReport(String),
}

impl DmarcError {
    /// Over one of the bounds, rather than unreadable.
    pub fn is_over_limit(&self) -> bool {
        matches!(
            self,
            Self::TooLarge(_) | Self::TooManyRecords(_) | Self::TooDeep(_) | Self::TextTooLong(_)
        )
    }
}

/// What the receiver did with the messages (`none`, `quarantine`, `reject`); also the
/// policy a domain publishes (`p`, `sp`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    None,
    Quarantine,
    Reject,
}

crate::names::names!(Disposition {
    None => "none",
    Quarantine => "quarantine",
    Reject => "reject",
});

/// What became of a report received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// Its domain is one a tenant holds: counted in that domain's figures.
    Attributed,
    /// Read, but its domain is none we can give it to (not held, or held by several
    /// tenants none of whom proved it): kept for an administrator, counted nowhere.
    Unattributed,
    /// Not read (over a limit, not a report): kept with why, for an administrator.
    Refused,
}

crate::names::names!(ReportState {
    Attributed => "attributed",
    Unattributed => "unattributed",
    Refused => "refused",
});

/// The policy the domain published, as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPublished {
    /// Lower case, without a trailing dot.
    pub domain: String,
    /// `r` or `s`.
    pub adkim: Option<char>,
    pub aspf: Option<char>,
    pub p: Option<Disposition>,
    pub sp: Option<Disposition>,
    pub pct: Option<u8>,
}

/// One authentication result the receiver saw (a DKIM signature or the SPF check).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthResult {
    pub domain: String,
    /// `pass`, `fail`, `none`, `softfail`…, lower case.
    pub result: String,
}

/// One source of mail: an IP, the messages it sent with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    pub source_ip: IpAddr,
    pub count: u64,
    pub disposition: Disposition,
    /// DKIM passed and aligned with the From domain (`policy_evaluated/dkim`).
    pub dkim_aligned: bool,
    /// SPF passed and aligned with the From domain (`policy_evaluated/spf`).
    pub spf_aligned: bool,
    pub header_from: String,
    pub envelope_from: Option<String>,
    pub dkim: Vec<AuthResult>,
    pub spf: Vec<AuthResult>,
}

impl Record {
    /// DMARC passes when DKIM or SPF passes aligned (RFC 7489 §6.6.2).
    pub fn passes(&self) -> bool {
        self.dkim_aligned || self.spf_aligned
    }
}

/// An aggregate report as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateReport {
    /// Who wrote it (`google.com`).
    pub org_name: String,
    pub email: String,
    /// Its id, unique per reporter.
    pub report_id: String,
    /// The period it covers, in Unix seconds.
    pub begin: i64,
    pub end: i64,
    pub policy: PolicyPublished,
    pub records: Vec<Record>,
    /// Records that could not be read (an address that is no IP, no count…): left out.
    pub skipped: u64,
}

impl AggregateReport {
    /// Messages it covers.
    pub fn messages(&self) -> u64 {
        self.records
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(r.count))
    }

    /// Records that differ only by their count made one (receivers write one per
    /// message batch): what is stored.
    pub fn merged_records(&self) -> Vec<Record> {
        let mut out: std::collections::BTreeMap<Record, u64> = std::collections::BTreeMap::new();
        for r in &self.records {
            let key = Record {
                count: 0,
                ..r.clone()
            };
            let sum = out.entry(key).or_default();
            *sum = sum.saturating_add(r.count);
        }
        out.into_iter()
            .map(|(r, count)| Record { count, ..r })
            .collect()
    }
}
