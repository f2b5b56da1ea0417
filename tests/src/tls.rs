//! Real TLS for the tests: a private CA made with `rcgen`, a server certificate for
//! 127.0.0.1 and `localhost`, client certificates, and the orders service served over
//! (mutual) TLS on an ephemeral loopback port.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use examples::test_pki::{Leaf, TestPki};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::TestServer;

/// A certificate with its key: the example crate's [`Leaf`].
pub type Issued = Leaf;

/// The certificate and key of `issued` as a tonic identity.
pub fn identity(issued: &Issued) -> Identity {
    Identity::from_pem(&issued.cert_pem, &issued.key_pem)
}

/// A private certificate authority (the example crate's [`TestPki`]) and its server
/// certificate.
#[derive(Debug)]
pub struct Pki {
    ca: TestPki,
    /// The server's certificate: `localhost` and `127.0.0.1`.
    pub server: Issued,
}

impl Pki {
    /// A new CA named `name`, with a server certificate.
    ///
    /// # Panics
    ///
    /// If rcgen cannot make the certificates (a test set-up error).
    pub fn new(name: &str) -> Self {
        let ca = TestPki::new(name).expect("a CA");
        let server = ca.server().expect("a server certificate");
        Self { ca, server }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.ca_pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.ca_der()
    }

    /// A client certificate for common name `name` (DNS name `{name}.orders.test`), with a
    /// SPIFFE ID SAN URI if given.
    ///
    /// # Panics
    ///
    /// If rcgen cannot make it.
    pub fn client(&self, name: &str, spiffe_id: Option<&str>) -> Issued {
        self.ca
            .client(name, spiffe_id)
            .expect("a client certificate")
    }

    /// The server's TLS configuration: its certificate, and client certificates checked
    /// against this CA (`optional`: connections without one are accepted too).
    pub fn server_tls(&self, client_certificates: ClientCerts) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(identity(&self.server));
        match client_certificates {
            ClientCerts::None => config,
            ClientCerts::Optional => config
                .client_ca_root(Certificate::from_pem(self.ca_pem()))
                .client_auth_optional(true),
            ClientCerts::Required => config.client_ca_root(Certificate::from_pem(self.ca_pem())),
        }
    }

    /// A client TLS configuration trusting this CA, presenting `identity` if given.
    pub fn client_tls(&self, presented: Option<&Issued>) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca_pem()))
            .domain_name("localhost");
        match presented {
            Some(issued) => config.identity(identity(issued)),
            None => config,
        }
    }
}

/// Whether the server asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// Server-side TLS only.
    None,
    /// Mutual TLS, and connections without a client certificate too.
    Optional,
    /// Mutual TLS only: the handshake refuses a client without a certificate of the CA.
    Required,
}

/// The orders services behind `layer`, over TLS with `tls`.
///
/// # Errors
///
/// When no loopback port can be bound.
pub async fn orders_server_tls(
    layer: oauth_grpc::OAuthLayer,
    store: examples::Store,
    tls: ServerTlsConfig,
) -> std::io::Result<TestServer> {
    crate::orders_server_over(layer, store, Some(tls)).await
}

/// A TLS channel to `server` with `tls`.
///
/// # Errors
///
/// When the connection or the handshake fails.
pub async fn channel(
    server: &TestServer,
    tls: ClientTlsConfig,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("https://{}", server.addr()))?
        .tls_config(tls)?
        .connect()
        .await
}

/// A token endpoint over mutual TLS that authenticates clients by their certificate
/// (RFC 8705 §2, `self_signed_tls_client_auth` style: the form carries only `client_id`) and
/// binds the tokens it issues to that certificate (§3): each token, signed by the `rsa-1` test
/// key for the test issuer and audience, carries `cnf.x5t#S256` of the certificate the
/// connection presented.
#[derive(Debug)]
pub struct BindingTokenEndpoint {
    addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The thumbprint of the connection's client certificate, for the handler.
#[derive(Clone)]
struct Presented(Option<String>);

impl BindingTokenEndpoint {
    /// Serves on 127.0.0.1 with `pki`'s server certificate, requiring a client certificate
    /// of `pki`.
    ///
    /// # Panics
    ///
    /// If the TLS configuration or the listener cannot be made (a test set-up error).
    pub async fn start(pki: &Pki) -> Self {
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
        use tokio_rustls::rustls::server::WebPkiClientVerifier;
        use tokio_rustls::rustls::{RootCertStore, ServerConfig};

        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(pki.ca_der()))
            .expect("the CA certificate");
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("a client verifier");
        let mut config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(pki.server.der.clone())],
                PrivatePkcs8KeyDer::from(pki.server.key_der.clone()).into(),
            )
            .expect("the server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/token", axum::routing::post(issue))
            .with_state(requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A refused handshake ends this connection only.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let presented = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|der| oauth_grpc::ClientCertificate::thumbprint_of(der));
                    let app = app.layer(axum::Extension(Presented(presented)));
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    /// `https://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("https://{}/token", self.addr)
    }

    /// Token requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for BindingTokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn issue(
    axum::extract::State(requests): axum::extract::State<Arc<AtomicUsize>>,
    axum::Extension(Presented(presented)): axum::Extension<Presented>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    requests.fetch_add(1, Ordering::SeqCst);
    let refuse = |error: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response()
    };
    // Certificate authentication: a client id and no other credentials.
    let (Some(thumbprint), Some(client_id)) = (presented, form.get("client_id")) else {
        return refuse("invalid_client");
    };
    if form.contains_key("client_secret") || form.contains_key("client_assertion") {
        return refuse("invalid_request");
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse("unsupported_grant_type");
    }
    let mut claims = crate::issuer::claims(form.get("scope").map_or("", String::as_str));
    claims["sub"] = client_id.as_str().into();
    claims["client_id"] = client_id.as_str().into();
    claims["cnf"] = serde_json::json!({ "x5t#S256": thumbprint });
    let key = crate::issuer::TestKey::Rsa1;
    let token = crate::issuer::sign_json(&crate::issuer::header(key), &claims, key);
    axum::Json(serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
    }))
    .into_response()
}
