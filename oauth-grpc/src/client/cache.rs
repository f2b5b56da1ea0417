//! The token cache behind [`BearerLayer`](super::BearerLayer): one token source's token,
//! reused, refreshed in one flight, with back-off on failure.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::Status;

use crate::error::FetchError;

use super::{AccessToken, TokenSource};

/// The cache of one token source: reuse, refresh in one flight, back off on failure.
pub(super) struct Tokens {
    source: Box<dyn TokenSource>,
    held: Mutex<Held>,
    fetch: Arc<tokio::sync::Mutex<()>>,
    pub(super) min_margin: Duration,
}

#[derive(Default)]
struct Held {
    token: Option<AccessToken>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<FetchError>,
}

impl Tokens {
    pub(super) fn new(source: Box<dyn TokenSource>, min_margin: Duration) -> Self {
        Self {
            source,
            held: Mutex::new(Held::default()),
            fetch: Arc::new(tokio::sync::Mutex::new(())),
            min_margin,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A valid token, fetching one if there is none; refreshes early in the background.
    pub(super) async fn get(self: &Arc<Self>) -> Result<Arc<str>, Status> {
        let now = Instant::now();
        {
            let held = self.held();
            if let Some(token) = held.token.as_ref().filter(|t| t.valid_at(now)) {
                let backing_off = held.retry_at.is_some_and(|at| now < at);
                if token.refresh_due(now, self.min_margin) && !backing_off {
                    self.refresh_in_background();
                }
                return Ok(token.value.clone());
            }
        }
        let _flight = self.fetch.lock().await;
        let now = Instant::now();
        {
            let held = self.held();
            if let Some(token) = held.token.as_ref().filter(|t| t.valid_at(now)) {
                return Ok(token.value.clone());
            }
            if let (Some(at), Some(error)) = (held.retry_at, &held.last_error)
                && now < at
            {
                return Err(Status::from(error.clone()));
            }
        }
        self.fetch_now().await
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(flight) = self.fetch.clone().try_lock_owned() else {
            return; // a fetch is already running
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let _flight = flight;
            let _ = this.fetch_now().await;
        });
    }

    /// One fetch; the caller holds the flight lock.
    async fn fetch_now(&self) -> Result<Arc<str>, Status> {
        match self.source.fetch().await {
            Ok(token) => {
                let value = token.value.clone();
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
                match held.token.as_ref().filter(|t| t.valid_at(Instant::now())) {
                    Some(token) => Ok(token.value.clone()),
                    None => Err(Status::from(error)),
                }
            }
        }
    }
}
