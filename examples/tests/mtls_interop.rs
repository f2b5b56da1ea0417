//! Certificate-bound access tokens (RFC 8705) with peers nobody here wrote, over real TLS on
//! 127.0.0.1 with certificates made by `rcgen` for the run:
//!
//! - the certified OpenID provider `oidc-provider` (npm) terminates TLS itself, authenticates
//!   clients by their certificate (`self_signed_tls_client_auth`, `tls_client_auth` with a
//!   SPIFFE SAN URI) or a secret, and binds each client-credentials token to the certificate
//!   presented at its token endpoint (`cnf.x5t#S256`);
//! - our client library (`ClientCredentials` + `ClientAuthentication::TlsClientAuth`) and
//!   `orders-client --tls-client-auth` fetch those tokens; `orders-server` (TLS, `--client-ca`,
//!   keys by discovery over the provider's HTTPS with `--idp-ca`) accepts a bound token only
//!   over a connection presenting its certificate;
//! - the Python `grpcio` client over mutual TLS sees the same codes and `www-authenticate`
//!   values.
//!
//! The peers are installed by the test itself (see `interop.rs`).

// A failed expectation is this test's report.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod peers;

use std::path::PathBuf;

use base64::Engine as _;
use examples::test_pki::{Leaf, TestPki};
use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials};
use oauth_grpc::{ClientSecret, HttpClient};
use peers::{Process, node, orders_client_at, orders_client_output, orders_server, python_with};

const BOUND_ELSEWHERE: &str = r#"Bearer error="invalid_token", error_description="the token is bound to another client certificate""#;
const NEEDS_BOUND: &str = r#"Bearer error="invalid_token", error_description="this method needs a sender-constrained token""#;
const SPIFFE_A: &str = "spiffe://orders.test/client-a";
const RESOURCE: &str = "urn:orders-api";

/// The run's certificates, written to a temporary directory removed on drop.
struct Certificates {
    dir: PathBuf,
    ca_pem: String,
    /// Client A: registered at the provider (its certificate, and its SPIFFE ID).
    a: Leaf,
    /// Client B: same CA, another certificate.
    b: Leaf,
}

