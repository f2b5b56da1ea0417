//! `orders-server --config FILE`: the trusted issuers in TOML, each with its own keys,
//! audiences and token profile — the full form of what `--issuer` (repeatable),
//! `--audience`, `--jwks-url` and the introspection flags say for one provider.
//!
//! ```toml
//! audiences = ["urn:orders-api"]     # every issuer's, unless it names its own
//!
//! [[issuer]]                         # keys by discovery of `iss`
//! iss = "https://login.corp.example/"
//!
//! [[issuer]]                         # Entra ID, two tenants and no others
//! template = "https://login.microsoftonline.com/{tenant}/v2.0"
//! tenants = ["8eaef023-2b34-4da1-9baa-8bc8c9d6a490", "72f988bf-86f1-41af-91ab-2d7cd011db47"]
//! audiences = ["api://orders"]
//! ```
//!
//! `examples/orders-server.toml` shows every key: `iss` or `template` with `tenants`,
//! `aliases`, `jwks_url`, `audiences`, `token_types`, `scope_claim`, `leeway`,
//! `max_lifetime`, `algorithms`, `role_claim` with `[issuer.roles]`, and
//! `[issuer.introspection]` (`url`, `client_id`, `client_secret_file`, `routing`).
//!
//! Unknown keys are errors (a misspelt `audience` must not leave an issuer unchecked), and
//! every error names the file, the issuer and the fix. Secrets are never in the file: only
//! the path of a file holding them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use oauth_grpc::store::SharedStore;
use oauth_grpc::{
    Algorithm, ClientSecret, HttpClient, Introspection, Issuer, KeySource, TokenRouting, TokenTypes,
};
use serde::{Deserialize, Deserializer};

/// The contents of a `--config` file.
///
/// ```
/// let config: examples::server_config::ServerConfig = toml::from_str(r#"
///     audiences = ["urn:orders-api"]
///     [[issuer]]
///     iss = "https://login.corp.example/"
/// "#)?;
/// assert_eq!(config.issuers.len(), 1);
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The audiences of every issuer that names none of its own.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The clock leeway of every issuer that names none (default 60 s).
    #[serde(default, deserialize_with = "duration")]
    pub leeway: Option<Duration>,
    /// The trusted issuers, `[[issuer]]` tables.
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<IssuerConfig>,
}

/// One `[[issuer]]` table.
///
/// ```
/// let issuer: examples::server_config::IssuerConfig = toml::from_str(r#"
///     template = "https://login.microsoftonline.com/{tenant}/v2.0"
///     tenants = ["8eaef023-2b34-4da1-9baa-8bc8c9d6a490"]
///     audiences = ["api://orders"]
/// "#)?;
/// assert_eq!(issuer.tenants.len(), 1);
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` of its tokens, exactly (a trailing `/` counts).
    pub iss: Option<String>,
    /// A multi-tenant issuer, `{tenant}` once (instead of `iss`; needs `tenants`).
    pub template: Option<String>,
    /// The tenants of `template` that are trusted; no others are.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Other `iss` values of the same provider, trusting the same keys.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Keys from this JWKS URL (`{tenant}` replaced for a template) instead of discovery.
    pub jwks_url: Option<String>,
    /// The audiences its tokens must name, instead of the top-level `audiences`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `strict` (RFC 9068 `at+jwt` only, the default) or `allow-plain-jwt`.
    pub token_types: Option<TokenTypesConfig>,
    /// The claim holding its scopes, instead of `scope`/`scp`.
    pub scope_claim: Option<String>,
    /// The clock leeway on `exp`, `nbf` and `iat` for its tokens.
    #[serde(default, deserialize_with = "duration")]
    pub leeway: Option<Duration>,
    /// The longest lifetime (`exp - iat`) of a token it issues that is accepted.
    #[serde(default, deserialize_with = "duration")]
    pub max_lifetime: Option<Duration>,
    /// The signature algorithms accepted from it (e.g. `["RS256", "ES256"]`).
    pub algorithms: Option<Vec<String>>,
    /// The claim (a dotted path, e.g. `realm_access.roles`) holding roles, mapped to scopes
    /// by `[issuer.roles]`.
    pub role_claim: Option<String>,
    /// Role → the scopes it grants.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Opaque tokens (or all tokens) by RFC 7662 introspection.
    pub introspection: Option<IntrospectionConfig>,
}

/// `token_types` of an issuer.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenTypesConfig {
    /// RFC 9068 `at+jwt` only.
    Strict,
    /// `typ: JWT` or no `typ` too (Auth0, Okta, Keycloak, Entra ID, Cognito).
    AllowPlainJwt,
}

/// An `[issuer.introspection]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The RFC 7662 endpoint.
    pub url: String,
    /// This service's client id there.
    pub client_id: String,
    /// A file holding this service's client secret (read at each use, so it can rotate).
    pub client_secret_file: PathBuf,
    /// Which tokens go there (default `jwt-locally`: opaque ones).
    #[serde(default)]
    pub routing: RoutingConfig,
}

