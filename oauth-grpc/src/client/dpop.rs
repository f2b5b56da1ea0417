//! [`DpopKey`]: the client's proof-of-possession key (RFC 9449, DPoP), and the proofs it signs.
//!
//! A DPoP-bound token is useless without the key: every call carries a fresh proof, a JWT
//! signed by the key, naming the call (`htm`, `htu`) and the token (`ath`). Give one key to
//! the token source, so the provider binds the token to it (`cnf.jkt`), and the same key to
//! the [`BearerLayer`](super::BearerLayer), so each call proves it:
//!
//! ```no_run
//! # use examples::pb::orders_client::OrdersClient;
//! use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials, DpopKey};
//! use oauth_grpc::ClientSecret;
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = DpopKey::generate()?; // P-256, in memory only
//! let source = ClientCredentials::discover(
//!     "https://idp.example.com/",
//!     "billing-service",
//!     ClientAuthentication::SecretBasic(ClientSecret::from_file("/run/secrets/billing")),
//! )
//! .scope("orders:read")
//! .dpop(key.clone());
//! let layer = BearerLayer::new(source).dpop(key, "https://orders.example.com")?;
//!
//! let channel = tonic::transport::Endpoint::from_static("https://orders.example.com")
//!     .connect()
//!     .await?;
//! let mut orders = OrdersClient::new(ServiceBuilder::new().layer(layer).service(channel));
//! # let _ = &mut orders;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{CommonParameters, Jwk};
use serde_json::{Map, Value, json};

use crate::error::KeyError;
use crate::keys::Algorithm;
use crate::validate::dpop::{jwk_thumbprint, token_hash};

/// A DPoP key (RFC 9449): a private key the client holds, whose public half travels in each
/// proof's header and whose thumbprint the provider puts in the token's `cnf.jkt`.
///
/// Clones share the key. `Debug` shows the algorithm and the thumbprint (public values),
/// never the key.
///
/// ```
/// use oauth_grpc::client::DpopKey;
///
/// let key = DpopKey::generate()?;
/// assert_eq!(key.algorithm(), oauth_grpc::Algorithm::ES256);
/// assert_eq!(key.thumbprint().len(), 43); // base64url SHA-256
/// assert_eq!(key.public_jwk()["crv"], "P-256");
/// assert!(key.public_jwk().get("d").is_none()); // public members only
/// # Ok::<(), oauth_grpc::KeyError>(())
/// ```
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<Inner>,
}

struct Inner {
    key: EncodingKey,
    alg: Algorithm,
    /// The public JWK: `kty` and the key's public members, nothing else.
    jwk: Value,
    /// RFC 7638 SHA-256 thumbprint of `jwk`.
    thumbprint: String,
    /// The proofs' JOSE header, base64url: the same for every proof.
    header: String,
}

/// PKCS#8 v1 prefix of a P-256 private key without its public key (RFC 5915 in RFC 5208):
/// SEQUENCE { 0, { id-ecPublicKey, prime256v1 }, OCTET STRING { ECPrivateKey { 1, d } } };
/// the 32 bytes of `d` follow. The backends derive the public point from `d`.
const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

/// JWK members a DPoP proof's `jwk` carries: `kty` and the public parameters.
const PUBLIC_MEMBERS: [&str; 6] = ["kty", "crv", "x", "y", "n", "e"];

