//! DPoP (RFC 9449) on a real tonic server on 127.0.0.1: DPoP-bound tokens with proofs signed
//! by real keys, each check of the proof with its exact code and `www-authenticate`, the
//! binding of `cnf.jkt`, replay (also across 50 concurrent calls), server nonces, the `bound`
//! rule option, streams, introspected tokens, and the audit record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{GetOrderRequest, PurgeCancelledRequest, WatchOrdersRequest, WhoAmIRequest};
use jsonwebtoken::Algorithm;
use oauth_grpc::audit::{AuditEvent, Decision};
use oauth_grpc::{ClientSecret, Dpop, DpopNonces, Introspection, OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::dpop::{
    ALGS, ath, bound_token, proof, proof_claims, proof_header, public_jwk, sign_proof, thumbprint,
};
use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider};
use oauth_grpc_tests::issuer::{AUDIENCE, TestKey, b64, claims, header, now, sign_json, token};
use oauth_grpc_tests::{TestServer, challenge, orders_layer, orders_server, validator};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const WHO_AM_I: &str = "/orders.v1.Orders/WhoAmI";

fn invalid_proof(description: &str) -> String {
    format!(r#"DPoP error="invalid_dpop_proof", error_description="{description}", algs="{ALGS}""#)
}

fn invalid_token(description: &str) -> String {
    format!(r#"DPoP error="invalid_token", error_description="{description}", algs="{ALGS}""#)
}

struct Setup {
    server: TestServer,
    channel: Channel,
}

impl Setup {
    async fn new(layer: OAuthLayer) -> Self {
        let server = orders_server(layer, examples::Store::default())
            .await
            .expect("server starts");
        let channel = server.channel().await.expect("server reachable");
        Self { server, channel }
    }

    async fn dpop() -> Self {
        Self::new(orders_layer().dpop(Dpop::new())).await
    }

    /// The `htu` of a call to `path`.
    fn htu(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn who_am_i(
        &self,
        authorization: Option<&str>,
        proofs: &[&str],
    ) -> Result<tonic::Response<examples::pb::WhoAmIResponse>, Status> {
        OrdersClient::new(self.channel.clone())
            .who_am_i(with(WhoAmIRequest {}, authorization, proofs))
            .await
    }

    /// WhoAmI with `DPoP <token>` and one proof; the code and challenge of a refusal.
    async fn refusal(&self, token: &str, proof: &str) -> (Code, String) {
        let authorization = format!("DPoP {token}");
        match self.who_am_i(Some(&authorization), &[proof]).await {
            Ok(_) => (Code::Ok, "<none>".to_owned()),
            Err(status) => (status.code(), challenge(&status)),
        }
    }

    /// A good proof by `key` for WhoAmI with `token`.
    fn proof(&self, key: TestKey, token: &str) -> String {
        proof(key, &self.htu(WHO_AM_I), token)
    }

    /// A proof by `key` for WhoAmI with `token`, its claims changed by `edit`.
    fn proof_with(&self, key: TestKey, token: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = proof_claims(&self.htu(WHO_AM_I), token);
        edit(&mut claims);
        sign_proof(&proof_header(key, key.alg()), &claims, key, key.alg())
    }
}

fn with<T>(message: T, authorization: Option<&str>, proofs: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(authorization) = authorization {
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().expect("ASCII"));
    }
    for proof in proofs {
        request
            .metadata_mut()
            .append("dpop", proof.parse().expect("ASCII"));
    }
    request
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_for_every_key_type() {
    let setup = Setup::dpop().await;
    for (key, alg) in [
        (TestKey::Ec256, Algorithm::ES256),
        (TestKey::Ec384, Algorithm::ES384),
        (TestKey::Ed25519, Algorithm::EdDSA),
        // `rsa-2`'s JWK declares no `alg`: PS256 and RS256 both fit it.
        (TestKey::Rsa2, Algorithm::PS256),
        (TestKey::Rsa2, Algorithm::RS256),
    ] {
        let token = bound_token("orders:read", key);
        let claims = proof_claims(&setup.htu(WHO_AM_I), &token);
        let proof = sign_proof(&proof_header(key, alg), &claims, key, alg);
        let response = setup
            .who_am_i(Some(&format!("DPoP {token}")), &[&proof])
            .await
            .unwrap_or_else(|status| panic!("{key:?} {alg:?}: {status:?}"))
            .into_inner();
        assert!(response.sender_constrained, "{key:?} {alg:?}");
        assert!(response.client_certificate.is_empty());
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = bound_token("orders:read", TestKey::Ec256);
    let proof = setup.proof(TestKey::Ec256, &token);
    assert!(
        setup
            .who_am_i(Some(&format!("dpop {token}")), &[&proof])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_cached_token_still_needs_a_fresh_proof_on_every_call() {
    // The layer's validator, kept to look into its cache.
    let validator = oauth_grpc_tests::validator();
    let layer = OAuthLayer::new(
        validator.clone(),
        PolicySet::new().service::<examples::OrderBook>(),
    )
    .dpop(Dpop::new());
    let setup = Setup::new(layer).await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let first = setup.proof(TestKey::Ec256, &token);
    assert_eq!(validator.cached_tokens(), 0);
    assert_eq!(setup.refusal(&token, &first).await.0, Code::Ok);
    // The token is cached now; a new proof is accepted, the same one is not.
    assert_eq!(validator.cached_tokens(), 1);
    let second = setup.proof(TestKey::Ec256, &token);
    assert_eq!(setup.refusal(&token, &second).await.0, Code::Ok);
    assert_eq!(
        setup.refusal(&token, &second).await,
        (
            Code::Unauthenticated,
            invalid_proof("the DPoP proof was used before")
        )
    );
    // A proof is not even accepted for another token bound to the same key.
    let other = bound_token("orders:write", TestKey::Ec256);
    assert_eq!(
        setup.refusal(&other, &first).await,
        (
            Code::Unauthenticated,
            invalid_proof("the DPoP proof's ath does not match the access token")
        )
    );
}

#[tokio::test]
async fn without_credentials_the_challenge_names_both_schemes() {
    let setup = Setup::dpop().await;
    let status = setup.who_am_i(None, &[]).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), format!(r#"Bearer, DPoP algs="{ALGS}""#));
    // Without DPoP on, the `DPoP` scheme is just another scheme.
    let plain = Setup::new(orders_layer()).await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let proof = plain.proof(TestKey::Ec256, &token);
    let status = plain
        .who_am_i(Some(&format!("DPoP {token}")), &[&proof])
        .await
        .expect_err("refused");
    assert_eq!(challenge(&status), "Bearer");
}

#[tokio::test]
async fn the_dpop_value_must_be_one_proof_within_the_limit() {
    let setup = Setup::dpop().await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let authorization = format!("DPoP {token}");
    let status = setup
        .who_am_i(Some(&authorization), &[])
        .await
        .expect_err("refused");
    assert_eq!(
        (status.code(), challenge(&status)),
        (
            Code::Unauthenticated,
            invalid_proof("this call needs a DPoP proof")
        )
    );
    let a = setup.proof(TestKey::Ec256, &token);
    let b = setup.proof(TestKey::Ec256, &token);
    let status = setup
        .who_am_i(Some(&authorization), &[&a, &b])
        .await
        .expect_err("refused");
    assert_eq!(
        challenge(&status),
        invalid_proof("several DPoP proofs; send exactly one")
    );
    // A proof padded to just under 8 KiB is read; one over it is not.
    let padded = |len: usize| {
        setup.proof_with(TestKey::Ec256, &token, |claims| {
            claims["pad"] = json!("x".repeat(len));
        })
    };
    let mut len = 5_000;
    let mut near = padded(len);
    while near.len() < 8_190 {
        len += 1;
        near = padded(len);
    }
    assert!(near.len() <= 8 * 1024, "{}", near.len());
    assert_eq!(setup.refusal(&token, &near).await.0, Code::Ok);
    let over = padded(len + 10);
    assert!(over.len() > 8 * 1024);
    assert_eq!(
        setup.refusal(&token, &over).await,
        (
            Code::Unauthenticated,
            invalid_proof("the DPoP proof is too long")
        )
    );
}

#[tokio::test]
async fn malformed_proofs_are_refused() {
    let setup = Setup::dpop().await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let good = setup.proof(TestKey::Ec256, &token);
    let (head, rest) = good.split_once('.').expect("three segments");
    let (payload, signature) = rest.split_once('.').expect("three segments");
    let duplicate = b64(br#"{"typ":"dpop+jwt","alg":"ES256","alg":"none","jwk":{}}"#);
    for proof in [
        format!("{head}.{payload}"),
        format!("{head}.{payload}.{signature}.x"),
        format!("{head}!.{payload}.{signature}"),
        format!("{}.{payload}.{signature}", b64(b"[1,2]")),
        format!("{}.{payload}.{signature}", b64(b"not json")),
        format!("{duplicate}.{payload}.{signature}"),
        format!("{head}.{payload}."),
    ] {
        assert_eq!(
            setup.refusal(&token, &proof).await,
            (
                Code::Unauthenticated,
                invalid_proof("the DPoP proof is malformed")
            ),
            "{proof}"
        );
    }
}

#[tokio::test]
async fn the_proof_header_is_checked() {
    let setup = Setup::dpop().await;
    let key = TestKey::Ec256;
    let token = bound_token("orders:read", key);
    let claims = proof_claims(&setup.htu(WHO_AM_I), &token);
    let signed = |header: Value| sign_proof(&header, &claims, key, Algorithm::ES256);
    let jwk = public_jwk(key);
    let cases = [
        (
            json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}),
            "the DPoP proof's type is not dpop+jwt",
        ),
        (
            json!({"alg": "ES256", "jwk": jwk}),
            "the DPoP proof's type is not dpop+jwt",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
            "the DPoP proof's signing algorithm is not accepted",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
            "the DPoP proof's signing algorithm is not accepted",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES512", "jwk": jwk}),
            "the DPoP proof's signing algorithm is not accepted",
        ),
        (
            json!({"typ": "dpop+jwt", "jwk": jwk}),
            "the DPoP proof's signing algorithm is not accepted",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, "crit": ["exp"]}),
            "the DPoP proof uses an unsupported critical header",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES256"}),
            "the DPoP proof's jwk is not a usable public key",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": "not an object"}),
            "the DPoP proof's jwk is not a usable public key",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-521",
                "x": "AQ", "y": "AQ"}}),
            "the DPoP proof's jwk is not a usable public key",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
            "the DPoP proof's jwk holds a private key",
        ),
        (
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(TestKey::Rsa2)}),
            "the DPoP proof's signing algorithm does not match its key",
        ),
        (
            // Signed by `ec-256`, naming another EC key.
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256",
                "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
                "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}),
            "the DPoP proof's signature is invalid",
        ),
    ];
    for (header, description) in cases {
        assert_eq!(
            setup.refusal(&token, &signed(header.clone())).await,
            (Code::Unauthenticated, invalid_proof(description)),
            "{header}"
        );
    }
    // `application/dpop+jwt` is the same type (RFC 7515 §4.1.9).
    let proof = signed(json!({"typ": "application/dpop+jwt", "alg": "ES256", "jwk": jwk}));
    assert_eq!(setup.refusal(&token, &proof).await.0, Code::Ok);
}

