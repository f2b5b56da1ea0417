//! [`HttpClient`]: the HTTP side of talking to an identity provider — one shared client, the
//! HTTPS rule, bounded reads, and transport failures as [`ProviderError`]s.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, ProviderError, ProviderErrorKind, UrlError};

/// Key documents and introspection answers larger than this are refused.
const MAX_BODY: usize = 1024 * 1024;

/// Overall timeout of one request (connect, send, read the body), unless set otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect timeout of the default client.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client used for discovery, JWKS, introspection and token requests.
///
/// Whichever `reqwest` client is underneath, every request gets the same guarantees: no
/// redirect is followed (a 3xx answer is an error, so a form carrying a token or a client
/// secret is never re-posted elsewhere), each URL must be HTTPS (plain http only to
/// loopback, or with [`allow_insecure_http`](Self::allow_insecure_http)), a body over 1 MiB
/// is refused, and each request has an overall timeout (10 s by default), so a provider
/// that stops answering gets `UNAVAILABLE`, not a hang.
///
/// The default client adds a 5 s connect timeout and rustls with the platform's trust
/// store. For a custom CA, a client certificate towards the provider or a proxy, pass your
/// own `reqwest::ClientBuilder` to [`from_builder`](Self::from_builder).
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::HttpClient;
///
/// let client = HttpClient::new()?.timeouts(Duration::from_secs(2), Duration::from_secs(5))?;
/// // No redirects, HTTPS only (plain http just to loopback) unless you opt in:
/// assert!(format!("{client:?}").contains("allow_insecure_http: false"));
/// # Ok::<(), oauth_grpc::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    allow_insecure_http: bool,
    timeout: Duration,
    /// Built from the caller's `reqwest::ClientBuilder`: [`timeouts`](Self::timeouts) keeps it.
    custom: bool,
}

impl HttpClient {
    /// The default client.
    ///
    /// ```
    /// let client = oauth_grpc::HttpClient::new()?;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`] when the TLS configuration cannot be built.
    pub fn new() -> Result<Self, ConfigError> {
        Self::build(DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT)
    }

    /// The default client's `reqwest` configuration: a connect timeout and our user agent.
    fn default_builder(connect: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("oauth-grpc/", env!("CARGO_PKG_VERSION")))
    }

    fn build(connect: Duration, total: Duration) -> Result<Self, ConfigError> {
        let mut client = Self::from_builder(Self::default_builder(connect))?;
        client.timeout = total;
        client.custom = false;
        Ok(client)
    }

    /// The default client, presenting a TLS client certificate to the identity provider:
    /// for RFC 8705 client authentication
    /// ([`ClientAuthentication::TlsClientAuth`](crate::client::ClientAuthentication::TlsClientAuth)),
    /// after which the provider binds the tokens it issues to that certificate. `cert_pem`
    /// holds the certificate (and any intermediates), `key_pem` its private key (PKCS#8,
    /// PKCS#1 or SEC1). The provider is trusted through the platform's store; for a private
    /// CA, give your own `reqwest::ClientBuilder` with the identity and the CA to
    /// [`from_builder`](Self::from_builder).
    ///
    /// ```no_run
    /// let http = oauth_grpc::HttpClient::with_client_certificate(
    ///     &std::fs::read("/run/secrets/billing.crt")?,
    ///     &std::fs::read("/run/secrets/billing.key")?,
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::ClientCertificate`] when the PEM holds no certificate or no usable key;
    /// [`ConfigError::HttpClient`] when the TLS configuration cannot be built.
    pub fn with_client_certificate(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ConfigError> {
        let mut pem = Vec::with_capacity(cert_pem.len() + key_pem.len() + 1);
        pem.extend_from_slice(cert_pem);
        pem.push(b'\n');
        pem.extend_from_slice(key_pem);
        // reqwest's error could quote the PEM it failed on: keep only our message.
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|_| ConfigError::ClientCertificate)?;
        Self::from_builder(Self::default_builder(DEFAULT_CONNECT_TIMEOUT).identity(identity))
    }

    /// Other connect and overall (connect + send + read) timeouts. For a client made by
    /// [`from_builder`](Self::from_builder), the connect timeout is the builder's own (set
    /// it there); the overall timeout, which bounds the connect too, is applied here.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = oauth_grpc::HttpClient::new()?
    ///     .timeouts(Duration::from_secs(1), Duration::from_secs(3))?;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`] when the TLS configuration cannot be built.
    pub fn timeouts(self, connect: Duration, total: Duration) -> Result<Self, ConfigError> {
        if self.custom {
            return Ok(Self {
                timeout: total,
                ..self
            });
        }
        let allow = self.allow_insecure_http;
        let mut client = Self::build(connect, total)?;
        client.allow_insecure_http = allow;
        Ok(client)
    }

    /// Your own `reqwest` configuration (custom CA, client certificate, proxy), with this
    /// crate's guarantees laid over it: redirects are turned off whatever the builder says,
    /// and each request gets the overall timeout (10 s; see [`timeouts`](Self::timeouts)).
    /// A builder is taken rather than a built `reqwest::Client` because a client's redirect
    /// policy cannot be changed or checked afterwards.
    ///
    /// ```
    /// use oauth_grpc::HttpClient;
    ///
    /// let builder = reqwest::Client::builder()
    ///     // .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem)?])
    ///     .connect_timeout(std::time::Duration::from_secs(2));
    /// let client = HttpClient::from_builder(builder)?;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`] when the client cannot be built (its TLS configuration,
    /// say).
    pub fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self, ConfigError> {
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient {
                source: Arc::new(e.without_url()),
            })?;
        Ok(Self {
            client,
            allow_insecure_http: false,
            timeout: DEFAULT_TIMEOUT,
            custom: true,
        })
    }

    /// Allows `http://` URLs on any host. Only for test providers on a private network:
    /// keys fetched over plain HTTP can be replaced by anyone on the path. Loopback
    /// addresses (`127.0.0.0/8`, `::1`, `localhost`) are always allowed.
    #[must_use]
    pub fn allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Checks that `url` may be fetched: HTTPS, or HTTP to loopback or with the opt-in.
    pub(crate) fn check_url(
        &self,
        what: &'static str,
        url: &str,
    ) -> Result<reqwest::Url, UrlError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| UrlError::not_url(what, url, Arc::new(e)))?;
        match parsed.scheme() {
            "https" => Ok(parsed),
            "http" if self.allow_insecure_http || is_loopback(&parsed) => Ok(parsed),
            "http" => Err(UrlError::plain_http(what, url)),
            other => Err(UrlError::scheme(what, url, other)),
        }
    }

    #[cfg(any(feature = "jwks", feature = "client"))]
    /// GET `url`, expecting 200 and at most 1 MiB; returns the body and the response's
    /// `Cache-Control: max-age`, if any.
    pub(crate) async fn get(
        &self,
        url: reqwest::Url,
    ) -> Result<(Vec<u8>, Option<Duration>), ProviderError> {
        let response = self
            .client
            .get(url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(describe)?;
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = read_ok(response).await?;
        Ok((body, max_age))
    }

    #[cfg(feature = "introspection")]
    /// POST a form to `url` with optional basic credentials; expects 200 and at most 1 MiB.
    pub(crate) async fn post_form(
        &self,
        url: reqwest::Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut request = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        if let Some((user, password)) = basic {
            request = request.basic_auth(form_encode(user), Some(form_encode(password)));
        }
        let response = request.send().await.map_err(describe)?;
        read_ok(response).await
    }
}

