//! Deployment configuration, parsed once from Worker vars and secrets. A missing or weak secret
//! is refused here, with a message that names it, before any request is served.

use base64::{engine::general_purpose::STANDARD, Engine};
use std::collections::BTreeMap;

/// Log levels, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }

    /// Whether a line at `level` (a name `parse` knows; anything else counts as error) is written.
    pub fn allows(self, level: &str) -> bool {
        LogLevel::parse(level).unwrap_or(LogLevel::Error) >= self
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

/// An AES-256 key and the id stored beside every ciphertext made with it.
#[derive(Clone)]
pub struct EncryptionKey {
    pub id: String,
    pub bytes: [u8; 32],
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionKey({}, ••••)", self.id)
    }
}

#[derive(Clone)]
pub struct Config {
    /// Hosts that serve the management and widget APIs. An entry without a port matches any port.
    pub api_hosts: Vec<String>,
    /// Clients get portals at `{slug}.{portal_base_domain}`.
    pub portal_base_domain: String,
    pub jwt_secret: Vec<u8>,
    /// The `kid` of `jwt_secret`, stamped on every token it signs.
    pub jwt_key_id: String,
    /// Secrets that still verify tokens (by `kid`) during a key rotation, never sign.
    pub retired_jwt_secrets: Vec<(String, Vec<u8>)>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_secs: i64,
    pub current_key: EncryptionKey,
    /// Keys still accepted for decryption during a rotation.
    pub retired_keys: Vec<EncryptionKey>,
    pub file_signing_secret: Vec<u8>,
    /// The longest lifetime a signed download link may ask for.
    pub max_signed_url_ttl_secs: i64,
    pub doh_resolver_url: String,
    /// Days an unproved domain claim lives before the scheduled job fails it.
    pub pending_domain_ttl_days: i64,
    /// Milliseconds a human needs at least to fill in the widget form.
    pub widget_min_fill_ms: i64,
    /// Failed logins for one email, from all addresses, after which a Turnstile token is required.
    pub login_turnstile_after: i64,
    /// Cloudflare Turnstile: the secret that verifies tokens, and where. Unset: no challenge can
    /// be passed, so an email past the threshold waits out its window.
    pub turnstile_secret: Option<String>,
    pub turnstile_site_key: Option<String>,
    pub turnstile_verify_url: String,
    /// Consecutive failed re-checks after which a verified domain lapses.
    pub lapse_after_failures: i64,
    pub max_upload_bytes: u64,
    pub allowed_upload_types: Vec<String>,
    /// Development only: adds `x-gatehouse-db-queries` to responses so tests can count D1 calls.
    pub debug_headers: bool,
    /// Per-client API rates by plan (`API_RATE_LIMITS`, on unless `false`).
    pub api_rate_limits: bool,
    pub gate_cache_ttl_ms: i64,
    /// How long a move between data shards waits after fencing an agency's writes, and again
    /// after flipping its directory rows, for every cached copy of those rows (a gate's, a
    /// request's still running) to be gone (`tenants::moves`). By default the gate cache's TTL
    /// and 30 s for requests in flight.
    pub shard_move_settle_ms: i64,
    /// The least severe log line written (`LOG_LEVEL`: debug, info, warn or error; info).
    pub log_level: LogLevel,
    /// How long an isolate holds its daily counters before writing them (`METRICS_FLUSH_SECS`).
    pub metrics_flush_ms: i64,
    pub webhooks: WebhookConfig,
    pub mail: MailConfig,
    /// Days an invitation can be accepted in.
    pub invitation_ttl_days: i64,
    /// Days a deleted client can be restored in, before its data is purged.
    pub client_delete_grace_days: i64,
    /// Whether agencies may sign themselves up (`POST /api/signup`).
    pub signup_enabled: bool,
    pub version: &'static str,
}

/// Where mail goes.
#[derive(Clone)]
pub struct MailConfig {
    /// The mail API's endpoint (JSON POST); None: the outbox is the development mailbox.
    pub api_url: Option<String>,
    /// Its bearer key (a secret).
    pub api_key: Option<String>,
    pub from: String,
    /// Development only: log each mail and serve `GET /api/dev/mailbox`.
    pub dev_mailbox: bool,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig").field("api_url", &self.api_url).field("from", &self.from).finish_non_exhaustive()
    }
}

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How long one delivery attempt waits for the receiver.
    pub timeout_ms: u32,
    /// Seconds to wait before each retry; its length + 1 is the number of attempts.
    pub retry_schedule_secs: Vec<u32>,
    /// Consecutive failed attempts after which an endpoint is disabled.
    pub disable_after_failures: i64,
    /// A pending delivery due this long ago with no attempt is queued again by the cron.
    pub requeue_after_secs: i64,
    /// Days events, deliveries and attempts are kept (pending deliveries and their events stay).
    pub retention_days: i64,
    /// Development and tests only: receiver origins (`http://127.0.0.1:8790`) exempt from the
    /// https and private-address rules. Empty, as in production, means no exception.
    pub test_receivers: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_hosts", &self.api_hosts)
            .field("portal_base_domain", &self.portal_base_domain)
            .field("current_key", &self.current_key)
            .finish_non_exhaustive()
    }
}

