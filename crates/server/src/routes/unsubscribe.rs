//! The unsubscribe link's pages, in the contact's language (French or English): a GET
//! shows a confirmation button (a link scanner's GET never unsubscribes), the POST — the
//! button, or an RFC 8058 one-click POST from the mailbox provider — unsubscribes, once.
//! The pages cannot be framed (no clickjacking of the button) and send no referrer (the
//! URL holds the token).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ee_app::feedback::engagement;
use ee_app::queue::messages::Message;
use ee_core::tracking::Kind;

use crate::error::{ApiResult, ErrorBody};
use crate::read::{Read, Reading};
use crate::routes::tracking::message_of;
use crate::state::AppState;

/// The languages the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Fr,
    En,
}

struct Texts {
    lang: &'static str,
    confirm_title: &'static str,
    confirm_question: &'static str,
    button: &'static str,
    done_title: &'static str,
    done: &'static str,
    invalid_title: &'static str,
    invalid: &'static str,
}

const FR: Texts = Texts {
    lang: "fr",
    confirm_title: "Désinscription",
    confirm_question: "Ne plus recevoir d'e-mails à l'adresse",
    button: "Me désinscrire",
    done_title: "Désinscription confirmée",
    done: "Vous êtes désinscrit et ne recevrez plus ces e-mails.",
    invalid_title: "Lien invalide",
    invalid: "Ce lien de désinscription n'est pas valide. Utilisez le lien tel qu'il figure dans l'e-mail reçu.",
};

const EN: Texts = Texts {
    lang: "en",
    confirm_title: "Unsubscribe",
    confirm_question: "Stop e-mails to",
    button: "Unsubscribe",
    done_title: "Unsubscribed",
    done: "You are unsubscribed and will receive no more of these e-mails.",
    invalid_title: "Invalid link",
    invalid: "This unsubscribe link is not valid. Use the link exactly as it appears in the e-mail you received.",
};

impl Lang {
    fn texts(self) -> &'static Texts {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The contact's language if it is one of ours, else the browser's first of ours
    /// (`Accept-Language`, in the order given), else English.
    fn choose(contact: Option<&str>, headers: &HeaderMap) -> Self {
        contact
            .and_then(Self::from_code)
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|list| {
                        list.split(',')
                            .filter_map(|item| Self::from_code(item.split(';').next()?))
                            .next()
                    })
            })
            .unwrap_or(Lang::En)
    }
}

fn page(status: StatusCode, texts: &Texts, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em\">\
         <h1 style=\"font-size:1.4em\">{title}</h1>{body}</body></html>",
        texts.lang
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                     frame-ancestors 'none'; base-uri 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        html,
    )
        .into_response()
}

/// The message of a valid token and the language to answer in; an invalid token gets a
/// page saying so (in both languages: whose it is cannot be known).
async fn resolve(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
) -> Result<(Message, Lang), Response> {
    let Ok((message, _)) = message_of(state, token, Kind::Unsubscribe).await else {
        let (first, second) = match Lang::choose(None, headers) {
            Lang::Fr => (&FR, &EN),
            Lang::En => (&EN, &FR),
        };
        let body = format!(
            "<p>{}</p><p lang=\"{}\">{}</p>",
            first.invalid, second.lang, second.invalid
        );
        return Err(page(
            StatusCode::NOT_FOUND,
            first,
            first.invalid_title,
            &body,
        ));
    };
    let language = match &message.contact_id {
        Some(_) => {
            let mut read = Read::unscoped(state)
                .await
                .map_err(IntoResponse::into_response)?;
            engagement::contact_language(&mut read, &message).await
        }
        None => None,
    };
    Ok((message, Lang::choose(language.as_deref(), headers)))
}

#[utoipa::path(get, path = "/u/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 200, description = "a confirmation page", content_type = "text/html"),
        (status = 404, description = "the link is not valid (a page)", content_type = "text/html")))]
pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (message, lang) = match resolve(&state, &token, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let t = lang.texts();
    let mut shown = String::new();
    ee_core::template::escape_html_into(&message.to_email, &mut shown);
    page(
        StatusCode::OK,
        t,
        t.confirm_title,
        &format!(
            "<p>{} <b>{shown}</b> ?</p><form method=\"post\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">{}</button></form>",
            t.confirm_question, t.button
        ),
    )
}

/// Unsubscribes the address of the message: RFC 8058 one-click (the body
/// `List-Unsubscribe=One-Click`) or the confirmation form. Idempotent: a repeat changes
/// nothing and records nothing.
#[utoipa::path(post, path = "/u/{token}", tag = "tracking", params(("token" = String, Path)),
    responses((status = 200, description = "unsubscribed", content_type = "text/html"),
        (status = 404, description = "the link is not valid (a page)", content_type = "text/html"),
        (status = 500, body = ErrorBody)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (message, lang) = match resolve(&state, &token, &headers).await {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    ee_app::feedback::unsubscribe::by_link(&state.db, &message, state.now()).await?;
    let t = lang.texts();
    Ok(page(
        StatusCode::OK,
        t,
        t.done_title,
        &format!("<p>{}</p>", t.done),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contact_language_then_the_browser_then_english() {
        let mut headers = HeaderMap::new();
        assert_eq!(Lang::choose(Some("fr"), &headers), Lang::Fr);
        assert_eq!(Lang::choose(Some("en-GB"), &headers), Lang::En);
        assert_eq!(Lang::choose(Some("de"), &headers), Lang::En);
        assert_eq!(Lang::choose(None, &headers), Lang::En);
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-DE;q=1, fr-CA;q=0.8, en;q=0.5"),
        );
        assert_eq!(Lang::choose(Some("de"), &headers), Lang::Fr);
        assert_eq!(Lang::choose(Some("en"), &headers), Lang::En);
    }
}