impl Certificates {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("oauth-grpc-mtls-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pki = TestPki::new("orders interop CA").expect("a CA");
        let server = pki.server().expect("a server certificate");
        let a = pki.client("client-a", Some(SPIFFE_A)).expect("client A");
        let b = pki
            .client("client-b", Some("spiffe://orders.test/client-b"))
            .expect("client B");
        // Chains to a CA the servers do not trust.
        let outsider = TestPki::new("outsider CA")
            .and_then(|other| other.client("client-a", Some(SPIFFE_A)))
            .expect("an outsider");
        let files = [
            ("ca.pem", pki.ca_pem()),
            ("server.pem", server.cert_pem.clone()),
            ("server-key.pem", server.key_pem.clone()),
            ("a.pem", a.cert_pem.clone()),
            ("a-key.pem", a.key_pem.clone()),
            ("b.pem", b.cert_pem.clone()),
            ("b-key.pem", b.key_pem.clone()),
            ("outsider.pem", outsider.cert_pem),
            ("outsider-key.pem", outsider.key_pem),
        ];
        for (name, pem) in files {
            std::fs::write(dir.join(name), pem).expect("write a PEM file");
        }
        Self {
            dir,
            ca_pem: pki.ca_pem(),
            a,
            b,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// oidc-provider over TLS, RFC 8705 on, client A's certificate registered.
    fn provider(&self) -> (Process, String) {
        let (process, issuer) = node(
            "oidc-provider.mjs",
            &[
                "--tls-cert",
                &self.path("server.pem"),
                "--tls-key",
                &self.path("server-key.pem"),
                "--client-ca",
                &self.path("ca.pem"),
                "--mtls-client-cert",
                &self.path("a.pem"),
            ],
        );
        assert!(issuer.starts_with("https://127.0.0.1:"), "{issuer}");
        (process, issuer)
    }

    /// `orders-server` for `issuer`, its keys fetched over the provider's HTTPS, with
    /// `extra` flags; returns it and its address.
    fn server(&self, issuer: &str, extra: &[&str]) -> (Process, String) {
        let mut args = vec!["--issuer", issuer, "--audience", RESOURCE, "--idp-ca"];
        let ca = self.path("ca.pem");
        args.push(&ca);
        args.extend(extra);
        orders_server(&args)
    }

    /// `--tls-cert … --tls-key …` and, if `mutual`, `--client-ca …`.
    fn tls_flags(&self, mutual: bool) -> Vec<String> {
        let mut flags = vec![
            "--tls-cert".to_owned(),
            self.path("server.pem"),
            "--tls-key".to_owned(),
            self.path("server-key.pem"),
        ];
        if mutual {
            flags.extend(["--client-ca".to_owned(), self.path("ca.pem")]);
        }
        flags
    }

    /// An `HttpClient` towards the provider trusting our CA, presenting `certificate`.
    fn http(&self, certificate: Option<&Leaf>) -> HttpClient {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("the CA");
        let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
        if let Some(leaf) = certificate {
            let pem = format!("{}{}", leaf.cert_pem, leaf.key_pem);
            builder =
                builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        HttpClient::from_builder(builder).expect("an HTTP client")
    }

    /// A client-credentials token from `issuer` for the JWT resource, fetched through our
    /// library with `certificate` presented at the token endpoint.
    async fn token(
        &self,
        issuer: &str,
        client: &str,
        auth: ClientAuthentication,
        certificate: Option<&Leaf>,
        scopes: &[&str],
    ) -> Result<String, tonic::Status> {
        let mut source = ClientCredentials::discover(issuer, client, auth)
            .http_client(self.http(certificate))
            .resource(RESOURCE);
        for scope in scopes {
            source = source.scope(*scope);
        }
        BearerLayer::new(source)
            .token()
            .await
            .map(|t| t.to_string())
    }

    /// `orders-client` to `https://{addr}` trusting our CA, presenting `client` (`"a"`,
    /// `"b"`, `"outsider"`) if given, then `args`.
    fn call(&self, addr: &str, client: Option<&str>, args: &[&str]) -> String {
        orders_client_at(
            &format!("https://{addr}"),
            &strs(&self.client_args(client, args)),
        )
    }

    fn client_args(&self, client: Option<&str>, args: &[&str]) -> Vec<String> {
        let mut all = vec!["--ca".to_owned(), self.path("ca.pem")];
        if let Some(name) = client {
            all.extend([
                "--cert".to_owned(),
                self.path(&format!("{name}.pem")),
                "--key".to_owned(),
                self.path(&format!("{name}-key.pem")),
            ]);
        }
        all.extend(args.iter().map(|s| (*s).to_owned()));
        all
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The `cnf` claim of a JWT, read without checking anything (the servers check).
fn cnf(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims.get("cnf").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_binds_tokens_to_the_client_certificate() {
    let certs = Certificates::new("bound");
    let (_provider, issuer) = certs.provider();
    let (_mutual, mutual) = certs.server(&issuer, &strs(&certs.tls_flags(true)));
    let (_tls, tls) = certs.server(&issuer, &strs(&certs.tls_flags(false)));
    let (_plain, plain) = certs.server(&issuer, &[]);

    // The provider binds what it issues to the certificate at its token endpoint, whichever
    // way the client authenticated: by that certificate (self-signed, or by its SPIFFE ID
    // under the CA) or by a secret.
    let scopes = ["orders:read", "orders:admin"];
    let self_signed = certs
        .token(
            &issuer,
            "orders-mtls-self-signed",
            ClientAuthentication::TlsClientAuth,
            Some(&certs.a),
            &scopes,
        )
        .await
        .expect("a token for self_signed_tls_client_auth");
    let pki = certs
        .token(
            &issuer,
            "orders-mtls-pki",
            ClientAuthentication::TlsClientAuth,
            Some(&certs.a),
            &scopes,
        )
        .await
        .expect("a token for tls_client_auth");
    let by_secret = certs
        .token(
            &issuer,
            "orders-bound-secret",
            ClientAuthentication::SecretBasic(ClientSecret::new("orders-bound-secret-secret")),
            Some(&certs.a),
            &scopes,
        )
        .await
        .expect("a bound token for a secret client");
    let expected = serde_json::json!({ "x5t#S256": certs.a.thumbprint() });
    for token in [&self_signed, &pki, &by_secret] {
        assert_eq!(cnf(token), Some(expected.clone()), "bound to client A");
    }
    let unbound = certs
        .token(
            &issuer,
            "orders-client",
            ClientAuthentication::SecretBasic(ClientSecret::new("orders-client-secret")),
            Some(&certs.a),
            &scopes,
        )
        .await
        .expect("a token for a client without binding");
    assert_eq!(cnf(&unbound), None);

    // The provider refuses certificate authentication with another certificate.
    for client in ["orders-mtls-self-signed", "orders-mtls-pki"] {
        let refused = certs
            .token(
                &issuer,
                client,
                ClientAuthentication::TlsClientAuth,
                Some(&certs.b),
                &scopes,
            )
            .await;
        assert!(
            refused.is_err(),
            "{client} authenticated with client B's certificate"
        );
    }

    // Our server: the bound token with client A's certificate.
    for token in [&self_signed, &pki, &by_secret] {
        let out = certs.call(&mutual, Some("a"), &["--token", token, "who-am-i"]);
        assert!(out.contains("sender_constrained: true"), "{out}");
        assert!(
            out.contains(&format!("client_certificate: \"{}\"", certs.a.thumbprint())),
            "{out}"
        );
        assert!(out.contains(&format!("spiffe_id: \"{SPIFFE_A}\"")), "{out}");
    }

    // The same token from client B, over TLS without a client certificate, and in plaintext.
    let out = certs.call(&mutual, Some("b"), &["--token", &self_signed, "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains(BOUND_ELSEWHERE), "{out}");
    let out = certs.call(&tls, None, &["--token", &self_signed, "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains(BOUND_ELSEWHERE), "{out}");
    let out = peers::orders_client(&plain, &["--token", &self_signed, "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains(BOUND_ELSEWHERE), "{out}");

    // A plain token still works where no binding is asked for.
    let out = certs.call(&mutual, Some("a"), &["--token", &unbound, "who-am-i"]);
    assert!(out.contains("sender_constrained: false"), "{out}");

    // A certificate from a CA that --client-ca does not name never gets to the call.
    let out = orders_client_output(
        &format!("https://{mutual}"),
        &strs(&certs.client_args(Some("outsider"), &["--token", &self_signed, "who-am-i"])),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        !stdout.contains("WhoAmIResponse") && !stdout.contains("code=16 "),
        "{stdout}"
    );

    // orders-client fetching its own token with client A's certificate.
    let idp = [
        "--issuer",
        issuer.as_str(),
        "--idp-ca",
        &certs.path("ca.pem"),
        "--resource",
        RESOURCE,
        "--scope",
        "orders:read",
    ];
    for client in ["orders-mtls-self-signed", "orders-mtls-pki"] {
        let mut args = idp.to_vec();
        args.extend(["--client-id", client, "--tls-client-auth", "who-am-i"]);
        let out = certs.call(&mutual, Some("a"), &args);
        assert!(out.contains(&format!("subject: \"{client}\"")), "{out}");
        assert!(out.contains("sender_constrained: true"), "{out}");
    }
    let secret = peers::secret_file("orders-bound-secret", "orders-bound-secret-secret");
    let secret = secret.to_string_lossy().into_owned();
    let mut args = idp.to_vec();
    args.extend([
        "--client-id",
        "orders-bound-secret",
        "--client-secret-file",
        &secret,
        "who-am-i",
    ]);
    let out = certs.call(&mutual, Some("a"), &args);
    assert!(out.contains("subject: \"orders-bound-secret\""), "{out}");
    assert!(out.contains("sender_constrained: true"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_constrained_tokens_required_everywhere() {
    let certs = Certificates::new("required");
    let (_provider, issuer) = certs.provider();
    let mut flags = certs.tls_flags(true);
    flags.push("--require-sender-constrained".to_owned());
    let (_strict, strict) = certs.server(&issuer, &strs(&flags));
    let (bound, plain) = bound_and_plain(&certs, &issuer).await;

    // --require-sender-constrained: every method but the public ones.
    let out = certs.call(&strict, Some("a"), &["--token", &plain, "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains(NEEDS_BOUND), "{out}");
    let out = certs.call(&strict, Some("a"), &["get-http-status"]);
    assert!(out.contains("code: 200"), "{out}");
    let out = certs.call(&strict, Some("a"), &["--token", &bound, "who-am-i"]);
    assert!(out.contains("sender_constrained: true"), "{out}");
}

/// Two tokens from the provider for client A: bound to its certificate, and plain.
async fn bound_and_plain(certs: &Certificates, issuer: &str) -> (String, String) {
    let scopes = ["orders:read", "orders:admin"];
    let bound = certs
        .token(
            issuer,
            "orders-mtls-self-signed",
            ClientAuthentication::TlsClientAuth,
            Some(&certs.a),
            &scopes,
        )
        .await
        .expect("a bound token");
    let plain = certs
        .token(
            issuer,
            "orders-client",
            ClientAuthentication::SecretBasic(ClientSecret::new("orders-client-secret")),
            Some(&certs.a),
            &scopes,
        )
        .await
        .expect("a plain token");
    (bound, plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_method_refuses_a_plain_token() {
    let certs = Certificates::new("bound-method");
    let (_provider, issuer) = certs.provider();
    let (_mutual, mutual) = certs.server(&issuer, &strs(&certs.tls_flags(true)));
    let (bound, plain) = bound_and_plain(&certs, &issuer).await;

    // `OrdersAdmin/PurgeCancelled` is marked `bound`: a plain admin token is refused there
    // even though the server does not require binding elsewhere.
    let out = certs.call(&mutual, Some("a"), &["--token", &plain, "purge-cancelled"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains(NEEDS_BOUND), "{out}");
    let out = certs.call(&mutual, Some("a"), &["--token", &bound, "purge-cancelled"]);
    assert!(out.contains("PurgeCancelledResponse"), "{out}");
    let out = certs.call(&mutual, Some("a"), &["--token", &plain, "who-am-i"]);
    assert!(out.contains("sender_constrained: false"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_over_mutual_tls() {
    let certs = Certificates::new("python");
    let (_provider, issuer) = certs.provider();
    let (_mutual, mutual) = certs.server(&issuer, &strs(&certs.tls_flags(true)));
    let (_tls, tls) = certs.server(&issuer, &strs(&certs.tls_flags(false)));
    let bound = certs
        .token(
            &issuer,
            "orders-mtls-self-signed",
            ClientAuthentication::TlsClientAuth,
            Some(&certs.a),
            &["orders:read", "orders:write"],
        )
        .await
        .expect("a bound token");
    let ca = certs.path("ca.pem");
    let as_client = |name: &str| {
        vec![
            "--ca".to_owned(),
            ca.clone(),
            "--cert".to_owned(),
            certs.path(&format!("{name}.pem")),
            "--key".to_owned(),
            certs.path(&format!("{name}-key.pem")),
        ]
    };
    let a = as_client("a");
    let b = as_client("b");
    assert_eq!(
        python_with(&strs(&a), &mutual, "WhoAmI", Some(&bound)),
        "OK"
    );
    assert_eq!(
        python_with(&strs(&a), &mutual, "CreateOrder", Some(&bound)),
        "OK"
    );
    assert_eq!(
        python_with(&strs(&b), &mutual, "WhoAmI", Some(&bound)),
        format!("CODE 16 {BOUND_ELSEWHERE}")
    );
    // TLS without a client certificate: to a server that asks for none, the token is
    // refused; to one that requires one, the handshake is.
    assert_eq!(
        python_with(&["--ca", &ca], &tls, "WhoAmI", Some(&bound)),
        format!("CODE 16 {BOUND_ELSEWHERE}")
    );
    assert_eq!(
        python_with(&["--ca", &ca], &mutual, "WhoAmI", Some(&bound)),
        "CODE 14 -"
    );
}
