//! [`AuditRecord`]: one decision as a JSON object, the line format of
//! [`JsonLines`](super::JsonLines) and the input of `permissions replay`.
//!
//! The schema is published as `docs/audit.schema.json`; [`SCHEMA_VERSION`] is its version,
//! written into every record. A new optional field keeps the version; a removed, renamed or
//! retyped field raises it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::AuditEvent;
use crate::principal::Principal;

/// The version of the audit record schema (`docs/audit.schema.json`), in every record's
/// `schema_version`.
///
/// ```
/// assert_eq!(oauth_grpc::audit::SCHEMA_VERSION, 1);
/// ```
pub const SCHEMA_VERSION: u32 = 1;

/// One access decision, as a line of the audit log: everything an auditor or
/// `permissions replay` needs, never the token (only its [fingerprint](Self::token_fingerprint)).
///
/// Strings are borrowed from the event when a record is written, owned when one is read:
///
/// ```
/// use oauth_grpc::audit::AuditRecord;
///
/// let line = r#"{"schema_version":1,"time":"2026-12-02T05:00:00.000Z","decision":"deny",
///   "code":16,"reason":"missing_token","rpc":"/orders.v1.Orders/GetOrder",
///   "rule":"all of: orders:read","required_scopes":["orders:read"],
///   "authenticated":false}"#;
/// let record: AuditRecord<'static> = serde_json::from_str(line)?;
/// assert_eq!(record.code, 16);
/// assert_eq!(record.granted_scopes, None);
/// assert!(record.actors.is_empty());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord<'a> {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// When the decision was made: RFC 3339, UTC, milliseconds (`2026-12-02T05:00:00.123Z`).
    pub time: Cow<'a, str>,
    /// `allow` or `deny`.
    pub decision: Cow<'a, str>,
    /// The gRPC status code the layer answered with: 0 for an admitted call (the handler's
    /// own status is not the layer's), 16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED` or 14
    /// `UNAVAILABLE` for refusals.
    pub code: u8,
    /// `authorized`, `public`, `pass_through`, or the refusal's code (`missing_token`,
    /// `expired`, `insufficient_scope`, …; [`AuthError::code`](crate::AuthError::code)).
    pub reason: Cow<'a, str>,
    /// The called gRPC path, `/package.Service/Method`.
    pub rpc: Cow<'a, str>,
    /// The rule that applied, in words as the permission report writes it (`public`,
    /// `authenticated`, `all of: orders:write`, `any of: orders:read, orders:admin`); `None`
    /// for a path without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Cow<'a, str>>,
    /// The scopes the rule asks for (all of them or any one, as the rule says).
    #[serde(default)]
    pub required_scopes: Vec<Cow<'a, str>>,
    /// Whether the record holds a verified token's claims: the token's signature and claims
    /// were checked, whatever the decision. `false` for calls without a token, with a token
    /// that did not validate, and for public calls.
    pub authenticated: bool,
    /// The scopes the verified token granted; `None` without a verified token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_scopes: Option<Vec<Cow<'a, str>>>,
    /// The token's `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Cow<'a, str>>,
    /// The token's `client_id` (or `azp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Cow<'a, str>>,
    /// The token's `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Cow<'a, str>>,
    /// The token's `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<Cow<'a, str>>,
    /// The delegation chain of RFC 8693 `act`, outermost (the current actor) first: each
    /// actor's `sub`, or its `client_id` without one. Empty when the call is not delegated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<Cow<'a, str>>,
    /// What the token is bound to and how the call proved it.
    #[serde(default)]
    pub binding: RecordBinding<'a>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Cow<'a, str>>,
    /// The TLS client certificate of the connection, under mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<RecordCertificate<'a>>,
    /// The W3C trace id of the call (from its `traceparent` metadata): 32 lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<Cow<'a, str>>,
    /// The first 16 hex digits of the SHA-256 of the token — the verified-token cache's key —
    /// to follow one token's calls through the log. It cannot be turned back into the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_fingerprint: Option<Cow<'a, str>>,
}

/// A token's binding in an [`AuditRecord`].
///
/// ```
/// use oauth_grpc::audit::RecordBinding;
/// let binding = RecordBinding::default();
/// assert_eq!(binding.kind, "none");
/// assert!(!binding.proven);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordBinding<'a> {
    /// What the token's `cnf` binds it to: `none`, `mtls` (RFC 8705 `x5t#S256`), `dpop`
    /// (RFC 9449 `jkt`) or `mtls+dpop`.
    pub kind: Cow<'a, str>,
    /// Whether the call proved to hold what the token is bound to (its connection's
    /// certificate, its proof's key). `false` for an unbound token.
    #[serde(default)]
    pub proven: bool,
    /// The certificate thumbprint the token is bound to (`cnf.x5t#S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<Cow<'a, str>>,
    /// The DPoP key thumbprint the token is bound to (`cnf.jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<Cow<'a, str>>,
    /// The thumbprint of the key that signed the call's DPoP proof, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_jkt: Option<Cow<'a, str>>,
}

