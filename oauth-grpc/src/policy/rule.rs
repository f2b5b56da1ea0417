//! [`Rule`]: what one RPC method admits, and [`Denial`]: why it refused.

use std::fmt;

use crate::principal::Principal;
use crate::scope::{Scope, ScopeSet};

/// The access rule of one RPC method.
///
/// ```
/// use oauth_grpc::{Principal, Rule, Scope};
///
/// const RULE: Rule = Rule::AnyOf(&[
///     Scope::from_static("orders:read"),
///     Scope::from_static("orders:admin"),
/// ]);
/// let reader = Principal::builder().subject("alice").scopes(["orders:read"]).build();
/// assert!(RULE.evaluate(Some(&reader)).is_ok());
/// assert!(RULE.evaluate(None).is_err());
/// assert_eq!(RULE.to_string(), "any of: orders:read, orders:admin");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// No token is needed (`#[public]`).
    Public,
    /// Any valid token (`#[authenticated]`).
    Authenticated,
    /// A valid token holding every one of these scopes (`#[require_scope(..)]`).
    AllOf(&'static [Scope]),
    /// A valid token holding at least one of these scopes (`#[require_any_scope(..)]`).
    AnyOf(&'static [Scope]),
}

impl Rule {
    /// Whether the rule lets calls through without a token.
    ///
    /// ```
    /// # use oauth_grpc::Rule;
    /// assert!(Rule::Public.is_public());
    /// assert!(!Rule::Authenticated.is_public());
    /// ```
    pub const fn is_public(&self) -> bool {
        matches!(self, Self::Public)
    }

    /// The scopes the rule names, in the order written.
    ///
    /// ```
    /// # use oauth_grpc::{Rule, Scope};
    /// assert!(Rule::Authenticated.scopes().is_empty());
    /// const RULE: Rule = Rule::AllOf(&[Scope::from_static("a")]);
    /// assert_eq!(RULE.scopes(), [Scope::from_static("a")]);
    /// ```
    pub const fn scopes(&self) -> &'static [Scope] {
        match self {
            Self::Public | Self::Authenticated => &[],
            Self::AllOf(scopes) | Self::AnyOf(scopes) => scopes,
        }
    }

    /// Whether a verified token holding `granted` satisfies the rule.
    ///
    /// This is the scope part of the rule only: it assumes the token was already verified.
    /// An empty `AllOf` or `AnyOf` is never satisfied (fail closed); the macros never emit
    /// one.
    ///
    /// ```
    /// use oauth_grpc::{Rule, Scope, ScopeSet};
    ///
    /// let granted = ScopeSet::from_space_delimited("orders:read orders:write");
    /// const WRITE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
    /// assert!(WRITE.is_satisfied_by(&granted));
    /// const CANCEL: Rule = Rule::AllOf(&[Scope::from_static("orders:cancel")]);
    /// assert!(!CANCEL.is_satisfied_by(&granted));
    /// ```
    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        match self {
            Self::Public | Self::Authenticated => true,
            // An empty all-of would admit every token; like an empty any-of it admits none.
            Self::AllOf(scopes) => {
                !scopes.is_empty() && scopes.iter().all(|s| granted.contains(s.as_str()))
            }
            Self::AnyOf(scopes) => scopes.iter().any(|s| granted.contains(s.as_str())),
        }
    }

    /// Decides a call from the verified principal, if any.
    ///
    /// # Errors
    ///
    /// [`Denial::Unauthenticated`] when the rule needs a token and there is no principal;
    /// [`Denial::InsufficientScope`] when the principal's scopes do not satisfy the rule.
    ///
    /// ```
    /// use oauth_grpc::{Denial, Principal, Rule, Scope};
    ///
    /// const RULE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
    /// assert_eq!(RULE.evaluate(None), Err(Denial::Unauthenticated));
    /// let reader = Principal::builder().scopes(["orders:read"]).build();
    /// assert_eq!(RULE.evaluate(Some(&reader)), Err(Denial::InsufficientScope(RULE)));
    /// ```
    pub fn evaluate(&self, principal: Option<&Principal>) -> Result<(), Denial> {
        match (self, principal) {
            (Self::Public, _) => Ok(()),
            (_, None) => Err(Denial::Unauthenticated),
            (_, Some(principal)) if self.is_satisfied_by(principal.scopes()) => Ok(()),
            (_, Some(_)) => Err(Denial::InsufficientScope(*self)),
        }
    }
}

impl fmt::Display for Rule {
    /// Writes the rule in words, as reports show it: `public`, `authenticated`,
    /// `all of: a, b`, `any of: a, b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (label, scopes) = match self {
            Self::Public => return f.write_str("public"),
            Self::Authenticated => return f.write_str("authenticated"),
            Self::AllOf(scopes) => ("all of", scopes),
            Self::AnyOf(scopes) => ("any of", scopes),
        };
        write!(f, "{label}: ")?;
        for (i, scope) in scopes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

/// Why a rule refused a call. Converts into a [`tonic::Status`] carrying an RFC 6750
/// `www-authenticate` value.
///
/// ```
/// use oauth_grpc::{Denial, Rule, Scope};
///
/// let status = tonic::Status::from(Denial::Unauthenticated);
/// assert_eq!(status.code(), tonic::Code::Unauthenticated);
/// assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
///
/// const RULE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
/// let status = tonic::Status::from(Denial::InsufficientScope(RULE));
/// assert_eq!(status.code(), tonic::Code::PermissionDenied);
/// assert_eq!(
///     status.metadata().get("www-authenticate").unwrap(),
///     r#"Bearer error="insufficient_scope", scope="orders:write""#,
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// The rule needs a verified token and the call has none.
    Unauthenticated,
    /// The token is valid but lacks the scopes of this rule.
    InsufficientScope(Rule),
    /// The call is delegated (the token has an `act` claim) and the method admits only the
    /// subject itself ([`Delegation::Forbidden`](crate::Delegation::Forbidden)).
    DelegationForbidden,
    /// The call is delegated by an actor the method does not list
    /// ([`Delegation::Actors`](crate::Delegation::Actors)).
    ActorNotAllowed,
}
