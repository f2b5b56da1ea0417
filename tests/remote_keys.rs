//! Keys from a real HTTP identity-provider double: discovery, rotation, outage and recovery,
//! single-flight fetching, and the unknown-kid cooldown.

use std::time::Duration;

use examples::Store;
use examples::pb::WhoAmIRequest;
use examples::pb::orders_client::OrdersClient;
use oauth_grpc::KeySource;
use oauth_grpc::{ConfigError, OAuthLayer, PolicySet, TokenError, Validator};
use oauth_grpc_tests::idp::{IdentityProvider, Mode};
use oauth_grpc_tests::issuer::{self, AUDIENCE, TestKey, claims, header, sign_json};
use oauth_grpc_tests::orders_server;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

/// A token the issuer `iss` signs with `key`, unique per call (so no cache hit hides a check).
fn token_from(iss: &str, key: TestKey) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut c = claims("orders:read");
    c["iss"] = json!(iss);
    c["jti"] = json!(format!("jti-{}", NEXT.fetch_add(1, Ordering::SeqCst)));
    sign_json(&header(key), &c, key)
}

fn source(idp: &IdentityProvider) -> KeySource {
    KeySource::discover(idp.issuer())
        .refresh_between(Duration::from_millis(200), Duration::from_millis(300))
        .unknown_kid_cooldown(Duration::from_millis(200))
        .retry_after(Duration::from_millis(50))
}

async fn validator(idp: &IdentityProvider, source: KeySource) -> Validator {
    Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(source)
        .start()
        .await
        .expect("keys load at start-up")
}

#[tokio::test]
async fn rotation_adds_and_removes_keys() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = validator(&idp, source(&idp)).await;
    let iss = idp.issuer();
    assert_eq!(idp.discovery_requests(), 1);
    assert_eq!(idp.jwks_requests(), 1);
    validator
        .validate(&token_from(&iss, TestKey::Rsa1))
        .await
        .expect("rsa-1 is published");

    // Not published yet: refused, after one refetch.
    assert_eq!(
        validator
            .validate(&token_from(&iss, TestKey::Ec256))
            .await
            .unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(idp.jwks_requests(), 2, "one refetch for the unknown kid");

    // The provider adds ec-256: the kid miss refetches (after the cooldown) and accepts it.
    idp.set_keys(&[TestKey::Rsa1, TestKey::Ec256]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    validator
        .validate(&token_from(&iss, TestKey::Ec256))
        .await
        .expect("new key after refetch");

    // rsa-1 is withdrawn: after the next refresh its tokens, cached ones included, fail.
    let cached = token_from(&iss, TestKey::Rsa1);
    validator.validate(&cached).await.expect("still published");
    idp.set_keys(&[TestKey::Ec256]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        validator.validate(&cached).await.unwrap_err(),
        TokenError::UnknownKey
    );
    assert_eq!(
        validator
            .validate(&token_from(&iss, TestKey::Rsa1))
            .await
            .unwrap_err(),
        TokenError::UnknownKey
    );
    validator
        .validate(&token_from(&iss, TestKey::Ec256))
        .await
        .expect("ec-256 stays");
}

/// Emptying the JWKS is the emergency "trust nothing" move: a well-formed document without a
/// usable key replaces the key set — cached tokens included — and is not an outage (16, not
/// 14). Publishing keys again brings them back.
#[tokio::test]
async fn an_emptied_jwks_withdraws_every_key() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = validator(&idp, source(&idp)).await;
    let iss = idp.issuer();
    let cached = token_from(&iss, TestKey::Rsa1);
    validator.validate(&cached).await.expect("published");
    assert_eq!(validator.cached_tokens(), 1);

    idp.set_keys(&[]);
    let fetched = idp.jwks_requests();
    // Past the refresh interval (200-300 ms): the empty document has been installed.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(idp.jwks_requests() > fetched, "the empty JWKS was fetched");
    assert_eq!(
        validator.validate(&cached).await.unwrap_err(),
        TokenError::UnknownKey,
        "the cached token is refused with its key"
    );
    assert_eq!(
        validator
            .validate(&token_from(&iss, TestKey::Rsa1))
            .await
            .unwrap_err(),
        TokenError::UnknownKey,
        "a fresh token of the withdrawn key is refused, and the provider is not called down"
    );

    // Published again: trusted again.
    idp.set_keys(&[TestKey::Rsa1]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    validator
        .validate(&token_from(&iss, TestKey::Rsa1))
        .await
        .expect("republished");
}

#[tokio::test]
async fn outage_keeps_last_keys_then_unavailable_then_recovers() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = validator(&idp, source(&idp).max_staleness(Duration::from_millis(800))).await;
    let iss = idp.issuer();

    // Serve the orders service with this validator, to see the gRPC codes.
    let layer = OAuthLayer::new(
        validator.clone(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    let call = |token: String| {
        let mut request = Request::new(WhoAmIRequest {});
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
        request.metadata_mut().insert("authorization", value);
        request
    };

    idp.down().await;
    // Within the staleness window the last good keys still validate new tokens.
    client
        .who_am_i(call(token_from(&iss, TestKey::Rsa1)))
        .await
        .expect("last good keys");
    validator
        .validate(&token_from(&iss, TestKey::Rsa1))
        .await
        .expect("last good keys");

    // Past it: UNAVAILABLE, not UNAUTHENTICATED, so clients retry.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        validator
            .validate(&token_from(&iss, TestKey::Rsa1))
            .await
            .unwrap_err(),
        TokenError::Unavailable
    );
    let status = client
        .who_am_i(call(token_from(&iss, TestKey::Rsa1)))
        .await
        .expect_err("keys too stale");
    assert_eq!(status.code(), Code::Unavailable);

    // The provider comes back: recovery without a restart.
    idp.up().await;
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if client
            .who_am_i(call(token_from(&iss, TestKey::Rsa1)))
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "calls succeed again once the provider is back");
    server.stop().await;
}

