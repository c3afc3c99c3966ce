//! The bounce listener: an SMTP server taking the DSNs and ARF reports sent to
//! per-message return paths, and to the report addresses the operator lists, and the
//! DMARC aggregate reports sent to the address every domain's DMARC record names. Each message
//! is read and applied as feedback before the transaction is accepted (a failure answers
//! 451: the sender tries again); mail that is no report this reader knows is kept for an
//! operator. Other recipients are refused, so it relays nothing and takes no stray mail.
//! Commands and the DATA stream are parsed by smtp-proto; only the dialogue (which reply
//! to which command) is ours. (mailin, the embedded-server crate, refuses the null
//! reverse path `MAIL FROM:<>` that every DSN is sent with.)

use std::sync::Arc;
use std::time::Duration;

use ee_app::Services;
use ee_store::feedback_messages::{self, KEPT_BYTES, KeptMessage};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// The largest message taken.
const MAX_BYTES: usize = ee_mail::report::LIMITS.max_bytes;
/// Recipients one transaction may name (RFC 5321's minimum a server must take).
const MAX_RCPT: usize = 100;
/// Bad commands a session may send before it is closed.
const MAX_ERRORS: usize = 10;
/// Connections served at once.
const MAX_SESSIONS: usize = 64;
/// A client silent this long is dropped.
const IDLE: Duration = Duration::from_secs(300);

/// Unreadable mail kept for a look at most: this many messages and this many bytes of
/// kept text (the oldest go first), so strangers cannot grow the database.
const KEPT_COUNT: i64 = 1_000;
const KEPT_TOTAL_BYTES: i64 = 64 * 1024 * 1024;

/// A refusal's reason on one SMTP line: printable ASCII, bounded.
fn reason(errors: &ee_core::ValidationErrors) -> String {
    let text = errors
        .0
        .first()
        .map_or_else(|| "is over a limit".to_owned(), |e| e.message.clone());
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

/// What every session shares.
struct Listener {
    services: Services,
    host: String,
    /// Addresses taken besides return paths (lowercase): feedback-loop addresses.
    accept: Vec<String>,
}

impl Listener {
    fn takes(&self, to: &str) -> bool {
        ee_core::feedback::verp::message_of(&self.services.delivery.tracking_key, to).is_some()
            || self.accept.iter().any(|a| a == to)
            || self.is_dmarc(to)
    }

    /// The address DMARC aggregate reports come to.
    fn is_dmarc(&self, to: &str) -> bool {
        self.services.feedback.dmarc_address.as_deref() == Some(to)
    }
}

/// Serves on `listener` until `shutdown` turns true; `accept` lists the report addresses
/// taken besides per-message return paths.
pub async fn serve(
    services: Services,
    listener: TcpListener,
    host: String,
    accept: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Listener {
        services,
        host,
        accept: accept
            .into_iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .collect(),
    });
    let sessions = Arc::new(Semaphore::new(MAX_SESSIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let Ok(permit) = sessions.clone().acquire_owned().await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = session(stream, &shared).await {
                tracing::debug!(error = %e, "bounce listener session ended");
            }
        });
    }
}

/// A message being received.
struct Incoming {
    receiver: DataReceiver,
    data: Vec<u8>,
    too_big: bool,
}

