//! What every grant request shares — the endpoint (given, or found by discovery), the client,
//! its authentication, the scopes and targets asked for — and the builder options both grants
//! offer.

use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{ConfigError, FetchError};
use crate::provider::HttpClient;
use crate::provider::discovery;

use super::ClientAuthentication;
use super::dpop::TokenProof;

/// The token endpoint, given or found by discovery.
#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    Url(String),
    Discover(String),
}

/// What every grant request shares: where, who, how, and for what.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    endpoint: Endpoint,
    pub(super) client_id: String,
    pub(super) auth: ClientAuthentication,
    pub(super) scopes: Vec<String>,
    pub(super) resources: Vec<String>,
    pub(super) audience: Option<String>,
    pub(super) http: Option<HttpClient>,
    /// DPoP: each token request carries a proof of this key (RFC 9449 §5).
    pub(super) dpop: Option<TokenProof>,
    discovered: Arc<Mutex<Option<String>>>,
}

impl Grant {
    pub(super) fn new(endpoint: Endpoint, client_id: String, auth: ClientAuthentication) -> Self {
        Self {
            endpoint,
            client_id,
            auth,
            scopes: Vec::new(),
            resources: Vec::new(),
            audience: None,
            http: None,
            dpop: None,
            discovered: Arc::new(Mutex::new(None)),
        }
    }

    /// The token from a successful answer, checked against DPoP: with a key, the endpoint
    /// must have bound the token (`token_type` `DPoP`), or it is discarded (RFC 9449 §5).
    pub(super) fn issued(
        &self,
        token: super::AccessToken,
        token_type: &str,
    ) -> Result<super::AccessToken, FetchError> {
        let token = token.with_token_type(token_type);
        match &self.dpop {
            None => Ok(token),
            Some(_) if !token.is_dpop() => Err(FetchError::NotBound {
                token_type: token.token_type().to_owned(),
            }),
            Some(proof) => Ok(token.bound_to(proof.key.thumbprint())),
        }
    }

    pub(super) fn http(&self) -> Result<HttpClient, FetchError> {
        match &self.http {
            Some(http) => Ok(http.clone()),
            // The default client has no certificate to authenticate with.
            None if matches!(self.auth, ClientAuthentication::TlsClientAuth) => {
                Err(ConfigError::TlsClientAuthWithoutCertificate.into())
            }
            None => Ok(HttpClient::new()?),
        }
    }

    /// The token endpoint URL, discovering it once if needed.
    pub(super) async fn token_endpoint(&self, http: &HttpClient) -> Result<String, FetchError> {
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
        let endpoint = discovery::token_endpoint(http, issuer)
            .await
            .map_err(|error| {
                if error.is_unreachable() {
                    FetchError::Unreachable(error)
                } else {
                    FetchError::Invalid(error)
                }
            })?;
        *self
            .discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// The client-authentication parameters for a form request; Basic credentials, if any.
    pub(super) async fn authenticate(
        &self,
        endpoint: &str,
        form: &mut Vec<(String, String)>,
    ) -> Result<Option<(String, String)>, FetchError> {
        match &self.auth {
            ClientAuthentication::SecretBasic(secret) => {
                let secret = secret.reveal_async().await.map_err(ConfigError::from)?;
                Ok(Some((self.client_id.clone(), secret.to_string())))
            }
            ClientAuthentication::SecretPost(secret) => {
                let secret = secret.reveal_async().await.map_err(ConfigError::from)?;
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
            ClientAuthentication::TlsClientAuth => {
                form.push(("client_id".into(), self.client_id.clone()));
                Ok(None)
            }
        }
    }

    pub(super) fn targets(&self, form: &mut Vec<(String, String)>) {
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
        /// # use examples::OrderBook;
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::ClientSecret;
        /// use oauth_grpc::PolicySet;
        /// let policies = PolicySet::new().service::<OrderBook>();
        /// let rule = policies.rule_for("/orders.v1.Orders/CreateOrder").expect("a rule");
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// let source = source.least_privilege(rule);
        /// assert_eq!(source.scopes(), ["orders:write"]);
        /// ```
        #[must_use]
        pub fn least_privilege(mut self, rule: $crate::Rule) -> Self {
            let needed: Vec<String> = match rule {
                $crate::Rule::AllOf(scopes) => {
                    scopes.iter().map(|s| s.as_str().to_owned()).collect()
                }
                $crate::Rule::AnyOf(scopes) => scopes
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
        /// # use oauth_grpc::ClientSecret;
        /// # let source = ClientCredentials::new("https://idp/token", "c", ClientAuthentication::SecretBasic(ClientSecret::new("s")));
        /// assert!(source.scopes().is_empty());
        /// ```
        pub fn scopes(&self) -> &[String] {
            &self.grant.scopes
        }

        /// An RFC 8707 `resource` the token is for. May be called several times.
        #[must_use]
        pub fn resource(mut self, resource: impl Into<String>) -> Self {
            self.grant.resources.push(resource.into());
            self
        }

        /// The `audience` parameter, as Auth0, Okta and RFC 8693 providers read it.
        #[must_use]
        pub fn audience(mut self, audience: impl Into<String>) -> Self {
            self.grant.audience = Some(audience.into());
            self
        }

        /// The HTTP client for the token endpoint.
        #[must_use]
        pub fn http_client(mut self, http: $crate::HttpClient) -> Self {
            self.grant.http = Some(http);
            self
        }

        /// Asks for DPoP-bound tokens (RFC 9449 §5): every token request carries a `dpop`
        /// header with a fresh proof of `key` (`htm` `POST`, `htu` the token endpoint), so
        /// the provider binds the token to the key (`cnf.jkt`, `token_type: DPoP`). A token
        /// of another type is discarded: fetching fails with
        /// [`FetchError::NotBound`](crate::client::FetchError::NotBound). A provider asking
        /// for a nonce (`use_dpop_nonce`) is asked again once with it, and its latest nonce
        /// goes into the next requests. Give the same key to
        /// [`BearerLayer::dpop`](crate::client::BearerLayer::dpop), which proves it on each
        /// call.
        ///
        /// ```
        /// # use oauth_grpc::client::*;
        /// # use oauth_grpc::ClientSecret;
        /// let key = DpopKey::generate()?;
        /// let source = ClientCredentials::new(
        ///     "https://idp.example.com/oauth2/token",
        ///     "billing-service",
        ///     ClientAuthentication::SecretBasic(ClientSecret::new("s3cr3t")),
        /// )
        /// .dpop(key.clone());
        /// assert!(format!("{source:?}").contains(key.thumbprint()));
        /// # Ok::<(), oauth_grpc::KeyError>(())
        /// ```
        #[must_use]
        pub fn dpop(mut self, key: $crate::client::DpopKey) -> Self {
            self.grant.dpop = Some(super::dpop::TokenProof::new(key));
            self
        }
    };
}

pub(super) use grant_options;
