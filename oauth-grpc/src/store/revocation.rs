//! [`Revocations`]: tokens, subjects and clients refused before their tokens expire, the same
//! on every replica.
//!
//! Each replica keeps the whole list in memory and follows the store's log of it: one
//! version read every [`poll_every`](RevocationsBuilder::poll_every) (250 ms), the list
//! itself only when the version moved. A call therefore costs no round trip to the store —
//! with no revocation at all, two atomic loads — and a revocation made on one replica is
//! enforced by every other within one poll interval. Following a versioned log, rather than
//! a publish/subscribe channel, also says when the list may be out of date: when no read
//! succeeded for [`max_staleness`](RevocationsBuilder::max_staleness) (1 s), calls are
//! refused with `UNAVAILABLE` ([`WhenUnavailable::Refuse`], the default) until the store
//! answers again.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{SharedStore, StoreError};
use crate::error::{AuthError, ConfigError, TokenError};
use crate::principal::Principal;

/// The log the list is kept in.
const LOG: &str = "revocations";

/// What is revoked: one token (by `jti`), or every token of a subject or of a client issued
/// until the revocation was made.
///
/// ```
/// use oauth_grpc::store::Revocation;
///
/// let leaked = Revocation::token("9f2c6a4e-…");
/// let left_the_company = Revocation::subject("alice");
/// let compromised_client = Revocation::client("reporting-batch");
/// assert_eq!(left_the_company.to_string(), "every token of subject alice issued until now");
/// # let _ = (leaked, compromised_client);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    kind: Kind,
    value: String,
    /// Tokens issued until then (Unix seconds) are revoked; unused for a token.
    before: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Token,
    Subject,
    Client,
}

impl Kind {
    const fn tag(self) -> &'static str {
        match self {
            Self::Token => "t",
            Self::Subject => "s",
            Self::Client => "c",
        }
    }
}

impl Revocation {
    /// The token whose `jti` is `jti`.
    ///
    /// ```
    /// let revocation = oauth_grpc::store::Revocation::token("4a1c");
    /// # let _ = revocation;
    /// ```
    pub fn token(jti: impl Into<String>) -> Self {
        Self::new(Kind::Token, jti.into())
    }

    /// Every token whose `sub` is `subject` and whose `iat` is not after now (a token
    /// without `iat` cannot show it was issued later, so it is revoked too). Tokens issued
    /// afterwards are accepted: the user signs in again.
    ///
    /// ```
    /// let revocation = oauth_grpc::store::Revocation::subject("alice");
    /// # let _ = revocation;
    /// ```
    pub fn subject(subject: impl Into<String>) -> Self {
        Self::new(Kind::Subject, subject.into())
    }

    /// Every token of the client `client_id` (its `client_id` claim, or `azp`) issued until
    /// now, as for [`subject`](Self::subject).
    ///
    /// ```
    /// let revocation = oauth_grpc::store::Revocation::client("reporting-batch");
    /// # let _ = revocation;
    /// ```
    pub fn client(client_id: impl Into<String>) -> Self {
        Self::new(Kind::Client, client_id.into())
    }

    fn new(kind: Kind, value: String) -> Self {
        Self {
            kind,
            value,
            before: crate::time::unix_now(),
        }
    }

    /// The log entry: the kind, the hash of the value, and for subjects and clients the
    /// instant. Never the value itself.
    fn entry(&self) -> String {
        let digest =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest(self.kind, &self.value));
        match self.kind {
            Kind::Token => format!("t:{digest}"),
            Kind::Subject | Kind::Client => format!("{}:{digest}:{}", self.kind.tag(), self.before),
        }
    }
}

impl fmt::Display for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Token => write!(f, "the token with jti {}", self.value),
            Kind::Subject => write!(f, "every token of subject {} issued until now", self.value),
            Kind::Client => write!(f, "every token of client {} issued until now", self.value),
        }
    }
}

fn digest(kind: Kind, value: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(kind.tag().as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    hasher.finalize().into()
}

/// What calls get while the revocation list may be out of date (no read of the store
/// succeeded for [`max_staleness`](RevocationsBuilder::max_staleness)).
///
/// ```
/// use oauth_grpc::store::WhenUnavailable;
///
/// assert_eq!(WhenUnavailable::default(), WhenUnavailable::Refuse);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenUnavailable {
    /// Refuse every call that needs a token with `UNAVAILABLE` (14) until the store answers:
    /// no revoked token is ever accepted. The default.
    #[default]
    Refuse,
    /// Go on with the list as last read. The risk: a revocation made while this replica
    /// cannot read the store is not enforced here until it can — an outage of the store
    /// becomes a window for a stolen token. Choose it only where availability outweighs that.
    AdmitLastKnown,
}