#[tokio::test]
async fn failing_provider_at_start_up_is_an_error_or_a_wait() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    idp.set_mode(Mode::Failing);
    let err = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(source(&idp).startup(Duration::from_millis(500), true))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, ConfigError::Startup(_)), "{err}");

    // Told to go on, it starts, answers UNAVAILABLE, and works once the provider does.
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(source(&idp).startup(Duration::from_millis(200), false))
        .start()
        .await
        .expect("starts without keys");
    let iss = idp.issuer();
    assert_eq!(
        validator
            .validate(&token_from(&iss, TestKey::Rsa1))
            .await
            .unwrap_err(),
        TokenError::Unavailable
    );
    idp.set_mode(Mode::Normal);
    tokio::time::sleep(Duration::from_millis(150)).await;
    validator
        .validate(&token_from(&iss, TestKey::Rsa1))
        .await
        .expect("keys arrived");
}

#[tokio::test]
async fn discovery_naming_another_issuer_fails_start_up() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    idp.set_discovery_issuer("https://impostor.test/");
    let err = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySource::discover(idp.issuer()))
        .start()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("https://impostor.test/"), "{message}");
    assert!(message.contains(&idp.issuer()), "{message}");
    assert_eq!(
        idp.jwks_requests(),
        0,
        "no keys from a provider that is not ours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_fetches_once_for_200_concurrent_calls() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySource::jwks_url(idp.jwks_url()))
        .build()
        .expect("build does not fetch");
    let iss = idp.issuer();
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let validator = validator.clone();
            let token = token_from(&iss, TestKey::Rsa1);
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("valid");
    }
    assert_eq!(idp.jwks_requests(), 1, "one fetch for all cold calls");
}

