//! Trusted issuers: [`Issuer`], one identity provider with its own keys, audiences and token
//! profile, and the [`Profile`] each becomes inside a [`Validator`](crate::Validator).
//!
//! A token's `iss` (read from the payload before the signature is checked, compared exactly)
//! picks one profile; only that profile's keys are tried, so a key of one provider never
//! vouches for a token naming another (RFC 8725 §3.8). An `iss` no profile has is refused
//! before anything is fetched.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::keys::{Algorithm, KeySource, Keys};

use super::TokenTypes;
use super::claims::Trust;
#[cfg(feature = "introspection")]
use super::introspect::{Introspection, Introspector};

/// The placeholder of a tenant in an issuer template.
pub(super) const TENANT: &str = "{tenant}";

/// The longest tenant id an allow-list may hold.
const MAX_TENANT_LEN: usize = 128;

/// One trusted identity provider of a [`Validator`](crate::Validator): the `iss` it signs
/// as, its own keys (static, a JWKS URL or discovery), the audiences it must name, and how
/// its tokens read (token types, the scope claim, roles, clock leeway, lifetime bound,
/// algorithms, introspection). Given to [`ValidatorBuilder::trust`](crate::ValidatorBuilder::trust),
/// once per provider.
///
/// A token is checked by the provider its `iss` names, and by no other: a key of the
/// partner's provider cannot sign a token that names the corporate one. What an issuer
/// leaves unset of the audiences, clock leeway, lifetime bound and algorithm allow-list is
/// taken from the builder; what describes one provider's tokens (token types, the scope,
/// audience and role claims, role mappings), its keys and its introspection never is.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use oauth_grpc::{Algorithm, Issuer, KeySet, TokenError, TokenTypes, Validator};
///
/// let corporate = KeySet::from_hmac_secret(Some("corp"), &[1; 32], Algorithm::HS256)?;
/// let partner = KeySet::from_hmac_secret(Some("partner"), &[2; 32], Algorithm::HS256)?;
/// let validator = Validator::builder()
///     .audience("orders-api") // for every issuer that names no audience of its own
///     .trust(Issuer::new("https://login.corp.example/").keys(corporate))
///     .trust(
///         Issuer::new("https://partner.example/")
///             .keys(partner)
///             .token_types(TokenTypes::AllowPlainJwt)
///             .scope_claim("permissions")
///             .leeway(Duration::from_secs(10)),
///     )
///     .build()?;
///
/// let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
/// let token = |iss: &str, kid: &str, secret: &[u8]| {
///     let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
///     header.kid = Some(kid.into());
///     let claims = serde_json::json!({
///         "iss": iss, "aud": "orders-api", "sub": "alice", "exp": now + 300,
///         "permissions": ["orders:read"],
///     });
///     jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
/// };
/// let partner_token = token("https://partner.example/", "partner", &[2; 32])?;
/// let caller = validator.validate_at(&partner_token, SystemTime::now())?;
/// assert_eq!(caller.issuer(), Some("https://partner.example/"));
/// assert!(caller.has_scope("orders:read"));
///
/// // Signed with the partner's key, but naming the corporate issuer: refused.
/// let forged = token("https://login.corp.example/", "partner", &[2; 32])?;
/// assert!(validator.validate_at(&forged, SystemTime::now()).is_err());
/// // An issuer no one trusts: refused before any key is looked at.
/// let stranger = token("https://other.example/", "partner", &[2; 32])?;
/// assert_eq!(validator.validate_at(&stranger, SystemTime::now()), Err(TokenError::WrongIssuer));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Issuer {
    pub(super) names: Vec<String>,
    pub(super) tenants: Option<Vec<String>>,
    pub(super) settings: Settings,
}

/// What one issuer says about its tokens; for the audiences, leeway, lifetime bound and
/// algorithms `None` and empty mean "as the builder says", for the rest "the default".
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    pub(super) audiences: Vec<String>,
    pub(super) keys: Vec<KeySource>,
    pub(super) key_files: Vec<PathBuf>,
    #[cfg(feature = "introspection")]
    pub(super) introspection: Option<Introspection>,
    pub(super) leeway: Option<Duration>,
    pub(super) max_lifetime: Option<Duration>,
    pub(super) token_types: Option<TokenTypes>,
    pub(super) scope_claim: Option<String>,
    pub(super) audience_claim: Option<String>,
    pub(super) role_claim: Option<String>,
    pub(super) role_scopes: HashMap<String, Vec<String>>,
    pub(super) algorithms: Option<Vec<Algorithm>>,
}