/// Builds [`Revocations`]: [`Revocations::builder`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use oauth_grpc::store::{MemoryStore, Revocations, WhenUnavailable};
///
/// # async fn run() -> Result<(), oauth_grpc::ConfigError> {
/// let revocations = Revocations::builder(Arc::new(MemoryStore::new()))
///     .poll_every(Duration::from_millis(250))
///     .max_staleness(Duration::from_secs(1))
///     .max_token_lifetime(Duration::from_secs(3600))
///     .when_unavailable(WhenUnavailable::Refuse)
///     .start()
///     .await?;
/// # let _ = revocations;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct RevocationsBuilder {
    store: Arc<dyn SharedStore>,
    poll_every: Duration,
    max_staleness: Duration,
    max_token_lifetime: Duration,
    when_unavailable: WhenUnavailable,
}

impl RevocationsBuilder {
    /// How often the store's version of the list is read (250 ms by default): the longest a
    /// revocation made on another replica takes to be enforced here.
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every;
        self
    }

    /// How long the list may go without a successful read before it counts as out of date
    /// (1 s by default; at least twice [`poll_every`](Self::poll_every)).
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.max_staleness = staleness;
        self
    }

    /// The longest lifetime of a token the service accepts (24 h by default): a revocation
    /// is kept that long, after which every token it covers has expired. Set it to the
    /// validator's [`max_lifetime`](crate::ValidatorBuilder::max_lifetime) if you set one.
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// What calls get while the list may be out of date: [`WhenUnavailable::Refuse`] by
    /// default.
    pub fn when_unavailable(mut self, when: WhenUnavailable) -> Self {
        self.when_unavailable = when;
        self
    }

    /// Reads the list once and starts following it (a task on the current Tokio runtime,
    /// ended when the last clone of the [`Revocations`] is dropped).
    ///
    /// # Errors
    /// [`ConfigError::RevocationTiming`] for settings out of range, [`ConfigError::Store`]
    /// when the first read fails.
    pub async fn start(self) -> Result<Revocations, ConfigError> {
        if self.poll_every.is_zero() {
            return Err(ConfigError::RevocationTiming(
                "the revocation poll interval is zero; give `poll_every` a duration such as 250 ms",
            ));
        }
        if self.max_staleness < self.poll_every * 2 {
            return Err(ConfigError::RevocationTiming(
                "the revocation list's `max_staleness` is shorter than two poll intervals; give it at least twice `poll_every` (e.g. 1 s for 250 ms)",
            ));
        }
        if SystemTime::now()
            .checked_add(self.max_token_lifetime)
            .is_none()
        {
            return Err(ConfigError::RevocationTiming(
                "the revocation list's `max_token_lifetime` is beyond what the clock can hold; give the longest lifetime of a token the service accepts, e.g. 24 h",
            ));
        }
        if self.max_token_lifetime.is_zero() {
            return Err(ConfigError::RevocationTiming(
                "the revocation list's `max_token_lifetime` is zero; give the longest lifetime of a token the service accepts",
            ));
        }
        let (changes, _) = tokio::sync::watch::channel(0);
        let inner = Arc::new(Inner {
            store: self.store,
            mirror: RwLock::new(Mirror::default()),
            empty: AtomicBool::new(true),
            stale: AtomicBool::new(false),
            when_unavailable: self.when_unavailable,
            max_token_lifetime: self.max_token_lifetime,
            poll_every: self.poll_every,
            max_staleness: self.max_staleness,
            changes,
        });
        inner.refresh().await.map_err(ConfigError::Store)?;
        tokio::spawn(follow(Arc::downgrade(&inner)));
        Ok(Revocations { inner })
    }
}

/// The revocation list shared by every replica: revoke by token, subject or client
/// ([`revoke`](Self::revoke)); [`OAuthLayer::revocations`](crate::OAuthLayer::revocations)
/// checks it on every call, cached tokens included, and ends the open streams of what is
/// revoked.
///
/// ```
/// use std::sync::Arc;
/// use oauth_grpc::store::{MemoryStore, Revocation, Revocations};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let revocations = Revocations::builder(Arc::new(MemoryStore::new())).start().await?;
/// revocations.revoke(&Revocation::subject("alice")).await?;
/// assert_eq!(revocations.len(), 1);
///
/// let alice = oauth_grpc::Principal::builder().subject("alice").build(); // no `iat`
/// assert!(revocations.check(&alice).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("store", &self.inner.store)
            .field("revoked", &self.len())
            .field("current", &self.is_current())
            .field("when_unavailable", &self.inner.when_unavailable)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn SharedStore>,
    mirror: RwLock<Mirror>,
    /// The mirror holds nothing: a check costs two atomic loads.
    empty: AtomicBool,
    /// No read succeeded for `max_staleness`.
    stale: AtomicBool,
    when_unavailable: WhenUnavailable,
    max_token_lifetime: Duration,
    poll_every: Duration,
    max_staleness: Duration,
    /// Moves on whenever the mirror gains an entry: open streams check themselves again.
    changes: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Mirror {
    /// The store's version this mirror was read at (`None`: read locally since).
    version: Option<u64>,
    /// Hash of kind and value → for subjects and clients, tokens issued until when are
    /// revoked (`None`: a token, revoked whatever its `iat`).
    revoked: HashMap<[u8; 32], Option<u64>>,
}

