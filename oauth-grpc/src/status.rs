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

use crate::error::{AuthError, TokenError};
use crate::policy::{Denial, Rule};

/// The response metadata key of RFC 6750 §3.
const WWW_AUTHENTICATE: &str = "www-authenticate";

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingToken => missing_token(),
            AuthError::InvalidRequest(description) => invalid_request(description),
            AuthError::InvalidToken(TokenError::Unavailable) => provider_unavailable(),
            AuthError::InvalidToken(e) => invalid_token(e),
            AuthError::InsufficientScope(rule) => insufficient_scope(&rule),
            AuthError::NoRule => no_rule(),
        }
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

/// A valid token without the scopes the rule asks for.
fn insufficient_scope(rule: &Rule) -> Status {
    let scope = crate::scope::join(rule.scopes().iter().map(|s| s.as_str()));
    let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
    with_challenge(
        Status::permission_denied(format!(
            "the token lacks the scopes this call needs ({rule})"
        )),
        &challenge,
    )
}

/// A token that was refused: RFC 6750 §3.1 `invalid_token`, with a fixed description.
pub(crate) fn invalid_token(error: TokenError) -> Status {
    let description = error.to_string();
    let challenge = format!(r#"Bearer error="invalid_token", error_description="{description}""#);
    with_challenge(Status::unauthenticated(description), &challenge)
}

/// Malformed credentials: RFC 6750 §3.1 `invalid_request`, with a fixed description.
fn invalid_request(description: &'static str) -> Status {
    let challenge = format!(r#"Bearer error="invalid_request", error_description="{description}""#);
    with_challenge(Status::unauthenticated(description), &challenge)
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