#[tokio::test]
async fn a_jwk_with_private_members_is_refused() {
    let setup = Setup::dpop().await;
    for (key, alg, members) in [
        (TestKey::Ec256, Algorithm::ES256, &["d"][..]),
        (TestKey::Rsa2, Algorithm::PS256, &["d", "p"][..]),
        (TestKey::Ed25519, Algorithm::EdDSA, &["d"][..]),
    ] {
        let token = bound_token("orders:read", key);
        for member in members {
            let mut header = proof_header(key, alg);
            header["jwk"][*member] = json!("c2VjcmV0LWtleS1tYXRlcmlhbA");
            let claims = proof_claims(&setup.htu(WHO_AM_I), &token);
            let proof = sign_proof(&header, &claims, key, alg);
            assert_eq!(
                setup.refusal(&token, &proof).await,
                (
                    Code::Unauthenticated,
                    invalid_proof("the DPoP proof's jwk holds a private key")
                ),
                "{key:?} {member}"
            );
        }
    }
}

/// A change to a proof's claims.
type Edit = Box<dyn FnOnce(&mut Value)>;

#[tokio::test]
async fn the_proof_claims_are_checked() {
    let setup = Setup::dpop().await;
    let key = TestKey::Ec256;
    let token = bound_token("orders:read", key);
    let claims_error = "the DPoP proof lacks a required claim or has an invalid one";
    let edits: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| drop(c.as_object_mut().map(|o| o.remove("jti")))),
            claims_error,
        ),
        (
            Box::new(|c| drop(c.as_object_mut().map(|o| o.remove("htm")))),
            claims_error,
        ),
        (
            Box::new(|c| drop(c.as_object_mut().map(|o| o.remove("htu")))),
            claims_error,
        ),
        (
            Box::new(|c| drop(c.as_object_mut().map(|o| o.remove("iat")))),
            claims_error,
        ),
        (Box::new(|c| c["jti"] = json!(7)), claims_error),
        (Box::new(|c| c["jti"] = json!("")), claims_error),
        (Box::new(|c| c["iat"] = json!("now")), claims_error),
        (Box::new(|c| c["ath"] = json!(["x"])), claims_error),
        (
            Box::new(|c| c["jti"] = json!("j".repeat(4096))),
            claims_error,
        ),
        (
            Box::new(|c| c["htm"] = json!("GET")),
            "the DPoP proof's htm is not the method of this call",
        ),
        (
            Box::new(|c| c["htm"] = json!("post")),
            "the DPoP proof's htm is not the method of this call",
        ),
        (
            Box::new(|c| drop(c.as_object_mut().map(|o| o.remove("ath")))),
            "the DPoP proof's ath does not match the access token",
        ),
        (
            Box::new(|c| c["ath"] = json!(ath("another token"))),
            "the DPoP proof's ath does not match the access token",
        ),
        (
            Box::new(|c| c["iat"] = json!(now() - 130)),
            "the DPoP proof is too old or issued in the future",
        ),
        (
            Box::new(|c| c["iat"] = json!(now() + 130)),
            "the DPoP proof is too old or issued in the future",
        ),
    ];
    for (edit, description) in edits {
        let proof = setup.proof_with(key, &token, edit);
        assert_eq!(
            setup.refusal(&token, &proof).await,
            (Code::Unauthenticated, invalid_proof(description)),
        );
    }
    // Within max age (60 s) plus the leeway (60 s): accepted.
    for iat in [now() - 100, now() + 100] {
        let proof = setup.proof_with(key, &token, |c| c["iat"] = json!(iat));
        assert_eq!(setup.refusal(&token, &proof).await.0, Code::Ok, "{iat}");
    }
}

