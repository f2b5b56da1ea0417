//! Shared state (feature `redis`): what the revocation check and a `once` method add to a
//! call through `OAuthLayer`, in process, against the same layer's cached call without them.
//!
//! Two modes:
//! - `SHARED_INSTRUCTIONS=<variant 0-3>:<n>` (for `benches/instructions.sh shared`): set up
//!   one variant, make `n` cached calls of it and exit; callgrind counts the instructions for
//!   two values of `n`. 0: a cached call on `GetOrder`, no revocation list; 1: the same with
//!   an empty `Revocations`; 2: with 1,000 revocations none of which covers the caller; 3: a
//!   call to the `once` method `RefundOrder` with a fresh `jti` per call, on the default
//!   `MemoryStore`, every token verified and cached beforehand through `GetOrder`. Variant 3
//!   needs one token per call: `SHARED_MINT=<file>:<count>` writes them (natively, once), and
//!   `SHARED_TOKENS=<file>` makes the count read them instead of signing under valgrind.
//! - Otherwise: wall-clock percentiles on 127.0.0.1 against a `redis-server` child process
//!   started here (`--save '' --appendonly no`, a free port, killed at the end), per call
//!   through the layer (no gRPC network: Redis is the only network), and the Redis commands
//!   each variant sends, read from `INFO commandstats` before and after its calls.
//!   Variants: the cached call; with a revocation list on a `RedisStore`, empty and with
//!   1,000 entries; the `once` call on the default `MemoryStore` and on a `RedisStore`; a
//!   DPoP ES256 call with the replay check in process and with its proofs on a `RedisStore`.
//!   `SHARED_ROUNDS` (5) rounds of `SHARED_CALLS` (5,000) calls per variant after 1,000
//!   warm-up calls; the table gives the median over rounds of each round's p50 and p99. Last,
//!   the revocation list's background poll: its commands per second with no calls and under
//!   back-to-back calls.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use examples::OrderBook;
use http::HeaderValue;
use oauth_grpc::store::{
    MemoryStore, RedisConfig, RedisStore, Revocation, Revocations, SharedStore,
};
use oauth_grpc::{Dpop, OAuth, OAuthLayer, PolicySet, TokenBound, Validator};
use oauth_grpc_benches::dpop::{ProofKey, ProofSigner};
use oauth_grpc_benches::loopback::BENCH_REPLAY_CAPACITY;
use oauth_grpc_benches::{AUDIENCE, ISSUER, KEYS};
use serde_json::json;
use tower::ServiceExt as _;

const GET_ORDER: &str = "/orders.v1.Orders/GetOrder";
/// `#[require_scope(OrderScope::Refund, once, delegation = forbid)]`.
const REFUND_ORDER: &str = "/orders.v1.Orders/RefundOrder";
/// Every token's scope: `GetOrder` and `RefundOrder` both admit it.
const SCOPE: &str = "orders:read orders:refund";
/// Revocations in the full list.
const REVOKED: usize = 1_000;
/// Tokens of variant 3 signed by the instruction count mode itself, without `SHARED_TOKENS`.
const INSTRUCTION_POOL: usize = 120;
/// Calls before the measured ones, per variant and round.
const WARM_UP: usize = 1_000;

/// Polls a future that is expected to be ready at once (a cache hit, a `MemoryStore`).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit on an in-memory store does not wait"),
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

/// RS256 tokens as `BenchKey::token` makes them (the same claims, a 16-character `jti`), with
/// a `jti` of our choosing; the key parsed once, so that thousands sign in seconds.
struct Minter {
    key: RsaKeyPair,
    rng: SystemRandom,
    now: u64,
}

