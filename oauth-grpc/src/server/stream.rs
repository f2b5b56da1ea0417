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
use tokio_stream::Stream;
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
    /// Re-checks of the token while the stream runs (revocation), for one side only.
    recheck: Option<Recheck>,
    side: Side,
    /// Whether this side counts the call as cut at its expiry in the metrics: the side that
    /// holds the re-check, one per call, so that a call whose two bodies both end at the
    /// deadline counts once.
    counts_expiry: bool,
    ended: bool,
}

/// How a stream's token is checked again while it runs: at each change of the validator's
/// keys (a withdrawn key, an emptied key set) and every `interval` (an introspected token
/// turned inactive; keys past their maximum staleness). The check is the validator's own, so
/// an introspection answer is reused for its cache TTL and a refetch is rate-limited as for
/// calls.
pub(crate) struct Recheck {
    validator: crate::validate::Validator,
    token: std::sync::Arc<str>,
    changes: Option<tokio_stream::wrappers::WatchStream<u64>>,
    interval: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    running: Option<Check>,
    /// The layer's count of open bound streams, which this one is in until it is dropped.
    open: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The revocation list, the stream's caller, and the list's changes: a revocation that
    /// covers the caller ends the stream at once.
    revocations: Option<Revoked>,
}

struct Revoked {
    list: crate::store::Revocations,
    principal: crate::principal::Principal,
    changes: tokio_stream::wrappers::WatchStream<u64>,
}

impl Drop for Recheck {
    fn drop(&mut self) {
        self.open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A re-check under way.
type Check = Pin<Box<dyn std::future::Future<Output = Result<(), TokenError>> + Send>>;

impl Recheck {
    pub(crate) fn new(
        validator: crate::validate::Validator,
        principal: &crate::principal::Principal,
        token: std::sync::Arc<str>,
        interval: Duration,
        open: std::sync::Arc<std::sync::atomic::AtomicU64>,
        revocations: Option<(crate::store::Revocations, crate::principal::Principal)>,
    ) -> Self {
        open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let changes = validator
            .key_changes(principal)
            .map(tokio_stream::wrappers::WatchStream::from_changes);
        Self {
            validator,
            token,
            changes,
            interval,
            timer: Box::pin(tokio::time::sleep(interval)),
            running: None,
            open,
            revocations: revocations.map(|(list, principal)| Revoked {
                changes: tokio_stream::wrappers::WatchStream::from_changes(list.changes()),
                list,
                principal,
            }),
        }
    }

    /// `Ready(Err)` once a check refuses the token; `Pending` otherwise (woken by the next
    /// key change, the next interval or the running check).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Status> {
        if let Some(revoked) = self.revocations.as_mut() {
            // Every change wakes this body; only a revocation that covers the caller ends it.
            while let Poll::Ready(Some(_)) = Pin::new(&mut revoked.changes).poll_next(cx) {}
            if revoked.list.covers(&revoked.principal) {
                crate::metrics::stream_cut(crate::metrics::cut::REVOKED);
                return Poll::Ready(Status::from(AuthError::InvalidToken(TokenError::Revoked)));
            }
        }
        loop {
            if let Some(running) = self.running.as_mut() {
                match running.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => {
                        self.running = None;
                        let next = tokio::time::Instant::now() + self.interval;
                        self.timer.as_mut().reset(next);
                    }
                    Poll::Ready(Err(error)) => {
                        self.running = None;
                        crate::metrics::stream_cut(match error {
                            TokenError::Unavailable => crate::metrics::cut::RECHECK_UNAVAILABLE,
                            TokenError::Expired => crate::metrics::cut::EXPIRED,
                            _ => crate::metrics::cut::RECHECK_FAILED,
                        });
                        return Poll::Ready(Status::from(AuthError::InvalidToken(error)));
                    }
                }
            }
            let mut due = self.timer.as_mut().poll(cx).is_ready();
            if let Some(changes) = self.changes.as_mut() {
                match Pin::new(changes).poll_next(cx) {
                    Poll::Ready(Some(_)) => due = true,
                    // The validator is gone; only the interval is left.
                    Poll::Ready(None) => self.changes = None,
                    Poll::Pending => {}
                }
            }
            if !due {
                return Poll::Pending;
            }
            let (validator, token) = (self.validator.clone(), self.token.clone());
            self.running = Some(Box::pin(async move {
                validator.finish(&token, None).await.map(drop)
            }));
        }
    }
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

    /// A body cut at `deadline` (wall clock; `None`: none) or when `recheck` refuses the
    /// token; unbound when there is neither.
    pub(crate) fn until(
        inner: B,
        deadline: Option<SystemTime>,
        recheck: Option<Recheck>,
        side: Side,
    ) -> Self {
        if deadline.is_none() && recheck.is_none() {
            return Self::unbound(inner);
        }
        // No deadline, or one beyond what the clock can hold, is none in practice: a year.
        let year = Duration::from_secs(365 * 24 * 3600);
        let left = deadline
            .map_or(year, |at| {
                at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            })
            .min(year);
        Self {
            inner,
            expiry: Some(Box::new(Expiry {
                deadline: tokio::time::Instant::now() + left,
                timer: None,
                counts_expiry: recheck.is_some(),
                recheck,
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
    /// Ended, one way or the other: the timers and the re-check are released at once.
    fn finish(&mut self) {
        self.ended = true;
        self.timer = None;
        self.recheck = None;
    }

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

    /// The last frame of a body cut at the token's expiry.
    fn end_expired(&mut self) -> Result<Frame<Bytes>, Status> {
        if self.counts_expiry {
            crate::metrics::stream_cut(crate::metrics::cut::EXPIRED);
        }
        self.end(expired())
    }

    /// The last frame of a body cut with `status`.
    fn end(&mut self, status: Status) -> Result<Frame<Bytes>, Status> {
        self.finish();
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
            return Poll::Ready(Some(expiry.end_expired()));
        }
        if let Some(recheck) = expiry.recheck.as_mut()
            && let Poll::Ready(status) = recheck.poll(cx)
        {
            return Poll::Ready(Some(expiry.end(status)));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(None) => {
                expiry.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers() {
                    // The call ended on its own, in time.
                    expiry.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(status_of(error)))),
            Poll::Pending => {
                if expiry.poll_deadline(cx) {
                    Poll::Ready(Some(expiry.end_expired()))
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
