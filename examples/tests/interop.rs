//! Interop with peers nobody here wrote, over real loopback HTTP and gRPC:
//!
//! - the certified OpenID provider `oidc-provider` (npm), issuing RFC 9068 `at+jwt` tokens
//!   for a resource indicator and opaque tokens checked by introspection: `orders-server`
//!   configured by discovery under the strict profile, `orders-client` and our client library
//!   fetching client-credentials tokens from it;
//! - the lenient `oauth2-mock-server` (npm), whose tokens carry `typ: JWT` and no `sub`:
//!   accepted with `--allow-plain-jwt`, refused under the strict profile;
//! - a Python `grpcio` client with stubs from the same `.proto`, seeing the same codes and
//!   `www-authenticate` values.
//!
//! The peers are installed by the test itself, at the versions pinned in
//! `tests/interop/package-lock.json` and `tests/interop/python/requirements.txt`.

// A failed expectation is this test's report.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use oauth_grpc::ClientSecret;
use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials};

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); is it installed?"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `npm ci` and a Python venv with the pinned packages and generated stubs; once per run.
fn peers() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    READY.get_or_init(|| {
        let _guard = LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = interop();
        if !dir.join("node_modules/oidc-provider").exists() {
            run(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir),
                "npm ci",
            );
        }
        let venv = dir.join("python/.venv");
        let python = venv.join("bin/python");
        if !venv.join("installed").exists() {
            run(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv",
            );
            run(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "-r",
                    ])
                    .arg(dir.join("python/requirements.txt")),
                "pip install -r requirements.txt",
            );
            std::fs::write(venv.join("installed"), "").expect("marker");
        }
        run(
            Command::new("bash")
                .arg(dir.join("python/gen.sh"))
                .arg(venv.join("stubs"))
                .arg(&python),
            "gen.sh",
        );
        dir
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed on drop, with the first stdout line that starts with `prefix`.
struct Process {
    child: Child,
    line: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(command: &mut Command, prefix: &str) -> Process {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        let mut found = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !found && line.starts_with(&prefix) {
                found = true;
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{command:?} did not become ready"));
    Process { child, line }
}

fn node(script: &str) -> (Process, String) {
    let dir = peers();
    let process = spawn(
        Command::new("node")
            .arg(dir.join(script))
            .arg(free_port().to_string()),
        "READY ",
    );
    let issuer = process.line.trim_start_matches("READY ").trim().to_owned();
    (process, issuer)
}

fn orders_server(args: &[&str]) -> (Process, String) {
    let process = spawn(
        Command::new(env!("CARGO_BIN_EXE_orders-server"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"]),
        "orders-server listening on ",
    );
    let addr = process
        .line
        .trim_start_matches("orders-server listening on ")
        .trim()
        .to_owned();
    (process, addr)
}

fn orders_client(server: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_orders-client"))
        .args(["--server", &format!("http://{server}")])
        .args(args)
        .output()
        .expect("orders-client runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn python(server: &str, rpc: &str, token: Option<&str>) -> String {
    let dir = peers();
    let venv = dir.join("python/.venv");
    let mut command = Command::new(venv.join("bin/python"));
    command
        .arg(dir.join("python/client.py"))
        .arg(server)
        .arg(rpc)
        .env("ORDERS_STUBS", venv.join("stubs"));
    if let Some(token) = token {
        command.arg(token);
    }
    let output = command.output().expect("python client runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn secret_file(name: &str, secret: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oauth-grpc-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).expect("write secret");
    path
}

async fn token(
    issuer: &str,
    client: &str,
    secret: &str,
    scopes: &[&str],
    resource: Option<&str>,
) -> String {
    let mut source = ClientCredentials::discover(
        issuer,
        client,
        ClientAuthentication::SecretBasic(ClientSecret::new(secret)),
    );
    for scope in scopes {
        source = source.scope(*scope);
    }
    if let Some(resource) = resource {
        source = source.resource(resource);
    }
    BearerLayer::new(source)
        .token()
        .await
        .unwrap_or_else(|s| panic!("token from {issuer}: {s:?}"))
        .to_string()
}

const INSUFFICIENT_WRITE: &str = r#"Bearer error="insufficient_scope", scope="orders:write""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_jwt_and_opaque_tokens() {
    let (_provider, issuer) = node("oidc-provider.mjs");
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    let introspection_secret = secret_file("orders-api", "orders-api-secret");
    let (_server, addr) = orders_server(&[
        "--issuer",
        &issuer,
        "--audience",
        "urn:orders-api,urn:orders-api-opaque",
        "--introspect-url",
        &format!("{issuer}/token/introspection"),
        "--client-id",
        "orders-api",
        "--client-secret-file",
        &introspection_secret.to_string_lossy(),
    ]);
    let client_secret = secret_file("orders-client", "orders-client-secret");
    let post_secret = secret_file("orders-client-post", "orders-client-post-secret");
    let client_secret = client_secret.to_string_lossy().into_owned();
    let post_secret = post_secret.to_string_lossy().into_owned();
    let credentials = |secret: &str, scope: &str, jwt: bool| -> Vec<String> {
        let mut args: Vec<String> = [
            "--issuer",
            &issuer,
            "--client-id",
            "orders-client",
            "--client-secret-file",
            secret,
            "--scope",
            scope,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if jwt {
            args.extend(["--resource".to_owned(), "urn:orders-api".to_owned()]);
        }
        args
    };
    let call = |args: Vec<String>, rpc: &[&str]| {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(rpc);
        orders_client(&addr, &all)
    };

    // JWT access tokens (RFC 9068, strict profile), our CLI client.
    let out = call(
        credentials(&client_secret, "orders:read", true),
        &["who-am-i"],
    );
    assert!(out.contains("subject: \"orders-client\""), "{out}");
    let out = call(
        credentials(&client_secret, "orders:read", true),
        &["create-order"],
    );
    assert!(out.contains("code=7 "), "{out}");
    assert!(out.contains(INSUFFICIENT_WRITE), "{out}");
    let out = call(
        credentials(&client_secret, "orders:write", true),
        &["create-order", "--item", "gear"],
    );
    assert!(out.contains("item: \"gear\""), "{out}");

    // client_secret_post.
    let mut post = credentials(&post_secret, "orders:read", true);
    post[3] = "orders-client-post".to_owned();
    post.push("--secret-post".to_owned());
    let out = call(post, &["who-am-i"]);
    assert!(out.contains("subject: \"orders-client-post\""), "{out}");

    // Opaque tokens: the server introspects them.
    let out = call(
        credentials(&client_secret, "orders:read", false),
        &["who-am-i"],
    );
    assert!(
        out.starts_with("WhoAmIResponse"),
        "an introspected opaque token: {out}"
    );
    let out = call(
        credentials(&client_secret, "orders:read", false),
        &["create-order"],
    );
    assert!(out.contains("code=7 "), "{out}");
    let out = orders_client(&addr, &["--token", "not-a-real-opaque-token", "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains("the token is not active"), "{out}");

    // A foreign client: Python grpcio with stubs from the same .proto.
    let reader = token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &["orders:read"],
        Some("urn:orders-api"),
    )
    .await;
    let writer = token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &["orders:write"],
        Some("urn:orders-api"),
    )
    .await;
    assert_eq!(python(&addr, "WhoAmI", Some(&reader)), "OK");
    assert_eq!(python(&addr, "CreateOrder", Some(&writer)), "OK");
    assert_eq!(
        python(&addr, "CreateOrder", Some(&reader)),
        format!("CODE 7 {INSUFFICIENT_WRITE}")
    );
    assert_eq!(python(&addr, "WhoAmI", None), "CODE 16 Bearer");
    assert_eq!(python(&addr, "GetHTTPStatus", None), "OK");
    // One character of the signature changed (in the middle, so it stays valid base64url).
    let at = reader.rfind('.').expect("three segments") + 10;
    let swap = if &reader[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &reader[..at], &reader[at + 1..]);
    assert_eq!(
        python(&addr, "WhoAmI", Some(&tampered)),
        r#"CODE 16 Bearer error="invalid_token", error_description="the token's signature is invalid""#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_provider_needs_the_documented_switch() {
    let (_mock, issuer) = node("mock-server.mjs");
    assert!(issuer.starts_with("http://localhost:"), "{issuer}");
    let token = token(
        &issuer,
        "any-client",
        "any-secret",
        &["orders:read", "orders:write"],
        None,
    )
    .await;

    // The key-source timings, as an operator would tune them (see also `server_flags.rs`).
    let (_lenient, lenient) = orders_server(&[
        "--issuer",
        &issuer,
        "--audience",
        "orders-api",
        "--allow-plain-jwt",
        "--jwks-refresh-min",
        "30s",
        "--jwks-refresh-max",
        "10m",
        "--unknown-kid-cooldown",
        "5s",
        "--max-staleness",
        "1h",
        "--leeway",
        "30s",
    ]);
    assert_eq!(python(&lenient, "WhoAmI", Some(&token)), "OK");
    assert_eq!(python(&lenient, "CreateOrder", Some(&token)), "OK");
    let out = orders_client(&lenient, &["--token", &token, "who-am-i"]);
    assert!(
        out.contains("subject: \"\""),
        "no `sub` in these tokens: {out}"
    );

    let (_strict, strict) = orders_server(&["--issuer", &issuer, "--audience", "orders-api"]);
    let refused = r#"CODE 16 Bearer error="invalid_token", error_description="the token is not an access token""#;
    assert_eq!(python(&strict, "WhoAmI", Some(&token)), refused);
    let out = orders_client(&strict, &["--token", &token, "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains("the token is not an access token"), "{out}");
}
