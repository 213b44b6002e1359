//! User management pages (admin only) and the caller's own account page:
//!
//! - `/users`: every user with role, granted devices, open sessions and throttle state
//!   (a locked-out account shows how long it stays locked); add a user.
//! - `/users/{id}`: change level or password, log out everywhere, remove; grant and revoke
//!   devices (a normal user sees only those); create API tokens (shown once).
//! - `/users/tokens`: every API token (never the token itself), revoke.
//! - `/users/authlog`: the auth log (every login attempt with its client address).
//! - `/account`: any user changes their own password (ends all their sessions).
//!
//! A password change, a removal and "log out everywhere" end the user's sessions on every
//! instance (the records are shared). An admin cannot remove or demote themselves, so an
//! installation always keeps the admin who is acting.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use lookout_store::{AuthlogRow, StoreError, User};

use crate::access::Role;
use crate::alerts::pages::{
    check_csrf, field, form_pairs, path_id, query_map, render, FormBody, PageQuery, Pairs, Refusal,
};
use crate::error::{error_page, WebError};
use crate::pages::{Layout, PageUser};
use crate::security::{check_password_policy, throttled_for, FAILURE_WINDOW_SECS};
use crate::{view, Shared};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/users", get(list).post(add))
        .route("/users/tokens", get(tokens))
        .route("/users/tokens/{id}/revoke", post(revoke_token))
        .route("/users/authlog", get(authlog))
        .route("/users/{id}", get(detail))
        .route("/users/{id}/level", post(set_level))
        .route("/users/{id}/password", post(set_password))
        .route("/users/{id}/logout", post(logout_everywhere))
        .route("/users/{id}/remove", post(remove))
        .route("/users/{id}/grant", post(grant))
        .route("/users/{id}/revoke/{device_id}", post(revoke))
        .route("/users/{id}/token", post(create_token))
        .route("/account", get(account).post(change_own_password))
}

type Res = Result<Response, Refusal>;

fn done(r: Res) -> Response {
    r.unwrap_or_else(|refused| *refused)
}

fn store_err(e: impl Into<WebError>) -> Refusal {
    Box::new(e.into().into_response())
}

fn refuse(status: StatusCode, message: &str) -> Refusal {
    Box::new(error_page(status, message))
}

/// An admin's form: session CSRF token, then the role.
fn admin_form(u: &PageUser, form: FormBody) -> Result<Pairs, Refusal> {
    let form = form_pairs(form)?;
    check_csrf(u, &form)?;
    u.require_admin()?;
    Ok(form)
}

/// The levels one can give (LibreNMS's).
const LEVELS: [(i32, &str); 4] = [
    (1, "1 normal user (granted devices only)"),
    (5, "5 global read"),
    (10, "10 admin"),
    (11, "11 demo (global read)"),
];

fn parse_level(s: &str) -> Result<i32, Refusal> {
    s.parse::<i32>()
        .ok()
        .filter(|l| LEVELS.iter().any(|(v, _)| v == l))
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "level must be 1, 5, 10 or 11"))
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

async fn hash(password: String) -> Result<String, Refusal> {
    let hashed = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
        .await
        .map_err(|e| Box::new(WebError::from(e).into_response()))?;
    hashed.map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not hash the password",
        )
    })
}

async fn target_user(ctx: &Shared, id: Option<i64>) -> Result<User, Refusal> {
    let Some(id) = id else {
        return Err(refuse(StatusCode::NOT_FOUND, "no such user"));
    };
    ctx.state
        .store
        .user(id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "no such user"))
}

// ------------------------------------------------------------------ list and add

