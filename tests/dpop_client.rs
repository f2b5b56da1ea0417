//! The client side of DPoP (RFC 9449), against the test identity provider over HTTP and a
//! tonic server on 127.0.0.1 that records what each call carried. Proofs are checked by the
//! tests' own checker (`oauth_grpc_tests::dpop`, on `jsonwebtoken`), not by the client's
//! code: DPoP-bound tokens fetched with proofs (client credentials and token exchange);
//! `authorization: DPoP` with a fresh proof per call (`htu`, `ath`, `jti`); the provider's
//! and the server's nonces learnt from a refusal and followed once; a client stream too
//! large to replay returned, its nonce kept; bearer tokens still sent as bearer; refusals
//! that drop the token or keep it; tokens that are not sent at all. And end to end: our
//! `BearerLayer` with a `DpopKey` against our `OAuthLayer` checking DPoP (with and without
//! server nonces, and with a proof of another key).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::pb::{WatchOrdersRequest, WhoAmIRequest};
use examples::{OrderBook, Store};
use oauth_grpc::audit::{AuditEvent, Decision};
use oauth_grpc::client::{
    Bearer, BearerLayer, ClientAuthentication, ClientCredentials, DpopKey, FetchError, StaticToken,
    TokenExchange, TokenSource,
};
use oauth_grpc::{ClientSecret, Dpop, DpopNonces, KeySet, OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::TestServer;
use oauth_grpc_tests::dpop::{CheckedProof, ath as token_hash, check, jwt_claims};
use oauth_grpc_tests::idp::{IdentityProvider, TOKEN_CLIENT_ID, TOKEN_CLIENT_SECRET};
use oauth_grpc_tests::issuer::{self, AUDIENCE, TestKey};
use oauth_grpc_tests::pb::Msg;
use oauth_grpc_tests::pb::echo_client::EchoClient;
use oauth_grpc_tests::pb::echo_server::{Echo, EchoServer};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};
use tower::ServiceBuilder;

/// What one call carried.
#[derive(Clone, Debug)]
struct Call {
    authorization: Option<String>,
    proof: Option<String>,
}

impl Call {
    /// The proof, checked.
    fn checked(&self) -> CheckedProof {
        let proof = self.proof.as_deref().expect("the call carried a proof");
        check(proof).unwrap_or_else(|why| panic!("the proof is refused: {why}"))
    }
}

/// How the server treats calls: it records each, and may demand a nonce (before the handler,
/// as an `OAuthLayer` does, or in `collect` after reading the whole client stream) or refuse
/// the next call with a challenge.
#[derive(Default)]
struct Rules {
    calls: Mutex<Vec<Call>>,
    nonce: Mutex<Option<String>>,
    /// The nonce is checked by `collect` after reading its stream, not before the handler.
    late: std::sync::atomic::AtomicBool,
    refuse_next: Mutex<Option<&'static str>>,
}

impl Rules {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    fn demand_nonce(&self, nonce: &str) {
        *self.nonce.lock().expect("lock") = Some(nonce.to_owned());
    }

    fn refuse_next(&self, challenge: &'static str) {
        *self.refuse_next.lock().expect("lock") = Some(challenge);
    }

    /// A refusal asking for the nonce, as RFC 9449 §9 shows it, unless `proof` carries it.
    fn check_nonce(&self, proof: Option<&str>) -> Result<(), Status> {
        let Some(nonce) = self.nonce.lock().expect("lock").clone() else {
            return Ok(());
        };
        let carried = proof.and_then(|p| check(p).ok());
        if carried.is_some_and(|p| p.claim("nonce") == nonce) {
            return Ok(());
        }
        let mut status = Status::unauthenticated("a DPoP nonce is needed");
        status.metadata_mut().insert(
            "www-authenticate",
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256""#
                .parse()
                .expect("a header value"),
        );
        status
            .metadata_mut()
            .insert("dpop-nonce", nonce.parse().expect("a header value"));
        Err(status)
    }

    /// Records the call; refuses it as told. Runs before the request body is read.
    fn gate(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let text = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let call = Call {
            authorization: text("authorization"),
            proof: text("dpop"),
        };
        self.calls.lock().expect("lock").push(call.clone());
        if let Some(challenge) = self.refuse_next.lock().expect("lock").take() {
            let mut status = Status::unauthenticated("refused");
            status.metadata_mut().insert(
                "www-authenticate",
                challenge.parse().expect("a header value"),
            );
            return Err(status);
        }
        if !self.late.load(std::sync::atomic::Ordering::SeqCst) {
            self.check_nonce(call.proof.as_deref())?;
        }
        Ok(request)
    }
}