async fn session(mut stream: TcpStream, l: &Listener) -> std::io::Result<()> {
    stream
        .write_all(format!("220 {} ESMTP\r\n", l.host).as_bytes())
        .await?;
    let mut requests = RequestReceiver::default();
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut incoming: Option<Incoming> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut errors = 0;
    loop {
        let n = match tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
            Ok(read) => read?,
            Err(_) => {
                stream.write_all(b"421 4.4.2 Idle too long\r\n").await?;
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        let mut bytes = buf[..n].iter();
        loop {
            if let Some(message) = incoming.as_mut() {
                let mut chunk = Vec::new();
                let done = message.receiver.ingest(&mut bytes, &mut chunk);
                if message.data.len() + chunk.len() > MAX_BYTES {
                    message.too_big = true;
                } else {
                    message.data.extend_from_slice(&chunk);
                }
                if !done {
                    break;
                }
                let Some(message) = incoming.take() else {
                    break;
                };
                let reply = if message.too_big {
                    "552 5.3.4 Message too big\r\n".to_owned()
                } else {
                    let rcpt = to.first().cloned().unwrap_or_default();
                    let received = if to.iter().any(|t| l.is_dmarc(t)) {
                        receive_dmarc(&l.services, &message.data, from.as_deref()).await
                    } else {
                        receive(&l.services, message.data, from.clone(), rcpt).await
                    };
                    match received {
                        Ok(()) => "250 2.0.0 Accepted\r\n".to_owned(),
                        Err(ee_app::AppError::OverLimit(errors)) => {
                            format!("554 5.6.0 Report refused: it {}\r\n", reason(&errors))
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "a report could not be stored");
                            "451 4.3.0 Not stored, try again later\r\n".to_owned()
                        }
                    }
                };
                from = None;
                to.clear();
                stream.write_all(reply.as_bytes()).await?;
                continue;
            }
            let reply = match requests.ingest(&mut bytes) {
                Ok(request) => match request {
                    Request::Ehlo { .. } => format!(
                        "250-{}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE {MAX_BYTES}\r\n",
                        l.host
                    ),
                    Request::Helo { .. } => format!("250 {}\r\n", l.host),
                    Request::Mail { from: sender } => {
                        from = Some(sender.address.to_string());
                        to.clear();
                        "250 2.1.0 OK\r\n".into()
                    }
                    Request::Rcpt { to: recipient } => {
                        let address = recipient.address.trim().to_ascii_lowercase();
                        if from.is_none() {
                            "503 5.5.1 MAIL first\r\n".into()
                        } else if to.len() >= MAX_RCPT {
                            "452 4.5.3 Too many recipients\r\n".into()
                        } else if l.takes(&address) {
                            to.push(address);
                            "250 2.1.5 OK\r\n".into()
                        } else {
                            "550 5.1.1 No such recipient here\r\n".into()
                        }
                    }
                    Request::Data if to.is_empty() => "554 5.5.1 No valid recipients\r\n".into(),
                    Request::Data => {
                        incoming = Some(Incoming {
                            receiver: DataReceiver::new(),
                            data: Vec::new(),
                            too_big: false,
                        });
                        "354 End data with <CR><LF>.<CR><LF>\r\n".into()
                    }
                    Request::Rset => {
                        from = None;
                        to.clear();
                        "250 2.0.0 OK\r\n".into()
                    }
                    Request::Noop { .. } => "250 2.0.0 OK\r\n".into(),
                    Request::Quit => {
                        stream.write_all(b"221 2.0.0 Bye\r\n").await?;
                        return Ok(());
                    }
                    _ => "502 5.5.1 Not implemented\r\n".into(),
                },
                Err(ProtoError::NeedsMoreData { .. }) => break,
                Err(e) => {
                    errors += 1;
                    if errors > MAX_ERRORS {
                        stream
                            .write_all(b"421 4.7.0 Too many errors, closing\r\n")
                            .await?;
                        return Ok(());
                    }
                    match e {
                        ProtoError::ResponseTooLong => "500 5.5.2 Line too long\r\n".into(),
                        _ => "500 5.5.2 Syntax error\r\n".into(),
                    }
                }
            };
            stream.write_all(reply.as_bytes()).await?;
        }
    }
}

/// Stores a DMARC aggregate report (a mail that holds none is kept with why; one over a
/// bound is refused with it).
async fn receive_dmarc(
    services: &Services,
    raw: &[u8],
    from: Option<&str>,
) -> Result<(), ee_app::AppError> {
    ee_app::feedback::dmarc::receive(services, raw, from.filter(|f| !f.is_empty()))
        .await
        .map(|_| ())
}

/// Applies a received message, or keeps it when it is no report.
async fn receive(
    services: &Services,
    raw: Vec<u8>,
    from: Option<String>,
    to: String,
) -> Result<(), ee_app::AppError> {
    let id = ee_core::ids::new_id();
    let reference = format!("smtp:{id}");
    match ee_app::feedback::intake::report_message(services, None, &raw, Some(&to), &reference)
        .await
    {
        Ok(report) => {
            tracing::info!(
                applied = report.applied,
                unmatched = report.unmatched,
                "report received"
            );
            Ok(())
        }
        Err(ee_app::AppError::Invalid(errors)) => {
            let text = String::from_utf8_lossy(&raw[..raw.len().min(KEPT_BYTES)]).into_owned();
            let mut conn = services.db.pool().acquire().await?;
            feedback_messages::insert(
                &mut conn,
                &KeptMessage {
                    id,
                    envelope_from: from,
                    envelope_to: to,
                    raw: text,
                    size: raw.len() as i64,
                    reason: errors.summary(),
                    received_at: services.clock.now_ms(),
                },
            )
            .await?;
            let dropped = feedback_messages::cap(&mut conn, KEPT_COUNT, KEPT_TOTAL_BYTES).await?;
            if dropped > 0 {
                tracing::info!(dropped, "oldest unreadable feedback mail dropped (cap)");
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}
