//! The client side against a real token-endpoint double and a real protected server on
//! 127.0.0.1: caching, refresh, single flight, short and missing lifetimes, refused tokens,
//! outages, token exchange, secret hygiene and secret rotation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use examples::pb::WhoAmIRequest;
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::{OrderBook, Store};
use oauth_grpc::ClientSecret;
use oauth_grpc::audit::AuditEvent;
use oauth_grpc::client::{
    AccessToken, BearerLayer, ClientAuthentication, ClientCredentials, PrivateKey, TokenExchange,
};
use oauth_grpc::{Algorithm, KeySet};
use oauth_grpc::{OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::TestServer;
use oauth_grpc_tests::idp::{IdentityProvider, TOKEN_CLIENT_ID, TOKEN_CLIENT_SECRET};
use oauth_grpc_tests::issuer::{self, AUDIENCE, TestKey};
use tonic::Code;
use tower::ServiceBuilder;

/// The protected orders server, trusting the provider's keys; counts the calls that reach it
/// and records each allowed caller's actor chain.
struct Protected {
    server: TestServer,
    reached: Arc<AtomicUsize>,
    actors: Arc<Mutex<Vec<String>>>,
}

async fn protected(idp: &IdentityProvider) -> Protected {
    protected_trusting(idp, &issuer::jwks()).await
}

/// [`protected`], trusting only the keys of `jwks`.
async fn protected_trusting(idp: &IdentityProvider, jwks: &[u8]) -> Protected {
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(jwks).expect("jwks"))
        .build()
        .expect("validator");
    let reached = Arc::new(AtomicUsize::new(0));
    let actors = Arc::new(Mutex::new(Vec::new()));
    let (count, record) = (reached.clone(), actors.clone());
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>()).audit_sink(
        move |event: &AuditEvent<'_>| {
            count.fetch_add(1, Ordering::SeqCst);
            if let Some(actor) = event.principal.and_then(|p| p.actor()) {
                let mut chain = Vec::new();
                let mut next = Some(actor);
                while let Some(a) = next {
                    chain.push(a.subject().unwrap_or("?").to_owned());
                    next = a.actor();
                }
                record.lock().expect("lock").push(chain.join(" > "));
            }
        },
    );
    let router = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(OrdersServer::new(OrderBook::new(Store::default())));
    let server = TestServer::serve(|i, s| router.serve_with_incoming_shutdown(i, s))
        .await
        .expect("bind");
    Protected {
        server,
        reached,
        actors,
    }
}

fn credentials(idp: &IdentityProvider) -> ClientCredentials {
    ClientCredentials::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretBasic(ClientSecret::new(TOKEN_CLIENT_SECRET)),
    )
    .scope("orders:read")
    .audience(AUDIENCE)
}

