//! Small helpers every use-case uses to read its input and refuse it field by field.

use ee_core::ValidationErrors;

use crate::error::AppError;

/// A 422 naming `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
    ValidationErrors::single(field, message).into()
}

/// A text the request must give, trimmed and not blank.
pub fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, AppError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(field, "is required"))
}
