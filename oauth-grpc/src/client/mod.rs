//! The outgoing side: a tower layer that puts `authorization: Bearer <token>` on every call of
//! a tonic client, with tokens fetched, cached and refreshed by a [`TokenSource`].
//!
//! tonic's interceptors are synchronous and cannot fetch a token, so this is a layer around
//! the channel:
//!
//! ```no_run
//! use examples::pb::orders_client::OrdersClient;
//! use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials};
//! use oauth_grpc::introspect::ClientSecret;
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = ClientCredentials::new(
//!     "https://idp.example.com/oauth2/token",
//!     "billing-service",
//!     ClientAuthentication::SecretBasic(ClientSecret::from_file("/run/secrets/billing")),
//! )
//! .scope("orders:read")
//! .audience("orders-api");
//!
//! let channel = tonic::transport::Endpoint::from_static("https://orders.internal:50051")
//!     .connect()
//!     .await?;
//! let channel = ServiceBuilder::new().layer(BearerLayer::new(source)).service(channel);
//! let mut orders = OrdersClient::new(channel);
//! # let _ = &mut orders;
//! # Ok(())
//! # }
//! ```
//!
//! The token is reused until shortly before it expires (the later of 30 seconds and 10% of
//! its lifetime), then refreshed in the background by one fetch, however many calls are in
//! flight. When a fetch fails, the current token is used while it is valid, with retries
//! backing off; when no valid token can be had, the call fails before anything is sent:
//! `UNAUTHENTICATED` if the endpoint rejected the credentials, `UNAVAILABLE` if it could not
//! be reached.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oauth2::{ClientId, Scope as OAuthScope, TokenResponse, TokenUrl};
use serde_json::json;
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

use crate::http::HttpClient;
use crate::keys::Algorithm;
use crate::policy::Rule;
use crate::secret::ClientSecret;

/// An access token and when it expires. `Debug` never shows the token.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::client::AccessToken;
///
/// let token = AccessToken::new("eyJ…", Some(Duration::from_secs(300)));
/// assert_eq!(format!("{token:?}").contains("eyJ"), false);
/// ```
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    fetched_at: Instant,
    lifetime: Option<Duration>,
}

impl AccessToken {
    /// A token valid for `lifetime` from now (`None`: no known expiry).
    ///
    /// ```
    /// let token = oauth_grpc::client::AccessToken::new("t", None);
    /// assert_eq!(token.secret(), "t");
    /// ```
    pub fn new(value: impl Into<String>, lifetime: Option<Duration>) -> Self {
        Self {
            value: Arc::from(value.into()),
            fetched_at: Instant::now(),
            lifetime,
        }
    }

    /// The token itself, to put on a request. Keep it out of logs.
    ///
    /// ```
    /// # let token = oauth_grpc::client::AccessToken::new("t", None);
    /// assert_eq!(token.secret(), "t");
    /// ```
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// Whether the token is still valid at `now`. A lifetime too large to add to an `Instant`
    /// (an endpoint's `expires_in` is not to be trusted with arithmetic) counts as no expiry.
    fn valid_at(&self, now: Instant) -> bool {
        self.lifetime
            .and_then(|lifetime| self.fetched_at.checked_add(lifetime))
            .is_none_or(|expiry| now < expiry)
    }

