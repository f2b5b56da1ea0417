//! [`RedisStore`]: the shared state of many replicas on Redis (feature `redis`).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, IntoConnectionInfo, RedisError};

use super::{Published, SharedStore, StoreError, StoreFuture};
use crate::error::ConfigError;

/// How to reach Redis: [`RedisStore::connect`].
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_grpc::store::{RedisConfig, RedisStore};
///
/// # async fn run() -> Result<(), oauth_grpc::ConfigError> {
/// let store = RedisStore::connect(
///     RedisConfig::new("rediss://redis.internal:6380/")
///         .password_file("/run/secrets/redis-password")
///         .prefix("orders:")
///         .timeout(Duration::from_millis(50)),
/// )
/// .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisConfig {
    url: String,
    username: Option<String>,
    password_file: Option<PathBuf>,
    ca_certificate: Option<Vec<u8>>,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// Redis at `url`: `redis://host:port/db`, or `rediss://…` for TLS (the server's
    /// certificate checked against the system's roots, or
    /// [`ca_certificate_pem`](Self::ca_certificate_pem)). Keys start with `oauth-grpc:`;
    /// each command must answer within 50 ms.
    ///
    /// ```
    /// let config = oauth_grpc::store::RedisConfig::new("redis://127.0.0.1:6379/");
    /// # let _ = config;
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            username: None,
            password_file: None,
            ca_certificate: None,
            prefix: "oauth-grpc:".to_owned(),
            timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// Authenticates with the password in `path` (its content, without a final newline):
    /// Redis `AUTH`, or `AUTH username password` with [`username`](Self::username). The
    /// password is read once, at [`RedisStore::connect`], and never logged. A password in
    /// the URL is refused: URLs end up in logs and process listings.
    ///
    /// ```
    /// let config = oauth_grpc::store::RedisConfig::new("redis://127.0.0.1:6379/")
    ///     .password_file("/run/secrets/redis-password");
    /// # let _ = config;
    /// ```
    pub fn password_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.password_file = Some(path.into());
        self
    }

    /// The ACL user to authenticate as (Redis 6+); `default` when not given.
    ///
    /// ```
    /// let config = oauth_grpc::store::RedisConfig::new("redis://127.0.0.1:6379/").username("orders");
    /// # let _ = config;
    /// ```
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Trusts only this CA certificate (PEM) for a `rediss://` server, instead of the
    /// system's roots: for a private CA.
    ///
    /// ```
    /// let pem = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
    /// let config = oauth_grpc::store::RedisConfig::new("rediss://redis.internal:6380/")
    ///     .ca_certificate_pem(pem);
    /// # let _ = config;
    /// ```
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// What every key starts with (`oauth-grpc:` by default): one prefix per service, so
    /// that services sharing a Redis do not share one-time marks or revocations.
    ///
    /// ```
    /// let config = oauth_grpc::store::RedisConfig::new("redis://127.0.0.1:6379/").prefix("orders:");
    /// # let _ = config;
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a command may take (50 ms by default) before the call that needs it is
    /// answered `UNAVAILABLE`.
    ///
    /// ```
    /// let config = oauth_grpc::store::RedisConfig::new("redis://127.0.0.1:6379/")
    ///     .timeout(std::time::Duration::from_millis(20));
    /// # let _ = config;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take (2 s by default), at start-up and on each reconnect.
    ///
    /// ```
    /// let config = oauth_grpc::store::RedisConfig::new("redis://127.0.0.1:6379/")
    ///     .connect_timeout(std::time::Duration::from_secs(1));
    /// # let _ = config;
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// A [`SharedStore`] on Redis, for many replicas: one multiplexed connection (the `redis`
/// crate's `ConnectionManager`, which pipelines concurrent commands and reconnects by
/// itself), every command bounded by the [timeout](RedisConfig::timeout).
///
/// Keys: one-time marks and proofs are `SET NX PX`, the introspection cache `SET PX`, the
/// revocation list a sorted set scored by expiry plus a version that moves by a random step
/// (so that a Redis restarted empty does not repeat a version a replica read), both under one
/// hash tag (`{revocations}`) so that Redis Cluster keeps them on one node.
///
/// ```no_run
/// use std::sync::Arc;
/// use oauth_grpc::store::{RedisConfig, RedisStore, SharedStore};
///
/// # async fn run() -> Result<(), oauth_grpc::ConfigError> {
/// let store: Arc<dyn SharedStore> =
///     Arc::new(RedisStore::connect(RedisConfig::new("redis://127.0.0.1:6379/")).await?);
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// Where, for `Debug` (the URL without credentials: none are allowed in it).
    url: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to Redis, authenticates, and checks that it answers (`PING`).
    ///
    /// # Errors
    /// [`ConfigError::StoreUrl`] for a URL that is not `redis://` / `rediss://` or carries a
    /// password, [`ConfigError::PasswordFile`] for an unreadable or empty password file,
    /// [`ConfigError::StoreAuth`] when Redis refuses the credentials (or wants some), and
    /// [`ConfigError::Store`] when it cannot be reached in time.
    pub async fn connect(config: RedisConfig) -> Result<Self, ConfigError> {
        let url = config.url.trim();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(ConfigError::StoreUrl(
                "it is not a redis:// or rediss:// URL".to_owned(),
            ));
        }
        let info = url
            .into_connection_info()
            .map_err(|error| ConfigError::StoreUrl(error.to_string()))?;
        if info.redis_settings().password().is_some() {
            return Err(ConfigError::StoreUrl(
                "it carries a password, which would end up in logs".to_owned(),
            ));
        }
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &config.username {
            settings = settings.set_username(username);
        }
        if let Some(path) = &config.password_file {
            settings = settings.set_password(read_password(path)?);
        }
        let info = info.set_redis_settings(settings);
        if url.starts_with("rediss://") {
            tls_provider()?;
        }
        let client = match &config.ca_certificate {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
        .map_err(|error| ConfigError::StoreUrl(error.to_string()))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.timeout))
            // Reconnect quickly after an outage: the calls that need the store wait on it.
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let connecting = client.get_connection_manager_with_config(manager);
        let mut connection =
            match tokio::time::timeout(config.connect_timeout * 3, connecting).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => return Err(startup_error(&error)),
                Err(_) => {
                    return Err(ConfigError::Store(StoreError::Timeout(
                        config.connect_timeout * 3,
                    )));
                }
            };
        let ping_command = redis::cmd("PING");
        let ping = ping_command.query_async::<String>(&mut connection);
        match tokio::time::timeout(config.connect_timeout, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(startup_error(&error)),
            Err(_) => {
                return Err(ConfigError::Store(StoreError::Timeout(
                    config.connect_timeout,
                )));
            }
        }
        Ok(Self {
            connection,
            prefix: config.prefix,
            timeout: config.timeout,
            url: url.to_owned(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The two keys of a log, under one hash tag.
    fn log_keys(&self, log: &str) -> (String, String) {
        let base = format!("{}{{{log}}}", self.prefix);
        let version = format!("{base}:version");
        (base, version)
    }

    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(command.query_async::<T>(&mut connection))
            .await
    }

    async fn run_pipeline<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        self.bounded(pipeline.query_async::<T>(&mut connection))
            .await
    }

    /// A query's answer within the timeout.
    async fn bounded<T>(
        &self,
        query: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, query).await {
            Ok(result) => result.map_err(|error| store_error(&error, self.timeout)),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }
}

