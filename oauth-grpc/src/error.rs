//! Every error of the crate, each typed and free of secrets: why a token or a call was
//! refused ([`TokenError`], [`AuthError`]), what is wrong in the configuration
//! ([`ConfigError`], [`KeyError`], [`UrlError`], [`SecretError`]), why the identity provider
//! could not help ([`ProviderError`]), and why a client got no token
//! ([`FetchError`](crate::client::FetchError)).
//!
//! Messages are fixed phrases that name the fix; none carries a token, a secret or key
//! material. Underlying causes (an I/O error, a transport failure, a JSON error) stay
//! reachable through [`std::error::Error::source`]. The conversion of each refusal to a
//! `tonic::Status` lives in one place (`status.rs`):
//!
//! ```
//! use oauth_grpc::{AuthError, TokenError};
//!
//! let status = tonic::Status::from(AuthError::InvalidToken(TokenError::Expired));
//! assert_eq!(status.code(), tonic::Code::Unauthenticated);
//! assert_eq!(
//!     status.metadata().get("www-authenticate").unwrap(),
//!     r#"Bearer error="invalid_token", error_description="the token has expired""#,
//! );
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::{Denial, Rule};
use jsonwebtoken::Algorithm;

/// An underlying cause, shared so that errors holding one stay `Clone`.
pub(crate) type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// Why a bearer token was not accepted. Each maps to `UNAUTHENTICATED`
/// `error="invalid_token"`, except [`Unavailable`](Self::Unavailable).
///
/// ```
/// use oauth_grpc::TokenError;
///
/// assert_eq!(TokenError::Expired.code(), "expired");
/// assert_eq!(TokenError::Expired.to_string(), "the token has expired");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS: wrong number of segments, bad base64url, bad JSON.
    #[error("the token is malformed")]
    Malformed,
    /// A JWE (five segments): encrypted tokens are not accepted.
    #[error("encrypted tokens are not accepted")]
    Encrypted,
    /// `cty: JWT`: a nested token.
    #[error("nested tokens are not accepted")]
    Nested,
    /// `alg` is `none`, unknown, or not allowed for this validator.
    #[error("the token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `alg` does not fit the key: another key type, or the key declares another `alg`.
    #[error("the token's signing algorithm does not match its key")]
    AlgorithmMismatch,
    /// No trusted key has the token's `kid`, or without `kid` no single key fits.
    #[error("the token's signing key is not trusted")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The header names a critical extension (`crit`) that is not understood.
    #[error("the token uses an unsupported critical header")]
    UnsupportedCritical,
    /// `typ` is not an access token type (RFC 9068 `at+jwt`).
    #[error("the token is not an access token")]
    WrongType,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `exp - iat` exceeds the configured maximum lifetime.
    #[error("the token's lifetime is too long")]
    LifetimeTooLong,
    /// A claim the validator needs is absent.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// A claim has the wrong JSON type or an impossible value.
    #[error("the token has an invalid claim")]
    InvalidClaim,
    /// `iss` is not a trusted issuer.
    #[error("the token's issuer is not trusted")]
    WrongIssuer,
    /// `aud` does not name this service.
    #[error("the token is not meant for this service")]
    WrongAudience,
    /// Introspection says the token is not active (revoked, expired or unknown).
    #[error("the token is not active")]
    Inactive,
    /// The identity provider cannot be reached for keys or introspection right now. Maps to
    /// `UNAVAILABLE`, so that clients retry.
    #[error("the identity provider is unavailable")]
    Unavailable,
}

impl TokenError {
    /// A stable snake_case code for audit records and metrics.
    ///
    /// ```
    /// # use oauth_grpc::TokenError;
    /// assert_eq!(TokenError::WrongAudience.code(), "wrong_audience");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Encrypted => "encrypted",
            Self::Nested => "nested",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::AlgorithmMismatch => "algorithm_mismatch",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::WrongType => "wrong_type",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Inactive => "inactive",
            Self::Unavailable => "provider_unavailable",
        }
    }
}

