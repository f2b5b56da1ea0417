//! [`KeySet`]: trusted keys, parsed once, each bound to the algorithms its type allows.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use jsonwebtoken::Algorithm;

use jsonwebtoken::{DecodingKey, DecodingKeyKind};

use crate::error::{KeyError, TokenError};

use super::parse::{
    MAX_RSA_MODULUS, MIN_RSA_MODULUS, json_error, parse_jwk_value, pem_label, rsa_modulus_len,
};
use super::verifier::{Prepared, Signature, Unusable};

/// The kind of a verification key, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA, at least 2048 bits: RS256/384/512, PS256/384/512.
    Rsa,
    /// ECDSA on P-256: ES256.
    EcP256,
    /// ECDSA on P-384: ES384.
    EcP384,
    /// Ed25519: EdDSA.
    Ed25519,
    /// A shared HMAC secret: HS256/384/512.
    Hmac,
}

impl KeyType {
    /// The algorithms a key of this type may verify.
    ///
    /// ```
    /// use oauth_grpc::{Algorithm, KeyType};
    /// assert_eq!(KeyType::EcP256.algorithms(), [Algorithm::ES256]);
    /// assert!(!KeyType::Rsa.algorithms().contains(&Algorithm::HS256));
    /// ```
    pub const fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Self::Rsa => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            Self::EcP256 => &[Algorithm::ES256],
            Self::EcP384 => &[Algorithm::ES384],
            Self::Ed25519 => &[Algorithm::EdDSA],
            Self::Hmac => &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        }
    }

    fn of(alg: Algorithm) -> Option<Self> {
        Some(match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Self::Rsa,
            Algorithm::ES256 => Self::EcP256,
            Algorithm::ES384 => Self::EcP384,
            Algorithm::EdDSA => Self::Ed25519,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Self::Hmac,
            _ => return None,
        })
    }
}

/// One trusted key, parsed and bound to its algorithms.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(super) kid: Option<String>,
    pub(super) key_type: KeyType,
    /// The one algorithm the key declares (`alg` of a JWK, the algorithm of a PEM key).
    pub(super) alg: Option<Algorithm>,
    pub(super) key: DecodingKey,
    /// The key parsed for each algorithm it may verify, once.
    prepared: Arc<Prepared>,
}

impl VerifyingKey {
    /// A key of `key_type`, declaring `alg` or not, prepared for every algorithm it may
    /// verify.
    ///
    /// # Errors
    ///
    /// The key material does not form a key of its type (a message without key material).
    pub(super) fn new(
        kid: Option<String>,
        key_type: KeyType,
        alg: Option<Algorithm>,
        key: DecodingKey,
    ) -> Result<Self, &'static str> {
        let algorithms = match &alg {
            Some(alg) => std::slice::from_ref(alg),
            None => key_type.algorithms(),
        };
        let prepared = Arc::new(Prepared::new(&key, algorithms)?);
        Ok(Self {
            kid,
            key_type,
            alg,
            key,
            prepared,
        })
    }

    /// The key id (`kid`), if the key has one.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet};
    /// let keys = KeySet::from_hmac_secret(Some("k1"), &[7; 32], Algorithm::HS256)?;
    /// assert_eq!(keys.iter().next().unwrap().kid(), Some("k1"));
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's type.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, KeyType};
    /// let keys = KeySet::from_hmac_secret(None, &[7; 32], Algorithm::HS256)?;
    /// assert_eq!(keys.iter().next().unwrap().key_type(), KeyType::Hmac);
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The single algorithm the key is bound to, when its source declares one.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet};
    /// let keys = KeySet::from_hmac_secret(None, &[7; 48], Algorithm::HS384)?;
    /// assert_eq!(keys.iter().next().unwrap().algorithm(), Some(Algorithm::HS384));
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Whether the key may verify a token signed with `alg`: the algorithm fits the key type
    /// and, if the key declares an algorithm, equals it.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet};
    /// let keys = KeySet::from_hmac_secret(None, &[7; 32], Algorithm::HS256)?;
    /// let key = keys.iter().next().unwrap();
    /// assert!(key.allows(Algorithm::HS256));
    /// assert!(!key.allows(Algorithm::HS512));
    /// assert!(!key.allows(Algorithm::RS256));
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.key_type.algorithms().contains(&alg) && self.alg.is_none_or(|declared| declared == alg)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Whether `signature` is this key's signature of `message` under `alg` (which the key
    /// [`allows`](Self::allows)), on the key parsed when it was loaded.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &Signature<'_>,
    ) -> Result<bool, Unusable> {
        self.prepared.verify(&self.key, alg, message, signature)
    }
}