/// Retries after 30 s, 2 min, 10 min, 1 h, 3 h, 6 h and 12 h: eight attempts over about 22 hours.
pub const DEFAULT_RETRY_SCHEDULE: &str = "30,120,600,3600,10800,21600,43200";

/// Seconds between attempts, each within what a queue message may be delayed (12 hours).
fn retry_schedule(v: &str) -> Result<Vec<u32>, ConfigError> {
    let invalid = |why: &str| ConfigError::Invalid { name: "WEBHOOK_RETRY_SCHEDULE", why: why.into() };
    let steps: Vec<u32> = v
        .split(',')
        .map(|s| s.trim().parse::<u32>().ok().filter(|n| (1..=43_200).contains(n)))
        .collect::<Option<_>>()
        .ok_or_else(|| invalid("a comma-separated list of seconds, each 1 to 43200"))?;
    if steps.len() > 20 {
        return Err(invalid("at most 20 retries"));
    }
    Ok(steps)
}

/// The mail API: https, or plain http on loopback (a development or test mail server).
fn mail_api_url(v: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let ok = url::Url::parse(v.trim()).ok().is_some_and(|u| {
        u.scheme() == "https"
            || (u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
    });
    if !ok {
        return Err(ConfigError::Invalid {
            name: "MAIL_API_URL",
            why: "an https URL (plain http on loopback only)".into(),
        });
    }
    Ok(Some(v.trim().to_string()))
}

/// Development receiver origins: loopback only, so even a deployment that set this by mistake
/// exempts nothing outside its own machine.
fn test_receivers(v: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for o in v.split(',').map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase()).filter(|o| !o.is_empty()) {
        let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|p| o.strip_prefix(p).is_some_and(|port| port.parse::<u16>().is_ok()));
        if !loopback {
            return Err(ConfigError::Invalid {
                name: "WEBHOOK_TEST_RECEIVERS",
                why: "entries are loopback origins with a port, like http://127.0.0.1:8790".into(),
            });
        }
        out.push(o);
    }
    Ok(out)
}

/// Common weak HMAC secrets that must never sign tokens, even if someone sets one.
const WEAK_SECRETS: &[&str] = &["secret", "password", "changeme", "your-256-bit-secret", "jwt-secret", "test"];

