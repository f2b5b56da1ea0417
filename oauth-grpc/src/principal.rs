//! The verified caller: [`Principal`] and the [`Actor`] chain of delegated tokens. Data only:
//! the validator makes principals, the layer puts them into requests, and handlers read them
//! with [`RequestPrincipal`](crate::RequestPrincipal).
//!
//! ```
//! use oauth_grpc::{Actor, Principal};
//!
//! let caller = Principal::builder()
//!     .subject("alice")
//!     .scopes(["orders:read"])
//!     .actor(Actor::new(Some("agent-7".into()), None))
//!     .build();
//! assert_eq!(caller.subject(), Some("alice"));
//! assert_eq!(caller.actor().and_then(Actor::subject), Some("agent-7"));
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::scope::ScopeSet;

/// A party acting on behalf of the token's subject (RFC 8693 §4.1 `act`).
///
/// Delegation can nest: the actor may itself act for another, listed in [`Actor::actor`].
///
/// ```
/// use oauth_grpc::Actor;
///
/// let agent = Actor::new(Some("agent-7".into()), Some("billing-bot".into()));
/// assert_eq!(agent.subject(), Some("agent-7"));
/// assert!(agent.actor().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    subject: Option<String>,
    client_id: Option<String>,
    actor: Option<Box<Actor>>,
}

impl Actor {
    /// An actor with its subject and client id.
    ///
    /// ```
    /// # use oauth_grpc::Actor;
    /// let actor = Actor::new(None, Some("gateway".into()));
    /// assert_eq!(actor.client_id(), Some("gateway"));
    /// ```
    pub fn new(subject: Option<String>, client_id: Option<String>) -> Self {
        Self {
            subject,
            client_id,
            actor: None,
        }
    }

    /// Records that this actor in turn acts for `prior`.
    ///
    /// ```
    /// # use oauth_grpc::Actor;
    /// let chain = Actor::new(Some("svc-a".into()), None)
    ///     .acting_for(Actor::new(Some("svc-b".into()), None));
    /// assert_eq!(chain.actor().unwrap().subject(), Some("svc-b"));
    /// ```
    #[must_use]
    pub fn acting_for(mut self, prior: Actor) -> Self {
        self.actor = Some(Box::new(prior));
        self
    }

    /// The actor's `sub`.
    ///
    /// ```
    /// # use oauth_grpc::Actor;
    /// assert_eq!(Actor::new(Some("a".into()), None).subject(), Some("a"));
    /// ```
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The actor's `client_id`.
    ///
    /// ```
    /// # use oauth_grpc::Actor;
    /// assert_eq!(Actor::new(None, Some("c".into())).client_id(), Some("c"));
    /// ```
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The next actor in the delegation chain, if any.
    ///
    /// ```
    /// # use oauth_grpc::Actor;
    /// assert!(Actor::new(None, None).actor().is_none());
    /// ```
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_deref()
    }
}

/// The verified identity behind a call: who the token was issued to and what it allows.
///
/// Made by the validator from a token that passed every check; cheap to clone (one shared
/// allocation). Tests build one with [`Principal::builder`].
///
/// ```
/// use oauth_grpc::Principal;
///
/// let principal = Principal::builder()
///     .subject("alice")
///     .client_id("orders-web")
///     .issuer("https://idp.example.com/")
///     .audiences(["orders-api"])
///     .scopes(["orders:read", "orders:write"])
///     .build();
/// assert_eq!(principal.subject(), Some("alice"));
/// assert!(principal.scopes().contains("orders:write"));
/// assert!(principal.has_scope("orders:read"));
/// ```
#[derive(Clone, PartialEq)]
pub struct Principal {
    inner: Arc<Inner>,
}

#[derive(Clone, Default, PartialEq)]
struct Inner {
    subject: Option<String>,
    client_id: Option<String>,
    issuer: Option<String>,
    audiences: Vec<String>,
    scopes: ScopeSet,
    expires_at: Option<SystemTime>,
    token_id: Option<String>,
    actor: Option<Actor>,
    claims: serde_json::Map<String, serde_json::Value>,
}

impl Principal {
    /// Starts a principal; every field is optional.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let anonymous = Principal::builder().build();
    /// assert!(anonymous.subject().is_none());
    /// assert!(anonymous.scopes().is_empty());
    /// ```
    pub fn builder() -> PrincipalBuilder {
        PrincipalBuilder::default()
    }

    /// The token's subject (`sub`): the user, or for client-credentials tokens usually the
    /// client.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// assert_eq!(Principal::builder().subject("bob").build().subject(), Some("bob"));
    /// ```
    pub fn subject(&self) -> Option<&str> {
        self.inner.subject.as_deref()
    }

    /// The OAuth client the token was issued to (`client_id`, or `azp`).
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// assert_eq!(Principal::builder().client_id("web").build().client_id(), Some("web"));
    /// ```
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// The issuer (`iss`) that signed or vouched for the token.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().issuer("https://idp/").build();
    /// assert_eq!(p.issuer(), Some("https://idp/"));
    /// ```
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// The audiences (`aud`) the token names.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().audiences(["a", "b"]).build();
    /// assert_eq!(p.audiences(), ["a", "b"]);
    /// ```
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// The scopes the token grants.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().scopes(["a"]).build();
    /// assert!(p.scopes().contains("a"));
    /// ```
    pub fn scopes(&self) -> &ScopeSet {
        &self.inner.scopes
    }

