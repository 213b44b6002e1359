//! The Redis backend: every lease and queue decision is one Lua script, so it is atomic on
//! the server and uses the server's clock (`TIME`), not the nodes' clocks. The scripts
//! mirror the pure rules of `lease.rs` and `queue.rs` (same token rule, same refusals).
//!
//! Client: `fred`. With a Sentinel target it asks the sentinels for the primary on every
//! (re)connect and checks the server's role, and it reconnects on `READONLY` errors (a
//! demoted primary that kept its connections), so a fail-over is followed without help
//! from us. redis-rs 1.x resolves the primary only when a connection is first made and its
//! ConnectionManager keeps talking to a demoted primary, which would need our own
//! re-resolution wrapper. `fred` stays behind the crate-private `Backend` trait.
//!
//! Keys (all under the configured prefix `P`): `P nodes` / `P beats` (hashes: node info
//! JSON / "last:expires"), `P master` (hash owner/token/expires), `P master:token`,
//! `P q:<group>` (sorted set device → due ms), `P qidx` (hash device → group),
//! `P qwork` (hash device → `discover` for queued discoveries; absent = poll, which is
//! also what an item queued by an older version reads as),
//! `P claim:<device>` (hash group/owner/token/expires/work), `P claims` (sorted set device →
//! expiry), `P claim:token`, `P groups` (set), `P done` (hash group → count). Keys are
//! built inside the scripts, so this targets a single primary (Sentinel), not Redis Cluster.

use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{Builder, Client, ClientLike, ReconnectPolicy, Value};
use fred::types::config::{Config, ServerConfig};
use fred::types::scripts::Script;
use lookout_core::DeviceId;

use crate::backend::{BResult, Backend, BackendError, Fence};
use crate::config::{RedisConfig, RedisTarget};
use crate::lease::{Holder, Millis, Refusal, Token};
use crate::queue::{Granted, Work};
use crate::sentinel;
use crate::{to_timestamp, NodeInfo, NodeStatus, QueueDepth};

/// Shared prologue: the server clock in ms, and number formatting that never switches to
/// exponent notation (Lua's default `%.14g` would for large tokens).
const PRELUDE: &str = r#"
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function s(x) return string.format('%.0f', x) end
local function next_token(key)
  local last = tonumber(redis.call('GET', key) or '0')
  local tok = math.max(last + 1, now * 1000)
  redis.call('SET', key, s(tok))
  return tok
end
"#;

const HEARTBEAT: &str = r#"
-- ARGV: P, node_id, info_json, ttl_ms
redis.call('HSET', P .. 'nodes', ARGV[2], ARGV[3])
redis.call('HSET', P .. 'beats', ARGV[2], s(now) .. ':' .. s(now + tonumber(ARGV[4])))
return now
"#;

const NODES: &str = r#"
return {now, redis.call('HGETALL', P .. 'nodes'), redis.call('HGETALL', P .. 'beats')}
"#;

// Web sessions: `P session:<key>` (string, the record, with a TTL) and `P user_sessions:<uid>`
// (set of keys; members whose record expired are dropped when read).
const SESSION_PUT: &str = r#"
-- ARGV: P, key, uid, record, ttl_ms, index_ttl_ms
local idx = P .. 'user_sessions:' .. ARGV[3]
redis.call('SET', P .. 'session:' .. ARGV[2], ARGV[4], 'PX', ARGV[5])
redis.call('SADD', idx, ARGV[2])
if redis.call('PTTL', idx) < tonumber(ARGV[6]) then redis.call('PEXPIRE', idx, ARGV[6]) end
return 1
"#;

const SESSION_REMOVE: &str = r#"
-- ARGV: P, key, uid
redis.call('SREM', P .. 'user_sessions:' .. ARGV[3], ARGV[2])
return redis.call('DEL', P .. 'session:' .. ARGV[2])
"#;

