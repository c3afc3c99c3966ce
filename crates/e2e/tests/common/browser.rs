//! A real browser for the admin UI's tests: Debian's Chromium, headless, driven over
//! WebDriver by chromedriver on a loopback port of its own. Screenshots go to
//! `target/ui-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn found(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

pub fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// A browser, or `None` (with a note) when Chromium is not installed and the run does
    /// not require it (`EE_REQUIRE_BROWSER=1`, as CI sets, makes its absence a failure;
    /// `EE_SKIP_BROWSER=1` skips on purpose, for CI's second database run).
    pub async fn start() -> Option<Self> {
        if std::env::var("EE_SKIP_BROWSER").is_ok_and(|v| v == "1") {
            eprintln!("browser tests skipped: EE_SKIP_BROWSER=1");
            return None;
        }
        let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
        if !found(chromium) || !found(driver) {
            let required = std::env::var("EE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "EE_REQUIRE_BROWSER=1 but {chromium} or {driver} is missing (apt-get install chromium chromium-driver)"
            );
            eprintln!("browser tests skipped: install chromium and chromium-driver to run them");
            return None;
        }
        // Until chromedriver listens: a cold start on a loaded machine (CI's first browser
        // test, right after the packages are installed) took more than 5 s once. A driver
        // that exits (its port taken meanwhile by another test) is started again.
        let (port, child) = 'started: {
            for _ in 0..3 {
                let port = free_port();
                let mut child = tokio::process::Command::new(driver)
                    .arg(format!("--port={port}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("chromedriver starts");
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while tokio::time::Instant::now() < deadline {
                    if tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok()
                    {
                        break 'started (port, child);
                    }
                    if child.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            panic!("chromedriver did not listen (three tries of 30 s)");
        };
        let profile = tempfile::Builder::new()
            .prefix("ee-chromium-")
            .tempdir()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=en-US", "--no-first-run",
                         format!("--user-data-dir={}", profile.path().display())],
                "prefs": {"intl.accept_languages": "en-US,en"}
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Some(Self {
            client,
            driver: child,
            profile,
        })
    }

    /// Logs in at the admin UI of the server at `base` and waits for its header.
    pub async fn log_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/admin/")).await;
        self.fill("#login-email", email).await;
        self.fill("#login-password", password).await;
        self.click("#login-form button[type=submit]").await;
        self.wait("header.top").await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn wait(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Waits until `script` (a function body returning a value) returns something truthy;
    /// returns it.
    /// Waits until the page has what it asked the API for (no request under way, as
    /// `api.js` counts them): what it would show is shown, so its absence means something.
    pub async fn settled(&self) {
        self.until(
            "the page's requests to finish",
            "return document.documentElement.dataset.requests === '0';",
        )
        .await;
    }

    pub async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap();
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if tokio::time::Instant::now() >= deadline {
                let shot = self.shot("timed-out").await;
                let text = self
                    .client
                    .execute("return document.body.innerText;", vec![])
                    .await
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for {what} (see {}): {text}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first element matching `css`, once it contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let script = format!(
            "const e = document.querySelector({css}); return e && e.textContent.includes({text}) ? e.textContent : null;",
            css = json!(css),
            text = json!(text)
        );
        self.until(&format!("{css} to contain {text:?}"), &script)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.wait(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Sets a select's value (and tells the page it changed).
    pub async fn select(&self, css: &str, value: &str) {
        self.wait(css).await;
        self.client
            .execute(
                "const s = document.querySelector(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true}));",
                vec![json!(css), json!(value)],
            )
            .await
            .unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.wait(css).await.click().await.unwrap();
    }

    /// Clicks the first button whose text is `text` (inside `scope`).
    pub async fn click_button(&self, scope: &str, text: &str) {
        let script = format!(
            "return [...document.querySelectorAll({scope} + ' button')].find((b) => b.textContent.trim() === {text}) ? true : null;",
            scope = json!(scope),
            text = json!(text)
        );
        self.until(&format!("a {text:?} button"), &script).await;
        self.client
            .execute(
                "[...document.querySelectorAll(arguments[0] + ' button')].find((b) => b.textContent.trim() === arguments[1]).click();",
                vec![json!(scope), json!(text)],
            )
            .await
            .unwrap();
    }

    /// Runs `script` in the page (an async function body) and returns what it resolves to.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute_async(
                &format!("const done = arguments[arguments.length - 1]; (async () => {{ {script} }})().then(done, (e) => done({{error: String(e)}}));"),
                vec![],
            )
            .await
            .unwrap()
    }

    /// What `script` (a function body) returns inside the page's first frame, once `done`
    /// accepts it, or what it returned last after 10 s (the frame reloads as a preview
    /// is drawn again: it is entered anew at each try).
    pub async fn in_frame(&self, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut seen = Value::Null;
        for _ in 0..100 {
            self.client.enter_frame(0).await.unwrap();
            seen = self.client.execute(script, vec![]).await.unwrap();
            self.client.enter_parent_frame().await.unwrap();
            if done(&seen) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    /// Drags the element `from` with the mouse (pressed, moved in steps, released) onto
    /// `to`, `dy` pixels below its centre (negative: above): real pointer events, as a
    /// user's hand makes them.
    pub async fn drag(&self, from: &str, to: &str, dy: f64) {
        let source = self.wait(from).await;
        let target = self.wait(to).await;
        let mut mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: source,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            });
        for _ in 0..3 {
            mouse = mouse.then(PointerAction::MoveBy {
                duration: Some(Duration::from_millis(30)),
                x: 4.0,
                y: 4.0,
            });
        }
        mouse = mouse.then(PointerAction::MoveToElement {
            element: target.clone(),
            duration: Some(Duration::from_millis(200)),
            x: 0.0,
            y: dy - 6.0,
        });
        for _ in 0..3 {
            mouse = mouse.then(PointerAction::MoveBy {
                duration: Some(Duration::from_millis(50)),
                x: 0.0,
                y: 2.0,
            });
        }
        mouse = mouse
            .then(PointerAction::Pause {
                duration: Duration::from_millis(150),
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.unwrap();
        self.client.release_actions().await.unwrap();
    }

    pub async fn shot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshots_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
        drop(self.profile);
    }
}
