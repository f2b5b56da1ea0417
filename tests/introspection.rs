//! Opaque tokens by RFC 7662 introspection against a real HTTP endpoint: active, inactive and
//! expired answers, scopes, both client-authentication methods, caching, single flight, and a
//! stalled endpoint.

use std::time::{Duration, Instant};

use examples::Store;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{CreateOrderRequest, WhoAmIRequest};
use oauth_grpc::{ClientAuth, ClientSecret, Introspection, TokenRouting};
use oauth_grpc::{ConfigError, OAuthLayer, PolicySet, TokenError, Validator};
use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider, Mode};
use oauth_grpc_tests::issuer::{self, AUDIENCE, TestKey};
use oauth_grpc_tests::{challenge, orders_server};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

fn introspecting(idp: &IdentityProvider, auth: ClientAuth) -> Validator {
    Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(
            Introspection::new(
                idp.introspection_url(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .client_auth(auth)
            .timeout(Duration::from_millis(300)),
        )
        .build()
        .expect("valid configuration")
}

fn active(idp: &IdentityProvider, scope: &str) -> serde_json::Value {
    json!({
        "active": true,
        "scope": scope,
        "client_id": "orders-web",
        "sub": "bob",
        "aud": AUDIENCE,
        "iss": idp.issuer(),
        "exp": issuer::now() + 300,
        "jti": "opaque-1",
    })
}

/// Keycloak and Okta issue JWT access tokens: a validator with introspection and no keys
/// introspects them instead of refusing them for want of a key.
#[tokio::test]
async fn without_keys_jwt_shaped_tokens_are_introspected() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = introspecting(&idp, ClientAuth::Basic);
    let jwt = issuer::token(TestKey::Rsa1, "orders:read");
    assert_eq!(jwt.split('.').count(), 3);
    idp.set_introspection(&jwt, active(&idp, "orders:read"));
    let before = idp.introspection_requests();
    let principal = validator.validate(&jwt).await.expect("introspected");
    assert_eq!(principal.subject(), Some("bob"));
    assert_eq!(idp.introspection_requests(), before + 1);

    // Asking for local JWT checks without keys is a configuration error that names the fix.
    let err = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(
            Introspection::new(
                idp.introspection_url(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .routing(TokenRouting::JwtLocally),
        )
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::JwtsWithoutKeys), "{err}");
    assert!(err.to_string().contains(".keys("), "{err}");
}

#[tokio::test]
async fn active_inactive_and_expired_answers() {
    let idp = IdentityProvider::start(&[]).await;
    for auth in [ClientAuth::Basic, ClientAuth::Post] {
        let validator = introspecting(&idp, auth);
        idp.set_introspection("opaque-active", active(&idp, "orders:read orders:write"));
        let principal = validator.validate("opaque-active").await.expect("active");
        assert_eq!(principal.subject(), Some("bob"));
        assert_eq!(principal.client_id(), Some("orders-web"));
        assert_eq!(principal.token_id(), Some("opaque-1"));
        assert!(principal.has_scope("orders:write"));

        idp.set_introspection("opaque-revoked", json!({"active": false}));
        assert_eq!(
            validator.validate("opaque-revoked").await.unwrap_err(),
            TokenError::Inactive
        );
        assert_eq!(
            validator.validate("never-issued").await.unwrap_err(),
            TokenError::Inactive
        );

        let mut expired = active(&idp, "orders:read");
        expired["exp"] = json!(issuer::now() - 600);
        idp.set_introspection("opaque-expired", expired);
        assert_eq!(
            validator.validate("opaque-expired").await.unwrap_err(),
            TokenError::Expired
        );

        let mut foreign = active(&idp, "orders:read");
        foreign["aud"] = json!("billing-api");
        idp.set_introspection("opaque-foreign", foreign);
        assert_eq!(
            validator.validate("opaque-foreign").await.unwrap_err(),
            TokenError::WrongAudience
        );

        let mut other_issuer = active(&idp, "orders:read");
        other_issuer["iss"] = json!("https://other.test/");
        idp.set_introspection("opaque-other-iss", other_issuer);
        assert_eq!(
            validator.validate("opaque-other-iss").await.unwrap_err(),
            TokenError::WrongIssuer
        );
    }
}

#[tokio::test]
async fn wrong_client_credentials_are_unavailable_not_unauthenticated() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(Introspection::new(
            idp.introspection_url(),
            CLIENT_ID,
            ClientSecret::new("wrong secret"),
        ))
        .build()
        .expect("valid configuration");
    idp.set_introspection("opaque-active", active(&idp, "orders:read"));
    assert_eq!(
        validator.validate("opaque-active").await.unwrap_err(),
        TokenError::Unavailable
    );
}

