//! Token validation per algorithm: the crypto backend's bare signature check on a pre-parsed
//! key (the physical limit), jsonwebtoken's decode with the same claim checks (the baseline a
//! user would write), and our validator uncached and cached.
//!
//! DPoP (RFC 9449) per proof algorithm: the server's per-call cost of a proof, measured
//! through `OAuthLayer` in process (a cached DPoP-bound token with a fresh proof, against the
//! same layer's cached bearer call), the bare signature check of a proof (the limit), and the
//! client's cost of making a proof.
//!
//! Delegation (RFC 8693 `act`): a cached delegated call through `OAuthLayer` against the same
//! layer's cached direct call, on a method that admits listed actors only.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use examples::OrderBook;
use http::HeaderValue;
use jsonwebtoken::Algorithm;
use oauth_grpc::{Dpop, OAuth, OAuthLayer, PolicySet, TokenBound};
use oauth_grpc_benches::dpop::{PROOF_KEYS, ProofKey, ProofSigner};
use oauth_grpc_benches::loopback::{BENCH_REPLAY_CAPACITY, WHO_AM_I};
use oauth_grpc_benches::{HMAC_SECRET, KEYS, jsonwebtoken_validation};
use sha2::Digest as _;
use tower::ServiceExt as _;

/// Polls a future that is expected to be ready at once (a cache hit).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit does not wait"),
    }
}

#[allow(clippy::large_enum_variant)] // two values built once per benchmark
enum Limit {
    Public(ParsedPublicKey),
    Hmac(aws_lc_rs::hmac::Key),
}

/// One algorithm's token, keys and validators, built once.
struct Subject {
    name: &'static str,
    token: String,
    signature: Vec<u8>,
    limit: Limit,
    decoding: jsonwebtoken::DecodingKey,
    rules: jsonwebtoken::Validation,
    uncached: oauth_grpc::Validator,
    cached: oauth_grpc::Validator,
    now: SystemTime,
}

#[derive(Clone, Copy)]
enum Variant {
    Limit,
    Baseline,
    Uncached,
    Cached,
}

const VARIANTS: [(Variant, &str); 4] = [
    (
        Variant::Limit,
        "limit: bare signature check, pre-parsed key",
    ),
    (Variant::Baseline, "baseline: jsonwebtoken::decode"),
    (Variant::Uncached, "ours: uncached"),
    (Variant::Cached, "ours: cached"),
];

fn subjects() -> Vec<Subject> {
    // Building a validator installs the crypto backend for the raw jsonwebtoken rows too.
    let _ = KEYS[0].validator(false);
    KEYS.iter()
        .map(|key| {
            let token = key.token("orders:read orders:write");
            let (_, signature_b64) = token.rsplit_once('.').expect("three segments");
            let signature = URL_SAFE_NO_PAD.decode(signature_b64).expect("base64url");
            let limit = match key.alg {
                Algorithm::RS256 => Limit::Public(
                    ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key.spki_der())
                        .expect("RSA key"),
                ),
                Algorithm::PS256 => Limit::Public(
                    ParsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, key.spki_der())
                        .expect("RSA key"),
                ),
                Algorithm::ES256 => Limit::Public(
                    ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.spki_der())
                        .expect("EC key"),
                ),
                Algorithm::EdDSA => Limit::Public(
                    ParsedPublicKey::new(&signature::ED25519, key.spki_der()).expect("Ed25519 key"),
                ),
                _ => Limit::Hmac(aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    HMAC_SECRET,
                )),
            };
            let cached = key.validator(true);
            ready(cached.validate(&token)).expect("valid");
            Subject {
                name: key.name,
                signature,
                limit,
                decoding: key.decoding_key(),
                rules: jsonwebtoken_validation(key.alg),
                uncached: key.validator(false),
                cached,
                now: SystemTime::now(),
                token,
            }
        })
        .collect()
}

impl Subject {
    /// One check of the token by `variant`.
    fn check(&self, variant: Variant) {
        let token = black_box(self.token.as_str());
        match variant {
            Variant::Limit => {
                let (message, _) = token.rsplit_once('.').expect("three segments");
                match &self.limit {
                    Limit::Public(public) => public
                        .verify_sig(message.as_bytes(), black_box(&self.signature))
                        .expect("valid"),
                    Limit::Hmac(hmac) => aws_lc_rs::hmac::verify(
                        hmac,
                        message.as_bytes(),
                        black_box(&self.signature),
                    )
                    .expect("valid"),
                }
            }
            Variant::Baseline => {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(token, &self.decoding, &self.rules)
                        .expect("valid"),
                );
            }
            Variant::Uncached => {
                black_box(self.uncached.validate_at(token, self.now).expect("valid"));
            }
            Variant::Cached => {
                black_box(ready(self.cached.validate(token)).expect("valid"));
            }
        }
    }
}

