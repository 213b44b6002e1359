//! Which coordination backend to use and how to reach Redis: a direct address or a list
//! of Sentinels plus a service name. Parsing of LibreNMS-style settings
//! (`REDIS_HOST`, `REDIS_PORT`, `REDIS_SENTINEL=host:port,...`, `REDIS_SENTINEL_SERVICE`,
//! `REDIS_PASSWORD`, `REDIS_DB`) and of `redis://` URLs. Pure: the caller passes a lookup
//! function, so nothing here reads the environment by itself.

use std::time::Duration;

use crate::CoordError;

/// Default Redis port.
pub const REDIS_PORT: u16 = 6379;
/// Default Sentinel port.
pub const SENTINEL_PORT: u16 = 26379;
/// LibreNMS's default Sentinel service name.
pub const DEFAULT_SERVICE: &str = "mymaster";

/// Which backend a [`crate::Coord`] uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CoordConfig {
    /// In process, single node (the default).
    #[default]
    Memory,
    /// Redis, directly or through Sentinel.
    Redis(RedisConfig),
}

/// Where the Redis primary is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, `host:port`.
    Direct { host: String, port: u16 },
    /// Ask these sentinels which server is the primary of `service`.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        service: String,
    },
}

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub target: RedisTarget,
    /// ACL user (Redis 6+), if any.
    pub username: Option<String>,
    /// Password of the Redis servers (the sentinels are assumed to need none).
    pub password: Option<String>,
    /// Database number, selected again after every reconnect.
    pub db: Option<u8>,
    /// Prefix of every key this crate writes, so several clusters can share a server.
    pub key_prefix: String,
    /// A command that gets no answer within this fails (and is retried by the caller):
    /// during a fail-over calls fail fast instead of hanging.
    pub command_timeout: Duration,
    /// Pause between reconnection attempts (each re-asks the sentinels).
    pub reconnect_delay: Duration,
    /// How often the sentinels are asked whether the primary moved while the connection
    /// stayed up (a forced fail-over or a partition); see `sentinel.rs`.
    pub sentinel_check_interval: Duration,
}

impl std::fmt::Debug for RedisConfig {
    // Hand-written so the password never lands in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("sentinel_check_interval", &self.sentinel_check_interval)
            .finish()
    }
}

impl RedisConfig {
    fn with_target(target: RedisTarget) -> Self {
        Self {
            target,
            username: None,
            password: None,
            db: None,
            key_prefix: "lookout:".into(),
            command_timeout: Duration::from_secs(2),
            reconnect_delay: Duration::from_millis(200),
            sentinel_check_interval: Duration::from_secs(1),
        }
    }

    /// A single server.
    pub fn direct(host: impl Into<String>, port: u16) -> Self {
        Self::with_target(RedisTarget::Direct {
            host: host.into(),
            port,
        })
    }

    /// Through sentinels.
    pub fn sentinel(sentinels: Vec<(String, u16)>, service: impl Into<String>) -> Self {
        Self::with_target(RedisTarget::Sentinel {
            sentinels,
            service: service.into(),
        })
    }

    /// `redis://[[user]:password@]host[:port][/db]`.
    pub fn from_url(url: &str) -> Result<Self, CoordError> {
        let bad = |why: &str| CoordError::Config(format!("redis url {url:?}: {why}"));
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("must start with redis:// (TLS is not supported yet)"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, None),
            Some((h, d)) => (
                h,
                Some(
                    d.parse::<u8>()
                        .map_err(|_| bad("database must be a number 0-255"))?,
                ),
            ),
            None => (rest, None),
        };
        let (host, port) = parse_host_port(hostport, REDIS_PORT)?;
        let mut c = Self::direct(host, port);
        c.db = db;
        if let Some(a) = auth {
            let (user, pass) = match a.split_once(':') {
                Some((u, p)) => (u, p),
                None => ("", a),
            };
            c.username = (!user.is_empty()).then(|| user.to_owned());
            c.password = (!pass.is_empty()).then(|| pass.to_owned());
        }
        Ok(c)
    }
}

/// `host:port` (or `[v6]:port`, or `host` alone with `default_port`).
pub fn parse_host_port(s: &str, default_port: u16) -> Result<(String, u16), CoordError> {
    let s = s.trim();
    let bad = |why: &str| CoordError::Config(format!("address {s:?}: {why}"));
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad("junk after ']'")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return Err(bad("write IPv6 addresses as [addr]:port")),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("bad port"))?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

/// A comma-separated list of `host:port` (LibreNMS `REDIS_SENTINEL`).
pub fn parse_host_ports(s: &str, default_port: u16) -> Result<Vec<(String, u16)>, CoordError> {
    let v = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| parse_host_port(p, default_port))
        .collect::<Result<Vec<_>, _>>()?;
    if v.is_empty() {
        return Err(CoordError::Config("empty sentinel list".into()));
    }
    Ok(v)
}