/// `routing` of an introspection table.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoutingConfig {
    /// JWTs with the keys, opaque tokens introspected.
    #[default]
    JwtLocally,
    /// Every token introspected.
    IntrospectAll,
    /// This issuer's JWTs introspected, no opaque tokens (for a second introspecting issuer).
    IntrospectJwts,
}

/// How an issuer's remote keys are fetched: the HTTP client and the key-source timings the
/// server's flags set, applied to every issuer.
#[derive(Debug, Clone)]
pub struct Fetching {
    /// The client towards the providers.
    pub http: HttpClient,
    /// `--jwks-refresh-min`, `--jwks-refresh-max`.
    pub refresh: (Duration, Duration),
    /// `--unknown-kid-cooldown`.
    pub unknown_kid_cooldown: Duration,
    /// `--max-staleness`.
    pub max_staleness: Duration,
    /// `--redis`: introspection answers shared by the replicas.
    pub shared: Option<Arc<dyn SharedStore>>,
}

impl Fetching {
    /// A key source for `url` (a JWKS URL) or by discovery of `issuer`, fetched as set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use examples::server_config::Fetching;
    ///
    /// let fetching = Fetching {
    ///     http: oauth_grpc::HttpClient::new()?,
    ///     refresh: (Duration::from_secs(60), Duration::from_secs(86_400)),
    ///     unknown_kid_cooldown: Duration::from_secs(30),
    ///     max_staleness: Duration::from_secs(86_400),
    ///     shared: None,
    /// };
    /// let keys = fetching.keys("https://idp.example/", None);
    /// # let _ = keys;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    pub fn keys(&self, issuer: &str, url: Option<&str>) -> KeySource {
        match url {
            Some(url) => KeySource::jwks_url(url),
            None => KeySource::discover(issuer),
        }
        .http_client(self.http.clone())
        .refresh_between(self.refresh.0, self.refresh.1)
        .unknown_kid_cooldown(self.unknown_kid_cooldown)
        .max_staleness(self.max_staleness)
    }
}

impl ServerConfig {
    /// Reads and parses `path`; the error names the file and, for TOML mistakes, the line.
    ///
    /// ```
    /// let error = examples::server_config::ServerConfig::load("/nonexistent.toml".as_ref())
    ///     .unwrap_err();
    /// assert!(error.starts_with("--config /nonexistent.toml: "), "{error}");
    /// ```
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("--config {shown}: {e}"))?;
        let config: Self = toml::from_str(&text).map_err(|e| format!("--config {shown}: {e}"))?;
        if config.issuers.is_empty() {
            return Err(format!(
                "--config {shown}: no [[issuer]]: give at least one table with `iss` (or \
                 `template` and `tenants`)"
            ));
        }
        Ok(config)
    }

    /// Each `[[issuer]]` as an [`Issuer`] whose remote keys are fetched as `fetching` says;
    /// the error names the issuer and the fix. The top-level `audiences` and `leeway` are
    /// for the [`ValidatorBuilder`](oauth_grpc::ValidatorBuilder), not in these.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let fetching = examples::server_config::Fetching {
    /// #     http: oauth_grpc::HttpClient::new()?,
    /// #     refresh: (Duration::from_secs(60), Duration::from_secs(86_400)),
    /// #     unknown_kid_cooldown: Duration::from_secs(30),
    /// #     max_staleness: Duration::from_secs(86_400),
    /// #     shared: None,
    /// # };
    /// let config: examples::server_config::ServerConfig = toml::from_str(r#"
    ///     audiences = ["orders-api"]
    ///     [[issuer]]
    ///     iss = "https://idp.example/"
    ///     algorithms = ["RS257"]
    /// "#)?;
    /// let error = config.trusted(&fetching).unwrap_err();
    /// assert!(error.contains("unknown algorithm `RS257`"), "{error}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trusted(&self, fetching: &Fetching) -> Result<Vec<Issuer>, String> {
        self.issuers
            .iter()
            .enumerate()
            .map(|(index, issuer)| {
                if self.audiences.is_empty() && issuer.audiences.is_empty() {
                    return Err(format!(
                        "[[issuer]] {} ({}): no audience; add `audiences = [\"your-api\"]` \
                         to it, or at the top of the file for every issuer: the value the \
                         provider puts in `aud` for this service",
                        index + 1,
                        issuer
                            .iss
                            .as_deref()
                            .or(issuer.template.as_deref())
                            .unwrap_or("?"),
                    ));
                }
                issuer.to_issuer(fetching, index)
            })
            .collect()
    }
}

