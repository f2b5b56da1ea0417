//! [`TokenExchange`]: RFC 8693 token exchange, for calls made on a caller's behalf.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, FetchError, ProviderError, ProviderErrorKind, UrlError};
use crate::provider::form_encode;

use super::grant::{Endpoint, Grant, grant_options};
use super::{AccessToken, ClientAuthentication, FetchFuture, TokenSource};

/// Token exchange (RFC 8693): trades a caller's token for one to call a downstream service
/// on that caller's behalf, optionally naming the actor (the pattern for an agent acting for a
/// user: the new token's `act` claim records who acts).
///
/// ```
/// use oauth_grpc::client::{ClientAuthentication, TokenExchange};
/// use oauth_grpc::ClientSecret;
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
/// assert!(!format!("{source:?}").contains("eyJ"), "tokens stay out of Debug");
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

    /// Exchanges `subject_token` at the `token_endpoint` named by the issuer's discovery
    /// metadata (fetched on the first exchange).
    ///
    /// ```
    /// use oauth_grpc::client::{ClientAuthentication, TokenExchange};
    /// use oauth_grpc::ClientSecret;
    ///
    /// # let users_token = "eyJ…".to_owned();
    /// let source = TokenExchange::discover(
    ///     "https://idp.example.com/",
    ///     "assistant",
    ///     ClientAuthentication::SecretBasic(ClientSecret::from_file("/run/secrets/assistant")),
    ///     users_token,
    /// );
    /// # let _ = source;
    /// ```
    pub fn discover(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuthentication,
        subject_token: impl Into<String>,
    ) -> Self {
        Self {
            grant: Grant::new(Endpoint::Discover(issuer.into()), client_id.into(), auth),
            subject_token: Redacted(Arc::from(subject_token.into())),
            actor_token: None,
        }
    }

    /// The token of the party acting for the subject (an access token).
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
            token_type: Option<String>,
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
        let mut response = self.attempt(&http, &endpoint).await?;
        if let Some(dpop) = &grant.dpop
            && dpop.asks_for_nonce(&response)
        {
            // RFC 9449 §8: once more, with the nonce the provider gave.
            response = self.attempt(&http, &endpoint).await?;
        }
        if let Some(dpop) = &grant.dpop {
            dpop.nonce.learn(response.headers());
        }
        if response.status().is_success() {
            let issued: Issued = serde_json::from_slice(response.body()).map_err(|_| {
                FetchError::Invalid(ProviderError::new(ProviderErrorKind::Answer(
                    "not a token response",
                )))
            })?;
            let token = AccessToken::new(
                issued.access_token,
                issued.expires_in.map(Duration::from_secs),
            );
            grant.issued(token, issued.token_type.as_deref().unwrap_or("Bearer"))
        } else {
            let refused: Refused = serde_json::from_slice(response.body()).map_err(|_| {
                FetchError::Invalid(ProviderError::new(ProviderErrorKind::Status(
                    response.status().as_u16(),
                )))
            })?;
            Err(FetchError::Rejected(refused.error))
        }
    }

    /// One exchange request (with a fresh proof and client assertion each time).
    async fn attempt(
        &self,
        http: &crate::HttpClient,
        endpoint: &str,
    ) -> Result<http::Response<Vec<u8>>, FetchError> {
        let grant = &self.grant;
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
            let scope = crate::scope::join(grant.scopes.iter().map(String::as_str));
            form.push(("scope".into(), scope));
        }
        grant.targets(&mut form);
        let basic = grant.authenticate(endpoint, &mut form).await?;
        let mut request = http::Request::post(endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        if let Some((id, secret)) = &basic {
            use base64::Engine as _;
            let pair = format!("{}:{}", form_encode(id), form_encode(secret));
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            request = request.header(http::header::AUTHORIZATION, value);
        }
        if let Some(dpop) = &grant.dpop {
            let proof = dpop.header(endpoint).map_err(ConfigError::Keys)?;
            request = request.header("dpop", proof);
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = request.body(body.into_bytes()).map_err(|e| {
            ConfigError::from(UrlError::not_url("token endpoint", endpoint, Arc::new(e)))
        })?;
        http.send_raw(request)
            .await
            .map_err(FetchError::Unreachable)
    }
}

impl TokenSource for TokenExchange {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.request())
    }
}