const SESSION_REMOVE_USER: &str = r#"
-- ARGV: P, uid
local idx = P .. 'user_sessions:' .. ARGV[2]
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', idx)) do
  n = n + redis.call('DEL', P .. 'session:' .. k)
end
redis.call('DEL', idx)
return n
"#;

const SESSION_LIST: &str = r#"
-- ARGV: P, uid
local idx = P .. 'user_sessions:' .. ARGV[2]
local out = {}
for _, k in ipairs(redis.call('SMEMBERS', idx)) do
  local v = redis.call('GET', P .. 'session:' .. k)
  if v then table.insert(out, v) else redis.call('SREM', idx, k) end
end
return out
"#;

const SESSION_GET: &str = r#"
return redis.call('GET', P .. 'session:' .. ARGV[2])
"#;

const FORGET: &str = r#"
redis.call('HDEL', P .. 'beats', ARGV[2])
return redis.call('HDEL', P .. 'nodes', ARGV[2])
"#;

const ACQUIRE: &str = r#"
-- ARGV: P, node_id, ttl_ms
local k = P .. 'master'
local h = redis.call('HMGET', k, 'owner', 'token', 'expires')
if h[1] and tonumber(h[3]) > now and h[1] ~= ARGV[2] then return false end
local tok = next_token(P .. 'master:token')
local exp = now + tonumber(ARGV[3])
redis.call('HSET', k, 'owner', ARGV[2], 'token', s(tok), 'expires', s(exp))
return {tok, exp}
"#;

/// Shared lease check of a hash with owner/token/expires fields. Result codes: 0 vacant,
/// 1 expired, 2 superseded (+ owner, token), 3 ok.
const CHECK: &str = r#"
local function check(k, owner, token)
  local h = redis.call('HMGET', k, 'owner', 'token', 'expires', 'group')
  if not h[1] then return {0}, h end
  if h[1] ~= owner or h[2] ~= token then return {2, h[1], tonumber(h[2])}, h end
  if tonumber(h[3]) <= now then return {1}, h end
  return nil, h
end
"#;

const RENEW: &str = r#"
-- ARGV: P, node_id, token, ttl_ms
local k = P .. 'master'
local refused = check(k, ARGV[2], ARGV[3])
if refused then return refused end
local exp = now + tonumber(ARGV[4])
redis.call('HSET', k, 'expires', s(exp))
return {3, exp}
"#;

const RELEASE: &str = r#"
-- ARGV: P, node_id, token
local k = P .. 'master'
local h = redis.call('HMGET', k, 'owner', 'token')
if h[1] == ARGV[2] and h[2] == ARGV[3] then redis.call('DEL', k) return 1 end
return 0
"#;

const CURRENT: &str = r#"
local h = redis.call('HMGET', P .. 'master', 'owner', 'token', 'expires')
if not h[1] or tonumber(h[3]) <= now then return false end
return {h[1], tonumber(h[2]), tonumber(h[3])}
"#;

/// Optional master fence: ARGV[2] owner ('' for none), ARGV[3] token.
const FENCE: &str = r#"
local function fenced()
  if ARGV[2] == '' then return nil end
  return (check(P .. 'master', ARGV[2], ARGV[3]))
end
"#;

const ENQUEUE: &str = r#"
-- ARGV: P, fence owner, fence token, group, device, due_ms, work
local refused = fenced()
if refused then return refused end
local d = ARGV[5]
if redis.call('HEXISTS', P .. 'qidx', d) == 1 or redis.call('EXISTS', P .. 'claim:' .. d) == 1 then return {3, 0} end
redis.call('ZADD', P .. 'q:' .. ARGV[4], ARGV[6], d)
redis.call('HSET', P .. 'qidx', d, ARGV[4])
if ARGV[7] == 'discover' then redis.call('HSET', P .. 'qwork', d, 'discover') else redis.call('HDEL', P .. 'qwork', d) end
redis.call('SADD', P .. 'groups', ARGV[4])
return {3, 1}
"#;