impl IssuerConfig {
    fn to_issuer(&self, fetching: &Fetching, index: usize) -> Result<Issuer, String> {
        let at = |name: &str| format!("[[issuer]] {} ({name})", index + 1);
        let (mut issuer, name) = match (&self.iss, &self.template) {
            (Some(iss), None) => {
                if !self.tenants.is_empty() {
                    return Err(format!(
                        "{}: `tenants` belong to a `template` with `{{tenant}}`; give \
                         `template` instead of `iss`, or drop `tenants`",
                        at(iss)
                    ));
                }
                (Issuer::new(iss), iss)
            }
            (None, Some(template)) => {
                if self.tenants.is_empty() {
                    return Err(format!(
                        "{}: a `template` needs `tenants`, the allow-list of the tenants \
                         trusted (there is no wildcard)",
                        at(template)
                    ));
                }
                if self.introspection.is_some() {
                    return Err(format!(
                        "{}: [issuer.introspection] on a `template`: each tenant has its own \
                         endpoint; give the tenants that need introspection their own \
                         [[issuer]] with `iss`",
                        at(template)
                    ));
                }
                (Issuer::tenants(template, self.tenants.clone()), template)
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "[[issuer]] {}: both `iss` and `template`; give `iss` for one issuer or \
                     `template` with `tenants` for a multi-tenant one",
                    index + 1
                ));
            }
            (None, None) => {
                return Err(format!(
                    "[[issuer]] {}: no `iss`; give the issuer exactly as in its tokens' `iss` \
                     (or `template` and `tenants`)",
                    index + 1
                ));
            }
        };
        for alias in &self.aliases {
            issuer = issuer.alias(alias);
        }
        for audience in &self.audiences {
            issuer = issuer.audience(audience);
        }
        let introspects_all = self
            .introspection
            .as_ref()
            .is_some_and(|i| !matches!(i.routing, RoutingConfig::JwtLocally));
        // An issuer whose every token is introspected needs no keys; all others do (a
        // template's `{tenant}` is replaced in the URL by each tenant).
        if !introspects_all || self.jwks_url.is_some() {
            issuer = issuer.keys(fetching.keys(name, self.jwks_url.as_deref()));
        }
        if let Some(types) = self.token_types {
            issuer = issuer.token_types(match types {
                TokenTypesConfig::Strict => TokenTypes::Strict,
                TokenTypesConfig::AllowPlainJwt => TokenTypes::AllowPlainJwt,
            });
        }
        if let Some(claim) = &self.scope_claim {
            issuer = issuer.scope_claim(claim);
        }
        if let Some(leeway) = self.leeway {
            issuer = issuer.leeway(leeway);
        }
        if let Some(lifetime) = self.max_lifetime {
            issuer = issuer.max_lifetime(lifetime);
        }
        if let Some(names) = &self.algorithms {
            let mut algorithms = Vec::with_capacity(names.len());
            for alg in names {
                algorithms.push(Algorithm::from_str(alg).map_err(|_| {
                    format!(
                        "{}: unknown algorithm `{alg}`; give JWS names such as RS256, PS256, \
                         ES256, ES384, EdDSA or HS256",
                        at(name)
                    )
                })?);
            }
            issuer = issuer.algorithms(algorithms);
        }
        match (&self.role_claim, self.roles.is_empty()) {
            (Some(claim), _) => {
                issuer = issuer.role_claim(claim);
                for (role, scopes) in &self.roles {
                    issuer = issuer.map_role(role, scopes.clone());
                }
            }
            (None, false) => {
                return Err(format!(
                    "{}: [issuer.roles] maps roles, but no `role_claim` says where they \
                     are; add e.g. `role_claim = \"roles\"`",
                    at(name)
                ));
            }
            (None, true) => {}
        }
        if let Some(introspection) = &self.introspection {
            let file = &introspection.client_secret_file;
            // Readable now, not at the first opaque token.
            ClientSecret::from_file(file).reveal().map_err(|e| {
                format!(
                    "{}: [issuer.introspection] client_secret_file: {e}",
                    at(name)
                )
            })?;
            let mut endpoint = Introspection::new(
                &introspection.url,
                &introspection.client_id,
                ClientSecret::from_file(file),
            )
            .routing(match introspection.routing {
                RoutingConfig::JwtLocally => TokenRouting::JwtLocally,
                RoutingConfig::IntrospectAll => TokenRouting::IntrospectAll,
                RoutingConfig::IntrospectJwts => TokenRouting::IntrospectJwts,
            })
            .http_client(fetching.http.clone());
            if let Some(store) = &fetching.shared {
                endpoint = endpoint.shared_cache(store.clone());
            }
            issuer = issuer.introspection(endpoint);
        }
        Ok(issuer)
    }
}

