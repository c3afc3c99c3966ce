//! Contact enrichment at ingest (seed 001 §3.2, step 3): the country read into its ISO
//! 3166-1 alpha-2 code (`country::parse`), the language inferred from the country when
//! the contact gives none (and marked inferred), and the category from the source's
//! category rules when the contact has none.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contact_conditions::{self, Facts};
use crate::country::{self, CountryError};

/// The language of a country's contacts, one of the seeds' nine (ISO 639-1, lower
/// case), for a contact that gives none. The table names the countries where one of the
/// nine is the first language of most people, or the first official one among the nine
/// (Belgium and Switzerland: the one most spoken among the nine — French in Belgium,
/// German in Switzerland); every other country reads as English, the templates'
/// fallback language.
const COUNTRY_LANGUAGES: [(&str, &[&str]); 8] = [
    (
        "fr",
        &[
            "FR", "BE", "LU", "MC", "SN", "CI", "ML", "BF", "NE", "GN", "BJ", "TG", "CM", "CD",
            "CG", "GA", "MG", "HT", "TD", "CF", "BI", "RW", "DJ", "KM", "PF", "NC", "RE", "GP",
            "MQ", "GF", "YT", "PM", "WF", "BL", "MF",
        ],
    ),
    ("de", &["DE", "AT", "CH", "LI"]),
    (
        "es",
        &[
            "ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY",
            "SV", "NI", "CR", "PA", "UY", "GQ", "PR",
        ],
    ),
    ("pt", &["PT", "BR", "AO", "MZ", "CV", "GW", "ST", "TL"]),
    ("ru", &["RU", "BY", "KZ", "KG"]),
    ("zh", &["CN", "TW", "HK", "MO"]),
    ("hi", &["IN"]),
    (
        "ar",
        &[
            "SA", "AE", "EG", "MA", "DZ", "TN", "LY", "IQ", "JO", "LB", "SY", "KW", "QA", "BH",
            "OM", "YE", "SD", "PS", "MR",
        ],
    ),
];

/// The language inferred for a country's contacts (ISO 639-1, lower case): see
/// `COUNTRY_LANGUAGES`; English for any other country.
pub fn country_language(code: &str) -> &'static str {
    COUNTRY_LANGUAGES
        .iter()
        .find(|(_, countries)| countries.iter().any(|c| c.eq_ignore_ascii_case(code)))
        .map_or(crate::template::DEFAULT_LANGUAGE, |(language, _)| language)
}

/// A contact's country and language after enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The alpha-2 code, when the contact names a country.
    pub country: Option<&'static str>,
    /// The language as given (upper case, as stored), or inferred from the country.
    pub language: Option<String>,
    /// Whether the language was inferred rather than given.
    pub language_inferred: bool,
}

/// Reads the country (refused when it is none we know) and infers the language from it
/// when none is given. A given language is kept as given (upper case, as stored); an
/// inferred one is written the same way (`FR`).
pub fn locate(country: Option<&str>, language: Option<&str>) -> Result<Located, CountryError> {
    let country = match country.map(str::trim).filter(|c| !c.is_empty()) {
        Some(text) => Some(country::parse(text)?),
        None => None,
    };
    let given = language
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_ascii_uppercase);
    Ok(match given {
        Some(language) => Located {
            country,
            language: Some(language),
            language_inferred: false,
        },
        None => Located {
            country,
            language: country.map(|c| country_language(c).to_ascii_uppercase()),
            language_inferred: country.is_some(),
        },
    })
}

/// At most this many category rules per source.
pub const MAX_CATEGORY_RULES: usize = 100;

/// A source's rule giving a category to its contacts that have none: the first rule whose
/// conditions (`when`, as routing rules write them, without `category`) all hold gives
/// its category; a rule without conditions holds for every contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    #[serde(default)]
    pub when: Map<String, Value>,
    pub category: String,
}

/// The keys a category rule's `when` may have.
pub const CATEGORY_RULE_KEYS: [&str; 4] = ["tag", "country", "language", "source"];

