//! [`Replay`]: every decision of an audit log decided again by the rules compiled into this
//! binary, to see which calls a rule change would flip before it ships
//! (`permissions replay AUDIT.jsonl`).
//!
//! ```
//! use oauth_grpc::audit::{AuditEvent, AuditRecord, Decision};
//! use oauth_grpc::report::Replay;
//! use oauth_grpc::{Principal, Rule};
//!
//! // Yesterday alice, holding only `orders:read`, called WhoAmI (then `#[authenticated]`).
//! let alice = Principal::builder().subject("alice").scopes(["orders:read"]).build();
//! let event = AuditEvent::new(Decision::Allow, "authorized", "/orders.v1.Orders/WhoAmI")
//!     .with_rule(Rule::Authenticated)
//!     .with_principal(&alice);
//! let log = AuditRecord::from_event(&event).to_line();
//!
//! // Replayed against the same rules: nothing flips.
//! let outcome = Replay::new(&examples::policies()).run(log.as_bytes())?;
//! assert_eq!((outcome.records, outcome.unchanged), (1, 1));
//! assert!(!outcome.would_change());
//!
//! // Against rules where GetOrder is the only method, WhoAmI has no rule any more.
//! # use oauth_grpc::{MethodPolicy, PolicySet, ServicePolicy};
//! static ONLY_GET: ServicePolicy = ServicePolicy::new(
//!     "orders.v1.Orders",
//!     &[MethodPolicy::new("GetOrder", "/orders.v1.Orders/GetOrder", "get_order", Rule::Authenticated)],
//! );
//! let outcome = Replay::new(&PolicySet::new().policy(&ONLY_GET)).run(log.as_bytes())?;
//! assert_eq!(outcome.unruled[0].rpc, "/orders.v1.Orders/WhoAmI");
//! assert!(outcome.would_change()); // an allowed call would now be refused
//! # Ok::<(), oauth_grpc::report::AuditLogError>(())
//! ```
//!
//! How a record is decided again, and the JSON document: see [`Replay`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::BufRead;

use crate::audit::AuditRecord;
use crate::policy::{Denial, MethodPolicy, PolicySet, Rule};
use crate::principal::{Actor, Confirmation, Principal};

use super::audit_log::{AuditLogError, read_records};
use super::coverage::{DescriptorError, descriptor_rpcs};

mod outcome;

pub use self::outcome::{Direction, Example, Flip, PathGroup, ReplayOutcome};

/// The version of the replay's JSON document ([`ReplayOutcome::to_json`]); bumped on any
/// incompatible change.
///
/// ```
/// assert_eq!(oauth_grpc::report::REPLAY_SCHEMA_VERSION, 1);
/// ```
pub const REPLAY_SCHEMA_VERSION: u32 = 1;

/// The refusals whose outcome depends on the method's rule, its sender constraint, its
/// delegation policy or its one-time use: records with one of them are decided again.
const RULE_DEPENDENT: [&str; 7] = [
    "authorized",
    "insufficient_scope",
    "delegation_forbidden",
    "actor_not_allowed",
    "not_sender_constrained",
    "missing_jti",
    "already_used",
];

