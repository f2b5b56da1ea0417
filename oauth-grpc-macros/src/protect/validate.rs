//! Every rule the compiler enforces on a `#[protect]` impl. Returns all errors at once.

use quote::ToTokens;
use syn::{Error, LitStr};

use super::args::{DelegationArg, DelegationPolicy, MisspeltFlag, RuleAttr, RuleKind, ScopeArg};
use super::model::Service;
use crate::errors::{Errors, check_scope, duplicates};
use crate::naming;

const RULE_FORMS: &str = "`#[require_scope(\"…\")]`, `#[require_any_scope(\"…\", \"…\")]`, \
     `#[authenticated]` or `#[public]`";

pub(crate) fn service(service: &Service, errors: &mut Errors) {
    if let Some(default) = &service.default {
        if default.kind == RuleKind::Public {
            errors.push(Error::new_spanned(
                default.span_tokens(),
                "a default rule cannot be `public`: opening a method must be stated on that \
                 method with `#[public]`",
            ));
        }
        if let Some(rpc) = &default.args.rpc {
            errors.push(Error::new_spanned(
                rpc.key,
                "`rpc =` names one method; put it in that method's own rule",
            ));
        }
        rule(default, errors);
        if let (Some(_), Some(inner)) = (&service.delegation, &default.args.delegation) {
            errors.push(Error::new_spanned(
                inner.key,
                "`delegation =` is given twice: for the impl and in its default rule; give it \
                 once, either as `#[protect(delegation = …)]` (for every rule that does not say \
                 one) or inside `default = …`",
            ));
        }
    }
    if let Some(delegation) = &service.delegation {
        actors(delegation, errors);
    }

    for misplaced in &service.misplaced {
        errors.push(Error::new_spanned(
            misplaced.rule.span_tokens(),
            format!(
                "`#[{}]` goes on an rpc method, not on the {}; remove it",
                misplaced.rule.kind.name(),
                misplaced.item
            ),
        ));
    }

    if !service.async_trait_below && service.methods.iter().any(|m| m.is_async) {
        errors.push(Error::new_spanned(
            service.item.impl_token,
            "tonic service traits are `#[tonic::async_trait]` traits; add \
             `#[tonic::async_trait]` to this impl (above or below `#[oauth_grpc::protect]`)",
        ));
    }

    for method in &service.methods {
        if let Some(outlives) = &method.outlives {
            if !method.client_streams && !method.server_streams {
                errors.push(Error::new_spanned(
                    &outlives.name,
                    format!(
                        "`{name}` is a unary rpc: it is checked when it starts and never cut, so \
                         there is nothing to outlive; remove `#[outlives_token]`",
                        name = method.rust_name
                    ),
                ));
            } else if method
                .rule(service.default.as_ref())
                .is_some_and(|r| r.kind == RuleKind::Public)
            {
                errors.push(Error::new_spanned(
                    &outlives.name,
                    format!(
                        "`{name}` is `#[public]`: its calls carry no token to outlive; remove \
                         `#[outlives_token]`",
                        name = method.rust_name
                    ),
                ));
            }
        }
        match method.rules.as_slice() {
            [] if method.unparsed_rule || service.unparsed_default => {}
            [] if service.default.is_none() => errors.push(Error::new_spanned(
                &method.ident,
                format!(
                    "rpc method `{name}` has no access rule; add {RULE_FORMS} above it, or a \
                     default for the impl with `#[protect(default = require_scope(\"…\"))]`",
                    name = method.rust_name
                ),
            )),
            [] => {}
            [first, rest @ ..] => {
                rule(first, errors);
                for extra in rest {
                    let message = if extra.kind == first.kind {
                        format!(
                            "`#[{kind}]` appears twice on `{name}`; a method takes exactly one \
                             rule: merge them into one `#[{kind}(…)]`",
                            kind = extra.kind.name(),
                            name = method.rust_name
                        )
                    } else {
                        format!(
                            "`{name}` already has the rule `#[{first}]`; a method takes exactly \
                             one rule: keep `#[{first}]` or `#[{extra}]`",
                            name = method.rust_name,
                            first = first.kind.name(),
                            extra = extra.kind.name()
                        )
                    };
                    errors.push(Error::new_spanned(extra.span_tokens(), message));
                }
                if let Some(rpc) = &first.args.rpc {
                    let taken = service.methods.iter().any(|other| {
                        other.ident != method.ident && other.rpc() == rpc.value.value()
                    });
                    // A name that another method already serves gets the more specific
                    // duplicate error below.
                    if !taken {
                        rpc_name(&rpc.value, &method.rust_name, errors);
                    }
                }
            }
        }
    }

    let rpcs: Vec<(String, &super::model::Method)> =
        service.methods.iter().map(|m| (m.rpc(), m)).collect();
    for ((rpc, first), (_, again)) in duplicates(&rpcs, |(rpc, _)| rpc.clone()) {
        let span: proc_macro2::TokenStream = again
            .rules
            .first()
            .and_then(|r| r.args.rpc.as_ref())
            .map(|rpc| rpc.value.to_token_stream())
            .unwrap_or_else(|| again.ident.to_token_stream());
        errors.push(Error::new_spanned(
            span,
            format!(
                "rpc `{rpc}` is already served by method `{first}`; each rpc maps to exactly \
                 one method: fix the `rpc =` value",
                first = first.rust_name
            ),
        ));
    }
}