    /// Whether the refresh margin has been reached: the later of `min_margin` and 10% of the
    /// lifetime before expiry.
    fn refresh_due(&self, now: Instant, min_margin: Duration) -> bool {
        match self.lifetime {
            None => false,
            Some(lifetime) => {
                let margin = min_margin.max(lifetime / 10).min(lifetime);
                self.fetched_at
                    .checked_add(lifetime - margin)
                    .is_some_and(|refresh_at| now >= refresh_at)
            }
        }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Why no token could be had.
///
/// ```
/// use oauth_grpc::client::FetchError;
/// let status = tonic::Status::from(FetchError::Unreachable("connection refused".into()));
/// assert_eq!(status.code(), tonic::Code::Unavailable);
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The endpoint refused: the OAuth error code (`invalid_client`, `invalid_scope`, …).
    #[error("the token endpoint rejected the request ({0})")]
    Rejected(String),
    /// The endpoint could not be reached or is failing.
    #[error("the token endpoint cannot be reached ({0})")]
    Unreachable(String),
    /// The answer is not a token response.
    #[error("the token endpoint's answer is not a token response ({0})")]
    Invalid(String),
    /// The client's own configuration is wrong (a secret file missing, a bad key).
    #[error("the token client is misconfigured ({0})")]
    Config(String),
}

impl From<FetchError> for Status {
    fn from(error: FetchError) -> Self {
        match &error {
            FetchError::Unreachable(_) => Status::unavailable(error.to_string()),
            _ => Status::unauthenticated(error.to_string()),
        }
    }
}

/// A future of a fetched token.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, FetchError>> + Send + 'a>>;

/// Where tokens come from. [`BearerLayer`] caches what it returns; an implementation fetches
/// a fresh token each time it is asked.
///
/// ```
/// use oauth_grpc::client::{AccessToken, FetchFuture, TokenSource};
///
/// #[derive(Debug)]
/// struct FromEnvironmentAtStartup(String);
///
/// impl TokenSource for FromEnvironmentAtStartup {
///     fn fetch(&self) -> FetchFuture<'_> {
///         let token = AccessToken::new(self.0.clone(), None);
///         Box::pin(async move { Ok(token) })
///     }
/// }
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch(&self) -> FetchFuture<'_>;
}

/// A fixed token, for tests and command-line tools.
///
/// ```
/// use oauth_grpc::client::{BearerLayer, StaticToken};
/// let layer = BearerLayer::new(StaticToken::new("eyJhbGciOi…"));
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct StaticToken(Arc<str>);

impl StaticToken {
    /// The token to send.
    ///
    /// ```
    /// let token = oauth_grpc::client::StaticToken::new("t");
    /// # let _ = token;
    /// ```
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn fetch(&self) -> FetchFuture<'_> {
        let token = AccessToken::new(self.0.to_string(), None);
        Box::pin(async move { Ok(token) })
    }
}

/// A private key for `private_key_jwt` client authentication (RFC 7523), from memory or from
/// a file read at each use. `Debug` never shows it.
///
/// ```
/// use oauth_grpc::client::PrivateKey;
/// use oauth_grpc::keys::Algorithm;
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
    ///
    /// ```
    /// # use oauth_grpc::{client::PrivateKey, keys::Algorithm};
    /// let key = PrivateKey::from_pem(b"-----BEGIN PRIVATE KEY-----...".to_vec(), Algorithm::RS256);
    /// # let _ = key;
    /// ```
    pub fn from_pem(pem: impl Into<Vec<u8>>, alg: Algorithm) -> Self {
        Self {
            pem: PemSource::Value(Arc::from(pem.into())),
            alg,
            kid: None,
        }
    }

    /// A PEM private key read from `path` at each use (so a rotated key is picked up).
    ///
    /// ```
    /// # use oauth_grpc::{client::PrivateKey, keys::Algorithm};
    /// let key = PrivateKey::from_file("/run/secrets/key.pem", Algorithm::EdDSA);
    /// # let _ = key;
    /// ```
    pub fn from_file(path: impl Into<PathBuf>, alg: Algorithm) -> Self {
        Self {
            pem: PemSource::File(path.into()),
            alg,
            kid: None,
        }
    }

    /// The `kid` under which the provider knows the public key.
    ///
    /// ```
    /// # use oauth_grpc::{client::PrivateKey, keys::Algorithm};
    /// let key = PrivateKey::from_file("/k.pem", Algorithm::ES256).kid("k1");
    /// # let _ = key;
    /// ```
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, FetchError> {
        let pem: Vec<u8> = match &self.pem {
            PemSource::Value(pem) => pem.to_vec(),
            PemSource::File(path) => std::fs::read(path).map_err(|e| {
                FetchError::Config(format!(
                    "cannot read the private key file {}: {e}",
                    path.display()
                ))
            })?,
        };
        let key = match self.alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(&pem),
            _ => {
                return Err(FetchError::Config(
                    "private_key_jwt needs an asymmetric algorithm".into(),
                ));
            }
        };
        key.map_err(|_| {
            FetchError::Config(format!(
                "the private key is not a PEM key for {:?}",
                self.alg
            ))
        })
    }

    /// The RFC 7523 client assertion for `client_id` at `audience` (the token endpoint).
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, FetchError> {
        let key = self.encoding_key()?;
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 60,
            "jti": unique_id(),
        });
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|_| FetchError::Config("cannot sign the client assertion".into()))
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

