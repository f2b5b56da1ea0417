//! Signature checks on keys parsed once, when the key set is built — never per token.
//!
//! With the `aws-lc` backend a key holds one AWS-LC `ParsedPublicKey` (or, for a secret, one
//! HMAC key with its pads already hashed) per algorithm it may verify, so a check does the
//! signature's own work and nothing else: no DER parse, no copy of the key, no allocation.
//! With `rust-crypto` alone the check goes through `jsonwebtoken::crypto::verify` on the
//! key as parsed by jsonwebtoken.

use jsonwebtoken::{Algorithm, DecodingKey};

/// A key prepared for the algorithms it may verify.
pub(crate) struct Prepared {
    #[cfg(feature = "aws-lc")]
    by_alg: Vec<(Algorithm, aws::One)>,
    #[cfg(not(feature = "aws-lc"))]
    algorithms: Vec<Algorithm>,
}

/// Why [`Prepared::verify`] gave no answer about the signature itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The key is not prepared for this algorithm (its type or its declared `alg` excludes
    /// it): no key of another algorithm can be asked instead.
    Algorithm,
    /// The signature segment is not base64url (only the jsonwebtoken path reports this; the
    /// validator decodes the segment itself before asking a key).
    #[cfg(not(feature = "aws-lc"))]
    Encoding,
}

impl Prepared {
    /// Prepares `key` for each of `algorithms`.
    ///
    /// # Errors
    ///
    /// The key material does not form a key of its type (a message without key material).
    pub(crate) fn new(key: &DecodingKey, algorithms: &[Algorithm]) -> Result<Self, &'static str> {
        #[cfg(feature = "aws-lc")]
        {
            let by_alg = algorithms
                .iter()
                .map(|alg| Ok((*alg, aws::One::new(key, *alg)?)))
                .collect::<Result<_, &'static str>>()?;
            Ok(Self { by_alg })
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            let _ = key;
            Ok(Self {
                algorithms: algorithms.to_vec(),
            })
        }
    }

    /// Whether `signature` (decoded) is `key`'s signature of `message` under `alg`.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn verify(
        &self,
        _key: &DecodingKey,
        alg: Algorithm,
        message: &[u8],
        signature: &Signature<'_>,
    ) -> Result<bool, Unusable> {
        let (_, one) = self
            .by_alg
            .iter()
            .find(|(prepared, _)| *prepared == alg)
            .ok_or(Unusable::Algorithm)?;
        Ok(match signature.bytes() {
            Some(bytes) => one.verify(message, bytes),
            // Longer than any signature of a supported algorithm: not this key's.
            None => false,
        })
    }

    /// Whether `signature` (its base64url segment) is `key`'s signature of `message` under
    /// `alg`.
    #[cfg(not(feature = "aws-lc"))]
    pub(crate) fn verify(
        &self,
        key: &DecodingKey,
        alg: Algorithm,
        message: &[u8],
        signature: &Signature<'_>,
    ) -> Result<bool, Unusable> {
        use jsonwebtoken::errors::ErrorKind;
        if !self.algorithms.contains(&alg) {
            return Err(Unusable::Algorithm);
        }
        match jsonwebtoken::crypto::verify(signature.segment, message, key, alg) {
            Ok(verified) => Ok(verified),
            Err(error) => match error.kind() {
                ErrorKind::Base64(_) => Err(Unusable::Encoding),
                ErrorKind::InvalidAlgorithm => Err(Unusable::Algorithm),
                // This key cannot check it (InvalidKeyFormat and the like): another key may.
                _ => Ok(false),
            },
        }
    }
}

/// The longest signature of a supported algorithm: RSA with an 8,192-bit modulus.
#[cfg(feature = "aws-lc")]
const MAX_SIGNATURE: usize = 1024;

/// A JWS signature segment, decoded once for every key that is asked about it.
pub(crate) struct Signature<'t> {
    /// The segment, for jsonwebtoken to decode per key.
    #[cfg(not(feature = "aws-lc"))]
    segment: &'t str,
    #[cfg(feature = "aws-lc")]
    lifetime: std::marker::PhantomData<&'t str>,
    #[cfg(feature = "aws-lc")]
    decoded: [u8; MAX_SIGNATURE],
    /// The decoded length; `None` when longer than [`MAX_SIGNATURE`].
    #[cfg(feature = "aws-lc")]
    len: Option<usize>,
}

impl<'t> Signature<'t> {
    /// Decodes `segment` (base64url without padding, RFC 7515 §2) on the stack.
    ///
    /// # Errors
    ///
    /// The segment is not base64url.
    pub(crate) fn decode(segment: &'t str) -> Result<Self, ()> {
        #[cfg(feature = "aws-lc")]
        {
            use base64::Engine as _;
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let mut decoded = [0; MAX_SIGNATURE];
            let len = match URL_SAFE_NO_PAD.decode_slice(segment, &mut decoded) {
                Ok(len) => Some(len),
                Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
                    // Still refuse what is not base64url at all, as the short path does.
                    URL_SAFE_NO_PAD.decode(segment).map_err(drop)?;
                    None
                }
                Err(base64::DecodeSliceError::DecodeError(_)) => return Err(()),
            };
            Ok(Self {
                lifetime: std::marker::PhantomData,
                decoded,
                len,
            })
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            Ok(Self { segment })
        }
    }

    #[cfg(feature = "aws-lc")]
    fn bytes(&self) -> Option<&[u8]> {
        self.len.map(|len| &self.decoded[..len])
    }
}

