//! Valid tokens reach the handler with their Principal: every key type, the accepted header
//! and claim variants, public and unknown paths.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use examples::Store;
use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{
    CreateOrderRequest, GetHttpStatusRequest, PurgeCancelledRequest, WhoAmIRequest,
};
use oauth_grpc::UnknownPaths;
use oauth_grpc::{OAuthLayer, PolicySet};
use oauth_grpc_tests::issuer::{self, TestKey, claims, header, sign_json};
use oauth_grpc_tests::{challenge, orders_layer, orders_server, validator};
use serde_json::json;
use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII token");
    request.metadata_mut().insert("authorization", value);
    request
}

#[tokio::test]
async fn every_key_type_and_algorithm_is_accepted() {
    let server = orders_server(orders_layer(), Store::default())
        .await
        .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    let cases = [
        (TestKey::Rsa1, "RS256"),
        (TestKey::Rsa2, "RS256"),
        (TestKey::Rsa2, "RS384"),
        (TestKey::Rsa2, "RS512"),
        (TestKey::Rsa2, "PS256"),
        (TestKey::Rsa2, "PS384"),
        (TestKey::Rsa2, "PS512"),
        (TestKey::Ec256, "ES256"),
        (TestKey::Ec384, "ES384"),
        (TestKey::Ed25519, "EdDSA"),
    ];
    for (key, alg) in cases {
        let mut h = header(key);
        h["alg"] = json!(alg);
        let token = sign_json(&h, &claims("orders:read orders:write"), key);
        let who = client
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|s| panic!("{alg} with {}: {s:?}", key.kid()))
            .into_inner();
        assert_eq!(who.subject, "alice");
        assert_eq!(who.scopes, ["orders:read", "orders:write"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn handler_sees_the_principal() {
    let store = Store::default();
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    let token = issuer::token(TestKey::Ec256, "orders:write");
    let order = client
        .create_order(authorized(
            CreateOrderRequest {
                item: "widget".into(),
                quantity: 3,
            },
            &token,
        ))
        .await
        .expect("orders:write may create")
        .into_inner();
    assert_eq!(
        order.owner, "alice",
        "the handler read the subject from the Principal"
    );
    assert_eq!(store.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn accepted_claim_and_header_variants() {
    let server = orders_server(orders_layer(), Store::default())
        .await
        .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    let now = issuer::now();
    let mut variants = Vec::new();

    let mut h = header(TestKey::Rsa1);
    h["typ"] = json!("application/at+jwt");
    variants.push((
        "typ application/at+jwt",
        sign_json(&h, &claims("orders:read"), TestKey::Rsa1),
    ));

    let mut c = claims("");
    c.as_object_mut().map(|m| m.remove("scope"));
    c["scp"] = json!(["orders:read", "profile"]);
    variants.push((
        "scp as an array",
        sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1),
    ));

    let mut c = claims("");
    c.as_object_mut().map(|m| m.remove("scope"));
    c["scp"] = json!("orders:read profile");
    variants.push((
        "scp as a string",
        sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1),
    ));

    // rsa-1 and rsa-2 are both published: a kid-less token is tried against each.
    for (name, key) in [
        ("kid-less, rsa-1 of two RSA keys", TestKey::Rsa1),
        ("kid-less, rsa-2 of two RSA keys", TestKey::Rsa2),
    ] {
        let mut h = header(key);
        h.as_object_mut().map(|m| m.remove("kid"));
        variants.push((name, sign_json(&h, &claims("orders:read"), key)));
    }

    let mut c = claims("orders:read");
    c["aud"] = json!(["billing-api", issuer::AUDIENCE]);
    variants.push((
        "aud array with ours",
        sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1),
    ));

    let mut c = claims("orders:read");
    c["exp"] = json!(now as f64 + 300.5);
    variants.push((
        "exp with a fraction",
        sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1),
    ));

    let mut c = claims("orders:read");
    c["exp"] = json!(now - 30);
    variants.push((
        "expired within the 60 s leeway",
        sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1),
    ));

    let mut h = header(TestKey::Ed25519);
    h.as_object_mut().map(|m| m.remove("kid"));
    variants.push((
        "no kid, one key fits EdDSA",
        sign_json(&h, &claims("orders:read"), TestKey::Ed25519),
    ));

    for (name, token) in variants {
        let who = client
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|s| panic!("{name}: {s:?}"))
            .into_inner();
        assert!(
            who.scopes.contains(&"orders:read".to_owned()),
            "{name}: {:?}",
            who.scopes
        );
    }
    server.stop().await;
}

