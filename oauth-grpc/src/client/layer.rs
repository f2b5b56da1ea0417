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

use super::cache::{Timing, Tokens};
use super::dpop::Nonce;
use super::replay::Recorder;
use super::{AccessToken, DpopKey, TokenSource};
use crate::error::ConfigError;

/// Adds `authorization: Bearer <token>` to every outgoing call — or, for a DPoP-bound token
/// and a layer with a [`DpopKey`] ([`dpop`](Self::dpop)), `authorization: DPoP <token>` and
/// a fresh proof. See the [module docs](crate::client).
///
/// Clones share one token cache (and the server's latest DPoP nonce). The timing options
/// ([`with_margin`](Self::with_margin), [`default_lifetime`](Self::default_lifetime),
/// [`min_lifetime`](Self::min_lifetime)) apply to the calls made through the layer they were
/// set on.
#[derive(Clone)]
pub struct BearerLayer {
    tokens: Arc<Tokens>,
    timing: Timing,
    dpop: Option<Arc<CallProof>>,
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("min_margin", &self.timing.min_margin)
            .field("default_lifetime", &self.timing.default_lifetime)
            .field("min_lifetime", &self.timing.min_lifetime)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

/// DPoP on the calls (RFC 9449 §7): the key, where the server is, and its latest nonce.
struct CallProof {
    key: DpopKey,
    /// `scheme://authority`, lower case, without a trailing `/`.
    origin: String,
    nonce: Nonce,
}

impl fmt::Debug for CallProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("key", &self.key)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CallProof {
    /// Puts `authorization: DPoP <token>` and a fresh `dpop` proof for `htu` (with the
    /// token's `ath` and the latest nonce) on `headers`, both marked sensitive.
    fn authorize(
        &self,
        headers: &mut http::HeaderMap,
        token: &str,
        htu: &str,
    ) -> Result<(), Status> {
        let nonce = self.nonce.get();
        let proof = self
            .key
            .proof("POST", htu, Some(token), nonce.as_deref())
            .map_err(|error| crate::status::unprovable(&error))?;
        let (Ok(mut credentials), Ok(mut proof)) = (
            http::HeaderValue::try_from(format!("DPoP {token}")),
            http::HeaderValue::try_from(proof),
        ) else {
            return Err(crate::status::unsendable_token());
        };
        credentials.set_sensitive(true);
        proof.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, credentials);
        headers.insert(DPOP, proof);
        Ok(())
    }
}

/// The DPoP proof header (RFC 9449 §4.1), as HTTP/2 spells it.
const DPOP: &str = "dpop";

