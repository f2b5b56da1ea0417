//! [`MemoryStore`]: the shared state of one replica, in its own memory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::{Published, SharedStore, StoreError, StoreFuture};

/// How many entries a store holds at most, by default.
const DEFAULT_CAPACITY: usize = 100_000;

/// Shards, so that concurrent calls rarely wait on one lock.
const SHARDS: usize = 16;

/// The [`SharedStore`] of a single replica: bounded maps in memory, the default of
/// [`OAuthLayer`](crate::OAuthLayer).
///
/// Bounded without forgetting: when the store is full of entries that have not expired, a
/// new one is refused ([`StoreError::Full`], so `UNAVAILABLE` for the call) — a one-time
/// token or a proof is never accepted unrecorded. Several replicas need a store they share:
/// `RedisStore` (feature `redis`).
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::store::{MemoryStore, SharedStore};
///
/// # async fn run() -> Result<(), oauth_grpc::store::StoreError> {
/// let store = MemoryStore::with_capacity(1_000_000);
/// store.set("introspection:abc", b"{\"active\":true}", Duration::from_secs(30)).await?;
/// assert!(store.get("introspection:abc").await?.is_some());
/// # Ok(())
/// # }
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
    logs: Mutex<HashMap<String, Log>>,
}

#[derive(Default)]
struct Shard {
    values: HashMap<String, (Vec<u8>, Instant)>,
    /// When expired entries were last dropped.
    purged_at: Option<Instant>,
}

#[derive(Default)]
struct Log {
    version: u64,
    entries: HashMap<Vec<u8>, SystemTime>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store of up to 100,000 entries.
    ///
    /// ```
    /// let store = oauth_grpc::store::MemoryStore::new();
    /// # let _ = store;
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A store of up to `entries` live entries (at least 16). Size it for the one-time
    /// tokens, proofs and cached answers of one token lifetime.
    ///
    /// ```
    /// let store = oauth_grpc::store::MemoryStore::with_capacity(1_000_000);
    /// # let _ = store;
    /// ```
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: entries.max(SHARDS).div_ceil(SHARDS),
            hasher: RandomState::new(),
            logs: Mutex::new(HashMap::new()),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        // `RandomState` hashes are not SipHash-predictable from outside: no shard flooding.
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic elsewhere while holding the lock leaves the map as it was: keep using it.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for one more entry in `shard`, dropping expired ones if it is full.
    fn make_room(&self, shard: &mut Shard, now: Instant) -> Result<(), StoreError> {
        if shard.values.len() < self.per_shard {
            return Ok(());
        }
        // Purge at most every 100 ms, so that a full shard is not scanned on every call.
        if shard
            .purged_at
            .is_none_or(|at| now.duration_since(at) >= Duration::from_millis(100))
        {
            shard.values.retain(|_, (_, until)| *until > now);
            shard.purged_at = Some(now);
        }
        if shard.values.len() < self.per_shard {
            Ok(())
        } else {
            Err(StoreError::Full)
        }
    }

    fn insert_new_now(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some((_, until)) = shard.values.get(key)
            && *until > now
        {
            return Ok(false);
        }
        if !shard.values.contains_key(key) {
            self.make_room(&mut shard, now)?;
        }
        shard
            .values
            .insert(key.to_owned(), (value.to_vec(), deadline(now, ttl)));
        Ok(true)
    }

    fn set_now(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if !shard.values.contains_key(key) {
            self.make_room(&mut shard, now)?;
        }
        shard
            .values
            .insert(key.to_owned(), (value.to_vec(), deadline(now, ttl)));
        Ok(())
    }

    fn get_now(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        let shard = self.shard(key);
        shard
            .values
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(value, _)| value.clone())
    }

    fn logs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Log>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `now + ttl`, or a century ahead for a TTL the clock cannot hold (never a panic).
fn deadline(now: Instant, ttl: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(ttl.min(CENTURY)).unwrap_or(now)
}

