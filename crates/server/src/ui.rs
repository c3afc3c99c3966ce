//! The admin UI: static files embedded in the binary (no CDN, works offline), served
//! under `/admin/` with a strict Content-Security-Policy. The UI is a client of the same
//! REST API as everyone else; it logs in through `POST /api/v1/auth/session`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use rust_embed::RustEmbed;
use serde::Deserialize;

use crate::auth::cookie;
use crate::auth::principal::from_access_token;
use crate::error::ApiError;
use crate::routes::templates::{PreviewIn, render_preview};
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// No inline script or style, nothing from elsewhere, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/") }))
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/preview", post(preview))
        .route("/admin/", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route(
            "/admin/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                asset(&path, &headers)
            }),
        )
}

fn asset(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::not_found("file").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let mut response = if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, file.metadata.mimetype().to_owned())],
            file.data.into_owned(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    // Revalidated on each load (cheap with the ETag): a new binary's UI shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(headers);
    response
}

/// What the template editor posts into its preview frame (a form, so the answer is a
/// document of its own with its own policy: an e-mail's inline styles apply there while
/// the admin page keeps its strict one).
#[derive(Debug, Deserialize)]
pub struct PreviewForm {
    pub id: String,
    pub csrf_token: String,
    pub subject: Option<String>,
    pub html: Option<String>,
    /// The visual editor's design, as JSON text.
    pub design: Option<String>,
    pub text: Option<String>,
    pub contact_id: Option<String>,
}

/// The policy of a preview: styles as the e-mail has them, images, nothing that runs
/// (`sandbox` without `allow-scripts`), framed by the admin page only.
const PREVIEW_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; \
    sandbox; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PreviewForm>,
) -> Response {
    let rendered = async {
        let token = cookie::session_token(&headers)
            .ok_or_else(|| ApiError::unauthorized("log in again"))?;
        let principal = from_access_token(&state, token).await?;
        let session = principal.session_id.as_deref().unwrap_or_default();
        if !state.jwt.csrf_matches(session, &form.csrf_token) {
            return Err(ApiError::forbidden("the CSRF token is missing or wrong"));
        }
        let draft = |v: Option<String>| v.filter(|s| !s.is_empty());
        let design = match draft(form.design) {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| ApiError::invalid_field("design", format!("is not JSON: {e}")))?,
            ),
            None => None,
        };
        render_preview(
            &state,
            &principal,
            &form.id,
            PreviewIn {
                contact_id: draft(form.contact_id),
                subject: draft(form.subject),
                html: draft(form.html),
                design,
                text: draft(form.text),
                ..PreviewIn::default()
            },
        )
        .await
    }
    .await;
    let (status, document) = match rendered {
        Ok(out) => {
            let dir = if out.rtl { "rtl" } else { "ltr" };
            // A template's own <html> merges into this one; its attributes win.
            let body = match out.html {
                Some(html) => html,
                None => format!("<pre>{}</pre>", escape(out.text.as_deref().unwrap_or(""))),
            };
            (
                StatusCode::OK,
                format!(
                    "<!doctype html><html lang=\"{}\" dir=\"{dir}\"><head><meta charset=\"utf-8\"><title>{}</title></head>{body}",
                    escape(&out.language),
                    escape(&out.subject)
                ),
            )
        }
        Err(error) => (
            error.status,
            format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"></head><body><p>{}</p></body></html>",
                escape(&error.message)
            ),
        ),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        document,
    )
        .into_response();
    let headers = response.headers_mut();
    security_headers(headers);
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(PREVIEW_CSP),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Text into HTML (the preview's error and subject; the body is the template's HTML).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The headers every UI page carries.
pub fn security_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    set(
        headers,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let index = Assets::get("index.html").expect("index.html is embedded");
        let index = String::from_utf8(index.data.into_owned()).unwrap();
        for reference in index
            .split(['"', '\''])
            .filter(|s| s.starts_with("/admin/") && s.len() > "/admin/".len())
        {
            let path = &reference["/admin/".len()..];
            assert!(
                Assets::get(path).is_some(),
                "{path} is referenced but not embedded"
            );
        }
    }

    fn text(path: &str) -> String {
        String::from_utf8(Assets::get(path).unwrap().data.into_owned()).unwrap()
    }

    fn keys(lang: &str) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&text(&format!("i18n/{lang}.json"))).unwrap()
    }

    #[test]
    fn both_languages_say_everything_the_code_asks_for() {
        let (en, fr) = (keys("en"), keys("fr"));
        assert_eq!(
            en.keys().collect::<Vec<_>>(),
            fr.keys().collect::<Vec<_>>(),
            "en.json and fr.json hold different keys"
        );
        for (key, value) in en.iter().chain(fr.iter()) {
            assert!(!value.trim().is_empty(), "{key} is empty");
        }
        let mut asked = 0;
        // Our own modules (a vendored library's calls are its own).
        for path in Assets::iter().filter(|p| p.ends_with(".js") && !p.starts_with("vendor/")) {
            let source = text(&path);
            // t('key') calls, and the menu's and routes' label and title keys.
            for marker in ["t('", "label: '", "title: '"] {
                for piece in source.split(marker).skip(1) {
                    let key: String = piece.chars().take_while(|c| *c != '\'').collect();
                    if !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        asked += 1;
                        assert!(
                            en.contains_key(&key),
                            "{path} asks for {key}, which en.json lacks"
                        );
                    }
                }
            }
        }
        assert!(asked > 300, "only {asked} keys found: the scan is broken");
        // Keys built from the API's enums: every value has its text.
        for (prefix, values) in [
            (
                "cs_",
                &[
                    "draft",
                    "scheduled",
                    "sending",
                    "paused",
                    "auto_paused",
                    "sent",
                    "cancelled",
                ][..],
            ),
            ("ck_", &["regular", "autoresponder", "ab_test"][..]),
            (
                "lang_",
                &["fr", "en", "es", "de", "pt", "ru", "zh", "hi", "ar"][..],
            ),
            ("role_", &["admin", "user"][..]),
            // Why a contact's address was judged as it was (`ee_core::contacts`).
            (
                "vr_",
                &[
                    "disposable_domain",
                    "free_provider",
                    "invalid_syntax",
                    "mx_lookup_failed",
                    "no_mx_record",
                    "null_mx",
                    "role_account",
                    "smtp_rejected",
                ][..],
            ),
            // The states and kinds badges show (`badge` in components.js).
            (
                "st_",
                &[
                    "queued",
                    "sending",
                    "sent",
                    "deferred",
                    "bounced",
                    "failed",
                    "suppressed",
                    "expired",
                    "draft",
                    "scheduled",
                    "paused",
                    "auto_paused",
                    "finished",
                    "cancelled",
                    "running",
                    "done",
                    "dead",
                    "pending",
                    "delivered",
                    "active",
                    "inactive",
                    "disabled",
                    "warming",
                    "resting",
                    "quarantined",
                    "retiring",
                    "blacklisted",
                    "clean",
                    "listed",
                    "unknown",
                    "ok",
                    "fail",
                    "valid",
                    "invalid",
                    "risky",
                    "unsubscribed",
                    "complained",
                    "hard",
                    "soft",
                    "complaint",
                    "block",
                ][..],
            ),
        ] {
            for value in values {
                assert!(
                    en.contains_key(&format!("{prefix}{value}")),
                    "no text for {prefix}{value}"
                );
            }
        }
    }
}
