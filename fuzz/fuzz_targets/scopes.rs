//! Scope claims: the input (JSON) becomes the `scope` claim, the `scp` claim or the
//! `realm_access` object of an otherwise valid HS256 token. Whatever is accepted must match a
//! model of RFC 6749 §3.3: space-separated scope-tokens, arrays of strings, mapped roles.
//! The raw input also goes through `ScopeSet::from_space_delimited`, whose output must
//! round-trip through `Display`.

#![no_main]

use std::collections::BTreeSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use oauth_grpc::{ScopeSet, Validator};
use oauth_grpc_fuzz::{hmac_validator, hs256_header, now, sign_hs256, valid_claims};
use serde_json::Value;

static VALIDATOR: LazyLock<Validator> = LazyLock::new(hmac_validator);

fn scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// What the claim must grant, or `None` when it must be refused.
fn model(slot: u8, value: &Value) -> Option<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    match slot {
        // `scope` or `scp`: a space-delimited string or an array of strings.
        0 | 1 => match value {
            Value::String(s) => {
                set.extend(s.split(' ').filter(|t| scope_token(t)).map(str::to_owned))
            }
            Value::Array(items) => {
                for item in items {
                    let s = item.as_str()?;
                    if scope_token(s) {
                        set.insert(s.to_owned());
                    }
                }
            }
            _ => return None,
        },
        // `realm_access`: its `roles` (a string or an array; non-strings ignored), mapped.
        _ => {
            let roles: Vec<&str> = match value.as_object().and_then(|o| o.get("roles")) {
                None => Vec::new(),
                Some(Value::String(role)) => vec![role.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                Some(_) => return None,
            };
            if roles.contains(&"admin") {
                set.insert("orders:admin".to_owned());
            }
        }
    }
    Some(set)
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let set = ScopeSet::from_space_delimited(text);
        assert!(set.iter().all(scope_token), "a malformed scope in a set");
        assert_eq!(
            ScopeSet::from_space_delimited(&set.to_string()),
            set,
            "Display does not round-trip"
        );
    }
    let Some((&slot, json)) = data.split_first() else {
        return;
    };
    let slot = slot % 3;
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    // Placed in the claims, it is one level deeper; past serde_json's nesting limit of 128 the
    // payload is refused as malformed, which the model does not describe.
    if depth(&value) > 120 {
        return;
    }
    let mut claims = valid_claims();
    let Some(object) = claims.as_object_mut() else {
        return;
    };
    object.remove("scope");
    let name = ["scope", "scp", "realm_access"][usize::from(slot)];
    object.insert(name.to_owned(), value.clone());
    let header = hs256_header().to_string();
    let token = sign_hs256(header.as_bytes(), claims.to_string().as_bytes());
    let got = VALIDATOR.validate_at(&token, now()).map(|p| {
        p.scopes()
            .iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    });
    match (model(slot, &value), got) {
        (Some(want), Ok(got)) => assert_eq!(got, want, "granted scopes differ from the model"),
        (None, Err(_)) => {}
        (want, got) => panic!("model {want:?} but validator {got:?}"),
    }
});
