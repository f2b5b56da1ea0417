//! [`ClientCredentials`]: the client credentials grant (RFC 6749 §4.4), through the `oauth2`
//! crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use oauth2::{ClientId, Scope as OAuthScope, TokenResponse, TokenUrl};

use crate::HttpClient;
use crate::error::{ConfigError, FetchError, ProviderError, ProviderErrorKind, UrlError};

use super::grant::{Endpoint, Grant, grant_options};
use super::{AccessToken, ClientAuthentication, FetchFuture, TokenSource};

/// The client credentials grant (RFC 6749 §4.4): the service's own token.
///
/// ```
/// use oauth_grpc::client::{ClientAuthentication, ClientCredentials};
/// use oauth_grpc::ClientSecret;
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
        let token_url = TokenUrl::new(endpoint.clone()).map_err(|e| {
            ConfigError::from(UrlError::not_url("token endpoint", &endpoint, Arc::new(e)))
        })?;
        let (mut outcome, nonce_asked) = self.attempt(&http, &endpoint, &token_url).await?;
        if nonce_asked {
            // RFC 9449 §8: once more, with the nonce the provider gave (and a new assertion:
            // providers refuse a replayed one).
            outcome = self.attempt(&http, &endpoint, &token_url).await?.0;
        }
        match outcome {
            Ok(response) => grant.issued(
                AccessToken::new(
                    response.access_token().secret().clone(),
                    response.expires_in(),
                ),
                response.token_type().as_ref(),
            ),
            Err(oauth2::RequestTokenError::ServerResponse(error)) => {
                Err(FetchError::Rejected(error.error().as_ref().to_owned()))
            }
            Err(oauth2::RequestTokenError::Request(error)) => Err(FetchError::Unreachable(error)),
            Err(oauth2::RequestTokenError::Parse(..)) => Err(FetchError::Invalid(
                ProviderError::new(ProviderErrorKind::Answer("not a token response")),
            )),
            Err(oauth2::RequestTokenError::Other(_)) => Err(FetchError::Invalid(
                ProviderError::new(ProviderErrorKind::Answer("unexpected answer")),
            )),
        }
    }

    /// One token request; and whether the provider asked for a DPoP nonce, now kept.
    async fn attempt(
        &self,
        http: &HttpClient,
        endpoint: &str,
        token_url: &TokenUrl,
    ) -> Result<(Answer, bool), FetchError> {
        let grant = &self.grant;
        let mut client = oauth2::basic::BasicClient::new(ClientId::new(grant.client_id.clone()))
            .set_token_uri(token_url.clone());
        let mut extra: Vec<(String, String)> = Vec::new();
        match &grant.auth {
            ClientAuthentication::SecretBasic(secret) => {
                let secret = secret.reveal_async().await.map_err(ConfigError::from)?;
                client = client
                    .set_client_secret(oauth2::ClientSecret::new(secret.to_string()))
                    .set_auth_type(oauth2::AuthType::BasicAuth);
            }
            ClientAuthentication::SecretPost(secret) => {
                let secret = secret.reveal_async().await.map_err(ConfigError::from)?;
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
                    key.assertion(&grant.client_id, endpoint)?,
                ));
            }
            ClientAuthentication::TlsClientAuth => {
                // `client_id` in the form, and the certificate on the connection.
                client = client.set_auth_type(oauth2::AuthType::RequestBody);
            }
        }
        grant.targets(&mut extra);
        let mut request = client
            .exchange_client_credentials()
            .add_scopes(grant.scopes.iter().cloned().map(OAuthScope::new));
        for (name, value) in extra {
            request = request.add_extra_param(name, value);
        }
        // `oauth2` has no per-request headers: the proof goes in on the way out.
        let proof = match &grant.dpop {
            Some(dpop) => Some(dpop.header(endpoint).map_err(ConfigError::Keys)?),
            None => None,
        };
        let nonce_asked = Arc::new(AtomicBool::new(false));
        let transport = |mut request: oauth2::HttpRequest| {
            let http = http.clone();
            let proof = proof.clone();
            let (dpop, nonce_asked) = (grant.dpop.clone(), nonce_asked.clone());
            async move {
                if let Some(proof) = proof {
                    request.headers_mut().insert(DPOP, proof);
                }
                let response = http.send_raw(request).await?;
                if let Some(dpop) = &dpop {
                    if dpop.asks_for_nonce(&response) {
                        nonce_asked.store(true, Ordering::Relaxed);
                    } else {
                        // A new nonce may come with any answer (RFC 9449 §8.2).
                        dpop.nonce.learn(response.headers());
                    }
                }
                Ok::<_, ProviderError>(response)
            }
        };
        let outcome = request.request_async(&transport).await;
        Ok((outcome, nonce_asked.load(Ordering::Relaxed)))
    }
}

/// What `oauth2` makes of a token request.
type Answer =
    Result<oauth2::basic::BasicTokenResponse, oauth2::basic::BasicRequestTokenError<ProviderError>>;

/// The DPoP request header (RFC 9449 §4.1), as HTTP/2 spells it.
const DPOP: &str = "dpop";

impl TokenSource for ClientCredentials {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(self.request())
    }
}
