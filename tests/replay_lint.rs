//! `permissions replay` and `permissions --lint`: a log recorded under the example's rules,
//! replayed against rules with one method tightened, lists exactly the calls that flip; the
//! lint finds what is planted in a protected test service.

use std::path::PathBuf;
use std::process::ExitCode;

use examples::{AdminDesk, OrderBook, OrderScope};
use oauth_grpc::audit::{AuditEvent, AuditRecord, Decision};
use oauth_grpc::report::{Command, Direction, Lint, LintCode, Replay};
use oauth_grpc::{
    Actor, MethodPolicy, PolicySet, Principal, ProtectedService, Rule, Scope, ServicePolicy,
};
use oauth_grpc_tests::pb::{Msg, echo_server};
use tonic::{Request, Response, Status, Streaming};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A file of the test's own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "oauth-grpc-replay-lint-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("write the temporary file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// --- replay --------------------------------------------------------------------------------

/// The example's `orders.v1.Orders` table, with one rule tightened: `WhoAmI` needs
/// `orders:read` instead of any valid token.
const ORDERS: &[MethodPolicy] = OrderBook::POLICY.methods();
const READ: Rule = Rule::AllOf(&[Scope::from_static("orders:read")]);
static TIGHTENED_METHODS: [MethodPolicy; 9] = [
    ORDERS[0],
    ORDERS[1],
    ORDERS[2],
    ORDERS[3],
    ORDERS[4],
    ORDERS[5],
    ORDERS[6],
    MethodPolicy::new(
        ORDERS[7].rpc(),
        ORDERS[7].path(),
        ORDERS[7].rust_name(),
        READ,
    ),
    ORDERS[8],
];
static TIGHTENED: ServicePolicy = ServicePolicy::new("orders.v1.Orders", &TIGHTENED_METHODS);

/// What `orders-server` mounts, with `WhoAmI` tightened.
fn tightened() -> PolicySet {
    PolicySet::new()
        .policy(&TIGHTENED)
        .service::<AdminDesk>()
        .public_service("grpc.health.v1.Health")
}

/// A log as the example's layer would write it: each call decided by `examples::policies()`.
fn recorded_log() -> String {
    let policies = examples::policies();
    let alice = Principal::builder()
        .subject("alice")
        .client_id("orders-web")
        .issuer("https://idp.example/")
        .token_id("jti-alice")
        .scopes(["orders:read", "orders:write"])
        .build();
    let bob = Principal::builder()
        .subject("bob")
        .client_id("back-office")
        .token_id("jti-bob")
        .scopes(["orders:admin"])
        .build();
    // A token for signing in only: no orders scope.
    let carol = Principal::builder()
        .subject("carol")
        .client_id("orders-cli")
        .token_id("jti-carol")
        .build();
    let agent = Principal::builder()
        .subject("alice")
        .client_id("assistant-app")
        .token_id("jti-agent")
        .scopes(["orders:write"])
        .actor(Actor::new(Some("assistant".into()), None))
        .build();
    let calls: [(&str, Option<&Principal>, &str); 10] = [
        ("/orders.v1.Orders/GetOrder", Some(&alice), "trace-01"),
        ("/orders.v1.Orders/WhoAmI", Some(&alice), "trace-02"),
        ("/orders.v1.Orders/WhoAmI", Some(&carol), "trace-03"),
        ("/orders.v1.Orders/GetOrder", Some(&carol), "trace-04"),
        ("/orders.v1.Orders/CreateOrder", Some(&agent), "trace-05"),
        ("/orders.v1.Orders/WhoAmI", Some(&carol), "trace-06"),
        ("/orders.v1.Orders/GetHTTPStatus", None, "trace-07"),
        (
            "/orders.v1.OrdersAdmin/ExportOrders",
            Some(&bob),
            "trace-08",
        ),
        ("/orders.v1.Orders/WhoAmI", None, "trace-09"),
        ("/grpc.health.v1.Health/Check", None, "trace-10"),
    ];
    let mut log = String::new();
    for (path, principal, trace) in calls {
        let rule = policies.rule_for(path).expect("a path of the example");
        let (decision, reason) = match principal {
            _ if rule.is_public() => (Decision::Allow, "public"),
            None => (Decision::Deny, "missing_token"),
            Some(p) if rule.evaluate(Some(p)).is_err() => (Decision::Deny, "insufficient_scope"),
            Some(_) => (Decision::Allow, "authorized"),
        };
        let fingerprint = principal.map(|_| "9f86d081884c7d65");
        let mut event = AuditEvent::new(decision, reason, path)
            .with_rule(rule)
            .with_trace_id(Some(trace))
            .with_token_fingerprint(fingerprint);
        event.principal = principal.filter(|_| !rule.is_public());
        log.push_str(&AuditRecord::from_event(&event).to_line());
        // Blank lines are skipped.
        if trace == "trace-05" {
            log.push('\n');
        }
    }
    log
}