/// The `scheme://authority` of `origin`, checked and normalised (lower-case scheme and
/// host, no default port, no trailing `/`) as `Dpop::public_origin` does on the server, so
/// both sides name the same `htu`.
fn dpop_origin(origin: &str) -> Result<String, ConfigError> {
    let invalid = || ConfigError::DpopOrigin(crate::error::shown_url(origin));
    if origin.contains(['?', '#']) {
        return Err(invalid());
    }
    let normalised = crate::validate::dpop::normalise_htu(origin).ok_or_else(invalid)?;
    match normalised.strip_suffix('/') {
        // Nothing but the origin: a path would come between it and the call's path.
        Some(origin) if origin.matches('/').count() == 2 => Ok(origin.to_owned()),
        _ => Err(invalid()),
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
            dpop: None,
        }
    }

    /// Proves possession of `key` on every call made with a DPoP-bound token
    /// ([`AccessToken::is_dpop`], as a token source with
    /// [`dpop`](super::ClientCredentials::dpop) fetches): `authorization: DPoP <token>` and a
    /// `dpop` header with a fresh proof (RFC 9449 §7) — `htm` `POST`, `htu` `origin` plus
    /// the call's path (`/pkg.Service/Method`), `ath` the token's hash, and the latest nonce
    /// the server gave (`dpop-nonce` in any answer). `origin` is `scheme://host[:port]` as the
    /// server knows itself (behind a proxy: the public one), e.g. `https://orders.example.com`
    /// or `http://127.0.0.1:50051`. A bearer token from the same source is still sent as
    /// `Bearer`.
    ///
    /// When the server refuses a call with `DPoP error="use_dpop_nonce"` and a nonce, the
    /// call is sent once more with a proof carrying it, if its request body is still at hand
    /// (up to 64 KiB had been sent: unary and server-streaming calls); otherwise the refusal
    /// is returned and the next call carries the nonce. `DPoP error="invalid_token"` drops
    /// the token like `Bearer error="invalid_token"`; `invalid_dpop_proof` keeps it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DpopOrigin`] when `origin` is not an `http`/`https` origin alone (a
    /// path, query, fragment or user info, or no host).
    ///
    /// ```
    /// use oauth_grpc::ConfigError;
    /// use oauth_grpc::client::{BearerLayer, DpopKey, StaticToken};
    ///
    /// let key = DpopKey::generate()?;
    /// let layer = BearerLayer::new(StaticToken::new("t")).dpop(key.clone(), "https://Orders.Example.com:443")?;
    /// assert!(format!("{layer:?}").contains(r#"origin: "https://orders.example.com""#));
    ///
    /// let err = BearerLayer::new(StaticToken::new("t"))
    ///     .dpop(key, "https://orders.example.com/orders.v1.Orders")
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::DpopOrigin(_)));
    /// assert!(err.to_string().contains("without a path"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dpop(mut self, key: DpopKey, origin: &str) -> Result<Self, ConfigError> {
        self.dpop = Some(Arc::new(CallProof {
            key,
            origin: dpop_origin(origin)?,
            nonce: Nonce::default(),
        }));
        Ok(self)
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
        self.tokens.get(self.timing).await.map(|token| token.value)
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            tokens: self.tokens.clone(),
            timing: self.timing,
            dpop: self.dpop.clone(),
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
    dpop: Option<Arc<CallProof>>,
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

impl<S, ResBody> Service<http::Request<Body>> for Bearer<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The ready service goes with the call; a clone stays for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        let timing = self.timing;
        let dpop = self.dpop.clone();
        Box::pin(async move {
            let token = match tokens.get(timing).await {
                Ok(token) => token,
                // Nothing is sent without a valid token.
                Err(status) => return Ok(status.into_http()),
            };
            let sent = Sent {
                tokens,
                timing,
                token: token.value.clone(),
            };
            match dpop {
                _ if !token.is_dpop() => bearer_call(inner, request, sent).await,
                Some(dpop) => dpop_call(inner, request, sent, &token, dpop).await,
                // A DPoP-bound token is refused under `Bearer` (RFC 9449 §7.2): not sent.
                None => Ok(crate::status::dpop_key_missing().into_http()),
            }
        })
    }
}

/// A call with `authorization: Bearer <token>`.
async fn bearer_call<S, ResBody>(
    mut inner: S,
    mut request: http::Request<Body>,
    sent: Sent,
) -> Result<http::Response<Body>, S::Error>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match http::HeaderValue::try_from(format!("Bearer {}", sent.token)) {
        Ok(mut value) => {
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        Err(_) => return Ok(crate::status::unsendable_token().into_http()),
    }
    let response = inner.call(request).await?;
    Ok(watched(response, sent, None))
}

