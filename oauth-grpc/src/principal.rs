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
    /// The TLS client certificate of the call's connection: per call, while the token's
    /// part is shared with the verified-token cache.
    certificate: Option<Arc<ClientCertificate>>,
    /// The RFC 7638 thumbprint of the key of the call's verified DPoP proof: per call too.
    proof_key: Option<Arc<str>>,
}

#[derive(Clone, Default, PartialEq)]
struct Inner {
    subject: Option<String>,
    client_id: Option<String>,
    issuer: Option<Arc<str>>,
    audiences: Vec<String>,
    scopes: ScopeSet,
    expires_at: Option<SystemTime>,
    token_id: Option<String>,
    actor: Option<Actor>,
    confirmation: Option<Confirmation>,
    /// A verified JWT's `iat`, read with the other checks (the revocation list compares it).
    issued_at: Option<u64>,
    claims: RawClaims,
}

/// The raw claims: a map, or the JSON text of a verified token's payload, read into a map
/// the first time a handler asks (the checks read the payload without one, and a cached
/// principal keeps the compact text).
#[derive(Clone)]
enum RawClaims {
    Map(serde_json::Map<String, serde_json::Value>),
    Json {
        json: Box<str>,
        map: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>>,
    },
}

impl Default for RawClaims {
    fn default() -> Self {
        Self::Map(serde_json::Map::new())
    }
}

impl RawClaims {
    /// The text of a payload the validator parsed already, under the same rules (unique
    /// names), so reading it again does not fail; an empty map if it ever did.
    fn parse(json: &str) -> serde_json::Map<String, serde_json::Value> {
        crate::validate::json_object(json.as_bytes()).unwrap_or_default()
    }

    fn map(&self) -> &serde_json::Map<String, serde_json::Value> {
        match self {
            Self::Map(map) => map,
            Self::Json { json, map } => map.get_or_init(|| Self::parse(json)),
        }
    }

    fn into_map(self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Self::Map(map) => map,
            Self::Json { json, map } => map.into_inner().unwrap_or_else(|| Self::parse(&json)),
        }
    }
}

