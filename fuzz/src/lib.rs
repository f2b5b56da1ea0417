//! Shared fixtures of the fuzz targets: the test keys of `tests/keys`, validators that trust
//! them at a fixed clock, and an HS256 signer so that fuzzed headers and payloads get past
//! the signature and reach the claim checks.
//!
//! Run a target with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/corpus/<target>
//! fuzz/seeds/<target>`; see `fuzz/README.md`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use oauth_grpc::KeySet;
use oauth_grpc::Validator;
use serde_json::{Value, json};

/// The issuer every validator trusts.
pub const ISSUER: &str = "https://issuer.test/";
/// The audience every validator expects.
pub const AUDIENCE: &str = "orders-api";
/// The fixed clock of the targets (2027-01-15), so that seed tokens never expire.
pub const NOW: u64 = 1_800_000_000;
/// The HMAC secret of [`hmac_validator`] and [`sign_hs256`].
pub const HMAC_SECRET: &[u8; 32] = b"fuzzing-secret-of-thirty-two-by!";

/// The public keys of `tests/keys`, with their kids and algorithms.
pub const PUBLIC_KEYS: [(&str, &[u8], Algorithm); 3] = [
    (
        "rsa-1",
        include_bytes!("../../tests/keys/rsa1.pub.pem"),
        Algorithm::RS256,
    ),
    (
        "ec-256",
        include_bytes!("../../tests/keys/ec256.pub.pem"),
        Algorithm::ES256,
    ),
    (
        "ed-1",
        include_bytes!("../../tests/keys/ed25519.pub.pem"),
        Algorithm::EdDSA,
    ),
];

/// The private keys matching [`PUBLIC_KEYS`], for the seeds.
pub const PRIVATE_KEYS: [&[u8]; 3] = [
    include_bytes!("../../tests/keys/rsa1.pem"),
    include_bytes!("../../tests/keys/ec256.pem"),
    include_bytes!("../../tests/keys/ed25519.pem"),
];

/// `NOW` as a `SystemTime`.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// A validator trusting the RSA, EC and Ed25519 test keys, with the strict RFC 9068 profile
/// and a role mapping (`realm_access.roles`: `admin` → `orders:admin`).
///
/// # Panics
///
/// If the committed test keys do not load: a broken checkout, not an input.
pub fn asymmetric_validator() -> Validator {
    let mut keys = KeySet::new();
    for (kid, pem, alg) in PUBLIC_KEYS {
        keys = keys.merge(KeySet::from_pem(Some(kid), pem, alg).expect("test key loads"));
    }
    configure(keys)
}

/// A validator trusting [`HMAC_SECRET`] for HS256, configured as [`asymmetric_validator`].
///
/// # Panics
///
/// Never for the fixed secret.
pub fn hmac_validator() -> Validator {
    configure(
        KeySet::from_hmac_secret(Some("hs-1"), HMAC_SECRET, Algorithm::HS256)
            .expect("32-byte HS256 secret"),
    )
}

fn configure(keys: KeySet) -> Validator {
    Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(keys)
        .role_claim("realm_access.roles")
        .map_role("admin", ["orders:admin"])
        .build()
        .expect("fuzz validator builds")
}

/// Base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over the exact `header` and `payload` bytes, signed with [`HMAC_SECRET`].
///
/// # Panics
///
/// Never: HS256 signing cannot fail.
pub fn sign_hs256(header: &[u8], payload: &[u8]) -> String {
    let signed = format!("{}.{}", b64(header), b64(payload));
    let key = EncodingKey::from_secret(HMAC_SECRET);
    let signature =
        jsonwebtoken::crypto::sign(signed.as_bytes(), &key, Algorithm::HS256).expect("HS256 signs");
    format!("{signed}.{signature}")
}

/// The header of a valid HS256 access token.
pub fn hs256_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs-1"})
}

/// Claims of a valid access token at [`NOW`].
pub fn valid_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "client_id": "orders-web",
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "jti": "fuzz-1",
        "scope": "orders:read orders:write",
    })
}
