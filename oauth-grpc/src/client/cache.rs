//! The token cache behind [`BearerLayer`](super::BearerLayer): one token source's token,
//! reused, refreshed in one flight, dropped when a server refuses it, with back-off on failure.
//!
//! How long a token is kept is the cache's decision ([`Timing`]), not the token's: a token
//! without `expires_in` gets the default lifetime, a token with a lifetime too short to be
//! useful (`expires_in: 0`) is kept for the minimum lifetime, and the refresh margin is never
//! more than half the lifetime, so a fresh token is never due for refresh.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::Status;

use crate::error::FetchError;

use super::{AccessToken, TokenSource};

/// How long the cache keeps a token and when it refreshes it; set on the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Timing {
    /// The refresh margin asked for; scaled down to half the lifetime.
    pub(super) min_margin: Duration,
    /// The lifetime of a token fetched without one (`expires_in` absent).
    pub(super) default_lifetime: Duration,
    /// The shortest time a fetched token is kept, whatever its lifetime says, and before
    /// which a refusal does not drop it: bounds fetches to a few per interval.
    pub(super) min_lifetime: Duration,
}

impl Timing {
    pub(super) const DEFAULT: Self = Self {
        min_margin: Duration::from_secs(30),
        default_lifetime: Duration::from_secs(300),
        min_lifetime: Duration::from_secs(1),
    };

    /// The lifetime the cache gives `token`: its own, or the default when the endpoint named
    /// none; never under the minimum.
    fn lifetime(&self, token: &AccessToken) -> Duration {
        token
            .lifetime()
            .unwrap_or(self.default_lifetime)
            .max(self.min_lifetime)
    }

    /// The later of the minimum margin and 10% of `lifetime`, and never more than half of it.
    fn margin(&self, lifetime: Duration) -> Duration {
        self.min_margin.max(lifetime / 10).min(lifetime / 2)
    }

    /// Whether `token` may still be sent at `now`. An expiry too far to add to an `Instant`
    /// (an endpoint's `expires_in` is not to be trusted with arithmetic) counts as none.
    fn valid(&self, token: &AccessToken, now: Instant) -> bool {
        token
            .fetched_at()
            .checked_add(self.lifetime(token))
            .is_none_or(|expiry| now < expiry)
    }

    /// Whether `token` is inside its refresh margin at `now`.
    fn refresh_due(&self, token: &AccessToken, now: Instant) -> bool {
        let lifetime = self.lifetime(token);
        token
            .fetched_at()
            .checked_add(lifetime - self.margin(lifetime))
            .is_some_and(|refresh_at| now >= refresh_at)
    }

    /// Whether `token` was fetched less than the minimum lifetime before `now`.
    fn young(&self, token: &AccessToken, now: Instant) -> bool {
        token
            .fetched_at()
            .checked_add(self.min_lifetime)
            .is_none_or(|grown| now < grown)
    }
}

