//! Failures of the identity provider: [`ProviderError`], and the client's [`FetchError`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "client")]
use super::ConfigError;
use super::{Cause, UrlError};

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
/// assert!(provider.is_connect());                       // nothing listens on port 9
/// assert!(!provider.is_timeout());
/// assert!(std::error::Error::source(provider).is_some()); // the cause is kept
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
    /// A failed discovery URL answers for the failure it wraps (see the type's example).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::Timeout | ProviderErrorKind::StartupTimeout { .. }
        ) || self.inner().is_some_and(Self::is_timeout)
    }

    /// Whether no connection to the provider could be made.
    /// A failed discovery URL answers for the failure it wraps (see the type's example).
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Connect)
            || self.inner().is_some_and(Self::is_connect)
    }

    /// The HTTP status the provider answered with, when that was the failure.
    /// A failed discovery URL answers for the failure it wraps (see the type's example).
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
    /// DPoP was asked for (`.dpop(key)`) and the endpoint issued a token of another type:
    /// the provider did not bind the token to the key, so it is discarded (RFC 9449 §5).
    #[error(
        "the provider did not bind the token to the DPoP key (`token_type` {token_type:?}, not \"DPoP\"), so it is discarded; enable DPoP-bound tokens for this client at the provider"
    )]
    NotBound {
        /// The `token_type` the endpoint answered.
        token_type: String,
    },
}

#[cfg(feature = "client")]
impl From<ConfigError> for FetchError {
    fn from(error: ConfigError) -> Self {
        Self::Config(Arc::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(inner: ProviderError) -> ProviderError {
        ProviderError::with_source(
            ProviderErrorKind::Discovery {
                url: "https://idp.test/.well-known/openid-configuration".into(),
            },
            Arc::new(inner),
        )
    }

    #[test]
    fn accessors_read_the_kind() {
        let timeout = ProviderError::new(ProviderErrorKind::Timeout);
        assert!(timeout.is_timeout() && !timeout.is_connect());
        assert_eq!(timeout.status(), None);
        let refused = ProviderError::new(ProviderErrorKind::Connect);
        assert!(refused.is_connect() && !refused.is_timeout());
        assert_eq!(
            ProviderError::new(ProviderErrorKind::Status(503)).status(),
            Some(503)
        );
        assert_eq!(
            ProviderError::new(ProviderErrorKind::EndpointStatus(502)).status(),
            Some(502)
        );
        let startup = ProviderError::new(ProviderErrorKind::StartupTimeout {
            source: "https://idp.test/".into(),
            after: Duration::from_secs(10),
        });
        assert!(startup.is_timeout());
        assert_eq!(
            startup.to_string(),
            "no keys from https://idp.test/ within 10s"
        );
    }

    #[test]
    fn a_discovery_failure_answers_for_what_it_wraps() {
        let status = wrapped(ProviderError::new(ProviderErrorKind::Status(404)));
        assert_eq!(status.status(), Some(404));
        assert!(!status.is_timeout() && !status.is_connect());
        assert_eq!(
            status.to_string(),
            "discovery at https://idp.test/.well-known/openid-configuration: the provider answered HTTP 404"
        );
        assert!(wrapped(ProviderError::new(ProviderErrorKind::Timeout)).is_timeout());
        assert!(wrapped(ProviderError::new(ProviderErrorKind::Connect)).is_connect());
        // The cause stays reachable.
        let source = StdError::source(&status).expect("the wrapped error");
        assert_eq!(source.to_string(), "the provider answered HTTP 404");
    }
}