/// A duration such as `"30s"`, `"5m"` or `"1h"`.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write e.g. \"30s\", \"5m\", \"1h\""
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn fetching() -> Fetching {
        Fetching {
            http: HttpClient::new().unwrap(),
            refresh: (Duration::from_secs(60), Duration::from_secs(3600)),
            unknown_kid_cooldown: Duration::from_secs(30),
            max_staleness: Duration::from_secs(3600),
            shared: None,
        }
    }

    /// The error of `text` after a top-level `audiences`, or of `text` alone if it begins
    /// with `!`.
    fn error(text: &str) -> String {
        let text = match text.strip_prefix('!') {
            Some(alone) => alone.to_owned(),
            None => format!("audiences = [\"api\"]\n{text}"),
        };
        let config: ServerConfig = match toml::from_str(&text) {
            Ok(config) => config,
            Err(e) => return e.to_string(),
        };
        config.trusted(&fetching()).unwrap_err()
    }

    #[test]
    fn the_example_file_parses() {
        let example = include_str!("../orders-server.toml");
        let secret = std::env::temp_dir().join(format!("orders-config-{}", std::process::id()));
        std::fs::write(&secret, "s3cret\n").unwrap();
        let example = example.replace("/run/secrets/introspection", &secret.to_string_lossy());
        let config: ServerConfig = toml::from_str(&example).unwrap();
        assert_eq!(config.issuers.len(), 4);
        assert_eq!(config.audiences, ["urn:orders-api"]);
        let trusted = config.trusted(&fetching()).unwrap();
        assert_eq!(trusted.len(), 4);
        std::fs::remove_file(secret).unwrap();
    }

    #[test]
    fn mistakes_name_the_fix() {
        let unknown = error("[[issuer]]\niss = \"https://a/\"\naudience = [\"x\"]\n");
        let no_audience = error("![[issuer]]\niss = \"https://a/\"\n");
        assert!(
            no_audience.contains("no audience; add `audiences = "),
            "{no_audience}"
        );
        assert!(unknown.contains("unknown field `audience`"), "{unknown}");
        let both = error("[[issuer]]\niss = \"https://a/\"\ntemplate = \"https://{tenant}/\"\n");
        assert!(both.contains("both `iss` and `template`"), "{both}");
        let neither = error("[[issuer]]\naudiences = [\"x\"]\n");
        assert!(neither.contains("no `iss`"), "{neither}");
        let wildcard = error("[[issuer]]\ntemplate = \"https://idp/{tenant}/\"\n");
        assert!(wildcard.contains("needs `tenants`"), "{wildcard}");
        let stray = error("[[issuer]]\niss = \"https://a/\"\ntenants = [\"t\"]\n");
        assert!(
            stray.contains("`tenants` belong to a `template`"),
            "{stray}"
        );
        let tenant_introspection = error(
            "[[issuer]]\ntemplate = \"https://idp/{tenant}/\"\ntenants = [\"t\"]\n\
             [issuer.introspection]\nurl = \"https://idp/i\"\nclient_id = \"c\"\n\
             client_secret_file = \"/nonexistent/secret\"\n",
        );
        assert!(
            tenant_introspection.contains("[issuer.introspection] on a `template`"),
            "{tenant_introspection}"
        );
        let roles = error("[[issuer]]\niss = \"https://a/\"\n[issuer.roles]\nadmin = [\"x\"]\n");
        assert!(roles.contains("no `role_claim`"), "{roles}");
        let duration = error("[[issuer]]\niss = \"https://a/\"\nleeway = \"soon\"\n");
        assert!(duration.contains("`soon` is not a duration"), "{duration}");
        let routing = error(
            "[[issuer]]\niss = \"https://a/\"\n[issuer.introspection]\nurl = \"https://a/i\"\n\
             client_id = \"c\"\nclient_secret_file = \"/nonexistent/secret\"\n",
        );
        assert!(routing.contains("client_secret_file"), "{routing}");
    }
}
