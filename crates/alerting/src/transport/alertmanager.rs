//! `alertmanager`: Prometheus Alertmanager API v2, posted to **every** replica in `urls`
//! at once; delivered only when every one accepted. Re-sending to all after a partial
//! failure is safe: Alertmanager deduplicates alerts by label set (and a cluster gossips
//! them), so a replica that already has the alert only refreshes it. The payload is
//! [`crate::payload::alertmanager`].
//!
//! Config: `urls` (list, or comma-separated string, of replica base URLs), `labels` and
//! `annotations` (static, added to every alert), `generator_url`, `ends_after_secs`
//! (86400; 0: no `endsAt`), `username`/`password` (basic auth; the password is a
//! secret), `title` (annotation `summary`) and `body` (`description`) templates,
//! `timeout_secs` (10).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{self, field_error, OneOrMany, Texts};
use super::http::{self, Request};
use super::{
    CheckFuture, Delivered, DeliveryError, Kind, SendFuture, Transport, TransportConfigError,
};
use crate::notification::Notification;
use crate::payload::{alertmanager as payload, join_url};

pub(crate) static KIND: Kind = Kind {
    name: "alertmanager",
    build: |c| Ok(Arc::new(Alertmanager::parse(c)?) as Arc<dyn Transport>),
    validate: |c| Alertmanager::parse(c).map(drop),
    secrets: &["password"],
    redact: Some(redact),
};

fn redact(m: &mut Map<String, Value>) {
    config::redact_url_field(m, "urls");
}

/// A firing alert lasts a day after its last notification unless told otherwise.
const ENDS_AFTER: i64 = 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    urls: OneOrMany,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    generator_url: Option<String>,
    ends_after_secs: Option<i64>,
    username: Option<String>,
    password: Option<String>,
    title: Option<String>,
    body: Option<String>,
    timeout_secs: Option<f64>,
}

struct Replica {
    url: Url,
    shown: String,
}

struct Alertmanager {
    replicas: Vec<Replica>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    generator_url: Option<String>,
    ends_after: i64,
    auth: Option<HeaderValue>,
    texts: Texts,
    timeout: Duration,
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl Alertmanager {
    fn parse(v: &Value) -> Result<Alertmanager, TransportConfigError> {
        let c: Config = config::parse(v)?;
        let urls = c.urls.into_vec();
        if urls.is_empty() {
            return Err(field_error(
                "urls",
                "at least one Alertmanager URL is needed",
            ));
        }
        let mut replicas = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            let field = format!("urls[{i}]");
            config::http_url(&field, u)?;
            let url = config::http_url(&field, &join_url(u, payload::PATH))?;
            replicas.push(Replica {
                shown: config::shown_url(&url, true),
                url,
            });
        }
        for k in c.labels.keys() {
            if payload::OWN_LABELS.contains(&k.as_str()) {
                return Err(field_error(
                    &format!("labels.{k}"),
                    "set by Lookout itself; choose another name",
                ));
            }
            if !valid_label_name(k) {
                return Err(field_error(
                    &format!("labels.{k}"),
                    "not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                ));
            }
        }
        let ends_after = c.ends_after_secs.unwrap_or(ENDS_AFTER);
        if ends_after < 0 {
            return Err(field_error("ends_after_secs", "negative"));
        }
        let auth = match (&c.username, &c.password) {
            (None, None) => None,
            (Some(u), Some(p)) => Some(basic_auth(u, p)?),
            _ => return Err(field_error("password", "username and password go together")),
        };
        Ok(Alertmanager {
            replicas,
            labels: c.labels,
            annotations: c.annotations,
            generator_url: c.generator_url,
            ends_after,
            auth,
            texts: Texts::compile("title", c.title.as_deref(), "body", c.body.as_deref())?,
            timeout: config::timeout(c.timeout_secs, 10)?,
        })
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let texts = self.texts.render(n)?;
        let o = payload::Options {
            labels: Some(&self.labels),
            annotations: Some(&self.annotations),
            generator_url: self.generator_url.as_deref(),
            ends_after: self.ends_after,
        };
        let body = payload::alerts(n, &texts, &o);
        // All replicas at once: one slow replica must not delay the others' copy.
        let mut set = tokio::task::JoinSet::new();
        for (i, r) in self.replicas.iter().enumerate() {
            let mut req = Request::json(r.url.clone(), r.shown.clone(), &body, n, self.timeout);
            if let Some(a) = &self.auth {
                req.headers.insert(AUTHORIZATION, a.clone());
            }
            set.spawn(async move { (i, http::send(req).await) });
        }
        let mut results: Vec<Option<Result<Delivered, DeliveryError>>> =
            (0..self.replicas.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, r)) => results[i] = Some(r),
                Err(e) => {
                    return Err(DeliveryError::Transient(format!(
                        "alertmanager: a send task failed: {e}"
                    )))
                }
            }
        }
        summarize(&self.replicas, results)
    }
}

