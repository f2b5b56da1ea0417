//! The Istio export: one `AuthorizationPolicy` (`action: ALLOW`) per service, paths grouped by
//! rule and by whether they need a bound token, as a second line of defence in the mesh. What the mesh cannot mirror is said in the
//! export's own header.

use std::fmt::Write as _;

use crate::policy::{Delegation, Rule};

use super::render::{public_path, rule_words};
use super::{Report, Row};

/// The header of every export: what the policies do, and what they cannot do.
const HEADER: &str = "\
# Istio AuthorizationPolicy resources generated from the compiled access tables.
# ALLOW policies: every path not listed is denied.
# What the mesh cannot mirror of the service's own checks:
# - It needs a RequestAuthentication for your issuer (signatures, `iss`, `aud`), and knows
#   nothing of `typ`, `crit`, maximum lifetimes or role-to-scope mappings.
# - Opaque tokens, checked by introspection, cannot pass RequestAuthentication at all.
# - A public method called with an invalid token gets 401 from RequestAuthentication; the
#   service itself ignores the token there.
# - Scopes are matched in `scope` (space-delimited; Istio splits it) and, by a second rule,
#   in `scp`: an `scp` array (Okta) matches, a space-delimited `scp` string (Entra ID) only
#   when it holds a single scope.
# - A method that needs a bound token (`bound`, RFC 8705) is exported with
#   `source.principals: [\"*\"]`: the mesh admits it only from an mTLS peer, which needs
#   PeerAuthentication in STRICT mode (otherwise plaintext calls to it are denied). It cannot
#   check that the token is bound to that very certificate (`cnf` `x5t#S256`); the service does.
# - Delegation rules (`delegation = forbid | actors(…)`, RFC 8693 `act`) are exported as a
#   second policy per service, `action: DENY`, on `request.auth.claims[act][sub]`: a call with
#   an actor is denied on `forbid` paths, and on `actors(…)` paths unless the actor is listed.
#   The mesh does not refuse a malformed `act` (no `sub`: it passes these DENY rules) or a
#   chain deeper than the service's limit; the service does, with UNAUTHENTICATED.
# - One-time methods (`once`: each token's `jti` admitted once per method) are exported like
#   any other: the mesh keeps no record of the tokens it has seen, so it admits a replayed
#   token, and one without `jti`, as often as the rule allows; the service refuses them, with
#   UNAUTHENTICATED.
";

impl Report {
    /// The Istio export. A rule naming a scope with `*` (which Istio would read as a
    /// wildcard) is left out with a comment, so its paths stay denied.
    pub(super) fn istio(&self) -> String {
        let mut out = String::from(HEADER);
        if self.namespace.is_none() {
            out.push_str(
                "# WARNING: no namespace: `kubectl apply` puts these policies in its current namespace.\n",
            );
        }
        if self.selector.is_empty() {
            out.push_str(
                "# WARNING: no selector: as printed, each policy covers every workload of its namespace\n\
                 # (the whole mesh in the root namespace). Export with a selector (`--selector app=orders`).\n",
            );
        }
        for (service, rows) in self.services() {
            self.policy_head(&mut out, service);
            // Paths grouped by identical rule and binding, in path order of their first member.
            let mut groups: Vec<((Rule, bool), Vec<&str>)> = Vec::new();
            for row in &rows {
                let key = (row.rule, row.sender_constrained);
                match groups.iter_mut().find(|(group, _)| *group == key) {
                    Some((_, paths)) => paths.push(row.path),
                    None => groups.push((key, vec![row.path])),
                }
            }
            let mut rules = 0;
            for ((rule, bound), paths) in groups {
                if let Some(scope) = rule.scopes().iter().find(|s| s.as_str().contains('*')) {
                    let _ = writeln!(
                        out,
                        "  # NOT EXPORTED ({}): the scope `{}` holds `*`, a wildcard to Istio; these paths stay denied",
                        words(rule, bound),
                        scope.as_str()
                    );
                    continue;
                }
                let claims: &[&str] = match rule {
                    Rule::AllOf(_) | Rule::AnyOf(_) => &["scope", "scp"],
                    _ => &[""],
                };
                for claim in claims {
                    rules += 1;
                    write_rule(&mut out, rule, bound, &paths, claim);
                }
            }
            if rules == 0 {
                out.push_str("  rules: []\n");
            }
            delegation_policy(self, &mut out, service, &rows);
        }
        for service in &self.public_services {
            self.policy_head(&mut out, service);
            write_rule(&mut out, Rule::Public, false, &[&public_path(service)], "");
        }
        out
    }