/// A caller that gives up while its unknown-`kid` refetch is under way (a `grpc-timeout`
/// of a few ms against a JWKS answering in 200 ms) must not use up the cooldown: the refetch
/// completes on its own task and installs the key, and the next token of that key is
/// accepted. Were the fetch dropped with the call, the cooldown (a minute here) would refuse
/// every token of the new key until the scheduled refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_does_not_cancel_the_unknown_kid_refetch() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let source = KeySource::discover(idp.issuer())
        .refresh_between(Duration::from_secs(600), Duration::from_secs(900))
        .unknown_kid_cooldown(Duration::from_secs(60));
    let validator = validator(&idp, source).await;
    let iss = idp.issuer();
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>());
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    let call = |token: String, timeout: Option<Duration>| {
        let mut request = Request::new(WhoAmIRequest {});
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
        request.metadata_mut().insert("authorization", value);
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        request
    };
    let fetched = idp.jwks_requests();

    // The provider rotates in rsa-2 and answers slowly.
    idp.set_mode(Mode::Slow(Duration::from_millis(200)));
    idp.set_keys(&[TestKey::Rsa1, TestKey::Rsa2]);
    let status = client
        .who_am_i(call(
            token_from(&iss, TestKey::Rsa2),
            Some(Duration::from_millis(5)),
        ))
        .await
        .expect_err("the deadline passes during the refetch");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    // At once, while the first refetch is still waiting for its answer.
    client
        .who_am_i(call(token_from(&iss, TestKey::Rsa2), None))
        .await
        .expect("the refetch started by the dropped call installed rsa-2");
    assert_eq!(
        idp.jwks_requests(),
        fetched + 1,
        "one refetch, completed although its caller left"
    );
    idp.set_mode(Mode::Normal);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kids_cause_at_most_one_fetch_per_cooldown() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = validator(
        &idp,
        KeySource::jwks_url(idp.jwks_url()).unknown_kid_cooldown(Duration::from_secs(60)),
    )
    .await;
    assert_eq!(idp.jwks_requests(), 1);
    let iss = idp.issuer();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let validator = validator.clone();
            let mut h = header(TestKey::Rsa1);
            h["kid"] = json!(format!("random-{i}-{}", issuer::now()));
            let mut c = claims("orders:read");
            c["iss"] = json!(iss.clone());
            let token = sign_json(&h, &c, TestKey::Rsa1);
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for call in calls {
        assert_eq!(
            call.await.expect("task").unwrap_err(),
            TokenError::UnknownKey
        );
    }
    assert!(idp.jwks_requests() <= 2, "{} fetches", idp.jwks_requests());
}

#[tokio::test]
async fn plain_http_is_refused_except_loopback() {
    let err = Validator::builder()
        .issuer("http://idp.example.com/")
        .audience(AUDIENCE)
        .keys(KeySource::discover("http://idp.example.com/"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
    let http = oauth_grpc::HttpClient::new()
        .expect("client")
        .allow_insecure_http();
    assert!(
        Validator::builder()
            .issuer("http://idp.example.com/")
            .audience(AUDIENCE)
            .keys(KeySource::discover("http://idp.example.com/").http_client(http))
            .build()
            .is_ok()
    );
}

#[tokio::test]
async fn refresh_follows_cache_control() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    idp.set_max_age(Some(0)); // clamped up to the 200 ms minimum
    let _validator = validator(&idp, source(&idp)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let fetched = idp.jwks_requests();
    assert!(
        (3..=7).contains(&fetched),
        "refreshed every 200-300 ms: {fetched} fetches in 1 s"
    );
}

/// A JWK of `key` published under `kid` (`None`: without one).
fn jwk_as(key: TestKey, kid: Option<&str>) -> serde_json::Value {
    let mut jwk = serde_json::to_value(key.jwk()).expect("JWK serialises");
    match kid {
        Some(kid) => jwk["kid"] = json!(kid),
        None => {
            jwk.as_object_mut()
                .expect("a JWK is an object")
                .remove("kid");
        }
    }
    jwk
}

/// A token of `key` whose header carries `kid` (`None`: no `kid` member).
fn token_with_kid(iss: &str, key: TestKey, kid: Option<&str>) -> String {
    let mut h = header(key);
    match kid {
        Some(kid) => h["kid"] = json!(kid),
        None => {
            h.as_object_mut()
                .expect("a header is an object")
                .remove("kid");
        }
    }
    let mut c = claims("orders:read");
    c["iss"] = json!(iss);
    sign_json(&h, &c, key)
}

/// During a rotation overlap two RSA keys are published; a kid-less RS256 token signed by
/// either is accepted — every fitting key is tried — and nothing is refetched. A kid-less
/// token neither key signed is a bad signature, again without a refetch.
#[tokio::test]
async fn a_kid_less_token_is_tried_against_every_fitting_key() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1, TestKey::Rsa2]).await;
    let validator = validator(&idp, source(&idp)).await;
    let iss = idp.issuer();
    let fetched = idp.jwks_requests();
    for key in [TestKey::Rsa1, TestKey::Rsa2] {
        validator
            .validate(&token_with_kid(&iss, key, None))
            .await
            .unwrap_or_else(|e| panic!("kid-less token of {key:?}: {e:?}"));
    }
    // Another token's signature on this token's header and payload: neither key signed it.
    let forged = {
        let token = token_with_kid(&iss, TestKey::Rsa1, None);
        let (signed, _) = token.rsplit_once('.').expect("three segments");
        let mut other_claims = claims("orders:admin");
        other_claims["iss"] = json!(iss);
        let mut h = header(TestKey::Rsa1);
        h.as_object_mut().expect("object").remove("kid");
        let other = sign_json(&h, &other_claims, TestKey::Rsa1);
        let (_, signature) = other.rsplit_once('.').expect("three segments");
        format!("{signed}.{signature}")
    };
    assert_eq!(
        validator.validate(&forged).await.unwrap_err(),
        TokenError::BadSignature
    );
    assert_eq!(
        idp.jwks_requests(),
        fetched,
        "no refetch for kid-less tokens"
    );
}

