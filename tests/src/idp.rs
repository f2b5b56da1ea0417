//! An identity-provider double on 127.0.0.1, over real HTTP: OIDC discovery, JWKS and RFC 7662
//! introspection. It counts requests, and can rotate keys, fail, stall and go down (its port
//! closed) and come back on the same port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::issuer::TestKey;

/// How the provider answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Normal answers.
    Normal,
    /// HTTP 503 for everything.
    Failing,
    /// Never answers (sleeps for a minute).
    Stalled,
    /// Answers normally after this delay, from the state at the end of it.
    Slow(Duration),
}

/// The client that may get tokens from the token endpoint.
pub const TOKEN_CLIENT_ID: &str = "billing-service";
/// Its secret, until [`IdentityProvider::set_client_secret`] changes it.
pub const TOKEN_CLIENT_SECRET: &str = "first secret";

/// The client credentials the introspection endpoint accepts.
pub const CLIENT_ID: &str = "orders-api";
/// The secret of [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "introspection secret/with:odd chars";

#[derive(Default)]
struct Counters {
    discovery: AtomicUsize,
    jwks: AtomicUsize,
    introspection: AtomicUsize,
    token: AtomicUsize,
}

struct Inner {
    issuer: String,
    discovery_issuer: Mutex<Option<String>>,
    keys: Mutex<Vec<TestKey>>,
    /// Served instead of `keys` when set.
    raw_jwks: Mutex<Option<Value>>,
    max_age: Mutex<Option<u64>>,
    mode: Mutex<Mode>,
    answers: Mutex<HashMap<String, Value>>,
    client_secret: Mutex<String>,
    token_lifetime: Mutex<u64>,
    /// Whether token answers carry `expires_in`.
    expires_in: std::sync::atomic::AtomicBool,
    /// The key issued tokens are signed with.
    signing_key: Mutex<TestKey>,
    /// Whether a DPoP proof binds the token (a provider with DPoP), and the nonce it needs.
    dpop: Mutex<DpopPolicy>,
    /// The `dpop` header of each token request, in order.
    dpop_proofs: Mutex<Vec<Option<String>>>,
    counters: Counters,
    /// Set by [`IdentityProvider::down`]: requests on connections opened before the port
    /// closed fail too, and those connections are closed.
    down: std::sync::atomic::AtomicBool,
}

/// How the token endpoint treats DPoP proofs (RFC 9449 §5, §8).
#[derive(Clone, Debug)]
struct DpopPolicy {
    binds: bool,
    nonce: Option<String>,
}