impl PartialEq for RawClaims {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Json { json: a, .. }, Self::Json { json: b, .. }) if a == b => true,
            _ => self.map() == other.map(),
        }
    }
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

    /// [`issuer`](Self::issuer), shared (a metric attribute without a copy).
    pub(crate) fn issuer_shared(&self) -> Option<&Arc<str>> {
        self.inner.issuer.as_ref()
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

    /// Every actor of the delegation chain, outermost first: the current actor (the one
    /// calling, [`actor`](Self::actor)), then the one it acts for, and so on (RFC 8693 §4.1
    /// nested `act`). Empty for a direct call. The subject itself is
    /// [`subject`](Self::subject), never part of the chain.
    ///
    /// ```
    /// use oauth_grpc::{Actor, Principal};
    ///
    /// let p = Principal::builder()
    ///     .subject("alice")
    ///     .actor(Actor::new(Some("assistant".into()), None)
    ///         .acting_for(Actor::new(Some("planner".into()), None)))
    ///     .build();
    /// let chain: Vec<_> = p.delegation_chain().filter_map(Actor::subject).collect();
    /// assert_eq!(chain, ["assistant", "planner"]);
    /// ```
    pub fn delegation_chain(&self) -> impl Iterator<Item = &Actor> + '_ {
        std::iter::successors(self.actor(), |actor| actor.actor())
    }

    /// Whether the call is delegated: the token names an actor (RFC 8693 `act`) calling on
    /// the subject's behalf.
    ///
    /// ```
    /// # use oauth_grpc::{Actor, Principal};
    /// assert!(!Principal::builder().subject("alice").build().is_delegated());
    /// let p = Principal::builder().actor(Actor::new(Some("agent".into()), None)).build();
    /// assert!(p.is_delegated());
    /// ```
    pub fn is_delegated(&self) -> bool {
        self.inner.actor.is_some()
    }

    /// What the token is bound to (its `cnf` claim, RFC 7800), if it is bound.
    ///
    /// ```
    /// # use oauth_grpc::{Confirmation, Principal};
    /// let thumbprint = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    /// let p = Principal::builder().confirmation(Confirmation::certificate(thumbprint)).build();
    /// assert_eq!(p.confirmation().unwrap().certificate_thumbprint(), Some(thumbprint));
    /// ```
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.inner.confirmation.as_ref()
    }

    /// The TLS client certificate the call came with, when the connection is mutual TLS:
    /// its thumbprint, subject and subject alternative names (a SPIFFE ID is a SAN URI).
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// assert!(Principal::builder().build().client_certificate().is_none());
    /// ```
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.certificate.as_deref()
    }

    /// The RFC 7638 thumbprint of the public key of the call's DPoP proof (RFC 9449), when
    /// the call came with the `DPoP` scheme and its proof was verified: the key the token's
    /// `cnf.jkt` names.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// assert!(Principal::builder().build().dpop_key_thumbprint().is_none());
    /// ```
    pub fn dpop_key_thumbprint(&self) -> Option<&str> {
        self.proof_key.as_deref()
    }

    /// Whether the token is bound to something this call proved to hold: the client
    /// certificate of the call's connection (RFC 8705 §3, `cnf.x5t#S256`), or the key of
    /// the call's DPoP proof (RFC 9449, `cnf.jkt`). Whoever stole such a token cannot use it
    /// without that private key. The layer refuses a bound token on any call that does not
    /// prove its key, so on a call it admitted this is `true` for every bound token.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// assert!(!Principal::builder().build().is_sender_constrained());
    /// ```
    pub fn is_sender_constrained(&self) -> bool {
        let Some(cnf) = self.confirmation() else {
            return false;
        };
        let certificate = cnf.certificate_thumbprint().map(|bound| {
            self.client_certificate()
                .is_some_and(|certificate| certificate.thumbprint() == bound)
        });
        let key = cnf
            .key_thumbprint()
            .map(|bound| self.dpop_key_thumbprint() == Some(bound));
        match (certificate, key) {
            (None, None) => false,
            (certificate, key) => certificate.unwrap_or(true) && key.unwrap_or(true),
        }
    }

    /// How the call proved the token is its own: `"mtls"`, `"dpop"`, `"mtls+dpop"`, or
    /// `None` for a plain bearer token. For audit records.
    pub(crate) fn binding(&self) -> Option<&'static str> {
        if !self.is_sender_constrained() {
            return None;
        }
        let cnf = self.confirmation()?;
        match (cnf.certificate_thumbprint(), cnf.key_thumbprint()) {
            (Some(_), Some(_)) => Some("mtls+dpop"),
            (Some(_), None) => Some("mtls"),
            (None, Some(_)) => Some("dpop"),
            (None, None) => None,
        }
    }

    /// The same principal, with the key of the call's verified DPoP proof.
    pub(crate) fn with_proof_key(mut self, thumbprint: Option<Arc<str>>) -> Self {
        self.proof_key = thumbprint;
        self
    }

    /// The same principal, on a connection with `certificate`.
    pub(crate) fn with_client_certificate(
        mut self,
        certificate: Option<Arc<ClientCertificate>>,
    ) -> Self {
        self.certificate = certificate;
        self
    }

    /// Every claim of the token as JSON, for claims this type has no accessor for.
    ///
    /// A verified JWT's principal holds its payload as the JSON text it was signed as; the
    /// first call reads it into this map (once per principal, shared by its clones and by
    /// the verified-token cache), so calls that never look at raw claims never pay for it.
    ///
    /// ```
    /// # use oauth_grpc::Principal;
    /// let p = Principal::builder().claim("tenant", "acme".into()).build();
    /// assert_eq!(p.claims()["tenant"], "acme");
    /// ```
    pub fn claims(&self) -> &serde_json::Map<String, serde_json::Value> {
        self.inner.claims.map()
    }

    /// The token's `iat` in seconds, without reading a verified payload's raw claims: the
    /// validator's, else an integer `iat` among claims given as a map (introspection).
    pub(crate) fn issued_at(&self) -> Option<u64> {
        self.inner.issued_at.or_else(|| match &self.inner.claims {
            RawClaims::Map(map) => map.get("iat").and_then(serde_json::Value::as_u64),
            // A verified payload's `iat`, when it has one, is `issued_at` already.
            RawClaims::Json { .. } => None,
        })
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
            .field("confirmation", &self.inner.confirmation)
            .field("client_certificate", &self.certificate)
            .field("dpop_key", &self.proof_key)
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
    certificate: Option<Arc<ClientCertificate>>,
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
        self.inner.issuer = Some(Arc::from(issuer.into()));
        self
    }

    /// Sets `iss` to a trusted issuer's name, shared with every principal it accepts.
    pub(crate) fn issuer_shared(mut self, issuer: Arc<str>) -> Self {
        self.inner.issuer = Some(issuer);
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

    /// Sets what the token is bound to (`cnf`).
    ///
    /// ```
    /// # use oauth_grpc::{Confirmation, Principal};
    /// let p = Principal::builder().confirmation(Confirmation::certificate("x")).build();
    /// # assert!(p.confirmation().is_some());
    /// ```
    #[must_use]
    pub fn confirmation(mut self, confirmation: Confirmation) -> Self {
        self.inner.confirmation = Some(confirmation);
        self
    }

    /// Sets the TLS client certificate of the call, for tests of handlers that read it.
    ///
    /// ```
    /// # use oauth_grpc::{ClientCertificate, Principal};
    /// # fn test(der: &[u8]) -> Result<(), oauth_grpc::CertificateError> {
    /// let p = Principal::builder()
    ///     .client_certificate(ClientCertificate::from_der(der)?)
    ///     .build();
    /// # assert!(p.client_certificate().is_some());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.certificate = Some(Arc::new(certificate));
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
        let mut claims = std::mem::take(&mut self.inner.claims).into_map();
        claims.insert(name.into(), value);
        self.inner.claims = RawClaims::Map(claims);
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
        self.inner.claims = RawClaims::Map(claims);
        self
    }

    /// The verified token's `iat`, in seconds.
    pub(crate) fn issued_at(mut self, iat: u64) -> Self {
        self.inner.issued_at = Some(iat);
        self
    }

    /// The raw claims as a verified payload's JSON text, read into a map when first asked.
    pub(crate) fn claims_json(mut self, json: Box<str>) -> Self {
        self.inner.claims = RawClaims::Json {
            json,
            map: std::sync::OnceLock::new(),
        };
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
            certificate: self.certificate,
            proof_key: None,
        }
    }
}

