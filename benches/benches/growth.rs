//! How the cost grows with the work, each curve measured in one run and given as ratios to
//! its smallest point (BENCHMARKS.md §12):
//!
//! - rule lookup with 10, 1,000 and 100,000 methods in the `PolicySet`;
//! - key choice with 1, 10 and 100 keys in the issuer's key set (the token's `kid` the last);
//! - issuer choice with 1, 4 and 32 trusted issuers (the token's issuer the last);
//! - the verified-token cache holding 10^3, 10^5 and 10^6 tokens: the time of a hit, and the
//!   heap bytes each entry holds, counted by a global allocator that tracks live bytes;
//! - 1, 100 and 10,000 open server streams (`WatchOrders` following an empty book) on the
//!   no-auth server and behind `OAuthLayer` (a cached token, the stream-lifetime watcher
//!   on): heap bytes per open stream, client and server of one process together;
//! - `WhoAmI` calls per second, 64 callers on 4 connections, with the server's runtime on 1,
//!   2 and 4 worker threads (the client on a runtime of its own, 2 workers), no auth and
//!   `OAuthLayer` cached.
//!
//! Timings by criterion; the memory figures are printed (`bytes/entry`). HS256 throughout
//! the key, issuer and cache curves, so that the signature (the same for every point) does
//! not hide what grows. `GROWTH=lookup,keys,issuers,cache,streams,workers` picks curves (all by
//! default; `GROWTH_WINDOW_MS` sets each throughput window, 3,000 by default);
//! `GROWTH_CACHE_MAX` caps the largest cache (default 1,000,000: about 1.5 GiB and a minute
//! to fill).

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system
// allocator and counts.
#![allow(unsafe_code, missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use examples::Store;
use examples::pb::WatchOrdersRequest;
use examples::pb::orders_client::OrdersClient;
use oauth_grpc::{Issuer, KeySet, MethodPolicy, PolicySet, Rule, ServicePolicy, Validator};
use oauth_grpc_benches::loopback::{
    Credentials as _, WATCH_ORDERS, channel, serve_baseline, serve_layer, throughput,
};
use oauth_grpc_benches::{AUDIENCE, HMAC_SECRET, ISSUER, KEYS};
use serde_json::json;
use tonic::metadata::{Ascii, MetadataValue};

/// Live heap bytes: allocated minus freed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the counter is an atomic, which
// never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn wants(curve: &str) -> bool {
    std::env::var("GROWTH").map_or(true, |list| list.split(',').any(|c| c == curve))
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A set of `n` methods, in services of at most 100 methods each.
fn policies(n: usize) -> PolicySet {
    let mut set = PolicySet::new();
    let services = n.div_ceil(100);
    for s in 0..services {
        let name = leak(format!("bench.v1.Service{s}"));
        let methods: Vec<MethodPolicy> = (0..(n - s * 100).min(100))
            .map(|m| {
                let rpc = leak(format!("Method{m}"));
                let path = leak(format!("/{name}/{rpc}"));
                MethodPolicy::new(rpc, path, leak(format!("method_{m}")), Rule::Authenticated)
            })
            .collect();
        let policy: &'static ServicePolicy = Box::leak(Box::new(ServicePolicy::new(
            name,
            Box::leak(methods.into_boxed_slice()),
        )));
        set = set.policy(policy);
    }
    assert_eq!(set.methods().count(), n);
    set
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("growth/rule lookup");
    for n in [10, 1_000, 100_000] {
        let set = policies(n);
        // A method of the last service, and a path no table has.
        let hit = format!("/bench.v1.Service{}/Method{}", (n - 1) / 100, (n - 1) % 100);
        assert!(set.rule_for(&hit).is_some());
        group.bench_function(format!("{n} methods, hit"), |b| {
            b.iter(|| set.rule_for(black_box(&hit)))
        });
        group.bench_function(format!("{n} methods, miss"), |b| {
            b.iter(|| set.rule_for(black_box("/bench.v1.Service0/NoSuchMethod")))
        });
    }
    group.finish();
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An RFC 9068 token of `iss` signed by HS256 with `kid`, made unique by `jti`; the claims of
/// the other benches' tokens.
fn token(iss: &str, kid: &str, jti: &str) -> String {
    let now = now();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let claims = json!({
        "iss": iss, "aud": AUDIENCE, "sub": "bench-user", "client_id": "bench-client",
        "iat": now, "exp": now + 3600, "jti": jti, "scope": "orders:read",
    });
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(HMAC_SECRET);
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .unwrap();
    format!("{message}.{signature}")
}

