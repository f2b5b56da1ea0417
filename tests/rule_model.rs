//! Rule evaluation agrees with a plain set model, for all-of and any-of; scope claims in
//! signed tokens are parsed as RFC 6749 §3.3 says, whatever shape the provider sends.

use std::collections::BTreeSet;

use std::time::SystemTime;

use oauth_grpc::{Algorithm, KeySet};
use oauth_grpc::{Denial, Principal, Rule, Scope, ScopeSet, TokenError, Validator};
use oauth_grpc_tests::issuer::{self, b64, claims, sign_segments};
use proptest::prelude::*;
use serde_json::{Value, json};

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

const SECRET: &[u8; 32] = b"scope-claims-property-test-key!!";

fn hmac_validator() -> Validator {
    Validator::builder()
        .issuer(issuer::ISSUER)
        .audience(issuer::AUDIENCE)
        .keys(KeySet::from_hmac_secret(None, SECRET, Algorithm::HS256).expect("32-byte key"))
        .build()
        .expect("validator builds")
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// What a claim must grant, or `None` when it must be refused as invalid.
fn granted_by(value: &Value) -> Option<BTreeSet<String>> {
    match value {
        Value::String(s) => Some(
            s.split(' ')
                .filter(|t| scope_token(t))
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(|all| all.into_iter().filter(|s| scope_token(s)).collect()),
        _ => None,
    }
}

/// Scope claims of every shape: space-delimited strings with odd characters and separators,
/// arrays (sometimes holding a non-string), and values of the wrong type.
fn scope_claim() -> impl Strategy<Value = Value> {
    let word = "[ -~\t]{0,10}";
    prop_oneof![
        4 => (
            proptest::collection::vec(word, 0..6),
            proptest::collection::vec(prop_oneof![Just(" "), Just("  "), Just("\t"), Just(",")], 6),
        )
            .prop_map(|(words, seps)| {
                let mut text = String::new();
                for (word, sep) in words.iter().zip(seps) {
                    text.push_str(word);
                    text.push_str(sep);
                }
                Value::String(text)
            }),
        3 => proptest::collection::vec(
            prop_oneof![9 => word.prop_map(Value::String), 1 => any::<i64>().prop_map(|n| json!(n))],
            0..6,
        )
        .prop_map(Value::Array),
        1 => prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!({"scope": "orders:write"})),
        ],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A signed token's `scope` (or, without it, `scp`) grants exactly what the model says,
    /// and a claim of the wrong type is refused as invalid.
    #[test]
    fn scope_claims_grant_what_the_model_says(
        scope in proptest::option::of(scope_claim()),
        scp in proptest::option::of(scope_claim()),
    ) {
        let mut c = claims("unused");
        let object = c.as_object_mut().expect("claims are an object");
        object.remove("scope");
        if let Some(scope) = &scope {
            object.insert("scope".to_owned(), scope.clone());
        }
        if let Some(scp) = &scp {
            object.insert("scp".to_owned(), scp.clone());
        }
        let token = sign_segments(
            &b64(br#"{"alg":"HS256","typ":"at+jwt"}"#),
            &b64(c.to_string().as_bytes()),
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
            jsonwebtoken::Algorithm::HS256,
        );
        let want = match scope.as_ref().or(scp.as_ref()) {
            None => Some(BTreeSet::new()),
            Some(claim) => granted_by(claim),
        };
        let got = hmac_validator()
            .validate_at(&token, SystemTime::now())
            .map(|p| p.scopes().iter().map(str::to_owned).collect::<BTreeSet<_>>());
        match (want, got) {
            (Some(want), Ok(got)) => prop_assert_eq!(got, want),
            (None, Err(error)) => prop_assert_eq!(error, TokenError::InvalidClaim),
            (want, got) => prop_assert!(false, "model {:?}, validator {:?}", want, got),
        }
    }
}
