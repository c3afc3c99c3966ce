//! Test doubles for software we cannot run here. [`start`] runs a fake MailWizz (PHP
//! software) that implements the REST contract the client follows: `X-API-KEY`, PHP-nested
//! form bodies, base64 contents, the `status`/`error` answer shapes, 404s for unknown items
//! and pages, pagination; it records every request.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The API key the fake accepts.
pub const KEY: &str = "mw-test-key";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub form: Vec<(String, String)>,
}

/// What the fake holds; tests read and arrange it.
#[derive(Default)]
pub struct Fake {
    pub requests: Vec<Recorded>,
    /// Answer this many requests with 503 first.
    pub fail_next: usize,
    pub next_id: usize,
    pub lists: BTreeMap<String, Vec<Value>>,
    pub campaigns: BTreeMap<String, Value>,
    pub templates: BTreeMap<String, Value>,
    pub emails: BTreeMap<String, Value>,
    /// Delivery servers by id. Stock MailWizz has no API for them (any such path is an
    /// unknown page, 404); `Some` stands for an installation with an extension that adds
    /// `GET`/`PUT delivery-servers/{id}`.
    pub delivery_servers: Option<BTreeMap<String, Value>>,
}

pub type Shared = Arc<Mutex<Fake>>;

/// `a[b][0][c]=v` pairs into nested JSON (PHP's reading of a form).
fn unflatten(pairs: &[(String, String)]) -> Value {
    fn insert(node: &mut Value, parts: &[String], value: &str) {
        let map = node.as_object_mut().expect("fake MailWizz");
        if parts.len() == 1 {
            map.insert(parts[0].clone(), Value::String(value.to_owned()));
        } else {
            let child = map
                .entry(parts[0].clone())
                .or_insert_with(|| Value::Object(Map::new()));
            insert(child, &parts[1..], value);
        }
    }
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let (head, rest) = key.split_once('[').unwrap_or((key, ""));
        let mut parts = vec![head.to_owned()];
        parts.extend(
            rest.split('[')
                .map(|p| p.trim_end_matches(']').to_owned())
                .filter(|p| !p.is_empty()),
        );
        insert(&mut root, &parts, value);
    }
    root
}