/// Why the runtime layer refused a call.
///
/// ```
/// use oauth_grpc::AuthError;
///
/// let status = tonic::Status::from(AuthError::MissingToken);
/// assert_eq!(status.code(), tonic::Code::Unauthenticated);
/// assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer credentials: no `authorization` value, or one with another scheme.
    #[error("this call needs a bearer token")]
    MissingToken,
    /// The credentials are malformed: several values, bad syntax, over the size limit.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The token was refused.
    #[error(transparent)]
    InvalidToken(TokenError),
    /// The token is valid but lacks the scopes of the rule.
    #[error("the token lacks the scopes this call needs")]
    InsufficientScope(Rule),
    /// The request path has no access rule.
    #[error("no access rule for this call")]
    NoRule,
}

impl AuthError {
    /// A stable snake_case code for audit records and metrics.
    ///
    /// ```
    /// # use oauth_grpc::{AuthError, TokenError};
    /// assert_eq!(AuthError::InvalidToken(TokenError::Expired).code(), "expired");
    /// assert_eq!(AuthError::MissingToken.code(), "missing_token");
    /// ```
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(e) => e.code(),
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::NoRule => "no_rule",
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(error: TokenError) -> Self {
        Self::InvalidToken(error)
    }
}

impl From<Denial> for AuthError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Unauthenticated => Self::MissingToken,
            Denial::InsufficientScope(rule) => Self::InsufficientScope(rule),
        }
    }
}

/// A mistake in the configuration. The message names the fix.
///
/// ```
/// use oauth_grpc::{ConfigError, Validator};
///
/// let err = Validator::builder().audience("orders-api").build().unwrap_err();
/// assert!(matches!(err, ConfigError::NoIssuer));
/// assert!(err.to_string().contains(".issuer("));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No issuer configured.
    #[error(
        "no issuer configured; add `.issuer(\"https://your-idp.example.com/\")`, exactly as the tokens' `iss`"
    )]
    NoIssuer,
    /// No audience configured.
    #[error(
        "no audience configured; add `.audience(\"your-api\")`, the value your identity provider puts in `aud` for this service"
    )]
    NoAudience,
    /// No keys configured.
    #[error(
        "no verification keys configured; add `.keys(KeySet::from_jwks_file(\"jwks.json\")?)` or another key source"
    )]
    NoKeys,
    /// An empty string where a value is needed.
    #[error("the {0} is empty; give the exact value")]
    Empty(&'static str),
    /// HMAC secrets and public keys in one validator.
    #[error(
        "an HMAC secret cannot be combined with public keys in one validator (algorithm confusion); use one validator per key kind"
    )]
    MixedKeys,
    /// The keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A role claim path that cannot be followed.
    #[error(
        "the role claim path {0:?} is empty or has an empty segment; write it like `realm_access.roles`"
    )]
    RolePath(String),
    /// Static keys and a remote key source, or two remote sources, in one validator.
    #[error(
        "give either static keys or one remote key source (`KeySource::discover` / `KeySource::jwks_url`), not both"
    )]
    MixedSources,
    /// A URL of the identity provider is not acceptable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A client secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The HTTP client could not be built.
    #[error("the HTTP client cannot be built ({source}); check the machine's TLS set-up")]
    HttpClient {
        /// The error of the HTTP library.
        #[source]
        source: Cause,
    },
    /// The crypto backend does not verify signatures (a provider installed elsewhere, or
    /// both backend features on with one chosen before this crate could choose).
    #[error("the crypto backend of jsonwebtoken does not work: {0}")]
    CryptoBackend(&'static str),
    /// The first load of remote keys failed (with `fail_on_startup`, the default).
    #[error("cannot load the identity provider's keys at start-up: {0}")]
    Startup(#[source] ProviderError),
}

/// A URL of the identity provider that may not be used: not a URL, plain `http` to a host
/// that is not loopback (without `HttpClient::allow_insecure_http`), or another scheme.
///
/// ```
/// use oauth_grpc::{ConfigError, KeySource, Validator};
///
/// let err = Validator::builder()
///     .issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .keys(KeySource::jwks_url("http://idp.example.com/jwks.json"))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, ConfigError::Url(_)));
/// assert!(err.to_string().contains("use https"));
/// ```
#[derive(Debug, Clone)]
pub struct UrlError {
    what: &'static str,
    url: String,
    problem: UrlProblem,
}

#[cfg_attr(
    not(any(feature = "jwks", feature = "introspection", feature = "client")),
    allow(dead_code)
)]
#[derive(Debug, Clone)]
enum UrlProblem {
    NotUrl(Cause),
    PlainHttp,
    Scheme(String),
}

