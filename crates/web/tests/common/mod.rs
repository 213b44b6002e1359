//! Helpers shared by the web integration tests: requests, responses, login through the
//! form, a cheap password hash.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::Value as Json;
use tower::ServiceExt as _;

pub mod fixture;

pub const USER: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
    /// `name=value` of the Set-Cookie for `name`, as a browser would send it back.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_string())
    }
}

/// The value of the hidden `_csrf` input of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let i = html.find(marker).expect("no _csrf field") + marker.len();
    html[i..].split('"').next().unwrap().to_string()
}

/// A real argon2id PHC hash with a tiny cost (1 MiB, t=1): debug builds spend ~0.7 s per
/// default-cost verification, and verification takes its cost from the hash. One test
/// (`login_good_and_bad`) uses the production cost from `hash_password`.
pub fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::CustomizedPasswordHasher as _;
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    argon2::Argon2::default()
        .hash_password_with_params(password.as_bytes(), b"test-salt-123456", params)
        .unwrap()
        .to_string()
}

pub fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

pub fn post_form(uri: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut b =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body)).unwrap()
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn api(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header("X-Auth-Token", t);
    }
    b.body(Body::empty()).unwrap()
}

pub async fn send(router: &Router, req: Request<Body>) -> Resp {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// GET /login then POST the form with its CSRF token and cookie.
pub async fn login_on(router: &Router, user: &str, password: &str) -> Resp {
    let form = send(router, get("/login", None)).await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = form.cookie("lookout_login").expect("no login cookie");
    let csrf = csrf_of(&form.body);
    send(
        router,
        post_form(
            "/login",
            Some(&login_cookie),
            &[
                ("username", user),
                ("password", password),
                ("_csrf", &csrf),
                ("next", "/devices"),
            ],
        ),
    )
    .await
}