#[tokio::test]
async fn htu_must_name_this_call_after_normalisation() {
    let setup = Setup::dpop().await;
    let key = TestKey::Ec256;
    let token = bound_token("orders:read", key);
    let port = setup.server.addr().port();
    let wrong = "the DPoP proof's htu is not the URI of this call";
    for htu in [
        format!("http://127.0.0.2:{port}{WHO_AM_I}"),
        format!("http://127.0.0.1:{}{WHO_AM_I}", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}{WHO_AM_I}"),
        format!("http://127.0.0.1:{port}/orders.v1.Orders/GetOrder"),
        format!("http://127.0.0.1:{port}"),
        "not a uri".to_owned(),
    ] {
        let proof = setup.proof_with(key, &token, |c| c["htu"] = json!(htu));
        assert_eq!(
            setup.refusal(&token, &proof).await,
            (Code::Unauthenticated, invalid_proof(wrong)),
            "{htu}"
        );
    }
    for htu in [
        format!("HTTP://127.0.0.1:{port}{WHO_AM_I}"),
        format!("http://127.0.0.1:{port}{WHO_AM_I}?query=1#fragment"),
        format!("http://127.0.0.1:{port}/orders.v1.%4Frders/WhoAmI"),
    ] {
        let proof = setup.proof_with(key, &token, |c| c["htu"] = json!(htu));
        assert_eq!(setup.refusal(&token, &proof).await.0, Code::Ok, "{htu}");
    }
}

