//! [`OAuthLayer`] and the [`OAuth`] service it makes: the per-call decision.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use tonic::Status;
use tonic::server::NamedService;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{AuthError, TokenError};
use crate::policy::{Delegation, MethodPolicy, PolicySet, RpcKind, Rule};
use crate::principal::{ClientCertificate, Principal};
use crate::store::{MemoryStore, Revocations, SharedStore, StoreUse, hashed_key};
use crate::validate::{Attempt, Validator};

use super::audit::{AuditEvent, AuditSink, AuditWait, Decision, TracingSink};
use super::bearer::{DEFAULT_MAX_HEADER_LEN, Scheme, credentials};
use super::certificate::{Certificates, Peer};
use super::dpop::{CheckedProof, DPOP, DPOP_NONCE, Dpop, DpopCheck};
use super::stream::{Recheck, Side, TokenBound};
use crate::status::{DpopChallenge, refusal};
use crate::validate::binding::Presented;

/// What happens to a call whose path has no rule in the [`PolicySet`].
///
/// ```
/// use oauth_grpc::UnknownPaths;
/// assert_eq!(UnknownPaths::default(), UnknownPaths::Deny);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownPaths {
    /// Refuse with `PERMISSION_DENIED` ("no access rule"). The default.
    #[default]
    Deny,
    /// Let the call through unauthenticated, e.g. to services that do their own checks.
    /// Protected methods still refuse it through their generated checks.
    PassThrough,
}

/// The tower layer that authenticates every call and applies the rule for its
/// path, before tonic decodes a single request message.
///
/// ```no_run
/// # use examples::{OrderBook, pb::orders_server::OrdersServer};
/// use oauth_grpc::{KeySet, OAuthLayer, PolicySet, Validator};
/// use tonic::transport::Server;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let validator = Validator::builder()
///     .issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .keys(KeySet::from_jwks_file("/etc/orders/jwks.json")?)
///     .build()?;
/// let policies = PolicySet::new()
///     .service::<OrderBook>()
///     .public_service("grpc.health.v1.Health");
///
/// Server::builder()
///     .layer(OAuthLayer::new(validator, policies))
///     .add_service(OrdersServer::new(OrderBook::default()))
///     .serve("0.0.0.0:50051".parse()?)
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// Per call: the path's rule is looked up (no rule: `PERMISSION_DENIED`, unless unknown paths
/// are passed through); a public rule passes without reading any token; otherwise exactly one
/// bearer token is taken from `authorization`, validated, and checked against the rule. The
/// verified [`Principal`] goes into the request extensions, where the method's generated check
/// and the handler find it. Every decision is recorded by the [`AuditSink`](crate::audit::AuditSink).
#[derive(Clone)]
pub struct OAuthLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    validator: Validator,
    policies: PolicySet,
    sink: Arc<dyn AuditSink>,
    unknown: UnknownPaths,
    max_header_len: usize,
    unknown_calls: Arc<UnknownPathLog>,
    stream_recheck: Duration,
    /// Streams bound to their token now open (each holds one re-check).
    bound_streams: Arc<AtomicU64>,
    /// Every method that needs a token needs a sender-constrained one.
    require_sender_constrained: bool,
    /// Parsed TLS client certificates, shared by the calls that present them.
    certificates: Certificates,
    /// DPoP proofs are accepted and checked (RFC 9449).
    dpop: Option<Arc<DpopCheck>>,
    /// Where one-time tokens are marked used (and, when shared, DPoP proofs recorded).
    store: Arc<StoreUse>,
    /// The store was given, so proofs are recorded there instead of in this replica.
    store_shared: bool,
    /// The revocation list checked on every call.
    revocations: Option<Revocations>,
}

/// What callers of `once` methods and DPoP proofs get while the store is down.
const STORE_DOWN: &str =
    "calls to `once` methods and calls with DPoP proofs are refused with UNAVAILABLE";

/// How long a one-time token is marked used when it has no expiry (an introspected token
/// without `exp`): longer than any cache keeps its answer.
const ONCE_WITHOUT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// How often an open stream's token is checked again, by default.
const DEFAULT_STREAM_RECHECK: Duration = Duration::from_secs(300);

impl fmt::Debug for OAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthLayer")
            .field("validator", &self.shared.validator)
            .field("policies", &self.shared.policies.methods().count())
            .field("unknown", &self.shared.unknown)
            .field("max_header_len", &self.shared.max_header_len)
            .field(
                "require_sender_constrained",
                &self.shared.require_sender_constrained,
            )
            .field("dpop", &self.shared.dpop)
            .field("store", &self.shared.store.store)
            .field("revocations", &self.shared.revocations)
            .finish_non_exhaustive()
    }
}

