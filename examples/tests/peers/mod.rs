//! What the interop tests share: the third-party peers installed at their pinned versions
//! (`npm ci`, a Python venv with grpcio and stubs), child processes killed on drop, and
//! `orders-server`, `orders-client` and the Python client run as an operator would.

// Each test file uses a part of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use oauth_grpc::ClientSecret;
use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials};

pub(crate) fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

pub(crate) fn run(command: &mut Command, what: &str) -> Output {
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
pub(crate) fn peers() -> &'static Path {
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
        // The marker holds the requirements it was installed from: a venv made before they
        // changed is made again (`--clear`), so it never lacks a new pin or keeps an old one.
        let requirements = dir.join("python/requirements.txt");
        let wanted = std::fs::read(&requirements).expect("python/requirements.txt");
        let marker = venv.join("installed");
        if std::fs::read(&marker).ok().as_deref() != Some(wanted.as_slice()) {
            run(
                Command::new("python3")
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv),
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
                    .arg(&requirements),
                "pip install -r requirements.txt",
            );
            std::fs::write(&marker, &wanted).expect("marker");
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

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed on drop, with the first stdout line that starts with `prefix`.
pub(crate) struct Process {
    child: Child,
    pub(crate) line: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn spawn(command: &mut Command, prefix: &str) -> Process {
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

/// Starts a Node peer on a free port with `args` after the port; returns it and its issuer.
pub(crate) fn node(script: &str, args: &[&str]) -> (Process, String) {
    let dir = peers();
    let process = spawn(
        Command::new("node")
            .arg(dir.join(script))
            .arg(free_port().to_string())
            .args(args),
        "READY ",
    );
    let issuer = process.line.trim_start_matches("READY ").trim().to_owned();
    (process, issuer)
}

pub(crate) fn orders_server(args: &[&str]) -> (Process, String) {
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

/// `orders-client --server http://{server} ARGS…`; its stdout.
pub(crate) fn orders_client(server: &str, args: &[&str]) -> String {
    orders_client_at(&format!("http://{server}"), args)
}

/// `orders-client --server {url} ARGS…`; its stdout.
pub(crate) fn orders_client_at(url: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&orders_client_output(url, args).stdout).into_owned()
}

/// `orders-client --server {url} ARGS…`; its exit status, stdout and stderr.
pub(crate) fn orders_client_output(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orders-client"))
        .args(["--server", url])
        .args(args)
        .output()
        .expect("orders-client runs")
}

/// The Python grpcio client over a plaintext channel: `OK` or `CODE <n> <www-authenticate>`.
pub(crate) fn python(server: &str, rpc: &str, token: Option<&str>) -> String {
    python_with(&[], server, rpc, token)
}

/// The Python grpcio client with `options` (`--ca`, `--cert`, `--key`) before its arguments.
pub(crate) fn python_with(
    options: &[&str],
    server: &str,
    rpc: &str,
    token: Option<&str>,
) -> String {
    let dir = peers();
    let venv = dir.join("python/.venv");
    let mut command = Command::new(venv.join("bin/python"));
    command
        .arg(dir.join("python/client.py"))
        .args(options)
        // An opaque token may begin with `-` (one in 64 of oidc-provider's): after `--`,
        // argparse takes it as the TOKEN, not as an unknown option.
        .arg("--")
        .arg(server)
        .arg(rpc)
        .env("ORDERS_STUBS", venv.join("stubs"));
    if let Some(token) = token {
        command.arg(token);
    }
    let output = command.output().expect("python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    // The client prints a line per call whatever the server answers: nothing at all means it
    // failed itself (a usage error or a Python exception), and its stderr says how.
    assert!(
        !stdout.is_empty(),
        "the Python client printed nothing ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `python/dpop.py ARGS…` (DPoP keys, proofs and tokens, see its usage) in the venv; its exit
/// status, stdout and stderr.
pub(crate) fn python_dpop(args: &[&str]) -> Output {
    let dir = peers();
    Command::new(dir.join("python/.venv/bin/python"))
        .arg(dir.join("python/dpop.py"))
        .args(args)
        .output()
        .expect("python dpop.py runs")
}

pub(crate) fn secret_file(name: &str, secret: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oauth-grpc-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).expect("write secret");
    path
}

pub(crate) async fn token(
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
