//! Notification templates (subjects, bodies, chat messages): Jinja syntax through
//! `minijinja`, over the variables a LibreNMS user knows from its Blade templates
//! (`hostname`, `sysName`, `rule`, `severity`, `state`, `faults`, `elapsed`, ...).
//!
//! A template is compiled when its transport is saved ([`Template::compile`]): a syntax
//! error comes back with its line and column, and a variable that no notification has is
//! refused there too (a typo would otherwise render as nothing at 3 a.m.), and so is what
//! fails to render a sample notification (an unknown filter). Rendering is
//! pure: the variables come from the [`Notification`] alone ([`context`]), and a render is
//! bounded (fuel), so a template cannot loop forever inside the delivery loop.

use std::fmt;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::notification::{Notification, NotificationKind};

/// The default subject (email subject, chat title).
pub const DEFAULT_SUBJECT: &str = "{{ severity|upper }} {{ state }}: {{ rule }} on {{ hostname }}";

/// The default body (email body, chat text), LibreNMS's default template in Jinja.
pub const DEFAULT_BODY: &str = "\
{{ title }}
Severity: {{ severity }}
{% if state == \"recovery\" %}Time elapsed: {{ elapsed }}
{% endif %}Timestamp: {{ timestamp }}
Unique-ID: {{ alert_id }}
Rule: {{ rule }}
Device: {{ hostname }}{% if sysName and sysName != hostname %} ({{ sysName }}){% endif %}
{% if location %}Location: {{ location }}
{% endif %}{% if faults %}Faults:
{% for f in faults %}  #{{ loop.index }}: {% if f.label %}{{ f.label }} {% endif %}\
{% for k, v in f|items if k not in [\"label\", \"entity_type\", \"entity_id\"] %}{{ k }}={{ v }} {% endfor %}
{% endfor %}{% endif %}\
{% if procedure_url %}Procedure: {{ procedure_url }}
{% endif %}";

/// Every variable a template may use, with what it holds (the docs table).
pub const VARIABLES: &[(&str, &str)] = &[
    ("hostname", "the device's hostname (as added)"),
    ("sysName", "SNMP sysName (empty when unknown)"),
    ("os", "LibreNMS OS name"),
    ("hardware", "hardware model"),
    ("location", "sysLocation"),
    ("uptime", "seconds since the agent restarted (none when unknown)"),
    ("uptime_human", "the same, e.g. `3d 4h 5m`"),
    ("device_id", "id in `devices`"),
    ("rule", "the rule's name"),
    ("name", "the rule's name (LibreNMS's `$alert->name`)"),
    ("rule_id", "id in `alert_rules`"),
    ("severity", "`ok`, `warning` or `critical`"),
    (
        "state",
        "`alert`, `repeat`, `worse`, `better`, `recovery` or `test`",
    ),
    (
        "state_code",
        "LibreNMS's number: 0 recovery, 1 alert/repeat/test, 3 worse, 4 better",
    ),
    (
        "faults",
        "list of objects: the fields the rule looked at (`f[\"ports.ifName\"]`), and `label`, `entity_type`, `entity_id` for an entity",
    ),
    ("entity", "`{kind, id, label}` of the alert's entity, or none"),
    ("elapsed", "time since the alert triggered, e.g. `1h 5m 0s`"),
    ("elapsed_secs", "the same in seconds"),
    (
        "timestamp",
        "when this transition happened, `2026-01-02 03:04:05 UTC`",
    ),
    ("timestamp_iso", "the same, RFC 3339 (`2026-01-02T03:04:05Z`)"),
    ("triggered_at", "when the alert first triggered, RFC 3339"),
    ("procedure_url", "the rule's procedure URL (empty when none)"),
    ("alert_id", "id in `alerts`"),
    ("sequence", "0 for an alert's first notification, then +1 each"),
    ("idempotency_key", "the same on every delivery attempt of this notification"),
    ("title", "the default subject, rendered"),
];

/// Most instructions one render may run: above any real template (the default body
/// renders 5,000 faults of 8 fields within it), low enough to stop a runaway loop fast.
const FUEL: u64 = 2_000_000;

/// A template that does not compile, or failed to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based; `None` when the error is about the template as a whole.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub col: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TemplateError {}

impl TemplateError {
    fn from_minijinja(e: &minijinja::Error, src: &str) -> TemplateError {
        let message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        let col = e.range().map(|r| column(src, r.start));
        let line = e
            .line()
            .or_else(|| e.range().map(|r| line_of(src, r.start)));
        TemplateError { line, col, message }
    }
}

/// 1-based line of a byte offset.
fn line_of(src: &str, offset: usize) -> usize {
    let offset = floor_char_boundary(src, offset);
    src[..offset].matches('\n').count() + 1
}

/// 1-based column (in characters) of a byte offset.
fn column(src: &str, offset: usize) -> usize {
    let offset = floor_char_boundary(src, offset);
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    src[line_start..offset].chars().count() + 1
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A compiled template.
pub struct Template {
    env: Environment<'static>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template").finish_non_exhaustive()
    }
}

const NAME: &str = "template";

impl Template {
    /// Compiles `src`; refuses syntax errors (with line and column), variables that are
    /// not in [`VARIABLES`], and what fails to render the [`example`] notification
    /// (unknown filters, wrong arguments, a runaway loop).
    pub fn compile(src: &str) -> Result<Template, TemplateError> {
        let mut env = Environment::new();
        // Lenient: a fault object without some field renders empty, like Blade; unknown
        // top-level names are refused below, at compile time instead.
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_fuel(Some(FUEL));
        // A body ending in a newline keeps it (mail bodies, scripts' stdin).
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        env.add_template_owned(NAME, src.to_owned())
            .map_err(|e| TemplateError::from_minijinja(&e, src))?;
        let t = Template { env };
        t.check_variables(src)?;
        // Unknown filters and wrong arguments only show when rendering: render the
        // example notification now so the operator hears of them when saving.
        t.render(&example())?;
        Ok(t)
    }

    fn check_variables(&self, src: &str) -> Result<(), TemplateError> {
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| TemplateError::from_minijinja(&e, src))?;
        let mut unknown: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !VARIABLES.iter().any(|(k, _)| k == v))
            .filter(|v| !self.env.globals().any(|(g, _)| g == v))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        let first = &unknown[0];
        let at = src.find(first.as_str());
        let known: Vec<&str> = VARIABLES.iter().map(|(k, _)| *k).collect();
        Err(TemplateError {
            line: at.map(|o| line_of(src, o)),
            col: at.map(|o| column(src, o)),
            message: format!(
                "unknown variable `{}`; known: {}",
                unknown.join("`, `"),
                known.join(", ")
            ),
        })
    }

    /// Renders the template for `n`.
    pub fn render(&self, n: &Notification) -> Result<String, TemplateError> {
        self.render_context(&context(n))
    }

    /// Renders with a context already built by [`context`] (several templates, one
    /// notification).
    pub fn render_context(&self, ctx: &Value) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| TemplateError::from_minijinja(&e, ""))?;
        tmpl.render(ctx).map_err(|e| {
            let src = tmpl.source();
            TemplateError::from_minijinja(&e, src)
        })
    }
}