#[tokio::test]
async fn a_configured_origin_is_what_proofs_must_name() {
    let dpop = Dpop::new()
        .public_origin("https://orders.example.com")
        .expect("origin");
    let setup = Setup::new(orders_layer().dpop(dpop)).await;
    let key = TestKey::Ec256;
    let token = bound_token("orders:read", key);
    let proof = proof(
        key,
        &format!("https://orders.example.com:443{WHO_AM_I}"),
        &token,
    );
    assert_eq!(setup.refusal(&token, &proof).await.0, Code::Ok);
    // What the connection says is not what clients sign behind the proxy.
    let local = setup.proof(key, &token);
    assert_eq!(
        setup.refusal(&token, &local).await,
        (
            Code::Unauthenticated,
            invalid_proof("the DPoP proof's htu is not the URI of this call")
        )
    );
}

#[tokio::test]
async fn the_token_must_be_bound_to_the_proof_key() {
    let setup = Setup::dpop().await;
    // Bound to ec-256, proved by ed-1.
    let token = bound_token("orders:read", TestKey::Ec256);
    let proof = setup.proof(TestKey::Ed25519, &token);
    assert_eq!(
        setup.refusal(&token, &proof).await,
        (
            Code::Unauthenticated,
            invalid_token("the token is bound to another DPoP key")
        )
    );
    // An unbound token under the DPoP scheme.
    let plain = token_for("orders:read");
    let proof = setup.proof(TestKey::Ec256, &plain);
    assert_eq!(
        setup.refusal(&plain, &proof).await,
        (
            Code::Unauthenticated,
            invalid_token("the DPoP scheme needs a DPoP-bound token")
        )
    );
    // An expired bound token: the token's refusal, in the DPoP challenge.
    let mut payload = claims("orders:read");
    payload["cnf"] = json!({ "jkt": thumbprint(TestKey::Ec256) });
    payload["exp"] = json!(now() - 3_600);
    payload["iat"] = json!(now() - 7_200);
    let expired = sign_json(&header(TestKey::Rsa1), &payload, TestKey::Rsa1);
    let proof = setup.proof(TestKey::Ec256, &expired);
    assert_eq!(
        setup.refusal(&expired, &proof).await,
        (
            Code::Unauthenticated,
            invalid_token("the token has expired")
        )
    );
}

