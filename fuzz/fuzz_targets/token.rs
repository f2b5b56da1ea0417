//! Token validation end to end, two ways:
//! - raw: the input as a token against a validator holding real RSA, EC and Ed25519 keys;
//! - structured (first byte 0x01): `header JSON 0xff payload JSON`, signed with the HS256
//!   key of a second validator, so fuzzed headers and claims get past the signature.
//!
//! Invariant: nothing panics, and an accepted token satisfies every claim rule at `NOW`.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use oauth_grpc::{Principal, Validator};
use oauth_grpc_fuzz::{
    AUDIENCE, ISSUER, NOW, asymmetric_validator, hmac_validator, now, sign_hs256,
};

static ASYMMETRIC: LazyLock<Validator> = LazyLock::new(asymmetric_validator);
static HMAC: LazyLock<Validator> = LazyLock::new(hmac_validator);

fn check(principal: &Principal) {
    assert_eq!(principal.issuer(), Some(ISSUER), "accepted another issuer");
    assert!(
        principal.audiences().iter().any(|a| a == AUDIENCE),
        "accepted another audience"
    );
    let exp = principal.expires_at().expect("an accepted token has exp");
    let exp = exp
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The default leeway is 60 s.
    assert!(exp + 60 > NOW, "accepted an expired token");
}

fuzz_target!(|data: &[u8]| {
    if let Some((&1, rest)) = data.split_first() {
        let (header, payload) = match rest.iter().position(|b| *b == 0xff) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &b"{}"[..]),
        };
        let token = sign_hs256(header, payload);
        if let Ok(principal) = HMAC.validate_at(&token, now()) {
            check(&principal);
        }
    } else if let Ok(token) = std::str::from_utf8(data)
        && let Ok(principal) = ASYMMETRIC.validate_at(token, now())
    {
        check(&principal);
    }
});