/// A call with `authorization: DPoP <token>` and a proof; sent again once with the nonce a
/// `use_dpop_nonce` refusal gave, if its body can be replayed.
async fn dpop_call<S, ResBody>(
    mut inner: S,
    request: http::Request<Body>,
    sent: Sent,
    token: &AccessToken,
    dpop: Arc<CallProof>,
) -> Result<http::Response<Body>, S::Error>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if token
        .bound_key()
        .is_some_and(|jkt| jkt != dpop.key.thumbprint())
    {
        return Ok(crate::status::dpop_key_mismatch().into_http());
    }
    let (mut parts, body) = request.into_parts();
    let htu = format!("{}{}", dpop.origin, parts.uri.path());
    if let Err(status) = dpop.authorize(&mut parts.headers, &sent.token, &htu) {
        return Ok(status.into_http());
    }
    let again = Again::of(&parts);
    let (body, recording) = Recorder::wrap(body);
    let response = inner.call(http::Request::from_parts(parts, body)).await?;
    let learnt = dpop.nonce.learn(response.headers());
    if !(learnt && refuses_with(response.headers(), "use_dpop_nonce")) {
        recording.discard();
        return Ok(watched(response, sent, Some(dpop)));
    }
    // The server asks for its nonce, now learnt (RFC 9449 §9): once more with it, if the
    // request body is still at hand. The refusal is trailers-only: its body holds nothing.
    let (refusal, _) = response.into_parts();
    let Some(body) = recording.replay().await else {
        return Ok(http::Response::from_parts(refusal, Body::empty()));
    };
    let mut request = again.request(body);
    if let Err(status) = dpop.authorize(request.headers_mut(), &sent.token, &htu) {
        return Ok(status.into_http());
    }
    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
    let response = inner.call(request).await?;
    dpop.nonce.learn(response.headers());
    Ok(watched(response, sent, Some(dpop)))
}

/// What a request is made of besides its body, to send it again.
struct Again {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
}

impl Again {
    fn of(parts: &http::request::Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            extensions: parts.extensions.clone(),
        }
    }

    fn request(self, body: Body) -> http::Request<Body> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        *request.extensions_mut() = self.extensions;
        request
    }
}

/// The answer, its refusal of the token noted (in trailers-only headers now, or in the
/// trailers of a streamed answer), and a DPoP nonce in its trailers kept.
fn watched<B>(
    response: http::Response<B>,
    sent: Sent,
    dpop: Option<Arc<CallProof>>,
) -> http::Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    if parts.headers.contains_key(GRPC_STATUS) {
        // Trailers-only (how servers refuse a call, an `OAuthLayer` included): the
        // status is in the headers and the body has nothing to watch.
        if refuses_token(&parts.headers) {
            sent.refused();
        }
        return http::Response::from_parts(parts, Body::new(body));
    }
    let body = ResponseBody {
        inner: body,
        sent: Some(sent),
        dpop,
    };
    http::Response::from_parts(parts, Body::new(body))
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
        dpop: Option<Arc<CallProof>>,
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
                if let Some(trailers) = frame.trailers_ref() {
                    if let Some(dpop) = this.dpop.take() {
                        dpop.nonce.learn(trailers);
                    }
                    if let Some(sent) = this.sent.take()
                        && refuses_token(trailers)
                    {
                        sent.refused();
                    }
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
    refuses_with(headers, "invalid_token")
}

/// Whether headers or trailers carry `grpc-status: 16` with a challenge naming `error`.
fn refuses_with(headers: &http::HeaderMap, error: &str) -> bool {
    headers
        .get(GRPC_STATUS)
        .is_some_and(|status| status.as_bytes() == b"16")
        && headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| names_error(value, error))
}

/// Whether a `www-authenticate` value names `error="invalid_token"`; see [`names_error`].
pub(super) fn names_invalid_token(value: &str) -> bool {
    names_error(value, "invalid_token")
}

