//! A minimal W3C WebDriver client for the browser tests: Debian's chromedriver driving
//! headless Chromium, with the handful of commands the tests need (navigate, find, type,
//! click, run a script, read and set cookies, screenshot).
#![allow(dead_code)]

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::free_tcp_port;

/// The chromedriver process; killed with the client.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One browser session (its own profile, so cookies are not shared between two).
pub struct WebDriver {
    http: ureq::Agent,
    base: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl WebDriver {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session.
    pub fn start() -> WebDriver {
        let bin = std::path::Path::new("/usr/bin/chromedriver");
        assert!(
            bin.exists(),
            "chromedriver missing: apt-get install chromium chromium-driver"
        );
        let port = free_tcp_port();
        let driver = std::process::Command::new(bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Driver(driver);
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http
            .get(&format!("{root}/status"))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut resp = http
            .post(&format!("{root}/session"))
            .send_json(&caps)
            .unwrap();
        let v: Value = resp.body_mut().read_json().unwrap();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        WebDriver {
            http,
            base: format!("{root}/session/{id}"),
            _driver: driver,
            _profile: profile,
        }
    }

    /// One WebDriver command; panics with the driver's error.
    pub fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let mut resp = match method {
            "GET" => self.http.get(&url).call().unwrap(),
            "DELETE" => self.http.delete(&url).call().unwrap(),
            _ => self.http.post(&url).send_json(&body).unwrap(),
        };
        let v: Value = resp.body_mut().read_json().unwrap();
        assert!(
            v["value"].get("error").is_none(),
            "WebDriver {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url}));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn source(&self) -> String {
        self.cmd("GET", "/source", Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The element id of the first match of `css`; panics when there is none.
    pub fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT_KEY].as_str().unwrap().to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    /// Runs `js` in the page (synchronously) and returns its result.
    pub fn script(&self, js: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({"script": js, "args": []}))
    }

    /// Every cookie of the current page as `(name, value)`, HttpOnly ones included.
    pub fn cookies(&self) -> Vec<(String, String)> {
        let v = self.cmd("GET", "/cookie", Value::Null);
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Sets a cookie for the current page's site (open a page of the site first).
    pub fn add_cookie(&self, name: &str, value: &str) {
        self.cmd(
            "POST",
            "/cookie",
            json!({"cookie": {"name": name, "value": value, "path": "/"}}),
        );
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let b64 = self.cmd("GET", "/screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}
