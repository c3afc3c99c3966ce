//! What kind of sender a data source is: one that brings contacts, or one that reports
//! feedback (bounces, complaints, accounting records).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    ScraperPro,
    BacklinkEngine,
    Csv,
    Api,
    Powermta,
    Mailwizz,
}

crate::names::names!(SourceKind {
    ScraperPro => "scraper_pro",
    BacklinkEngine => "backlink_engine",
    Csv => "csv",
    Api => "api",
    Powermta => "powermta",
    Mailwizz => "mailwizz",
});

impl SourceKind {
    /// The kind of a source created on first use, from the slug its sender names: the
    /// two scrapers' usual slugs, otherwise a plain API client.
    pub fn of_first_use(slug: &str) -> Self {
        if slug.starts_with("scraper-pro") {
            Self::ScraperPro
        } else if slug.starts_with("backlink") {
            Self::BacklinkEngine
        } else {
            Self::Api
        }
    }

    /// Whether the source reports feedback rather than bringing contacts.
    pub fn reports_feedback(self) -> bool {
        matches!(self, Self::Powermta | Self::Mailwizz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_first_use_reads_the_slug() {
        for k in SourceKind::ALL {
            assert_eq!(SourceKind::parse(k.as_str()), Some(*k));
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(SourceKind::parse("ftp"), None);
        assert_eq!(
            SourceKind::of_first_use("scraper-pro-eu"),
            SourceKind::ScraperPro
        );
        assert_eq!(
            SourceKind::of_first_use("backlink-engine"),
            SourceKind::BacklinkEngine
        );
        assert_eq!(SourceKind::of_first_use("crm"), SourceKind::Api);
        assert!(SourceKind::Powermta.reports_feedback());
        assert!(!SourceKind::Csv.reports_feedback());
    }
}
