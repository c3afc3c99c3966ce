//! ReDoc at `/redoc`, beside Swagger UI at `/docs`, over the same OpenAPI document: its
//! bundle is vendored (`crates/server/redoc/`, see its README) and embedded, so the
//! reference works offline.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const VENDORED: &[u8] = include_bytes!("../redoc/redoc.standalone.js");

/// The one address the bundle would fetch from elsewhere: Redocly's logo beside "API
/// docs by Redocly", which this page's policy refuses (a console error on every visit).
const CDN_LOGO: &str = "https://cdn.redoc.ly/redoc/logo-mini.svg";
/// An empty image in its place: nothing is fetched, nothing refused.
const NO_LOGO: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";

/// The vendored bundle with the logo's address replaced, made once.
fn bundle() -> &'static [u8] {
    static BUNDLE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let (from, to) = (CDN_LOGO.as_bytes(), NO_LOGO.as_bytes());
        let mut out = Vec::with_capacity(VENDORED.len());
        let mut rest = VENDORED;
        while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(to);
            rest = &rest[at + from.len()..];
        }
        out.extend_from_slice(rest);
        out
    });
    &BUNDLE
}

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
                        bundle(),
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
