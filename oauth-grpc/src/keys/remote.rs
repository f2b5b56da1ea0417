//! Keys from the identity provider: OIDC / RFC 8414 discovery or a JWKS URL, fetched off the
//! request path, refreshed in the background, refetched once per cooldown on an unknown `kid`,
//! and kept through outages up to a maximum staleness.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::TokenError;
use crate::http::HttpClient;
use crate::keys::KeySet;
use crate::validate::ConfigError;

/// Where the keys come from over the network.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `{issuer}/.well-known/openid-configuration`, then RFC 8414.
    Discover(String),
    /// A JWKS document at this URL.
    Url(String),
}

/// Settings of a remote key source; see [`KeySource`](crate::validate::KeySource).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) source: Source,
    pub(crate) http: Option<HttpClient>,
    pub(crate) min_refresh: Duration,
    pub(crate) max_refresh: Duration,
    pub(crate) kid_cooldown: Duration,
    pub(crate) max_staleness: Duration,
    pub(crate) retry: Duration,
    pub(crate) startup_timeout: Duration,
    pub(crate) fail_on_startup: bool,
}

impl Options {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            source,
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

/// Without `Cache-Control: max-age`, keys are refreshed this often (then clamped).
const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

#[derive(Default, Clone)]
struct Snapshot {
    keys: Option<Arc<KeySet>>,
    /// Bumped whenever the key set changes; cached tokens of older generations are re-checked.
    generation: u64,
    digest: [u8; 32],
    fetched_at: Option<Instant>,
    jwks_uri: Option<reqwest::Url>,
    last_attempt: Option<Instant>,
    last_kid_refetch: Option<Instant>,
    next_refresh: Duration,
    last_error: Option<String>,
}

/// Why a fetch is wanted; decides whether a recent attempt makes it unnecessary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// Start-up: always fetch.
    Scheduled,
    /// The background timer: unless a fetch just happened.
    Timer,
    /// No usable keys: fetch unless an attempt failed within the retry interval.
    Missing,
    /// A token named a `kid` we do not have: at most once per cooldown.
    UnknownKid,
}

pub(crate) struct RemoteKeys {
    opts: Options,
    http: HttpClient,
    snapshot: RwLock<Arc<Snapshot>>,
    fetch_lock: tokio::sync::Mutex<()>,
    attempts: AtomicU64,
    refresher: AtomicBool,
}

/// Usable keys and their generation.
pub(crate) type Current = (Arc<KeySet>, u64);

impl RemoteKeys {
    pub(crate) fn new(opts: Options) -> Result<Arc<Self>, ConfigError> {
        let http = match &opts.http {
            Some(http) => http.clone(),
            None => HttpClient::new()?,
        };
        let (what, url) = match &opts.source {
            Source::Discover(issuer) => ("issuer", issuer.as_str()),
            Source::Url(url) => ("JWKS URL", url.as_str()),
        };
        http.check_url(what, url).map_err(ConfigError::KeySource)?;
        Ok(Arc::new(Self {
            opts,
            http,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            fetch_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            refresher: AtomicBool::new(false),
        }))
    }

