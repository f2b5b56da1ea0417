//! The [`Validator`]: the one entry point for checking a token.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::{AuthError, TokenError};
use crate::principal::Principal;

pub(crate) mod binding;
mod builder;
mod cache;
mod claims;
#[allow(dead_code)] // #17 in progress: not wired into the layer yet
pub(crate) mod dpop;
#[cfg(feature = "introspection")]
mod introspect;
mod issuer;
mod json;
mod jws;
mod payload;
pub(crate) mod syntax;

pub use self::builder::{TokenTypes, ValidatorBuilder};
use self::cache::{Hit, TokenCache};
pub(crate) use self::cache::{TokenKey, token_key};
#[cfg(feature = "introspection")]
use self::introspect::Answer;
#[cfg(feature = "introspection")]
pub use self::introspect::{ClientAuth, Introspection, TokenRouting};
pub use self::issuer::Issuer;
use self::issuer::{Profile, Registry};
use self::jws::{Jws, Refusal};
use self::payload::Payload;

/// One JSON object with unique member names at every depth (RFC 8725 §3.11), or `None`.
pub(crate) fn json_object(bytes: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    json::object(bytes).ok()
}

/// Checks a bearer token and turns it into a [`Principal`] — a JWT access token
/// (RFC 9068, per RFC 8725) by its signature and claims, an opaque one by introspection
/// (RFC 7662), either from the verified-token cache when it was checked before. Cheap to
/// clone: the configuration and keys are shared. Made with [`Validator::builder`].
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::{Algorithm, KeySet, Validator};
///
/// let validator = Validator::builder()
///     .issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .keys(KeySet::from_hmac_secret(None, &[42; 32], Algorithm::HS256)?)
///     .leeway(Duration::from_secs(30))
///     .build()?;
///
/// // Anything that is not a valid token is refused with a reason, never a panic.
/// let now = std::time::SystemTime::now();
/// assert!(validator.validate_at("not-a-token", now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// One sequence, for the layer and for [`Validator::validate`] alike: the cache (a hit is
/// decided at once); on a miss the syntax (RFC 6750 token68) and the length limit; then, off
/// the connection's task, introspection or the JWS checks (the JWS: three base64url segments,
/// JWE refused; `alg` known and never `none`, no `crit`, no nested `cty: JWT`; the payload a
/// JSON object whose `iss` names a trusted [`Issuer`], compared exactly — an unknown issuer
/// is refused before any key is fetched; then with that issuer's settings: `alg` on its
/// allow-list, `typ` per its profile, the key by `kid` among *its* keys, or each of its keys
/// that fits `alg` (up to 4), never `jku`, `x5u`, `jwk` or `x5c`; the algorithm bound to the
/// key's type and declared `alg`; the signature) and the claims (`exp` required, `nbf`,
/// `iat`, maximum lifetime, `aud` containing one of the issuer's audiences, the types of
/// `sub`, `client_id`, `scope`/`scp` and `act`).
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Config>,
}

struct Config {
    registry: Registry,
    cache: Option<TokenCache>,
    max_token_len: usize,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("issuers", &self.inner.registry.profiles)
            .field("max_token_len", &self.inner.max_token_len)
            .finish_non_exhaustive()
    }
}

/// What [`Validator::begin`] decided inline, or that the rest is deferred (with the cache key,
/// when there is a cache).
pub(crate) enum Attempt {
    Done(Result<Principal, AuthError>),
    Deferred(Option<TokenKey>),
}

impl Validator {
    /// Starts a configuration.
    ///
    /// ```
    /// use oauth_grpc::Validator;
    ///
    /// let err = Validator::builder().build().unwrap_err();
    /// assert!(err.to_string().contains("no issuer"));
    /// ```
    pub fn builder() -> ValidatorBuilder {
        ValidatorBuilder::default()
    }

