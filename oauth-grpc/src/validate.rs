//! [`Validator`]: checks a JWT access token (RFC 9068, per RFC 8725) and turns it into a
//! [`Principal`].
//!
//! ```
//! use std::time::Duration;
//! use oauth_grpc::Validator;
//! use oauth_grpc::keys::{Algorithm, KeySet};
//!
//! let validator = Validator::builder()
//!     .issuer("https://idp.example.com/")
//!     .audience("orders-api")
//!     .keys(KeySet::from_hmac_secret(None, &[42; 32], Algorithm::HS256)?)
//!     .leeway(Duration::from_secs(30))
//!     .build()?;
//!
//! // Anything that is not a valid token is refused with a reason, never a panic.
//! let now = std::time::SystemTime::now();
//! assert!(validator.validate_at("not-a-token", now).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The checks, in order: the compact JWS shape (three base64url segments; JWE refused); the
//! header (`alg` on the allow-list and never `none`, `typ` per the profile, no `crit` and no
//! nested `cty: JWT`); the key (by `kid`, or the single key that fits `alg`; `jku`, `x5u`,
//! `jwk` and `x5c` are never used); the algorithm bound to the key's type and declared `alg`;
//! the signature (by `jsonwebtoken`); then the claims: `exp` required, `nbf`, `iat`, maximum
//! lifetime, `iss` exact match, `aud` containing a configured audience, and the types of
//! `sub`, `client_id`, `scope`/`scp` and `act`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::cache::{Hit, TokenCache, TokenKey, token_key};
use crate::error::TokenError;
use crate::keys::{Algorithm, KeyError, KeySet};
use crate::principal::{Actor, Principal, ScopeSet};

/// Which `typ` header values are accepted.
///
/// ```
/// use oauth_grpc::validate::TokenTypes;
/// assert_eq!(TokenTypes::default(), TokenTypes::Strict);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenTypes {
    /// RFC 9068: `typ` must be `at+jwt` or `application/at+jwt`. This keeps ID tokens and
    /// other JWTs signed by the same provider from being used as access tokens.
    #[default]
    Strict,
    /// Also `JWT`, `application/jwt` or no `typ` at all, as Auth0, Okta, Keycloak, Entra ID
    /// and Cognito emit for access tokens. Audience and issuer checks still apply; make sure
    /// the provider's ID tokens cannot carry this service's audience.
    AllowPlainJwt,
}

/// Where a [`Validator`] gets its keys: fixed keys, or the identity provider.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::validate::KeySource;
///
/// // OIDC discovery (RFC 8414 as fallback); the metadata's `issuer` must equal this exactly.
/// let source = KeySource::discover("https://idp.example.com/")
///     .refresh_between(Duration::from_secs(300), Duration::from_secs(3600))
///     .unknown_kid_cooldown(Duration::from_secs(30))
///     .max_staleness(Duration::from_secs(6 * 3600));
/// # let _ = source;
/// ```
#[derive(Debug, Clone)]
pub struct KeySource {
    kind: SourceKind,
}

#[derive(Debug, Clone)]
enum SourceKind {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(Box<crate::remote::Options>),
}

impl From<KeySet> for KeySource {
    fn from(keys: KeySet) -> Self {
        Self {
            kind: SourceKind::Static(keys),
        }
    }
}

#[cfg(feature = "jwks")]
impl KeySource {
    /// Keys found by discovery: `{issuer}/.well-known/openid-configuration`, falling back to
    /// RFC 8414 `/.well-known/oauth-authorization-server`. The metadata's `issuer` must equal
    /// `issuer` exactly; its `jwks_uri` is then fetched and refreshed.
    ///
    /// ```
    /// let source = oauth_grpc::validate::KeySource::discover("https://idp.example.com/");
    /// # let _ = source;
    /// ```
    pub fn discover(issuer: impl Into<String>) -> Self {
        Self::remote(crate::remote::Source::Discover(issuer.into()))
    }

    /// Keys from a JWKS URL.
    ///
    /// ```
    /// let source = oauth_grpc::validate::KeySource::jwks_url("https://idp.example.com/jwks.json");
    /// # let _ = source;
    /// ```
    pub fn jwks_url(url: impl Into<String>) -> Self {
        Self::remote(crate::remote::Source::Url(url.into()))
    }

    fn remote(source: crate::remote::Source) -> Self {
        Self {
            kind: SourceKind::Remote(Box::new(crate::remote::Options::new(source))),
        }
    }