fn success(extra: Value) -> Response {
    let mut body = json!({"status": "success"});
    for (k, v) in extra.as_object().expect("fake MailWizz") {
        body[k] = v.clone();
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error(status: StatusCode, text: &str) -> Response {
    (
        status,
        axum::Json(json!({"status": "error", "error": text})),
    )
        .into_response()
}

/// base64 to text, as MailWizz reads template contents.
pub fn decode(b64: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("fake MailWizz"),
    )
    .expect("fake MailWizz")
}

async fn handle(
    State(fake): State<Shared>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded_pairs(&body);
    let mut f = fake.lock().expect("fake MailWizz");
    f.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        form: form.clone(),
    });
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(StatusCode::UNAUTHORIZED, "Invalid API key.");
    }
    if f.fail_next > 0 {
        f.fail_next -= 1;
        return error(StatusCode::SERVICE_UNAVAILABLE, "Try again later.");
    }
    let data = unflatten(&form);
    let parts: Vec<&str> = path.split('/').collect();
    f.next_id += 1;
    let new_uid = format!("uid{:04}", f.next_id);
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["lists"]) => {
            if data["general"]["name"].as_str().unwrap_or("").is_empty() {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "general[name] is required",
                );
            }
            f.lists.insert(new_uid.clone(), Vec::new());
            success(json!({"list_uid": new_uid}))
        }
        ("GET", ["lists", uid]) => match f.lists.get(*uid) {
            Some(subs) => success(
                json!({"data": {"record": {"general": {"list_uid": uid}, "subscribers_count": subs.len()}}}),
            ),
            None => error(StatusCode::NOT_FOUND, "The list does not exist."),
        },
        ("POST", ["lists", uid, "subscribers"]) => {
            let Some(subs) = f.lists.get_mut(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let email = data["EMAIL"].as_str().unwrap_or("").to_owned();
            if !email.contains('@') {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Please provide a valid email address.",
                );
            }
            let mut record = data.clone();
            record["subscriber_uid"] = json!(new_uid);
            record["status"] = json!("confirmed");
            subs.push(record.clone());
            success(json!({"data": {"record": {"subscriber_uid": new_uid, "email": email}}}))
        }
        ("POST", ["lists", uid, "subscribers", "bulk"]) => {
            let next = f.next_id;
            let Some(subs) = f.lists.get_mut(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let mut out = Vec::new();
            // PHP keeps the indexes' order; a JSON map sorts them as text.
            let mut items: Vec<(usize, Value)> = data["subscribers"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.parse().unwrap_or(usize::MAX), v))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            for (i, (_, item)) in items.iter().enumerate() {
                let mut record = item.clone();
                let sub_uid = format!("bulk{next}-{i}");
                record["subscriber_uid"] = json!(sub_uid);
                record["status"] = json!("confirmed");
                subs.push(record);
                out.push(json!({"data": {"subscriber_uid": sub_uid}, "status": "success"}));
            }
            success(json!({"data": {"records": out}}))
        }
        ("GET", ["lists", uid, "subscribers"]) => {
            let Some(subs) = f.lists.get(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let page: usize = q("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let per_page: usize = q("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(10)
                .max(1);
            let records: Vec<Value> = subs
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .cloned()
                .collect();
            success(
                json!({"data": {"count": subs.len(), "total_pages": subs.len().div_ceil(per_page),
                "current_page": page, "records": records}}),
            )
        }
        ("GET", ["lists", uid, "subscribers", "search-by-email"]) => {
            let email = q("EMAIL").unwrap_or_default();
            match f
                .lists
                .get(*uid)
                .and_then(|s| s.iter().find(|r| r["EMAIL"] == email.as_str()))
            {
                Some(r) => success(
                    json!({"data": {"subscriber_uid": r["subscriber_uid"], "status": r["status"]}}),
                ),
                None => error(
                    StatusCode::NOT_FOUND,
                    "The subscriber does not exist in this list.",
                ),
            }
        }
        (m, ["lists", uid, "subscribers", sub]) | (m, ["lists", uid, "subscribers", sub, _]) => {
            let unsubscribe = parts.len() == 5 && parts[4] == "unsubscribe";
            let Some(subs) = f.lists.get_mut(*uid) else {
                return error(StatusCode::NOT_FOUND, "The list does not exist.");
            };
            let Some(pos) = subs.iter().position(|r| r["subscriber_uid"] == *sub) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "The subscriber does not exist in this list.",
                );
            };
            match (m, unsubscribe) {
                ("PUT", true) => {
                    subs[pos]["status"] = json!("unsubscribed");
                    success(json!({}))
                }
                ("PUT", false) => {
                    for (k, v) in data.as_object().expect("fake MailWizz") {
                        subs[pos][k] = v.clone();
                    }
                    success(json!({"data": {"record": subs[pos].clone()}}))
                }
                ("DELETE", false) => {
                    subs.remove(pos);
                    success(json!({}))
                }
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed."),
            }
        }
        ("POST", ["campaigns"]) => {
            let mut campaign = data["campaign"].clone();
            let kind = campaign["type"].as_str().unwrap_or("regular").to_owned();
            if !["regular", "autoresponder"].contains(&kind.as_str()) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "campaign[type] is invalid",
                );
            }
            // An autoresponder's options as MailWizz reads them: the event it follows and
            // its delay, each with MailWizz's default when absent, refused when invalid.
            if kind == "autoresponder" {
                let options = &mut campaign["options"];
                for (name, default) in [
                    ("autoresponder_event", "AFTER-SUBSCRIBE"),
                    ("autoresponder_time_unit", "minute"),
                    ("autoresponder_time_value", "0"),
                ] {
                    if options[name].is_null() {
                        options[name] = json!(default);
                    }
                }
                let event_ok = ["AFTER-SUBSCRIBE", "AFTER-CAMPAIGN-OPEN"]
                    .contains(&options["autoresponder_event"].as_str().unwrap_or(""));
                let unit_ok = ["minute", "hour", "day", "week", "month", "year"]
                    .contains(&options["autoresponder_time_unit"].as_str().unwrap_or(""));
                let value_ok = options["autoresponder_time_value"]
                    .as_str()
                    .is_some_and(|v| v.parse::<u32>().is_ok());
                if !(event_ok && unit_ok && value_ok) {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "campaign[options]: invalid autoresponder event, time unit or time value",
                    );
                }
            }
            let content = campaign["template"]["content"].as_str().map(decode);
            campaign["template"]["content"] = json!(content);
            campaign["status"] = json!("sending");
            f.campaigns.insert(new_uid.clone(), campaign);
            success(json!({"campaign_uid": new_uid}))
        }
        ("GET", ["campaigns", uid]) => match f.campaigns.get(*uid) {
            Some(c) => success(json!({"data": {"record": c}})),
            None => error(StatusCode::NOT_FOUND, "The campaign does not exist."),
        },
        // The figures a test arranged in the campaign's `stats` (else a fixed set), and
        // its status, as MailWizz answers them.
        ("GET", ["campaigns", uid, "stats"]) => match f.campaigns.get(*uid) {
            Some(c) => {
                let mut stats = match &c["stats"] {
                    Value::Object(_) => c["stats"].clone(),
                    _ => json!({"subscribers_count": 3, "processed_count": 3,
                        "delivery_success_count": 3, "opens_count": 2, "clicks_count": 1, "bounces_count": 0}),
                };
                stats["campaign_status"] = c["status"].clone();
                success(json!({"data": stats}))
            }
            None => error(StatusCode::NOT_FOUND, "The campaign does not exist."),
        },
        ("PUT", ["campaigns", uid, "pause-unpause"]) => match f.campaigns.get_mut(*uid) {
            Some(c) => {
                let now = if c["status"] == "paused" {
                    "sending"
                } else {
                    "paused"
                };
                c["status"] = json!(now);
                success(json!({"data": {"campaign": {"status": now}}}))
            }
            None => error(StatusCode::NOT_FOUND, "The campaign does not exist."),
        },
        ("POST", ["templates"]) => {
            let mut t = data["template"].clone();
            t["content"] = json!(t["content"].as_str().map(decode));
            f.templates.insert(new_uid.clone(), t);
            success(json!({"template_uid": new_uid}))
        }
        ("PUT", ["templates", uid]) => {
            let mut t = data["template"].clone();
            t["content"] = json!(t["content"].as_str().map(decode));
            match f.templates.get_mut(*uid) {
                Some(existing) => {
                    *existing = t;
                    success(json!({}))
                }
                None => error(StatusCode::NOT_FOUND, "The template does not exist."),
            }
        }
        ("POST", ["transactional-emails"]) => {
            let mut e = data["email"].clone();
            for field in ["body", "plain_text"] {
                if let Some(b) = e[field].as_str() {
                    e[field] = json!(decode(b));
                }
            }
            if e["to_email"].as_str().unwrap_or("").is_empty() {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "email[to_email] is required",
                );
            }
            f.emails.insert(new_uid.clone(), e);
            success(json!({"email_uid": new_uid}))
        }
        ("GET", ["delivery-servers", id]) if f.delivery_servers.is_some() => {
            match f.delivery_servers.as_ref().and_then(|s| s.get(*id)) {
                Some(server) => success(json!({"data": {"record": server}})),
                None => error(StatusCode::NOT_FOUND, "The delivery server does not exist."),
            }
        }
        ("PUT", ["delivery-servers", id]) if f.delivery_servers.is_some() => {
            let fields = data["delivery_server"].clone();
            match f.delivery_servers.as_mut().and_then(|s| s.get_mut(*id)) {
                Some(server) => {
                    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
                        server[k] = v;
                    }
                    success(json!({"data": {"record": server.clone()}}))
                }
                None => error(StatusCode::NOT_FOUND, "The delivery server does not exist."),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "The requested page does not exist."),
    }
}

