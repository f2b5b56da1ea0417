//! DPoP proofs (RFC 9449) made by the tests themselves, with the test keys, so that every
//! defect a proof can have is one edit away: the header and the claims are plain JSON, signed
//! as given. The RFC 7638 thumbprint is computed here independently of the crate's.

use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::Algorithm;
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
