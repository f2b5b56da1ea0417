//! A development identity provider on 127.0.0.1 for the demo and local experiments: a key
//! pair generated at start, OIDC discovery, JWKS and a token endpoint over real HTTP for
//! client credentials and RFC 8693 token exchange (an agent trading its user's token and its
//! own for a delegated one). Not for production: it keeps no state and trusts five fixed
//! clients.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use examples::dev_issuer::{DevIssuer, READER};
//!
//! let issuer = DevIssuer::start("orders-api").await?;
//! println!("issuer {} — client {} / {}", issuer.issuer(), READER.id, READER.secret);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use oauth_grpc::testing::{TestIssuer, TestingError};
use serde_json::json;
use tokio::net::TcpListener;

/// A client the development issuer knows.
#[derive(Debug, Clone, Copy)]
pub struct DevClient {
    /// The client id.
    pub id: &'static str,
    /// Its secret (a development value; real secrets live in files).
    pub secret: &'static str,
    /// The scopes it may be granted.
    pub scopes: &'static [&'static str],
}

/// May read orders.
pub const READER: DevClient = DevClient {
    id: "orders-reader",
    secret: "reader-secret",
    scopes: &["orders:read"],
};

/// May read, write, cancel and refund orders.
pub const WRITER: DevClient = DevClient {
    id: "orders-writer",
    secret: "writer-secret",
    scopes: &[
        "orders:read",
        "orders:write",
        "orders:cancel",
        "orders:refund",
    ],
};

/// May read orders and use the back office (`orders.v1.OrdersAdmin`).
pub const ADMIN: DevClient = DevClient {
    id: "orders-admin",
    secret: "admin-secret",
    scopes: &["orders:read", "orders:admin"],
};

/// An AI assistant: an agent that acts for users by token exchange. Its own token carries no
/// scope; a delegated one carries the user's, with `act.sub` = `assistant`.
pub const ASSISTANT: DevClient = DevClient {
    id: "assistant",
    secret: "assistant-secret",
    scopes: &[],
};

/// Another agent, one the orders service does not list for writes.
pub const REPORTING_AGENT: DevClient = DevClient {
    id: "reporting-agent",
    secret: "reporting-secret",
    scopes: &[],
};

const CLIENTS: [DevClient; 5] = [READER, WRITER, ADMIN, ASSISTANT, REPORTING_AGENT];

/// RFC 8693 §2.1: the grant type of token exchange.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The running development issuer. Stops when dropped.
#[derive(Debug)]
pub struct DevIssuer {
    addr: SocketAddr,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    keys: TestIssuer,
    audience: String,
    /// Checks the tokens presented for exchange: this issuer's own, for its audience.
    validator: oauth_grpc::Validator,
}

impl DevIssuer {
    /// Starts on an ephemeral port of 127.0.0.1, issuing tokens for `audience`.
    ///
    /// # Errors
    ///
    /// When no port can be bound or no key generated.
    pub async fn start(audience: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let keys = TestIssuer::generate(format!("http://{addr}/"))?;
        let validator = oauth_grpc::Validator::builder()
            .issuer(keys.issuer())
            .audience(audience)
            .keys(keys.key_set())
            .cache_capacity(0)
            .build()?;
        let state = Arc::new(Shared {
            keys,
            audience: audience.to_owned(),
            validator,
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task })
    }

    /// The issuer URL, `http://127.0.0.1:PORT/`.
    pub fn issuer(&self) -> &str {
        self.state.keys.issuer()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token signed by this issuer that expired an hour ago, to show what servers do with it.
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn expired_token(&self, scopes: &[&str]) -> Result<String, TestingError> {
        self.state
            .keys
            .token(&self.state.audience)
            .scopes(scopes)
            .expired()
            .sign()
    }

    /// A token for `client` bound to a client certificate (RFC 8705): it carries
    /// `"cnf": {"x5t#S256": thumbprint}`, the base64url SHA-256 of the certificate's DER (see
    /// [`ClientCertificate::thumbprint_of`](oauth_grpc::ClientCertificate::thumbprint_of)).
    /// A provider issues such a token when the client fetched it over mutual TLS with that
    /// certificate; this development issuer's token endpoint is plain HTTP, so it mints it
    /// here.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// use examples::dev_issuer::{ADMIN, DevIssuer};
    /// use oauth_grpc::ClientCertificate;
    ///
    /// let issuer = DevIssuer::start("orders-api").await?;
    /// # let certificate_der: Vec<u8> = Vec::new();
    /// let thumbprint = ClientCertificate::thumbprint_of(&certificate_der);
    /// let token = issuer.certificate_bound_token(ADMIN, &["orders:admin"], &thumbprint)?;
    /// # let _ = token;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn certificate_bound_token(
        &self,
        client: DevClient,
        scopes: &[&str],
        thumbprint: &str,
    ) -> Result<String, TestingError> {
        self.bound_token(client, scopes, json!({ "x5t#S256": thumbprint }))
    }