/// What a token is bound to: the confirmation (`cnf`, RFC 7800) its issuer put in it. A
/// bound token is accepted only from the holder of the bound key; the layer checks it on
/// every call.
///
/// ```
/// use oauth_grpc::Confirmation;
///
/// let cnf = Confirmation::certificate("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2");
/// assert_eq!(cnf.certificate_thumbprint(), Some("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Confirmation {
    certificate: Option<String>,
    key: Option<String>,
}

impl Confirmation {
    /// Bound to a TLS client certificate (RFC 8705 §3.1 `x5t#S256`): the SHA-256 of its DER
    /// encoding, base64url without padding.
    ///
    /// ```
    /// # use oauth_grpc::Confirmation;
    /// assert!(Confirmation::certificate("t").certificate_thumbprint().is_some());
    /// ```
    pub fn certificate(thumbprint: impl Into<String>) -> Self {
        Self {
            certificate: Some(thumbprint.into()),
            key: None,
        }
    }

    /// Bound to a DPoP key (RFC 9449 §6 `jkt`): the RFC 7638 SHA-256 thumbprint of the
    /// public key, base64url without padding.
    ///
    /// ```
    /// # use oauth_grpc::Confirmation;
    /// let cnf = Confirmation::dpop_key("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    /// assert_eq!(cnf.key_thumbprint(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
    /// assert_eq!(cnf.certificate_thumbprint(), None);
    /// ```
    pub fn dpop_key(thumbprint: impl Into<String>) -> Self {
        Self {
            certificate: None,
            key: Some(thumbprint.into()),
        }
    }

    /// The same confirmation, bound to a DPoP key too: a token with both `x5t#S256` and
    /// `jkt` must be presented over the certificate's connection with a proof of the key.
    ///
    /// ```
    /// # use oauth_grpc::Confirmation;
    /// let cnf = Confirmation::certificate("c").with_dpop_key("k");
    /// assert_eq!((cnf.certificate_thumbprint(), cnf.key_thumbprint()), (Some("c"), Some("k")));
    /// ```
    #[must_use]
    pub fn with_dpop_key(mut self, thumbprint: impl Into<String>) -> Self {
        self.key = Some(thumbprint.into());
        self
    }

