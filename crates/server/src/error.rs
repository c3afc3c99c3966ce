//! The one place where errors become HTTP responses:
//! `{"error": {"code": "…", "message": "…", "field"?: "…", "details"?: {…}}}`; `details`
//! is always an object (a validation failure's fields are in `details.errors`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_core::ValidationErrors;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `validation_failed`, `unauthorized`,
    /// `forbidden`, `not_found`, `conflict`, `payload_too_large`, `rate_limited`, `internal`.
    pub code: &'static str,
    pub message: String,
    /// The first invalid field, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// More about the error, always an object: `errors` (each invalid field and why) for
    /// `validation_failed`, the allowed next states of an illegal transition, a report.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub details: Option<serde_json::Value>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ValidationErrors::single(field, message).into()
    }

    /// A template's unknown variables and broken tags: 422 naming the first part at
    /// fault, with every problem and the standard variables in `details`.
    pub fn template(problems: &ee_core::template::Problems) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            ee_app::campaigns::rendering::describe(problems),
        );
        error.field = Some(
            problems
                .syntax
                .first()
                .map_or_else(|| "variables".to_owned(), |(part, _)| part.clone()),
        );
        error.details = Some(serde_json::json!({
            "unknown_variables": problems.unknown,
            "syntax": problems.syntax.iter().map(|(p, m)| serde_json::json!({"part": p, "error": m})).collect::<Vec<_>>(),
            "standard_variables": ee_core::template::STANDARD_VARIABLES,
        }));
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request id in the x-request-id header identifies it in the logs",
        )
    }
}

impl From<ee_app::AppError> for ApiError {
    fn from(e: ee_app::AppError) -> Self {
        match e {
            ee_app::AppError::Invalid(errors) | ee_app::AppError::OverLimit(errors) => {
                errors.into()
            }
            ee_app::AppError::NotFound(what) => Self::not_found(what),
            ee_app::AppError::Conflict(message) => Self::conflict(message),
            ee_app::AppError::Template(problems) => Self::template(&problems),
            ee_app::AppError::Store(e) => ee_app::StoreFailure::from(e).into(),
            ee_app::AppError::Infra(e) => e.into(),
            ee_app::AppError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Self::internal()
            }
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            errors.summary(),
        );
        error.field = errors.0.first().map(|e| e.field.clone());
        error.details = Some(serde_json::json!({ "errors": errors.0 }));
        error
    }
}

impl From<ee_app::StoreFailure> for ApiError {
    fn from(e: ee_app::StoreFailure) -> Self {
        use ee_app::StoreFailure;
        match e {
            StoreFailure::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", "not found"),
            StoreFailure::Conflict(what) => Self::conflict(what),
            StoreFailure::Unstorable(what) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", what)
            }
            StoreFailure::DiskFull(message) => {
                tracing::error!(error = %message, "a write was refused: the disk is full");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    message,
                )
            }
            StoreFailure::Database(message) => {
                tracing::error!(error = %message, "storage error");
                Self::internal()
            }
        }
    }
}

impl From<ee_app::queue::messages::QueueError> for ApiError {
    fn from(e: ee_app::queue::messages::QueueError) -> Self {
        use ee_app::queue::messages::QueueError;
        match e {
            QueueError::Invalid {
                field,
                message,
                details,
            } => {
                let mut error = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    format!("{field}: {message}"),
                );
                error.field = Some(field.to_owned());
                error.details = (!details.is_null()).then_some(details);
                error
            }
            QueueError::NotFound(what) => Self::not_found(what),
            QueueError::Store(e) => ee_app::StoreFailure::from(e).into(),
        }
    }
}

impl From<ee_app::infra::InfraError> for ApiError {
    fn from(e: ee_app::infra::InfraError) -> Self {
        use ee_app::infra::InfraError;
        match e {
            InfraError::Illegal(illegal) => {
                let allowed: Vec<&str> = illegal
                    .from
                    .allowed_next()
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                let mut error = Self::conflict(illegal.to_string());
                error.code = "illegal_transition";
                error.details = Some(
                    serde_json::json!({ "from": illegal.from, "to": illegal.to, "allowed": allowed }),
                );
                error
            }
            InfraError::Store(e) => ee_app::StoreFailure::from(e).into(),
            InfraError::Invalid(message) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            ),
        }
    }
}

impl From<ee_app::delivery::mailwizz::MwError> for ApiError {
    fn from(e: ee_app::delivery::mailwizz::MwError) -> Self {
        use ee_app::delivery::mailwizz::MailWizzError;
        use ee_app::delivery::mailwizz::MwError;
        match e {
            MwError::Store(e) => ee_app::StoreFailure::from(e).into(),
            MwError::Config(message) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            ),
            MwError::MailWizz(MailWizzError::Refused(message)) => {
                Self::invalid_field("api_url", message)
            }
            // What MailWizz said goes to the log, not to the caller: an upstream's text
            // is never relayed (it could be any service's answer).
            MwError::MailWizz(e) => {
                tracing::warn!(error = %e, "MailWizz call failed");
                let status = match e {
                    MailWizzError::NotFound(_) => StatusCode::NOT_FOUND,
                    _ => StatusCode::BAD_GATEWAY,
                };
                let code = if status == StatusCode::NOT_FOUND {
                    "not_found"
                } else {
                    "mailwizz"
                };
                Self::new(status, code, e.summary())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
                // One shape whatever set it: an object (a list goes under `errors`).
                details: self.details.filter(|d| !d.is_null()).map(|d| {
                    if d.is_object() {
                        d
                    } else {
                        serde_json::json!({ "errors": d })
                    }
                }),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
