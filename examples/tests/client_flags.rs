//! `orders-client`'s TLS flags (`--ca`, `--cert`, `--key`, `--idp-ca`, `--tls-client-auth`)
//! and DPoP flags (`--dpop`, `--dpop-key`, `--dpop-alg`, `--dpop-origin`): documented in
//! `--help`, and a missing partner flag, a plaintext server, an unreadable file, a key DPoP
//! cannot use or a bad origin refused with a message naming the fix, before any connection.

#![allow(clippy::expect_used)]

use std::process::Command;

fn refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-client"))
        .args(args)
        .env_clear()
        .output()
        .expect("orders-client runs");
    assert!(!out.status.success(), "{args:?} was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A PEM file of this test's, removed on drop.
struct Pem(std::path::PathBuf);

impl Pem {
    fn new(name: &str) -> Self {
        let pki = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        let path = std::env::temp_dir().join(format!(
            "orders-client-flags-{}-{name}.pem",
            std::process::id()
        ));
        std::fs::write(&path, pki.cert.pem()).expect("write a PEM file");
        Self(path)
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for Pem {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn help_lists_the_tls_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_orders-client"))
        .arg("--help")
        .output()
        .expect("orders-client runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--ca <FILE>", Some("ORDERS_CA")),
        ("--cert <FILE>", Some("ORDERS_CERT")),
        ("--key <FILE>", Some("ORDERS_KEY")),
        ("--idp-ca <FILE>", Some("ORDERS_IDP_CA")),
        ("--tls-client-auth", None),
        ("--dpop", None),
        ("--dpop-key <FILE>", Some("ORDERS_DPOP_KEY")),
        ("--dpop-alg <ALG>", None),
        ("--dpop-origin <URL>", None),
        ("purge-cancelled", None),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        if let Some(env) = env {
            assert!(help.contains(env), "{env} missing from --help");
        }
    }
}

#[test]
fn tls_files_need_an_https_server() {
    let ca = Pem::new("ca-http");
    let stderr = refused(&[
        "--server",
        "http://127.0.0.1:1",
        "--ca",
        &ca.path(),
        "who-am-i",
    ]);
    assert!(
        stderr.contains("--ca, --cert and --key are for TLS: give an https:// --server"),
        "{stderr}"
    );
}

#[test]
fn a_certificate_needs_its_key() {
    let cert = Pem::new("cert-alone");
    let stderr = refused(&[
        "--server",
        "https://127.0.0.1:1",
        "--cert",
        &cert.path(),
        "who-am-i",
    ]);
    assert!(stderr.contains("--cert needs --key"), "{stderr}");
    let stderr = refused(&[
        "--server",
        "https://127.0.0.1:1",
        "--key",
        &cert.path(),
        "who-am-i",
    ]);
    assert!(stderr.contains("--key needs --cert"), "{stderr}");
}

#[test]
fn an_unreadable_ca_is_named() {
    let missing = std::env::temp_dir().join("orders-client-flags-no-such-ca.pem");
    let missing = missing.to_string_lossy();
    let stderr = refused(&[
        "--server",
        "https://127.0.0.1:1",
        "--ca",
        &missing,
        "who-am-i",
    ]);
    assert!(
        stderr.contains(&format!("--ca {missing}: cannot read the file")),
        "{stderr}"
    );
}

#[test]
fn certificate_authentication_needs_a_certificate() {
    let stderr = refused(&[
        "--server",
        "https://127.0.0.1:1",
        "--issuer",
        "https://idp.invalid/",
        "--client-id",
        "billing",
        "--tls-client-auth",
        "who-am-i",
    ]);
    assert!(
        stderr.contains("--tls-client-auth needs --cert and --key"),
        "{stderr}"
    );
}

#[test]
fn client_credentials_need_a_credential() {
    let stderr = refused(&[
        "--issuer",
        "https://idp.invalid/",
        "--client-id",
        "billing",
        "who-am-i",
    ]);
    assert!(
        stderr.contains("give --client-secret-file, or --tls-client-auth with --cert and --key"),
        "{stderr}"
    );
}

#[test]
fn certificate_authentication_sends_no_secret() {
    let stderr = refused(&[
        "--issuer",
        "https://idp.invalid/",
        "--client-id",
        "billing",
        "--client-secret-file",
        "/run/secrets/billing",
        "--tls-client-auth",
        "who-am-i",
    ]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// A file of this test's with `content`, removed on drop.
fn file(name: &str, content: &[u8]) -> Pem {
    let path = std::env::temp_dir().join(format!(
        "orders-client-flags-{}-{name}.pem",
        std::process::id()
    ));
    std::fs::write(&path, content).expect("write a file");
    Pem(path)
}

#[test]
fn dpop_needs_a_token_source() {
    let stderr = refused(&["--dpop", "who-am-i"]);
    assert!(
        stderr.contains("--dpop needs a token: client credentials"),
        "{stderr}"
    );
}

#[test]
fn a_fixed_token_is_not_bound_to_a_generated_key() {
    let stderr = refused(&["--token", "eyJ.e30.c2ln", "--dpop", "who-am-i"]);
    assert!(
        stderr.contains("give --dpop-key with the key it is bound to"),
        "{stderr}"
    );
    assert!(!stderr.contains("eyJ.e30.c2ln"), "the token is not echoed");
}

#[test]
fn a_dpop_key_file_must_hold_a_usable_private_key() {
    let missing = std::env::temp_dir().join("orders-client-flags-no-such-dpop-key.pem");
    let missing = missing.to_string_lossy();
    let stderr = refused(&["--token", "t", "--dpop-key", &missing, "who-am-i"]);
    assert!(
        stderr.contains(&format!("--dpop-key {missing}: cannot read the file")),
        "{stderr}"
    );

    // A certificate is no key.
    let cert = Pem::new("dpop-cert");
    let stderr = refused(&["--token", "t", "--dpop-key", &cert.path(), "who-am-i"]);
    assert!(stderr.contains("no private key in the file"), "{stderr}");

    // A key of a type DPoP cannot use with the algorithm asked for.
    let pki = rcgen::KeyPair::generate().expect("a P-256 key");
    let key = file("dpop-p256", pki.serialize_pem().as_bytes());
    let stderr = refused(&[
        "--token",
        "t",
        "--dpop-key",
        &key.path(),
        "--dpop-alg",
        "EdDSA",
        "who-am-i",
    ]);
    assert!(stderr.contains("cannot be used"), "{stderr}");
    assert!(!stderr.contains("BEGIN"), "the key is not echoed");
    let stderr = refused(&[
        "--token",
        "t",
        "--dpop-key",
        &key.path(),
        "--dpop-alg",
        "HS256",
        "who-am-i",
    ]);
    assert!(stderr.contains("asymmetric algorithm"), "{stderr}");
    let stderr = refused(&[
        "--token",
        "t",
        "--dpop-key",
        &key.path(),
        "--dpop-alg",
        "ES999",
        "who-am-i",
    ]);
    assert!(
        stderr.contains("--dpop-alg ES999: not a JWS algorithm"),
        "{stderr}"
    );
}

#[test]
fn the_dpop_origin_is_an_origin_alone() {
    let pki = rcgen::KeyPair::generate().expect("a P-256 key");
    let key = file("dpop-origin", pki.serialize_pem().as_bytes());
    let stderr = refused(&[
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "t",
        "--dpop-key",
        &key.path(),
        "--dpop-origin",
        "https://orders.example.com/orders.v1.Orders",
        "who-am-i",
    ]);
    assert!(
        stderr.contains("--dpop-origin: the DPoP origin") && stderr.contains("without a path"),
        "{stderr}"
    );
}

#[test]
fn a_dpop_key_loads_and_the_call_goes_out() {
    // A good key and origin pass the flag checks; the call fails only for want of a server.
    let pki = rcgen::KeyPair::generate().expect("a P-256 key");
    let key = file("dpop-good", pki.serialize_pem().as_bytes());
    let stderr = refused(&[
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "t",
        "--dpop-key",
        &key.path(),
        "who-am-i",
    ]);
    assert!(
        stderr.contains("cannot connect to http://127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn an_actor_token_needs_a_subject_token() {
    let stderr = refused(&[
        "--issuer",
        "https://idp.invalid/",
        "--client-id",
        "assistant",
        "--actor-token-file",
        "/tmp/assistant.jwt",
        "who-am-i",
    ]);
    assert!(stderr.contains("--subject-token-file"), "{stderr}");
}

#[test]
fn a_subject_token_file_must_hold_one_token() {
    let secret = file("exchange-secret", b"assistant-secret");
    let two = file("exchange-two-tokens", b"eyJ.a.b\neyJ.c.d\n");
    let stderr = refused(&[
        "--token-endpoint",
        "http://127.0.0.1:1/token",
        "--client-id",
        "assistant",
        "--client-secret-file",
        &secret.path(),
        "--subject-token-file",
        &two.path(),
        "who-am-i",
    ]);
    assert!(
        stderr.contains("not one access token (the file must hold the token alone)"),
        "{stderr}"
    );
    assert!(!stderr.contains("eyJ"), "tokens are not echoed: {stderr}");
}

/// The exchange end to end: the development issuer's token endpoint trades the user's token
/// and the assistant's for a delegated one, and the orders server sees both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_acts_for_a_user_by_token_exchange() {
    use examples::dev_issuer::{ASSISTANT, DevIssuer, REPORTING_AGENT, WRITER};
    use oauth_grpc::client::{ClientAuthentication, ClientCredentials, TokenSource};
    use oauth_grpc::{ClientSecret, KeySource, OAuthLayer, PolicySet, Validator};

    let idp = DevIssuer::start("orders-api").await.expect("issuer");
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience("orders-api")
        .keys(KeySource::discover(idp.issuer()))
        .start()
        .await
        .expect("validator");
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(examples::pb::orders_server::OrdersServer::new(
                examples::OrderBook::default(),
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let token_of = |client: examples::dev_issuer::DevClient| {
        ClientCredentials::discover(
            idp.issuer(),
            client.id,
            ClientAuthentication::SecretBasic(ClientSecret::new(client.secret)),
        )
        .audience("orders-api")
    };
    let user = token_of(WRITER).fetch().await.expect("user token");
    let user = file("exchange-user", user.secret().as_bytes());
    let run = |agent: examples::dev_issuer::DevClient, call: &'static [&'static str]| {
        let (user, issuer, server) = (
            user.path(),
            idp.issuer().to_owned(),
            format!("http://{addr}"),
        );
        let own = token_of(agent);
        async move {
            let own = own.fetch().await.expect("agent token");
            let own = file(&format!("exchange-{}", agent.id), own.secret().as_bytes());
            let secret = file(
                &format!("exchange-secret-{}", agent.id),
                agent.secret.as_bytes(),
            );
            tokio::task::spawn_blocking(move || {
                let mut args = vec![
                    "--server".to_owned(),
                    server,
                    "--issuer".to_owned(),
                    issuer,
                    "--client-id".to_owned(),
                    agent.id.to_owned(),
                    "--client-secret-file".to_owned(),
                    secret.path(),
                    "--audience".to_owned(),
                    "orders-api".to_owned(),
                    "--subject-token-file".to_owned(),
                    user,
                    "--actor-token-file".to_owned(),
                    own.path(),
                ];
                args.extend(call.iter().map(|a| (*a).to_owned()));
                let out = Command::new(env!("CARGO_BIN_EXE_orders-client"))
                    .args(&args)
                    .env_clear()
                    .output()
                    .expect("orders-client runs");
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                (out.status.success(), text)
            })
            .await
            .expect("the client ran")
        }
    };
    let (ok, text) = run(ASSISTANT, &["who-am-i"]).await;
    assert!(ok, "{text}");
    assert!(text.contains("subject: \"orders-writer\""), "{text}");
    assert!(text.contains("actors: [\"assistant\"]"), "{text}");
    let (ok, text) = run(ASSISTANT, &["create-order", "--item", "widget"]).await;
    assert!(ok, "{text}");
    assert!(text.contains("owner: \"orders-writer\""), "{text}");
    let (ok, text) = run(ASSISTANT, &["cancel-order", "--id", "1"]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("delegated calls are not allowed"), "{text}");
    let (ok, text) = run(REPORTING_AGENT, &["create-order", "--item", "widget"]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("this actor is not allowed"), "{text}");
    server.abort();
}
