//! One audit event per access decision, never carrying the token.
//!
//! The default sink, [`TracingSink`], emits a `tracing` event with target
//! `oauth_grpc::audit`: `INFO` for allowed calls, `WARN` for refused ones. Any
//! `Fn(&AuditEvent)` is a sink too:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use oauth_grpc::audit::{AuditEvent, AuditSink, Decision};
//!
//! let denied = Arc::new(Mutex::new(0));
//! let counter = denied.clone();
//! let sink = move |event: &AuditEvent<'_>| {
//!     if event.decision == Decision::Deny {
//!         *counter.lock().unwrap() += 1;
//!     }
//! };
//! # let _: &dyn AuditSink = &sink;
//! ```

use std::fmt;
use std::net::SocketAddr;

use crate::policy::Rule;
use crate::principal::{Actor, ClientCertificate, Principal};

/// Whether a call was let through.
///
/// ```
/// use oauth_grpc::audit::Decision;
/// assert_eq!(Decision::Allow.as_str(), "allow");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The call reached the service.
    Allow,
    /// The call was refused before the service ran.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    ///
    /// ```
    /// # use oauth_grpc::audit::Decision;
    /// assert_eq!(Decision::Deny.as_str(), "deny");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// One access decision.
///
/// ```
/// use oauth_grpc::audit::{AuditEvent, Decision};
/// use oauth_grpc::Rule;
///
/// let event = AuditEvent::new(Decision::Allow, "public", "/grpc.health.v1.Health/Check")
///     .with_rule(Rule::Public);
/// assert_eq!(event.rule, Some(Rule::Public));
/// assert!(event.principal.is_none());
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// Allowed or refused.
    pub decision: Decision,
    /// Why: `authorized`, `public`, or the refusal code (`missing_token`, `expired`,
    /// `insufficient_scope`, …; see [`AuthError::code`](crate::AuthError::code)).
    pub reason: &'static str,
    /// The gRPC path, e.g. `/orders.v1.Orders/CreateOrder`.
    pub path: &'a str,
    /// The rule that applied, if the path has one.
    pub rule: Option<Rule>,
    /// The verified caller, if the token was valid.
    pub principal: Option<&'a Principal>,
    /// The client's address, when the transport knows it (plain TCP or TLS).
    pub peer: Option<SocketAddr>,
    /// The TLS client certificate of the connection, under mutual TLS: its thumbprint,
    /// subject and SANs (a SPIFFE ID), whether the call was allowed or refused.
    pub client_certificate: Option<&'a ClientCertificate>,
}

impl<'a> AuditEvent<'a> {
    /// An event without rule, principal or peer.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, Decision};
    /// let event = AuditEvent::new(Decision::Deny, "no_rule", "/x.Y/Z");
    /// assert_eq!(event.reason, "no_rule");
    /// ```
    pub fn new(decision: Decision, reason: &'static str, path: &'a str) -> Self {
        Self {
            decision,
            reason,
            path,
            rule: None,
            principal: None,
            peer: None,
            client_certificate: None,
        }
    }

    /// Sets the rule.
    ///
    /// ```
    /// # use oauth_grpc::{Rule, audit::{AuditEvent, Decision}};
    /// let event = AuditEvent::new(Decision::Allow, "authorized", "/x.Y/Z").with_rule(Rule::Authenticated);
    /// # assert!(event.rule.is_some());
    /// ```
    #[must_use]
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rule = Some(rule);
        self
    }

    /// Sets the principal.
    ///
    /// ```
    /// # use oauth_grpc::{Principal, audit::{AuditEvent, Decision}};
    /// let alice = Principal::builder().subject("alice").build();
    /// let event = AuditEvent::new(Decision::Allow, "authorized", "/x.Y/Z").with_principal(&alice);
    /// # assert!(event.principal.is_some());
    /// ```
    #[must_use]
    pub fn with_principal(mut self, principal: &'a Principal) -> Self {
        self.principal = Some(principal);
        self
    }

    /// Sets the peer address.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, Decision};
    /// let event = AuditEvent::new(Decision::Allow, "public", "/x.Y/Z")
    ///     .with_peer("127.0.0.1:5000".parse().ok());
    /// # assert!(event.peer.is_some());
    /// ```
    #[must_use]
    pub fn with_peer(mut self, peer: Option<SocketAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Records the connection's TLS client certificate.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, Decision};
    /// let event = AuditEvent::new(Decision::Allow, "public", "/x.Y/Z").with_client_certificate(None);
    /// # assert!(event.client_certificate.is_none());
    /// ```
    #[must_use]
    pub fn with_client_certificate(mut self, certificate: Option<&'a ClientCertificate>) -> Self {
        self.client_certificate = certificate;
        self
    }
}

/// Where decisions go. Implemented for every `Fn(&AuditEvent) + Send + Sync`.
///
/// ```
/// use oauth_grpc::audit::{AuditEvent, AuditSink};
///
/// #[derive(Debug)]
/// struct Stdout;
/// impl AuditSink for Stdout {
///     fn record(&self, event: &AuditEvent<'_>) {
///         println!("{} {} {}", event.decision.as_str(), event.reason, event.path);
///     }
/// }
/// ```
pub trait AuditSink: Send + Sync + 'static {
    /// Records one decision. Called on the request path: keep it quick.
    fn record(&self, event: &AuditEvent<'_>);
}