#[cfg_attr(
    not(any(feature = "jwks", feature = "introspection", feature = "client")),
    allow(dead_code)
)]
impl UrlError {
    pub(crate) fn not_url(what: &'static str, url: &str, cause: Cause) -> Self {
        Self::new(what, url, UrlProblem::NotUrl(cause))
    }

    pub(crate) fn plain_http(what: &'static str, url: &str) -> Self {
        Self::new(what, url, UrlProblem::PlainHttp)
    }

    pub(crate) fn scheme(what: &'static str, url: &str, scheme: &str) -> Self {
        Self::new(what, url, UrlProblem::Scheme(scheme.to_owned()))
    }

    fn new(what: &'static str, url: &str, problem: UrlProblem) -> Self {
        Self {
            what,
            url: url.to_owned(),
            problem,
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, url) = (self.what, &self.url);
        match &self.problem {
            UrlProblem::NotUrl(cause) => write!(f, "the {what} {url:?} is not a URL ({cause})"),
            UrlProblem::PlainHttp => write!(
                f,
                "the {what} {url:?} uses plain http; use https, or `HttpClient::allow_insecure_http()` for a test provider"
            ),
            UrlProblem::Scheme(scheme) => {
                write!(f, "the {what} {url:?} has scheme {scheme:?}; use https")
            }
        }
    }
}

impl StdError for UrlError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.problem {
            UrlProblem::NotUrl(cause) => Some(&**cause),
            _ => None,
        }
    }
}

/// A client secret that cannot be read from its file.
///
/// ```
/// use oauth_grpc::{ClientSecret, SecretError};
///
/// let err = ClientSecret::from_file("/no/such/secret").reveal().unwrap_err();
/// assert!(matches!(err, SecretError::Unreadable { .. }));
/// assert!(err.to_string().contains("/no/such/secret"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file cannot be read.
    #[error("cannot read the client secret file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file holds nothing but white space.
    #[error("the client secret file {} is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The identity provider could not give what was asked of it: metadata, keys, an
/// introspection answer or a token. Opaque (as `tonic::transport::Error` is): the message says
/// what failed, without the request's contents, and [`source`](StdError::source) gives the
/// cause.
///
/// ```
/// use oauth_grpc::{ConfigError, KeySource, Validator};
///
/// # async fn run() {
/// let err = Validator::builder()
///     .issuer("http://127.0.0.1:9/")
///     .audience("orders-api")
///     .keys(KeySource::discover("http://127.0.0.1:9/"))
///     .start()
///     .await
///     .unwrap_err();
/// let ConfigError::Startup(provider) = &err else { panic!("{err}") };
/// assert!(!provider.is_timeout());
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run());
/// ```
#[derive(Debug, Clone)]
pub struct ProviderError {
    kind: ProviderErrorKind,
    source: Option<Cause>,
}