impl Config {
    /// Builds the configuration from a lookup of Worker vars and secrets.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let cfg = Self::read(get)?;
        // Open signup without a bot check is for development only.
        if cfg.signup_enabled && cfg.turnstile_secret.is_none() && !cfg.mail.dev_mailbox {
            return Err(ConfigError::Invalid {
                name: "SIGNUP_ENABLED",
                why: "needs TURNSTILE_SECRET_KEY (or DEV_MAILBOX=true in development)".into(),
            });
        }
        Ok(cfg)
    }

    fn read(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let req = |name: &'static str| get(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name));
        let opt =
            |name: &str, default: &str| get(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.into());
        let num = |name: &'static str, default: i64| -> Result<i64, ConfigError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid { name, why: "not an integer".into() }),
            }
        };

        let positive = |name: &'static str, default: i64| -> Result<i64, ConfigError> {
            let v = num(name, default)?;
            if v < 1 {
                return Err(ConfigError::Invalid { name, why: "must be a positive integer".into() });
            }
            Ok(v)
        };
        let jwt_secret = req("JWT_SECRET")?;
        if jwt_secret.len() < 32 || WEAK_SECRETS.contains(&jwt_secret.as_str()) {
            return Err(ConfigError::Invalid { name: "JWT_SECRET", why: "must be at least 32 random bytes".into() });
        }
        let jwt_key_id = opt("JWT_KEY_ID", "k1");
        check_key_id("JWT_KEY_ID", &jwt_key_id)?;
        let mut retired_jwt_secrets = Vec::new();
        for entry in opt("RETIRED_JWT_SECRETS", "").split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid = |why: &str| ConfigError::Invalid { name: "RETIRED_JWT_SECRETS", why: why.into() };
            let (kid, secret) =
                entry.split_once(':').ok_or_else(|| invalid("entries are kid:secret, comma-separated"))?;
            check_key_id("RETIRED_JWT_SECRETS", kid)?;
            if kid == jwt_key_id || retired_jwt_secrets.iter().any(|(k, _)| k == kid) {
                return Err(invalid("key ids must be distinct from each other and from JWT_KEY_ID"));
            }
            if secret.len() < 32 || WEAK_SECRETS.contains(&secret) {
                return Err(invalid("each secret must be at least 32 random bytes"));
            }
            retired_jwt_secrets.push((kid.to_string(), secret.as_bytes().to_vec()));
        }
        let current_key = parse_key("ENCRYPTION_KEY", &opt("ENCRYPTION_KEY_ID", "k1"), &req("ENCRYPTION_KEY")?)?;
        let mut retired_keys = Vec::new();
        for entry in opt("RETIRED_ENCRYPTION_KEYS", "").split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, b64) = entry.split_once(':').ok_or(ConfigError::Invalid {
                name: "RETIRED_ENCRYPTION_KEYS",
                why: "entries are id:base64key, comma-separated".into(),
            })?;
            let key = parse_key("RETIRED_ENCRYPTION_KEYS", id, b64)?;
            if key.id == current_key.id {
                return Err(ConfigError::Invalid {
                    name: "RETIRED_ENCRYPTION_KEYS",
                    why: "a retired key reuses the current key id".into(),
                });
            }
            retired_keys.push(key);
        }
        let file_signing_secret = req("FILE_SIGNING_SECRET")?;
        if file_signing_secret.len() < 32 {
            return Err(ConfigError::Invalid { name: "FILE_SIGNING_SECRET", why: "must be at least 32 bytes".into() });
        }
        let api_hosts: Vec<String> = opt("API_HOSTS", "localhost,127.0.0.1")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();

        Ok(Config {
            api_hosts,
            portal_base_domain: opt("PORTAL_BASE_DOMAIN", "localhost").to_ascii_lowercase(),
            jwt_secret: jwt_secret.into_bytes(),
            jwt_key_id,
            retired_jwt_secrets,
            jwt_issuer: opt("JWT_ISSUER", "gatehouse"),
            jwt_audience: opt("JWT_AUDIENCE", "gatehouse-api"),
            access_token_ttl_secs: num("ACCESS_TOKEN_TTL_SECS", 900)?,
            current_key,
            retired_keys,
            file_signing_secret: file_signing_secret.into_bytes(),
            max_signed_url_ttl_secs: positive("MAX_SIGNED_URL_TTL_SECS", 3600)?,
            doh_resolver_url: opt("DOH_RESOLVER_URL", "https://cloudflare-dns.com/dns-query"),
            pending_domain_ttl_days: positive("PENDING_DOMAIN_TTL_DAYS", 7)?,
            widget_min_fill_ms: num("WIDGET_MIN_FILL_MS", 1500)?.max(0),
            login_turnstile_after: positive("LOGIN_TURNSTILE_AFTER", 10)?,
            turnstile_secret: get("TURNSTILE_SECRET_KEY").filter(|v| !v.trim().is_empty()),
            turnstile_site_key: get("TURNSTILE_SITE_KEY").filter(|v| !v.trim().is_empty()),
            turnstile_verify_url: opt(
                "TURNSTILE_VERIFY_URL",
                "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            ),
            lapse_after_failures: num("DOMAIN_LAPSE_AFTER_FAILURES", 3)?,
            max_upload_bytes: num("MAX_UPLOAD_BYTES", 25 * 1024 * 1024)?.max(0) as u64,
            allowed_upload_types: opt(
                "ALLOWED_UPLOAD_TYPES",
                "image/png,image/jpeg,image/gif,image/webp,image/x-icon,application/pdf,text/plain,text/csv",
            )
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
            debug_headers: opt("DEBUG_HEADERS", "false") == "true",
            api_rate_limits: opt("API_RATE_LIMITS", "true") != "false",
            gate_cache_ttl_ms: num("GATE_CACHE_TTL_MS", 30_000)?,
            shard_move_settle_ms: num("SHARD_MOVE_SETTLE_MS", num("GATE_CACHE_TTL_MS", 30_000)? + 30_000)?.max(0),
            log_level: LogLevel::parse(&opt("LOG_LEVEL", "info"))
                .ok_or(ConfigError::Invalid { name: "LOG_LEVEL", why: "must be debug, info, warn or error".into() })?,
            metrics_flush_ms: positive("METRICS_FLUSH_SECS", 10)?.saturating_mul(1000),
            webhooks: WebhookConfig {
                timeout_ms: num("WEBHOOK_TIMEOUT_MS", 10_000)?.clamp(100, 30_000) as u32,
                retry_schedule_secs: retry_schedule(&opt("WEBHOOK_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE))?,
                disable_after_failures: positive("WEBHOOK_DISABLE_AFTER_FAILURES", 40)?,
                requeue_after_secs: positive("WEBHOOK_REQUEUE_AFTER_SECS", 300)?,
                retention_days: positive("EVENT_RETENTION_DAYS", 30)?,
                test_receivers: test_receivers(&opt("WEBHOOK_TEST_RECEIVERS", ""))?,
            },
            mail: MailConfig {
                api_url: mail_api_url(get("MAIL_API_URL").filter(|v| !v.trim().is_empty()))?,
                api_key: get("MAIL_API_KEY").filter(|v| !v.trim().is_empty()),
                from: opt("MAIL_FROM", "Gatehouse <no-reply@gatehouse.invalid>"),
                dev_mailbox: opt("DEV_MAILBOX", "false") == "true",
            },
            invitation_ttl_days: positive("INVITATION_TTL_DAYS", 7)?,
            client_delete_grace_days: num("CLIENT_DELETE_GRACE_DAYS", 30)?.max(0),
            signup_enabled: opt("SIGNUP_ENABLED", "false") == "true",
            version: env!("CARGO_PKG_VERSION"),
        })
    }

    /// Every key that may decrypt, current first.
    pub fn decryption_key(&self, id: &str) -> Option<&EncryptionKey> {
        std::iter::once(&self.current_key).chain(self.retired_keys.iter()).find(|k| k.id == id)
    }

    /// A map-backed lookup, for tests and tools.
    pub fn from_map(map: &BTreeMap<&str, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| map.get(k).cloned())
    }
}