const CLAIM: &str = r#"
-- ARGV: P, node_id, ttl_ms, group...
local best, bg, bs
for i = 4, #ARGV do
  local r = redis.call('ZRANGE', P .. 'q:' .. ARGV[i], 0, 0, 'WITHSCORES')
  if r[1] then
    local due, dev = tonumber(r[2]), tonumber(r[1])
    if due <= now and (not bs or due < bs or (due == bs and dev < tonumber(best))) then
      best, bg, bs = r[1], ARGV[i], due
    end
  end
end
if not best then return false end
redis.call('ZREM', P .. 'q:' .. bg, best)
redis.call('HDEL', P .. 'qidx', best)
local work = redis.call('HGET', P .. 'qwork', best) or 'poll'
redis.call('HDEL', P .. 'qwork', best)
local tok = next_token(P .. 'claim:token')
local exp = now + tonumber(ARGV[3])
redis.call('HSET', P .. 'claim:' .. best, 'group', bg, 'owner', ARGV[2], 'token', s(tok), 'expires', s(exp), 'work', work)
redis.call('ZADD', P .. 'claims', s(exp), best)
return {tonumber(best), tonumber(bg), tok, exp, bs, work}
"#;

const RENEW_CLAIM: &str = r#"
-- ARGV: P, device, node_id, token, ttl_ms
local k = P .. 'claim:' .. ARGV[2]
local refused, h = check(k, ARGV[3], ARGV[4])
if refused then return refused end
local exp = now + tonumber(ARGV[5])
redis.call('HSET', k, 'expires', s(exp))
redis.call('ZADD', P .. 'claims', s(exp), ARGV[2])
return {3, tonumber(h[4]), exp, redis.call('HGET', k, 'work') or 'poll'}
"#;

const ACK: &str = r#"
-- ARGV: P, device, node_id, token
local k = P .. 'claim:' .. ARGV[2]
local refused, h = check(k, ARGV[3], ARGV[4])
if refused then return refused end
redis.call('DEL', k)
redis.call('ZREM', P .. 'claims', ARGV[2])
redis.call('HINCRBY', P .. 'done', h[4], 1)
return {3}
"#;

const REQUEUE: &str = r#"
-- ARGV: P, fence owner, fence token. Expired means now >= expires; a batch of at most
-- 1000 bounds the script's run time.
local refused = fenced()
if refused then return refused end
local out = {}
local ds = redis.call('ZRANGEBYSCORE', P .. 'claims', '-inf', s(now), 'LIMIT', 0, 1000)
for _, d in ipairs(ds) do
  local k = P .. 'claim:' .. d
  local h = redis.call('HMGET', k, 'group', 'expires', 'work')
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'claims', d)
  if h[1] then
    redis.call('ZADD', P .. 'q:' .. h[1], h[2], d)
    redis.call('HSET', P .. 'qidx', d, h[1])
    if h[3] == 'discover' then redis.call('HSET', P .. 'qwork', d, 'discover') end
    table.insert(out, tonumber(d))
  end
end
return {3, out}
"#;

const DEPTHS: &str = r#"
-- ARGV: P, late_ms ('' for no late count). The oldest due is -1 for an empty queue (a nil
-- would cut the reply array short).
local claimed = {}
for _, d in ipairs(redis.call('ZRANGE', P .. 'claims', 0, -1)) do
  local g = redis.call('HGET', P .. 'claim:' .. d, 'group')
  if g then claimed[g] = (claimed[g] or 0) + 1 end
end
local out = {}
for _, g in ipairs(redis.call('SMEMBERS', P .. 'groups')) do
  local q = P .. 'q:' .. g
  local head = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  local oldest = -1
  if head[2] then oldest = tonumber(head[2]) end
  local late = 0
  if ARGV[2] ~= '' then late = redis.call('ZCOUNT', q, '-inf', s(now - tonumber(ARGV[2]))) end
  table.insert(out, {tonumber(g), redis.call('ZCARD', q), redis.call('ZCOUNT', q, '-inf', s(now)),
    claimed[g] or 0, tonumber(redis.call('HGET', P .. 'done', g) or '0'), oldest, late})