/// A source's category rules, from its configuration's `category_rules` (none when
/// absent); the problem in words when they are not a list of rules.
pub fn category_rules(config: &Value) -> Result<Vec<CategoryRule>, String> {
    let Some(list) = config.get("category_rules") else {
        return Ok(Vec::new());
    };
    let items = list
        .as_array()
        .ok_or("must be a list of {when, category}")?;
    if items.len() > MAX_CATEGORY_RULES {
        return Err(format!("at most {MAX_CATEGORY_RULES} rules"));
    }
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let rule: CategoryRule = serde_json::from_value(item.clone())
            .map_err(|e| format!("[{i}]: must be {{when, category}} ({e})"))?;
        contact_conditions::check(&Value::Object(rule.when.clone()), &CATEGORY_RULE_KEYS, true)
            .map_err(|e| format!("[{i}].when: {e}"))?;
        let length = rule.category.trim().chars().count();
        if length == 0 || length > crate::contacts::MAX_FIELD_CHARS {
            return Err(format!(
                "[{i}].category: must be 1 to {} characters",
                crate::contacts::MAX_FIELD_CHARS
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The category the first rule that holds gives (trimmed), if any.
pub fn category_for<'r>(rules: &'r [CategoryRule], facts: &Facts<'_>) -> Option<&'r str> {
    rules
        .iter()
        .find(|rule| contact_conditions::hold(&rule.when, facts))
        .map(|rule| rule.category.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_language_follows_the_country_else_english() {
        for (country, language) in [
            ("FR", "fr"),
            ("DE", "de"),
            ("ES", "es"),
            ("MX", "es"),
            ("AR", "es"),
            ("BR", "pt"),
            ("PT", "pt"),
            ("RU", "ru"),
            ("CN", "zh"),
            ("TW", "zh"),
            ("IN", "hi"),
            ("SA", "ar"),
            ("EG", "ar"),
            ("AE", "ar"),
            ("MA", "ar"),
            ("US", "en"),
            ("GB", "en"),
            ("JP", "en"),
            ("fr", "fr"),
        ] {
            assert_eq!(country_language(country), language, "{country}");
        }
        // Every language of the table is one of the nine, every country a real code.
        for (language, countries) in COUNTRY_LANGUAGES {
            assert_eq!(crate::template::language(language), Some(language));
            for c in countries {
                assert!(country::is_code(c), "{c}");
            }
        }
    }

    #[test]
    fn a_given_language_is_kept_an_absent_one_inferred() {
        assert_eq!(
            locate(Some("Allemagne"), None),
            Ok(Located {
                country: Some("DE"),
                language: Some("DE".into()),
                language_inferred: true
            })
        );
        assert_eq!(
            locate(Some("Deutschland"), Some("en")),
            Ok(Located {
                country: Some("DE"),
                language: Some("EN".into()),
                language_inferred: false
            })
        );
        assert_eq!(
            locate(None, Some(" fr ")),
            Ok(Located {
                country: None,
                language: Some("FR".into()),
                language_inferred: false
            })
        );
        assert_eq!(
            locate(Some("  "), Some("")),
            Ok(Located {
                country: None,
                language: None,
                language_inferred: false
            })
        );
        assert_eq!(
            locate(Some("Japon"), None).unwrap().language.as_deref(),
            Some("EN")
        );
        assert_eq!(
            locate(Some("Atlantis"), Some("fr")),
            Err(CountryError::Unknown("Atlantis".into()))
        );
    }

    #[test]
    fn category_rules_read_checked_and_applied_in_order() {
        let config = json!({"route": true, "category_rules": [
            {"when": {"tag": "SECTOR:LEGAL"}, "category": "LAWYER"},
            {"when": {"country": "Allemagne"}, "category": "EXPAT_DE"},
            {"category": " GENERAL "},
        ]});
        let rules = category_rules(&config).unwrap();
        assert_eq!(rules.len(), 3);
        let legal = Facts {
            tag_slugs: Facts::slugs(&["SECTOR:LEGAL/NOTARY".into()]),
            country: Some("DE"),
            ..Facts::default()
        };
        assert_eq!(category_for(&rules, &legal), Some("LAWYER"));
        let german = Facts {
            country: Some("DE"),
            ..Facts::default()
        };
        assert_eq!(category_for(&rules, &german), Some("EXPAT_DE"));
        assert_eq!(category_for(&rules, &Facts::default()), Some("GENERAL"));
        assert_eq!(category_for(&rules[..2], &Facts::default()), None);
        assert_eq!(category_rules(&json!({})).unwrap(), Vec::new());

        for (bad, why) in [
            (json!({"category_rules": {}}), "must be a list"),
            (
                json!({"category_rules": [{"when": {}}]}),
                "[0]: must be {when, category}",
            ),
            (
                json!({"category_rules": [{"category": ""}]}),
                "[0].category",
            ),
            (
                json!({"category_rules": [{"when": {"category": "X"}, "category": "Y"}]}),
                "[0].when: category: conditions are tag",
            ),
            (
                json!({"category_rules": [{"category": "Y", "then": 1}]}),
                "[0]: must be",
            ),
        ] {
            let got = category_rules(&bad).unwrap_err();
            assert!(got.starts_with(why), "{got}");
        }
        let many: Vec<Value> = (0..=MAX_CATEGORY_RULES)
            .map(|_| json!({"category": "X"}))
            .collect();
        assert!(category_rules(&json!({ "category_rules": many })).is_err());
    }
}
