//! Validator configuration: typed errors that name the fix, HMAC-only validators, roles,
//! custom scope claims, the plain-JWT switch, lifetime limits — and no panic on any input.

use std::time::Duration;

use oauth_grpc::TokenTypes;
use oauth_grpc::{Algorithm, KeyError, KeySet};
use oauth_grpc::{ConfigError, KeySource, TokenError, Validator};
use oauth_grpc_tests::issuer::{
    self, AUDIENCE, ISSUER, TestKey, b64, claims, header, sign_json, sign_segments,
};
use serde_json::json;

fn jwks() -> KeySet {
    KeySet::from_jwks(&issuer::jwks()).expect("test JWKS")
}

#[test]
fn configuration_errors_name_the_fix() {
    let err = Validator::builder()
        .audience(AUDIENCE)
        .keys(jwks())
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::KeysWithoutIssuer));
    assert!(err.to_string().contains(".issuer("), "{err}");
    assert!(err.to_string().contains(".trust(Issuer::new("), "{err}");

    let err = Validator::builder()
        .issuer(ISSUER)
        .keys(jwks())
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::NoAudience));
    assert!(err.to_string().contains(".audience("), "{err}");

    let err = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::NoKeys));

    let err = Validator::builder()
        .issuer("")
        .audience(AUDIENCE)
        .keys(jwks())
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Empty("issuer")));

    let hmac = KeySet::from_hmac_secret(None, &[7; 32], Algorithm::HS256).expect("secret");
    let err = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(jwks())
        .keys(hmac)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::MixedKeys), "{err}");

    let err = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks_file("/nonexistent/jwks.json")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/jwks.json"), "{err}");

    let err = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(jwks())
        .role_claim("realm_access..roles")
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::RolePath(_)));
}

/// Discovery vouches for one issuer's keys: discovering another issuer's than the validator
/// trusts would let that provider's keys sign tokens claiming the trusted issuer.
#[test]
fn discovery_must_be_for_the_configured_issuer() {
    let err = Validator::builder()
        .issuer("https://b.example/")
        .audience(AUDIENCE)
        .keys(KeySource::discover("https://a.example/"))
        .build()
        .unwrap_err();
    let ConfigError::DiscoveryIssuer {
        discovered,
        configured,
    } = &err
    else {
        panic!("expected DiscoveryIssuer, got {err}");
    };
    assert_eq!(discovered, "https://a.example/");
    assert_eq!(configured, &["https://b.example/"]);
    let message = err.to_string();
    assert!(message.contains("https://a.example/") && message.contains("https://b.example/"));
    assert!(message.contains("KeySource::jwks_url"), "{message}");

    // One of several names of the same provider is fine.
    Validator::builder()
        .issuer("https://login.example/v1/")
        .issuer("https://login.example/v2/")
        .audience(AUDIENCE)
        .keys(KeySource::discover("https://login.example/v2/"))
        .build()
        .expect("discovery for a configured issuer");
}

#[test]
fn key_documents_fail_with_clear_errors() {
    assert!(matches!(KeySet::from_jwks(b"{"), Err(KeyError::Json(_))));
    assert!(matches!(KeySet::from_jwks(b"[]"), Err(KeyError::Json(_))));
    assert!(matches!(
        KeySet::from_jwks(br#"{"keys": {}}"#),
        Err(KeyError::Json(_))
    ));
    let only_unusable = br#"{"keys": [
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXbw", "e": "AQAB"},
        "not an object"
    ]}"#;
    match KeySet::from_jwks(only_unusable) {
        Err(KeyError::NoUsableKey { skipped }) => assert_eq!(skipped, 5),
        other => panic!("expected NoUsableKey, got {other:?}"),
    }
    assert!(matches!(
        KeySet::from_pem(None, TestKey::Rsa1.public_pem(), Algorithm::ES256),
        Err(KeyError::Pem { .. })
    ));
    assert!(matches!(
        KeySet::from_pem(None, TestKey::Rsa1.public_pem(), Algorithm::HS256),
        Err(KeyError::WrongAlgorithm { .. })
    ));
    assert!(matches!(
        KeySet::from_hmac_secret(None, &[1; 47], Algorithm::HS384),
        Err(KeyError::ShortSecret { min: 48, .. })
    ));
    // The test JWKS: five signing keys, the encryption key skipped.
    assert_eq!(jwks().len(), 5);
}

