//! SMTP delivery over mail-send: a connection opened to a relay (AUTH, STARTTLS or
//! implicit TLS) or to an MX (bound to a source IP, EHLO with its host name,
//! opportunistic STARTTLS), then reused for message after message, with the envelope
//! pipelined (RFC 2920) when the peer offers it. Every reply is kept for the caller.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use ee_core::tls_rpt::Failure;
use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use smtp_proto::{EXT_PIPELINING, EXT_START_TLS, Response};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Clear text.
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS when offered, any certificate (direct delivery to MX hosts, RFC 3207 §4.1).
    Opportunistic,
}

impl Security {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "starttls" => Some(Self::Starttls),
            "tls" => Some(Self::Tls),
            "opportunistic" => Some(Self::Opportunistic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
            Self::Opportunistic => "opportunistic",
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    /// The address to connect to (a name or an IP).
    pub address: String,
    pub port: u16,
    /// The name the TLS certificate is checked against (the relay's or MX's host name).
    pub tls_name: String,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    /// The source address to bind (direct delivery from a chosen IP).
    pub local_ip: Option<IpAddr>,
    /// The name said in EHLO.
    pub helo: String,
    pub timeout: Duration,
    /// Accept any certificate (tests, self-signed relays).
    pub allow_invalid_certs: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("local_ip", &self.local_ip)
            .field("helo", &self.helo)
            .finish()
    }
}

