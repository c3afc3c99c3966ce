//! Tenants (brands): the rules for their names and slugs.

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
}
