//! State every replica of a service must see: [`SharedStore`], the trait, with
//! [`MemoryStore`] (one replica, the default) and `RedisStore` (many replicas, feature
//! `redis`); and [`Revocations`], the revocation list kept on it.
//!
//! Signature checks are stateless and scale by themselves. Four decisions are not: a token
//! marked for one-time use (`#[require_scope("orders:refund", once)]`), a DPoP proof's `jti`,
//! a revocation, and — to spare the provider — introspection answers. Give the layer, the
//! introspection set-up and the revocation list one store and every replica decides alike:
//!
//! ```
//! use std::sync::Arc;
//! use oauth_grpc::store::{MemoryStore, Revocations, SharedStore};
//! use oauth_grpc::{OAuthLayer, PolicySet, Validator, KeySet};
//!
//! # async fn run(policies: PolicySet, validator: Validator) -> Result<(), Box<dyn std::error::Error>> {
//! // One replica: the in-memory store. Many: `RedisStore::connect(…)` (feature `redis`).
//! let store: Arc<dyn SharedStore> = Arc::new(MemoryStore::new());
//! let revocations = Revocations::builder(store.clone()).start().await?;
//! let layer = OAuthLayer::new(validator, policies)
//!     .shared_store(store.clone())
//!     .revocations(revocations.clone());
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! Keys hold hashes (SHA-256, base64url), never tokens, and every value expires with what it
//! guards: a one-time token's mark at the token's `exp` plus the leeway, a proof's at the end
//! of its acceptance window.
//!
//! # Failure is decided
//! A store that does not answer in time refuses what cannot be decided without it, with
//! `UNAVAILABLE` (14): a call to a `once` method, a DPoP proof (a replay is never accepted),
//! and — by default — any call while the revocation list is stale
//! ([`RevocationsBuilder::when_unavailable`]). The introspection cache falls back to the
//! replica's own. Each change between reachable and unreachable is logged once (target
//! `oauth_grpc::store`), not per call, and recovery needs no restart.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use sha2::{Digest, Sha256};

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod revocation;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisStore};
pub use revocation::{Revocation, Revocations, RevocationsBuilder, WhenUnavailable};

/// What a [`SharedStore`] call returns: a boxed future, so that the trait is object safe and
/// one store is shared as `Arc<dyn SharedStore>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A key-value store shared by every replica of a service, with expiring entries and a
/// versioned log that replicas follow (the revocation list).
///
/// Keys are short ASCII strings made by this crate (`once:…`, `dpop:…`, `introspection:…`,
/// `revocations`), already hashed; an implementation adds its own namespace. Values are
/// small. Every call must answer within a bounded time — an error, not a hang, when the
/// backing server is slow — since a call to a service waits on it.
///
/// [`MemoryStore`] and `RedisStore` implement it; another backend implements these seven
/// methods.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::store::{MemoryStore, SharedStore};
///
/// # async fn run() -> Result<(), oauth_grpc::store::StoreError> {
/// let store = MemoryStore::new();
/// assert!(store.insert_new("once:abc", b"1", Duration::from_secs(60)).await?);
/// assert!(!store.insert_new("once:abc", b"1", Duration::from_secs(60)).await?);
/// # Ok(())
/// # }
/// ```
pub trait SharedStore: Send + Sync + fmt::Debug + 'static {
    /// Sets `key` to `value` for `ttl` if it holds nothing (Redis `SET NX PX`): `true` if
    /// this call set it, `false` if it was there. Atomic across replicas.
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// The value of `key`, if it has one that has not expired.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Sets `key` to `value` for `ttl`, replacing what it held.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;

    /// Removes `key`.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Adds `entry` to the log `log` until `until`, and moves the log's version on, in one
    /// atomic step; returns the new version. Adding an entry already there only extends it.
    fn publish<'a>(
        &'a self,
        log: &'a str,
        entry: &'a [u8],
        until: SystemTime,
    ) -> StoreFuture<'a, u64>;

    /// The version of `log`: changes whenever an entry is published. `0` for a log never
    /// written. A store that can lose its data (a restart without persistence) must make a
    /// version after the loss unlikely to equal one read before — `RedisStore` steps by a
    /// random amount — since replicas re-read the list only when the version moved.
    fn version<'a>(&'a self, log: &'a str) -> StoreFuture<'a, u64>;

    /// The entries of `log` that have not expired, with the version they were read at.
    fn entries<'a>(&'a self, log: &'a str) -> StoreFuture<'a, Published>;
}

