//! Sender-constrained tokens: the check of a verified token's binding (RFC 7800 `cnf`)
//! against what the call proved to hold — the TLS client certificate of its connection
//! (RFC 8705 §3, `x5t#S256`) and the key of its DPoP proof (RFC 9449 §6 and §7, `jkt`). Run
//! per call, after the verified-token cache: the cache is shared by every connection and
//! every call, the certificate is one connection's and the proof one call's.

use crate::error::TokenError;
use crate::principal::Principal;

/// What a call presented beside its token.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Presented<'a> {
    /// The thumbprint of the connection's TLS client certificate (none: plaintext, or TLS
    /// without a client certificate).
    pub(crate) certificate: Option<&'a str>,
    /// The thumbprint of the key of the call's verified DPoP proof: `Some` exactly when the
    /// call used the `DPoP` scheme.
    pub(crate) proof_key: Option<&'a str>,
    /// The server accepts DPoP: a DPoP-bound token without a proof could have come with one.
    pub(crate) dpop: bool,
}

/// Whether `principal`'s token may be used by a caller that `presented` these, on a method
/// that needs a sender-constrained token if `required`.
///
/// # Errors
///
/// - [`TokenError::CertificateMismatch`] for a certificate-bound token without that
///   certificate on the connection;
/// - [`TokenError::DpopBoundAsBearer`] for a DPoP-bound token sent as a bearer token (no
///   proof) to a server that accepts DPoP — [`TokenError::UnsupportedConfirmation`] where it
///   does not, since no proof would help there — [`TokenError::DpopKeyMismatch`] for one whose proof is by another key, and
///   [`TokenError::NotDpopBound`] for the `DPoP` scheme with a token not bound to a key;
/// - [`TokenError::UnsupportedConfirmation`] for a `cnf` with neither (the validator refuses
///   those already);
/// - [`TokenError::NotSenderConstrained`] for a plain bearer token where one is `required`.
pub(crate) fn check(
    principal: &Principal,
    presented: Presented<'_>,
    required: bool,
) -> Result<(), TokenError> {
    let Some(cnf) = principal.confirmation() else {
        if presented.proof_key.is_some() {
            return Err(TokenError::NotDpopBound);
        }
        return if required {
            Err(TokenError::NotSenderConstrained)
        } else {
            Ok(())
        };
    };
    let (certificate, key) = (cnf.certificate_thumbprint(), cnf.key_thumbprint());
    if certificate.is_none() && key.is_none() {
        return Err(TokenError::UnsupportedConfirmation);
    }
    match (key, presented.proof_key) {
        (Some(bound), Some(proved)) if bound == proved => {}
        (Some(_), Some(_)) => return Err(TokenError::DpopKeyMismatch),
        (Some(_), None) if presented.dpop => return Err(TokenError::DpopBoundAsBearer),
        (Some(_), None) => return Err(TokenError::UnsupportedConfirmation),
        (None, Some(_)) => return Err(TokenError::NotDpopBound),
        (None, None) => {}
    }
    match certificate {
        Some(bound) if Some(bound) != presented.certificate => Err(TokenError::CertificateMismatch),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Confirmation;

    fn certificate(thumbprint: &str) -> Presented<'_> {
        Presented {
            certificate: Some(thumbprint),
            proof_key: None,
            dpop: true,
        }
    }

    fn proof(thumbprint: &str) -> Presented<'_> {
        Presented {
            certificate: None,
            proof_key: Some(thumbprint),
            dpop: true,
        }
    }

    #[test]
    fn each_token_and_connection() {
        let bound = Principal::builder()
            .confirmation(Confirmation::certificate("a"))
            .build();
        let plain = Principal::builder().build();
        let none = Presented::default();
        assert_eq!(check(&bound, certificate("a"), false), Ok(()));
        assert_eq!(check(&bound, certificate("a"), true), Ok(()));
        assert_eq!(
            check(&bound, certificate("b"), false),
            Err(TokenError::CertificateMismatch)
        );
        assert_eq!(
            check(&bound, none, false),
            Err(TokenError::CertificateMismatch)
        );
        assert_eq!(check(&plain, certificate("a"), false), Ok(()));
        assert_eq!(check(&plain, none, false), Ok(()));
        assert_eq!(
            check(&plain, certificate("a"), true),
            Err(TokenError::NotSenderConstrained)
        );
        assert_eq!(
            check(&plain, none, true),
            Err(TokenError::NotSenderConstrained)
        );
    }

    #[test]
    fn each_token_and_proof() {
        let bound = Principal::builder()
            .confirmation(Confirmation::dpop_key("k"))
            .build();
        let plain = Principal::builder().build();
        assert_eq!(check(&bound, proof("k"), false), Ok(()));
        assert_eq!(check(&bound, proof("k"), true), Ok(()));
        assert_eq!(
            check(&bound, proof("other"), false),
            Err(TokenError::DpopKeyMismatch)
        );
        let bearer = Presented {
            dpop: true,
            ..Presented::default()
        };
        assert_eq!(
            check(&bound, bearer, false),
            Err(TokenError::DpopBoundAsBearer)
        );
        // A server without DPoP cannot check the binding at all.
        assert_eq!(
            check(&bound, Presented::default(), false),
            Err(TokenError::UnsupportedConfirmation)
        );
        // A certificate is no proof of the key.
        assert_eq!(
            check(&bound, certificate("k"), true),
            Err(TokenError::DpopBoundAsBearer)
        );
        assert_eq!(
            check(&plain, proof("k"), false),
            Err(TokenError::NotDpopBound)
        );
        let certificate_bound = Principal::builder()
            .confirmation(Confirmation::certificate("c"))
            .build();
        assert_eq!(
            check(&certificate_bound, proof("k"), false),
            Err(TokenError::NotDpopBound)
        );
    }

    #[test]
    fn a_token_bound_both_ways_needs_both() {
        let both = Principal::builder()
            .confirmation(Confirmation::certificate("c").with_dpop_key("k"))
            .build();
        let all = Presented {
            certificate: Some("c"),
            proof_key: Some("k"),
            dpop: true,
        };
        assert_eq!(check(&both, all, true), Ok(()));
        assert_eq!(
            check(&both, proof("k"), false),
            Err(TokenError::CertificateMismatch)
        );
        assert_eq!(
            check(&both, certificate("c"), false),
            Err(TokenError::DpopBoundAsBearer)
        );
    }
}