/// The running double. Stops when dropped.
pub struct IdentityProvider {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("addr", &self.addr)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl IdentityProvider {
    /// Starts serving `keys` on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start(keys: &[TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Inner {
            issuer: format!("http://{addr}/"),
            discovery_issuer: Mutex::new(None),
            keys: Mutex::new(keys.to_vec()),
            raw_jwks: Mutex::new(None),
            max_age: Mutex::new(None),
            mode: Mutex::new(Mode::Normal),
            answers: Mutex::new(HashMap::new()),
            client_secret: Mutex::new(TOKEN_CLIENT_SECRET.to_owned()),
            token_lifetime: Mutex::new(300),
            expires_in: std::sync::atomic::AtomicBool::new(true),
            signing_key: Mutex::new(TestKey::Rsa1),
            dpop: Mutex::new(DpopPolicy {
                binds: true,
                nonce: None,
            }),
            dpop_proofs: Mutex::new(Vec::new()),
            counters: Counters::default(),
            down: std::sync::atomic::AtomicBool::new(false),
        });
        let provider = Self {
            addr,
            inner,
            server: Mutex::new(None),
        };
        provider.serve(listener);
        provider
    }

    fn serve(&self, listener: TcpListener) {
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .route("/token", post(token))
            .route(
                "/tenants/{tenant}/.well-known/openid-configuration",
                get(tenant_discovery),
            )
            .route("/tenants/{tenant}/jwks", get(jwks))
            .with_state(self.inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *lock(&self.server) = Some(task);
    }

    /// The issuer template of a multi-tenant provider: `http://127.0.0.1:PORT/tenants/{tenant}/`.
    /// Each tenant's discovery document names its own issuer and its own JWKS URL (serving
    /// the same keys); their requests count with the others.
    pub fn tenant_template(&self) -> String {
        format!("{}tenants/{{tenant}}/", self.inner.issuer)
    }

    /// The issuer URL, `http://127.0.0.1:PORT/`.
    pub fn issuer(&self) -> String {
        self.inner.issuer.clone()
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// The introspection endpoint.
    pub fn introspection_url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// Serves these keys from now on.
    pub fn set_keys(&self, keys: &[TestKey]) {
        *lock(&self.inner.raw_jwks) = None;
        *lock(&self.inner.keys) = keys.to_vec();
    }

    /// Serves this JWKS document as it is (kid-less or reused kids, say) until the next
    /// [`set_keys`](Self::set_keys).
    pub fn set_jwks(&self, document: Value) {
        *lock(&self.inner.raw_jwks) = Some(document);
    }

    /// Sends `Cache-Control: max-age` with the JWKS.
    pub fn set_max_age(&self, seconds: Option<u64>) {
        *lock(&self.inner.max_age) = seconds;
    }

    /// Makes discovery name another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *lock(&self.inner.discovery_issuer) = Some(issuer.to_owned());
    }

    /// Fails or stalls every endpoint, or answers normally again.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.inner.mode) = mode;
    }

    /// The introspection answer for `token`; unknown tokens are inactive.
    pub fn set_introspection(&self, token: &str, answer: Value) {
        lock(&self.inner.answers).insert(token.to_owned(), answer);
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The secret the token endpoint accepts for [`TOKEN_CLIENT_ID`] from now on.
    pub fn set_client_secret(&self, secret: &str) {
        *lock(&self.inner.client_secret) = secret.to_owned();
    }

    /// The lifetime of the tokens issued from now on.
    pub fn set_token_lifetime(&self, seconds: u64) {
        *lock(&self.inner.token_lifetime) = seconds;
    }

    /// Whether token answers carry `expires_in` from now on (they do unless turned off); the
    /// tokens' `exp` follows [`set_token_lifetime`](Self::set_token_lifetime) either way.
    pub fn set_send_expires_in(&self, send: bool) {
        self.inner.expires_in.store(send, Ordering::SeqCst);
    }

    /// Signs the tokens issued from now on with `key` (`rsa-1` until changed).
    pub fn set_signing_key(&self, key: TestKey) {
        *lock(&self.inner.signing_key) = key;
    }

    /// Whether the token endpoint binds tokens to a DPoP proof's key (it does unless turned
    /// off): a checked proof makes a `token_type: DPoP` answer whose JWT carries `cnf.jkt`.
    /// Off, it ignores proofs and issues bearer tokens, as a provider without DPoP does.
    pub fn set_dpop_binding(&self, binds: bool) {
        lock(&self.inner.dpop).binds = binds;
    }

    /// Makes the token endpoint demand `nonce` in proofs: a proof without it is refused with
    /// 400 `use_dpop_nonce` and `DPoP-Nonce: <nonce>` (RFC 9449 §8). `None`: no nonce.
    pub fn require_dpop_nonce(&self, nonce: Option<&str>) {
        lock(&self.inner.dpop).nonce = nonce.map(str::to_owned);
    }

    /// The `dpop` header of each token request so far, in order (`None`: no proof).
    pub fn dpop_proofs(&self) -> Vec<Option<String>> {
        lock(&self.inner.dpop_proofs).clone()
    }

    /// Token requests so far.
    pub fn token_requests(&self) -> usize {
        self.inner.counters.token.load(Ordering::SeqCst)
    }

    /// Discovery requests so far.
    pub fn discovery_requests(&self) -> usize {
        self.inner.counters.discovery.load(Ordering::SeqCst)
    }

    /// JWKS requests so far.
    pub fn jwks_requests(&self) -> usize {
        self.inner.counters.jwks.load(Ordering::SeqCst)
    }

    /// Introspection requests so far.
    pub fn introspection_requests(&self) -> usize {
        self.inner.counters.introspection.load(Ordering::SeqCst)
    }

    /// Closes the port: connections are refused until [`up`](Self::up).
    pub async fn down(&self) {
        self.inner.down.store(true, Ordering::SeqCst);
        let task = lock(&self.server).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same port.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound again.
    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) if tries < 50 => {
                    tries += 1;
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("cannot rebind {}: {error}", self.addr),
            }
        };
        self.inner.down.store(false, Ordering::SeqCst);
        self.serve(listener);
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.server).take() {
            task.abort();
        }
    }
}

