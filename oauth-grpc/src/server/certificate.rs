//! The TLS client certificate of a call's connection: read from tonic's
//! `TlsConnectInfo`, parsed once per connection (by `x509-parser`) and shared by the calls
//! that come over it.
//!
//! Without the `mtls` feature only the remote address is read, and no call has a client
//! certificate (so a certificate-bound token is refused: there is nothing to check it
//! against).

use std::sync::Arc;

use tonic::transport::server::TcpConnectInfo;
#[cfg(feature = "mtls")]
use tonic::transport::server::TlsConnectInfo;
#[cfg(feature = "mtls")]
use x509_parser::extensions::GeneralName;
#[cfg(feature = "mtls")]
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::CertificateError;
use crate::principal::ClientCertificate;

#[cfg(feature = "mtls")]
/// At most this many connections' parsed certificates are kept; a connection beyond them
/// costs a parse per call.
const CACHE_CAPACITY: u64 = 4096;

#[cfg(feature = "mtls")]
impl ClientCertificate {
    /// Reads a DER certificate: its thumbprint, subject and subject alternative names. The
    /// layer does this for the leaf certificate of every mutual-TLS connection, after the
    /// TLS handshake verified it against the server's client CA; this function checks no
    /// signature or validity period.
    ///
    /// ```
    /// use oauth_grpc::{CertificateError, ClientCertificate};
    ///
    /// assert_eq!(ClientCertificate::from_der(&[0x30, 0x03, 1, 2, 3]), Err(CertificateError::Malformed));
    /// ```
    ///
    /// # Errors
    ///
    /// [`CertificateError::Malformed`] unless `der` is exactly one well-formed X.509
    /// certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (rest, certificate) =
            X509Certificate::from_der(der).map_err(|_| CertificateError::Malformed)?;
        if !rest.is_empty() {
            return Err(CertificateError::Malformed);
        }
        let subject = certificate.subject().to_string();
        if subject.starts_with("<X509Error") {
            // What x509-parser's `Display` writes for a name it cannot read.
            return Err(CertificateError::Malformed);
        }
        let mut uris = Vec::new();
        let mut dns_names = Vec::new();
        let names = certificate
            .subject_alternative_name()
            .map_err(|_| CertificateError::Malformed)?;
        for name in names.iter().flat_map(|san| &san.value.general_names) {
            match name {
                GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                _ => {}
            }
        }
        Ok(Self {
            thumbprint: Self::thumbprint_of(der),
            subject,
            uris,
            dns_names,
        })
    }
}

/// Where a call came from: the remote address and, under TLS, the peer's certificates.
#[derive(Default)]
pub(super) struct Peer {
    pub(super) addr: Option<std::net::SocketAddr>,
    /// The connection is TLS (known only with the `mtls` feature, which reads tonic's TLS
    /// connection info).
    pub(super) secure: bool,
    /// The TLS info of a mutual-TLS connection (the peer's certificates, shared).
    #[cfg(feature = "mtls")]
    tls: Option<TlsConnectInfo<TcpConnectInfo>>,
}

impl Peer {
    /// Reads the connection info tonic put into the request: `TlsConnectInfo` behind TLS,
    /// `TcpConnectInfo` otherwise.
    pub(super) fn of<B>(request: &http::Request<B>) -> Self {
        let extensions = request.extensions();
        #[cfg(feature = "mtls")]
        if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
            let client_certificate = tls.peer_certs().is_some_and(|chain| !chain.is_empty());
            return Self {
                addr: tls.get_ref().remote_addr(),
                secure: true,
                tls: client_certificate.then(|| tls.clone()),
            };
        }
        Self {
            addr: extensions
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr),
            secure: false,
            #[cfg(feature = "mtls")]
            tls: None,
        }
    }
}

/// The certificate chain of one TLS connection, as tonic shares it with every request of
/// that connection.
#[cfg(feature = "mtls")]
type Chain = Arc<Vec<tonic::transport::CertificateDer<'static>>>;

/// Parsed client certificates, by connection.
///
/// tonic hands every request of a connection the same `Arc` of its peer's certificates, so
/// the `Arc`'s address finds the connection's parsed certificate without hashing the DER on
/// every call. Each entry holds a clone of that `Arc`, so no other chain can be allocated at
/// the same address while the entry lives, and a hit is also checked with `Arc::ptr_eq`.
#[derive(Clone)]
pub(super) struct Certificates {
    #[cfg(feature = "mtls")]
    by_connection: moka::sync::Cache<usize, (Chain, Arc<ClientCertificate>)>,
}

impl Certificates {
    pub(super) fn new() -> Self {
        Self {
            #[cfg(feature = "mtls")]
            by_connection: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                // Connections that went quiet give their chains back.
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
        }
    }

    /// The client certificate of `peer`'s connection: none without the `mtls` feature.
    #[cfg(not(feature = "mtls"))]
    pub(super) fn of(
        &self,
        _peer: &Peer,
    ) -> Result<Option<Arc<ClientCertificate>>, CertificateError> {
        Ok(None)
    }

    /// The client certificate of `peer`'s connection, if it presented one.
    ///
    /// # Errors
    ///
    /// [`CertificateError`] when the certificate the handshake accepted cannot be read.
    #[cfg(feature = "mtls")]
    pub(super) fn of(
        &self,
        peer: &Peer,
    ) -> Result<Option<Arc<ClientCertificate>>, CertificateError> {
        let Some(chain) = peer.tls.as_ref().and_then(TlsConnectInfo::peer_certs) else {
            return Ok(None);
        };
        let key = Arc::as_ptr(&chain) as usize;
        if let Some((held, parsed)) = self.by_connection.get(&key)
            && Arc::ptr_eq(&held, &chain)
        {
            return Ok(Some(parsed));
        }
        let Some(der) = chain.first() else {
            return Ok(None);
        };
        let parsed = Arc::new(ClientCertificate::from_der(der.as_ref())?);
        self.by_connection.insert(key, (chain, parsed.clone()));
        Ok(Some(parsed))
    }
}
