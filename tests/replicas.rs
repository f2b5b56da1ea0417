//! Several replicas of the orders service sharing one real Redis (`redis-server` on
//! 127.0.0.1, one per test): a `once` method accepts each token once across all of them, a
//! DPoP proof is accepted once across all of them, a revocation made through one is enforced
//! by every other within a second (open streams included), introspection answers are shared,
//! and a Redis that goes away fails closed and comes back without restarting anything.
//!
//! Each replica is what a deployment runs: its own `orders_server`, its own validator (and
//! verified-token cache), its own `RedisStore::connect` to the same Redis and its own
//! `Revocations` following the list every 100 ms. The replicas share one order book, as
//! replicas share a database, so that a refund is an order refunded once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::pb::orders_client::OrdersClient;
use examples::pb::{GetOrderRequest, RefundOrderRequest, WatchOrdersRequest, WhoAmIRequest};
use oauth_grpc::store::{
    RedisConfig, RedisStore, Revocation, Revocations, SharedStore, WhenUnavailable,
};
use oauth_grpc::{
    ClientSecret, ConfigError, Dpop, Introspection, KeySet, OAuthLayer, PolicySet, TokenTypes,
    Validator,
};
use oauth_grpc_tests::dpop::{ALGS, bound_token, jti, proof};
use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider};
use oauth_grpc_tests::issuer::{AUDIENCE, ISSUER, TestKey, claims, header, jwks, now, sign_json};
use oauth_grpc_tests::redis::RedisServer;
use oauth_grpc_tests::{TestServer, challenge, orders_server, validator};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The origin every replica is reached at behind the (imagined) load balancer: a DPoP
/// proof names it, so one proof is valid on every replica, as it is in production.
const ORIGIN: &str = "http://orders.test";
const WHO_AM_I: &str = "/orders.v1.Orders/WhoAmI";

const ALREADY_USED: &str = "the token was already used";
const NO_JTI: &str = "this call needs a token with a jti (the method accepts each token once)";
const REVOKED: &str = "the token was revoked";
const REPLAYED: &str = "the DPoP proof was used before";
const STORE_DOWN: &str = "the shared store is unavailable; retry later";
const REPLAY_CHECK_DOWN: &str = "the DPoP replay check is unavailable; retry later";

/// The issue's bound: a revocation made through one replica is enforced by the others
/// within a second.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The `www-authenticate` of an `invalid_token` refusal.
fn invalid_token(description: &str) -> String {
    format!(r#"Bearer error="invalid_token", error_description="{description}""#)
}

// ---------------------------------------------------------------------------------------
// Outcomes

/// A refusal as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    code: Code,
    message: String,
    challenge: String,
}

/// A call's outcome: passed, or its refusal.
type Outcome = Result<(), Refusal>;

fn outcome<T>(result: Result<tonic::Response<T>, Status>) -> Outcome {
    result.map(drop).map_err(|status| refusal(&status))
}

fn refusal(status: &Status) -> Refusal {
    Refusal {
        code: status.code(),
        message: status.message().to_owned(),
        challenge: challenge(status),
    }
}

/// Whether the layer let the call through: it passed, or the service itself refused it
/// (an order refunded before, an order that does not exist) — anything but the layer's
/// `UNAUTHENTICATED` / `UNAVAILABLE`.
fn admitted(outcome: &Outcome) -> bool {
    match outcome {
        Ok(()) => true,
        Err(refusal) => !matches!(refusal.code, Code::Unauthenticated | Code::Unavailable),
    }
}

/// Refused with `UNAUTHENTICATED` `invalid_token` and `description`.
/// On a replica with DPoP on, the `Bearer` challenge is followed by the `DPoP` one.
fn is_invalid_token(outcome: &Outcome, description: &str) -> bool {
    let bearer = invalid_token(description);
    let with_dpop = format!(r#"{bearer}, DPoP algs="{ALGS}""#);
    matches!(outcome, Err(r) if r.code == Code::Unauthenticated
        && r.message == description
        && (r.challenge == bearer || r.challenge == with_dpop))
}

/// Refused with `UNAVAILABLE`, `message` and no challenge (no credentials would help).
fn is_unavailable(outcome: &Outcome, message: &str) -> bool {
    matches!(outcome, Err(r) if r.code == Code::Unavailable
        && r.message == message
        && r.challenge == "<none>")
}

/// Refused as a replayed DPoP proof.
fn is_replayed_proof(outcome: &Outcome) -> bool {
    matches!(outcome, Err(r) if r.code == Code::Unauthenticated
    && r.challenge.starts_with(&format!(
        r#"DPoP error="invalid_dpop_proof", error_description="{REPLAYED}""#
    )))
}

#[track_caller]
fn assert_ok(outcome: &Outcome, context: &str) {
    assert!(outcome.is_ok(), "{context}: expected OK, got {outcome:?}");
}

#[track_caller]
fn assert_invalid_token(outcome: &Outcome, description: &str, context: &str) {
    assert!(
        is_invalid_token(outcome, description),
        "{context}: expected 16 UNAUTHENTICATED with challenge {:?}, got {outcome:?}",
        invalid_token(description)
    );
}

#[track_caller]
fn assert_unavailable(outcome: &Outcome, message: &str, context: &str) {
    assert!(
        is_unavailable(outcome, message),
        "{context}: expected 14 UNAVAILABLE {message:?} without a challenge, got {outcome:?}"
    );
}

/// Calls `probe` every 20 ms until it gives `Some`, for at most `bound`.
async fn within<T, F, Fut>(bound: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

/// A token of the test issuer for `sub` and client `client` with `scope` and a `jti` of its
/// own (the issuer's default `jti` is the same for every token of one second), edited by
/// `edit`.
fn token_with(sub: &str, client: &str, scope: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut payload = claims(scope);
    payload["sub"] = json!(sub);
    payload["client_id"] = json!(client);
    payload["jti"] = json!(jti());
    edit(&mut payload);
    sign_json(&header(TestKey::Ec256), &payload, TestKey::Ec256)
}

/// A token of alice for refunds (and reading), with its `jti`.
fn once_token() -> (String, String) {
    let mut id = String::new();
    let token = token_with(
        "alice",
        "orders-web",
        "orders:refund orders:read",
        |claims| {
            id = claims["jti"].as_str().unwrap_or_default().to_owned();
        },
    );
    (token, id)
}

/// A token of `sub` for reading, with its `jti`.
fn read_token(sub: &str) -> (String, String) {
    let mut id = String::new();
    let token = token_with(sub, "orders-web", "orders:read", |claims| {
        id = claims["jti"].as_str().unwrap_or_default().to_owned();
    });
    (token, id)
}

/// A good DPoP proof for WhoAmI with `token`, valid on every replica.
fn who_am_i_proof(token: &str) -> String {
    proof(TestKey::Ec256, &format!("{ORIGIN}{WHO_AM_I}"), token)
}

// ---------------------------------------------------------------------------------------
// Calls

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    request
}

fn with_proof<T>(message: T, token: &str, proof: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("DPoP {token}").parse().expect("ASCII token"),
    );
    request
        .metadata_mut()
        .insert("dpop", proof.parse().expect("ASCII proof"));
    request
}

