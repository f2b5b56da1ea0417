//! The syntax of a bearer token (RFC 6750 §2.1, RFC 7235 `token68`), checked before anything
//! is decoded.

use crate::error::AuthError;

/// The token68 syntax of a bearer token (RFC 6750 §2.1).
pub(crate) fn check_token68(token: &str) -> Result<(), AuthError> {
    if is_token68(token) {
        Ok(())
    } else {
        Err(AuthError::InvalidRequest(
            "the bearer token is not in token68 syntax",
        ))
    }
}

/// RFC 7235 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_token68(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    // One table load per byte: this scan runs over every token of every call.
    !body.is_empty() && body.bytes().all(|b| TOKEN68[usize::from(b)])
}

/// The token68 characters before the padding, as a lookup table.
const TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token68_table_is_the_grammar() {
        let allowed = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        for b in 0..=255u8 {
            assert_eq!(
                TOKEN68[usize::from(b)],
                allowed.contains(&b),
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn padding_only_at_the_end() {
        assert!(is_token68("abc=="));
        assert!(!is_token68("===="));
        assert!(!is_token68("a=b"));
        assert!(!is_token68(""));
    }
}