/// A key set of `n` HS256 keys with the bench secret, `kid`s `k0` … `k{n-1}` (a JWKS
/// document cannot carry secrets: `oct` keys in one are skipped).
fn jwks(n: usize) -> KeySet {
    (0..n).fold(KeySet::new(), |set, i| {
        let key = KeySet::from_hmac_secret(
            Some(&format!("k{i}")),
            HMAC_SECRET,
            oauth_grpc::Algorithm::HS256,
        )
        .unwrap();
        set.merge(key)
    })
}

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("growth/key choice (uncached check)");
    let at = SystemTime::now();
    for n in [1, 10, 100] {
        let validator = Validator::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(jwks(n))
            .cache_capacity(0)
            .build()
            .unwrap();
        let token = token(ISSUER, &format!("k{}", n - 1), "key-choice");
        validator.validate_at(&token, at).unwrap();
        group.bench_function(format!("{n} keys"), |b| {
            b.iter(|| validator.validate_at(black_box(&token), at).unwrap())
        });
    }
    group.finish();
}

fn issuers(c: &mut Criterion) {
    let mut group = c.benchmark_group("growth/issuer choice");
    let at = SystemTime::now();
    for n in [1, 4, 32] {
        let mut builder = Validator::builder().audience(AUDIENCE);
        for i in 0..n {
            builder =
                builder.trust(Issuer::new(format!("https://idp{i}.bench.test/")).keys(jwks(1)));
        }
        let token = token(
            &format!("https://idp{}.bench.test/", n - 1),
            "k0",
            "issuer-choice",
        );
        let uncached = builder.cache_capacity(0).build().unwrap();
        uncached.validate_at(&token, at).unwrap();
        group.bench_function(format!("{n} issuers, uncached"), |b| {
            b.iter(|| uncached.validate_at(black_box(&token), at).unwrap())
        });
    }
    group.finish();
}

fn cache(c: &mut Criterion) {
    let max: usize = std::env::var("GROWTH_CACHE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut group = c.benchmark_group("growth/verified-token cache");
    let mut report = Vec::new();
    for n in [1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= max)
    {
        let tokens: Vec<String> = (0..n)
            .map(|i| token(ISSUER, "k0", &format!("t{i}")))
            .collect();
        let token_bytes: usize = tokens.iter().map(String::len).sum::<usize>() / n;
        let validator = Validator::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(jwks(1))
            .cache_capacity(n as u64)
            .cache_ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        // The first check of one token, so that what every validator allocates once (its key
        // set's parse, the cache's fixed tables) is not counted per entry.
        drop(ready(validator.validate(&tokens[0])).unwrap());
        let before = LIVE.load(Ordering::Relaxed);
        for token in &tokens {
            drop(ready(validator.validate(token)).unwrap());
        }
        // Hits let the cache finish its pending bookkeeping.
        for token in tokens.iter().step_by((n / 1_000).max(1)) {
            drop(ready(validator.validate(token)).unwrap());
        }
        let after = LIVE.load(Ordering::Relaxed);
        let held = validator.cached_tokens();
        let per_entry = (after - before) as f64 / n as f64;
        report.push(format!(
            "{n:>9} entries: {per_entry:>7.0} bytes/entry ({held} held, tokens of {token_bytes} bytes)"
        ));
        // Hits spread over the whole cache.
        let stride = (n / 1_024).max(1);
        let mut i = 0;
        group.bench_function(format!("{n} entries, hit"), |b| {
            b.iter(|| {
                i = (i + stride) % n;
                ready(validator.validate(black_box(&tokens[i]))).unwrap()
            })
        });
    }
    group.finish();
    println!(
        "\ngrowth/verified-token cache, heap held per entry (live bytes after / before, per token):"
    );
    for line in report {
        println!("  {line}");
    }
}

/// The output of a future that completes at its first poll: a check of a static-key token
/// never waits.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a static-key check does not wait"),
    }
}