impl SharedStore for MemoryStore {
    fn insert_new<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let result = self.insert_new_now(key, value, ttl);
        Box::pin(std::future::ready(result))
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(Ok(self.get_now(key))))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(self.set_now(key, value, ttl)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.shard(key).values.remove(key);
        Box::pin(std::future::ready(Ok(())))
    }

    fn publish<'a>(
        &'a self,
        log: &'a str,
        entry: &'a [u8],
        until: SystemTime,
    ) -> StoreFuture<'a, u64> {
        let mut logs = self.logs();
        let log = logs.entry(log.to_owned()).or_default();
        let now = SystemTime::now();
        log.entries.retain(|_, until| *until > now);
        match log.entries.entry(entry.to_vec()) {
            Entry::Occupied(mut old) => {
                if *old.get() < until {
                    old.insert(until);
                }
            }
            Entry::Vacant(new) => {
                new.insert(until);
            }
        }
        log.version += 1;
        let version = log.version;
        Box::pin(std::future::ready(Ok(version)))
    }

    fn version<'a>(&'a self, log: &'a str) -> StoreFuture<'a, u64> {
        let version = self.logs().get(log).map_or(0, |log| log.version);
        Box::pin(std::future::ready(Ok(version)))
    }

    fn entries<'a>(&'a self, log: &'a str) -> StoreFuture<'a, Published> {
        let now = SystemTime::now();
        let published = self
            .logs()
            .get(log)
            .map(|log| Published {
                version: log.version,
                entries: log
                    .entries
                    .iter()
                    .filter(|(_, until)| **until > now)
                    .map(|(entry, _)| entry.clone())
                    .collect(),
            })
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(published)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(future: StoreFuture<'_, T>) -> Result<T, StoreError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|_| StoreError::Malformed("no runtime"))?
            .block_on(future)
    }

    #[test]
    fn insert_new_sets_once_until_the_entry_expires() {
        let store = MemoryStore::new();
        assert_eq!(
            block(store.insert_new("k", b"1", Duration::from_millis(30))),
            Ok(true)
        );
        assert_eq!(
            block(store.insert_new("k", b"1", Duration::from_secs(30))),
            Ok(false)
        );
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(block(store.get("k")), Ok(None));
        assert_eq!(
            block(store.insert_new("k", b"2", Duration::from_secs(30))),
            Ok(true)
        );
        assert_eq!(block(store.get("k")), Ok(Some(b"2".to_vec())));
        assert_eq!(block(store.delete("k")), Ok(()));
        assert_eq!(block(store.get("k")), Ok(None));
    }

    #[test]
    fn a_ttl_beyond_the_clock_is_kept_not_a_panic() {
        let store = MemoryStore::new();
        assert_eq!(block(store.insert_new("k", b"1", Duration::MAX)), Ok(true));
        assert_eq!(block(store.insert_new("k", b"1", Duration::MAX)), Ok(false));
        assert_eq!(block(store.set("j", b"2", Duration::MAX)), Ok(()));
        assert_eq!(block(store.get("j")), Ok(Some(b"2".to_vec())));
    }

    #[test]
    fn a_full_store_refuses_rather_than_forgets() {
        let store = MemoryStore::with_capacity(SHARDS); // one entry per shard
        let mut refused = 0;
        for i in 0..(4 * SHARDS) {
            match block(store.insert_new(&format!("k{i}"), b"1", Duration::from_secs(60))) {
                Ok(true) => {}
                Err(StoreError::Full) => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(refused >= 3 * SHARDS, "{refused}");
        // What was recorded is still recorded.
        let kept = (0..(4 * SHARDS))
            .filter(|i| block(store.get(&format!("k{i}"))).ok().flatten().is_some())
            .count();
        assert_eq!(kept, 4 * SHARDS - refused);
    }

    #[test]
    fn the_log_versions_and_expires_its_entries() {
        let store = MemoryStore::new();
        assert_eq!(block(store.version("revocations")), Ok(0));
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(block(store.publish("revocations", b"a", later)), Ok(1));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(block(store.publish("revocations", b"b", past)), Ok(2));
        let published = block(store.entries("revocations")).unwrap_or_default();
        assert_eq!(published.version, 2);
        assert_eq!(published.entries, vec![b"a".to_vec()]);
    }
}
