//! Bearer extraction from request metadata: up to four `authorization` values, split at NUL.
//! Invariant: an extracted token is the non-empty, token68 tail of the one value, within the
//! length limit.

#![no_main]

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use oauth_grpc::bearer_token;

const MAX: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for part in data.split(|b| *b == 0).take(4) {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(AUTHORIZATION, value);
        }
    }
    if let Ok(token) = bearer_token(&headers, MAX) {
        let values: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(values.len(), 1, "a token from several values");
        let value = values[0].as_bytes();
        assert!(value.len() <= MAX, "a token from an oversized value");
        assert!(!token.is_empty(), "an empty token");
        assert!(
            value.ends_with(token.as_bytes()),
            "the token is not the value's tail"
        );
        assert!(
            value[..6].eq_ignore_ascii_case(b"bearer"),
            "a token from another scheme"
        );
        assert!(
            token
                .trim_end_matches('=')
                .bytes()
                .all(|b| b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')),
            "a token outside token68"
        );
    }
});