/// A `jku` in the header points at a listener of ours: the token is judged by the trusted
/// keys alone and nothing ever connects to the URL.
#[tokio::test]
async fn jku_x5u_and_jwk_headers_are_never_followed() {
    let trap = TcpListener::bind("127.0.0.1:0").await.expect("bind trap");
    let trap_url = format!("http://{}/jwks.json", trap.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let trap_task = tokio::spawn(async move {
        while trap.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let server = orders_server(orders_layer(), Store::default())
        .await
        .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));

    // Signed by a trusted key, with hostile pointers: accepted, pointers ignored.
    let mut h = header(TestKey::Rsa1);
    h["jku"] = json!(trap_url);
    h["x5u"] = json!(trap_url);
    let token = sign_json(&h, &claims("orders:read"), TestKey::Rsa1);
    client
        .who_am_i(authorized(WhoAmIRequest {}, &token))
        .await
        .expect("a valid token with a jku header is judged by trusted keys");

    // Signed by an untrusted key that the header offers inline and by URL: refused.
    let mut h = json!({"alg": "RS256", "typ": "at+jwt", "kid": "attacker", "jku": trap_url});
    h["jwk"] = serde_json::to_value(TestKey::Rsa2.jwk()).expect("jwk");
    let forged = sign_json(&h, &claims("orders:read"), TestKey::Rsa2);
    let status = client
        .who_am_i(authorized(WhoAmIRequest {}, &forged))
        .await
        .expect_err("an embedded jwk is not trusted");
    assert_eq!(status.code(), Code::Unauthenticated);

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing may fetch the jku/x5u URL"
    );
    trap_task.abort();
    server.stop().await;
}

#[tokio::test]
async fn public_rpc_reads_no_token() {
    let server = orders_server(orders_layer(), Store::default())
        .await
        .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));
    client
        .get_http_status(GetHttpStatusRequest {})
        .await
        .expect("public without a token");
    client
        .get_http_status(authorized(GetHttpStatusRequest {}, "garbage"))
        .await
        .expect("public with a garbage token: the token is not read");
    server.stop().await;
}

/// A service whose table is not in the PolicySet: refused by default; passed through on
/// request, where its own generated check still refuses it (fail closed twice).
#[tokio::test]
async fn paths_without_a_rule() {
    let only_orders = || PolicySet::new().service::<examples::OrderBook>();
    let token = issuer::token(TestKey::Rsa1, "orders:admin");

    let server = orders_server(
        OAuthLayer::new(validator(), only_orders()),
        Store::default(),
    )
    .await
    .expect("bind");
    let mut admin = OrdersAdminClient::new(server.channel().await.expect("connect"));
    let status = admin
        .purge_cancelled(authorized(PurgeCancelledRequest {}, &token))
        .await
        .expect_err("no rule for OrdersAdmin in this set");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "no access rule for this call");
    server.stop().await;

    let layer =
        OAuthLayer::new(validator(), only_orders()).unknown_paths(UnknownPaths::PassThrough);
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let mut admin = OrdersAdminClient::new(server.channel().await.expect("connect"));
    let status = admin
        .purge_cancelled(authorized(PurgeCancelledRequest {}, &token))
        .await
        .expect_err("passed through unauthenticated, then refused by the method's own check");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), "Bearer");
    server.stop().await;
}

/// A layer in front of ours that puts a `Principal` of its own making into the request.
#[derive(Clone)]
struct ForgePrincipal<S>(S);

impl<S, B> tower_service::Service<http::Request<B>> for ForgePrincipal<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let forged = oauth_grpc::Principal::builder()
            .subject("mallory")
            .scopes(["orders:admin"])
            .build();
        request.extensions_mut().insert(forged);
        self.0.call(request)
    }
}

/// Under pass-through, the call reaches the service unauthenticated: the layer must take out
/// any principal an outer layer (or a caller's own middleware) put in, or the method's
/// generated check would accept it.
#[tokio::test]
async fn a_forged_principal_does_not_survive_pass_through() {
    let layer = OAuthLayer::new(
        validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    )
    .unknown_paths(UnknownPaths::PassThrough);
    let router = tonic::transport::Server::builder()
        .layer(tower_layer::layer_fn(ForgePrincipal))
        .layer(layer)
        .add_service(examples::pb::orders_admin_server::OrdersAdminServer::new(
            examples::AdminDesk::new(Store::default()),
        ));
    let server = oauth_grpc_tests::TestServer::serve(|incoming, shutdown| {
        router.serve_with_incoming_shutdown(incoming, shutdown)
    })
    .await
    .expect("bind");
    let mut admin = OrdersAdminClient::new(server.channel().await.expect("connect"));
    let status = admin
        .purge_cancelled(PurgeCancelledRequest {})
        .await
        .expect_err("the forged principal is removed, so the method's own check refuses");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), "Bearer");
    server.stop().await;
}