impl OAuthLayer {
    /// A layer checking tokens with `validator` against the rules of `policies`, auditing to
    /// `tracing`.
    pub fn new(validator: Validator, policies: PolicySet) -> Self {
        Self {
            shared: Arc::new(Shared {
                validator,
                policies,
                sink: Arc::new(TracingSink),
                unknown: UnknownPaths::Deny,
                max_header_len: DEFAULT_MAX_HEADER_LEN,
                unknown_calls: Arc::new(UnknownPathLog::new()),
                stream_recheck: DEFAULT_STREAM_RECHECK,
                bound_streams: Arc::new(AtomicU64::new(0)),
                require_sender_constrained: false,
                certificates: Certificates::new(),
                dpop: None,
                store: Arc::new(StoreUse::new(
                    Arc::new(MemoryStore::new()),
                    "one-time tokens",
                    STORE_DOWN,
                )),
                store_shared: false,
                revocations: None,
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Shared)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Sends audit events to `sink` instead of `tracing`.
    #[must_use]
    pub fn audit_sink(self, sink: impl AuditSink) -> Self {
        self.with(|s| s.sink = Arc::new(sink))
    }

    /// What to do with paths that have no rule; [`UnknownPaths::Deny`] by default.
    #[must_use]
    pub fn unknown_paths(self, unknown: UnknownPaths) -> Self {
        self.with(|s| s.unknown = unknown)
    }

    /// How many calls so far named a path without a rule (refused, or passed through under
    /// [`UnknownPaths::PassThrough`]), across every clone of this layer. Such calls are
    /// logged at `debug` one by one and summarised at `warn` at most once a minute, so a
    /// caller cannot flood the logs with them; this count is the number to watch.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let layer = OAuthLayer::new(validator, PolicySet::new());
    /// assert_eq!(layer.unknown_path_calls(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unknown_path_calls(&self) -> u64 {
        self.shared.unknown_calls.calls.load(Ordering::Relaxed)
    }

    /// How often the token of an open stream is checked again (5 minutes by default): an
    /// introspected token turned inactive, or keys past their maximum staleness, end the
    /// stream at the next check. An introspection answer is reused for its cache TTL, so the
    /// provider is not asked more often than that. A change of the provider's keys (a
    /// withdrawn key, an emptied key set) re-checks every open stream at once, whatever this
    /// interval. Streams of rpcs marked `#[outlives_token]` are never re-checked.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let layer = OAuthLayer::new(validator, PolicySet::new())
    ///     .stream_recheck(Duration::from_secs(60));
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn stream_recheck(self, every: Duration) -> Self {
        // A zero interval would re-check in a loop.
        let every = every.max(Duration::from_millis(10));
        self.with(|s| s.stream_recheck = every)
    }

    /// How many streams that end with their token are open now, across every clone of this
    /// layer: each holds a deadline and a re-check of its token, released when the stream
    /// ends, normally or cut.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let layer = OAuthLayer::new(validator, PolicySet::new());
    /// assert_eq!(layer.bound_streams(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bound_streams(&self) -> u64 {
        self.shared.bound_streams.load(Ordering::Relaxed)
    }

    /// Admits only sender-constrained tokens on every method that needs a token, as if each
    /// rule had the `bound` option: a token must be bound to the TLS client certificate of
    /// the call's connection (RFC 8705 `cnf.x5t#S256`), or — with [`dpop`](Self::dpop) — to
    /// the key of the call's DPoP proof (RFC 9449 `cnf.jkt`). A plain bearer token is refused with
    /// `UNAUTHENTICATED` (`invalid_token`, "this method needs a sender-constrained token");
    /// public methods stay public. Off by default: then only methods marked `bound` refuse
    /// plain tokens, while a bound token is checked against its certificate everywhere.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let layer = OAuthLayer::new(validator, PolicySet::new()).require_sender_constrained(true);
    /// assert!(format!("{layer:?}").contains("require_sender_constrained: true"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn require_sender_constrained(self, required: bool) -> Self {
        self.with(|s| s.require_sender_constrained = required)
    }

