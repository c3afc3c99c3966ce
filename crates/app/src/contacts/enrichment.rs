//! Enrichment at ingest (seed 001 §3.2, step 3), before a contact is routed and stored:
//! its country read into an ISO 3166-1 alpha-2 code (a contact whose country is none we
//! know is refused, with the reason), its language inferred from the country when it gives
//! none (and marked inferred), its category given by its source's category rules when it
//! has none. The rules are `ee_core::enrichment`'s.

use ee_core::contact_conditions::Facts;
use ee_core::enrichment::{self, CategoryRule};
use ee_store::sources::Source;
use serde_json::Value;

use super::RawContact;

/// The category rules of the source contacts come from: its configuration's
/// `category_rules`, checked when the source was created (none without a source).
pub fn rules_of(source: Option<&Source>) -> Vec<CategoryRule> {
    source
        .and_then(|s| serde_json::from_str::<Value>(&s.config).ok())
        .and_then(|config| enrichment::category_rules(&config).ok())
        .unwrap_or_default()
}

/// Enriches a contact in place; `Err` is the reason to refuse it.
pub fn enrich(
    raw: &mut RawContact,
    rules: &[CategoryRule],
    source_slug: &str,
) -> Result<(), String> {
    let field = |name| raw.fields.get(name).map(String::as_str);
    let located = enrichment::locate(field("country"), field("language"))
        .map_err(|why| format!("country: {why}"))?;
    match located.country {
        Some(code) => raw.fields.insert("country", code.to_owned()),
        None => raw.fields.remove("country"),
    };
    if located.language_inferred
        && let Some(language) = located.language
    {
        raw.fields.insert("language", language);
    }
    raw.language_inferred = located.language_inferred;
    let has_category = raw
        .fields
        .get("category")
        .is_some_and(|c| !c.trim().is_empty());
    if !has_category && !rules.is_empty() {
        let facts = Facts {
            category: None,
            country: raw.fields.get("country").map(String::as_str),
            language: raw.fields.get("language").map(String::as_str),
            source: source_slug,
            tag_slugs: Facts::slugs(&raw.tags),
        };
        if let Some(category) = enrichment::category_for(rules, &facts) {
            let category = category.to_owned();
            raw.fields.insert("category", category);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact(fields: &[(&'static str, &str)]) -> RawContact {
        let mut raw = RawContact {
            email: "a@x.test".into(),
            ..Default::default()
        };
        for (k, v) in fields {
            raw.fields.insert(k, (*v).to_owned());
        }
        raw
    }

    #[test]
    fn countries_become_codes_languages_are_inferred_categories_given() {
        let rules = enrichment::category_rules(&json!({"category_rules": [
            {"when": {"country": "DE"}, "category": "EXPAT_DE"},
        ]}))
        .unwrap();
        let mut a = contact(&[("country", "Allemagne")]);
        enrich(&mut a, &rules, "scraper").unwrap();
        assert_eq!(a.fields["country"], "DE");
        assert_eq!(a.fields["language"], "DE");
        assert_eq!(a.fields["category"], "EXPAT_DE");
        assert!(a.language_inferred);

        let mut b = contact(&[("country", "España"), ("language", "en"), ("category", "X")]);
        enrich(&mut b, &rules, "scraper").unwrap();
        assert_eq!(b.fields["country"], "ES");
        assert_eq!(b.fields["language"], "en", "kept as given");
        assert_eq!(b.fields["category"], "X", "a given category stays");
        assert!(!b.language_inferred);

        let mut c = contact(&[("country", " ")]);
        enrich(&mut c, &rules, "scraper").unwrap();
        assert!(!c.fields.contains_key("country") && !c.fields.contains_key("language"));

        let mut d = contact(&[("country", "Atlantis")]);
        let why = enrich(&mut d, &rules, "scraper").unwrap_err();
        assert!(
            why.starts_with("country: \"Atlantis\" is not a country"),
            "{why}"
        );
    }
}
