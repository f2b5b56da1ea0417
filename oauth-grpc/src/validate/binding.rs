//! Sender-constrained tokens: the check of a verified token's binding (RFC 7800 `cnf`,
//! RFC 8705 §3) against the client certificate a call came with. Run per call, after the
//! verified-token cache: the cache is shared by every connection, the certificate is one
//! connection's.

use crate::error::TokenError;
use crate::principal::Principal;

/// Whether `principal`'s token may be used by a caller presenting the certificate with
/// thumbprint `presented` (none: plaintext, or TLS without a client certificate), on a method
/// that needs a sender-constrained token if `required`.
///
/// # Errors
///
/// [`TokenError::CertificateMismatch`] for a token bound to another certificate (or on a
/// connection without one); [`TokenError::UnsupportedConfirmation`] for a `cnf` without a
/// certificate thumbprint (the validator refuses those already); and
/// [`TokenError::NotSenderConstrained`] for a plain bearer token where one is `required`.
pub(crate) fn check(
    principal: &Principal,
    presented: Option<&str>,
    required: bool,
) -> Result<(), TokenError> {
    match principal.confirmation() {
        Some(cnf) => match cnf.certificate_thumbprint() {
            Some(bound) if Some(bound) == presented => Ok(()),
            Some(_) => Err(TokenError::CertificateMismatch),
            None => Err(TokenError::UnsupportedConfirmation),
        },
        None if required => Err(TokenError::NotSenderConstrained),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Confirmation;

    #[test]
    fn each_token_and_connection() {
        let bound = Principal::builder()
            .confirmation(Confirmation::certificate("a"))
            .build();
        let plain = Principal::builder().build();
        assert_eq!(check(&bound, Some("a"), false), Ok(()));
        assert_eq!(check(&bound, Some("a"), true), Ok(()));
        assert_eq!(
            check(&bound, Some("b"), false),
            Err(TokenError::CertificateMismatch)
        );
        assert_eq!(
            check(&bound, None, false),
            Err(TokenError::CertificateMismatch)
        );
        assert_eq!(check(&plain, Some("a"), false), Ok(()));
        assert_eq!(check(&plain, None, false), Ok(()));
        assert_eq!(
            check(&plain, Some("a"), true),
            Err(TokenError::NotSenderConstrained)
        );
        assert_eq!(
            check(&plain, None, true),
            Err(TokenError::NotSenderConstrained)
        );
    }
}
