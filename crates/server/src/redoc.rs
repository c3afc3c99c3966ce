//! ReDoc at `/redoc`, beside Swagger UI at `/docs`, over the same OpenAPI document: its
//! bundle is vendored (`crates/server/redoc/`, see its README) and embedded, so the
//! reference works offline.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const BUNDLE: &[u8] = include_bytes!("../redoc/redoc.standalone.js");

/// The bundle finds the `<redoc>` element itself: no inline script.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Email-Engine API · ReDoc</title>
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

/// ReDoc styles itself with injected <style> elements and parses in a worker: those two
/// are allowed here, on this page only; nothing comes from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/redoc",
            get(|| async {
                with_policy(
                    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response(),
                )
            }),
        )
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async {
                with_policy(
                    (
                        [
                            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                            (header::CACHE_CONTROL, "public, max-age=86400"),
                        ],
                        BUNDLE,
                    )
                        .into_response(),
                )
            }),
        )
}

/// The UI's headers, with ReDoc's own policy.
fn with_policy(mut response: Response) -> Response {
    let headers = response.headers_mut();
    crate::ui::security_headers(headers);
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    response
}
