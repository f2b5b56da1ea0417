//! Every error of the crate, each typed and free of secrets: why a token or a call was
//! refused ([`TokenError`], [`AuthError`]), what is wrong in the configuration
//! ([`ConfigError`], [`KeyError`], [`UrlError`], [`SecretError`]), why the identity provider
//! could not help ([`ProviderError`]), and why a client got no token
//! ([`FetchError`](crate::client::FetchError)).
//!
//! Messages are fixed phrases that name the fix; none carries a token, a secret or key
//! material. Underlying causes (an I/O error, a transport failure, a JSON error) stay
//! reachable through [`std::error::Error::source`]. The conversion of each refusal to a
//! `tonic::Status` lives in one place (`status.rs`):
//!
//! ```
//! use oauth_grpc::{AuthError, TokenError};
//!
//! let status = tonic::Status::from(AuthError::InvalidToken(TokenError::Expired));
//! assert_eq!(status.code(), tonic::Code::Unauthenticated);
//! assert_eq!(
//!     status.metadata().get("www-authenticate").unwrap(),
//!     r#"Bearer error="invalid_token", error_description="the token has expired""#,
//! );
//! ```

use std::error::Error as StdError;
use std::sync::Arc;

mod config;
mod provider;
mod token;

pub use self::config::{ConfigError, KeyError, SecretError, UrlError};
#[cfg(feature = "client")]
pub use self::provider::FetchError;
pub use self::provider::ProviderError;
#[cfg(any(feature = "jwks", feature = "introspection", feature = "client"))]
pub(crate) use self::provider::ProviderErrorKind;
pub use self::token::{AuthError, TokenError};

/// An underlying cause, shared so that errors holding one stay `Clone`.
pub(crate) type Cause = Arc<dyn StdError + Send + Sync + 'static>;