struct Recorded(Arc<Rules>);

#[tonic::async_trait]
impl Echo for Recorded {
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        let text = request.into_inner().text.to_uppercase();
        Ok(Response::new(Msg { text }))
    }

    type SayManyStream = tokio_stream::Iter<std::vec::IntoIter<Result<Msg, Status>>>;

    async fn say_many(
        &self,
        request: Request<Msg>,
    ) -> Result<Response<Self::SayManyStream>, Status> {
        let text = request.into_inner().text;
        let answers: Vec<Result<Msg, Status>> = (1..=3)
            .map(|n| {
                Ok(Msg {
                    text: format!("{text} {n}"),
                })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(answers)))
    }

    async fn collect(&self, request: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        let proof = request
            .metadata()
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut stream = request.into_inner();
        let mut length = 0;
        while let Some(msg) = stream.next().await {
            length += msg?.text.len();
        }
        if self.0.late.load(std::sync::atomic::Ordering::SeqCst) {
            self.0.check_nonce(proof.as_deref())?;
        }
        Ok(Response::new(Msg {
            text: length.to_string(),
        }))
    }

    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

/// The recording echo server on 127.0.0.1.
async fn recording_server() -> (TestServer, Arc<Rules>) {
    let rules = Arc::new(Rules::default());
    let gate = rules.clone();
    let service =
        EchoServer::with_interceptor(Recorded(rules.clone()), move |request| gate.gate(request));
    let router = tonic::transport::Server::builder().add_service(service);
    let server = TestServer::start(router).await.expect("bind");
    (server, rules)
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

async fn echo(server: &TestServer, layer: BearerLayer) -> EchoClient<Bearer<Channel>> {
    let channel = server.channel().await.expect("connect");
    EchoClient::new(ServiceBuilder::new().layer(layer).service(channel))
}

fn msg(text: &str) -> Msg {
    Msg { text: text.into() }
}

/// The checked proof of each token request the provider received.
fn token_request_proofs(idp: &IdentityProvider) -> Vec<CheckedProof> {
    idp.dpop_proofs()
        .iter()
        .map(|proof| {
            let proof = proof.as_deref().expect("the token request carried a proof");
            check(proof).unwrap_or_else(|why| panic!("the proof is refused: {why}"))
        })
        .collect()
}

#[tokio::test]
async fn client_credentials_get_a_dpop_bound_token_with_a_proof() {
    let idp = IdentityProvider::start(&[]).await;
    let key = DpopKey::generate().expect("a key");
    let source = credentials(&idp).dpop(key.clone());
    let token = source.fetch().await.expect("a token");
    assert!(token.is_dpop());
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(
        jwt_claims(token.secret())["cnf"]["jkt"],
        key.thumbprint(),
        "the provider bound the token to the key"
    );
    source.fetch().await.expect("a second token");
    let proofs = token_request_proofs(&idp);
    assert_eq!(proofs.len(), 2);
    for proof in &proofs {
        assert_eq!(proof.jkt, key.thumbprint());
        assert_eq!(proof.claim("htm"), "POST");
        assert_eq!(proof.claim("htu"), idp.token_url());
        assert!(
            proof.claims.get("ath").is_none(),
            "no ath at the token endpoint"
        );
        assert!(proof.claims.get("nonce").is_none());
        assert_eq!(proof.header["alg"], "ES256");
    }
    assert_ne!(proofs[0].claim("jti"), proofs[1].claim("jti"));
}

#[tokio::test]
async fn every_pem_key_type_gets_a_bound_token() {
    let idp = IdentityProvider::start(&[]).await;
    for (key, alg) in [
        (TestKey::Ec256, oauth_grpc::Algorithm::ES256),
        (TestKey::Ec384, oauth_grpc::Algorithm::ES384),
        (TestKey::Ed25519, oauth_grpc::Algorithm::EdDSA),
        (TestKey::Rsa2, oauth_grpc::Algorithm::PS256),
        (TestKey::Rsa2, oauth_grpc::Algorithm::RS256),
    ] {
        let key = DpopKey::from_pem(key.private_pem(), alg).expect("the test key loads");
        let token = credentials(&idp).dpop(key.clone()).fetch().await;
        let token = token.unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(token.is_dpop(), "{alg:?}");
        assert_eq!(jwt_claims(token.secret())["cnf"]["jkt"], key.thumbprint());
    }
}

#[tokio::test]
async fn the_providers_nonce_is_followed_once_and_kept() {
    let idp = IdentityProvider::start(&[]).await;
    idp.require_dpop_nonce(Some("idp-nonce-1"));
    let key = DpopKey::generate().expect("a key");
    let source = credentials(&idp).dpop(key.clone());
    let token = source.fetch().await.expect("a token after one retry");
    assert!(token.is_dpop());
    let proofs = token_request_proofs(&idp);
    assert_eq!(
        proofs.len(),
        2,
        "refused for the nonce, then sent again once"
    );
    assert!(proofs[0].claims.get("nonce").is_none());
    assert_eq!(proofs[1].claim("nonce"), "idp-nonce-1");
    assert_ne!(proofs[0].claim("jti"), proofs[1].claim("jti"));

    // The nonce is kept: the next request carries it at once.
    source.fetch().await.expect("a token");
    let proofs = token_request_proofs(&idp);
    assert_eq!(proofs.len(), 3);
    assert_eq!(proofs[2].claim("nonce"), "idp-nonce-1");

    // A new nonce: the kept one is refused, the new one followed.
    idp.require_dpop_nonce(Some("idp-nonce-2"));
    source.fetch().await.expect("a token");
    let proofs = token_request_proofs(&idp);
    assert_eq!(proofs.len(), 5);
    assert_eq!(proofs[3].claim("nonce"), "idp-nonce-1");
    assert_eq!(proofs[4].claim("nonce"), "idp-nonce-2");
}

#[tokio::test]
async fn a_token_the_provider_did_not_bind_is_discarded() {
    let idp = IdentityProvider::start(&[]).await;
    idp.set_dpop_binding(false); // a provider without DPoP: bearer tokens
    let key = DpopKey::generate().expect("a key");
    let error = credentials(&idp)
        .dpop(key.clone())
        .fetch()
        .await
        .expect_err("a bearer token is discarded");
    assert!(
        matches!(&error, FetchError::NotBound { token_type } if token_type == "Bearer"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("did not bind the token"),
        "{error}"
    );

    // Through the layer, nothing is sent.
    let (server, rules) = recording_server().await;
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .dpop(key, &server.url())
        .expect("an origin");
    let status = echo(&server, layer)
        .await
        .say(msg("hi"))
        .await
        .expect_err("no token, no call");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("did not bind the token"),
        "{status:?}"
    );
    assert!(rules.calls().is_empty());
}

#[tokio::test]
async fn token_exchange_gets_a_dpop_bound_token_following_the_nonce() {
    let idp = IdentityProvider::start(&[]).await;
    idp.require_dpop_nonce(Some("exchange-nonce"));
    let key = DpopKey::generate().expect("a key");
    let source = TokenExchange::new(
        idp.token_url(),
        TOKEN_CLIENT_ID,
        ClientAuthentication::SecretBasic(ClientSecret::new(TOKEN_CLIENT_SECRET)),
        issuer::token(TestKey::Rsa1, "orders:read"),
    )
    .audience(AUDIENCE)
    .dpop(key.clone());
    let token = source.fetch().await.expect("an exchanged token");
    assert!(token.is_dpop());
    assert_eq!(jwt_claims(token.secret())["cnf"]["jkt"], key.thumbprint());
    assert_eq!(jwt_claims(token.secret())["sub"], "alice");
    let proofs = token_request_proofs(&idp);
    assert_eq!(proofs.len(), 2);
    assert_eq!(proofs[1].claim("nonce"), "exchange-nonce");
    assert_eq!(proofs[1].claim("htu"), idp.token_url());
}

#[tokio::test]
async fn every_call_carries_the_dpop_token_and_a_fresh_proof() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, rules) = recording_server().await;
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .dpop(key.clone(), &server.url())
        .expect("an origin");
    let mut client = echo(&server, layer.clone()).await;
    for n in 0..3 {
        let answer = client.say(msg(&format!("hi {n}"))).await.expect("allowed");
        assert_eq!(answer.into_inner().text, format!("hi {n}"));
    }
    let mut stream = client
        .say_many(msg("many"))
        .await
        .expect("allowed")
        .into_inner();
    let mut answers = Vec::new();
    while let Some(answer) = stream.next().await {
        answers.push(answer.expect("an answer").text);
    }
    assert_eq!(answers, ["many 1", "many 2", "many 3"]);

    let token = layer.token().await.expect("the cached token");
    assert_eq!(idp.token_requests(), 1, "one token for every call");
    let calls = rules.calls();
    assert_eq!(calls.len(), 4);
    let mut jtis = std::collections::HashSet::new();
    for (call, method) in calls.iter().zip(["Say", "Say", "Say", "SayMany"]) {
        assert_eq!(
            call.authorization.as_deref(),
            Some(&*format!("DPoP {token}"))
        );
        let proof = call.checked();
        assert_eq!(proof.jkt, key.thumbprint());
        assert_eq!(proof.claim("htm"), "POST");
        assert_eq!(
            proof.claim("htu"),
            format!("{}/ui.v1.Echo/{method}", server.url())
        );
        assert_eq!(proof.claim("ath"), token_hash(&token));
        assert!(proof.claims.get("nonce").is_none());
        assert!(
            jtis.insert(proof.claim("jti").to_owned()),
            "a jti came twice"
        );
    }
}

