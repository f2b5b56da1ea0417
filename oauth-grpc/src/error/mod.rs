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
pub use self::token::{AuthError, CertificateError, ProofError, TokenError};

/// An underlying cause, shared so that errors holding one stay `Clone`.
pub(crate) type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// A URL as messages and logs may show it: credentials in the userinfo
/// (`https://user:pass@idp/…`) and the whole query (`?api_key=…`) are replaced by
/// `<redacted>`, and the fragment is dropped. Works on text that is not a valid URL too, so a
/// malformed URL with a secret in it is not echoed either.
pub(crate) fn shown_url(url: &str) -> String {
    const REDACTED: &str = "<redacted>";
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = match rest.split_once('?') {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let mut shown = String::with_capacity(url.len().min(256));
    if let Some(scheme) = scheme {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            shown.push_str(REDACTED);
            shown.push('@');
            shown.push_str(host);
        }
        None => shown.push_str(authority),
    }
    shown.push_str(path);
    if query {
        shown.push('?');
        shown.push_str(REDACTED);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn credentials_in_urls_are_not_shown() {
        assert_eq!(
            shown_url("https://idp.example.com/jwks"),
            "https://idp.example.com/jwks"
        );
        assert_eq!(
            shown_url("https://user:s3cret@idp.example.com:8443/jwks?api_key=k#x"),
            "https://<redacted>@idp.example.com:8443/jwks?<redacted>"
        );
        assert_eq!(
            shown_url("https://idp.example.com/?token=abc"),
            "https://idp.example.com/?<redacted>"
        );
        // Not a URL at all, a secret anyway.
        assert_eq!(shown_url("u:p@host/x?k=v"), "<redacted>@host/x?<redacted>");
        // An `@` in the path is not userinfo.
        assert_eq!(
            shown_url("https://idp.example.com/users/@me"),
            "https://idp.example.com/users/@me"
        );
    }
}