    /// The `jkt` thumbprint of the DPoP key the token is bound to, if it is.
    ///
    /// ```
    /// # use oauth_grpc::Confirmation;
    /// assert_eq!(Confirmation::dpop_key("k").key_thumbprint(), Some("k"));
    /// ```
    pub fn key_thumbprint(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The `x5t#S256` thumbprint of the certificate the token is bound to, if it is.
    ///
    /// ```
    /// # use oauth_grpc::Confirmation;
    /// assert_eq!(Confirmation::certificate("t").certificate_thumbprint(), Some("t"));
    /// ```
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.certificate.as_deref()
    }
}

/// The TLS client certificate of a mutual-TLS connection, as the handler and the audit log
/// see it: its thumbprint and who it names. Made by the layer from the connection's leaf
/// certificate (verified by the TLS handshake against the server's client CA).
///
/// ```
/// # use oauth_grpc::ClientCertificate;
/// fn spiffe_id(certificate: &ClientCertificate) -> Option<&str> {
///     certificate.spiffe_id()
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub(crate) thumbprint: String,
    pub(crate) subject: String,
    pub(crate) uris: Vec<String>,
    pub(crate) dns_names: Vec<String>,
}

impl ClientCertificate {
    /// The SHA-256 of the certificate's DER encoding, base64url without padding: the value
    /// a bound token carries in `cnf.x5t#S256` (RFC 8705 §3.1).
    ///
    /// ```
    /// # use oauth_grpc::ClientCertificate;
    /// # fn test(der: &[u8]) -> Result<(), oauth_grpc::CertificateError> {
    /// let certificate = ClientCertificate::from_der(der)?;
    /// assert_eq!(certificate.thumbprint(), ClientCertificate::thumbprint_of(der));
    /// # Ok(())
    /// # }
    /// ```
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The SHA-256 thumbprint of a DER certificate, as [`thumbprint`](Self::thumbprint)
    /// gives it: for minting bound tokens in tests, or for allow-lists.
    ///
    /// ```
    /// # use oauth_grpc::ClientCertificate;
    /// // The SHA-256 of no bytes.
    /// assert_eq!(ClientCertificate::thumbprint_of(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    /// ```
    pub fn thumbprint_of(der: &[u8]) -> String {
        use base64::Engine as _;
        use sha2::{Digest, Sha256};
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
    }

    /// The subject's distinguished name, RFC 4514 style (`CN=client-a,O=Orders`); empty
    /// when the certificate names its holder only in SANs, as SPIFFE certificates do.
    ///
    /// ```
    /// # use oauth_grpc::ClientCertificate;
    /// fn common_name_line(c: &ClientCertificate) -> String {
    ///     format!("client {}", c.subject())
    /// }
    /// ```
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The URIs among its subject alternative names.
    ///
    /// ```
    /// # use oauth_grpc::ClientCertificate;
    /// fn uris(c: &ClientCertificate) -> &[String] {
    ///     c.uris()
    /// }
    /// ```
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The DNS names among its subject alternative names.
    ///
    /// ```
    /// # use oauth_grpc::ClientCertificate;
    /// fn names(c: &ClientCertificate) -> &[String] {
    ///     c.dns_names()
    /// }
    /// ```
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The workload's SPIFFE ID: the SAN URI starting with `spiffe://`, if there is exactly
    /// one (a SPIFFE X.509-SVID carries exactly one URI SAN; two would be ambiguous).
    ///
    /// ```
    /// # use oauth_grpc::ClientCertificate;
    /// fn workload(c: &ClientCertificate) -> &str {
    ///     c.spiffe_id().unwrap_or("not a SPIFFE workload")
    /// }
    /// ```
    pub fn spiffe_id(&self) -> Option<&str> {
        let mut ids = self.uris.iter().filter(|uri| uri.starts_with("spiffe://"));
        match (ids.next(), ids.next()) {
            (Some(id), None) => Some(id),
            _ => None,
        }
    }
}
