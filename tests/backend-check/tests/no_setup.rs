//! A user builds a validator and checks tokens, with no call to pick a crypto backend: the
//! crate has installed the one its features select. Run once per backend feature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use oauth_grpc::{Algorithm as KeyAlg, KeySet};
use oauth_grpc::{TokenError, Validator};
use serde_json::json;

const KEYS: [(&[u8], &[u8], Algorithm, KeyAlg); 3] = [
    (
        include_bytes!("../../keys/rsa1.pem"),
        include_bytes!("../../keys/rsa1.pub.pem"),
        Algorithm::RS256,
        KeyAlg::RS256,
    ),
    (
        include_bytes!("../../keys/ec256.pem"),
        include_bytes!("../../keys/ec256.pub.pem"),
        Algorithm::ES256,
        KeyAlg::ES256,
    ),
    (
        include_bytes!("../../keys/ed25519.pem"),
        include_bytes!("../../keys/ed25519.pub.pem"),
        Algorithm::EdDSA,
        KeyAlg::EdDSA,
    ),
];

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn validation_works_without_set_up() {
    let expected = option_env!("OAUTH_GRPC_EXPECT_BACKEND");
    if let Some(expected) = expected {
        assert_eq!(oauth_grpc::crypto_backend(), expected);
    }
    for (private, public, alg, key_alg) in KEYS {
        // The user's code: keys, validator, validate. Nothing else.
        let validator = Validator::builder()
            .issuer("https://issuer.test/")
            .audience("orders-api")
            .keys(KeySet::from_pem(Some("k"), public, key_alg).expect("public key"))
            .build()
            .expect("validator");

        let header = json!({"alg": format!("{alg:?}"), "typ": "at+jwt", "kid": "k"});
        let claims = json!({
            "iss": "https://issuer.test/", "aud": "orders-api", "sub": "alice",
            "exp": now() + 300, "iat": now(), "scope": "orders:read",
            "client_id": "orders-web", "jti": "token-1",
        });
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private),
            Algorithm::ES256 => EncodingKey::from_ec_pem(private),
            _ => EncodingKey::from_ed_pem(private),
        }
        .expect("private key");
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).expect("signing");
        let token = format!("{message}.{signature}");

        let principal = check(&validator, &token).expect("valid token");
        assert_eq!(principal.subject(), Some("alice"), "{alg:?}");

        let mut forged = token.into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ASCII");
        assert_eq!(
            check(&validator, &forged),
            Err(TokenError::BadSignature),
            "{alg:?}"
        );
    }
}

fn check(
    validator: &oauth_grpc::Validator,
    token: &str,
) -> Result<oauth_grpc::Principal, oauth_grpc::TokenError> {
    validator.validate_at(token, std::time::SystemTime::now())
}
