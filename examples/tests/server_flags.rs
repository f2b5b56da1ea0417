//! `orders-server`'s flags: the key-source timings (each documented in `--help`, a humantime
//! duration, a bad value or an inverted refresh range refused with a message that names the
//! flag) and the TLS files (`--tls-cert`, `--tls-key`, `--client-ca`, `--idp-ca`: a missing
//! partner flag, an unreadable, malformed or mismatched file refused with a message naming the
//! flag and the file, never its content), all before anything is fetched.

#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use examples::test_pki::TestPki;

fn orders_server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args([
            "--issuer",
            "https://idp.invalid/",
            "--audience",
            "orders-api",
        ])
        .args(args)
        .env_clear()
        .output()
        .expect("orders-server runs")
}

#[test]
fn help_lists_every_timing_with_its_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .arg("--help")
        .output()
        .expect("orders-server runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env, default) in [
        ("--jwks-refresh-min", "ORDERS_JWKS_REFRESH_MIN", "1m"),
        ("--jwks-refresh-max", "ORDERS_JWKS_REFRESH_MAX", "24h"),
        (
            "--unknown-kid-cooldown",
            "ORDERS_UNKNOWN_KID_COOLDOWN",
            "30s",
        ),
        ("--max-staleness", "ORDERS_MAX_STALENESS", "24h"),
        ("--leeway", "ORDERS_LEEWAY", "60s"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(help.contains(env), "{env} missing from --help");
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{flag}'s default {default} missing from --help"
        );
    }
}