    fn options(mut self, change: impl FnOnce(&mut crate::remote::Options)) -> Self {
        if let SourceKind::Remote(options) = &mut self.kind {
            change(options);
        }
        self
    }

    /// Bounds on the refresh interval, which is otherwise the JWKS response's
    /// `Cache-Control: max-age` (one hour without it). Default: 1 minute to 24 hours.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let s = oauth_grpc::validate::KeySource::jwks_url("https://idp/jwks")
    ///     .refresh_between(Duration::from_secs(60), Duration::from_secs(600));
    /// # let _ = s;
    /// ```
    #[must_use]
    pub fn refresh_between(self, min: Duration, max: Duration) -> Self {
        self.options(|o| {
            o.min_refresh = min.min(max);
            o.max_refresh = max.max(min);
        })
    }

    /// After a token names an unknown `kid`, the keys are refetched at most once per this
    /// interval across all requests. Default 30 seconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let s = oauth_grpc::validate::KeySource::jwks_url("https://idp/jwks")
    ///     .unknown_kid_cooldown(Duration::from_secs(10));
    /// # let _ = s;
    /// ```
    #[must_use]
    pub fn unknown_kid_cooldown(self, cooldown: Duration) -> Self {
        self.options(|o| o.kid_cooldown = cooldown)
    }

    /// How long the last good keys keep validating while the provider cannot be reached.
    /// Past it, calls that need keys get `UNAVAILABLE`. Default 24 hours.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let s = oauth_grpc::validate::KeySource::jwks_url("https://idp/jwks")
    ///     .max_staleness(Duration::from_secs(3600));
    /// # let _ = s;
    /// ```
    #[must_use]
    pub fn max_staleness(self, staleness: Duration) -> Self {
        self.options(|o| o.max_staleness = staleness)
    }

    /// How soon a failed fetch is retried (in the background, and by requests that find no
    /// usable keys). Default 5 seconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let s = oauth_grpc::validate::KeySource::jwks_url("https://idp/jwks")
    ///     .retry_after(Duration::from_secs(1));
    /// # let _ = s;
    /// ```
    #[must_use]
    pub fn retry_after(self, retry: Duration) -> Self {
        self.options(|o| o.retry = retry)
    }

    /// The start-up load by [`ValidatorBuilder::start`]: how long to wait, and whether
    /// start-up fails (the default) or goes on without keys when none could be had.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let s = oauth_grpc::validate::KeySource::jwks_url("https://idp/jwks")
    ///     .startup(Duration::from_secs(3), false);
    /// # let _ = s;
    /// ```
    #[must_use]
    pub fn startup(self, timeout: Duration, fail_on_error: bool) -> Self {
        self.options(|o| {
            o.startup_timeout = timeout;
            o.fail_on_startup = fail_on_error;
        })
    }

    /// The HTTP client for discovery and JWKS requests.
    ///
    /// ```
    /// let http = oauth_grpc::http::HttpClient::new()?;
    /// let s = oauth_grpc::validate::KeySource::jwks_url("https://idp/jwks").http_client(http);
    /// # let _ = s;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    #[must_use]
    pub fn http_client(self, http: crate::http::HttpClient) -> Self {
        self.options(|o| o.http = Some(http))
    }
}

/// A mistake in the validator's configuration. The message names the fix.
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
    #[error("{0}")]
    KeySource(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client cannot be built: {0}")]
    Http(String),
    /// The crypto backend does not verify signatures (a provider installed elsewhere, or
    /// both backend features on with one chosen before this crate could choose).
    #[error("the crypto backend of jsonwebtoken does not work: {0}")]
    CryptoBackend(&'static str),
    /// The first load of remote keys failed (with `fail_on_startup`, the default).
    #[error("cannot load the identity provider's keys at start-up: {0}")]
    Startup(String),
}

/// Checks bearer tokens. Cheap to clone: the configuration and keys are shared.
///
/// Made with [`Validator::builder`].
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Config>,
}

