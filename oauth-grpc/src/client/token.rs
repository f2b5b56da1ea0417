//! What a client sends: [`AccessToken`], and where tokens come from, [`TokenSource`] (with
//! [`StaticToken`], the simplest source).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::FetchError;

/// An access token and when it expires. `Debug` never shows the token.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::client::AccessToken;
///
/// let token = AccessToken::new("eyJ…", Some(Duration::from_secs(300)));
/// assert_eq!(format!("{token:?}").contains("eyJ"), false);
/// ```
#[derive(Clone)]
pub struct AccessToken {
    pub(super) value: Arc<str>,
    fetched_at: Instant,
    lifetime: Option<Duration>,
}

impl AccessToken {
    /// A token valid for `lifetime` from now. `None`: the endpoint named no expiry; the
    /// [`BearerLayer`](super::BearerLayer) then keeps it for its
    /// [default lifetime](super::BearerLayer::default_lifetime).
    ///
    /// ```
    /// let token = oauth_grpc::client::AccessToken::new("t", None);
    /// assert_eq!(token.secret(), "t");
    /// ```
    pub fn new(value: impl Into<String>, lifetime: Option<Duration>) -> Self {
        Self {
            value: Arc::from(value.into()),
            fetched_at: Instant::now(),
            lifetime,
        }
    }

    /// The token itself, to put on a request. Keep it out of logs.
    ///
    /// ```
    /// # let token = oauth_grpc::client::AccessToken::new("t", None);
    /// assert_eq!(token.secret(), "t");
    /// ```
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// When the token was fetched (made).
    pub(super) fn fetched_at(&self) -> Instant {
        self.fetched_at
    }

    /// The lifetime the endpoint gave, if any.
    pub(super) fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// A future of a fetched token.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, FetchError>> + Send + 'a>>;

/// Where tokens come from. [`BearerLayer`](super::BearerLayer) caches what it returns; an implementation fetches
/// a fresh token each time it is asked.
///
/// ```
/// use oauth_grpc::client::{AccessToken, FetchFuture, TokenSource};
///
/// #[derive(Debug)]
/// struct FromEnvironmentAtStartup(String);
///
/// impl TokenSource for FromEnvironmentAtStartup {
///     fn fetch(&self) -> FetchFuture<'_> {
///         let token = AccessToken::new(self.0.clone(), None);
///         Box::pin(async move { Ok(token) })
///     }
/// }
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch(&self) -> FetchFuture<'_>;
}

/// A fixed token, for tests and command-line tools.
///
/// ```
/// use oauth_grpc::client::{BearerLayer, StaticToken};
/// let token = StaticToken::new("eyJhbGciOi…");
/// assert_eq!(format!("{token:?}"), "StaticToken(<redacted>)");
/// let layer = BearerLayer::new(token);
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct StaticToken(Arc<str>);

impl StaticToken {
    /// The token to send.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn fetch(&self) -> FetchFuture<'_> {
        let token = AccessToken::new(self.0.to_string(), None);
        Box::pin(async move { Ok(token) })
    }
}