/// Whether a `www-authenticate` value (RFC 9110 §11.6.1: challenges of a scheme and
/// auth-params) has an `error` parameter of `error` (`invalid_token`, `use_dpop_nonce`).
/// Quoted strings are read as a whole, so an `error_description` mentioning
/// `error="invalid_token"` does not count.
fn names_error(value: &str, error: &str) -> bool {
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
        if name.eq_ignore_ascii_case("error") && param == error {
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
            dpop: None,
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

    /// The transport: records each request's headers, answers `OK` trailers-only.
    #[derive(Clone, Default)]
    struct Capture(Arc<std::sync::Mutex<Vec<http::HeaderMap>>>);

    impl Service<http::Request<Body>> for Capture {
        type Response = http::Response<Body>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(request.headers().clone());
            }
            let mut response = http::Response::new(Body::empty());
            response
                .headers_mut()
                .insert(GRPC_STATUS, http::HeaderValue::from_static("0"));
            std::future::ready(Ok(response))
        }
    }

    /// Hands out one DPoP-bound token, or a bearer one.
    struct Typed(&'static str);

    impl TokenSource for Typed {
        fn fetch(&self) -> FetchFuture<'_> {
            let token = AccessToken::new("tok", None).with_token_type(self.0);
            Box::pin(async move { Ok(token) })
        }
    }

    #[tokio::test]
    async fn credentials_and_proofs_are_sensitive_headers() {
        let key = DpopKey::generate().expect("a key");
        for token_type in ["DPoP", "Bearer"] {
            let capture = Capture::default();
            let mut service = BearerLayer::new(Typed(token_type))
                .dpop(key.clone(), "https://orders.example.com")
                .expect("an origin")
                .layer(capture.clone());
            let request = http::Request::builder()
                .uri("/orders.v1.Orders/WhoAmI")
                .body(Body::empty())
                .expect("a request");
            let response = service.call(request).await.expect("answered");
            assert_eq!(response.headers()[GRPC_STATUS], "0");
            let seen = capture.0.lock().expect("lock").clone();
            let headers = &seen[0];
            let authorization = &headers[http::header::AUTHORIZATION];
            assert!(authorization.is_sensitive());
            assert_eq!(authorization, &*format!("{token_type} tok"));
            if token_type == "Bearer" {
                assert!(headers.get(DPOP).is_none());
                continue;
            }
            let proof = &headers[DPOP];
            assert!(proof.is_sensitive());
            let checked = crate::validate::dpop::verify_proof(
                proof.to_str().unwrap_or_default(),
                &[crate::keys::Algorithm::ES256],
            )
            .expect("a valid proof");
            assert_eq!(
                checked.htu,
                "https://orders.example.com/orders.v1.Orders/WhoAmI"
            );
            assert_eq!(checked.ath, Some(crate::validate::dpop::token_hash("tok")));
            assert_eq!(checked.jkt, key.thumbprint());
        }
    }

    #[test]
    fn dpop_origins_are_checked_and_normalised() {
        for (given, origin) in [
            ("https://orders.example.com", "https://orders.example.com"),
            ("https://orders.example.com/", "https://orders.example.com"),
            (
                "HTTPS://Orders.Example.COM:443",
                "https://orders.example.com",
            ),
            ("http://127.0.0.1:50051", "http://127.0.0.1:50051"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(dpop_origin(given).ok().as_deref(), Some(origin), "{given}");
        }
        for given in [
            "orders.example.com",
            "ftp://orders.example.com",
            "https://user@orders.example.com",
            "https://",
            "https://orders.example.com/api",
            "https://orders.example.com?x=1",
            "https://orders.example.com#f",
        ] {
            let err = dpop_origin(given).expect_err(given);
            assert!(matches!(err, ConfigError::DpopOrigin(_)), "{given}");
            assert!(err.to_string().contains("without a path"), "{err}");
        }
        // User info is not repeated in the message.
        let err = dpop_origin("https://user:pw@orders.example.com").expect_err("user info");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    #[test]
    fn a_nonce_is_asked_for_only_by_a_use_dpop_nonce_refusal() {
        let refusal = |status: &'static str, challenge: &'static str| trailers(status, challenge);
        assert!(refuses_with(
            &refusal(
                "16",
                r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256""#
            ),
            "use_dpop_nonce"
        ));
        for (status, challenge) in [
            ("16", r#"DPoP error="invalid_dpop_proof", algs="ES256""#),
            (
                "16",
                r#"DPoP error_description="not error=\"use_dpop_nonce\"""#,
            ),
            ("7", r#"DPoP error="use_dpop_nonce""#),
        ] {
            assert!(
                !refuses_with(&refusal(status, challenge), "use_dpop_nonce"),
                "{challenge}"
            );
        }
        // `invalid_dpop_proof` keeps the token; `invalid_token` under DPoP drops it.
        assert!(!refuses_token(&refusal(
            "16",
            r#"DPoP error="invalid_dpop_proof""#
        )));
        assert!(refuses_token(&refusal(
            "16",
            r#"DPoP error="invalid_token", algs="ES256""#
        )));
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
