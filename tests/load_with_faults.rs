//! Load with faults: thousands of calls at concurrency 64 against a real server whose keys
//! come from a real HTTP identity provider that rotates keys twice and goes down for a while.
//! Valid, expired, wrong-scope and forged tokens are mixed, fresh and repeated.
//!
//! The provider's timeline advances on events, not on the clock, so a slow machine changes
//! only how long it takes: it publishes `ec-256` and, once the validator has fetched it, signs
//! with it; it withdraws `rsa-1` and the test waits until the validator refuses it; its port
//! closes; while it is unreachable it publishes `ed-1` and, once the validator has found it
//! down, signs with it; its port opens, and the test waits until the validator accepts `ed-1`.
//!
//! Asserted for every call: a valid token is accepted; an expired one gets 16, a wrong-scope
//! one 7, a forged one 16 — and 14 UNAVAILABLE is allowed, for any of them, only when the
//! token's `kid` is one the validator does not hold *and* the call overlapped the outage (a
//! key published while the provider was unreachable cannot be told from a forged one until it
//! answers). Also: tokens of the withdrawn key that the cache had verified are refused after
//! the withdrawal; the known key keeps working through the outage; the verified-token cache
//! ends at its bound after thousands of distinct tokens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::Store;
use examples::pb::CreateOrderRequest;
use examples::pb::orders_client::OrdersClient;
use oauth_grpc::KeySource;
use oauth_grpc::{OAuthLayer, PolicySet, TokenError, Validator};
use oauth_grpc_tests::idp::IdentityProvider;
use oauth_grpc_tests::issuer::{AUDIENCE, TestKey, claims, header, now, sign_json};
use oauth_grpc_tests::orders_server;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

const CONCURRENCY: usize = 64;
const CACHE_CAPACITY: u64 = 256;
/// Not yet happened.
const NEVER: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Valid,
    Expired,
    WrongScope,
    Forged,
}

/// When each event of the timeline happened, in ms from the start ([`NEVER`] until then).
struct Timeline {
    start: Instant,
    ec_signing: AtomicU64,
    retiring_rsa: AtomicU64,
    rsa_gone: AtomicU64,
    down: AtomicU64,
    ed_signing: AtomicU64,
    recovered: AtomicU64,
    stop: AtomicBool,
}

impl Timeline {
    fn ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NEVER)
    }

    fn mark(&self, event: &AtomicU64) {
        event.store(self.ms(), Ordering::SeqCst);
    }

    fn passed(&self, event: &AtomicU64) -> bool {
        event.load(Ordering::SeqCst) != NEVER
    }

    fn at(&self, event: &AtomicU64) -> u64 {
        event.load(Ordering::SeqCst)
    }
}

/// One call: what was sent, when, and what came back.
struct Record {
    class: Class,
    key: TestKey,
    sent: u64,
    done: u64,
    result: Result<(), Code>,
}

/// Distinct tokens minted (each a cache miss when first seen).
static DISTINCT: AtomicU64 = AtomicU64::new(0);

/// A token of `issuer` signed with `key`. A fresh one has its own `jti` (a cache miss); the
/// others come from a pool of eight per key, scope and second (cache hits).
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

/// The token of call `n` now, its class and the key its header names.
fn token_for(
    issuer: &str,
    n: usize,
    timeline: &Timeline,
    rsa_pool: &[String],
) -> (Class, TestKey, String) {
    let keys: &[TestKey] = if timeline.passed(&timeline.ed_signing) {
        &[TestKey::Ec256, TestKey::Ed25519]
    } else if timeline.passed(&timeline.ec_signing) {
        &[TestKey::Ec256]
    } else {
        &[TestKey::Rsa1]
    };
    let key = keys[(n / 10) % keys.len()];
    let fresh = !n.is_multiple_of(3);
    match n % 10 {
        0..=4 => (
            Class::Valid,
            key,
            mint(issuer, key, "orders:write", 300, fresh, n),
        ),
        5 => (
            Class::Expired,
            key,
            mint(issuer, key, "orders:write", -120, fresh, n),
        ),
        6 => (
            Class::WrongScope,
            key,
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
            (Class::Forged, key, format!("{h}.{p}.{signature}"))
        }
        // A kid the provider never publishes.
        8 => (
            Class::Forged,
            TestKey::Rsa2,
            mint(issuer, TestKey::Rsa2, "orders:write", 300, fresh, n),
        ),
        // The pooled rsa-1 tokens, minted once at the start: valid (and cached) until rsa-1
        // is withdrawn, refused once the validator has seen it go. Not sent in between.
        _ => {
            let pooled = rsa_pool[n % rsa_pool.len()].clone();
            if !timeline.passed(&timeline.retiring_rsa) {
                (Class::Valid, TestKey::Rsa1, pooled)
            } else if timeline.passed(&timeline.rsa_gone) {
                (Class::Forged, TestKey::Rsa1, pooled)
            } else {
                (
                    Class::Valid,
                    key,
                    mint(issuer, key, "orders:write", 300, false, n),
                )
            }
        }
    }
}