/// Checks one rule on its own: scope count, scope syntax, repeated scopes, the flags `bound`
/// and `once`.
pub(crate) fn rule(rule: &RuleAttr, errors: &mut Errors) {
    let name = rule.kind.name();
    if rule.kind.takes_scopes() {
        if rule.args.scopes.is_empty() {
            let hint = match (rule.kind, rule.args.is_bound(), rule.args.is_once()) {
                (RuleKind::RequireScope, false, false) => {
                    "; to admit any valid token use `#[authenticated]`"
                }
                (RuleKind::RequireScope, true, false) => {
                    "; to admit any valid bound token use `#[authenticated(bound)]`"
                }
                (RuleKind::RequireScope, false, true) => {
                    "; to admit any valid token once use `#[authenticated(once)]`"
                }
                (RuleKind::RequireScope, true, true) => {
                    "; to admit any valid bound token once use `#[authenticated(bound, once)]`"
                }
                _ => "",
            };
            errors.push(Error::new_spanned(
                rule.span_tokens(),
                format!(
                    "`#[{name}]` needs at least one scope, e.g. `#[{name}(\"orders:read\")]`{hint}"
                ),
            ));
        }
    } else if let Some(first) = rule.args.scopes.first() {
        let fix = if rule.kind == RuleKind::Public {
            "to require a token with scopes use `#[require_scope(…)]` instead"
        } else {
            "to require scopes use `#[require_scope(…)]` or `#[require_any_scope(…)]` instead"
        };
        errors.push(Error::new_spanned(
            first,
            format!("`#[{name}]` takes no scopes; {fix}"),
        ));
    }
    if rule.kind == RuleKind::Public
        && let Some(flag) = rule.args.bound.first()
    {
        errors.push(Error::new_spanned(
            flag,
            "`#[public]` reads no token, so it cannot require a bound one; remove `bound`, or \
             use a rule that needs a token: `#[authenticated(bound)]` or \
             `#[require_scope(\"…\", bound)]`",
        ));
    }
    if rule.kind == RuleKind::Public
        && let Some(flag) = rule.args.once.first()
    {
        errors.push(Error::new_spanned(
            flag,
            "`#[public]` reads no token, so there is no token to admit once; remove `once`, or \
             use a rule that needs a token: `#[authenticated(once)]` or \
             `#[require_scope(\"…\", once)]`",
        ));
    }
    if let Some(delegation) = &rule.args.delegation {
        if rule.kind == RuleKind::Public {
            errors.push(Error::new_spanned(
                delegation.key,
                "`#[public]` reads no token, so there is no delegation to allow or forbid; \
                 remove `delegation = …`, or use a rule that needs a token: \
                 `#[authenticated(delegation = forbid)]`",
            ));
        }
        actors(delegation, errors);
    }
    for (_, again) in duplicates(&rule.args.bound, |_| ()) {
        errors.push(Error::new_spanned(
            again,
            "`bound` appears twice in this rule; give it once",
        ));
    }
    for (_, again) in duplicates(&rule.args.once, |_| ()) {
        errors.push(Error::new_spanned(
            again,
            "`once` appears twice in this rule; write it a single time",
        ));
    }
    for MisspeltFlag { word, flag } in &rule.args.misspelt_flags {
        errors.push(Error::new_spanned(
            word,
            format!(
                "unknown flag `{word}`; did you mean `{name}` ({meaning})? a scope is a string \
                 such as `\"orders:read\"` or a path such as `OrderScope::Read`",
                name = flag.name(),
                meaning = flag.meaning()
            ),
        ));
    }
    for scope in &rule.args.scopes {
        if let ScopeArg::Lit(lit) = scope {
            errors.take(check_scope(lit));
        }
    }
    for (_, again) in duplicates(&rule.args.scopes, ScopeArg::key) {
        errors.push(Error::new_spanned(
            again,
            format!(
                "scope `{}` appears twice in this rule; list each scope once",
                again.display()
            ),
        ));
    }
}

/// The actors of `delegation = actors(…)`: at least one, none empty, none twice.
fn actors(delegation: &DelegationArg, errors: &mut Errors) {
    let DelegationPolicy::Actors { name, list } = &delegation.policy else {
        return;
    };
    if list.is_empty() {
        errors.push(Error::new_spanned(
            name,
            "`actors()` lists no actor, which would admit no delegated call: list the actors \
             by their `act.sub`, e.g. `actors(\"assistant\")`, or write `delegation = forbid`",
        ));
    }
    for actor in list {
        let value = actor.value();
        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(Error::new_spanned(
                actor,
                "an actor is the `act.sub` of the agent or service, non-empty and without \
                 spaces or control characters, e.g. `\"assistant\"`",
            ));
        }
    }
    for (_, again) in duplicates(list, LitStr::value) {
        errors.push(Error::new_spanned(
            again,
            format!(
                "actor {:?} appears twice in `actors(…)`; list each actor once",
                again.value()
            ),
        ));
    }
}

/// `rpc = "…"` must be a proto identifier that tonic maps to this very method.
fn rpc_name(value: &syn::LitStr, rust_name: &str, errors: &mut Errors) {
    let rpc = value.value();
    if !naming::is_proto_ident(&rpc) {
        errors.push(Error::new_spanned(
            value,
            format!(
                "{rpc:?} is not a protobuf method name; use the rpc's name from the `.proto` \
                 file, e.g. `rpc = \"GetHTTPStatus\"`"
            ),
        ));
        return;
    }
    let expected = naming::rust_method_name(&rpc);
    if expected != rust_name {
        errors.push(Error::new_spanned(
            value,
            format!(
                "`rpc = {rpc:?}` does not name method `{rust_name}`: tonic names the method for \
                 rpc `{rpc}` `{expected}`; use the proto name of the rpc that `{rust_name}` serves"
            ),
        ));
    }
}