/// Replays an audit log against a [`PolicySet`]: every recorded decision is made again by
/// the rules given, and the calls decided otherwise are listed.
///
/// ```
/// use oauth_grpc::report::Replay;
///
/// let policies = examples::policies();
/// let replay = Replay::new(&policies).descriptors(examples::pb::FILE_DESCRIPTOR_SET)?;
/// let outcome = replay.run(std::io::empty())?; // e.g. a `BufReader` of the log file
/// assert_eq!(outcome.records, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # How a record is decided again
///
/// Only from what the record holds, by the layer's order of checks:
///
/// - a path without a rule now is refused (`no_rule`) and listed in
///   [`unruled`](ReplayOutcome::unruled); with [descriptors](Replay::descriptors), a path
///   whose service they describe but whose rpc they do not is listed in
///   [`removed`](ReplayOutcome::removed) instead;
/// - a public rule admits every call (`public`);
/// - a rule needing a token refuses a record without a verified token: a recorded public,
///   pass-through or unruled call becomes `missing_token` (the layer did not read its token,
///   so the log cannot say whether it had one); a call refused before its rule ran keeps its
///   refusal (`expired`, `bad_signature`, `revoked`, a DPoP proof error,
///   `store_unavailable`, …), since no rule change alters it;
/// - a verified token's record (`authenticated`) whose decision hung on the rule
///   (`authorized`, `insufficient_scope`, `delegation_forbidden`, `actor_not_allowed`,
///   `not_sender_constrained`, `missing_jti`, `already_used`) is decided again from its
///   granted scopes, actor chain, binding and `jti`: the method's sender constraint needs a
///   proven binding (`binding.proven`), its rule the scopes, its delegation policy the
///   current actor, and a `once` method a `jti`.
///
/// One-time use is state, which a log holds only in part: a recorded `already_used` is
/// admitted again if the method is no longer `once`, and stays refused if it still is; on a
/// `once` method, a second admitted use of a token (same issuer, `jti` and path) within the
/// log is refused as `already_used`. Uses before the log's first line are unknown. Likewise
/// the revocation list and the DPoP replay cache are as they were when the call was made.
///
/// # JSON
///
/// [`ReplayOutcome::to_json`] writes a document with these fields, stable within
/// [`REPLAY_SCHEMA_VERSION`]:
///
/// ```text
/// { "schema_version": 1,
///   "totals": { "records", "unchanged", "flipped", "unruled", "removed" },
///   "would_change": bool,
///   "flips":   [ { "rpc", "direction": "allowed_to_denied" | "denied_to_allowed", "count",
///                  "rule_before": string|null, "rule_now", "example" } ],
///   "unruled": [ { "rpc", "count", "allowed_before", "example" } ],
///   "removed": [ { "rpc", "count", "allowed_before", "example" } ] }
/// example: { "line", "time", "subject", "client_id", "trace_id", "token_fingerprint",
///            "reason_before", "reason_now" }   (absent values are null)
/// ```
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    policies: &'a PolicySet,
    /// The rpcs of the descriptors, and the services they describe.
    descriptors: Option<(BTreeSet<String>, BTreeSet<String>)>,
    require_sender_constrained: bool,
}

impl<'a> Replay<'a> {
    /// A replay against `policies`: the rules compiled into the binary that runs it.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Replay};
    /// let policies = PolicySet::new();
    /// let outcome = Replay::new(&policies).run(&b""[..])?;
    /// assert!(!outcome.would_change());
    /// # Ok::<(), oauth_grpc::report::AuditLogError>(())
    /// ```
    pub fn new(policies: &'a PolicySet) -> Self {
        Self {
            policies,
            descriptors: None,
            require_sender_constrained: false,
        }
    }

    /// The encoded `FileDescriptorSet` of the services: a recorded rpc of a service they
    /// describe that they no longer hold is listed in [`ReplayOutcome::removed`] (a call to
    /// it now fails whatever the rules say). Paths of services they do not describe (such as
    /// an opened health service) are decided by the rules as usual.
    ///
    /// # Errors
    ///
    /// [`DescriptorError`] when the bytes are not a descriptor set.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Replay};
    /// let policies = PolicySet::new();
    /// assert!(Replay::new(&policies).descriptors(b"\xff\xff").is_err());
    /// ```
    pub fn descriptors(mut self, encoded: &[u8]) -> Result<Self, DescriptorError> {
        let rpcs: BTreeSet<String> = descriptor_rpcs(encoded)?.into_keys().collect();
        let services = rpcs
            .iter()
            .filter_map(|path| service_of(path).map(str::to_owned))
            .collect();
        self.descriptors = Some((rpcs, services));
        Ok(self)
    }