    /// Accepts DPoP-bound tokens (RFC 9449): `authorization: DPoP <token>` with a proof in
    /// the `dpop` metadata, checked as [`Dpop`] describes — one signature verification per
    /// call besides the token's, which the verified-token cache may spare; the proof never
    /// is. Bearer tokens keep working, except DPoP-bound ones (RFC 9449 §7.2) and on methods
    /// that need a sender-constrained token, where a DPoP-bound token with its proof counts
    /// like a certificate-bound one. Challenges then name both schemes:
    /// `Bearer, DPoP algs="ES256 ES384 EdDSA PS256 RS256"`.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// use oauth_grpc::Dpop;
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    ///
    /// let layer = OAuthLayer::new(validator, PolicySet::new())
    ///     .dpop(Dpop::new().public_origin("https://orders.example.com")?);
    /// assert!(format!("{layer:?}").contains("orders.example.com"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn dpop(self, dpop: Dpop) -> Self {
        let check = Arc::new(dpop.into_check());
        self.with(|s| s.dpop = Some(check))
    }

    /// Keeps the state every replica must share on `store`: the marks of one-time tokens
    /// (methods whose rule says `once`) and the `jti`s of DPoP proofs. Without it, a
    /// [`MemoryStore`] of this replica's own holds the marks and the [`Dpop`] replay record
    /// the proofs — right for one replica, wrong for several: give them all one
    /// `RedisStore` (feature `redis`).
    ///
    /// While the store does not answer, calls to `once` methods and calls with DPoP proofs
    /// are refused with `UNAVAILABLE` (a replay is never accepted); the change is logged
    /// once, and calls are admitted again as soon as it answers.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// use std::sync::Arc;
    /// use oauth_grpc::store::MemoryStore;
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    ///
    /// let layer = OAuthLayer::new(validator, PolicySet::new())
    ///     .shared_store(Arc::new(MemoryStore::with_capacity(1_000_000)));
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn shared_store(self, store: Arc<dyn SharedStore>) -> Self {
        self.with(|s| {
            s.store = Arc::new(StoreUse::new(
                store,
                "one-time tokens and DPoP proofs",
                STORE_DOWN,
            ));
            s.store_shared = true;
        })
    }

    /// Checks every call against `revocations`, after the token's signature and claims —
    /// cached tokens included — and ends the open streams of what gets revoked. A revoked
    /// token is refused with `UNAUTHENTICATED` (`invalid_token`, "the token was revoked").
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, OAuthLayer, PolicySet, Validator};
    /// use std::sync::Arc;
    /// use oauth_grpc::store::{MemoryStore, Revocations};
    /// # async fn run(validator: Validator) -> Result<(), oauth_grpc::ConfigError> {
    ///
    /// let revocations = Revocations::builder(Arc::new(MemoryStore::new())).start().await?;
    /// let layer = OAuthLayer::new(validator, PolicySet::new()).revocations(revocations);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn revocations(self, revocations: Revocations) -> Self {
        self.with(|s| s.revocations = Some(revocations))
    }

    /// Refuses `authorization` values longer than `bytes`; 8 KiB by default.
    #[must_use]
    pub fn max_header_len(self, bytes: usize) -> Self {
        self.with(|s| s.max_header_len = bytes)
    }

    /// Fails fast at start-up unless every rpc of the descriptors has a rule and every rule an
    /// rpc (a wrong `rpc =` or a renamed proto method shows up here, not as refused calls).
    ///
    /// # Errors
    ///
    /// [`CoverageError`](crate::report::CoverageError) listing the gaps.
    #[cfg(feature = "reports")]
    pub fn check_coverage(self, descriptors: &[u8]) -> Result<Self, crate::report::CoverageError> {
        crate::report::Report::new(&self.shared.policies)
            .descriptors(descriptors)?
            .check_coverage()?;
        Ok(self)
    }

    /// The rules the layer enforces.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::{OAuthLayer, PolicySet, Validator, Algorithm, KeySet};
    /// # let validator = Validator::builder().issuer("https://idp/").audience("api")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>());
    /// assert_eq!(layer.policies().methods().count(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policies(&self) -> &PolicySet {
        &self.shared.policies
    }
}

impl<S> Layer<S> for OAuthLayer {
    type Service = OAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OAuth {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`OAuthLayer`] around `S`.
#[derive(Clone)]
pub struct OAuth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for OAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> OAuth<S> {
    /// Wraps `inner` with the checks of `layer`.
    pub fn new(inner: S, layer: &OAuthLayer) -> Self {
        layer.layer(inner)
    }

    /// The wrapped service.
    ///
    /// ```
    /// # use oauth_grpc::{OAuth, OAuthLayer, PolicySet, Validator, Algorithm, KeySet};
    /// # let validator = Validator::builder().issuer("https://idp/").audience("api")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let service = OAuth::new(42u8, &OAuthLayer::new(validator, PolicySet::new()));
    /// assert_eq!(*service.get_ref(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// # use oauth_grpc::{OAuth, OAuthLayer, PolicySet, Validator, Algorithm, KeySet};
    /// # let validator = Validator::builder().issuer("https://idp/").audience("api")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let mut service = OAuth::new(1u8, &OAuthLayer::new(validator, PolicySet::new()));
    /// *service.get_mut() += 1;
    /// assert_eq!(service.into_inner(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// # use oauth_grpc::{OAuth, OAuthLayer, PolicySet, Validator, Algorithm, KeySet};
    /// # let validator = Validator::builder().issuer("https://idp/").audience("api")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let service = OAuth::new("inner", &OAuthLayer::new(validator, PolicySet::new()));
    /// assert_eq!(service.into_inner(), "inner");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: NamedService> NamedService for OAuth<S> {
    const NAME: &'static str = S::NAME;
}

/// A decision that had to wait on the identity provider.
type Pending = Pin<Box<dyn Future<Output = Result<Admission, Status>> + Send>>;

/// An admitted call: the verified caller, if a token was checked, and how the call's
/// streams end with that token.
#[derive(Default)]
struct Admission {
    principal: Option<Principal>,
    request: Binding,
    response: Binding,
    /// A newer DPoP nonce for the response's `dpop-nonce` header.
    dpop_nonce: Option<String>,
}

/// How one body of a call is bound to its token: the expiry, and the re-checks (on one side
/// only: the side that streams to the handler for client streams, the response otherwise).
/// The response's carries a new DPoP nonce too, if there is one to hand out.
#[derive(Default)]
struct Binding {
    deadline: Option<SystemTime>,
    recheck: Option<Recheck>,
    dpop_nonce: Option<String>,
}

/// Who is calling, as the connection says: its address and its TLS client certificate;
/// whether the call used the `DPoP` scheme (for the challenge of a refusal); what the audit
/// record and the metrics carry besides; and the audit sink's wait, if it pushed back.
struct Caller {
    peer: Option<std::net::SocketAddr>,
    certificate: Option<Arc<ClientCertificate>>,
    dpop_scheme: bool,
    /// When the call reached the layer.
    arrived: Instant,
    /// The rpc as metrics name it: a compiled path, or `_other` (never the caller's text).
    rpc: &'static str,
    /// The W3C trace id of the call's `traceparent`.
    trace_id: Option<TraceId>,
    /// The token's fingerprint, once a token was read.
    fingerprint: Option<Fingerprint>,
    /// The audit sink's wait: the call is answered once it is done.
    audit_wait: Mutex<Option<AuditWait>>,
}

impl Caller {
    fn new(
        peer: Option<std::net::SocketAddr>,
        trace_id: Option<TraceId>,
        arrived: Instant,
    ) -> Self {
        Self {
            peer,
            certificate: None,
            dpop_scheme: false,
            arrived,
            rpc: OTHER_RPC,
            trace_id,
            fingerprint: None,
            audit_wait: Mutex::new(None),
        }
    }

