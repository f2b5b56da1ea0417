//! mTLS and OAuth together (RFC 8705), over real TLS on 127.0.0.1 with certificates made by
//! `rcgen`: a certificate-bound token works only on a connection presenting its certificate,
//! `bound` methods refuse plain bearer tokens, and handlers and audit events see the client
//! certificate.

use std::sync::{Arc, Mutex};

use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{GetOrderRequest, PurgeCancelledRequest, WhoAmIRequest};
use oauth_grpc::audit::{AuditEvent, Decision};
use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials};
use oauth_grpc::{ClientCertificate, HttpClient, OAuthLayer};
use oauth_grpc_tests::issuer::{TestKey, claims, header, sign_json, token};
use oauth_grpc_tests::tls::{
    BindingTokenEndpoint, ClientCerts, Issued, Pki, channel, orders_server_tls,
};
use oauth_grpc_tests::{TestServer, challenge, orders_layer, orders_server};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tower::ServiceBuilder;

const BOUND_ELSEWHERE: &str = r#"Bearer error="invalid_token", error_description="the token is bound to another client certificate""#;
const NEEDS_BOUND: &str = r#"Bearer error="invalid_token", error_description="this method needs a sender-constrained token""#;
const SPIFFE_A: &str = "spiffe://orders.test/client-a";

/// A token for `scope`, bound to `certificate` when given (`cnf.x5t#S256`).
fn bound_token(scope: &str, certificate: Option<&Issued>) -> String {
    let mut payload = claims(scope);
    if let Some(certificate) = certificate {
        payload["cnf"] = json!({ "x5t#S256": certificate.thumbprint() });
    }
    sign_json(&header(TestKey::Rsa1), &payload, TestKey::Rsa1)
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII"),
    );
    request
}

async fn who_am_i(channel: &Channel, token: &str) -> Result<examples::pb::WhoAmIResponse, Status> {
    OrdersClient::new(channel.clone())
        .who_am_i(with_token(WhoAmIRequest {}, token))
        .await
        .map(tonic::Response::into_inner)
}

struct Setup {
    pki: Pki,
    a: Issued,
    b: Issued,
    server: TestServer,
}

/// A server asking for (but not requiring) client certificates, so that one test can use
/// connections with certificate A, certificate B and none.
async fn setup(layer: OAuthLayer) -> Setup {
    let pki = Pki::new("oauth-grpc test CA");
    let a = pki.client("client-a", Some(SPIFFE_A));
    let b = pki.client("client-b", None);
    let server = orders_server_tls(
        layer,
        examples::Store::default(),
        pki.server_tls(ClientCerts::Optional),
    )
    .await
    .expect("server starts");
    Setup { pki, a, b, server }
}

