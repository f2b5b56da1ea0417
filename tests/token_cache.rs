//! The verified-token cache: expiry is re-checked on every hit, and the cache stays within
//! its bound.

use std::time::Duration;

use oauth_grpc::{Algorithm, KeySet};
use oauth_grpc::{TokenError, Validator};
use oauth_grpc_tests::issuer::{
    AUDIENCE, ISSUER, TestKey, b64, claims, header, sign_json, sign_segments,
};
use serde_json::json;

#[tokio::test]
async fn an_expired_token_is_refused_even_when_cached() {
    let validator = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&oauth_grpc_tests::issuer::jwks()).expect("jwks"))
        .leeway(Duration::ZERO)
        .build()
        .expect("valid");
    let mut c = claims("orders:read");
    let now = oauth_grpc_tests::issuer::now();
    c["exp"] = json!(now + 2);
    let token = sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1);
    validator.validate(&token).await.expect("valid now");
    assert_eq!(validator.cached_tokens(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        TokenError::Expired
    );
}

#[tokio::test]
async fn the_cache_stays_within_its_bound() {
    let secret = [7u8; 32];
    let validator = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KeySet::from_hmac_secret(Some("hs"), &secret, Algorithm::HS256).expect("secret"))
        .cache_capacity(1_000)
        .build()
        .expect("valid");
    let key = jsonwebtoken::EncodingKey::from_secret(&secret);
    let header = b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs"})
        .to_string()
        .as_bytes());
    for i in 0..100_000u32 {
        let mut c = claims("orders:read");
        c["jti"] = json!(format!("jti-{i}"));
        let token = sign_segments(
            &header,
            &b64(c.to_string().as_bytes()),
            &key,
            Algorithm::HS256,
        );
        validator.validate(&token).await.expect("valid");
    }
    let cached = validator.cached_tokens();
    assert!(cached <= 1_000, "{cached} entries for a bound of 1,000");
    assert!(cached > 0);
}