struct UserRow {
    id: i64,
    username: String,
    level: i32,
    role: &'static str,
    devices: usize,
    sessions: usize,
    failures: u32,
    locked: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    levels: Vec<(i32, &'static str)>,
    notice: String,
    min_password: usize,
}

fn notice_text(code: Option<&String>) -> String {
    match code.map(String::as_str) {
        Some("added") => "User added.",
        Some("removed") => "User removed; their sessions and tokens ended.",
        Some("saved") => "Saved.",
        Some("password") => "Password changed; the user's sessions ended on every instance.",
        Some("logout") => "The user's sessions ended on every instance.",
        Some("revoked") => "Token revoked.",
        _ => "",
    }
    .to_string()
}

async fn list(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    done(list_page(&u, &ctx, q).await)
}

async fn list_page(u: &PageUser, ctx: &Shared, q: PageQuery) -> Res {
    u.require_admin()?;
    let store = &ctx.state.store;
    let now = now_secs();
    let mut rows = Vec::new();
    for user in store.users().await.map_err(store_err)? {
        let failures = store
            .login_failures(&user.username, "", now - FAILURE_WINDOW_SECS)
            .await
            .map_err(store_err)?;
        let locked = throttled_for(&failures, &ctx.state.security, now)
            .map(|s| format!("locked for {}", view::duration(s)))
            .unwrap_or_default();
        rows.push(UserRow {
            id: user.user_id,
            role: Role::of_level(user.level).name(),
            level: user.level,
            devices: store
                .device_perms(user.user_id)
                .await
                .map_err(store_err)?
                .len(),
            sessions: crate::sessions::list(ctx, user.user_id)
                .await
                .map_err(store_err)?
                .len(),
            failures: failures.user_failures,
            locked,
            username: user.username,
        });
    }
    let q = query_map(q);
    Ok(render(
        StatusCode::OK,
        &UsersPage {
            layout: Layout::new(ctx, u),
            rows,
            levels: LEVELS.to_vec(),
            notice: notice_text(q.get("notice")),
            min_password: ctx.state.security.min_password_len,
        },
    ))
}

async fn add(u: PageUser, State(ctx): State<Shared>, form: FormBody) -> Response {
    done(add_user(&u, &ctx, form).await)
}

async fn add_user(u: &PageUser, ctx: &Shared, form: FormBody) -> Res {
    let form = admin_form(u, form)?;
    let username = field(&form, "username");
    if username.is_empty() || username.chars().count() > 64 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the user name must have 1 to 64 characters",
        ));
    }
    let level = parse_level(field(&form, "level"))?;
    let password = field(&form, "password").to_string();
    check_password_policy(&password, &ctx.state.security)
        .map_err(|m| refuse(StatusCode::BAD_REQUEST, &m))?;
    let hashed = hash(password).await?;
    match ctx.state.store.add_user(username, &hashed, level).await {
        Ok(_) => {}
        Err(StoreError::Duplicate { .. }) => {
            return Err(refuse(
                StatusCode::CONFLICT,
                &format!("user {username} exists already"),
            ))
        }
        Err(e) => return Err(store_err(e)),
    }
    tracing::info!(by = %u.user.username, user = %username, level, "user added");
    Ok(Redirect::to("/users?notice=added").into_response())
}

// ------------------------------------------------------------------ one user

struct GrantRow {
    device_id: i64,
    hostname: String,
}

struct SessionRow {
    created: String,
    last_seen: String,
    address: String,
    user_agent: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    target: User,
    role: &'static str,
    levels: Vec<(i32, &'static str)>,
    grants: Vec<GrantRow>,
    sessions: Vec<SessionRow>,
    tokens: Vec<lookout_store::ApiTokenInfo>,
    is_self: bool,
    notice: String,
    /// A token just created: shown once, here.
    new_token: String,
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

async fn detail(
    u: PageUser,
    State(ctx): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    q: PageQuery,
) -> Response {
    let notice = notice_text(query_map(q).get("notice"));
    done(user_page(&u, &ctx, path_id(id), notice, String::new()).await)
}

async fn user_page(
    u: &PageUser,
    ctx: &Shared,
    id: Option<i64>,
    notice: String,
    new_token: String,
) -> Res {
    u.require_admin()?;
    let target = target_user(ctx, id).await?;
    let store = &ctx.state.store;
    let mut grants = Vec::new();
    for device_id in store
        .device_perms(target.user_id)
        .await
        .map_err(store_err)?
    {
        let hostname = store
            .device(device_id)
            .await
            .map_err(store_err)?
            .map(|d| d.hostname)
            .unwrap_or_default();
        grants.push(GrantRow {
            device_id,
            hostname,
        });
    }
    let sessions = crate::sessions::list(ctx, target.user_id)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|s| SessionRow {
            created: ts(s.created),
            last_seen: ts(s.last_seen),
            address: s.address,
            user_agent: s.user_agent,
        })
        .collect();
    let tokens = store
        .api_tokens()
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|t| t.user_id == target.user_id)
        .collect();
    Ok(render(
        if new_token.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        &UserPage {
            layout: Layout::new(ctx, u),
            role: Role::of_level(target.level).name(),
            is_self: target.user_id == u.user.user_id,
            target,
            levels: LEVELS.to_vec(),
            grants,
            sessions,
            tokens,
            notice,
            new_token,
        },
    ))
}

type IdPath = Result<Path<String>, PathRejection>;

