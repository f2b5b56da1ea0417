//! Configuration errors: [`ConfigError`], and the [`KeyError`], [`UrlError`] and
//! [`SecretError`] it wraps.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::{Cause, ProviderError};

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
        "no issuer configured; add `.issuer(\"https://your-idp.example.com/\")`, exactly as the tokens' `iss`, or `.trust(Issuer::new(\"https://your-idp.example.com/\").keys(…))` once per provider"
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
    /// Keys or introspection given to the builder without `.issuer(…)` to vouch for.
    #[error(
        "keys or introspection are given to the builder, but no `.issuer(…)` they vouch for; add `.issuer(\"https://your-idp.example.com/\")`, or give them to the provider they belong to with `.trust(Issuer::new(…).keys(…))`"
    )]
    KeysWithoutIssuer,
    /// A setting that describes one provider's tokens (token types, the scope, audience or
    /// role claim, role mappings) given to the builder without `.issuer(…)`: it would
    /// otherwise apply to every trusted provider, so a role mapping meant for one could
    /// grant scopes to another's tokens.
    #[error(
        "`{0}` is given to the builder, but no `.issuer(…)` it describes; set it on the `Issuer` whose tokens read that way (`.trust(Issuer::new(…).{0}(…))`), once per provider"
    )]
    ProviderSettingWithoutIssuer(&'static str),
    /// Roles mapped to scopes without a role claim that says where the roles are.
    #[error(
        "roles are mapped to scopes, but no role claim says where a token carries them; add `.role_claim(\"realm_access.roles\")` (the path of the roles in your provider's tokens) beside `.map_role(…)`"
    )]
    RolesWithoutClaim,
    /// Introspection on an issuer template: one endpoint cannot answer for every tenant.
    #[error(
        "the issuer template {0:?} is given introspection, but each tenant has its own endpoint; trust the tenants that need introspection one by one with `Issuer::new(…).introspection(…)`"
    )]
    TenantIntrospection(String),
    /// One of several trusted issuers names no audience, and the builder gives none.
    #[error(
        "no audience for the issuer {0}; add `.audience(\"your-api\")` to that `Issuer`, or to the builder for every issuer"
    )]
    NoAudienceFor(String),
    /// One of several trusted issuers has no keys and no introspection.
    #[error(
        "no verification keys for the issuer {0}; add `.keys(KeySource::discover(…))` (or a key set, a JWKS file, introspection) to that `Issuer`"
    )]
    NoKeysFor(String),
    /// The same `iss` is trusted twice.
    #[error(
        "the issuer {0} is trusted twice; give each provider one `Issuer`, and its other names with `.alias(…)`"
    )]
    DuplicateIssuer(String),
    /// An issuer template that cannot be used.
    #[error("the issuer template {template:?} cannot be used: {problem}")]
    IssuerTemplate {
        /// The template as configured.
        template: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An issuer template without tenants.
    #[error(
        "the issuer template {0:?} allows no tenant; list the tenants to trust (there is no wildcard)"
    )]
    NoTenants(String),
    /// A tenant id outside `A-Z a-z 0-9 - . _ ~` or longer than 128 characters.
    #[error(
        "the tenant id {0:?} cannot be trusted: use the provider's tenant id (letters, digits, `-`, `.`, `_`, `~`; at most 128)"
    )]
    Tenant(String),
    /// Two issuers would both take opaque tokens, which name no issuer.
    #[error(
        "both {first} and {second} would introspect opaque tokens, which do not say which provider issued them; give the second `Introspection::routing(TokenRouting::IntrospectJwts)` (it then checks only JWTs naming it)"
    )]
    OpaqueTokensTwice {
        /// The issuer that takes opaque tokens.
        first: String,
        /// The other one.
        second: String,
    },
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
    /// `KeySource::discover` names an issuer the validator does not trust: the provider's
    /// keys would vouch for tokens of another issuer.
    #[error(
        "`KeySource::discover({discovered:?})` is not for the configured issuer {configured:?}; discover the issuer the tokens carry in `iss` (the same URL as `.issuer(…)`), or use `KeySource::jwks_url` for keys published elsewhere"
    )]
    DiscoveryIssuer {
        /// The issuer given to `KeySource::discover`.
        discovered: String,
        /// The issuers given to `.issuer(…)`.
        configured: Vec<String>,
    },
    /// `TokenRouting::JwtLocally` on a validator without keys: every JWT would be refused.
    #[error(
        "`TokenRouting::JwtLocally` needs keys to check JWTs with, and this validator has none; add `.keys(KeySource::discover(…))`, or leave the routing out so that every token is introspected"
    )]
    JwtsWithoutKeys,
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
    /// The client certificate for the identity provider cannot be read.
    #[error(
        "the client certificate cannot be read: give its PEM certificate (with any intermediates) and its PEM private key (PKCS#8, PKCS#1 or SEC1)"
    )]
    ClientCertificate,
    /// `ClientAuthentication::TlsClientAuth` on a grant without its own `HttpClient`: the
    /// default client has no certificate to present.
    #[error(
        "`ClientAuthentication::TlsClientAuth` authenticates with a client certificate, and the grant has none; add `.http_client(HttpClient::with_client_certificate(&cert_pem, &key_pem)?)`"
    )]
    TlsClientAuthWithoutCertificate,
    /// An HMAC algorithm given to `Dpop::algorithms`: a DPoP proof is signed with the
    /// client's private key (RFC 9449 §4.2), never a shared secret.
    #[error(
        "{0:?} cannot be a DPoP proof algorithm: proofs need an asymmetric signature; give `Dpop::algorithms` ES256, ES384, EdDSA, PS256 or RS256"
    )]
    DpopAlgorithm(Algorithm),
    /// A DPoP origin that is not `http(s)://host[:port]`.
    #[error(
        "the DPoP origin {0:?} is not `https://host[:port]`; give the scheme and authority clients reach the server at, without a path, e.g. `https://orders.example.com`"
    )]
    DpopOrigin(String),
    /// A DPoP nonce secret shorter than 32 bytes.
    #[error(
        "the DPoP nonce secret is shorter than 32 bytes; give `DpopNonces::with_secret` 32 random bytes shared by the service's replicas"
    )]
    DpopNonceSecret,
    /// `ValidatorBuilder::max_delegation_depth` outside 1 to 16.
    #[error(
        "a delegation depth of {0} cannot be used: give `ValidatorBuilder::max_delegation_depth` 1 to 16 (the depth of nested `act` claims a token may carry)"
    )]
    DelegationDepth(u8),
    /// The shared store could not be used at start-up (it did not answer, or answered
    /// wrongly).
    #[error(
        "cannot use the shared store at start-up: {0}; check that it runs at the configured address (`--redis`) and answers within the timeout"
    )]
    Store(#[source] crate::store::StoreError),
    /// The shared store refused the credentials.
    #[error(
        "the shared store refused the credentials ({0}); check the password file (`--redis-password-file`) against the server's `requirepass` or ACL user"
    )]
    StoreAuth(String),
    /// A shared store URL that cannot be used.
    #[error(
        "the shared store URL cannot be used: {0}; give `redis://host:6379/` (or `rediss://host:6380/` for TLS), with the password in a file (`RedisConfig::password_file`), not in the URL"
    )]
    StoreUrl(String),
    /// A password file that cannot be read or is empty.
    #[error(
        "cannot read the password file {path}: {reason}; give a readable file holding only the password"
    )]
    PasswordFile {
        /// The file.
        path: String,
        /// Why (the I/O error or "it is empty"), never the content.
        reason: String,
    },
    /// A revocation list setting out of range.
    #[error("{0}")]
    RevocationTiming(&'static str),
    /// The audit log file cannot be opened for appending.
    #[error(
        "cannot open the audit log {path} for appending: {source}; give a path in a directory the server may write, or `-` for standard output"
    )]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An audit log setting out of range.
    #[error("{0}")]
    AuditSetting(&'static str),
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
            url: super::shown_url(url),
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
        "the PEM document is not a {expected} public key (RSA: 2048 bits or more, at most 8192 with the aws-lc backend and 4096 with rust-crypto); pass the PEM `PUBLIC KEY` of the key that signs the tokens"
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
    /// The operating system gave no random bytes, which a DPoP key and each proof's `jti`
    /// need.
    #[error(
        "the operating system gave no random bytes for a DPoP key or proof; check the system's entropy source"
    )]
    NoRandomness,
    /// A DPoP private key that cannot sign proofs (RFC 9449).
    #[error("the DPoP key for {alg:?} cannot be used: {problem}")]
    Dpop {
        /// The algorithm the key should sign proofs with.
        alg: Algorithm,
        /// What is wrong, and the fix.
        problem: &'static str,
    },
    /// Nothing in the document can verify signatures.
    #[error(
        "no usable signing key in the document ({skipped} skipped: encryption keys, unsupported types or malformed entries)"
    )]
    NoUsableKey {
        /// How many entries were skipped.
        skipped: usize,
    },
}
