//! The JWS side of a check (RFC 7515, RFC 8725): the compact shape, the JOSE header, the key
//! and the signature. The claims are `claims.rs`'s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde_json::{Map, Value};

use crate::error::TokenError;
use crate::keys::{Algorithm, KeySet};
use crate::principal::Principal;

use super::TokenTypes;
use super::issuer::Profile;

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

/// Why [`Profile::check_signature`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Refused for good with these keys.
    Token(TokenError),
    /// The key named by the token's `kid` refused the signature: a refetch may bring the
    /// provider's new key under a reused `kid`; otherwise it is a bad signature.
    KeyRefused,
}

impl Refusal {
    /// The error a caller sees when no refetch changes the answer.
    pub(super) fn error(self) -> TokenError {
        match self {
            Self::Token(error) => error,
            Self::KeyRefused => TokenError::BadSignature,
        }
    }

    /// Whether keys fetched anew might verify the token: its `kid` is unknown, or the key
    /// under its `kid` refused it.
    pub(super) fn wants_new_keys(self) -> bool {
        matches!(self, Self::KeyRefused | Self::Token(TokenError::UnknownKey))
    }
}

impl From<TokenError> for Refusal {
    fn from(error: TokenError) -> Self {
        Self::Token(error)
    }
}

/// A compact JWS whose shape, JOSE header and payload were read — the signature not yet
/// checked, so nothing in it is trusted but what picks the issuer to check it with.
pub(super) struct Jws<'t> {
    header: Header,
    alg: Algorithm,
    /// `header.payload`, the signed bytes.
    signed: &'t str,
    signature: &'t str,
    claims: Map<String, Value>,
}

impl<'t> Jws<'t> {
    /// The shape (three base64url segments; five is a JWE, refused), the JOSE header
    /// (`alg` known and not `none`, no `crit`, no nested JWT) and the payload (a JSON object
    /// with unique member names).
    pub(super) fn parse(token: &'t str) -> Result<Self, TokenError> {
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
        let claims = super::json::object(&decode_segment(payload_b64)?)
            .map_err(|_| TokenError::Malformed)?;
        Ok(Self {
            header,
            alg,
            signed: &token[..header_b64.len() + 1 + payload_b64.len()],
            signature: signature_b64,
            claims,
        })
    }

    /// The `iss` the payload names, unverified: it only picks whose keys to try.
    pub(super) fn issuer(&self) -> Result<&str, TokenError> {
        match self.claims.get("iss") {
            None => Err(TokenError::MissingClaim),
            Some(Value::String(iss)) => Ok(iss),
            Some(_) => Err(TokenError::InvalidClaim),
        }
    }

    /// The claims, for their checks once the signature holds.
    pub(super) fn into_claims(self) -> Map<String, Value> {
        self.claims
    }
}

impl Profile {
    /// Signature and claims against `keys`.
    pub(super) fn verify(
        &self,
        jws: Jws<'_>,
        keys: &KeySet,
        now: u64,
    ) -> Result<Principal, TokenError> {
        self.check_signature(&jws, keys).map_err(Refusal::error)?;
        self.check_claims(jws.claims, now)
    }

    /// `alg` on this issuer's allow-list, `typ` per its profile, and the signature by one of
    /// `keys`; the refusal says whether new keys might change it.
    pub(super) fn check_signature(&self, jws: &Jws<'_>, keys: &KeySet) -> Result<(), Refusal> {
        let alg = jws.alg;
        if let Some(allowed) = &self.algorithms
            && !allowed.contains(&alg)
        {
            return Err(TokenError::UnsupportedAlgorithm.into());
        }
        self.check_type(jws.header.typ.as_deref())?;

        let candidates = keys.candidates(jws.header.kid.as_deref(), alg)?;
        for key in candidates.iter() {
            match jsonwebtoken::crypto::verify(
                jws.signature,
                jws.signed.as_bytes(),
                key.decoding_key(),
                alg,
            ) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => match error.kind() {
                    // Not the key's fault: no other key can do better.
                    jsonwebtoken::errors::ErrorKind::Base64(_) => {
                        return Err(TokenError::Malformed.into());
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        return Err(TokenError::AlgorithmMismatch.into());
                    }
                    _ => {}
                },
            }
        }
        Err(match (jws.header.kid.is_some(), candidates.by_kid()) {
            // The kid is known but its key refuses the signature: either a forgery or a
            // provider that reused the kid for a new key. A refetch tells them apart.
            (true, true) => Refusal::KeyRefused,
            // An unknown kid that no kid-less key verifies either: a key we lack.
            (true, false) => Refusal::Token(TokenError::UnknownKey),
            // Kid-less: every key that fits was tried; a refetch would not help.
            (false, _) => Refusal::Token(TokenError::BadSignature),
        })
    }

    fn check_type(&self, typ: Option<&str>) -> Result<(), TokenError> {
        let access_token = |t: &str| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        };
        let plain =
            |t: &str| t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt");
        let ok = match (self.token_types, typ) {
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
