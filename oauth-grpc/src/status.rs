//! The one mapping from access decisions to `tonic::Status` with an RFC 6750
//! `www-authenticate` value.

use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::policy::Rule;

/// The response metadata key of RFC 6750 §3.
pub(crate) const WWW_AUTHENTICATE: &str = "www-authenticate";

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
        Status::unauthenticated("this call needs a bearer token"),
        "Bearer",
    )
}

/// A valid token without the scopes the rule asks for.
pub(crate) fn insufficient_scope(rule: &Rule) -> Status {
    let mut scope = String::new();
    for (i, s) in rule.scopes().iter().enumerate() {
        if i > 0 {
            scope.push(' ');
        }
        scope.push_str(s.as_str());
    }
    let challenge = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
    with_challenge(
        Status::permission_denied(format!(
            "the token lacks the scopes this call needs ({rule})"
        )),
        &challenge,
    )
}

/// A token that was refused: RFC 6750 §3.1 `invalid_token`, with a fixed description.
pub(crate) fn invalid_token(error: crate::error::TokenError) -> Status {
    let description = error.to_string();
    let challenge = format!(r#"Bearer error="invalid_token", error_description="{description}""#);
    with_challenge(Status::unauthenticated(description), &challenge)
}

/// Malformed credentials: RFC 6750 §3.1 `invalid_request`, with a fixed description.
pub(crate) fn invalid_request(description: &'static str) -> Status {
    let challenge = format!(r#"Bearer error="invalid_request", error_description="{description}""#);
    with_challenge(Status::unauthenticated(description), &challenge)
}

/// The identity provider cannot be reached for keys or introspection: retryable, not the
/// caller's fault, so no challenge.
pub(crate) fn provider_unavailable() -> Status {
    Status::unavailable("the identity provider is unavailable; retry later")
}