/// The cache of one token source: reuse, refresh in one flight, back off on failure.
pub(super) struct Tokens {
    source: Box<dyn TokenSource>,
    held: Mutex<Held>,
    fetch: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Held {
    token: Option<AccessToken>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<FetchError>,
}

impl Tokens {
    pub(super) fn new(source: Box<dyn TokenSource>) -> Self {
        Self {
            source,
            held: Mutex::new(Held::default()),
            fetch: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A valid token, fetching one if there is none; refreshes early in the background.
    pub(super) async fn get(self: &Arc<Self>, timing: Timing) -> Result<AccessToken, Status> {
        let now = Instant::now();
        {
            let held = self.held();
            if let Some(token) = held.token.as_ref().filter(|t| timing.valid(t, now)) {
                let backing_off = held.retry_at.is_some_and(|at| now < at);
                if timing.refresh_due(token, now) && !backing_off {
                    self.refresh_in_background(timing);
                }
                return Ok(token.clone());
            }
        }
        let _flight = self.fetch.lock().await;
        let now = Instant::now();
        {
            let held = self.held();
            if let Some(token) = held.token.as_ref().filter(|t| timing.valid(t, now)) {
                return Ok(token.clone());
            }
            if let (Some(at), Some(error)) = (held.retry_at, &held.last_error)
                && now < at
            {
                return Err(Status::from(error.clone()));
            }
        }
        self.fetch_now(timing).await
    }

    /// A server refused `sent` as `invalid_token`: drop it if it is still the cached token,
    /// so the next call fetches a new one (in one flight, like any fetch). A token fetched
    /// less than the minimum lifetime ago is kept: a server refusing every token costs a
    /// fetch per minimum lifetime, not one per call.
    pub(super) fn refused(&self, sent: &str, timing: Timing) {
        let now = Instant::now();
        let mut held = self.held();
        let Some(token) = held.token.as_ref() else {
            return; // already dropped
        };
        if *token.value != *sent {
            return; // a newer token has replaced it
        }
        if timing.young(token, now) {
            tracing::debug!(
                target: "oauth_grpc::client",
                min_lifetime = ?timing.min_lifetime,
                "the server refused the token (invalid_token); kept: fetched too recently"
            );
            return;
        }
        held.token = None;
        tracing::info!(
            target: "oauth_grpc::client",
            "the server refused the token (invalid_token); the next call fetches a new one"
        );
    }

    fn refresh_in_background(self: &Arc<Self>, timing: Timing) {
        let Ok(flight) = self.fetch.clone().try_lock_owned() else {
            return; // a fetch is already running
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let _flight = flight;
            let _ = this.fetch_now(timing).await;
        });
    }

    /// One fetch; the caller holds the flight lock.
    async fn fetch_now(&self, timing: Timing) -> Result<AccessToken, Status> {
        match self.source.fetch().await {
            Ok(token) => {
                let value = token.clone();
                let mut held = self.held();
                held.token = Some(token);
                held.failures = 0;
                held.retry_at = None;
                held.last_error = None;
                Ok(value)
            }
            Err(error) => {
                tracing::warn!(target: "oauth_grpc::client", %error, "token fetch failed");
                let mut held = self.held();
                held.failures = held.failures.saturating_add(1);
                let backoff = Duration::from_millis(250)
                    .saturating_mul(1 << held.failures.min(7))
                    .min(Duration::from_secs(30));
                held.retry_at = Some(Instant::now() + backoff);
                held.last_error = Some(error.clone());
                match held
                    .token
                    .as_ref()
                    .filter(|t| timing.valid(t, Instant::now()))
                {
                    Some(token) => Ok(token.clone()),
                    None => Err(Status::from(error)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn lifetimes_from_the_endpoint_never_overflow() {
        let timing = Timing::DEFAULT;
        let now = Instant::now();
        let endless = AccessToken::new("t", Some(Duration::from_secs(u64::MAX)));
        assert!(timing.valid(&endless, now));
        assert!(!timing.refresh_due(&endless, now));
        let short = AccessToken::new("t", Some(100 * SECOND));
        assert!(timing.valid(&short, now));
        assert!(!timing.refresh_due(&short, now));
        assert!(timing.refresh_due(&short, now + 71 * SECOND));
        assert!(!timing.valid(&short, now + 101 * SECOND));
        let never = Timing {
            default_lifetime: Duration::MAX,
            ..timing
        };
        let none = AccessToken::new("t", None);
        assert!(never.valid(&none, now + 1_000_000 * SECOND));
        assert!(!never.refresh_due(&none, now + 1_000_000 * SECOND));
    }

    #[test]
    fn no_expires_in_gets_the_default_lifetime() {
        let timing = Timing::DEFAULT;
        let now = Instant::now();
        let none = AccessToken::new("t", None);
        assert!(!timing.refresh_due(&none, now + 269 * SECOND));
        assert!(timing.refresh_due(&none, now + 271 * SECOND));
        assert!(timing.valid(&none, now + 299 * SECOND));
        assert!(!timing.valid(&none, now + 301 * SECOND));
    }

    #[test]
    fn the_margin_is_at_most_half_the_lifetime() {
        let timing = Timing::DEFAULT;
        let now = Instant::now();
        // 20 s tokens with a 30 s margin: refreshed after 10 s, not at once.
        let short = AccessToken::new("t", Some(20 * SECOND));
        assert!(!timing.refresh_due(&short, now));
        assert!(!timing.refresh_due(&short, now + 9 * SECOND));
        assert!(timing.refresh_due(&short, now + 11 * SECOND));
        // Long lifetimes keep the 10% rule.
        let long = AccessToken::new("t", Some(3600 * SECOND));
        assert!(!timing.refresh_due(&long, now + 3239 * SECOND));
        assert!(timing.refresh_due(&long, now + 3241 * SECOND));
    }

    #[test]
    fn a_zero_lifetime_is_kept_for_the_minimum() {
        let timing = Timing::DEFAULT;
        let now = Instant::now();
        let zero = AccessToken::new("t", Some(Duration::ZERO));
        assert!(timing.valid(&zero, now));
        assert!(!timing.refresh_due(&zero, now));
        assert!(timing.young(&zero, now));
        assert!(timing.refresh_due(&zero, now + 600 * Duration::from_millis(1)));
        assert!(!timing.valid(&zero, now + 1100 * Duration::from_millis(1)));
        assert!(!timing.young(&zero, now + 1100 * Duration::from_millis(1)));
    }
}
