//! Rule evaluation agrees with a plain set model, for all-of and any-of.

use std::collections::BTreeSet;

use oauth_grpc::{Denial, Principal, Rule, Scope, ScopeSet};
use proptest::prelude::*;

/// A small universe, so that generated rules and grants overlap often.
const UNIVERSE: [Scope; 6] = [
    Scope::from_static("a:read"),
    Scope::from_static("a:write"),
    Scope::from_static("b"),
    Scope::from_static("B"),
    Scope::from_static("a:rea"),
    Scope::from_static("c:x:y"),
];

fn subset() -> impl Strategy<Value = BTreeSet<usize>> {
    proptest::collection::btree_set(0..UNIVERSE.len(), 0..=UNIVERSE.len())
}

/// Rules need `'static` scope slices; leaking a few bytes per case is fine in a test.
fn leak(indices: &BTreeSet<usize>) -> &'static [Scope] {
    Box::leak(
        indices
            .iter()
            .map(|&i| UNIVERSE[i])
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

fn names(indices: &BTreeSet<usize>) -> BTreeSet<&'static str> {
    indices.iter().map(|&i| UNIVERSE[i].as_str()).collect()
}

proptest! {
    #[test]
    fn all_of_is_subset(required in subset(), granted in subset()) {
        let rule = Rule::AllOf(leak(&required));
        let set: ScopeSet = names(&granted).into_iter().collect();
        // An empty all-of admits nobody (fail closed).
        let model = !required.is_empty() && names(&required).is_subset(&names(&granted));
        prop_assert_eq!(rule.is_satisfied_by(&set), model);
    }

    #[test]
    fn any_of_is_nonempty_intersection(required in subset(), granted in subset()) {
        let rule = Rule::AnyOf(leak(&required));
        let set: ScopeSet = names(&granted).into_iter().collect();
        let model = !names(&required).is_disjoint(&names(&granted));
        prop_assert_eq!(rule.is_satisfied_by(&set), model);
    }

    /// `evaluate` adds authentication: no principal is refused unless the rule is public, and
    /// a principal is refused exactly when its scopes do not satisfy the rule.
    #[test]
    fn evaluate_matches_model(required in subset(), granted in subset(), any in any::<bool>(), present in any::<bool>()) {
        let scopes = leak(&required);
        let rule = if any { Rule::AnyOf(scopes) } else { Rule::AllOf(scopes) };
        let principal = Principal::builder().scopes(names(&granted)).build();
        let outcome = rule.evaluate(present.then_some(&principal));
        let satisfied = if any {
            !names(&required).is_disjoint(&names(&granted))
        } else {
            !required.is_empty() && names(&required).is_subset(&names(&granted))
        };
        let expected = match (present, satisfied) {
            (false, _) => Err(Denial::Unauthenticated),
            (true, true) => Ok(()),
            (true, false) => Err(Denial::InsufficientScope(rule)),
        };
        prop_assert_eq!(outcome, expected);
    }

    /// Parsing a space-delimited scope claim keeps exactly the well-formed tokens.
    #[test]
    fn space_delimited_parsing_matches_split(tokens in proptest::collection::vec("[!#-\\[\\]-~]{1,8}", 0..8), gaps in proptest::collection::vec(1usize..3, 8)) {
        let mut claim = String::new();
        for (token, gap) in tokens.iter().zip(&gaps) {
            claim.push_str(token);
            claim.push_str(&" ".repeat(*gap));
        }
        let parsed = ScopeSet::from_space_delimited(&claim);
        let model: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        prop_assert_eq!(parsed.iter().collect::<BTreeSet<_>>(), model);
    }
}

#[test]
fn public_and_authenticated() {
    let nobody = Principal::builder().build();
    assert_eq!(Rule::Public.evaluate(None), Ok(()));
    assert_eq!(
        Rule::Authenticated.evaluate(None),
        Err(Denial::Unauthenticated)
    );
    assert_eq!(Rule::Authenticated.evaluate(Some(&nobody)), Ok(()));
    // An empty any-of can never be satisfied: fail closed.
    assert_eq!(
        Rule::AnyOf(&[]).evaluate(Some(&nobody)),
        Err(Denial::InsufficientScope(Rule::AnyOf(&[])))
    );
}

#[test]
fn scopes_are_exact_and_case_sensitive() {
    const WRITE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
    for near_miss in [
        "orders:writer",
        "Orders:Write",
        "orders:writ",
        "orders: write",
        "orders_write",
    ] {
        let principal = Principal::builder()
            .scopes(ScopeSet::from_space_delimited(near_miss).iter())
            .build();
        assert!(
            WRITE.evaluate(Some(&principal)).is_err(),
            "{near_miss:?} must not satisfy orders:write"
        );
    }
}