    /// Replays as a layer with
    /// [`OAuthLayer::require_sender_constrained`](crate::OAuthLayer::require_sender_constrained)
    /// does: every method needs a proven binding. Off unless set, like the layer.
    ///
    /// ```
    /// # use oauth_grpc::report::Replay;
    /// let policies = examples::policies();
    /// let replay = Replay::new(&policies).require_sender_constrained(true);
    /// # let _ = replay;
    /// ```
    #[must_use]
    pub fn require_sender_constrained(mut self, required: bool) -> Self {
        self.require_sender_constrained = required;
        self
    }

    /// Reads the log (one [`AuditRecord`] per line, blank lines skipped) and decides every
    /// record again.
    ///
    /// # Errors
    ///
    /// [`AuditLogError`], naming the line, when a line is not an audit record, has a
    /// `schema_version` this build does not read, or cannot be read: the replay stops
    /// rather than answer for part of the log.
    ///
    /// ```
    /// use oauth_grpc::report::{Direction, Replay};
    ///
    /// // A public call of a method that needs a token now: it would be refused.
    /// let log = r#"{"schema_version":1,"time":"2026-12-02T05:00:00.000Z","decision":"allow","code":0,"reason":"public","rpc":"/orders.v1.Orders/WhoAmI","authenticated":false}"#;
    /// let outcome = Replay::new(&examples::policies()).run(log.as_bytes())?;
    /// let flip = &outcome.flips[0];
    /// assert_eq!(flip.direction, Direction::AllowedToDenied);
    /// assert_eq!(flip.example.reason_now, "missing_token");
    /// # Ok::<(), oauth_grpc::report::AuditLogError>(())
    /// ```
    pub fn run(&self, reader: impl BufRead) -> Result<ReplayOutcome, AuditLogError> {
        let mut tally = Tally::default();
        let mut used = HashSet::new();
        read_records(reader, |line, record| {
            let verdict = self.decide(&record, &mut used);
            tally.add(line, &record, verdict);
        })?;
        Ok(tally.finish())
    }

    /// The decision the rules given make on the call `record` describes.
    fn decide(&self, record: &AuditRecord<'_>, used: &mut HashSet<UseKey>) -> Verdict {
        let path = &*record.rpc;
        if let Some((rpcs, services)) = &self.descriptors
            && !rpcs.contains(path)
            && service_of(path).is_some_and(|service| services.contains(service))
        {
            return Verdict::Removed;
        }
        let Some(rule) = self.policies.rule_for(path) else {
            return Verdict::Unruled;
        };
        let method = self.policies.method_for(path);
        let now = Now {
            rule,
            method,
            require_sender_constrained: self.require_sender_constrained,
        };
        if rule.is_public() {
            return now.allow("public");
        }
        let allowed_before = record.decision == "allow";
        if !record.authenticated {
            // No verified token in the record: a call the layer admitted without reading
            // one, or refused before its rule (or without one), is a call without a token.
            return match &*record.reason {
                "public" | "pass_through" | "no_rule" => now.deny("missing_token"),
                _ if allowed_before => now.deny("missing_token"),
                kept => now.deny(kept.to_owned()),
            };
        }
        if !allowed_before && !RULE_DEPENDENT.contains(&&*record.reason) {
            // Refused before the rule was read, for a reason no rule changes.
            return now.deny(record.reason.to_string());
        }
        let sender_constrained =
            self.require_sender_constrained || method.is_some_and(MethodPolicy::sender_constrained);
        if sender_constrained && !record.binding.proven {
            return now.deny("not_sender_constrained");
        }
        let principal = principal(record);
        let delegation = method.map(MethodPolicy::delegation).unwrap_or_default();
        if let Err(denial) = rule
            .evaluate(Some(&principal))
            .and_then(|()| delegation.evaluate(Some(&principal)))
        {
            return now.deny(denial_code(denial));
        }
        if method.is_some_and(MethodPolicy::once) {
            let Some(jti) = record.jti.as_deref() else {
                return now.deny("missing_jti");
            };
            if record.reason == "already_used" {
                return now.deny("already_used");
            }
            let key = (
                record.issuer.as_deref().unwrap_or_default().to_owned(),
                jti.to_owned(),
                path.to_owned(),
            );
            if !used.insert(key) {
                return now.deny("already_used");
            }
        }
        now.allow("authorized")
    }
}