async fn client(
    server: &TestServer,
    layer: BearerLayer,
) -> OrdersClient<oauth_grpc::client::Bearer<tonic::transport::Channel>> {
    let channel = server.channel().await.expect("connect");
    OrdersClient::new(ServiceBuilder::new().layer(layer).service(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fetch_for_a_thousand_calls() {
    let idp = IdentityProvider::start(&[]).await;
    let server = protected(&idp).await;
    let mut orders = client(&server.server, BearerLayer::new(credentials(&idp))).await;
    for _ in 0..1000 {
        let who = orders
            .who_am_i(WhoAmIRequest {})
            .await
            .expect("allowed")
            .into_inner();
        assert_eq!(who.subject, TOKEN_CLIENT_ID);
    }
    assert_eq!(idp.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_before_expiry_without_a_failed_call() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(3);
    let server = protected(&idp).await;
    let layer = BearerLayer::with_margin(credentials(&idp), Duration::from_secs(1));
    let mut orders = client(&server.server, layer).await;
    // 5 s of calls with 3 s tokens refreshed 1 s early: every call must pass.
    for _ in 0..50 {
        orders
            .who_am_i(WhoAmIRequest {})
            .await
            .expect("no call fails across a refresh");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetched = idp.token_requests();
    assert!(
        (2..=4).contains(&fetched),
        "{fetched} fetches for 5 s of 3 s tokens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_at_expiry_share_one_fetch() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(1);
    let server = protected(&idp).await;
    let layer = BearerLayer::with_margin(credentials(&idp), Duration::ZERO);
    let orders = client(&server.server, layer).await;
    orders
        .clone()
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("first call");
    assert_eq!(idp.token_requests(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the token has expired
    idp.set_token_lifetime(300);
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let mut orders = orders.clone();
            tokio::spawn(async move { orders.who_am_i(WhoAmIRequest {}).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("allowed");
    }
    assert_eq!(idp.token_requests(), 2, "one fetch for 100 calls at expiry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_not_refreshed_by_every_call() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(20);
    let server = protected(&idp).await;
    let mut orders = client(&server.server, BearerLayer::new(credentials(&idp))).await;
    // 20 s tokens and the default 30 s margin: the margin is cut to half the lifetime, so
    // 100 calls over 9 s (90 ms apart) are all served by the first token.
    let mut ticks = tokio::time::interval(Duration::from_millis(90));
    for _ in 0..100 {
        ticks.tick().await;
        orders.who_am_i(WhoAmIRequest {}).await.expect("allowed");
    }
    assert_eq!(idp.token_requests(), 1, "one fetch for 100 calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_expires_in_gets_the_default_lifetime() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_send_expires_in(false);
    let server = protected(&idp).await;
    let layer = BearerLayer::new(credentials(&idp)).default_lifetime(Duration::from_secs(1));
    let mut orders = client(&server.server, layer).await;
    for _ in 0..10 {
        orders.who_am_i(WhoAmIRequest {}).await.expect("allowed");
    }
    assert_eq!(
        idp.token_requests(),
        1,
        "reused within its default lifetime"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the default lifetime
    orders.who_am_i(WhoAmIRequest {}).await.expect("allowed");
    assert_eq!(idp.token_requests(), 2, "fetched anew once it passed");
}

/// Polls `futures` together on the current task until every one is done; their outputs in
/// order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, out) in pending.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *out = Some(value),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_dropped_and_fetched_once() {
    let idp = IdentityProvider::start(&[]).await;
    let jwks = |key: TestKey| serde_json::to_vec(&serde_json::json!({ "keys": [key.jwk()] }));
    let before = protected_trusting(&idp, &jwks(TestKey::Rsa1).expect("jwks")).await;
    let after = protected_trusting(&idp, &jwks(TestKey::Rsa2).expect("jwks")).await;
    // One layer (one cache) for both: the servers stand for one service before and after it
    // moved to trusting rsa-2 only.
    let layer = BearerLayer::new(credentials(&idp));
    client(&before.server, layer.clone())
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("rsa-1 is trusted");
    assert_eq!(idp.token_requests(), 1);

    idp.set_signing_key(TestKey::Rsa2);
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the minimum lifetime
    let orders = client(&after.server, layer).await;
    // Calls in flight with the cached rsa-1 token are refused, and not retried. They are
    // polled together on this task, so every one has taken the cached token and sent its
    // request before any refusal can come back (spawned tasks may start after it).
    let refused = join_all((0..20).map(|_| {
        let mut orders = orders.clone();
        async move { orders.who_am_i(WhoAmIRequest {}).await }
    }))
    .await;
    for call in refused {
        let status = call.expect_err("rsa-1 is refused");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(
            oauth_grpc_tests::challenge(&status).contains(r#"error="invalid_token""#),
            "{status:?}"
        );
    }
    assert_eq!(idp.token_requests(), 1, "a refused call is not retried");

    // The token was dropped: the next calls share one fetch, of an rsa-2 token.
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let mut orders = orders.clone();
            tokio::spawn(async move { orders.who_am_i(WhoAmIRequest {}).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("the new token is allowed");
    }
    assert_eq!(idp.token_requests(), 2, "one fetch after the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_every_token_is_not_a_fetch_per_call() {
    let idp = IdentityProvider::start(&[]).await;
    let jwks = serde_json::to_vec(&serde_json::json!({ "keys": [TestKey::Rsa2.jwk()] }));
    let server = protected_trusting(&idp, &jwks.expect("jwks")).await;
    let mut orders = client(&server.server, BearerLayer::new(credentials(&idp))).await;
    // Every rsa-1 token is refused; a token refused within its minimum lifetime (1 s) is
    // kept, so the refusals cost a fetch per second at most, not one per call.
    for _ in 0..100 {
        let status = orders
            .who_am_i(WhoAmIRequest {})
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let fetched = idp.token_requests();
    assert!(fetched <= 5, "{fetched} fetches for 100 refused calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_in_zero_is_not_a_fetch_per_call() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(0);
    let server = protected(&idp).await;
    let orders = client(&server.server, BearerLayer::new(credentials(&idp))).await;
    // The server's clock leeway accepts the token; the layer keeps it for the minimum
    // lifetime (1 s), refreshing it after half of that: a few fetches a second at most.
    for _ in 0..100 {
        orders
            .clone()
            .who_am_i(WhoAmIRequest {})
            .await
            .expect("allowed");
    }
    let sequential = idp.token_requests();
    assert!(
        sequential <= 10,
        "{sequential} fetches for 100 calls one after another"
    );
    // Once the token has passed its minimum lifetime, 100 calls at once share one fetch
    // (a second one only if a refresh falls due before the last of them).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let mut orders = orders.clone();
            tokio::spawn(async move { orders.who_am_i(WhoAmIRequest {}).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("allowed");
    }
    let concurrent = idp.token_requests() - sequential;
    assert!(
        (1..=2).contains(&concurrent),
        "{concurrent} fetches for 100 calls at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_down_uses_the_valid_token_then_fails_before_sending() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(2);
    let server = protected(&idp).await;
    let layer = BearerLayer::with_margin(credentials(&idp), Duration::from_secs(1));
    let mut orders = client(&server.server, layer).await;
    orders.who_am_i(WhoAmIRequest {}).await.expect("first call");

    idp.down().await;
    // Still valid (and inside the refresh margin, where refreshes fail): calls pass.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("the current token is still valid");

    // Expired, endpoint still down: a clear error, and nothing reaches the server.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reached = server.reached.load(Ordering::SeqCst);
    let status = orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("no token to be had");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .contains("token endpoint cannot be reached"),
        "{status:?}"
    );
    assert_eq!(
        server.reached.load(Ordering::SeqCst),
        reached,
        "no request was sent"
    );

    idp.up().await;
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if orders.who_am_i(WhoAmIRequest {}).await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "calls work again once the endpoint is back");
}

#[tokio::test]
async fn rejected_credentials_are_unauthenticated() {
    let idp = IdentityProvider::start(&[]).await;
    let server = protected(&idp).await;
    let wrong = ClientCredentials::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretPost(ClientSecret::new("not the secret")),
    );
    let mut orders = client(&server.server, BearerLayer::new(wrong)).await;
    let status = orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("rejected");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("invalid_client"), "{status:?}");
    assert!(!status.message().contains("not the secret"));
    assert_eq!(server.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn post_and_private_key_jwt_authentication_and_least_privilege() {
    let idp = IdentityProvider::start(&[]).await;
    let server = protected(&idp).await;
    let policies = PolicySet::new().service::<OrderBook>();
    let rule = policies
        .rule_for("/orders.v1.Orders/CreateOrder")
        .expect("rule");

    let post = ClientCredentials::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretPost(ClientSecret::new(TOKEN_CLIENT_SECRET)),
    )
    .least_privilege(rule);
    assert_eq!(post.scopes(), ["orders:write"]);
    let mut orders = client(&server.server, BearerLayer::new(post)).await;
    let who = orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("post")
        .into_inner();
    assert_eq!(
        who.scopes,
        ["orders:write"],
        "exactly the scopes the rule needs"
    );

    let key =
        PrivateKey::from_pem(TestKey::Ec256.private_pem().to_vec(), Algorithm::ES256).kid("ec-256");
    let jwt = ClientCredentials::discover(
        idp.issuer(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::PrivateKeyJwt(key),
    )
    .scope("orders:read");
    let mut orders = client(&server.server, BearerLayer::new(jwt)).await;
    orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("private_key_jwt, endpoint by discovery");
}

#[tokio::test]
async fn token_exchange_records_the_actor() {
    let idp = IdentityProvider::start(&[]).await;
    let server = protected(&idp).await;
    // The user's token (from the test issuer) and the agent's own token (client credentials).
    let user_token = issuer::token(TestKey::Rsa1, "orders:read orders:write");
    let agent = BearerLayer::new(credentials(&idp));
    let agent_token = agent.token().await.expect("agent token");

    let exchange = TokenExchange::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretBasic(ClientSecret::new(TOKEN_CLIENT_SECRET)),
        user_token,
    )
    .actor_token(agent_token.to_string())
    .scope("orders:read")
    .audience(AUDIENCE);
    let mut orders = client(&server.server, BearerLayer::new(exchange)).await;
    let who = orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("exchanged")
        .into_inner();
    assert_eq!(who.subject, "alice", "the exchanged token is the user's");
    assert_eq!(
        who.scopes,
        ["orders:read"],
        "narrowed to the requested scope"
    );
    assert_eq!(
        *server.actors.lock().expect("lock"),
        [TOKEN_CLIENT_ID],
        "the agent acts for alice"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_stay_out_of_logs_and_debug() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let idp = IdentityProvider::start(&[]).await;
    let server = protected(&idp).await;
    let source = credentials(&idp);
    let debug = format!("{source:?} {:?}", BearerLayer::new(credentials(&idp)));
    let mut orders = client(&server.server, BearerLayer::new(source)).await;
    orders.who_am_i(WhoAmIRequest {}).await.expect("allowed");
    // A failing fetch logs its reason: still no secret.
    let wrong = ClientCredentials::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretBasic(ClientSecret::new("wrong-secret-value")),
    );
    let debug = format!(
        "{debug} {wrong:?} {:?}",
        AccessToken::new("token-value-123", None)
    );
    let mut failing = client(&server.server, BearerLayer::new(wrong)).await;
    failing
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("rejected");

    let logs = String::from_utf8_lossy(&buffer.0.lock().expect("lock")).into_owned();
    assert!(
        logs.contains("token fetch failed"),
        "the failure is logged: {logs}"
    );
    for secret in [TOKEN_CLIENT_SECRET, "wrong-secret-value", "token-value-123"] {
        assert!(!logs.contains(secret), "{secret:?} in logs");
        assert!(!debug.contains(secret), "{secret:?} in Debug: {debug}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_file_is_used_by_the_next_fetch() {
    let dir = std::env::temp_dir().join(format!("oauth-grpc-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("client-secret");
    std::fs::write(&file, format!("{TOKEN_CLIENT_SECRET}\n")).expect("write secret");

    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(1);
    let server = protected(&idp).await;
    let source = ClientCredentials::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretBasic(ClientSecret::from_file(&file)),
    )
    .scope("orders:read");
    let mut orders = client(
        &server.server,
        BearerLayer::with_margin(source, Duration::ZERO),
    )
    .await;
    orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("first secret");

    // The provider rotates the secret; the file is replaced; no restart.
    idp.set_client_secret("second secret");
    std::fs::write(&file, "second secret\n").expect("rewrite secret");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("the next fetch read the new secret");
    assert_eq!(idp.token_requests(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
