//! DMARC aggregate reports as receivers mail them (RFC 7489 §7.2.1.1): an attachment
//! (or the whole body) of gzip (`.xml.gz`), zip (`.zip`) or plain XML. The attachment is
//! told by its bytes, not by what its headers claim; it is decompressed within a bound
//! (a few kilobytes of zip can hold gigabytes: read past the bound, it is refused, not
//! inflated), and the XML is read by `ee_core::dmarc` within its own.

use std::io::{Cursor, Read};

use ee_core::dmarc::{self, AggregateReport, DmarcError};
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// The bounds of the reading, besides the XML's own (`ee_core::dmarc::LIMITS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message read.
    pub max_message_bytes: usize,
    /// MIME parts (counted before parsing).
    pub max_parts: usize,
    /// The most a report may decompress to.
    pub max_uncompressed: usize,
    /// Files a zip archive may hold.
    pub max_zip_entries: usize,
}

pub const LIMITS: Limits = Limits {
    max_message_bytes: crate::report::LIMITS.max_bytes,
    max_parts: 64,
    max_uncompressed: dmarc::LIMITS.max_xml_bytes,
    max_zip_entries: 16,
};

/// Why a mail gave no report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcMailError {
    #[error("is larger than {0} bytes")]
    TooLarge(usize),
    #[error("has more than {0} MIME parts")]
    TooManyParts(usize),
    #[error("decompresses to more than {0} bytes")]
    Bomb(usize),
    #[error("is a zip archive of more than {0} files")]
    TooManyEntries(usize),
    #[error("has no DMARC report attached (gzip, zip or XML)")]
    NoReport,
    #[error("has an attachment that does not decompress: {0}")]
    Corrupt(String),
    #[error("holds a report that {0}")]
    Report(#[from] DmarcError),
}

impl DmarcMailError {
    /// Over one of the bounds (refused), rather than unreadable.
    pub fn is_over_limit(&self) -> bool {
        match self {
            Self::TooLarge(_) | Self::TooManyParts(_) | Self::Bomb(_) | Self::TooManyEntries(_) => {
                true
            }
            Self::Report(e) => e.is_over_limit(),
            Self::NoReport | Self::Corrupt(_) => false,
        }
    }
}

/// Reads the report a mail carries, within [`LIMITS`].
pub fn read(raw: &[u8]) -> Result<AggregateReport, DmarcMailError> {
    read_with(raw, &LIMITS)
}

/// Reads the report a mail carries, within `limits`.
pub fn read_with(raw: &[u8], limits: &Limits) -> Result<AggregateReport, DmarcMailError> {
    if raw.len() > limits.max_message_bytes {
        return Err(DmarcMailError::TooLarge(limits.max_message_bytes));
    }
    if crate::report::content_types(raw) > limits.max_parts {
        return Err(DmarcMailError::TooManyParts(limits.max_parts));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(DmarcMailError::NoReport)?;
    let mut first_error = None;
    for part in message.parts.iter() {
        let contents = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
            PartType::Text(t) => t.as_bytes(),
            _ => continue,
        };
        let named = part
            .attachment_name()
            .map(str::to_ascii_lowercase)
            .is_some_and(|n| n.ends_with(".xml") || n.ends_with(".gz") || n.ends_with(".zip"));
        let typed = part.content_type().is_some_and(|ct| {
            let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
            matches!(
                sub.as_str(),
                "gzip" | "x-gzip" | "zip" | "x-zip" | "x-zip-compressed" | "xml"
            )
        });
        if !named && !typed && kind_of(contents) != Kind::Zip && kind_of(contents) != Kind::Gzip {
            continue;
        }
        match unpack(contents, limits).and_then(|xml| Ok(dmarc::parse(&xml)?)) {
            Ok(report) => return Ok(report),
            // A bound broken is the answer: nothing else of the mail is read.
            Err(e) if e.is_over_limit() => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(DmarcMailError::NoReport))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Zip,
    Xml,
}

fn kind_of(bytes: &[u8]) -> Kind {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else if bytes.starts_with(b"PK\x03\x04") {
        Kind::Zip
    } else {
        Kind::Xml
    }
}

/// The XML of an attachment: gunzipped, unzipped (the archive's first `.xml` file, else
/// its only file) or as it is, never more than `max_uncompressed` bytes.
pub fn unpack(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, DmarcMailError> {
    let max = limits.max_uncompressed;
    match kind_of(bytes) {
        Kind::Gzip => capped(flate2::read::MultiGzDecoder::new(bytes), max),
        Kind::Zip => {
            let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
                .map_err(|e| DmarcMailError::Corrupt(short(&e.to_string())))?;
            if archive.len() > limits.max_zip_entries {
                return Err(DmarcMailError::TooManyEntries(limits.max_zip_entries));
            }
            let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
            let index = names
                .iter()
                .position(|n| n.to_ascii_lowercase().ends_with(".xml"))
                .or_else(|| (names.len() == 1).then_some(0))
                .ok_or(DmarcMailError::NoReport)?;
            let file = archive
                .by_index(index)
                .map_err(|e| DmarcMailError::Corrupt(short(&e.to_string())))?;
            // What the archive declares is checked first; what it holds, as it is read.
            if usize::try_from(file.size()).map_or(true, |s| s > max) {
                return Err(DmarcMailError::Bomb(max));
            }
            capped(file, max)
        }
        Kind::Xml => {
            if bytes.len() > max {
                return Err(DmarcMailError::Bomb(max));
            }
            Ok(bytes.to_vec())
        }
    }
}

/// Reads at most `max` bytes: one more is a refusal.
fn capped(reader: impl Read, max: usize) -> Result<Vec<u8>, DmarcMailError> {
    let mut out = Vec::with_capacity(64 * 1024);
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DmarcMailError::Corrupt(short(&e.to_string())))?;
    if out.len() > max {
        return Err(DmarcMailError::Bomb(max));
    }
    Ok(out)
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(160).collect()
}