async fn set_level(u: PageUser, State(ctx): State<Shared>, id: IdPath, form: FormBody) -> Response {
    done(async {
        let form = admin_form(&u, form)?;
        let target = target_user(&ctx, path_id(id)).await?;
        let level = parse_level(field(&form, "level"))?;
        if target.user_id == u.user.user_id && Role::of_level(level) != Role::Admin {
            return Err(refuse(
                StatusCode::CONFLICT,
                "you cannot take your own admin level: ask another admin",
            ));
        }
        ctx.state
            .store
            .set_user_level(target.user_id, level)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, user = %target.username, level, "user level changed");
        Ok(redirect_user(target.user_id, "saved"))
    }
    .await)
}

fn redirect_user(id: i64, notice: &str) -> Response {
    Redirect::to(&format!("/users/{id}?notice={notice}")).into_response()
}

async fn set_password(
    u: PageUser,
    State(ctx): State<Shared>,
    id: IdPath,
    form: FormBody,
) -> Response {
    done(async {
        let form = admin_form(&u, form)?;
        let target = target_user(&ctx, path_id(id)).await?;
        let password = field(&form, "password").to_string();
        check_password_policy(&password, &ctx.state.security)
            .map_err(|m| refuse(StatusCode::BAD_REQUEST, &m))?;
        let hashed = hash(password).await?;
        let store = &ctx.state.store;
        store
            .set_password(target.user_id, &hashed)
            .await
            .map_err(store_err)?;
        let ended = crate::sessions::end_all(&ctx, target.user_id)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, user = %target.username, sessions_ended = ended, "password changed");
        if target.user_id == u.user.user_id {
            return Ok(Redirect::to("/login").into_response());
        }
        Ok(redirect_user(target.user_id, "password"))
    }
    .await)
}

async fn logout_everywhere(
    u: PageUser,
    State(ctx): State<Shared>,
    id: IdPath,
    form: FormBody,
) -> Response {
    done(async {
        admin_form(&u, form)?;
        let target = target_user(&ctx, path_id(id)).await?;
        let ended = crate::sessions::end_all(&ctx, target.user_id)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, user = %target.username, sessions_ended = ended, "sessions ended");
        if target.user_id == u.user.user_id {
            return Ok(Redirect::to("/login").into_response());
        }
        Ok(redirect_user(target.user_id, "logout"))
    }
    .await)
}

async fn remove(u: PageUser, State(ctx): State<Shared>, id: IdPath, form: FormBody) -> Response {
    done(
        async {
            admin_form(&u, form)?;
            let target = target_user(&ctx, path_id(id)).await?;
            if target.user_id == u.user.user_id {
                return Err(refuse(
                    StatusCode::CONFLICT,
                    "you cannot remove yourself: ask another admin",
                ));
            }
            ctx.state
                .store
                .remove_user(target.user_id)
                .await
                .map_err(store_err)?;
            tracing::info!(by = %u.user.username, user = %target.username, "user removed");
            Ok(Redirect::to("/users?notice=removed").into_response())
        }
        .await,
    )
}

async fn grant(u: PageUser, State(ctx): State<Shared>, id: IdPath, form: FormBody) -> Response {
    done(async {
        let form = admin_form(&u, form)?;
        let target = target_user(&ctx, path_id(id)).await?;
        let key = field(&form, "device");
        let store = &ctx.state.store;
        let mut device = store.device_by_hostname(key).await.map_err(store_err)?;
        if device.is_none() {
            if let Ok(n) = key.parse::<i64>() {
                device = store.device(n).await.map_err(store_err)?;
            }
        }
        let Some(device) = device else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                &format!("no device {key:?} (give its hostname or id)"),
            ));
        };
        store
            .grant_device(target.user_id, device.device_id)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, user = %target.username, device = %device.hostname, "device granted");
        Ok(redirect_user(target.user_id, "saved"))
    }
    .await)
}

async fn revoke(
    u: PageUser,
    State(ctx): State<Shared>,
    ids: Result<Path<(String, String)>, PathRejection>,
    form: FormBody,
) -> Response {
    done(async {
        admin_form(&u, form)?;
        let Ok(Path((id, device))) = ids else {
            return Err(refuse(StatusCode::NOT_FOUND, "no such grant"));
        };
        let target = target_user(&ctx, id.parse().ok()).await?;
        let device: i64 = device
            .parse()
            .map_err(|_| refuse(StatusCode::NOT_FOUND, "no such grant"))?;
        ctx.state
            .store
            .revoke_device(target.user_id, device)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, user = %target.username, device_id = device, "device grant revoked");
        Ok(redirect_user(target.user_id, "saved"))
    }
    .await)
}

