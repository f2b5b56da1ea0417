//! The JWS side of a check (RFC 7515, RFC 8725): the compact shape, the JOSE header, the key
//! and the signature. The claims are `claims.rs`'s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use std::borrow::Cow;

use crate::error::TokenError;
use crate::keys::{Algorithm, KeySet, Signature, Unusable};
use crate::principal::Principal;

use super::TokenTypes;
use super::issuer::Profile;
use super::payload::{Claim, Claims as _, Payload};

/// The JOSE header fields this crate reads, borrowed from the decoded header. Unknown fields
/// are ignored, except that `crit` rejects; `jku`, `x5u`, `jwk` and `x5c` are deliberately
/// not read.
#[derive(serde::Deserialize)]
struct Header<'h> {
    #[serde(borrow)]
    alg: Cow<'h, str>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    kid: Option<Cow<'h, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    typ: Option<Cow<'h, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed")]
    cty: Option<Cow<'h, str>>,
    /// Present at all, even as `null`: RFC 7515 allows only an array of understood names.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// The `typ` of a JOSE header, as the token-type profiles tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typ {
    Absent,
    /// `at+jwt` (RFC 9068 §2.1), case-insensitively, with or without `application/`.
    AccessToken,
    /// `JWT`, likewise.
    Jwt,
    Other,
}

impl Typ {
    fn of(typ: Option<&str>) -> Self {
        let is = |t: &str, name: &str| {
            let (t, name) = (t.as_bytes(), name.as_bytes());
            t.eq_ignore_ascii_case(name)
                || t.len() == name.len() + 12
                    && t[..12].eq_ignore_ascii_case(b"application/")
                    && t[12..].eq_ignore_ascii_case(name)
        };
        match typ {
            None => Self::Absent,
            Some(t) if is(t, "at+jwt") => Self::AccessToken,
            Some(t) if is(t, "JWT") => Self::Jwt,
            Some(_) => Self::Other,
        }
    }
}

/// A string member, borrowed unless it has escapes (serde's own `Option<Cow<str>>` always
/// copies); `null` is absent, as it was for `Option<String>`.
fn borrowed<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Nullable;
    impl<'de> serde::de::Visitor<'de> for Nullable {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or null")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            serde::de::DeserializeSeed::deserialize(super::payload::Name, deserializer).map(Some)
        }
    }
    deserializer.deserialize_option(Nullable)
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

/// A compact JWS whose shape and JOSE header were read and whose payload was decoded — the
/// signature not yet checked, so nothing in it is trusted but what picks the issuer to check
/// it with.
pub(super) struct Jws<'t> {
    alg: Algorithm,
    kid: Option<String>,
    typ: Typ,
    /// `header.payload`, the signed bytes.
    signed: &'t str,
    signature: &'t str,
    /// The payload's JSON, decoded from base64url and checked as UTF-8 once (the JSON parse
    /// then does not check each string again).
    payload: String,
}

impl<'t> Jws<'t> {
    /// The shape (three base64url segments; five is a JWE, refused) and the JOSE header
    /// (`alg` known and not `none`, no `crit`, no nested JWT); the payload decoded.
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
        let header: Header<'_> =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        let alg = algorithm(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        if header.crit {
            // We implement no JWS extension, so any `crit` entry is one we do not understand
            // (RFC 7515 §4.1.11); an empty or malformed `crit` is invalid as well.
            return Err(TokenError::UnsupportedCritical);
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|cty| Typ::of(Some(cty)) == Typ::Jwt)
        {
            return Err(TokenError::Nested);
        }
        Ok(Self {
            alg,
            kid: header.kid.map(Cow::into_owned),
            typ: Typ::of(header.typ.as_deref()),
            signed: &token[..header_b64.len() + 1 + payload_b64.len()],
            signature: signature_b64,
            payload: String::from_utf8(decode_segment(payload_b64)?)
                .map_err(|_| TokenError::Malformed)?,
        })
    }

    /// The payload: a JSON object with unique member names at every depth; the arrays and
    /// objects of the claims `reads_into` names are built, the others walked.
    pub(super) fn payload(
        &self,
        reads_into: &dyn Fn(&str) -> bool,
    ) -> Result<Payload<'_>, TokenError> {
        Payload::parse(&self.payload, reads_into).map_err(|_| TokenError::Malformed)
    }

    /// The payload's JSON text, which the principal keeps as its raw claims.
    pub(super) fn payload_text(&self) -> Box<str> {
        Box::from(self.payload.as_str())
    }
}