end
return out
"#;

struct Scripts {
    heartbeat: Script,
    nodes: Script,
    forget: Script,
    acquire: Script,
    renew: Script,
    release: Script,
    current: Script,
    enqueue: Script,
    claim: Script,
    renew_claim: Script,
    ack: Script,
    requeue: Script,
    depths: Script,
    session_put: Script,
    session_get: Script,
    session_remove: Script,
    session_remove_user: Script,
    session_list: Script,
}

fn script(body: &str) -> Script {
    Script::from_lua(format!("{PRELUDE}{CHECK}{FENCE}{body}"))
}

impl Scripts {
    fn new() -> Self {
        Self {
            heartbeat: script(HEARTBEAT),
            nodes: script(NODES),
            forget: script(FORGET),
            acquire: script(ACQUIRE),
            renew: script(RENEW),
            release: script(RELEASE),
            current: script(CURRENT),
            enqueue: script(ENQUEUE),
            claim: script(CLAIM),
            renew_claim: script(RENEW_CLAIM),
            ack: script(ACK),
            requeue: script(REQUEUE),
            depths: script(DEPTHS),
            session_put: script(SESSION_PUT),
            session_get: script(SESSION_GET),
            session_remove: script(SESSION_REMOVE),
            session_remove_user: script(SESSION_REMOVE_USER),
            session_list: script(SESSION_LIST),
        }
    }
}

pub(crate) struct RedisBackend {
    client: Client,
    prefix: String,
    scripts: Scripts,
    /// The sentinel watch task (Sentinel targets only); stopped on drop.
    watch: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        // The client's reconnect loop runs forever otherwise.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            rt.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// Reconnect `client` when a majority of the sentinels name another primary than the
/// one it is connected to (the connection to a demoted primary may stay up for seconds).
async fn watch_primary(
    client: Client,
    sentinels: Vec<(String, u16)>,
    service: String,
    every: Duration,
    timeout: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some((host, port)) = sentinel::majority_primary(&sentinels, &service, timeout).await
        else {
            continue;
        };
        let active = client.active_connections();
        if active.is_empty()
            || active
                .iter()
                .any(|s| s.port == port && &*s.host == host.as_str())
        {
            // Reconnecting already, or on the right server.
            continue;
        }
        tracing::warn!(
            primary = %format!("{host}:{port}"),
            connected = ?active.iter().map(|s| format!("{}:{}", s.host, s.port)).collect::<Vec<_>>(),
            "sentinels name another primary; reconnecting"
        );
        if let Err(e) = client.force_reconnection().await {
            tracing::warn!(error = %e, "reconnection after a primary change failed; the client keeps retrying");
        }
    }
}

/// A reply that does not have the shape the script returns.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from redis script: {0}")]
struct BadReply(String);

fn bad(what: &str, v: &Value) -> BackendError {
    Box::new(BadReply(format!("{what}: {v:?}")))
}

fn int(v: &Value) -> BResult<i64> {
    v.as_i64().ok_or_else(|| bad("integer expected", v))
}

fn uint(v: &Value) -> BResult<u64> {
    u64::try_from(int(v)?).map_err(|_| bad("non-negative integer expected", v))
}

fn at(v: &[Value], i: usize) -> BResult<&Value> {
    v.get(i)
        .ok_or_else(|| Box::new(BadReply(format!("reply too short: {v:?}"))) as BackendError)
}

/// The work field of a claim reply; missing (an older script) is a poll.
fn work_of(v: Option<&Value>) -> Work {
    v.and_then(|v| v.as_string())
        .map_or(Work::Poll, |s| Work::parse(&s))
}

fn group_of(v: &Value) -> BResult<i32> {
    i32::try_from(int(v)?).map_err(|_| bad("group out of range", v))
}