#[tokio::test]
async fn answers_are_cached_and_concurrent_checks_share_one_request() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = introspecting(&idp, ClientAuth::Basic);
    idp.set_introspection("opaque-active", active(&idp, "orders:read"));
    validator.validate("opaque-active").await.expect("active");
    validator
        .validate("opaque-active")
        .await
        .expect("active, from the cache");
    assert_eq!(
        idp.introspection_requests(),
        1,
        "a cache hit avoids a second POST"
    );

    // Negative answers are cached too (briefly).
    validator.validate("unknown").await.unwrap_err();
    validator.validate("unknown").await.unwrap_err();
    assert_eq!(idp.introspection_requests(), 2);

    // 50 concurrent checks of a new token: one POST.
    idp.set_introspection("opaque-burst", active(&idp, "orders:read"));
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let validator = validator.clone();
            tokio::spawn(async move { validator.validate("opaque-burst").await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("active");
    }
    assert_eq!(idp.introspection_requests(), 3, "single flight per token");
}

#[tokio::test]
async fn stalled_endpoint_is_unavailable_within_the_timeout() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = introspecting(&idp, ClientAuth::Basic);
    idp.set_mode(Mode::Stalled);
    let started = Instant::now();
    assert_eq!(
        validator.validate("opaque-any").await.unwrap_err(),
        TokenError::Unavailable
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "gave up after {waited:?}");
}

/// Through the server: opaque tokens introspected, JWTs checked locally, scopes enforced,
/// UNAVAILABLE when the endpoint stalls.
#[tokio::test]
async fn end_to_end_with_jwt_and_opaque_tokens() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .issuer(issuer::ISSUER)
        .audience(AUDIENCE)
        .keys(oauth_grpc::KeySet::from_jwks(&issuer::jwks()).expect("jwks"))
        .introspection(
            Introspection::new(
                idp.introspection_url(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .routing(TokenRouting::JwtLocally)
            .timeout(Duration::from_millis(300)),
        )
        .build()
        .expect("valid configuration");
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>());
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    let with = |token: &str| {
        let mut request = Request::new(CreateOrderRequest {
            item: "widget".into(),
            quantity: 1,
        });
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
        request.metadata_mut().insert("authorization", value);
        request
    };

    idp.set_introspection("opaque-writer", active(&idp, "orders:write"));
    idp.set_introspection("opaque-reader", active(&idp, "orders:read"));
    let order = client
        .create_order(with("opaque-writer"))
        .await
        .expect("writer")
        .into_inner();
    assert_eq!(order.owner, "bob");
    let status = client
        .create_order(with("opaque-reader"))
        .await
        .expect_err("reader");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .create_order(with("opaque-unknown"))
        .await
        .expect_err("inactive");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        challenge(&status),
        r#"Bearer error="invalid_token", error_description="the token is not active""#
    );
    let before = idp.introspection_requests();
    client
        .create_order(with(&issuer::token(TestKey::Rsa1, "orders:write")))
        .await
        .expect("a JWT is checked locally");
    assert_eq!(
        idp.introspection_requests(),
        before,
        "JWTs are not introspected"
    );

    idp.set_mode(Mode::Stalled);
    let mut request = Request::new(WhoAmIRequest {});
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::from_static("Bearer opaque-new"),
    );
    let status = client.who_am_i(request).await.expect_err("stalled");
    assert_eq!(status.code(), Code::Unavailable);
    server.stop().await;
}

/// Provider data never reaches time arithmetic unchecked: an absurd or wrongly typed `exp`
/// is the provider's fault — 14, so clients retry — and the broken answer is not asked for
/// again on every call.
#[tokio::test]
async fn absurd_expiry_in_an_answer_is_refused_not_a_panic() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = introspecting(&idp, ClientAuth::Basic);
    for exp in [json!(u64::MAX), json!(1e300), json!(-5), json!("tomorrow")] {
        let mut answer = active(&idp, "orders:read");
        answer["exp"] = exp.clone();
        let token = format!("opaque-exp-{exp}").replace(['"', ' '], "");
        idp.set_introspection(&token, answer);
        let before = idp.introspection_requests();
        for _ in 0..3 {
            assert_eq!(
                validator.validate(&token).await.unwrap_err(),
                TokenError::Unavailable,
                "exp {exp}"
            );
        }
        assert_eq!(
            idp.introspection_requests(),
            before + 1,
            "exp {exp}: asked once"
        );
    }
}

