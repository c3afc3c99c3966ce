//! Extractors whose rejections are our JSON errors, naming the problem.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Malformed JSON → 400; a field of the wrong type or a missing field →
/// 422 naming it; a body over the limit → 413. The content type is not checked: the
/// seeds' clients post JSON with `curl -d`, which labels it as a form.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The body size a route accepts, put in the request's extensions by the router's
/// layers so that a 413 can say what it is.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A raw body; over the route's limit → 413 stating the limit.
pub struct ApiBytes(pub Bytes);

impl<S> FromRequest<S> for ApiBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                let said = limit.map_or_else(
                    || "the request body is larger than this route accepts".to_owned(),
                    |BodyLimit(n)| {
                        format!(
                            "the request body is larger than this route accepts: at most {n} bytes ({:.0} MiB)",
                            n as f64 / 1_048_576.0
                        )
                    },
                );
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", said)
            } else {
                ApiError::bad_request(format!("could not read the request body: {rejection}"))
            }
        })?;
        Ok(ApiBytes(bytes))
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; a JSON object was expected",
        ));
    }
    // Parsed once into a tree (malformed JSON, trailing characters included → 400), its
    // texts held to their limits, then read into `T` with the path of any bad field.
    let tree: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_error(String::new(), e))?;
    check_lengths(&tree, &mut String::new(), None, false)?;
    serde_path_to_error::deserialize(tree).map_err(|error| {
        let path = error.path().to_string();
        json_error(path, error.into_inner())
    })
}

/// Refuses a text longer than its field's limit (`ee_core::limits`), naming the field's
/// path. Inside a `contacts` batch only the default limit applies: a contact's own fields
/// are checked one by one by the ingestion, which refuses that contact alone.
fn check_lengths(
    value: &serde_json::Value,
    path: &mut String,
    name: Option<&str>,
    in_batch: bool,
) -> Result<(), ApiError> {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            let max = match name {
                Some(field) if !in_batch => ee_core::limits::max_chars(field),
                _ => ee_core::limits::DEFAULT,
            };
            // Bytes first: a string within the limit in bytes is within it in characters.
            if text.len() > max {
                let chars = text.chars().count();
                if chars > max {
                    let field = if path.is_empty() {
                        "body"
                    } else {
                        path.as_str()
                    };
                    return Err(ApiError::invalid_field(
                        field,
                        format!("is {chars} characters long; at most {max} are accepted"),
                    ));
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            let batch = in_batch || name == Some("contacts");
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_lengths(item, path, name, batch)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_lengths(item, path, Some(key), in_batch)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn json_error(path: String, inner: serde_json::Error) -> ApiError {
    match inner.classify() {
        serde_json::error::Category::Data => {
            let message = inner.to_string();
            let field = if path == "." || path.is_empty() {
                missing_field_name(&message).unwrap_or_else(|| "body".to_owned())
            } else {
                path
            };
            ApiError::invalid_field(&field, strip_position(&message))
        }
        _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
    }
}

/// An optional JSON body: empty means `T::default()`.
pub fn parse_optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// serde reports a missing field at the parent's path, naming it in the message.
fn missing_field_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    Some(rest[..rest.find('`')?].to_owned())
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters. A value of the wrong type (`limit=abc`) or an unknown parameter is a
/// 422 naming the parameter: the query is read with `serde_path_to_error` to know which.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.inner().to_string();
                let field = if path == "." || path.is_empty() {
                    missing_field_name(&message).unwrap_or_else(|| "query".to_owned())
                } else {
                    path
                };
                let message = match message.as_str() {
                    "invalid digit found in string" | "cannot parse integer from empty string" => {
                        "must be a whole number".to_owned()
                    }
                    "number too large to fit in target type"
                    | "number too small to fit in target type" => "is out of range".to_owned(),
                    _ => message,
                };
                ApiError::invalid_field(&field, message)
            })
    }
}

/// Where a request came from, for the audit log and rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestMeta {
    /// Where the request came from, as the use-cases and the audit log take it.
    pub fn origin(&self) -> ee_app::audit::Origin {
        ee_app::audit::Origin {
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect::<String>())
        };
        Ok(Self {
            ip: client_ip(parts).map(|ip| ip.to_string()),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
        })
    }
}

/// The client's address, as `resolve_client` found it (the peer, or behind a trusted
/// proxy the address it forwarded); the peer's when the request did not pass through it.
pub fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|ClientAddr(ip)| *ip)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
        })
}

/// The client's address, set once per request for every reader of it (rate limits, the
/// login throttle, the audit log, tracking).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Finds the client of a request: the peer, or from a trusted proxy the right-most
/// untrusted `X-Forwarded-For` entry.
pub async fn resolve_client(
    axum::extract::State(trusted): axum::extract::State<
        std::sync::Arc<ee_core::client_address::TrustedProxies>,
    >,
    mut request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let client = trusted.client(peer, forwarded);
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn err(json: &str) -> ApiError {
        match parse_json::<Body>(json.as_bytes()) {
            Ok(body) => panic!("accepted {body:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn classifies_json_errors() {
        assert_eq!(err("{\"name\": ").status, StatusCode::BAD_REQUEST);
        assert_eq!(err("").status, StatusCode::BAD_REQUEST);
        assert_eq!(
            err(r#"{"name": "x"} trailing"#).status,
            StatusCode::BAD_REQUEST
        );
        let wrong_type = err(r#"{"name": 5}"#);
        assert_eq!(
            (wrong_type.status, wrong_type.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        let nested = err(r#"{"name": "x", "inner": {"count": "many"}}"#);
        assert_eq!(nested.field.as_deref(), Some("inner.count"));
        let missing = err("{}");
        assert_eq!(
            (missing.status, missing.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
        );
        assert!(!missing.message.contains("line"), "{}", missing.message);
        assert!(parse_json::<Body>(br#"{"name": "ok"}"#).is_ok());
    }
}
