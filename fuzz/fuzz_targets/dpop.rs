//! DPoP proofs (RFC 9449) checked on their own, as the layer checks the `dpop` value of a
//! call, and `htu` values normalised as the layer compares them. The first byte chooses:
//! even → the rest is a proof; odd → the rest is an `htu`.
//! Invariants: an accepted proof's key thumbprint is 43 base64url characters and its `typ`,
//! `alg` and `jwk` are what the layer allows; a normalised `htu` is `http(s)://`, has no query
//! or fragment, and normalising it again changes nothing.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use oauth_grpc::__private::fuzz::{dpop_proof, normalised_htu};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(jkt) = dpop_proof(text) {
            assert_eq!(jkt.len(), 43, "a thumbprint of another length");
            assert!(
                jkt.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a thumbprint outside base64url"
            );
            let header = text.split('.').next().unwrap_or_default();
            let header: serde_json::Value = URL_SAFE_NO_PAD
                .decode(header)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .expect("an accepted proof has a JSON header");
            let typ = header["typ"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                typ == "dpop+jwt" || typ == "application/dpop+jwt",
                "accepted typ {typ:?}"
            );
            let alg = header["alg"].as_str().unwrap_or_default();
            assert!(
                !alg.starts_with("HS") && alg != "none" && !alg.is_empty(),
                "accepted alg {alg:?}"
            );
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(
                    header["jwk"].get(private).is_none(),
                    "accepted a jwk with {private}"
                );
            }
        }
    } else if let Some(uri) = normalised_htu(text) {
        assert!(
            uri.starts_with("http://") || uri.starts_with("https://"),
            "a normalised htu of another scheme"
        );
        assert!(!uri.contains(['?', '#']), "a query or fragment kept");
        assert_eq!(
            normalised_htu(&uri).as_deref(),
            Some(uri.as_str()),
            "normalising twice changes the htu"
        );
    }
});