impl Setup {
    async fn channel(&self, identity: Option<&Issued>) -> Channel {
        channel(&self.server, self.pki.client_tls(identity))
            .await
            .expect("the TLS handshake succeeds")
    }
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, code: Code, expected: &str) {
    let status = result.expect_err("the call is refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(challenge(&status), expected);
}

#[tokio::test]
async fn a_bound_token_works_only_with_its_certificate() {
    let setup = setup(orders_layer()).await;
    let token = bound_token("orders:read", Some(&setup.a));

    let answer = who_am_i(&setup.channel(Some(&setup.a)).await, &token)
        .await
        .expect("bound token + its certificate → OK");
    assert_eq!(answer.client_certificate, setup.a.thumbprint());
    assert_eq!(answer.spiffe_id, SPIFFE_A);
    assert!(answer.sender_constrained);

    // Another certificate of the same CA, and a TLS connection without one.
    let other = who_am_i(&setup.channel(Some(&setup.b)).await, &token).await;
    assert_refused(other, Code::Unauthenticated, BOUND_ELSEWHERE);
    let none = who_am_i(&setup.channel(None).await, &token).await;
    assert_refused(none, Code::Unauthenticated, BOUND_ELSEWHERE);
}

#[tokio::test]
async fn a_bound_token_is_refused_over_plaintext() {
    let pki = Pki::new("oauth-grpc test CA");
    let a = pki.client("client-a", None);
    let server = orders_server(orders_layer(), examples::Store::default())
        .await
        .expect("server starts");
    let channel = server.channel().await.expect("connects");
    let refused = who_am_i(&channel, &bound_token("orders:read", Some(&a))).await;
    assert_refused(refused, Code::Unauthenticated, BOUND_ELSEWHERE);
}

#[tokio::test]
async fn a_cached_bound_token_is_still_checked_against_each_connection() {
    let setup = setup(orders_layer()).await;
    let token = bound_token("orders:read", Some(&setup.a));
    let a = setup.channel(Some(&setup.a)).await;
    let b = setup.channel(Some(&setup.b)).await;
    // The first call verifies the token and caches it; every later call is a cache hit.
    for _ in 0..3 {
        who_am_i(&a, &token).await.expect("its certificate → OK");
        assert_refused(
            who_am_i(&b, &token).await,
            Code::Unauthenticated,
            BOUND_ELSEWHERE,
        );
    }
    // The same holds for a new connection of the other certificate after the hits.
    let b_again = setup.channel(Some(&setup.b)).await;
    assert_refused(
        who_am_i(&b_again, &token).await,
        Code::Unauthenticated,
        BOUND_ELSEWHERE,
    );
}

#[tokio::test]
async fn a_bound_method_refuses_plain_bearer_tokens() {
    let setup = setup(orders_layer()).await;
    let plain = token(TestKey::Rsa1, "orders:admin");
    let purge = |channel: Channel, token: String| async move {
        OrdersAdminClient::new(channel)
            .purge_cancelled(with_token(PurgeCancelledRequest {}, &token))
            .await
    };
    // A plain token with the right scope, even on a connection with a certificate.
    assert_refused(
        purge(setup.channel(Some(&setup.a)).await, plain.clone()).await,
        Code::Unauthenticated,
        NEEDS_BOUND,
    );
    assert_refused(
        purge(setup.channel(None).await, plain.clone()).await,
        Code::Unauthenticated,
        NEEDS_BOUND,
    );
    // Bound to the connection's certificate: admitted, and the scope rule still applies.
    purge(
        setup.channel(Some(&setup.a)).await,
        bound_token("orders:admin", Some(&setup.a)),
    )
    .await
    .expect("bound admin token → OK");
    assert_refused(
        purge(
            setup.channel(Some(&setup.a)).await,
            bound_token("orders:read", Some(&setup.a)),
        )
        .await,
        Code::PermissionDenied,
        r#"Bearer error="insufficient_scope", scope="orders:admin""#,
    );
    // A method without `bound` still takes plain tokens.
    who_am_i(&setup.channel(Some(&setup.a)).await, &plain)
        .await
        .expect("plain token on an unbound method → OK");
}

#[tokio::test]
async fn the_layer_wide_setting_refuses_plain_tokens_everywhere_but_public_methods() {
    let setup = setup(orders_layer().require_sender_constrained(true)).await;
    let channel = setup.channel(Some(&setup.a)).await;
    let plain = token(TestKey::Rsa1, "orders:read");
    assert_refused(
        who_am_i(&channel, &plain).await,
        Code::Unauthenticated,
        NEEDS_BOUND,
    );
    let get = OrdersClient::new(channel.clone())
        .get_order(with_token(GetOrderRequest { id: "1".into() }, &plain))
        .await;
    assert_refused(get, Code::Unauthenticated, NEEDS_BOUND);
    who_am_i(&channel, &bound_token("orders:read", Some(&setup.a)))
        .await
        .expect("bound token → OK");
    OrdersClient::new(channel)
        .get_http_status(examples::pb::GetHttpStatusRequest {})
        .await
        .expect("a public method needs no token at all");
}

#[tokio::test]
async fn a_confirmation_that_cannot_be_checked_is_refused() {
    let setup = setup(orders_layer()).await;
    let channel = setup.channel(Some(&setup.a)).await;
    let unsupported = r#"Bearer error="invalid_token", error_description="the token is bound by a confirmation method this server cannot check""#;
    let invalid =
        r#"Bearer error="invalid_token", error_description="the token has an invalid claim""#;
    for (cnf, expected) in [
        (json!({ "x5t": "c2hhMS10aHVtYnByaW50" }), unsupported),
        (
            json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }),
            unsupported,
        ),
        (json!({ "jwk": { "kty": "EC" } }), unsupported),
        (json!({}), unsupported),
        (json!({ "x5t#S256": "not-a-thumbprint" }), invalid),
        (json!("x5t#S256"), invalid),
    ] {
        let mut payload = claims("orders:read");
        payload["cnf"] = cnf.clone();
        let token = sign_json(&header(TestKey::Rsa1), &payload, TestKey::Rsa1);
        let status = who_am_i(&channel, &token)
            .await
            .expect_err("an unusable cnf is refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{cnf}");
        assert_eq!(challenge(&status), expected, "{cnf}");
    }
    // Members beside `x5t#S256` are not read: the certificate binding is still enforced.
    let mut payload = claims("orders:read");
    payload["cnf"] = json!({ "x5t#S256": setup.a.thumbprint(), "future": true });
    let token = sign_json(&header(TestKey::Rsa1), &payload, TestKey::Rsa1);
    who_am_i(&channel, &token)
        .await
        .expect("its certificate → OK");
    let other = setup.channel(Some(&setup.b)).await;
    assert_refused(
        who_am_i(&other, &token).await,
        Code::Unauthenticated,
        BOUND_ELSEWHERE,
    );
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_fails_the_handshake() {
    let pki = Pki::new("oauth-grpc test CA");
    let server = orders_server_tls(
        orders_layer(),
        examples::Store::default(),
        pki.server_tls(ClientCerts::Required),
    )
    .await
    .expect("server starts");
    let stranger = Pki::new("another CA").client("mallory", None);
    let token = token(TestKey::Rsa1, "orders:read");
    // rustls on the server refuses the certificate during the handshake; depending on
    // timing the client sees it when connecting or on its first call.
    let outcome = match channel(&server, pki.client_tls(Some(&stranger))).await {
        Err(_) => None,
        Ok(channel) => Some(who_am_i(&channel, &token).await),
    };
    if let Some(result) = outcome {
        let status = result.expect_err("no call gets through");
        assert_handshake_refused(&status, "UnknownCA");
    }
    // No certificate at all is refused by the handshake too, and the CA's own certificate
    // gets through.
    let outcome = match channel(&server, pki.client_tls(None)).await {
        Err(_) => None,
        Ok(channel) => Some(who_am_i(&channel, &token).await),
    };
    if let Some(result) = outcome {
        assert_handshake_refused(&result.expect_err("refused"), "CertificateRequired");
    }
    let a = pki.client("client-a", None);
    let channel = channel(&server, pki.client_tls(Some(&a)))
        .await
        .expect("handshake with a certificate of the CA");
    who_am_i(&channel, &token).await.expect("OK");
}