/// What went wrong with the provider. Each network feature makes some of these.
#[cfg_attr(
    not(all(feature = "jwks", feature = "introspection", feature = "client")),
    allow(dead_code)
)]
#[derive(Debug, Clone)]
pub(crate) enum ProviderErrorKind {
    /// No answer in time.
    Timeout,
    /// No connection.
    Connect,
    /// Another transport failure.
    Request,
    /// An HTTP status other than success.
    Status(u16),
    /// A server error from an OAuth endpoint (4xx answers carry an OAuth error instead).
    EndpointStatus(u16),
    /// A body over the size limit.
    TooLarge,
    /// A URL the configuration or a discovery document gave may not be used.
    Url,
    /// A discovery URL failed; the cause says how.
    Discovery { url: String },
    /// A discovery document without the members needed.
    NotMetadata { url: String, needed: &'static str },
    /// A discovery document for another issuer.
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    /// A JWKS document that was refused; the cause is the [`KeyError`].
    KeysRefused,
    /// No keys within the start-up timeout.
    StartupTimeout { source: String, after: Duration },
    /// The keys did not load, for no reason recorded.
    NoKeys,
    /// An answer that is not what the endpoint should send.
    Answer(&'static str),
}

#[cfg_attr(
    not(any(feature = "jwks", feature = "introspection", feature = "client")),
    allow(dead_code)
)]
impl ProviderError {
    pub(crate) fn new(kind: ProviderErrorKind) -> Self {
        Self { kind, source: None }
    }

    pub(crate) fn with_source(kind: ProviderErrorKind, source: Cause) -> Self {
        Self {
            kind,
            source: Some(source),
        }
    }

    /// Whether the provider did not answer in time.
    ///
    /// ```
    /// # fn check(error: &oauth_grpc::ProviderError) -> bool {
    /// error.is_timeout()
    /// # }
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::Timeout | ProviderErrorKind::StartupTimeout { .. }
        ) || self.inner().is_some_and(Self::is_timeout)
    }

    /// Whether no connection to the provider could be made.
    ///
    /// ```
    /// # fn check(error: &oauth_grpc::ProviderError) -> bool {
    /// error.is_connect()
    /// # }
    /// ```
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Connect)
            || self.inner().is_some_and(Self::is_connect)
    }

    /// The HTTP status the provider answered with, when that was the failure.
    ///
    /// ```
    /// # fn check(error: &oauth_grpc::ProviderError) -> Option<u16> {
    /// error.status()
    /// # }
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ProviderErrorKind::Status(code) | ProviderErrorKind::EndpointStatus(code) => Some(code),
            _ => self.inner().and_then(Self::status),
        }
    }

    /// Whether the provider could not be reached or failed to answer (rather than answering
    /// with something unusable): worth a retry later.
    #[cfg(feature = "client")]
    pub(crate) fn is_unreachable(&self) -> bool {
        use ProviderErrorKind as K;
        matches!(
            self.kind,
            K::Timeout
                | K::Connect
                | K::Request
                | K::Status(_)
                | K::EndpointStatus(_)
                | K::TooLarge
                | K::Discovery { .. }
        )
    }

    /// A provider error this one wraps (a failed discovery URL).
    fn inner(&self) -> Option<&ProviderError> {
        self.source.as_deref()?.downcast_ref::<ProviderError>()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProviderErrorKind as K;
        match &self.kind {
            K::Timeout => f.write_str("the provider did not answer in time"),
            K::Connect => f.write_str("cannot connect to the provider"),
            K::Request => f.write_str("the request to the provider failed"),
            K::Status(code) => write!(f, "the provider answered HTTP {code}"),
            K::EndpointStatus(code) => write!(f, "the endpoint answered HTTP {code}"),
            K::TooLarge => f.write_str("the provider's answer is larger than 1 MiB"),
            K::Url | K::KeysRefused => match (&self.kind, &self.source) {
                (K::KeysRefused, Some(cause)) => {
                    write!(f, "the JWKS document was refused: {cause}")
                }
                (_, Some(cause)) => write!(f, "{cause}"),
                _ => f.write_str("the provider's URL cannot be used"),
            },
            K::Discovery { url } => match &self.source {
                Some(cause) => write!(f, "discovery at {url}: {cause}"),
                None => write!(f, "discovery at {url} failed"),
            },
            K::NotMetadata { url, needed } => write!(
                f,
                "discovery at {url} is not provider metadata with `issuer` and `{needed}`"
            ),
            K::IssuerMismatch {
                url,
                found,
                expected,
            } => write!(
                f,
                "discovery at {url} names issuer {found:?}, but {expected:?} is configured; they must be equal exactly"
            ),
            K::StartupTimeout { source, after } => {
                write!(f, "no keys from {source} within {after:?}")
            }
            K::NoKeys => f.write_str("no usable keys"),
            K::Answer(what) => f.write_str(what),
        }
    }
}