/// A use of a one-time token: issuer, `jti`, path.
type UseKey = (String, String, String);

/// `package.Service` of `/package.Service/Method`.
fn service_of(path: &str) -> Option<&str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty()).then_some(service)
}

/// The code a rule's refusal has in audit records.
const fn denial_code(denial: Denial) -> &'static str {
    match denial {
        Denial::Unauthenticated => "missing_token",
        Denial::InsufficientScope(_) => "insufficient_scope",
        Denial::DelegationForbidden => "delegation_forbidden",
        Denial::ActorNotAllowed => "actor_not_allowed",
    }
}

/// The principal a verified record describes: its scopes, identity, `jti`, actor chain and
/// binding.
fn principal(record: &AuditRecord<'_>) -> Principal {
    let mut builder = Principal::builder().scopes(record.granted_scopes.iter().flatten());
    if let Some(subject) = &record.subject {
        builder = builder.subject(subject.as_ref());
    }
    if let Some(client_id) = &record.client_id {
        builder = builder.client_id(client_id.as_ref());
    }
    if let Some(issuer) = &record.issuer {
        builder = builder.issuer(issuer.as_ref());
    }
    if let Some(jti) = &record.jti {
        builder = builder.token_id(jti.as_ref());
    }
    // Outermost first in the record; each actor acts for the next. A verified actor has a
    // `sub` (the validator refuses one without), which is what the record holds.
    let chain = record.actors.iter().rev().fold(None, |prior, name| {
        let actor = Actor::new(Some(name.to_string()), None);
        Some(match prior {
            Some(prior) => actor.acting_for(prior),
            None => actor,
        })
    });
    if let Some(actor) = chain {
        builder = builder.actor(actor);
    }
    let binding = &record.binding;
    let confirmation = match (&binding.x5t_s256, &binding.jkt) {
        (Some(x5t), Some(jkt)) => {
            Some(Confirmation::certificate(x5t.as_ref()).with_dpop_key(jkt.as_ref()))
        }
        (Some(x5t), None) => Some(Confirmation::certificate(x5t.as_ref())),
        (None, Some(jkt)) => Some(Confirmation::dpop_key(jkt.as_ref())),
        (None, None) => None,
    };
    if let Some(confirmation) = confirmation {
        builder = builder.confirmation(confirmation);
    }
    builder
        .build()
        .with_proof_key(binding.proof_jkt.as_deref().map(Into::into))
}

/// The rule that decides a path now, for [`Verdict`]s.
struct Now {
    rule: Rule,
    method: Option<&'static MethodPolicy>,
    require_sender_constrained: bool,
}

impl Now {
    fn allow(&self, reason: &'static str) -> Verdict {
        self.verdict(true, Cow::Borrowed(reason))
    }

    fn deny(&self, reason: impl Into<Cow<'static, str>>) -> Verdict {
        self.verdict(false, reason.into())
    }

    fn verdict(&self, allowed: bool, reason: Cow<'static, str>) -> Verdict {
        Verdict::Decided {
            allowed,
            reason,
            rule: describe(self.rule, self.method, self.require_sender_constrained),
        }
    }
}

/// A rule and its method's options, as the replay shows "the rule now":
/// `all of: orders:refund; once; delegation: forbid`.
fn describe(rule: Rule, method: Option<&MethodPolicy>, require_sender_constrained: bool) -> String {
    let mut out = rule.to_string();
    if rule.is_public() {
        return out;
    }
    if require_sender_constrained || method.is_some_and(MethodPolicy::sender_constrained) {
        out.push_str("; bound");
    }
    if method.is_some_and(MethodPolicy::once) {
        out.push_str("; once");
    }
    if let Some(delegation) = method.map(MethodPolicy::delegation)
        && delegation != crate::policy::Delegation::Allowed
    {
        out.push_str("; delegation: ");
        out.push_str(&delegation.to_string());
    }
    out
}

