//! RFC 7662 introspection answers, interpreted as the validator does after its POST.
//! Invariant: an active answer that is accepted names our issuer and audience when it names
//! any, and has not expired.

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
        // The default leeway is 60 s.
        let exp = principal
            .expires_at()
            .expect("an active answer has an expiry");
        assert!(
            exp + std::time::Duration::from_secs(60) > std::time::SystemTime::now(),
            "accepted an expired answer"
        );
    }
});
