//! Load with faults: thousands of calls at concurrency 64 against a real server whose keys
//! come from a real HTTP identity provider that rotates keys twice and goes down for a while.
//! Valid, expired, wrong-scope and forged tokens are mixed, fresh and repeated.
//!
//! Asserted: no forged, expired or wrong-scope call is accepted; no valid call is refused,
//! except with 14 UNAVAILABLE inside the outage window (a token signed with a key the
//! provider published while unreachable: the resource server cannot tell it from a forged
//! one until the provider answers); the verified-token cache stays within its capacity
//! although far more distinct tokens were verified.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::Store;
use examples::pb::CreateOrderRequest;
use examples::pb::orders_client::OrdersClient;
use oauth_grpc::validate::KeySource;
use oauth_grpc::{OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::idp::IdentityProvider;
use oauth_grpc_tests::issuer::{AUDIENCE, TestKey, claims, header, now, sign_json};
use oauth_grpc_tests::orders_server;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

const CONCURRENCY: usize = 64;
const CACHE_CAPACITY: u64 = 256;

/// The timeline, in milliseconds from the start of the load.
const PUBLISH_EC: u64 = 400; // the provider publishes ec-256 ahead of use
const SIGN_EC: u64 = 1_000; // and signs with it
const RETIRE_RSA: u64 = 1_600; // rsa-1 withdrawn from the JWKS
const RSA_GONE: u64 = 2_300; // by now every refresh has seen it go
const DOWN: u64 = 2_600; // the provider's port closes
const PUBLISH_ED: u64 = 2_800; // it publishes ed-1 (unreachable) and signs with it
const UP: u64 = 3_800; // the port opens again
const WINDOW_END: u64 = 4_800; // UP + refresh (300) + cooldown (200) + margin
const END: u64 = 8_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Valid,
    Expired,
    WrongScope,
    Forged,
}

#[derive(Default)]
struct Tally {
    /// (class, outcome) → count; outcome is "ok" or the code's name.
    outcomes: BTreeMap<(Class, String), usize>,
    failures: Vec<String>,
}

struct Clock {
    start: Instant,
}

impl Clock {
    fn ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The keys the provider signs with at `t`.
fn signing_keys(t: u64) -> &'static [TestKey] {
    if t < SIGN_EC {
        &[TestKey::Rsa1]
    } else if t < PUBLISH_ED {
        &[TestKey::Ec256]
    } else {
        &[TestKey::Ec256, TestKey::Ed25519]
    }
}

/// Distinct tokens minted (each a cache miss when first seen).
static DISTINCT: AtomicU64 = AtomicU64::new(0);

/// A token of `issuer` signed with `key`. A fresh one has its own `jti` (a cache miss); the
/// others come from a pool of eight per key and second (cache hits).
fn mint(issuer: &str, key: TestKey, scope: &str, exp_offset: i64, fresh: bool, n: usize) -> String {
    let mut c = claims(scope);
    c["iss"] = json!(issuer);
    c["exp"] = json!(now() + exp_offset);
    c["jti"] = if fresh {
        json!(format!(
            "fresh-{}",
            DISTINCT.fetch_add(1, Ordering::Relaxed)
        ))
    } else {
        json!(format!("pool-{scope}-{}", n % 8))
    };
    sign_json(&header(key), &c, key)
}

/// The token of call `n` at time `t`, and its class.
fn token_for(issuer: &str, n: usize, t: u64) -> (Class, String) {
    let keys = signing_keys(t);
    let key = keys[(n / 10) % keys.len()];
    let fresh = !n.is_multiple_of(3);
    match n % 10 {
        0..=4 => (
            Class::Valid,
            mint(issuer, key, "orders:write", 300, fresh, n),
        ),
        5 => (
            Class::Expired,
            mint(issuer, key, "orders:write", -120, fresh, n),
        ),
        6 => (
            Class::WrongScope,
            mint(issuer, key, "orders:read", 300, fresh, n),
        ),
        // A valid read-only token's signature under an escalated payload.
        7 => {
            let real = mint(issuer, key, "orders:read", 300, fresh, n);
            let mut c = claims("orders:write orders:admin");
            c["iss"] = json!(issuer);
            let escalated = sign_json(&header(key), &c, key);
            let mut parts = escalated.split('.');
            let (h, p) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let signature = real.rsplit('.').next().unwrap_or("");
            (Class::Forged, format!("{h}.{p}.{signature}"))
        }
        // A kid the provider never publishes.
        8 => (
            Class::Forged,
            mint(issuer, TestKey::Rsa2, "orders:write", 300, fresh, n),
        ),
        // After the withdrawal, rsa-1 is no longer trusted (pooled, cached tokens included).
        _ if t >= RSA_GONE => (
            Class::Forged,
            mint(
                issuer,
                TestKey::Rsa1,
                "orders:write",
                300,
                n.is_multiple_of(2),
                n,
            ),
        ),
        _ => (
            Class::Valid,
            mint(issuer, key, "orders:write", 300, false, n),
        ),
    }
}