impl Mirror {
    fn add(&mut self, digest: [u8; 32], before: Option<u64>) {
        let slot = self.revoked.entry(digest).or_insert(before);
        *slot = match (*slot, before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
}

impl Revocations {
    /// A revocation list on `store`: a `RedisStore` for several replicas, a
    /// [`MemoryStore`](super::MemoryStore) for one.
    ///
    /// ```
    /// # async fn run() -> Result<(), oauth_grpc::ConfigError> {
    /// use std::sync::Arc;
    /// let revocations = oauth_grpc::store::Revocations::builder(Arc::new(oauth_grpc::store::MemoryStore::new()))
    ///     .start()
    ///     .await?;
    /// # let _ = revocations;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(store: Arc<dyn SharedStore>) -> RevocationsBuilder {
        RevocationsBuilder {
            store,
            poll_every: Duration::from_millis(250),
            max_staleness: Duration::from_secs(1),
            max_token_lifetime: Duration::from_secs(24 * 3600),
            when_unavailable: WhenUnavailable::Refuse,
        }
    }

    /// Revokes `revocation` on every replica: recorded in the store (kept for the longest
    /// token lifetime), enforced here at once and by the other replicas within one poll
    /// interval. Open streams of what it covers end with `UNAUTHENTICATED`.
    ///
    /// # Errors
    /// The store's error when it cannot record the revocation: nothing is revoked then, and
    /// the caller should retry.
    pub async fn revoke(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let made = SystemTime::UNIX_EPOCH + Duration::from_secs(revocation.before);
        // `start` refused a lifetime the clock cannot hold; kept long rather than short if
        // the clock ever gets there.
        let until = made
            .checked_add(self.inner.max_token_lifetime)
            .unwrap_or(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 4));
        let entry = revocation.entry();
        self.inner
            .store
            .publish(LOG, entry.as_bytes(), until)
            .await
            .inspect_err(|_| crate::metrics::store_error(crate::metrics::store_use::REVOCATIONS))?;
        let before = (revocation.kind != Kind::Token).then_some(revocation.before);
        {
            let mut mirror = self.inner.write();
            mirror.add(digest(revocation.kind, &revocation.value), before);
            // Read the whole list again at the next poll: others may have revoked too.
            mirror.version = None;
        }
        self.inner.empty.store(false, Ordering::Release);
        self.inner.changes.send_modify(|n| *n += 1);
        tracing::info!(target: "oauth_grpc::store", kind = revocation.kind.tag(), "revoked");
        Ok(())
    }

    /// Whether `principal` may still call: `Err` with
    /// [`TokenError::Revoked`] (16) if its token, subject or client is revoked, or
    /// [`AuthError::StoreUnavailable`] (14) while the list may be out of date under
    /// [`WhenUnavailable::Refuse`].
    ///
    /// # Errors
    /// As above.
    pub fn check(&self, principal: &Principal) -> Result<(), AuthError> {
        let inner = &*self.inner;
        if inner.stale.load(Ordering::Acquire) && inner.when_unavailable == WhenUnavailable::Refuse
        {
            return Err(AuthError::StoreUnavailable);
        }
        if inner.empty.load(Ordering::Acquire) {
            return Ok(());
        }
        if inner.covers(principal) {
            Err(AuthError::InvalidToken(TokenError::Revoked))
        } else {
            Ok(())
        }
    }