fn serde_urlencoded_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts the fake on a free loopback port: its API base URL and its state.
pub async fn start() -> (String, Shared) {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/api/{*path}",
            get(handle).post(handle).put(handle).delete(handle),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("fake MailWizz");
    let addr = listener.local_addr().expect("fake MailWizz");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("fake MailWizz") });
    (format!("http://{addr}/api"), fake)
}

/// A real OpenSSH server (Debian's openssh-server) on a loopback port, for the current
/// user, with a fresh host key and client key in a temporary directory; stopped on drop.
pub struct TestSshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl TestSshd {
    /// Starts sshd; `None` when it is not installed (the caller says so and skips).
    pub fn start() -> Option<Self> {
        use std::process::Command;
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        for (key, comment) in [("host_key", "host"), ("client_key", "client")] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(path(key))
                .status()
                .expect("ssh-keygen");
            assert!(status.success(), "ssh-keygen failed");
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).expect("authorized_keys");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\n\
             AuthorizedKeysFile {auth}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
            host = path("host_key").display(),
            pid = path("sshd.pid").display(),
            auth = path("authorized_keys").display(),
        );
        std::fs::write(path("sshd_config"), config).expect("sshd_config");
        let host_pub = std::fs::read_to_string(path("host_key.pub")).expect("host key");
        let mut fields = host_pub.split_whitespace();
        let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        std::fs::write(
            path("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .expect("known_hosts");
        // Privilege separation wants its directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(path("sshd_config"))
            .stdin(std::process::Stdio::null())
            // Its log (the readiness probe below shows there as a closed connection).
            .stderr(std::fs::File::create(path("sshd.log")).expect("sshd.log"))
            .spawn()
            .expect("sshd");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { port, dir, child });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("sshd did not start on port {port}");
    }

    /// The current user at this server, with the client key and the server's host key.
    pub fn target(&self) -> crate::ssh::SshTarget {
        let user = std::process::Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|u| u.trim().to_owned())
            .unwrap_or_else(|| "root".into());
        let mut target = crate::ssh::SshTarget::new("127.0.0.1", self.port, &user);
        target.identity_file = Some(self.dir.path().join("client_key"));
        target.known_hosts = Some(self.dir.path().join("known_hosts"));
        target.timeout = std::time::Duration::from_secs(20);
        target
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the `pmta` stand-in does: validates a file (postmaster present, virtual-MTA blocks
/// balanced; refused while `state/refuse-config` exists), reloads (fails once when
/// `state/fail-reload` exists, else copies the running file to `state/loaded`), and reports
/// status once a file is loaded. Every reload is logged in `state/reloads`.
const FAKE_PMTA: &str = r#"#!/bin/sh
# Stand-in for PowerMTA's pmta command.
STATE='@STATE@'
CONFIG='@CONFIG@'
case "$1" in
  check-config)
    if [ -f "$STATE/refuse-config" ]; then echo "config error: $(cat "$STATE/refuse-config")" >&2; exit 1; fi
    grep -q '^postmaster ' "$2" || { echo "config error: no postmaster" >&2; exit 1; }
    opens=$(grep -c '^<virtual-mta ' "$2"); closes=$(grep -c '^</virtual-mta>' "$2")
    [ "$opens" = "$closes" ] || { echo "config error: unbalanced virtual-mta" >&2; exit 1; }
    exit 0 ;;
  reload)
    echo reload >> "$STATE/reloads"
    if [ -f "$STATE/fail-reload" ]; then rm -f "$STATE/fail-reload"; echo "reload: cannot bind 46.62.168.99" >&2; exit 1; fi
    cp "$CONFIG" "$STATE/loaded"; exit 0 ;;
  show)
    [ "$2" = status ] && [ -f "$STATE/loaded" ] && { echo "PowerMTA running"; exit 0; }
    exit 1 ;;