#[test]
fn a_bad_duration_names_the_flag() {
    let out = orders_server(&["--leeway", "ten seconds"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--leeway"), "{stderr}");
    assert!(stderr.contains("ten seconds"), "{stderr}");
}

#[test]
fn an_inverted_refresh_range_is_refused_before_any_fetch() {
    let out = orders_server(&["--jwks-refresh-min", "2h", "--jwks-refresh-max", "5m"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--jwks-refresh-min (2h) is longer than --jwks-refresh-max (5m)"),
        "{stderr}"
    );
}

#[test]
fn an_environment_variable_sets_a_timing() {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args([
            "--issuer",
            "https://idp.invalid/",
            "--audience",
            "orders-api",
        ])
        .env_clear()
        .env("ORDERS_UNKNOWN_KID_COOLDOWN", "soon")
        .output()
        .expect("orders-server runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--unknown-kid-cooldown"), "{stderr}");
}

/// A directory of this test's PEM files: a CA, a server certificate and key, another key.
struct Files {
    dir: PathBuf,
    key_pem: String,
}

impl Files {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("orders-server-flags-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pki = TestPki::new("flags CA").expect("a CA");
        let server = pki.server().expect("a server certificate");
        let other = pki.client("other", None).expect("another certificate");
        for (name, pem) in [
            ("ca.pem", pki.ca_pem()),
            ("server.pem", server.cert_pem.clone()),
            ("server-key.pem", server.key_pem.clone()),
            ("other-key.pem", other.key_pem),
            // A certificate cut short: BEGIN without END.
            (
                "truncated.pem",
                server.cert_pem[..server.cert_pem.len() / 2].to_owned(),
            ),
            ("empty.pem", String::new()),
        ] {
            std::fs::write(dir.join(name), pem).expect("write a PEM file");
        }
        Self {
            dir,
            key_pem: server.key_pem,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Whether `text` quotes any of the server key's PEM body.
    fn leaks_key(&self, text: &str) -> bool {
        self.key_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .any(|line| text.contains(&line[..line.len().min(16)]))
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn refused(args: &[&str]) -> String {
    let out = orders_server(args);
    assert!(!out.status.success(), "{args:?} was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn help_lists_the_tls_files_with_their_variables() {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .arg("--help")
        .output()
        .expect("orders-server runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--tls-cert <FILE>", "ORDERS_TLS_CERT"),
        ("--tls-key <FILE>", "ORDERS_TLS_KEY"),
        ("--client-ca <FILE>", "ORDERS_CLIENT_CA"),
        ("--idp-ca <FILE>", "ORDERS_IDP_CA"),
        (
            "--require-sender-constrained",
            "ORDERS_REQUIRE_SENDER_CONSTRAINED",
        ),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(help.contains(env), "{env} missing from --help");
    }
    assert!(
        help.contains("in clear"),
        "the plaintext risk is not said:\n{help}"
    );
}

#[test]
fn client_ca_without_a_server_certificate_names_the_fix() {
    let files = Files::new("ca-alone");
    let stderr = refused(&["--client-ca", &files.path("ca.pem")]);
    assert!(
        stderr.contains("--client-ca needs --tls-cert and --tls-key"),
        "{stderr}"
    );
}

#[test]
fn client_ca_from_the_environment_is_checked_the_same() {
    let files = Files::new("ca-env");
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args([
            "--issuer",
            "https://idp.invalid/",
            "--audience",
            "orders-api",
        ])
        .env_clear()
        .env("ORDERS_CLIENT_CA", files.path("ca.pem"))
        .output()
        .expect("orders-server runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--client-ca needs --tls-cert and --tls-key"),
        "{stderr}"
    );
}

#[test]
fn requiring_bound_tokens_without_client_certificates_names_the_fix() {
    let files = Files::new("require-bound");
    let stderr = refused(&[
        "--tls-cert",
        &files.path("server.pem"),
        "--tls-key",
        &files.path("server-key.pem"),
        "--require-sender-constrained",
    ]);
    assert!(
        stderr.contains("--require-sender-constrained needs --client-ca or --dpop"),
        "{stderr}"
    );
}

#[test]
fn a_dpop_origin_with_a_path_names_the_fix() {
    let stderr = refused(&["--dpop", "--dpop-origin", "https://orders.example.com/api"]);
    assert!(stderr.contains("--dpop-origin"), "{stderr}");
    assert!(stderr.contains("without a path"), "{stderr}");
}

#[test]
fn a_certificate_without_its_key_names_the_fix() {
    let files = Files::new("cert-alone");
    let stderr = refused(&["--tls-cert", &files.path("server.pem")]);
    assert!(stderr.contains("--tls-cert needs --tls-key"), "{stderr}");
    let stderr = refused(&["--tls-key", &files.path("server-key.pem")]);
    assert!(stderr.contains("--tls-key needs --tls-cert"), "{stderr}");
}

#[test]
fn an_unreadable_file_is_named() {
    let files = Files::new("unreadable");
    let missing = files.path("no-such.pem");
    let stderr = refused(&[
        "--tls-cert",
        &missing,
        "--tls-key",
        &files.path("server-key.pem"),
    ]);
    assert!(
        stderr.contains(&format!("--tls-cert {missing}: cannot read the file")),
        "{stderr}"
    );
}

#[test]
fn a_file_of_the_wrong_kind_is_named_without_its_content() {
    let files = Files::new("wrong-kind");
    let (cert, key) = (files.path("server.pem"), files.path("server-key.pem"));

    // The key given as the certificate.
    let stderr = refused(&["--tls-cert", &key, "--tls-key", &key]);
    assert!(
        stderr.contains(&format!("--tls-cert {key}: no certificate in the file")),
        "{stderr}"
    );
    assert!(!files.leaks_key(&stderr), "key material in: {stderr}");

    // The certificate given as the key.
    let stderr = refused(&["--tls-cert", &cert, "--tls-key", &cert]);
    assert!(
        stderr.contains(&format!("--tls-key {cert}: no private key in the file")),
        "{stderr}"
    );

    // The key given as the client CA.
    let stderr = refused(&["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &key]);
    assert!(
        stderr.contains(&format!("--client-ca {key}: no certificate in the file")),
        "{stderr}"
    );
    assert!(!files.leaks_key(&stderr), "key material in: {stderr}");

    // An empty file, and the key given as the provider's CA.
    let empty = files.path("empty.pem");
    let stderr = refused(&["--tls-cert", &empty, "--tls-key", &key]);
    assert!(
        stderr.contains(&format!("--tls-cert {empty}: no certificate in the file")),
        "{stderr}"
    );
    let stderr = refused(&["--idp-ca", &key]);
    assert!(
        stderr.contains(&format!("--idp-ca {key}: no certificate in the file")),
        "{stderr}"
    );
    assert!(!files.leaks_key(&stderr), "key material in: {stderr}");
}

#[test]
fn a_truncated_certificate_is_named() {
    let files = Files::new("truncated");
    let truncated = files.path("truncated.pem");
    let stderr = refused(&[
        "--tls-cert",
        &truncated,
        "--tls-key",
        &files.path("server-key.pem"),
    ]);
    assert!(
        stderr.contains(&format!(
            "--tls-cert {truncated}: a PEM section has no END line"
        )),
        "{stderr}"
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let files = Files::new("mismatch");
    let stderr = refused(&[
        "--tls-cert",
        &files.path("server.pem"),
        "--tls-key",
        &files.path("other-key.pem"),
    ]);
    assert!(
        stderr.contains("--tls-cert, --tls-key or --client-ca refused by TLS"),
        "{stderr}"
    );
    assert!(stderr.contains("KeyMismatch"), "{stderr}");
}

#[test]
fn plaintext_is_served_with_a_warning() {
    // Nothing listens on port 1: the start-up fetch fails at once, after the warning.
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args([
            "--issuer",
            "http://127.0.0.1:1/",
            "--audience",
            "orders-api",
        ])
        .env_clear()
        .output()
        .expect("orders-server runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: plaintext gRPC (no --tls-cert): bearer tokens cross the network in clear"
        ),
        "{stderr}"
    );
}

/// `orders-server ARGS…` alone (no default issuer), refused: its stderr.
fn refused_alone(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .args(args)
        .env_clear()
        .output()
        .expect("orders-server runs");
    assert!(!out.status.success(), "{args:?} was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn one_providers_endpoint_with_several_issuers_names_the_config_file() {
    for flags in [
        &["--jwks-url", "https://a.invalid/jwks"][..],
        &[
            "--introspect-url",
            "https://a.invalid/introspect",
            "--client-id",
            "orders-api",
            "--client-secret-file",
            "/nonexistent",
        ][..],
    ] {
        let mut args = vec![
            "--issuer",
            "https://a.invalid/",
            "--issuer",
            "https://b.invalid/",
            "--audience",
            "orders-api",
        ];
        args.extend(flags);
        let stderr = refused_alone(&args);
        assert!(
            stderr.contains(&format!(
                "{} names one provider's endpoint, but 2 --issuer were given",
                flags[0]
            )),
            "{stderr}"
        );
        assert!(stderr.contains("--config FILE"), "{stderr}");
    }
}

#[test]
fn a_config_file_replaces_the_issuer_flags() {
    let stderr = refused_alone(&[
        "--config",
        "/nonexistent.toml",
        "--issuer",
        "https://a.invalid/",
    ]);
    assert!(stderr.contains("--config"), "{stderr}");
    assert!(stderr.contains("--issuer"), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let stderr = refused_alone(&[]);
    assert!(stderr.contains("--issuer"), "{stderr}");
}

#[test]
fn config_file_mistakes_name_the_file_and_the_fix() {
    let dir = std::env::temp_dir().join(format!("orders-config-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("config file");
        path.to_string_lossy().into_owned()
    };
    let stderr = refused_alone(&["--config", "/nonexistent/orders.toml"]);
    assert!(
        stderr.contains("--config /nonexistent/orders.toml: "),
        "{stderr}"
    );

    let typo = write(
        "typo.toml",
        "[[issuer]]\niss = \"https://a.invalid/\"\naudience = [\"orders-api\"]\n",
    );
    let stderr = refused_alone(&["--config", &typo]);
    assert!(stderr.contains(&format!("--config {typo}")), "{stderr}");
    assert!(stderr.contains("unknown field `audience`"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");

    let empty = write("empty.toml", "audiences = [\"orders-api\"]\n");
    let stderr = refused_alone(&["--config", &empty]);
    assert!(stderr.contains("no [[issuer]]"), "{stderr}");

    let no_audience = write(
        "no-audience.toml",
        "[[issuer]]\niss = \"https://a.invalid/\"\n",
    );
    let stderr = refused_alone(&["--config", &no_audience]);
    assert!(
        stderr.contains("[[issuer]] 1 (https://a.invalid/): no audience"),
        "{stderr}"
    );
    assert!(stderr.contains("add `audiences = "), "{stderr}");

    let wildcard = write(
        "wildcard.toml",
        "audiences = [\"api\"]\n[[issuer]]\ntemplate = \"https://idp.invalid/{tenant}/\"\n",
    );
    let stderr = refused_alone(&["--config", &wildcard]);
    assert!(stderr.contains("a `template` needs `tenants`"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
