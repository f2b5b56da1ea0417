//! Identity-provider metadata, one way for every part that needs it: OpenID Connect Discovery
//! (`{issuer}/.well-known/openid-configuration`), falling back to RFC 8414
//! (`{origin}/.well-known/oauth-authorization-server{path}`). The document's `issuer` must
//! equal the configured issuer exactly (OIDC Discovery §4.3, RFC 8414 §3.3), or the metadata
//! is refused.

use std::sync::Arc;

use crate::error::{ProviderError, ProviderErrorKind};

use super::HttpClient;

/// The `jwks_uri` of `issuer`'s metadata, checked against the HTTPS rule.
#[cfg(feature = "jwks")]
pub(crate) async fn jwks_uri(
    http: &HttpClient,
    issuer: &str,
) -> Result<reqwest::Url, ProviderError> {
    let uri = metadata(http, issuer, "jwks_uri").await?;
    Ok(http.check_url("jwks_uri from discovery", &uri)?)
}

/// The `token_endpoint` of `issuer`'s metadata.
#[cfg(feature = "client")]
pub(crate) async fn token_endpoint(
    http: &HttpClient,
    issuer: &str,
) -> Result<String, ProviderError> {
    metadata(http, issuer, "token_endpoint").await
}

/// The member `needed` of the metadata of `issuer`: the OIDC document, else the RFC 8414 one.
///
/// A URL that cannot be fetched moves on to the next; a document that is not metadata with
/// `issuer` and the needed member, or that names another issuer, ends the discovery.
async fn metadata(
    http: &HttpClient,
    issuer: &str,
    needed: &'static str,
) -> Result<String, ProviderError> {
    let mut last_error = None;
    for url in urls(issuer)? {
        let url = http.check_url("discovery URL", &url)?;
        let body = match http.get(url.clone()).await {
            Ok((body, _)) => body,
            Err(error) => {
                last_error = Some(ProviderError::with_source(
                    ProviderErrorKind::Discovery {
                        url: crate::error::shown_url(url.as_str()),
                    },
                    Arc::new(error),
                ));
                continue;
            }
        };
        let not_metadata = || ProviderErrorKind::NotMetadata {
            url: crate::error::shown_url(url.as_str()),
            needed,
        };
        let document: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::with_source(not_metadata(), Arc::new(e)))?;
        let member = |name: &str| document.get(name).and_then(serde_json::Value::as_str);
        let Some(found) = member("issuer") else {
            return Err(ProviderError::new(not_metadata()));
        };
        if found != issuer {
            return Err(ProviderError::new(ProviderErrorKind::IssuerMismatch {
                url: crate::error::shown_url(url.as_str()),
                found: crate::error::shown_url(found),
                expected: crate::error::shown_url(issuer),
            }));
        }
        return member(needed)
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::new(not_metadata()));
    }
    Err(last_error.unwrap_or_else(|| ProviderError::new(ProviderErrorKind::NoKeys)))
}

/// `{issuer}/.well-known/openid-configuration`, then RFC 8414
/// `{origin}/.well-known/oauth-authorization-server{path}`.
fn urls(issuer: &str) -> Result<[String; 2], ProviderError> {
    let parsed = reqwest::Url::parse(issuer).map_err(|e| {
        ProviderError::from(crate::error::UrlError::not_url(
            "issuer",
            issuer,
            Arc::new(e),
        ))
    })?;
    let trimmed = issuer.trim_end_matches('/');
    let oidc = format!("{trimmed}/.well-known/openid-configuration");
    let path = parsed.path().trim_end_matches('/');
    let origin = parsed.origin().ascii_serialization();
    let oauth = format!("{origin}/.well-known/oauth-authorization-server{path}");
    Ok([oidc, oauth])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_oidc_and_rfc_8414() {
        assert_eq!(
            urls("https://idp.example.com/").unwrap(),
            [
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            urls("https://idp.example.com/realms/shop").unwrap(),
            [
                "https://idp.example.com/realms/shop/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/shop",
            ]
        );
        assert!(urls("not a url").is_err());
    }
}