/// `VALIDATION_INSTRUCTIONS=<alg>:<variant index 0-3>:<checks>`: build every subject, then
/// make that many checks of one and exit — for `benches/instructions.sh`, which counts the
/// instructions under callgrind for two check counts and takes the difference.
fn instructions_mode(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(alg), Some(variant), Some(checks)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("VALIDATION_INSTRUCTIONS=<alg>:<variant 0-3>:<checks>");
    };
    let variant = VARIANTS[variant.parse::<usize>().expect("a variant index")].0;
    let checks: usize = checks.parse().expect("a number of checks");
    let subjects = subjects();
    let subject = subjects
        .iter()
        .find(|s| s.name == alg)
        .expect("RS256, PS256, ES256, EdDSA or HS256");
    for _ in 0..checks {
        subject.check(variant);
    }
}

/// The service behind the layer: answers every call that gets through.
type Answer =
    fn(http::Request<TokenBound<()>>) -> std::future::Ready<Result<http::Response<()>, Infallible>>;
type Guarded = OAuth<tower::util::ServiceFn<Answer>>;

fn answer(
    _: http::Request<TokenBound<()>>,
) -> std::future::Ready<Result<http::Response<()>, Infallible>> {
    std::future::ready(Ok(http::Response::new(())))
}

/// The URI of a call as hyper hands it to the layer: the scheme and authority the client
/// dialled, then the gRPC path. A proof's `htu` names it.
fn call_uri() -> String {
    format!("http://127.0.0.1:50051{WHO_AM_I}")
}

/// Proofs signed ahead by the instruction count mode, whatever the number of checks: signing
/// and building the requests then cancel out of the difference between two counts.
const INSTRUCTION_POOL: usize = 120;
/// Proofs signed ahead per batch of the timing runs; each batch gets a layer with an empty
/// replay check, so that the proofs are new to it.
const TIMING_POOL: usize = 1000;
/// Proofs older than this are signed again before a batch (the layer accepts them for 60 s
/// plus the validator's 60 s leeway).
const POOL_MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy)]
enum DpopVariant {
    Bearer,
    Dpop,
    Limit,
    ClientJsonwebtoken,
    ClientParsed,
}

const DPOP_VARIANTS: [(DpopVariant, &str); 5] = [
    (DpopVariant::Bearer, "layer: cached bearer call (DPoP on)"),
    (DpopVariant::Dpop, "layer: cached DPoP-bound token + proof"),
    (
        DpopVariant::Limit,
        "limit: bare proof signature check, pre-parsed key",
    ),
    (
        DpopVariant::ClientJsonwebtoken,
        "client: make a proof, jsonwebtoken::crypto::sign",
    ),
    (
        DpopVariant::ClientParsed,
        "client: make a proof, key pair parsed once",
    ),
];

/// One proof algorithm's key, tokens, layer and proofs.
struct DpopSubject {
    name: &'static str,
    signer: ProofSigner,
    /// The issuer's RS256 token bound to the proof key (`cnf.jkt`), as `DPoP <token>`.
    dpop_token: String,
    dpop_authorization: HeaderValue,
    /// The same token unbound, as `Bearer <token>`.
    bearer_authorization: HeaderValue,
    /// The layer without DPoP: each batch adds DPoP with a fresh replay check.
    base: OAuthLayer,
    /// The layer with DPoP for the bearer calls.
    bearer_service: Guarded,
    proofs: Vec<String>,
    signed_at: Instant,
    limit: (ParsedPublicKey, String, Vec<u8>),
}

impl DpopSubject {
    fn new(key: ProofKey) -> Self {
        // Building a validator installs the crypto backend the signer needs.
        let validator = KEYS[0].validator(true);
        let signer = ProofSigner::new(key);
        let scope = "orders:read orders:write";
        let dpop_token = KEYS[0].dpop_token(scope, &signer.jkt);
        let bearer_token = KEYS[0].token(scope);
        let base = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>())
            .audit_sink(|_: &oauth_grpc::audit::AuditEvent<'_>| {});
        let bearer_service = Self::guard(&base);
        let algorithm: &'static dyn VerificationAlgorithm = match key.alg {
            Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &signature::ED25519,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        let proof = signer.proof_parsed(&call_uri(), &dpop_token);
        let (message, signature_b64) = proof.rsplit_once('.').expect("three segments");
        let limit = (
            ParsedPublicKey::new(algorithm, key.spki_der()).expect("proof key"),
            message.to_owned(),
            URL_SAFE_NO_PAD.decode(signature_b64).expect("base64url"),
        );
        let mut subject = Self {
            name: key.name,
            dpop_authorization: format!("DPoP {dpop_token}").parse().unwrap(),
            bearer_authorization: format!("Bearer {bearer_token}").parse().unwrap(),
            signer,
            dpop_token,
            base,
            bearer_service,
            proofs: Vec::new(),
            signed_at: Instant::now(),
            limit,
        };
        // Both tokens into the verified-token cache (shared by every layer made from `base`),
        // and every check to its first-call state.
        for variant in [DpopVariant::Bearer, DpopVariant::Dpop] {
            let (service, requests) = subject.batch(variant, 1);
            for request in requests {
                subject.call(&service, request);
            }
        }
        subject
    }