/// A unique id for assertion `jti`s: time, process and a counter, hashed.
fn unique_id() -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
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
}

/// The token endpoint, given or found by discovery.
#[derive(Debug, Clone)]
enum Endpoint {
    Url(String),
    Discover(String),
}

/// What every grant request shares: where, who, how, and for what.
#[derive(Debug, Clone)]
struct Grant {
    endpoint: Endpoint,
    client_id: String,
    auth: ClientAuthentication,
    scopes: Vec<String>,
    resources: Vec<String>,
    audience: Option<String>,
    http: Option<HttpClient>,
    discovered: Arc<Mutex<Option<String>>>,
}

impl Grant {
    fn new(endpoint: Endpoint, client_id: String, auth: ClientAuthentication) -> Self {
        Self {
            endpoint,
            client_id,
            auth,
            scopes: Vec::new(),
            resources: Vec::new(),
            audience: None,
            http: None,
            discovered: Arc::new(Mutex::new(None)),
        }
    }

    fn http(&self) -> Result<HttpClient, FetchError> {
        match &self.http {
            Some(http) => Ok(http.clone()),
            None => HttpClient::new().map_err(|e| FetchError::Config(e.to_string())),
        }
    }

    /// The token endpoint URL, discovering it once if needed.
    async fn token_endpoint(&self, http: &HttpClient) -> Result<String, FetchError> {
        let issuer = match &self.endpoint {
            Endpoint::Url(url) => return Ok(url.clone()),
            Endpoint::Discover(issuer) => issuer,
        };
        if let Some(url) = self
            .discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(url);
        }
        #[derive(serde::Deserialize)]
        struct Metadata {
            issuer: String,
            token_endpoint: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let url = http
            .check_url("discovery URL", &url)
            .map_err(FetchError::Config)?;
        let (body, _) = http.get(url).await.map_err(FetchError::Unreachable)?;
        let metadata: Metadata = serde_json::from_slice(&body).map_err(|_| {
            FetchError::Invalid("discovery metadata without `token_endpoint`".into())
        })?;
        if metadata.issuer != *issuer {
            return Err(FetchError::Config(format!(
                "discovery names issuer {:?}, not {issuer:?}",
                metadata.issuer
            )));
        }
        *self
            .discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(metadata.token_endpoint.clone());
        Ok(metadata.token_endpoint)
    }

    /// The client-authentication parameters for a form request; Basic credentials, if any.
    fn authenticate(
        &self,
        endpoint: &str,
        form: &mut Vec<(String, String)>,
    ) -> Result<Option<(String, String)>, FetchError> {
        match &self.auth {
            ClientAuthentication::SecretBasic(secret) => {
                let secret = secret.reveal().map_err(FetchError::Config)?;
                Ok(Some((self.client_id.clone(), secret.to_string())))
            }
            ClientAuthentication::SecretPost(secret) => {
                let secret = secret.reveal().map_err(FetchError::Config)?;
                form.push(("client_id".into(), self.client_id.clone()));
                form.push(("client_secret".into(), secret.to_string()));
                Ok(None)
            }
            ClientAuthentication::PrivateKeyJwt(key) => {
                form.push(("client_id".into(), self.client_id.clone()));
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion".into(),
                    key.assertion(&self.client_id, endpoint)?,
                ));
                Ok(None)
            }
        }
    }

    fn targets(&self, form: &mut Vec<(String, String)>) {
        for resource in &self.resources {
            form.push(("resource".into(), resource.clone()));
        }
        if let Some(audience) = &self.audience {
            form.push(("audience".into(), audience.clone()));
        }
    }
}