impl fmt::Debug for VerifyingKey {
    /// Shows what the key is for, never the key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A set of trusted verification keys, parsed once, each bound to the algorithms its type
/// allows.
///
/// Keys come from a JWKS document (bytes or file), a single JWK, a PEM public key with its
/// algorithm, or an HMAC secret. Keys in a JWKS that cannot verify signatures — `use: enc`,
/// an encryption `alg` such as `RSA-OAEP`, a curve this crate does not support — are skipped
/// with a debug log, not fatal.
///
/// ```
/// use oauth_grpc::{Algorithm, KeySet};
///
/// let jwks = br#"{"keys": [
///     {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA",
///      "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
///     {"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "kid": "enc-1", "e": "AQAB", "n": "sXch"}
/// ]}"#;
/// let keys = KeySet::from_jwks(jwks)?;
/// assert_eq!(keys.len(), 1); // the encryption key is skipped
/// assert_eq!(keys.kids().collect::<Vec<_>>(), [Some("ed-1")]);
///
/// let pem = b"-----BEGIN PUBLIC KEY-----
/// MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
/// -----END PUBLIC KEY-----";
/// let same = KeySet::from_pem(Some("ed-1"), pem, Algorithm::EdDSA)?;
/// assert_eq!(same.len(), 1);
/// # Ok::<(), oauth_grpc::KeyError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// An empty set.
    ///
    /// ```
    /// assert!(oauth_grpc::KeySet::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a JWKS document (`{"keys": [...]}`), skipping keys that cannot verify
    /// signatures.
    ///
    /// # Errors
    ///
    /// [`KeyError::Json`] when the document is not a JWKS; [`KeyError::NoUsableKey`] when no
    /// key is left after skipping.
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// assert!(KeySet::from_jwks(b"not json").is_err());
    /// // The members of a JWKS, but as an array: not a JWKS.
    /// assert!(KeySet::from_jwks(br#"[[{"kty":"OKP"}]]"#).is_err());
    /// ```
    pub fn from_jwks(document: &[u8]) -> Result<Self, KeyError> {
        // A JSON object (RFC 7517 §5), not anything serde would read as a struct (an array).
        let mut document: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(document).map_err(json_error)?;
        let Some(serde_json::Value::Array(entries)) = document.remove("keys") else {
            return Err(KeyError::Json(
                "no `keys` array in a JSON object".to_owned(),
            ));
        };
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = 0;
        for entry in entries {
            match parse_jwk_value(entry) {
                Ok(key) => keys.push(key),
                Err(reason) => {
                    skipped += 1;
                    tracing::debug!(target: "oauth_grpc::keys", %reason, "skipping a JWKS entry");
                }
            }
        }
        if keys.is_empty() {
            return Err(KeyError::NoUsableKey { skipped });
        }
        Ok(Self { keys })
    }

