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
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::SystemTime;

use crate::policy::Rule;
use crate::principal::{Actor, ClientCertificate, Principal};

mod log;
mod record;

pub use self::log::{JsonLines, JsonLinesBuilder, Overflow};
pub use self::record::{AuditRecord, RecordBinding, RecordCertificate, SCHEMA_VERSION};

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
    /// When the decision was made.
    pub time: SystemTime,
    /// The gRPC status code of the layer's answer: [`Code::Ok`](tonic::Code::Ok) for an
    /// admitted call, the refusal's code otherwise.
    pub code: tonic::Code,
    /// The W3C trace id of the call, from a valid `traceparent` metadata value: 32 lowercase
    /// hex digits.
    pub trace_id: Option<&'a str>,
    /// The first 16 hex digits of the SHA-256 of the call's token: follows one token's calls
    /// through the log and cannot be turned back into the token. `None` when no token was
    /// read (public calls, calls without one).
    pub token_fingerprint: Option<&'a str>,
}

impl<'a> AuditEvent<'a> {
    /// An event without rule, principal or peer, made now; its code is `OK` for an allow
    /// and `PERMISSION_DENIED` for a deny until [`with_code`](Self::with_code) says otherwise.
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
            time: SystemTime::now(),
            code: match decision {
                Decision::Allow => tonic::Code::Ok,
                Decision::Deny => tonic::Code::PermissionDenied,
            },
            trace_id: None,
            token_fingerprint: None,
        }
    }

    /// Sets the gRPC code of the answer.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, Decision};
    /// let event = AuditEvent::new(Decision::Deny, "missing_token", "/x.Y/Z")
    ///     .with_code(tonic::Code::Unauthenticated);
    /// assert_eq!(event.code as i32, 16);
    /// ```
    #[must_use]
    pub fn with_code(mut self, code: tonic::Code) -> Self {
        self.code = code;
        self
    }

    /// Sets the W3C trace id.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, Decision};
    /// let event = AuditEvent::new(Decision::Allow, "public", "/x.Y/Z")
    ///     .with_trace_id(Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// # assert!(event.trace_id.is_some());
    /// ```
    #[must_use]
    pub fn with_trace_id(mut self, trace_id: Option<&'a str>) -> Self {
        self.trace_id = trace_id;
        self
    }

    /// Sets the token's fingerprint.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, Decision};
    /// let event = AuditEvent::new(Decision::Deny, "expired", "/x.Y/Z")
    ///     .with_token_fingerprint(Some("9f86d081884c7d65"));
    /// # assert!(event.token_fingerprint.is_some());
    /// ```
    #[must_use]
    pub fn with_token_fingerprint(mut self, fingerprint: Option<&'a str>) -> Self {
        self.token_fingerprint = fingerprint;
        self
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

    /// Records one decision, or says the call must wait until the sink can take it: the
    /// layer calls this, and answers the call only once the returned [`Submission`] is
    /// done — `UNAVAILABLE` if it failed. By default [`record`](Self::record), done at once.
    ///
    /// ```
    /// use oauth_grpc::audit::{AuditEvent, AuditSink, Decision, Submission};
    ///
    /// #[derive(Debug)]
    /// struct Slow;
    /// impl AuditSink for Slow {
    ///     fn record(&self, _: &AuditEvent<'_>) {}
    ///     fn submit(&self, event: &AuditEvent<'_>) -> Submission {
    ///         let line = format!("{} {}", event.decision.as_str(), event.path);
    ///         Submission::wait(async move {
    ///             // e.g. send `line` somewhere that pushes back
    ///             let _ = line;
    ///             Ok(())
    ///         })
    ///     }
    /// }
    /// assert!(!Slow.submit(&AuditEvent::new(Decision::Deny, "no_rule", "/x.Y/Z")).is_done());
    /// ```
    fn submit(&self, event: &AuditEvent<'_>) -> Submission {
        self.record(event);
        Submission::done()
    }
}

/// What [`AuditSink::submit`] did with a record: taken, or to be waited for.
///
/// ```
/// use oauth_grpc::audit::Submission;
/// assert!(Submission::done().is_done());
/// ```
#[must_use = "a submission that waits must be awaited before the call is answered"]
pub struct Submission(Option<AuditWait>);

/// The wait of a [`Submission`].
pub(crate) type AuditWait = Pin<Box<dyn Future<Output = Result<(), AuditUnavailable>> + Send>>;

impl Submission {
    /// The record was taken.
    pub fn done() -> Self {
        Self(None)
    }

    /// The call waits for `until`; an `Err` refuses it with `UNAVAILABLE`.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditUnavailable, Submission};
    /// let submission = Submission::wait(async { Err(AuditUnavailable) });
    /// assert!(!submission.is_done());
    /// ```
    pub fn wait(
        until: impl Future<Output = Result<(), AuditUnavailable>> + Send + 'static,
    ) -> Self {
        Self(Some(Box::pin(until)))
    }

    /// Whether nothing is left to wait for.
    pub fn is_done(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn into_wait(self) -> Option<AuditWait> {
        self.0
    }
}

impl fmt::Debug for Submission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submission")
            .field("done", &self.is_done())
            .finish()
    }
}

/// The audit sink could not take a record in time: the call is refused with `UNAVAILABLE`,
/// since no decision goes unrecorded.
///
/// ```
/// use oauth_grpc::audit::AuditUnavailable;
/// assert!(AuditUnavailable.to_string().contains("audit log"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the audit log cannot take the record of this call; retry later")]
pub struct AuditUnavailable;

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
/// bound to what the call proved to hold, and `binding` how (`mtls`, `dpop`, `mtls+dpop`);
/// `code` is the gRPC code of the answer, `trace_id` the W3C trace id of the call's
/// `traceparent`, `token_fingerprint` the first 16 hex digits of the token's SHA-256.
/// Absent values are empty strings. For a durable, machine-readable record use
/// [`JsonLines`].
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
                    code = event.code as i32,
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
                    trace_id = event.trace_id.unwrap_or_default(),
                    token_fingerprint = event.token_fingerprint.unwrap_or_default(),
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