    /// The scopes the Istio export leaves out: those holding `*`.
    pub(super) fn unexportable_scopes(&self) -> Vec<&'static str> {
        let mut scopes: Vec<&'static str> = self
            .rows
            .iter()
            .flat_map(|row| row.rule.scopes().iter().map(|s| s.as_str()))
            .filter(|scope| scope.contains('*'))
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        scopes
    }

    /// `---` up to `rules:` of the policy for `service`.
    fn policy_head(&self, out: &mut String, service: &str) {
        self.policy_head_as(out, service, "", "ALLOW");
    }

    /// `---` up to `rules:` of a policy for `service`, its name ending in `suffix`.
    fn policy_head_as(&self, out: &mut String, service: &str, suffix: &str, action: &str) {
        let name = service
            .to_ascii_lowercase()
            .replace(['.', '_'], "-")
            .replace("-*", "-all")
            + suffix;
        let _ = write!(
            out,
            "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n"
        );
        if let Some(namespace) = &self.namespace {
            let _ = writeln!(out, "  namespace: {namespace}");
        }
        out.push_str("spec:\n");
        if !self.selector.is_empty() {
            out.push_str("  selector:\n    matchLabels:\n");
            for (key, value) in &self.selector {
                let _ = writeln!(out, "      {key}: {}", quoted(value));
            }
        }
        let _ = write!(out, "  action: {action}\n  rules:\n");
    }
}

/// The DENY policy of a service's delegation rules, if any method has one: one rule per
/// group of paths with the same policy, matching calls that carry `act.sub` (and, for
/// `actors(…)`, one not listed).
fn delegation_policy(report: &Report, out: &mut String, service: &str, rows: &[&Row]) {
    let mut groups: Vec<(Delegation, Vec<&str>)> = Vec::new();
    for row in rows {
        if row.rule == Rule::Public || row.delegation == Delegation::Allowed {
            continue;
        }
        match groups
            .iter_mut()
            .find(|(group, _)| *group == row.delegation)
        {
            Some((_, paths)) => paths.push(row.path),
            None => groups.push((row.delegation, vec![row.path])),
        }
    }
    if groups.is_empty() {
        return;
    }
    report.policy_head_as(out, service, "-delegation", "DENY");
    for (delegation, paths) in groups {
        let _ = writeln!(out, "  # delegation: {delegation}");
        out.push_str("  - to:\n    - operation:\n        paths:\n");
        for path in paths {
            let _ = writeln!(out, "        - {}", quoted(path));
        }
        // Both conditions: an actor is present, and (for a list) it is not one listed.
        out.push_str(
            "    when:\n    - key: request.auth.claims[act][sub]\n      values: [\"*\"]\n",
        );
        if let Delegation::Actors(actors) = delegation {
            let values: Vec<String> = actors.iter().map(|a| quoted(a)).collect();
            let _ = writeln!(
                out,
                "    - key: request.auth.claims[act][sub]\n      notValues: [{}]",
                values.join(", ")
            );
        }
    }
}

/// The rule in words for a comment: `all of: orders:admin; bound token: mTLS peer required`.
fn words(rule: Rule, bound: bool) -> String {
    let words = rule_words(rule).replace('`', "");
    if bound {
        format!("{words}; bound token: mTLS peer required")
    } else {
        words
    }
}

/// One rule: who (any request principal, unless public; and an mTLS peer, if `bound`), which
/// paths, and for scoped rules the conditions on `claim`.
fn write_rule(out: &mut String, rule: Rule, bound: bool, paths: &[&str], claim: &str) {
    let words = words(rule, bound);
    if claim == "scp" {
        let _ = writeln!(out, "  # {words} (scopes in `scp`)");
    } else {
        let _ = writeln!(out, "  # {words}");
    }
    out.push_str("  - ");
    // Fields of one `source` are ANDed: a token and, for a bound rule, an mTLS peer.
    let mut source = String::new();
    if rule != Rule::Public {
        source.push_str("        requestPrincipals: [\"*\"]\n");
    }
    if bound {
        source.push_str("        principals: [\"*\"]\n");
    }
    if !source.is_empty() {
        let _ = write!(out, "from:\n    - source:\n{source}    ");
    }
    out.push_str("to:\n    - operation:\n        paths:\n");
    for path in paths {
        let _ = writeln!(out, "        - {}", quoted(path));
    }
    match rule {
        Rule::AllOf(scopes) => {
            out.push_str("    when:\n");
            for scope in scopes {
                let _ = writeln!(
                    out,
                    "    - key: request.auth.claims[{claim}]\n      values: [{}]",
                    quoted(scope.as_str())
                );
            }
        }
        Rule::AnyOf(scopes) => {
            let values: Vec<String> = scopes.iter().map(|s| quoted(s.as_str())).collect();
            let _ = writeln!(
                out,
                "    when:\n    - key: request.auth.claims[{claim}]\n      values: [{}]",
                values.join(", ")
            );
        }
        _ => {}
    }
}

/// A YAML double-quoted scalar (JSON string syntax, which YAML reads the same).
fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}
