//! The JSON Lines audit log (`oauth_grpc::audit::JsonLines`) behind a real tonic server on
//! 127.0.0.1 with real signed tokens: one line per decision, in the order of the calls, each
//! valid against `docs/audit.schema.json` (and the schema refusing what the writer never
//! writes), never holding a token; mutual TLS and DPoP bindings; rotation that loses and
//! splits no line; `block` and `drop` under a writer that stalls or fails; the configuration
//! errors.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, GetHttpStatusRequest, GetOrderRequest,
    PurgeCancelledRequest, WhoAmIRequest,
};
use examples::{OrderBook, Store};
use oauth_grpc::audit::{AuditEvent, AuditRecord, Decision, JsonLines, Overflow, SCHEMA_VERSION};
use oauth_grpc::{ConfigError, Dpop, OAuthLayer, PolicySet, ProtectedService};
use oauth_grpc_tests::issuer::{self, TestKey, claims, header, now, sign_json};
use oauth_grpc_tests::tls::{ClientCerts, Pki, channel, orders_server_tls};
use oauth_grpc_tests::{dpop, orders_server, validator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

const GET_ORDER: &str = "/orders.v1.Orders/GetOrder";
const CANCEL_ORDER: &str = "/orders.v1.Orders/CancelOrder";
const CREATE_ORDER: &str = "/orders.v1.Orders/CreateOrder";
const WHO_AM_I: &str = "/orders.v1.Orders/WhoAmI";
const GET_HTTP_STATUS: &str = "/orders.v1.Orders/GetHTTPStatus";
const PURGE_CANCELLED: &str = "/orders.v1.OrdersAdmin/PurgeCancelled";

// ---------------------------------------------------------------------------------------
// The schema

/// `docs/audit.schema.json`, checked against the draft 2020-12 meta-schema.
fn schema_document() -> Value {
    let schema: Value = serde_json::from_str(include_str!("../docs/audit.schema.json"))
        .expect("docs/audit.schema.json is JSON");
    if let Err(error) = jsonschema::meta::validate(&schema) {
        panic!("docs/audit.schema.json is not a valid JSON Schema: {error}");
    }
    schema
}

/// The published schema, compiled with `format` checked (`date-time`).
fn schema() -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema_document())
        .expect("the schema compiles")
}

/// What the schema finds wrong with `record`, one error a line; empty when it is valid.
fn violations(schema: &jsonschema::Validator, record: &Value) -> String {
    let errors = schema.iter_errors(record).into_errors();
    if errors.is_empty() {
        String::new()
    } else {
        errors.to_string()
    }
}

/// One line of the log: valid against the schema, an `AuditRecord` that writes back as the
/// very same line.
fn checked(schema: &jsonschema::Validator, line: &str) -> Value {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: not JSON: {line}"));
    let wrong = violations(schema, &value);
    assert!(wrong.is_empty(), "{wrong}\nin {line}");
    let record: AuditRecord<'static> = serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("{error}: not an AuditRecord: {line}"));
    assert_eq!(record.schema_version, SCHEMA_VERSION);
    assert_eq!(record.to_line(), format!("{line}\n"), "written as read");
    value
}

// ---------------------------------------------------------------------------------------
// Calls

/// The first 16 hex digits of the SHA-256 of `token`, computed here.
fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The W3C trace id number `n`, and a `traceparent` carrying it.
fn trace(n: u32) -> (String, String) {
    let id = format!("4bf92f3577b34da6{n:016x}");
    let traceparent = format!("00-{id}-00f067aa0ba902b7-01");
    (id, traceparent)
}

/// `message` with these metadata entries.
fn request<T>(message: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (name, value) in metadata {
        request
            .metadata_mut()
            .append(*name, value.parse().expect("ASCII metadata"));
    }
    request
}

fn code<T>(result: &Result<Response<T>, Status>) -> Code {
    result.as_ref().map_or_else(Status::code, |_| Code::Ok)
}

async fn who_am_i(channel: &Channel, metadata: &[(&'static str, &str)]) -> Result<(), Status> {
    OrdersClient::new(channel.clone())
        .who_am_i(request(WhoAmIRequest {}, metadata))
        .await
        .map(drop)
}

/// The orders service's own rules (not the admin desk's, whose paths have none here), with
/// DPoP accepted, recording to `log`.
fn layer(log: &JsonLines) -> OAuthLayer {
    OAuthLayer::new(validator(), PolicySet::new().service::<OrderBook>())
        .dpop(Dpop::new())
        .audit_sink(log.clone())
}

/// A call made, with what its record must say.
#[derive(Debug)]
struct Made {
    rpc: &'static str,
    /// The code the client saw.
    seen: Code,
    reason: &'static str,
    /// The token the layer read, whose fingerprint the record carries.
    token: Option<String>,
    trace_id: Option<String>,
    authenticated: bool,
}

// ---------------------------------------------------------------------------------------
// Files

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "oauth-grpc-audit-log-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `path.n`, or `path` for 0.
fn numbered(path: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return path.to_owned();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The files of a rotated log at `path`, oldest first: `path.k` … `path.1`, `path`. Fails
/// on a gap in the numbers or any other file in the directory.
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_owned()];
    while numbered(path, files.len()).exists() {
        files.push(numbered(path, files.len()));
    }
    let dir = path.parent().expect("in a directory");
    let present: BTreeSet<PathBuf> = std::fs::read_dir(dir)
        .expect("the log's directory")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    let expected: BTreeSet<PathBuf> = files.iter().cloned().collect();
    assert_eq!(present, expected, "no gap, nothing else");
    files.reverse();
    files
}

// ---------------------------------------------------------------------------------------
// A writer that stalls

/// Holds the audit writer thread inside `write` until released.
#[derive(Debug)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// Told each time a write is held.
    held: tokio::sync::mpsc::UnboundedSender<()>,
    /// What the next writes do instead of writing, first first.
    faults: Mutex<VecDeque<Fault>>,
}

