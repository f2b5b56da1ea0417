//! [`TestIssuer`]: a signing key, its public JWKS, and tokens made to order.

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::keys::KeySet;

use super::TestingError;

/// An issuer for tests: one signing key, its public JWKS, and tokens made to order.
pub struct TestIssuer {
    issuer: String,
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl TestIssuer {
    /// An issuer with a freshly generated Ed25519 key.
    ///
    /// # Errors
    ///
    /// When the system has no randomness or the crypto backend refuses the key.
    ///
    /// ```
    /// let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert_eq!(issuer.key_set().len(), 1);
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn generate(issuer: impl Into<String>) -> Result<Self, TestingError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TestingError(format!("no randomness: {e}")))?;
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let kid = format!(
            "test-{:02x}{:02x}{:02x}{:02x}",
            seed[0], seed[1], seed[2], seed[3]
        );
        Self::with_key(
            issuer.into(),
            EncodingKey::from_ed_der(&der),
            Algorithm::EdDSA,
            kid,
        )
    }

    /// An issuer signing with a PEM private key.
    ///
    /// # Errors
    ///
    /// When the PEM is not a private key for `alg`.
    ///
    /// ```
    /// use oauth_grpc::{Algorithm, testing::TestIssuer};
    /// assert!(TestIssuer::from_pem("https://i/", b"not pem", Algorithm::RS256, "k").is_err());
    /// ```
    pub fn from_pem(
        issuer: impl Into<String>,
        pem: &[u8],
        alg: Algorithm,
        kid: impl Into<String>,
    ) -> Result<Self, TestingError> {
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| TestingError(format!("not a PEM private key for {alg:?}")))?;
        Self::with_key(issuer.into(), key, alg, kid.into())
    }

    fn with_key(
        issuer: String,
        key: EncodingKey,
        alg: Algorithm,
        kid: String,
    ) -> Result<Self, TestingError> {
        crate::keys::install_backend().map_err(|e| TestingError(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&key, alg)
            .map_err(|_| TestingError("the crypto backend refused the key".into()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            issuer,
            kid,
            alg,
            key,
            jwk,
        })
    }

    /// The issuer URL (`iss`).
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert_eq!(issuer.issuer(), "https://issuer.test/");
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public JWKS document.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert!(issuer.jwks().contains("\"keys\""));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn jwks(&self) -> String {
        serde_json::to_string(&JwkSet {
            keys: vec![self.jwk.clone()],
        })
        .unwrap_or_default()
    }

    /// The public key as a [`KeySet`], for the server's validator.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert_eq!(issuer.key_set().kids().next(), Some(Some(issuer.kid())));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn key_set(&self) -> KeySet {
        KeySet::from_jwks(self.jwks().as_bytes()).unwrap_or_default()
    }

    /// The key id.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert!(issuer.kid().starts_with("test-"));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs exactly `header` and `claims` as given, for the tokens a validator must refuse:
    /// a forged `typ`, a missing `exp`, an `alg` of `none`. The signature uses the header's
    /// `alg` when it names a signing algorithm (which must fit this issuer's key), else the
    /// issuer's own — so `"alg": "none"` still gets a real signature.
    ///
    /// # Errors
    ///
    /// When the header's `alg` does not fit this issuer's key.
    ///
    /// ```
    /// use serde_json::json;
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": issuer.kid()});
    /// let token = issuer.sign_json(&header, &json!({"iss": issuer.issuer(), "sub": "mallory"}))?;
    /// assert_eq!(token.split('.').count(), 3);
    /// assert!(issuer.sign_json(&json!({"alg": "none"}), &json!({})).is_ok());
    /// assert!(issuer.sign_json(&json!({"alg": "RS256"}), &json!({})).is_err());
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn sign_json(&self, header: &Value, claims: &Value) -> Result<String, TestingError> {
        use base64::Engine as _;
        let b64 = |value: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string().as_bytes())
        };
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|name| name.parse::<Algorithm>().ok())
            .unwrap_or(self.alg);
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, alg)
            .map_err(|_| TestingError(format!("this issuer's key cannot sign {alg:?}")))?;
        Ok(format!("{message}.{signature}"))
    }

    /// A valid RFC 9068 access token for `audience`, to adjust before signing.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let token = issuer.token("orders-api").scopes(["orders:read"]).subject("alice").sign()?;
    /// assert_eq!(token.split('.').count(), 3);
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn token(&self, audience: impl Into<String>) -> TokenBuilder<'_> {
        let now = now();
        TokenBuilder {
            issuer: self,
            claims: json!({
                "iss": self.issuer,
                "aud": audience.into(),
                "sub": "conformance-subject",
                "client_id": "conformance-client",
                "iat": now,
                "exp": now + 300,
                "jti": format!("test-{now}-{}", next_id()),
                "scope": "",
            }),
        }
    }
}

fn now() -> i64 {
    i64::try_from(crate::time::unix_now()).unwrap_or(i64::MAX)
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A token being made by [`TestIssuer::token`].
#[derive(Debug)]
pub struct TokenBuilder<'a> {
    issuer: &'a TestIssuer,
    claims: Value,
}

impl TokenBuilder<'_> {
    /// Grants these scopes (the `scope` claim).
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.claims["scope"] = json!(crate::scope::join(scopes.iter().map(String::as_str)));
        self
    }

    /// Sets `sub`.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.claims["sub"] = json!(subject.into());
        self
    }

    /// Makes the token expired an hour ago.
    #[must_use]
    pub fn expired(mut self) -> Self {
        let now = now();
        self.claims["iat"] = json!(now - 7200);
        self.claims["exp"] = json!(now - 3600);
        self
    }

    /// Sets any claim.
    #[must_use]
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims[name] = value;
        self
    }

    /// Signs the token (`typ: at+jwt`).
    ///
    /// # Errors
    ///
    /// When the backend cannot sign.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert!(issuer.token("api").sign()?.starts_with("ey"));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn sign(self) -> Result<String, TestingError> {
        let mut header = jsonwebtoken::Header::new(self.issuer.alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.issuer.kid.clone());
        jsonwebtoken::encode(&header, &self.claims, &self.issuer.key)
            .map_err(|_| TestingError("cannot sign the token".into()))
    }
}
