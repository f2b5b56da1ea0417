//! Keys from the identity provider: OIDC / RFC 8414 discovery or a JWKS URL, fetched off the
//! request path, refreshed in the background, refetched once per cooldown on an unknown `kid`,
//! and kept through outages up to a maximum staleness.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{ConfigError, KeyError, ProviderError, ProviderErrorKind, TokenError};
use crate::provider::HttpClient;
use crate::provider::discovery;

use super::KeySet;
use super::source::{Origin, RemoteOptions};

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
    last_error: Option<ProviderError>,
}

/// Why a fetch is wanted; decides whether a recent attempt makes it unnecessary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// Start-up: unless a fetch (the background refresh's first) just succeeded.
    Scheduled,
    /// The background timer: unless a fetch just succeeded.
    Timer,
    /// No usable keys: fetch unless an attempt failed within the retry interval.
    Missing,
    /// A token named a `kid` we do not have: at most once per cooldown.
    UnknownKid,
}

/// Keys fetched from the identity provider and refreshed.
pub(crate) struct RemoteKeys {
    opts: RemoteOptions,
    http: HttpClient,
    snapshot: RwLock<Arc<Snapshot>>,
    fetch_lock: tokio::sync::Mutex<()>,
    attempts: AtomicU64,
    refresher: AtomicBool,
    /// The generation of the keys, for streams that re-check their token when it changes.
    generations: tokio::sync::watch::Sender<u64>,
}

/// Usable keys and their generation.
pub(crate) type Current = (Arc<KeySet>, u64);

impl RemoteKeys {
    pub(super) fn new(opts: RemoteOptions) -> Result<Arc<Self>, ConfigError> {
        let http = match &opts.http {
            Some(http) => http.clone(),
            None => HttpClient::new()?,
        };
        let (what, url) = match &opts.origin {
            Origin::Discover(issuer) => ("issuer", issuer.as_str()),
            Origin::Url(url) => ("JWKS URL", url.as_str()),
        };
        http.check_url(what, url)?;
        Ok(Arc::new(Self {
            opts,
            http,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            fetch_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            refresher: AtomicBool::new(false),
            generations: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// The configured issuer or JWKS URL, for messages and logs (credentials redacted).
    fn source_url(&self) -> String {
        match &self.opts.origin {
            Origin::Discover(url) | Origin::Url(url) => crate::error::shown_url(url),
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

    /// Tells of every change of the keys (a new generation), for open streams to re-check
    /// their token.
    pub(crate) fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generations.subscribe()
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
        if self.current().is_some_and(|(keys, _)| !keys.is_empty()) {
            return Ok(());
        }
        let reason = match loaded {
            Err(_) => ProviderError::new(ProviderErrorKind::StartupTimeout {
                source: self.source_url(),
                after: self.opts.startup_timeout,
            }),
            Ok(_) => self
                .snapshot()
                .last_error
                .clone()
                .unwrap_or_else(|| ProviderError::new(ProviderErrorKind::NoKeys)),
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
    ///
    /// The fetch runs on a task of its own, so it completes — and records its outcome — even
    /// when the call that started it is dropped: a `grpc-timeout` or an RST_STREAM ends the
    /// request's future, and a refetch cut short there would use up the unknown-`kid`
    /// cooldown without installing the keys it went for, refusing every token of a new key
    /// until the next scheduled refresh. Outside a runtime it runs inline.
    async fn refresh(self: &Arc<Self>, reason: Reason) -> bool {
        // Fetches finished after this point answer this call too.
        let seen = self.attempts.load(Ordering::SeqCst);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.refresh_now(reason, seen).await;
        };
        let this = self.clone();
        let task = runtime.spawn(async move { this.refresh_now(reason, seen).await });
        // A panic in the fetch (there is none to expect) is not a fetch.
        task.await.unwrap_or(false)
    }

    async fn refresh_now(&self, reason: Reason, seen: u64) -> bool {
        let _guard = self.fetch_lock.lock().await;
        if self.attempts.load(Ordering::SeqCst) != seen {
            return false; // a fetch finished while we waited: use its result
        }
        let snapshot = self.snapshot();
        let now = Instant::now();
        let recent = |at: Option<Instant>, within: Duration| {
            at.is_some_and(|at| now.duration_since(at) < within)
        };
        match reason {
            Reason::Scheduled | Reason::Timer
                if snapshot.last_error.is_none()
                    && recent(snapshot.fetched_at, self.opts.min_refresh) =>
            {
                return false;
            }
            Reason::Scheduled | Reason::Timer => {}
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
                crate::metrics::jwks_fetch(false);
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
        let parsed = match KeySet::from_jwks(document) {
            // A well-formed JWKS with no key we can use — `{"keys": []}` above all — is the
            // provider withdrawing every key ("trust nothing"): it replaces the key set, so
            // withdrawn keys and the tokens cached under them stop validating. Only a failed
            // fetch or an unparseable document keeps the last good keys.
            Err(KeyError::NoUsableKey { skipped }) => {
                tracing::error!(target: "oauth_grpc::keys", source = %self.source_url(), skipped, "the JWKS holds no usable key: every token is refused until keys are published");
                Ok(KeySet::new())
            }
            other => other,
        };
        match parsed {
            Ok(keys) => {
                crate::metrics::jwks_fetch(true);
                let digest: [u8; 32] = Sha256::digest(document).into();
                // Whether these keys replace different ones (the first load replaces none).
                let mut replaced = false;
                self.update(|s| {
                    if s.keys.is_none() || s.digest != digest {
                        replaced = s.keys.is_some();
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
                if replaced {
                    crate::metrics::key_set_changed();
                }
                let generation = self.generation();
                self.generations.send_if_modified(|seen| {
                    let changed = *seen != generation;
                    *seen = generation;
                    changed
                });
            }
            Err(error) => {
                crate::metrics::jwks_fetch(false);
                let error =
                    ProviderError::with_source(ProviderErrorKind::KeysRefused, Arc::new(error));
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
    ) -> Result<(reqwest::Url, Vec<u8>, Option<Duration>), ProviderError> {
        let uri = match (known_uri, &self.opts.origin) {
            (Some(uri), _) => uri,
            (None, Origin::Url(url)) => self.http.check_url("JWKS URL", url)?,
            (None, Origin::Discover(issuer)) => discovery::jwks_uri(&self.http, issuer).await?,
        };
        let (document, max_age) = self.http.get(uri.clone()).await?;
        Ok((uri, document, max_age))
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