#[cfg(any(feature = "introspection", feature = "client"))]
/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic authentication.
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(feature = "client")]
impl HttpClient {
    /// Sends a request built by the `oauth2` crate. Answers of 5xx are transport errors (the
    /// endpoint is in trouble, try again later); 4xx answers are handed back for `oauth2` to
    /// read the OAuth error.
    pub(crate) async fn send_raw(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, ProviderError> {
        let (parts, body) = request.into_parts();
        let url = self.check_url("token endpoint", &parts.uri.to_string())?;
        let mut outgoing = self
            .client
            .request(parts.method, url)
            .timeout(self.timeout)
            .body(body);
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name, value);
        }
        let mut response = outgoing.send().await.map_err(describe)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(ProviderError::new(ProviderErrorKind::EndpointStatus(
                status.as_u16(),
            )));
        }
        let headers = response.headers().clone();
        let body = read_bounded(&mut response).await?;
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

async fn read_ok(mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let status = response.status();
    if !status.is_success() {
        return Err(ProviderError::new(ProviderErrorKind::Status(
            status.as_u16(),
        )));
    }
    read_bounded(&mut response).await
}

/// The body, refused when it is larger than [`MAX_BODY`].
async fn read_bounded(response: &mut reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let too_large = || ProviderError::new(ProviderErrorKind::TooLarge);
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error, with the URL (which may carry a query) taken out of the cause.
fn describe(error: reqwest::Error) -> ProviderError {
    let kind = if error.is_timeout() {
        ProviderErrorKind::Timeout
    } else if error.is_connect() {
        ProviderErrorKind::Connect
    } else {
        ProviderErrorKind::Request
    };
    ProviderError::with_source(kind, Arc::new(error.without_url()))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(any(feature = "jwks", feature = "client"))]
/// `max-age=N` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        seconds
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(feature = "jwks", feature = "client"))]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }

    #[test]
    fn https_is_required_except_on_loopback() {
        let client = HttpClient::new().unwrap();
        assert!(
            client
                .check_url("JWKS URL", "https://idp.example.com/jwks")
                .is_ok()
        );
        assert!(
            client
                .check_url("JWKS URL", "http://127.0.0.1:8080/jwks")
                .is_ok()
        );
        assert!(
            client
                .check_url("JWKS URL", "http://127.8.9.1/jwks")
                .is_ok()
        );
        assert!(client.check_url("JWKS URL", "http://[::1]:80/jwks").is_ok());
        assert!(
            client
                .check_url("JWKS URL", "http://localhost/jwks")
                .is_ok()
        );
        let err = client
            .check_url("JWKS URL", "http://idp.example.com/jwks")
            .unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(client.check_url("JWKS URL", "ftp://idp/jwks").is_err());
        assert!(client.check_url("JWKS URL", "not a url").is_err());
        let lax = client.allow_insecure_http();
        assert!(
            lax.check_url("JWKS URL", "http://idp.internal/jwks")
                .is_ok()
        );
    }

    #[test]
    #[cfg(any(feature = "introspection", feature = "client"))]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/d"), "a+b%3Ac%2Fd");
        assert_eq!(form_encode("plain-ID_1.x"), "plain-ID_1.x");
    }
}
