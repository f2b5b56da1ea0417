//! RFC 7662 introspection of opaque tokens: [`Introspection`] settings and the checks of an
//! answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use serde_json::{Map, Value};

use crate::error::{ConfigError, TokenError};
use crate::metrics::Tier;
use crate::principal::Principal;
use crate::provider::{ClientSecret, HttpClient};
use crate::scope::ScopeSet;
use crate::time::{from_unix, unix_now};

use super::cache::TokenKey;
use super::claims::{Trust, numeric_date, string_or_strings};
use super::payload::Claim;

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
    /// A token whose JWS header is refused (an algorithm outside the allow-list, `crit`, a
    /// nested `cty`) is refused before it is sent anywhere. Beside other trusted issuers,
    /// only this issuer's JWTs and tokens that are no JWS come here: a JWT naming another
    /// provider goes to that provider, one naming a stranger or no issuer is refused.
    IntrospectAll,
    /// The JWTs naming this issuer are introspected, and opaque tokens are not sent here:
    /// for a second introspecting [`Issuer`](crate::Issuer) of one validator, since an opaque
    /// token does not say which provider issued it and goes to one endpoint only.
    IntrospectJwts,
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
/// The answer is checked as a JWT's claims are: `active: false` is `UNAUTHENTICATED`
/// `invalid_token`; `exp` in the past is expired and `nbf` in the future not yet valid; `iss`,
/// when present, must be a configured issuer; `aud` must name a configured audience, and an
/// answer without `aud` is refused (a token minted for another service at the same provider
/// is active too) unless [`trust_provider_audience`](Self::trust_provider_audience) says the
/// provider decides; a `token_type` other than an access token's (`Bearer`, `access_token`)
/// is refused. `scope`, `client_id`, `sub` and `jti` fill the Principal. An answer the
/// provider should not have sent — not JSON, no boolean `active`, a member of the wrong
/// type — is `UNAVAILABLE`. Active answers are cached until the earlier of `exp` and the cache
/// TTL; inactive and malformed ones for the short negative TTL; concurrent checks of one token
/// make one request; cache keys are a SHA-256 of the token. No answer within the timeout is
/// `UNAVAILABLE`.
#[derive(Clone)]
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
    /// Accept answers without `aud`, leaving the audience decision to the provider.
    trust_audience: bool,
    /// Answers shared with the other replicas.
    shared: Option<Arc<dyn crate::store::SharedStore>>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &crate::error::shown_url(&self.endpoint))
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("auth", &self.auth)
            .field("routing", &self.routing)
            .field("timeout", &self.timeout)
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("capacity", &self.capacity)
            .field("http", &self.http)
            .field("trust_audience", &self.trust_audience)
            .field("shared", &self.shared)
            .finish()
    }
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
            trust_audience: false,
            shared: None,
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

    /// Accepts active answers that carry no `aud`, trusting the provider to answer `active`
    /// only for tokens meant for this resource server (as providers that bind introspection
    /// to the calling client do). Off by default: without `aud`, a token minted for another
    /// service at the same provider would pass, so such answers are refused. An answer that
    /// has `aud` must name one of the validator's audiences either way.
    #[must_use]
    pub fn trust_provider_audience(mut self) -> Self {
        self.trust_audience = true;
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

    /// Shares the answers with the other replicas through `store`, so that N replicas ask
    /// the provider once per token (and once per cache TTL): a replica that has no answer
    /// looks in the store before asking, and stores what the provider said — the answer,
    /// keyed by the token's SHA-256, never the token — for as long as it would keep it
    /// itself. An answer from the store is checked like one from the provider (`exp`,
    /// `iss`, `aud`, …). While the store does not answer, each replica asks the provider
    /// and keeps its own cache: nothing is refused for it.
    ///
    /// Whoever can write to the store can then make a token look active: protect it as you
    /// protect the provider's keys (Redis ACLs, TLS, a network of its own).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use oauth_grpc::store::MemoryStore;
    /// use oauth_grpc::{ClientSecret, Introspection};
    ///
    /// let introspection = Introspection::new(
    ///     "https://idp.example.com/introspect",
    ///     "orders-api",
    ///     ClientSecret::from_file("/run/secrets/introspection"),
    /// )
    /// .shared_cache(Arc::new(MemoryStore::new()));
    /// # let _ = introspection;
    /// ```
    #[must_use]
    pub fn shared_cache(mut self, store: Arc<dyn crate::store::SharedStore>) -> Self {
        self.shared = Some(store);
        self
    }

    /// The HTTP client (custom CA, mTLS, timeouts).
    #[must_use]
    pub fn http_client(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }
}