#[tokio::test]
async fn a_bearer_token_is_sent_as_bearer_by_a_dpop_layer() {
    let (server, rules) = recording_server().await;
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(StaticToken::new("plain-token"))
        .dpop(key, &server.url())
        .expect("an origin");
    echo(&server, layer)
        .await
        .say(msg("hi"))
        .await
        .expect("allowed");
    let calls = rules.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Bearer plain-token")
    );
    assert_eq!(calls[0].proof, None);
}

#[tokio::test]
async fn the_servers_nonce_is_learnt_from_a_refusal_and_the_call_sent_again() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, rules) = recording_server().await;
    rules.demand_nonce("server-nonce-1");
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .dpop(key, &server.url())
        .expect("an origin");
    let mut client = echo(&server, layer).await;
    let answer = client
        .say(msg("first"))
        .await
        .expect("allowed on the second sending");
    assert_eq!(
        answer.into_inner().text,
        "first",
        "the same request body, sent again"
    );
    let calls = rules.calls();
    assert_eq!(calls.len(), 2, "refused once, sent again once");
    assert!(calls[0].checked().claims.get("nonce").is_none());
    assert_eq!(calls[1].checked().claim("nonce"), "server-nonce-1");
    assert_ne!(
        calls[0].checked().claim("jti"),
        calls[1].checked().claim("jti")
    );
    assert_eq!(calls[0].authorization, calls[1].authorization);

    // The nonce is kept for the next calls.
    client.shout(msg("second")).await.expect("allowed at once");
    let calls = rules.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2].checked().claim("nonce"), "server-nonce-1");

    // A new nonce, on a server-streaming call: refused, learnt, sent again.
    rules.demand_nonce("server-nonce-2");
    let mut stream = client
        .say_many(msg("many"))
        .await
        .expect("allowed")
        .into_inner();
    let mut answers = 0;
    while let Some(answer) = stream.next().await {
        answer.expect("an answer");
        answers += 1;
    }
    assert_eq!(answers, 3);
    let calls = rules.calls();
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[3].checked().claim("nonce"), "server-nonce-1");
    assert_eq!(calls[4].checked().claim("nonce"), "server-nonce-2");
    assert_eq!(idp.token_requests(), 1, "a nonce refusal keeps the token");
}

