//! How tonic names Rust methods after proto methods, and back.
//!
//! tonic-prost-build names the method for rpc `GetHTTPStatus` `get_http_status` (prost's
//! `to_snake`, heck's word rules). The reverse, `get_http_status` → `GetHttpStatus`, is not the
//! same rpc, which is why rules take `rpc = "GetHTTPStatus"`. Proto identifiers are ASCII
//! (`[A-Za-z_][A-Za-z0-9_]*`), so these functions split words on ASCII case only.

/// Splits an identifier into words the way heck does: at non-alphanumeric characters, before
/// an uppercase letter that follows a lowercase one (`getOrder` → `get|Order`), and before the
/// last capital of a run that goes on in lowercase (`HTTPStatus` → `HTTP|Status`).
fn words(ident: &str) -> Vec<&str> {
    #[derive(Clone, Copy, PartialEq)]
    enum Case {
        None,
        Lower,
        Upper,
    }

    let mut out = Vec::new();
    for part in ident.split(|c: char| !c.is_ascii_alphanumeric()) {
        let bytes = part.as_bytes();
        let mut start = 0;
        let mut last = Case::None;
        for i in 0..bytes.len() {
            let (c, next) = (bytes[i], bytes.get(i + 1).copied());
            let Some(next) = next else {
                out.push(&part[start..]);
                break;
            };
            let case = if c.is_ascii_lowercase() {
                Case::Lower
            } else if c.is_ascii_uppercase() {
                Case::Upper
            } else {
                last
            };
            if case == Case::Lower && next.is_ascii_uppercase() {
                out.push(&part[start..=i]);
                start = i + 1;
                last = Case::None;
            } else if last == Case::Upper && c.is_ascii_uppercase() && next.is_ascii_lowercase() {
                out.push(&part[start..i]);
                start = i;
                last = Case::None;
            } else {
                last = case;
            }
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// `GetHTTPStatus` → `get_http_status`.
pub(crate) fn snake_case(ident: &str) -> String {
    words(ident)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// `get_http_status` → `GetHttpStatus`.
pub(crate) fn upper_camel_case(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len());
    for word in words(ident) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

/// Keywords that cannot be raw identifiers; prost appends `_` to them instead.
const SUFFIXED_KEYWORDS: [&str; 5] = ["self", "super", "extern", "crate", "Self"];

/// The Rust method name tonic generates for a proto rpc (without any `r#`): prost's
/// `to_snake`, which also puts `_` in front of a name that would start with a digit (`_0`).
pub(crate) fn rust_method_name(rpc: &str) -> String {
    let mut name = snake_case(rpc);
    if SUFFIXED_KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The proto rpc a Rust method name stands for when no `rpc =` says otherwise.
pub(crate) fn default_rpc_name(rust_name: &str) -> String {
    let base = rust_name
        .strip_suffix('_')
        .filter(|base| SUFFIXED_KEYWORDS.contains(base))
        .unwrap_or(rust_name);
    upper_camel_case(base)
}

/// Whether `name` is a protobuf identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_proto_ident(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use heck::{ToSnakeCase, ToUpperCamelCase};
    use proptest::prelude::*;

    #[test]
    fn known_names() {
        assert_eq!(snake_case("GetHTTPStatus"), "get_http_status");
        assert_eq!(snake_case("CreateOrder"), "create_order");
        assert_eq!(snake_case("WhoAmI"), "who_am_i");
        assert_eq!(snake_case("GetV2Orders"), "get_v2_orders");
        assert_eq!(upper_camel_case("get_http_status"), "GetHttpStatus");
        assert_eq!(upper_camel_case("who_am_i"), "WhoAmI");
        assert_eq!(rust_method_name("Self"), "self_");
        assert_eq!(default_rpc_name("self_"), "Self");
        assert_eq!(default_rpc_name("create_order"), "CreateOrder");
        assert!(is_proto_ident("GetHTTPStatus"));
        assert!(is_proto_ident("_x1"));
        assert!(!is_proto_ident("1x"));
        assert!(!is_proto_ident("Get-X"));
        assert!(!is_proto_ident(""));
    }

    /// Runs tonic-prost-build on a service with `rpcs` and returns the Rust method names it
    /// generated for them, in order (without `r#`).
    fn tonic_method_names(rpcs: &[String], case: usize) -> Vec<String> {
        let dir =
            std::env::temp_dir().join(format!("oauth-grpc-naming-{}-{case}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut proto =
            String::from("syntax = \"proto3\";\npackage naming;\nmessage M {}\nservice S {\n");
        for rpc in rpcs {
            proto.push_str(&format!("  rpc {rpc}(M) returns (M);\n"));
        }
        proto.push_str("}\n");
        std::fs::write(dir.join("naming.proto"), proto).expect("write proto");
        let fds = protox::compile(["naming.proto"], [&dir]).expect("protox compiles");
        tonic_prost_build::configure()
            .build_client(false)
            .out_dir(&dir)
            .compile_fds(fds)
            .expect("tonic-prost-build generates");
        let code = std::fs::read_to_string(dir.join("naming.rs")).expect("generated code");
        let _ = std::fs::remove_dir_all(&dir);
        // The server trait declares `async fn name(` once per rpc, in proto order.
        code.lines()
            .filter_map(|line| line.trim_start().strip_prefix("async fn "))
            .map(|rest| {
                let name = rest.split('(').next().unwrap_or_default();
                name.trim_start_matches("r#").to_owned()
            })
            .collect()
    }

    #[test]
    fn tonic_prost_build_agrees_on_keywords() {
        let rpcs: Vec<String> = [
            "Self",
            "Type",
            "Match",
            "Async",
            "Super",
            "Crate",
            "Extern",
            "GetHTTPStatus",
            "WhoAmI",
            "_0",
            "_9Lives",
            "__Get_Order",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let generated = tonic_method_names(&rpcs, usize::MAX);
        let ours: Vec<String> = rpcs.iter().map(|rpc| rust_method_name(rpc)).collect();
        assert_eq!(generated, ours);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Our mapping is the one tonic-prost-build applies: 16 generated services of up to
        /// 40 random rpc names each, compared name by name with the code it writes.
        #[test]
        fn rust_method_name_matches_tonic_prost_build(
            rpcs in proptest::collection::btree_set("[A-Za-z_][A-Za-z0-9_]{0,16}", 1..40),
            case in 0usize..1_000_000,
        ) {
            // A name of underscores only has no Rust name: tonic-prost-build panics on it.
            let rpcs: Vec<String> = rpcs
                .into_iter()
                .filter(|rpc| rpc.bytes().any(|b| b.is_ascii_alphanumeric()))
                .collect();
            prop_assume!(!rpcs.is_empty());
            let generated = tonic_method_names(&rpcs, case);
            let ours: Vec<String> = rpcs.iter().map(|rpc| rust_method_name(rpc)).collect();
            prop_assert_eq!(generated, ours);
        }
    }

    proptest! {
        /// The mapping agrees with heck, which tonic-prost-build uses, on every proto
        /// identifier.
        #[test]
        fn snake_case_matches_heck(name in "[A-Za-z_][A-Za-z0-9_]{0,24}") {
            prop_assert_eq!(snake_case(&name), name.to_snake_case());
        }

        #[test]
        fn upper_camel_case_matches_heck(name in "[a-z_][a-z0-9_]{0,24}") {
            prop_assert_eq!(upper_camel_case(&name), name.to_upper_camel_case());
        }

        /// Snake-case names made by tonic map back to an rpc that tonic maps to them again.
        #[test]
        fn default_rpc_round_trips(name in "[A-Z][a-zA-Z0-9]{0,20}") {
            let rust = rust_method_name(&name);
            prop_assert_eq!(rust_method_name(&default_rpc_name(&rust)), rust);
        }
    }
}