/// A call on a connection whose TLS 1.3 handshake the server ended with `alert` (seen by
/// the client on its first read, as a transport error): no request reached the layer.
fn assert_handshake_refused(status: &Status, alert: &str) {
    assert!(
        matches!(status.code(), Code::Unknown | Code::Unavailable),
        "{status:?}"
    );
    let chain = format!("{status:?}");
    assert!(chain.contains(alert), "{chain}");
}

#[tokio::test]
async fn the_principal_and_the_audit_event_carry_the_client_certificate() {
    type Seen = (Decision, &'static str, Option<ClientCertificate>, bool);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = seen.clone();
    let layer = orders_layer().audit_sink(move |event: &AuditEvent<'_>| {
        sink.lock().expect("not poisoned").push((
            event.decision,
            event.reason,
            event.client_certificate.cloned(),
            event
                .principal
                .is_some_and(oauth_grpc::Principal::is_sender_constrained),
        ));
    });
    let setup = setup(layer).await;
    let channel = setup.channel(Some(&setup.a)).await;
    who_am_i(&channel, &bound_token("orders:read", Some(&setup.a)))
        .await
        .expect("OK");
    let plain = who_am_i(&channel, &token(TestKey::Rsa1, "orders:read"))
        .await
        .expect("a plain token on an unbound method → OK");
    assert_eq!(plain.client_certificate, setup.a.thumbprint());
    assert!(!plain.sender_constrained);
    let b = setup.channel(Some(&setup.b)).await;
    let _ = who_am_i(&b, &bound_token("orders:read", Some(&setup.a))).await;

    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let (decision, reason, certificate, bound) = &seen[0];
    assert_eq!(
        (*decision, *reason, *bound),
        (Decision::Allow, "authorized", true)
    );
    let certificate = certificate.as_ref().expect("the client certificate");
    assert_eq!(certificate.thumbprint(), setup.a.thumbprint());
    assert_eq!(certificate.subject(), "CN=client-a");
    assert_eq!(certificate.uris(), [SPIFFE_A]);
    assert_eq!(certificate.dns_names(), ["client-a.orders.test"]);
    assert_eq!(certificate.spiffe_id(), Some(SPIFFE_A));
    assert!(!seen[1].3, "a plain token is not sender-constrained");
    // The refusal names the certificate that came, not the one the token is bound to.
    let (decision, reason, certificate, _) = &seen[2];
    assert_eq!(
        (*decision, *reason),
        (Decision::Deny, "certificate_mismatch")
    );
    let certificate = certificate.as_ref().expect("the client certificate");
    assert_eq!(certificate.thumbprint(), setup.b.thumbprint());
    assert_eq!(certificate.spiffe_id(), None);
}

