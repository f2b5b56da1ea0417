//! [`BearerLayer`]: attaches a token to every outgoing call, from a [`TokenSource`] it caches
//! and refreshes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Status;
use tonic::body::Body;
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
    /// default. [`Duration::MAX`] keeps such a token for good (until a server refuses it).
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
    /// `lifetime`, not one per call; servers' clock leeway usually accepts such a token, and
    /// when a server refuses it, it is dropped once `lifetime` has passed. A token refused
    /// sooner after its fetch is kept too, so a server refusing every token also costs a fetch
    /// per `lifetime`, not one per call.
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

/// The service made by [`BearerLayer`]. Its responses carry a [`tonic::body::Body`] (the inner
/// body, its trailers watched for a refused token), so `Bearer<Channel>` and `Channel` answer
/// with the same type, as `ServiceBuilder::option_layer` needs.
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
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
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
            let sent = Sent {
                tokens,
                timing,
                token,
            };
            let (parts, body) = inner.call(request).await?.into_parts();
            if parts.headers.contains_key(GRPC_STATUS) {
                // Trailers-only (how servers refuse a call, an `OAuthLayer` included): the
                // status is in the headers and the body has nothing to watch.
                if refuses_token(&parts.headers) {
                    sent.refused();
                }
                return Ok(http::Response::from_parts(parts, Body::new(body)));
            }
            let body = ResponseBody {
                inner: body,
                sent: Some(sent),
            };
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

const GRPC_STATUS: &str = "grpc-status";

/// The token a call was sent with, to report if the server refuses it.
struct Sent {
    tokens: Arc<Tokens>,
    timing: Timing,
    token: Arc<str>,
}

impl Sent {
    fn refused(self) {
        self.tokens.refused(&self.token, self.timing);
    }
}

pin_project_lite::pin_project! {
    /// A response body watched for trailers with `grpc-status: 16` and
    /// `www-authenticate: … error="invalid_token"` (RFC 6750 §3.1), which drop the token as
    /// the same answer in trailers-only headers does.
    struct ResponseBody<B> {
        #[pin]
        inner: B,
        sent: Option<Sent>,
    }
}

