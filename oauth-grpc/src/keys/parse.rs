//! Parsing key material without echoing it: JWKS entries, PEM labels, RSA modulus lengths,
//! and JSON errors stripped of the text around them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::KeyError;

use super::{KeyType, VerifyingKey};

/// Minimum RSA modulus, in bytes (RFC 7518 §3.3: 2048 bits).
pub(super) const MIN_RSA_MODULUS: usize = 256;
/// The largest RSA modulus the backend verifies with, in bytes: 8,192 bits with AWS-LC,
/// 4,096 with RustCrypto's `rsa`. A larger key is refused at load, not on every token.
pub(super) const MAX_RSA_MODULUS: usize = if cfg!(feature = "aws-lc") { 1024 } else { 512 };

/// A JSON error without the text around it, which may be key material.
pub(super) fn json_error(error: serde_json::Error) -> KeyError {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "invalid JSON",
        Category::Data => "JSON of another shape",
        Category::Eof => "truncated JSON",
    };
    KeyError::Json(format!(
        "{what} at line {} column {}",
        error.line(),
        error.column()
    ))
}

/// The label of the first PEM block, e.g. `PUBLIC KEY`.
pub(super) fn pem_label(pem: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(text[start..start + end].to_owned())
}

/// The significant length in bytes of the modulus of a DER `RSAPublicKey`
/// (`SEQUENCE { INTEGER n, INTEGER e }`).
pub(super) fn rsa_modulus_len(der: &[u8]) -> Option<usize> {
    fn header(der: &[u8], tag: u8) -> Option<(usize, &[u8])> {
        let (&first, rest) = der.split_first()?;
        if first != tag {
            return None;
        }
        let (&len, rest) = rest.split_first()?;
        if len < 0x80 {
            return Some((usize::from(len), rest));
        }
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        Some((len, &rest[count..]))
    }
    let (_, body) = header(der, 0x30)?;
    let (len, body) = header(body, 0x02)?;
    let modulus = body.get(..len)?;
    Some(modulus.iter().skip_while(|b| **b == 0).count())
}

/// Parses one JWKS entry into a key, or says why it cannot verify signatures.
pub(super) fn parse_jwk_value(value: serde_json::Value) -> Result<VerifyingKey, String> {
    let kid_hint = value
        .get("kid")
        .and_then(|k| k.as_str())
        .unwrap_or("(no kid)")
        .chars()
        .take(64)
        .collect::<String>();
    let jwk: Jwk = serde_json::from_value(value)
        .map_err(|e| format!("key {kid_hint}: not a JWK this crate supports ({e})"))?;
    parse_jwk(&jwk).map_err(|reason| format!("key {kid_hint}: {reason}"))
}

fn parse_jwk(jwk: &Jwk) -> Result<VerifyingKey, String> {
    let common = &jwk.common;
    if let Some(public_key_use) = &common.public_key_use
        && *public_key_use != PublicKeyUse::Signature
    {
        return Err("its `use` is not `sig`".into());
    }
    if let Some(ops) = &common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("its `key_ops` do not include `verify`".into());
    }
    let declared = match common.key_algorithm {
        None => None,
        Some(alg) => Some(signing_algorithm(alg).ok_or("its `alg` is not a signing algorithm")?),
    };
    let key_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD
                .decode(rsa.n.trim_end_matches('='))
                .map_err(|_| "its modulus is not base64url")?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS {
                return Err("its RSA modulus is shorter than 2048 bits".into());
            }
            if significant > MAX_RSA_MODULUS {
                return Err(format!(
                    "its RSA modulus is longer than the {} bits the crypto backend verifies",
                    MAX_RSA_MODULUS * 8
                ));
            }
            KeyType::Rsa
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyType::EcP256,
            EllipticCurve::P384 => KeyType::EcP384,
            _ => return Err("its curve is not supported (P-256 and P-384 are)".into()),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => KeyType::Ed25519,
            _ => return Err("its curve is not supported (Ed25519 is)".into()),
        },
        // Shared secrets do not belong in a published key set; configure them explicitly.
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "symmetric keys are only accepted through `KeySet::from_hmac_secret`".into(),
            );
        }
        _ => return Err("its key type is not supported".into()),
    };
    if let Some(alg) = declared
        && !key_type.algorithms().contains(&alg)
    {
        return Err(format!("its `alg` {alg:?} does not fit its key type"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "its key parameters are invalid")?;
    VerifyingKey::new(common.key_id.clone(), key_type, declared, key).map_err(Into::into)
}

fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn rsa_jwk(modulus_bytes: usize) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "kid": "big",
            "e": "AQAB",
            "n": URL_SAFE_NO_PAD.encode(vec![0xC5u8; modulus_bytes]),
        })
    }

    #[test]
    fn an_rsa_modulus_outside_what_is_verified_is_refused_at_load() {
        let too_long = parse_jwk_value(rsa_jwk(MAX_RSA_MODULUS + 1)).map(drop);
        assert!(
            too_long
                .as_ref()
                .is_err_and(|why| why.contains("longer than")),
            "{too_long:?}"
        );
        let too_short = parse_jwk_value(rsa_jwk(MIN_RSA_MODULUS - 1)).map(drop);
        assert!(
            too_short
                .as_ref()
                .is_err_and(|why| why.contains("shorter than 2048 bits")),
            "{too_short:?}"
        );
    }
}