    /// A token for `client` with `scopes`, bound to the DPoP key whose RFC 7638 thumbprint
    /// is `jkt` (RFC 9449 `cnf.jkt`): a provider issues one to a client that proves the key
    /// at its token endpoint.
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn dpop_bound_token(
        &self,
        client: DevClient,
        scopes: &[&str],
        jkt: &str,
    ) -> Result<String, TestingError> {
        self.bound_token(client, scopes, json!({ "jkt": jkt }))
    }

    fn bound_token(
        &self,
        client: DevClient,
        scopes: &[&str],
        cnf: serde_json::Value,
    ) -> Result<String, TestingError> {
        self.state
            .keys
            .token(&self.state.audience)
            .subject(client.id)
            .claim("client_id", client.id.into())
            .claim("cnf", cnf)
            .scopes(scopes)
            .sign()
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn discovery(State(state): State<Arc<Shared>>) -> Response {
    let issuer = state.keys.issuer();
    let base = issuer.trim_end_matches('/');
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/jwks"),
        "token_endpoint": format!("{base}/token"),
        "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<Shared>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        state.keys.jwks(),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({ "error": code }))).into_response()
}

/// The client of a request: HTTP Basic or form credentials.
fn client(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<DevClient> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let (id, secret) = match basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':')?;
            (id.to_owned(), secret.to_owned())
        }
        None => (
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ),
    };
    CLIENTS
        .into_iter()
        .find(|c| c.id == id && c.secret == secret)
}

async fn token(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(client) = client(&headers, &form) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let requested: Option<Vec<&str>> = form
        .get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect());
    let (token, granted) = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let granted = requested.unwrap_or_else(|| client.scopes.to_vec());
            if granted.iter().any(|s| !client.scopes.contains(s)) {
                return error(StatusCode::BAD_REQUEST, "invalid_scope");
            }
            let token = state
                .keys
                .token(&state.audience)
                .subject(client.id)
                .claim("client_id", client.id.into())
                .scopes(&granted);
            (token, granted.join(" "))
        }
        Some(TOKEN_EXCHANGE) => match exchange(&state, client, &form, requested).await {
            Ok(issued) => issued,
            Err(response) => return *response,
        },
        _ => return error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    match token.sign() {
        Ok(access_token) => axum::Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "expires_in": 300,
            "scope": granted,
        }))
        .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

/// RFC 8693 token exchange: the user's token (`subject_token`) for a delegated one that
/// keeps the user as `sub` and names the requesting agent in `act.sub`, nesting the
/// subject token's own `act` if it had one (§4.1). The `actor_token` must be the requesting
/// client's own token: an agent acts only as itself. Scopes: those asked for, at most the
/// user's; the user's by default.
async fn exchange<'a>(
    state: &'a Shared,
    client: DevClient,
    form: &HashMap<String, String>,
    requested: Option<Vec<&'a str>>,
) -> Result<(oauth_grpc::testing::TokenBuilder<'a>, String), Box<Response>> {
    let grant = || Box::new(error(StatusCode::BAD_REQUEST, "invalid_grant"));
    let subject_token = form
        .get("subject_token")
        .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, "invalid_request")))?;
    let subject = state
        .validator
        .validate(subject_token)
        .await
        .map_err(|_| grant())?;
    let user_scopes: Vec<String> = subject.scopes().iter().map(str::to_owned).collect();
    let granted: Vec<String> = match requested {
        None => user_scopes.clone(),
        Some(asked) => asked.into_iter().map(str::to_owned).collect(),
    };
    if granted.iter().any(|s| !user_scopes.contains(s)) {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "invalid_scope")));
    }
    let mut token = state
        .keys
        .token(&state.audience)
        .subject(subject.subject().unwrap_or_default())
        .claim("client_id", client.id.into())
        .scopes(&granted);
    if let Some(actor_token) = form.get("actor_token") {
        let actor = state
            .validator
            .validate(actor_token)
            .await
            .map_err(|_| grant())?;
        if actor.subject() != Some(client.id) {
            return Err(grant());
        }
        let mut act = json!({ "sub": client.id });
        if let Some(prior) = subject.claims().get("act") {
            act["act"] = prior.clone();
        }
        token = token.claim("act", act);
    }
    Ok((token, granted.join(" ")))
}