#[tokio::test]
async fn a_small_client_stream_is_sent_again_and_a_large_one_is_not() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, rules) = recording_server().await;
    // The server reads the whole stream before it asks for the nonce.
    rules.late.store(true, std::sync::atomic::Ordering::SeqCst);
    rules.demand_nonce("late-1");
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .dpop(key, &server.url())
        .expect("an origin");
    let mut client = echo(&server, layer).await;

    // 100 KiB read by the server: more than the layer keeps, so the refusal is returned.
    let large: Vec<Msg> = (0..100).map(|_| msg(&"x".repeat(1024))).collect();
    let status = client
        .collect(tokio_stream::iter(large))
        .await
        .expect_err("not sent again");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        oauth_grpc_tests::challenge(&status).contains(r#"error="use_dpop_nonce""#),
        "{status:?}"
    );
    assert_eq!(rules.calls().len(), 1);

    // The nonce was kept: the same stream now passes at once.
    let large: Vec<Msg> = (0..100).map(|_| msg(&"x".repeat(1024))).collect();
    let answer = client
        .collect(tokio_stream::iter(large))
        .await
        .expect("allowed");
    assert_eq!(answer.into_inner().text, (100 * 1024).to_string());
    assert_eq!(rules.calls().len(), 2);
    assert_eq!(rules.calls()[1].checked().claim("nonce"), "late-1");

    // A small stream under a new nonce is recorded whole and sent again.
    rules.demand_nonce("late-2");
    let small = vec![msg("a"), msg("bb"), msg("ccc")];
    let answer = client
        .collect(tokio_stream::iter(small))
        .await
        .expect("allowed");
    assert_eq!(
        answer.into_inner().text,
        "6",
        "the whole stream, sent again"
    );
    let calls = rules.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[2].checked().claim("nonce"), "late-1");
    assert_eq!(calls[3].checked().claim("nonce"), "late-2");
}