impl Minter {
    fn new() -> Self {
        let pem = include_str!("../../tests/keys/rsa1.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).expect("PEM body");
        Self {
            key: RsaKeyPair::from_pkcs8(&der).expect("PKCS#8 RSA key"),
            rng: SystemRandom::new(),
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        }
    }

    /// A token with `jti` (16 characters, as the other benches' `bench-<unix seconds>`).
    fn token(&self, jti: &str) -> String {
        assert_eq!(jti.len(), 16, "the jti of the other benches' tokens");
        let now = self.now;
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"});
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "client_id": "bench-client",
            "iat": now, "exp": now + 3600, "jti": jti, "scope": SCOPE,
        });
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                message.as_bytes(),
                &mut signature,
            )
            .expect("RSA signature");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The baseline's token.
    fn base(&self) -> String {
        self.token("base-00000000000")
    }

    /// `count` tokens with distinct `jti`s, as `Bearer …` header values.
    fn pool(&self, count: usize) -> Vec<HeaderValue> {
        (0..count)
            .map(|i| bearer(&self.token(&format!("once-{i:011}"))))
            .collect()
    }
}

fn bearer(token: &str) -> HeaderValue {
    format!("Bearer {token}").parse().unwrap()
}

/// The benchmarks' validator (the issuer's RS256 key), with a cache that holds every token
/// of the pool.
fn validator() -> Validator {
    Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KEYS[0].key_set())
        .cache_capacity(100_000)
        .build()
        .unwrap()
}

/// The orders service's rules, no audit output; a store and a revocation list if given.
fn layer(
    validator: &Validator,
    store: Option<Arc<dyn SharedStore>>,
    revocations: Option<Revocations>,
) -> OAuthLayer {
    let mut layer = OAuthLayer::new(validator.clone(), PolicySet::new().service::<OrderBook>())
        .audit_sink(|_: &oauth_grpc::audit::AuditEvent<'_>| {});
    if let Some(store) = store {
        layer = layer.shared_store(store);
    }
    if let Some(revocations) = revocations {
        layer = layer.revocations(revocations);
    }
    layer
}

fn guard(layer: &OAuthLayer) -> Guarded {
    tower::Layer::layer(layer, tower::service_fn(answer as Answer))
}

/// A request as hyper hands it to the layer.
fn request(path: &str, authorization: &HeaderValue, proof: Option<&str>) -> http::Request<()> {
    let mut request = http::Request::post(format!("http://127.0.0.1:50051{path}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::AUTHORIZATION, authorization.clone())
        .body(())
        .unwrap();
    if let Some(proof) = proof {
        let proof = HeaderValue::from_str(proof).expect("ASCII proof");
        request.headers_mut().insert("dpop", proof);
    }
    request
}

fn admitted<B>(response: &http::Response<B>) {
    assert!(
        response.headers().get("grpc-status").is_none(),
        "refused: {:?}",
        response.headers()
    );
}

/// 1,000 revocations, none of which covers the benchmark caller: a third each by `jti`, by
/// subject and by client.
async fn revoke_others(revocations: &Revocations) {
    for i in 0..REVOKED {
        let revocation = match i % 3 {
            0 => Revocation::token(format!("revoked-{i:09}")),
            1 => Revocation::subject(format!("revoked-user-{i}")),
            _ => Revocation::client(format!("revoked-client-{i}")),
        };
        revocations.revoke(&revocation).await.expect("revoked");
    }
    assert_eq!(revocations.len(), REVOKED);
}

// ------------------------------------------------------------------------------------------
// Instruction counts.

fn instructions_mode(spec: &str) {
    let (variant, n) = spec
        .split_once(':')
        .expect("SHARED_INSTRUCTIONS=<variant 0-3>:<n>");
    let (variant, n): (usize, usize) = (variant.parse().unwrap(), n.parse().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Never driven after the set-up: the revocation list's poll task does not run between
    // the calls, which are polled by `ready`, so the count is that of the calls alone.
    let _context = runtime.enter();
    let minter = Minter::new();
    let validator = validator();
    let revocations = match variant {
        0 | 3 => None,
        1 | 2 => Some(runtime.block_on(async {
            let store: Arc<dyn SharedStore> = Arc::new(MemoryStore::new());
            let revocations = Revocations::builder(store).start().await.unwrap();
            if variant == 2 {
                revoke_others(&revocations).await;
            }
            revocations
        })),
        _ => panic!("SHARED_INSTRUCTIONS=<variant 0-3>:<n>"),
    };
    let service = guard(&layer(&validator, None, revocations));
    let call = |path: &str, authorization: &HeaderValue| {
        let response = ready(service.clone().oneshot(black_box(request(
            path,
            authorization,
            None,
        ))))
        .expect("infallible");
        admitted(&response);
        black_box(response);
    };
    if variant == 3 {
        let pool: Vec<HeaderValue> = match std::env::var("SHARED_TOKENS") {
            Ok(path) => std::fs::read_to_string(path)
                .expect("the token file")
                .lines()
                .map(bearer)
                .collect(),
            // Signed here: slow under valgrind, hence the file.
            Err(_) => minter.pool(INSTRUCTION_POOL),
        };
        assert!(n <= pool.len(), "{n} calls need as many tokens");
        // Every token of the pool verified and cached (the same for every `n`).
        for authorization in &pool {
            call(GET_ORDER, authorization);
        }
        for authorization in &pool[..n] {
            call(REFUND_ORDER, authorization);
        }
    } else {
        let authorization = bearer(&minter.base());
        call(GET_ORDER, &authorization);
        for _ in 0..n {
            call(GET_ORDER, &authorization);
        }
    }
}

fn mint_mode(spec: &str) {
    let (path, count) = spec.rsplit_once(':').expect("SHARED_MINT=<file>:<count>");
    let minter = Minter::new();
    let count: usize = count.parse().unwrap();
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&minter.token(&format!("once-{i:011}")));
        text.push('\n');
    }
    std::fs::write(path, text).expect("the token file");
}

// ------------------------------------------------------------------------------------------
// A redis-server of our own.

/// A `redis-server` child process on a free port of 127.0.0.1, keeping nothing on disk;
/// killed when dropped.
struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "oauth-grpc-bench-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("the redis-server dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): `apt-get install redis-server`")
            });
        let mut server = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server exited ({status}): is port {port} in use?");
            }
            if let Ok(mut connection) = server.connect()
                && connection.command(&["PING"]).starts_with(b"+PONG")
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn connect(&self) -> std::io::Result<Raw> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Raw(BufReader::new(stream)))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw RESP connection, for `INFO commandstats` and `FLUSHALL` without a client library.
struct Raw(BufReader<TcpStream>);