fn token_for(scope: &str) -> String {
    token(TestKey::Rsa1, scope)
}

#[tokio::test]
async fn a_dpop_bound_token_is_not_a_bearer_token() {
    let setup = Setup::dpop().await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let status = setup
        .who_am_i(Some(&format!("Bearer {token}")), &[])
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        challenge(&status),
        format!(
            r#"Bearer error="invalid_token", error_description="the token is bound to a DPoP key; send it with the DPoP scheme and a proof", DPoP algs="{ALGS}""#
        )
    );
    // A proof beside a Bearer token is a malformed request.
    let proof = setup.proof(TestKey::Ec256, &token);
    let status = setup
        .who_am_i(Some(&format!("Bearer {token}")), &[&proof])
        .await
        .expect_err("refused");
    assert_eq!(
        challenge(&status),
        format!(
            r#"Bearer error="invalid_request", error_description="a DPoP proof came with a Bearer token; send the token with the DPoP scheme", DPoP algs="{ALGS}""#
        )
    );
    // Plain bearer tokens keep working beside DPoP.
    let plain = token_for("orders:read");
    let response = setup
        .who_am_i(Some(&format!("Bearer {plain}")), &[])
        .await
        .expect("a plain bearer token is accepted")
        .into_inner();
    assert!(!response.sender_constrained);
    // And without DPoP on, a DPoP-bound token is refused outright: its binding cannot be
    // checked there, and no proof would help.
    let plain_server = Setup::new(orders_layer()).await;
    let status = plain_server
        .who_am_i(Some(&format!("Bearer {token}")), &[])
        .await
        .expect_err("refused");
    assert_eq!(
        challenge(&status),
        r#"Bearer error="invalid_token", error_description="the token is bound by a confirmation method this server cannot check""#
    );
}

#[tokio::test]
async fn scopes_are_checked_after_the_proof() {
    let setup = Setup::dpop().await;
    let token = bound_token("orders:write", TestKey::Ec256);
    let htu = setup.htu("/orders.v1.Orders/GetOrder");
    let proof = proof(TestKey::Ec256, &htu, &token);
    let status = OrdersClient::new(setup.channel.clone())
        .get_order(with(
            GetOrderRequest { id: "1".into() },
            Some(&format!("DPoP {token}")),
            &[&proof],
        ))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        challenge(&status),
        format!(
            r#"DPoP error="insufficient_scope", scope="orders:read orders:admin", algs="{ALGS}""#
        )
    );
}