    /// The caller, moved into a decision that waits (which awaits its audit record itself),
    /// leaving one with nothing to wait for.
    fn take(&mut self) -> Self {
        let empty = Self::new(self.peer, None, self.arrived);
        std::mem::replace(self, empty)
    }

    fn take_audit_wait(&self) -> Option<AuditWait> {
        self.audit_wait.lock().map_or_else(
            |poisoned| poisoned.into_inner().take(),
            |mut wait| wait.take(),
        )
    }

    /// Waits for the audit record of the decision, if the sink asked to; a record that could
    /// not be taken refuses the call with `UNAVAILABLE`.
    async fn recorded<T>(&self, outcome: Result<T, Status>) -> Result<T, Status> {
        match self.take_audit_wait() {
            None => outcome,
            Some(wait) => match wait.await {
                Ok(()) => outcome,
                Err(unavailable) => Err(Status::unavailable(unavailable.to_string())),
            },
        }
    }
}

/// What metrics call an rpc without a compiled rule.
const OTHER_RPC: &str = crate::metrics::OTHER_METHOD;

/// A W3C trace id (`traceparent`, Trace Context level 1): 32 lowercase hex digits.
#[derive(Clone, Copy)]
struct TraceId([u8; 32]);

impl TraceId {
    /// The trace id of a valid `traceparent` value, `None` for anything else.
    fn of(headers: &http::HeaderMap) -> Option<Self> {
        const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
        let value = headers.get(TRACEPARENT)?.as_bytes();
        // version "-" trace-id "-" parent-id "-" flags; a later version may append fields.
        if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let hex = |bytes: &[u8]| bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let (version, trace, parent, flags) =
            (&value[..2], &value[3..35], &value[36..52], &value[53..55]);
        let valid = hex(version)
            && version != b"ff"
            && hex(trace)
            && hex(parent)
            && hex(flags)
            && trace.iter().any(|&b| b != b'0')
            && parent.iter().any(|&b| b != b'0')
            && (value.len() == 55 || (version != b"00" && value[55] == b'-'));
        if !valid {
            return None;
        }
        let mut id = [0; 32];
        id.copy_from_slice(trace);
        Some(Self(id))
    }