impl Raw {
    /// Sends `args` as a RESP array; the answer's first line, or a bulk string's content.
    fn command(&mut self, args: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.0.get_mut().write_all(out.as_bytes()).unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        match line.strip_prefix('$') {
            Some(len) => {
                let len: usize = len.trim_end().parse().unwrap();
                let mut body = vec![0; len + 2];
                self.0.read_exact(&mut body).unwrap();
                body.truncate(len);
                body
            }
            None => line.into_bytes(),
        }
    }

    /// Calls so far per command (`INFO commandstats`), lower case, without `info` itself.
    fn commandstats(&mut self) -> BTreeMap<String, u64> {
        let text = String::from_utf8(self.command(&["INFO", "commandstats"])).unwrap();
        text.lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest.strip_prefix("calls=")?.split(',').next()?;
                (name != "info").then(|| (name.to_owned(), calls.parse().unwrap()))
            })
            .collect()
    }
}

/// What `after` counts more than `before`, per command.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(name, calls)| {
            let more = calls - before.get(name).copied().unwrap_or(0);
            (more > 0).then(|| (name.clone(), more))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Wall clock.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    RevokedEmptyRedis,
    RevokedFullRedis,
    OnceMemory,
    OnceRedis,
    DpopMemory,
    DpopRedis,
}