/// A template field of a transport's config: the operator's text, or a default.
pub fn compile_or(src: Option<&str>, default: &str) -> Result<Template, TemplateError> {
    Template::compile(src.unwrap_or(default))
}

/// The variables of `n`, as templates see them.
pub fn context(n: &Notification) -> Value {
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    let elapsed = n.elapsed_secs();
    let v = serde_json::json!({
        "hostname": n.hostname,
        "sysName": text(&n.sys_name),
        "os": text(&n.os),
        "hardware": text(&n.hardware),
        "location": text(&n.location),
        "uptime": n.uptime_secs,
        "uptime_human": n.uptime_secs.map(|s| human_duration(s as i64)).unwrap_or_default(),
        "device_id": n.device_id,
        "rule": n.rule_name,
        "name": n.rule_name,
        "rule_id": n.rule_id,
        "severity": n.severity,
        "state": n.kind.as_str(),
        "state_code": state_code(n.kind),
        "faults": n.faults,
        "entity": n.entity,
        "elapsed": human_duration(elapsed),
        "elapsed_secs": elapsed,
        "timestamp": n.timestamp.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        "timestamp_iso": rfc3339(n.timestamp),
        "triggered_at": rfc3339(n.triggered_at),
        "procedure_url": text(&n.procedure_url),
        "alert_id": n.alert_id,
        "sequence": n.sequence,
        "idempotency_key": n.idempotency_key,
        "title": title(n),
    });
    Value::from(Serde(v))
}