/// A path two tables disagree about has no rule; pass-through must not open it.
#[tokio::test]
async fn a_conflicting_path_is_refused_under_pass_through() {
    use oauth_grpc::{MethodPolicy, Rule, ServicePolicy};
    static OPENS_WHO_AM_I: ServicePolicy = ServicePolicy::new(
        "orders.v1.Orders",
        &[MethodPolicy::new(
            "WhoAmI",
            "/orders.v1.Orders/WhoAmI",
            "who_am_i",
            Rule::Public,
        )],
    );
    let policies = PolicySet::new()
        .service::<examples::OrderBook>()
        .policy(&OPENS_WHO_AM_I);
    assert_eq!(policies.conflicts(), ["/orders.v1.Orders/WhoAmI"]);
    let layer = OAuthLayer::new(validator(), policies).unknown_paths(UnknownPaths::PassThrough);
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    let token = issuer::token(TestKey::Rsa1, "orders:read");
    for request in [
        Request::new(WhoAmIRequest {}),
        authorized(WhoAmIRequest {}, &token),
    ] {
        let status = orders
            .who_am_i(request)
            .await
            .expect_err("a conflicting path is refused, token or not");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "no access rule for this call");
    }
    server.stop().await;
}

/// The layer around one service instead of the whole server: tonic still routes to it by
/// name, and the other service on the server is not covered by this layer.
#[tokio::test]
async fn layer_around_a_single_service() {
    use examples::pb::orders_admin_server::OrdersAdminServer;
    use examples::pb::orders_server::OrdersServer;
    use oauth_grpc::OAuth;
    use oauth_grpc_tests::TestServer;

    let layer = orders_layer();
    let store = Store::default();
    let router = tonic::transport::Server::builder()
        .add_service(OAuth::new(
            OrdersServer::new(examples::OrderBook::new(store.clone())),
            &layer,
        ))
        .add_service(OrdersAdminServer::new(examples::AdminDesk::new(store)));
    let server = TestServer::start(router).await.expect("bind");
    let channel = server.channel().await.expect("connect");
    let mut orders = OrdersClient::new(channel.clone());

    let status = orders
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let token = issuer::token(TestKey::Ed25519, "orders:admin");
    let who = orders
        .who_am_i(authorized(WhoAmIRequest {}, &token))
        .await
        .expect("valid token through the per-service layer")
        .into_inner();
    assert_eq!(who.subject, "alice");

    // The admin service has no layer: its own generated checks refuse the call.
    let mut admin = OrdersAdminClient::new(channel);
    let status = admin
        .purge_cancelled(authorized(PurgeCancelledRequest {}, &token))
        .await
        .expect_err("no layer, no principal");
    assert_eq!(status.code(), Code::Unauthenticated);
    server.stop().await;
}

/// Under pass-through, spellings of a protected path that are not the path itself — a
/// trailing slash, a doubled slash, a percent-encoded name, HTTP/1.1 — have no rule, and
/// must reach no handler: tonic's router matches paths exactly, so they end in
/// `UNIMPLEMENTED` or the method's own check, never in `CreateOrder`.
#[tokio::test]
async fn path_variants_under_pass_through_reach_no_handler() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let store = Store::default();
    let layer = OAuthLayer::new(
        validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    )
    .unknown_paths(UnknownPaths::PassThrough);
    let server = orders_server(layer, store.clone()).await.expect("bind");
    let token = issuer::token(TestKey::Rsa1, "orders:write");
    let channel = server.channel().await.expect("connect");

    for path in [
        "/orders.v1.Orders/CreateOrder/",
        "//orders.v1.Orders/CreateOrder",
        "/orders.v1.Orders/Create%4Frder",
        "/orders%2Ev1%2EOrders/CreateOrder",
        "/orders.v1.orders/createorder",
    ] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let request = authorized(
            CreateOrderRequest {
                item: "widget".into(),
                quantity: 1,
            },
            &token,
        );
        let answer: Result<tonic::Response<examples::pb::Order>, _> = grpc
            .unary(
                request,
                http::uri::PathAndQuery::try_from(path).expect("a path"),
                tonic_prost::ProstCodec::default(),
            )
            .await;
        let status = answer.expect_err(path);
        assert!(
            matches!(status.code(), Code::Unimplemented | Code::Unauthenticated),
            "{path}: {status:?}"
        );
        assert!(store.is_empty(), "{path} reached CreateOrder");
    }

    // A query is not part of the path: the call is CreateOrder, and its rule applies.
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let answer: Result<tonic::Response<examples::pb::Order>, _> = grpc
        .unary(
            Request::new(CreateOrderRequest {
                item: "widget".into(),
                quantity: 1,
            }),
            http::uri::PathAndQuery::from_static("/orders.v1.Orders/CreateOrder?x=1"),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    let status = answer.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        store.is_empty(),
        "the query variant passed without its rule"
    );

    // HTTP/1.1: the gRPC server speaks HTTP/2 only.
    let mut tcp = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let request = format!(
        "GET /orders.v1.Orders/CreateOrder HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/grpc\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    // Bounded only so that a hang fails instead of stalling the suite.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut answer),
    )
    .await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(store.is_empty(), "HTTP/1.1 reached CreateOrder");
    server.stop().await;
}