const TIMED: [(Variant, &str); 7] = [
    (
        Variant::Plain,
        "(a) cached call, GetOrder, no revocation list",
    ),
    (
        Variant::RevokedEmptyRedis,
        "(b1) same, Revocations on RedisStore, empty",
    ),
    (
        Variant::RevokedFullRedis,
        "(b2) same, Revocations on RedisStore, 1,000 entries",
    ),
    (
        Variant::OnceMemory,
        "(c) once call, RefundOrder, MemoryStore (default)",
    ),
    (Variant::OnceRedis, "(d) once call, RefundOrder, RedisStore"),
    (
        Variant::DpopMemory,
        "(e1) DPoP ES256 call, GetOrder, replay check in process (default)",
    ),
    (
        Variant::DpopRedis,
        "(e2) DPoP ES256 call, GetOrder, proofs on RedisStore",
    ),
];

/// One variant's layer and the authorization (and proof) of each of its calls.
struct Prepared {
    service: Guarded,
    path: &'static str,
    authorizations: Vec<HeaderValue>,
    proofs: Vec<String>,
    /// Kept alive while the variant runs (its poll task ends with it).
    _revocations: Option<Revocations>,
}

struct Bench {
    validator: Validator,
    redis_url: String,
    base: HeaderValue,
    /// One token per once call of a round (warm-up included), verified and cached.
    pool: Vec<HeaderValue>,
    dpop_signer: ProofSigner,
    dpop_token: String,
    dpop_authorization: HeaderValue,
    /// Distinct key prefixes per variant and round, so that nothing is marked beforehand.
    prefixes: usize,
}

impl Bench {
    async fn redis(&mut self) -> Arc<dyn SharedStore> {
        self.prefixes += 1;
        let config = RedisConfig::new(self.redis_url.clone())
            .prefix(format!("bench-{}:", self.prefixes))
            // Not the default 50 ms: on a loaded machine a slow answer must not end the run.
            .timeout(Duration::from_secs(1));
        Arc::new(RedisStore::connect(config).await.expect("Redis"))
    }

    async fn prepare(&mut self, variant: Variant, calls: usize) -> Prepared {
        let mut prepared = Prepared {
            service: guard(&layer(&self.validator, None, None)),
            path: GET_ORDER,
            authorizations: vec![self.base.clone(); calls],
            proofs: Vec::new(),
            _revocations: None,
        };
        match variant {
            Variant::Plain => {}
            Variant::RevokedEmptyRedis | Variant::RevokedFullRedis => {
                let revocations = Revocations::builder(self.redis().await)
                    .start()
                    .await
                    .unwrap();
                if variant == Variant::RevokedFullRedis {
                    revoke_others(&revocations).await;
                }
                prepared.service = guard(&layer(&self.validator, None, Some(revocations.clone())));
                prepared._revocations = Some(revocations);
            }
            Variant::OnceMemory | Variant::OnceRedis => {
                // `None`: the layer's own `MemoryStore`, new with each layer.
                let store = match variant {
                    Variant::OnceRedis => Some(self.redis().await),
                    _ => None,
                };
                prepared.service = guard(&layer(&self.validator, store, None));
                prepared.path = REFUND_ORDER;
                prepared.authorizations = self.pool[..calls].to_vec();
            }
            Variant::DpopMemory | Variant::DpopRedis => {
                let layer = if variant == Variant::DpopRedis {
                    let store = self.redis().await;
                    layer(&self.validator, Some(store), None).dpop(Dpop::new())
                } else {
                    layer(&self.validator, None, None)
                        .dpop(Dpop::new().replay_capacity(BENCH_REPLAY_CAPACITY))
                };
                prepared.service = guard(&layer);
                prepared.authorizations = vec![self.dpop_authorization.clone(); calls];
                let htu = format!("http://127.0.0.1:50051{GET_ORDER}");
                prepared.proofs = (0..calls)
                    .map(|_| self.dpop_signer.proof_parsed(&htu, &self.dpop_token))
                    .collect();
            }
        }
        prepared
    }
}