/// A write that goes wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Fails with an I/O error, writing nothing.
    Fail,
    /// Writes only this many bytes (a short write, as a full pipe or disk gives).
    Short(usize),
}

/// The `Write` given to `JsonLines::writer`: appends to a buffer the test reads, once the
/// gate is open.
struct GatedWriter {
    gate: Arc<Gate>,
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl Write for GatedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let poisoned = |_| io::Error::other("the gate's lock is poisoned");
        let fault = self
            .gate
            .faults
            .lock()
            .map_err(|_| io::Error::other("the faults' lock is poisoned"))?
            .pop_front();
        let bytes = match fault {
            Some(Fault::Fail) => return Err(io::Error::other("the test's writer fails")),
            Some(Fault::Short(n)) => &bytes[..n.min(bytes.len())],
            None => bytes,
        };
        let mut open = self.gate.open.lock().map_err(poisoned)?;
        if !*open {
            let _ = self.gate.held.send(());
        }
        while !*open {
            open = self.gate.opened.wait(open).map_err(poisoned)?;
        }
        drop(open);
        self.buffer
            .lock()
            .map_err(|_| io::Error::other("the buffer's lock is poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The test's side of a [`GatedWriter`]. Released when dropped, so a failed test does not
/// leave the writer thread waiting.
struct Stall {
    gate: Arc<Gate>,
    held: tokio::sync::mpsc::UnboundedReceiver<()>,
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl Stall {
    /// A writer whose gate is `open` or closed, and its handle.
    fn new(open: bool) -> (Self, GatedWriter) {
        Self::with_faults(open, [])
    }

    /// [`new`](Self::new), the first writes going wrong as `faults` say.
    fn with_faults(open: bool, faults: impl IntoIterator<Item = Fault>) -> (Self, GatedWriter) {
        let (tx, held) = tokio::sync::mpsc::unbounded_channel();
        let gate = Arc::new(Gate {
            open: Mutex::new(open),
            opened: Condvar::new(),
            held: tx,
            faults: Mutex::new(faults.into_iter().collect()),
        });
        let buffer = Arc::default();
        let writer = GatedWriter {
            gate: gate.clone(),
            buffer: Arc::clone(&buffer),
        };
        let stall = Self { gate, held, buffer };
        (stall, writer)
    }

    /// Waits until the writer thread is held inside a write: it has taken that record off
    /// the queue.
    async fn until_held(&mut self) {
        self.held.recv().await.expect("the writer is alive");
    }

    fn release(&self) {
        *self.gate.open.lock().expect("the gate's lock") = true;
        self.gate.opened.notify_all();
    }

    fn lines(&self) -> Vec<String> {
        let buffer = self.buffer.lock().expect("the buffer's lock");
        let text = std::str::from_utf8(&buffer).expect("UTF-8");
        assert!(text.is_empty() || text.ends_with('\n'), "whole lines");
        text.lines().map(str::to_owned).collect()
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        if let Ok(mut open) = self.gate.open.lock() {
            *open = true;
        }
        self.gate.opened.notify_all();
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn every_decision_is_one_valid_line_in_call_order_without_the_token() {
    let schema = schema();
    let dir = TempDir::new("mixed");
    let path = dir.path().join("audit.jsonl");
    let log = JsonLines::file(&path).start().expect("the log opens");
    let store = Store::default();
    let order = store.place("widget", 2, "alice");
    let server = orders_server(layer(&log), store).await.expect("bind");
    let channel = server.channel().await.expect("connect");
    let mut orders = OrdersClient::new(channel.clone());
    let mut admin = OrdersAdminClient::new(channel.clone());

    let alice = issuer::token(TestKey::Rsa1, "orders:read orders:write");
    let mut expired_claims = claims("orders:read");
    expired_claims["iat"] = json!(now() - 900);
    expired_claims["exp"] = json!(now() - 600);
    let expired = sign_json(&header(TestKey::Ec256), &expired_claims, TestKey::Ec256);
    let garbage = "not-a-token".to_owned();
    let mut delegated_claims = claims("orders:write orders:cancel");
    delegated_claims["act"] = json!({"sub": "assistant", "act": {"sub": "gateway"}});
    delegated_claims["jti"] = json!("delegated-1");
    let delegated = sign_json(&header(TestKey::Rsa2), &delegated_claims, TestKey::Rsa2);
    let bound = dpop::bound_token("orders:read", TestKey::Ec256);
    let proof = dpop::proof(
        TestKey::Ec256,
        &format!("{}{WHO_AM_I}", server.url()),
        &bound,
    );
    let bearer = |token: &str| format!("Bearer {token}");
    let (trace_1, traceparent_1) = trace(1);
    let (trace_2, traceparent_2) = trace(2);
    let (trace_3, traceparent_3) = trace(3);
    // All-zero trace id: invalid, so not recorded.
    let zero_trace = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";

    let mut made = Vec::new();
    let mut record_call = |made_call: Made, expected: Code| {
        assert_eq!(made_call.seen, expected, "{made_call:?}");
        made.push(made_call);
    };

    let result = orders
        .get_order(request(
            GetOrderRequest {
                id: order.id.clone(),
            },
            &[
                ("authorization", &bearer(&alice)),
                ("traceparent", &traceparent_1),
            ],
        ))
        .await;
    record_call(
        Made {
            rpc: GET_ORDER,
            seen: code(&result),
            reason: "authorized",
            token: Some(alice.clone()),
            trace_id: Some(trace_1.clone()),
            authenticated: true,
        },
        Code::Ok,
    );

    let result = orders
        .cancel_order(request(
            CancelOrderRequest {
                id: order.id.clone(),
            },
            &[("authorization", &bearer(&alice))],
        ))
        .await;
    record_call(
        Made {
            rpc: CANCEL_ORDER,
            seen: code(&result),
            reason: "insufficient_scope",
            token: Some(alice.clone()),
            trace_id: None,
            authenticated: true,
        },
        Code::PermissionDenied,
    );

    let result = who_am_i(&channel, &[("traceparent", zero_trace)]).await;
    record_call(
        Made {
            rpc: WHO_AM_I,
            seen: result.err().map_or(Code::Ok, |s| s.code()),
            reason: "missing_token",
            token: None,
            trace_id: None,
            authenticated: false,
        },
        Code::Unauthenticated,
    );

    for (token, reason) in [(&expired, "expired"), (&garbage, "malformed")] {
        let result = who_am_i(&channel, &[("authorization", &bearer(token))]).await;
        record_call(
            Made {
                rpc: WHO_AM_I,
                seen: result.err().map_or(Code::Ok, |s| s.code()),
                reason,
                token: Some(token.clone()),
                trace_id: None,
                authenticated: false,
            },
            Code::Unauthenticated,
        );
    }

    // A path without a rule is refused before any token is read.
    let result = admin
        .purge_cancelled(request(
            PurgeCancelledRequest {},
            &[("authorization", &bearer(&alice))],
        ))
        .await;
    record_call(
        Made {
            rpc: PURGE_CANCELLED,
            seen: code(&result),
            reason: "no_rule",
            token: None,
            trace_id: None,
            authenticated: false,
        },
        Code::PermissionDenied,
    );

    let result = orders
        .get_http_status(request(GetHttpStatusRequest {}, &[]))
        .await;
    record_call(
        Made {
            rpc: GET_HTTP_STATUS,
            seen: code(&result),
            reason: "public",
            token: None,
            trace_id: None,
            authenticated: false,
        },
        Code::Ok,
    );

    // The assistant may place orders for alice; nobody may cancel on her behalf.
    let result = orders
        .create_order(request(
            CreateOrderRequest {
                item: "gadget".into(),
                quantity: 1,
            },
            &[("authorization", &bearer(&delegated))],
        ))
        .await;
    record_call(
        Made {
            rpc: CREATE_ORDER,
            seen: code(&result),
            reason: "authorized",
            token: Some(delegated.clone()),
            trace_id: None,
            authenticated: true,
        },
        Code::Ok,
    );
    let result = orders
        .cancel_order(request(
            CancelOrderRequest {
                id: order.id.clone(),
            },
            &[("authorization", &bearer(&delegated))],
        ))
        .await;
    record_call(
        Made {
            rpc: CANCEL_ORDER,
            seen: code(&result),
            reason: "delegation_forbidden",
            token: Some(delegated.clone()),
            trace_id: None,
            authenticated: true,
        },
        Code::PermissionDenied,
    );

    let result = who_am_i(
        &channel,
        &[
            ("authorization", &bearer(&alice)),
            ("traceparent", &traceparent_2),
        ],
    )
    .await;
    record_call(
        Made {
            rpc: WHO_AM_I,
            seen: result.err().map_or(Code::Ok, |s| s.code()),
            reason: "authorized",
            token: Some(alice.clone()),
            trace_id: Some(trace_2.clone()),
            authenticated: true,
        },
        Code::Ok,
    );

    let result = who_am_i(
        &channel,
        &[
            ("authorization", &format!("DPoP {bound}")),
            ("dpop", &proof),
            ("traceparent", &traceparent_3),
        ],
    )
    .await;
    record_call(
        Made {
            rpc: WHO_AM_I,
            seen: result.err().map_or(Code::Ok, |s| s.code()),
            reason: "authorized",
            token: Some(bound.clone()),
            trace_id: Some(trace_3.clone()),
            authenticated: true,
        },
        Code::Ok,
    );

    log.flush().await.expect("the log is written");
    server.stop().await;
    assert_eq!(log.written(), made.len() as u64);
    assert_eq!(
        (log.dropped(), log.refused(), log.write_errors()),
        (0, 0, 0)
    );

    let text = std::fs::read_to_string(&path).expect("the log file");
    assert!(text.ends_with('\n'), "whole lines");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), made.len(), "one line per call:\n{text}");

    let records: Vec<Value> = lines.iter().map(|line| checked(&schema, line)).collect();
    let mut previous_time = String::new();
    for (record, call) in records.iter().zip(&made) {
        let what = format!("{call:?}\n{record:#}");
        let allowed = call.seen == Code::Ok;
        assert_eq!(
            record["decision"],
            if allowed { "allow" } else { "deny" },
            "{what}"
        );
        assert_eq!(record["code"], call.seen as i32, "{what}");
        assert_eq!(record["reason"], call.reason, "{what}");
        assert_eq!(record["rpc"], call.rpc, "{what}");
        assert_eq!(record["authenticated"], call.authenticated, "{what}");
        assert_eq!(
            record.get("trace_id").and_then(Value::as_str),
            call.trace_id.as_deref(),
            "{what}"
        );
        assert_eq!(
            record.get("token_fingerprint").and_then(Value::as_str),
            call.token.as_deref().map(fingerprint).as_deref(),
            "{what}"
        );
        let peer = record["peer"].as_str().unwrap_or_default();
        assert!(peer.starts_with("127.0.0.1:"), "{what}");
        assert_eq!(record["schema_version"], 1);
        // Sequential calls: the times never go back.
        let time = record["time"].as_str().expect("a time").to_owned();
        assert!(time >= previous_time, "{what}");
        previous_time = time;
        if call.rpc != PURGE_CANCELLED {
            let path = call.rpc.rsplit('/').next().expect("a method");
            let method = OrderBook::POLICY.method(path).expect("a compiled method");
            let rule = method.rule();
            assert_eq!(record["rule"], rule.to_string(), "{what}");
            let scopes: Vec<&str> = rule.scopes().iter().map(|s| s.as_str()).collect();
            assert_eq!(record["required_scopes"], json!(scopes), "{what}");
        } else {
            assert_eq!(record.get("rule"), None, "{what}");
            assert_eq!(record["required_scopes"], json!([]), "{what}");
        }
    }

    // What the token said, on an allowed and on a refused call.
    for record in &records[..2] {
        assert_eq!(
            record["granted_scopes"],
            json!(["orders:read", "orders:write"])
        );
        assert_eq!(record["subject"], "alice");
        assert_eq!(record["client_id"], "orders-web");
        assert_eq!(record["issuer"], issuer::ISSUER);
        assert!(record["jti"].is_string(), "{record:#}");
        assert_eq!(record["binding"], json!({"kind": "none", "proven": false}));
        assert_eq!(record.get("actors"), None, "not delegated: {record:#}");
    }
    // No verified token: none of its members.
    for record in &records[2..7] {
        for member in [
            "granted_scopes",
            "subject",
            "client_id",
            "issuer",
            "jti",
            "actors",
        ] {
            assert_eq!(record.get(member), None, "{member} in {record:#}");
        }
        assert_eq!(record["binding"], json!({"kind": "none", "proven": false}));
    }
    // The delegation chain, current actor first, on the allowed and the refused call.
    for record in &records[7..9] {
        assert_eq!(
            record["actors"],
            json!(["assistant", "gateway"]),
            "{record:#}"
        );
        assert_eq!(record["jti"], "delegated-1");
        assert_eq!(record["subject"], "alice");
    }
    // The DPoP-bound call proved its key.
    let jkt = dpop::thumbprint(TestKey::Ec256);
    assert_eq!(
        records[10]["binding"],
        json!({"kind": "dpop", "proven": true, "jkt": jkt, "proof_jkt": jkt}),
    );
    assert_eq!(records[10].get("client_certificate"), None);

    // One token's calls share a fingerprint; different tokens have different ones.
    let alice_calls: BTreeSet<&str> = [0, 1, 9]
        .iter()
        .filter_map(|&i| records[i]["token_fingerprint"].as_str())
        .collect();
    assert_eq!(alice_calls.len(), 1, "{alice_calls:?}");
    let tokens = [&alice, &expired, &garbage, &delegated, &bound];
    let fingerprints: BTreeSet<&str> = records
        .iter()
        .filter_map(|record| record.get("token_fingerprint").and_then(Value::as_str))
        .collect();
    assert_eq!(fingerprints.len(), tokens.len(), "{fingerprints:?}");

    // Never a token, its signature, a proof or a scheme.
    for secret in tokens
        .iter()
        .map(|token| token.as_str())
        .chain([proof.as_str()])
    {
        assert!(!text.contains(secret), "{secret} leaked into the log");
        if let Some((_, signature)) = secret.rsplit_once('.') {
            assert!(!text.contains(signature), "a signature leaked into the log");
        }
    }
    for scheme in ["Bearer", "DPoP "] {
        assert!(!text.contains(scheme), "{scheme} in the log");
    }
}

#[tokio::test]
async fn a_certificate_bound_call_records_the_certificate_and_the_proof() {
    const SPIFFE: &str = "spiffe://orders.test/client-a";
    let schema = schema();
    let (stall, writer) = Stall::new(true);
    let log = JsonLines::writer(writer).start().expect("the log starts");
    let pki = Pki::new("oauth-grpc audit test CA");
    let a = pki.client("client-a", Some(SPIFFE));
    let b = pki.client("client-b", None);
    let server = orders_server_tls(
        layer(&log),
        Store::default(),
        pki.server_tls(ClientCerts::Optional),
    )
    .await
    .expect("bind");
    let mut payload = claims("orders:read");
    payload["cnf"] = json!({ "x5t#S256": a.thumbprint() });
    let token = sign_json(&header(TestKey::Rsa1), &payload, TestKey::Rsa1);
    let authorization = format!("Bearer {token}");
    let metadata = [("authorization", authorization.as_str())];

    let with_a = channel(&server, pki.client_tls(Some(&a)))
        .await
        .expect("TLS with certificate A");
    who_am_i(&with_a, &metadata)
        .await
        .expect("the token's certificate");
    let with_b = channel(&server, pki.client_tls(Some(&b)))
        .await
        .expect("TLS with certificate B");
    let refused = who_am_i(&with_b, &metadata)
        .await
        .expect_err("another certificate");
    assert_eq!(refused.code(), Code::Unauthenticated);
    log.flush().await.expect("written");
    server.stop().await;

    let lines = stall.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let allowed = checked(&schema, &lines[0]);
    let binding = json!({"kind": "mtls", "proven": true, "x5t_s256": a.thumbprint()});
    assert_eq!(allowed["binding"], binding);
    assert_eq!(
        allowed["client_certificate"],
        json!({"thumbprint": a.thumbprint(), "subject": "CN=client-a", "spiffe_id": SPIFFE})
    );
    let denied = checked(&schema, &lines[1]);
    assert_eq!(
        (&denied["decision"], &denied["code"], &denied["reason"]),
        (&json!("deny"), &json!(16), &json!("certificate_mismatch"))
    );
    assert_eq!(denied["authenticated"], true);
    let binding = json!({"kind": "mtls", "proven": false, "x5t_s256": a.thumbprint()});
    assert_eq!(denied["binding"], binding);
    // The certificate that came, not the one the token is bound to.
    assert_eq!(
        denied["client_certificate"],
        json!({"thumbprint": b.thumbprint(), "subject": "CN=client-b"})
    );
    assert_eq!(allowed["token_fingerprint"], denied["token_fingerprint"]);
    let text = lines.concat();
    assert!(!text.contains(&token) && !text.contains(token.rsplit('.').next().unwrap_or("?")));
}

/// Writes `calls` decisions (alternately long allowed lines and short refusals, call `i`
/// with trace id `i`) to a log at `path` rotated at 1 KiB keeping `keep` files.
async fn rotated_log(path: &Path, calls: u32, keep: usize) {
    let log = JsonLines::file(path)
        .rotate_at(1024)
        .keep(keep)
        .start()
        .expect("the log opens");
    let server = orders_server(layer(&log), Store::default())
        .await
        .expect("bind");
    let channel = server.channel().await.expect("connect");
    let authorization = format!("Bearer {}", issuer::token(TestKey::Rsa1, "orders:read"));
    for i in 1..=calls {
        let (_, traceparent) = trace(i);
        let mut metadata = vec![("traceparent", traceparent.as_str())];
        if i % 2 == 1 {
            metadata.push(("authorization", authorization.as_str()));
        }
        let result = who_am_i(&channel, &metadata).await;
        assert_eq!(result.is_ok(), i % 2 == 1, "call {i}: {result:?}");
    }
    log.flush().await.expect("written");
    server.stop().await;
    assert_eq!(log.written(), u64::from(calls));
}

/// The lines of each file, oldest file first, each file checked: whole lines, within the
/// limit unless it holds one line alone.
fn lines_of(files: &[PathBuf]) -> Vec<Vec<String>> {
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).expect("a log file");
            let what = file.display();
            assert!(text.ends_with('\n'), "{what} ends with a whole line");
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            assert!(
                text.len() <= 1024 || lines.len() == 1,
                "{what}: {} bytes in {} lines",
                text.len(),
                lines.len()
            );
            lines
        })
        .collect()
}

#[tokio::test]
async fn rotation_keeps_every_line_whole_and_in_order() {
    const CALLS: u32 = 40;
    let schema = schema();
    let dir = TempDir::new("rotation");
    let path = dir.path().join("audit.jsonl");
    rotated_log(&path, CALLS, 1000).await;

    let files = rotated_files(&path);
    assert!(files.len() >= 10, "{} files for {CALLS} lines", files.len());
    let per_file = lines_of(&files);
    assert!(
        per_file.iter().all(|lines| !lines.is_empty()),
        "no empty file"
    );
    let traces: Vec<String> = per_file
        .iter()
        .flatten()
        .map(|line| {
            checked(&schema, line)["trace_id"]
                .as_str()
                .expect("a trace id")
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (1..=CALLS).map(|i| trace(i).0).collect();
    assert_eq!(traces, expected, "every line, oldest file first, in order");
}

#[tokio::test]
async fn rotation_deletes_only_files_past_keep() {
    const CALLS: u32 = 40;
    let dir = TempDir::new("keep");
    let path = dir.path().join("audit.jsonl");
    rotated_log(&path, CALLS, 2).await;

    let files = rotated_files(&path);
    assert_eq!(files.len(), 3, "audit.jsonl, .1 and .2: {files:?}");
    let traces: Vec<String> = lines_of(&files)
        .iter()
        .flatten()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("JSON");
            record["trace_id"].as_str().expect("a trace id").to_owned()
        })
        .collect();
    // The newest lines, none missing among them.
    let first = CALLS - traces.len() as u32 + 1;
    let expected: Vec<String> = (first..=CALLS).map(|i| trace(i).0).collect();
    assert_eq!(traces, expected);
    assert!(first > 1, "older files were deleted");
}

#[tokio::test]
async fn block_refuses_with_unavailable_while_the_writer_stalls() {
    let schema = schema();
    let timeout = Duration::from_millis(300);
    let (mut stall, writer) = Stall::new(false);
    let log = JsonLines::writer(writer)
        .capacity(1)
        .overflow(Overflow::Block)
        .block_timeout(timeout)
        .start()
        .expect("the log starts");
    let server = orders_server(layer(&log), Store::default())
        .await
        .expect("bind");
    let channel = server.channel().await.expect("connect");
    let authorization = format!("Bearer {}", issuer::token(TestKey::Rsa1, "orders:read"));
    let with_token = [("authorization", authorization.as_str())];

    // The writer takes the first record and stalls on it; the second fills the queue.
    who_am_i(&channel, &with_token)
        .await
        .expect("the first record is queued");
    stall.until_held().await;
    OrdersClient::new(channel.clone())
        .get_http_status(GetHttpStatusRequest {})
        .await
        .expect("the second record is queued");

    // No room: the call waits for the block timeout, then is refused, allowed or not.
    let started = Instant::now();
    let refused = who_am_i(&channel, &with_token)
        .await
        .expect_err("no room for the record");
    let waited = started.elapsed();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("audit log"), "{refused:?}");
    assert!(
        waited >= timeout - Duration::from_millis(50),
        "refused after {waited:?}, before the block timeout"
    );
    let refused = who_am_i(&channel, &[]).await.expect_err("no token either");
    assert_eq!(refused.code(), Code::Unavailable, "not 16: {refused:?}");
    assert_eq!((log.refused(), log.dropped(), log.written()), (2, 0, 0));