#[test]
fn the_tightened_table_differs_in_one_rule() {
    assert_eq!(ORDERS[7].rpc(), "WhoAmI");
    assert_eq!(ORDERS[7].rule(), Rule::Authenticated);
    let changed: Vec<&str> = TIGHTENED
        .methods()
        .iter()
        .zip(ORDERS)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.rpc())
        .collect();
    assert_eq!(changed, ["WhoAmI"]);
}

#[test]
fn replay_under_the_recording_rules_changes_nothing() {
    let policies = examples::policies();
    let outcome = Replay::new(&policies)
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptors")
        .run(recorded_log().as_bytes())
        .expect("a well-formed log");
    assert_eq!((outcome.records, outcome.unchanged), (10, 10), "{outcome}");
    assert!(!outcome.would_change());
    // The health service is not in the descriptors, and is not taken for a removed one.
    assert!(outcome.removed.is_empty() && outcome.unruled.is_empty());
}

#[test]
fn replay_lists_exactly_the_calls_that_flip() {
    let policies = tightened();
    let outcome = Replay::new(&policies)
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptors")
        .run(recorded_log().as_bytes())
        .expect("a well-formed log");
    // Carol's two WhoAmI calls lose access; alice (orders:read) and the refusal stay.
    assert_eq!(outcome.records, 10);
    assert_eq!(outcome.unchanged, 8);
    assert_eq!(outcome.flips.len(), 1, "{outcome}");
    let flip = &outcome.flips[0];
    assert_eq!(flip.rpc, "/orders.v1.Orders/WhoAmI");
    assert_eq!(flip.direction, Direction::AllowedToDenied);
    assert_eq!(flip.count, 2);
    assert_eq!(flip.rule_before.as_deref(), Some("authenticated"));
    assert_eq!(flip.rule_now, "all of: orders:read");
    let example = &flip.example;
    assert_eq!(example.line, 3);
    assert_eq!(example.subject.as_deref(), Some("carol"));
    assert_eq!(example.client_id.as_deref(), Some("orders-cli"));
    assert_eq!(example.trace_id.as_deref(), Some("trace-03"));
    assert_eq!(
        example.token_fingerprint.as_deref(),
        Some("9f86d081884c7d65")
    );
    assert_eq!(
        (example.reason_before.as_str(), example.reason_now.as_str()),
        ("authorized", "insufficient_scope")
    );
    assert!(outcome.would_change());

    let text = outcome.to_string();
    assert!(
        text.contains("\nallowed → denied:\n  /orders.v1.Orders/WhoAmI: 2 calls\n    rule now:  all of: orders:read\n    recorded:  authenticated\n    e.g.       line 3, "),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&outcome.to_json()).expect("JSON");
    assert_eq!(json["totals"]["flipped"], 2);
    assert_eq!(json["flips"][0]["example"]["trace_id"], "trace-03");
}

