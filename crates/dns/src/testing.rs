//! An authoritative DNS server on loopback serving in-memory test zones, over UDP and
//! TCP, built on hickory-proto's wire format. Written here rather than with
//! hickory-server because tests need what a real zone file cannot express: names that
//! never answer (time-outs), raw non-ASCII TXT bytes, and SPF (type 99) records.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NULL, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::ResolverSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// One TXT record made of these character-strings.
    Txt(Vec<Vec<u8>>),
    /// An SPF (type 99) record: served only to type-99 queries.
    Spf(Vec<Vec<u8>>),
    Mx(u16, String),
    Ptr(String),
    Cname(String),
}

impl Rec {
    pub fn txt(text: &str) -> Self {
        Rec::Txt(vec![text.as_bytes().to_vec()])
    }

    fn answers(&self, qtype: RecordType) -> bool {
        matches!(
            (self, qtype),
            (Rec::A(_), RecordType::A)
                | (Rec::Aaaa(_), RecordType::AAAA)
                | (Rec::Txt(_), RecordType::TXT)
                | (Rec::Spf(_), RecordType::Unknown(99))
                | (Rec::Mx(..), RecordType::MX)
                | (Rec::Ptr(_), RecordType::PTR)
                | (Rec::Cname(_), RecordType::CNAME)
        )
    }
}

/// Names (case-insensitive, without the final dot) and their records.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    names: HashMap<String, Vec<Rec>>,
    timeouts: HashSet<String>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: &str, rec: Rec) -> &mut Self {
        self.names.entry(key(name)).or_default().push(rec);
        self
    }

    /// Declares a name that exists but has no records (so it is not NXDOMAIN).
    pub fn touch(&mut self, name: &str) -> &mut Self {
        self.names.entry(key(name)).or_default();
        self
    }

    /// Removes every record of a name (it becomes NXDOMAIN).
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.names.remove(&key(name));
        self
    }

    /// Queries for this name are never answered, but for types it has records of
    /// (as the OpenSPF suite's `TIMEOUT` means).
    pub fn timeout(&mut self, name: &str) -> &mut Self {
        self.timeouts.insert(key(name));
        self
    }

    fn exists(&self, name: &str) -> bool {
        self.names.contains_key(name) || self.names.keys().any(|n| n.ends_with(&format!(".{name}")))
    }

    /// `None`: do not answer.
    fn answer(&self, qname: &str, qtype: RecordType) -> Option<(ResponseCode, Vec<Record>)> {
        let mut name = key(qname);
        let mut answers = Vec::new();
        for _ in 0..8 {
            let records = self.names.get(&name);
            let has_type = records.is_some_and(|rs| {
                rs.iter()
                    .any(|r| r.answers(qtype) || matches!(r, Rec::Cname(_)))
            });
            if self.timeouts.contains(&name) && !has_type {
                return None;
            }
            let cname = records.and_then(|rs| {
                rs.iter().find_map(|r| match r {
                    Rec::Cname(target) => Some(target.clone()),
                    _ => None,
                })
            });
            match cname {
                Some(target) if qtype != RecordType::CNAME => {
                    answers.push(record(&name, RData::CNAME(CNAME(fqdn(&target)))));
                    name = key(&target);
                    continue;
                }
                _ => {}
            }
            if records.is_none() && !self.exists(&name) {
                return Some((
                    if answers.is_empty() {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NoError
                    },
                    answers,
                ));
            }
            for rec in records.into_iter().flatten() {
                let data = match (rec, qtype) {
                    (Rec::A(ip), RecordType::A) => RData::A(A(*ip)),
                    (Rec::Aaaa(ip), RecordType::AAAA) => RData::AAAA(AAAA(*ip)),
                    // A TXT record needs at least one string: an empty list serves one empty string.
                    (Rec::Txt(strings), RecordType::TXT) if strings.is_empty() => {
                        RData::TXT(TXT::from_bytes(vec![b"".as_slice()]))
                    }
                    (Rec::Txt(strings), RecordType::TXT) => {
                        RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()))
                    }
                    (Rec::Spf(strings), RecordType::Unknown(99)) => RData::Unknown {
                        code: RecordType::Unknown(99),
                        rdata: NULL::with(character_strings(strings)),
                    },
                    (Rec::Mx(pref, host), RecordType::MX) => RData::MX(MX::new(*pref, fqdn(host))),
                    (Rec::Ptr(host), RecordType::PTR) => RData::PTR(PTR(fqdn(host))),
                    (Rec::Cname(host), RecordType::CNAME) => RData::CNAME(CNAME(fqdn(host))),
                    _ => continue,
                };
                answers.push(record(&name, data));
            }
            return Some((ResponseCode::NoError, answers));
        }
        Some((ResponseCode::ServFail, Vec::new()))
    }
}