async fn create_token(
    u: PageUser,
    State(ctx): State<Shared>,
    id: IdPath,
    form: FormBody,
) -> Response {
    done(async {
        let form = admin_form(&u, form)?;
        let id = path_id(id);
        let target = target_user(&ctx, id).await?;
        let description: String = field(&form, "description").chars().take(255).collect();
        let (token, digest) = crate::auth::new_api_token();
        ctx.state
            .store
            .add_api_token(target.user_id, &digest, &description)
            .await
            .map_err(store_err)?;
        tracing::info!(by = %u.user.username, user = %target.username, description = %description, "API token created");
        user_page(&u, &ctx, id, "Token created: copy it now, it is not shown again.".into(), token)
            .await
    }
    .await)
}

// ------------------------------------------------------------------ tokens, authlog

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<lookout_store::ApiTokenInfo>,
    notice: String,
}

async fn tokens(u: PageUser, State(ctx): State<Shared>, q: PageQuery) -> Response {
    done(
        async {
            u.require_admin()?;
            let tokens = ctx.state.store.api_tokens().await.map_err(store_err)?;
            Ok(render(
                StatusCode::OK,
                &TokensPage {
                    layout: Layout::new(&ctx, &u),
                    tokens,
                    notice: notice_text(query_map(q).get("notice")),
                },
            ))
        }
        .await,
    )
}

async fn revoke_token(
    u: PageUser,
    State(ctx): State<Shared>,
    id: IdPath,
    form: FormBody,
) -> Response {
    done(
        async {
            admin_form(&u, form)?;
            let Some(id) = path_id(id) else {
                return Err(refuse(StatusCode::NOT_FOUND, "no such token"));
            };
            if !ctx
                .state
                .store
                .remove_api_token(id)
                .await
                .map_err(store_err)?
            {
                return Err(refuse(StatusCode::NOT_FOUND, "no such token"));
            }
            tracing::info!(by = %u.user.username, token_id = id, "API token revoked");
            Ok(Redirect::to("/users/tokens?notice=revoked").into_response())
        }
        .await,
    )
}

struct AuthlogView {
    datetime: String,
    row: AuthlogRow,
}

#[derive(Template)]
#[template(path = "authlog.html")]
struct AuthlogPage {
    layout: Layout,
    rows: Vec<AuthlogView>,
}

async fn authlog(u: PageUser, State(ctx): State<Shared>) -> Response {
    done(
        async {
            u.require_admin()?;
            let rows = ctx
                .state
                .store
                .authlog(0, 500)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|row| AuthlogView {
                    datetime: ts(row.datetime),
                    row,
                })
                .collect();
            Ok(render(
                StatusCode::OK,
                &AuthlogPage {
                    layout: Layout::new(&ctx, &u),
                    rows,
                },
            ))
        }
        .await,
    )
}

// ------------------------------------------------------------------ own account

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    role: &'static str,
    error: String,
    min_password: usize,
}

async fn account(u: PageUser, State(ctx): State<Shared>) -> Response {
    account_page(&u, &ctx, StatusCode::OK, String::new())
}

fn account_page(u: &PageUser, ctx: &Shared, status: StatusCode, error: String) -> Response {
    render(
        status,
        &AccountPage {
            layout: Layout::new(ctx, u),
            role: Role::of_level(u.user.level).name(),
            error,
            min_password: ctx.state.security.min_password_len,
        },
    )
}

/// `POST /account`: the current password, then the new one twice. Ends every session of
/// the user (this one too): a password change is what one does after a leak.
async fn change_own_password(u: PageUser, State(ctx): State<Shared>, form: FormBody) -> Response {
    done(
        async {
            let form = form_pairs(form)?;
            check_csrf(&u, &form)?;
            let current = field(&form, "current").to_string();
            let new = field(&form, "password").to_string();
            if new != field(&form, "confirm") {
                return Ok(account_page(
                    &u,
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "the new passwords differ".into(),
                ));
            }
            if let Err(m) = check_password_policy(&new, &ctx.state.security) {
                return Ok(account_page(&u, &ctx, StatusCode::BAD_REQUEST, m));
            }
            let stored = u.user.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || {
                crate::auth::verify_password(&current, &stored)
            })
            .await
            .map_err(|e| Box::new(WebError::from(e).into_response()))?
            .unwrap_or(false);
            if !ok {
                return Ok(account_page(
                    &u,
                    &ctx,
                    StatusCode::FORBIDDEN,
                    "the current password is wrong".into(),
                ));
            }
            let hashed = hash(new).await?;
            ctx.state
                .store
                .set_password(u.user.user_id, &hashed)
                .await
                .map_err(store_err)?;
            let ended = crate::sessions::end_all(&ctx, u.user.user_id)
                .await
                .map_err(store_err)?;
            tracing::info!(user = %u.user.username, sessions_ended = ended, "own password changed");
            Ok(Redirect::to("/login").into_response())
        }
        .await,
    )
}
