//! DPoP proofs (RFC 9449) made by the tests themselves, with the test keys, so that every
//! defect a proof can have is one edit away: the header and the claims are plain JSON, signed
//! as given. The RFC 7638 thumbprint is computed here independently of the crate's.
//!
//! And proofs the client makes, checked independently of the crate's own checker
//! ([`check`]): the signature by `jsonwebtoken`'s JWT decoder under the header's `jwk`, the
//! thumbprint by `jsonwebtoken`'s RFC 7638 code. The test identity provider and the client
//! tests' recording server use it, so a client proof is judged by code the client does not
//! share.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::issuer::{TestKey, alg_name, b64, claims, header, now, sign_json, sign_segments};

/// The `algs` a layer with `Dpop::new()` names in its challenges.
pub const ALGS: &str = "ES256 ES384 EdDSA PS256 RS256";

/// The public JWK of `key` with only its required members (RFC 7638 §3.2): what a proof's
/// header carries.
///
/// # Panics
///
/// If the test key's JWK does not serialise (a test set-up error).
pub fn public_jwk(key: TestKey) -> Value {
    let jwk = serde_json::to_value(key.jwk()).expect("JWK serialises");
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("RSA") => &["kty", "n", "e"],
        Some("EC") => &["kty", "crv", "x", "y"],
        _ => &["kty", "crv", "x"],
    };
    let mut out = Map::new();
    for member in members {
        out.insert((*member).to_owned(), jwk[*member].clone());
    }
    Value::Object(out)
}

/// The RFC 7638 SHA-256 thumbprint of `key`: the members in lexicographic order, no
/// whitespace (serde_json's maps are sorted), base64url.
pub fn thumbprint(key: TestKey) -> String {
    let canonical = public_jwk(key).to_string();
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// `ath`: base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    b64(&Sha256::digest(token.as_bytes()))
}

/// A unique `jti`.
pub fn jti() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "jti-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The header of a proof by `key` signed with `alg`.
pub fn proof_header(key: TestKey, alg: Algorithm) -> Value {
    json!({"typ": "dpop+jwt", "alg": alg_name(alg), "jwk": public_jwk(key)})
}

/// The claims of a good proof for a call to `htu` with `token`.
pub fn proof_claims(htu: &str, token: &str) -> Value {
    json!({"jti": jti(), "htm": "POST", "htu": htu, "iat": now(), "ath": ath(token)})
}

/// `header` and `claims` as JSON, signed by `key` with `alg`, as given.
///
/// # Panics
///
/// If `alg` does not fit `key` (a test set-up error).
pub fn sign_proof(header: &Value, claims: &Value, key: TestKey, alg: Algorithm) -> String {
    sign_segments(
        &b64(header.to_string().as_bytes()),
        &b64(claims.to_string().as_bytes()),
        &key.encoding_key(),
        alg,
    )
}

/// A good proof by `key` (its default algorithm) for a call to `htu` with `token`.
pub fn proof(key: TestKey, htu: &str, token: &str) -> String {
    sign_proof(
        &proof_header(key, key.alg()),
        &proof_claims(htu, token),
        key,
        key.alg(),
    )
}

/// A token for `scope` bound to `key` (`cnf.jkt`), signed by the issuer's `rsa-1`.
pub fn bound_token(scope: &str, key: TestKey) -> String {
    let mut payload = claims(scope);
    payload["cnf"] = json!({ "jkt": thumbprint(key) });
    sign_json(&header(TestKey::Rsa1), &payload, TestKey::Rsa1)
}

/// A proof whose signature verified under its own `jwk`.
#[derive(Debug, Clone)]
pub struct CheckedProof {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
    /// The RFC 7638 SHA-256 thumbprint of the header's `jwk`.
    pub jkt: String,
}

impl CheckedProof {
    /// A claim as a string, or `""`.
    pub fn claim(&self, name: &str) -> &str {
        self.claims[name].as_str().unwrap_or_default()
    }
}

/// JWK members only a private or symmetric key has.
const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks `proof` on its own: `typ: dpop+jwt`, an asymmetric `alg`, a public `jwk`, the
/// signature under it, and `jti`, `htm`, `htu`, `iat` present. What ties it to a request
/// (`htm`, `htu`, `ath`, `nonce`, `iat` window) is the caller's to compare.
///
/// # Errors
///
/// Why the proof is refused.
pub fn check(proof: &str) -> Result<CheckedProof, String> {
    let header_b64 = proof.split('.').next().unwrap_or_default();
    let header: Value = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("the header is not base64url JSON")?;
    if header["typ"] != "dpop+jwt" {
        return Err(format!("typ is {}", header["typ"]));
    }
    let alg: Algorithm =
        serde_json::from_value(header["alg"].clone()).map_err(|_| "alg is not a JWS alg")?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err("alg is symmetric".into());
    }
    let jwk_value = header.get("jwk").ok_or("no jwk")?;
    if PRIVATE.iter().any(|m| jwk_value.get(*m).is_some()) {
        return Err("the jwk holds a private member".into());
    }
    let jwk: Jwk = serde_json::from_value(jwk_value.clone()).map_err(|e| format!("jwk: {e}"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("jwk: {e}"))?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|e| format!("signature: {e}"))?
        .claims;
    for name in ["jti", "htm", "htu"] {
        if !claims[name].is_string() {
            return Err(format!("no {name}"));
        }
    }
    if !claims["iat"].is_u64() {
        return Err("no iat".into());
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("thumbprint: {e}"))?;
    Ok(CheckedProof {
        header,
        claims,
        jkt,
    })
}

/// The claims of a JWT, unverified (to read `cnf.jkt` of an issued token).
pub fn jwt_claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|segment| URL_SAFE_NO_PAD.decode(segment).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}