impl DpopKey {
    /// A fresh P-256 key signing ES256, generated from the operating system's randomness.
    /// It lives in memory only: a restart makes a new key (and needs a new token, which a
    /// token source with [`dpop`](super::ClientCredentials::dpop) fetches by itself).
    ///
    /// # Errors
    ///
    /// [`KeyError::NoRandomness`] when the system gives no random bytes;
    /// [`KeyError::Dpop`] when the crypto backend does not work.
    ///
    /// ```
    /// let a = oauth_grpc::client::DpopKey::generate()?;
    /// let b = oauth_grpc::client::DpopKey::generate()?;
    /// assert_ne!(a.thumbprint(), b.thumbprint());
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn generate() -> Result<Self, KeyError> {
        install_backend(Algorithm::ES256)?;
        // A `d` of zero or not below the group order (a chance of about 2^-32) is refused by
        // the backend; another draw fixes it.
        let mut last = None;
        for _ in 0..4 {
            let mut d = [0u8; 32];
            getrandom::fill(&mut d).map_err(|_| KeyError::NoRandomness)?;
            let mut der = P256_PKCS8_PREFIX.to_vec();
            der.extend_from_slice(&d);
            match Self::from_key(EncodingKey::from_ec_der(&der), Algorithm::ES256) {
                Ok(key) => return Ok(key),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or(KeyError::NoRandomness))
    }

    /// A key from a PEM private key (PKCS#8 `PRIVATE KEY`; RSA also PKCS#1) signing with
    /// `alg`: EC P-256 (`ES256`) or P-384 (`ES384`), Ed25519 (`EdDSA`), or RSA of 2048 bits
    /// or more (`PS256`…`PS512`, `RS256`…`RS512`). Keep the key as long as its tokens: a
    /// token bound to it is refused with any other.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongAlgorithm`] for an HMAC algorithm (a shared secret proves nothing to
    /// a server); [`KeyError::Dpop`] when the PEM is not a private key of that type, or a key
    /// that servers refuse (an RSA key under 2048 bits).
    ///
    /// ```
    /// use oauth_grpc::client::DpopKey;
    /// use oauth_grpc::{Algorithm, KeyError};
    ///
    /// let pem = b"-----BEGIN PRIVATE KEY-----
    /// MC4CAQAwBQYDK2VwBCIEIDd6xB7R2nd53W/U4DsYyde9009dhj/tQIzXN/9u65MU
    /// -----END PRIVATE KEY-----
    /// ";
    /// let key = DpopKey::from_pem(pem, Algorithm::EdDSA)?;
    /// assert_eq!(key.public_jwk()["kty"], "OKP");
    ///
    /// let err = DpopKey::from_pem(pem, Algorithm::HS256).unwrap_err();
    /// assert!(matches!(err, KeyError::WrongAlgorithm { .. }));
    /// assert!(err.to_string().contains("asymmetric"));
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn from_pem(pem: impl AsRef<[u8]>, alg: Algorithm) -> Result<Self, KeyError> {
        let Some(key) = super::auth::signing_key(pem.as_ref(), alg) else {
            return Err(KeyError::WrongAlgorithm {
                alg,
                hint: "a DPoP key signs with an asymmetric algorithm (ES256, ES384, EdDSA, PS256…PS512, RS256…RS512), or use `DpopKey::generate()`; an HMAC secret proves nothing to a server",
            });
        };
        install_backend(alg)?;
        let key = key.map_err(|_| KeyError::Dpop {
            alg,
            problem: "the PEM document is not a private key of this algorithm's type; pass a PKCS#8 `PRIVATE KEY` (EC P-256 for ES256, P-384 for ES384, Ed25519 for EdDSA, RSA for PS*/RS*)",
        })?;
        Self::from_key(key, alg)
    }

    /// The key with its public JWK and thumbprint, checked by signing once and verifying
    /// the signature under the public JWK with the rules a server applies to a proof's key.
    fn from_key(key: EncodingKey, alg: Algorithm) -> Result<Self, KeyError> {
        const MISMATCH: &str = "it is not a private key for this algorithm (an EC key's curve must fit: P-256 for ES256, P-384 for ES384)";
        let mut public = Jwk::from_encoding_key(&key, alg).map_err(|_| KeyError::Dpop {
            alg,
            problem: MISMATCH,
        })?;
        public.common = CommonParameters::default();
        let mut jwk = serde_json::to_value(&public).map_err(|_| KeyError::Dpop {
            alg,
            problem: MISMATCH,
        })?;
        if let Value::Object(members) = &mut jwk {
            members.retain(|name, _| PUBLIC_MEMBERS.contains(&name.as_str()));
        }
        let verifying = crate::keys::jwk_key(jwk.clone()).map_err(KeyError::UnusableJwk)?;
        if !verifying.allows(alg) {
            return Err(KeyError::Dpop {
                alg,
                problem: MISMATCH,
            });
        }
        let message = b"oauth-grpc: DPoP key check";
        let signature = jsonwebtoken::crypto::sign(message, &key, alg).map_err(|_| KeyError::Dpop {
            alg,
            problem: "it does not sign (a public key, or a key the backend refuses); pass the private key",
        })?;
        match jsonwebtoken::crypto::verify(&signature, message, verifying.decoding_key(), alg) {
            Ok(true) => {}
            _ => {
                return Err(KeyError::Dpop {
                    alg,
                    problem: "its signatures do not verify under its own public key",
                });
            }
        }
        let members = jwk.as_object().cloned().unwrap_or_default();
        let thumbprint = jwk_thumbprint(&members).map_err(|_| KeyError::Dpop {
            alg,
            problem: "its public key has no RFC 7638 thumbprint",
        })?;
        let header = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk });
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self {
            inner: Arc::new(Inner {
                key,
                alg,
                jwk,
                thumbprint,
                header,
            }),
        })
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url: what a token bound to
    /// this key carries in `cnf.jkt`.
    ///
    /// ```
    /// let key = oauth_grpc::client::DpopKey::generate()?;
    /// assert!(key.thumbprint().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// The algorithm proofs are signed with.
    ///
    /// ```
    /// let key = oauth_grpc::client::DpopKey::generate()?;
    /// assert_eq!(key.algorithm(), oauth_grpc::Algorithm::ES256);
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The public key as the JWK each proof's header carries: `kty` and the public members
    /// (`crv`, `x`, `y` for EC; `crv`, `x` for Ed25519; `n`, `e` for RSA), nothing else.
    ///
    /// ```
    /// let key = oauth_grpc::client::DpopKey::generate()?;
    /// let jwk = key.public_jwk().as_object().expect("an object");
    /// let mut names: Vec<&str> = jwk.keys().map(String::as_str).collect();
    /// names.sort();
    /// assert_eq!(names, ["crv", "kty", "x", "y"]);
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn public_jwk(&self) -> &Value {
        &self.inner.jwk
    }

    /// A fresh proof (RFC 9449 §4.2), the value of a `dpop` header: header
    /// `{"typ":"dpop+jwt","alg":…,"jwk":…}`, claims `jti` (128 random bits), `htm`, `htu`
    /// (its query and fragment dropped), `iat` (now), `ath` (base64url SHA-256 of
    /// `access_token`, when given: resource calls) and `nonce` (when the server gave one).
    /// A [`BearerLayer`](super::BearerLayer) and the token sources make these themselves;
    /// this is for calls made otherwise.
    ///
    /// # Errors
    ///
    /// [`KeyError::NoRandomness`] without random bytes for the `jti`; [`KeyError::Dpop`]
    /// when signing fails.
    ///
    /// ```
    /// let key = oauth_grpc::client::DpopKey::generate()?;
    /// let proof = key.proof("POST", "https://orders.example.com/orders.v1.Orders/WhoAmI", Some("eyJ…"), None)?;
    /// assert_eq!(proof.split('.').count(), 3);
    /// assert_ne!(proof, key.proof("POST", "https://orders.example.com/orders.v1.Orders/WhoAmI", Some("eyJ…"), None)?);
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn proof(
        &self,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, KeyError> {
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| KeyError::NoRandomness)?;
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(URL_SAFE_NO_PAD.encode(jti)));
        claims.insert("htm".into(), Value::String(htm.to_owned()));
        let htu = htu.split(['?', '#']).next().unwrap_or_default();
        claims.insert("htu".into(), Value::String(htu.to_owned()));
        claims.insert("iat".into(), Value::from(crate::time::unix_now()));
        if let Some(token) = access_token {
            claims.insert("ath".into(), Value::String(token_hash(token)));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), Value::String(nonce.to_owned()));
        }
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        let message = format!("{}.{payload}", self.inner.header);
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.inner.key, self.inner.alg)
                .map_err(|_| KeyError::Dpop {
                    alg: self.inner.alg,
                    problem: "signing a proof failed",
                })?;
        Ok(format!("{message}.{signature}"))
    }
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.inner.alg)
            .field("thumbprint", &self.inner.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The crypto backend, installed before anything signs.
fn install_backend(alg: Algorithm) -> Result<(), KeyError> {
    crate::keys::install_backend().map_err(|_| KeyError::Dpop {
        alg,
        problem: "the crypto backend of jsonwebtoken does not work; enable exactly one of the `aws-lc` and `rust-crypto` features of oauth-grpc",
    })
}

/// The latest nonce a server gave (RFC 9449 §8, §9), shared by the clones of a token source
/// or a layer: nonces are per server, and the newest one is used from then on.
#[derive(Debug, Default)]
pub(super) struct Nonce(Mutex<Option<Arc<str>>>);

/// The longest nonce kept; a server's nonces are short (oidc-provider's are 43 characters).
const MAX_NONCE_LEN: usize = 1024;

impl Nonce {
    pub(super) fn get(&self) -> Option<Arc<str>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps the `dpop-nonce` of `headers` (response headers or trailers), if there is
    /// exactly one and it has the nonce syntax; returns whether there was one.
    pub(super) fn learn(&self, headers: &http::HeaderMap) -> bool {
        let Some(nonce) = nonce_value(headers) else {
            return false;
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(nonce));
        true
    }
}

/// The single `dpop-nonce` value of `headers`, if it is `1*NQCHAR` (RFC 9449 §8.1): printable
/// ASCII without `"` and `\`.
fn nonce_value(headers: &http::HeaderMap) -> Option<&str> {
    let mut values = headers.get_all("dpop-nonce").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let nonce = value.to_str().ok()?;
    let nqchar = |b: u8| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e);
    (!nonce.is_empty() && nonce.len() <= MAX_NONCE_LEN && nonce.bytes().all(nqchar))
        .then_some(nonce)
}

