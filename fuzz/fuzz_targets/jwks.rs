//! JWKS document parsing. A document that loads must yield a validator that builds and
//! refuses a token nobody signed; the loaded key count never exceeds the document's entries.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_grpc::KeySet;
use oauth_grpc::Validator;
use oauth_grpc_fuzz::{AUDIENCE, ISSUER, hs256_header, now, valid_claims};

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = KeySet::from_jwks(data) else {
        return;
    };
    let entries = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|doc| doc.get("keys").and_then(|k| k.as_array()).map(Vec::len))
        .unwrap_or(0);
    assert!(keys.len() <= entries, "more keys than JWKS entries");
    for key in keys.iter() {
        // Every loaded key answers these without panicking.
        let _ = (key.kid(), key.key_type(), key.algorithm());
    }
    let Ok(validator) = Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(keys)
        .build()
    else {
        return;
    };
    // A token whose signature is garbage is never accepted, whatever the keys.
    let forged = format!(
        "{}.{}.{}",
        oauth_grpc_fuzz::b64(hs256_header().to_string().as_bytes()),
        oauth_grpc_fuzz::b64(valid_claims().to_string().as_bytes()),
        oauth_grpc_fuzz::b64(&[0u8; 32]),
    );
    assert!(
        validator.validate_at(&forged, now()).is_err(),
        "a forged token passed"
    );
});
