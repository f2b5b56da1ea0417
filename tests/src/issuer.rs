//! A test issuer: real key pairs (in `keys/`), their public JWKS, and tokens signed with them.
//!
//! Tokens are signed by `oauth_grpc::testing::TestIssuer` from exactly the header and claims a
//! test gives (`sign_json`), so tests can also build the malformed ones an attacker would send;
//! `sign_segments` signs raw segments with any key, for the cases no issuer would sign.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use oauth_grpc::testing::TestIssuer;

/// The issuer the test servers trust.
pub const ISSUER: &str = "https://issuer.test/";
/// The audience of the orders service in the tests.
pub const AUDIENCE: &str = "orders-api";

/// One signing key of the test issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKey {
    /// RSA 2048, kid `rsa-1`, published with `alg: RS256`.
    Rsa1,
    /// RSA 2048, kid `rsa-2`, published without `alg` (RS* and PS* allowed).
    Rsa2,
    /// EC P-256, kid `ec-256`, `alg: ES256`.
    Ec256,
    /// EC P-384, kid `ec-384`, `alg: ES384`.
    Ec384,
    /// Ed25519, kid `ed-1`, `alg: EdDSA`.
    Ed25519,
}

impl TestKey {
    /// Every key.
    pub const ALL: [TestKey; 5] = [
        TestKey::Rsa1,
        TestKey::Rsa2,
        TestKey::Ec256,
        TestKey::Ec384,
        TestKey::Ed25519,
    ];

    /// The key id in the JWKS.
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::Rsa1 => "rsa-1",
            TestKey::Rsa2 => "rsa-2",
            TestKey::Ec256 => "ec-256",
            TestKey::Ec384 => "ec-384",
            TestKey::Ed25519 => "ed-1",
        }
    }

    /// The algorithm the key signs with by default.
    pub fn alg(self) -> Algorithm {
        match self {
            TestKey::Rsa1 | TestKey::Rsa2 => Algorithm::RS256,
            TestKey::Ec256 => Algorithm::ES256,
            TestKey::Ec384 => Algorithm::ES384,
            TestKey::Ed25519 => Algorithm::EdDSA,
        }
    }

    /// The private key, PEM.
    pub fn private_pem(self) -> &'static [u8] {
        match self {
            TestKey::Rsa1 => include_bytes!("../keys/rsa1.pem"),
            TestKey::Rsa2 => include_bytes!("../keys/rsa2.pem"),
            TestKey::Ec256 => include_bytes!("../keys/ec256.pem"),
            TestKey::Ec384 => include_bytes!("../keys/ec384.pem"),
            TestKey::Ed25519 => include_bytes!("../keys/ed25519.pem"),
        }
    }

    /// The public key, PEM.
    pub fn public_pem(self) -> &'static [u8] {
        match self {
            TestKey::Rsa1 => include_bytes!("../keys/rsa1.pub.pem"),
            TestKey::Rsa2 => include_bytes!("../keys/rsa2.pub.pem"),
            TestKey::Ec256 => include_bytes!("../keys/ec256.pub.pem"),
            TestKey::Ec384 => include_bytes!("../keys/ec384.pub.pem"),
            TestKey::Ed25519 => include_bytes!("../keys/ed25519.pub.pem"),
        }
    }

    /// The private key for signing.
    ///
    /// # Panics
    ///
    /// If the fixture file is broken (a test set-up error).
    pub fn encoding_key(self) -> EncodingKey {
        let pem = self.private_pem();
        let key = match self {
            TestKey::Rsa1 | TestKey::Rsa2 => EncodingKey::from_rsa_pem(pem),
            TestKey::Ec256 | TestKey::Ec384 => EncodingKey::from_ec_pem(pem),
            TestKey::Ed25519 => EncodingKey::from_ed_pem(pem),
        };
        key.expect("test key fixture parses")
    }

    /// This key as a `TestIssuer` for [`ISSUER`], made once per key.
    pub fn issuer(self) -> &'static TestIssuer {
        static ISSUERS: OnceLock<Vec<TestIssuer>> = OnceLock::new();
        let issuers = ISSUERS.get_or_init(|| {
            TestKey::ALL
                .iter()
                .map(|key| {
                    TestIssuer::from_pem(ISSUER, key.private_pem(), key.alg(), key.kid())
                        .expect("test key fixture parses")
                })
                .collect()
        });
        let index = TestKey::ALL
            .iter()
            .position(|k| *k == self)
            .expect("every key is in ALL");
        &issuers[index]
    }

    /// The public JWK, with `kid`, `use: sig` and (except `rsa-2`) `alg`.
    pub fn jwk(self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(), self.alg())
            .expect("public JWK from test key");
        jwk.common.key_id = Some(self.kid().to_owned());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        if self == TestKey::Rsa2 {
            jwk.common.key_algorithm = None;
        }
        jwk
    }
}

/// The issuer's public JWKS document with every test key, plus an encryption key that
/// validators must skip.
pub fn jwks() -> Vec<u8> {
    let set = JwkSet {
        keys: TestKey::ALL.iter().map(|k| k.jwk()).collect(),
    };
    let mut doc = serde_json::to_value(&set).expect("JWKS serialises");
    if let Some(keys) = doc.get_mut("keys").and_then(Value::as_array_mut) {
        let mut enc = serde_json::to_value(TestKey::Rsa1.jwk()).expect("JWK serialises");
        enc["kid"] = json!("enc-1");
        enc["use"] = json!("enc");
        enc["alg"] = json!("RSA-OAEP");
        keys.push(enc);
    }
    serde_json::to_vec(&doc).expect("JWKS serialises")
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Claims of a valid access token for `sub` with `scope`.
pub fn claims(scope: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "client_id": "orders-web",
        "iat": now,
        "exp": now + 300,
        "jti": format!("jti-{now}"),
        "scope": scope,
    })
}

/// The header of a valid access token signed with `key`.
pub fn header(key: TestKey) -> Value {
    json!({"alg": alg_name(key.alg()), "typ": "at+jwt", "kid": key.kid()})
}

/// The JOSE name of an algorithm.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unknown",
    }
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header_b64.payload_b64` with `key` under `alg` and returns the compact token.
pub fn sign_segments(
    header_b64: &str,
    payload_b64: &str,
    key: &EncodingKey,
    alg: Algorithm,
) -> String {
    let message = format!("{header_b64}.{payload_b64}");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("signing works");
    format!("{message}.{signature}")
}

/// A token with exactly this header and payload JSON, signed with `key`.
pub fn sign_json(header: &Value, payload: &Value, key: TestKey) -> String {
    key.issuer()
        .sign_json(header, payload)
        .expect("the header's alg fits the test key")
}

/// A valid token signed with `key` granting `scope`.
pub fn token(key: TestKey, scope: &str) -> String {
    sign_json(&header(key), &claims(scope), key)
}
