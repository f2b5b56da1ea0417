//! DPoP proofs (RFC 9449) — the parts that do not depend on a call: the RFC 7638 thumbprint
//! of a proof's key, the normalised `htu`, and a proof's own checks (structure, `typ`, `alg`,
//! a public `jwk`, the signature under it, the claims' types). What ties a proof to a call
//! (`htm`, `htu`, `iat`, `ath`, `cnf.jkt`, replay, nonces) is checked by the caller with the
//! values returned here.
//!
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ProofError;
use crate::keys::{Algorithm, jwk_key};

use super::json;

/// What a verified proof says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's `jwk`: what `cnf.jkt` must equal.
    pub(crate) jkt: String,
    pub(crate) jti: String,
    pub(crate) htm: String,
    pub(crate) htu: String,
    pub(crate) iat: u64,
    pub(crate) ath: Option<String>,
    pub(crate) nonce: Option<String>,
}

/// The longest `jti`, `htm`, `htu`, `ath` or `nonce` accepted (RFC 9449 §11.1: refuse
/// unnecessarily large `jti` values).
const MAX_CLAIM_LEN: usize = 2048;

/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: the required members of its
/// `kty`, in lexicographic order, without whitespace. Members must be base64url (or the
/// curve's name), so nothing in the canonical JSON needs escaping.
pub(crate) fn jwk_thumbprint(jwk: &Map<String, Value>) -> Result<String, ProofError> {
    let member = |name: &str| -> Result<&str, ProofError> {
        let value = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or(ProofError::InvalidKey)?;
        let plain = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if plain {
            Ok(value)
        } else {
            Err(ProofError::InvalidKey)
        }
    };
    let canonical = match member("kty")? {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e")?,
            member("n")?
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv")?,
            member("x")?
        ),
        _ => return Err(ProofError::InvalidKey),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// Checks a proof on its own: a compact JWS (three base64url segments, JSON objects without
/// repeated names), `typ: dpop+jwt`, an `alg` of `allowed` (asymmetric only), a public `jwk`
/// that fits the `alg`, the signature under that key, and the claims `jti`, `htm`, `htu`
/// (strings) and `iat` (a NumericDate), with `ath` and `nonce` as strings when present.
pub(crate) fn verify_proof(proof: &str, allowed: &[Algorithm]) -> Result<Proof, ProofError> {
    // The crypto backend is installed (and self-tested) once; without it nothing verifies.
    crate::keys::install_backend().map_err(|_| ProofError::BadSignature)?;
    let mut segments = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(ProofError::Malformed);
    };
    let decode = |segment: &str| {
        URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| ProofError::Malformed)
            .and_then(|bytes| json::object(&bytes).map_err(|_| ProofError::Malformed))
    };
    let header = decode(header_b64)?;
    let claims = decode(payload_b64)?;
    if signature.is_empty() {
        return Err(ProofError::Malformed);
    }
    match header.get("typ").and_then(Value::as_str) {
        // RFC 7515 §4.1.9: `application/` may be left out, and media types ignore case.
        Some(typ)
            if typ.eq_ignore_ascii_case("dpop+jwt")
                || typ.eq_ignore_ascii_case("application/dpop+jwt") => {}
        _ => return Err(ProofError::WrongType),
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(asymmetric)
        .filter(|alg| allowed.contains(alg))
        .ok_or(ProofError::UnsupportedAlgorithm)?;
    if header.contains_key("crit") {
        return Err(ProofError::UnsupportedCritical);
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(ProofError::InvalidKey);
    };
    if PRIVATE_MEMBERS.iter().any(|name| jwk.contains_key(*name)) {
        return Err(ProofError::PrivateKey);
    }
    let jkt = jwk_thumbprint(jwk)?;
    let key = jwk_key(Value::Object(jwk.clone())).map_err(|_| ProofError::InvalidKey)?;
    if !key.allows(alg) {
        return Err(ProofError::AlgorithmMismatch);
    }
    let message = format!("{header_b64}.{payload_b64}");
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), key.decoding_key(), alg) {
        Ok(true) => {}
        _ => return Err(ProofError::BadSignature),
    }
    let string = |name: &str| match claims.get(name) {
        Some(Value::String(value)) if !value.is_empty() && value.len() <= MAX_CLAIM_LEN => {
            Ok(value.clone())
        }
        _ => Err(ProofError::InvalidClaims),
    };
    let optional = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) if value.len() <= MAX_CLAIM_LEN => Ok(Some(value.clone())),
        Some(_) => Err(ProofError::InvalidClaims),
    };
    let iat = super::claims::numeric_date(&claims, "iat")
        .map_err(|_| ProofError::InvalidClaims)?
        .ok_or(ProofError::InvalidClaims)?;
    Ok(Proof {
        jkt,
        jti: string("jti")?,
        htm: string("htm")?,
        htu: string("htu")?,
        iat,
        ath: optional("ath")?,
        nonce: optional("nonce")?,
    })
}