#[tokio::test]
async fn bound_methods_take_either_binding() {
    let setup = Setup::dpop().await;
    let path = "/orders.v1.OrdersAdmin/PurgeCancelled";
    let purge = |authorization: String, proofs: Vec<String>| {
        let channel = setup.channel.clone();
        async move {
            let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            OrdersAdminClient::new(channel)
                .purge_cancelled(with(
                    PurgeCancelledRequest {},
                    Some(&authorization),
                    &proofs,
                ))
                .await
        }
    };
    let token = bound_token("orders:admin", TestKey::Ed25519);
    let proof = proof(TestKey::Ed25519, &setup.htu(path), &token);
    assert!(purge(format!("DPoP {token}"), vec![proof]).await.is_ok());
    let plain = token_for("orders:admin");
    let status = purge(format!("Bearer {plain}"), vec![])
        .await
        .expect_err("refused");
    assert_eq!(
        challenge(&status),
        format!(
            r#"Bearer error="invalid_token", error_description="this method needs a sender-constrained token", DPoP algs="{ALGS}""#
        )
    );
    // `require_sender_constrained` is satisfied by DPoP too.
    let strict = Setup::new(
        orders_layer()
            .dpop(Dpop::new())
            .require_sender_constrained(true),
    )
    .await;
    let token = bound_token("orders:read", TestKey::Ec256);
    assert_eq!(
        strict
            .refusal(&token, &strict.proof(TestKey::Ec256, &token))
            .await
            .0,
        Code::Ok
    );
    let status = strict
        .who_am_i(Some(&format!("Bearer {}", token_for("orders:read"))), &[])
        .await
        .expect_err("refused");
    assert!(challenge(&status).contains("this method needs a sender-constrained token"));
}

#[tokio::test]
async fn one_proof_sent_by_fifty_calls_at_once_is_accepted_once() {
    let setup = Setup::dpop().await;
    let token = bound_token("orders:read", TestKey::Ec256);
    // Cached first, so that every call races on the proof alone.
    assert_eq!(
        setup
            .refusal(&token, &setup.proof(TestKey::Ec256, &token))
            .await
            .0,
        Code::Ok
    );
    let proof = setup.proof(TestKey::Ec256, &token);
    let calls = (0..50).map(|_| {
        let (channel, token, proof) = (setup.channel.clone(), token.clone(), proof.clone());
        tokio::spawn(async move {
            OrdersClient::new(channel)
                .who_am_i(with(
                    WhoAmIRequest {},
                    Some(&format!("DPoP {token}")),
                    &[&proof],
                ))
                .await
                .map_err(|status| (status.code(), challenge(&status)))
        })
    });
    let mut accepted = 0;
    for call in calls.collect::<Vec<_>>() {
        match call.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(refusal) => assert_eq!(
                refusal,
                (
                    Code::Unauthenticated,
                    invalid_proof("the DPoP proof was used before")
                )
            ),
        }
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn a_full_replay_check_refuses_with_unavailable() {
    // 16 shards of one proof each: the 17th distinct proof lands in a full shard.
    let setup = Setup::new(orders_layer().dpop(Dpop::new().replay_capacity(1))).await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let mut unavailable = 0;
    for _ in 0..17 {
        match setup
            .who_am_i(
                Some(&format!("DPoP {token}")),
                &[&setup.proof(TestKey::Ec256, &token)],
            )
            .await
        {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert_eq!(challenge(&status), "<none>");
                unavailable += 1;
            }
        }
    }
    assert!(unavailable >= 1);
}