fn judge(class: Class, result: &Result<(), tonic::Status>, sent: u64, done: u64) -> Option<String> {
    let in_window = done >= DOWN && sent <= WINDOW_END;
    match (class, result) {
        (Class::Valid, Ok(())) => None,
        (Class::Valid, Err(status)) if status.code() == Code::Unavailable && in_window => None,
        (Class::Valid, Err(status)) => Some(format!(
            "a valid token was refused at {sent}..{done} ms: {:?} {}",
            status.code(),
            status.message()
        )),
        (_, Ok(())) => Some(format!(
            "a {class:?} token was accepted at {sent}..{done} ms"
        )),
        (Class::WrongScope, Err(status))
            if !matches!(status.code(), Code::PermissionDenied | Code::Unavailable) =>
        {
            Some(format!(
                "a wrong-scope token got {:?} at {sent} ms",
                status.code()
            ))
        }
        (_, Err(status))
            if !matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied | Code::Unavailable
            ) =>
        {
            Some(format!("a {class:?} token got {:?}", status.code()))
        }
        (_, Err(_)) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_mixed_calls_through_rotation_and_outage() {
    let idp = Arc::new(IdentityProvider::start(&[TestKey::Rsa1]).await);
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .cache_capacity(CACHE_CAPACITY)
        .keys(
            KeySource::discover(idp.issuer())
                .refresh_between(Duration::from_millis(200), Duration::from_millis(300))
                .unknown_kid_cooldown(Duration::from_millis(200))
                .retry_after(Duration::from_millis(100))
                .max_staleness(Duration::from_secs(30)),
        )
        .start()
        .await
        .expect("keys load at start-up");
    let issuer = idp.issuer();
    let layer = OAuthLayer::new(
        validator.clone(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let server = orders_server(layer, Store::default())
        .await
        .expect("bind loopback");
    let channel = server.channel().await.expect("connect");

    let clock = Arc::new(Clock {
        start: Instant::now(),
    });
    let tally = Arc::new(Mutex::new(Tally::default()));
    let calls = Arc::new(AtomicUsize::new(0));

    // The provider's timeline.
    let control = {
        let (idp, clock) = (idp.clone(), clock.clone());
        tokio::spawn(async move {
            let at = |ms: u64| {
                let clock = clock.clone();
                async move {
                    let now = clock.ms();
                    if ms > now {
                        tokio::time::sleep(Duration::from_millis(ms - now)).await;
                    }
                }
            };
            at(PUBLISH_EC).await;
            idp.set_keys(&[TestKey::Rsa1, TestKey::Ec256]);
            at(RETIRE_RSA).await;
            idp.set_keys(&[TestKey::Ec256]);
            at(DOWN).await;
            idp.down().await;
            at(PUBLISH_ED).await;
            idp.set_keys(&[TestKey::Ec256, TestKey::Ed25519]);
            at(UP).await;
            idp.up().await;
        })
    };

    let mut workers = Vec::new();
    for worker in 0..CONCURRENCY {
        let (clock, tally, calls, issuer) =
            (clock.clone(), tally.clone(), calls.clone(), issuer.clone());
        let mut client = OrdersClient::new(channel.clone());
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while clock.ms() < END {
                let sent = clock.ms();
                let (class, token) = token_for(&issuer, n, sent);
                let mut request = Request::new(CreateOrderRequest {
                    item: "widget".into(),
                    quantity: 1,
                });
                let value =
                    MetadataValue::try_from(format!("Bearer {token}")).expect("tokens are ASCII");
                request.metadata_mut().insert("authorization", value);
                let result = client.create_order(request).await.map(drop);
                let done = clock.ms();
                calls.fetch_add(1, Ordering::Relaxed);
                let outcome = match &result {
                    Ok(()) => "ok".to_owned(),
                    Err(status) => format!("{:?}", status.code()),
                };
                let verdict = judge(class, &result, sent, done);
                let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                *tally.outcomes.entry((class, outcome)).or_default() += 1;
                if let Some(failure) = verdict {
                    tally.failures.push(failure);
                }
                n += CONCURRENCY;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker finished");
    }
    control.await.expect("timeline finished");

    let calls = calls.load(Ordering::Relaxed);
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    let table: Vec<String> = tally
        .outcomes
        .iter()
        .map(|((class, outcome), n)| format!("{class:?} {outcome}: {n}"))
        .collect();
    println!("{calls} calls\n{}", table.join("\n"));
    assert!(
        tally.failures.is_empty(),
        "{} of {calls} calls went wrong:\n{}",
        tally.failures.len(),
        tally.failures[..tally.failures.len().min(20)].join("\n")
    );
    assert!(calls >= 2_000, "only {calls} calls were made");
    // Every class was exercised, and the outage really refused the new key for a while.
    for class in [
        Class::Valid,
        Class::Expired,
        Class::WrongScope,
        Class::Forged,
    ] {
        assert!(
            tally.outcomes.keys().any(|(c, _)| *c == class),
            "no {class:?} calls"
        );
    }
    assert!(
        tally
            .outcomes
            .contains_key(&(Class::Valid, "Unavailable".to_owned())),
        "the outage never showed: the test did not test it"
    );
    let distinct = DISTINCT.load(Ordering::Relaxed);
    let cached = validator.cached_tokens();
    assert!(
        distinct > 4 * CACHE_CAPACITY,
        "too few distinct tokens ({distinct}) to fill the cache"
    );
    println!("{distinct} distinct tokens minted; {cached} cached (capacity {CACHE_CAPACITY})");
    assert!(
        cached <= CACHE_CAPACITY,
        "the cache holds {cached} tokens, over its capacity {CACHE_CAPACITY}"
    );
    // And it was in use up to its bound, so the bound was what limited it.
    assert!(
        cached >= CACHE_CAPACITY / 2,
        "the cache holds only {cached} tokens: it was not exercised"
    );
    server.stop().await;
}