    /// `base` with DPoP on, a replay check of its own.
    fn guard(base: &OAuthLayer) -> Guarded {
        let layer = base
            .clone()
            .dpop(Dpop::new().replay_capacity(BENCH_REPLAY_CAPACITY));
        tower::Layer::layer(&layer, tower::service_fn(answer as Answer))
    }

    fn request(authorization: &HeaderValue, proof: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::post(call_uri())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())
            .unwrap();
        let headers = request.headers_mut();
        headers.insert(http::header::AUTHORIZATION, authorization.clone());
        if let Some(proof) = proof {
            headers.insert("dpop", HeaderValue::from_str(proof).expect("ASCII proof"));
        }
        request
    }

    /// The service and `n` requests for a layer variant, made outside the measured part:
    /// for DPoP a layer whose replay check has seen none of the pool's proofs, and requests
    /// each with a proof of its own.
    fn batch(&mut self, variant: DpopVariant, n: usize) -> (Guarded, Vec<http::Request<()>>) {
        match variant {
            DpopVariant::Bearer => {
                let requests = (0..n)
                    .map(|_| Self::request(&self.bearer_authorization, None))
                    .collect();
                (self.bearer_service.clone(), requests)
            }
            _ => {
                if self.proofs.len() < n || self.signed_at.elapsed() > POOL_MAX_AGE {
                    let uri = call_uri();
                    self.proofs = (0..n.max(self.proofs.len()))
                        .map(|_| self.signer.proof_parsed(&uri, &self.dpop_token))
                        .collect();
                    self.signed_at = Instant::now();
                }
                let requests = self.proofs[..n]
                    .iter()
                    .map(|proof| Self::request(&self.dpop_authorization, Some(proof)))
                    .collect();
                (Self::guard(&self.base), requests)
            }
        }
    }

    /// One call through the layer, which must admit it.
    fn call(&self, service: &Guarded, request: http::Request<()>) {
        let response = ready(service.clone().oneshot(request)).expect("infallible");
        assert!(
            response.headers().get("grpc-status").is_none(),
            "refused: {:?}",
            response.headers()
        );
        black_box(response);
    }

    /// One operation of a variant that needs no set-up per operation.
    fn once(&self, variant: DpopVariant) {
        match variant {
            DpopVariant::Limit => {
                let (key, message, signature) = &self.limit;
                key.verify_sig(black_box(message.as_bytes()), black_box(signature))
                    .expect("valid");
            }
            DpopVariant::ClientJsonwebtoken => {
                black_box(self.signer.proof(black_box(&call_uri()), &self.dpop_token));
            }
            DpopVariant::ClientParsed => {
                black_box(
                    self.signer
                        .proof_parsed(black_box(&call_uri()), &self.dpop_token),
                );
            }
            DpopVariant::Bearer | DpopVariant::Dpop => unreachable!("layer variants batch"),
        }
    }

    /// `n` operations of `variant`, only the operations themselves timed.
    fn timed(&mut self, variant: DpopVariant, n: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            let chunk = left.min(TIMING_POOL as u64);
            match variant {
                DpopVariant::Bearer | DpopVariant::Dpop => {
                    let (service, requests) = self.batch(variant, usize::try_from(chunk).unwrap());
                    let start = Instant::now();
                    for request in requests {
                        self.call(&service, request);
                    }
                    total += start.elapsed();
                }
                _ => {
                    let start = Instant::now();
                    for _ in 0..chunk {
                        self.once(variant);
                    }
                    total += start.elapsed();
                }
            }
            left -= chunk;
        }
        total
    }
}

/// `DPOP_INSTRUCTIONS=<alg>:<variant index 0-4>:<n>`, n at most 120: set up one proof
/// algorithm (its layers, [`INSTRUCTION_POOL`] proofs signed ahead), make `n` operations of
/// one variant and exit — for `benches/instructions.sh`, as `VALIDATION_INSTRUCTIONS`.
fn dpop_instructions_mode(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(alg), Some(variant), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("DPOP_INSTRUCTIONS=<alg>:<variant 0-4>:<n>");
    };
    let variant = DPOP_VARIANTS[variant.parse::<usize>().expect("a variant index")].0;
    let n: usize = n.parse().expect("a number of operations");
    assert!(
        n <= INSTRUCTION_POOL,
        "at most {INSTRUCTION_POOL} operations"
    );
    let mut subject = DpopSubject::new(ProofKey::named(alg));
    match variant {
        DpopVariant::Bearer | DpopVariant::Dpop => {
            let (service, requests) = subject.batch(variant, INSTRUCTION_POOL);
            for request in requests.into_iter().take(n) {
                subject.call(&service, request);
            }
        }
        _ => {
            for _ in 0..n {
                subject.once(variant);
            }
        }
    }
}

