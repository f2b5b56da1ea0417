//! A throwaway PKI made at run time with `rcgen`, for the demo and the tests: a CA, a server
//! certificate for `127.0.0.1` and `localhost`, and client certificates (optionally with a SAN
//! URI such as a SPIFFE ID). Nothing is written to the repository; keys live as long as the
//! process.
//!
//! Shared by the `demo` binary and the tests of `examples` (`#[path]`-included).
//!
//! ```text
//! let pki = TestPki::new("orders test CA")?;
//! let server = pki.server()?;
//! let client = pki.client("client-a", Some("spiffe://orders.test/client-a"))?;
//! let bound = json!({ "cnf": { "x5t#S256": client.thumbprint() } });
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority that signs the server's and the clients' certificates.
pub(crate) struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate with its private key, both PEM, and the certificate's DER.
pub(crate) struct Leaf {
    /// The certificate, PEM.
    pub(crate) cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub(crate) key_pem: String,
    /// The certificate, DER: what RFC 8705 hashes.
    pub(crate) der: Vec<u8>,
}

impl Leaf {
    /// The RFC 8705 thumbprint: SHA-256 of the DER, base64url without padding — the value a
    /// certificate-bound token carries in `cnf.x5t#S256`.
    pub(crate) fn thumbprint(&self) -> String {
        oauth_grpc::ClientCertificate::thumbprint_of(&self.der)
    }
}

impl TestPki {
    /// A new CA with a fresh P-256 key, named `name`.
    pub(crate) fn new(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { ca })
    }

    /// The CA's certificate, PEM: what `--client-ca`, `--ca` and `--idp-ca` trust.
    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub(crate) fn server(&self) -> Result<Leaf, rcgen::Error> {
        let mut params = CertificateParams::new(["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate with common name `name` and, if given, a SAN URI (a SPIFFE ID).
    pub(crate) fn client(&self, name: &str, uri: Option<&str>) -> Result<Leaf, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        if let Some(uri) = uri {
            params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
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
        })
    }
}