#[tokio::test]
async fn the_audit_peer_is_filled_behind_tls() {
    let peers: Arc<Mutex<Vec<Option<std::net::SocketAddr>>>> = Arc::default();
    let sink = peers.clone();
    let layer = orders_layer().audit_sink(move |event: &AuditEvent<'_>| {
        sink.lock().expect("not poisoned").push(event.peer);
    });
    let setup = setup(layer).await;
    for identity in [Some(&setup.a), None] {
        let channel = setup.channel(identity).await;
        who_am_i(&channel, &token(TestKey::Rsa1, "orders:read"))
            .await
            .expect("OK");
    }
    let peers = peers.lock().expect("not poisoned").clone();
    assert_eq!(peers.len(), 2);
    for peer in peers {
        let peer = peer.expect("the peer address behind TLS");
        assert!(peer.ip().is_loopback(), "{peer}");
    }
}

#[tokio::test]
async fn an_introspected_bound_token_is_checked_like_a_jwt() {
    use oauth_grpc::{Introspection, Validator};
    use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider};

    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let setup_pki = Pki::new("oauth-grpc test CA");
    let a = setup_pki.client("client-a", None);
    let b = setup_pki.client("client-b", None);
    // Without keys every token is introspected.
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(oauth_grpc_tests::issuer::AUDIENCE)
        .introspection(Introspection::new(
            idp.introspection_url(),
            CLIENT_ID,
            oauth_grpc::ClientSecret::new(CLIENT_SECRET),
        ))
        .build()
        .expect("validator builds");
    let mut answer: Value = json!({
        "active": true,
        "iss": idp.issuer(),
        "aud": oauth_grpc_tests::issuer::AUDIENCE,
        "sub": "alice",
        "scope": "orders:read",
        "exp": oauth_grpc_tests::issuer::now() + 300,
    });
    answer["cnf"] = json!({ "x5t#S256": a.thumbprint() });
    idp.set_introspection("opaque-bound-token", answer);
    let layer = OAuthLayer::new(
        validator,
        oauth_grpc::PolicySet::new()
            .service::<examples::OrderBook>()
            .service::<examples::AdminDesk>(),
    );
    let server = orders_server_tls(
        layer,
        examples::Store::default(),
        setup_pki.server_tls(ClientCerts::Optional),
    )
    .await
    .expect("server starts");
    let with_a = channel(&server, setup_pki.client_tls(Some(&a)))
        .await
        .expect("handshake");
    let with_b = channel(&server, setup_pki.client_tls(Some(&b)))
        .await
        .expect("handshake");
    let answer = who_am_i(&with_a, "opaque-bound-token")
        .await
        .expect("its certificate → OK");
    assert!(answer.sender_constrained);
    assert_refused(
        who_am_i(&with_b, "opaque-bound-token").await,
        Code::Unauthenticated,
        BOUND_ELSEWHERE,
    );
}

/// A token source authenticating to `endpoint` with `client`'s certificate (RFC 8705 §2),
/// trusting the test CA for the endpoint's own certificate.
fn certificate_source(
    pki: &Pki,
    endpoint: &BindingTokenEndpoint,
    client: &Issued,
    scope: &str,
) -> ClientCredentials {
    let pem = format!("{}{}", client.cert_pem, client.key_pem);
    let builder = reqwest::Client::builder()
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity PEM"))
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem().as_bytes()).expect("CA PEM")]);
    ClientCredentials::new(
        endpoint.url(),
        "orders-client",
        ClientAuthentication::TlsClientAuth,
    )
    .http_client(HttpClient::from_builder(builder).expect("HTTP client"))
    .scope(scope)
}

