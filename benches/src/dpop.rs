//! DPoP proofs (RFC 9449) for the benchmarks: the keys a client proves possession of, and
//! proofs made the way the crate's client makes them (`DpopKey::proof` on the client branch:
//! the header encoded once, per proof the claims `jti`, `htm`, `htu`, `iat` and `ath` as JSON,
//! then `jsonwebtoken::crypto::sign`) — or, to sign many proofs ahead of a measurement
//! quickly, with a key pair parsed once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaEncoding, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

/// A key a client signs DPoP proofs with.
#[derive(Debug, Clone, Copy)]
pub struct ProofKey {
    /// The proofs' algorithm.
    pub alg: Algorithm,
    /// Its JOSE name.
    pub name: &'static str,
    private: &'static [u8],
    public: &'static [u8],
}

/// The proof algorithms measured: the five `Dpop::new()` accepts. The RSA rows use `rsa2`, not
/// the issuer's `rsa1`.
pub const PROOF_KEYS: [ProofKey; 5] = [
    ProofKey {
        alg: Algorithm::ES256,
        name: "ES256",
        private: include_bytes!("../../tests/keys/ec256.pem"),
        public: include_bytes!("../../tests/keys/ec256.pub.pem"),
    },
    ProofKey {
        alg: Algorithm::ES384,
        name: "ES384",
        private: include_bytes!("../../tests/keys/ec384.pem"),
        public: include_bytes!("../../tests/keys/ec384.pub.pem"),
    },
    ProofKey {
        alg: Algorithm::EdDSA,
        name: "EdDSA",
        private: include_bytes!("../../tests/keys/ed25519.pem"),
        public: include_bytes!("../../tests/keys/ed25519.pub.pem"),
    },
    ProofKey {
        alg: Algorithm::PS256,
        name: "PS256",
        private: include_bytes!("../../tests/keys/rsa2.pem"),
        public: include_bytes!("../../tests/keys/rsa2.pub.pem"),
    },
    ProofKey {
        alg: Algorithm::RS256,
        name: "RS256",
        private: include_bytes!("../../tests/keys/rsa2.pem"),
        public: include_bytes!("../../tests/keys/rsa2.pub.pem"),
    },
];

/// The DER of a PEM document's body.
fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is text");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

impl ProofKey {
    /// The proof key for `name`.
    ///
    /// # Panics
    ///
    /// For a name not in [`PROOF_KEYS`].
    pub fn named(name: &str) -> Self {
        *PROOF_KEYS
            .iter()
            .find(|key| key.name == name)
            .expect("ES256, ES384, EdDSA, PS256 or RS256")
    }

    /// The SubjectPublicKeyInfo DER of the public key.
    pub fn spki_der(&self) -> Vec<u8> {
        pem_der(self.public)
    }

    /// The signing key as jsonwebtoken wants it (what the crate's client holds).
    ///
    /// # Panics
    ///
    /// If the test key does not parse.
    pub fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(self.private),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.private),
            _ => EncodingKey::from_rsa_pem(self.private),
        }
        .expect("test key parses")
    }
}

/// The private key, parsed once.
#[derive(Debug)]
enum Parsed {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
}

/// Makes DPoP proofs with one [`ProofKey`].
#[derive(Debug)]
pub struct ProofSigner {
    /// The key.
    pub key: ProofKey,
    /// The RFC 7638 SHA-256 thumbprint of its public JWK: the `cnf.jkt` of a bound token.
    pub jkt: String,
    /// The proof header `{"typ":"dpop+jwt","alg":…,"jwk":…}`, base64url.
    header_b64: String,
    encoding: EncodingKey,
    parsed: Parsed,
    rng: SystemRandom,
}

/// A unique `jti` of 22 characters, as long as the client's (16 random bytes, base64url).
fn jti() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:022}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `ath`: base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

