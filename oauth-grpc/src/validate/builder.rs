//! [`ValidatorBuilder`]: the settings of a [`Validator`], checked once by
//! [`build`](ValidatorBuilder::build) or [`start`](ValidatorBuilder::start).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::keys::{Algorithm, KeySource};

use super::cache::TokenCache;
#[cfg(feature = "introspection")]
use super::introspect::Introspection;
use super::issuer::{Issuer, Registry, Settings};
use super::{Config, Validator};

/// Which `typ` header values are accepted.
///
/// ```
/// use oauth_grpc::TokenTypes;
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

/// Builds a [`Validator`]. Made by [`Validator::builder`]; every setting is checked once, by
/// [`build`](Self::build) or [`start`](Self::start).
///
/// A Keycloak-style set-up: plain `JWT` tokens, scopes granted by realm roles, a lifetime
/// bound and a tighter clock leeway.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use oauth_grpc::{Algorithm, KeySet, TokenError, TokenTypes, Validator};
///
/// const SECRET: &[u8] = &[1; 32];
/// let validator = Validator::builder()
///     .issuer("https://keycloak.example.com/realms/shop")
///     .audience("orders-api")
///     .keys(KeySet::from_hmac_secret(None, SECRET, Algorithm::HS256)?)
///     .token_types(TokenTypes::AllowPlainJwt)             // `typ: JWT` is accepted
///     .role_claim("realm_access.roles")
///     .map_role("orders-admin", ["orders:read", "orders:admin"])
///     .max_lifetime(Duration::from_secs(3600))
///     .leeway(Duration::from_secs(10))
///     .build()?;
///
/// let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
/// let sign = |iat: u64, exp: u64| {
///     let claims = serde_json::json!({
///         "iss": "https://keycloak.example.com/realms/shop", "aud": "orders-api",
///         "sub": "alice", "iat": iat, "exp": exp,
///         "realm_access": { "roles": ["orders-admin", "unmapped"] },
///     });
///     let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
///     jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
/// };
///
/// let caller = validator.validate_at(&sign(now, now + 300)?, SystemTime::now())?;
/// assert!(caller.has_scope("orders:admin"));                  // granted by the role
/// assert_eq!(caller.scopes().len(), 2);                       // unmapped roles grant nothing
/// let day_long = sign(now, now + 86_400)?;
/// assert_eq!(validator.validate_at(&day_long, SystemTime::now()), Err(TokenError::LifetimeTooLong));
/// let expired = sign(now - 100, now - 20)?;                   // 20 s ago: past the 10 s leeway
/// assert_eq!(validator.validate_at(&expired, SystemTime::now()), Err(TokenError::Expired));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct ValidatorBuilder {
    /// The `iss` values given to [`issuer`](Self::issuer): one provider, with the keys and
    /// introspection of `defaults`.
    issuers: Vec<String>,
    /// The builder's own settings: that provider's, and the defaults of every [`Issuer`].
    defaults: Settings,
    /// The providers given to [`trust`](Self::trust).
    trusted: Vec<Issuer>,
    cache_capacity: Option<u64>,
    cache_ttl: Option<Duration>,
    max_token_len: Option<usize>,
    max_delegation_depth: Option<u8>,
}

/// Tokens longer than this are refused before any decoding.
const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

impl ValidatorBuilder {
    /// Trusts tokens whose `iss` equals `issuer` exactly, checked with the builder's own
    /// [`keys`](Self::keys) (or introspection). May be called several times, for one
    /// provider known under several names (Entra ID's v1 and v2 issuers, say): they share
    /// these keys. An independent provider is a [`trust`](Self::trust) of its own, so that
    /// a key of one never vouches for another (RFC 8725 §3.8).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Trusts one more identity provider, with its own keys, audiences and token profile:
    /// a token is checked by the issuer its `iss` names and by no other. What the issuer
    /// leaves unset comes from this builder (audiences, leeway, token types, scope and role
    /// claims, lifetime bound, algorithms); keys and introspection never do. May be called
    /// once per provider; the same `iss` trusted twice is a [`ConfigError`].
    ///
    /// ```
    /// use oauth_grpc::{Issuer, KeySource, Validator};
    ///
    /// let validator = Validator::builder()
    ///     .audience("orders-api")
    ///     .trust(Issuer::new("https://login.corp.example/")
    ///         .keys(KeySource::discover("https://login.corp.example/")))
    ///     .trust(Issuer::new("https://partner.example/")
    ///         .keys(KeySource::jwks_url("https://partner.example/keys.json")))
    ///     .build()?;
    /// # let _ = validator;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    #[must_use]
    pub fn trust(mut self, issuer: Issuer) -> Self {
        self.trusted.push(issuer);
        self
    }

