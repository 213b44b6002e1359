//! Reading a transport's config: typed fields with errors that name the field, URLs,
//! timeouts, templates, and the redaction of secrets inside values.

use std::time::Duration;

use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{DeliveryError, TransportConfigError, REDACTED};
use crate::notification::Notification;
use crate::template::Template;

/// Deserializes `config` into `T` (whose struct denies unknown fields): an error names
/// the field (`headers.X-Token: invalid type ...`, `unknown field `tiemout_secs``).
pub fn parse<T: DeserializeOwned>(config: &Value) -> Result<T, TransportConfigError> {
    if !config.is_object() {
        return Err(TransportConfigError::NotAnObject);
    }
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." {
            TransportConfigError::Config(message)
        } else {
            TransportConfigError::Field {
                field: path,
                message,
            }
        }
    })
}

pub fn field_error(field: &str, message: impl Into<String>) -> TransportConfigError {
    TransportConfigError::Field {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// An `http`/`https` URL with a host.
pub fn http_url(field: &str, s: &str) -> Result<Url, TransportConfigError> {
    let url = Url::parse(s.trim()).map_err(|e| field_error(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(field_error(
            field,
            format!("scheme `{}` is not http or https", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(field_error(field, "the URL has no host"));
    }
    Ok(url)
}

/// A URL as logs and delivery details may show it: never credentials or the query; the
/// path only when it holds no secret (`keep_path`), else `/********`.
pub fn shown_url(url: &Url, keep_path: bool) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = if keep_path {
        url.path().to_owned()
    } else {
        format!("/{REDACTED}")
    };
    format!("{}://{host}{port}{path}", url.scheme())
}

/// `timeout_secs`: fractions allowed, at most 10 minutes.
pub fn timeout(secs: Option<f64>, default_secs: u64) -> Result<Duration, TransportConfigError> {
    match secs {
        None => Ok(Duration::from_secs(default_secs)),
        Some(s) if s > 0.0 && s <= 600.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(field_error(
            "timeout_secs",
            format!("{s} is not between 0 and 600 seconds"),
        )),
    }
}

/// A template field, or its default when absent.
pub fn template(
    field: &str,
    src: Option<&str>,
    default: &str,
) -> Result<Template, TransportConfigError> {
    Template::compile(src.unwrap_or(default)).map_err(|error| TransportConfigError::Template {
        field: field.to_owned(),
        error,
    })
}

/// A transport's two texts: the subject/title and the body.
pub struct Texts {
    title_field: &'static str,
    body_field: &'static str,
    title: Template,
    body: Template,
}

impl Texts {
    /// Compiles the `title_field` and `body_field` templates (defaults when absent).
    pub fn compile(
        title_field: &'static str,
        title: Option<&str>,
        body_field: &'static str,
        body: Option<&str>,
    ) -> Result<Texts, TransportConfigError> {
        Ok(Texts {
            title_field,
            body_field,
            title: template(title_field, title, crate::template::DEFAULT_SUBJECT)?,
            body: template(body_field, body, crate::template::DEFAULT_BODY)?,
        })
    }

    /// Renders both for `n`; a template that fails here will fail again: permanent.
    pub fn render(&self, n: &Notification) -> Result<crate::payload::Texts, DeliveryError> {
        let ctx = crate::template::context(n);
        let r = |field: &str, t: &Template| {
            t.render_context(&ctx)
                .map_err(|e| DeliveryError::Permanent(format!("template `{field}`: {e}")))
        };
        Ok(crate::payload::Texts {
            title: r(self.title_field, &self.title)?,
            body: r(self.body_field, &self.body)?,
        })
    }
}

/// A string or a list of strings; a string is split on commas (LibreNMS stores
/// `a@x, b@y` and `http://am1:9093,http://am2:9093`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            OneOrMany::Many(v) => v.into_iter().map(|s| s.trim().to_owned()).collect(),
        }
    }
}

/// Redacts credentials and the query string of the URL string at `m[key]` (or of each
/// URL in a list, or comma-separated string, of URLs).
pub fn redact_url_field(m: &mut Map<String, Value>, key: &str) {
    match m.get_mut(key) {
        Some(Value::String(s)) => {
            let parts: Vec<String> = s.split(',').map(|p| redact_url(p.trim())).collect();
            *s = parts.join(",");
        }
        Some(Value::Array(a)) => {
            for v in a {
                if let Value::String(s) = v {
                    *s = redact_url(s);
                }
            }
        }
        _ => {}
    }
}

/// `https://user:pw@host/p?token=x` → `https://********@host/p?********`. Not a URL:
/// redacted whole.
pub fn redact_url(s: &str) -> String {
    let Ok(mut url) = Url::parse(s) else {
        return REDACTED.into();
    };
    let had_user = !url.username().is_empty() || url.password().is_some();
    let had_query = url.query().is_some();
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.set_query(None);
    url.set_fragment(None);
    let mut out = url.to_string();
    if had_user {
        let at = url.scheme().len() + 3;
        out.insert_str(at, &format!("{REDACTED}@"));
    }
    if had_query {
        out.push('?');
        out.push_str(REDACTED);
    }
    out
}

/// Header values that never hold a secret; every other header's value is redacted.
const PLAIN_HEADERS: &[&str] = &["content-type", "accept", "user-agent"];

/// Redacts the values of the header map at `m[key]`, but for harmless headers.
pub fn redact_header_values(m: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Object(h)) = m.get_mut(key) {
        for (name, v) in h.iter_mut() {
            if !PLAIN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                *v = Value::String(REDACTED.into());
            }
        }
    }
}