struct Config {
    issuers: Vec<String>,
    audiences: Vec<String>,
    keys: KeyProvider,
    cache: Option<TokenCache>,
    #[cfg(feature = "introspection")]
    introspector: Option<crate::introspect::Introspector>,
    leeway: u64,
    max_lifetime: Option<u64>,
    token_types: TokenTypes,
    scope_claim: Option<String>,
    audience_claim: Option<String>,
    role_claim: Option<Vec<String>>,
    role_scopes: HashMap<String, Vec<String>>,
    max_token_len: usize,
    algorithms: Option<Vec<Algorithm>>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner;
        f.debug_struct("Validator")
            .field("issuers", &c.issuers)
            .field("audiences", &c.audiences)
            .field("keys", &c.keys.describe())
            .field("leeway", &c.leeway)
            .field("max_lifetime", &c.max_lifetime)
            .field("token_types", &c.token_types)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Validator`]. Made by [`Validator::builder`].
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::Validator;
/// use oauth_grpc::keys::{Algorithm, KeySet};
/// use oauth_grpc::validate::TokenTypes;
///
/// let validator = Validator::builder()
///     .issuer("https://keycloak.example.com/realms/shop")
///     .audience("orders-api")
///     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?)
///     .token_types(TokenTypes::AllowPlainJwt)
///     .max_lifetime(Duration::from_secs(3600))
///     .role_claim("realm_access.roles")
///     .map_role("orders-admin", ["orders:read", "orders:write", "orders:admin"])
///     .build()?;
/// # let _ = validator;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct ValidatorBuilder {
    issuers: Vec<String>,
    audiences: Vec<String>,
    keys: Vec<KeySource>,
    key_files: Vec<PathBuf>,
    cache_capacity: Option<u64>,
    cache_ttl: Option<Duration>,
    #[cfg(feature = "introspection")]
    introspection: Option<crate::introspect::Introspection>,
    leeway: Option<Duration>,
    max_lifetime: Option<Duration>,
    token_types: TokenTypes,
    scope_claim: Option<String>,
    audience_claim: Option<String>,
    role_claim: Option<String>,
    role_scopes: HashMap<String, Vec<String>>,
    max_token_len: Option<usize>,
    algorithms: Option<Vec<Algorithm>>,
}

/// Tokens longer than this are refused before any decoding.
const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

impl ValidatorBuilder {
    /// Trusts tokens whose `iss` equals `issuer` exactly. May be called several times.
    ///
    /// All issuers of one validator trust the same keys: several issuers are for one provider
    /// known under several names (Entra ID's v1 and v2 issuers, say). To trust independent
    /// providers, run one validator for each — a key of one must never vouch for another
    /// (RFC 8725 §3.8).
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder().issuer("https://a.example/").issuer("https://b.example/");
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience` exactly. May be called several times.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder().audience("orders-api");
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Trusts these keys: a [`KeySet`], or a remote [`KeySource`]. Static key sets may be
    /// given several times and are merged; a remote source stands alone.
    ///
    /// ```
    /// # use oauth_grpc::{Validator, keys::{Algorithm, KeySet}, validate::KeySource};
    /// let fixed = Validator::builder().keys(KeySet::from_hmac_secret(None, &[9; 32], Algorithm::HS256)?);
    /// let remote = Validator::builder().keys(KeySource::discover("https://idp.example.com/"));
    /// # let _ = (fixed, remote);
    /// # Ok::<(), oauth_grpc::keys::KeyError>(())
    /// ```
    #[must_use]
    pub fn keys(mut self, keys: impl Into<KeySource>) -> Self {
        self.keys.push(keys.into());
        self
    }