impl Settings {
    /// Whether these settings name keys or introspection, which only an issuer may own.
    pub(super) fn has_key_material(&self) -> bool {
        #[cfg(feature = "introspection")]
        let introspection = self.introspection.is_some();
        #[cfg(not(feature = "introspection"))]
        let introspection = false;
        !self.keys.is_empty() || !self.key_files.is_empty() || introspection
    }

    /// These settings, with what they leave unset taken from `defaults`: the audiences
    /// (this server's identity), the clock leeway, the lifetime bound and the algorithm
    /// allow-list. What describes one provider's tokens (token types, the scope, audience
    /// and role claims, role mappings), keys and introspection are never inherited.
    fn inherit(mut self, defaults: &Settings) -> Self {
        if self.audiences.is_empty() {
            self.audiences.clone_from(&defaults.audiences);
        }
        self.leeway = self.leeway.or(defaults.leeway);
        self.max_lifetime = self.max_lifetime.or(defaults.max_lifetime);
        if self.algorithms.is_none() {
            self.algorithms.clone_from(&defaults.algorithms);
        }
        self
    }

    /// The first setting that describes one provider's tokens, when there is one: the
    /// builder may hold these only for its own `.issuer(…)`.
    pub(super) fn provider_setting(&self) -> Option<&'static str> {
        if self.token_types.is_some() {
            Some("token_types")
        } else if self.scope_claim.is_some() {
            Some("scope_claim")
        } else if self.audience_claim.is_some() {
            Some("audience_claim")
        } else if self.role_claim.is_some() {
            Some("role_claim")
        } else if !self.role_scopes.is_empty() {
            Some("map_role")
        } else {
            None
        }
    }
}

impl Issuer {
    /// A provider whose tokens carry exactly `iss` (compared byte for byte: a trailing `/`
    /// counts).
    ///
    /// ```
    /// let corporate = oauth_grpc::Issuer::new("https://login.corp.example/");
    /// # let _ = corporate;
    /// ```
    pub fn new(iss: impl Into<String>) -> Self {
        Self {
            names: vec![iss.into()],
            tenants: None,
            settings: Settings::default(),
        }
    }