    /// Accepts tokens whose `aud` contains `audience` exactly. May be called several times.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.defaults.audiences.push(audience.into());
        self
    }

    /// Trusts these keys: a [`KeySet`](crate::KeySet), or a remote [`KeySource`](crate::KeySource). Static key sets may be
    /// given several times and are merged; a remote source stands alone.
    #[must_use]
    pub fn keys(mut self, keys: impl Into<KeySource>) -> Self {
        self.defaults.keys.push(keys.into());
        self
    }

    /// Checks opaque tokens (and, if so configured, all tokens) by RFC 7662 introspection.
    #[cfg(feature = "introspection")]
    #[must_use]
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.defaults.introspection = Some(introspection);
        self
    }

    /// How many verified tokens the cache holds (default 10,000); 0 turns the cache off.
    #[must_use]
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.cache_capacity = Some(entries);
        self
    }

    /// The longest a verified token is reused without checking it again (default 5
    /// minutes); it is never reused past its `exp`.
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
        self.defaults.key_files.push(path.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default 60 seconds.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.defaults.leeway = Some(leeway);
        self
    }

    /// Refuses tokens whose `exp - iat` exceeds `lifetime` (and tokens without `iat`).
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.defaults.max_lifetime = Some(lifetime);
        self
    }

    /// How deep a delegation chain (RFC 8693 `act`, nested once per actor) a token may carry:
    /// 1 to 16, 4 by default. A token past it is refused with `UNAUTHENTICATED`
    /// ([`TokenError::DelegationTooDeep`](crate::TokenError::DelegationTooDeep)) whatever
    /// the method, so that a chain no one reviews cannot pile up. Which delegated calls a
    /// method admits is its rule's `delegation = …`.
    ///
    /// ```
    /// use oauth_grpc::{Algorithm, ConfigError, KeySet, Validator};
    ///
    /// let builder = || {
    ///     Validator::builder()
    ///         .issuer("https://idp.example.com")
    ///         .audience("orders")
    ///         .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256).unwrap())
    /// };
    /// assert!(builder().max_delegation_depth(2).build().is_ok());
    /// assert!(matches!(
    ///     builder().max_delegation_depth(0).build(),
    ///     Err(ConfigError::DelegationDepth(0))
    /// ));
    /// ```
    #[must_use]
    pub fn max_delegation_depth(mut self, depth: u8) -> Self {
        self.max_delegation_depth = Some(depth);
        self
    }

    /// Which `typ` values are accepted; [`TokenTypes::Strict`] by default.
    ///
    /// For the builder's own [`issuer`](Self::issuer) only: an [`Issuer`](crate::Issuer)
    /// given to [`trust`](Self::trust) sets its own, and without `.issuer(…)` this is
    /// [`ConfigError::ProviderSettingWithoutIssuer`].
    #[must_use]
    pub fn token_types(mut self, types: TokenTypes) -> Self {
        self.defaults.token_types = Some(types);
        self
    }

    /// Reads scopes from this claim (a space-delimited string or an array of strings, e.g.
    /// Auth0's `permissions`) instead of `scope` / `scp`.
    ///
    /// For the builder's own [`issuer`](Self::issuer) only: an [`Issuer`](crate::Issuer)
    /// given to [`trust`](Self::trust) sets its own, and without `.issuer(…)` this is
    /// [`ConfigError::ProviderSettingWithoutIssuer`].
    #[must_use]
    pub fn scope_claim(mut self, claim: impl Into<String>) -> Self {
        self.defaults.scope_claim = Some(claim.into());
        self
    }

    /// Checks the configured audiences against this claim instead of `aud` — for providers
    /// whose access tokens carry no `aud`, such as Amazon Cognito (`client_id`).
    ///
    /// For the builder's own [`issuer`](Self::issuer) only: an [`Issuer`](crate::Issuer)
    /// given to [`trust`](Self::trust) sets its own, and without `.issuer(…)` this is
    /// [`ConfigError::ProviderSettingWithoutIssuer`].
    #[must_use]
    pub fn audience_claim(mut self, claim: impl Into<String>) -> Self {
        self.defaults.audience_claim = Some(claim.into());
        self
    }

    /// Reads roles from this claim path (dot-separated, e.g. Keycloak's
    /// `realm_access.roles`); roles grant the scopes given with [`map_role`](Self::map_role).
    ///
    /// For the builder's own [`issuer`](Self::issuer) only: an [`Issuer`](crate::Issuer)
    /// given to [`trust`](Self::trust) sets its own, and without `.issuer(…)` this is
    /// [`ConfigError::ProviderSettingWithoutIssuer`].
    #[must_use]
    pub fn role_claim(mut self, path: impl Into<String>) -> Self {
        self.defaults.role_claim = Some(path.into());
        self
    }

    /// A token holding `role` (in the [`role_claim`](Self::role_claim)) is granted `scopes`.
    /// Roles without a mapping grant nothing; a mapping without a role claim is
    /// [`ConfigError::RolesWithoutClaim`].
    ///
    /// For the builder's own [`issuer`](Self::issuer) only: an [`Issuer`](crate::Issuer)
    /// given to [`trust`](Self::trust) sets its own, and without `.issuer(…)` this is
    /// [`ConfigError::ProviderSettingWithoutIssuer`].
    #[must_use]
    pub fn map_role<I, S>(mut self, role: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.defaults
            .role_scopes
            .entry(role.into())
            .or_default()
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Accepts only these signing algorithms, on top of the binding of algorithms to key types
    /// (an RSA key without a declared `alg` otherwise verifies RS* and PS*).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.defaults.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Refuses tokens longer than `bytes` before decoding anything. Default 8 KiB.
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
        crate::keys::install_backend()?;
        let mut issuers = Vec::with_capacity(1 + self.trusted.len());
        if !self.issuers.is_empty() {
            issuers.push(Issuer {
                names: self.issuers,
                tenants: None,
                settings: self.defaults.clone(),
            });
        } else if self.defaults.has_key_material() {
            return Err(ConfigError::KeysWithoutIssuer);
        } else if let Some(setting) = self.defaults.provider_setting() {
            return Err(ConfigError::ProviderSettingWithoutIssuer(setting));
        }
        // Only the builder's own issuer: the errors of a validator with one issuer.
        let single = !issuers.is_empty() && self.trusted.is_empty();
        issuers.extend(self.trusted);
        let max_delegation_depth = self.max_delegation_depth.unwrap_or(4);
        if !(1..=16).contains(&max_delegation_depth) {
            return Err(ConfigError::DelegationDepth(max_delegation_depth));
        }
        let registry = Registry::build(issuers, &self.defaults, usize::from(max_delegation_depth))
            .map_err(|error| match error {
                ConfigError::NoAudienceFor(_) if single => ConfigError::NoAudience,
                ConfigError::NoKeysFor(_) if single => ConfigError::NoKeys,
                other => other,
            })?;
        let cache = match self.cache_capacity.unwrap_or(10_000) {
            0 => None,
            capacity => Some(TokenCache::new(
                capacity,
                self.cache_ttl.unwrap_or(Duration::from_secs(300)),
            )),
        };
        let validator = Validator {
            inner: Arc::new(Config {
                registry,
                cache,
                max_token_len: self.max_token_len.unwrap_or(DEFAULT_MAX_TOKEN_LEN),
            }),
        };
        for profile in &validator.inner.registry.profiles {
            // A tenant's keys are fetched when a token of that tenant first comes.
            if !profile.lazy {
                profile.keys.start_background();
            }
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
    /// use oauth_grpc::{Validator, KeySource};
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
        // Every issuer's first load at once, each within its own start-up timeout.
        let mut loads = tokio::task::JoinSet::new();
        for profile in &validator.inner.registry.profiles {
            if !profile.lazy {
                let profile = profile.clone();
                loads.spawn(async move { profile.keys.load_at_startup().await });
            }
        }
        while let Some(loaded) = loads.join_next().await {
            match loaded {
                Ok(result) => result?,
                // A load that panicked: the panic is the bug to see, not a config error.
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => {}
            }
        }
        Ok(validator)
    }
}
