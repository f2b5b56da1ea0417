//! A throwaway PKI made at run time with `rcgen`, for the demo and the tests: a CA, a server
//! certificate for `127.0.0.1` and `localhost`, and client certificates (optionally with a SAN
//! URI such as a SPIFFE ID). Nothing is written to the repository; keys live as long as the
//! process.
//!
//! Used by the `demo` binary, the tests of `examples` and the workspace's integration tests.
//!
//! ```
//! use examples::test_pki::TestPki;
//!
//! let pki = TestPki::new("orders test CA")?;
//! let server = pki.server()?;
//! let client = pki.client("client-a", Some("spiffe://orders.test/client-a"))?;
//! let bound = serde_json::json!({ "cnf": { "x5t#S256": client.thumbprint() } });
//! # assert_eq!(bound["cnf"]["x5t#S256"].as_str().map(str::len), Some(43));
//! # let _ = server;
//! # Ok::<(), rcgen::Error>(())
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority that signs the server's and the clients' certificates.
#[derive(Debug)]
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate with its private key, both PEM, and the certificate's DER.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER: what RFC 8705 hashes.
    pub der: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl Leaf {
    /// The RFC 8705 thumbprint: SHA-256 of the DER, base64url without padding — the value a
    /// certificate-bound token carries in `cnf.x5t#S256`.
    pub fn thumbprint(&self) -> String {
        oauth_grpc::ClientCertificate::thumbprint_of(&self.der)
    }
}

impl TestPki {
    /// A new CA with a fresh P-256 key, named `name`.
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { ca })
    }

    /// The CA's certificate, PEM: what `--client-ca`, `--ca` and `--idp-ca` trust.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA's certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> Result<Leaf, rcgen::Error> {
        let mut params = CertificateParams::new(["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate with common name `name`, the DNS name `{name}.orders.test` and,
    /// if given, a SAN URI (a SPIFFE ID).
    pub fn client(&self, name: &str, uri: Option<&str>) -> Result<Leaf, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names =
            vec![SanType::DnsName(format!("{name}.orders.test").try_into()?)];
        if let Some(uri) = uri {
            params.subject_alt_names.push(SanType::URI(uri.try_into()?));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Result<Leaf, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }
}