    /// How many revocations this replica knows of (entries not yet expired).
    ///
    /// ```
    /// # async fn run() -> Result<(), oauth_grpc::ConfigError> {
    /// # let revocations = oauth_grpc::store::Revocations::builder(std::sync::Arc::new(oauth_grpc::store::MemoryStore::new())).start().await?;
    /// assert!(revocations.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.inner.read().revoked.len()
    }

    /// Whether this replica knows of no revocation.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the list was read within its maximum staleness.
    pub fn is_current(&self) -> bool {
        !self.inner.stale.load(Ordering::Acquire)
    }

    /// Moves on whenever the list gains an entry.
    pub(crate) fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Whether `principal` is covered by a revocation this replica knows (stale or not).
    pub(crate) fn covers(&self, principal: &Principal) -> bool {
        !self.inner.empty.load(Ordering::Acquire) && self.inner.covers(principal)
    }
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Mirror> {
        self.mirror.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Mirror> {
        self.mirror.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn covers(&self, principal: &Principal) -> bool {
        let issued_at = principal.issued_at();
        let mirror = self.read();
        let by = |kind: Kind, value: Option<&str>| {
            value.and_then(|value| mirror.revoked.get(&digest(kind, value)).copied())
        };
        if by(Kind::Token, principal.token_id()).is_some() {
            return true;
        }
        [
            by(Kind::Subject, principal.subject()),
            by(Kind::Client, principal.client_id()),
        ]
        .into_iter()
        .flatten()
        .any(|before| match (before, issued_at) {
            (Some(before), Some(iat)) => iat <= before,
            // A token without `iat` cannot show it came after the revocation.
            _ => true,
        })
    }

    /// Reads the list if its version moved; a failure is counted in the metrics.
    async fn refresh(&self) -> Result<(), StoreError> {
        self.read_store()
            .await
            .inspect_err(|_| crate::metrics::store_error(crate::metrics::store_use::REVOCATIONS))
    }

    async fn read_store(&self) -> Result<(), StoreError> {
        let version = self.store.version(LOG).await?;
        if self.read().version == Some(version) {
            return Ok(());
        }
        let published = self.store.entries(LOG).await?;
        let mut mirror = Mirror {
            version: Some(published.version),
            revoked: HashMap::with_capacity(published.entries.len()),
        };
        for entry in &published.entries {
            let (digest, before) = parse_entry(entry).ok_or(StoreError::Malformed(
                "an entry of the revocation list is not one this crate writes",
            ))?;
            mirror.add(digest, before);
        }
        let grew = {
            let mut current = self.write();
            let grew = mirror
                .revoked
                .keys()
                .any(|key| !current.revoked.contains_key(key));
            *current = mirror;
            self.empty
                .store(current.revoked.is_empty(), Ordering::Release);
            grew
        };
        if grew {
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(())
    }
}

/// `t:<hash>` or `s:<hash>:<unix>` / `c:<hash>:<unix>`.
fn parse_entry(entry: &[u8]) -> Option<([u8; 32], Option<u64>)> {
    let entry = std::str::from_utf8(entry).ok()?;
    let mut parts = entry.split(':');
    let tag = parts.next()?;
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts.next()?)
        .ok()?
        .try_into()
        .ok()?;
    let before = match tag {
        "t" => None,
        "s" | "c" => Some(parts.next()?.parse().ok()?),
        _ => return None,
    };
    parts.next().is_none().then_some((digest, before))
}

/// Follows the store's list until the [`Revocations`] are dropped.
async fn follow(inner: Weak<Inner>) {
    let mut last_read = Instant::now();
    loop {
        let Some(every) = inner.upgrade().map(|inner| inner.poll_every) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match inner.refresh().await {
            Ok(()) => {
                last_read = Instant::now();
                if inner.stale.swap(false, Ordering::AcqRel) {
                    tracing::info!(target: "oauth_grpc::store", "the revocation list is current again");
                }
            }
            Err(error) => {
                if last_read.elapsed() >= inner.max_staleness
                    && !inner.stale.swap(true, Ordering::AcqRel)
                {
                    let meanwhile = match inner.when_unavailable {
                        WhenUnavailable::Refuse => "calls are refused with UNAVAILABLE",
                        WhenUnavailable::AdmitLastKnown => {
                            "calls are checked against the list as last read"
                        }
                    };
                    tracing::warn!(target: "oauth_grpc::store", %error, meanwhile, "the revocation list cannot be read");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lifetime_beyond_the_clock_is_a_config_error_not_a_panic() {
        let store = Arc::new(super::super::MemoryStore::new());
        let error = Revocations::builder(store)
            .max_token_lifetime(Duration::MAX)
            .start()
            .await
            .err();
        assert!(
            matches!(error, Some(ConfigError::RevocationTiming(message)) if message.contains("max_token_lifetime")),
            "{error:?}"
        );
    }

    #[test]
    fn entries_hold_hashes_and_parse_back() {
        for revocation in [
            Revocation::token("jti-1"),
            Revocation::subject("alice"),
            Revocation::client("batch"),
        ] {
            let entry = revocation.entry();
            assert!(!entry.contains(&revocation.value), "{entry}");
            let (digest_read, before) = parse_entry(entry.as_bytes()).expect("parses");
            assert_eq!(digest_read, digest(revocation.kind, &revocation.value));
            assert_eq!(before.is_some(), revocation.kind != Kind::Token);
        }
        for bad in ["", "t", "x:AAAA", "t:AAAA", "s:%%%:1", "t:a:b:c"] {
            assert_eq!(parse_entry(bad.as_bytes()), None, "{bad}");
        }
    }
}