impl ProofSigner {
    /// A signer for `key`. The crypto backend of jsonwebtoken must be installed (building any
    /// `Validator` does it).
    ///
    /// # Panics
    ///
    /// If the test key does not parse.
    pub fn new(key: ProofKey) -> Self {
        let encoding = key.encoding_key();
        let jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, key.alg).expect("public JWK"),
        )
        .expect("JWK serialises");
        let member = |name: &str| jwk[name].as_str().expect("JWK member").to_owned();
        // The required members only (RFC 7638 §3.2), in lexicographic order: the canonical
        // form the thumbprint hashes, and what the proof header carries.
        let (canonical, public): (String, Value) = match jwk["kty"].as_str() {
            Some("RSA") => (
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    member("e"),
                    member("n")
                ),
                json!({"kty": "RSA", "n": member("n"), "e": member("e")}),
            ),
            Some("EC") => (
                format!(
                    r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                    member("crv"),
                    member("x"),
                    member("y")
                ),
                json!({"kty": "EC", "crv": member("crv"), "x": member("x"), "y": member("y")}),
            ),
            _ => (
                format!(
                    r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                    member("crv"),
                    member("x")
                ),
                json!({"kty": "OKP", "crv": member("crv"), "x": member("x")}),
            ),
        };
        let jkt = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        let header = json!({"typ": "dpop+jwt", "alg": key.name, "jwk": public});
        let der = pem_der(key.private);
        let parsed = match key.alg {
            Algorithm::ES256 => Parsed::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .expect("P-256 key"),
            ),
            Algorithm::ES384 => Parsed::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der)
                    .expect("P-384 key"),
            ),
            Algorithm::EdDSA => {
                Parsed::Ed25519(Ed25519KeyPair::from_pkcs8(&der).expect("Ed25519 key"))
            }
            Algorithm::PS256 => Parsed::Rsa(
                RsaKeyPair::from_pkcs8(&der).expect("RSA key"),
                &signature::RSA_PSS_SHA256,
            ),
            _ => Parsed::Rsa(
                RsaKeyPair::from_pkcs8(&der).expect("RSA key"),
                &signature::RSA_PKCS1_SHA256,
            ),
        };
        Self {
            key,
            jkt,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            encoding,
            parsed,
            rng: SystemRandom::new(),
        }
    }

    /// `header.payload` of a fresh proof for a `POST` to `htu` with `token`: the claims as the
    /// client makes them (a JSON map, `ath` hashed per proof).
    pub fn message(&self, htu: &str, token: &str) -> String {
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(jti()));
        claims.insert("htm".into(), Value::String("POST".to_owned()));
        claims.insert("htu".into(), Value::String(htu.to_owned()));
        claims.insert("iat".into(), Value::from(now()));
        claims.insert("ath".into(), Value::String(ath(token)));
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        format!("{}.{payload}", self.header_b64)
    }

    /// The base64url signature of `message` by `jsonwebtoken::crypto::sign`, which parses the
    /// PKCS#8 key again for every signature (what the crate's client does).
    ///
    /// # Panics
    ///
    /// If signing fails.
    pub fn sign_jsonwebtoken(&self, message: &str) -> String {
        jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.key.alg)
            .expect("signing works")
    }

    /// The same signature by the key pair parsed once.
    ///
    /// # Panics
    ///
    /// If signing fails.
    pub fn sign_parsed(&self, message: &str) -> String {
        let message = message.as_bytes();
        match &self.parsed {
            Parsed::Ecdsa(pair) => {
                URL_SAFE_NO_PAD.encode(pair.sign(&self.rng, message).expect("signing works"))
            }
            Parsed::Ed25519(pair) => URL_SAFE_NO_PAD.encode(pair.sign(message)),
            Parsed::Rsa(pair, padding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*padding, &self.rng, message, &mut signature)
                    .expect("signing works");
                URL_SAFE_NO_PAD.encode(signature)
            }
        }
    }

    /// A fresh proof, made as the crate's client makes it.
    pub fn proof(&self, htu: &str, token: &str) -> String {
        let message = self.message(htu, token);
        let signature = self.sign_jsonwebtoken(&message);
        format!("{message}.{signature}")
    }

    /// A fresh proof signed by the key pair parsed once: for proofs signed ahead.
    pub fn proof_parsed(&self, htu: &str, token: &str) -> String {
        let message = self.message(htu, token);
        let signature = self.sign_parsed(&message);
        format!("{message}.{signature}")
    }
}
