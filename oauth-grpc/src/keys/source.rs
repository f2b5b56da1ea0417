//! [`KeySource`]: where a validator's keys come from; and [`Keys`], what the validator holds
//! once the sources are merged: one static key set, or the remote keys.

use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "jwks")]
use std::time::Duration;

use crate::error::{ConfigError, TokenError};
#[cfg(feature = "jwks")]
use crate::provider::HttpClient;

#[cfg(feature = "jwks")]
use super::remote::RemoteKeys;
use super::{KeySet, KeyType};

/// Where a [`Validator`](crate::Validator) gets its keys: fixed keys, or the identity provider.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::KeySource;
///
/// // OIDC discovery (RFC 8414 as fallback); the metadata's `issuer` must equal this exactly.
/// let source = KeySource::discover("https://idp.example.com/")
///     .refresh_between(Duration::from_secs(300), Duration::from_secs(3600))
///     .unknown_kid_cooldown(Duration::from_secs(10))
///     .max_staleness(Duration::from_secs(6 * 3600));
/// assert!(format!("{source:?}").contains("kid_cooldown: 10s"));
/// ```
#[derive(Debug, Clone)]
pub struct KeySource {
    kind: SourceKind,
}

#[derive(Debug, Clone)]
enum SourceKind {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(Box<RemoteOptions>),
}

impl From<KeySet> for KeySource {
    fn from(keys: KeySet) -> Self {
        Self {
            kind: SourceKind::Static(keys),
        }
    }
}

#[cfg(feature = "jwks")]
impl KeySource {
    /// Keys found by discovery: `{issuer}/.well-known/openid-configuration`, falling back to
    /// RFC 8414 `/.well-known/oauth-authorization-server`. The metadata's `issuer` must equal
    /// `issuer` exactly; its `jwks_uri` is then fetched and refreshed.
    pub fn discover(issuer: impl Into<String>) -> Self {
        Self::remote(Origin::Discover(issuer.into()))
    }

    /// Keys from a JWKS URL.
    pub fn jwks_url(url: impl Into<String>) -> Self {
        Self::remote(Origin::Url(url.into()))
    }

    fn remote(origin: Origin) -> Self {
        Self {
            kind: SourceKind::Remote(Box::new(RemoteOptions::new(origin))),
        }
    }

    fn options(mut self, change: impl FnOnce(&mut RemoteOptions)) -> Self {
        if let SourceKind::Remote(options) = &mut self.kind {
            change(options);
        }
        self
    }

    /// Bounds on the refresh interval, which is otherwise the JWKS response's
    /// `Cache-Control: max-age` (one hour without it). Default: 1 minute to 24 hours.
    #[must_use]
    pub fn refresh_between(self, min: Duration, max: Duration) -> Self {
        self.options(|o| {
            o.min_refresh = min.min(max);
            o.max_refresh = max.max(min);
        })
    }

    /// After a token names an unknown `kid`, the keys are refetched at most once per this
    /// interval across all requests. Default 30 seconds.
    #[must_use]
    pub fn unknown_kid_cooldown(self, cooldown: Duration) -> Self {
        self.options(|o| o.kid_cooldown = cooldown)
    }

    /// How long the last good keys keep validating while the provider cannot be reached.
    /// Past it, calls that need keys get `UNAVAILABLE`. Default 24 hours.
    #[must_use]
    pub fn max_staleness(self, staleness: Duration) -> Self {
        self.options(|o| o.max_staleness = staleness)
    }

    /// How soon a failed fetch is retried (in the background, and by requests that find no
    /// usable keys). Default 5 seconds.
    #[must_use]
    pub fn retry_after(self, retry: Duration) -> Self {
        self.options(|o| o.retry = retry)
    }