macro_rules! grant_options {
    () => {
        /// Asks for `scope`. May be called several times.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::introspect::ClientSecret;
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// let source = source.scope("orders:read");
        /// # let _ = source;
        /// ```
        #[must_use]
        pub fn scope(mut self, scope: impl Into<String>) -> Self {
            self.grant.scopes.push(scope.into());
            self
        }

        /// Asks for exactly the scopes `rule` needs — all of an all-of rule, the first of an
        /// any-of rule, none for `authenticated` — taken from the same compiled table the
        /// server enforces.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::introspect::ClientSecret;
        /// use oauth_grpc::PolicySet;
        /// let policies = PolicySet::new().service::<examples::OrderBook>();
        /// let rule = policies.rule_for("/orders.v1.Orders/CreateOrder").expect("a rule");
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// let source = source.least_privilege(rule);
        /// assert_eq!(source.scopes(), ["orders:write"]);
        /// ```
        #[must_use]
        pub fn least_privilege(mut self, rule: Rule) -> Self {
            let needed: Vec<String> = match rule {
                Rule::AllOf(scopes) => scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                Rule::AnyOf(scopes) => scopes
                    .iter()
                    .take(1)
                    .map(|s| s.as_str().to_owned())
                    .collect(),
                _ => Vec::new(),
            };
            for scope in needed {
                if !self.grant.scopes.contains(&scope) {
                    self.grant.scopes.push(scope);
                }
            }
            self
        }

        /// The scopes asked for.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::introspect::ClientSecret;
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// assert!(source.scopes().is_empty());
        /// ```
        pub fn scopes(&self) -> &[String] {
            &self.grant.scopes
        }

        /// An RFC 8707 `resource` the token is for. May be called several times.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::introspect::ClientSecret;
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// let source = source.resource("https://orders.example.com/");
        /// # let _ = source;
        /// ```
        #[must_use]
        pub fn resource(mut self, resource: impl Into<String>) -> Self {
            self.grant.resources.push(resource.into());
            self
        }

        /// The `audience` parameter, as Auth0, Okta and RFC 8693 providers read it.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::introspect::ClientSecret;
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// let source = source.audience("orders-api");
        /// # let _ = source;
        /// ```
        #[must_use]
        pub fn audience(mut self, audience: impl Into<String>) -> Self {
            self.grant.audience = Some(audience.into());
            self
        }

        /// The HTTP client for the token endpoint.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::introspect::ClientSecret;
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// let source = source.http_client(oauth_grpc::http::HttpClient::new()?);
        /// # let _ = source;
        /// # Ok::<(), oauth_grpc::ConfigError>(())
        /// ```
        #[must_use]
        pub fn http_client(mut self, http: HttpClient) -> Self {
            self.grant.http = Some(http);
            self
        }
    };
}

/// The client credentials grant (RFC 6749 §4.4): the service's own token.
///
/// ```
/// use oauth_grpc::client::{ClientAuthentication, ClientCredentials};
/// use oauth_grpc::introspect::ClientSecret;
///
/// let source = ClientCredentials::discover(
///     "https://idp.example.com/",
///     "billing-service",
///     ClientAuthentication::SecretPost(ClientSecret::new("s3cr3t")),
/// )
/// .scope("orders:read")
/// .resource("https://orders.example.com/");
/// assert!(!format!("{source:?}").contains("s3cr3t"));
/// ```
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    grant: Grant,
}