/// One call of a prepared variant, timed.
async fn timed_call(prepared: &Prepared, i: usize) -> Duration {
    let request = request(
        prepared.path,
        &prepared.authorizations[i],
        prepared.proofs.get(i).map(String::as_str),
    );
    let start = Instant::now();
    let response = prepared
        .service
        .clone()
        .oneshot(black_box(request))
        .await
        .expect("infallible");
    let elapsed = start.elapsed();
    admitted(&response);
    black_box(response);
    elapsed
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// One round's figures of a variant.
struct Round {
    p50: f64,
    p99: f64,
    /// Redis commands sent during the measured calls, per command.
    commands: BTreeMap<String, u64>,
    elapsed: Duration,
}

async fn wall_clock() {
    let rounds: usize = std::env::var("SHARED_ROUNDS").map_or(5, |v| v.parse().unwrap());
    let calls: usize = std::env::var("SHARED_CALLS").map_or(5_000, |v| v.parse().unwrap());
    let redis = RedisServer::start();
    let mut raw = redis.connect().unwrap();
    let validator = validator();
    let minter = Minter::new();
    eprintln!("signing {} tokens…", WARM_UP + calls);
    let pool = minter.pool(WARM_UP + calls);
    let base = bearer(&minter.base());
    let dpop_signer = ProofSigner::new(ProofKey::named("ES256"));
    let dpop_token = KEYS[0].dpop_token(SCOPE, &dpop_signer.jkt);
    let mut bench = Bench {
        validator,
        redis_url: redis.url(),
        base,
        pool,
        dpop_authorization: format!("DPoP {dpop_token}").parse().unwrap(),
        dpop_signer,
        dpop_token,
        prefixes: 0,
    };
    // Every token verified and cached, through a non-once method.
    let plain = guard(&layer(&bench.validator, None, None));
    for authorization in bench.pool.iter().chain([&bench.base]) {
        let response = plain
            .clone()
            .oneshot(request(GET_ORDER, authorization, None))
            .await
            .unwrap();
        admitted(&response);
    }

    let load_before = loadavg();
    let mut results: Vec<Vec<Round>> = TIMED.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (index, (variant, label)) in TIMED.iter().enumerate() {
            let prepared = bench.prepare(*variant, WARM_UP + calls).await;
            // The revocation list re-read after the revocations (one poll), and the polls of
            // the previous variant's list ended.
            tokio::time::sleep(Duration::from_millis(600)).await;
            for i in 0..WARM_UP {
                timed_call(&prepared, i).await;
            }
            let before = raw.commandstats();
            let start = Instant::now();
            let mut samples = Vec::with_capacity(calls);
            for i in WARM_UP..WARM_UP + calls {
                samples.push(timed_call(&prepared, i).await);
            }
            let elapsed = start.elapsed();
            let commands = delta(&before, &raw.commandstats());
            samples.sort_unstable();
            let figures = Round {
                p50: micros(percentile(&samples, 50)),
                p99: micros(percentile(&samples, 99)),
                commands,
                elapsed,
            };
            eprintln!(
                "round {round}: {label}: p50 {:.2} µs, p99 {:.2} µs, {:?} in {:?}",
                figures.p50, figures.p99, figures.commands, figures.elapsed
            );
            results[index].push(figures);
        }
    }
    let load_after = loadavg();

    // The background poll: a revocation list on Redis with 1,000 entries, first with no
    // calls, then under back-to-back calls.
    let prepared = bench.prepare(Variant::RevokedFullRedis, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let window = Duration::from_secs(5);
    let before = raw.commandstats();
    tokio::time::sleep(window).await;
    let idle = delta(&before, &raw.commandstats());
    let before = raw.commandstats();
    let start = Instant::now();
    let mut busy_calls = 0_u64;
    while start.elapsed() < window {
        timed_call(&prepared, 0).await;
        busy_calls += 1;
        // A server's tasks wait on their connections; this loop never would, and the poll
        // would never get a turn on its worker.
        if busy_calls.is_multiple_of(1_000) {
            tokio::task::yield_now().await;
        }
    }
    let busy_elapsed = start.elapsed();
    let busy = delta(&before, &raw.commandstats());
    drop(prepared);

    println!(
        "## Shared state, wall clock per call through OAuthLayer in process, Redis on 127.0.0.1"
    );
    println!();
    println!(
        "{rounds} rounds of {calls} calls per variant after {WARM_UP} warm-up calls; the median over rounds of each round's p50 and p99; commands: Redis commands (INFO commandstats) during the measured calls, per call. Load average {load_before} before, {load_after} after."
    );
    println!();
    println!(
        "| variant | p50 | p50 range over rounds | p99 | p50 added vs (a) | Redis commands per call |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    let mut base_p50 = 0.0;
    for (index, (variant, label)) in TIMED.iter().enumerate() {
        let figures = &results[index];
        let mut p50s: Vec<f64> = figures.iter().map(|r| r.p50).collect();
        let p50 = median(&mut p50s);
        let range = format!("{:.2}–{:.2} µs", p50s[0], p50s[p50s.len() - 1]);
        let p99 = median(&mut figures.iter().map(|r| r.p99).collect::<Vec<_>>());
        if *variant == Variant::Plain {
            base_p50 = p50;
        }
        let mut commands: BTreeMap<String, u64> = BTreeMap::new();
        for round in figures {
            for (name, n) in &round.commands {
                *commands.entry(name.clone()).or_default() += n;
            }
        }
        let total_calls = (calls * figures.len()) as f64;
        let mut per_call: Vec<String> = commands
            .iter()
            .map(|(name, n)| format!("{} {:.4}", name.to_uppercase(), *n as f64 / total_calls))
            .collect();
        if per_call.is_empty() {
            per_call.push("0".to_owned());
        }
        let window: Duration = figures.iter().map(|r| r.elapsed).sum();
        println!(
            "| {label} | {p50:.2} µs | {range} | {p99:.2} µs | {:+.2} µs | {} ({:.1} ms of calls) |",
            p50 - base_p50,
            per_call.join(", "),
            window.as_secs_f64() * 1e3
        );
    }
    println!();
    let rate = |commands: &BTreeMap<String, u64>, over: Duration| {
        let listed: Vec<String> = commands
            .iter()
            .map(|(name, n)| {
                format!(
                    "{n} {} ({:.2}/s)",
                    name.to_uppercase(),
                    *n as f64 / over.as_secs_f64()
                )
            })
            .collect();
        if listed.is_empty() {
            "no command".to_owned()
        } else {
            listed.join(", ")
        }
    };
    println!(
        "The revocation list's background poll, one replica, 1,000 entries: {:.1} s without calls: {}; {:.1} s of back-to-back calls ({busy_calls} calls, {:.0}/s): {}, {:.2e} commands per call.",
        window.as_secs_f64(),
        rate(&idle, window),
        busy_elapsed.as_secs_f64(),
        busy_calls as f64 / busy_elapsed.as_secs_f64(),
        rate(&busy, busy_elapsed),
        busy.values().sum::<u64>() as f64 / busy_calls as f64,
    );
}

fn main() {
    if let Ok(spec) = std::env::var("SHARED_MINT") {
        mint_mode(&spec);
        return;
    }
    if let Ok(spec) = std::env::var("SHARED_INSTRUCTIONS") {
        instructions_mode(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; a filter or `--list` from a harness-wide run is ignored.
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    // On a worker thread, as tonic runs a handler: the Redis connection's task and the
    // revocation poll run on the same two workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(wall_clock()).await.unwrap() });
}
