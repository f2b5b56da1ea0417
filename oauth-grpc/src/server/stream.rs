//! Calls that end when their token does: [`TokenBound`], the request and response body of a
//! call admitted with a token, cut at the token's expiry.
//!
//! A stream is authenticated once, when it opens, and may run for hours. The layer therefore
//! wraps both bodies of every call it admits with a token: at `exp` plus the validator's
//! leeway — the instant a new call with that token would be refused — the response ends with
//! `UNAUTHENTICATED` and `www-authenticate: Bearer error="invalid_token",
//! error_description="the token has expired"` in its trailers, no message after that instant
//! is sent, and the request stream stops being handed to the handler (its next read is that
//! same status). A unary call that finishes in time is not touched, and no timer is set for a
//! body that never waits.
//!
//! Nothing is needed in the service: the layer does it.
//!
//! ```no_run
//! # use oauth_grpc::{OAuthLayer, PolicySet, Validator, KeySource};
//! # async fn run(policies: PolicySet) -> Result<(), Box<dyn std::error::Error>> {
//! let validator = Validator::builder()
//!     .issuer("https://idp.example.com/")
//!     .audience("orders-api")
//!     .keys(KeySource::discover("https://idp.example.com/"))
//!     .start()
//!     .await?;
//! // Every stream this layer admits ends with its token.
//! let layer = OAuthLayer::new(validator, policies);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

use crate::error::{AuthError, TokenError};

pin_project_lite::pin_project! {
    /// A request or response body of a call the layer admitted with a token: unchanged until
    /// the token expires, then ended with `UNAUTHENTICATED` (`invalid_token`, "the token has
    /// expired") — as trailers on the response, as the next item of the request stream.
    ///
    /// [`OAuth`](crate::OAuth) wraps both bodies of each call; a call without a token (a
    /// public method, a path passed through) or whose token has no `exp` is not bound.
    ///
    /// ```
    /// use http_body::Body as _;
    /// use oauth_grpc::TokenBound;
    ///
    /// let body = TokenBound::unbound(String::from("message"));
    /// assert!(!body.is_end_stream());
    /// ```
    pub struct TokenBound<B> {
        #[pin]
        inner: B,
        expiry: Option<Box<Expiry>>,
    }
}

/// Which way a body flows, and so how its end is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// From the client: the handler reads the status as the stream's next item.
    Request,
    /// To the client: the status goes in the trailers.
    Response,
}

struct Expiry {
    /// When the token stops being valid, on the runtime's clock.
    deadline: tokio::time::Instant,
    /// Set the first time the body has to wait, so a body that never waits costs no timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    side: Side,
    ended: bool,
}

impl<B> TokenBound<B> {
    /// A body that is never cut: for calls without a token, or not admitted with one.
    ///
    /// ```
    /// let body = oauth_grpc::TokenBound::unbound(());
    /// assert_eq!(body.into_inner(), ());
    /// ```
    pub fn unbound(inner: B) -> Self {
        Self {
            inner,
            expiry: None,
        }
    }

    /// A body cut at `deadline` (wall clock); `None` for no deadline.
    pub(crate) fn until(inner: B, deadline: Option<SystemTime>, side: Side) -> Self {
        let Some(deadline) = deadline else {
            return Self::unbound(inner);
        };
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // A deadline beyond what the clock can hold is no deadline in practice: a year.
        let left = left.min(Duration::from_secs(365 * 24 * 3600));
        Self {
            inner,
            expiry: Some(Box::new(Expiry {
                deadline: tokio::time::Instant::now() + left,
                timer: None,
                side,
                ended: false,
            })),
        }
    }

    /// The wrapped body.
    ///
    /// ```
    /// let body = oauth_grpc::TokenBound::unbound("inner");
    /// assert_eq!(*body.get_ref(), "inner");
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// Unwraps the body (and drops its deadline).
    ///
    /// ```
    /// let body = oauth_grpc::TokenBound::unbound(7);
    /// assert_eq!(body.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> B {
        self.inner
    }

    /// Whether this body is cut at its token's expiry.
    ///
    /// ```
    /// assert!(!oauth_grpc::TokenBound::unbound(()).is_bound());
    /// ```
    pub fn is_bound(&self) -> bool {
        self.expiry.is_some()
    }
}

impl<B: Default> Default for TokenBound<B> {
    fn default() -> Self {
        Self::unbound(B::default())
    }
}

impl<B> fmt::Debug for TokenBound<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBound")
            .field("bound", &self.expiry.is_some())
            .finish_non_exhaustive()
    }
}

/// The status a call gets when its token expires during it.
pub(crate) fn expired() -> Status {
    Status::from(AuthError::InvalidToken(TokenError::Expired))
}

impl Expiry {
    fn passed(&self) -> bool {
        tokio::time::Instant::now() >= self.deadline
    }

    /// Waits for the deadline alongside the body: whether it has come.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().poll(cx).is_ready()
    }

    /// The last frame of a cut body.
    fn end(&mut self) -> Result<Frame<Bytes>, Status> {
        self.ended = true;
        self.timer = None;
        let status = expired();
        match self.side {
            Side::Request => Err(status),
            Side::Response => {
                let mut trailers = http::HeaderMap::new();
                // The status is built from fixed phrases: it always encodes.
                let _ = status.add_header(&mut trailers);
                Ok(Frame::trailers(trailers))
            }
        }
    }
}

impl<B> Body for TokenBound<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(expiry) = this.expiry.as_deref_mut() else {
            return this
                .inner
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(status_of)));
        };
        if expiry.ended {
            return Poll::Ready(None);
        }
        if expiry.passed() {
            return Poll::Ready(Some(expiry.end()));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(None) => {
                expiry.ended = true;
                expiry.timer = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers() {
                    // The call ended on its own, in time.
                    expiry.ended = true;
                    expiry.timer = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(status_of(error)))),
            Poll::Pending => {
                if expiry.poll_deadline(cx) {
                    Poll::Ready(Some(expiry.end()))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.expiry {
            Some(expiry) if expiry.ended => true,
            _ => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.expiry {
            Some(expiry) if expiry.ended => SizeHint::with_exact(0),
            // An early end may shorten the body.
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// A body error as a status (tonic finds a `Status` in the chain; anything else is unknown).
fn status_of<E: Into<Box<dyn std::error::Error + Send + Sync>>>(error: E) -> Status {
    Status::from_error(error.into())
}