#[tokio::test]
async fn server_nonces_are_required_handed_out_and_rotated() {
    let nonces = DpopNonces::new().rotate_every(Duration::from_secs(2));
    let setup = Setup::new(orders_layer().dpop(Dpop::new().nonces(nonces))).await;
    let key = TestKey::Ec256;
    let token = bound_token("orders:read", key);
    let authorization = format!("DPoP {token}");
    let use_nonce = format!(
        r#"DPoP error="use_dpop_nonce", error_description="the server requires its nonce in the DPoP proof", algs="{ALGS}""#
    );
    // No nonce: refused, with one to use.
    let status = setup
        .who_am_i(Some(&authorization), &[&setup.proof(key, &token)])
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), use_nonce);
    let nonce = status
        .metadata()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .expect("a nonce comes with use_dpop_nonce")
        .to_owned();
    // A made-up nonce: the same.
    let forged = setup.proof_with(key, &token, |c| {
        c["nonce"] = json!("1.AAAAAAAAAAAAAAAAAAAAAA")
    });
    assert_eq!(
        setup.refusal(&token, &forged).await,
        (Code::Unauthenticated, use_nonce.clone())
    );
    // With the nonce: accepted.
    let with_nonce = |nonce: &str| {
        let nonce = nonce.to_owned();
        setup.proof_with(key, &token, move |c| c["nonce"] = json!(nonce))
    };
    assert!(
        setup
            .who_am_i(Some(&authorization), &[&with_nonce(&nonce)])
            .await
            .is_ok()
    );
    // After a rotation the old nonce is still accepted, and the response hands out the new.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let response = setup
        .who_am_i(Some(&authorization), &[&with_nonce(&nonce)])
        .await
        .expect("an older nonce of this server is accepted");
    let fresh = response
        .metadata()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .expect("a newer nonce comes with the response");
    assert_ne!(fresh, nonce);
    assert!(
        setup
            .who_am_i(Some(&authorization), &[&with_nonce(fresh)])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_stream_checks_its_proof_at_the_start() {
    let setup = Setup::dpop().await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let htu = setup.htu("/orders.v1.Orders/WatchOrders");
    let good = proof(TestKey::Ec256, &htu, &token);
    let stream = OrdersClient::new(setup.channel.clone())
        .watch_orders(with(
            WatchOrdersRequest::default(),
            Some(&format!("DPoP {token}")),
            &[&good],
        ))
        .await;
    assert!(stream.is_ok(), "{stream:?}");
    let status = OrdersClient::new(setup.channel.clone())
        .watch_orders(with(
            WatchOrdersRequest::default(),
            Some(&format!("DPoP {token}")),
            &[&good],
        ))
        .await
        .expect_err("a replayed proof opens no stream");
    assert_eq!(
        challenge(&status),
        invalid_proof("the DPoP proof was used before")
    );
}

#[tokio::test]
async fn an_introspected_dpop_token_is_bound_by_its_answer() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(Introspection::new(
            idp.introspection_url(),
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        ))
        .build()
        .expect("valid configuration");
    let opaque = "opaque-dpop-token-1";
    idp.set_introspection(
        opaque,
        json!({
            "active": true,
            "iss": idp.issuer(),
            "aud": AUDIENCE,
            "scope": "orders:read",
            "sub": "svc",
            "exp": now() + 600,
            "token_type": "DPoP",
            "cnf": { "jkt": thumbprint(TestKey::Ed25519) },
        }),
    );
    let layer = OAuthLayer::new(
        validator,
        PolicySet::new()
            .service::<examples::OrderBook>()
            .service::<examples::AdminDesk>(),
    )
    .dpop(Dpop::new());
    let setup = Setup::new(layer).await;
    assert_eq!(
        setup
            .refusal(opaque, &setup.proof(TestKey::Ed25519, opaque))
            .await
            .0,
        Code::Ok
    );
    assert_eq!(
        setup
            .refusal(opaque, &setup.proof(TestKey::Ec256, opaque))
            .await,
        (
            Code::Unauthenticated,
            invalid_token("the token is bound to another DPoP key")
        )
    );
}

#[tokio::test]
async fn the_audit_record_names_the_proof_key() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = events.clone();
        move |event: &AuditEvent<'_>| {
            let principal = event.principal;
            events.lock().unwrap_or_else(|e| e.into_inner()).push((
                event.decision,
                event.reason,
                principal.and_then(|p| p.dpop_key_thumbprint().map(str::to_owned)),
                principal.is_some_and(oauth_grpc::Principal::is_sender_constrained),
            ));
        }
    };
    let setup = Setup::new(orders_layer().dpop(Dpop::new()).audit_sink(sink)).await;
    let token = bound_token("orders:read", TestKey::Ec256);
    let proof = setup.proof(TestKey::Ec256, &token);
    assert_eq!(setup.refusal(&token, &proof).await.0, Code::Ok);
    assert_eq!(setup.refusal(&token, &proof).await.0, Code::Unauthenticated);
    let events = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let jkt = Some(thumbprint(TestKey::Ec256));
    assert_eq!(
        events,
        vec![
            (Decision::Allow, "authorized", jkt.clone(), true),
            (Decision::Deny, "dpop_proof_replayed", jkt, true),
        ]
    );
}

#[tokio::test]
async fn the_validator_alone_refuses_dpop_bound_tokens() {
    let token = bound_token("orders:read", TestKey::Ec256);
    assert_eq!(
        validator().validate(&token).await,
        Err(oauth_grpc::TokenError::UnsupportedConfirmation)
    );
}