fn basic_auth(user: &str, password: &str) -> Result<HeaderValue, TransportConfigError> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {token}"))
        .map_err(|_| field_error("username", "not valid in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Delivered when every replica accepted; otherwise names each failure. Transient if
/// any failure is (a retry can fix it), permanent when all failures are 4xx-like.
fn summarize(
    replicas: &[Replica],
    results: Vec<Option<Result<Delivered, DeliveryError>>>,
) -> Result<Delivered, DeliveryError> {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut transient = false;
    for (r, res) in replicas.iter().zip(results) {
        match res {
            Some(Ok(d)) => ok.push(d.detail),
            Some(Err(e)) => {
                transient |= e.is_transient();
                failed.push(e.message().to_owned());
            }
            None => {
                transient = true;
                failed.push(format!("{}: no result", r.shown));
            }
        }
    }
    let total = replicas.len();
    if failed.is_empty() {
        return Ok(Delivered {
            detail: format!(
                "{total} of {total} Alertmanager replicas accepted: {}",
                ok.join("; ")
            ),
        });
    }
    let mut msg = format!(
        "{} of {total} Alertmanager replicas failed: {}",
        failed.len(),
        failed.join("; ")
    );
    if !ok.is_empty() {
        msg.push_str(&format!(" (accepted: {})", ok.join("; ")));
    }
    Err(if transient {
        DeliveryError::Transient(msg)
    } else {
        DeliveryError::Permanent(msg)
    })
}

impl Transport for Alertmanager {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> SendFuture<'a> {
        Box::pin(self.deliver(n))
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for r in &self.replicas {
                match http::check_connect(&r.url, self.timeout).await {
                    Ok(m) => ok.push(m),
                    Err(e) => failed.push(e),
                }
            }
            if failed.is_empty() {
                Ok(ok.join("; "))
            } else {
                Err(failed.join("; "))
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transport::{redact, validate_config, REDACTED};
    use serde_json::json;

    #[test]
    fn basic_auth_header() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame").unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn config_checks() {
        let e = |c: Value| validate_config("alertmanager", &c).unwrap_err().to_string();
        assert_eq!(
            e(json!({"urls": []})),
            "`urls`: at least one Alertmanager URL is needed"
        );
        assert!(e(json!({"urls": ["http://a:9093", "nope"]})).starts_with("`urls[1]`: not a URL"));
        assert_eq!(
            e(json!({"urls": "http://a:9093", "labels": {"severity": "x"}})),
            "`labels.severity`: set by Lookout itself; choose another name"
        );
        assert!(
            e(json!({"urls": "http://a:9093", "labels": {"9x": "y"}})).contains("not a label name")
        );
        assert!(e(json!({"urls": "http://a:9093", "username": "u"})).contains("go together"));
        validate_config(
            "alertmanager",
            &json!({"urls": "http://a:9093, http://b:9093", "labels": {"team": "noc"}}),
        )
        .unwrap();
    }

    #[test]
    fn password_and_url_credentials_are_redacted() {
        let r = redact(
            "alertmanager",
            &json!({"urls": ["http://u:p@a:9093/"], "password": "pw", "username": "u"}),
        );
        assert_eq!(r["password"], REDACTED);
        assert_eq!(r["urls"][0], "http://********@a:9093/");
    }

    #[test]
    fn summary_names_failures() {
        let reps: Vec<Replica> = ["http://a:1/api/v2/alerts", "http://b:2/api/v2/alerts"]
            .iter()
            .map(|u| Replica {
                url: Url::parse(u).unwrap(),
                shown: (*u).into(),
            })
            .collect();
        let ok = |s: &str| Some(Ok(Delivered { detail: s.into() }));
        assert!(summarize(&reps, vec![ok("a"), ok("b")]).is_ok());
        let e = summarize(
            &reps,
            vec![
                ok("a"),
                Some(Err(DeliveryError::Transient("b down".into()))),
            ],
        )
        .unwrap_err();
        assert!(e.is_transient());
        assert_eq!(
            e.message(),
            "1 of 2 Alertmanager replicas failed: b down (accepted: a)"
        );
        let e = summarize(
            &reps,
            vec![
                Some(Err(DeliveryError::Permanent("a 400".into()))),
                Some(Err(DeliveryError::Permanent("b 400".into()))),
            ],
        )
        .unwrap_err();
        assert!(!e.is_transient());
    }
}