async fn refund(channel: &Channel, token: &str, order: &str) -> Outcome {
    let request = RefundOrderRequest {
        id: order.to_owned(),
    };
    outcome(
        OrdersClient::new(channel.clone())
            .refund_order(bearer(request, token))
            .await,
    )
}

async fn who_am_i(channel: &Channel, token: &str) -> Outcome {
    outcome(
        OrdersClient::new(channel.clone())
            .who_am_i(bearer(WhoAmIRequest {}, token))
            .await,
    )
}

async fn who_am_i_dpop(channel: &Channel, token: &str, proof: &str) -> Outcome {
    outcome(
        OrdersClient::new(channel.clone())
            .who_am_i(with_proof(WhoAmIRequest {}, token, proof))
            .await,
    )
}

async fn get_order(channel: &Channel, token: &str, order: &str) -> Outcome {
    let request = GetOrderRequest {
        id: order.to_owned(),
    };
    outcome(
        OrdersClient::new(channel.clone())
            .get_order(bearer(request, token))
            .await,
    )
}

// ---------------------------------------------------------------------------------------
// Replicas

/// A store of its own on `redis`, as each replica connects. A generous command timeout:
/// the tests run on loaded machines, and an outage is a refused connection, not a slow one.
async fn connect(redis: &RedisServer) -> Arc<dyn SharedStore> {
    let store = RedisStore::connect(
        RedisConfig::new(redis.url())
            .prefix("orders-test:")
            .timeout(Duration::from_millis(500))
            .connect_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_or_else(|error| panic!("RedisStore connects to {}: {error}", redis.url()));
    Arc::new(store)
}

#[derive(Debug, Clone, Copy)]
struct Options {
    dpop: bool,
    when_unavailable: WhenUnavailable,
    /// Shares the store with the layer (one-time marks, proofs); off: only the revocations.
    shared_store: bool,
    poll_every: Duration,
    max_staleness: Duration,
    /// A validator that admits JWTs without the RFC 9068 claims (`jti`, `iat`), as for
    /// providers that issue plain JWTs; off: the strict default.
    plain_jwt: bool,
}

impl Options {
    const PLAIN: Self = Self {
        dpop: false,
        when_unavailable: WhenUnavailable::Refuse,
        shared_store: true,
        poll_every: Duration::from_millis(100),
        max_staleness: Duration::from_secs(1),
        plain_jwt: false,
    };
    const DPOP: Self = Self {
        dpop: true,
        ..Self::PLAIN
    };
}

struct Replica {
    name: String,
    _server: TestServer,
    channel: Channel,
    validator: Validator,
    revocations: Revocations,
}

impl Replica {
    async fn start(
        name: String,
        redis: &RedisServer,
        options: Options,
        orders: examples::Store,
    ) -> Self {
        let store = connect(redis).await;
        let revocations = Revocations::builder(store.clone())
            .poll_every(options.poll_every)
            .max_staleness(options.max_staleness)
            .when_unavailable(options.when_unavailable)
            .start()
            .await
            .expect("the revocation list is read");
        let validator = if options.plain_jwt {
            Validator::builder()
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .keys(KeySet::from_jwks(&jwks()).expect("test JWKS loads"))
                .token_types(TokenTypes::AllowPlainJwt)
                .build()
                .expect("test validator builds")
        } else {
            validator()
        };
        let mut layer = OAuthLayer::new(
            validator.clone(),
            PolicySet::new()
                .service::<examples::OrderBook>()
                .service::<examples::AdminDesk>(),
        )
        .revocations(revocations.clone());
        if options.shared_store {
            layer = layer.shared_store(store);
        }
        if options.dpop {
            layer = layer.dpop(
                Dpop::new()
                    .public_origin(ORIGIN)
                    .expect("the origin is valid"),
            );
        }
        let server = orders_server(layer, orders).await.expect("server starts");
        let channel = server.channel().await.expect("server reachable");
        Self {
            name,
            _server: server,
            channel,
            validator,
            revocations,
        }
    }
}

/// Replicas over one Redis and one order book of `orders` orders (ids `1..=orders`).
struct Cluster {
    replicas: Vec<Replica>,
    orders: examples::Store,
    next_order: AtomicU64,
}

impl Cluster {
    async fn start(redis: &RedisServer, options: &[Options], orders: u32) -> Self {
        let book = examples::Store::default();
        for _ in 0..orders {
            book.place("widget", 1, "alice");
        }
        let mut replicas = Vec::new();
        for (i, options) in options.iter().enumerate() {
            let name = format!("replica {}", i + 1);
            replicas.push(Replica::start(name, redis, *options, book.clone()).await);
        }
        Self {
            replicas,
            orders: book,
            next_order: AtomicU64::new(1),
        }
    }

    /// An order never refunded.
    fn order(&self) -> String {
        let id = self.next_order.fetch_add(1, Ordering::Relaxed);
        assert!(
            id <= self.orders.len() as u64,
            "the test placed too few orders"
        );
        id.to_string()
    }

    /// Waits until every replica knows `count` revocations.
    async fn await_revocations(&self, count: usize) {
        let known = within(2 * PROPAGATION, || async {
            self.replicas
                .iter()
                .all(|replica| replica.revocations.len() >= count)
                .then_some(())
        })
        .await;
        let counts: Vec<_> = self
            .replicas
            .iter()
            .map(|replica| replica.revocations.len())
            .collect();
        assert!(
            known.is_some(),
            "every replica should know {count} revocations, they know {counts:?}"
        );
    }
}

/// Waits up to the propagation bound, from `since`, for `replica` to refuse `token` as
/// revoked (on WhoAmI); fails naming what it answered last.
async fn assert_revoked_within_bound(replica: &Replica, token: &str, since: Instant, what: &str) {
    loop {
        let last = who_am_i(&replica.channel, token).await;
        if is_invalid_token(&last, REVOKED) {
            return;
        }
        if since.elapsed() > PROPAGATION {
            panic!(
                "{}: {what} not refused as revoked within {PROPAGATION:?} of the revocation; last answer {last:?}",
                replica.name
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------
// 1. One-time tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_token_used_on_one_replica_is_refused_on_the_others() {
    let redis = RedisServer::start();
    let cluster = Cluster::start(&redis, &[Options::PLAIN; 3], 20).await;
    let [r1, r2, r3] = &cluster.replicas[..] else {
        unreachable!()
    };

    let (token, _) = once_token();
    assert_ok(
        &refund(&r1.channel, &token, &cluster.order()).await,
        "first use on replica 1",
    );
    for replica in [r2, r3, r1] {
        assert_invalid_token(
            &refund(&replica.channel, &token, &cluster.order()).await,
            ALREADY_USED,
            &format!("the same token again on {}", replica.name),
        );
    }

    // Another token of the same user and client is a use of its own.
    let (fresh, _) = once_token();
    assert_ok(
        &refund(&r2.channel, &fresh, &cluster.order()).await,
        "a fresh token on replica 2",
    );
    assert_invalid_token(
        &refund(&r3.channel, &fresh, &cluster.order()).await,
        ALREADY_USED,
        "the fresh token again on replica 3",
    );

    // Without a `jti` no use can be told from another. The strict validator refuses such a
    // JWT anyway (RFC 9068 requires `jti`); replicas that admit plain JWTs refuse it on the
    // `once` method, for what it lacks there — and admit it elsewhere.
    let without_jti = token_with(
        "alice",
        "orders-web",
        "orders:refund orders:read",
        |claims| {
            claims.as_object_mut().expect("an object").remove("jti");
        },
    );
    assert_invalid_token(
        &refund(&r1.channel, &without_jti, &cluster.order()).await,
        "the token lacks a required claim",
        "a token without jti on a strict replica",
    );
    let plain_jwt = Options {
        plain_jwt: true,
        ..Options::PLAIN
    };
    let lax = Cluster::start(&redis, &[plain_jwt; 2], 0).await;
    for replica in &lax.replicas {
        for _ in 0..2 {
            assert_invalid_token(
                &refund(&replica.channel, &without_jti, "1").await,
                NO_JTI,
                &format!("a token without jti on {} (plain JWTs)", replica.name),
            );
        }
        assert_ok(
            &who_am_i(&replica.channel, &without_jti).await,
            &format!(
                "the token without jti on a method without once, {}",
                replica.name
            ),
        );
    }

    // The mark is for the `once` method only: the spent token reads orders on every
    // replica, again and again.
    for round in 0..3 {
        for replica in &cluster.replicas {
            assert_ok(
                &get_order(&replica.channel, &token, "1").await,
                &format!(
                    "GetOrder round {round} on {} with the spent token",
                    replica.name
                ),
            );
            assert_ok(
                &who_am_i(&replica.channel, &token).await,
                &format!("WhoAmI round {round} on {}", replica.name),
            );
        }
    }
    // Reading spends nothing: a token that read first still refunds, once.
    let (reader_first, _) = once_token();
    assert_ok(
        &get_order(&r1.channel, &reader_first, "1").await,
        "GetOrder before a refund",
    );
    assert_ok(
        &refund(&r3.channel, &reader_first, &cluster.order()).await,
        "a token that only read before refunds",
    );
}

// ---------------------------------------------------------------------------------------
// 2. DPoP proofs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_sent_to_two_replicas_at_once_is_accepted_once() {
    let redis = RedisServer::start();
    let cluster = Cluster::start(&redis, &[Options::DPOP; 3], 0).await;
    let [r1, r2, r3] = &cluster.replicas[..] else {
        unreachable!()
    };
    let token = bound_token("orders:read", TestKey::Ec256);

    // Two replicas, one proof, at the same instant: one wins, many times over.
    for round in 0..20 {
        let proof = who_am_i_proof(&token);
        let (a, b) = tokio::join!(
            who_am_i_dpop(&r1.channel, &token, &proof),
            who_am_i_dpop(&r2.channel, &token, &proof),
        );
        let accepted = [&a, &b].iter().filter(|o| o.is_ok()).count();
        let replayed = [&a, &b].iter().filter(|o| is_replayed_proof(o)).count();
        assert_eq!(
            (accepted, replayed),
            (1, 1),
            "round {round}: one proof on replicas 1 and 2 at once: {a:?} / {b:?}"
        );
        // And it stays spent on the third.
        let late = who_am_i_dpop(&r3.channel, &token, &proof).await;
        assert!(
            is_replayed_proof(&late),
            "round {round}: replica 3 later: {late:?}"
        );
    }
    // Three at once.
    for round in 0..10 {
        let proof = who_am_i_proof(&token);
        let (a, b, c) = tokio::join!(
            who_am_i_dpop(&r1.channel, &token, &proof),
            who_am_i_dpop(&r2.channel, &token, &proof),
            who_am_i_dpop(&r3.channel, &token, &proof),
        );
        let all = [&a, &b, &c];
        assert_eq!(
            all.iter().filter(|o| o.is_ok()).count(),
            1,
            "round {round}: {all:?}"
        );
        assert_eq!(
            all.iter().filter(|o| is_replayed_proof(o)).count(),
            2,
            "round {round}: {all:?}"
        );
    }

    // The control: replicas that do not share the store each accept the proof once — which
    // is the replay across replicas the shared store closes.
    let apart = Options {
        shared_store: false,
        ..Options::DPOP
    };
    let separate = Cluster::start(&redis, &[apart; 2], 0).await;
    let proof = who_am_i_proof(&token);
    let (a, b) = tokio::join!(
        who_am_i_dpop(&separate.replicas[0].channel, &token, &proof),
        who_am_i_dpop(&separate.replicas[1].channel, &token, &proof),
    );
    assert!(
        a.is_ok() && b.is_ok(),
        "without a shared store each replica has its own replay record: {a:?} / {b:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Revocations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_replica_is_enforced_by_the_others_within_a_second() {
    let redis = RedisServer::start();
    let cluster = Cluster::start(&redis, &[Options::PLAIN; 3], 0).await;
    let [r1, r2, r3] = &cluster.replicas[..] else {
        unreachable!()
    };

    // By token: the token is verified and cached on every replica first.
    let (leaked, leaked_jti) = read_token("alice");
    let (bystander, _) = read_token("alice");
    for replica in &cluster.replicas {
        assert_ok(
            &who_am_i(&replica.channel, &leaked).await,
            &format!("warm-up on {}", replica.name),
        );
        assert_ok(
            &who_am_i(&replica.channel, &bystander).await,
            &format!("warm-up on {}", replica.name),
        );
        assert!(
            replica.validator.cached_tokens() >= 2,
            "{}: the tokens are cached",
            replica.name
        );
    }
    r1.revocations
        .revoke(&Revocation::token(&leaked_jti))
        .await
        .expect("the revocation is recorded");
    let revoked_at = Instant::now();
    assert_invalid_token(
        &who_am_i(&r1.channel, &leaked).await,
        REVOKED,
        "replica 1, which revoked it, at once",
    );
    for replica in [r2, r3] {
        assert_revoked_within_bound(replica, &leaked, revoked_at, "the revoked token").await;
    }
    for replica in &cluster.replicas {
        assert_ok(
            &who_am_i(&replica.channel, &bystander).await,
            &format!("another token of the same subject on {}", replica.name),
        );
    }

    // By subject: every token of alice issued until now, not one issued afterwards.
    let (before_carol, _) = read_token("carol");
    for replica in &cluster.replicas {
        assert_ok(&who_am_i(&replica.channel, &bystander).await, "warm-up");
        assert_ok(&who_am_i(&replica.channel, &before_carol).await, "warm-up");
    }
    let revocation = Revocation::subject("alice");
    r1.revocations
        .revoke(&revocation)
        .await
        .expect("the revocation is recorded");
    let revoked_at = Instant::now();
    // `iat` is in whole seconds and the revocation covers its own second: a token issued
    // in the next second is one the user got by signing in again.
    let signed_in_again = token_with("alice", "orders-web", "orders:read", |claims| {
        claims["iat"] = json!(now() + 1);
    });
    assert_invalid_token(
        &who_am_i(&r1.channel, &bystander).await,
        REVOKED,
        "alice's earlier token on replica 1 at once",
    );
    for replica in [r2, r3] {
        assert_revoked_within_bound(replica, &bystander, revoked_at, "alice's earlier token").await;
    }
    for replica in &cluster.replicas {
        assert_ok(
            &who_am_i(&replica.channel, &signed_in_again).await,
            &format!(
                "alice's token issued after the revocation on {}",
                replica.name
            ),
        );
        assert_ok(
            &who_am_i(&replica.channel, &before_carol).await,
            &format!("another subject on {}", replica.name),
        );
    }
    // A token of alice without `iat` cannot show it came later: refused by a replica that
    // admits plain JWTs (the strict ones refuse it for lacking `iat`) — one started after
    // the revocation, which reads the list when it starts.
    let no_iat = token_with("alice", "orders-web", "orders:read", |claims| {
        claims.as_object_mut().expect("an object").remove("iat");
    });
    let late = Cluster::start(
        &redis,
        &[Options {
            plain_jwt: true,
            ..Options::PLAIN
        }],
        0,
    )
    .await;
    assert_invalid_token(
        &who_am_i(&late.replicas[0].channel, &no_iat).await,
        REVOKED,
        "alice's token without iat on a replica started after the revocation",
    );
    assert_ok(
        &who_am_i(&late.replicas[0].channel, &before_carol).await,
        "another subject on the late replica",
    );

    // By client, briefly: the same through replica 3.
    let batch = token_with("dave", "reporting-batch", "orders:read", |_| {});
    let other_client = token_with("dave", "orders-web", "orders:read", |_| {});
    for replica in &cluster.replicas {
        assert_ok(&who_am_i(&replica.channel, &batch).await, "warm-up");
    }
    r3.revocations
        .revoke(&Revocation::client("reporting-batch"))
        .await
        .expect("the revocation is recorded");
    let revoked_at = Instant::now();
    let batch_again = token_with("dave", "reporting-batch", "orders:read", |claims| {
        claims["iat"] = json!(now() + 1);
    });
    assert_invalid_token(
        &who_am_i(&r3.channel, &batch).await,
        REVOKED,
        "the client's token on replica 3 at once",
    );
    for replica in [r1, r2] {
        assert_revoked_within_bound(replica, &batch, revoked_at, "the client's token").await;
    }
    for replica in &cluster.replicas {
        assert_ok(
            &who_am_i(&replica.channel, &other_client).await,
            &format!(
                "the same subject through another client on {}",
                replica.name
            ),
        );
        assert_ok(
            &who_am_i(&replica.channel, &batch_again).await,
            &format!("the client's token issued afterwards on {}", replica.name),
        );
    }
    // Every replica knows the three revocations (the stored list, not a local copy).
    cluster.await_revocations(3).await;
}

// ---------------------------------------------------------------------------------------
// 4. Streams

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_subject_ends_its_open_streams() {
    let redis = RedisServer::start();
    let cluster = Cluster::start(&redis, &[Options::PLAIN; 3], 1).await;
    let [r1, r2, _] = &cluster.replicas[..] else {
        unreachable!()
    };
    let follow = WatchOrdersRequest {
        limit: 0,
        follow: true,
    };
    let (alice, _) = read_token("alice");
    let (bob, _) = read_token("bob");
    let mut client = OrdersClient::new(r2.channel.clone());
    let mut alice_stream = client
        .watch_orders(bearer(follow, &alice))
        .await
        .expect("alice's stream opens on replica 2")
        .into_inner();
    let mut bob_stream = client
        .watch_orders(bearer(follow, &bob))
        .await
        .expect("bob's stream opens on replica 2")
        .into_inner();
    // Both are running: the current order reached them.
    for (who, stream) in [("alice", &mut alice_stream), ("bob", &mut bob_stream)] {
        let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap_or_else(|_| panic!("{who}'s stream sends the current order"));
        assert!(
            matches!(&first, Ok(Some(order)) if order.id == "1"),
            "{who}: {first:?}"
        );
    }

    r1.revocations
        .revoke(&Revocation::subject("alice"))
        .await
        .expect("the revocation is recorded");
    let revoked_at = Instant::now();
    let ended = loop {
        let remaining = PROPAGATION.saturating_sub(revoked_at.elapsed());
        match tokio::time::timeout(remaining, alice_stream.message()).await {
            Err(_) => panic!(
                "alice's stream on replica 2 still open {PROPAGATION:?} after the revocation on replica 1"
            ),
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("alice's stream ended without a status"),
            Ok(Err(status)) => break status,
        }
    };
    let ended = Err(refusal(&ended));
    assert_invalid_token(&ended, REVOKED, "alice's stream");

    // Bob's stream on the same replica goes on: it hears of a new order.
    cluster.orders.place("gadget", 3, "bob");
    let next = tokio::time::timeout(Duration::from_secs(5), bob_stream.message()).await;
    assert!(
        matches!(&next, Ok(Ok(Some(order))) if order.item == "gadget"),
        "bob's stream after alice's revocation: {next:?}"
    );
    // And a new stream of alice is refused when it opens.
    let reopened = client.watch_orders(bearer(follow, &alice)).await;
    assert_invalid_token(&outcome(reopened), REVOKED, "alice's stream reopened");
}

// ---------------------------------------------------------------------------------------
// 5. Many callers

/// A small xorshift: "random" replicas, the same on every run.
struct Dice(u64);

impl Dice {
    fn replica(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 3) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// A fresh token's only use.
    Ok,
    /// A token used before the load: refused as used.
    AlreadyUsed,
    /// One of three concurrent uses of a fresh token: exactly one of them passes.
    OneOfThree(usize),
    /// Revoked before the load: refused as revoked.
    Revoked,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_callers_across_replicas_are_judged_exactly() {
    let redis = RedisServer::start();
    let cluster = Arc::new(Cluster::start(&redis, &[Options::PLAIN; 3], 100).await);
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    // (replica, token, order, expectation)
    let mut calls: Vec<(usize, String, String, Expect)> = Vec::new();

    // 24 fresh tokens, each used once.
    for i in 0..24 {
        let (token, _) = once_token();
        calls.push((i % 3, token, cluster.order(), Expect::Ok));
    }
    // 8 tokens used once before the load, then twice more during it on random replicas.
    for i in 0..8 {
        let (token, _) = once_token();
        let first = &cluster.replicas[i % 3];
        assert_ok(
            &refund(&first.channel, &token, &cluster.order()).await,
            "the use before the load",
        );
        for _ in 0..2 {
            calls.push((
                dice.replica(),
                token.clone(),
                cluster.order(),
                Expect::AlreadyUsed,
            ));
        }
    }
    // 4 fresh tokens each sent to the three replicas at once.
    for group in 0..4 {
        let (token, _) = once_token();
        for replica in 0..3 {
            calls.push((
                replica,
                token.clone(),
                cluster.order(),
                Expect::OneOfThree(group),
            ));
        }
    }
    // 12 tokens revoked before the load, through the three replicas in turn, never used.
    for i in 0..12 {
        let (token, id) = once_token();
        cluster.replicas[i % 3]
            .revocations
            .revoke(&Revocation::token(id))
            .await
            .expect("the revocation is recorded");
        calls.push((dice.replica(), token, cluster.order(), Expect::Revoked));
    }
    assert_eq!(calls.len(), 64);
    cluster.await_revocations(12).await;

    let start = Arc::new(tokio::sync::Barrier::new(calls.len()));
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|(replica, token, order, expect)| {
            let (cluster, start) = (cluster.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let channel = &cluster.replicas[replica].channel;
                (replica, expect, refund(channel, &token, &order).await)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("a caller task"));
    }

    let mut wrong = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut group_accepted = [0usize; 4];
    for (replica, expect, outcome) in &results {
        let label = match outcome {
            Ok(()) => "ok",
            o if is_invalid_token(o, ALREADY_USED) => "already used",
            o if is_invalid_token(o, REVOKED) => "revoked",
            _ => "other",
        };
        *counts.entry(label).or_default() += 1;
        let right = match expect {
            Expect::Ok => outcome.is_ok(),
            Expect::AlreadyUsed => label == "already used",
            Expect::Revoked => label == "revoked",
            Expect::OneOfThree(group) => {
                if outcome.is_ok() {
                    group_accepted[*group] += 1;
                }
                outcome.is_ok() || label == "already used"
            }
        };
        if !right {
            wrong.push(format!(
                "replica {}: expected {expect:?}, got {outcome:?}",
                replica + 1
            ));
        }
    }
    for (group, accepted) in group_accepted.iter().enumerate() {
        if *accepted != 1 {
            wrong.push(format!(
                "token {group} sent to three replicas at once was accepted {accepted} times"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 64 calls misjudged (outcomes {counts:?}):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        counts,
        BTreeMap::from([("already used", 16 + 8), ("ok", 24 + 4), ("revoked", 12)]),
    );
}

// ---------------------------------------------------------------------------------------
// 6. Redis goes away

/// What the callers running through the outage saw.
#[derive(Debug, Default)]
struct Watch {
    /// Calls admitted that must not be.
    violations: Vec<String>,
    /// Outcomes by kind.
    seen: BTreeMap<String, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load_fails_closed_and_recovers() {
    let mut redis = RedisServer::start();
    let admit_last_known = Options {
        when_unavailable: WhenUnavailable::AdmitLastKnown,
        ..Options::DPOP
    };
    let cluster = Arc::new(
        Cluster::start(
            &redis,
            &[Options::DPOP, Options::DPOP, admit_last_known],
            100,
        )
        .await,
    );
    let [r1, r2, r3] = &cluster.replicas[..] else {
        unreachable!()
    };
    let bound = bound_token("orders:read", TestKey::Ec256);
    let (plain, _) = read_token("bob");

    // Before the outage: a token spent on replica 1, a token revoked through replica 1.
    let (spent, _) = once_token();
    assert_ok(
        &refund(&r1.channel, &spent, &cluster.order()).await,
        "the use before the outage",
    );
    let (revoked, revoked_jti) = read_token("erin");
    r1.revocations
        .revoke(&Revocation::token(revoked_jti))
        .await
        .expect("the revocation is recorded");
    cluster.await_revocations(1).await;
    for replica in &cluster.replicas {
        assert_invalid_token(
            &who_am_i(&replica.channel, &revoked).await,
            REVOKED,
            &format!("{} before the outage", replica.name),
        );
        assert_ok(
            &who_am_i(&replica.channel, &plain).await,
            "before the outage",
        );
        assert_ok(
            &who_am_i_dpop(&replica.channel, &bound, &who_am_i_proof(&bound)).await,
            "a DPoP call before the outage",
        );
    }

    // Callers that keep replaying the spent token and the revoked one on every replica.
    let stop = Arc::new(AtomicBool::new(false));
    let watch = Arc::new(Mutex::new(Watch::default()));
    let callers: Vec<_> = (0..3)
        .map(|caller| {
            let (cluster, stop, watch) = (cluster.clone(), stop.clone(), watch.clone());
            let (spent, revoked) = (spent.clone(), revoked.clone());
            tokio::spawn(async move {
                let mut round = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let replica = &cluster.replicas[(caller + round) % 3];
                    round += 1;
                    // An order that does not exist: were the call admitted, the service
                    // would answer NOT_FOUND, which `admitted` counts.
                    let replayed = refund(&replica.channel, &spent, "999999").await;
                    let replayed_revoked = who_am_i(&replica.channel, &revoked).await;
                    {
                        let mut watch = watch.lock().expect("not poisoned");
                        for (what, outcome) in [
                            ("spent token", &replayed),
                            ("revoked token", &replayed_revoked),
                        ] {
                            let kind = match outcome {
                                Ok(()) => "OK".to_owned(),
                                Err(r) => format!("{:?} {}", r.code, r.message),
                            };
                            *watch.seen.entry(format!("{what}: {kind}")).or_default() += 1;
                            if admitted(outcome) {
                                watch.violations.push(format!(
                                    "{what} admitted by {}: {outcome:?}",
                                    replica.name
                                ));
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    tokio::task::block_in_place(|| redis.stop());
    let stopped_at = Instant::now();

    // Calls that need the store are refused at once, on every replica, with UNAVAILABLE.
    for replica in &cluster.replicas {
        let (fresh, _) = once_token();
        let refused = refund(&replica.channel, &fresh, &cluster.order()).await;
        assert_unavailable(
            &refused,
            STORE_DOWN,
            &format!("{}: a fresh once-token during the outage", replica.name),
        );
        let refused = refund(&replica.channel, &spent, &cluster.order()).await;
        assert_unavailable(
            &refused,
            STORE_DOWN,
            &format!("{}: the spent token during the outage", replica.name),
        );
        let dpop = who_am_i_dpop(&replica.channel, &bound, &who_am_i_proof(&bound)).await;
        // Before the revocation list goes stale the proof's check speaks; after, the list's.
        assert!(
            is_unavailable(&dpop, REPLAY_CHECK_DOWN) || is_unavailable(&dpop, STORE_DOWN),
            "{}: a DPoP call during the outage: {dpop:?}",
            replica.name
        );
        assert!(
            replica
                .revocations
                .revoke(&Revocation::subject("nobody"))
                .await
                .is_err(),
            "{}: a revocation cannot be recorded during the outage",
            replica.name
        );
    }

    // Plain calls under `Refuse`: admitted while the list is fresh (up to its 1 s
    // staleness), then refused until the store answers again.
    for replica in [r1, r2] {
        let refused = within(Duration::from_secs(5), || async {
            let answer = who_am_i(&replica.channel, &plain).await;
            answer.is_err().then_some(answer)
        })
        .await;
        let refused = refused.unwrap_or_else(|| {
            panic!(
                "{}: plain calls still admitted 5 s into the outage",
                replica.name
            )
        });
        assert_unavailable(
            &refused,
            STORE_DOWN,
            &format!("{}: a plain call once the list is stale", replica.name),
        );
        // Stale means a second without a successful read, and the last one was at most a
        // poll interval (100 ms, more on a loaded machine) before the stop.
        let refused_after = stopped_at.elapsed();
        assert!(
            refused_after >= Duration::from_millis(500),
            "{}: refused {refused_after:?} into the outage, before the list could be stale",
            replica.name,
        );
        eprintln!(
            "{}: plain calls refused {refused_after:?} into the outage",
            replica.name
        );
        assert!(!replica.revocations.is_current(), "{}", replica.name);
        for _ in 0..3 {
            assert_unavailable(
                &who_am_i(&replica.channel, &plain).await,
                STORE_DOWN,
                &format!("{}: plain calls stay refused", replica.name),
            );
        }
    }
    // Under `AdmitLastKnown`: plain calls go on with the list as last read, which still
    // refuses the token revoked before the outage; what needs the store is still refused.
    // Its list goes stale as the others' did (its last read may have come a poll after
    // theirs).
    let stale = within(Duration::from_secs(3), || async {
        (!r3.revocations.is_current()).then_some(())
    })
    .await;
    assert!(stale.is_some(), "replica 3's list goes stale too");
    assert_ok(
        &who_am_i(&r3.channel, &plain).await,
        "replica 3 (AdmitLastKnown) during the outage",
    );
    assert_invalid_token(
        &who_am_i(&r3.channel, &revoked).await,
        REVOKED,
        "replica 3 (AdmitLastKnown): the token revoked before the outage",
    );
    assert_unavailable(
        &who_am_i_dpop(&r3.channel, &bound, &who_am_i_proof(&bound)).await,
        REPLAY_CHECK_DOWN,
        "replica 3 (AdmitLastKnown): a DPoP call during the outage",
    );
    let (fresh, _) = once_token();
    assert_unavailable(
        &refund(&r3.channel, &fresh, &cluster.order()).await,
        STORE_DOWN,
        "replica 3 (AdmitLastKnown): a once-token during the outage",
    );

    // The callers saw nothing admitted that should not be, through the whole outage.
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await.expect("a caller task");
    }
    let watch = std::mem::take(&mut *watch.lock().expect("not poisoned"));
    assert!(
        watch.violations.is_empty(),
        "admitted during the outage: {:#?}\n(outcomes {:#?})",
        watch.violations,
        watch.seen
    );
    assert!(
        watch.seen.keys().any(|kind| kind.contains("Unavailable")),
        "the callers ran through the outage: {:#?}",
        watch.seen
    );

    eprintln!("callers through the outage: {:?}", watch.seen);

    // Redis comes back, empty: it runs without persistence, so the one-time marks and the
    // revocation list went with its data (a deployment that must keep them across a
    // restart runs Redis with persistence or a replica). What holds regardless — and is
    // asserted — is that the replicas recover by themselves, and that what is used after
    // the recovery is used once.
    tokio::task::block_in_place(|| redis.restart());
    let restarted_at = Instant::now();
    for replica in &cluster.replicas {
        let recovered = within(Duration::from_secs(10), || async {
            let (fresh, _) = once_token();
            let once = refund(&replica.channel, &fresh, &cluster.order()).await;
            let plain = who_am_i(&replica.channel, &plain).await;
            let dpop = who_am_i_dpop(&replica.channel, &bound, &who_am_i_proof(&bound)).await;
            (once.is_ok() && plain.is_ok() && dpop.is_ok()).then_some(())
        })
        .await;
        assert!(
            recovered.is_some(),
            "{}: calls still refused 10 s after Redis came back",
            replica.name
        );
    }
    let recovery = restarted_at.elapsed();
    let (after, _) = once_token();
    assert_ok(
        &refund(&r2.channel, &after, &cluster.order()).await,
        "a token used after the recovery",
    );
    for replica in [r1, r3, r2] {
        assert_invalid_token(
            &refund(&replica.channel, &after, &cluster.order()).await,
            ALREADY_USED,
            &format!("{}: the token used after the recovery, again", replica.name),
        );
    }
    let proof = who_am_i_proof(&bound);
    assert_ok(
        &who_am_i_dpop(&r3.channel, &bound, &proof).await,
        "a proof after the recovery",
    );
    let replayed = who_am_i_dpop(&r1.channel, &bound, &proof).await;
    assert!(
        is_replayed_proof(&replayed),
        "the proof again on replica 1: {replayed:?}"
    );
    // The lists are current again: at once where `Refuse` admitted plain calls, within a
    // poll or two for replica 3, whose plain calls never depended on it.
    for replica in &cluster.replicas {
        let current = within(Duration::from_secs(5), || async {
            replica.revocations.is_current().then_some(())
        })
        .await;
        assert!(
            current.is_some(),
            "{}: the list is current again",
            replica.name
        );
    }
    eprintln!("recovered {recovery:?} after the restart");
}

// ---------------------------------------------------------------------------------------
// 7. Start-up errors

/// A file of its own under the temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(content: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "oauth-grpc-replicas-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, content).expect("the temporary file is written");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn a_wrong_redis_password_is_a_startup_error_naming_the_fix() {
    let redis = RedisServer::with_password("s3cret");
    let config = || RedisConfig::new(redis.url()).connect_timeout(Duration::from_secs(2));

    let wrong = TempFile::new("not-the-password\n");
    let error = RedisStore::connect(config().password_file(&wrong.0))
        .await
        .expect_err("a wrong password is refused");
    assert!(matches!(error, ConfigError::StoreAuth(_)), "{error:?}");
    let shown = error.to_string();
    assert!(shown.contains("--redis-password-file"), "{shown}");
    assert!(
        !shown.contains("not-the-password"),
        "the password is not shown: {shown}"
    );

    let error = RedisStore::connect(config())
        .await
        .expect_err("no password is refused");
    assert!(matches!(error, ConfigError::StoreAuth(_)), "{error:?}");
    assert!(
        error.to_string().contains("--redis-password-file"),
        "{error}"
    );

    // The right one, with the file's final newline: a round trip.
    let right = TempFile::new("s3cret\n");
    let store = RedisStore::connect(config().password_file(&right.0))
        .await
        .unwrap_or_else(|error| panic!("the right password is accepted: {error}"));
    store
        .set("probe", b"value", Duration::from_secs(30))
        .await
        .expect("SET");
    assert_eq!(
        store.get("probe").await.expect("GET"),
        Some(b"value".to_vec())
    );
    assert!(
        store
            .insert_new("once:probe", b"1", Duration::from_secs(30))
            .await
            .expect("SET NX")
    );
    assert!(
        !store
            .insert_new("once:probe", b"1", Duration::from_secs(30))
            .await
            .expect("SET NX")
    );

    // A password in the URL is refused before anything is sent, and not repeated.
    let port = redis.port();
    for url in [
        format!("redis://:s3cret@127.0.0.1:{port}/"),
        format!("redis://default:s3cret@127.0.0.1:{port}/"),
    ] {
        let error = RedisStore::connect(RedisConfig::new(&url))
            .await
            .expect_err("a password in the URL is refused");
        assert!(
            matches!(error, ConfigError::StoreUrl(_)),
            "{url}: {error:?}"
        );
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
    let error = RedisStore::connect(RedisConfig::new("http://127.0.0.1:6379/"))
        .await
        .expect_err("not a Redis URL");
    assert!(matches!(error, ConfigError::StoreUrl(_)), "{error:?}");

    // An empty password file, and one that is not there.
    let empty = TempFile::new("");
    let error = RedisStore::connect(config().password_file(&empty.0))
        .await
        .expect_err("an empty password file");
    assert!(
        matches!(error, ConfigError::PasswordFile { .. }),
        "{error:?}"
    );
    let missing = std::env::temp_dir().join("oauth-grpc-replicas-no-such-file");
    let error = RedisStore::connect(config().password_file(&missing))
        .await
        .expect_err("a missing password file");
    assert!(
        matches!(error, ConfigError::PasswordFile { .. }),
        "{error:?}"
    );

    // Nothing listening: unreachable, not an authentication error.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let free = unused.local_addr().expect("its address").port();
    drop(unused);
    let error = RedisStore::connect(
        RedisConfig::new(format!("redis://127.0.0.1:{free}/"))
            .connect_timeout(Duration::from_millis(500)),
    )
    .await
    .expect_err("nothing listens there");
    assert!(matches!(error, ConfigError::Store(_)), "{error:?}");
}

// ---------------------------------------------------------------------------------------
// 8. Shared introspection

fn introspecting(idp: &IdentityProvider, store: Arc<dyn SharedStore>) -> Validator {
    Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(
            Introspection::new(
                idp.introspection_url(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .timeout(Duration::from_secs(2))
            .shared_cache(store),
        )
        .build()
        .expect("valid configuration")
}

fn active(idp: &IdentityProvider, jti: &str) -> Value {
    json!({
        "active": true,
        "scope": "orders:read",
        "client_id": "orders-web",
        "sub": "bob",
        "aud": AUDIENCE,
        "iss": idp.issuer(),
        "exp": now() + 300,
        "jti": jti,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_replicas_share_one_introspection_request_per_token() {
    let mut redis = RedisServer::start();
    let idp = IdentityProvider::start(&[]).await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(introspecting(&idp, connect(&redis).await));
    }
    for token in ["opaque-one", "opaque-two", "opaque-three"] {
        idp.set_introspection(token, active(&idp, token));
    }

    // One after the other: the first asks, the others read its answer from the store.
    let before = idp.introspection_requests();
    for (i, replica) in replicas.iter().enumerate() {
        let principal = replica
            .validate("opaque-one")
            .await
            .unwrap_or_else(|error| panic!("replica {}: {error}", i + 1));
        assert_eq!(principal.subject(), Some("bob"));
        assert_eq!(principal.token_id(), Some("opaque-one"));
    }
    assert_eq!(
        idp.introspection_requests() - before,
        1,
        "three replicas one after the other"
    );

    // All at once: one takes the token's lock and asks, the others wait for its answer.
    let before = idp.introspection_requests();
    let (a, b, c) = tokio::join!(
        replicas[0].validate("opaque-two"),
        replicas[1].validate("opaque-two"),
        replicas[2].validate("opaque-two"),
    );
    for (i, result) in [a, b, c].into_iter().enumerate() {
        let principal = result.unwrap_or_else(|error| panic!("replica {}: {error}", i + 1));
        assert_eq!(principal.token_id(), Some("opaque-two"));
    }
    assert_eq!(
        idp.introspection_requests() - before,
        1,
        "three replicas at once"
    );

    // Redis down: each replica asks the provider itself; nothing is refused for it.
    tokio::task::block_in_place(|| redis.stop());
    let before = idp.introspection_requests();
    for (i, replica) in replicas.iter().enumerate() {
        let principal = replica
            .validate("opaque-three")
            .await
            .unwrap_or_else(|error| panic!("replica {} with Redis down: {error}", i + 1));
        assert_eq!(principal.token_id(), Some("opaque-three"));
        // What a replica has cached it still answers without asking.
        replica
            .validate("opaque-one")
            .await
            .unwrap_or_else(|error| panic!("replica {} from its own cache: {error}", i + 1));
    }
    assert_eq!(
        idp.introspection_requests() - before,
        3,
        "with Redis down each replica asks once"
    );
}

// ---------------------------------------------------------------------------------------
// 9. A Redis that lost its data

/// A Redis restarted without its data starts the revocation list's version again at 0. A
/// replica that did not read the list between the restart and the next revocations — its
/// reads failed during the outage, or its poll interval is longer than the gap — sees the
/// version it had read before the outage again, takes the list for unchanged, and never
/// enforces the new revocations (until the version moves past that number).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_learns_revocations_made_after_redis_restarted_empty() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::start(&redis, &[Options::PLAIN], 0).await;
    let r1 = &cluster.replicas[0];
    let (before, before_jti) = read_token("frank");
    r1.revocations
        .revoke(&Revocation::token(before_jti))
        .await
        .expect("the revocation is recorded");
    // A replica that reads the list (version 1) when it starts, then every 3 s.
    let slow = Options {
        poll_every: Duration::from_secs(3),
        max_staleness: Duration::from_secs(6),
        ..Options::PLAIN
    };
    let late = Cluster::start(&redis, &[slow], 0).await;
    let r2 = &late.replicas[0];
    let started = Instant::now();
    assert_invalid_token(
        &who_am_i(&r2.channel, &before).await,
        REVOKED,
        "before the restart",
    );

    // Redis restarts empty, and a token is revoked through replica 1 as soon as it can:
    // the list's version is 1 again.
    tokio::task::block_in_place(|| redis.restart());
    let (after, after_jti) = read_token("grace");
    let recorded = within(Duration::from_secs(2), || async {
        r1.revocations
            .revoke(&Revocation::token(&after_jti))
            .await
            .ok()
    })
    .await;
    assert!(
        recorded.is_some(),
        "the revocation is recorded after the restart"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "inconclusive: replica 2 may have read the list between the restart and the revocation"
    );
    assert_invalid_token(&who_am_i(&r1.channel, &after).await, REVOKED, "replica 1");

    // Replica 2 reads the list at 3 s and 6 s: it must know the new revocation by then.
    let known = within(Duration::from_secs(7), || async {
        is_invalid_token(&who_am_i(&r2.channel, &after).await, REVOKED).then_some(())
    })
    .await;
    assert!(
        known.is_some(),
        "replica 2 still admits the token revoked after the restart, {:?} after it started (it knows {} revocation(s), current: {})",
        started.elapsed(),
        r2.revocations.len(),
        r2.revocations.is_current()
    );
}
