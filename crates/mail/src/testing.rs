//! A real SMTP server on loopback for tests: it records every message with the address
//! the client connected from, and answers each recipient as scripted (accept, a chosen
//! reply at RCPT or after the data, a dropped connection, silence).
//!
//! Written by hand because the test needs faults a library server does not offer:
//! dropping the connection mid-transaction and never answering the data. STARTTLS, when
//! enabled, uses a self-signed certificate (rcgen) through rustls.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the server does with one recipient's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// Answer RCPT with this code and text.
    RefuseRcpt(u16, String),
    /// Take the data, then answer with this code.
    RefuseData(u16, String),
    /// Close the connection after the data, without a reply.
    DropAfterData,
    /// Never answer the data.
    HangAfterData,
    /// Keep the data (it is in `received`) and never answer: the sender cannot know it
    /// arrived.
    KeepThenHang,
    /// Accept, after a pause (a busy receiver).
    AcceptAfter(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    /// The client's address: the source IP the sender bound.
    pub peer: SocketAddr,
    pub helo: String,
    pub auth_user: Option<String>,
    pub mail_from: String,
    pub rcpt_to: String,
    pub data: Vec<u8>,
    /// Whether the transaction ran over TLS (after STARTTLS).
    pub tls: bool,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Per recipient: behaviours to use in turn; the last one stays.
    scripts: HashMap<String, VecDeque<Behaviour>>,
    connections: usize,
    /// Sessions open now, and the most open at once so far.
    open: usize,
    most_open: usize,
    /// `(user, password)` required when set.
    auth: Option<(String, String)>,
    /// Offers STARTTLS when set.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

#[derive(Clone)]
pub struct TestSmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Arc<JoinHandle<()>>,
}

impl Drop for TestSmtpServer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl TestSmtpServer {
    /// Listens on `ip` (127.0.0.1 or another loopback address), on a free port.
    pub async fn start(ip: IpAddr) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::new(ip, 0)).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // The sessions belong to this task: aborting it (`shutdown`) closes them all.
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((socket, peer)) = listener.accept().await {
                {
                    let mut state = shared.lock().expect("state");
                    state.connections += 1;
                    state.open += 1;
                    state.most_open = state.most_open.max(state.open);
                }
                let state = shared.clone();
                sessions.spawn(async move {
                    let _ = session(socket, peer, state.clone()).await;
                    state.lock().expect("state").open -= 1;
                });
                while sessions.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            state,
            task: Arc::new(task),
        })
    }

    /// Stops listening and closes every open session, as a restarting server would.
    pub fn shutdown(&self) {
        self.task.abort();
    }

    /// Scripts the answers to a recipient, used in order, the last one repeating.
    pub fn script(&self, rcpt: &str, behaviours: Vec<Behaviour>) {
        self.state
            .lock()
            .expect("state")
            .scripts
            .insert(rcpt.to_ascii_lowercase(), behaviours.into());
    }

    /// Offers STARTTLS with a self-signed certificate for `localhost` and `mx.example.test`.
    pub fn enable_starttls(&self) {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "mx.example.test".to_owned(),
        ])
        .expect("a test certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("a TLS configuration");
        self.state.lock().expect("state").tls =
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    }

    pub fn require_auth(&self, user: &str, password: &str) {
        self.state.lock().expect("state").auth = Some((user.into(), password.into()));
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("state").received.clone()
    }

    /// How many messages were accepted so far.
    pub fn received_count(&self) -> usize {
        self.state.lock().expect("state").received.len()
    }

    /// What `read` makes of the messages accepted since the `from`-th (without copying
    /// them all: a load test asks often).
    pub fn received_since<T>(&self, from: usize, read: impl Fn(&Received) -> T) -> Vec<T> {
        let state = self.state.lock().expect("state");
        state.received.iter().skip(from).map(read).collect()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().expect("state").connections
    }

    /// The most sessions that were open at once.
    pub fn most_open(&self) -> usize {
        self.state.lock().expect("state").most_open
    }
}

fn behaviour_for(state: &Mutex<State>, rcpt: &str) -> Behaviour {
    let mut state = state.lock().expect("state");
    match state.scripts.get_mut(&rcpt.to_ascii_lowercase()) {
        Some(queue) if queue.len() > 1 => queue.pop_front().unwrap_or(Behaviour::Accept),
        Some(queue) => queue.front().cloned().unwrap_or(Behaviour::Accept),
        None => Behaviour::Accept,
    }
}

fn angle(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}

enum Next {
    Done,
    StartTls,
}

async fn session(
    socket: TcpStream,
    peer: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let acceptor = state.lock().expect("state").tls.clone();
    let mut io = BufReader::new(socket);
    io.write_all(b"220 test.smtp ESMTP ready\r\n").await?;
    match dialogue(&mut io, peer, &state, acceptor.is_some(), false).await? {
        Next::Done => Ok(()),
        Next::StartTls => {
            let Some(acceptor) = acceptor else {
                return Ok(());
            };
            let tls = acceptor.accept(io.into_inner()).await?;
            let mut io = BufReader::new(tls);
            dialogue(&mut io, peer, &state, false, true).await?;
            Ok(())
        }
    }
}