/// A realistic notification (a port down on a router), for template previews, transport
/// tests (`lookout alert transport test`) and this crate's tests.
pub fn example() -> Notification {
    use chrono::TimeZone;
    let triggered = chrono::Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    Notification {
        idempotency_key: "lookout-alert:r7:d3:ports:12:alert:0".into(),
        kind: NotificationKind::Alert,
        alert_id: 42,
        rule_id: 7,
        rule_name: "Port status up/down".into(),
        severity: "critical".into(),
        device_id: 3,
        hostname: "core1.example.net".into(),
        sys_name: Some("core1".into()),
        os: Some("junos".into()),
        hardware: Some("MX204".into()),
        location: Some("DC1, rack 4".into()),
        uptime_secs: Some(273_845),
        entity: Some(crate::notification::EntityRef {
            kind: "ports".into(),
            id: 12,
            label: "xe-0/0/1".into(),
        }),
        faults: vec![serde_json::json!({
            "ports.ifOperStatus": "down",
            "ports.ifAdminStatus": "up",
            "entity_type": "ports",
            "entity_id": 12,
            "label": "xe-0/0/1",
        })],
        triggered_at: triggered,
        timestamp: triggered + chrono::Duration::seconds(300),
        procedure_url: Some("https://wiki.example.net/port-down".into()),
        sequence: 0,
    }
}

/// The default subject without a template engine (logs, fallbacks).
pub fn title(n: &Notification) -> String {
    format!(
        "{} {}: {} on {}",
        n.severity.to_uppercase(),
        n.kind.as_str(),
        n.rule_name,
        n.hostname
    )
}

/// RFC 3339 in UTC with a `Z` and whole seconds, as receivers' APIs expect.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// LibreNMS's `alerts.state` number for a notification kind.
pub fn state_code(kind: NotificationKind) -> i32 {
    match kind {
        NotificationKind::Recovery => 0,
        NotificationKind::Alert | NotificationKind::Repeat | NotificationKind::Test => 1,
        NotificationKind::Worse => 3,
        NotificationKind::Better => 4,
    }
}