/// Redacts every value of the map at `m[key]` (a script's environment).
pub fn redact_map_values(m: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Object(h)) = m.get_mut(key) {
        for v in h.values_mut() {
            *v = Value::String(REDACTED.into());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct C {
        url: String,
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<C>(&json!({"url": "x", "headers": {"X-A": 5}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`headers.X-A`: invalid type: integer `5`, expected a string"
        );
        let e = parse::<C>(&json!({})).unwrap_err();
        assert_eq!(e.to_string(), "transport config: missing field `url`");
        let e = parse::<C>(&json!({"url": "x", "tiemout": 1})).unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown field `tiemout`, expected `url` or `headers`"),
            "{e}"
        );
    }

    #[test]
    fn urls() {
        assert!(http_url("url", "ftp://x/")
            .unwrap_err()
            .to_string()
            .contains("`url`: scheme `ftp`"));
        assert!(http_url("url", "nope").is_err());
        let u = http_url("url", "https://u:p@hooks.example.net:8443/T1/B2?token=abc").unwrap();
        assert_eq!(shown_url(&u, true), "https://hooks.example.net:8443/T1/B2");
        assert_eq!(
            shown_url(&u, false),
            "https://hooks.example.net:8443/********"
        );
    }

    #[test]
    fn url_redaction() {
        assert_eq!(
            redact_url("https://u:p@h.example.net/x?token=abc"),
            "https://********@h.example.net/x?********"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9093/"),
            "http://127.0.0.1:9093/"
        );
        assert_eq!(redact_url("not a url"), REDACTED);
        let mut m = json!({"urls": "http://a:1/,http://u:p@b:2/", "headers": {"Authorization": "Bearer x", "Content-Type": "application/json"}});
        let m = m.as_object_mut().unwrap();
        redact_url_field(m, "urls");
        redact_header_values(m, "headers");
        assert_eq!(m["urls"], "http://a:1/,http://********@b:2/");
        assert_eq!(m["headers"]["Authorization"], REDACTED);
        assert_eq!(m["headers"]["Content-Type"], "application/json");
    }

    #[test]
    fn one_or_many_and_timeouts() {
        let v: OneOrMany = serde_json::from_value(json!("a@x, b@y,")).unwrap();
        assert_eq!(v.into_vec(), ["a@x", "b@y"]);
        let v: OneOrMany = serde_json::from_value(json!([" a@x "])).unwrap();
        assert_eq!(v.into_vec(), ["a@x"]);
        assert_eq!(timeout(None, 10).unwrap(), Duration::from_secs(10));
        assert_eq!(timeout(Some(0.5), 10).unwrap(), Duration::from_millis(500));
        assert!(timeout(Some(0.0), 10)
            .unwrap_err()
            .to_string()
            .contains("timeout_secs"));
        assert!(timeout(Some(601.0), 10).is_err());
    }
}
