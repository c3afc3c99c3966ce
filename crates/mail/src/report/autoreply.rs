//! Auto-replies (RFC 3834): vacation and out-of-office answers, auto-responders and
//! challenges to prove one is human. They say the message arrived; a bounce reader that
//! took them for failures would suppress good addresses.

use mail_parser::Message;

use super::dsn::field;

/// Subjects that auto-replies start with or hold, in the languages our tenants' contacts
/// write in.
const SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "auto response",
    "autoresponse",
    "auto-response",
    "vacation",
    "on leave",
    "away from",
    "réponse automatique",
    "reponse automatique",
    "absence",
    "abwesenheit",
    "automatische antwort",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "resposta automática",
    "risposta automatica",
    "автоответ",
    "автоматический ответ",
    "自动回复",
    "自動回覆",
    "please confirm your message",
    "verify your email",
    "challenge",
    "thank you for your e-mail",
    "thank you for your email",
    "thank you for your message",
    "thanks for your email",
    "thanks for your message",
    "automatyczna odpowied",
    "autosvar",
    "automaattinen vastaus",
    "automatisch antwoord",
    "afwezig",
    "ausser haus",
    "außer haus",
    "nicht im büro",
    "en congés",
    "hors du bureau",
    "boxbe",
];

/// Sentences of challenge-response systems (the sender must prove it is human).
const CHALLENGES: &[&str] = &[
    "added to the recipient's allowed list",
    "to ensure delivery of your email",
    "please verify that you are",
    "confirm that you are a real person",
    "prove that you are human",
    "this account is protected by",
    "awaiting your verification",
    "your email is being held",
];

/// Headers only auto-responders and challenge systems write.
const HEADERS: &[&str] = &[
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress-Reply",
    "X-Bluebottle-Request",
    "X-Boxbe-Status",
    "X-Vacation",
];

/// Senders of bounces: a message from them is never an auto-reply.
const BOUNCERS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail delivery",
    "mail administrator",
];

/// Why a message is an auto-reply, when it is one.
pub(super) fn detect(message: &Message<'_>) -> Option<String> {
    let from = super::sender(message);
    // A null sender (`From: <>`) is a bounce, whatever it calls itself.
    if BOUNCERS.iter().any(|b| from.contains(b)) || !from.contains('@') {
        return None;
    }
    let subject = message.subject().unwrap_or("").to_lowercase();
    let failure_subject = [
        "undeliver",
        "delivery status",
        "failure",
        "returned mail",
        "delivery failed",
    ]
    .iter()
    .any(|s| subject.contains(s));
    if failure_subject {
        return None;
    }
    if let Some(value) = field(message, "Auto-Submitted") {
        let value = value.to_ascii_lowercase();
        if value.starts_with("auto-replied") {
            return Some(format!("an auto-reply (Auto-Submitted: {value})"));
        }
    }
    for name in HEADERS {
        if field(message, name).is_some() {
            return Some(format!("an auto-reply ({name})"));
        }
    }
    if let Some(p) = field(message, "Precedence")
        && p.eq_ignore_ascii_case("auto_reply")
    {
        return Some("an auto-reply (Precedence: auto_reply)".into());
    }
    if let Some(s) = SUBJECTS.iter().find(|s| subject.contains(*s)) {
        return Some(format!("an auto-reply (its subject says \"{s}\")"));
    }
    let body = message.body_text(0).unwrap_or_default().to_lowercase();
    if let Some(c) = CHALLENGES.iter().find(|c| body.contains(*c)) {
        return Some(format!(
            "a challenge to prove the sender is human (\"{c}\")"
        ));
    }
    None
}