/// A version step of 1 to 2^32: after a reset, the chance that a version repeats one a
/// replica read before is 2^-32 per publication.
fn version_step() -> u64 {
    let mut bytes = [0u8; 4];
    // No randomness (never seen on a supported OS): the step of a counter.
    if getrandom::fill(&mut bytes).is_err() {
        return 1;
    }
    u64::from(u32::from_le_bytes(bytes)) + 1
}

/// A TTL in milliseconds for `PX`: at least 1, at most a century (Redis refuses an expiry
/// past `i64` milliseconds from now).
fn millis(ttl: Duration) -> u64 {
    const CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
    u64::try_from(ttl.as_millis()).map_or(CENTURY_MS, |ms| ms.clamp(1, CENTURY_MS))
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl SharedStore for RedisStore {
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut command = redis::cmd("SET");
            command
                .arg(self.key(key))
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl));
            // `OK` when set, nil when the key was there.
            let answer: Option<String> = self.run(&command).await?;
            match answer.as_deref() {
                Some("OK") => Ok(true),
                None => Ok(false),
                Some(_) => Err(StoreError::Malformed("SET NX answered neither OK nor nil")),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut command = redis::cmd("GET");
            command.arg(self.key(key));
            self.run(&command).await
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("SET");
            command
                .arg(self.key(key))
                .arg(value)
                .arg("PX")
                .arg(millis(ttl));
            self.run::<()>(&command).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut command = redis::cmd("DEL");
            command.arg(self.key(key));
            self.run::<()>(&command).await
        })
    }

    fn publish<'a>(
        &'a self,
        log: &'a str,
        entry: &'a [u8],
        until: SystemTime,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let (entries, version) = self.log_keys(log);
            let now = unix_millis(SystemTime::now());
            let mut pipeline = redis::pipe();
            pipeline
                .atomic()
                // GT: an entry already there is only ever extended.
                .cmd("ZADD")
                .arg(&entries)
                .arg("GT")
                .arg(unix_millis(until))
                .arg(entry)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&entries)
                .arg("-inf")
                .arg(format!("({now}"))
                .ignore()
                // A random step, not 1: a Redis that lost its data counts again from 0,
                // and a replica that last read version 3 must not take a new 3 for its own.
                .cmd("INCRBY")
                .arg(&version)
                .arg(version_step());
            let (version,): (u64,) = self.run_pipeline(&pipeline).await?;
            Ok(version)
        })
    }

    fn version<'a>(&'a self, log: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let (_, version) = self.log_keys(log);
            let mut command = redis::cmd("GET");
            command.arg(version);
            let version: Option<u64> = self.run(&command).await?;
            Ok(version.unwrap_or(0))
        })
    }

    fn entries<'a>(&'a self, log: &'a str) -> StoreFuture<'a, Published> {
        Box::pin(async move {
            let (entries, version) = self.log_keys(log);
            let now = unix_millis(SystemTime::now());
            let mut pipeline = redis::pipe();
            pipeline
                .atomic()
                .cmd("GET")
                .arg(&version)
                .cmd("ZRANGEBYSCORE")
                .arg(&entries)
                .arg(format!("({now}"))
                .arg("+inf");
            let (version, entries): (Option<u64>, Vec<Vec<u8>>) =
                self.run_pipeline(&pipeline).await?;
            Ok(Published {
                version: version.unwrap_or(0),
                entries,
            })
        })
    }
}