/// Wrongly typed members are the provider's fault too, whichever member it is.
#[tokio::test]
async fn wrongly_typed_members_are_the_providers_fault() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = introspecting(&idp, ClientAuth::Basic);
    for (member, value) in [
        ("iss", json!(["a", "b"])),
        ("aud", json!(42)),
        ("scope", json!(["orders:read"])),
        ("nbf", json!("soon")),
        ("token_type", json!(1)),
        ("sub", json!({"id": 1})),
    ] {
        let mut answer = active(&idp, "orders:read");
        answer[member] = value;
        let token = format!("opaque-typed-{member}");
        idp.set_introspection(&token, answer);
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            TokenError::Unavailable,
            "{member}"
        );
    }
}

/// An active answer is not enough: it must be for this service (`aud`), valid now (`nbf`),
/// and about an access token (`token_type`).
#[tokio::test]
async fn active_answers_are_checked_like_claims() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = introspecting(&idp, ClientAuth::Basic);

    // No `aud`, no `iss`: possibly a token minted for another resource server.
    let bare =
        json!({"active": true, "scope": "orders:read", "sub": "bob", "exp": issuer::now() + 300});
    idp.set_introspection("opaque-bare", bare);
    assert_eq!(
        validator.validate("opaque-bare").await.unwrap_err(),
        TokenError::WrongAudience
    );
    // Unless the provider is trusted with the audience decision.
    let trusting = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(
            Introspection::new(
                idp.introspection_url(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .trust_provider_audience(),
        )
        .build()
        .expect("valid configuration");
    let principal = trusting.validate("opaque-bare").await.expect("trusted");
    assert_eq!(principal.subject(), Some("bob"));
    // An answer that names another audience is refused even then.
    let mut foreign = active(&idp, "orders:read");
    foreign["aud"] = json!("billing-api");
    idp.set_introspection("opaque-foreign-aud", foreign);
    assert_eq!(
        trusting.validate("opaque-foreign-aud").await.unwrap_err(),
        TokenError::WrongAudience
    );

    let mut early = active(&idp, "orders:read");
    early["nbf"] = json!(issuer::now() + 3600);
    idp.set_introspection("opaque-early", early);
    assert_eq!(
        validator.validate("opaque-early").await.unwrap_err(),
        TokenError::NotYetValid
    );

    let mut refresh = active(&idp, "orders:read");
    refresh["token_type"] = json!("refresh_token");
    idp.set_introspection("opaque-refresh", refresh);
    assert_eq!(
        validator.validate("opaque-refresh").await.unwrap_err(),
        TokenError::WrongType
    );
    for token_type in [
        "Bearer",
        "access_token",
        "urn:ietf:params:oauth:token-type:access_token",
    ] {
        let mut access = active(&idp, "orders:read");
        access["token_type"] = json!(token_type);
        let token = format!("opaque-type-{}", token_type.replace(':', "-"));
        idp.set_introspection(&token, access);
        assert!(validator.validate(&token).await.is_ok(), "{token_type}");
    }
}

/// `ClientSecret::from_file` is read off the runtime's threads. The secret file is a FIFO
/// whose writer only writes once a task on the (single-threaded) runtime has run after the
/// introspection started: a read that blocked the runtime's thread would starve that task,
/// and the writer would give up waiting (after 10 s, only to end the test) and say so.
#[cfg(unix)]
#[tokio::test(flavor = "current_thread")]
async fn a_secret_file_is_read_without_blocking_the_runtime() {
    use std::io::Write as _;
    use std::sync::mpsc;

    let dir = std::env::temp_dir().join(format!("oauth-grpc-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("introspection-secret");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");

    let (ran, signal) = mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let in_time = signal.recv_timeout(Duration::from_secs(10)).is_ok();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open the FIFO for writing");
            file.write_all(CLIENT_SECRET.as_bytes())
                .expect("write the secret");
            in_time
        })
    };

    let idp = IdentityProvider::start(&[]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(Introspection::new(
            idp.introspection_url(),
            CLIENT_ID,
            ClientSecret::from_file(&fifo),
        ))
        .build()
        .expect("valid configuration");
    idp.set_introspection("opaque-fifo", active(&idp, "orders:read"));

    let check = tokio::spawn(async move { validator.validate("opaque-fifo").await });
    // Runs only if the runtime's thread is free while the secret is being read.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = ran.send(());
    let principal = check
        .await
        .expect("task")
        .expect("introspected with the file's secret");
    assert_eq!(principal.subject(), Some("bob"));
    assert!(
        writer.join().expect("writer thread"),
        "the runtime's thread was blocked by the secret file read"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
