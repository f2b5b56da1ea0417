//! The JWS side of a check (RFC 7515, RFC 8725): the compact shape, the JOSE header, the key
//! and the signature. The claims are `claims.rs`'s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::TokenError;
use crate::keys::{Algorithm, KeySet};
use crate::principal::Principal;

use super::{TokenTypes, Validator};

/// The JOSE header fields this crate reads. Unknown fields are ignored, except that `crit`
/// rejects; `jku`, `x5u`, `jwk` and `x5c` are deliberately not read.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    /// Present at all, even as `null`: RFC 7515 allows only an array of understood names.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(deserializer).map(|_| true)
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        // `none` and everything else.
        _ => return None,
    })
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

impl Validator {
    /// Signature and claims against `keys`.
    pub(super) fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: u64,
    ) -> Result<Principal, TokenError> {
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return Err(TokenError::Malformed);
        };
        match segments.count() {
            0 => {}
            2 => return Err(TokenError::Encrypted),
            _ => return Err(TokenError::Malformed),
        }
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(TokenError::Malformed);
        }

        let header_json = decode_segment(header_b64)?;
        // RFC 7515 §4: a JSON object. serde would also read a struct from an array.
        if header_json.trim_ascii_start().first() != Some(&b'{') {
            return Err(TokenError::Malformed);
        }
        let header: Header =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        let alg = algorithm(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        if let Some(allowed) = &self.inner.algorithms
            && !allowed.contains(&alg)
        {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if header.crit {
            // We implement no JWS extension, so any `crit` entry is one we do not understand
            // (RFC 7515 §4.1.11); an empty or malformed `crit` is invalid as well.
            return Err(TokenError::UnsupportedCritical);
        }
        if header.cty.as_deref().is_some_and(|cty| {
            cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/jwt")
        }) {
            return Err(TokenError::Nested);
        }
        self.check_type(header.typ.as_deref())?;

        let key = keys.select(header.kid.as_deref(), alg)?;
        let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
        match jsonwebtoken::crypto::verify(
            signature_b64,
            signed.as_bytes(),
            key.decoding_key(),
            alg,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::BadSignature),
            Err(error) => {
                return Err(match error.kind() {
                    jsonwebtoken::errors::ErrorKind::Base64(_) => TokenError::Malformed,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        TokenError::AlgorithmMismatch
                    }
                    _ => TokenError::BadSignature,
                });
            }
        }

        let claims = super::json::object(&decode_segment(payload_b64)?)
            .map_err(|_| TokenError::Malformed)?;
        self.check_claims(claims, now)
    }

    fn check_type(&self, typ: Option<&str>) -> Result<(), TokenError> {
        let access_token = |t: &str| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        };
        let plain =
            |t: &str| t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt");
        let ok = match (self.inner.token_types, typ) {
            (_, Some(t)) if access_token(t) => true,
            (TokenTypes::AllowPlainJwt, None) => true,
            (TokenTypes::AllowPlainJwt, Some(t)) => plain(t),
            (TokenTypes::Strict, _) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::WrongType)
        }
    }
}