#[tokio::test]
async fn dpop_invalid_token_drops_the_token_and_invalid_dpop_proof_keeps_it() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, rules) = recording_server().await;
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .min_lifetime(Duration::ZERO)
        .dpop(key, &server.url())
        .expect("an origin");
    let mut client = echo(&server, layer).await;
    client.say(msg("hi")).await.expect("allowed");
    assert_eq!(idp.token_requests(), 1);

    rules.refuse_next(
        r#"DPoP error="invalid_dpop_proof", error_description="the proof is stale", algs="ES256""#,
    );
    let status = client.say(msg("hi")).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    client.say(msg("hi")).await.expect("allowed");
    assert_eq!(idp.token_requests(), 1, "a refused proof keeps the token");

    rules.refuse_next(
        r#"DPoP error="invalid_token", error_description="the token has expired", algs="ES256""#,
    );
    client.say(msg("hi")).await.expect_err("refused");
    client
        .say(msg("hi"))
        .await
        .expect("allowed with a new token");
    assert_eq!(idp.token_requests(), 2, "a refused token is dropped");
    let calls = rules.calls();
    let (old, new) = (&calls[3], &calls[4]);
    assert_ne!(old.authorization, new.authorization);
    assert_eq!(new.checked().claim("ath"), {
        let token = new.authorization.as_deref().unwrap_or_default();
        token_hash(token.strip_prefix("DPoP ").unwrap_or_default())
    });
}

#[tokio::test]
async fn a_dpop_token_is_never_sent_without_its_key() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, rules) = recording_server().await;
    let key = DpopKey::generate().expect("a key");

    // No key on the layer.
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()));
    let status = echo(&server, layer)
        .await
        .say(msg("hi"))
        .await
        .expect_err("not sent");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains(".dpop(key, origin)"),
        "{status:?}"
    );

    // Another key on the layer than the token source's.
    let other = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key))
        .dpop(other, &server.url())
        .expect("an origin");
    let status = echo(&server, layer)
        .await
        .say(msg("hi"))
        .await
        .expect_err("not sent");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("another DPoP key"), "{status:?}");
    assert!(rules.calls().is_empty(), "nothing reached the server");
}

/// What the protected server decided for each call: decision, reason, the proof key.
type Decisions = Arc<Mutex<Vec<(Decision, &'static str, Option<String>)>>>;

/// The orders service behind an `OAuthLayer` checking DPoP (`dpop`), trusting the
/// provider's tokens; records each decision.
async fn dpop_protected(idp: &IdentityProvider, dpop: Dpop) -> (TestServer, Decisions) {
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&issuer::jwks()).expect("jwks"))
        .build()
        .expect("validator");
    let decisions: Decisions = Arc::default();
    let record = decisions.clone();
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>())
        .dpop(dpop)
        .audit_sink(move |event: &AuditEvent<'_>| {
            let jkt = event
                .principal
                .and_then(|p| p.dpop_key_thumbprint().map(str::to_owned));
            record
                .lock()
                .expect("lock")
                .push((event.decision, event.reason, jkt));
        });
    let router = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(OrdersServer::new(OrderBook::new(Store::default())));
    let server = TestServer::serve(|i, s| router.serve_with_incoming_shutdown(i, s))
        .await
        .expect("bind");
    (server, decisions)
}