#[test]
fn pem_keys_verify_exactly_their_algorithm() {
    let keys = KeySet::from_pem(Some("rsa-1"), TestKey::Rsa1.public_pem(), Algorithm::RS256)
        .expect("PEM")
        .merge(KeySet::from_pem(None, TestKey::Ec256.public_pem(), Algorithm::ES256).expect("PEM"))
        .merge(
            KeySet::from_pem(None, TestKey::Ed25519.public_pem(), Algorithm::EdDSA).expect("PEM"),
        );
    let validator = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(keys)
        .build()
        .expect("valid");
    for key in [TestKey::Rsa1, TestKey::Ec256, TestKey::Ed25519] {
        // With a kid: `rsa-1` by its own kid, the others by the kid-less key that fits.
        let token = issuer::token(key, "a");
        assert!(
            check(&validator, &token).is_ok(),
            "{key:?} with kid: {:?}",
            check(&validator, &token)
        );
        let mut h = header(key);
        if key != TestKey::Rsa1 {
            h.as_object_mut().map(|m| m.remove("kid"));
        }
        let token_no_kid = sign_json(&h, &claims("a"), key);
        assert!(
            check(&validator, &token_no_kid).is_ok(),
            "{key:?}: {:?}",
            check(&validator, &token_no_kid)
        );
    }
    // An unknown kid falls back to the kid-less key only when exactly one fits the algorithm:
    // nothing here verifies ES384.
    let mut h = header(TestKey::Ec384);
    h["kid"] = json!("nobody");
    let es384 = sign_json(&h, &claims("a"), TestKey::Ec384);
    assert_eq!(
        check(&validator, &es384).unwrap_err(),
        TokenError::UnknownKey
    );
    let mut h = header(TestKey::Rsa1);
    h["alg"] = json!("PS256");
    let ps256 = sign_json(&h, &claims("a"), TestKey::Rsa1);
    assert_eq!(
        check(&validator, &ps256).unwrap_err(),
        TokenError::AlgorithmMismatch
    );
}

#[test]
fn hmac_validator_accepts_only_its_secret() {
    let secret = [42u8; 32];
    let validator = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KeySet::from_hmac_secret(Some("hs"), &secret, Algorithm::HS256).expect("secret"))
        .build()
        .expect("valid");
    let sign = |key: &[u8], alg: Algorithm, name: &str| {
        let h = json!({"alg": name, "typ": "at+jwt", "kid": "hs"});
        sign_segments(
            &b64(h.to_string().as_bytes()),
            &b64(claims("orders:read").to_string().as_bytes()),
            &jsonwebtoken::EncodingKey::from_secret(key),
            alg,
        )
    };
    let principal =
        check(&validator, &sign(&secret, Algorithm::HS256, "HS256")).expect("valid HS256");
    assert!(principal.has_scope("orders:read"));
    assert_eq!(
        check(&validator, &sign(&[41; 32], Algorithm::HS256, "HS256")).unwrap_err(),
        TokenError::BadSignature
    );
    assert_eq!(
        check(&validator, &sign(&secret, Algorithm::HS512, "HS512")).unwrap_err(),
        TokenError::AlgorithmMismatch
    );
    // An RS256 token: HMAC validators know no RSA key.
    let rs = sign_json(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "hs"}),
        &claims("a"),
        TestKey::Rsa1,
    );
    assert_eq!(
        check(&validator, &rs).unwrap_err(),
        TokenError::AlgorithmMismatch
    );
}

#[test]
fn roles_custom_scope_claims_and_plain_jwt() {
    // Keycloak style: typ JWT, roles under realm_access.roles, no scope for our API.
    let keycloak = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(jwks())
        .token_types(TokenTypes::AllowPlainJwt)
        .role_claim("realm_access.roles")
        .map_role("orders-admin", ["orders:admin", "orders:read"])
        .build()
        .expect("valid");
    let mut c = claims("openid profile");
    c["realm_access"] = json!({"roles": ["orders-admin", "offline_access"]});
    let mut h = header(TestKey::Rsa1);
    h["typ"] = json!("JWT");
    let principal = check(&keycloak, &sign_json(&h, &c, TestKey::Rsa1)).expect("valid");
    let scopes: Vec<&str> = principal.scopes().iter().collect();
    assert_eq!(scopes, ["openid", "orders:admin", "orders:read", "profile"]);
    h.as_object_mut().map(|m| m.remove("typ"));
    assert!(
        check(&keycloak, &sign_json(&h, &c, TestKey::Rsa1)).is_ok(),
        "no typ allowed"
    );
    h["typ"] = json!("id+jwt");
    assert_eq!(
        check(&keycloak, &sign_json(&h, &c, TestKey::Rsa1)).unwrap_err(),
        TokenError::WrongType
    );
    c["realm_access"] = json!({"roles": "orders-admin"});
    h["typ"] = json!("JWT");
    assert!(
        check(&keycloak, &sign_json(&h, &c, TestKey::Rsa1)).is_ok(),
        "a single role string"
    );
    c["realm_access"] = json!({"roles": 7});
    assert_eq!(
        check(&keycloak, &sign_json(&h, &c, TestKey::Rsa1)).unwrap_err(),
        TokenError::InvalidClaim
    );

    // Auth0 style: permissions array.
    let auth0 = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(jwks())
        .scope_claim("permissions")
        .build()
        .expect("valid");
    let mut c = claims("openid");
    c["permissions"] = json!(["orders:read", "orders:write"]);
    let principal = check(
        &auth0,
        &sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1),
    )
    .expect("valid");
    assert!(principal.has_scope("orders:write"));
    assert!(
        !principal.has_scope("openid"),
        "the configured claim replaces `scope`"
    );
    c["permissions"] = json!(["orders:read", 5]);
    assert_eq!(
        check(
            &auth0,
            &sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1)
        )
        .unwrap_err(),
        TokenError::InvalidClaim
    );
}