/// A kid-less key (one the provider published without `kid`) does not swallow unknown
/// kids: a token of a newly published key whose kid is unknown first fails against the
/// kid-less key, then gets the usual refetch and is accepted.
#[tokio::test]
async fn an_unknown_kid_refetches_even_with_a_kid_less_key() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_jwks(json!({"keys": [jwk_as(TestKey::Rsa1, None)]}));
    let validator = validator(&idp, source(&idp)).await;
    let iss = idp.issuer();
    validator
        .validate(&token_with_kid(&iss, TestKey::Rsa1, Some("anything")))
        .await
        .expect("the kid-less key verifies a token whose kid no key has");

    idp.set_jwks(
        json!({"keys": [jwk_as(TestKey::Rsa1, None), jwk_as(TestKey::Rsa2, Some("rsa-2"))]}),
    );
    let fetched = idp.jwks_requests();
    validator
        .validate(&token_with_kid(&iss, TestKey::Rsa2, Some("rsa-2")))
        .await
        .expect("refetched after the kid-less key refused it");
    assert_eq!(idp.jwks_requests(), fetched + 1);
}

/// A provider that reuses a kid for a new key: the old key refuses the new token's
/// signature, which triggers one refetch, and the token is accepted with the new key. A
/// forgery under a known kid stays a bad signature, and refetches at most once per cooldown.
#[tokio::test]
async fn a_reused_kid_refetches_once_then_verifies() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_jwks(json!({"keys": [jwk_as(TestKey::Rsa1, Some("signing"))]}));
    let validator = validator(
        &idp,
        source(&idp).unknown_kid_cooldown(Duration::from_secs(60)),
    )
    .await;
    let iss = idp.issuer();
    validator
        .validate(&token_with_kid(&iss, TestKey::Rsa1, Some("signing")))
        .await
        .expect("the first key");

    idp.set_jwks(json!({"keys": [jwk_as(TestKey::Rsa2, Some("signing"))]}));
    let fetched = idp.jwks_requests();
    validator
        .validate(&token_with_kid(&iss, TestKey::Rsa2, Some("signing")))
        .await
        .expect("the reused kid's new key, after one refetch");
    assert_eq!(idp.jwks_requests(), fetched + 1);

    // Forgeries under the known kid: bad signatures, and the cooldown holds the fetches.
    for _ in 0..5 {
        assert_eq!(
            validator
                .validate(&token_with_kid(&iss, TestKey::Rsa1, Some("signing")))
                .await
                .unwrap_err(),
            TokenError::BadSignature
        );
    }
    assert_eq!(
        idp.jwks_requests(),
        fetched + 1,
        "no refetch within the cooldown"
    );
}