#[tokio::test]
async fn a_client_with_a_certificate_fetches_a_bound_token_and_calls_over_mtls() {
    let setup = setup(orders_layer()).await;
    let endpoint = BindingTokenEndpoint::start(&setup.pki).await;

    // The token is fetched with certificate A, so the endpoint binds it to A; the channel
    // presents A too: the bound method admits it.
    let source = certificate_source(&setup.pki, &endpoint, &setup.a, "orders:admin orders:read");
    let channel = ServiceBuilder::new()
        .layer(BearerLayer::new(source))
        .service(setup.channel(Some(&setup.a)).await);
    OrdersAdminClient::new(channel.clone())
        .purge_cancelled(PurgeCancelledRequest {})
        .await
        .expect("a bound token on its certificate's connection → OK");
    let me = OrdersClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("OK")
        .into_inner();
    assert!(me.sender_constrained);
    assert_eq!(me.subject, "orders-client");
    assert_eq!(endpoint.requests(), 1, "one token serves both calls");

    // The same kind of token, fetched with A, sent on a connection presenting B.
    let source = certificate_source(&setup.pki, &endpoint, &setup.a, "orders:read");
    let channel = ServiceBuilder::new()
        .layer(BearerLayer::new(source))
        .service(setup.channel(Some(&setup.b)).await);
    assert_refused(
        OrdersClient::new(channel).who_am_i(WhoAmIRequest {}).await,
        Code::Unauthenticated,
        BOUND_ELSEWHERE,
    );
}

#[tokio::test]
async fn tls_client_auth_without_a_certificate_is_a_configuration_error() {
    use oauth_grpc::client::{FetchError, TokenSource};

    let source = ClientCredentials::new(
        "https://127.0.0.1:1/token",
        "orders-client",
        ClientAuthentication::TlsClientAuth,
    );
    let error = source
        .fetch()
        .await
        .expect_err("nothing to authenticate with");
    assert!(matches!(&error, FetchError::Config(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("HttpClient::with_client_certificate"),
        "{error}"
    );

    // A certificate the endpoint does not trust: its TLS handshake refuses the client, and
    // no token is issued.
    let pki = Pki::new("oauth-grpc test CA");
    let endpoint = BindingTokenEndpoint::start(&pki).await;
    let stranger = Pki::new("another CA").client("mallory", None);
    let error = certificate_source(&pki, &endpoint, &stranger, "orders:read")
        .fetch()
        .await
        .expect_err("the handshake fails");
    assert!(matches!(error, FetchError::Unreachable(_)), "{error:?}");
    assert_eq!(endpoint.requests(), 0);

    // `with_client_certificate` refuses PEM that holds no key, naming the fix.
    let error =
        HttpClient::with_client_certificate(b"not PEM", b"").expect_err("no certificate, no key");
    assert!(error.to_string().contains("PEM private key"), "{error}");
}

#[tokio::test]
async fn the_validator_alone_checks_the_binding_against_a_presented_certificate() {
    let pki = Pki::new("oauth-grpc test CA");
    let (a, b) = (pki.client("client-a", None), pki.client("client-b", None));
    let validator = oauth_grpc_tests::validator();
    let bound = bound_token("orders:read", Some(&a));
    let a_cert = ClientCertificate::from_der(&a.der).expect("an rcgen certificate parses");
    let b_cert = ClientCertificate::from_der(&b.der).expect("parses");

    // Without a certificate, as a plaintext call would be: refused, fail closed.
    assert_eq!(
        validator.validate(&bound).await,
        Err(oauth_grpc::TokenError::CertificateMismatch)
    );
    assert_eq!(
        validator.validate_at(&bound, std::time::SystemTime::now()),
        Err(oauth_grpc::TokenError::CertificateMismatch)
    );
    let caller = validator
        .validate_presented(&bound, &a_cert)
        .await
        .expect("its certificate");
    assert!(caller.is_sender_constrained());
    assert_eq!(caller.client_certificate(), Some(&a_cert));
    assert_eq!(
        validator.validate_presented(&bound, &b_cert).await,
        Err(oauth_grpc::TokenError::CertificateMismatch)
    );
    // A plain token is a plain token, with or without a certificate.
    let plain = token(TestKey::Rsa1, "orders:read");
    assert!(validator.validate(&plain).await.is_ok());
    let caller = validator
        .validate_presented(&plain, &a_cert)
        .await
        .expect("a plain token");
    assert!(!caller.is_sender_constrained());
}