fn dpop(c: &mut Criterion) {
    for key in PROOF_KEYS {
        let mut subject = DpopSubject::new(key);
        let mut group = c.benchmark_group(format!("DPoP {}", subject.name));
        for (variant, label) in DPOP_VARIANTS {
            group.bench_function(label, |b| b.iter_custom(|n| subject.timed(variant, n)));
        }
        group.finish();
    }
}

/// A cached call through the layer on `CreateOrder` (`delegation = actors("assistant")`):
/// direct, delegated by the assistant, and by the assistant at the end of a chain of four.
const DELEGATION_VARIANTS: [&str; 3] = [
    "layer: cached direct call (actors rule)",
    "layer: cached call delegated by a listed actor",
    "layer: cached call, listed actor, chain of 4",
];

struct DelegationSubject {
    service: Guarded,
    authorizations: [HeaderValue; 3],
}

impl DelegationSubject {
    fn new() -> Self {
        let validator = KEYS[0].validator(true);
        let layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>())
            .audit_sink(|_: &oauth_grpc::audit::AuditEvent<'_>| {});
        let service = tower::Layer::layer(&layer, tower::service_fn(answer as Answer));
        let scope = "orders:write";
        let chain = serde_json::json!({"sub": "assistant", "act": {"sub": "planner",
            "act": {"sub": "scheduler", "act": {"sub": "gateway"}}}});
        let tokens = [
            KEYS[0].token(scope),
            KEYS[0].delegated_token(scope, serde_json::json!({"sub": "assistant"})),
            KEYS[0].delegated_token(scope, chain),
        ];
        let subject = Self {
            service,
            authorizations: tokens.map(|t| format!("Bearer {t}").parse().unwrap()),
        };
        // Every token into the verified-token cache.
        for variant in 0..3 {
            subject.call(variant);
        }
        subject
    }

    /// One call of `variant`, which the layer must admit.
    fn call(&self, variant: usize) {
        let request = http::Request::post(format!("http://127.0.0.1:50051{CREATE_ORDER}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header(
                http::header::AUTHORIZATION,
                self.authorizations[variant].clone(),
            )
            .body(())
            .unwrap();
        let response = ready(self.service.clone().oneshot(black_box(request))).expect("infallible");
        assert!(
            response.headers().get("grpc-status").is_none(),
            "refused: {:?}",
            response.headers()
        );
        black_box(response);
    }
}

const CREATE_ORDER: &str = "/orders.v1.Orders/CreateOrder";

/// `DELEGATION_INSTRUCTIONS=<variant 0-2>:<n>`: `n` cached calls of one variant and exit.
fn delegation_instructions_mode(spec: &str) {
    let (variant, n) = spec
        .split_once(':')
        .expect("DELEGATION_INSTRUCTIONS=<variant 0-2>:<n>");
    let (variant, n): (usize, usize) = (variant.parse().unwrap(), n.parse().unwrap());
    let subject = DelegationSubject::new();
    for _ in 0..n {
        subject.call(variant);
    }
}

fn delegation(c: &mut Criterion) {
    let subject = DelegationSubject::new();
    let mut group = c.benchmark_group("Delegation");
    for (variant, label) in DELEGATION_VARIANTS.iter().enumerate() {
        group.bench_function(*label, |b| b.iter(|| subject.call(variant)));
    }
    group.finish();
}

fn validation(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("VALIDATION_INSTRUCTIONS") {
        instructions_mode(&spec);
        std::process::exit(0);
    }
    if let Ok(spec) = std::env::var("DPOP_INSTRUCTIONS") {
        dpop_instructions_mode(&spec);
        std::process::exit(0);
    }
    if let Ok(spec) = std::env::var("DELEGATION_INSTRUCTIONS") {
        delegation_instructions_mode(&spec);
        std::process::exit(0);
    }
    for subject in subjects() {
        let mut group = c.benchmark_group(subject.name);
        for (variant, label) in VARIANTS {
            group.bench_function(label, |b| b.iter(|| subject.check(variant)));
        }
        // What a cached check hashes: the whole token (natively, on SHA-NI where the CPU has
        // it; valgrind's counts run it in software).
        group.bench_function("cache key: SHA-256 of the token", |b| {
            b.iter(|| sha2::Sha256::digest(black_box(subject.token.as_bytes())))
        });
        group.finish();
    }
    dpop(c);
    delegation(c);
}

criterion_group!(benches, validation);
criterion_main!(benches);