/// A crypto provider for rustls, which `redis` needs for `rediss://` and would otherwise
/// panic without: the process's own if one is installed, else AWS-LC (feature `aws-lc`).
fn tls_provider() -> Result<(), ConfigError> {
    if rustls::crypto::CryptoProvider::get_default().is_some() {
        return Ok(());
    }
    #[cfg(feature = "aws-lc")]
    {
        // Another thread may have installed one meanwhile: either is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Ok(())
    }
    #[cfg(not(feature = "aws-lc"))]
    Err(ConfigError::StoreUrl(
        "rediss:// needs a TLS crypto provider and none is installed; enable the `aws-lc` feature or call `rustls::crypto::CryptoProvider::install_default` at start-up".to_owned(),
    ))
}

fn read_password(path: &std::path::Path) -> Result<String, ConfigError> {
    let failed = |reason: String| ConfigError::PasswordFile {
        path: path.display().to_string(),
        reason,
    };
    let content = std::fs::read_to_string(path).map_err(|error| failed(error.to_string()))?;
    let password = content.strip_suffix('\n').unwrap_or(&content);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(failed("it is empty".to_owned()));
    }
    Ok(password.to_owned())
}

/// A start-up failure, as the operator must fix it.
fn startup_error(error: &RedisError) -> ConfigError {
    let code = error.code().unwrap_or_default();
    if error.kind() == ErrorKind::AuthenticationFailed
        || matches!(code, "NOAUTH" | "WRONGPASS" | "NOPERM")
    {
        let reason = match code {
            "NOAUTH" => "Redis wants a password and none was given",
            "WRONGPASS" => "wrong password or user",
            "NOPERM" => "the user may not run the commands this crate needs",
            _ => "authentication failed",
        };
        return ConfigError::StoreAuth(reason.to_owned());
    }
    ConfigError::Store(store_error(error, Duration::ZERO))
}

fn store_error(error: &RedisError, timeout: Duration) -> StoreError {
    if error.is_timeout() {
        return StoreError::Timeout(timeout);
    }
    if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped() {
        // I/O errors name the OS error, never an address or a credential.
        return StoreError::Unreachable(error.to_string());
    }
    if error.kind() == ErrorKind::UnexpectedReturnType || error.kind() == ErrorKind::Parse {
        return StoreError::Malformed("an answer of the wrong type");
    }
    // Server errors carry a code and a fixed message, never our arguments.
    StoreError::Refused(error.code().unwrap_or("error").to_owned())
}