/// The `iss` a payload names, unverified: it only picks whose keys to try.
pub(super) fn issuer<'p>(payload: &'p Payload<'_>) -> Result<&'p str, TokenError> {
    match payload.claim("iss") {
        None => Err(TokenError::MissingClaim),
        Some(Claim::Str(iss)) => Ok(iss),
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

impl Profile {
    /// Signature and claims against `keys`.
    pub(super) fn verify(
        &self,
        jws: &Jws<'_>,
        payload: &Payload<'_>,
        keys: &KeySet,
        now: u64,
    ) -> Result<Principal, TokenError> {
        self.check_signature(jws, keys).map_err(Refusal::error)?;
        self.check_claims(payload, jws.payload_text(), now)
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
        self.check_type(jws.typ)?;

        let candidates = keys.candidates(jws.kid.as_deref(), alg)?;
        // Decoded once, on the stack, for every candidate key.
        let signature = Signature::decode(jws.signature).map_err(|()| TokenError::Malformed)?;
        for key in candidates.iter() {
            match key.verify(alg, jws.signed.as_bytes(), &signature) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // Not the key's fault: no other key can do better.
                Err(Unusable::Algorithm) => return Err(TokenError::AlgorithmMismatch.into()),
                #[cfg(not(feature = "aws-lc"))]
                Err(Unusable::Encoding) => return Err(TokenError::Malformed.into()),
            }
        }
        Err(match (jws.kid.is_some(), candidates.by_kid()) {
            // The kid is known but its key refuses the signature: either a forgery or a
            // provider that reused the kid for a new key. A refetch tells them apart.
            (true, true) => Refusal::KeyRefused,
            // An unknown kid that no kid-less key verifies either: a key we lack.
            (true, false) => Refusal::Token(TokenError::UnknownKey),
            // Kid-less: every key that fits was tried; a refetch would not help.
            (false, _) => Refusal::Token(TokenError::BadSignature),
        })
    }

    fn check_type(&self, typ: Typ) -> Result<(), TokenError> {
        let ok = match (self.token_types, typ) {
            (_, Typ::AccessToken) => true,
            (TokenTypes::AllowPlainJwt, Typ::Absent | Typ::Jwt) => true,
            (TokenTypes::AllowPlainJwt, Typ::Other) | (TokenTypes::Strict, _) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::WrongType)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://issuer.example"}"#);
        format!("{}.{payload}.AAAA", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn null_header_members_are_absent() {
        let token = token(r#"{"alg":"RS256","kid":null,"typ":null,"cty":null}"#);
        let jws = Jws::parse(&token).map_err(drop);
        let Ok(jws) = jws else {
            panic!("parses");
        };
        assert_eq!(jws.kid, None);
        assert_eq!(jws.typ, Typ::Absent);
    }

    #[test]
    fn escaped_header_members_are_read() {
        let token = token(r#"{"alg":"RS256","kid":"a\/b","typ":"\u0061t+jwt"}"#);
        let jws = Jws::parse(&token).map_err(drop);
        let Ok(jws) = jws else {
            panic!("parses");
        };
        assert_eq!(jws.kid.as_deref(), Some("a/b"));
        assert_eq!(jws.typ, Typ::AccessToken);
    }

    #[test]
    fn the_types_compare_as_before() {
        for (typ, expected) in [
            ("at+jwt", Typ::AccessToken),
            ("AT+JWT", Typ::AccessToken),
            ("application/at+jwt", Typ::AccessToken),
            ("Application/AT+JWT", Typ::AccessToken),
            ("JWT", Typ::Jwt),
            ("jwt", Typ::Jwt),
            ("application/jwt", Typ::Jwt),
            ("applicationXat+jwt", Typ::Other),
            ("application/", Typ::Other),
            ("at+jwt ", Typ::Other),
            ("ápplication/jwt", Typ::Other),
            ("", Typ::Other),
        ] {
            assert_eq!(Typ::of(Some(typ)), expected, "{typ:?}");
        }
        assert_eq!(Typ::of(None), Typ::Absent);
    }

    #[test]
    fn a_non_string_member_is_malformed() {
        for header in [
            r#"{"alg":"RS256","kid":1}"#,
            r#"{"alg":"RS256","typ":[]}"#,
            r#"{"alg":null}"#,
        ] {
            assert_eq!(
                Jws::parse(&token(header)).err(),
                Some(TokenError::Malformed),
                "{header}"
            );
        }
    }
}
