//! The report in each format: Markdown for reviewers, JSON and CSV for tools, Istio
//! `AuthorizationPolicy` YAML for a mesh.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::policy::{Delegation, Rule};
use crate::scope::Scope;

use super::{JSON_SCHEMA_VERSION, Report, Row};

impl Report {
    pub(super) fn services(&self) -> BTreeMap<&'static str, Vec<&Row>> {
        let mut services: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for row in &self.rows {
            services.entry(row.service).or_default().push(row);
        }
        services
    }

    pub(super) fn totals(&self) -> (usize, usize, usize) {
        let public = self.rows.iter().filter(|r| r.rule == Rule::Public).count();
        let authenticated = self
            .rows
            .iter()
            .filter(|r| r.rule == Rule::Authenticated)
            .count();
        (
            public,
            authenticated,
            self.rows.len() - public - authenticated,
        )
    }

    pub(super) fn markdown(&self) -> String {
        let mut out = String::from("# Permissions\n\n");
        match &self.generated_by {
            Some(command) => {
                let _ = writeln!(
                    out,
                    "Generated from the compiled access tables (`{command}`); do not edit by hand.\n"
                );
            }
            None => {
                out.push_str("Generated from the compiled access tables; do not edit by hand.\n\n")
            }
        }
        let (public, authenticated, scoped) = self.totals();
        let _ = writeln!(
            out,
            "{} rpcs: {scoped} scoped, {authenticated} authenticated, {public} public.\n",
            self.rows.len()
        );
        for (service, rows) in self.services() {
            let _ = writeln!(out, "## `{service}`\n");
            out.push_str("| RPC | Streaming | Rule |\n|---|---|---|\n");
            for row in &rows {
                let bound = if row.sender_constrained {
                    "; **bound token required** (mTLS certificate or DPoP key)"
                } else {
                    ""
                };
                let once = if row.once {
                    "; **one-time**: each token once (by its `jti`)"
                } else {
                    ""
                };
                let delegation = match row.delegation {
                    Delegation::Allowed => String::new(),
                    Delegation::Forbidden => {
                        "; **no delegated calls** (the token's subject only, no actor)".to_owned()
                    }
                    Delegation::Actors(actors) => format!(
                        "; **delegated only by** {}",
                        actors
                            .iter()
                            .map(|a| format!("`{}`", markdown_cell(a)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let outlives = match row.outlives_token {
                    Some(reason) => format!("; **outlives its token**: {}", markdown_cell(reason)),
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {}{bound}{once}{delegation}{outlives} |",
                    row.path,
                    row.streaming.as_str(),
                    rule_words(row.rule)
                );
            }
            let scopes: BTreeSet<&str> = rows
                .iter()
                .flat_map(|r| r.rule.scopes().iter().map(|s| s.as_str()))
                .collect();
            if !scopes.is_empty() {
                out.push_str("\nScopes by RPC (`all`: needed with the others marked `all`; `any`: one of those marked `any` suffices):\n\n| RPC |");
                for scope in &scopes {
                    let _ = write!(out, " `{scope}` |");
                }
                out.push_str("\n|---|");
                out.push_str(&"---|".repeat(scopes.len()));
                out.push('\n');
                for row in &rows {
                    let _ = write!(out, "| {} |", row.rpc);
                    for scope in &scopes {
                        let named = row.rule.scopes().iter().any(|s| s.as_str() == *scope);
                        let mark = match (named, row.rule) {
                            (true, Rule::AllOf(_)) => " all |",
                            (true, Rule::AnyOf(_)) => " any |",
                            _ => "  |",
                        };
                        out.push_str(mark);
                    }
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        if !self.public_services.is_empty() {
            out.push_str(
                "## Public services\n\nEvery rpc of these services is open, without a token (`PolicySet::public_service`):\n\n",
            );
            for service in &self.public_services {
                let _ = writeln!(out, "- `{service}`");
            }
            out.push('\n');
        }
        out
    }

    pub(super) fn json(&self) -> String {
        let services: Vec<serde_json::Value> = self
            .services()
            .into_iter()
            .map(|(name, rows)| {
                let methods: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "rpc": r.rpc,
                            "path": r.path,
                            "rust_name": r.rust_name,
                            "streaming": r.streaming.json(),
                            "rule": rule_kind(r.rule),
                            "scopes": r.rule.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                            "outlives_token": r.outlives_token,
                            "sender_constrained": r.sender_constrained,
                            "once": r.once,
                            "delegation": {
                                "policy": r.delegation.as_str(),
                                "actors": r.delegation.actors(),
                            },
                        })
                    })
                    .collect();
                serde_json::json!({ "name": name, "methods": methods })
            })
            .collect();
        let (public, authenticated, scoped) = self.totals();
        let document = serde_json::json!({
            "schema_version": JSON_SCHEMA_VERSION,
            "services": services,
            "public_services": self.public_services,
            "totals": {
                "rpcs": self.rows.len(),
                "public": public,
                "authenticated": authenticated,
                "scoped": scoped,
            },
        });
        let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
        out.push('\n');
        out
    }

    pub(super) fn csv(&self) -> String {
        let mut out = String::from(
            "service,rpc,path,rust_name,streaming,rule,scopes,outlives_token,sender_constrained,delegation,delegation_actors,once\n",
        );
        for r in &self.rows {
            let scopes: Vec<&str> = r.rule.scopes().iter().map(|s| s.as_str()).collect();
            let fields = [
                r.service,
                r.rpc,
                r.path,
                r.rust_name,
                r.streaming.json(),
                rule_kind(r.rule),
                &crate::scope::join(scopes.iter().copied()),
                r.outlives_token.unwrap_or_default(),
                if r.sender_constrained {
                    "true"
                } else {
                    "false"
                },
                r.delegation.as_str(),
                &crate::scope::join(r.delegation.actors().iter().copied()),
                if r.once { "true" } else { "false" },
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        for service in &self.public_services {
            // Every rpc of the service: `*` for the rpc, the path pattern Istio matches.
            let path = public_path(service);
            let fields = [
                service.as_str(),
                "*",
                path.as_str(),
                "",
                "unknown",
                "public",
                "",
                "",
                "false",
                "allow",
                "",
                "false",
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

fn rule_kind(rule: Rule) -> &'static str {
    match rule {
        Rule::Public => "public",
        Rule::Authenticated => "authenticated",
        Rule::AllOf(_) => "all_of",
        Rule::AnyOf(_) => "any_of",
    }
}

pub(super) fn rule_words(rule: Rule) -> String {
    let scopes = |s: &[Scope]| {
        s.iter()
            .map(|s| format!("`{}`", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match rule {
        Rule::Public => "public".into(),
        Rule::Authenticated => "authenticated".into(),
        Rule::AllOf(s) => format!("all of: {}", scopes(s)),
        Rule::AnyOf(s) => format!("any of: {}", scopes(s)),
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The request paths of a public service: `/{service}/*`, or for a `package.*` prefix,
/// `/package.*`.
pub(super) fn public_path(service: &str) -> String {
    if service.ends_with(".*") {
        format!("/{service}")
    } else {
        format!("/{service}/*")
    }
}

/// Text for a Markdown table cell: `|` escaped and line breaks flattened.
fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