/// The asymmetric JWS algorithms: the only ones a proof may use (never `none`, never HMAC).
pub(crate) const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The asymmetric JWS algorithm of a name (exact spelling, as RFC 7518 registers it).
fn asymmetric(name: &str) -> Option<Algorithm> {
    name.parse::<Algorithm>()
        .ok()
        .filter(|alg| ASYMMETRIC.contains(alg))
}

/// `ath`: base64url SHA-256 of the access token (RFC 9449 §4.2).
pub(crate) fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// An `http`/`https` URI normalised for comparison (RFC 9449 §4.3: RFC 3986 §6.2.2 and
/// §6.2.3): scheme and host in lower case, the default port dropped, percent-encoded
/// unreserved characters decoded and other escapes in upper case, dot segments removed, an
/// empty path as `/`, and no query or fragment. `None` for anything else.
pub(crate) fn normalise_htu(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        // An IPv6 literal's colons are inside brackets.
        Some(i) if !authority[i..].contains(']') => (&authority[..i], &authority[i + 1..]),
        _ => (authority, ""),
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if !port.is_empty() && port != default_port {
        out.push(':');
        out.push_str(port);
    }
    let path = normalise_escapes(path)?;
    out.push_str(&remove_dot_segments(if path.is_empty() {
        "/"
    } else {
        &path
    }));
    Some(out)
}