impl StdError for ProviderError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|cause| cause as &(dyn StdError + 'static))
    }
}

impl From<UrlError> for ProviderError {
    fn from(error: UrlError) -> Self {
        Self::with_source(ProviderErrorKind::Url, Arc::new(error))
    }
}

/// Why no token could be had.
///
/// ```
/// use oauth_grpc::client::FetchError;
///
/// let error = FetchError::Rejected("invalid_client".into());
/// assert_eq!(tonic::Status::from(error).code(), tonic::Code::Unauthenticated);
/// ```
#[cfg(feature = "client")]
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The endpoint refused: the OAuth error code (`invalid_client`, `invalid_scope`, …).
    #[error("the token endpoint rejected the request ({0})")]
    Rejected(String),
    /// The endpoint could not be reached or is failing.
    #[error("the token endpoint cannot be reached ({0})")]
    Unreachable(#[source] ProviderError),
    /// The answer is not a token response.
    #[error("the token endpoint's answer is not a token response ({0})")]
    Invalid(#[source] ProviderError),
    /// The client's own configuration is wrong (a secret file missing, a bad key).
    #[error("the token client is misconfigured ({0})")]
    Config(#[source] Arc<ConfigError>),
}

#[cfg(feature = "client")]
impl From<ConfigError> for FetchError {
    fn from(error: ConfigError) -> Self {
        Self::Config(Arc::new(error))
    }
}

/// What went wrong loading keys. The message says what to fix.
///
/// ```
/// use oauth_grpc::{KeyError, KeySet};
///
/// let err = KeySet::from_jwks(br#"{"keys": []}"#).unwrap_err();
/// assert!(matches!(err, KeyError::NoUsableKey { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The document is not JSON of the expected shape.
    #[error(
        "the key document is not valid JSON of the expected shape ({0}); a JWKS is `{{\"keys\": [...]}}`"
    )]
    Json(String),
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PEM document is not a public key of the type the algorithm needs.
    #[error(
        "the PEM document is not a {expected} public key (RSA: 2048 bits or more); pass the PEM `PUBLIC KEY` of the key that signs the tokens"
    )]
    Pem {
        /// The key type expected from the algorithm.
        expected: &'static str,
    },
    /// The JWK cannot verify signatures with this crate.
    #[error("the JWK cannot be used: {0}")]
    UnusableJwk(String),
    /// The HMAC secret is shorter than the hash (RFC 7518 §3.2).
    #[error(
        "an HMAC secret for {alg:?} needs at least {min} bytes, got {len}; use a longer random secret"
    )]
    ShortSecret {
        /// The algorithm.
        alg: Algorithm,
        /// Minimum length in bytes.
        min: usize,
        /// Given length in bytes.
        len: usize,
    },
    /// The algorithm is not of the kind this constructor takes.
    #[error("{alg:?} cannot be used here: {hint}")]
    WrongAlgorithm {
        /// The algorithm given.
        alg: Algorithm,
        /// What to use instead.
        hint: &'static str,
    },
    /// A PEM document is not a private key for the algorithm (`private_key_jwt`).
    #[error(
        "the PEM document is not a private key for {alg:?}; pass the PKCS#8 `PRIVATE KEY` registered with the provider"
    )]
    PrivatePem {
        /// The algorithm the key should sign with.
        alg: Algorithm,
    },
    /// A client assertion could not be signed with the private key.
    #[error("cannot sign the client assertion with the private key")]
    Sign,
    /// Nothing in the document can verify signatures.
    #[error(
        "no usable signing key in the document ({skipped} skipped: encryption keys, unsupported types or malformed entries)"
    )]
    NoUsableKey {
        /// How many entries were skipped.
        skipped: usize,
    },
}
