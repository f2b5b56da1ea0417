//! Shared set-up of the benchmarks: keys, tokens and validators, and (in [`loopback`]) the
//! servers and measurements of the end-to-end runs.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use oauth_grpc::KeySet;
use oauth_grpc::Validator;
use serde_json::json;

pub mod dpop;
pub mod loopback;

/// The issuer of the benchmark tokens.
pub const ISSUER: &str = "https://bench.test/";
/// Their audience.
pub const AUDIENCE: &str = "orders-api";

/// A key used in the benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct BenchKey {
    /// The algorithm.
    pub alg: Algorithm,
    /// Its JOSE name.
    pub name: &'static str,
    private: &'static [u8],
    public: &'static [u8],
}

/// HS256's shared secret.
pub const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// The algorithms measured.
pub const KEYS: [BenchKey; 5] = [
    BenchKey {
        alg: Algorithm::RS256,
        name: "RS256",
        private: include_bytes!("../../tests/keys/rsa1.pem"),
        public: include_bytes!("../../tests/keys/rsa1.pub.pem"),
    },
    BenchKey {
        alg: Algorithm::PS256,
        name: "PS256",
        private: include_bytes!("../../tests/keys/rsa1.pem"),
        public: include_bytes!("../../tests/keys/rsa1.pub.pem"),
    },
    BenchKey {
        alg: Algorithm::ES256,
        name: "ES256",
        private: include_bytes!("../../tests/keys/ec256.pem"),
        public: include_bytes!("../../tests/keys/ec256.pub.pem"),
    },
    BenchKey {
        alg: Algorithm::EdDSA,
        name: "EdDSA",
        private: include_bytes!("../../tests/keys/ed25519.pem"),
        public: include_bytes!("../../tests/keys/ed25519.pub.pem"),
    },
    BenchKey {
        alg: Algorithm::HS256,
        name: "HS256",
        private: HMAC_SECRET,
        public: HMAC_SECRET,
    },
];

impl BenchKey {
    /// The signing key.
    pub fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(self.private).unwrap(),
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.private).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.private).unwrap(),
            _ => EncodingKey::from_secret(self.private),
        }
    }

    /// The verification key as jsonwebtoken wants it.
    pub fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        match self.alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                jsonwebtoken::DecodingKey::from_rsa_pem(self.public).unwrap()
            }
            Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(self.public).unwrap(),
            Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(self.public).unwrap(),
            _ => jsonwebtoken::DecodingKey::from_secret(self.public),
        }
    }

    /// The same key for our validator.
    pub fn key_set(&self) -> KeySet {
        match self.alg {
            Algorithm::HS256 => KeySet::from_hmac_secret(Some("k"), self.public, self.alg).unwrap(),
            _ => KeySet::from_pem(Some("k"), self.public, self.alg).unwrap(),
        }
    }

    /// The SubjectPublicKeyInfo DER of the public key.
    pub fn spki_der(&self) -> Vec<u8> {
        let text = std::str::from_utf8(self.public).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(body).unwrap()
    }

    /// A valid RFC 9068 token with `scope`, signed with this key.
    pub fn token(&self, scope: &str) -> String {
        self.token_bound_to(scope, None)
    }

    /// The same token, bound to a client certificate (`cnf.x5t#S256` = `thumbprint`) if given.
    pub fn token_bound_to(&self, scope: &str, thumbprint: Option<&str>) -> String {
        self.token_with_cnf(
            scope,
            thumbprint.map(|thumbprint| json!({ "x5t#S256": thumbprint })),
        )
    }

    /// The same token, bound to a DPoP key (`cnf.jkt` = `jkt`, its RFC 7638 thumbprint).
    pub fn dpop_token(&self, scope: &str, jkt: &str) -> String {
        self.token_with_cnf(scope, Some(json!({ "jkt": jkt })))
    }

    /// The same token, delegated (RFC 8693): `act` is its actor chain.
    pub fn delegated_token(&self, scope: &str, act: serde_json::Value) -> String {
        self.token_with(scope, "act", Some(act))
    }

    /// The same token with `cnf` if given.
    fn token_with_cnf(&self, scope: &str, cnf: Option<serde_json::Value>) -> String {
        self.token_with(scope, "cnf", cnf)
    }

    /// The same token with the claim `name` if given.
    fn token_with(&self, scope: &str, name: &str, value: Option<serde_json::Value>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"alg": self.name, "typ": "at+jwt", "kid": "k"});
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "client_id": "bench-client",
            "iat": now, "exp": now + 3600, "jti": format!("bench-{now}"), "scope": scope,
        });
        let mut claims = claims;
        if let Some(value) = value {
            claims[name] = value;
        }
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding_key(), self.alg).unwrap();
        format!("{message}.{signature}")
    }

    /// Our validator for this key, with or without the verified-token cache.
    pub fn validator(&self, cached: bool) -> Validator {
        Validator::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(self.key_set())
            .cache_capacity(if cached { 10_000 } else { 0 })
            .build()
            .unwrap()
    }
}

/// jsonwebtoken's own decode with the same claim checks, as a user would call it.
pub fn jsonwebtoken_validation(alg: Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation
}
