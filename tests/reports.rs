//! Permission reports, the `--check` guard, and coverage against the protobuf descriptors —
//! including a deliberately mis-annotated service that coverage must catch.

use std::process::ExitCode;

use examples::{AdminDesk, OrderBook};
use oauth_grpc::PolicySet;
use oauth_grpc::report::{Command, Format, Report};
use oauth_grpc_tests::pb::{Msg, echo_server};
use serde_json::Value;
use tonic::{Request, Response, Status, Streaming};

fn policies() -> PolicySet {
    PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>()
}

fn report() -> Report {
    Report::new(&policies())
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptors")
}

#[test]
fn committed_markdown_report_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/permissions.md"
    ))
    .expect("docs/permissions.md is committed");
    // The report of what `orders-server` mounts, as the `permissions` binary prints it.
    let mounted = Report::new(&examples::policies())
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptors")
        .generated_by("cargo run -p examples --bin permissions");
    assert_eq!(
        committed,
        mounted.render(Format::Markdown),
        "regenerate docs/permissions.md"
    );
}

#[test]
fn json_follows_the_committed_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/permissions.schema.json"
        ))
        .expect("schema committed"),
    )
    .expect("schema is JSON");
    let document: Value = serde_json::from_str(&report().render(Format::Json)).expect("JSON");

    // The fields the schema requires, and no others, at each level.
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let required = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v["required"]
            .as_array()
            .expect("required")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&document), required(&schema));
    assert_eq!(
        document["schema_version"],
        schema["properties"]["schema_version"]["const"]
    );
    let service_schema = &schema["properties"]["services"]["items"];
    let method_schema = &service_schema["properties"]["methods"]["items"];
    let names: Vec<&str> = document["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["orders.v1.Orders", "orders.v1.OrdersAdmin"],
        "sorted by name"
    );
    for service in document["services"].as_array().expect("services") {
        assert_eq!(keys(service), required(service_schema));
        let paths: Vec<&str> = service["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .map(|m| m["path"].as_str().expect("path"))
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "methods sorted by path");
        for method in service["methods"].as_array().expect("methods") {
            assert_eq!(keys(method), required(method_schema));
            assert_eq!(
                method_schema["properties"]["sender_constrained"]["type"],
                "boolean"
            );
            assert!(method["sender_constrained"].is_boolean(), "{method}");
            assert_eq!(method_schema["properties"]["once"]["type"], "boolean");
            assert!(method["once"].is_boolean(), "{method}");
            for field in ["streaming", "rule"] {
                let allowed = method_schema["properties"][field]["enum"]
                    .as_array()
                    .expect("enum");
                assert!(
                    allowed.contains(&method[field]),
                    "{field} {} not in the schema",
                    method[field]
                );
            }
        }
    }
    let totals = &document["totals"];
    assert_eq!(totals["rpcs"], 11);
    assert_eq!(totals["public"], 1);
    assert_eq!(totals["authenticated"], 1);
    assert_eq!(totals["scoped"], 9);
    let create = &document["services"][0]["methods"][1];
    assert_eq!(create["path"], "/orders.v1.Orders/CreateOrder");
    assert_eq!(create["rule"], "all_of");
    assert_eq!(create["scopes"], serde_json::json!(["orders:write"]));
    assert_eq!(document["services"][0]["methods"][4]["streaming"], "client");
    assert_eq!(document["services"][0]["methods"][6]["streaming"], "bidi");
    assert_eq!(
        document["services"][0]["methods"][6]["outlives_token"],
        serde_json::Value::Null
    );
    // `once`: RefundOrder alone admits each token once.
    let refund = &document["services"][0]["methods"][5];
    assert_eq!(refund["path"], "/orders.v1.Orders/RefundOrder");
    assert_eq!(refund["once"], true, "{refund}");
    let once: Vec<&str> = document["services"]
        .as_array()
        .expect("services")
        .iter()
        .flat_map(|s| s["methods"].as_array().expect("methods"))
        .filter(|m| m["once"] == true)
        .map(|m| m["path"].as_str().expect("path"))
        .collect();
    assert_eq!(once, ["/orders.v1.Orders/RefundOrder"]);
    let export = &document["services"][1]["methods"][0];
    assert_eq!(export["path"], "/orders.v1.OrdersAdmin/ExportOrders");
    assert!(
        export["outlives_token"]
            .as_str()
            .is_some_and(|reason| reason.contains("longer than a token lives")),
        "{export}"
    );
    assert_eq!(export["sender_constrained"], false);
    let purge = &document["services"][1]["methods"][1];
    assert_eq!(purge["path"], "/orders.v1.OrdersAdmin/PurgeCancelled");
    assert_eq!(purge["sender_constrained"], true, "{purge}");
    assert_eq!(create["sender_constrained"], false);
    // Delegation: CreateOrder lists its actor, CancelOrder forbids, reads allow; the
    // back office forbids by its impl-wide default; the public rpc is `allow`.
    let delegation = |service: usize, method: usize| {
        document["services"][service]["methods"][method]["delegation"].clone()
    };
    assert_eq!(
        delegation(0, 1),
        serde_json::json!({ "policy": "actors", "actors": ["assistant"] })
    );
    assert_eq!(
        delegation(0, 0),
        serde_json::json!({ "policy": "forbid", "actors": [] })
    );
    assert_eq!(
        delegation(0, 3),
        serde_json::json!({ "policy": "allow", "actors": [] })
    );
    assert_eq!(
        delegation(0, 5),
        serde_json::json!({ "policy": "forbid", "actors": [] }),
        "RefundOrder"
    );
    assert_eq!(
        delegation(0, 2)["policy"],
        "allow",
        "GetHTTPStatus is public"
    );
    assert_eq!(delegation(1, 0)["policy"], "forbid");
    assert_eq!(delegation(1, 1)["policy"], "forbid");
    let policies = method_schema["properties"]["delegation"]["properties"]["policy"]["enum"]
        .as_array()
        .expect("enum");
    for service in document["services"].as_array().expect("services") {
        for method in service["methods"].as_array().expect("methods") {
            assert!(
                policies.contains(&method["delegation"]["policy"]),
                "{method}"
            );
        }
    }
}