/// The live entries of a store's log, as [`SharedStore::entries`] reads them.
///
/// ```
/// let published = oauth_grpc::store::Published { version: 3, entries: vec![b"t:abc".to_vec()] };
/// assert_eq!(published.entries.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The log's version when read.
    pub version: u64,
    /// The entries, in no particular order.
    pub entries: Vec<Vec<u8>>,
}

/// Why a [`SharedStore`] call failed. The layer answers the calls that needed it with
/// `UNAVAILABLE`; none of these is the caller's fault.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::store::StoreError;
///
/// let error = StoreError::Timeout(Duration::from_millis(50));
/// assert_eq!(error.to_string(), "the shared store did not answer within 50ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No answer within the store's timeout.
    #[error("the shared store did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or is down (the reason, without credentials).
    #[error("the shared store cannot be reached: {0}")]
    Unreachable(String),
    /// The store answered with an error (the reason, without credentials).
    #[error("the shared store refused the command: {0}")]
    Refused(String),
    /// The store answered something that is not what the command returns.
    #[error("the shared store answered something unexpected: {0}")]
    Malformed(&'static str),
    /// The in-memory store holds as many live entries as it may.
    #[error(
        "the in-memory store is full of live entries; raise `MemoryStore::with_capacity` or use a RedisStore"
    )]
    Full,
}

/// A store key: `kind:` and the SHA-256 of `parts` (each ended by a NUL), base64url.
pub(crate) fn hashed_key(kind: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut key = String::with_capacity(kind.len() + 44);
    key.push_str(kind);
    key.push(':');
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(digest, &mut key);
    key
}

/// One use of a store (one-time tokens, proofs, the introspection cache) that logs each
/// change between reachable and unreachable once, with what it means for calls.
pub(crate) struct StoreUse {
    pub(crate) store: Arc<dyn SharedStore>,
    down: AtomicBool,
    /// What the store is used for, in the log.
    purpose: &'static str,
    /// What calls get while it is down, in the log.
    meanwhile: &'static str,
    /// What the store is used for, in the metrics (`oauth_grpc.store.use`).
    metric_use: &'static str,
}

impl fmt::Debug for StoreUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUse")
            .field("store", &self.store)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl StoreUse {
    pub(crate) fn new(
        store: Arc<dyn SharedStore>,
        purpose: &'static str,
        meanwhile: &'static str,
    ) -> Self {
        Self {
            store,
            down: AtomicBool::new(false),
            purpose,
            meanwhile,
            metric_use: metric_use(purpose),
        }
    }

    /// Passes `result` on, logging the first failure after a success and the first success
    /// after a failure.
    pub(crate) fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "oauth_grpc::store", purpose = self.purpose, "the shared store answers again");
                }
            }
            Err(error) => {
                crate::metrics::store_error(self.metric_use);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: "oauth_grpc::store", purpose = self.purpose, %error, meanwhile = self.meanwhile, "the shared store is unavailable");
                }
            }
        }
        result
    }
}

/// The `oauth_grpc.store.use` of a [`StoreUse`], by the purpose its maker gives it: a
/// purpose not listed here is counted as `other`.
fn metric_use(purpose: &str) -> &'static str {
    use crate::metrics::store_use;
    match purpose {
        "one-time tokens" | "one-time tokens and DPoP proofs" => store_use::REPLAY,
        "the shared introspection cache" => store_use::INTROSPECTION_CACHE,
        _ => store_use::OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_purpose_has_its_metric_use() {
        assert_eq!(metric_use("one-time tokens"), "replay");
        assert_eq!(metric_use("one-time tokens and DPoP proofs"), "replay");
        assert_eq!(
            metric_use("the shared introspection cache"),
            "introspection_cache"
        );
        assert_eq!(metric_use("something new"), "other");
    }

    #[test]
    fn keys_are_hashes_of_their_parts() {
        let key = hashed_key("once", &["https://idp/", "jti-1"]);
        assert!(key.starts_with("once:"));
        assert_eq!(key.len(), "once:".len() + 43);
        assert!(!key.contains("jti-1"));
        // The parts are delimited: moving a byte between them changes the key.
        assert_ne!(key, hashed_key("once", &["https://idp", "/jti-1"]));
    }
}
