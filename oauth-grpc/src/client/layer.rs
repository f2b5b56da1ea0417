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
use super::cache::Tokens;

/// Adds `authorization: Bearer <token>` to every outgoing call. See the
/// [module docs](crate::client).
#[derive(Clone)]
pub struct BearerLayer {
    tokens: Arc<Tokens>,
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("min_margin", &self.tokens.min_margin)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// A layer attaching tokens from `source`.
    pub fn new(source: impl TokenSource) -> Self {
        Self::with_margin(source, Duration::from_secs(30))
    }

    /// Like [`new`](Self::new), refreshing at the later of `min_margin` and 10% of the
    /// lifetime before expiry (instead of 30 seconds).
    pub fn with_margin(source: impl TokenSource, min_margin: Duration) -> Self {
        Self {
            tokens: Arc::new(Tokens::new(Box::new(source), min_margin)),
        }
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
        self.tokens.get().await
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    tokens: Arc<Tokens>,
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
        Box::pin(async move {
            let token = match tokens.get().await {
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
