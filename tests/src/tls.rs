//! Real TLS for the tests: a private CA made with `rcgen`, a server certificate for
//! 127.0.0.1 and `localhost`, client certificates, and the orders service served over
//! (mutual) TLS on an ephemeral loopback port.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::TestServer;

/// A certificate and its private key, PEM, plus the certificate's DER.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER: what `cnf.x5t#S256` is the SHA-256 of.
    pub der: Vec<u8>,
}

impl Issued {
    /// The RFC 8705 thumbprint of the certificate: base64url SHA-256 of its DER.
    pub fn thumbprint(&self) -> String {
        oauth_grpc::ClientCertificate::thumbprint_of(&self.der)
    }

    /// The certificate and key as a tonic identity.
    pub fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// A private certificate authority.
#[derive(Debug)]
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
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
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        let mut pki = Self {
            ca,
            server: Issued {
                cert_pem: String::new(),
                key_pem: String::new(),
                der: Vec::new(),
            },
        };
        pki.server = pki.issue(
            "orders-server",
            vec![
                SanType::DnsName("localhost".try_into().expect("a DNS name")),
                SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            ],
        );
        pki
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A client certificate for common name `name`, with a SPIFFE ID SAN URI if given.
    ///
    /// # Panics
    ///
    /// If rcgen cannot make it.
    pub fn client(&self, name: &str, spiffe_id: Option<&str>) -> Issued {
        let mut sans = vec![SanType::DnsName(
            format!("{name}.orders.test")
                .try_into()
                .expect("a DNS name"),
        )];
        if let Some(id) = spiffe_id {
            sans.push(SanType::URI(id.try_into().expect("a URI")));
        }
        self.issue(name, sans)
    }

    fn issue(&self, name: &str, sans: Vec<SanType>) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "oauth-grpc tests");
        params.subject_alt_names = sans;
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.ca).expect("a certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// The server's TLS configuration: its certificate, and client certificates checked
    /// against this CA (`optional`: connections without one are accepted too).
    pub fn server_tls(&self, client_certificates: ClientCerts) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.server.identity());
        match client_certificates {
            ClientCerts::None => config,
            ClientCerts::Optional => config
                .client_ca_root(Certificate::from_pem(self.ca_pem()))
                .client_auth_optional(true),
            ClientCerts::Required => config.client_ca_root(Certificate::from_pem(self.ca_pem())),
        }
    }

    /// A client TLS configuration trusting this CA, presenting `identity` if given.
    pub fn client_tls(&self, identity: Option<&Issued>) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca_pem()))
            .domain_name("localhost");
        match identity {
            Some(issued) => config.identity(issued.identity()),
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
///
/// # Panics
///
/// If tonic refuses the TLS configuration (a test set-up error).
pub async fn orders_server_tls(
    layer: oauth_grpc::OAuthLayer,
    store: examples::Store,
    tls: ServerTlsConfig,
) -> std::io::Result<TestServer> {
    let router = tonic::transport::Server::builder()
        .tls_config(tls)
        .expect("the TLS configuration is accepted")
        .layer(layer)
        .add_service(examples::pb::orders_server::OrdersServer::new(
            examples::OrderBook::new(store.clone()),
        ))
        .add_service(examples::pb::orders_admin_server::OrdersAdminServer::new(
            examples::AdminDesk::new(store),
        ));
    TestServer::serve(|incoming, shutdown| router.serve_with_incoming_shutdown(incoming, shutdown))
        .await
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