/// The `authorization` value of the loopback servers' callers.
fn bearer() -> MetadataValue<Ascii> {
    format!("Bearer {}", KEYS[0].token("orders:read orders:write"))
        .parse()
        .unwrap()
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Heap bytes per open server stream, for 1, 100 and 10,000 streams at once.
fn streams() {
    const CONNECTIONS: usize = 8;
    let rt = runtime(2);
    let header = bearer();
    let mut report = Vec::new();
    rt.block_on(async {
        for (name, layer) in [("no auth", false), ("OAuthLayer, watcher on", true)] {
            let mut row = Vec::new();
            for n in [1usize, 100, 10_000] {
                let url = if layer {
                    serve_layer(Store::default(), true).await
                } else {
                    serve_baseline(Store::default()).await
                };
                let mut clients = Vec::new();
                for _ in 0..CONNECTIONS {
                    clients.push(OrdersClient::new(channel(&url).await));
                }
                let follow = || WatchOrdersRequest {
                    limit: 0,
                    follow: true,
                };
                // One stream opened and dropped on every connection first, so that its
                // buffers and the token's cache entry are not counted per stream.
                for client in &mut clients {
                    drop(
                        client
                            .watch_orders(header.request(follow(), WATCH_ORDERS))
                            .await
                            .unwrap(),
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut open = Vec::with_capacity(n);
                let before = LIVE.load(Ordering::Relaxed);
                for i in 0..n {
                    let client = &mut clients[i % CONNECTIONS];
                    let response = client
                        .watch_orders(header.request(follow(), WATCH_ORDERS))
                        .await
                        .unwrap();
                    open.push(response.into_inner());
                }
                // The server's side of the last streams settles (its tasks, its timers).
                tokio::time::sleep(Duration::from_millis(200)).await;
                let after = LIVE.load(Ordering::Relaxed);
                row.push((after - before) as f64 / n as f64);
                drop(open);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            report.push((name, row));
        }
    });
    println!(
        "\ngrowth/open server streams, heap held per open stream (client and server together):"
    );
    println!(
        "  {:<24} {:>10} {:>10} {:>10}",
        "server", "1", "100", "10,000"
    );
    for (name, row) in &report {
        println!(
            "  {name:<24} {:>8.0} B {:>8.0} B {:>8.0} B",
            row[0], row[1], row[2]
        );
    }
    if let [(_, plain), (_, guarded)] = report.as_slice() {
        println!(
            "  {:<24} {:>8.0} B {:>8.0} B {:>8.0} B",
            "the layer's share",
            guarded[0] - plain[0],
            guarded[1] - plain[1],
            guarded[2] - plain[2]
        );
    }
}

/// `WhoAmI` calls per second with the server's runtime on 1, 2 and 4 worker threads.
fn workers() {
    const ROUNDS: usize = 3;
    let window = Duration::from_millis(
        std::env::var("GROWTH_WINDOW_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3_000),
    );
    let header = bearer();
    let client_rt = runtime(2);
    println!(
        "\ngrowth/server worker threads, WhoAmI calls/s (64 callers, 4 connections, median of {ROUNDS}):"
    );
    let mut first = [0.0f64; 2];
    for workers in [1usize, 2, 4] {
        let mut rates = [0.0f64; 2];
        for (v, layer) in [false, true].into_iter().enumerate() {
            let server_rt = runtime(workers);
            let url = server_rt.block_on(async {
                if layer {
                    serve_layer(Store::default(), true).await
                } else {
                    serve_baseline(Store::default()).await
                }
            });
            let mut samples: Vec<f64> = client_rt.block_on(async {
                let mut channels = Vec::new();
                for _ in 0..4 {
                    channels.push(channel(&url).await);
                }
                let mut samples = Vec::new();
                for _ in 0..ROUNDS {
                    samples.push(throughput(&channels, &header, 64, window).await);
                }
                samples
            });
            samples.sort_by(f64::total_cmp);
            rates[v] = samples[ROUNDS / 2];
            server_rt.shutdown_background();
        }
        if workers == 1 {
            first = rates;
        }
        println!(
            "  {workers} worker(s): no auth {:>8.0}/s ({:.3}x of 1), OAuthLayer cached {:>8.0}/s ({:.3}x of 1), layer / no auth {:.3}",
            rates[0],
            rates[0] / first[0],
            rates[1],
            rates[1] / first[1],
            rates[1] / rates[0]
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if wants("lookup") {
        lookup(&mut c);
    }
    if wants("keys") {
        keys(&mut c);
    }
    if wants("issuers") {
        issuers(&mut c);
    }
    if wants("cache") {
        cache(&mut c);
    }
    c.final_summary();
    if wants("streams") {
        streams();
    }
    if wants("workers") {
        workers();
    }
}