/// What the rules given make of one record.
enum Verdict {
    /// Its service is described by the descriptors, its rpc is not.
    Removed,
    /// No rule: refused as `no_rule`.
    Unruled,
    Decided {
        allowed: bool,
        reason: Cow<'static, str>,
        /// The rule now, described.
        rule: String,
    },
}

/// Counts and first examples while the log is read.
#[derive(Default)]
struct Tally {
    records: u64,
    unchanged: u64,
    flips: BTreeMap<(String, Direction), Flip>,
    unruled: BTreeMap<String, PathGroup>,
    removed: BTreeMap<String, PathGroup>,
}

impl Tally {
    fn add(&mut self, line: usize, record: &AuditRecord<'_>, verdict: Verdict) {
        self.records += 1;
        let allowed_before = record.decision == "allow";
        let (groups, reason_now) = match verdict {
            Verdict::Decided { allowed, .. } if allowed == allowed_before => {
                self.unchanged += 1;
                return;
            }
            Verdict::Decided {
                allowed,
                reason,
                rule,
            } => {
                let direction = if allowed {
                    Direction::DeniedToAllowed
                } else {
                    Direction::AllowedToDenied
                };
                self.flips
                    .entry((record.rpc.to_string(), direction))
                    .or_insert_with(|| Flip {
                        rpc: record.rpc.to_string(),
                        direction,
                        count: 0,
                        rule_before: record.rule.as_ref().map(|r| r.to_string()),
                        rule_now: rule,
                        example: Example::of(line, record, &reason),
                    })
                    .count += 1;
                return;
            }
            Verdict::Unruled => (&mut self.unruled, "no_rule"),
            Verdict::Removed => (&mut self.removed, "not_in_descriptors"),
        };
        let group = groups
            .entry(record.rpc.to_string())
            .or_insert_with(|| PathGroup {
                rpc: record.rpc.to_string(),
                count: 0,
                allowed_before: 0,
                example: Example::of(line, record, reason_now),
            });
        group.count += 1;
        group.allowed_before += u64::from(allowed_before);
    }

    fn finish(self) -> ReplayOutcome {
        ReplayOutcome {
            records: self.records,
            unchanged: self.unchanged,
            flips: self.flips.into_values().collect(),
            unruled: self.unruled.into_values().collect(),
            removed: self.removed.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RecordBinding;
    use crate::policy::{Delegation, ServicePolicy};
    use crate::scope::Scope;

    const READ: Scope = Scope::from_static("orders:read");
    const WRITE: Scope = Scope::from_static("orders:write");
    const READ_RULE: Rule = Rule::AllOf(&[READ]);

    /// A verified call of `rpc` by alice with `scopes`, decided `decision` for `reason`.
    fn verified(rpc: &str, decision: &str, reason: &str, scopes: &[&str]) -> AuditRecord<'static> {
        AuditRecord {
            schema_version: 1,
            time: "2026-12-02T05:00:00.000Z".into(),
            decision: decision.to_owned().into(),
            code: if decision == "allow" { 0 } else { 7 },
            reason: reason.to_owned().into(),
            rpc: rpc.to_owned().into(),
            rule: None,
            required_scopes: Vec::new(),
            authenticated: true,
            granted_scopes: Some(scopes.iter().map(|s| Cow::Owned((*s).to_owned())).collect()),
            subject: Some("alice".into()),
            client_id: Some("orders-web".into()),
            issuer: Some("https://idp.example/".into()),
            jti: Some("t-1".into()),
            actors: Vec::new(),
            binding: RecordBinding::default(),
            peer: None,
            client_certificate: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            token_fingerprint: Some("9f86d081884c7d65".into()),
        }
    }

    fn anonymous(rpc: &str, decision: &str, reason: &str) -> AuditRecord<'static> {
        AuditRecord {
            authenticated: false,
            granted_scopes: None,
            subject: None,
            client_id: None,
            issuer: None,
            jti: None,
            token_fingerprint: None,
            ..verified(rpc, decision, reason, &[])
        }
    }