impl<F> AuditSink for F
where
    F: Fn(&AuditEvent<'_>) + Send + Sync + 'static,
{
    fn record(&self, event: &AuditEvent<'_>) {
        self(event)
    }
}

/// The default sink: a structured `tracing` event, target `oauth_grpc::audit`, at `INFO` for
/// an allow and `WARN` for a deny — except calls to paths without a rule (`no_rule`,
/// `pass_through`), at `DEBUG`: the layer counts those and warns at most once a minute.
///
/// Fields: `decision`, `reason`, `rpc`, `rule`, `required`, `granted`, `subject`,
/// `client_id`, `issuer`, `jti`, `actor` (the delegation chain of RFC 8693 `act`, outermost
/// first, joined by ` > `), `peer`, and under mutual TLS `client_cert` (the
/// certificate's SHA-256 thumbprint), `client_cert_subject` and `spiffe_id`; under DPoP
/// `dpop_jkt` (the RFC 7638 thumbprint of the proof's key); `bound` is whether the token was
/// bound to what the call proved to hold, and `binding` how (`mtls`, `dpop`, `mtls+dpop`).
/// Absent values are empty strings.
///
/// ```
/// use oauth_grpc::audit::{AuditEvent, AuditSink, Decision, TracingSink};
/// TracingSink.record(&AuditEvent::new(Decision::Deny, "missing_token", "/x.Y/Z"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AuditSink for TracingSink {
    fn record(&self, event: &AuditEvent<'_>) {
        // A path without a rule is the caller's choice, one event per call: `debug`, so a
        // caller cannot flood the logs (the layer counts them and warns once a minute).
        let unruled = matches!(event.reason, "no_rule" | "pass_through");
        let level = match event.decision {
            _ if unruled => tracing::Level::DEBUG,
            Decision::Allow => tracing::Level::INFO,
            Decision::Deny => tracing::Level::WARN,
        };
        // Nothing is formatted when no subscriber wants the event.
        let enabled = match level {
            tracing::Level::DEBUG => {
                tracing::enabled!(target: "oauth_grpc::audit", tracing::Level::DEBUG)
            }
            tracing::Level::INFO => {
                tracing::enabled!(target: "oauth_grpc::audit", tracing::Level::INFO)
            }
            _ => tracing::enabled!(target: "oauth_grpc::audit", tracing::Level::WARN),
        };
        if !enabled {
            return;
        }
        let rule = Field(event.rule.map(|r| r.to_string()));
        let required = Field(
            event
                .rule
                .map(|r| crate::scope::join(r.scopes().iter().map(|s| s.as_str()))),
        );
        let p = event.principal;
        let granted = Field(p.map(|p| p.scopes().to_string()));
        let subject = p.and_then(Principal::subject).unwrap_or_default();
        let client_id = p.and_then(Principal::client_id).unwrap_or_default();
        let issuer = p.and_then(Principal::issuer).unwrap_or_default();
        let jti = p.and_then(Principal::token_id).unwrap_or_default();
        let actor = Field(p.and_then(Principal::actor).map(actor_chain));
        let peer = Field(event.peer.map(|a| a.to_string()));
        let certificate = event.client_certificate;
        let client_cert = certificate
            .map(ClientCertificate::thumbprint)
            .unwrap_or_default();
        let client_cert_subject = certificate
            .map(ClientCertificate::subject)
            .unwrap_or_default();
        let spiffe_id = certificate
            .and_then(ClientCertificate::spiffe_id)
            .unwrap_or_default();
        let bound = p.is_some_and(Principal::is_sender_constrained);
        let binding = p.and_then(Principal::binding).unwrap_or_default();
        let dpop_jkt = p
            .and_then(Principal::dpop_key_thumbprint)
            .unwrap_or_default();
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: "oauth_grpc::audit",
                    $level,
                    decision = event.decision.as_str(),
                    reason = event.reason,
                    rpc = event.path,
                    rule = %rule,
                    required = %required,
                    granted = %granted,
                    subject,
                    client_id,
                    issuer,
                    jti,
                    actor = %actor,
                    peer = %peer,
                    client_cert,
                    client_cert_subject,
                    spiffe_id,
                    dpop_jkt,
                    bound,
                    binding,
                    "access {}", event.decision.as_str()
                )
            };
        }
        match level {
            tracing::Level::DEBUG => emit!(tracing::Level::DEBUG),
            tracing::Level::INFO => emit!(tracing::Level::INFO),
            _ => emit!(tracing::Level::WARN),
        }
    }
}

/// `sub` (or client id) of each actor, outermost first, joined by ` > `.
fn actor_chain(actor: &Actor) -> String {
    std::iter::successors(Some(actor), |a| a.actor())
        .map(|a| a.subject().or(a.client_id()).unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(" > ")
}

struct Field(Option<String>);

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or_default())
    }
}