/// A reply of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    fn of(r: &Response<String>) -> Self {
        let esc = if r.esc[0] > 0 {
            format!("{}.{}.{} ", r.esc[0], r.esc[1], r.esc[2])
        } else {
            String::new()
        };
        Self {
            code: r.code,
            text: format!("{} {esc}{}", r.code, r.message.replace(['\r', '\n'], " ")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The peer answered with an error; the connection may still be usable.
    #[error("{}", .0.text)]
    Rejected(Reply),
    /// Nothing usable: refused, reset, dropped, timed out, TLS failed. Try later.
    #[error("{0}")]
    Network(String),
    /// The connection failed while the envelope was sent (MAIL, RCPT, DATA or their
    /// replies): the message itself never left, so nothing can have been delivered and it
    /// may go out on another connection at once. On a pooled connection this is how a
    /// peer that closed it while idle shows.
    #[error("{0}")]
    Unsent(String),
    /// TLS could not be had: STARTTLS not offered where it was required, or a handshake
    /// or certificate that failed (RFC 8460's terms). Nothing was sent.
    #[error("{detail}")]
    Tls { failure: Failure, detail: String },
}

impl SmtpError {
    fn from_send(e: mail_send::Error) -> Self {
        match e {
            mail_send::Error::UnexpectedReply(r) | mail_send::Error::AuthenticationFailed(r) => {
                SmtpError::Rejected(Reply::of(&r))
            }
            mail_send::Error::Timeout => SmtpError::Network("timed out".into()),
            mail_send::Error::MissingStartTls => SmtpError::Tls {
                failure: Failure::StarttlsNotSupported,
                detail: "the server does not offer STARTTLS".into(),
            },
            mail_send::Error::Tls(e) => SmtpError::Tls {
                failure: tls_failure(&e),
                detail: format!("TLS failed: {e}"),
            },
            mail_send::Error::UnparseableReply => {
                SmtpError::Network("connection closed or unreadable reply".into())
            }
            other => SmtpError::Network(other.to_string()),
        }
    }
}

enum Stream {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

/// What a TLS session came to: its version and cipher, and whether the peer's
/// certificate holds for its host name under the system's roots (checked after the
/// handshake: opportunistic TLS accepts any certificate, but the outcome is recorded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    /// `TLSv1_3`, `TLSv1_2`.
    pub version: String,
    /// `TLS13_AES_256_GCM_SHA384` …
    pub cipher: String,
    pub verified: bool,
    /// Why the certificate did not verify (RFC 8460's terms), when it did not.
    #[serde(skip)]
    pub unverified: Option<Failure>,
}

impl TlsInfo {
    fn of(session: &tokio_rustls::rustls::ClientConnection, host: &str) -> Self {
        let version = session
            .protocol_version()
            .map_or_else(|| "unknown".to_owned(), |v| format!("{v:?}"));
        let cipher = session
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()));
        let verification = match session.peer_certificates().and_then(|c| c.split_first()) {
            Some((leaf, intermediates)) => verify(leaf, intermediates, host),
            None => Err(Failure::ValidationFailure),
        };
        Self {
            version,
            cipher,
            verified: verification.is_ok(),
            unverified: verification.err(),
        }
    }

    /// The session's TLS in RFC 8460's terms.
    pub fn verification(&self) -> Result<(), Failure> {
        match self.unverified {
            Some(why) => Err(why),
            None if self.verified => Ok(()),
            None => Err(Failure::ValidationFailure),
        }
    }

    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 verified` (or `unverified`).
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.version,
            self.cipher,
            if self.verified {
                "verified"
            } else {
                "unverified"
            }
        )
    }
}

/// Whether a certificate chain holds for `host` under the platform's roots, and why not.
fn verify(
    leaf: &rustls_pki_types::CertificateDer<'_>,
    intermediates: &[rustls_pki_types::CertificateDer<'static>],
    host: &str,
) -> Result<(), Failure> {
    use tokio_rustls::rustls::client::danger::ServerCertVerifier;
    static VERIFIER: OnceLock<Option<rustls_platform_verifier::Verifier>> = OnceLock::new();
    let Some(verifier) = VERIFIER.get_or_init(|| {
        let provider = tokio_rustls::rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| {
                std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider())
            });
        rustls_platform_verifier::Verifier::new(provider).ok()
    }) else {
        return Err(Failure::ValidationFailure);
    };
    let Ok(name) = rustls_pki_types::ServerName::try_from(host.to_owned()) else {
        return Err(Failure::CertificateHostMismatch);
    };
    verifier
        .verify_server_cert(
            leaf,
            intermediates,
            &name,
            &[],
            rustls_pki_types::UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| tls_failure(&e))
}

/// A TLS error in RFC 8460's terms.
fn tls_failure(e: &tokio_rustls::rustls::Error) -> Failure {
    use tokio_rustls::rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. } | C::NotValidYet) => {
            Failure::CertificateExpired
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            Failure::CertificateHostMismatch
        }
        E::InvalidCertificate(
            C::UnknownIssuer | C::BadSignature | C::Revoked | C::InvalidPurpose,
        ) => Failure::CertificateNotTrusted,
        _ => Failure::ValidationFailure,
    }
}

/// An open SMTP session, ready for transactions.
pub struct Connection {
    stream: Stream,
    pipelining: bool,
    pub tls: bool,
    /// The TLS session's version, cipher and verification; `None` in clear.
    pub tls_info: Option<TlsInfo>,
    /// Messages accepted on this connection.
    pub delivered: usize,
}

/// The TLS connectors, built once: mail-send's builder makes a new one per connection,
/// which reads the system's root certificates from disk each time (measured: a third of
/// the CPU of a run that opened many connections).
fn tls_connector(allow_invalid_certs: bool) -> Result<TlsConnector, SmtpError> {
    static VERIFYING: OnceLock<Result<TlsConnector, String>> = OnceLock::new();
    static ANY_CERT: OnceLock<Result<TlsConnector, String>> = OnceLock::new();
    let cell = if allow_invalid_certs {
        &ANY_CERT
    } else {
        &VERIFYING
    };
    cell.get_or_init(|| mail_send::smtp::tls::build_tls_connector(allow_invalid_certs))
        .clone()
        .map_err(SmtpError::Network)
}

fn builder(endpoint: &Endpoint) -> Result<SmtpClientBuilder<String>, SmtpError> {
    let allow_invalid =
        endpoint.allow_invalid_certs || endpoint.security == Security::Opportunistic;
    let mut b = SmtpClientBuilder {
        timeout: endpoint.timeout,
        tls_connector: tls_connector(allow_invalid)?,
        tls_hostname: endpoint.tls_name.clone(),
        // Each caller below says how TLS starts.
        tls_implicit: false,
        credentials: None,
        addr: format!("{}:{}", bracket(&endpoint.address), endpoint.port),
        is_lmtp: false,
        say_ehlo: false,
        local_host: endpoint.helo.clone(),
        local_ip: None,
    };
    if let Some(ip) = endpoint.local_ip {
        b = b.local_ip(ip);
    }
    Ok(b)
}

fn bracket(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_owned()
    }
}

async fn hello<T>(client: &mut SmtpClient<T>, endpoint: &Endpoint) -> Result<u32, SmtpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ehlo = client
        .ehlo(&endpoint.helo)
        .await
        .map_err(SmtpError::from_send)?;
    if let Some((user, secret)) = &endpoint.credentials {
        let credentials = Credentials::new(user.clone(), secret.clone());
        client
            .authenticate(&credentials, &ehlo)
            .await
            .map_err(SmtpError::from_send)?;
    }
    Ok(ehlo.capabilities)
}

impl Connection {
    pub async fn open(endpoint: &Endpoint) -> Result<Self, SmtpError> {
        let b = builder(endpoint)?;
        let (stream, capabilities, tls) = match endpoint.security {
            Security::Tls => {
                let mut c = b
                    .implicit_tls(true)
                    .connect()
                    .await
                    .map_err(SmtpError::from_send)?;
                let caps = hello(&mut c, endpoint).await?;
                (Stream::Tls(Box::new(c)), caps, true)
            }
            Security::Starttls => {
                // mail-send's builder defaults to implicit TLS.
                let mut c = b
                    .implicit_tls(false)
                    .connect()
                    .await
                    .map_err(SmtpError::from_send)?;
                let caps = hello(&mut c, endpoint).await?;
                (Stream::Tls(Box::new(c)), caps, true)
            }
            Security::None => {
                let mut c = b.connect_plain().await.map_err(SmtpError::from_send)?;
                let caps = hello(&mut c, endpoint).await?;
                (Stream::Plain(c), caps, false)
            }
            Security::Opportunistic => {
                let mut c = b.connect_plain().await.map_err(SmtpError::from_send)?;
                let ehlo = c.ehlo(&endpoint.helo).await.map_err(SmtpError::from_send)?;
                if ehlo.has_capability(EXT_START_TLS) {
                    let mut t = c
                        .start_tls(&b.tls_connector, &endpoint.tls_name)
                        .await
                        .map_err(SmtpError::from_send)?;
                    let caps = hello(&mut t, endpoint).await?;
                    (Stream::Tls(Box::new(t)), caps, true)
                } else {
                    if let Some((user, secret)) = &endpoint.credentials {
                        c.authenticate(&Credentials::new(user.clone(), secret.clone()), &ehlo)
                            .await
                            .map_err(SmtpError::from_send)?;
                    }
                    (Stream::Plain(c), ehlo.capabilities, false)
                }
            }
        };
        // Commands and the message go out in several writes: without TCP_NODELAY each
        // transaction waits on Nagle and the peer's delayed ACK (~40 ms).
        let nodelay = match &stream {
            Stream::Plain(c) => c.stream.set_nodelay(true),
            Stream::Tls(c) => c.stream.get_ref().0.set_nodelay(true),
        };
        if let Err(e) = nodelay {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let tls_info = match &stream {
            Stream::Plain(_) => None,
            Stream::Tls(c) => Some(TlsInfo::of(c.stream.get_ref().1, &endpoint.tls_name)),
        };
        Ok(Self {
            stream,
            pipelining: capabilities & EXT_PIPELINING != 0,
            tls,
            tls_info,
            delivered: 0,
        })
    }

    /// One transaction. `Ok` is the final reply to the data (2xx). A refusal at any step
    /// is `Rejected` with that reply, after which the session is reset and stays usable;
    /// `Network` means the connection is gone.
    pub async fn send(&mut self, from: &str, to: &str, data: &[u8]) -> Result<Reply, SmtpError> {
        let pipelining = self.pipelining;
        let result = match &mut self.stream {
            Stream::Plain(c) => transact(c, pipelining, from, to, data).await,
            Stream::Tls(c) => transact(c.as_mut(), pipelining, from, to, data).await,
        };
        if result.is_ok() {
            self.delivered += 1;
        }
        result
    }

    /// Ends the session politely.
    pub async fn quit(self) {
        let _ = match self.stream {
            Stream::Plain(c) => c.quit().await,
            Stream::Tls(c) => c.quit().await,
        };
    }
}

async fn transact<T>(
    client: &mut SmtpClient<T>,
    pipelining: bool,
    from: &str,
    to: &str,
    data: &[u8],
) -> Result<Reply, SmtpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let commands = [
        format!("MAIL FROM:<{from}>\r\n"),
        format!("RCPT TO:<{to}>\r\n"),
        "DATA\r\n".to_owned(),
    ];
    let replies = envelope(client, pipelining, &commands)
        .await
        .map_err(|e| match e {
            SmtpError::Network(reason) => SmtpError::Unsent(reason),
            other => other,
        })?;
    for (step, reply) in replies.iter().enumerate() {
        let ok = if step == 2 {
            reply.code == 354
        } else {
            reply.is_positive_completion()
        };
        if !ok {
            let refused = Reply::of(reply);
            // The envelope failed: a DATA that got 354 anyway needs an empty message.
            if replies.get(2).is_some_and(|r| r.code == 354) {
                let _ = client.cmd(".\r\n").await;
            }
            let _ = client.rset().await;
            return Err(SmtpError::Rejected(refused));
        }
    }
    // One write too (mail-send's `write_message` writes the text in pieces).
    write_all(client, &dot_stuffed(data), "the message").await?;
    let reply = tokio::time::timeout(client.timeout, client.read())
        .await
        .map_err(|_| SmtpError::Network("timed out waiting for the reply to the data".into()))?
        .map_err(SmtpError::from_send)?;
    let reply_kept = Reply::of(&reply);
    reply
        .assert_positive_completion()
        .map_err(|_| SmtpError::Rejected(reply_kept.clone()))?;
    Ok(reply_kept)
}

/// Sends the envelope commands and reads their replies (one write when pipelining).
async fn envelope<T>(
    client: &mut SmtpClient<T>,
    pipelining: bool,
    commands: &[String; 3],
) -> Result<Vec<Response<String>>, SmtpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    Ok(if pipelining {
        // The whole group in one write (RFC 2920): mail-send's `cmds` writes each command
        // on its own, and with TCP_NODELAY each write is a packet the peer wakes up for.
        write_all(client, commands.concat().as_bytes(), "the commands").await?;
        tokio::time::timeout(client.timeout, client.read_many(commands.len()))
            .await
            .map_err(|_| SmtpError::Network("timed out waiting for the replies".into()))?
            .map_err(SmtpError::from_send)?
    } else {
        let mut replies = Vec::with_capacity(3);
        for command in commands {
            let reply = client.cmd(command).await.map_err(SmtpError::from_send)?;
            let stop = !reply.is_positive_completion() && reply.code != 354;
            replies.push(reply);
            if stop {
                break;
            }
        }
        replies
    })
}

async fn write_all<T>(client: &mut SmtpClient<T>, bytes: &[u8], what: &str) -> Result<(), SmtpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let write = async {
        client.stream.write_all(bytes).await?;
        client.stream.flush().await
    };
    tokio::time::timeout(client.timeout, write)
        .await
        .map_err(|_| SmtpError::Network(format!("timed out writing {what}")))?
        .map_err(|e| SmtpError::Network(e.to_string()))
}

/// The message as DATA sends it (RFC 5321 §4.5.2): a dot that starts a line doubled, and
/// the end marker after a final line break (added when the text lacks one).
fn dot_stuffed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 512 + 5);
    let mut line_start = true;
    for &byte in data {
        if line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        line_start = byte == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn dots_that_start_a_line_are_doubled_and_the_end_marker_follows_a_line_break() {
        assert_eq!(
            dot_stuffed(b"a\r\n.b\r\n..\r\n"),
            b"a\r\n..b\r\n...\r\n.\r\n"
        );
        assert_eq!(
            dot_stuffed(b".first\r\nno final break"),
            b"..first\r\nno final break\r\n.\r\n"
        );
        assert_eq!(
            dot_stuffed(b"a.b\r\n"),
            b"a.b\r\n.\r\n",
            "a dot inside a line stays"
        );
        assert_eq!(dot_stuffed(b""), b".\r\n");
    }
}