/// Decode the `check()` refusal codes shared by renew and ack.
fn refusal(v: &[Value]) -> BResult<Option<Refusal>> {
    Ok(match int(at(v, 0)?)? {
        0 => Some(Refusal::Vacant),
        1 => Some(Refusal::Expired),
        2 => Some(Refusal::Superseded {
            owner: at(v, 1)?.as_string().unwrap_or_default(),
            token: uint(at(v, 2)?)?,
        }),
        3 => None,
        _ => return Err(bad("unknown result code", at(v, 0)?)),
    })
}

fn fence_args(fence: Fence<'_>) -> Vec<String> {
    match fence {
        Some((owner, token)) => vec![owner.to_owned(), token.to_string()],
        None => vec![String::new(), String::new()],
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisBackend {
    pub(crate) async fn connect(rc: &RedisConfig) -> BResult<Self> {
        let server = match &rc.target {
            RedisTarget::Direct { host, port } => {
                ServerConfig::new_centralized(host.clone(), *port)
            }
            RedisTarget::Sentinel { sentinels, service } => {
                ServerConfig::new_sentinel(sentinels.clone(), service.clone())
            }
        };
        let config = Config {
            server,
            username: rc.username.clone(),
            password: rc.password.clone(),
            database: rc.db,
            fail_fast: true,
            ..Config::default()
        };
        let timeout = rc.command_timeout;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                // Default reconnect errors include READONLY, LOADING and MASTERDOWN.
            })
            .with_performance_config(|p| {
                p.default_command_timeout = timeout;
            })
            // Retry forever at a constant pace: each attempt re-asks the sentinels.
            .set_policy(ReconnectPolicy::new_constant(
                0,
                u32::try_from(ms(rc.reconnect_delay)).unwrap_or(u32::MAX),
            ))
            .build()?;
        client.init().await?;
        tracing::info!(target = ?rc.target, "connected to redis");
        let watch = match &rc.target {
            RedisTarget::Sentinel { sentinels, service } => Some(tokio::spawn(watch_primary(
                client.clone(),
                sentinels.clone(),
                service.clone(),
                rc.sentinel_check_interval.max(Duration::from_millis(50)),
                timeout,
            ))),
            RedisTarget::Direct { .. } => None,
        };
        Ok(Self {
            client,
            prefix: rc.key_prefix.clone(),
            scripts: Scripts::new(),
            watch,
        })
    }

    async fn run(&self, s: &Script, args: Vec<String>) -> BResult<Value> {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.prefix.clone());
        all.extend(args);
        Ok(s.evalsha_with_reload::<Value, _, _>(&self.client, (), all)
            .await?)
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn heartbeat(&self, info: &NodeInfo, ttl_ms: u64) -> BResult<()> {
        let json = serde_json::to_string(info)?;
        self.run(
            &self.scripts.heartbeat,
            vec![info.node_id.clone(), json, ttl_ms.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn nodes(&self) -> BResult<Vec<NodeStatus>> {
        let v = self.run(&self.scripts.nodes, vec![]).await?.into_array();
        let now = uint(at(&v, 0)?)?;
        let infos = at(&v, 1)?.clone().into_array();
        let beats = at(&v, 2)?.clone().into_array();
        let mut seen = std::collections::HashMap::new();
        for pair in beats.chunks(2) {
            if let [k, b] = pair {
                let (k, b) = (
                    k.as_string().unwrap_or_default(),
                    b.as_string().unwrap_or_default(),
                );
                if let Some((last, exp)) = b.split_once(':') {
                    seen.insert(
                        k,
                        (
                            last.parse::<u64>().unwrap_or(0),
                            exp.parse::<u64>().unwrap_or(0),
                        ),
                    );
                }
            }
        }
        let mut out = Vec::new();
        for pair in infos.chunks(2) {
            let [k, j] = pair else { continue };
            let id = k.as_string().unwrap_or_default();
            let info: NodeInfo = match serde_json::from_str(&j.as_string().unwrap_or_default()) {
                Ok(i) => i,
                Err(e) => {
                    // One node's unreadable record (e.g. a newer version's format) must not
                    // hide the others.
                    tracing::warn!(node_id = %id, error = %e, "skipping unreadable node record");
                    continue;
                }
            };
            let (last, exp) = seen.get(&id).copied().unwrap_or((0, 0));
            out.push(NodeStatus {
                info,
                last_checkin: to_timestamp(last),
                alive: now < exp,
            });
        }
        Ok(out)
    }

    async fn forget_node(&self, node_id: &str) -> BResult<bool> {
        let v = self
            .run(&self.scripts.forget, vec![node_id.to_owned()])
            .await?;
        Ok(int(&v)? > 0)
    }

    async fn acquire_master(&self, node_id: &str, ttl_ms: u64) -> BResult<Option<Holder>> {
        let v = self
            .run(
                &self.scripts.acquire,
                vec![node_id.to_owned(), ttl_ms.to_string()],
            )
            .await?;
        if v.is_null() {
            return Ok(None);
        }
        let v = v.into_array();
        Ok(Some(Holder {
            owner: node_id.to_owned(),
            token: uint(at(&v, 0)?)?,
            expires: uint(at(&v, 1)?)?,
        }))
    }

    async fn renew_master(
        &self,
        node_id: &str,
        token: Token,
        ttl_ms: u64,
    ) -> BResult<Result<Millis, Refusal>> {
        let v = self
            .run(
                &self.scripts.renew,
                vec![node_id.to_owned(), token.to_string(), ttl_ms.to_string()],
            )
            .await?
            .into_array();
        Ok(match refusal(&v)? {
            Some(r) => Err(r),
            None => Ok(uint(at(&v, 1)?)?),
        })
    }

    async fn release_master(&self, node_id: &str, token: Token) -> BResult<bool> {
        let v = self
            .run(
                &self.scripts.release,
                vec![node_id.to_owned(), token.to_string()],
            )
            .await?;
        Ok(int(&v)? == 1)
    }

    async fn current_master(&self) -> BResult<Option<Holder>> {
        let v = self.run(&self.scripts.current, vec![]).await?;
        if v.is_null() {
            return Ok(None);
        }
        let v = v.into_array();
        Ok(Some(Holder {
            owner: at(&v, 0)?.as_string().unwrap_or_default(),
            token: uint(at(&v, 1)?)?,
            expires: uint(at(&v, 2)?)?,
        }))
    }

    async fn enqueue(
        &self,
        group: i32,
        device_id: DeviceId,
        due: Millis,
        work: Work,
        fence: Fence<'_>,
    ) -> BResult<Result<bool, Refusal>> {
        let mut args = fence_args(fence);
        args.extend([
            group.to_string(),
            device_id.to_string(),
            due.to_string(),
            work.as_str().to_owned(),
        ]);
        let v = self.run(&self.scripts.enqueue, args).await?.into_array();
        Ok(match refusal(&v)? {
            Some(r) => Err(r),
            None => Ok(int(at(&v, 1)?)? == 1),
        })
    }

    async fn claim(&self, groups: &[i32], node_id: &str, ttl_ms: u64) -> BResult<Option<Granted>> {
        let mut args = vec![node_id.to_owned(), ttl_ms.to_string()];
        args.extend(groups.iter().map(|g| g.to_string()));
        let v = self.run(&self.scripts.claim, args).await?;
        if v.is_null() {
            return Ok(None);
        }
        let v = v.into_array();
        Ok(Some(Granted {
            device_id: int(at(&v, 0)?)?,
            group: group_of(at(&v, 1)?)?,
            token: uint(at(&v, 2)?)?,
            expires: uint(at(&v, 3)?)?,
            due: v.get(4).map(uint).transpose()?.unwrap_or(0),
            work: work_of(v.get(5)),
        }))
    }

    async fn renew_claim(
        &self,
        device_id: DeviceId,
        node_id: &str,
        token: Token,
        ttl_ms: u64,
    ) -> BResult<Result<Granted, Refusal>> {
        let v = self
            .run(
                &self.scripts.renew_claim,
                vec![
                    device_id.to_string(),
                    node_id.to_owned(),
                    token.to_string(),
                    ttl_ms.to_string(),
                ],
            )
            .await?
            .into_array();
        Ok(match refusal(&v)? {
            Some(r) => Err(r),
            None => Ok(Granted {
                device_id,
                group: group_of(at(&v, 1)?)?,
                token,
                expires: uint(at(&v, 2)?)?,
                due: 0,
                work: work_of(v.get(3)),
            }),
        })
    }

    async fn ack(
        &self,
        device_id: DeviceId,
        node_id: &str,
        token: Token,
    ) -> BResult<Result<(), Refusal>> {
        let v = self
            .run(
                &self.scripts.ack,
                vec![device_id.to_string(), node_id.to_owned(), token.to_string()],
            )
            .await?
            .into_array();
        Ok(match refusal(&v)? {
            Some(r) => Err(r),
            None => Ok(()),
        })
    }

    async fn requeue_expired(&self, fence: Fence<'_>) -> BResult<Result<Vec<DeviceId>, Refusal>> {
        let v = self
            .run(&self.scripts.requeue, fence_args(fence))
            .await?
            .into_array();
        Ok(match refusal(&v)? {
            Some(r) => Err(r),
            None => Ok(at(&v, 1)?
                .clone()
                .into_array()
                .iter()
                .map(int)
                .collect::<BResult<_>>()?),
        })
    }

    async fn queue_depths(&self, late_ms: Option<u64>) -> BResult<Vec<QueueDepth>> {
        let late = late_ms.map(|l| l.to_string()).unwrap_or_default();
        let v = self.run(&self.scripts.depths, vec![late]).await?;
        if v.is_null() {
            return Ok(Vec::new());
        }
        v.into_array()
            .into_iter()
            .map(|row| {
                let r = row.into_array();
                Ok(QueueDepth {
                    group: group_of(at(&r, 0)?)?,
                    queued: uint(at(&r, 1)?)?,
                    due: uint(at(&r, 2)?)?,
                    claimed: uint(at(&r, 3)?)?,
                    done: uint(at(&r, 4)?)?,
                    oldest_due: match r.get(5).map(int).transpose()? {
                        Some(ms) if ms >= 0 => Some(to_timestamp(ms.unsigned_abs())),
                        _ => None,
                    },
                    late: r.get(6).map(uint).transpose()?.unwrap_or(0),
                })
            })
            .collect()
    }

    async fn session_put(
        &self,
        key: &str,
        user_id: i64,
        record: &str,
        ttl_ms: u64,
        index_ttl_ms: u64,
    ) -> BResult<()> {
        let args = vec![
            key.to_string(),
            user_id.to_string(),
            record.to_string(),
            ttl_ms.max(1).to_string(),
            index_ttl_ms.max(1).to_string(),
        ];
        self.run(&self.scripts.session_put, args).await?;
        Ok(())
    }

    async fn session_get(&self, key: &str) -> BResult<Option<String>> {
        let v = self
            .run(&self.scripts.session_get, vec![key.to_string()])
            .await?;
        Ok(v.as_string())
    }

    async fn session_remove(&self, key: &str, user_id: i64) -> BResult<bool> {
        let v = self
            .run(
                &self.scripts.session_remove,
                vec![key.to_string(), user_id.to_string()],
            )
            .await?;
        Ok(uint(&v)? > 0)
    }

    async fn session_remove_user(&self, user_id: i64) -> BResult<u64> {
        let v = self
            .run(&self.scripts.session_remove_user, vec![user_id.to_string()])
            .await?;
        uint(&v)
    }

    async fn session_list(&self, user_id: i64) -> BResult<Vec<String>> {
        let v = self
            .run(&self.scripts.session_list, vec![user_id.to_string()])
            .await?;
        Ok(v.into_array()
            .iter()
            .filter_map(|x| x.as_string())
            .collect())
    }
}