    /// The configured issuer or JWKS URL, for messages.
    fn source_url(&self) -> &str {
        match &self.opts.source {
            Source::Discover(url) | Source::Url(url) => url,
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut guard = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = Snapshot::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// The keys, if they were fetched and are not older than the maximum staleness.
    pub(crate) fn current(&self) -> Option<Current> {
        let snapshot = self.snapshot();
        let fresh = snapshot
            .fetched_at
            .is_some_and(|at| at.elapsed() <= self.opts.max_staleness);
        match (&snapshot.keys, fresh) {
            (Some(keys), true) => Some((keys.clone(), snapshot.generation)),
            _ => None,
        }
    }

    /// The generation of the current keys (0 before the first fetch).
    pub(crate) fn generation(&self) -> u64 {
        self.snapshot().generation
    }

    /// Usable keys, fetching them (once, for all waiting callers) if there are none.
    pub(crate) async fn ensure(self: &Arc<Self>) -> Result<Current, TokenError> {
        self.ensure_refresher();
        if let Some(current) = self.current() {
            return Ok(current);
        }
        self.refresh(Reason::Missing).await;
        self.current().ok_or(TokenError::Unavailable)
    }

    /// After a token named an unknown `kid`: refetch at most once per cooldown across all
    /// requests. Returns whether the key set changed. The kid is not sent anywhere.
    ///
    /// # Errors
    ///
    /// [`TokenError::Unavailable`] when the keys did not change and the latest fetch failed
    /// (or the keys are stale): the provider could not say whether it published this key,
    /// so a valid token signed with a newly rotated key is not called invalid.
    ///
    /// `seen` is the generation of the keys the token was checked against: keys installed
    /// since then (by another call or the timer) count as a change, so the caller retries
    /// with them even when the cooldown skips this call's own refetch.
    pub(crate) async fn after_unknown_kid(self: &Arc<Self>, seen: u64) -> Result<bool, TokenError> {
        if self.generation() != seen {
            return Ok(true);
        }
        self.refresh(Reason::UnknownKid).await;
        if self.generation() != seen {
            return Ok(true);
        }
        if self.current().is_none() || self.snapshot().last_error.is_some() {
            return Err(TokenError::Unavailable);
        }
        Ok(false)
    }

    /// The first load at start-up, within the start-up timeout.
    pub(crate) async fn load_at_startup(self: &Arc<Self>) -> Result<(), ConfigError> {
        let loaded =
            tokio::time::timeout(self.opts.startup_timeout, self.refresh(Reason::Scheduled)).await;
        self.ensure_refresher();
        if self.current().is_some() {
            return Ok(());
        }
        let reason = match loaded {
            Err(_) => format!(
                "no keys from {} within {:?}",
                self.source_url(),
                self.opts.startup_timeout
            ),
            Ok(_) => self
                .snapshot()
                .last_error
                .clone()
                .unwrap_or_else(|| "no usable keys".to_owned()),
        };
        if self.opts.fail_on_startup {
            Err(ConfigError::Startup(reason))
        } else {
            tracing::warn!(target: "oauth_grpc::keys", %reason, "starting without keys; calls get UNAVAILABLE until they load");
            Ok(())
        }
    }

    /// Runs one fetch unless another caller did one while we waited, or `reason` says a recent
    /// attempt suffices. Returns whether this call fetched.
    async fn refresh(&self, reason: Reason) -> bool {
        let seen = self.attempts.load(Ordering::SeqCst);
        let _guard = self.fetch_lock.lock().await;
        if reason != Reason::Scheduled && self.attempts.load(Ordering::SeqCst) != seen {
            return false; // a fetch finished while we waited: use its result
        }
        let snapshot = self.snapshot();
        let now = Instant::now();
        let recent = |at: Option<Instant>, within: Duration| {
            at.is_some_and(|at| now.duration_since(at) < within)
        };
        match reason {
            Reason::Scheduled => {}
            Reason::Timer
                if snapshot.last_error.is_none()
                    && recent(snapshot.fetched_at, self.opts.min_refresh) =>
            {
                return false;
            }
            Reason::Timer => {}
            Reason::Missing if recent(snapshot.last_attempt, self.opts.retry) => return false,
            Reason::Missing => {}
            Reason::UnknownKid if recent(snapshot.last_kid_refetch, self.opts.kid_cooldown) => {
                return false;
            }
            Reason::UnknownKid => self.update(|s| s.last_kid_refetch = Some(now)),
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let result = self.fetch(snapshot.jwks_uri.clone()).await;
        match result {
            Ok((uri, document, max_age)) => self.install(uri, &document, max_age),
            Err(error) => {
                tracing::warn!(target: "oauth_grpc::keys", source = %self.source_url(), %error, "key fetch failed; keeping the last good keys");
                self.update(|s| {
                    s.last_attempt = Some(Instant::now());
                    s.last_error = Some(error);
                });
            }
        }
        true
    }

    fn install(&self, uri: reqwest::Url, document: &[u8], max_age: Option<Duration>) {
        let next_refresh = max_age
            .unwrap_or(DEFAULT_REFRESH)
            .clamp(self.opts.min_refresh, self.opts.max_refresh);
        match KeySet::from_jwks(document) {
            Ok(keys) => {
                let digest: [u8; 32] = Sha256::digest(document).into();
                self.update(|s| {
                    if s.keys.is_none() || s.digest != digest {
                        s.generation += 1;
                        s.keys = Some(Arc::new(keys));
                        s.digest = digest;
                    }
                    let now = Instant::now();
                    s.fetched_at = Some(now);
                    s.last_attempt = Some(now);
                    s.jwks_uri = Some(uri);
                    s.next_refresh = next_refresh;
                    s.last_error = None;
                });
            }
            Err(error) => {
                let error = format!("the JWKS document was refused: {error}");
                tracing::warn!(target: "oauth_grpc::keys", source = %self.source_url(), %error, "keeping the last good keys");
                self.update(|s| {
                    s.last_attempt = Some(Instant::now());
                    s.last_error = Some(error);
                });
            }
        }
    }

    /// Resolves the JWKS URL (by discovery, once) and downloads the document.
    async fn fetch(
        &self,
        known_uri: Option<reqwest::Url>,
    ) -> Result<(reqwest::Url, Vec<u8>, Option<Duration>), String> {
        let uri = match (known_uri, &self.opts.source) {
            (Some(uri), _) => uri,
            (None, Source::Url(url)) => self.http.check_url("JWKS URL", url)?,
            (None, Source::Discover(issuer)) => self.discover(issuer).await?,
        };
        let (document, max_age) = self.http.get(uri.clone()).await?;
        Ok((uri, document, max_age))
    }

    /// OIDC discovery, then RFC 8414; the document's `issuer` must equal ours exactly.
    async fn discover(&self, issuer: &str) -> Result<reqwest::Url, String> {
        #[derive(serde::Deserialize)]
        struct Metadata {
            issuer: String,
            jwks_uri: String,
        }
        let mut last_error = String::new();
        for url in discovery_urls(issuer)? {
            let url = self.http.check_url("discovery URL", &url)?;
            let body = match self.http.get(url.clone()).await {
                Ok((body, _)) => body,
                Err(error) => {
                    last_error = format!("discovery at {url}: {error}");
                    continue;
                }
            };
            let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| {
                format!(
                    "discovery at {url} is not provider metadata with `issuer` and `jwks_uri` ({e})"
                )
            })?;
            if metadata.issuer != issuer {
                return Err(format!(
                    "discovery at {url} names issuer {:?}, but the validator is configured for {issuer:?}; they must be equal exactly",
                    metadata.issuer
                ));
            }
            return self
                .http
                .check_url("jwks_uri from discovery", &metadata.jwks_uri);
        }
        Err(last_error)
    }

    /// Starts the background refresh (and so the first load) when built inside a runtime.
    pub(crate) fn start_background(self: &Arc<Self>) {
        self.ensure_refresher();
    }

    /// Starts the background refresh once, when a tokio runtime is at hand.
    fn ensure_refresher(self: &Arc<Self>) {
        if self.refresher.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.refresher.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(refresh_loop(weak));
    }
}

/// Refreshes on the interval from the last response, retrying sooner after failures; ends
/// when the validator is dropped.
async fn refresh_loop(weak: Weak<RemoteKeys>) {
    loop {
        let wait = match weak.upgrade() {
            None => return,
            Some(keys) => {
                let snapshot = keys.snapshot();
                match snapshot.fetched_at {
                    // The first load starts at once, so the first calls need not wait for it.
                    None if snapshot.last_attempt.is_none() => Duration::ZERO,
                    None => keys.opts.retry,
                    Some(_) if snapshot.last_error.is_some() => keys.opts.retry,
                    Some(at) => snapshot.next_refresh.saturating_sub(at.elapsed()),
                }
            }
        };
        tokio::time::sleep(wait).await;
        let Some(keys) = weak.upgrade() else {
            return;
        };
        let due = {
            let snapshot = keys.snapshot();
            match snapshot.fetched_at {
                None => true,
                Some(_) if snapshot.last_error.is_some() => true,
                Some(at) => at.elapsed() >= snapshot.next_refresh,
            }
        };
        if due {
            keys.refresh(Reason::Timer).await;
        }
    }
}

/// `{issuer}/.well-known/openid-configuration`, then RFC 8414
/// `{origin}/.well-known/oauth-authorization-server{path}`.
fn discovery_urls(issuer: &str) -> Result<Vec<String>, String> {
    let parsed = reqwest::Url::parse(issuer)
        .map_err(|e| format!("the issuer {issuer:?} is not a URL ({e})"))?;
    let trimmed = issuer.trim_end_matches('/');
    let oidc = format!("{trimmed}/.well-known/openid-configuration");
    let path = parsed.path().trim_end_matches('/');
    let origin = parsed.origin().ascii_serialization();
    let oauth = format!("{origin}/.well-known/oauth-authorization-server{path}");
    Ok(vec![oidc, oauth])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_follow_oidc_and_rfc_8414() {
        assert_eq!(
            discovery_urls("https://idp.example.com/").unwrap(),
            [
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example.com/realms/shop").unwrap(),
            [
                "https://idp.example.com/realms/shop/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/shop",
            ]
        );
        assert!(discovery_urls("not a url").is_err());
    }
}