impl CoordConfig {
    /// Build the config from LibreNMS-style settings read through `get` (usually the
    /// environment): `REDIS_SENTINEL` (+ `REDIS_SENTINEL_SERVICE`, default `mymaster`)
    /// wins over `REDIS_URL`, which wins over `REDIS_HOST` (+ `REDIS_PORT`); with none of
    /// them set the memory backend is used. `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_DB`
    /// and `REDIS_PREFIX` apply to all Redis forms.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CoordError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut rc = if let Some(s) = get("REDIS_SENTINEL") {
            let service = get("REDIS_SENTINEL_SERVICE").unwrap_or_else(|| DEFAULT_SERVICE.into());
            RedisConfig::sentinel(parse_host_ports(&s, SENTINEL_PORT)?, service)
        } else if let Some(u) = get("REDIS_URL") {
            RedisConfig::from_url(&u)?
        } else if let Some(h) = get("REDIS_HOST") {
            let port = match get("REDIS_PORT") {
                Some(p) => p
                    .trim()
                    .parse::<u16>()
                    .map_err(|_| CoordError::Config(format!("REDIS_PORT {p:?} is not a port")))?,
                None => REDIS_PORT,
            };
            RedisConfig::direct(h.trim(), port)
        } else {
            return Ok(CoordConfig::Memory);
        };
        if let Some(u) = get("REDIS_USERNAME") {
            rc.username = Some(u);
        }
        if let Some(p) = get("REDIS_PASSWORD") {
            rc.password = Some(p);
        }
        if let Some(d) = get("REDIS_DB") {
            rc.db = Some(d.trim().parse::<u8>().map_err(|_| {
                CoordError::Config(format!("REDIS_DB {d:?} is not a number 0-255"))
            })?);
        }
        if let Some(p) = get("REDIS_PREFIX") {
            rc.key_prefix = p;
        }
        Ok(CoordConfig::Redis(rc))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<CoordConfig, CoordError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CoordConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_memory() {
        assert_eq!(from(&[]).unwrap(), CoordConfig::Memory);
        assert_eq!(from(&[("REDIS_HOST", " ")]).unwrap(), CoordConfig::Memory);
    }

    #[test]
    fn sentinel_list_with_service_password_db() {
        let c = from(&[
            ("REDIS_SENTINEL", "10.0.0.1:26379, 10.0.0.2,[::1]:26380"),
            ("REDIS_SENTINEL_SERVICE", "lookout"),
            ("REDIS_PASSWORD", "s3cret"),
            ("REDIS_DB", "2"),
            ("REDIS_HOST", "ignored"),
        ])
        .unwrap();
        let CoordConfig::Redis(rc) = c else {
            panic!("not redis")
        };
        assert_eq!(
            rc.target,
            RedisTarget::Sentinel {
                sentinels: vec![
                    ("10.0.0.1".into(), 26379),
                    ("10.0.0.2".into(), SENTINEL_PORT),
                    ("::1".into(), 26380)
                ],
                service: "lookout".into()
            }
        );
        assert_eq!(rc.password.as_deref(), Some("s3cret"));
        assert_eq!(rc.db, Some(2));
        assert!(
            !format!("{rc:?}").contains("s3cret"),
            "password must not be printed"
        );
    }

    #[test]
    fn sentinel_service_defaults_to_mymaster() {
        let CoordConfig::Redis(rc) = from(&[("REDIS_SENTINEL", "a:1")]).unwrap() else {
            panic!()
        };
        assert!(
            matches!(rc.target, RedisTarget::Sentinel { ref service, .. } if service == "mymaster")
        );
    }

    #[test]
    fn direct_host_port() {
        let CoordConfig::Redis(rc) =
            from(&[("REDIS_HOST", "redis.lan"), ("REDIS_PORT", "6380")]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            rc.target,
            RedisTarget::Direct {
                host: "redis.lan".into(),
                port: 6380
            }
        );
        assert!(from(&[("REDIS_HOST", "h"), ("REDIS_PORT", "x")]).is_err());
        assert!(from(&[("REDIS_HOST", "h"), ("REDIS_DB", "300")]).is_err());
    }

    #[test]
    fn urls() {
        let c = RedisConfig::from_url("redis://:pw@127.0.0.1:6390/3").unwrap();
        assert_eq!(
            c.target,
            RedisTarget::Direct {
                host: "127.0.0.1".into(),
                port: 6390
            }
        );
        assert_eq!(
            (c.username, c.password.as_deref(), c.db),
            (None, Some("pw"), Some(3))
        );
        let c = RedisConfig::from_url("redis://u:p@h").unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(
            c.target,
            RedisTarget::Direct {
                host: "h".into(),
                port: 6379
            }
        );
        assert!(RedisConfig::from_url("rediss://h").is_err());
        assert!(RedisConfig::from_url("redis://h:0").is_err());
        assert!(RedisConfig::from_url("redis://h/x").is_err());
        assert!(RedisConfig::from_url("redis://:1").is_err());
    }

    #[test]
    fn bad_lists() {
        assert!(parse_host_ports(" , ", 1).is_err());
        assert!(parse_host_ports("a:b", 1).is_err());
        assert!(parse_host_ports("::1:5", 1).is_err());
        assert!(parse_host_ports("[::1", 1).is_err());
    }
}