    // Released, the queue drains and calls are answered as they should be.
    stall.release();
    log.flush().await.expect("written");
    assert_eq!(log.written(), 2);
    who_am_i(&channel, &with_token).await.expect("room again");
    let refused = who_am_i(&channel, &[]).await.expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    log.flush().await.expect("written");
    server.stop().await;
    assert_eq!((log.written(), log.refused(), log.dropped()), (4, 2, 0));

    // Every accepted record, in order; none of the refused calls'.
    let reasons: Vec<(String, String)> = stall
        .lines()
        .iter()
        .map(|line| {
            let record = checked(&schema, line);
            let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
            (field("rpc"), field("reason"))
        })
        .collect();
    let expected = [
        (WHO_AM_I, "authorized"),
        (GET_HTTP_STATUS, "public"),
        (WHO_AM_I, "authorized"),
        (WHO_AM_I, "missing_token"),
    ]
    .map(|(rpc, reason)| (rpc.to_owned(), reason.to_owned()));
    assert_eq!(reasons, expected);
}

#[tokio::test]
async fn drop_answers_every_call_and_counts_the_lost_records() {
    const CALLS: u32 = 6;
    let schema = schema();
    let (mut stall, writer) = Stall::new(false);
    let log = JsonLines::writer(writer)
        .capacity(1)
        .overflow(Overflow::Drop)
        .start()
        .expect("the log starts");
    let server = orders_server(layer(&log), Store::default())
        .await
        .expect("bind");
    let channel = server.channel().await.expect("connect");
    let authorization = format!("Bearer {}", issuer::token(TestKey::Rsa1, "orders:read"));
    let call = |i: u32| {
        let (channel, authorization) = (channel.clone(), authorization.clone());
        async move {
            let (_, traceparent) = trace(i);
            who_am_i(
                &channel,
                &[
                    ("authorization", authorization.as_str()),
                    ("traceparent", traceparent.as_str()),
                ],
            )
            .await
        }
    };

    // The first record is held by the writer, the second waits in the queue, the rest
    // find it full.
    call(1).await.expect("answered");
    stall.until_held().await;
    for i in 2..=CALLS {
        call(i).await.expect("answered although its record is lost");
    }
    let accepted = 2;
    assert_eq!(log.dropped(), u64::from(CALLS - accepted));
    assert_eq!(log.refused(), 0);

    stall.release();
    log.flush().await.expect("written");
    assert_eq!(log.written(), u64::from(accepted));
    call(CALLS + 1).await.expect("answered");
    log.flush().await.expect("written");
    server.stop().await;
    assert_eq!(log.written(), u64::from(accepted) + 1);
    assert_eq!(
        log.dropped(),
        u64::from(CALLS - accepted),
        "none lost since"
    );

    let traces: Vec<String> = stall
        .lines()
        .iter()
        .map(|line| {
            checked(&schema, line)["trace_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(traces, [trace(1).0, trace(2).0, trace(CALLS + 1).0]);
}

#[tokio::test]
async fn block_refuses_at_once_while_the_log_cannot_be_written() {
    let schema = schema();
    // Long enough that waiting for it would show.
    let timeout = Duration::from_secs(30);
    let (mut stall, writer) = Stall::with_faults(false, [Fault::Fail]);
    let log = JsonLines::writer(writer)
        .overflow(Overflow::Block)
        .block_timeout(timeout)
        .start()
        .expect("the log starts");
    let server = orders_server(layer(&log), Store::default())
        .await
        .expect("bind");
    let channel = server.channel().await.expect("connect");
    let authorization = format!("Bearer {}", issuer::token(TestKey::Rsa1, "orders:read"));
    let with_token = [("authorization", authorization.as_str())];

    // The first write fails; the writer retries it and is held there, still failing.
    who_am_i(&channel, &with_token)
        .await
        .expect("the record is queued");
    stall.until_held().await;
    assert_eq!(log.write_errors(), 1);

    let started = Instant::now();
    let refused = who_am_i(&channel, &with_token)
        .await
        .expect_err("the log cannot be written");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        started.elapsed() < timeout / 3,
        "refused at once, not after the block timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(log.refused(), 1);

    // Writing works again: the retried line is written, calls are admitted.
    stall.release();
    log.flush().await.expect("written");
    who_am_i(&channel, &with_token)
        .await
        .expect("the log works again");
    log.flush().await.expect("written");
    server.stop().await;
    assert_eq!(
        (log.written(), log.refused(), log.write_errors()),
        (2, 1, 1)
    );
    let lines = stall.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert_eq!(checked(&schema, line)["reason"], "authorized");
    }
}

#[tokio::test]
async fn a_short_write_then_an_error_leaves_the_line_whole() {
    let schema = schema();
    let (stall, writer) = Stall::with_faults(true, [Fault::Short(10), Fault::Fail]);
    let log = JsonLines::writer(writer).start().expect("the log starts");
    let server = orders_server(layer(&log), Store::default())
        .await
        .expect("bind");
    let channel = server.channel().await.expect("connect");
    let public = OrdersClient::new(channel.clone())
        .get_http_status(GetHttpStatusRequest {})
        .await;
    public.expect("answered");
    log.flush().await.expect("written");
    server.stop().await;
    assert_eq!((log.written(), log.write_errors()), (1, 1));
    let lines = stall.lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    checked(&schema, &lines[0]);
}

#[test]
fn a_log_that_cannot_be_opened_says_so_at_start() {
    let dir = TempDir::new("config");
    let missing = dir.path().join("missing-directory").join("audit.jsonl");
    for target in [missing.clone(), dir.path().to_owned()] {
        let error = JsonLines::file(&target)
            .start()
            .expect_err("cannot be opened for appending");
        let message = error.to_string();
        match &error {
            ConfigError::AuditLog { path, .. } => assert_eq!(path, &target),
            other => panic!("{other:?}"),
        }
        assert!(
            message.contains(&target.display().to_string()),
            "names the file: {message}"
        );
        assert!(
            message.contains("give a path in a directory the server may write"),
            "names the fix: {message}"
        );
        assert!(
            std::error::Error::source(&error).is_some(),
            "keeps the I/O error"
        );
    }
    assert!(!missing.exists(), "nothing created");
}

#[test]
fn settings_out_of_range_are_refused_with_the_setter_to_fix() {
    type Setting = fn(oauth_grpc::audit::JsonLinesBuilder) -> oauth_grpc::audit::JsonLinesBuilder;
    let refused: [(Setting, &str); 8] = [
        (|b| b.capacity(0), "JsonLines::capacity"),
        (|b| b.capacity((1 << 20) + 1), "JsonLines::capacity"),
        (|b| b.rotate_at(10), "JsonLines::rotate_at"),
        (|b| b.rotate_at(1023), "JsonLines::rotate_at"),
        (|b| b.keep(0), "JsonLines::keep"),
        (|b| b.keep(1001), "JsonLines::keep"),
        (
            |b| b.block_timeout(Duration::ZERO),
            "JsonLines::block_timeout",
        ),
        (
            |b| b.block_timeout(Duration::from_secs(61)),
            "JsonLines::block_timeout",
        ),
    ];
    for (setting, setter) in refused {
        match setting(JsonLines::writer(io::sink())).start() {
            Err(ConfigError::AuditSetting(message)) => {
                assert!(message.contains(setter), "{setter}: {message}");
            }
            other => panic!("{setter}: {other:?}"),
        }
    }
    let edges: [Setting; 7] = [
        |b| b.capacity(1),
        |b| b.capacity(1 << 20),
        |b| b.rotate_at(1024),
        |b| b.keep(1),
        |b| b.keep(1000),
        |b| b.block_timeout(Duration::from_millis(1)),
        |b| b.block_timeout(Duration::from_secs(60)),
    ];
    for setting in edges {
        setting(JsonLines::writer(io::sink()))
            .start()
            .expect("in range");
    }
}

/// Fails unless every property of a closed object below `node` has a description.
fn described(at: &str, node: &Value) {
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let at = format!("{at}/{name}");
            if node.get("additionalProperties") == Some(&Value::Bool(false)) {
                assert!(
                    property
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some(),
                    "{at} has no description"
                );
            }
            described(&at, property);
        }
    }
    for keyword in ["items", "then", "else"] {
        if let Some(inner) = node.get(keyword) {
            described(at, inner);
        }
    }
}