/// How often a replica waiting for another's introspection answer looks in the store.
const SHARED_POLL: Duration = Duration::from_millis(10);

/// The store key of a token's introspection answer.
fn shared_key(key: &TokenKey) -> String {
    use base64::Engine as _;
    let mut shared = String::from("introspection:");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(key, &mut shared);
    shared
}

/// An introspection answer, as cached.
#[derive(Clone)]
pub(crate) enum Answer {
    Active {
        principal: Principal,
        exp: u64,
    },
    Inactive,
    /// An answer the provider should not have sent (not JSON, no boolean `active`, a member
    /// of the wrong type): its fault, so `UNAVAILABLE`, cached for the negative TTL so that
    /// a broken provider is not asked again on every call.
    Faulty,
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
            Answer::Inactive | Answer::Faulty => self.negative_ttl,
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
    shared: Option<Arc<crate::store::StoreUse>>,
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
        let shared = config.shared.clone().map(|store| {
            Arc::new(crate::store::StoreUse::new(
                store,
                "the shared introspection cache",
                "each replica asks the provider and caches for itself",
            ))
        });
        Ok(Self {
            config,
            routing,
            url,
            http,
            trust,
            cache,
            shared,
        })
    }

    /// Whether opaque tokens (and tokens that do not parse as a JWS) come here.
    pub(super) fn takes_opaque_tokens(&self) -> bool {
        matches!(
            self.routing,
            TokenRouting::JwtLocally | TokenRouting::IntrospectAll
        )
    }

    /// Whether the JWTs of this introspector's issuer are introspected, not checked locally.
    pub(super) fn introspects_jwts(&self) -> bool {
        matches!(
            self.routing,
            TokenRouting::IntrospectAll | TokenRouting::IntrospectJwts
        )
    }

    /// The principal for an opaque token: from the cache, or one POST shared by every
    /// concurrent check of the same token.
    pub(crate) async fn check(&self, key: TokenKey, token: &str) -> Result<Principal, TokenError> {
        // Set when this check, not a concurrent one of the same token, looks the answer up:
        // a miss of the local cache. A check that waits for another's lookup is a hit.
        let mut missed = false;
        let answer = self
            .cache
            .try_get_with(key, async {
                missed = true;
                let shared_key = self.shared.as_ref().map(|_| shared_key(&key));
                if let (Some(shared), Some(shared_key)) = (&self.shared, &shared_key)
                    && let Some(body) = self.shared_answer(shared, shared_key).await
                {
                    return self.interpret(&body).map(|answer| (answer, Instant::now()));
                }
                match tokio::time::timeout(self.config.timeout, self.request(token)).await {
                    Ok(result) => result.map(|(answer, body)| {
                        if let (Some(shared), Some(shared_key)) = (&self.shared, shared_key) {
                            self.share(shared, shared_key, &answer, body);
                        }
                        (answer, Instant::now())
                    }),
                    Err(_) => {
                        crate::metrics::introspection(false);
                        tracing::warn!(target: "oauth_grpc::introspection", "the introspection endpoint did not answer in time");
                        Err(TokenError::Unavailable)
                    }
                }
            })
            .await;
        crate::metrics::introspection_cache(!missed, Tier::Local);
        let answer = answer.map_err(|error: Arc<TokenError>| *error)?;
        match answer.0 {
            Answer::Active { principal, exp } => {
                if let Err(expired) = self.trust.check_expiry(exp, unix_now()) {
                    self.cache.invalidate(&key).await;
                    return Err(expired);
                }
                Ok(principal)
            }
            Answer::Inactive => Err(TokenError::Inactive),
            Answer::Faulty => Err(TokenError::Unavailable),
        }
    }

    /// Another replica's answer for the token: from the store, or — while another replica
    /// is asking the provider (it holds the token's lock) — the answer it stores, waited for
    /// up to the introspection timeout. `None`: ask the provider.
    async fn shared_answer(&self, shared: &crate::store::StoreUse, key: &str) -> Option<Vec<u8>> {
        let found = shared.observe(shared.store.get(key).await).ok()?;
        crate::metrics::introspection_cache(found.is_some(), Tier::Shared);
        if found.is_some() {
            return found;
        }
        let lock = format!("{key}:asking");
        let asking = shared
            .store
            .insert_new(&lock, b"1", self.config.timeout)
            .await;
        if shared.observe(asking).ok()? {
            return None;
        }
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(SHARED_POLL).await;
            match shared.observe(shared.store.get(key).await) {
                Ok(Some(body)) => return Some(body),
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Stores a provider's answer for the other replicas, for as long as this one keeps it;
    /// off the call's path. Faulty answers are not shared.
    fn share(
        &self,
        shared: &Arc<crate::store::StoreUse>,
        key: String,
        answer: &Answer,
        body: Vec<u8>,
    ) {
        let ttl = match answer {
            Answer::Active { exp, .. } => {
                Duration::from_secs(exp.saturating_sub(unix_now())).min(self.config.ttl)
            }
            Answer::Inactive => self.config.negative_ttl,
            Answer::Faulty => return,
        };
        if ttl.is_zero() {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let stored = shared.store.set(&key, &body, ttl).await;
            // Releases the other replicas waiting for this answer at once.
            let _ = shared.observe(stored);
        });
    }

    async fn request(&self, token: &str) -> Result<(Answer, Vec<u8>), TokenError> {
        let secret = self.config.secret.reveal_async().await.map_err(|error| {
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
                crate::metrics::introspection(false);
                tracing::warn!(target: "oauth_grpc::introspection", %error, "introspection failed");
                TokenError::Unavailable
            })?;
        let answer = self.interpret(&body);
        // A failure: no answer, or one the provider should not have sent. An answer whose
        // claims refuse the token (expired, another audience) is a success of the request.
        crate::metrics::introspection(!matches!(answer, Ok(Answer::Faulty)));
        Ok((answer?, body.to_vec()))
    }

    /// The answer of the endpoint (RFC 7662 §2.2), checked as a JWT's claims are: `exp` and
    /// `nbf` against the clock, `iss` and `aud` against the validator's, `token_type` an
    /// access token's. An answer without `aud` is refused unless the provider's audience
    /// decision is trusted ([`Introspection::trust_provider_audience`]).
    pub(crate) fn interpret(&self, body: &[u8]) -> Result<Answer, TokenError> {
        let faulty = |what: &str| {
            tracing::warn!(target: "oauth_grpc::introspection", problem = what, "the introspection answer is malformed; answering UNAVAILABLE");
            Ok(Answer::Faulty)
        };
        let Ok(answer) = super::json::object(body) else {
            return faulty("not a JSON object with unique member names");
        };
        match answer.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Ok(Answer::Inactive),
            _ => return faulty("no boolean `active`"),
        }
        let members = match Members::read(&answer) {
            Ok(members) => members,
            Err(member) => return faulty(member),
        };
        let now = unix_now();
        // RFC 7662 makes `exp` optional; without it the cache TTL bounds reuse.
        let exp = members
            .exp
            .unwrap_or_else(|| now.saturating_add(self.config.ttl.as_secs()));
        self.trust.check_expiry(exp, now)?;
        if let Some(nbf) = members.nbf
            && nbf > now.saturating_add(self.trust.leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(token_type) = &members.token_type
            && !is_access_token_type(token_type)
        {
            return Err(TokenError::WrongType);
        }
        if let Some(iss) = &members.iss {
            self.trust.check_issuer(iss)?;
        }
        match &members.aud {
            Some(audiences) => self.trust.check_audiences(audiences)?,
            // A token minted for another resource server at the same provider is active
            // too: without `aud`, only a provider trusted to decide the audience vouches.
            None if self.config.trust_audience => {}
            None => return Err(TokenError::WrongAudience),
        }
        let scopes = match &members.scope {
            Some(scope) => ScopeSet::from_space_delimited(scope),
            None => ScopeSet::new(),
        };
        let mut builder = Principal::builder()
            .audiences(members.aud.unwrap_or_default())
            .scope_set(scopes)
            .expires_at(from_unix(exp));
        // The issuer that vouched: the answer's `iss`, checked above, else the issuer this
        // endpoint belongs to.
        let issuer = match &members.iss {
            Some(iss) => self.trust.check_issuer(iss).ok(),
            None => self.trust.issuers.first(),
        };
        if let Some(issuer) = issuer {
            builder = builder.issuer_shared(issuer.clone());
        }
        if let Some(sub) = members.sub {
            builder = builder.subject(sub);
        }
        if let Some(client_id) = members.client_id {
            builder = builder.client_id(client_id);
        }
        if let Some(jti) = members.jti {
            builder = builder.token_id(jti);
        }
        // RFC 8693 §4.1: an answer for a delegated token carries its `act`, as a JWT would.
        if let Some(act) = answer.get("act") {
            builder = builder.actor(self.trust.actor(act)?);
        }
        // RFC 8705 §3.2: the answer for a certificate-bound token carries its `cnf`.
        if let Some(confirmation) = super::claims::confirmation(&answer)? {
            builder = builder.confirmation(confirmation);
        }
        let principal = builder.claims(answer).build();
        Ok(Answer::Active { principal, exp })
    }
}