    /// The start-up load by [`ValidatorBuilder::start`](crate::ValidatorBuilder::start): how long to wait, and whether
    /// start-up fails (the default) or goes on without keys when none could be had.
    #[must_use]
    pub fn startup(self, timeout: Duration, fail_on_error: bool) -> Self {
        self.options(|o| {
            o.startup_timeout = timeout;
            o.fail_on_startup = fail_on_error;
        })
    }

    /// The HTTP client for discovery and JWKS requests.
    #[must_use]
    pub fn http_client(self, http: HttpClient) -> Self {
        self.options(|o| o.http = Some(http))
    }
}

impl KeySource {
    /// This source for one tenant of an issuer template: `placeholder` in its URL replaced
    /// by `tenant` (static keys are the same for every tenant).
    pub(crate) fn for_tenant(&self, placeholder: &str, tenant: &str) -> Self {
        #[cfg(not(feature = "jwks"))]
        let _ = (placeholder, tenant);
        match &self.kind {
            SourceKind::Static(_) => self.clone(),
            #[cfg(feature = "jwks")]
            SourceKind::Remote(options) => {
                let mut options = options.clone();
                options.origin = match &options.origin {
                    Origin::Discover(url) => Origin::Discover(url.replace(placeholder, tenant)),
                    Origin::Url(url) => Origin::Url(url.replace(placeholder, tenant)),
                };
                Self {
                    kind: SourceKind::Remote(options),
                }
            }
        }
    }

    /// This source, fetching with `http` unless it was given a client of its own.
    #[cfg(feature = "jwks")]
    pub(crate) fn default_http_client(mut self, http: &HttpClient) -> Self {
        if let SourceKind::Remote(options) = &mut self.kind
            && options.http.is_none()
        {
            options.http = Some(http.clone());
        }
        self
    }
}

/// Where remote keys come from.
#[cfg(feature = "jwks")]
#[derive(Clone)]
pub(super) enum Origin {
    /// `{issuer}/.well-known/openid-configuration`, then RFC 8414.
    Discover(String),
    /// A JWKS document at this URL.
    Url(String),
}

#[cfg(feature = "jwks")]
impl std::fmt::Debug for Origin {
    // The URL without credentials (userinfo, query), like every message of the crate.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Discover(issuer) => f
                .debug_tuple("Discover")
                .field(&crate::error::shown_url(issuer))
                .finish(),
            Self::Url(url) => f
                .debug_tuple("Url")
                .field(&crate::error::shown_url(url))
                .finish(),
        }
    }
}

/// The settings of a remote key source, written only by [`KeySource`]'s setters.
#[cfg(feature = "jwks")]
#[derive(Debug, Clone)]
pub(super) struct RemoteOptions {
    pub(super) origin: Origin,
    pub(super) http: Option<HttpClient>,
    pub(super) min_refresh: Duration,
    pub(super) max_refresh: Duration,
    pub(super) kid_cooldown: Duration,
    pub(super) max_staleness: Duration,
    pub(super) retry: Duration,
    pub(super) startup_timeout: Duration,
    pub(super) fail_on_startup: bool,
}

#[cfg(feature = "jwks")]
impl RemoteOptions {
    fn new(origin: Origin) -> Self {
        Self {
            origin,
            http: None,
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(24 * 3600),
            kid_cooldown: Duration::from_secs(30),
            max_staleness: Duration::from_secs(24 * 3600),
            retry: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(10),
            fail_on_startup: true,
        }
    }
}

/// The keys of one validator: fixed, or the identity provider's.
pub(crate) enum Keys {
    Static(Arc<KeySet>),
    #[cfg(feature = "jwks")]
    Remote(Arc<RemoteKeys>),
}