    fn log(records: &[AuditRecord<'_>]) -> String {
        records.iter().map(AuditRecord::to_line).collect()
    }

    static METHODS: [MethodPolicy; 6] = [
        MethodPolicy::new("Get", "/t.v1.S/Get", "get", READ_RULE),
        MethodPolicy::new("Who", "/t.v1.S/Who", "who", Rule::Authenticated),
        MethodPolicy::new("Open", "/t.v1.S/Open", "open", Rule::Public),
        MethodPolicy::new("Pay", "/t.v1.S/Pay", "pay", Rule::Authenticated).bound_to_sender(),
        MethodPolicy::new("Refund", "/t.v1.S/Refund", "refund", Rule::Authenticated).used_once(),
        MethodPolicy::new("Cancel", "/t.v1.S/Cancel", "cancel", Rule::AllOf(&[WRITE]))
            .with_delegation(Delegation::Actors(&["assistant"])),
    ];
    static SERVICE: ServicePolicy = ServicePolicy::new("t.v1.S", &METHODS);

    fn replay(records: &[AuditRecord<'_>]) -> ReplayOutcome {
        let policies = PolicySet::new().policy(&SERVICE);
        Replay::new(&policies)
            .run(log(records).as_bytes())
            .expect("a well-formed log")
    }

    /// The reason now of the one flipped record, or `None` when it is unchanged.
    fn flip(record: AuditRecord<'_>) -> Option<(Direction, String)> {
        let outcome = replay(&[record]);
        assert_eq!(outcome.records, 1);
        outcome
            .flips
            .first()
            .map(|flip| (flip.direction, flip.example.reason_now.clone()))
    }

    use Direction::{AllowedToDenied as Lost, DeniedToAllowed as Gained};

    #[test]
    fn scopes_are_decided_again() {
        assert_eq!(
            flip(verified(
                "/t.v1.S/Get",
                "allow",
                "authorized",
                &["orders:read"]
            )),
            None
        );
        assert_eq!(
            flip(verified(
                "/t.v1.S/Get",
                "allow",
                "authorized",
                &["orders:write"]
            )),
            Some((Lost, "insufficient_scope".into()))
        );
        assert_eq!(
            flip(verified(
                "/t.v1.S/Get",
                "deny",
                "insufficient_scope",
                &["orders:read"]
            )),
            Some((Gained, "authorized".into()))
        );
        // Still refused, for the same reason: unchanged.
        assert_eq!(
            flip(verified("/t.v1.S/Get", "deny", "insufficient_scope", &[])),
            None
        );
    }

    #[test]
    fn public_and_unauthenticated_records() {
        // A public rule admits anything, a recorded refusal included.
        assert_eq!(
            flip(anonymous("/t.v1.S/Open", "deny", "missing_token")),
            Some((Gained, "public".into()))
        );
        assert_eq!(
            flip(verified("/t.v1.S/Open", "deny", "expired", &[])),
            Some((Gained, "public".into()))
        );
        // A public or pass-through call held no token: now it is refused.
        for reason in ["public", "pass_through"] {
            assert_eq!(
                flip(anonymous("/t.v1.S/Who", "allow", reason)),
                Some((Lost, "missing_token".into()))
            );
        }
        // Refusals before the rule stay refusals, whatever the rule.
        for reason in [
            "missing_token",
            "expired",
            "bad_signature",
            "invalid_request",
        ] {
            assert_eq!(
                flip(anonymous("/t.v1.S/Who", "deny", reason)),
                None,
                "{reason}"
            );
        }
    }

    #[test]
    fn refusals_independent_of_the_rule_are_kept() {
        for reason in [
            "revoked",
            "store_unavailable",
            "dpop_proof_replayed",
            "certificate_mismatch",
        ] {
            // Even with every scope the rule asks for.
            assert_eq!(
                flip(verified("/t.v1.S/Get", "deny", reason, &["orders:read"])),
                None,
                "{reason}"
            );
        }
    }

    #[test]
    fn sender_constraint_needs_a_proven_binding() {
        let unbound = verified("/t.v1.S/Pay", "allow", "authorized", &[]);
        assert_eq!(
            flip(unbound.clone()),
            Some((Lost, "not_sender_constrained".into()))
        );
        let mut bound = unbound.clone();
        bound.binding = RecordBinding {
            kind: "dpop".into(),
            proven: true,
            jkt: Some("k".into()),
            proof_jkt: Some("k".into()),
            ..RecordBinding::default()
        };
        assert_eq!(flip(bound), None);
        // The layer-wide requirement applies to every method.
        let policies = PolicySet::new().policy(&SERVICE);
        let who = log(&[verified("/t.v1.S/Who", "allow", "authorized", &[])]);
        let outcome = Replay::new(&policies)
            .require_sender_constrained(true)
            .run(who.as_bytes())
            .expect("well-formed");
        assert_eq!(
            outcome.flips[0].example.reason_now,
            "not_sender_constrained"
        );
        assert_eq!(outcome.flips[0].rule_now, "authenticated; bound");
    }

    #[test]
    fn delegation_is_decided_by_the_current_actor() {
        let mut agent = verified("/t.v1.S/Cancel", "allow", "authorized", &["orders:write"]);
        agent.actors = vec!["assistant".into(), "gateway".into()];
        assert_eq!(flip(agent.clone()), None);
        // Only the current (outermost) actor counts.
        agent.actors = vec!["gateway".into(), "assistant".into()];
        assert_eq!(flip(agent), Some((Lost, "actor_not_allowed".into())));
        let mut refused = verified(
            "/t.v1.S/Cancel",
            "deny",
            "delegation_forbidden",
            &["orders:write"],
        );
        refused.actors = vec!["assistant".into()];
        assert_eq!(flip(refused), Some((Gained, "authorized".into())));
    }

    #[test]
    fn one_time_use() {
        // A once method needs a jti.
        let mut no_jti = verified("/t.v1.S/Refund", "allow", "authorized", &[]);
        no_jti.jti = None;
        assert_eq!(flip(no_jti), Some((Lost, "missing_jti".into())));
        // A recorded already-used token stays refused while the method is once...
        assert_eq!(
            flip(verified("/t.v1.S/Refund", "deny", "already_used", &[])),
            None
        );
        // ...and is admitted by a method that is no longer once.
        assert_eq!(
            flip(verified("/t.v1.S/Who", "deny", "already_used", &[])),
            Some((Gained, "authorized".into()))
        );
        // A method that became once refuses a token's second use within the log.
        let first = verified("/t.v1.S/Refund", "allow", "authorized", &[]);
        let mut again = first.clone();
        again.time = "2026-12-02T05:00:01.000Z".into();
        let mut other = first.clone();
        other.jti = Some("t-2".into());
        let outcome = replay(&[first, again, other]);
        assert_eq!((outcome.records, outcome.unchanged), (3, 2));
        assert_eq!(outcome.flips[0].example.line, 2);
        assert_eq!(outcome.flips[0].example.reason_now, "already_used");
    }

    #[test]
    fn unruled_and_removed_paths_are_listed_apart() {
        let policies = PolicySet::new().policy(&SERVICE);
        let records = [
            anonymous("/t.v1.S/Gone", "allow", "pass_through"),
            anonymous("/t.v1.S/Gone", "deny", "no_rule"),
            anonymous("/x.v1.Other/Call", "deny", "no_rule"),
        ];
        let outcome = Replay::new(&policies)
            .run(log(&records).as_bytes())
            .expect("well-formed");
        assert_eq!(outcome.unruled.len(), 2);
        assert_eq!(
            (
                outcome.unruled[0].rpc.as_str(),
                outcome.unruled[0].count,
                outcome.unruled[0].allowed_before
            ),
            ("/t.v1.S/Gone", 2, 1)
        );
        assert!(outcome.flips.is_empty());
        // An admitted call would now be refused: that is a change.
        assert!(outcome.would_change());
        // Refused calls that stay refused for want of a rule are not.
        let outcome = Replay::new(&policies)
            .run(log(&records[1..]).as_bytes())
            .expect("well-formed");
        assert!(!outcome.would_change());
    }

    #[test]
    fn removed_needs_the_service_in_the_descriptors() {
        let policies = crate::PolicySet::new()
            .public_service("grpc.health.v1.Health")
            .policy(&SERVICE);
        let records = [
            // The example's descriptors describe orders.v1.Orders, without this rpc.
            anonymous("/orders.v1.Orders/Vanished", "allow", "pass_through"),
            // They do not describe the health service: decided by the rules.
            anonymous("/grpc.health.v1.Health/Check", "allow", "public"),
        ];
        let outcome = Replay::new(&policies)
            .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
            .expect("descriptors")
            .run(log(&records).as_bytes())
            .expect("well-formed");
        assert_eq!(outcome.removed.len(), 1);
        assert_eq!(outcome.removed[0].example.reason_now, "not_in_descriptors");
        assert_eq!(outcome.unchanged, 1);
        assert!(outcome.would_change());
    }

    #[test]
    fn flips_are_grouped_with_their_first_example() {
        let records = [
            verified("/t.v1.S/Get", "allow", "authorized", &[]),
            anonymous("/t.v1.S/Open", "deny", "missing_token"),
            verified("/t.v1.S/Get", "allow", "authorized", &["x"]),
            verified(
                "/t.v1.S/Get",
                "deny",
                "insufficient_scope",
                &["orders:read"],
            ),
            verified("/t.v1.S/Get", "allow", "authorized", &["orders:read"]),
        ];
        let outcome = replay(&records);
        assert_eq!(
            (outcome.records, outcome.unchanged, outcome.flipped()),
            (5, 1, 4)
        );
        let summary: Vec<_> = outcome
            .flips
            .iter()
            .map(|f| (f.rpc.as_str(), f.direction, f.count, f.example.line))
            .collect();
        assert_eq!(
            summary,
            [
                ("/t.v1.S/Get", Lost, 2, 1),
                ("/t.v1.S/Get", Gained, 1, 4),
                ("/t.v1.S/Open", Gained, 1, 2),
            ]
        );
        let text = outcome.to_string();
        assert!(text.starts_with("replayed 5 records against the compiled rules: 1 unchanged, 4 flipped, 0 without a rule, 0 removed\n"), "{text}");
        assert!(text.contains("\nallowed → denied:\n  /t.v1.S/Get: 2 calls\n    rule now:  all of: orders:read\n    e.g.       line 1, 2026-12-02T05:00:00.000Z, subject alice, client orders-web, trace 4bf92f3577b34da6a3ce929d0e0e4736, token 9f86d081884c7d65: authorized → insufficient_scope\n"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&outcome.to_json()).expect("JSON");
        assert_eq!(json["totals"]["flipped"], 4);
        assert_eq!(json["flips"][0]["direction"], "allowed_to_denied");
        assert_eq!(json["flips"][0]["example"]["reason_before"], "authorized");
        assert_eq!(
            json["flips"][2]["example"]["subject"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn text_from_the_log_cannot_forge_lines() {
        let mut record = verified("/t.v1.S/Get", "allow", "authorized", &[]);
        record.subject = Some("mallory\nallowed → denied:".into());
        let text = replay(&[record]).to_string();
        assert!(
            text.contains(r#"subject "mallory\nallowed → denied:""#),
            "{text}"
        );
        assert_eq!(text.matches("allowed → denied:\n").count(), 1, "{text}");
    }
}