#[test]
fn lifetime_leeway_and_several_issuers() {
    let validator = Validator::builder()
        .issuer("https://other.test/")
        .issuer(ISSUER)
        .audience("other-api")
        .audience(AUDIENCE)
        .keys(jwks())
        .leeway(Duration::from_secs(0))
        .max_lifetime(Duration::from_secs(600))
        .build()
        .expect("valid");
    let now = issuer::now();
    let token = |c: serde_json::Value| sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1);

    let ok = check(&validator, &token(claims("a"))).expect("valid");
    assert_eq!(ok.issuer(), Some(ISSUER));
    assert_eq!(ok.audiences(), [AUDIENCE]);
    assert_eq!(ok.client_id(), Some("orders-web"));

    let mut c = claims("a");
    c["exp"] = json!(now + 3600);
    assert_eq!(
        check(&validator, &token(c)).unwrap_err(),
        TokenError::LifetimeTooLong
    );
    let mut c = claims("a");
    c.as_object_mut().map(|m| m.remove("iat"));
    assert_eq!(
        check(&validator, &token(c)).unwrap_err(),
        TokenError::MissingClaim
    );
    let mut c = claims("a");
    c["exp"] = json!(now - 1);
    assert_eq!(
        check(&validator, &token(c)).unwrap_err(),
        TokenError::Expired,
        "no leeway"
    );
    let mut c = claims("a");
    c["iss"] = json!("https://other.test/");
    assert!(check(&validator, &token(c)).is_ok(), "second issuer");
    // RFC 9068 requires sub, client_id, iat and jti under the strict profile.
    for claim in ["sub", "client_id", "iat", "jti"] {
        let mut c = claims("a");
        c.as_object_mut().map(|m| m.remove(claim));
        assert_eq!(
            check(&validator, &token(c)).unwrap_err(),
            TokenError::MissingClaim,
            "{claim}"
        );
    }
    // Under the plain-JWT profile they are optional, and `azp` names the client.
    let lenient = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(jwks())
        .token_types(TokenTypes::AllowPlainJwt)
        .build()
        .expect("valid");
    let mut c = claims("a");
    c["azp"] = json!("spa");
    for claim in ["sub", "client_id", "iat", "jti"] {
        c.as_object_mut().map(|m| m.remove(claim));
    }
    let principal = check(&lenient, &token(c)).expect("valid");
    assert_eq!(principal.client_id(), Some("spa"));
    assert_eq!(principal.subject(), None);
    let mut c = claims("a");
    c["act"] = json!("not an object");
    assert_eq!(
        check(&validator, &token(c)).unwrap_err(),
        TokenError::MalformedActor
    );
    let mut c = claims("a");
    c["sub"] = json!(42);
    assert_eq!(
        check(&validator, &token(c)).unwrap_err(),
        TokenError::InvalidClaim
    );
}

/// Arbitrary input never panics and is always refused.
#[test]
fn garbage_is_refused_without_panic() {
    let validator = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(jwks())
        .build()
        .expect("valid");
    let inputs = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "ey.ey.ey",
        "€.€.€",
        "\0.\0.\0",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "eyJhbGciOiJSUzI1NiJ9..sig",
        ".e30.sig",
        "eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIiwidHlwIjoiYXQrand0In0.e30.AAAA",
    ];
    for input in inputs {
        assert!(check(&validator, input).is_err(), "{input:?}");
    }
    let huge = "a".repeat(100_000);
    assert_eq!(check(&validator, &huge).unwrap_err(), TokenError::Malformed);
}