/// Key ids are 1-32 characters of [A-Za-z0-9_-].
fn check_key_id(name: &'static str, id: &str) -> Result<(), ConfigError> {
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ConfigError::Invalid { name, why: "key ids are 1-32 characters of [A-Za-z0-9_-]".into() });
    }
    Ok(())
}

fn parse_key(name: &'static str, id: &str, b64: &str) -> Result<EncryptionKey, ConfigError> {
    let invalid = |why: &str| ConfigError::Invalid { name, why: why.into() };
    check_key_id(name, id)?;
    let raw = STANDARD.decode(b64.trim()).map_err(|_| invalid("not valid base64"))?;
    let bytes: [u8; 32] = raw.try_into().map_err(|_| invalid("must decode to exactly 32 bytes"))?;
    if bytes.iter().all(|&b| b == bytes[0]) {
        return Err(invalid("is not random (all bytes equal)"));
    }
    Ok(EncryptionKey { id: id.to_string(), bytes })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn test_vars() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("JWT_SECRET", "test-jwt-secret-0123456789abcdef0123456789".to_string()),
            ("ENCRYPTION_KEY", STANDARD.encode([7u8; 31].iter().chain([9u8].iter()).copied().collect::<Vec<u8>>())),
            ("FILE_SIGNING_SECRET", "test-file-signing-secret-0123456789abcdef".to_string()),
        ])
    }

    #[test]
    fn a_missing_or_short_encryption_key_is_refused_by_name() {
        let mut vars = test_vars();
        assert!(Config::from_map(&vars).is_ok());
        vars.remove("ENCRYPTION_KEY");
        assert_eq!(Config::from_map(&vars).unwrap_err(), ConfigError::Missing("ENCRYPTION_KEY"));
        vars.insert("ENCRYPTION_KEY", STANDARD.encode([1u8, 2, 3]));
        let err = Config::from_map(&vars).unwrap_err();
        assert!(err.to_string().contains("ENCRYPTION_KEY is invalid: must decode to exactly 32 bytes"), "{err}");
    }

    #[test]
    fn weak_jwt_secrets_are_refused() {
        for weak in ["", "secret", "short-but-not-32"] {
            let mut vars = test_vars();
            vars.insert("JWT_SECRET", weak.to_string());
            assert!(Config::from_map(&vars).is_err(), "{weak:?} accepted");
        }
    }

    #[test]
    fn retired_jwt_secrets_parse_by_kid_and_refuse_reuse_and_weakness() {
        let mut vars = test_vars();
        vars.insert("JWT_KEY_ID", "k2".into());
        vars.insert("RETIRED_JWT_SECRETS", "k1:old-jwt-secret-0123456789abcdef0123456789".into());
        let cfg = Config::from_map(&vars).unwrap();
        assert_eq!(cfg.jwt_key_id, "k2");
        assert_eq!(
            cfg.retired_jwt_secrets,
            vec![("k1".to_string(), b"old-jwt-secret-0123456789abcdef0123456789".to_vec())]
        );
        for bad in [
            "k2:old-jwt-secret-0123456789abcdef0123456789",
            "k1:short",
            "nokid",
            "../x:old-jwt-secret-0123456789abcdef0123456789",
        ] {
            vars.insert("RETIRED_JWT_SECRETS", bad.into());
            let err = Config::from_map(&vars).unwrap_err();
            assert!(err.to_string().starts_with("RETIRED_JWT_SECRETS is invalid"), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let cfg = Config::from_map(&test_vars()).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("test-jwt-secret") && !dbg.contains("[7, 7"), "{dbg}");
    }
}