impl ClientCredentials {
    /// Tokens from `token_endpoint` for `client_id`.
    ///
    /// ```
    /// # use oauth_grpc::client::*;
    /// # use oauth_grpc::introspect::ClientSecret;
    /// let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
    /// # let _ = source;
    /// ```
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuthentication,
    ) -> Self {
        Self {
            grant: Grant::new(Endpoint::Url(token_endpoint.into()), client_id.into(), auth),
        }
    }

    /// Tokens from the `token_endpoint` named by the issuer's discovery metadata.
    ///
    /// ```
    /// # use oauth_grpc::client::*;
    /// # use oauth_grpc::introspect::ClientSecret;
    /// let source = ClientCredentials::discover("https://idp/", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
    /// # let _ = source;
    /// ```
    pub fn discover(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuthentication,
    ) -> Self {
        Self {
            grant: Grant::new(Endpoint::Discover(issuer.into()), client_id.into(), auth),
        }
    }

    grant_options!();

    async fn request(&self) -> Result<AccessToken, FetchError> {
        let grant = &self.grant;
        let http = grant.http()?;
        let endpoint = grant.token_endpoint(&http).await?;
        let token_url = TokenUrl::new(endpoint.clone()).map_err(|_| {
            FetchError::Config(format!("the token endpoint {endpoint:?} is not a URL"))
        })?;
        let mut client = oauth2::basic::BasicClient::new(ClientId::new(grant.client_id.clone()))
            .set_token_uri(token_url);
        let mut extra: Vec<(String, String)> = Vec::new();
        match &grant.auth {
            ClientAuthentication::SecretBasic(secret) => {
                let secret = secret.reveal().map_err(FetchError::Config)?;
                client = client
                    .set_client_secret(oauth2::ClientSecret::new(secret.to_string()))
                    .set_auth_type(oauth2::AuthType::BasicAuth);
            }
            ClientAuthentication::SecretPost(secret) => {
                let secret = secret.reveal().map_err(FetchError::Config)?;
                client = client
                    .set_client_secret(oauth2::ClientSecret::new(secret.to_string()))
                    .set_auth_type(oauth2::AuthType::RequestBody);
            }
            ClientAuthentication::PrivateKeyJwt(key) => {
                client = client.set_auth_type(oauth2::AuthType::RequestBody);
                extra.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                extra.push((
                    "client_assertion".into(),
                    key.assertion(&grant.client_id, &endpoint)?,
                ));
            }
        }
        grant.targets(&mut extra);
        let mut request = client
            .exchange_client_credentials()
            .add_scopes(grant.scopes.iter().cloned().map(OAuthScope::new));
        for (name, value) in extra {
            request = request.add_extra_param(name, value);
        }
        let transport = |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { http.send_raw(request).await }
        };
        match request.request_async(&transport).await {
            Ok(response) => Ok(AccessToken::new(
                response.access_token().secret().clone(),
                response.expires_in(),
            )),
            Err(oauth2::RequestTokenError::ServerResponse(error)) => {
                Err(FetchError::Rejected(error.error().as_ref().to_owned()))
            }
            Err(oauth2::RequestTokenError::Request(error)) => {
                Err(FetchError::Unreachable(error.to_string()))
            }
            Err(oauth2::RequestTokenError::Parse(..)) => {
                Err(FetchError::Invalid("not a token response".into()))
            }
            Err(oauth2::RequestTokenError::Other(_)) => {
                Err(FetchError::Invalid("unexpected answer".into()))
            }
        }
    }
}

impl TokenSource for ClientCredentials {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.request())
    }
}

/// Token exchange (RFC 8693): trades a caller's token for one to call a downstream service
/// on that caller's behalf, optionally naming the actor (the pattern for an agent acting for a
/// user: the new token's `act` claim records who acts).
///
/// ```
/// use oauth_grpc::client::{ClientAuthentication, TokenExchange};
/// use oauth_grpc::introspect::ClientSecret;
///
/// # let callers_token = "eyJ…".to_owned();
/// let source = TokenExchange::new(
///     "https://idp.example.com/oauth2/token",
///     "orders-service",
///     ClientAuthentication::SecretBasic(ClientSecret::from_file("/run/secrets/orders")),
///     callers_token,
/// )
/// .actor_token("eyJ…service-token")
/// .scope("inventory:read")
/// .audience("inventory-api");
/// # let _ = source;
/// ```
#[derive(Debug, Clone)]
pub struct TokenExchange {
    grant: Grant,
    subject_token: Redacted,
    actor_token: Option<Redacted>,
}

#[derive(Clone)]
struct Redacted(Arc<str>);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

