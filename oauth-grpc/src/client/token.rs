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
    token_type: Arc<str>,
    /// The thumbprint of the DPoP key a token source proved when it fetched the token.
    bound_to: Option<Arc<str>>,
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
            token_type: Arc::from("Bearer"),
            bound_to: None,
        }
    }

    /// The same token with the `token_type` its endpoint named (RFC 6749 §7.1): `Bearer`
    /// (what [`new`](Self::new) assumes) or `DPoP` (RFC 9449 §5), which a
    /// [`BearerLayer`](super::BearerLayer) sends as `authorization: DPoP <token>` with a
    /// proof of its [`DpopKey`](super::DpopKey).
    ///
    /// ```
    /// use oauth_grpc::client::AccessToken;
    ///
    /// let token = AccessToken::new("t", None).with_token_type("DPoP");
    /// assert!(token.is_dpop());
    /// assert_eq!(token.token_type(), "DPoP");
    /// ```
    #[must_use]
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = Arc::from(super::dpop::token_type_name(&token_type.into()));
        self
    }

    /// The token type: `Bearer` unless the endpoint named another (`DPoP`).
    ///
    /// ```
    /// let token = oauth_grpc::client::AccessToken::new("t", None);
    /// assert_eq!(token.token_type(), "Bearer");
    /// ```
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// Whether the token is DPoP-bound (`token_type` `DPoP`, in any case): it is sent with a
    /// proof of the key it is bound to, never as a bearer token.
    ///
    /// ```
    /// use oauth_grpc::client::AccessToken;
    /// assert!(!AccessToken::new("t", None).is_dpop());
    /// assert!(AccessToken::new("t", None).with_token_type("dpop").is_dpop());
    /// ```
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("DPoP")
    }

    /// Records the thumbprint of the key the token source proved (a DPoP token).
    pub(super) fn bound_to(mut self, thumbprint: &str) -> Self {
        self.bound_to = Some(Arc::from(thumbprint));
        self
    }

    /// The thumbprint of the key the token was fetched with, if a token source recorded it.
    pub(super) fn bound_key(&self) -> Option<&str> {
        self.bound_to.as_deref()
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
            .field("token_type", &self.token_type)
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
pub struct StaticToken {
    token: Arc<str>,
    dpop: bool,
}

impl StaticToken {
    /// The token to send, as a bearer token.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Arc::from(token.into()),
            dpop: false,
        }
    }

    /// A token bound to a DPoP key (`cnf.jkt`, RFC 9449), which a
    /// [`BearerLayer`](super::BearerLayer) with that key sends as `authorization: DPoP <token>`
    /// with a proof per call.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, DpopKey, StaticToken};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = DpopKey::generate()?;
    /// let layer = BearerLayer::new(StaticToken::dpop("eyJhbGciOi…"))
    ///     .dpop(key, "https://orders.example.com")?;
    /// # drop(layer);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dpop(token: impl Into<String>) -> Self {
        Self {
            token: Arc::from(token.into()),
            dpop: true,
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn fetch(&self) -> FetchFuture<'_> {
        let token = AccessToken::new(self.token.to_string(), None);
        let token = if self.dpop {
            token.with_token_type("DPoP")
        } else {
            token
        };
        Box::pin(async move { Ok(token) })
    }
}