    fn as_str(&self) -> &str {
        // Checked to be ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The first 16 hex digits of a token's SHA-256: its verified-token cache key.
#[derive(Clone, Copy)]
struct Fingerprint([u8; 16]);

impl Fingerprint {
    fn of(key: &crate::validate::TokenKey) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0; 16];
        for (i, byte) in key[..8].iter().enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Self(out)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A call's DPoP proof, not checked yet, and the URIs its `htu` may name.
struct PendingProof {
    proof: String,
    uris: Vec<String>,
}

/// What a token must satisfy on the called method.
#[derive(Clone, Copy)]
struct Check {
    rule: Rule,
    /// Only a token bound to the caller's certificate is accepted.
    sender_constrained: bool,
    /// Which delegated calls are admitted.
    delegation: Delegation,
    /// Each token is admitted once (`once`).
    once: bool,
}

/// What [`Shared::decide`] concluded without waiting.
// Returned and matched at once, never stored: boxing the admission would cost an allocation
// on every admitted call.
#[allow(clippy::large_enum_variant)]
enum Verdict {
    Allow(Admission),
    Deny(Status),
    Wait(Pending),
}

impl Shared {
    /// Decides a call, or hands back the part that must wait on the network.
    fn decide<B>(self: &Arc<Self>, request: &http::Request<B>) -> Verdict {
        let arrived = Instant::now();
        let connection = Peer::of(request);
        let mut caller = Caller::new(connection.addr, TraceId::of(request.headers()), arrived);
        let verdict = self.decide_as(request, &connection, &mut caller);
        self.settle(verdict, caller)
    }

    /// A decision taken without waiting, or one whose audit record the sink made wait.
    fn settle(&self, verdict: Verdict, caller: Caller) -> Verdict {
        if let Verdict::Wait(_) = verdict {
            return verdict;
        }
        if caller.audit_wait.lock().is_ok_and(|wait| wait.is_none()) {
            return verdict;
        }
        Verdict::Wait(Box::pin(async move {
            let outcome = match verdict {
                Verdict::Allow(admission) => Ok(admission),
                Verdict::Deny(status) => Err(status),
                Verdict::Wait(pending) => pending.await,
            };
            caller.recorded(outcome).await
        }))
    }

    fn decide_as<B>(
        self: &Arc<Self>,
        request: &http::Request<B>,
        connection: &Peer,
        caller: &mut Caller,
    ) -> Verdict {
        let path = request.uri().path();
        // One lookup for a compiled method; public services and prefixes only without one.
        let method = self.policies.method_for(path);
        if let Some(method) = method {
            caller.rpc = method.path();
        }
        let Some(rule) = method
            .map(MethodPolicy::rule)
            .or_else(|| self.policies.rule_for(path))
        else {
            self.unknown_calls.record(path);
            // A path two tables disagree about is refused even under pass-through.
            if self.unknown == UnknownPaths::PassThrough
                && !self.policies.conflicts().contains(&path)
            {
                self.audit(
                    AuditEvent::new(Decision::Allow, "pass_through", path),
                    caller,
                );
                return Verdict::Allow(Admission::default());
            }
            return Verdict::Deny(self.deny(AuthError::NoRule, path, None, None, caller));
        };
        if rule == Rule::Public {
            self.audit(
                AuditEvent::new(Decision::Allow, "public", path).with_rule(rule),
                caller,
            );
            return Verdict::Allow(Admission::default());
        }
        caller.certificate = match self.certificates.of(connection) {
            Ok(certificate) => certificate,
            Err(_) => {
                let error = AuthError::InvalidRequest("the client certificate cannot be read");
                return Verdict::Deny(self.deny(error, path, Some(rule), None, caller));
            }
        };
        let (scheme, token) =
            match credentials(request.headers(), self.max_header_len, self.dpop.is_some()) {
                Ok(credentials) => credentials,
                Err(error) => {
                    return Verdict::Deny(self.deny(error, path, Some(rule), None, caller));
                }
            };
        let key = crate::validate::token_key(token);
        caller.fingerprint = Some(Fingerprint::of(&key));
        caller.dpop_scheme = scheme == Scheme::Dpop;
        let proof = match (&self.dpop, scheme) {
            (Some(dpop), Scheme::Dpop) => match DpopCheck::proof_value(request.headers()) {
                Ok(proof) => Some(PendingProof {
                    proof: proof.to_owned(),
                    uris: dpop.expected_uris(request, connection.secure),
                }),
                Err(error) => {
                    return Verdict::Deny(self.deny(error.into(), path, Some(rule), None, caller));
                }
            },
            (Some(_), Scheme::Bearer) if request.headers().contains_key(DPOP) => {
                let error = AuthError::InvalidRequest(
                    "a DPoP proof came with a Bearer token; send the token with the DPoP scheme",
                );
                return Verdict::Deny(self.deny(error, path, Some(rule), None, caller));
            }
            _ => None,
        };
        let bound = method
            .filter(|method| method.ends_with_token())
            .map(MethodPolicy::kind);
        let check = Check {
            rule,
            sender_constrained: self.require_sender_constrained
                || method.is_some_and(MethodPolicy::sender_constrained),
            delegation: method.map_or(Delegation::Allowed, MethodPolicy::delegation),
            once: method.is_some_and(MethodPolicy::once),
        };
        if proof.is_some() || check.once {
            // A proof is a signature to verify on every call, and a proof or a one-time
            // token is recorded in the store: off the connection's task, like a token's
            // first check.
            let shared = self.clone();
            let (token, path) = (token.to_owned(), path.to_owned());
            let caller = caller.take();
            return Verdict::Wait(Box::pin(async move {
                let outcome = async {
                    let result = match shared.validator.begin_keyed(&token, key) {
                        Attempt::Done(result) => result,
                        Attempt::Deferred(key) => shared
                            .validator
                            .finish(&token, key)
                            .await
                            .map_err(AuthError::from),
                    };
                    let result = result.and_then(|principal| {
                        let checked = match &proof {
                            Some(proof) => Some(shared.check_proof(proof, &token)?),
                            None => None,
                        };
                        Ok((principal, checked))
                    });
                    let (principal, proof) = shared.conclude(result, &path, check, &caller)?;
                    let nonce = shared
                        .spend(&principal, proof, &path, check, &caller)
                        .await?;
                    Ok(shared.admit(principal, bound, &token, nonce))
                }
                .await;
                caller.recorded(outcome).await
            }));
        }
        match self.validator.begin_keyed(token, key) {
            Attempt::Done(result) => {
                match self.conclude(result.map(|p| (p, None)), path, check, caller) {
                    Ok((principal, _)) => {
                        self.allowed(&principal, path, rule, caller);
                        Verdict::Allow(self.admit(principal, bound, token, None))
                    }
                    Err(status) => Verdict::Deny(status),
                }
            }
            Attempt::Deferred(key) => {
                let shared = self.clone();
                let (token, path) = (token.to_owned(), path.to_owned());
                let caller = caller.take();
                Verdict::Wait(Box::pin(async move {
                    let outcome = async {
                        let result = shared.validator.finish(&token, key).await;
                        let result = result.map(|p| (p, None)).map_err(AuthError::from);
                        let (principal, _) = shared.conclude(result, &path, check, &caller)?;
                        shared.allowed(&principal, &path, rule, &caller);
                        Ok(shared.admit(principal, bound, &token, None))
                    }
                    .await;
                    caller.recorded(outcome).await
                }))
            }
        }
    }

    /// The checks of a call's DPoP proof before its one-time use.
    fn check_proof(&self, proof: &PendingProof, token: &str) -> Result<CheckedProof, AuthError> {
        let Some(dpop) = &self.dpop else {
            // Only a layer with DPoP reads proofs.
            return Err(AuthError::MissingToken);
        };
        dpop.check(
            &proof.proof,
            &proof.uris,
            token,
            crate::time::unix_now(),
            self.validator.proof_leeway().as_secs(),
        )
    }

    /// An admitted caller; for a streaming method (`bound`: its kind), its streams end at
    /// the token's expiry plus the leeway (the instant a new call with the token would be
    /// refused), or when a re-check refuses the token.
    fn admit(
        &self,
        principal: Principal,
        bound: Option<RpcKind>,
        token: &str,
        dpop_nonce: Option<String>,
    ) -> Admission {
        let Some(kind) = bound else {
            return Admission {
                principal: Some(principal),
                dpop_nonce,
                ..Admission::default()
            };
        };
        let deadline = principal
            .expires_at()
            .and_then(|exp| exp.checked_add(self.validator.leeway(&principal)));
        let recheck = Some(Recheck::new(
            self.validator.clone(),
            &principal,
            Arc::from(token),
            self.stream_recheck,
            self.bound_streams.clone(),
            self.revocations
                .as_ref()
                .map(|revocations| (revocations.clone(), principal.clone())),
        ));
        let (request, response) = if kind == RpcKind::ClientStreaming {
            (recheck, None)
        } else {
            (None, recheck)
        };
        Admission {
            principal: Some(principal),
            request: Binding {
                deadline,
                recheck: request,
                dpop_nonce: None,
            },
            response: Binding {
                deadline,
                recheck: response,
                dpop_nonce: None,
            },
            dpop_nonce,
        }
    }

    /// The binding, the revocation list and the rule against a validation result; audits a
    /// refusal. What is left is [`spend`](Self::spend)ing what the call uses up.
    ///
    /// The binding is checked here, on every call, and not by the validator: a verified
    /// token comes from the cache shared by every connection, the certificate from this one.
    fn conclude(
        &self,
        result: Result<(Principal, Option<CheckedProof>), AuthError>,
        path: &str,
        check: Check,
        caller: &Caller,
    ) -> Result<(Principal, Option<CheckedProof>), Status> {
        let Check {
            rule,
            sender_constrained,
            delegation,
            once,
        } = check;
        let (principal, proof) =
            result.map_err(|error| self.deny(error, path, Some(rule), None, caller))?;
        let principal = principal
            .with_client_certificate(caller.certificate.clone())
            .with_proof_key(proof.as_ref().map(|proof| proof.jkt.clone()));
        let presented = Presented {
            certificate: principal
                .client_certificate()
                .map(ClientCertificate::thumbprint),
            proof_key: principal.dpop_key_thumbprint(),
            dpop: self.dpop.is_some(),
        };
        let binding = crate::validate::binding::check(&principal, presented, sender_constrained);
        if let Err(error) = binding {
            return Err(self.deny(error.into(), path, Some(rule), Some(&principal), caller));
        }
        if let Some(revocations) = &self.revocations
            && let Err(error) = revocations.check(&principal)
        {
            return Err(self.deny(error, path, Some(rule), Some(&principal), caller));
        }
        if let Err(denial) = rule
            .evaluate(Some(&principal))
            .and_then(|()| delegation.evaluate(Some(&principal)))
        {
            return Err(self.deny(denial.into(), path, Some(rule), Some(&principal), caller));
        }
        if once && principal.token_id().is_none() {
            let error = AuthError::InvalidToken(TokenError::MissingTokenId);
            return Err(self.deny(error, path, Some(rule), Some(&principal), caller));
        }
        Ok((principal, proof))
    }

    /// Uses up what the admitted call spends, last, so that a refused call spends nothing:
    /// its DPoP proof, then — on a `once` method — its token; audits the decision and hands
    /// back a newer DPoP nonce for the response, if there is one.
    async fn spend(
        &self,
        principal: &Principal,
        proof: Option<CheckedProof>,
        path: &str,
        check: Check,
        caller: &Caller,
    ) -> Result<Option<String>, Status> {
        let rule = check.rule;
        let mut fresh_nonce = None;
        if let (Some(dpop), Some(proof)) = (&self.dpop, proof) {
            let store = self.store_shared.then_some(&*self.store);
            if let Err(error) = dpop.consume(&proof, crate::time::unix_now(), store).await {
                return Err(self.deny(error.into(), path, Some(rule), Some(principal), caller));
            }
            fresh_nonce = proof.fresh_nonce;
        }
        if check.once {
            // Checked by `conclude`.
            let jti = principal.token_id().unwrap_or_default();
            let key = hashed_key("once", &[principal.issuer().unwrap_or_default(), jti, path]);
            // Marked until a new call with the token would be refused anyway.
            let ttl = principal
                .expires_at()
                .and_then(|exp| exp.checked_add(self.validator.leeway(principal)))
                .and_then(|until| until.duration_since(SystemTime::now()).ok())
                .unwrap_or(ONCE_WITHOUT_EXPIRY)
                .max(Duration::from_secs(1));
            let stored = self.store.store.insert_new(&key, b"1", ttl).await;
            let refusal = match self.store.observe(stored) {
                Ok(true) => None,
                Ok(false) => Some(AuthError::InvalidToken(TokenError::AlreadyUsed)),
                Err(_) => Some(AuthError::StoreUnavailable),
            };
            if let Some(error) = refusal {
                return Err(self.deny(error, path, Some(rule), Some(principal), caller));
            }
        }
        self.allowed(principal, path, rule, caller);
        Ok(fresh_nonce)
    }

    /// Audits an admitted call.
    fn allowed(&self, principal: &Principal, path: &str, rule: Rule, caller: &Caller) {
        self.audit(
            AuditEvent::new(Decision::Allow, "authorized", path)
                .with_rule(rule)
                .with_principal(principal)
                .with_client_certificate(principal.client_certificate()),
            caller,
        );
    }

    fn deny(
        &self,
        error: AuthError,
        path: &str,
        rule: Option<Rule>,
        principal: Option<&Principal>,
        caller: &Caller,
    ) -> Status {
        let status = match &self.dpop {
            None => Status::from(error),
            Some(dpop) => {
                let challenge = DpopChallenge {
                    algs: &dpop.algs,
                    dpop_scheme: caller.dpop_scheme,
                };
                let mut status = refusal(error, Some(challenge));
                if error == AuthError::UseDpopNonce
                    && let Some(nonce) = dpop.current_nonce(crate::time::unix_now())
                    && let Ok(value) = nonce.parse()
                {
                    status.metadata_mut().insert(DPOP_NONCE, value);
                }
                status
            }
        };
        let mut event = AuditEvent::new(Decision::Deny, error.code(), path)
            .with_code(status.code())
            .with_client_certificate(caller.certificate.as_deref());
        event.rule = rule;
        event.principal = principal;
        self.audit(event, caller);
        status
    }

    /// Records the decision: the audit sink (whose wait, if it makes one, the call awaits),
    /// the metrics and the call's span.
    fn audit(&self, event: AuditEvent<'_>, caller: &Caller) {
        let event = event
            .with_peer(caller.peer)
            .with_trace_id(caller.trace_id.as_ref().map(TraceId::as_str))
            .with_token_fingerprint(caller.fingerprint.as_ref().map(Fingerprint::as_str));
        if let Some(wait) = self.sink.submit(&event).into_wait()
            && let Ok(mut slot) = caller.audit_wait.lock()
        {
            *slot = Some(wait);
        }
        crate::metrics::decision(
            caller.rpc,
            event.decision.as_str(),
            event.reason,
            event.principal.and_then(crate::Principal::issuer_shared),
            caller.arrived.elapsed(),
        );
        let span = tracing::Span::current();
        if !span.is_disabled() {
            span.record("oauth_grpc.decision", event.decision.as_str());
            span.record("oauth_grpc.reason", event.reason);
            span.record("rpc.grpc.status_code", event.code as i32);
            if let Some(rule) = event.rule {
                span.record("oauth_grpc.rule", tracing::field::display(rule));
            }
            if let Some(principal) = event.principal {
                if let Some(subject) = principal.subject() {
                    span.record("enduser.id", subject);
                }
                if let Some(client) = principal.client_id() {
                    span.record("oauth_grpc.client_id", client);
                }
                if let Some(issuer) = principal.issuer() {
                    span.record("oauth_grpc.issuer", issuer);
                }
            }
        }
    }
}

/// Puts the decision into the request: the principal for the handler, the credentials
/// marked sensitive so that logging the request's metadata does not print the token, and the
/// body bound to the token's expiry when the method streams.
fn admit_request<B>(
    mut request: http::Request<B>,
    admission: Admission,
) -> (http::Request<TokenBound<B>>, Binding) {
    match admission.principal {
        Some(principal) => {
            request.extensions_mut().insert(principal);
        }
        None => {
            // Never let a caller smuggle in a principal of its own making.
            request.extensions_mut().remove::<Principal>();
        }
    }
    for name in [
        http::header::AUTHORIZATION,
        http::HeaderName::from_static(DPOP),
    ] {
        if let http::header::Entry::Occupied(mut values) = request.headers_mut().entry(name) {
            for value in values.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
    let Binding {
        deadline, recheck, ..
    } = admission.request;
    let request = request.map(|body| TokenBound::until(body, deadline, recheck, Side::Request));
    let mut response = admission.response;
    response.dpop_nonce = admission.dpop_nonce;
    (request, response)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for OAuth<S>
where
    S: Service<http::Request<TokenBound<ReqBody>>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<TokenBound<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The decision's span: why a call was refused shows in its trace.
        let span = tracing::info_span!(
            target: "oauth_grpc::layer",
            "oauth_grpc.authorize",
            rpc.system = "grpc",
            rpc.method = request.uri().path(),
            oauth_grpc.decision = tracing::field::Empty,
            oauth_grpc.reason = tracing::field::Empty,
            oauth_grpc.rule = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
            oauth_grpc.client_id = tracing::field::Empty,
            oauth_grpc.issuer = tracing::field::Empty,
        );
        let verdict = span.in_scope(|| self.shared.decide(&request));
        match verdict {
            Verdict::Allow(admission) => {
                let (request, binding) = admit_request(request, admission);
                ResponseFuture {
                    state: State::Inner {
                        future: self.inner.call(request),
                        binding: Some(binding),
                    },
                }
            }
            Verdict::Deny(status) => ResponseFuture {
                state: State::Rejected {
                    response: Some(status.into_http()),
                },
            },
            Verdict::Wait(pending) => {
                // The ready service goes with the call; a clone stays for the next one.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let pending = tracing::Instrument::instrument(pending, span);
                ResponseFuture {
                    state: State::Waiting {
                        future: Box::pin(async move {
                            match pending.await {
                                Ok(admission) => {
                                    let (request, binding) = admit_request(request, admission);
                                    let response = inner.call(request).await?;
                                    Ok(bind_response(response, binding))
                                }
                                Err(status) => {
                                    Ok(status.into_http::<ResBody>().map(TokenBound::unbound))
                                }
                            }
                        }),
                    },
                }
            }
        }
    }
}

fn bind_response<B>(
    mut response: http::Response<B>,
    binding: Binding,
) -> http::Response<TokenBound<B>> {
    let Binding {
        deadline,
        recheck,
        dpop_nonce,
    } = binding;
    if let Some(value) = dpop_nonce.and_then(|nonce| http::HeaderValue::try_from(nonce).ok()) {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
    response.map(|body| TokenBound::until(body, deadline, recheck, Side::Response))
}

type Waiting<B, E> = Pin<Box<dyn Future<Output = Result<http::Response<TokenBound<B>>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`OAuth`]: the inner service's, an immediate rejection, or — when the
    /// identity provider had to be asked — the wait followed by the inner service.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Inner { #[pin] future: F, binding: Option<Binding> },
        Rejected { response: Option<http::Response<B>> },
        Waiting { future: Waiting<B, E> },
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Default,
{
    type Output = Result<http::Response<TokenBound<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, binding } => future.poll(cx).map(|result| {
                result.map(|response| bind_response(response, binding.take().unwrap_or_default()))
            }),
            StateProj::Waiting { future } => future.as_mut().poll(cx),
            StateProj::Rejected { response } => {
                // Polled again after completion: answer with an empty response rather than
                // panic.
                let response = response.take().unwrap_or_default();
                Poll::Ready(Ok(response.map(TokenBound::unbound)))
            }
        }
    }
}

/// Counts calls to paths without a rule, and says so at `warn` at most once a minute.
#[derive(Debug)]
struct UnknownPathLog {
    calls: AtomicU64,
    since_warning: AtomicU64,
    /// Seconds since `start` of the last warning, plus one; 0 before the first.
    warned_at: AtomicU64,
    start: Instant,
}

impl UnknownPathLog {
    /// At most one warning per this many seconds.
    const INTERVAL_SECS: u64 = 60;
    /// The longest part of a caller's path a warning shows.
    const SHOWN_PATH: usize = 128;

    fn new() -> Self {
        Self {
            calls: AtomicU64::new(0),
            since_warning: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    fn record(&self, path: &str) {
        let total = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        self.since_warning.fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed().as_secs() + 1;
        let last = self.warned_at.load(Ordering::Relaxed);
        if last != 0 && now < last + Self::INTERVAL_SECS {
            return;
        }
        if self
            .warned_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another call warns
        }
        let calls = self.since_warning.swap(0, Ordering::Relaxed);
        let end = (0..=path.len().min(Self::SHOWN_PATH))
            .rev()
            .find(|&i| path.is_char_boundary(i))
            .unwrap_or(0);
        let shown = &path[..end];
        tracing::warn!(
            target: "oauth_grpc::layer",
            calls,
            total,
            latest = shown,
            "calls to paths without an access rule (logged at most once a minute; see OAuthLayer::unknown_path_calls)"
        );
    }
}
