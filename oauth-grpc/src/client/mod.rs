//! The outgoing side: a tower layer that puts `authorization: Bearer <token>` on every call of
//! a tonic client, with tokens fetched, cached and refreshed by a [`TokenSource`].
//!
//! tonic's interceptors are synchronous and cannot fetch a token, so this is a layer around
//! the channel:
//!
//! ```no_run
//! # use examples::pb::orders_client::OrdersClient;
//! use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials};
//! use oauth_grpc::ClientSecret;
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
//! its lifetime, but never more than half of it), then refreshed in the background by one
//! fetch, however many calls are in flight. A token without `expires_in` is kept for a
//! [default lifetime](BearerLayer::default_lifetime) (5 minutes), and every token for at least
//! a [minimum](BearerLayer::min_lifetime) (1 second), so `expires_in: 0` does not mean a
//! fetch per call. When a server answers `UNAUTHENTICATED` with
//! `www-authenticate: Bearer error="invalid_token"` — in trailers-only headers, as an
//! `OAuthLayer` refuses, or in the trailers of a streamed answer — the token is dropped and
//! the next call fetches a new one (one fetch for all the calls waiting); the refused call
//! itself is not retried, since its request body has been sent. When a fetch fails, the current token is used while it is valid, with retries
//! backing off; when no valid token can be had, the call fails before anything is sent:
//! `UNAUTHENTICATED` if the endpoint rejected the credentials, `UNAVAILABLE` if it could not
//! be reached.
//!
//! # DPoP: tokens bound to a key (RFC 9449)
//!
//! A stolen bearer token works for anyone; a DPoP-bound token only with the key it is bound
//! to, and the key never leaves the client. Give one [`DpopKey`] to the token source, which
//! proves it to the token endpoint so the provider binds the token (`cnf.jkt`), and to the
//! layer, which sends `authorization: DPoP <token>` with a fresh proof on every call:
//!
//! ```no_run
//! # use examples::pb::orders_client::OrdersClient;
//! use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials, DpopKey};
//! use oauth_grpc::ClientSecret;
//! use tower::ServiceBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = DpopKey::generate()?; // P-256, in memory only
//! let source = ClientCredentials::discover(
//!     "https://idp.example.com/",
//!     "billing-service",
//!     ClientAuthentication::SecretBasic(ClientSecret::from_file("/run/secrets/billing")),
//! )
//! .scope("orders:read")
//! .dpop(key.clone());
//! let layer = BearerLayer::new(source).dpop(key, "https://orders.example.com")?;
//!
//! let channel = tonic::transport::Endpoint::from_static("https://orders.example.com")
//!     .connect()
//!     .await?;
//! let mut orders = OrdersClient::new(ServiceBuilder::new().layer(layer).service(channel));
//! # let _ = &mut orders;
//! # Ok(())
//! # }
//! ```
//!
//! A provider that answers with a bearer token instead is refused
//! ([`FetchError::NotBound`]): the token is discarded rather than sent unprotected. Nonces
//! (`use_dpop_nonce`), of the provider and of the server, are followed once per request and
//! kept for the next ones; see [`BearerLayer::dpop`].

mod auth;
mod cache;
mod credentials;
mod dpop;
mod exchange;
mod grant;
mod layer;
mod replay;
mod token;

pub use self::auth::{ClientAuthentication, PrivateKey};
pub use self::credentials::ClientCredentials;
pub use self::dpop::DpopKey;
pub use self::exchange::TokenExchange;
pub use self::layer::{Bearer, BearerLayer};
pub use self::token::{AccessToken, FetchFuture, StaticToken, TokenSource};

/// Whether the server ended a call because its token is no longer valid — `UNAUTHENTICATED`
/// with `www-authenticate: Bearer error="invalid_token"`, as an `OAuthLayer` ends a stream
/// whose token expired or was revoked. Open such a stream again: a [`BearerLayer`] cannot
/// change the headers of a stream that is already open, but it has dropped the refused token
/// and attaches a fresh one to the next call. Where to resume is the application's to say.
///
/// ```no_run
/// # use examples::pb::{orders_client::OrdersClient, WatchOrdersRequest};
/// # use tokio_stream::StreamExt;
/// # async fn run(mut client: OrdersClient<tonic::transport::Channel>) -> Result<(), tonic::Status> {
/// loop {
///     let request = WatchOrdersRequest { limit: 0, follow: true };
///     let mut stream = client.watch_orders(request).await?.into_inner();
///     while let Some(item) = stream.next().await {
///         match item {
///             Ok(order) => println!("{}", order.id),
///             Err(status) if oauth_grpc::client::should_reopen(&status) => break,
///             Err(status) => return Err(status),
///         }
///     }
/// }
/// # }
/// ```
///
/// ```
/// use oauth_grpc::{AuthError, TokenError};
///
/// let expired = tonic::Status::from(AuthError::InvalidToken(TokenError::Expired));
/// assert!(oauth_grpc::client::should_reopen(&expired));
/// assert!(!oauth_grpc::client::should_reopen(&tonic::Status::unavailable("down")));
/// ```
pub fn should_reopen(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unauthenticated
        && status
            .metadata()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(layer::names_invalid_token)
}
pub use crate::error::FetchError;