impl Keys {
    /// Merges the configured sources: any number of static key sets and JWKS files, or one
    /// remote source alone; never HMAC secrets beside public keys.
    ///
    /// A discovery source must name one of `issuers`: its metadata vouches for the keys of
    /// that issuer only (RFC 8414 §3.3), so keys discovered for another issuer never verify
    /// tokens of this validator's.
    pub(crate) fn from_sources(
        sources: Vec<KeySource>,
        files: &[PathBuf],
        issuers: &[String],
    ) -> Result<Self, ConfigError> {
        #[cfg(not(feature = "jwks"))]
        let _ = issuers; // only discovery names an issuer
        let mut keys = KeySet::new();
        #[cfg(feature = "jwks")]
        let mut remote: Option<RemoteOptions> = None;
        for source in sources {
            match source.kind {
                SourceKind::Static(set) => keys = keys.merge(set),
                #[cfg(feature = "jwks")]
                SourceKind::Remote(options) => {
                    if remote.is_some() {
                        return Err(ConfigError::MixedSources);
                    }
                    remote = Some(*options);
                }
            }
        }
        for path in files {
            keys = keys.merge(KeySet::from_jwks_file(path)?);
        }
        if keys.has_hmac() && keys.iter().any(|k| k.key_type() != KeyType::Hmac) {
            return Err(ConfigError::MixedKeys);
        }
        #[cfg(feature = "jwks")]
        if let Some(options) = remote {
            if !keys.is_empty() {
                return Err(ConfigError::MixedSources);
            }
            if let Origin::Discover(discovered) = &options.origin
                && !issuers.contains(discovered)
            {
                return Err(ConfigError::DiscoveryIssuer {
                    discovered: crate::error::shown_url(discovered),
                    configured: issuers.iter().map(|i| crate::error::shown_url(i)).collect(),
                });
            }
            return Ok(Self::Remote(RemoteKeys::new(options)?));
        }
        Ok(Self::Static(Arc::new(keys)))
    }

    /// The keys held now and their generation, without waiting: `None` when remote keys
    /// were never fetched or are past the maximum staleness.
    pub(crate) fn current(&self) -> Option<(Arc<KeySet>, u64)> {
        match self {
            Self::Static(keys) => Some((keys.clone(), 0)),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.current(),
        }
    }

    /// Usable keys, fetching them (once, for all waiting callers) when there are none.
    pub(crate) async fn ensure(&self) -> Result<(Arc<KeySet>, u64), TokenError> {
        match self {
            Self::Static(keys) => Ok((keys.clone(), 0)),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.ensure().await,
        }
    }

    /// After a token named a `kid` the keys of generation `seen` lack: whether keys of
    /// another generation are now held (refetched at most once per cooldown).
    pub(crate) async fn after_unknown_kid(&self, seen: u64) -> Result<bool, TokenError> {
        let _ = seen; // static keys have one generation
        match self {
            Self::Static(_) => Ok(false),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.after_unknown_kid(seen).await,
        }
    }

    /// Changes of the keys, for open streams to re-check their token; `None` for keys that
    /// never change.
    pub(crate) fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            Self::Static(_) => None,
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => Some(remote.changes()),
        }
    }

    /// The generation of the keys held now; cached tokens of other generations are checked
    /// again.
    pub(crate) fn generation(&self) -> u64 {
        match self {
            Self::Static(_) => 0,
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.generation(),
        }
    }

    /// Whether there is nothing to verify with: no static key and no remote source.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Self::Static(keys) if keys.is_empty())
    }

    /// Starts the background refresh of remote keys, when a runtime is at hand.
    pub(crate) fn start_background(&self) {
        #[cfg(feature = "jwks")]
        if let Self::Remote(remote) = self {
            remote.start_background();
        }
    }

    /// The first load of remote keys, within the source's start-up timeout.
    pub(crate) async fn load_at_startup(&self) -> Result<(), ConfigError> {
        match self {
            Self::Static(_) => Ok(()),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.load_at_startup().await,
        }
    }

    /// What the keys are, for `Debug`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Static(keys) => format!("{} static keys", keys.len()),
            #[cfg(feature = "jwks")]
            Self::Remote(_) => "remote key source".to_owned(),
        }
    }
}
