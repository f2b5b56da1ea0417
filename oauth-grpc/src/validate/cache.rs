//! The verified-token cache: a bounded concurrent cache (moka) from a SHA-256 of the token to
//! the Principal it proved, kept until the earlier of the token's `exp` and a TTL.
//!
//! The token itself is never stored. A hit re-checks expiry, and an entry made under an older
//! key set (before a JWKS change) counts as a miss, so a removed key stops validating.

use std::time::{Duration, Instant};

use moka::Expiry;
use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::principal::Principal;

use super::issuer::Profile;

/// The cache key of a token.
pub(crate) type TokenKey = [u8; 32];

pub(crate) fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone)]
struct Entry {
    principal: Principal,
    /// `exp`, in seconds since the epoch.
    exp: u64,
    /// The issuer whose keys verified it: its leeway and its keys' generation decide a hit.
    profile: Arc<Profile>,
    /// The generation of the issuer's keys the token was verified under.
    generation: u64,
    /// When the entry leaves the cache.
    deadline: Instant,
}

struct UntilDeadline;

impl Expiry<TokenKey, Entry> for UntilDeadline {
    fn expire_after_create(&self, _: &TokenKey, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.deadline.saturating_duration_since(now))
    }
}

/// What a lookup found.
pub(crate) enum Hit {
    Valid(Principal),
    Expired,
    Miss,
}

pub(crate) struct TokenCache {
    cache: moka::sync::Cache<TokenKey, Entry>,
    ttl: Duration,
}

impl TokenCache {
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilDeadline)
                .build(),
            ttl,
        }
    }

    /// The principal of the token keyed `key`, if its issuer's keys have not changed since
    /// it was verified and it has not expired (plus its issuer's leeway) at `now`.
    pub(crate) fn get(&self, key: &TokenKey, now: u64) -> Hit {
        match self.cache.get(key) {
            Some(entry) if entry.generation != entry.profile.keys.generation() => Hit::Miss,
            Some(entry) if now >= entry.exp.saturating_add(entry.profile.trust.leeway) => {
                self.cache.invalidate(key);
                Hit::Expired
            }
            Some(entry) => Hit::Valid(entry.principal),
            None => Hit::Miss,
        }
    }

    /// Keeps `principal`, verified by `profile`'s keys of `generation`, until the earlier of
    /// `exp` (+ the issuer's leeway) and the TTL.
    pub(crate) fn insert(
        &self,
        key: TokenKey,
        principal: Principal,
        exp: u64,
        now: u64,
        profile: Arc<Profile>,
        generation: u64,
    ) {
        let leeway = profile.trust.leeway;
        let remaining = Duration::from_secs(exp.saturating_add(leeway).saturating_sub(now));
        let keep = remaining.min(self.ttl);
        if keep.is_zero() {
            return;
        }
        let deadline = Instant::now() + keep;
        self.cache.insert(
            key,
            Entry {
                principal,
                exp,
                profile,
                generation,
                deadline,
            },
        );
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn cache() -> TokenCache {
        TokenCache::new(100, Duration::from_secs(300))
    }

    fn principal() -> Principal {
        Principal::builder().subject("alice").build()
    }

    /// An issuer with static keys (generation 0) and `leeway` seconds of leeway.
    fn issuer(leeway: u64) -> Arc<Profile> {
        super::super::issuer::test_profile(leeway)
    }

    #[test]
    fn a_hit_at_exp_is_expired() {
        // moka's own deadline is a whole second away in real time, so only the check of
        // `exp` against the caller's clock refuses the token at its boundary.
        let cache = cache();
        let key = token_key("t");
        cache.insert(key, principal(), NOW + 1, NOW, issuer(0), 0);
        assert!(matches!(cache.get(&key, NOW), Hit::Valid(_)));
        assert!(matches!(cache.get(&key, NOW + 1), Hit::Expired));
        // The expired entry is gone: the next lookup misses.
        assert!(matches!(cache.get(&key, NOW), Hit::Miss));
    }

    #[test]
    fn leeway_extends_a_hit_by_exactly_its_length() {
        let cache = cache();
        let key = token_key("t");
        cache.insert(key, principal(), NOW, NOW - 1, issuer(30), 0);
        assert!(matches!(cache.get(&key, NOW + 29), Hit::Valid(_)));
        assert!(matches!(cache.get(&key, NOW + 30), Hit::Expired));
    }

    #[test]
    fn an_entry_inserted_expired_is_not_kept() {
        let cache = cache();
        let key = token_key("t");
        cache.insert(key, principal(), NOW, NOW, issuer(0), 0);
        cache.insert(token_key("u"), principal(), NOW - 10, NOW, issuer(5), 0);
        assert!(matches!(cache.get(&key, NOW - 100), Hit::Miss));
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn another_key_generation_misses() {
        let cache = cache();
        let key = token_key("t");
        // Verified under generation 1; the issuer's keys are of generation 0 now.
        cache.insert(key, principal(), NOW + 60, NOW, issuer(0), 1);
        assert!(matches!(cache.get(&key, NOW), Hit::Miss));
    }
}
