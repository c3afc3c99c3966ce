//! Tenants (brands): the rules for their names, slugs and settings.

use serde_json::Value;

use crate::ValidationErrors;

/// A slug is what URLs, PowerMTA pool names and the seeds' `tenant` field use:
/// lower-case ASCII letters, digits and inner hyphens, 2 to 63 characters.
pub fn validate_slug(slug: &str, field: &str, errors: &mut ValidationErrors) {
    let ok_chars = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(2..=63).contains(&slug.len()) {
        errors.add(field, "must be 2 to 63 characters long");
    } else if !ok_chars || slug.starts_with('-') || slug.ends_with('-') {
        errors.add(
            field,
            "may hold only lower-case letters, digits and inner hyphens",
        );
    }
}

/// A display name: not blank, at most 200 characters.
pub fn validate_name(name: &str, field: &str, errors: &mut ValidationErrors) {
    if name.trim().is_empty() {
        errors.add(field, "must not be blank");
    } else if name.chars().count() > 200 {
        errors.add(field, "must be at most 200 characters long");
    }
}

/// A tenant's settings: a JSON object whose known parts must read as what they are for
/// (`delivery`: the delivery settings; `contacts.folding`: the address folding;
/// `contacts.smtp_probe`: a boolean). Checked when written, so that a malformed value is
/// refused by name instead of being replaced by defaults each time it is read.
pub fn check_settings(settings: &Value, field: &str, errors: &mut ValidationErrors) {
    let Some(object) = settings.as_object() else {
        errors.add(field, "must be a JSON object");
        return;
    };
    if let Some(delivery) = object.get("delivery")
        && let Err(e) = serde_json::from_value::<crate::delivery::TenantDelivery>(delivery.clone())
    {
        errors.add(&format!("{field}.delivery"), e.to_string());
    }
    if let Some(contacts) = object.get("contacts") {
        if !contacts.is_object() {
            errors.add(&format!("{field}.contacts"), "must be a JSON object");
            return;
        }
        if let Some(folding) = contacts.get("folding")
            && let Err(e) = serde_json::from_value::<crate::contacts::Folding>(folding.clone())
        {
            errors.add(&format!("{field}.contacts.folding"), e.to_string());
        }
        if contacts.get("smtp_probe").is_some_and(|v| !v.is_boolean()) {
            errors.add(
                &format!("{field}.contacts.smtp_probe"),
                "must be true or false",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug_ok(slug: &str) -> bool {
        let mut errors = ValidationErrors::new();
        validate_slug(slug, "slug", &mut errors);
        errors.is_empty()
    }

    #[test]
    fn slugs() {
        assert!(slug_ok("sos-expat"));
        assert!(slug_ok("client-1"));
        assert!(!slug_ok("a"));
        assert!(!slug_ok("Upper"));
        assert!(!slug_ok("-lead"));
        assert!(!slug_ok("trail-"));
        assert!(!slug_ok("sp ace"));
        assert!(!slug_ok(&"x".repeat(64)));
    }

    #[test]
    fn names() {
        let mut errors = ValidationErrors::new();
        validate_name("  ", "name", &mut errors);
        validate_name(&"n".repeat(201), "other", &mut errors);
        validate_name("SOS-Expat", "fine", &mut errors);
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "other"]);
    }

    #[test]
    fn settings_are_checked_by_part() {
        use serde_json::json;
        let check = |v: serde_json::Value| {
            let mut errors = ValidationErrors::new();
            check_settings(&v, "settings", &mut errors);
            errors.0.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert!(check(json!({})).is_empty());
        assert!(
            check(json!({"brand_color": "#123"})).is_empty(),
            "unknown parts are the tenant's own"
        );
        assert!(
            check(json!({"delivery": {"mode": "relay", "relay": "pmta"}, "contacts": {"smtp_probe": true}}))
                .is_empty()
        );
        assert_eq!(check(json!([1])), ["settings"]);
        assert_eq!(
            check(json!({"delivery": {"mode": "carrier-pigeon"}})),
            ["settings.delivery"]
        );
        assert_eq!(
            check(json!({"delivery": {"track_opens": "yes"}})),
            ["settings.delivery"]
        );
        assert_eq!(check(json!({"contacts": "none"})), ["settings.contacts"]);
        assert_eq!(
            check(json!({"contacts": {"smtp_probe": "on"}})),
            ["settings.contacts.smtp_probe"]
        );
        assert_eq!(
            check(json!({"contacts": {"folding": {"gmail_dots": 3}}})),
            ["settings.contacts.folding"]
        );
    }
}
