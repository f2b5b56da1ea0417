//! RFC 7662 introspection of opaque tokens: [`Introspection`] settings and the checks of an
//! answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use serde_json::{Map, Value};

use crate::error::{ConfigError, TokenError};
use crate::principal::Principal;
use crate::provider::{ClientSecret, HttpClient};
use crate::scope::ScopeSet;
use crate::time::{from_unix, unix_now};

use super::cache::TokenKey;
use super::claims::{Trust, numeric_date, string_or_strings};

/// How the resource server authenticates to the introspection endpoint.
///
/// ```
/// use oauth_grpc::ClientAuth;
/// assert_eq!(ClientAuth::default(), ClientAuth::Basic);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// Which tokens are introspected.
///
/// Without a call to [`Introspection::routing`], a validator that has keys validates JWTs
/// locally ([`JwtLocally`](Self::JwtLocally)) and one without keys introspects every token
/// ([`IntrospectAll`](Self::IntrospectAll)): the JWT access tokens of Keycloak or Okta are then
/// introspected instead of refused for want of a key.
///
/// ```
/// use oauth_grpc::TokenRouting;
/// assert_eq!(TokenRouting::default(), TokenRouting::JwtLocally);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenRouting {
    /// JWT-shaped tokens (three dot-separated segments) are validated locally with the keys;
    /// all others are introspected. Needs keys: a validator without them refuses this
    /// routing at build time.
    #[default]
    JwtLocally,
    /// Every token is introspected (revocation takes effect at once, at a request's cost).
    IntrospectAll,
}

/// Introspection settings for a [`Validator`](crate::Validator), given to
/// [`ValidatorBuilder::introspection`](crate::ValidatorBuilder::introspection): opaque tokens
/// checked by OAuth 2.0 Token Introspection (RFC 7662).
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::{ClientAuth, ClientSecret, Introspection, TokenRouting, Validator};
///
/// let validator = Validator::builder()
///     .issuer("https://idp.example.com/")
///     .audience("orders-api")
///     .introspection(
///         Introspection::new(
///             "https://idp.example.com/oauth2/introspect",
///             "orders-api",
///             ClientSecret::from_file("/run/secrets/introspection-secret"),
///         )
///         .client_auth(ClientAuth::Basic)
///         .routing(TokenRouting::IntrospectAll)
///         .cache_ttl(Duration::from_secs(60)),
///     )
///     .build()?;
/// # Ok::<(), oauth_grpc::ConfigError>(())
/// ```
///
/// The answer is honoured as RFC 7662 defines it: `active: false` is `UNAUTHENTICATED`
/// `invalid_token`; `exp` in the past is expired; `iss` and `aud`, when present, must match the
/// validator's; `scope`, `client_id`, `sub` and `jti` fill the Principal. Active answers are
/// cached until the earlier of `exp` and the cache TTL, inactive ones for the short negative
/// TTL; concurrent checks of one token make one request; cache keys are a SHA-256 of the
/// token. No answer within the timeout is `UNAVAILABLE`.
#[derive(Debug, Clone)]
pub struct Introspection {
    endpoint: String,
    client_id: String,
    secret: ClientSecret,
    auth: ClientAuth,
    /// `None`: by whether the validator has keys.
    routing: Option<TokenRouting>,
    timeout: Duration,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: u64,
    http: Option<HttpClient>,
}

impl Introspection {
    /// Introspection at `endpoint`, authenticating as `client_id`.
    ///
    /// Defaults: `client_secret_basic`; JWTs validated locally when the validator has keys,
    /// every token introspected when it has none; 5 s timeout; active answers cached up to 5
    /// minutes, inactive ones 10 seconds; 10,000 entries.
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            secret,
            auth: ClientAuth::Basic,
            routing: None,
            timeout: Duration::from_secs(5),
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(10),
            capacity: 10_000,
            http: None,
        }
    }

    /// The client authentication method.
    #[must_use]
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Which tokens go to introspection, instead of the default chosen by whether the
    /// validator has keys (see [`TokenRouting`]).
    #[must_use]
    pub fn routing(mut self, routing: TokenRouting) -> Self {
        self.routing = Some(routing);
        self
    }

    /// How long to wait for an answer before `UNAVAILABLE`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest an active answer is reused (it is never kept past the token's `exp`).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an inactive answer is reused.
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The HTTP client (custom CA, mTLS, timeouts).
    #[must_use]
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }
}

/// An introspection answer, as cached.
#[derive(Clone)]
pub(crate) enum Answer {
    Active { principal: Principal, exp: u64 },
    Inactive,
}

struct AnswerExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<TokenKey, (Answer, Instant)> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _: &TokenKey,
        (answer, _): &(Answer, Instant),
        _: Instant,
    ) -> Option<Duration> {
        Some(match answer {
            Answer::Active { exp, .. } => {
                let remaining = Duration::from_secs(exp.saturating_sub(unix_now()));
                remaining.min(self.ttl)
            }
            Answer::Inactive => self.negative_ttl,
        })
    }
}

/// Checks opaque tokens at the introspection endpoint, with a cache of the answers.
pub(crate) struct Introspector {
    config: Introspection,
    routing: TokenRouting,
    url: reqwest::Url,
    http: HttpClient,
    trust: Arc<Trust>,
    cache: moka::future::Cache<TokenKey, (Answer, Instant)>,
}