    /// Checks opaque tokens (and, if so configured, all tokens) by RFC 7662 introspection.
    ///
    /// ```
    /// use oauth_grpc::introspect::{ClientSecret, Introspection};
    /// let builder = oauth_grpc::Validator::builder()
    ///     .introspection(Introspection::new("https://idp/introspect", "api", ClientSecret::new("s")));
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "introspection")]
    #[must_use]
    pub fn introspection(mut self, introspection: crate::introspect::Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// How many verified tokens the cache holds (default 10,000); 0 turns the cache off.
    ///
    /// ```
    /// let builder = oauth_grpc::Validator::builder().cache_capacity(50_000);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.cache_capacity = Some(entries);
        self
    }

    /// The longest a verified token is reused without checking it again (default 5
    /// minutes); it is never reused past its `exp`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = oauth_grpc::Validator::builder().cache_ttl(Duration::from_secs(60));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// Trusts the keys of a JWKS file, read when [`build`](Self::build) runs.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let result = Validator::builder()
    ///     .issuer("https://idp.example/")
    ///     .audience("api")
    ///     .jwks_file("/no/such/file.json")
    ///     .build();
    /// assert!(result.unwrap_err().to_string().contains("/no/such/file.json"));
    /// ```
    #[must_use]
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_files.push(path.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default 60 seconds.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// # use std::time::Duration;
    /// let builder = Validator::builder().leeway(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Refuses tokens whose `exp - iat` exceeds `lifetime` (and tokens without `iat`).
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// # use std::time::Duration;
    /// let builder = Validator::builder().max_lifetime(Duration::from_secs(3600));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = Some(lifetime);
        self
    }

    /// Which `typ` values are accepted; [`TokenTypes::Strict`] by default.
    ///
    /// ```
    /// # use oauth_grpc::{Validator, validate::TokenTypes};
    /// let builder = Validator::builder().token_types(TokenTypes::AllowPlainJwt);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn token_types(mut self, types: TokenTypes) -> Self {
        self.token_types = types;
        self
    }

    /// Reads scopes from this claim (a space-delimited string or an array of strings, e.g.
    /// Auth0's `permissions`) instead of `scope` / `scp`.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder().scope_claim("permissions");
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn scope_claim(mut self, claim: impl Into<String>) -> Self {
        self.scope_claim = Some(claim.into());
        self
    }

    /// Checks the configured audiences against this claim instead of `aud` — for providers
    /// whose access tokens carry no `aud`, such as Amazon Cognito (`client_id`).
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder().audience_claim("client_id");
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn audience_claim(mut self, claim: impl Into<String>) -> Self {
        self.audience_claim = Some(claim.into());
        self
    }

    /// Reads roles from this claim path (dot-separated, e.g. Keycloak's
    /// `realm_access.roles`); roles grant the scopes given with [`map_role`](Self::map_role).
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder().role_claim("realm_access.roles");
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn role_claim(mut self, path: impl Into<String>) -> Self {
        self.role_claim = Some(path.into());
        self
    }

    /// A token holding `role` (in the [`role_claim`](Self::role_claim)) is granted `scopes`.
    /// Roles without a mapping grant nothing.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder()
    ///     .role_claim("roles")
    ///     .map_role("orders-reader", ["orders:read"]);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn map_role<I, S>(mut self, role: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.role_scopes
            .entry(role.into())
            .or_default()
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Accepts only these signing algorithms, on top of the binding of algorithms to key types
    /// (an RSA key without a declared `alg` otherwise verifies RS* and PS*).
    ///
    /// ```
    /// use oauth_grpc::keys::Algorithm;
    /// let builder = oauth_grpc::Validator::builder().algorithms([Algorithm::RS256, Algorithm::ES256]);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Refuses tokens longer than `bytes` before decoding anything. Default 8 KiB.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let builder = Validator::builder().max_token_len(4096);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = Some(bytes);
        self
    }

    /// Checks the configuration and parses every key.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the missing or wrong setting.
    ///
    /// ```
    /// # use oauth_grpc::Validator;
    /// let err = Validator::builder().issuer("https://idp/").audience("api").build().unwrap_err();
    /// assert!(err.to_string().contains("no verification keys"));
    /// ```
    pub fn build(self) -> Result<Validator, ConfigError> {
        crate::backend::install()?;
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        if self.issuers.iter().any(String::is_empty) {
            return Err(ConfigError::Empty("issuer"));
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::NoAudience);
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::Empty("audience"));
        }
        let mut keys = KeySet::new();
        #[cfg(feature = "jwks")]
        let mut remote: Option<crate::remote::Options> = None;
        for source in self.keys {
            match source.kind {
                SourceKind::Static(set) => keys = keys.merge(set),
                #[cfg(feature = "jwks")]
                SourceKind::Remote(options) => {
                    if remote.is_some() {
                        return Err(ConfigError::MixedSources);
                    }
                    remote = Some(*options);
                }
            }
        }
        for path in &self.key_files {
            keys = keys.merge(KeySet::from_jwks_file(path)?);
        }
        if keys.has_hmac()
            && keys
                .iter()
                .any(|k| k.key_type() != crate::keys::KeyType::Hmac)
        {
            return Err(ConfigError::MixedKeys);
        }
        #[cfg(feature = "jwks")]
        let provider = match remote {
            Some(_) if !keys.is_empty() => return Err(ConfigError::MixedSources),
            Some(options) => KeyProvider::Remote(crate::remote::RemoteKeys::new(options)?),
            None => KeyProvider::Static(Arc::new(keys)),
        };
        #[cfg(not(feature = "jwks"))]
        let provider = KeyProvider::Static(Arc::new(keys));
        #[cfg(feature = "introspection")]
        let has_introspection = self.introspection.is_some();
        #[cfg(not(feature = "introspection"))]
        let has_introspection = false;
        if provider.is_empty() && !has_introspection {
            return Err(ConfigError::NoKeys);
        }
        let role_claim = match self.role_claim {
            None => None,
            Some(path) => {
                let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(ConfigError::RolePath(path));
                }
                Some(segments)
            }
        };
        if let Some(claim) = &self.scope_claim
            && claim.is_empty()
        {
            return Err(ConfigError::Empty("scope claim name"));
        }
        let leeway = self.leeway.unwrap_or(Duration::from_secs(60)).as_secs();
        #[cfg(feature = "introspection")]
        let introspector = match self.introspection {
            Some(config) => Some(crate::introspect::Introspector::new(
                config,
                self.issuers.clone(),
                self.audiences.clone(),
                leeway,
            )?),
            None => None,
        };
        let cache = match self.cache_capacity.unwrap_or(10_000) {
            0 => None,
            capacity => Some(TokenCache::new(
                capacity,
                self.cache_ttl.unwrap_or(Duration::from_secs(300)),
            )),
        };
        let validator = Validator {
            inner: Arc::new(Config {
                issuers: self.issuers,
                audiences: self.audiences,
                keys: provider,
                cache,
                #[cfg(feature = "introspection")]
                introspector,
                leeway,
                max_lifetime: self.max_lifetime.map(|d| d.as_secs()),
                token_types: self.token_types,
                scope_claim: self.scope_claim,
                audience_claim: self.audience_claim,
                role_claim,
                role_scopes: self.role_scopes,
                max_token_len: self.max_token_len.unwrap_or(DEFAULT_MAX_TOKEN_LEN),
                algorithms: self.algorithms,
            }),
        };
        #[cfg(feature = "jwks")]
        if let KeyProvider::Remote(remote) = &validator.inner.keys {
            remote.start_background();
        }
        Ok(validator)
    }

    /// [`build`](Self::build), then the first load of remote keys: waits up to the source's
    /// start-up timeout, and fails (unless the source says otherwise) when no keys could be
    /// had — a discovery document naming another issuer, an unreachable provider, a JWKS
    /// without usable keys. With static keys it is the same as `build`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] as `build`, and [`ConfigError::Startup`] with the reason.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), oauth_grpc::ConfigError> {
    /// use oauth_grpc::{Validator, validate::KeySource};
    ///
    /// let validator = Validator::builder()
    ///     .issuer("https://idp.example.com/")
    ///     .audience("orders-api")
    ///     .keys(KeySource::discover("https://idp.example.com/"))
    ///     .start()
    ///     .await?;
    /// # let _ = validator;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(self) -> Result<Validator, ConfigError> {
        let validator = self.build()?;
        #[cfg(feature = "jwks")]
        if let KeyProvider::Remote(remote) = &validator.inner.keys {
            remote.load_at_startup().await?;
        }
        Ok(validator)
    }
}

