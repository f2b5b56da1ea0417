//! Talking to identity providers: the [`HttpClient`] every request goes through (HTTPS only,
//! no redirects, bounded answers), metadata discovery shared by the key source
//! and the token clients, and [`ClientSecret`]s.

#[cfg(any(feature = "jwks", feature = "client"))]
pub(crate) mod discovery;
mod http_client;
#[cfg(any(feature = "introspection", feature = "client"))]
mod secret;

pub use self::http_client::HttpClient;
#[cfg(feature = "client")]
pub(crate) use self::http_client::form_encode;
#[cfg(any(feature = "introspection", feature = "client"))]
pub use self::secret::ClientSecret;