#[test]
fn the_schema_requires_what_is_always_written_and_nothing_else() {
    let document = schema_document();
    let schema = schema();

    // Every property, at every level, says what it means.
    described("", &document);
    for object in [
        &document,
        &document["properties"]["binding"],
        &document["properties"]["client_certificate"],
    ] {
        assert_eq!(object["additionalProperties"], false);
        assert!(object["description"].is_string());
    }

    // The smallest record holds exactly the required members.
    let event = AuditEvent::new(Decision::Deny, "no_rule", "/x.Y/Z");
    let minimal = AuditRecord::from_event(&event).to_line();
    let minimal: Value = checked(&schema, minimal.trim_end());
    let written: BTreeSet<&str> = minimal
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let required: BTreeSet<&str> = document["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(written, required);
    let binding: BTreeSet<&str> = document["properties"]["binding"]["required"]
        .as_array()
        .expect("binding.required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(binding, BTreeSet::from(["kind", "proven"]));

    // What the schema refuses, each from the valid minimal record.
    let refuse = |change: &dyn Fn(&mut Value), why: &str| {
        let mut record = minimal.clone();
        change(&mut record);
        assert!(
            !violations(&schema, &record).is_empty(),
            "the schema accepts {why}: {record}"
        );
    };
    for member in &required {
        refuse(
            &|r| {
                if let Some(members) = r.as_object_mut() {
                    members.remove(*member);
                }
            },
            &format!("a record without {member}"),
        );
    }
    refuse(&|r| r["token"] = json!("eyJ..."), "an unknown member");
    refuse(
        &|r| r["binding"]["cnf"] = json!({}),
        "an unknown binding member",
    );
    refuse(
        &|r| {
            r["client_certificate"] =
                json!({"thumbprint": "x".repeat(43), "subject": "", "pem": ""})
        },
        "an unknown certificate member",
    );
    refuse(&|r| r["schema_version"] = json!(2), "another version");
    refuse(
        &|r| r["time"] = json!("2026-12-02T06:00:00.000+01:00"),
        "a time not in UTC",
    );
    refuse(
        &|r| r["time"] = json!("2026-13-02T05:00:00.000Z"),
        "month 13",
    );
    refuse(&|r| r["decision"] = json!("maybe"), "an unknown decision");
    refuse(&|r| r["code"] = json!(17), "code 17");
    refuse(&|r| r["code"] = json!(7.5), "a fractional code");
    refuse(&|r| r["code"] = json!(0), "a deny with code 0");
    refuse(&|r| r["decision"] = json!("allow"), "an allow with code 7");
    refuse(
        &|r| r["trace_id"] = json!("4BF92F3577B34DA6A3CE929D0E0E4736"),
        "an upper-case trace id",
    );
    refuse(
        &|r| r["trace_id"] = json!("4bf92f3577b34da6"),
        "a short trace id",
    );
    refuse(
        &|r| r["token_fingerprint"] = json!("9f86d081884c7d6"),
        "a 15-digit fingerprint",
    );
    refuse(
        &|r| r["token_fingerprint"] = json!("9f86d081884c7d65a"),
        "a 17-digit fingerprint",
    );
    refuse(
        &|r| r["binding"]["kind"] = json!("bearer"),
        "an unknown binding kind",
    );
    refuse(
        &|r| r["subject"] = json!("alice"),
        "claims without a verified token",
    );
    refuse(
        &|r| r["granted_scopes"] = json!([]),
        "scopes without a verified token",
    );
    refuse(
        &|r| r["authenticated"] = json!(true),
        "a verified token without its scopes",
    );
    refuse(&|r| r["actors"] = json!([]), "an empty delegation chain");
    refuse(
        &|r| r["binding"]["jkt"] = json!("x".repeat(43)),
        "a jkt on an unbound token",
    );
    refuse(
        &|r| {
            r["authenticated"] = json!(true);
            r["granted_scopes"] = json!([]);
            r["binding"]["kind"] = json!("mtls");
        },
        "an mtls binding without its thumbprint",
    );
}