#[test]
fn replay_command_exit_codes() {
    let log = TempFile::new("audit.jsonl", &recorded_log());
    let recording = examples::policies();
    let tightened = tightened();
    let run = |policies: &PolicySet, list: &[&str]| {
        Command::new(policies)
            .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
            .run(args(list))
    };
    assert_eq!(run(&recording, &["replay", log.path()]), ExitCode::SUCCESS);
    assert_eq!(run(&tightened, &["replay", log.path()]), ExitCode::FAILURE);
    assert_eq!(
        run(&tightened, &["replay", log.path(), "--allow-flips"]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        run(&tightened, &["replay", log.path(), "--format", "json"]),
        ExitCode::FAILURE
    );

    // Errors: 2, never a partial answer.
    let broken = TempFile::new(
        "broken.jsonl",
        &format!("{}{{\"schema_version\":1\n", recorded_log()),
    );
    assert_eq!(
        run(&recording, &["replay", broken.path()]),
        ExitCode::from(2)
    );
    assert_eq!(
        run(&recording, &["replay", broken.path(), "--allow-flips"]),
        ExitCode::from(2)
    );
    let missing = format!("{}.missing", log.path());
    assert_eq!(run(&recording, &["replay", &missing]), ExitCode::from(2));
    assert_eq!(run(&recording, &["replay"]), ExitCode::from(2));
    assert_eq!(
        run(&recording, &["replay", log.path(), "--format", "csv"]),
        ExitCode::from(2)
    );
    // Options of the other modes are refused, not ignored.
    assert_eq!(
        run(&recording, &["replay", log.path(), "--coverage"]),
        ExitCode::from(2)
    );
    assert_eq!(run(&recording, &["--allow-flips"]), ExitCode::from(2));
}

// --- lint ----------------------------------------------------------------------------------

oauth_grpc::scopes! {
    /// The echo scopes, with one that no rule requires.
    pub enum EchoScope {
        /// Say things.
        Say = "echo:say",
        /// Say them loudly.
        Shout = "echo:shout",
        /// Planted: required by no rule.
        Whisper = "echo:whisper",
    }
}

/// An echo service whose default needs `echo:say`, with one method planted that is looser.
struct Loud;

#[oauth_grpc::protect(default = require_scope(EchoScope::Say))]
#[tonic::async_trait]
impl echo_server::Echo for Loud {
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_scope(EchoScope::Say, EchoScope::Shout)]
    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    type SayManyStream = tokio_stream::Empty<Result<Msg, Status>>;

    // Planted: any token, beside a default that needs `echo:say`.
    #[authenticated]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    // An explicit `#[public]` is a stated decision: not flagged.
    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

#[test]
fn the_macro_records_the_default_and_who_took_it() {
    const SAY: Rule = Rule::AllOf(&[Scope::from_static("echo:say")]);
    assert_eq!(Loud::POLICY.default_rule(), Some(SAY));
    let took_default: Vec<&str> = Loud::POLICY
        .methods()
        .iter()
        .filter(|m| m.rule_is_default())
        .map(|m| m.rpc())
        .collect();
    assert_eq!(took_default, ["Say", "Collect"]);
    assert_eq!(OrderBook::POLICY.default_rule(), None);
}

#[test]
fn lint_finds_what_is_planted() {
    let policies = PolicySet::new().service::<Loud>();
    let report = Lint::new(&policies).catalog::<EchoScope>().check();
    let found: Vec<(LintCode, &str)> = report
        .warnings
        .iter()
        .map(|w| (w.code, w.item.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (LintCode::UnusedScope, "echo:whisper"),
            (LintCode::LooserThanDefault, "/ui.v1.Echo/SayMany"),
        ],
        "{report}"
    );
    let text = report.to_string();
    assert!(
        text.contains("warning[unused-scope]: scope `echo:whisper` of the catalog `replay_lint::EchoScope` is required by no rule"),
        "{text}"
    );
    assert!(
        text.contains("warning[looser-than-default]: /ui.v1.Echo/SayMany (authenticated) is looser than its service's default (all of: echo:say)"),
        "{text}"
    );

    let run = |list: &[&str]| {
        Command::new(&policies)
            .catalog::<EchoScope>()
            .run(args(list))
    };
    assert_eq!(run(&["--lint"]), ExitCode::FAILURE);
    assert_eq!(run(&["--lint", "--format", "json"]), ExitCode::FAILURE);
    assert_eq!(
        run(&[
            "--lint",
            "--allow",
            "unused-scope=echo:whisper",
            "--allow",
            "looser-than-default"
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        run(&["--lint", "--allow", "unused_scope"]),
        ExitCode::from(2)
    );
}

#[test]
fn the_example_rules_lint_clean() {
    let policies = examples::policies();
    let command = || Command::new(&policies).catalog::<OrderScope>();
    assert_eq!(command().run(args(&["--lint"])), ExitCode::SUCCESS);
    let report = Lint::new(&policies).catalog::<OrderScope>().check();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn lint_against_an_audit_log() {
    let policies = examples::policies();
    let log = TempFile::new("lint-audit.jsonl", &recorded_log());
    let report = Lint::new(&policies)
        .catalog::<OrderScope>()
        .audit(recorded_log().as_bytes())
        .expect("a well-formed log")
        .check();
    let found: Vec<(LintCode, &str)> = report
        .warnings
        .iter()
        .map(|w| (w.code, w.item.as_str()))
        .collect();
    // Nobody in the log holds `orders:cancel` or `orders:refund`.
    assert_eq!(
        found,
        [
            (LintCode::ScopeNeverGranted, "orders:cancel"),
            (LintCode::ScopeNeverGranted, "orders:refund"),
            (LintCode::UnreachableMethod, "/orders.v1.Orders/CancelOrder"),
            (LintCode::UnreachableMethod, "/orders.v1.Orders/RefundOrder"),
        ],
        "{report}"
    );
    let command = || Command::new(&policies).catalog::<OrderScope>();
    assert_eq!(
        command().run(args(&["--lint", "--audit", log.path()])),
        ExitCode::FAILURE
    );
    let broken = TempFile::new("lint-broken.jsonl", "{}\n");
    assert_eq!(
        command().run(args(&["--lint", "--audit", broken.path()])),
        ExitCode::from(2)
    );
}

// --- replay of a log recorded by a real server ------------------------------------------------

/// A token of `sub` with `scope`, signed by the test issuer's RSA key.
fn signed(sub: &str, scope: &str, jti: &str) -> String {
    use oauth_grpc_tests::issuer::{TestKey, claims, header, sign_json};
    let mut claims = claims(scope);
    claims["sub"] = serde_json::json!(sub);
    claims["jti"] = serde_json::json!(jti);
    sign_json(&header(TestKey::Rsa1), &claims, TestKey::Rsa1)
}

fn bearer<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The example's layer writes the audit log of real calls; replayed against the table with
/// `WhoAmI` tightened, exactly the calls of the token without `orders:read` flip.
#[tokio::test]
async fn a_recorded_log_replayed_against_a_tightened_rule() {
    use examples::pb::orders_client::OrdersClient;
    use examples::pb::{GetOrderRequest, WhoAmIRequest};
    use oauth_grpc::audit::JsonLines;

    let log = TempFile::new("recorded.jsonl", "");
    let audit = JsonLines::file(&log.0)
        .start()
        .expect("the audit log opens");
    let layer = oauth_grpc::OAuthLayer::new(oauth_grpc_tests::validator(), examples::policies())
        .audit_sink(audit.clone());
    let server = oauth_grpc_tests::orders_server(layer, examples::Store::default())
        .await
        .expect("server starts");
    let mut client = OrdersClient::new(server.channel().await.expect("connects"));
    let alice = signed("alice", "orders:read", "jti-alice");
    let carol = signed("carol", "", "jti-carol");

    client
        .who_am_i(bearer(WhoAmIRequest {}, Some(&alice)))
        .await
        .expect("alice signs in");
    client
        .who_am_i(bearer(WhoAmIRequest {}, Some(&carol)))
        .await
        .expect("any valid token may call WhoAmI");
    let refused = client
        .get_order(bearer(GetOrderRequest { id: "1".into() }, Some(&carol)))
        .await
        .expect_err("carol cannot read orders");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let refused = client
        .who_am_i(bearer(WhoAmIRequest {}, None))
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    client
        .who_am_i(bearer(WhoAmIRequest {}, Some(&carol)))
        .await
        .expect("again");
    audit.flush().await.expect("the log is written");
    server.stop().await;

    let recorded = std::fs::read_to_string(&log.0).expect("the log");
    assert_eq!(recorded.lines().count(), 5);

    // Under the rules it was recorded with, nothing changes.
    let same = examples::policies();
    let outcome = Replay::new(&same)
        .run(recorded.as_bytes())
        .expect("a well-formed log");
    assert_eq!((outcome.records, outcome.unchanged), (5, 5), "{outcome}");

    let policies = tightened();
    let outcome = Replay::new(&policies)
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptors")
        .run(recorded.as_bytes())
        .expect("a well-formed log");
    assert_eq!((outcome.records, outcome.unchanged), (5, 3), "{outcome}");
    assert_eq!(outcome.flips.len(), 1, "{outcome}");
    let flip = &outcome.flips[0];
    assert_eq!(flip.rpc, "/orders.v1.Orders/WhoAmI");
    assert_eq!(flip.direction, Direction::AllowedToDenied);
    assert_eq!(flip.count, 2);
    assert_eq!(flip.example.line, 2);
    assert_eq!(flip.example.subject.as_deref(), Some("carol"));
    assert!(outcome.unruled.is_empty() && outcome.removed.is_empty());

    // The command: exit 1 on flips, 0 with --allow-flips.
    let run = |extra: &[&str]| {
        let mut list = vec!["replay", log.path()];
        list.extend_from_slice(extra);
        Command::new(&policies).run(args(&list))
    };
    assert_eq!(run(&[]), ExitCode::FAILURE);
    assert_eq!(run(&["--allow-flips"]), ExitCode::SUCCESS);
    assert_eq!(run(&["--format", "json"]), ExitCode::FAILURE);
}