    /// Whether the token grants exactly `scope`.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().scopes(["orders:write"]).build();
    /// assert!(p.has_scope("orders:write"));
    /// assert!(!p.has_scope("orders:writ"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.contains(scope)
    }

    /// When the token expires (`exp`).
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// let at = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
    /// assert_eq!(Principal::builder().expires_at(at).build().expires_at(), Some(at));
    /// ```
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner.expires_at
    }

    /// The token's unique id (`jti`), for audit trails.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// assert_eq!(Principal::builder().token_id("t-1").build().token_id(), Some("t-1"));
    /// ```
    pub fn token_id(&self) -> Option<&str> {
        self.inner.token_id.as_deref()
    }

    /// Who acts on the subject's behalf (RFC 8693 `act`), if the token was obtained by
    /// delegation.
    ///
    /// ```
    /// # use oauth_grpc::{Actor, Principal};
    /// let p = Principal::builder().actor(Actor::new(Some("agent".into()), None)).build();
    /// assert_eq!(p.actor().unwrap().subject(), Some("agent"));
    /// ```
    pub fn actor(&self) -> Option<&Actor> {
        self.inner.actor.as_ref()
    }

    /// Every claim of the token as JSON, for claims this type has no accessor for.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().claim("tenant", "acme".into()).build();
    /// assert_eq!(p.claims()["tenant"], "acme");
    /// ```
    pub fn claims(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.inner.claims
    }
}

impl fmt::Debug for Principal {
    /// Shows the identity and scopes; leaves out the raw claims, which may hold personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.inner.subject)
            .field("client_id", &self.inner.client_id)
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("scopes", &self.inner.scopes)
            .field("expires_at", &self.inner.expires_at)
            .field("token_id", &self.inner.token_id)
            .field("actor", &self.inner.actor)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Principal`]. Made by [`Principal::builder`].
///
/// ```
/// # use oauth_grpc::Principal;
/// let p = Principal::builder().subject("svc").scopes(["a", "b"]).build();
/// assert_eq!(p.scopes().len(), 2);
/// ```
#[derive(Debug, Default, Clone)]
pub struct PrincipalBuilder {
    inner: Inner,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl PrincipalBuilder {
    /// Sets `sub`.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert_eq!(Principal::builder().subject("a").build().subject(), Some("a"));
    /// ```
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.inner.subject = Some(subject.into());
        self
    }

    /// Sets the client id.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert_eq!(Principal::builder().client_id("c").build().client_id(), Some("c"));
    /// ```
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.inner.client_id = Some(client_id.into());
        self
    }

    /// Sets `iss`.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert_eq!(Principal::builder().issuer("i").build().issuer(), Some("i"));
    /// ```
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

    /// Sets `aud`.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert_eq!(Principal::builder().audiences(["x"]).build().audiences(), ["x"]);
    /// ```
    #[must_use]
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the granted scopes; malformed ones are dropped (see [`ScopeSet`]).
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert!(Principal::builder().scopes(["x"]).build().has_scope("x"));
    /// ```
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inner.scopes = scopes.into_iter().collect();
        self
    }

    /// Sets the granted scopes from a ready [`ScopeSet`].
    ///
    /// ```
    /// # use oauth_grpc::{Principal, ScopeSet};
    /// let p = Principal::builder().scope_set(ScopeSet::from_space_delimited("a b")).build();
    /// # assert!(p.has_scope("b"));
    /// ```
    #[must_use]
    pub fn scope_set(mut self, scopes: ScopeSet) -> Self {
        self.inner.scopes = scopes;
        self
    }

    /// Sets `exp`.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # use std::time::UNIX_EPOCH;
    /// # assert!(Principal::builder().expires_at(UNIX_EPOCH).build().expires_at().is_some());
    /// ```
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.inner.expires_at = Some(at);
        self
    }

    /// Sets `jti`.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert_eq!(Principal::builder().token_id("j").build().token_id(), Some("j"));
    /// ```
    #[must_use]
    pub fn token_id(mut self, jti: impl Into<String>) -> Self {
        self.inner.token_id = Some(jti.into());
        self
    }

    /// Sets the RFC 8693 actor chain.
    ///
    /// ```
    /// # use oauth_grpc::{Actor, Principal};
    /// # assert!(Principal::builder().actor(Actor::new(None, None)).build().actor().is_some());
    /// ```
    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.inner.actor = Some(actor);
        self
    }

    /// Adds one raw claim.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// # assert_eq!(Principal::builder().claim("k", 1.into()).build().claims()["k"], 1);
    /// ```
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.inner.claims.insert(name.into(), value);
        self
    }

    /// Replaces all raw claims.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let claims = serde_json::json!({"sub": "a"}).as_object().cloned().unwrap();
    /// # assert_eq!(Principal::builder().claims(claims).build().claims().len(), 1);
    /// ```
    #[must_use]
    pub fn claims(mut self, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        self.inner.claims = claims;
        self
    }

    /// Finishes the principal.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().build();
    /// # assert!(p.client_id().is_none());
    /// ```
    pub fn build(self) -> Principal {
        Principal {
            inner: Arc::new(self.inner),
        }
    }
}
