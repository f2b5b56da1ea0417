//! [`BearerLayer`]: attaches a token to every outgoing call, from a [`TokenSource`] it caches
//! and refreshes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

use super::TokenSource;
use super::cache::{Timing, Tokens};

/// Adds `authorization: Bearer <token>` to every outgoing call. See the
/// [module docs](crate::client).
///
/// Clones share one token cache. The timing options ([`with_margin`](Self::with_margin),
/// [`default_lifetime`](Self::default_lifetime), [`min_lifetime`](Self::min_lifetime)) apply
/// to the calls made through the layer they were set on.
#[derive(Clone)]
pub struct BearerLayer {
    tokens: Arc<Tokens>,
    timing: Timing,
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("min_margin", &self.timing.min_margin)
            .field("default_lifetime", &self.timing.default_lifetime)
            .field("min_lifetime", &self.timing.min_lifetime)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// A layer attaching tokens from `source`: refreshed 30 seconds (or 10% of the lifetime,
    /// if longer; at most half the lifetime) before expiry, a token without `expires_in` kept
    /// 5 minutes, and every token kept at least 1 second.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::new(StaticToken::new("t"));
    /// assert!(format!("{layer:?}").contains("default_lifetime: 300s"));
    /// ```
    pub fn new(source: impl TokenSource) -> Self {
        Self {
            tokens: Arc::new(Tokens::new(Box::new(source))),
            timing: Timing::DEFAULT,
        }
    }

    /// Like [`new`](Self::new), refreshing at the later of `min_margin` and 10% of the
    /// lifetime before expiry (instead of 30 seconds), and never earlier than half the
    /// lifetime: a token is never due for refresh when it arrives, whatever its lifetime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::with_margin(StaticToken::new("t"), Duration::from_secs(5));
    /// assert!(format!("{layer:?}").contains("min_margin: 5s"));
    /// ```
    pub fn with_margin(source: impl TokenSource, min_margin: Duration) -> Self {
        let mut layer = Self::new(source);
        layer.timing.min_margin = min_margin;
        layer
    }

    /// How long a token whose endpoint named no lifetime (no `expires_in`, or a
    /// [`TokenSource`] returning `None`) is used before it is fetched anew; 5 minutes by
    /// default. [`Duration::MAX`] keeps such a token for good.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::new(StaticToken::new("t")).default_lifetime(Duration::from_secs(60));
    /// assert!(format!("{layer:?}").contains("default_lifetime: 60s"));
    /// ```
    #[must_use]
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.timing.default_lifetime = lifetime;
        self
    }

    /// The shortest time a fetched token is used, whatever its lifetime says; 1 second by
    /// default. An endpoint answering `expires_in: 0` (or 1) then costs a fetch or two per
    /// `lifetime`, not one per call; servers' clock leeway usually accepts such a token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::new(StaticToken::new("t")).min_lifetime(Duration::from_secs(5));
    /// assert!(format!("{layer:?}").contains("min_lifetime: 5s"));
    /// ```
    #[must_use]
    pub fn min_lifetime(mut self, lifetime: Duration) -> Self {
        self.timing.min_lifetime = lifetime;
        self
    }

    /// A valid token now (fetching one if needed), e.g. to pass on as an `actor_token`.
    ///
    /// # Errors
    ///
    /// The status a call would fail with.
    ///
    /// ```
    /// # async fn run() -> Result<(), tonic::Status> {
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::new(StaticToken::new("t"));
    /// assert_eq!(&*layer.token().await?, "t");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn token(&self) -> Result<Arc<str>, Status> {
        self.tokens.get(self.timing).await
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            tokens: self.tokens.clone(),
            timing: self.timing,
        }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    tokens: Arc<Tokens>,
    timing: Timing,
}

impl<S: fmt::Debug> fmt::Debug for Bearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Bearer<S> {
    /// The wrapped service.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// use tower_layer::Layer;
    /// let service = BearerLayer::new(StaticToken::new("t")).layer(7u8);
    /// assert_eq!(*service.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// use tower_layer::Layer;
    /// let mut service = BearerLayer::new(StaticToken::new("t")).layer(7u8);
    /// *service.get_mut() += 1;
    /// assert_eq!(service.into_inner(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// use tower_layer::Layer;
    /// let service = BearerLayer::new(StaticToken::new("t")).layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Bearer<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The ready service goes with the call; a clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        let timing = self.timing;
        Box::pin(async move {
            let token = match tokens.get(timing).await {
                Ok(token) => token,
                // Nothing is sent without a valid token.
                Err(status) => return Ok(status.into_http()),
            };
            match http::HeaderValue::try_from(format!("Bearer {token}")) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, value);
                }
                Err(_) => return Ok(crate::status::unsendable_token().into_http()),
            }
            inner.call(request).await
        })
    }
}