async fn gate(inner: &Inner) -> Option<Response> {
    if inner.down.load(Ordering::SeqCst) {
        let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return Some(response);
    }
    let mode = *lock(&inner.mode);
    match mode {
        Mode::Normal => None,
        Mode::Failing => Some(StatusCode::SERVICE_UNAVAILABLE.into_response()),
        Mode::Stalled => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Some(StatusCode::GATEWAY_TIMEOUT.into_response())
        }
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    inner.counters.discovery.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&inner).await {
        return response;
    }
    let issuer = lock(&inner.discovery_issuer)
        .clone()
        .unwrap_or_else(|| inner.issuer.clone());
    let base = inner.issuer.trim_end_matches('/');
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/jwks"),
        "introspection_endpoint": format!("{base}/introspect"),
        "token_endpoint": format!("{base}/token"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
    .into_response()
}

async fn tenant_discovery(
    State(inner): State<Arc<Inner>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
) -> Response {
    inner.counters.discovery.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&inner).await {
        return response;
    }
    let issuer = format!("{}tenants/{tenant}/", inner.issuer);
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}jwks"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
    .into_response()
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    inner.counters.jwks.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&inner).await {
        return response;
    }
    let document = lock(&inner.raw_jwks).clone().unwrap_or_else(|| {
        let keys: Vec<Value> = lock(&inner.keys)
            .iter()
            .map(|k| serde_json::to_value(k.jwk()).expect("JWK serialises"))
            .collect();
        json!({ "keys": keys })
    });
    let mut response = axum::Json(document).into_response();
    if let Some(max_age) = *lock(&inner.max_age)
        && let Ok(value) = format!("public, max-age={max_age}").parse()
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// RFC 7662 with `client_secret_basic` or `client_secret_post`.
async fn introspect(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.counters.introspection.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&inner).await {
        return response;
    }
    let basic = basic_credentials(&headers);
    let post = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        _ => None,
    };
    let authenticated = [basic, post]
        .into_iter()
        .flatten()
        .any(|(id, secret)| id == CLIENT_ID && secret == CLIENT_SECRET);
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(token) = form.get("token") else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    };
    let answer = lock(&inner.answers)
        .get(token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    axum::Json(answer).into_response()
}

/// The client id and secret of an HTTP Basic `authorization` header (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((form_decode(id), form_decode(secret)))
        })
}

fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match decoded {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// The client of a token request: `client_secret_basic`, `client_secret_post` or
/// `private_key_jwt` (an assertion signed by the `ec-256` test key).
fn token_client(
    inner: &Inner,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<String> {
    let secret = lock(&inner.client_secret).clone();
    let basic = basic_credentials(headers);
    if let Some((id, given)) = basic {
        return (id == TOKEN_CLIENT_ID && given == secret).then_some(id);
    }
    if let (Some(id), Some(given)) = (form.get("client_id"), form.get("client_secret")) {
        return (id == TOKEN_CLIENT_ID && *given == secret).then(|| id.clone());
    }
    if form.get("client_assertion_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        let assertion = form.get("client_assertion")?;
        let key = jsonwebtoken::DecodingKey::from_ec_pem(TestKey::Ec256.public_pem()).ok()?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[format!("{}token", inner.issuer)]);
        validation.set_issuer(&[TOKEN_CLIENT_ID]);
        let data = jsonwebtoken::decode::<Value>(assertion, &key, &validation).ok()?;
        return (data.claims["sub"] == TOKEN_CLIENT_ID).then(|| TOKEN_CLIENT_ID.to_owned());
    }
    None
}

/// Client credentials and RFC 8693 token exchange, issuing RFC 9068 access tokens.
async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.counters.token.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = gate(&inner).await {
        return response;
    }
    let Some(client_id) = token_client(&inner, &headers, &form) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let jkt = match dpop_binding(&inner, &headers) {
        Ok(jkt) => jkt,
        Err(response) => return *response,
    };
    let now = crate::issuer::now();
    let lifetime = *lock(&inner.token_lifetime);
    let audience = form
        .get("audience")
        .or_else(|| form.get("resource"))
        .cloned()
        .unwrap_or_else(|| crate::issuer::AUDIENCE.to_owned());
    let mut claims = json!({
        "iss": inner.issuer,
        "aud": audience,
        "client_id": client_id,
        "iat": now,
        "exp": now + lifetime as i64,
        "jti": format!("issued-{}-{}", now, inner.counters.token.load(Ordering::SeqCst)),
        "scope": form.get("scope").cloned().unwrap_or_default(),
    });
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            claims["sub"] = json!(client_id);
        }
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
            let read = |name: &str| -> Option<Value> {
                let token = form.get(name)?;
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.set_issuer(&[inner.issuer.as_str(), crate::issuer::ISSUER]);
                validation.validate_aud = false;
                let key =
                    jsonwebtoken::DecodingKey::from_rsa_pem(TestKey::Rsa1.public_pem()).ok()?;
                jsonwebtoken::decode::<Value>(token, &key, &validation)
                    .ok()
                    .map(|d| d.claims)
            };
            let Some(subject) = read("subject_token") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            claims["sub"] = subject["sub"].clone();
            if !form.contains_key("scope") {
                claims["scope"] = subject["scope"].clone();
            }
            if form.contains_key("actor_token") {
                let Some(actor) = read("actor_token") else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                };
                let mut act = json!({ "sub": actor["sub"].clone() });
                if let Some(prior) = subject.get("act") {
                    act["act"] = prior.clone();
                }
                claims["act"] = act;
            }
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    if let Some(jkt) = &jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let key = *lock(&inner.signing_key);
    let token = crate::issuer::sign_json(&crate::issuer::header(key), &claims, key);
    let mut answer = json!({
        "access_token": token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    });
    if inner.expires_in.load(Ordering::SeqCst) {
        answer["expires_in"] = json!(lifetime);
    }
    axum::Json(answer).into_response()
}

/// The key a token request's DPoP proof binds the token to (RFC 9449 §5): the thumbprint of
/// a proof checked independently (signature under its `jwk`, `htm` `POST`, `htu` this token
/// endpoint, no `ath`, `iat` within a minute, the nonce if one is demanded); `None` without
/// a proof or with binding off. A bad proof is refused with `invalid_dpop_proof`, a missing
/// nonce with `use_dpop_nonce` and the nonce.
fn dpop_binding(inner: &Inner, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let values: Vec<&header::HeaderValue> = headers.get_all("dpop").iter().collect();
    let proof = values
        .first()
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&inner.dpop_proofs).push(proof.clone());
    let policy = lock(&inner.dpop).clone();
    let Some(proof) = proof.filter(|_| policy.binds) else {
        return Ok(None);
    };
    let refused = || Box::new(oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
    if values.len() != 1 {
        return Err(refused());
    }
    let checked = crate::dpop::check(&proof).map_err(|_| refused())?;
    let fresh = checked.claims["iat"]
        .as_i64()
        .is_some_and(|iat| (iat - crate::issuer::now()).abs() <= 60);
    if checked.claim("htm") != "POST"
        || checked.claim("htu") != format!("{}token", inner.issuer)
        || checked.claims.get("ath").is_some()
        || !fresh
    {
        return Err(refused());
    }
    if let Some(nonce) = &policy.nonce
        && checked.claim("nonce") != nonce
    {
        let mut response = oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
        if let Ok(value) = header::HeaderValue::from_str(nonce) {
            response.headers_mut().insert("dpop-nonce", value);
        }
        return Err(Box::new(response));
    }
    Ok(Some(checked.jkt))
}
