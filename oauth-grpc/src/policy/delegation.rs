//! [`Delegation`]: which delegated calls (RFC 8693 `act`) a method admits.

use std::fmt;

use super::Denial;
use crate::principal::Principal;

/// How a method treats delegated calls: tokens whose `act` claim (RFC 8693 §4.1) says that
/// an actor, such as an AI agent or a backend service, calls on behalf of the token's
/// subject.
///
/// Only the *current* actor, the outermost `act`, is matched: RFC 8693 §4.1 has prior actors
/// (nested `act`) be informational only, not input to access control. How deep a chain may
/// nest at all is the validator's limit
/// ([`ValidatorBuilder::max_delegation_depth`](crate::ValidatorBuilder::max_delegation_depth)).
///
/// In a `#[protect]` impl a rule says it with `delegation = allow | forbid | actors("…")`:
///
/// ```
/// # use examples::OrderBook;
/// use oauth_grpc::{Delegation, ProtectedService};
///
/// let cancel = OrderBook::POLICY.method("CancelOrder").unwrap();
/// assert_eq!(cancel.delegation(), Delegation::Forbidden);
/// let create = OrderBook::POLICY.method("CreateOrder").unwrap();
/// assert_eq!(create.delegation(), Delegation::Actors(&["assistant"]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Delegation {
    /// Direct and delegated calls alike (`delegation = allow`, the default): the provider
    /// decided the exchange when it issued the token.
    #[default]
    Allowed,
    /// Only the subject itself, no actor (`delegation = forbid`).
    Forbidden,
    /// Direct calls, and delegated calls whose current actor's `sub` is one of these,
    /// compared exactly (`delegation = actors("assistant", "billing-service")`).
    Actors(&'static [&'static str]),
}

impl Delegation {
    /// Decides a call from its verified principal. A call without a principal, or without an
    /// actor, is not delegated and passes (the method's [`Rule`](crate::Rule) decides it).
    ///
    /// # Errors
    ///
    /// [`Denial::DelegationForbidden`] for a delegated call under
    /// [`Forbidden`](Self::Forbidden); [`Denial::ActorNotAllowed`] when the current actor is
    /// not listed (or has no `sub`).
    ///
    /// ```
    /// use oauth_grpc::{Actor, Delegation, Denial, Principal};
    ///
    /// let user = Principal::builder().subject("alice").build();
    /// let agent = Principal::builder()
    ///     .subject("alice")
    ///     .actor(Actor::new(Some("assistant".into()), None))
    ///     .build();
    /// assert_eq!(Delegation::Forbidden.evaluate(Some(&user)), Ok(()));
    /// assert_eq!(Delegation::Forbidden.evaluate(Some(&agent)), Err(Denial::DelegationForbidden));
    /// assert_eq!(Delegation::Actors(&["assistant"]).evaluate(Some(&agent)), Ok(()));
    /// assert_eq!(Delegation::Actors(&["billing"]).evaluate(Some(&agent)), Err(Denial::ActorNotAllowed));
    /// ```
    pub fn evaluate(&self, principal: Option<&Principal>) -> Result<(), Denial> {
        let Some(actor) = principal.and_then(Principal::actor) else {
            return Ok(());
        };
        match self {
            Self::Allowed => Ok(()),
            Self::Forbidden => Err(Denial::DelegationForbidden),
            Self::Actors(allowed) => match actor.subject() {
                Some(sub) if allowed.contains(&sub) => Ok(()),
                _ => Err(Denial::ActorNotAllowed),
            },
        }
    }

    /// Whether delegated calls are admitted at all, by some actor.
    ///
    /// ```
    /// # use oauth_grpc::Delegation;
    /// assert!(Delegation::Actors(&["assistant"]).admits_delegation());
    /// assert!(!Delegation::Forbidden.admits_delegation());
    /// ```
    pub const fn admits_delegation(&self) -> bool {
        !matches!(self, Self::Forbidden)
    }

    /// The actors listed, empty unless [`Actors`](Self::Actors).
    ///
    /// ```
    /// # use oauth_grpc::Delegation;
    /// assert_eq!(Delegation::Actors(&["assistant"]).actors(), ["assistant"]);
    /// assert!(Delegation::Allowed.actors().is_empty());
    /// ```
    pub const fn actors(&self) -> &'static [&'static str] {
        match self {
            Self::Actors(actors) => actors,
            Self::Allowed | Self::Forbidden => &[],
        }
    }

    /// The policy's short name, as reports show it: `allow`, `forbid` or `actors`.
    ///
    /// ```
    /// # use oauth_grpc::Delegation;
    /// assert_eq!(Delegation::Forbidden.as_str(), "forbid");
    /// ```
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Allowed => "allow",
            Self::Forbidden => "forbid",
            Self::Actors(_) => "actors",
        }
    }
}

impl fmt::Display for Delegation {
    /// Writes the policy as the attribute does: `allow`, `forbid`, `actors(assistant, billing)`.
    ///
    /// ```
    /// # use oauth_grpc::Delegation;
    /// assert_eq!(Delegation::Actors(&["a", "b"]).to_string(), "actors(a, b)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Actors(actors) => write!(f, "actors({})", actors.join(", ")),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Actor;

    fn delegated(actor: Option<&str>, prior: Option<&str>) -> Principal {
        let mut act = Actor::new(actor.map(str::to_owned), None);
        if let Some(prior) = prior {
            act = act.acting_for(Actor::new(Some(prior.to_owned()), None));
        }
        Principal::builder().subject("alice").actor(act).build()
    }

    #[test]
    fn only_the_current_actor_is_matched() {
        const ONLY: Delegation = Delegation::Actors(&["assistant"]);
        // A listed actor that acts for an unlisted one: the prior actor is informational.
        assert_eq!(
            ONLY.evaluate(Some(&delegated(Some("assistant"), Some("x")))),
            Ok(())
        );
        // An unlisted actor acting for a listed one is refused.
        assert_eq!(
            ONLY.evaluate(Some(&delegated(Some("x"), Some("assistant")))),
            Err(Denial::ActorNotAllowed)
        );
        // No `sub` (the validator refuses such tokens; a hand-built principal may have it).
        assert_eq!(
            ONLY.evaluate(Some(&delegated(None, None))),
            Err(Denial::ActorNotAllowed)
        );
        // Exact comparison: no prefix, no case folding.
        assert_eq!(
            ONLY.evaluate(Some(&delegated(Some("Assistant"), None))),
            Err(Denial::ActorNotAllowed)
        );
        assert_eq!(
            ONLY.evaluate(Some(&delegated(Some("assistant2"), None))),
            Err(Denial::ActorNotAllowed)
        );
    }

    #[test]
    fn direct_and_anonymous_calls_pass_every_policy() {
        let user = Principal::builder().subject("alice").build();
        for policy in [
            Delegation::Allowed,
            Delegation::Forbidden,
            Delegation::Actors(&[]),
        ] {
            assert_eq!(policy.evaluate(Some(&user)), Ok(()));
            assert_eq!(policy.evaluate(None), Ok(()));
        }
        assert_eq!(
            Delegation::Allowed.evaluate(Some(&delegated(Some("any"), None))),
            Ok(())
        );
    }
}