#[test]
fn csv_and_istio() {
    let csv = report().render(Format::Csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "service,rpc,path,rust_name,streaming,rule,scopes,outlives_token,sender_constrained,delegation,delegation_actors,once"
    );
    assert!(lines.contains(&"orders.v1.Orders,CancelOrder,/orders.v1.Orders/CancelOrder,cancel_order,unary,all_of,orders:write orders:cancel,,false,forbid,,false"));
    assert!(lines.contains(&"orders.v1.Orders,CreateOrder,/orders.v1.Orders/CreateOrder,create_order,unary,all_of,orders:write,,false,actors,assistant,false"), "{csv}");
    assert!(lines.contains(&"orders.v1.Orders,GetHTTPStatus,/orders.v1.Orders/GetHTTPStatus,get_http_status,unary,public,,,false,allow,,false"));
    assert!(lines.contains(&"orders.v1.Orders,RefundOrder,/orders.v1.Orders/RefundOrder,refund_order,unary,all_of,orders:refund,,false,forbid,,true"), "{csv}");
    assert!(lines.contains(&"orders.v1.OrdersAdmin,PurgeCancelled,/orders.v1.OrdersAdmin/PurgeCancelled,purge_cancelled,unary,all_of,orders:admin,,true,forbid,,false"), "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("orders.v1.OrdersAdmin,ExportOrders,")
                && l.ends_with(
                    ",a full export may take longer than a token lives; a cut export is useless,false,forbid,,false"
                )),
        "{csv}"
    );
    assert_eq!(lines.len(), 12);

    let istio = report().render(Format::Istio);
    assert_eq!(
        istio.matches("kind: AuthorizationPolicy").count(),
        4,
        "one per service, and one per service for its delegation rules"
    );
    assert_eq!(istio.matches("  action: ALLOW\n").count(), 2);
    // The delegation policies: DENY calls with an actor on `forbid` paths, and with an
    // unlisted actor on `actors(…)` paths.
    let deny = istio
        .split("  name: orders-v1-orders-delegation\n")
        .nth(1)
        .expect("a delegation policy for orders.v1.Orders");
    let deny = deny.split("---").next().unwrap_or_default();
    assert!(deny.contains("  action: DENY\n"), "{deny}");
    assert!(deny.contains("  # delegation: forbid\n  - to:\n    - operation:\n        paths:\n        - \"/orders.v1.Orders/CancelOrder\"\n        - \"/orders.v1.Orders/RefundOrder\"\n    when:\n    - key: request.auth.claims[act][sub]\n      values: [\"*\"]\n"), "{deny}");
    assert!(deny.contains("  # delegation: actors(assistant)\n  - to:\n    - operation:\n        paths:\n        - \"/orders.v1.Orders/CreateOrder\"\n        - \"/orders.v1.Orders/ImportOrders\"\n    when:\n    - key: request.auth.claims[act][sub]\n      values: [\"*\"]\n    - key: request.auth.claims[act][sub]\n      notValues: [\"assistant\"]\n"), "{deny}");
    assert!(!deny.contains("GetOrder"), "reads allow delegation: {deny}");
    assert!(istio.contains("  name: orders-v1-ordersadmin-delegation\n"));
    // CreateOrder and ImportOrders share a rule: one group.
    assert!(istio.contains("        - \"/orders.v1.Orders/CreateOrder\"\n        - \"/orders.v1.Orders/ImportOrders\"\n"));
    // all-of: one condition per scope (ANDed); any-of: one condition with both values (ORed).
    assert!(istio.contains("      values: [\"orders:write\"]\n    - key: request.auth.claims[scope]\n      values: [\"orders:cancel\"]"));
    assert!(istio.contains("values: [\"orders:read\", \"orders:admin\"]"));
    // The public rpc has no `from`: no token needed.
    let public = istio.split("  # public\n").nth(1).expect("a public rule");
    assert!(public.starts_with("  - to:"));
}