/// `3d 4h 5m`, `4h 0m 7s`, `42s`: the two or three largest units, like LibreNMS.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        example()
    }

    #[test]
    fn default_subject_renders_like_librenms_title() {
        let t = Template::compile(DEFAULT_SUBJECT).unwrap();
        assert_eq!(
            t.render(&sample()).unwrap(),
            "CRITICAL alert: Port status up/down on core1.example.net"
        );
        assert_eq!(t.render(&sample()).unwrap(), title(&sample()));
    }

    #[test]
    fn default_body_lists_faults_and_skips_elapsed_unless_recovery() {
        let t = Template::compile(DEFAULT_BODY).unwrap();
        let body = t.render(&sample()).unwrap();
        assert!(body.starts_with("CRITICAL alert: Port status up/down on core1.example.net\n"));
        assert!(body.contains("Severity: critical\n"));
        assert!(body.contains("Timestamp: 2026-01-02 03:09:05 UTC\n"));
        assert!(body.contains("Unique-ID: 42\n"));
        assert!(body.contains("Device: core1.example.net (core1)\n"));
        assert!(body.contains("Location: DC1, rack 4\n"));
        assert!(
            body.contains("  #1: xe-0/0/1 ports.ifAdminStatus=up ports.ifOperStatus=down \n"),
            "{body}"
        );
        assert!(body.contains("Procedure: https://wiki.example.net/port-down\n"));
        assert!(!body.contains("Time elapsed"));
        let mut r = sample();
        r.kind = NotificationKind::Recovery;
        let body = t.render(&r).unwrap();
        assert!(body.contains("Time elapsed: 5m 0s\n"), "{body}");
    }

    #[test]
    fn variables_have_librenms_names_and_values() {
        let src = "{{ sysName }}|{{ os }}|{{ hardware }}|{{ uptime }}|{{ uptime_human }}|\
                   {{ state_code }}|{{ elapsed_secs }}|{{ timestamp_iso }}|{{ faults|length }}|\
                   {{ faults[0]['ports.ifOperStatus'] }}|{{ entity.label }}|{{ name }}|{{ idempotency_key }}";
        let t = Template::compile(src).unwrap();
        assert_eq!(
            t.render(&sample()).unwrap(),
            "core1|junos|MX204|273845|3d 4h 4m|1|300|2026-01-02T03:09:05Z|1|down|xe-0/0/1|\
             Port status up/down|lookout-alert:r7:d3:ports:12:alert:0"
        );
    }

    #[test]
    fn missing_optional_fields_render_empty_not_none() {
        let mut n = sample();
        n.sys_name = None;
        n.procedure_url = None;
        n.uptime_secs = None;
        let t =
            Template::compile("[{{ sysName }}][{{ procedure_url }}][{{ uptime_human }}]").unwrap();
        assert_eq!(t.render(&n).unwrap(), "[][][]");
        let body = Template::compile(DEFAULT_BODY).unwrap().render(&n).unwrap();
        assert!(body.contains("Device: core1.example.net\n"), "{body}");
        assert!(!body.contains("Procedure"));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = Template::compile("Hello\n  {{ hostname }\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.col.is_some(), "{e}");
        assert!(e.message.contains("syntax error"), "{e}");
        assert!(e.to_string().starts_with("line 2, column "), "{e}");
        let e = Template::compile("{% if severity %}never closed").unwrap_err();
        assert!(e.message.contains("syntax error"), "{e}");
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn unknown_variable_is_refused_at_compile_time() {
        let e = Template::compile("ok\n{{ hostnme }} down").unwrap_err();
        assert_eq!((e.line, e.col), (Some(2), Some(4)), "{e}");
        assert!(
            e.message
                .starts_with("unknown variable `hostnme`; known: hostname, sysName"),
            "{e}"
        );
        // Loop variables, set variables and globals are not "unknown".
        Template::compile(
            "{% set x = 1 %}{% for f in faults %}{{ f.label }}{{ loop.index }}{{ x }}{% endfor %}{{ range(3)|list }}",
        )
        .unwrap();
    }

    #[test]
    fn unknown_filter_is_refused_at_compile_time() {
        let e = Template::compile("{{ hostname|nosuchfilter }}").unwrap_err();
        assert_eq!((e.line, e.col), (Some(1), Some(13)), "{e}");
        assert!(e.message.contains("unknown filter"), "{e}");
    }

    #[test]
    fn tojson_escapes_for_json_bodies() {
        let mut n = sample();
        n.rule_name = "say \"hi\"\n".into();
        let t = Template::compile("{\"rule\": {{ rule|tojson }}}").unwrap();
        let v: serde_json::Value = serde_json::from_str(&t.render(&n).unwrap()).unwrap();
        assert_eq!(v["rule"], "say \"hi\"\n");
    }

    #[test]
    fn runaway_template_stops_with_an_error() {
        let e = Template::compile(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(e.message.contains("fuel"), "{e}");
    }

    #[test]
    fn default_body_renders_a_big_outage_within_its_fuel() {
        let t = Template::compile(DEFAULT_BODY).unwrap();
        let mut n = sample();
        n.faults = (0..5000)
            .map(|i| {
                serde_json::json!({"label": format!("xe-0/0/{i}"), "entity_type": "ports", "entity_id": i,
                    "ports.ifOperStatus": "down", "ports.ifAdminStatus": "up", "ports.ifAlias": "uplink",
                    "ports.ifSpeed": 10_000_000_000u64, "ports.in_bps": 1_234_567})
            })
            .collect();
        let body = t.render(&n).unwrap();
        assert!(
            body.contains("  #5000: xe-0/0/4999 "),
            "{}",
            &body[body.len() - 300..]
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(-5), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(61), "1m 1s");
        assert_eq!(human_duration(3_607), "1h 0m 7s");
        assert_eq!(human_duration(273_845), "3d 4h 4m");
    }
}