impl Introspector {
    /// `has_keys`: whether the validator can check JWTs itself.
    pub(super) fn new(
        config: Introspection,
        trust: Arc<Trust>,
        has_keys: bool,
    ) -> Result<Self, ConfigError> {
        let routing = match (config.routing, has_keys) {
            (Some(TokenRouting::JwtLocally), false) => return Err(ConfigError::JwtsWithoutKeys),
            (Some(routing), _) => routing,
            (None, true) => TokenRouting::JwtLocally,
            (None, false) => TokenRouting::IntrospectAll,
        };
        let http = match &config.http {
            Some(http) => http.clone(),
            None => HttpClient::new()?,
        };
        let url = http.check_url("introspection endpoint", &config.endpoint)?;
        if config.client_id.is_empty() {
            return Err(ConfigError::Empty("introspection client id"));
        }
        let cache = moka::future::Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(AnswerExpiry {
                ttl: config.ttl,
                negative_ttl: config.negative_ttl,
            })
            .build();
        Ok(Self {
            config,
            routing,
            url,
            http,
            trust,
            cache,
        })
    }

    pub(crate) fn routes(&self, token: &str) -> bool {
        match self.routing {
            TokenRouting::IntrospectAll => true,
            TokenRouting::JwtLocally => token.bytes().filter(|b| *b == b'.').count() != 2,
        }
    }

    /// The principal for an opaque token: from the cache, or one POST shared by every
    /// concurrent check of the same token.
    pub(crate) async fn check(&self, key: TokenKey, token: &str) -> Result<Principal, TokenError> {
        let answer = self
            .cache
            .try_get_with(key, async {
                match tokio::time::timeout(self.config.timeout, self.request(token)).await {
                    Ok(result) => result.map(|answer| (answer, Instant::now())),
                    Err(_) => {
                        tracing::warn!(target: "oauth_grpc::introspection", "the introspection endpoint did not answer in time");
                        Err(TokenError::Unavailable)
                    }
                }
            })
            .await
            .map_err(|error: Arc<TokenError>| *error)?;
        match answer.0 {
            Answer::Active { principal, exp } => {
                if let Err(expired) = self.trust.check_expiry(exp, unix_now()) {
                    self.cache.invalidate(&key).await;
                    return Err(expired);
                }
                Ok(principal)
            }
            Answer::Inactive => Err(TokenError::Inactive),
        }
    }

    async fn request(&self, token: &str) -> Result<Answer, TokenError> {
        let secret = self.config.secret.reveal().map_err(|error| {
            tracing::error!(target: "oauth_grpc::introspection", %error, "cannot introspect");
            TokenError::Unavailable
        })?;
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let basic = match self.config.auth {
            ClientAuth::Basic => Some((self.config.client_id.as_str(), &*secret)),
            ClientAuth::Post => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", &secret));
                None
            }
        };
        let body = self
            .http
            .post_form(self.url.clone(), &form, basic)
            .await
            .map_err(|error| {
                tracing::warn!(target: "oauth_grpc::introspection", %error, "introspection failed");
                TokenError::Unavailable
            })?;
        self.interpret(&body)
    }

    /// The answer of the endpoint (RFC 7662 §2.2), checked as a JWT's claims are.
    pub(crate) fn interpret(&self, body: &[u8]) -> Result<Answer, TokenError> {
        let answer: Map<String, Value> = super::json::object(body).map_err(|_| {
            tracing::warn!(target: "oauth_grpc::introspection", "the introspection answer is not a JSON object with unique names");
            TokenError::Unavailable
        })?;
        match answer.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(Answer::Inactive),
            _ => {
                tracing::warn!(target: "oauth_grpc::introspection", "the introspection answer has no boolean `active`");
                return Err(TokenError::Unavailable);
            }
        }
        let string = |name: &str| -> Result<Option<String>, TokenError> {
            match answer.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(TokenError::InvalidClaim),
            }
        };
        let now = unix_now();
        // RFC 7662 makes `exp` optional; without it the cache TTL bounds reuse. The same
        // NumericDate rules as for JWTs: a number, not negative, not past year 9999.
        let exp = match answer.get("exp") {
            None | Some(Value::Null) => now.saturating_add(self.config.ttl.as_secs()),
            Some(_) => numeric_date(&answer, "exp")?.ok_or(TokenError::InvalidClaim)?,
        };
        self.trust.check_expiry(exp, now)?;
        let issuer = string("iss")?;
        if let Some(iss) = &issuer {
            self.trust.check_issuer(iss)?;
        }
        let audiences: Vec<String> = match answer.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => string_or_strings(value)?,
        };
        if !audiences.is_empty() {
            self.trust.check_audiences(&audiences)?;
        }
        let scopes = match string("scope")? {
            Some(scope) => ScopeSet::from_space_delimited(&scope),
            None => ScopeSet::new(),
        };
        let mut builder = Principal::builder()
            .audiences(audiences)
            .scope_set(scopes)
            .expires_at(from_unix(exp));
        if let Some(issuer) = issuer {
            builder = builder.issuer(issuer);
        }
        if let Some(sub) = string("sub")? {
            builder = builder.subject(sub);
        }
        if let Some(client_id) = string("client_id")? {
            builder = builder.client_id(client_id);
        }
        if let Some(jti) = string("jti")? {
            builder = builder.token_id(jti);
        }
        let principal = builder.claims(answer).build();
        Ok(Answer::Active { principal, exp })
    }
}