fn check(
    validator: &oauth_grpc::Validator,
    token: &str,
) -> Result<oauth_grpc::Principal, oauth_grpc::TokenError> {
    validator.validate_at(token, std::time::SystemTime::now())
}

/// Amazon Cognito access tokens carry no `aud`; the client id stands in for it.
#[test]
fn audience_from_another_claim() {
    let cognito = Validator::builder()
        .issuer(ISSUER)
        .audience("orders-web")
        .audience_claim("client_id")
        .keys(jwks())
        .token_types(TokenTypes::AllowPlainJwt)
        .build()
        .expect("valid");
    let mut c = claims("orders:read");
    c.as_object_mut().map(|m| m.remove("aud"));
    let mut h = header(TestKey::Rsa1);
    h.as_object_mut().map(|m| m.remove("typ"));
    let principal =
        check(&cognito, &sign_json(&h, &c, TestKey::Rsa1)).expect("client_id is the audience");
    assert_eq!(principal.audiences(), ["orders-web"]);
    c["client_id"] = json!("someone-else");
    assert_eq!(
        check(&cognito, &sign_json(&h, &c, TestKey::Rsa1)).unwrap_err(),
        TokenError::WrongAudience
    );
}

/// `.algorithms([...])` narrows what a key may verify beyond its type: an RSA key whose JWK
/// declares no `alg` verifies RS* and PS* tokens, unless the validator allows only some.
#[test]
fn the_algorithm_allow_list_refuses_what_the_key_type_would_allow() {
    let builder = || {
        Validator::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(jwks())
    };
    let only_rs256 = builder()
        .algorithms([Algorithm::RS256])
        .build()
        .expect("validator");
    let any_rsa = builder().build().expect("validator");
    // `rsa-2` is published without `alg`, so its type alone would allow PS256.
    let ps256 = sign_json(
        &json!({"alg": "PS256", "typ": "at+jwt", "kid": TestKey::Rsa2.kid()}),
        &claims("orders:read"),
        TestKey::Rsa2,
    );
    let rs256 = issuer::token(TestKey::Rsa2, "orders:read");
    let now = std::time::SystemTime::now();
    assert!(any_rsa.validate_at(&ps256, now).is_ok());
    assert_eq!(
        only_rs256.validate_at(&ps256, now),
        Err(TokenError::UnsupportedAlgorithm)
    );
    assert!(only_rs256.validate_at(&rs256, now).is_ok());
}

/// Credentials in a provider URL — userinfo, or a query such as `?api_key=` — never appear in
/// a configuration error, a start-up error or their `Debug`.
#[tokio::test]
async fn provider_urls_are_shown_without_their_credentials() {
    let secret_bits = ["hunter2", "k3y-value"];
    let plain = Validator::builder()
        .issuer("https://idp.example.com/")
        .audience(AUDIENCE)
        .keys(KeySource::jwks_url(
            "http://admin:hunter2@idp.example.com/jwks?api_key=k3y-value",
        ))
        .build()
        .unwrap_err();
    let unreachable = Validator::builder()
        .issuer("http://admin:hunter2@127.0.0.1:9/?api_key=k3y-value")
        .audience(AUDIENCE)
        .keys(
            KeySource::discover("http://admin:hunter2@127.0.0.1:9/?api_key=k3y-value")
                .startup(Duration::from_millis(500), true),
        )
        .start()
        .await
        .unwrap_err();
    let configured = format!(
        "{:?} {:?}",
        KeySource::jwks_url("https://admin:hunter2@idp.example.com/jwks?api_key=k3y-value"),
        oauth_grpc::Introspection::new(
            "https://admin:hunter2@idp.example.com/introspect?api_key=k3y-value",
            "orders-api",
            oauth_grpc::ClientSecret::new("s"),
        ),
    );
    for bit in secret_bits {
        assert!(!configured.contains(bit), "{bit} in {configured}");
    }
    for err in [&plain, &unreachable] {
        let shown = format!("{err} {err:?}");
        let mut source = std::error::Error::source(err);
        let mut chain = String::new();
        while let Some(cause) = source {
            chain.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        for bit in secret_bits {
            assert!(!shown.contains(bit), "{bit} in {shown}");
            assert!(!chain.contains(bit), "{bit} in {chain}");
        }
    }
    assert!(
        plain
            .to_string()
            .contains("<redacted>@idp.example.com/jwks?<redacted>"),
        "{plain}"
    );
}