/// Decodes escapes of unreserved characters and upper-cases the others (RFC 3986 §6.2.2.1-2).
fn normalise_escapes(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    path.is_ascii().then_some(out)
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "." => trailing_slash = i == last,
            ".." => {
                output.pop();
                trailing_slash = i == last;
            }
            _ => {
                output.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::from("/");
    out.push_str(&output.join("/"));
    if trailing_slash && !out.ends_with('/') {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALL: [Algorithm; 9] = ASYMMETRIC;

    /// RFC 9449 §4.1, figure 3: the proof of a resource request (`htm` GET).
    const RFC_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap_or(&Map::new())),
            Ok("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".to_owned())
        );
    }

    #[test]
    fn the_rfc_9449_example_proof_verifies() {
        let proof = verify_proof(RFC_PROOF, &ALL).expect("the RFC's proof verifies");
        assert_eq!(proof.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        assert_eq!(proof.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(proof.htm, "GET");
        assert_eq!(proof.htu, "https://resource.example.org/protectedresource");
        assert_eq!(proof.iat, 1_562_262_618);
        assert_eq!(
            proof.ath.as_deref(),
            Some("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo")
        );
        // The RFC's access token hashes to that `ath`.
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn a_tampered_or_unusable_proof_is_refused() {
        let (head, rest) = RFC_PROOF.split_once('.').unwrap_or_default();
        let (payload, signature) = rest.split_once('.').unwrap_or_default();
        let flipped = {
            let mut s = signature.to_owned();
            let last = if s.ends_with('A') { 'B' } else { 'A' };
            s.pop();
            s.push(last);
            s
        };
        assert_eq!(
            verify_proof(&format!("{head}.{payload}.{flipped}"), &ALL),
            Err(ProofError::BadSignature)
        );
        assert_eq!(verify_proof("a.b", &ALL), Err(ProofError::Malformed));
        assert_eq!(
            verify_proof(&format!("{head}.{payload}."), &ALL),
            Err(ProofError::Malformed)
        );
        // ES256 not allowed by policy.
        assert_eq!(
            verify_proof(RFC_PROOF, &[Algorithm::RS256]),
            Err(ProofError::UnsupportedAlgorithm)
        );
        let reheaded = |header: Value| {
            format!(
                "{}.{payload}.{signature}",
                URL_SAFE_NO_PAD.encode(header.to_string())
            )
        };
        let jwk = json!({
            "kty": "EC",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256"
        });
        assert_eq!(
            verify_proof(
                &reheaded(json!({"typ": "JWT", "alg": "ES256", "jwk": jwk})),
                &ALL
            ),
            Err(ProofError::WrongType)
        );
        for alg in ["none", "HS256", "ES512", ""] {
            assert_eq!(
                verify_proof(
                    &reheaded(json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk})),
                    &ALL
                ),
                Err(ProofError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        let mut private = jwk.clone();
        private["d"] = json!("bm90LWEtcmVhbC1rZXk");
        assert_eq!(
            verify_proof(
                &reheaded(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private})),
                &ALL
            ),
            Err(ProofError::PrivateKey)
        );
        assert_eq!(
            verify_proof(&reheaded(json!({"typ": "dpop+jwt", "alg": "ES256"})), &ALL),
            Err(ProofError::InvalidKey)
        );
        // A symmetric key in `jwk`.
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(
            verify_proof(
                &reheaded(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": oct})),
                &ALL
            ),
            Err(ProofError::PrivateKey)
        );
        // An EC key with an RSA algorithm.
        assert_eq!(
            verify_proof(
                &reheaded(json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk})),
                &ALL
            ),
            Err(ProofError::AlgorithmMismatch)
        );
    }

    #[test]
    fn thumbprint_members_must_be_base64url() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "a\",\"kty\":\"RSA"});
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap_or(&Map::new())),
            Err(ProofError::InvalidKey)
        );
    }

    #[test]
    fn htu_is_normalised_before_comparison() {
        let same = [
            "https://orders.example.com/orders.v1.Orders/CreateOrder",
            "HTTPS://Orders.Example.COM:443/orders.v1.Orders/CreateOrder",
            "https://orders.example.com/orders.v1.Orders/CreateOrder?x=1#f",
            "https://orders.example.com/orders.v1.%4Frders/CreateOrder",
            "https://orders.example.com/a/../orders.v1.Orders/./CreateOrder",
        ];
        for uri in same {
            assert_eq!(
                normalise_htu(uri).as_deref(),
                Some("https://orders.example.com/orders.v1.Orders/CreateOrder"),
                "{uri}"
            );
        }
        assert_eq!(
            normalise_htu("http://127.0.0.1:80").as_deref(),
            Some("http://127.0.0.1/")
        );
        assert_eq!(
            normalise_htu("http://127.0.0.1:8080/x%2fy").as_deref(),
            Some("http://127.0.0.1:8080/x%2Fy")
        );
        assert_eq!(
            normalise_htu("https://[::1]:443/p").as_deref(),
            Some("https://[::1]/p")
        );
        for bad in [
            "ftp://x/",
            "https://",
            "https://user@host/",
            "https://h:x/",
            "no-scheme",
            "https://h/%zz",
        ] {
            assert_eq!(normalise_htu(bad), None, "{bad}");
        }
    }
}