/// The members of an active answer this crate reads, each of its RFC 7662 type.
struct Members {
    exp: Option<u64>,
    nbf: Option<u64>,
    iss: Option<String>,
    aud: Option<Vec<String>>,
    scope: Option<String>,
    sub: Option<String>,
    client_id: Option<String>,
    jti: Option<String>,
    token_type: Option<String>,
}

impl Members {
    /// The members, or the name of the first one of a wrong type. `null` counts as absent.
    fn read(answer: &Map<String, Value>) -> Result<Self, &'static str> {
        let present = |name: &str| answer.get(name).filter(|v| !v.is_null()).is_some();
        let string = |name: &'static str| match answer.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(name),
        };
        // The same NumericDate rules as for JWTs: a number, not negative, not past 9999.
        let date = |name: &'static str| match present(name) {
            false => Ok(None),
            true => numeric_date(answer, name).map_err(|_| name),
        };
        let aud = match answer.get("aud") {
            None | Some(Value::Null) => None,
            Some(value) => Some(string_or_strings(Claim::of(value)).map_err(|_| "aud")?),
        };
        Ok(Self {
            exp: date("exp")?,
            nbf: date("nbf")?,
            iss: string("iss")?,
            aud,
            scope: string("scope")?,
            sub: string("sub")?,
            client_id: string("client_id")?,
            jti: string("jti")?,
            token_type: string("token_type")?,
        })
    }
}

/// RFC 7662 `token_type` values of an access token: the OAuth token types a resource server
/// accepts (RFC 6750 `Bearer`) and the access-token names some providers use. A refresh
/// token, an ID token or anything else is refused.
fn is_access_token_type(token_type: &str) -> bool {
    // RFC 9449 §6.2: a DPoP-bound token's introspection says `DPoP`; its `cnf.jkt` is
    // checked against the call's proof like a JWT's.
    [
        "bearer",
        "dpop",
        "access_token",
        "urn:ietf:params:oauth:token-type:access_token",
    ]
    .iter()
    .any(|t| token_type.eq_ignore_ascii_case(t))
}