impl TokenExchange {
    /// Exchanges `subject_token` (an access token) at `token_endpoint`.
    ///
    /// ```
    /// # use oauth_grpc::client::*;
    /// # use oauth_grpc::introspect::ClientSecret;
    /// let source = TokenExchange::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")), "subject");
    /// # let _ = source;
    /// ```
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuthentication,
        subject_token: impl Into<String>,
    ) -> Self {
        Self {
            grant: Grant::new(Endpoint::Url(token_endpoint.into()), client_id.into(), auth),
            subject_token: Redacted(Arc::from(subject_token.into())),
            actor_token: None,
        }
    }

    /// The token of the party acting for the subject (an access token).
    ///
    /// ```
    /// # use oauth_grpc::client::*;
    /// # use oauth_grpc::introspect::ClientSecret;
    /// # let source = TokenExchange::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")), "subject");
    /// let source = source.actor_token("actor");
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn actor_token(mut self, token: impl Into<String>) -> Self {
        self.actor_token = Some(Redacted(Arc::from(token.into())));
        self
    }

    grant_options!();

    async fn request(&self) -> Result<AccessToken, FetchError> {
        #[derive(serde::Deserialize)]
        struct Issued {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        #[derive(serde::Deserialize)]
        struct Refused {
            error: String,
        }
        let grant = &self.grant;
        let http = grant.http()?;
        let endpoint = grant.token_endpoint(&http).await?;
        let mut form: Vec<(String, String)> = vec![
            (
                "grant_type".into(),
                "urn:ietf:params:oauth:grant-type:token-exchange".into(),
            ),
            ("subject_token".into(), self.subject_token.0.to_string()),
            ("subject_token_type".into(), ACCESS_TOKEN_TYPE.into()),
            ("requested_token_type".into(), ACCESS_TOKEN_TYPE.into()),
        ];
        if let Some(actor) = &self.actor_token {
            form.push(("actor_token".into(), actor.0.to_string()));
            form.push(("actor_token_type".into(), ACCESS_TOKEN_TYPE.into()));
        }
        if !grant.scopes.is_empty() {
            form.push(("scope".into(), grant.scopes.join(" ")));
        }
        grant.targets(&mut form);
        let basic = grant.authenticate(&endpoint, &mut form)?;
        let mut request = http::Request::post(endpoint.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        if let Some((id, secret)) = &basic {
            use base64::Engine as _;
            let pair = format!(
                "{}:{}",
                crate::http::form_encode(id),
                crate::http::form_encode(secret)
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    crate::http::form_encode(k),
                    crate::http::form_encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let request = request.body(body.into_bytes()).map_err(|_| {
            FetchError::Config(format!("the token endpoint {endpoint:?} is not a URL"))
        })?;
        let response = http
            .send_raw(request)
            .await
            .map_err(|e| FetchError::Unreachable(e.0))?;
        if response.status().is_success() {
            let issued: Issued = serde_json::from_slice(response.body())
                .map_err(|_| FetchError::Invalid("not a token response".into()))?;
            Ok(AccessToken::new(
                issued.access_token,
                issued.expires_in.map(Duration::from_secs),
            ))
        } else {
            let refused: Refused = serde_json::from_slice(response.body()).map_err(|_| {
                FetchError::Invalid(format!(
                    "HTTP {} without an OAuth error",
                    response.status().as_u16()
                ))
            })?;
            Err(FetchError::Rejected(refused.error))
        }
    }
}

impl TokenSource for TokenExchange {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.request())
    }
}

/// The cache of one token source: reuse, refresh in one flight, back off on failure.
struct Tokens {
    source: Box<dyn TokenSource>,
    held: Mutex<Held>,
    fetch: Arc<tokio::sync::Mutex<()>>,
    min_margin: Duration,
}

#[derive(Default)]
struct Held {
    token: Option<AccessToken>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<FetchError>,
}

impl Tokens {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A valid token, fetching one if there is none; refreshes early in the background.
    async fn get(self: &Arc<Self>) -> Result<Arc<str>, Status> {
        let now = Instant::now();
        {
            let held = self.held();
            if let Some(token) = held.token.as_ref().filter(|t| t.valid_at(now)) {
                let backing_off = held.retry_at.is_some_and(|at| now < at);
                if token.refresh_due(now, self.min_margin) && !backing_off {
                    self.refresh_in_background();
                }
                return Ok(token.value.clone());
            }
        }
        let _flight = self.fetch.lock().await;
        let now = Instant::now();
        {
            let held = self.held();
            if let Some(token) = held.token.as_ref().filter(|t| t.valid_at(now)) {
                return Ok(token.value.clone());
            }
            if let (Some(at), Some(error)) = (held.retry_at, &held.last_error)
                && now < at
            {
                return Err(Status::from(error.clone()));
            }
        }
        self.fetch_now().await
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(flight) = self.fetch.clone().try_lock_owned() else {
            return; // a fetch is already running
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            let _flight = flight;
            let _ = this.fetch_now().await;
        });
    }

    /// One fetch; the caller holds the flight lock.
    async fn fetch_now(&self) -> Result<Arc<str>, Status> {
        match self.source.fetch().await {
            Ok(token) => {
                let value = token.value.clone();
                let mut held = self.held();
                held.token = Some(token);
                held.failures = 0;
                held.retry_at = None;
                held.last_error = None;
                Ok(value)
            }
            Err(error) => {
                tracing::warn!(target: "oauth_grpc::client", %error, "token fetch failed");
                let mut held = self.held();
                held.failures = held.failures.saturating_add(1);
                let backoff = Duration::from_millis(250)
                    .saturating_mul(1 << held.failures.min(7))
                    .min(Duration::from_secs(30));
                held.retry_at = Some(Instant::now() + backoff);
                held.last_error = Some(error.clone());
                match held.token.as_ref().filter(|t| t.valid_at(Instant::now())) {
                    Some(token) => Ok(token.value.clone()),
                    None => Err(Status::from(error)),
                }
            }
        }
    }
}