    /// Checks `token` and returns the verified caller: from the cache when the token was
    /// verified before, else by signature and claims (fetching keys once when a `kid` is
    /// unknown), or by introspection for opaque tokens. The same sequence as the layer's,
    /// for a call without a client certificate or DPoP proof: a certificate-bound token is
    /// refused ([`TokenError::CertificateMismatch`]; check one with
    /// [`validate_presented`](Self::validate_presented)), and so is a DPoP-bound one
    /// ([`TokenError::UnsupportedConfirmation`]; `OAuthLayer` with
    /// [`dpop`](crate::OAuthLayer::dpop) checks those with their proofs).
    ///
    /// # Errors
    ///
    /// The [`TokenError`] that refused the token ([`TokenError::Malformed`] for one outside
    /// the token68 syntax or over the length limit); [`TokenError::Unavailable`] when the
    /// identity provider was needed and could not be reached.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, TokenError, Validator};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert_eq!(validator.validate("a.b").await, Err(TokenError::Malformed));
    /// assert_eq!(validator.validate("a.b.c.d.e").await, Err(TokenError::Encrypted));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn validate(&self, token: &str) -> Result<Principal, TokenError> {
        let principal = self.verified(token).await?;
        binding::check(&principal, binding::Presented::default(), false)?;
        Ok(principal)
    }

    /// [`validate`](Self::validate), for a call that came with `certificate`, the TLS client
    /// certificate of its connection: a token bound to it (RFC 8705 `cnf.x5t#S256`) is
    /// accepted, a token bound to another is refused ([`TokenError::CertificateMismatch`]),
    /// and the principal carries the certificate. For servers that read connections
    /// themselves; `OAuthLayer` does this on every call.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, ClientCertificate, KeySet, TokenError, Validator};
    /// # async fn run(certificate_der: &[u8], token: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// let certificate = ClientCertificate::from_der(certificate_der)?;
    /// let caller = validator.validate_presented(token, &certificate).await?;
    /// assert_eq!(caller.client_certificate(), Some(&certificate));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn validate_presented(
        &self,
        token: &str,
        certificate: &crate::principal::ClientCertificate,
    ) -> Result<Principal, TokenError> {
        let principal = self.verified(token).await?;
        binding::check(
            &principal,
            binding::Presented {
                certificate: Some(certificate.thumbprint()),
                ..binding::Presented::default()
            },
            false,
        )?;
        Ok(principal.with_client_certificate(Some(Arc::new(certificate.clone()))))
    }

    /// The verified token, its binding not checked yet.
    async fn verified(&self, token: &str) -> Result<Principal, TokenError> {
        match self.begin(token) {
            Attempt::Done(result) => result.map_err(|error| match error {
                AuthError::InvalidToken(error) => error,
                _ => TokenError::Malformed,
            }),
            Attempt::Deferred(key) => self.finish(token, key).await,
        }
    }

    /// Checks `token` as if the time were `now`, against the keys held right now: no cache,
    /// no network (an unknown `kid` is refused; opaque tokens are refused), and as for a
    /// call without a client certificate (a certificate-bound token is refused). For tests,
    /// benchmarks and offline tools.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, TokenError, Validator};
    /// # use std::time::SystemTime;
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert_eq!(validator.validate_at("x.y.z", SystemTime::now()), Err(TokenError::Malformed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn validate_at(&self, token: &str, now: SystemTime) -> Result<Principal, TokenError> {
        // No token68 scan: `validate_at` only checks JWTs, and base64url decoding refuses
        // every byte the scan would.
        self.check_length(token)?;
        let jws = Jws::parse(token)?;
        let (payload, profile) = self.pick(&jws)?;
        let principal = match profile.keys.current() {
            Some((keys, _)) => profile.verify(&jws, &payload, &keys, crate::time::unix(now))?,
            None => return Err(TokenError::Unavailable),
        };
        // As for a call without a client certificate.
        binding::check(&principal, binding::Presented::default(), false)?;
        Ok(principal)
    }

    /// A parsed token's payload, and the trusted issuer it names.
    fn pick<'j>(&self, jws: &'j Jws<'_>) -> Result<(Payload<'j>, &Arc<Profile>), TokenError> {
        let registry = &self.inner.registry;
        let payload = jws.payload(&|name| registry.reads_into(name))?;
        let profile = registry
            .get(jws::issuer(&payload)?)
            .ok_or(TokenError::WrongIssuer)?;
        Ok((payload, profile))
    }

    /// The issuer that accepted `principal` (the first one for a principal naming none).
    fn profile_of(&self, principal: &Principal) -> &Arc<Profile> {
        let registry = &self.inner.registry;
        principal
            .issuer()
            .and_then(|iss| registry.get(iss))
            .unwrap_or_else(|| registry.first())
    }

    /// Changes of the keys of the issuer that accepted `principal` (`None` when they never
    /// change): a stream re-checks its token at each.
    pub(crate) fn key_changes(
        &self,
        principal: &Principal,
    ) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.profile_of(principal).keys.changes()
    }

    /// The clock-skew leeway of the issuer that accepted `principal`: its token is valid
    /// until `exp` plus this.
    pub(crate) fn leeway(&self, principal: &Principal) -> std::time::Duration {
        std::time::Duration::from_secs(self.profile_of(principal).trust.leeway)
    }

    /// The clock-skew leeway for what comes before a token is verified (a DPoP proof's
    /// `iat`): the first issuer's, which is the builder's own unless it trusts only
    /// [`Issuer`]s.
    pub(crate) fn proof_leeway(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.inner.registry.first().trust.leeway)
    }

    /// Every `iss` this validator trusts, in configuration order (a tenant template's
    /// allowed tenants each by name, aliases after the name they stand beside): what a
    /// server prints at start-up so that an operator sees whom it trusts.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, Issuer, KeySet, Validator};
    /// let key = || KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256);
    /// let validator = Validator::builder()
    ///     .audience("orders-api")
    ///     .trust(Issuer::new("https://corp.example/").keys(key()?))
    ///     .trust(Issuer::tenants("https://idp.example/{tenant}/", ["eu", "us"]).keys(key()?))
    ///     .build()?;
    /// let trusted: Vec<&str> = validator.issuers().collect();
    /// assert_eq!(
    ///     trusted,
    ///     ["https://corp.example/", "https://idp.example/eu/", "https://idp.example/us/"]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner
            .registry
            .profiles
            .iter()
            .flat_map(|profile| profile.trust.issuers.iter().map(|name| &**name))
    }

    /// How many verified tokens the cache holds now.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, KeySet, Validator};
    /// # let validator = Validator::builder().issuer("i").audience("a")
    /// #     .keys(KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)?).build()?;
    /// assert_eq!(validator.cached_tokens(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cached_tokens(&self) -> u64 {
        self.inner.cache.as_ref().map_or(0, TokenCache::entry_count)
    }

    /// What can be decided in a few hundred nanoseconds, inline in the layer's `call`: the
    /// verified-token cache first, then for a token it does not hold the token68 syntax and
    /// the length limit. (Every cached token passed both, so a hit needs neither again.)
    /// Everything else — signature verification, fetching keys, introspection — is
    /// [`Attempt::Deferred`] to [`finish`](Self::finish), in the call's own future, so that it
    /// runs on the request's task and not on the connection's, which hyper uses to accept the
    /// connection's other streams.
    pub(crate) fn begin(&self, token: &str) -> Attempt {
        self.begin_with(token, || token_key(token))
    }

    /// [`begin`](Self::begin) for a token whose cache key the caller hashed already.
    pub(crate) fn begin_keyed(&self, token: &str, key: TokenKey) -> Attempt {
        self.begin_with(token, || key)
    }

    fn begin_with(&self, token: &str, key: impl FnOnce() -> TokenKey) -> Attempt {
        let config = &*self.inner;
        let key = match &config.cache {
            None => None,
            Some(cache) => {
                let key = key();
                match cache.get(&key, crate::time::unix_now()) {
                    // An entry found expired is a hit: the cache decided the call.
                    Hit::Valid(principal) => {
                        crate::metrics::token_cache(true);
                        return Attempt::Done(Ok(principal));
                    }
                    Hit::Expired => {
                        crate::metrics::token_cache(true);
                        return Attempt::Done(Err(TokenError::Expired.into()));
                    }
                    Hit::Miss => {
                        crate::metrics::token_cache(false);
                        Some(key)
                    }
                }
            }
        };
        match self.shape(token) {
            Ok(()) => Attempt::Deferred(key),
            Err(error) => Attempt::Done(Err(error)),
        }
    }

    /// The syntax and the length limit, checked before anything is decoded.
    fn shape(&self, token: &str) -> Result<(), AuthError> {
        syntax::check_token68(token)?;
        Ok(self.check_length(token)?)
    }

    /// The length limit.
    fn check_length(&self, token: &str) -> Result<(), TokenError> {
        if token.len() > self.inner.max_token_len {
            Err(TokenError::Malformed)
        } else {
            Ok(())
        }
    }

    /// The rest of a check that [`begin`](Self::begin) deferred: introspection, keys from the
    /// provider when needed, the signature and the claims; a success is cached under `key`.
    pub(crate) async fn finish(
        &self,
        token: &str,
        key: Option<TokenKey>,
    ) -> Result<Principal, TokenError> {
        // The introspector caches its answers itself, for its own TTLs; they do not go into
        // the verified-token cache, whose TTL is the validator's.
        #[cfg(feature = "introspection")]
        let cache_key = || key.unwrap_or_else(|| token_key(token));
        // An opaque token names no issuer: the one issuer that takes opaque tokens checks
        // it, and so it does, when it introspects all tokens, a token that does not parse as
        // a JWS (the endpoint decides; its answer's `iss` is checked). A JWS that names no
        // trusted issuer goes to that endpoint only when it is the validator's one issuer:
        // beside other providers, a token naming a stranger (or none) is refused here, not
        // handed to one of them.
        #[cfg(feature = "introspection")]
        let opaque = self.inner.registry.opaque_introspector();
        #[cfg(feature = "introspection")]
        if let Some(introspector) = opaque
            && token.bytes().filter(|b| *b == b'.').count() != 2
        {
            return introspector.check(cache_key(), token).await;
        }
        let jws = match Jws::parse(token) {
            Ok(jws) => jws,
            Err(error) => return self.unparsed(error, token, key).await,
        };
        let (payload, profile) = match self.pick(&jws) {
            Ok((payload, profile)) => (payload, profile.clone()),
            Err(error) => return self.unparsed(error, token, key).await,
        };
        #[cfg(feature = "introspection")]
        if let Some(introspector) = profile
            .introspector
            .as_ref()
            .filter(|i| i.introspects_jwts())
        {
            return introspector.check(cache_key(), token).await;
        }
        let (keys, mut generation) = profile.keys.ensure().await?;
        let now = crate::time::unix_now();
        let mut result = profile.check_signature(&jws, &keys);
        if let Err(refusal) = result
            && refusal.wants_new_keys()
        {
            // An unknown kid, or a known kid whose key refuses the signature (a provider
            // that reused the kid): one rate-limited refetch of this issuer's keys, then one
            // retry.
            match profile.keys.after_unknown_kid(generation).await {
                Ok(true) => {
                    let (keys, refetched) = profile.keys.ensure().await?;
                    generation = refetched;
                    result = profile.check_signature(&jws, &keys);
                }
                Ok(false) => {}
                // The provider could not say whether it published this kid's key: 14.
                Err(unavailable) if refusal == Refusal::Token(TokenError::UnknownKey) => {
                    return Err(unavailable);
                }
                // A key we hold refused the signature; an unreachable provider does not
                // make it valid.
                Err(_) => {}
            }
        }
        result.map_err(Refusal::error)?;
        let principal = profile.check_claims(&payload, jws.payload_text(), now)?;
        self.remember(key, &principal, now, profile, generation);
        Ok(principal)
    }

    /// A token that did not parse as a JWS naming a trusted issuer (`error`): refused, unless
    /// the one issuer that introspects all tokens takes it (see [`finish`](Self::finish)).
    async fn unparsed(
        &self,
        error: TokenError,
        token: &str,
        key: Option<TokenKey>,
    ) -> Result<Principal, TokenError> {
        #[cfg(feature = "introspection")]
        {
            let only_issuer = self.inner.registry.profiles.len() == 1;
            let falls_back = match error {
                TokenError::Malformed => true,
                TokenError::MissingClaim | TokenError::InvalidClaim | TokenError::WrongIssuer => {
                    only_issuer
                }
                _ => false,
            };
            let introspector = self
                .inner
                .registry
                .opaque_introspector()
                .filter(|i| i.introspects_jwts());
            if falls_back && let Some(introspector) = introspector {
                return introspector
                    .check(key.unwrap_or_else(|| token_key(token)), token)
                    .await;
            }
        }
        #[cfg(not(feature = "introspection"))]
        let _ = (token, key);
        Err(error)
    }

    fn remember(
        &self,
        key: Option<TokenKey>,
        principal: &Principal,
        now: u64,
        profile: Arc<Profile>,
        generation: u64,
    ) {
        let (Some(cache), Some(key)) = (&self.inner.cache, key) else {
            return;
        };
        let exp = principal.expires_at().map_or(0, crate::time::unix);
        cache.insert(key, principal.clone(), exp, now, profile, generation);
    }

    /// An introspection endpoint's answer as this validator reads it after its POST:
    /// `Ok(Some(principal))` for an active token, `Ok(None)` for an inactive one. For the fuzz
    /// target of `fuzz/`, through `__private::fuzz`.
    #[cfg(feature = "introspection")]
    pub(crate) fn interpret_introspection(
        &self,
        body: &[u8],
    ) -> Result<Option<Principal>, TokenError> {
        let registry = &self.inner.registry;
        let Some(introspector) = registry
            .opaque
            .as_ref()
            .or_else(|| Some(registry.first()))
            .and_then(|profile| profile.introspector.as_ref())
        else {
            return Err(TokenError::Unavailable);
        };
        Ok(match introspector.interpret(body)? {
            Answer::Active { principal, .. } => Some(principal),
            Answer::Inactive => None,
            Answer::Faulty => return Err(TokenError::Unavailable),
        })
    }
}