/// A name from its raw labels, so that unusual characters survive as they are.
fn fqdn(name: &str) -> Name {
    let labels: Vec<&[u8]> = name
        .trim_end_matches('.')
        .split('.')
        .map(str::as_bytes)
        .collect();
    Name::from_labels(labels)
        .map(|mut n| {
            n.set_fqdn(true);
            n
        })
        .unwrap_or_else(|_| Name::root())
}

fn record(name: &str, data: RData) -> Record {
    Record::from_rdata(fqdn(name), 60, data)
}

fn character_strings(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.push(s.len().min(255) as u8);
        out.extend_from_slice(&s[..s.len().min(255)]);
    }
    out
}

/// The reply to a raw query, or `None` to stay silent. `max_len` bounds a UDP reply.
fn respond(zone: &Zone, packet: &[u8], max_len: Option<usize>) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    let query = request.queries.first()?.clone();
    // The raw labels, not `to_ascii()`, which escapes characters such as ':' and ' '.
    let qname = query
        .name
        .iter()
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".");
    let (code, answers) = zone.answer(&qname, query.query_type)?;
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.response_code = code;
    response.add_queries(request.queries.clone());
    response.add_answers(answers);
    let mut limit = 512;
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(4096);
        response.set_edns(ours);
        limit = usize::from(edns.max_payload()).max(512);
    }
    let bytes = response.to_vec().ok()?;
    match max_len {
        Some(_) if bytes.len() > limit => response.truncate().to_vec().ok(),
        _ => Some(bytes),
    }
}

/// A running server; stops when dropped.
pub struct TestDnsServer {
    pub addr: SocketAddr,
    zone: Arc<RwLock<Zone>>,
    /// Queries received (UDP and TCP), answered or not.
    asked: Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestDnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TestDnsServer {
    pub async fn start(zone: Zone) -> std::io::Result<Self> {
        let zone = Arc::new(RwLock::new(zone));
        // UDP and TCP on the same port, as resolvers expect.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => break (udp, tcp),
                Err(_) => continue,
            }
        };
        let addr = udp.local_addr()?;
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let udp_zone = zone.clone();
        let udp_asked = asked.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                udp_asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reply = respond(
                    &udp_zone.read().unwrap_or_else(|e| e.into_inner()),
                    &buf[..n],
                    Some(512),
                );
                if let Some(reply) = reply {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let tcp_zone = zone.clone();
        let tcp_asked = asked.clone();
        let tcp_task = tokio::spawn(async move {
            let zone = tcp_zone;
            while let Ok((mut stream, _)) = tcp.accept().await {
                let zone = zone.clone();
                let asked = tcp_asked.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut packet).await.is_err() {
                            return;
                        }
                        asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let reply = respond(
                            &zone.read().unwrap_or_else(|e| e.into_inner()),
                            &packet,
                            None,
                        );
                        if let Some(reply) = reply {
                            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&reply);
                            if stream.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            zone,
            asked,
            tasks: vec![udp_task, tcp_task],
        })
    }

    /// How many queries the server has received (answered or not).
    pub fn queries(&self) -> usize {
        self.asked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes the served records, as an operator publishing DNS would.
    pub fn edit(&self, change: impl FnOnce(&mut Zone)) {
        change(&mut self.zone.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Resolver settings pointing at this server, with a short time-out.
    pub fn resolver_settings(&self) -> ResolverSettings {
        ResolverSettings {
            servers: vec![self.addr],
            timeout: Duration::from_millis(400),
            attempts: 1,
        }
    }
}
