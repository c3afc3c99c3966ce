//! Which software or provider wrote a bounce, from the marks each leaves: its sender,
//! subject, own headers and stock sentences. Shown with each reading (so an operator can
//! see what a decision rests on) and counted per family in the corpus test.

use mail_parser::Message;

macro_rules! families {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// The writer of a report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum Family {
            $($variant),+
        }

        impl Family {
            pub const ALL: &'static [Family] = &[$(Family::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Family::$variant => $name),+
                }
            }

            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|f| f.as_str() == name)
            }
        }
    };
}

families! {
    Postfix => "postfix",
    Exim => "exim",
    Sendmail => "sendmail",
    Qmail => "qmail",
    Courier => "courier",
    Exchange => "exchange",
    Office365 => "office365",
    OutlookCom => "outlook-com",
    Gmail => "gmail",
    Yahoo => "yahoo",
    Aol => "aol",
    Icloud => "icloud",
    AmazonSes => "amazon-ses",
    Zoho => "zoho",
    Gmx => "gmx",
    MailRu => "mail-ru",
    Yandex => "yandex",
    Domino => "domino",
    MessageLabs => "messagelabs",
    Barracuda => "barracuda",
    Mimecast => "mimecast",
    IronPort => "ironport",
    GroupWise => "groupwise",
    MDaemon => "mdaemon",
    Imail => "imail",
    Smtp32 => "smtp32",
    Kerio => "kerio",
    Zimbra => "zimbra",
    Arf => "arf",
    Generic => "generic",
}

/// Where a mark is looked for.
#[derive(Clone, Copy)]
enum At {
    /// The bounce's `From` address or name.
    From,
    Subject,
    /// A header's name (its presence).
    Header,
    /// The bounce's text.
    Body,
}

/// Marks, the most specific first: the first one found names the family.
const MARKS: &[(Family, At, &str)] = &[
    (Family::AmazonSes, At::Header, "x-ses-outgoing"),
    (Family::AmazonSes, At::Body, "amazonses.com"),
    (Family::Gmail, At::From, "mailer-daemon@googlemail.com"),
    (Family::Gmail, At::From, "mailer-daemon@google.com"),
    (
        Family::Gmail,
        At::Body,
        "delivery to the following recipient failed permanently",
    ),
    (
        Family::Gmail,
        At::Body,
        "the email account that you tried to reach",
    ),
    (
        Family::Office365,
        At::Header,
        "x-ms-exchange-crosstenant-id",
    ),
    (Family::Office365, At::Body, "protection.outlook.com"),
    (Family::OutlookCom, At::From, "postmaster@outlook.com"),
    (Family::OutlookCom, At::From, "postmaster@hotmail.com"),
    (Family::OutlookCom, At::From, "postmaster@live.com"),
    (Family::Exchange, At::Header, "x-ms-exchange-message-is-ndr"),
    (Family::Exchange, At::Header, "x-ms-tnef-correlator"),
    (
        Family::Exchange,
        At::Body,
        "your message did not reach some or all of the intended recipients",
    ),
    (
        Family::Exchange,
        At::Body,
        "the following recipient(s) could not be reached",
    ),
    (
        Family::Exchange,
        At::Body,
        "delivery has failed to these recipients or groups",
    ),
    (Family::Exchange, At::Body, "#smtp#"),
    (Family::Yahoo, At::From, "mailer-daemon@yahoo"),
    (
        Family::Yahoo,
        At::Body,
        "sorry, we were unable to deliver your message to the following address",
    ),
    (Family::Aol, At::From, "mailer-daemon@aol.com"),
    (Family::Icloud, At::From, "icloud.com"),
    (Family::Icloud, At::From, "me.com"),
    (Family::Zoho, At::From, "zoho.com"),
    (Family::Gmx, At::From, "gmx."),
    (Family::Gmx, At::From, "web.de"),
    (Family::MailRu, At::From, "mail.ru"),
    (Family::Yandex, At::From, "yandex."),
    (Family::MessageLabs, At::Body, "messagelabs"),
    (Family::Mimecast, At::Body, "mimecast"),
    (Family::Barracuda, At::Body, "barracuda"),
    (Family::IronPort, At::Body, "ironport"),
    (Family::Domino, At::Body, "not listed in domino directory"),
    (Family::Domino, At::Body, "lotus domino"),
    (
        Family::Domino,
        At::Body,
        "not listed in public name & address book",
    ),
    (Family::GroupWise, At::Body, "groupwise"),
    (Family::GroupWise, At::Header, "x-mailer-groupwise"),
    (Family::MDaemon, At::Header, "x-mdaemon-deliver-to"),
    (Family::MDaemon, At::Body, "mdaemon"),
    (Family::Imail, At::Header, "x-mailer-imail"),
    (Family::Imail, At::Body, "imail"),
    (Family::Smtp32, At::Body, "smtp32"),
    (Family::Kerio, At::Body, "kerio"),
    (Family::Zimbra, At::Body, "zimbra"),
    (Family::Qmail, At::Body, "this is the qmail-send program"),
    (Family::Qmail, At::Body, "qmail"),
    (Family::Courier, At::Body, "courier mail server"),
    (
        Family::Courier,
        At::Body,
        "this is a delivery status notification from",
    ),
    (Family::Postfix, At::Body, "this is the mail system at host"),
    (Family::Postfix, At::Body, "the postfix program"),
    (
        Family::Postfix,
        At::Subject,
        "undelivered mail returned to sender",
    ),
    (Family::Exim, At::Header, "x-failed-recipients"),
    (
        Family::Exim,
        At::Body,
        "this message was created automatically by mail delivery software",
    ),
    (Family::Exim, At::Subject, "mail delivery failed"),
    (
        Family::Sendmail,
        At::Body,
        "the original message was received at",
    ),
    (
        Family::Sendmail,
        At::Body,
        "----- transcript of session follows -----",
    ),
    (Family::Sendmail, At::Subject, "returned mail"),
];

/// The family of a message by its marks; `Generic` when none is found.
pub(super) fn detect(message: &Message<'_>) -> Family {
    let from = super::sender(message);
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    let mut body = String::new();
    for index in 0..message.text_body.len().min(4) {
        if let Some(t) = message.body_text(index) {
            body.push_str(&t.to_ascii_lowercase());
        }
        if body.len() > 64 * 1024 {
            break;
        }
    }
    let names: Vec<String> = message
        .headers()
        .iter()
        .map(|h| h.name().to_ascii_lowercase())
        .collect();
    MARKS
        .iter()
        .find(|(_, at, mark)| match at {
            At::From => from.contains(mark),
            At::Subject => subject.contains(mark),
            At::Header => names.iter().any(|n| n == mark),
            At::Body => body.contains(mark),
        })
        .map_or(Family::Generic, |(family, _, _)| *family)
}