/// The JOSE header fields this crate reads. Unknown fields are ignored, except that `crit`
/// rejects; `jku`, `x5u`, `jwk` and `x5c` are deliberately not read.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    /// Present at all, even as `null`: RFC 7515 allows only an array of understood names.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(deserializer).map(|_| true)
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        // `none` and everything else.
        _ => return None,
    })
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

impl Validator {
    /// Starts a configuration.
    ///
    /// ```
    /// let builder = oauth_grpc::Validator::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> ValidatorBuilder {
        ValidatorBuilder::default()
    }

    /// Checks `token` and returns the verified caller: from the cache when the token was
    /// verified before, else by signature and claims (fetching keys once when a `kid` is
    /// unknown), or by introspection for opaque tokens.
    ///
    /// # Errors
    ///
    /// The [`TokenError`] that refused the token; [`TokenError::Unavailable`] when the
    /// identity provider was needed and could not be reached.
    ///
    /// ```
    /// # use oauth_grpc::{TokenError, Validator, keys::{Algorithm, KeySet}};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert_eq!(validator.validate("a.b").await, Err(TokenError::Malformed));
    /// assert_eq!(validator.validate("a.b.c.d.e").await, Err(TokenError::Encrypted));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        match self.attempt(token) {
            Attempt::Done(result) => result,
            Attempt::Deferred(key) => self.validate_deferred(token, key).await,
        }
    }

    /// Checks `token` as if the time were `now`, against the keys held right now: no cache,
    /// no network (an unknown `kid` is refused; opaque tokens are refused). For tests,
    /// benchmarks and offline tools.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    ///
    /// ```
    /// # use oauth_grpc::{TokenError, Validator, keys::{Algorithm, KeySet}};
    /// # use std::time::SystemTime;
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert!(validator.validate_at("x.y.z", SystemTime::now()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn validate_at(&self, token: &str, now: SystemTime) -> Result<Principal, TokenError> {
        if token.len() > self.inner.max_token_len {
            return Err(TokenError::Malformed);
        }
        match self.inner.keys.current() {
            Some((keys, _)) => self.verify(token, &keys, unix(now)),
            None => Err(TokenError::Unavailable),
        }
    }

    /// How many verified tokens the cache holds now.
    ///
    /// ```
    /// # use oauth_grpc::{Validator, keys::{Algorithm, KeySet}};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert_eq!(validator.cached_tokens(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cached_tokens(&self) -> u64 {
        self.inner.cache.as_ref().map_or(0, TokenCache::entry_count)
    }

    /// What can be decided in a few hundred nanoseconds, inline in the layer's `call`: the
    /// length limit and the verified-token cache. Everything else — signature verification,
    /// fetching keys, introspection — is [`Attempt::Deferred`] to the call's own future, so
    /// that it runs on the request's task and not on the connection's, which hyper uses to
    /// accept the connection's other streams.
    pub(crate) fn attempt(&self, token: &str) -> Attempt {
        if !self.within_length(token) {
            return Attempt::Done(Err(TokenError::Malformed));
        }
        self.probe(token)
    }

    /// Whether `token` is within the length limit.
    pub(crate) fn within_length(&self, token: &str) -> bool {
        token.len() <= self.inner.max_token_len
    }

    /// The verified-token cache alone: `Done` for a hit, `Deferred` (with the key) for a miss.
    /// Every token in the cache passed signature verification, so it is a compact JWS within
    /// the length limit and in token68 syntax: a hit needs neither check again.
    pub(crate) fn probe(&self, token: &str) -> Attempt {
        let config = &*self.inner;
        let Some(cache) = &config.cache else {
            return Attempt::Deferred(None);
        };
        let key = token_key(token);
        match cache.get(
            &key,
            unix(SystemTime::now()),
            config.leeway,
            config.keys.generation(),
        ) {
            Hit::Valid(principal) => Attempt::Done(Ok(principal)),
            Hit::Expired => Attempt::Done(Err(TokenError::Expired)),
            Hit::Miss => Attempt::Deferred(Some(key)),
        }
    }

    /// The rest of a check that [`attempt`](Self::attempt) deferred: introspection, keys
    /// from the provider when needed, the signature and the claims; a success is cached
    /// under `key`.
    pub(crate) async fn validate_deferred(
        &self,
        token: &str,
        key: Option<TokenKey>,
    ) -> Result<Principal, TokenError> {
        let config = &*self.inner;
        #[cfg(feature = "introspection")]
        if let Some(introspector) = config.introspector.as_ref().filter(|i| i.routes(token)) {
            // The introspector caches its answers itself, for its own TTLs; they do not go
            // into the verified-token cache, whose TTL is the validator's.
            let key = key.unwrap_or_else(|| token_key(token));
            return introspector.check(key, token).await;
        }
        let (keys, generation) = match &config.keys {
            KeyProvider::Static(keys) => (keys.clone(), 0),
            #[cfg(feature = "jwks")]
            KeyProvider::Remote(remote) => remote.ensure().await?,
        };
        let now = unix(SystemTime::now());
        let result = match self.verify(token, &keys, now) {
            #[cfg(feature = "jwks")]
            Err(TokenError::UnknownKey) => match &config.keys {
                KeyProvider::Remote(remote) if remote.after_unknown_kid(generation).await? => {
                    let (keys, generation) = remote.ensure().await?;
                    let result = self.verify(token, &keys, now);
                    if let Ok(principal) = &result {
                        self.remember(key, principal, now, generation);
                    }
                    return result;
                }
                _ => Err(TokenError::UnknownKey),
            },
            other => other,
        };
        if let Ok(principal) = &result {
            self.remember(key, principal, now, generation);
        }
        result
    }

    fn remember(&self, key: Option<TokenKey>, principal: &Principal, now: u64, generation: u64) {
        let (Some(cache), Some(key)) = (&self.inner.cache, key) else {
            return;
        };
        let exp = principal
            .expires_at()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        cache.insert(
            key,
            principal.clone(),
            exp,
            now,
            self.inner.leeway,
            generation,
        );
    }

    /// Signature and claims against `keys`.
    fn verify(&self, token: &str, keys: &KeySet, now: u64) -> Result<Principal, TokenError> {
        let mut segments = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return Err(TokenError::Malformed);
        };
        match segments.count() {
            0 => {}
            2 => return Err(TokenError::Encrypted),
            _ => return Err(TokenError::Malformed),
        }
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
            return Err(TokenError::Malformed);
        }

        let header_json = decode_segment(header_b64)?;
        // RFC 7515 §4: a JSON object. serde would also read a struct from an array.
        if header_json.trim_ascii_start().first() != Some(&b'{') {
            return Err(TokenError::Malformed);
        }
        let header: Header =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        let alg = algorithm(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        if let Some(allowed) = &self.inner.algorithms
            && !allowed.contains(&alg)
        {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if header.crit {
            // We implement no JWS extension, so any `crit` entry is one we do not understand
            // (RFC 7515 §4.1.11); an empty or malformed `crit` is invalid as well.
            return Err(TokenError::UnsupportedCritical);
        }
        if header.cty.as_deref().is_some_and(|cty| {
            cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/jwt")
        }) {
            return Err(TokenError::Nested);
        }
        self.check_type(header.typ.as_deref())?;

        let key = keys.select(header.kid.as_deref(), alg)?;
        let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
        match jsonwebtoken::crypto::verify(
            signature_b64,
            signed.as_bytes(),
            key.decoding_key(),
            alg,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::BadSignature),
            Err(error) => {
                return Err(match error.kind() {
                    jsonwebtoken::errors::ErrorKind::Base64(_) => TokenError::Malformed,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        TokenError::AlgorithmMismatch
                    }
                    _ => TokenError::BadSignature,
                });
            }
        }

        let claims = crate::json::object(&decode_segment(payload_b64)?)
            .map_err(|_| TokenError::Malformed)?;
        self.check_claims(claims, now)
    }

    fn check_type(&self, typ: Option<&str>) -> Result<(), TokenError> {
        let access_token = |t: &str| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        };
        let plain =
            |t: &str| t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt");
        let ok = match (self.inner.token_types, typ) {
            (_, Some(t)) if access_token(t) => true,
            (TokenTypes::AllowPlainJwt, None) => true,
            (TokenTypes::AllowPlainJwt, Some(t)) => plain(t),
            (TokenTypes::Strict, _) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::WrongType)
        }
    }

    fn check_claims(&self, claims: Map<String, Value>, now: u64) -> Result<Principal, TokenError> {
        let config = &*self.inner;
        let leeway = config.leeway;

        let exp = numeric_date(&claims, "exp")?.ok_or(TokenError::MissingClaim)?;
        // RFC 7519 §4.1.4: the token is valid only *before* `exp`.
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        let iat = numeric_date(&claims, "iat")?;
        if let Some(iat) = iat
            && iat > now.saturating_add(leeway)
        {
            return Err(TokenError::IssuedInFuture);
        }
        if let Some(max) = config.max_lifetime {
            let iat = iat.ok_or(TokenError::MissingClaim)?;
            if exp.saturating_sub(iat) > max {
                return Err(TokenError::LifetimeTooLong);
            }
        }

        let issuer = match claims.get("iss") {
            None => return Err(TokenError::MissingClaim),
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(TokenError::InvalidClaim),
        };
        if !config.issuers.iter().any(|trusted| trusted == issuer) {
            return Err(TokenError::WrongIssuer);
        }

        let audiences: Vec<String> =
            match claims.get(config.audience_claim.as_deref().unwrap_or("aud")) {
                None => return Err(TokenError::MissingClaim),
                Some(value) => string_or_strings(value)?,
            };
        if !audiences.iter().any(|aud| config.audiences.contains(aud)) {
            return Err(TokenError::WrongAudience);
        }

        let subject = optional_string(&claims, "sub")?;
        let rfc9068_client_id = optional_string(&claims, "client_id")?;
        let token_id = optional_string(&claims, "jti")?;
        // RFC 9068 §2.2 makes these required in a JWT access token.
        if config.token_types == TokenTypes::Strict
            && (subject.is_none()
                || rfc9068_client_id.is_none()
                || iat.is_none()
                || token_id.is_none())
        {
            return Err(TokenError::MissingClaim);
        }
        let client_id = match rfc9068_client_id {
            Some(id) => Some(id),
            None => optional_string(&claims, "azp")?,
        };
        let actor = match claims.get("act") {
            None => None,
            Some(act) => Some(actor(act, 0)?),
        };
        let scopes = self.scopes(&claims)?;

        let mut builder = Principal::builder()
            .issuer(issuer.clone())
            .audiences(audiences)
            .scope_set(scopes)
            .expires_at(UNIX_EPOCH + Duration::from_secs(exp));
        if let Some(subject) = subject {
            builder = builder.subject(subject);
        }
        if let Some(client_id) = client_id {
            builder = builder.client_id(client_id);
        }
        if let Some(token_id) = token_id {
            builder = builder.token_id(token_id);
        }
        if let Some(actor) = actor {
            builder = builder.actor(actor);
        }
        Ok(builder.claims(claims).build())
    }

    /// Scopes from the configured claim, else `scope`, else `scp`; plus mapped roles.
    fn scopes(&self, claims: &Map<String, Value>) -> Result<ScopeSet, TokenError> {
        let config = &*self.inner;
        let mut granted: Vec<String> = Vec::new();
        let source = match &config.scope_claim {
            Some(name) => claims.get(name.as_str()),
            None => claims.get("scope").or_else(|| claims.get("scp")),
        };
        match source {
            None => {}
            Some(Value::String(list)) => granted.extend(list.split(' ').map(str::to_owned)),
            Some(Value::Array(items)) => {
                for item in items {
                    let scope = item.as_str().ok_or(TokenError::InvalidClaim)?;
                    granted.push(scope.to_owned());
                }
            }
            Some(_) => return Err(TokenError::InvalidClaim),
        }
        if let Some(path) = &config.role_claim {
            let mut value = Some(claims);
            let mut roles = None;
            for (i, segment) in path.iter().enumerate() {
                let next = value.and_then(|map| map.get(segment.as_str()));
                if i + 1 == path.len() {
                    roles = next;
                } else {
                    value = next.and_then(Value::as_object);
                }
            }
            let roles: Vec<&str> = match roles {
                None => Vec::new(),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                Some(Value::String(role)) => vec![role.as_str()],
                Some(_) => return Err(TokenError::InvalidClaim),
            };
            for role in roles {
                if let Some(scopes) = config.role_scopes.get(role) {
                    granted.extend(scopes.iter().cloned());
                }
            }
        }
        Ok(granted.into_iter().collect())
    }
}