impl Default for RecordBinding<'_> {
    fn default() -> Self {
        Self {
            kind: Cow::Borrowed("none"),
            proven: false,
            x5t_s256: None,
            jkt: None,
            proof_jkt: None,
        }
    }
}

/// The connection's TLS client certificate in an [`AuditRecord`].
///
/// ```
/// use oauth_grpc::audit::RecordCertificate;
/// let certificate: RecordCertificate<'static> =
///     serde_json::from_str(r#"{"thumbprint":"t","subject":"CN=orders-client"}"#)?;
/// assert_eq!(certificate.spiffe_id, None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordCertificate<'a> {
    /// SHA-256 of the DER certificate, base64url (what `cnf.x5t#S256` names).
    pub thumbprint: Cow<'a, str>,
    /// The subject's distinguished name.
    pub subject: Cow<'a, str>,
    /// The SPIFFE ID among the URI SANs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<Cow<'a, str>>,
}

fn borrowed(value: Option<&str>) -> Option<Cow<'_, str>> {
    value.map(Cow::Borrowed)
}

impl<'a> AuditRecord<'a> {
    /// The record of `event`, borrowing its strings.
    ///
    /// ```
    /// use oauth_grpc::audit::{AuditEvent, AuditRecord, Decision};
    /// use oauth_grpc::{Principal, Rule, Scope};
    ///
    /// const READ: Rule = Rule::AllOf(&[Scope::from_static("orders:read")]);
    /// let alice = Principal::builder().subject("alice").scopes(["orders:read"]).build();
    /// let event = AuditEvent::new(Decision::Allow, "authorized", "/orders.v1.Orders/GetOrder")
    ///     .with_rule(READ)
    ///     .with_principal(&alice);
    /// let record = AuditRecord::from_event(&event);
    /// assert_eq!(record.subject.as_deref(), Some("alice"));
    /// assert_eq!(record.required_scopes, ["orders:read"]);
    /// assert!(record.authenticated);
    /// ```
    pub fn from_event(event: &'a AuditEvent<'a>) -> Self {
        let principal = event.principal;
        let scopes = |p: &'a Principal| p.scopes().iter().map(Cow::Borrowed).collect();
        let binding = principal.map(record_binding).unwrap_or_default();
        Self {
            schema_version: SCHEMA_VERSION,
            time: Cow::Owned(humantime::format_rfc3339_millis(event.time).to_string()),
            decision: Cow::Borrowed(event.decision.as_str()),
            code: event.code as u8,
            reason: Cow::Borrowed(event.reason),
            rpc: Cow::Borrowed(event.path),
            rule: event.rule.map(|rule| Cow::Owned(rule.to_string())),
            required_scopes: event
                .rule
                .map(|rule| {
                    rule.scopes()
                        .iter()
                        .map(|s| Cow::Borrowed(s.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
            authenticated: principal.is_some(),
            granted_scopes: principal.map(scopes),
            subject: borrowed(principal.and_then(Principal::subject)),
            client_id: borrowed(principal.and_then(Principal::client_id)),
            issuer: borrowed(principal.and_then(Principal::issuer)),
            jti: borrowed(principal.and_then(Principal::token_id)),
            actors: principal
                .map(|p| {
                    p.delegation_chain()
                        .map(|a| Cow::Borrowed(a.subject().or(a.client_id()).unwrap_or("?")))
                        .collect()
                })
                .unwrap_or_default(),
            binding,
            peer: event.peer.map(|peer| Cow::Owned(peer.to_string())),
            client_certificate: event.client_certificate.map(|c| RecordCertificate {
                thumbprint: Cow::Borrowed(c.thumbprint()),
                subject: Cow::Borrowed(c.subject()),
                spiffe_id: borrowed(c.spiffe_id()),
            }),
            trace_id: borrowed(event.trace_id),
            token_fingerprint: borrowed(event.token_fingerprint),
        }
    }

    /// The record as one line of JSON, with its `\n`.
    ///
    /// ```
    /// use oauth_grpc::audit::{AuditEvent, AuditRecord, Decision};
    /// let event = AuditEvent::new(Decision::Deny, "no_rule", "/x.Y/Z");
    /// let line = AuditRecord::from_event(&event).to_line();
    /// assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
    /// assert!(line.contains(r#""reason":"no_rule""#));
    /// ```
    pub fn to_line(&self) -> String {
        // Serialising strings, numbers and booleans into a `Vec` cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

fn record_binding(principal: &Principal) -> RecordBinding<'_> {
    let cnf = principal.confirmation();
    let x5t = cnf.and_then(|c| c.certificate_thumbprint());
    let jkt = cnf.and_then(|c| c.key_thumbprint());
    let kind = match (x5t, jkt) {
        (Some(_), Some(_)) => "mtls+dpop",
        (Some(_), None) => "mtls",
        (None, Some(_)) => "dpop",
        (None, None) => "none",
    };
    RecordBinding {
        kind: Cow::Borrowed(kind),
        proven: principal.is_sender_constrained(),
        x5t_s256: borrowed(x5t),
        jkt: borrowed(jkt),
        proof_jkt: borrowed(principal.dpop_key_thumbprint()),
    }
}