    /// Reads and parses a JWKS file.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] when the file cannot be read, else as [`KeySet::from_jwks`].
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// assert!(KeySet::from_jwks_file("/no/such/jwks.json").is_err());
    /// ```
    pub fn from_jwks_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_jwks(&bytes)
    }

    /// Parses one JWK.
    ///
    /// # Errors
    ///
    /// [`KeyError::UnusableJwk`] when the key cannot verify signatures.
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// let jwk = br#"{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    /// assert_eq!(KeySet::from_jwk(jwk)?.len(), 1);
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    pub fn from_jwk(document: &[u8]) -> Result<Self, KeyError> {
        let value: serde_json::Value = serde_json::from_slice(document).map_err(json_error)?;
        let key = parse_jwk_value(value).map_err(KeyError::UnusableJwk)?;
        Ok(Self { keys: vec![key] })
    }

    /// One PEM public key (`-----BEGIN PUBLIC KEY-----`), bound to exactly `alg`.
    ///
    /// # Errors
    ///
    /// [`KeyError::Pem`] when the PEM is not a public key of the type `alg` needs;
    /// [`KeyError::WrongAlgorithm`] for HMAC algorithms (use [`KeySet::from_hmac_secret`]).
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet};
    /// assert!(KeySet::from_pem(None, b"garbage", Algorithm::RS256).is_err());
    /// ```
    pub fn from_pem(kid: Option<&str>, pem: &[u8], alg: Algorithm) -> Result<Self, KeyError> {
        let key_type = KeyType::of(alg).ok_or(KeyError::WrongAlgorithm {
            alg,
            hint: "use RS*, PS*, ES256, ES384 or EdDSA",
        })?;
        let (key, expected) = match key_type {
            KeyType::Rsa => (DecodingKey::from_rsa_pem(pem), "RSA"),
            KeyType::EcP256 => (DecodingKey::from_ec_pem(pem), "EC P-256"),
            KeyType::EcP384 => (DecodingKey::from_ec_pem(pem), "EC P-384"),
            KeyType::Ed25519 => (DecodingKey::from_ed_pem(pem), "Ed25519"),
            KeyType::Hmac => {
                return Err(KeyError::WrongAlgorithm {
                    alg,
                    hint: "HMAC keys are secrets, not PEM keys; use `KeySet::from_hmac_secret`",
                });
            }
        };
        let key = key.map_err(|_| KeyError::Pem { expected })?;
        // jsonwebtoken also takes private keys and any key size or curve here; we take only
        // public keys of the stated type, 2048-bit RSA or larger, on the curve of `alg`.
        let label = pem_label(pem);
        if !matches!(label.as_deref(), Some("PUBLIC KEY" | "RSA PUBLIC KEY")) {
            return Err(KeyError::Pem { expected });
        }
        let fits = match (key_type, key.kind()) {
            (KeyType::Rsa, DecodingKeyKind::SecretOrDer(der)) => rsa_modulus_len(der)
                .is_some_and(|len| (MIN_RSA_MODULUS..=MAX_RSA_MODULUS).contains(&len)),
            (KeyType::EcP256, DecodingKeyKind::SecretOrDer(point)) => point.len() == 65,
            (KeyType::EcP384, DecodingKeyKind::SecretOrDer(point)) => point.len() == 97,
            (KeyType::Ed25519, DecodingKeyKind::SecretOrDer(key)) => key.len() == 32,
            _ => false,
        };
        if !fits {
            return Err(KeyError::Pem { expected });
        }
        let key = VerifyingKey::new(kid.map(str::to_owned), key_type, Some(alg), key)
            .map_err(|_| KeyError::Pem { expected })?;
        Ok(Self { keys: vec![key] })
    }

    /// A shared HMAC secret bound to exactly `alg` (HS256, HS384 or HS512).
    ///
    /// A validator with an HMAC secret accepts no other key: mixing symmetric and asymmetric
    /// keys invites algorithm confusion.
    ///
    /// # Errors
    ///
    /// [`KeyError::ShortSecret`] when the secret is shorter than the hash output (32, 48 or 64
    /// bytes); [`KeyError::WrongAlgorithm`] for a non-HMAC algorithm.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet};
    /// assert!(KeySet::from_hmac_secret(None, b"short", Algorithm::HS256).is_err());
    /// assert!(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256).is_ok());
    /// ```
    pub fn from_hmac_secret(
        kid: Option<&str>,
        secret: &[u8],
        alg: Algorithm,
    ) -> Result<Self, KeyError> {
        let min = match alg {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => {
                return Err(KeyError::WrongAlgorithm {
                    alg,
                    hint: "an HMAC secret takes HS256, HS384 or HS512",
                });
            }
        };
        if secret.len() < min {
            return Err(KeyError::ShortSecret {
                alg,
                min,
                len: secret.len(),
            });
        }
        let key = VerifyingKey::new(
            kid.map(str::to_owned),
            KeyType::Hmac,
            Some(alg),
            DecodingKey::from_secret(secret),
        )
        .map_err(|_| KeyError::WrongAlgorithm {
            alg,
            hint: "the crypto backend cannot key an HMAC with this secret",
        })?;
        Ok(Self { keys: vec![key] })
    }

    /// Adds every key of `other`.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet};
    /// let a = KeySet::from_hmac_secret(Some("a"), &[1; 32], Algorithm::HS256)?;
    /// let b = KeySet::from_hmac_secret(Some("b"), &[2; 32], Algorithm::HS256)?;
    /// assert_eq!(a.merge(b).len(), 2);
    /// # Ok::<(), oauth_grpc::KeyError>(())
    /// ```
    #[must_use]
    pub fn merge(mut self, other: KeySet) -> Self {
        self.keys.extend(other.keys);
        self
    }

    /// The keys.
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// assert_eq!(KeySet::new().iter().count(), 0);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> + '_ {
        self.keys.iter()
    }

    /// The key ids, in order.
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// assert_eq!(KeySet::new().kids().count(), 0);
    /// ```
    pub fn kids(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        self.keys.iter().map(VerifyingKey::kid)
    }

    /// How many keys the set holds.
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// assert_eq!(KeySet::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    ///
    /// ```
    /// # use oauth_grpc::KeySet;
    /// assert!(KeySet::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn has_hmac(&self) -> bool {
        self.keys.iter().any(|k| k.key_type == KeyType::Hmac)
    }

    /// The keys to try for a token, by the `kid` and `alg` of its header. The `kid` is only
    /// compared, never used to fetch anything.
    ///
    /// - A `kid` some key has: those keys that fit `alg` (normally one); none fitting is an
    ///   [`AlgorithmMismatch`](TokenError::AlgorithmMismatch).
    /// - A `kid` no key has: the keys *without* a `kid` that fit `alg` (keys loaded from PEM
    ///   often have none).
    /// - No `kid`: every key that fits `alg` — during a rotation overlap the provider
    ///   publishes two or more keys of one type, and a kid-less token may be signed by any.
    ///
    /// At most [`MAX_CANDIDATES`] keys are tried, in the order they were loaded, so a token
    /// costs a bounded number of signature checks. None at all is
    /// [`UnknownKey`](TokenError::UnknownKey).
    pub(crate) fn candidates(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Candidates<'_>, TokenError> {
        let by_kid = kid.is_some_and(|kid| self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
        let fits = |key: &&VerifyingKey| {
            key.allows(alg)
                && match kid {
                    Some(kid) if by_kid => key.kid.as_deref() == Some(kid),
                    Some(_) => key.kid.is_none(),
                    None => true,
                }
        };
        let mut found = Candidates {
            keys: [None; MAX_CANDIDATES],
            by_kid,
        };
        for (slot, key) in found.keys.iter_mut().zip(self.keys.iter().filter(fits)) {
            *slot = Some(key);
        }
        match (found.keys[0], found.by_kid) {
            (Some(_), _) => Ok(found),
            (None, true) => Err(TokenError::AlgorithmMismatch),
            (None, false) => Err(TokenError::UnknownKey),
        }
    }
}

/// The most keys one token is checked against (see [`KeySet::candidates`]).
pub(crate) const MAX_CANDIDATES: usize = 4;

/// The keys a token may be signed with, at most [`MAX_CANDIDATES`], without allocating.
#[derive(Debug)]
pub(crate) struct Candidates<'a> {
    keys: [Option<&'a VerifyingKey>; MAX_CANDIDATES],
    by_kid: bool,
}

impl<'a> Candidates<'a> {
    /// The keys, in the order they were loaded.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a VerifyingKey> + '_ {
        self.keys.iter().map_while(|key| *key)
    }

    /// Whether they were found by the token's `kid` (rather than as kid-less keys).
    pub(crate) fn by_kid(&self) -> bool {
        self.by_kid
    }
}