    /// A multi-tenant provider whose issuer embeds the tenant, such as Entra ID's
    /// `https://login.microsoftonline.com/{tenant}/v2.0` or one Auth0 custom domain per
    /// customer: `template` holds `{tenant}` once, and only the tenants of `allowed` are
    /// trusted — there is no wildcard. Each tenant is its own issuer with its own keys,
    /// fetched when a token of that tenant first arrives (one fetch for all the calls that
    /// wait for it) and refreshed from then on; a tenant no token names costs no request.
    /// The keys come by discovery of the tenant's issuer unless [`keys`](Self::keys) gives
    /// a source, in whose URL `{tenant}` is replaced too.
    ///
    /// Tenant ids are the characters `A-Z a-z 0-9 - . _ ~`, at most 128, so that a tenant
    /// cannot change the issuer's path; [`build`](crate::ValidatorBuilder::build) says
    /// which id or template is wrong.
    ///
    /// ```
    /// use oauth_grpc::{Issuer, KeySource, Validator};
    ///
    /// let entra = Issuer::tenants(
    ///     "https://login.microsoftonline.com/{tenant}/v2.0",
    ///     ["8eaef023-2b34-4da1-9baa-8bc8c9d6a490", "72f988bf-86f1-41af-91ab-2d7cd011db47"],
    /// )
    /// .audience("api://orders");
    /// let validator = Validator::builder().trust(entra).build()?;
    /// # let _ = validator;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    pub fn tenants<I, S>(template: impl Into<String>, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            names: vec![template.into()],
            tenants: Some(allowed.into_iter().map(Into::into).collect()),
            settings: Settings::default(),
        }
    }

    /// Another `iss` of the same provider, trusting the same keys — Entra ID's v1 issuer
    /// `https://sts.windows.net/{tenant}/` beside its v2 one, say. Not for another provider:
    /// give that one an `Issuer` of its own.
    ///
    /// ```
    /// let entra = oauth_grpc::Issuer::new("https://login.microsoftonline.com/acme/v2.0")
    ///     .alias("https://sts.windows.net/acme/");
    /// # let _ = entra;
    /// ```
    #[must_use]
    pub fn alias(mut self, iss: impl Into<String>) -> Self {
        self.names.push(iss.into());
        self
    }

    /// Accepts tokens of this issuer whose `aud` contains `audience`. May be called several
    /// times; without it, the builder's audiences apply.
    ///
    /// ```
    /// let partner = oauth_grpc::Issuer::new("https://partner.example/").audience("orders");
    /// # let _ = partner;
    /// ```
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audiences.push(audience.into());
        self
    }

    /// This issuer's keys: a [`KeySet`](crate::KeySet), or a remote
    /// [`KeySource`] (discovery, which must be for this issuer, or a JWKS URL).
    ///
    /// ```
    /// use oauth_grpc::{Issuer, KeySource};
    /// let partner = Issuer::new("https://partner.example/")
    ///     .keys(KeySource::discover("https://partner.example/"));
    /// # let _ = partner;
    /// ```
    #[must_use]
    pub fn keys(mut self, keys: impl Into<KeySource>) -> Self {
        self.settings.keys.push(keys.into());
        self
    }

    /// This issuer's keys from a JWKS file, read when the validator is built.
    ///
    /// ```
    /// let partner = oauth_grpc::Issuer::new("https://partner.example/").jwks_file("partner.json");
    /// # let _ = partner;
    /// ```
    #[must_use]
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.key_files.push(path.into());
        self
    }

    /// Introspection (RFC 7662) at this issuer. Opaque tokens name no issuer, so at most one
    /// issuer of a validator may take them; another introspecting issuer says
    /// [`TokenRouting::IntrospectJwts`](crate::TokenRouting::IntrospectJwts).
    ///
    /// ```
    /// use oauth_grpc::{ClientSecret, Introspection, Issuer};
    /// let partner = Issuer::new("https://partner.example/").introspection(Introspection::new(
    ///     "https://partner.example/introspect",
    ///     "orders-api",
    ///     ClientSecret::new("secret"),
    /// ));
    /// # let _ = partner;
    /// ```
    #[cfg(feature = "introspection")]
    #[must_use]
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.settings.introspection = Some(introspection);
        self
    }

    /// Clock skew tolerated on this issuer's `exp`, `nbf` and `iat`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let partner = oauth_grpc::Issuer::new("https://partner.example/").leeway(Duration::from_secs(5));
    /// # let _ = partner;
    /// ```
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.settings.leeway = Some(leeway);
        self
    }

    /// Refuses this issuer's tokens whose `exp - iat` exceeds `lifetime`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let partner = oauth_grpc::Issuer::new("https://partner.example/").max_lifetime(Duration::from_secs(3600));
    /// # let _ = partner;
    /// ```
    #[must_use]
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.max_lifetime = Some(lifetime);
        self
    }

    /// Which `typ` values this issuer's tokens may carry.
    ///
    /// ```
    /// use oauth_grpc::{Issuer, TokenTypes};
    /// let auth0 = Issuer::new("https://acme.eu.auth0.com/").token_types(TokenTypes::AllowPlainJwt);
    /// # let _ = auth0;
    /// ```
    #[must_use]
    pub fn token_types(mut self, types: TokenTypes) -> Self {
        self.settings.token_types = Some(types);
        self
    }

    /// Reads this issuer's scopes from `claim` (Auth0's `permissions`, say).
    ///
    /// ```
    /// let auth0 = oauth_grpc::Issuer::new("https://acme.eu.auth0.com/").scope_claim("permissions");
    /// # let _ = auth0;
    /// ```
    #[must_use]
    pub fn scope_claim(mut self, claim: impl Into<String>) -> Self {
        self.settings.scope_claim = Some(claim.into());
        self
    }

    /// Checks this issuer's audiences against `claim` instead of `aud` (Cognito's
    /// `client_id`).
    ///
    /// ```
    /// let cognito = oauth_grpc::Issuer::new("https://cognito-idp.eu-west-1.amazonaws.com/pool")
    ///     .audience_claim("client_id");
    /// # let _ = cognito;
    /// ```
    #[must_use]
    pub fn audience_claim(mut self, claim: impl Into<String>) -> Self {
        self.settings.audience_claim = Some(claim.into());
        self
    }

    /// Reads this issuer's roles from a claim path (dot-separated); see
    /// [`map_role`](Self::map_role).
    ///
    /// ```
    /// let keycloak = oauth_grpc::Issuer::new("https://kc.example/realms/shop")
    ///     .role_claim("realm_access.roles")
    ///     .map_role("orders-admin", ["orders:admin"]);
    /// # let _ = keycloak;
    /// ```
    #[must_use]
    pub fn role_claim(mut self, path: impl Into<String>) -> Self {
        self.settings.role_claim = Some(path.into());
        self
    }

    /// A token of this issuer holding `role` is granted `scopes`.
    ///
    /// ```
    /// let keycloak = oauth_grpc::Issuer::new("https://kc.example/realms/shop")
    ///     .role_claim("roles")
    ///     .map_role("reader", ["orders:read"]);
    /// # let _ = keycloak;
    /// ```
    #[must_use]
    pub fn map_role<I, S>(mut self, role: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings
            .role_scopes
            .entry(role.into())
            .or_default()
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Accepts only these algorithms from this issuer.
    ///
    /// ```
    /// use oauth_grpc::{Algorithm, Issuer};
    /// let partner = Issuer::new("https://partner.example/").algorithms([Algorithm::ES256]);
    /// # let _ = partner;
    /// ```
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.settings.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The issuers this entry stands for: its names, or one per allowed tenant.
    fn expand(&self) -> Result<Vec<Expanded>, ConfigError> {
        let Some(tenants) = &self.tenants else {
            if let Some(name) = self.names.iter().find(|n| n.contains(TENANT)) {
                return Err(ConfigError::IssuerTemplate {
                    template: name.clone(),
                    problem: "`{tenant}` is only for `Issuer::tenants(template, allowed)`",
                });
            }
            return Ok(vec![(self.names.clone(), None)]);
        };
        let template_problem = |template: &str| {
            if template.matches(TENANT).count() != 1 {
                Some("it must hold `{tenant}` exactly once")
            } else if template.starts_with(TENANT) {
                Some("the tenant cannot be the start of the issuer")
            } else {
                None
            }
        };
        for template in &self.names {
            if let Some(problem) = template_problem(template) {
                return Err(ConfigError::IssuerTemplate {
                    template: template.clone(),
                    problem,
                });
            }
        }
        if tenants.is_empty() {
            return Err(ConfigError::NoTenants(self.names[0].clone()));
        }
        #[cfg(feature = "introspection")]
        if self.settings.introspection.is_some() {
            return Err(ConfigError::TenantIntrospection(self.names[0].clone()));
        }
        let mut expanded = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let valid = !tenant.is_empty()
                && tenant.len() <= MAX_TENANT_LEN
                && tenant != "."
                && tenant != ".."
                && tenant
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !valid {
                return Err(ConfigError::Tenant(tenant.clone()));
            }
            let names = self
                .names
                .iter()
                .map(|template| template.replace(TENANT, tenant))
                .collect();
            expanded.push((names, Some(tenant.clone())));
        }
        Ok(expanded)
    }
}