async fn orders(server: &TestServer, layer: BearerLayer) -> OrdersClient<Bearer<Channel>> {
    let channel = server.channel().await.expect("connect");
    OrdersClient::new(ServiceBuilder::new().layer(layer).service(channel))
}

fn decisions(decisions: &Decisions) -> Vec<(Decision, &'static str, Option<String>)> {
    decisions.lock().expect("lock").clone()
}

#[tokio::test]
async fn our_client_passes_our_servers_dpop_checks() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, seen) = dpop_protected(&idp, Dpop::new()).await;
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .dpop(key.clone(), &server.url())
        .expect("an origin");
    let mut client = orders(&server, layer).await;
    // Every call a fresh proof: the replay check accepts them all.
    for _ in 0..5 {
        let who = client
            .who_am_i(WhoAmIRequest {})
            .await
            .expect("allowed")
            .into_inner();
        assert_eq!(who.subject, TOKEN_CLIENT_ID);
    }
    let mut stream = client
        .watch_orders(WatchOrdersRequest {
            limit: 0,
            follow: false,
        })
        .await
        .expect("a server stream")
        .into_inner();
    while let Some(item) = stream.next().await {
        item.expect("an order");
    }
    let seen = decisions(&seen);
    assert_eq!(seen.len(), 6);
    for (decision, reason, jkt) in seen {
        assert_eq!((decision, reason), (Decision::Allow, "authorized"));
        assert_eq!(jkt.as_deref(), Some(key.thumbprint()));
    }
    assert_eq!(idp.token_requests(), 1);
}

#[tokio::test]
async fn our_client_follows_our_servers_nonce() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, seen) = dpop_protected(&idp, Dpop::new().nonces(DpopNonces::new())).await;
    let key = DpopKey::generate().expect("a key");
    let layer = BearerLayer::new(credentials(&idp).dpop(key.clone()))
        .dpop(key, &server.url())
        .expect("an origin");
    let mut client = orders(&server, layer).await;
    client
        .who_am_i(WhoAmIRequest {})
        .await
        .expect("allowed on the second sending, with the nonce");
    let first: Vec<_> = decisions(&seen).iter().map(|d| d.0).collect();
    assert_eq!(
        first,
        [Decision::Deny, Decision::Allow],
        "refused once for the nonce"
    );
    for _ in 0..3 {
        client.who_am_i(WhoAmIRequest {}).await.expect("allowed");
    }
    let seen = decisions(&seen);
    assert_eq!(seen.len(), 5, "the nonce is kept: no more refusals");
    assert!(seen[1..].iter().all(|d| d.0 == Decision::Allow), "{seen:?}");
}

/// A token fetched elsewhere, handed out as it is.
struct Fetched(oauth_grpc::client::AccessToken);

impl TokenSource for Fetched {
    fn fetch(&self) -> oauth_grpc::client::FetchFuture<'_> {
        let token = self.0.clone();
        Box::pin(async move { Ok(token) })
    }
}

#[tokio::test]
async fn our_server_refuses_our_client_proving_another_key() {
    let idp = IdentityProvider::start(&[]).await;
    let (server, seen) = dpop_protected(&idp, Dpop::new()).await;
    let key = DpopKey::generate().expect("a key");
    let token = credentials(&idp).dpop(key).fetch().await.expect("a token");
    // Only the token's type travels: the layer cannot tell the key apart.
    let token = oauth_grpc::client::AccessToken::new(token.secret(), None).with_token_type("DPoP");
    let other = DpopKey::generate().expect("another key");
    let layer = BearerLayer::new(Fetched(token))
        .dpop(other, &server.url())
        .expect("an origin");
    let status = orders(&server, layer)
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("another key");
    assert_eq!(status.code(), Code::Unauthenticated);
    let challenge = oauth_grpc_tests::challenge(&status);
    assert!(
        challenge.starts_with(r#"DPoP error="invalid_token""#),
        "{challenge}"
    );
    assert_eq!(decisions(&seen).len(), 1);
    assert_eq!(decisions(&seen)[0].0, Decision::Deny);
}