impl<B: http_body::Body> http_body::Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(sent) = this.sent.take()
                    && refuses_token(trailers)
                {
                    sent.refused();
                }
            }
            // The end: no trailers (or an error) — nothing more to watch.
            Poll::Ready(_) => drop(this.sent.take()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether headers or trailers carry `grpc-status: 16` with a challenge naming
/// `error="invalid_token"`.
fn refuses_token(headers: &http::HeaderMap) -> bool {
    headers
        .get(GRPC_STATUS)
        .is_some_and(|status| status.as_bytes() == b"16")
        && headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(names_invalid_token)
}

/// Whether a `www-authenticate` value (RFC 9110 §11.6.1: challenges of a scheme and
/// auth-params) has an `error` parameter of `invalid_token`. Quoted strings are read as a
/// whole, so an `error_description` mentioning `error="invalid_token"` does not count.
pub(super) fn names_invalid_token(value: &str) -> bool {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let end = rest.find(|c: char| !is_tchar(c)).unwrap_or(rest.len());
        if end == 0 {
            return false; // the end, or something malformed
        }
        let name = &rest[..end];
        rest = rest[end..].trim_start_matches([' ', '\t']);
        let Some(after) = rest.strip_prefix('=') else {
            continue; // a scheme
        };
        let after = after.trim_start_matches([' ', '\t']);
        let (param, remaining) = match after.strip_prefix('"') {
            Some(quoted) => quoted_string(quoted),
            None => {
                let end = after.find(|c: char| !is_tchar(c)).unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        if name.eq_ignore_ascii_case("error") && param == "invalid_token" {
            return true;
        }
        rest = remaining;
    }
}

/// The text of a quoted string whose opening quote is gone, and what follows its closing one.
fn quoted_string(quoted: &str) -> (String, &str) {
    let mut text = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (text, &quoted[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    text.push(escaped);
                }
            }
            c => text.push(c),
        }
    }
    (text, "")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use http_body::Body as _;

    use super::super::{AccessToken, FetchFuture};
    use super::*;

    /// Hands out `token-1`, `token-2`, … and counts the fetches.
    #[derive(Default, Clone)]
    struct Counting(Arc<AtomicUsize>);

    impl TokenSource for Counting {
        fn fetch(&self) -> FetchFuture<'_> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok(AccessToken::new(format!("token-{n}"), None)) })
        }
    }

    /// A streamed answer: one data frame, then trailers.
    struct Streamed(
        Option<http_body::Frame<&'static [u8]>>,
        Option<http::HeaderMap>,
    );

    impl http_body::Body for Streamed {
        type Data = &'static [u8];
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<&'static [u8]>, Self::Error>>> {
            let frame = match self.0.take() {
                Some(data) => Some(data),
                None => self.1.take().map(http_body::Frame::trailers),
            };
            Poll::Ready(frame.map(Ok))
        }
    }

    fn trailers(status: &'static str, challenge: &'static str) -> http::HeaderMap {
        let mut trailers = http::HeaderMap::new();
        trailers.insert(GRPC_STATUS, http::HeaderValue::from_static(status));
        trailers.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(challenge),
        );
        trailers
    }

    fn watching(inner: Streamed, sent: Sent) -> ResponseBody<Streamed> {
        ResponseBody {
            inner,
            sent: Some(sent),
        }
    }

    async fn read_to_end(mut body: ResponseBody<Streamed>) {
        while std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .is_some()
        {}
    }

    #[tokio::test]
    async fn a_refusal_in_trailers_drops_the_token() {
        let source = Counting::default();
        let layer = BearerLayer::new(source.clone()).min_lifetime(Duration::ZERO);
        let (tokens, timing) = (layer.tokens.clone(), layer.timing);
        let sent = |token: Arc<str>| Sent {
            tokens: tokens.clone(),
            timing,
            token,
        };
        let data = || Some(http_body::Frame::data(&b"msg"[..]));

        let first = layer.token().await.expect("token");
        // Trailers with another status or error keep the token.
        for (status, challenge) in [
            ("0", "Bearer"),
            ("7", r#"Bearer error="insufficient_scope""#),
            ("16", r#"Bearer error="invalid_request""#),
        ] {
            let body = Streamed(data(), Some(trailers(status, challenge)));
            read_to_end(watching(body, sent(first.clone()))).await;
        }
        assert_eq!(layer.token().await.expect("token"), first);
        assert_eq!(source.0.load(Ordering::SeqCst), 1);

        // `invalid_token` in the trailers drops it: the next call fetches.
        let refusal = trailers("16", r#"Bearer error="invalid_token""#);
        let body = Streamed(data(), Some(refusal.clone()));
        read_to_end(watching(body, sent(first.clone()))).await;
        let second = layer.token().await.expect("token");
        assert_eq!(&*second, "token-2");

        // A late refusal of the old token leaves the new one alone.
        let body = Streamed(None, Some(refusal));
        read_to_end(watching(body, sent(first))).await;
        assert_eq!(layer.token().await.expect("token"), second);
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn challenges_naming_invalid_token() {
        for refusing in [
            r#"Bearer error="invalid_token""#,
            r#"Bearer error="invalid_token", error_description="the token has expired""#,
            r#"Bearer realm="orders", error=invalid_token"#,
            r#"DPoP algs="ES256", error = "invalid_token""#,
            r#"Basic realm="x", Bearer ERROR="invalid_token""#,
        ] {
            assert!(names_invalid_token(refusing), "{refusing}");
        }
        for other in [
            "Bearer",
            r#"Bearer error="insufficient_scope", scope="orders:write""#,
            r#"Bearer error_description="not error=\"invalid_token\"", error="invalid_request""#,
            r#"Bearer error="invalid_token_x""#,
            "Basic abc==",
            "",
            "=,=\"",
        ] {
            assert!(!names_invalid_token(other), "{other}");
        }
    }

    #[test]
    fn a_refusal_needs_status_16() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        assert!(!refuses_token(&headers));
        headers.insert(GRPC_STATUS, http::HeaderValue::from_static("7"));
        assert!(!refuses_token(&headers));
        headers.insert(GRPC_STATUS, http::HeaderValue::from_static("16"));
        assert!(refuses_token(&headers));
    }
}
