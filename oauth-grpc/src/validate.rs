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
//! assert!(validator.validate("not-a-token").is_err());
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
    keys: KeySet,
    leeway: u64,
    max_lifetime: Option<u64>,
    token_types: TokenTypes,
    scope_claim: Option<String>,
    role_claim: Option<Vec<String>>,
    role_scopes: HashMap<String, Vec<String>>,
    max_token_len: usize,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner;
        f.debug_struct("Validator")
            .field("issuers", &c.issuers)
            .field("audiences", &c.audiences)
            .field("keys", &c.keys.len())
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
    keys: Vec<KeySet>,
    key_files: Vec<PathBuf>,
    leeway: Option<Duration>,
    max_lifetime: Option<Duration>,
    token_types: TokenTypes,
    scope_claim: Option<String>,
    role_claim: Option<String>,
    role_scopes: HashMap<String, Vec<String>>,
    max_token_len: Option<usize>,
}

/// Tokens longer than this are refused before any decoding.
const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

impl ValidatorBuilder {
    /// Trusts tokens whose `iss` equals `issuer` exactly. May be called several times.
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

    /// Trusts these keys. May be called several times; the sets are merged.
    ///
    /// ```
    /// # use oauth_grpc::{Validator, keys::{Algorithm, KeySet}};
    /// let builder = Validator::builder().keys(KeySet::from_hmac_secret(None, &[9; 32], Algorithm::HS256)?);
    /// # let _ = builder;
    /// # Ok::<(), oauth_grpc::keys::KeyError>(())
    /// ```
    #[must_use]
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys.push(keys);
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
        crate::backend::install();
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
        for set in self.keys {
            keys = keys.merge(set);
        }
        for path in &self.key_files {
            keys = keys.merge(KeySet::from_jwks_file(path)?);
        }
        if keys.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        if keys.has_hmac()
            && keys
                .iter()
                .any(|k| k.key_type() != crate::keys::KeyType::Hmac)
        {
            return Err(ConfigError::MixedKeys);
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
        Ok(Validator {
            inner: Arc::new(Config {
                issuers: self.issuers,
                audiences: self.audiences,
                keys,
                leeway: self.leeway.unwrap_or(Duration::from_secs(60)).as_secs(),
                max_lifetime: self.max_lifetime.map(|d| d.as_secs()),
                token_types: self.token_types,
                scope_claim: self.scope_claim,
                role_claim,
                role_scopes: self.role_scopes,
                max_token_len: self.max_token_len.unwrap_or(DEFAULT_MAX_TOKEN_LEN),
            }),
        })
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
    #[serde(default)]
    crit: Option<Value>,
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

    /// Checks `token` and returns the verified caller.
    ///
    /// # Errors
    ///
    /// The [`TokenError`] that refused the token.
    ///
    /// ```
    /// # use oauth_grpc::{TokenError, Validator, keys::{Algorithm, KeySet}};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert_eq!(validator.validate("a.b"), Err(TokenError::Malformed));
    /// assert_eq!(validator.validate("a.b.c.d.e"), Err(TokenError::Encrypted));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        self.validate_at(token, SystemTime::now())
    }

    /// [`validate`](Self::validate) as if the time were `now`; for tests.
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
        let config = &*self.inner;
        if token.len() > config.max_token_len {
            return Err(TokenError::Malformed);
        }
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

        let header: Header = serde_json::from_slice(&decode_segment(header_b64)?)
            .map_err(|_| TokenError::Malformed)?;
        let alg = algorithm(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        if header.crit.is_some() {
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

        let key = config.keys.select(header.kid.as_deref(), alg)?;
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

        let claims: Map<String, Value> = serde_json::from_slice(&decode_segment(payload_b64)?)
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

    fn check_claims(
        &self,
        claims: Map<String, Value>,
        now: SystemTime,
    ) -> Result<Principal, TokenError> {
        let config = &*self.inner;
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let leeway = config.leeway;

        let exp = numeric_date(&claims, "exp")?.ok_or(TokenError::MissingClaim)?;
        if now > exp.saturating_add(leeway) {
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

        let audiences: Vec<String> = match claims.get("aud") {
            None => return Err(TokenError::MissingClaim),
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or(TokenError::InvalidClaim)
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(TokenError::InvalidClaim),
        };
        if !audiences.iter().any(|aud| config.audiences.contains(aud)) {
            return Err(TokenError::WrongAudience);
        }

        let subject = optional_string(&claims, "sub")?;
        let client_id = match optional_string(&claims, "client_id")? {
            Some(id) => Some(id),
            None => optional_string(&claims, "azp")?,
        };
        let token_id = optional_string(&claims, "jti")?;
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
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, TokenError> {
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
