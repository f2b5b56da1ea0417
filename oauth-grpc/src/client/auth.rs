//! How a client authenticates to the token endpoint: [`ClientAuthentication`], with a shared
//! secret or a [`PrivateKey`] (`private_key_jwt`, RFC 7523).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::error::{ConfigError, FetchError, KeyError};
use crate::keys::Algorithm;
use crate::provider::ClientSecret;

/// A private key for `private_key_jwt` client authentication (RFC 7523), from memory or from
/// a file read at each use. `Debug` never shows it.
///
/// ```
/// use oauth_grpc::client::PrivateKey;
/// use oauth_grpc::Algorithm;
///
/// let key = PrivateKey::from_file("/run/secrets/client.pem", Algorithm::ES256).kid("client-key-1");
/// assert!(!format!("{key:?}").contains("BEGIN"));
/// ```
#[derive(Clone)]
pub struct PrivateKey {
    pem: PemSource,
    alg: Algorithm,
    kid: Option<String>,
}

#[derive(Clone)]
enum PemSource {
    Value(Arc<[u8]>),
    File(PathBuf),
}

impl PrivateKey {
    /// A PEM private key (PKCS#8) signing with `alg`.
    pub fn from_pem(pem: impl Into<Vec<u8>>, alg: Algorithm) -> Self {
        Self {
            pem: PemSource::Value(Arc::from(pem.into())),
            alg,
            kid: None,
        }
    }

    /// A PEM private key read from `path` at each use (so a rotated key is picked up).
    pub fn from_file(path: impl Into<PathBuf>, alg: Algorithm) -> Self {
        Self {
            pem: PemSource::File(path.into()),
            alg,
            kid: None,
        }
    }

    /// The `kid` under which the provider knows the public key.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, KeyError> {
        let pem: Vec<u8> = match &self.pem {
            PemSource::Value(pem) => pem.to_vec(),
            PemSource::File(path) => std::fs::read(path).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })?,
        };
        signing_key(&pem, self.alg)
            .ok_or(KeyError::WrongAlgorithm {
                alg: self.alg,
                hint: "private_key_jwt needs an asymmetric algorithm (RS*, PS*, ES*, EdDSA)",
            })?
            .map_err(|_| KeyError::PrivatePem { alg: self.alg })
    }

    /// The RFC 7523 client assertion for `client_id` at `audience` (the token endpoint).
    pub(super) fn assertion(&self, client_id: &str, audience: &str) -> Result<String, FetchError> {
        let key = self.encoding_key().map_err(ConfigError::Keys)?;
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        let now = crate::time::unix_now();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 60,
            "jti": unique_id(),
        });
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|_| FetchError::from(ConfigError::Keys(KeyError::Sign)))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.pem {
            PemSource::Value(_) => "<redacted>".to_owned(),
            PemSource::File(path) => format!("file {}", path.display()),
        };
        f.debug_struct("PrivateKey")
            .field("pem", &source)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish()
    }
}

/// A PEM private key (PKCS#8; RSA also PKCS#1) as a signing key for the asymmetric `alg`;
/// `None` for an HMAC algorithm. Shared by `private_key_jwt` and DPoP keys.
pub(super) fn signing_key(
    pem: &[u8],
    alg: Algorithm,
) -> Option<jsonwebtoken::errors::Result<jsonwebtoken::EncodingKey>> {
    Some(match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem),
        // HMAC, and any algorithm a later jsonwebtoken adds.
        _ => return None,
    })
}

/// A unique id for assertion `jti`s: time, process and a counter, hashed.
fn unique_id() -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}:{}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// `client_secret_basic`.
    SecretBasic(ClientSecret),
    /// `client_secret_post`.
    SecretPost(ClientSecret),
    /// `private_key_jwt` (RFC 7523): a signed assertion, no shared secret.
    PrivateKeyJwt(PrivateKey),
    /// `tls_client_auth` or `self_signed_tls_client_auth` (RFC 8705 §2): the client proves
    /// itself with the certificate of its TLS connection to the token endpoint, and the form
    /// carries only `client_id`. Both methods look the same on the wire; which one applies
    /// is the provider's registration of the client (a PKI subject, or the certificate's
    /// own key). A provider issuing certificate-bound tokens (RFC 8705 §3) binds them to that
    /// certificate, so the token is useless without its private key.
    ///
    /// The certificate goes into the grant's [`HttpClient`](crate::HttpClient)
    /// ([`HttpClient::with_client_certificate`](crate::HttpClient::with_client_certificate),
    /// or your own `reqwest::ClientBuilder` with an identity); without one, fetching fails
    /// with [`ConfigError::TlsClientAuthWithoutCertificate`].
    ///
    /// ```no_run
    /// use oauth_grpc::HttpClient;
    /// use oauth_grpc::client::{ClientAuthentication, ClientCredentials};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let http = HttpClient::with_client_certificate(
    ///     &std::fs::read("/run/secrets/billing.crt")?,
    ///     &std::fs::read("/run/secrets/billing.key")?,
    /// )?;
    /// let source = ClientCredentials::discover(
    ///     "https://idp.example.com/",
    ///     "billing-service",
    ///     ClientAuthentication::TlsClientAuth,
    /// )
    /// .http_client(http)
    /// .scope("orders:read");
    /// # let _ = source;
    /// # Ok(())
    /// # }
    /// ```
    TlsClientAuth,
}