/// Adds `authorization: Bearer <token>` to every outgoing call. See the [module docs](self).
#[derive(Clone)]
pub struct BearerLayer {
    tokens: Arc<Tokens>,
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("min_margin", &self.tokens.min_margin)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// A layer attaching tokens from `source`.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::new(StaticToken::new("t"));
    /// # let _ = layer;
    /// ```
    pub fn new(source: impl TokenSource) -> Self {
        Self::with_margin(source, Duration::from_secs(30))
    }

    /// Like [`new`](Self::new), refreshing at the later of `min_margin` and 10% of the
    /// lifetime before expiry (instead of 30 seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::with_margin(StaticToken::new("t"), Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn with_margin(source: impl TokenSource, min_margin: Duration) -> Self {
        Self {
            tokens: Arc::new(Tokens {
                source: Box::new(source),
                held: Mutex::new(Held::default()),
                fetch: Arc::new(tokio::sync::Mutex::new(())),
                min_margin,
            }),
        }
    }

    /// A valid token now (fetching one if needed), e.g. to pass on as an `actor_token`.
    ///
    /// # Errors
    ///
    /// The status a call would fail with.
    ///
    /// ```
    /// # async fn run() -> Result<(), tonic::Status> {
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// let layer = BearerLayer::new(StaticToken::new("t"));
    /// assert_eq!(&*layer.token().await?, "t");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn token(&self) -> Result<Arc<str>, Status> {
        self.tokens.get().await
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    tokens: Arc<Tokens>,
}

impl<S: fmt::Debug> fmt::Debug for Bearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Bearer<S> {
    /// The wrapped service.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// use tower_layer::Layer;
    /// let service = BearerLayer::new(StaticToken::new("t")).layer(7u8);
    /// assert_eq!(*service.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// use tower_layer::Layer;
    /// let mut service = BearerLayer::new(StaticToken::new("t")).layer(7u8);
    /// *service.get_mut() += 1;
    /// assert_eq!(service.into_inner(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// use oauth_grpc::client::{BearerLayer, StaticToken};
    /// use tower_layer::Layer;
    /// let service = BearerLayer::new(StaticToken::new("t")).layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Bearer<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The ready service goes with the call; a clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let token = match tokens.get().await {
                Ok(token) => token,
                // Nothing is sent without a valid token.
                Err(status) => return Ok(status.into_http()),
            };
            match http::HeaderValue::try_from(format!("Bearer {token}")) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request
                        .headers_mut()
                        .insert(http::header::AUTHORIZATION, value);
                }
                Err(_) => {
                    return Ok(Status::unauthenticated(
                        "the token source returned a token that cannot be sent in a header",
                    )
                    .into_http());
                }
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_from_the_endpoint_never_overflow() {
        let now = Instant::now();
        let endless = AccessToken::new("t", Some(Duration::from_secs(u64::MAX)));
        assert!(endless.valid_at(now));
        assert!(!endless.refresh_due(now, Duration::from_secs(30)));
        let short = AccessToken::new("t", Some(Duration::from_secs(100)));
        assert!(short.valid_at(now));
        assert!(!short.refresh_due(now, Duration::from_secs(30)));
        assert!(short.refresh_due(now + Duration::from_secs(71), Duration::from_secs(30)));
        assert!(!short.valid_at(now + Duration::from_secs(101)));
        let none = AccessToken::new("t", None);
        assert!(none.valid_at(now + Duration::from_secs(1_000_000)));
    }
}