/// What is wrong with a call, if anything.
fn judge(record: &Record, timeline: &Timeline) -> Option<String> {
    let Record {
        class,
        key,
        sent,
        done,
        result,
    } = *record;
    // Keys the validator may not hold when the call is checked.
    let unknown_kid = match key {
        TestKey::Rsa2 => true,
        TestKey::Ed25519 => sent <= timeline.at(&timeline.recovered),
        TestKey::Rsa1 => timeline.passed(&timeline.rsa_gone),
        _ => false,
    };
    let overlapped_outage =
        done >= timeline.at(&timeline.down) && sent <= timeline.at(&timeline.recovered);
    let unavailable_allowed = unknown_kid && overlapped_outage;
    let expected = match class {
        Class::Valid => Ok(()),
        Class::Expired | Class::Forged => Err(Code::Unauthenticated),
        Class::WrongScope => Err(Code::PermissionDenied),
    };
    // A valid rsa-1 call still in flight when rsa-1 is withdrawn may be refused.
    let withdrawn_in_flight = key == TestKey::Rsa1
        && class == Class::Valid
        && done >= timeline.at(&timeline.retiring_rsa)
        && result == Err(Code::Unauthenticated);
    if result == expected
        || (result == Err(Code::Unavailable) && unavailable_allowed)
        || withdrawn_in_flight
    {
        return None;
    }
    Some(format!(
        "{class:?} token of {} sent at {sent} ms, answered at {done} ms: {result:?}, want {expected:?}{}",
        key.kid(),
        if unavailable_allowed {
            " or Unavailable"
        } else {
            ""
        }
    ))
}