/// DPoP for a token source: the key proving each token request, and the provider's nonce.
#[derive(Debug, Clone)]
pub(super) struct TokenProof {
    pub(super) key: DpopKey,
    pub(super) nonce: Arc<Nonce>,
}

impl TokenProof {
    pub(super) fn new(key: DpopKey) -> Self {
        Self {
            key,
            nonce: Arc::new(Nonce::default()),
        }
    }

    /// The `dpop` header value for a token request to `endpoint` (RFC 9449 §5): `htm`
    /// `POST`, `htu` the endpoint without query, no `ath`, the latest nonce.
    pub(super) fn header(&self, endpoint: &str) -> Result<http::HeaderValue, KeyError> {
        let nonce = self.nonce.get();
        let proof = self.key.proof("POST", endpoint, None, nonce.as_deref())?;
        let mut value = http::HeaderValue::try_from(proof).map_err(|_| KeyError::Dpop {
            alg: self.key.algorithm(),
            problem: "a proof is not a header value",
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Whether an answer asks for a nonce (RFC 9449 §8): 400 (or 401) with the OAuth error
    /// `use_dpop_nonce` and a `dpop-nonce` header, which is kept for the retry.
    pub(super) fn asks_for_nonce(&self, response: &http::Response<Vec<u8>>) -> bool {
        #[derive(serde::Deserialize)]
        struct Refused {
            error: String,
        }
        let status = response.status().as_u16();
        (status == 400 || status == 401)
            && serde_json::from_slice::<Refused>(response.body())
                .is_ok_and(|refused| refused.error == "use_dpop_nonce")
            && self.nonce.learn(response.headers())
    }
}

/// The token type as the endpoint named it, in the RFC's spelling for the two known types
/// (`oauth2` gives them in lower case).
pub(super) fn token_type_name(token_type: &str) -> String {
    if token_type.eq_ignore_ascii_case("dpop") {
        "DPoP".to_owned()
    } else if token_type.eq_ignore_ascii_case("bearer") {
        "Bearer".to_owned()
    } else {
        token_type.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ProofError;
    use crate::validate::dpop::verify_proof;

    use super::*;

    const ALL: [Algorithm; 9] = crate::validate::dpop::ASYMMETRIC;

    const EC256: &[u8] = include_bytes!("../../../tests/keys/ec256.pem");
    const EC256_PUBLIC: &[u8] = include_bytes!("../../../tests/keys/ec256.pub.pem");
    const EC384: &[u8] = include_bytes!("../../../tests/keys/ec384.pem");
    const ED25519: &[u8] = include_bytes!("../../../tests/keys/ed25519.pem");
    const RSA: &[u8] = include_bytes!("../../../tests/keys/rsa1.pem");

    /// The payload of a compact JWS, as JSON.
    fn payload(jws: &str) -> Map<String, Value> {
        let segment = jws.split('.').nth(1).unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD.decode(segment).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[test]
    fn a_generated_key_signs_proofs_the_server_accepts() {
        let key = DpopKey::generate().expect("a key");
        let token = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
        let htu = "http://127.0.0.1:50051/orders.v1.Orders/WhoAmI";
        let proof = key
            .proof("POST", htu, Some(token), Some("n-1"))
            .expect("a proof");
        let checked = verify_proof(&proof, &ALL).expect("the server's check passes");
        assert_eq!(checked.jkt, key.thumbprint());
        assert_eq!(checked.htm, "POST");
        assert_eq!(checked.htu, htu);
        assert_eq!(checked.ath, Some(token_hash(token)));
        assert_eq!(checked.nonce.as_deref(), Some("n-1"));
        let now = crate::time::unix_now();
        assert!(checked.iat.abs_diff(now) <= 5, "iat is now");
        // Only the ES256 allow-list entry is needed.
        assert!(verify_proof(&proof, &[Algorithm::ES256]).is_ok());
        assert_eq!(
            verify_proof(&proof, &[Algorithm::EdDSA]),
            Err(ProofError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn a_token_request_proof_has_no_ath_nor_query() {
        let key = DpopKey::generate().expect("a key");
        let proof = key
            .proof("POST", "https://idp.example.com/token?x=1#frag", None, None)
            .expect("a proof");
        let checked = verify_proof(&proof, &ALL).expect("verifies");
        assert_eq!(checked.htu, "https://idp.example.com/token");
        assert_eq!(checked.ath, None);
        assert_eq!(checked.nonce, None);
        assert!(!payload(&proof).contains_key("ath"));
    }

    #[test]
    fn every_proof_has_its_own_jti() {
        let key = DpopKey::generate().expect("a key");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let proof = key
                .proof("POST", "https://h/p", Some("t"), None)
                .expect("a proof");
            let jti = verify_proof(&proof, &ALL).expect("verifies").jti;
            // 16 random bytes, base64url: 22 characters.
            assert_eq!(jti.len(), 22);
            assert!(seen.insert(jti), "a jti came twice");
        }
    }

    #[test]
    fn the_header_carries_only_the_public_key() {
        let key = DpopKey::generate().expect("a key");
        let proof = key.proof("POST", "https://h/p", None, None).expect("proof");
        let header = proof.split('.').next().unwrap_or_default();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"], *key.public_jwk());
        let members: Vec<&String> = header["jwk"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(members, ["crv", "kty", "x", "y"]);
        assert_eq!(header.as_object().map(Map::len), Some(3));
    }

    #[test]
    fn pem_keys_of_every_type_sign_accepted_proofs() {
        for (pem, alg, kty) in [
            (EC256, Algorithm::ES256, "EC"),
            (EC384, Algorithm::ES384, "EC"),
            (ED25519, Algorithm::EdDSA, "OKP"),
            (RSA, Algorithm::PS256, "RSA"),
            (RSA, Algorithm::RS256, "RSA"),
            (RSA, Algorithm::PS512, "RSA"),
        ] {
            let key = DpopKey::from_pem(pem, alg).expect("the test key loads");
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.public_jwk()["kty"], kty, "{alg:?}");
            let proof = key
                .proof("POST", "https://orders.example.com/p", Some("tok"), None)
                .expect("a proof");
            let checked = verify_proof(&proof, &ALL).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            assert_eq!(checked.jkt, key.thumbprint(), "{alg:?}");
            // A PEM key has one thumbprint, whatever the algorithm.
            assert_eq!(
                DpopKey::from_pem(pem, alg).expect("loads").thumbprint(),
                key.thumbprint()
            );
        }
    }

    #[test]
    fn the_thumbprint_is_the_rfc_7638_one_of_the_public_key() {
        // The EC test key, computed independently: its public JWK's canonical form hashed.
        let key = DpopKey::from_pem(EC256, Algorithm::ES256).expect("loads");
        let jwk = key.public_jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        );
        use sha2::Digest as _;
        let expected = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()));
        assert_eq!(key.thumbprint(), expected);
    }

    #[test]
    fn unusable_pem_keys_are_refused_with_the_fix() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let err = DpopKey::from_pem(EC256, alg).unwrap_err();
            assert!(matches!(err, KeyError::WrongAlgorithm { .. }), "{err}");
            assert!(err.to_string().contains("DpopKey::generate()"), "{err}");
        }
        for (pem, alg) in [
            (EC256, Algorithm::ES384),        // the wrong curve
            (EC384, Algorithm::ES256),        // the wrong curve
            (EC256, Algorithm::EdDSA),        // the wrong type
            (ED25519, Algorithm::ES256),      // the wrong type
            (RSA, Algorithm::ES256),          // the wrong type
            (EC256_PUBLIC, Algorithm::ES256), // a public key
            (&b"not a pem"[..], Algorithm::RS256),
        ] {
            let err = DpopKey::from_pem(pem, alg).unwrap_err();
            assert!(
                matches!(err, KeyError::Dpop { .. } | KeyError::UnusableJwk(_)),
                "{alg:?}: {err}"
            );
            assert!(!err.to_string().contains("BEGIN"), "{err}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        for key in [
            DpopKey::generate().expect("a key"),
            DpopKey::from_pem(EC256, Algorithm::ES256).expect("loads"),
            DpopKey::from_pem(RSA, Algorithm::PS256).expect("loads"),
        ] {
            let shown = format!("{key:?}");
            assert!(shown.contains(key.thumbprint()), "{shown}");
            for member in ["x", "y", "n"] {
                if let Some(value) = key.public_jwk()[member].as_str() {
                    assert!(!shown.contains(value), "{shown}");
                }
            }
            assert!(!shown.contains("BEGIN"), "{shown}");
            assert!(!shown.contains("key:"), "{shown}");
        }
        // A clone is the same key, shared.
        let key = DpopKey::generate().expect("a key");
        let clone = key.clone();
        assert!(Arc::ptr_eq(&key.inner, &clone.inner));
    }

    #[test]
    fn nonces_are_kept_only_when_well_formed_and_single() {
        let nonce = Nonce::default();
        let mut headers = http::HeaderMap::new();
        assert!(!nonce.learn(&headers));
        headers.insert(
            "dpop-nonce",
            http::HeaderValue::from_static("eyJ7S_zG.eyJH0-Z.HX4w-7v"),
        );
        assert!(nonce.learn(&headers));
        assert_eq!(nonce.get().as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        for bad in ["", "a b", "a\"b", "a\\b"] {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "dpop-nonce",
                http::HeaderValue::from_str(bad).expect("value"),
            );
            assert!(!nonce.learn(&headers), "{bad:?}");
        }
        let mut two = http::HeaderMap::new();
        two.append("dpop-nonce", http::HeaderValue::from_static("a"));
        two.append("dpop-nonce", http::HeaderValue::from_static("b"));
        assert!(!nonce.learn(&two));
        // The last good one stays.
        assert_eq!(nonce.get().as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
    }

    #[test]
    fn a_nonce_request_is_a_refusal_with_a_nonce() {
        let proof = TokenProof::new(DpopKey::generate().expect("a key"));
        let answer = |status: u16, body: &str, nonce: Option<&'static str>| {
            let mut response = http::Response::new(body.as_bytes().to_vec());
            *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
            if let Some(nonce) = nonce {
                response
                    .headers_mut()
                    .insert("dpop-nonce", http::HeaderValue::from_static(nonce));
            }
            response
        };
        assert!(!proof.asks_for_nonce(&answer(400, r#"{"error":"use_dpop_nonce"}"#, None)));
        assert!(!proof.asks_for_nonce(&answer(
            400,
            r#"{"error":"invalid_dpop_proof"}"#,
            Some("n")
        )));
        assert!(!proof.asks_for_nonce(&answer(200, r#"{"error":"use_dpop_nonce"}"#, Some("n"))));
        assert!(proof.asks_for_nonce(&answer(400, r#"{"error":"use_dpop_nonce"}"#, Some("n-2"))));
        assert_eq!(proof.nonce.get().as_deref(), Some("n-2"));
        let header = proof
            .header("https://idp.example.com/token")
            .expect("a header");
        assert!(header.is_sensitive());
        let checked = verify_proof(header.to_str().unwrap_or_default(), &ALL).expect("verifies");
        assert_eq!(checked.nonce.as_deref(), Some("n-2"));
        assert_eq!(checked.htu, "https://idp.example.com/token");
        assert_eq!(checked.ath, None);
    }
}
