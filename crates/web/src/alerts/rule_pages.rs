//! `/alerts/rules`: the rules with their options, scope, transports and open alerts; the
//! add/edit form with "Test against now" (what the rule as typed would alert on at this
//! moment, nothing saved) and "Save" (admin); a refused rule is shown in place with a caret
//! under the column and the names known there. Stable hooks: `table#rules
//! tr[data-rule-id]`, `form#rule`, `button[value=test]`, `button[value=save]`,
//! `#rule-error`, `pre.caret`, `table#rule-test tr[data-device-id]`, `#rule-test-none`.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use lookout_alerting::engine::ops::RuleTestHit;
use lookout_alerting::rule::RuleOptions;
use lookout_store::AlertRule;

use super::model::Names;
use super::pages::{
    check_csrf, check_read, check_write, fault_text, field, form_pairs, path_id, query_map, render,
    severity_class, with_notice, FormBody, Frame, PageQuery, Pairs,
};
use super::rules::{broken_rules, RuleEdit};
use super::{engine, reload, show_duration, Failure};
use crate::pages::{Layout, PageUser};
use crate::Shared;

// --- list

struct RuleLine {
    id: i64,
    name: String,
    rule: String,
    severity: String,
    sev_class: &'static str,
    delay: String,
    interval: String,
    count: String,
    flags: String,
    scope: String,
    transports: String,
    disabled: bool,
    builtin: bool,
    problem: String,
    open: usize,
}

#[derive(Template)]
#[template(path = "alerts_rules.html")]
struct RulesPage {
    layout: Layout,
    f: Frame,
    rows: Vec<RuleLine>,
}

fn flags(o: &RuleOptions) -> String {
    let mut f = Vec::new();
    if o.mute {
        f.push("muted");
    }
    if o.invert {
        f.push("inverted");
    }
    if !o.recovery {
        f.push("no recovery");
    }
    if o.per_entity {
        f.push("per entity");
    }
    f.join(", ")
}

fn scope_text(o: &RuleOptions, names: &Names) -> String {
    let s = &o.scope;
    if s.is_all() {
        return "all devices".to_string();
    }
    let mut parts = Vec::new();
    if !s.devices.is_empty() {
        let d: Vec<String> = s.devices.iter().map(|id| names.hostname(*id)).collect();
        parts.push(d.join(", "));
    }
    if !s.device_groups.is_empty() {
        parts.push(format!("device groups {:?}", s.device_groups));
    }
    if !s.locations.is_empty() {
        parts.push(format!("locations {}", s.locations.join(", ")));
    }
    if s.invert_map {
        parts = vec![format!("all but {}", parts.join("; "))];
    }
    if !s.poller_groups.is_empty() {
        parts.push(format!("poller groups {:?}", s.poller_groups));
    }
    if !s.os.is_empty() {
        parts.push(format!("OS {}", s.os.join(", ")));
    }
    parts.join("; ")
}