esac
exit 2
"#;

/// A PowerMTA host for deploy tests: a [`TestSshd`] and, in its directory, a `pmta`
/// stand-in script, the configuration's place and the script's state.
pub struct PmtaHost {
    pub sshd: TestSshd,
    pub plan: crate::pmta_deploy::RemotePlan,
    pub state: std::path::PathBuf,
}

impl PmtaHost {
    /// `None` when openssh-server is not installed, unless `EE_REQUIRE_SSHD` is set (CI
    /// installs it): then that is a failure.
    pub fn start() -> Option<Self> {
        use std::os::unix::fs::PermissionsExt;
        let Some(sshd) = TestSshd::start() else {
            assert!(
                std::env::var_os("EE_REQUIRE_SSHD").is_none(),
                "openssh-server is required"
            );
            eprintln!("skipped: openssh-server is not installed");
            return None;
        };
        let root = sshd.dir.path().join("remote");
        let state = root.join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        let config = root.join("etc/config");
        std::fs::create_dir_all(root.join("etc")).expect("etc dir");
        let script = root.join("pmta");
        std::fs::write(
            &script,
            FAKE_PMTA
                .replace("@STATE@", &state.display().to_string())
                .replace("@CONFIG@", &config.display().to_string()),
        )
        .expect("pmta script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("pmta script mode");
        let pmta = script.display().to_string();
        let plan = crate::pmta_deploy::RemotePlan {
            config_path: config.display().to_string(),
            dkim_dir: root.join("etc/dkim").display().to_string(),
            validate_command: format!("{pmta} check-config {{config}}"),
            reload_command: format!("{pmta} reload"),
            status_command: format!("{pmta} show status"),
        };
        Some(Self { sshd, plan, state })
    }

    /// How many reloads the host has seen.
    pub fn reloads(&self) -> usize {
        std::fs::read_to_string(self.state.join("reloads"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

/// A stand-in for PowerMTA's HTTP management interface: serves the XML page set for each
/// path (`/status`, `/queues`, `/vmtas`, `/domains`) when asked with `format=xml`, HTML
/// otherwise (as the web monitor does), 404 for anything else; records each path asked.
#[derive(Default)]
pub struct PmtaMonitor {
    pub pages: BTreeMap<String, String>,
    pub requests: Vec<String>,
    /// Answer 503 to everything (PowerMTA stopped behind a proxy, say).
    pub down: bool,
}

pub type SharedMonitor = Arc<Mutex<PmtaMonitor>>;

/// Starts the management-interface stand-in on a free loopback port: its base URL.
pub async fn start_pmta_monitor() -> (String, SharedMonitor) {
    async fn page(
        State(monitor): State<SharedMonitor>,
        Path(path): Path<String>,
        Query(query): Query<Vec<(String, String)>>,
    ) -> Response {
        let mut m = monitor.lock().expect("monitor");
        m.requests.push(format!("/{path}"));
        if m.down {
            return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
        }
        let Some(xml) = m.pages.get(&format!("/{path}")).cloned() else {
            return (StatusCode::NOT_FOUND, "<html>not found</html>").into_response();
        };
        if query.iter().any(|(k, v)| k == "format" && v == "xml") {
            ([("content-type", "text/xml")], xml).into_response()
        } else {
            (
                [("content-type", "text/html")],
                "<html>PowerMTA monitor</html>",
            )
                .into_response()
        }
    }
    let monitor: SharedMonitor = Arc::default();
    let app = Router::new()
        .route("/{*path}", get(page))
        .with_state(monitor.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), monitor)
}
