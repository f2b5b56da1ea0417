//! The one mapping from refusals to `tonic::Status`, with the RFC 6750 `www-authenticate`
//! value each carries. The layer, the generated method checks, the request accessor and the
//! client layer all answer through here, so one refusal always looks the same.
//!
//! ```
//! use oauth_grpc::{Denial, Rule, Scope};
//!
//! const RULE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
//! let status = tonic::Status::from(Denial::InsufficientScope(RULE));
//! assert_eq!(status.code(), tonic::Code::PermissionDenied);
//! assert_eq!(
//!     status.metadata().get("www-authenticate").unwrap(),
//!     r#"Bearer error="insufficient_scope", scope="orders:write""#,
//! );
//! ```

use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::error::{AuthError, ProofError, TokenError};
use crate::policy::Denial;

/// The response metadata key of RFC 6750 §3.
const WWW_AUTHENTICATE: &str = "www-authenticate";

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        refusal(error, None)
    }
}

/// How a refused call sent its token, for the challenge of a server that accepts DPoP.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DpopChallenge<'a> {
    /// The `algs` the server accepts for proofs, space-separated.
    pub(crate) algs: &'a str,
    /// The call used the `DPoP` scheme.
    pub(crate) dpop_scheme: bool,
}

/// The status of a refusal, with its challenge: RFC 6750 `Bearer` alone, or — on a server
/// that accepts DPoP — the `DPoP` challenge with its `algs` (RFC 9449 §7.1), carrying the
/// error if the call used the `DPoP` scheme and beside the `Bearer` one otherwise (§7.2).
pub(crate) fn refusal(error: AuthError, dpop: Option<DpopChallenge<'_>>) -> Status {
    let (status, params) = parts(error);
    let Some(params) = params else {
        return status;
    };
    let bearer = || {
        if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {params}")
        }
    };
    let challenge = match dpop {
        None => bearer(),
        Some(DpopChallenge {
            algs,
            dpop_scheme: true,
        }) if !params.is_empty() => format!(r#"DPoP {params}, algs="{algs}""#),
        Some(DpopChallenge { algs, .. }) => format!(r#"{}, DPoP algs="{algs}""#, bearer()),
    };
    with_challenge(status, &challenge)
}

/// A refusal's status without its challenge, and the challenge's parameters (empty: none;
/// `None`: no challenge at all, since no credentials would help).
fn parts(error: AuthError) -> (Status, Option<String>) {
    match error {
        AuthError::MissingToken => (
            Status::unauthenticated(error.to_string()),
            Some(String::new()),
        ),
        AuthError::InvalidRequest(description) => (
            Status::unauthenticated(description),
            Some(format!(
                r#"error="invalid_request", error_description="{description}""#
            )),
        ),
        AuthError::InvalidToken(TokenError::Unavailable) => (provider_unavailable(), None),
        AuthError::InvalidToken(e) => {
            let description = e.to_string();
            let params = format!(r#"error="invalid_token", error_description="{description}""#);
            (Status::unauthenticated(description), Some(params))
        }
        AuthError::InsufficientScope(rule) => {
            let scope = crate::scope::join(rule.scopes().iter().map(|s| s.as_str()));
            (
                Status::permission_denied(format!(
                    "the token lacks the scopes this call needs ({rule})"
                )),
                Some(format!(r#"error="insufficient_scope", scope="{scope}""#)),
            )
        }
        AuthError::NoRule => (no_rule(), None),
        // RFC 6750 §3.1 has no code for "not for this actor"; `insufficient_scope` is the
        // one for a valid token that lacks a right, without `scope` (no scope would help).
        AuthError::DelegationForbidden | AuthError::ActorNotAllowed => {
            let description = error.to_string();
            (
                Status::permission_denied(description.clone()),
                Some(format!(
                    r#"error="insufficient_scope", error_description="{description}""#
                )),
            )
        }
        AuthError::InvalidProof(ProofError::ReplayCheckUnavailable) => (
            Status::unavailable(ProofError::ReplayCheckUnavailable.to_string()),
            None,
        ),
        AuthError::InvalidProof(e) => {
            let description = e.to_string();
            let params =
                format!(r#"error="invalid_dpop_proof", error_description="{description}""#);
            (Status::unauthenticated(description), Some(params))
        }
        // Not the caller's fault and no credentials would help: no challenge.
        AuthError::StoreUnavailable => (Status::unavailable(error.to_string()), None),
        AuthError::UseDpopNonce => (
            Status::unauthenticated(error.to_string()),
            Some(
                r#"error="use_dpop_nonce", error_description="the server requires its nonce in the DPoP proof""#
                    .to_owned(),
            ),
        ),
    }
}

impl From<Denial> for Status {
    fn from(denial: Denial) -> Self {
        Status::from(AuthError::from(denial))
    }
}

#[cfg(feature = "client")]
impl From<crate::error::FetchError> for Status {
    /// `UNAVAILABLE` when the token endpoint could not be reached (retry later), else
    /// `UNAUTHENTICATED`: no call is sent without a token.
    fn from(error: crate::error::FetchError) -> Self {
        match &error {
            crate::error::FetchError::Unreachable(_) => Status::unavailable(error.to_string()),
            _ => Status::unauthenticated(error.to_string()),
        }
    }
}

fn with_challenge(mut status: Status, challenge: &str) -> Status {
    // Challenges are built from fixed phrases and validated scope tokens (printable ASCII),
    // so they are always valid header values; if one ever were not, the status still
    // carries the right code.
    if let Ok(value) = MetadataValue::try_from(challenge) {
        status.metadata_mut().insert(WWW_AUTHENTICATE, value);
    }
    status
}

/// No token where the rule needs one: RFC 6750 §3.1 says no error code in this case.
pub(crate) fn missing_token() -> Status {
    with_challenge(
        Status::unauthenticated(AuthError::MissingToken.to_string()),
        "Bearer",
    )
}

/// A token that was refused: RFC 6750 §3.1 `invalid_token`, with a fixed description.
pub(crate) fn invalid_token(error: TokenError) -> Status {
    Status::from(AuthError::InvalidToken(error))
}

/// The identity provider cannot be reached for keys or introspection: retryable, not the
/// caller's fault, so no challenge.
fn provider_unavailable() -> Status {
    Status::unavailable("the identity provider is unavailable; retry later")
}

/// A protected method whose token no layer verified: 16 with the plain `Bearer` challenge,
/// and a message that does not pretend no token came.
pub(crate) fn unchecked_token() -> Status {
    with_challenge(
        Status::unauthenticated(
            "the bearer token was not checked: no OAuthLayer with a rule for this method ran on the server",
        ),
        "Bearer",
    )
}

/// A path without an access rule. No challenge: no token would help.
pub(crate) fn no_rule() -> Status {
    Status::permission_denied(AuthError::NoRule.to_string())
}

/// A token from a client's token source that cannot travel in a header.
#[cfg(feature = "client")]
pub(crate) fn unsendable_token() -> Status {
    Status::unauthenticated("the token source returned a token that cannot be sent in a header")
}

/// A DPoP proof the client's key could not sign: nothing is sent.
#[cfg(feature = "client")]
pub(crate) fn unprovable(error: &crate::error::KeyError) -> Status {
    Status::internal(format!("cannot make a DPoP proof: {error}"))
}

/// A DPoP-bound token on a client layer without a DPoP key: not sent as a bearer token.
#[cfg(feature = "client")]
pub(crate) fn dpop_key_missing() -> Status {
    Status::unauthenticated(
        "the token is DPoP-bound (`token_type: DPoP`) and the BearerLayer has no DPoP key; add `.dpop(key, origin)` with the key the token source proves",
    )
}

/// A DPoP-bound token for another key than the client layer's: not sent.
#[cfg(feature = "client")]
pub(crate) fn dpop_key_mismatch() -> Status {
    Status::unauthenticated(
        "the token is bound to another DPoP key than the BearerLayer's; give the token source and the layer the same DpopKey",
    )
}