/// A NumericDate claim (RFC 7519 §2): a non-negative JSON number of seconds, possibly with a
/// fraction (truncated). Other types, negatives and values past year 9999 are invalid.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, TokenError> {
    /// 9999-12-31T23:59:59Z: anything later is a mistake or an attack on arithmetic.
    const MAX: u64 = 253_402_300_799;
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let seconds = if let Some(whole) = n.as_u64() {
                whole
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f <= MAX as f64 => f as u64,
                    _ => return Err(TokenError::InvalidClaim),
                }
            };
            if seconds > MAX {
                return Err(TokenError::InvalidClaim);
            }
            Ok(Some(seconds))
        }
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// A claim that is a string or an array of strings (`aud`, RFC 7519 §4.1.3).
pub(crate) fn string_or_strings(value: &Value) -> Result<Vec<String>, TokenError> {
    match value {
        Value::String(one) => Ok(vec![one.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(TokenError::InvalidClaim)
            })
            .collect(),
        _ => Err(TokenError::InvalidClaim),
    }
}

fn optional_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// The RFC 8693 `act` chain; deeper than 16 levels is refused.
fn actor(value: &Value, depth: usize) -> Result<Actor, TokenError> {
    const MAX_DEPTH: usize = 16;
    let Value::Object(act) = value else {
        return Err(TokenError::InvalidClaim);
    };
    if depth >= MAX_DEPTH {
        return Err(TokenError::InvalidClaim);
    }
    let mut actor = Actor::new(
        optional_string(act, "sub")?,
        optional_string(act, "client_id")?,
    );
    if let Some(prior) = act.get("act") {
        actor = actor.acting_for(self::actor(prior, depth + 1)?);
    }
    Ok(actor)
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What [`Validator::attempt`] decided inline, or that the rest is deferred (with the cache
/// key, when there is a cache).
pub(crate) enum Attempt {
    Done(Result<Principal, TokenError>),
    Deferred(Option<TokenKey>),
}

/// Where the validator's keys live.
enum KeyProvider {
    Static(Arc<KeySet>),
    #[cfg(feature = "jwks")]
    Remote(Arc<crate::remote::RemoteKeys>),
}

impl KeyProvider {
    fn current(&self) -> Option<(Arc<KeySet>, u64)> {
        match self {
            Self::Static(keys) => Some((keys.clone(), 0)),
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.current(),
        }
    }

    fn generation(&self) -> u64 {
        match self {
            Self::Static(_) => 0,
            #[cfg(feature = "jwks")]
            Self::Remote(remote) => remote.generation(),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Self::Static(keys) if keys.is_empty())
    }

    fn describe(&self) -> String {
        match self {
            Self::Static(keys) => format!("{} static keys", keys.len()),
            #[cfg(feature = "jwks")]
            Self::Remote(_) => "remote key source".to_owned(),
        }
    }
}