/// `GET /alerts/rules`
pub(crate) async fn rules(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let store = &ctx.state.store;
    let loaded = async {
        let names = Names::load(store).await?;
        let alerts = store.alerts().await?;
        let transports = super::model::transport_names(store).await?;
        Ok::<_, Failure>((names, alerts, transports))
    }
    .await;
    let (names, alerts, transports) = match loaded {
        Ok(x) => x,
        Err(e) => return e.into_page(),
    };
    let mut rules: Vec<&AlertRule> = names.rules.values().collect();
    rules.sort_by_key(|r| r.id);
    let owned: Vec<AlertRule> = rules.iter().map(|r| (*r).clone()).collect();
    let broken = broken_rules(&owned, ctx.state.alerting.as_deref());
    let rows = rules
        .iter()
        .map(|r| {
            let o = RuleOptions::from_row(&r.severity, &r.extra, r.proc_url.as_deref(), &[])
                .unwrap_or_default();
            RuleLine {
                id: r.id,
                name: r.name.clone(),
                rule: r.rule.clone(),
                sev_class: severity_class(&r.severity),
                severity: r.severity.clone(),
                delay: show_duration(o.delay_secs),
                interval: show_duration(o.interval_secs),
                count: o
                    .max_notifications
                    .map_or_else(|| "-".to_string(), |n| n.to_string()),
                flags: flags(&o),
                scope: scope_text(&o, &names),
                transports: if r.transport_ids.is_empty() {
                    "defaults".to_string()
                } else {
                    r.transport_ids
                        .iter()
                        .map(|id| {
                            transports
                                .get(id)
                                .cloned()
                                .unwrap_or_else(|| id.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                disabled: r.disabled,
                builtin: r.builtin,
                problem: broken.get(&r.id).cloned().unwrap_or_default(),
                open: alerts
                    .iter()
                    .filter(|a| a.open && a.key.rule_id == r.id)
                    .count(),
            }
        })
        .collect();
    let page = RulesPage {
        layout: Layout::new(&ctx, &u),
        f: Frame::new(&u, "/alerts/rules").with_notice(&query_map(q)),
        rows,
    };
    render(StatusCode::OK, &page)
}

// --- form

struct TransportChoice {
    id: i64,
    name: String,
    selected: bool,
}

/// The form's fields as text, from a stored rule or as submitted.
#[derive(Default)]
struct RuleForm {
    id: Option<i64>,
    builtin: bool,
    name: String,
    rule: String,
    severity: String,
    delay: String,
    interval: String,
    count: String,
    devices: String,
    locations: String,
    poller_groups: String,
    os: String,
    proc: String,
    mute: bool,
    invert: bool,
    recovery: bool,
    per_entity: bool,
    disabled: bool,
    invert_map: bool,
    transports: Vec<TransportChoice>,
}

struct RuleErrorView {
    message: String,
    /// The rule with a caret under the column (empty when the error is not in the rule).
    caret: String,
    known: Vec<String>,
}

struct HitLine {
    device_id: i64,
    hostname: String,
    matches: Vec<String>,
}

#[derive(Template)]
#[template(path = "alerts_rule.html")]
struct RulePage {
    layout: Layout,
    f: Frame,
    form: RuleForm,
    error: Option<RuleErrorView>,
    /// `Some` after "Test against now".
    hits: Option<Vec<HitLine>>,
    time_based: bool,
    severities: [&'static str; 3],
}

fn join<T: ToString>(v: &[T], sep: &str) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn stored_form(r: Option<&AlertRule>, names: &Names, transports: &[(i64, String)]) -> RuleForm {
    let Some(r) = r else {
        return RuleForm {
            severity: "critical".into(),
            delay: "0".into(),
            interval: "0".into(),
            recovery: true,
            transports: choices(transports, &[]),
            ..RuleForm::default()
        };
    };
    let o = RuleOptions::from_row(&r.severity, &r.extra, r.proc_url.as_deref(), &[])
        .unwrap_or_default();
    let devices: Vec<String> = o.scope.devices.iter().map(|d| names.hostname(*d)).collect();
    RuleForm {
        id: Some(r.id),
        builtin: r.builtin,
        name: r.name.clone(),
        rule: r.rule.clone(),
        severity: r.severity.clone(),
        delay: show_duration(o.delay_secs),
        interval: show_duration(o.interval_secs),
        count: o
            .max_notifications
            .map(|n| n.to_string())
            .unwrap_or_default(),
        devices: devices.join(", "),
        locations: o.scope.locations.join(", "),
        poller_groups: join(&o.scope.poller_groups, " "),
        os: o.scope.os.join(" "),
        proc: r.proc_url.clone().unwrap_or_default(),
        mute: o.mute,
        invert: o.invert,
        recovery: o.recovery,
        per_entity: o.per_entity,
        disabled: r.disabled,
        invert_map: o.scope.invert_map,
        transports: choices(transports, &r.transport_ids),
    }
}

fn choices(transports: &[(i64, String)], selected: &[i64]) -> Vec<TransportChoice> {
    transports
        .iter()
        .map(|(id, name)| TransportChoice {
            id: *id,
            name: name.clone(),
            selected: selected.contains(id),
        })
        .collect()
}

fn submitted_form(
    id: Option<i64>,
    builtin: bool,
    p: &Pairs,
    transports: &[(i64, String)],
) -> RuleForm {
    let text = |k: &str| field(p, k).to_string();
    let on = |k: &str| !field(p, k).is_empty();
    let picked: Vec<&str> = p
        .iter()
        .filter(|(k, _)| k == "transport")
        .map(|(_, v)| v.as_str())
        .collect();
    RuleForm {
        id,
        builtin,
        name: text("name"),
        rule: text("rule"),
        severity: text("severity"),
        delay: text("delay"),
        interval: text("interval"),
        count: text("count"),
        devices: text("devices"),
        locations: text("locations"),
        poller_groups: text("poller_groups"),
        os: text("os"),
        proc: text("proc"),
        mute: on("mute"),
        invert: on("invert"),
        recovery: on("recovery"),
        per_entity: on("per_entity"),
        disabled: on("disabled"),
        invert_map: on("invert_map"),
        transports: transports
            .iter()
            .map(|(tid, name)| TransportChoice {
                id: *tid,
                name: name.clone(),
                selected: picked.contains(&tid.to_string().as_str()),
            })
            .collect(),
    }
}

fn error_view(e: Failure) -> RuleErrorView {
    match e.rule {
        // The known names go in their own list below the caret, not in the sentence.
        Some((re, expr)) => RuleErrorView {
            caret: format!("{expr}\n{}^", " ".repeat(re.column.saturating_sub(1))),
            message: format!("The rule was refused: column {}: {}", re.column, re.message),
            known: re.known,
        },
        None => RuleErrorView {
            message: e.message,
            caret: String::new(),
            known: Vec::new(),
        },
    }
}

fn hit_line(h: &RuleTestHit) -> HitLine {
    HitLine {
        device_id: h.device_id,
        hostname: h.hostname.clone(),
        matches: h
            .matches
            .iter()
            .flat_map(|m| {
                let faults = m.get("faults").and_then(|f| f.as_array()).cloned();
                faults
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| fault_text(&f))
            })
            .collect(),
    }
}

async fn transport_list(ctx: &Shared) -> Result<Vec<(i64, String)>, Failure> {
    let mut t: Vec<(i64, String)> = super::model::transport_names(&ctx.state.store)
        .await?
        .into_iter()
        .collect();
    t.sort();
    Ok(t)
}

/// `GET /alerts/rules/new`
pub(crate) async fn new_rule(u: PageUser, State(ctx): State<Shared>) -> Response {
    show_form(u, ctx, None).await
}

/// `GET /alerts/rules/{id}`
pub(crate) async fn edit_rule(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    match path_id(id) {
        Some(id) => show_form(u, ctx, Some(id)).await,
        None => Failure::not_found("no such rule").into_page(),
    }
}

async fn show_form(u: PageUser, ctx: Shared, id: Option<i64>) -> Response {
    if let Err(r) = check_read(&u) {
        return *r;
    }
    let loaded = async {
        let names = Names::load(&ctx.state.store).await?;
        let transports = transport_list(&ctx).await?;
        Ok::<_, Failure>((names, transports))
    }
    .await;
    let (names, transports) = match loaded {
        Ok(x) => x,
        Err(e) => return e.into_page(),
    };
    let rule = match id {
        Some(id) => match names.rules.get(&id) {
            Some(r) => Some(r),
            None => return Failure::not_found(format!("rule {id} does not exist")).into_page(),
        },
        None => None,
    };
    let page = RulePage {
        layout: Layout::new(&ctx, &u),
        f: Frame::new(&u, "/alerts/rules"),
        form: stored_form(rule, &names, &transports),
        error: None,
        hits: None,
        time_based: false,
        severities: ["critical", "warning", "ok"],
    };
    render(StatusCode::OK, &page)
}

/// `POST /alerts/rules/new`
pub(crate) async fn post_new(u: PageUser, State(ctx): State<Shared>, form: FormBody) -> Response {
    submit(u, ctx, None, form).await
}

/// `POST /alerts/rules/{id}`
pub(crate) async fn post_edit(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    match path_id(id) {
        Some(id) => submit(u, ctx, Some(id), form).await,
        None => Failure::not_found("no such rule").into_page(),
    }
}

/// The form posted with `action=test` (readers may: nothing is written) or `action=save`
/// (admin).
async fn submit(u: PageUser, ctx: Shared, id: Option<i64>, form: FormBody) -> Response {
    let p = match form_pairs(form) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let testing = field(&p, "action") == "test";
    let allowed = if testing {
        check_csrf(&u, &p).and_then(|()| check_read(&u))
    } else {
        check_write(&u, &p)
    };
    if let Err(r) = allowed {
        return *r;
    }
    let store = &ctx.state.store;
    let base = match id {
        None => None,
        Some(id) => match store.alert_rules().await {
            Ok(rs) => match rs.into_iter().find(|r| r.id == id) {
                Some(r) => Some(r),
                None => return Failure::not_found(format!("rule {id} does not exist")).into_page(),
            },
            Err(e) => return Failure::from(e).into_page(),
        },
    };
    let transports = match transport_list(&ctx).await {
        Ok(t) => t,
        Err(e) => return e.into_page(),
    };
    let mut page = RulePage {
        layout: Layout::new(&ctx, &u),
        f: Frame::new(&u, "/alerts/rules"),
        form: submitted_form(
            id,
            base.as_ref().is_some_and(|b| b.builtin),
            &p,
            &transports,
        ),
        error: None,
        hits: None,
        time_based: false,
        severities: ["critical", "warning", "ok"],
    };
    let outcome = if testing {
        run_test(&ctx, &p, base.as_ref(), &mut page).await
    } else {
        match save(&ctx, &u, &p, base.as_ref()).await {
            Ok(()) => return with_notice("/alerts/rules", "saved"),
            Err(e) => Err(e),
        }
    };
    match outcome {
        Ok(()) => render(StatusCode::OK, &page),
        Err(e) => {
            let status = e.status;
            page.error = Some(error_view(e));
            render(status, &page)
        }
    }
}

async fn run_test(
    ctx: &Shared,
    p: &Pairs,
    base: Option<&AlertRule>,
    page: &mut RulePage,
) -> Result<(), Failure> {
    let mut edit = RuleEdit::from_form(p)?;
    if edit.name.as_deref().is_none_or(str::is_empty) {
        edit.name = Some("test".to_string());
    }
    let (_, compiled) = edit.resolve(&ctx.state.store, base).await?;
    let hits = engine(ctx)?.test_rule(&compiled, None).await?;
    page.time_based = compiled.is_time_based();
    page.hits = Some(hits.iter().map(hit_line).collect());
    Ok(())
}

async fn save(
    ctx: &Shared,
    u: &PageUser,
    p: &Pairs,
    base: Option<&AlertRule>,
) -> Result<(), Failure> {
    let edit = RuleEdit::from_form(p)?;
    let (new, _) = edit.resolve(&ctx.state.store, base).await?;
    let saved = match base {
        Some(b) => ctx.state.store.update_alert_rule(b.id, &new).await?,
        None => ctx.state.store.add_alert_rule(&new).await?,
    };
    reload(ctx).await;
    tracing::info!(user = %u.user.username, rule_id = saved.id, name = %saved.name, "alert rule saved");
    Ok(())
}

/// `POST /alerts/rules/{id}/delete` (built-in rules are disabled instead: they would come
/// back at the next start).
pub(crate) async fn delete(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    form: FormBody,
) -> Response {
    let p = match form_pairs(form) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Err(r) = check_write(&u, &p) {
        return *r;
    }
    let Some(id) = path_id(id) else {
        return Failure::not_found("no such rule").into_page();
    };
    let store = &ctx.state.store;
    let rule = match store.alert_rules().await {
        Ok(rs) => rs.into_iter().find(|r| r.id == id),
        Err(e) => return Failure::from(e).into_page(),
    };
    let Some(rule) = rule else {
        return Failure::not_found(format!("rule {id} does not exist")).into_page();
    };
    if rule.builtin {
        return Failure::new(
            StatusCode::CONFLICT,
            format!("{} is a built-in rule and would be re-created at the next start: disable it instead", rule.name),
        )
        .into_page();
    }
    match store.remove_alert_rule(id).await {
        Ok(_) => {
            reload(&ctx).await;
            tracing::info!(user = %u.user.username, rule_id = id, name = %rule.name, "alert rule removed");
            with_notice("/alerts/rules", "removed")
        }
        Err(e) => Failure::from(e).into_page(),
    }
}