#[cfg(feature = "aws-lc")]
mod aws {
    use aws_lc_rs::hmac;
    use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
    use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

    /// One key for one algorithm.
    pub(super) enum One {
        Public(ParsedPublicKey),
        /// Boxed: AWS-LC's HMAC context is over a kilobyte.
        Hmac(Box<hmac::Key>),
    }

    impl One {
        pub(super) fn new(key: &DecodingKey, alg: Algorithm) -> Result<Self, &'static str> {
            const INVALID: &str = "its key parameters are invalid";
            if let Some(hmac_alg) = hmac_algorithm(alg) {
                let secret = match key.kind() {
                    DecodingKeyKind::SecretOrDer(secret) => secret,
                    DecodingKeyKind::RsaModulusExponent { .. } => return Err(INVALID),
                };
                return Ok(Self::Hmac(Box::new(hmac::Key::new(hmac_alg, secret))));
            }
            let parsed = match (rsa_parameters(alg), key.kind()) {
                (Some(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                    RsaPublicKeyComponents { n, e }.to_parsed_public_key(params)
                }
                (Some(params), DecodingKeyKind::SecretOrDer(der)) => {
                    ParsedPublicKey::new(params, der)
                }
                (None, DecodingKeyKind::SecretOrDer(bytes)) => {
                    let algorithm: &'static dyn signature::VerificationAlgorithm = match alg {
                        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                        Algorithm::EdDSA => &signature::ED25519,
                        _ => return Err(INVALID),
                    };
                    ParsedPublicKey::new(algorithm, bytes)
                }
                (None, DecodingKeyKind::RsaModulusExponent { .. }) => return Err(INVALID),
            };
            parsed.map(Self::Public).map_err(|_| INVALID)
        }

        pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
            match self {
                Self::Public(key) => key.verify_sig(message, signature).is_ok(),
                Self::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            }
        }
    }

    fn hmac_algorithm(alg: Algorithm) -> Option<hmac::Algorithm> {
        Some(match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            _ => return None,
        })
    }

    /// The same parameters as jsonwebtoken's: 2,048 to 8,192-bit moduli.
    fn rsa_parameters(alg: Algorithm) -> Option<&'static RsaParameters> {
        Some(match alg {
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"oauth-grpc-self-test-key-32bytes";
    /// HS256 of "oauth-grpc" under `SECRET`.
    const SIGNATURE: &str = "Hio_b2uy46KkDUpmuySXXUoJsGWZvfCVvmUxfh12Y3M";

    fn hmac() -> (DecodingKey, Prepared) {
        let key = DecodingKey::from_secret(SECRET);
        let prepared = Prepared::new(&key, &[Algorithm::HS256]).map_err(drop);
        let Ok(prepared) = prepared else {
            panic!("an HMAC secret is a key");
        };
        (key, prepared)
    }

    #[test]
    fn a_prepared_key_verifies_its_signature_and_no_other() {
        let (key, prepared) = hmac();
        let verify = |message: &[u8], signature: &str| {
            let signature = Signature::decode(signature).map_err(drop)?;
            prepared
                .verify(&key, Algorithm::HS256, message, &signature)
                .map_err(drop)
        };
        assert_eq!(verify(b"oauth-grpc", SIGNATURE), Ok(true));
        assert_eq!(verify(b"oauth-grpd", SIGNATURE), Ok(false));
        // Longer than any signature: not this key's, and no panic.
        assert_eq!(verify(b"oauth-grpc", &"A".repeat(2_000)), Ok(false));
        assert!(Signature::decode("not base64url!").is_err());
    }

    #[test]
    fn a_key_answers_only_for_its_algorithms() {
        let (key, prepared) = hmac();
        let signature = Signature::decode(SIGNATURE).map_err(drop);
        let Ok(signature) = signature else {
            panic!("base64url");
        };
        assert_eq!(
            prepared.verify(&key, Algorithm::HS512, b"oauth-grpc", &signature),
            Err(Unusable::Algorithm)
        );
    }

    #[cfg(feature = "aws-lc")]
    #[test]
    fn key_material_that_is_no_key_is_refused_when_prepared() {
        // An uncompressed P-256 point that is not on the curve.
        let mut point = vec![4u8];
        point.extend([1u8; 64]);
        let key = DecodingKey::from_ec_der(&point);
        assert!(Prepared::new(&key, &[Algorithm::ES256]).is_err());
        // Bytes that are no Ed25519 key (31, not 32).
        let key = DecodingKey::from_ed_der(&[9; 31]);
        assert!(Prepared::new(&key, &[Algorithm::EdDSA]).is_err());
    }
}