#[test]
fn check_guards_against_silent_permission_changes() {
    let dir = std::env::temp_dir().join(format!("oauth-grpc-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("permissions.md");
    let policies = policies();
    let command = || Command::new(&policies).descriptors(examples::pb::FILE_DESCRIPTOR_SET);
    let args = |extra: &[&str]| extra.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    std::fs::write(&file, report().render(Format::Markdown)).expect("write");
    let path = file.to_string_lossy().into_owned();
    assert_eq!(command().run(args(&["--check", &path])), ExitCode::SUCCESS);

    // Someone loosened a rule in the committed copy (or in the code): the check fails.
    let rendered = report().render(Format::Markdown);
    let line = "| `/orders.v1.Orders/CreateOrder` | unary | all of: `orders:write`; **delegated only by** `assistant` |";
    assert!(rendered.contains(line), "{rendered}");
    let edited = rendered.replace(line, "| `/orders.v1.Orders/CreateOrder` | unary | public |");
    std::fs::write(&file, edited).expect("write");
    assert_eq!(command().run(args(&["--check", &path])), ExitCode::FAILURE);
    // A delegation rule dropped counts as a permission change too.
    let edited = rendered.replace(
        line,
        "| `/orders.v1.Orders/CreateOrder` | unary | all of: `orders:write` |",
    );
    std::fs::write(&file, edited).expect("write");
    assert_eq!(command().run(args(&["--check", &path])), ExitCode::FAILURE);
    // (The diff printed with the failure is unit-tested in `report/command.rs`.)

    assert_eq!(command().run(args(&["--coverage"])), ExitCode::SUCCESS);
    assert_eq!(
        command().run(args(&["--format", "yaml"])),
        ExitCode::from(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A service that forgot `rpc = "GetHTTPStatus"`: its table says `GetHttpStatus`.
struct MisAnnotated;

#[oauth_grpc::protect(default = authenticated)]
#[tonic::async_trait]
impl echo_server::Echo for MisAnnotated {
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    type SayManyStream = tokio_stream::Empty<Result<Msg, Status>>;

    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

#[test]
fn coverage_catches_a_mis_annotated_rpc() {
    let policies = PolicySet::new().service::<MisAnnotated>();
    let coverage = Report::new(&policies)
        .descriptors(oauth_grpc_tests::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptors")
        .coverage()
        .expect("descriptors given");
    assert!(!coverage.is_complete());
    assert_eq!(
        coverage.without_rule,
        [
            "/ui.v1.Echo/GetHTTPStatus",
            "/ui.v1.Ping/Ping",
            "/ui.v1.Ping/Pong"
        ]
    );
    assert_eq!(coverage.without_rpc, ["/ui.v1.Echo/GetHttpStatus"]);
    let text = coverage.to_string();
    assert!(
        text.contains("rule for no rpc of the descriptors: /ui.v1.Echo/GetHttpStatus"),
        "{text}"
    );

    // The layer's start-up check fails fast with the same list.
    let validator = oauth_grpc_tests::validator();
    let err = oauth_grpc::OAuthLayer::new(validator, policies)
        .check_coverage(oauth_grpc_tests::pb::FILE_DESCRIPTOR_SET)
        .unwrap_err();
    assert!(
        err.to_string().contains("/ui.v1.Echo/GetHTTPStatus"),
        "{err}"
    );

    // The example's own services are fully covered.
    let own = report().coverage().expect("descriptors given");
    assert!(own.is_complete(), "{own}");

    // Without descriptors there is nothing to compare with: an error, not "all covered".
    let blind = Report::new(&self::policies());
    assert!(matches!(
        blind.coverage(),
        Err(oauth_grpc::report::CoverageError::NoDescriptors)
    ));
    let all = self::policies();
    let code = Command::new(&all).run(["--coverage"].map(String::from));
    assert_eq!(code, ExitCode::from(2));
}

/// The Istio export lands where it is meant to: in a namespace, on the workloads a selector
/// names; without them it says loudly what applying it as printed would cover.
#[test]
fn istio_namespace_and_selector() {
    let bare = report().render(Format::Istio);
    assert!(bare.contains("# WARNING: no namespace"), "{bare}");
    assert!(bare.contains("# WARNING: no selector"), "{bare}");
    assert!(!bare.contains("  namespace:"));
    assert!(!bare.contains("  selector:"));

    let placed = report()
        .istio_namespace("shop")
        .istio_selector("app", "orders")
        .istio_selector("tier", "api")
        .render(Format::Istio);
    assert!(!placed.contains("WARNING"), "{placed}");
    for policy in placed.split("---\n").skip(1) {
        assert!(policy.contains("metadata:\n  name: "), "{policy}");
        assert!(policy.contains("\n  namespace: shop\n"), "{policy}");
        assert!(
            policy.contains(
                "spec:\n  selector:\n    matchLabels:\n      app: \"orders\"\n      tier: \"api\"\n  action: "
            ),
            "{policy}"
        );
    }

    // The same through the command's flags.
    let policies = policies();
    let args = |extra: &[&str]| extra.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let run = |extra: &[&str]| Command::new(&policies).run(args(extra));
    assert_eq!(
        run(&[
            "--format",
            "istio",
            "--namespace",
            "shop",
            "--selector",
            "app=orders"
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        run(&["--format", "istio", "--selector", "app"]),
        ExitCode::from(2)
    );
    assert_eq!(
        run(&["--format", "istio", "--selector", "=orders"]),
        ExitCode::from(2)
    );
    assert_eq!(
        run(&["--format", "istio", "--namespace"]),
        ExitCode::from(2)
    );
}

/// A method whose rule says `bound` (the example's `PurgeCancelled`) is marked in every
/// format: a note in its Markdown rule cell, `sender_constrained` in JSON and CSV (checked
/// above), and in Istio a rule of its own that also needs an mTLS peer.
#[test]
fn bound_methods_are_marked_in_every_format() {
    let markdown = report().render(Format::Markdown);
    assert!(
        markdown.contains(
            "| `/orders.v1.OrdersAdmin/PurgeCancelled` | unary | all of: `orders:admin`; **bound token required** (mTLS certificate or DPoP key); **no delegated calls** (the token's subject only, no actor) |\n"
        ),
        "{markdown}"
    );
    assert_eq!(markdown.matches("bound token required").count(), 1);

    let istio = report().render(Format::Istio);
    let admin = istio
        .split("---\n")
        .find(|p| p.contains("name: orders-v1-ordersadmin\n"))
        .expect("the OrdersAdmin policy");
    // Same scopes, different binding: two groups, each exported on `scope` and on `scp`.
    let bound = "  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n        principals: [\"*\"]\n    to:\n    - operation:\n        paths:\n        - \"/orders.v1.OrdersAdmin/PurgeCancelled\"\n    when:\n";
    let unbound = "  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n    to:\n    - operation:\n        paths:\n        - \"/orders.v1.OrdersAdmin/ExportOrders\"\n    when:\n";
    assert_eq!(admin.matches(bound).count(), 2, "{admin}");
    assert_eq!(admin.matches(unbound).count(), 2, "{admin}");
    assert_eq!(
        admin.matches("        principals: [\"*\"]\n").count(),
        2,
        "{admin}"
    );
    assert_eq!(
        admin
            .matches("  # all of: orders:admin; bound token: mTLS peer required\n")
            .count(),
        1
    );
    assert_eq!(
        admin
            .matches(
                "  # all of: orders:admin; bound token: mTLS peer required (scopes in `scp`)\n"
            )
            .count(),
        1
    );
    // No other service asks for a peer.
    assert_eq!(istio.matches("        principals: [\"*\"]\n").count(), 2);
    // The header says what the mesh cannot check of a bound token.
    for limit in ["source.principals", "STRICT", "x5t#S256"] {
        assert!(istio.contains(limit), "{limit}");
    }
}

/// A hand-written table may bind a method with any rule; the Istio export keeps the peer
/// condition even where no token is read.
#[test]
fn istio_bound_rules_from_a_hand_written_table() {
    use oauth_grpc::{MethodPolicy, Rule, ServicePolicy};
    static PAYMENTS: ServicePolicy = ServicePolicy::new(
        "pay.v1.Payments",
        &[
            MethodPolicy::new("Pay", "/pay.v1.Payments/Pay", "pay", Rule::Authenticated)
                .bound_to_sender(),
            MethodPolicy::new(
                "Quote",
                "/pay.v1.Payments/Quote",
                "quote",
                Rule::Authenticated,
            ),
            MethodPolicy::new(
                "Refund",
                "/pay.v1.Payments/Refund",
                "refund",
                Rule::Authenticated,
            )
            .bound_to_sender(),
            MethodPolicy::new("Status", "/pay.v1.Payments/Status", "status", Rule::Public)
                .bound_to_sender(),
        ],
    );
    let istio = Report::new(&PolicySet::new().policy(&PAYMENTS)).render(Format::Istio);
    assert!(istio.contains(
        "  # authenticated; bound token: mTLS peer required\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n        principals: [\"*\"]\n    to:\n    - operation:\n        paths:\n        - \"/pay.v1.Payments/Pay\"\n        - \"/pay.v1.Payments/Refund\"\n"
    ), "{istio}");
    assert!(istio.contains(
        "  # authenticated\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n    to:\n    - operation:\n        paths:\n        - \"/pay.v1.Payments/Quote\"\n"
    ), "{istio}");
    assert!(istio.contains(
        "  # public; bound token: mTLS peer required\n  - from:\n    - source:\n        principals: [\"*\"]\n    to:\n"
    ), "{istio}");
}

/// Scopes carried in `scp` (Okta, Entra ID) never match a condition on `scope`: every scoped
/// rule is exported a second time on `scp`, ORed with the first.
#[test]
fn istio_scoped_rules_also_match_scp() {
    let istio = report().render(Format::Istio);
    let orders = istio
        .split("---\n")
        .find(|p| p.contains("name: orders-v1-orders\n"))
        .expect("the Orders policy");
    for claim in ["scope", "scp"] {
        assert!(
            orders.contains(&format!(
                "    - key: request.auth.claims[{claim}]\n      values: [\"orders:write\"]\n    - key: request.auth.claims[{claim}]\n      values: [\"orders:cancel\"]"
            )),
            "{claim}: {orders}"
        );
        assert!(orders.contains(&format!(
            "    - key: request.auth.claims[{claim}]\n      values: [\"orders:read\", \"orders:admin\"]"
        )));
    }
    assert_eq!(
        orders
            .matches("# all of: orders:write, orders:cancel (scopes in `scp`)")
            .count(),
        1
    );
    // Public and authenticated rules name no claim, so they are not doubled.
    assert_eq!(orders.matches("  # public\n").count(), 1);
    assert_eq!(orders.matches("  # authenticated\n").count(), 1);
    // The header says what the mesh cannot mirror.
    for limit in ["introspection", "401", "RequestAuthentication", "`scp`"] {
        assert!(istio.contains(limit), "{limit}");
    }
}

/// A service opened with `public_service` is in every format, so the mesh export does not
/// deny what the layer lets through (health checks, reflection).
#[test]
fn public_services_are_reported_in_every_format() {
    let policies = policies()
        .public_service("grpc.health.v1.Health")
        .public_service("grpc.reflection.*");
    let with_public = Report::new(&policies);

    let markdown = with_public.render(Format::Markdown);
    assert!(markdown.contains("## Public services\n"), "{markdown}");
    assert!(markdown.contains("- `grpc.health.v1.Health`\n- `grpc.reflection.*`\n"));

    let json: Value = serde_json::from_str(&with_public.render(Format::Json)).expect("JSON");
    assert_eq!(
        json["public_services"],
        serde_json::json!(["grpc.health.v1.Health", "grpc.reflection.*"])
    );

    let csv = with_public.render(Format::Csv);
    assert!(
        csv.contains(
            "\ngrpc.health.v1.Health,*,/grpc.health.v1.Health/*,,unknown,public,,,false,allow,,false\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains(
            "\ngrpc.reflection.*,*,/grpc.reflection.*,,unknown,public,,,false,allow,,false\n"
        ),
        "{csv}"
    );

    let istio = with_public.render(Format::Istio);
    // Two services with tables (each with its delegation policy) and two public services.
    assert_eq!(istio.matches("kind: AuthorizationPolicy").count(), 6);
    let health = istio
        .split("---\n")
        .find(|p| p.contains("name: grpc-health-v1-health\n"))
        .expect("a policy for the health service");
    assert!(health.contains("  # public\n  - to:\n    - operation:\n        paths:\n        - \"/grpc.health.v1.Health/*\"\n"), "{health}");
    assert!(!health.contains("from:"), "no token needed: {health}");
    assert!(istio.contains("name: grpc-reflection-all\n"));
    assert!(istio.contains("        - \"/grpc.reflection.*\"\n"));

    // Without public services the Markdown report has no such section.
    assert!(
        !report()
            .render(Format::Markdown)
            .contains("Public services")
    );
}

/// Istio reads `*` in `values` as a prefix, suffix or presence match: a scope holding one
/// would widen the mesh rule. Such a rule is left out (its paths stay denied) and the command
/// refuses to export.
#[test]
fn istio_refuses_scopes_with_a_wildcard() {
    use oauth_grpc::{MethodPolicy, Rule, Scope, ServicePolicy};
    static STARRY: ServicePolicy = ServicePolicy::new(
        "ui.v1.Echo",
        &[
            MethodPolicy::new(
                "Say",
                "/ui.v1.Echo/Say",
                "say",
                Rule::AllOf(&[Scope::from_static("echo:*")]),
            ),
            MethodPolicy::new("Shout", "/ui.v1.Echo/Shout", "shout", Rule::Authenticated),
        ],
    );
    let policies = PolicySet::new().policy(&STARRY);
    let istio = Report::new(&policies).render(Format::Istio);
    assert!(istio.contains("# NOT EXPORTED (all of: echo:*)"), "{istio}");
    assert!(!istio.contains("\"/ui.v1.Echo/Say\""), "{istio}");
    assert!(istio.contains("\"/ui.v1.Echo/Shout\""));
    assert!(!istio.contains("values: [\"echo:*\"]"));
    let code = Command::new(&policies).run(["--format", "istio"].map(String::from));
    assert_eq!(code, ExitCode::from(2));
    // The other formats report the scope as it is.
    let code = Command::new(&policies).run(["--format", "csv"].map(String::from));
    assert_eq!(code, ExitCode::SUCCESS);
}
