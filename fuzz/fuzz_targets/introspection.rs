//! RFC 7662 introspection answers, interpreted as the validator does after its POST.
//! Invariant: an active answer that is accepted names our issuer and audience when it names
//! any, and does not lie outside its `exp`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_grpc::__private::fuzz::introspection_answer;
use oauth_grpc_fuzz::{AUDIENCE, ISSUER};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(principal)) = introspection_answer(data) {
        if let Some(issuer) = principal.issuer() {
            assert_eq!(issuer, ISSUER, "accepted another issuer");
        }
        let audiences = principal.audiences();
        assert!(
            audiences.is_empty() || audiences.iter().any(|a| a == AUDIENCE),
            "accepted another audience"
        );
        assert!(
            principal.expires_at().is_some(),
            "an active answer without expiry"
        );
    }
});