/// Polls `check` every 20 ms until it holds (at most 20 s).
async fn until(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the timeline did not advance within 20 s");
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
                .max_staleness(Duration::from_secs(60)),
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
    let rsa_pool: Arc<Vec<String>> = Arc::new(
        (0..8)
            .map(|n| {
                let mut c = claims("orders:write");
                c["iss"] = json!(issuer);
                c["exp"] = json!(now() + 600);
                c["jti"] = json!(format!("rsa-pool-{n}"));
                sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1)
            })
            .collect(),
    );

    let timeline = Arc::new(Timeline {
        start: Instant::now(),
        ec_signing: AtomicU64::new(NEVER),
        retiring_rsa: AtomicU64::new(NEVER),
        rsa_gone: AtomicU64::new(NEVER),
        down: AtomicU64::new(NEVER),
        ed_signing: AtomicU64::new(NEVER),
        recovered: AtomicU64::new(NEVER),
        stop: AtomicBool::new(false),
    });
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));

    let mut workers = Vec::new();
    for worker in 0..CONCURRENCY {
        let (timeline, records, issuer, rsa_pool) = (
            timeline.clone(),
            records.clone(),
            issuer.clone(),
            rsa_pool.clone(),
        );
        let mut client = OrdersClient::new(channel.clone());
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while !timeline.stop.load(Ordering::SeqCst) {
                let sent = timeline.ms();
                let (class, key, token) = token_for(&issuer, n, &timeline, &rsa_pool);
                let mut request = Request::new(CreateOrderRequest {
                    item: "widget".into(),
                    quantity: 1,
                });
                let value =
                    MetadataValue::try_from(format!("Bearer {token}")).expect("tokens are ASCII");
                request.metadata_mut().insert("authorization", value);
                let result = client
                    .create_order(request)
                    .await
                    .map(drop)
                    .map_err(|status| status.code());
                let done = timeline.ms();
                records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Record {
                        class,
                        key,
                        sent,
                        done,
                        result,
                    });
                n += CONCURRENCY;
            }
        }));
    }

    // The provider's timeline, driven by what the validator has seen.
    let probe = |key: TestKey| mint(&issuer, key, "orders:write", 300, true, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fetched = idp.jwks_requests();
    idp.set_keys(&[TestKey::Rsa1, TestKey::Ec256]);
    // Published ahead of use: sign with it once a scheduled refresh has fetched it.
    until(async || idp.jwks_requests() > fetched + 1).await;
    timeline.mark(&timeline.ec_signing);
    tokio::time::sleep(Duration::from_millis(600)).await;
    timeline.mark(&timeline.retiring_rsa);
    idp.set_keys(&[TestKey::Ec256]);
    until(async || validator.validate(&probe(TestKey::Rsa1)).await == Err(TokenError::UnknownKey))
        .await;
    timeline.mark(&timeline.rsa_gone);
    tokio::time::sleep(Duration::from_millis(600)).await;
    timeline.mark(&timeline.down);
    idp.down().await;
    idp.set_keys(&[TestKey::Ec256, TestKey::Ed25519]);
    // Published while unreachable; it signs with it once the validator has found the
    // provider down (before that, a kid miss inside the cooldown after the last good fetch is
    // refused with 16 — which is why providers publish keys ahead of use).
    until(async || {
        validator.validate(&probe(TestKey::Ed25519)).await == Err(TokenError::Unavailable)
    })
    .await;
    timeline.mark(&timeline.ed_signing);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    idp.up().await;
    until(async || validator.validate(&probe(TestKey::Ed25519)).await.is_ok()).await;
    timeline.mark(&timeline.recovered);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    timeline.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("worker finished");
    }

    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    let mut outcomes: BTreeMap<(Class, &str, String), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for record in &records {
        let outcome = match record.result {
            Ok(()) => "ok".to_owned(),
            Err(code) => format!("{code:?}"),
        };
        *outcomes
            .entry((record.class, record.key.kid(), outcome))
            .or_default() += 1;
        failures.extend(judge(record, &timeline));
    }
    let table: Vec<String> = outcomes
        .iter()
        .map(|((class, kid, outcome), n)| format!("{class:?} {kid} {outcome}: {n}"))
        .collect();
    println!(
        "{} calls; ec-256 signing from {} ms, rsa-1 gone at {} ms, down {}–recovered {} ms\n{}",
        records.len(),
        timeline.at(&timeline.ec_signing),
        timeline.at(&timeline.rsa_gone),
        timeline.at(&timeline.down),
        timeline.at(&timeline.recovered),
        table.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} calls went wrong:\n{}",
        failures.len(),
        records.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    assert!(
        records.len() >= 2_000,
        "only {} calls were made",
        records.len()
    );

    // The faults really happened, and the oracle saw each kind of call.
    let count = |class: Class, key: TestKey, result: Result<(), Code>, from: u64, to: u64| {
        records
            .iter()
            .filter(|r| r.class == class && r.key == key && r.result == result)
            .filter(|r| r.sent >= from && r.done <= to)
            .count()
    };
    let (down, recovered) = (
        timeline.at(&timeline.down),
        timeline.at(&timeline.recovered),
    );
    for (what, n) in [
        (
            "pooled rsa-1 tokens accepted before the withdrawal",
            count(Class::Valid, TestKey::Rsa1, Ok(()), 0, NEVER),
        ),
        (
            "the same tokens refused after it",
            count(
                Class::Forged,
                TestKey::Rsa1,
                Err(Code::Unauthenticated),
                0,
                NEVER,
            ),
        ),
        (
            "ec-256 tokens accepted while the provider was down",
            count(Class::Valid, TestKey::Ec256, Ok(()), down, recovered),
        ),
        (
            "ed-1 tokens answered UNAVAILABLE during the outage",
            count(
                Class::Valid,
                TestKey::Ed25519,
                Err(Code::Unavailable),
                0,
                NEVER,
            ),
        ),
        (
            "ed-1 tokens accepted after recovery",
            count(Class::Valid, TestKey::Ed25519, Ok(()), recovered, NEVER),
        ),
        (
            "expired tokens refused",
            count(
                Class::Expired,
                TestKey::Ec256,
                Err(Code::Unauthenticated),
                0,
                NEVER,
            ),
        ),
        (
            "wrong-scope tokens refused",
            count(
                Class::WrongScope,
                TestKey::Ec256,
                Err(Code::PermissionDenied),
                0,
                NEVER,
            ),
        ),
        (
            "forged signatures refused",
            count(
                Class::Forged,
                TestKey::Ec256,
                Err(Code::Unauthenticated),
                0,
                NEVER,
            ),
        ),
    ] {
        assert!(n > 0, "no calls seen: {what}");
    }

    // How many distinct tokens the workers minted depends on the machine's speed; top up
    // with fresh valid tokens (bounded), so the cache is always driven well past its bound.
    let mut topped_up = 0;
    while DISTINCT.load(Ordering::Relaxed) <= 8 * CACHE_CAPACITY && topped_up < 8 * CACHE_CAPACITY {
        let token = mint(&issuer, TestKey::Ec256, "orders:write", 300, true, 0);
        assert!(
            validator.validate(&token).await.is_ok(),
            "a fresh valid token"
        );
        topped_up += 1;
    }
    let distinct = DISTINCT.load(Ordering::Relaxed);
    let cached = validator.cached_tokens();
    println!("{topped_up} fresh tokens added after the run");
    println!("{distinct} distinct tokens minted; {cached} cached (capacity {CACHE_CAPACITY})");
    assert!(
        distinct > 8 * CACHE_CAPACITY,
        "too few distinct tokens ({distinct}) to fill the cache"
    );
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