async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    peer: SocketAddr,
    state: &Arc<Mutex<State>>,
    offer_tls: bool,
    tls: bool,
) -> std::io::Result<Next> {
    let mut helo = String::new();
    let mut auth_user: Option<String> = None;
    let mut from: Option<String> = None;
    let mut rcpt: Option<(String, Behaviour)> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(Next::Done);
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let required = state.lock().expect("state").auth.clone();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            helo = command[4..].trim().to_owned();
            let starttls = if offer_tls { "250-STARTTLS\r\n" } else { "" };
            format!(
                "250-test.smtp\r\n250-PIPELINING\r\n250-8BITMIME\r\n{starttls}250 AUTH PLAIN\r\n"
            )
        } else if upper == "STARTTLS" && offer_tls {
            io.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            io.flush().await?;
            return Ok(Next::StartTls);
        } else if upper.starts_with("AUTH PLAIN") {
            let given = command[10..].trim();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(given)
                .unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let (user, password) = (
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default(),
            );
            if required
                .as_ref()
                .is_none_or(|(u, p)| *u == user && *p == password)
            {
                auth_user = Some(user);
                "235 2.7.0 Authentication successful\r\n".into()
            } else {
                "535 5.7.8 Authentication credentials invalid\r\n".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if required.is_some() && auth_user.is_none() {
                "530 5.7.0 Authentication required\r\n".into()
            } else {
                from = Some(angle(&command[10..]));
                "250 2.1.0 Ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            let to = angle(&command[8..]);
            match (&from, behaviour_for(state, &to)) {
                (None, _) => "503 5.5.1 MAIL first\r\n".into(),
                (Some(_), Behaviour::RefuseRcpt(code, text)) => format!("{code} {text}\r\n"),
                (Some(_), behaviour) => {
                    rcpt = Some((to, behaviour));
                    "250 2.1.5 Ok\r\n".into()
                }
            }
        } else if upper == "DATA" {
            let Some((to, behaviour)) = rcpt.take() else {
                io.write_all(b"554 5.5.1 No valid recipients\r\n").await?;
                io.flush().await?;
                continue;
            };
            io.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            io.flush().await?;
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                if io.read_until(b'\n', &mut raw).await? == 0 {
                    return Ok(Next::Done);
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                let unstuffed = if raw.starts_with(b"..") {
                    &raw[1..]
                } else {
                    &raw[..]
                };
                data.extend_from_slice(unstuffed);
            }
            let record = Received {
                peer,
                helo: helo.clone(),
                auth_user: auth_user.clone(),
                mail_from: from.take().unwrap_or_default(),
                rcpt_to: to,
                data,
                tls,
            };
            match behaviour {
                Behaviour::Accept => {
                    state.lock().expect("state").received.push(record);
                    "250 2.0.0 Ok: queued\r\n".into()
                }
                Behaviour::RefuseData(code, text) => format!("{code} {text}\r\n"),
                Behaviour::DropAfterData => return Ok(Next::Done),
                Behaviour::HangAfterData => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return Ok(Next::Done);
                }
                Behaviour::KeepThenHang => {
                    state.lock().expect("state").received.push(record);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return Ok(Next::Done);
                }
                Behaviour::AcceptAfter(pause) => {
                    tokio::time::sleep(pause).await;
                    state.lock().expect("state").received.push(record);
                    "250 2.0.0 Ok: queued\r\n".into()
                }
                Behaviour::RefuseRcpt(..) => unreachable!("refused at RCPT"),
            }
        } else if upper == "RSET" {
            from = None;
            rcpt = None;
            "250 2.0.0 Ok\r\n".into()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok\r\n".into()
        } else if upper == "QUIT" {
            io.write_all(b"221 2.0.0 Bye\r\n").await?;
            io.flush().await?;
            return Ok(Next::Done);
        } else {
            "502 5.5.2 Command not recognized\r\n".into()
        };
        io.write_all(reply.as_bytes()).await?;
        io.flush().await?;
    }
}

/// An HTTPS server on loopback that answers every request with one body (an MTA-STS
/// policy) and keeps what was posted to it (TLS reports), its certificate for `hosts`
/// issued by a CA of its own, whose certificate (DER) a client trusts to reach it.
pub struct TestHttpsServer {
    pub addr: SocketAddr,
    pub ca_der: Vec<u8>,
    body: Arc<Mutex<Vec<u8>>>,
    posted: Arc<Mutex<Vec<Posted>>>,
    task: JoinHandle<()>,
}

/// A request with a body the server received.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The request line and headers.
    pub head: String,
    pub body: Vec<u8>,
}

/// The `content-length` of a request head.
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

impl Drop for TestHttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestHttpsServer {
    pub async fn start(hosts: &[&str], body: &[u8]) -> std::io::Result<Self> {
        let ca_key = rcgen::KeyPair::generate().expect("a CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("a CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("a key");
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("a certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .expect("a TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let body = Arc::new(Mutex::new(body.to_vec()));
        let posted = Arc::new(Mutex::new(Vec::new()));
        let (shared, shared_posted) = (body.clone(), posted.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, body) = (acceptor.clone(), shared.clone());
                let posted = shared_posted.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    // The request line and headers, up to the blank line.
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16 * 1024 {
                        match tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = seen
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(seen.len(), |p| p + 4);
                    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
                    let mut request_body = seen[end..].to_vec();
                    let wanted = content_length(&head).min(16 << 20);
                    while request_body.len() < wanted {
                        match tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request_body.extend_from_slice(&buf[..n]),
                        }
                    }
                    if wanted > 0 {
                        posted.lock().expect("posted").push(Posted {
                            head,
                            body: request_body,
                        });
                    }
                    let body = body.lock().expect("body").clone();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(&body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            ca_der: ca_cert.der().to_vec(),
            body,
            posted,
            task,
        })
    }

    /// What was posted so far.
    pub fn posted(&self) -> Vec<Posted> {
        self.posted.lock().expect("posted").clone()
    }

    /// Serves another body from now on.
    pub fn serve(&self, body: &[u8]) {
        *self.body.lock().expect("body") = body.to_vec();
    }
}