/// One issuer of an [`Issuer`] entry: its names, and its tenant if it is one of a template.
type Expanded = (Vec<String>, Option<String>);

/// The configured source with `{tenant}` in its URL replaced, or discovery of `issuer`.
fn tenant_keys(settings: &Settings, issuer: &str, tenant: &str) -> Vec<KeySource> {
    #[cfg(feature = "jwks")]
    if settings.keys.is_empty() && settings.key_files.is_empty() {
        return vec![KeySource::discover(issuer)];
    }
    let _ = issuer;
    settings
        .keys
        .iter()
        .map(|source| source.for_tenant(TENANT, tenant))
        .collect()
}

/// One trusted issuer as the validator uses it: the trust its tokens must meet, its keys,
/// and how its tokens are read.
pub(super) struct Profile {
    pub(super) trust: Arc<Trust>,
    pub(super) keys: Keys,
    #[cfg(feature = "introspection")]
    pub(super) introspector: Option<Introspector>,
    pub(super) max_lifetime: Option<u64>,
    pub(super) token_types: TokenTypes,
    pub(super) scope_claim: Option<String>,
    pub(super) audience_claim: Option<String>,
    pub(super) role_claim: Option<Vec<String>>,
    pub(super) role_scopes: HashMap<String, Vec<String>>,
    pub(super) algorithms: Option<Vec<Algorithm>>,
    /// Whether its keys are fetched on first use (a tenant), not at build.
    pub(super) lazy: bool,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("iss", &self.trust.issuers)
            .field("audiences", &self.trust.audiences)
            .field("keys", &self.keys.describe())
            .field("leeway", &self.trust.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .field("token_types", &self.token_types)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// The `iss` this profile is known by first.
    #[cfg(feature = "introspection")]
    pub(super) fn name(&self) -> &str {
        self.trust.issuers.first().map_or("", |name| name)
    }
}

/// Every trusted issuer of one validator, by `iss`.
pub(super) struct Registry {
    /// Every `iss` a profile answers to, to its profile.
    by_name: HashMap<String, Arc<Profile>>,
    /// Each profile once, in configuration order.
    pub(super) profiles: Vec<Arc<Profile>>,
    /// The profile opaque tokens go to, when one introspects them.
    #[cfg(feature = "introspection")]
    pub(super) opaque: Option<Arc<Profile>>,
    /// The claims whose arrays and objects some check reads (`aud`, `act`, `cnf`, the scope
    /// and role claims of every profile): a payload builds those, and only walks the rest.
    read: Vec<String>,
}

impl Registry {
    /// Builds every profile of `issuers`, with what each leaves unset from `defaults`.
    pub(super) fn build(
        issuers: Vec<Issuer>,
        defaults: &Settings,
        max_delegation_depth: usize,
    ) -> Result<Self, ConfigError> {
        if issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        let mut by_name = HashMap::new();
        let mut profiles = Vec::new();
        #[cfg(feature = "introspection")]
        let mut opaque: Option<Arc<Profile>> = None;
        // One HTTP client for every tenant of a template (one connection pool, one TLS
        // set-up), unless its key source brings its own.
        #[cfg(feature = "jwks")]
        let mut shared_http: Option<crate::provider::HttpClient> = None;
        for issuer in issuers {
            let settings = issuer.settings.clone().inherit(defaults);
            for (names, tenant) in issuer.expand()? {
                if names.iter().any(String::is_empty) {
                    return Err(ConfigError::Empty("issuer"));
                }
                let mut settings = settings.clone();
                if let Some(tenant) = &tenant {
                    settings.keys = tenant_keys(&settings, &names[0], tenant);
                    #[cfg(feature = "jwks")]
                    {
                        let http = match &shared_http {
                            Some(http) => http.clone(),
                            None => {
                                let http = crate::provider::HttpClient::new()?;
                                shared_http = Some(http.clone());
                                http
                            }
                        };
                        settings.keys = std::mem::take(&mut settings.keys)
                            .into_iter()
                            .map(|source| source.default_http_client(&http))
                            .collect();
                    }
                }
                let profile = Arc::new(profile(
                    names,
                    settings,
                    tenant.is_some(),
                    max_delegation_depth,
                )?);
                for name in &profile.trust.issuers {
                    if by_name.insert(name.to_string(), profile.clone()).is_some() {
                        return Err(ConfigError::DuplicateIssuer(crate::error::shown_url(name)));
                    }
                }
                #[cfg(feature = "introspection")]
                if profile
                    .introspector
                    .as_ref()
                    .is_some_and(Introspector::takes_opaque_tokens)
                {
                    if let Some(first) = &opaque {
                        return Err(ConfigError::OpaqueTokensTwice {
                            first: crate::error::shown_url(first.name()),
                            second: crate::error::shown_url(profile.name()),
                        });
                    }
                    opaque = Some(profile.clone());
                }
                profiles.push(profile);
            }
        }
        let mut read: Vec<String> = ["aud", "act", "cnf", "scope", "scp"]
            .map(String::from)
            .into();
        for profile in &profiles {
            let named = [
                profile.audience_claim.as_deref(),
                profile.scope_claim.as_deref(),
                profile
                    .role_claim
                    .as_ref()
                    .and_then(|path| path.first())
                    .map(String::as_str),
            ];
            for name in named.into_iter().flatten() {
                if !read.iter().any(|known| known == name) {
                    read.push(name.to_owned());
                }
            }
        }
        Ok(Self {
            by_name,
            profiles,
            #[cfg(feature = "introspection")]
            opaque,
            read,
        })
    }

