//! Conditions on an incoming contact, as routing rules and a source's category rules
//! write them: a JSON object whose every key must hold, each a string — `category`,
//! `tag` (the tag or one below it: `SECTOR:LEGAL` holds for `SECTOR:LEGAL/NOTARY`),
//! `country` (a code or a name, compared as codes), `language`, `source` (the source's
//! slug); letters compared without regard to case.

use serde_json::{Map, Value};

/// The keys a condition may have.
pub const KEYS: [&str; 5] = ["category", "tag", "country", "language", "source"];

/// What conditions are tested against: a contact's fields as they will be stored.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub category: Option<&'a str>,
    pub country: Option<&'a str>,
    pub language: Option<&'a str>,
    pub source: &'a str,
    /// The slugs of the contact's tags (`sector:legal/notary`), unreadable ones left out.
    pub tag_slugs: Vec<String>,
}

impl<'a> Facts<'a> {
    /// The slugs of tags as a contact writes them, those that do not read as tags left out.
    pub fn slugs(tags: &[String]) -> Vec<String> {
        tags.iter()
            .filter_map(|t| crate::tags::parse(t).ok())
            .map(|t| t.slug())
            .collect()
    }
}

/// Whether every condition holds (an empty object holds for every contact).
pub fn hold(conditions: &Map<String, Value>, facts: &Facts<'_>) -> bool {
    let eq = |have: Option<&str>, want: &str| have.is_some_and(|h| h.eq_ignore_ascii_case(want));
    conditions.iter().all(|(key, want)| {
        let Some(want) = want.as_str() else {
            return false;
        };
        match key.as_str() {
            "category" => eq(facts.category, want),
            // A rule written with a name (`France`) holds for the code stored (`FR`).
            "country" => match crate::country::parse(want) {
                Ok(code) => eq(facts.country, code),
                Err(_) => eq(facts.country, want),
            },
            "language" => eq(facts.language, want),
            "source" => want.eq_ignore_ascii_case(facts.source),
            "tag" => crate::tags::parse(want).is_ok_and(|want| {
                let slug = want.slug();
                facts.tag_slugs.iter().any(|s| {
                    *s == slug || s.strip_prefix(&slug).is_some_and(|r| r.starts_with('/'))
                })
            }),
            _ => false,
        }
    })
}

/// Checks conditions as written: an object (non-empty when `empty_ok` is false) whose keys
/// are among `keys`, each a string. The problem, in words, when not.
pub fn check(conditions: &Value, keys: &[&str], empty_ok: bool) -> Result<(), String> {
    let object = conditions
        .as_object()
        .filter(|c| empty_ok || !c.is_empty())
        .ok_or_else(|| {
            if empty_ok {
                "must be an object".to_owned()
            } else {
                "must be a non-empty object".to_owned()
            }
        })?;
    for (key, value) in object {
        if !keys.contains(&key.as_str()) || !value.is_string() {
            return Err(format!(
                "{key}: conditions are {}, each a string",
                keys.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn when(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_condition_must_hold() {
        let facts = Facts {
            category: Some("LAWYER"),
            country: Some("FR"),
            language: Some("FR"),
            source: "scraper-pro",
            tag_slugs: Facts::slugs(&["SECTOR:LEGAL/NOTARY".into(), "not a tag!".into()]),
        };
        assert!(hold(&when(json!({})), &facts));
        assert!(hold(&when(json!({"category": "lawyer"})), &facts));
        assert!(hold(
            &when(json!({"tag": "SECTOR:LEGAL", "country": "FR"})),
            &facts
        ));
        assert!(
            hold(&when(json!({"country": "France"})), &facts),
            "a name reads as the code"
        );
        assert!(hold(
            &when(json!({"source": "Scraper-Pro", "language": "fr"})),
            &facts
        ));
        assert!(
            !hold(&when(json!({"tag": "SECTOR:LEG"})), &facts),
            "a prefix is not a parent"
        );
        assert!(!hold(
            &when(json!({"tag": "SECTOR:LEGAL", "country": "DE"})),
            &facts
        ));
        assert!(
            !hold(&when(json!({"city": "Paris"})), &facts),
            "unknown keys never hold"
        );
        assert!(!hold(&when(json!({"country": 33})), &facts));
        let bare = Facts::default();
        assert!(!hold(&when(json!({"category": "LAWYER"})), &bare));
    }

    #[test]
    fn checks_name_what_is_wrong() {
        assert!(check(&json!({"tag": "A:B"}), &KEYS, false).is_ok());
        assert!(check(&json!({}), &KEYS, true).is_ok());
        assert_eq!(
            check(&json!({}), &KEYS, false).unwrap_err(),
            "must be a non-empty object"
        );
        assert_eq!(
            check(&json!([]), &KEYS, true).unwrap_err(),
            "must be an object"
        );
        assert!(
            check(&json!({"city": "x"}), &KEYS, false)
                .unwrap_err()
                .starts_with("city: conditions are category, tag")
        );
        assert!(check(&json!({"tag": 1}), &KEYS, false).is_err());
    }
}