    /// The introspection of the issuer that takes opaque tokens, if one does.
    #[cfg(feature = "introspection")]
    pub(super) fn opaque_introspector(&self) -> Option<&Introspector> {
        self.opaque
            .as_ref()
            .and_then(|profile| profile.introspector.as_ref())
    }

    /// Whether some check reads into claim `name` when it is an array or an object.
    pub(super) fn reads_into(&self, name: &str) -> bool {
        self.read.iter().any(|read| read == name)
    }

    /// The profile of a token whose `iss` is `iss`, compared exactly.
    pub(super) fn get(&self, iss: &str) -> Option<&Arc<Profile>> {
        // One issuer: a comparison, not a hash.
        if let [only] = self.profiles.as_slice() {
            return only
                .trust
                .issuers
                .iter()
                .any(|n| &**n == iss)
                .then_some(only);
        }
        self.by_name.get(iss)
    }

    /// The first profile: the validator's own settings (clock leeway for DPoP proofs).
    pub(super) fn first(&self) -> &Arc<Profile> {
        // `build` refuses an empty list.
        &self.profiles[0]
    }
}

/// One profile from its names and settings.
fn profile(
    names: Vec<String>,
    settings: Settings,
    lazy: bool,
    max_delegation_depth: usize,
) -> Result<Profile, ConfigError> {
    let shown = || crate::error::shown_url(&names[0]);
    if settings.audiences.is_empty() {
        return Err(ConfigError::NoAudienceFor(shown()));
    }
    if settings.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::Empty("audience"));
    }
    let keys = Keys::from_sources(settings.keys, &settings.key_files, &names)?;
    #[cfg(feature = "introspection")]
    let has_introspection = settings.introspection.is_some();
    #[cfg(not(feature = "introspection"))]
    let has_introspection = false;
    if keys.is_empty() && !has_introspection {
        return Err(ConfigError::NoKeysFor(shown()));
    }
    let role_claim = match settings.role_claim {
        None if !settings.role_scopes.is_empty() => return Err(ConfigError::RolesWithoutClaim),
        None => None,
        Some(path) => {
            let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
            if segments.iter().any(String::is_empty) {
                return Err(ConfigError::RolePath(path));
            }
            Some(segments)
        }
    };
    if let Some(claim) = &settings.scope_claim
        && claim.is_empty()
    {
        return Err(ConfigError::Empty("scope claim name"));
    }
    let trust = Arc::new(Trust {
        issuers: names.into_iter().map(Arc::from).collect(),
        audiences: settings.audiences,
        leeway: settings.leeway.unwrap_or(Duration::from_secs(60)).as_secs(),
        max_delegation_depth,
    });
    #[cfg(feature = "introspection")]
    let introspector = match settings.introspection {
        Some(config) => Some(Introspector::new(config, trust.clone(), !keys.is_empty())?),
        None => None,
    };
    Ok(Profile {
        trust,
        keys,
        #[cfg(feature = "introspection")]
        introspector,
        max_lifetime: settings.max_lifetime.map(|d| d.as_secs()),
        token_types: settings.token_types.unwrap_or_default(),
        scope_claim: settings.scope_claim,
        audience_claim: settings.audience_claim,
        role_claim,
        role_scopes: settings.role_scopes,
        algorithms: settings.algorithms,
        lazy,
    })
}

/// An issuer with one static HMAC key (generation 0) and `leeway` seconds of leeway.
#[cfg(test)]
pub(super) fn test_profile(leeway: u64) -> Arc<Profile> {
    let keys = crate::keys::KeySet::from_hmac_secret(None, &[1; 32], Algorithm::HS256)
        .expect("a 32-byte secret");
    let issuer = Issuer::new("https://idp.example/")
        .audience("api")
        .keys(keys)
        .leeway(Duration::from_secs(leeway));
    Registry::build(vec![issuer], &Settings::default(), 4)
        .expect("one issuer")
        .first()
        .clone()
}
