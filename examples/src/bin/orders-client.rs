//! Calls the orders service with a bearer token: a fixed one, or client credentials from your
//! identity provider. Prints the response, or the status with its `www-authenticate` value.
//!
//! ```text
//! orders-client --token eyJ… who-am-i
//! orders-client --issuer https://idp.example.com/ --client-id billing \
//!     --client-secret-file /run/secrets/billing --scope orders:write create-order --item widget
//! orders-client --server https://orders.example.com:50051 --ca ca.pem \
//!     --cert billing.pem --key billing-key.pem --token eyJ… who-am-i
//! ```
//!
//! With `--cert` and `--key` it presents a client certificate (mutual TLS) to an `https://`
//! server and, when it fetches its token by client credentials, to the token endpoint too,
//! so a provider can bind the token to that certificate (RFC 8705).
//!
//! With `--dpop` it binds the token to a key instead (RFC 9449): a fresh P-256 key (or the
//! PEM of `--dpop-key`) signs a proof for the token request, so the provider issues a
//! DPoP-bound token, and a proof for every call, sent with `authorization: DPoP <token>`.
//!
//! ```text
//! orders-client --issuer https://idp.example.com/ --client-id billing \
//!     --client-secret-file /run/secrets/billing --dpop who-am-i
//! orders-client --token eyJ… --dpop-key dpop-key.pem who-am-i   # a token bound to that key
//! ```
//!
//! With `--subject-token-file` it acts for someone else (RFC 8693 token exchange): the client
//! trades that user's token, and with `--actor-token-file` its own, for a delegated token
//! whose `act` names the actor, and calls with it.
//!
//! ```text
//! orders-client --issuer https://idp.example.com/ --client-id assistant \
//!     --client-secret-file /run/secrets/assistant \
//!     --subject-token-file user.jwt --actor-token-file assistant.jwt who-am-i
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[path = "shared/pem_files.rs"]
mod pem_files;

use clap::{Parser, Subcommand};
use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, GetHttpStatusRequest, GetOrderRequest,
    PurgeCancelledRequest, RefundOrderRequest, WatchOrdersRequest, WhoAmIRequest,
};
use oauth_grpc::client::{
    AccessToken, BearerLayer, ClientAuthentication, ClientCredentials, DpopKey, FetchFuture,
    StaticToken, TokenExchange, TokenSource,
};
use oauth_grpc::{Algorithm, ClientSecret, HttpClient};
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tower::ServiceBuilder;

/// A client of the orders service.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The server.
    #[arg(long, env = "ORDERS_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,

    /// A bearer token to send as is (instead of client credentials).
    #[arg(long, conflicts_with_all = ["issuer", "token_endpoint"])]
    token: Option<String>,

    /// The issuer whose discovery document names the token endpoint (needs --client-id, and
    /// --client-secret-file or --tls-client-auth).
    #[arg(long, env = "ORDERS_ISSUER", requires = "client_id")]
    issuer: Option<String>,

    /// The token endpoint, instead of discovery.
    #[arg(long, env = "ORDERS_TOKEN_ENDPOINT", requires = "client_id")]
    token_endpoint: Option<String>,

    /// The client id for the client credentials grant.
    #[arg(long, env = "ORDERS_CLIENT_ID")]
    client_id: Option<String>,

    /// A file holding the client secret.
    #[arg(long, env = "ORDERS_CLIENT_SECRET_FILE")]
    client_secret_file: Option<PathBuf>,

    /// Send the secret in the form body (client_secret_post) instead of HTTP Basic.
    #[arg(long)]
    secret_post: bool,

    /// Authenticate to the token endpoint with the --cert client certificate instead of a
    /// secret (RFC 8705 `tls_client_auth` or `self_signed_tls_client_auth`: the form carries
    /// only the client id). The provider binds the token to that certificate.
    #[arg(long, conflicts_with_all = ["client_secret_file", "secret_post"])]
    tls_client_auth: bool,

    /// A scope to ask for; repeat for several.
    #[arg(long = "scope")]
    scopes: Vec<String>,

    /// The `audience` to ask for.
    #[arg(long)]
    audience: Option<String>,

    /// An RFC 8707 `resource` to ask for.
    #[arg(long)]
    resource: Option<String>,

    /// Allow plain-http token endpoints on non-loopback hosts (test providers only).
    #[arg(long)]
    allow_insecure_http: bool,

    /// Trust only this CA (PEM) for the server's certificate, instead of the system's roots
    /// (needs an `https://` --server).
    #[arg(long, env = "ORDERS_CA", value_name = "FILE")]
    ca: Option<PathBuf>,

    /// Present this client certificate (PEM chain, needs --key) to the `https://` server:
    /// mutual TLS. A token fetched by client credentials is fetched with the same
    /// certificate, so the provider can bind the token to it (RFC 8705 `cnf.x5t#S256`).
    #[arg(long, env = "ORDERS_CERT", value_name = "FILE")]
    cert: Option<PathBuf>,

    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ORDERS_KEY", value_name = "FILE")]
    key: Option<PathBuf>,

    /// Trust only this CA (PEM) for the identity provider's HTTPS (discovery and token
    /// endpoint), instead of the system's roots.
    #[arg(long, env = "ORDERS_IDP_CA", value_name = "FILE")]
    idp_ca: Option<PathBuf>,

    /// Bind the token to a key and prove it on every call (DPoP, RFC 9449): a fresh P-256
    /// key signs a proof for the client-credentials request (the provider issues a
    /// DPoP-bound token) and one for each call.
    #[arg(long)]
    dpop: bool,

    /// The DPoP key to use instead of a generated one (PEM PKCS#8: EC P-256 or P-384,
    /// Ed25519, RSA); implies --dpop. With --token: the key that token is bound to.
    #[arg(long, env = "ORDERS_DPOP_KEY", value_name = "FILE")]
    dpop_key: Option<PathBuf>,

    /// The algorithm --dpop-key signs with (ES256, ES384, EdDSA, PS256, RS256, …); by
    /// default the first of ES256, ES384, EdDSA and PS256 that fits the key.
    #[arg(long, value_name = "ALG", requires = "dpop_key")]
    dpop_alg: Option<String>,

    /// The `scheme://host[:port]` the proofs name, when the server knows itself by another
    /// origin than --server (behind a proxy); --server by default.
    #[arg(long, value_name = "URL")]
    dpop_origin: Option<String>,

    /// Act for the user whose access token this file holds: exchange it (RFC 8693 token
    /// exchange, at --issuer's or --token-endpoint's token endpoint, as --client-id) for a
    /// token to call with, instead of fetching one by client credentials.
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_id",
        conflicts_with = "token"
    )]
    subject_token_file: Option<PathBuf>,

    /// The actor's own access token (this client's, as an agent), sent with the exchange so
    /// the delegated token names the actor in its `act` claim.
    #[arg(long, value_name = "FILE", requires = "subject_token_file")]
    actor_token_file: Option<PathBuf>,

    /// The call to make.
    #[command(subcommand)]
    call: Call,
}

#[derive(Debug, Subcommand)]
enum Call {
    /// Who the server thinks you are (any valid token).
    WhoAmI,
    /// Place an order (orders:write).
    CreateOrder {
        /// The item.
        #[arg(long, default_value = "widget")]
        item: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        quantity: u32,
    },
    /// Read an order (orders:read or orders:admin).
    GetOrder {
        /// The order id.
        #[arg(long)]
        id: String,
    },
    /// Cancel an order (orders:write and orders:cancel).
    CancelOrder {
        /// The order id.
        #[arg(long)]
        id: String,
    },
    /// Refund an order (orders:refund; each token refunds once, by its `jti`).
    RefundOrder {
        /// The order id.
        #[arg(long)]
        id: String,
    },
    /// Stream the orders (orders:read).
    WatchOrders,
    /// The service's health (public).
    GetHttpStatus,
    /// Drop the cancelled orders (`orders.v1.OrdersAdmin`; orders:admin and a
    /// certificate-bound token).
    PurgeCancelled,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("orders-client: {error}");
            ExitCode::from(2)
        }
    }
}

/// The client certificate of `--cert` and `--key`, PEM.
struct ClientPem {
    chain: Vec<u8>,
    key: Vec<u8>,
}

/// `--cert` and `--key`, read and checked.
fn client_certificate(args: &Args) -> Result<Option<ClientPem>, String> {
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Ok(Some(ClientPem {
            chain: pem_files::certificates("--cert", cert)?,
            key: pem_files::private_key("--key", key)?,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err("--cert needs --key: give the certificate's private key too".into()),
        (None, Some(_)) => Err("--key needs --cert: give the certificate of this key too".into()),
    }
}

/// The HTTP client towards the identity provider: trusting `--idp-ca` if given, presenting
/// `--cert` if given.
fn http_client(args: &Args, certificate: Option<&ClientPem>) -> Result<HttpClient, String> {
    let http = if args.idp_ca.is_none() && certificate.is_none() {
        HttpClient::new().map_err(|e| e.to_string())?
    } else {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("orders-client/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &args.idp_ca {
            let pem = pem_files::certificates("--idp-ca", path)?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| format!("--idp-ca {}: not a certificate", path.display()))?;
            builder = builder.tls_certs_only(roots);
        }
        if let Some(ClientPem { chain, key }) = certificate {
            let mut pem = chain.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|_| "--cert and --key: not a certificate and its key".to_owned())?;
            builder = builder.identity(identity);
        }
        HttpClient::from_builder(builder)
            .map_err(|e| format!("the identity provider's HTTPS client: {e}"))?
    };
    Ok(if args.allow_insecure_http {
        http.allow_insecure_http()
    } else {
        http
    })
}

/// A fixed token bound to the `--dpop-key` key: sent with `DPoP` and proofs.
struct BoundToken(String);

impl std::fmt::Debug for BoundToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoundToken(<redacted>)")
    }
}

impl TokenSource for BoundToken {
    fn fetch(&self) -> FetchFuture<'_> {
        let token = AccessToken::new(self.0.clone(), None).with_token_type("DPoP");
        Box::pin(async move { Ok(token) })
    }
}

/// The DPoP key of `--dpop-key` (with `--dpop-alg`, or the first algorithm that fits), or a
/// generated one for `--dpop`; none without either.
fn dpop_key(args: &Args) -> Result<Option<DpopKey>, String> {
    let Some(path) = &args.dpop_key else {
        if !args.dpop {
            return Ok(None);
        }
        return DpopKey::generate()
            .map(Some)
            .map_err(|e| format!("--dpop: {e}"));
    };
    let pem = pem_files::private_key("--dpop-key", path)?;
    let shown = path.display();
    if let Some(name) = &args.dpop_alg {
        let alg: Algorithm = name.parse().map_err(|_| {
            format!("--dpop-alg {name}: not a JWS algorithm; use ES256, ES384, EdDSA, PS256 … PS512 or RS256 … RS512")
        })?;
        return DpopKey::from_pem(&pem, alg)
            .map(Some)
            .map_err(|e| format!("--dpop-key {shown}: {e}"));
    }
    [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::PS256,
    ]
    .into_iter()
    .find_map(|alg| DpopKey::from_pem(&pem, alg).ok())
    .map(Some)
    .ok_or_else(|| {
        format!(
            "--dpop-key {shown}: not a private key DPoP can use; give a PKCS#8 EC P-256 or P-384, Ed25519 or RSA (2048 bits or more) key, or --dpop-alg"
        )
    })
}

/// `layer` proving `key` on each call, at `--dpop-origin` or the `--server` origin.
fn with_dpop(args: &Args, layer: BearerLayer, key: DpopKey) -> Result<BearerLayer, String> {
    match &args.dpop_origin {
        Some(origin) => layer
            .dpop(key, origin)
            .map_err(|e| format!("--dpop-origin: {e}")),
        None => layer
            .dpop(key, &args.server)
            .map_err(|e| format!("--server as the DPoP origin: {e}; or give --dpop-origin")),
    }
}

fn layer(
    args: &Args,
    certificate: Option<&ClientPem>,
) -> Result<Option<BearerLayer>, Box<dyn std::error::Error>> {
    let dpop = dpop_key(args)?;
    if let Some(token) = &args.token {
        return match dpop {
            None => Ok(Some(BearerLayer::new(StaticToken::new(token)))),
            Some(key) if args.dpop_key.is_some() => Ok(Some(with_dpop(
                args,
                BearerLayer::new(BoundToken(token.clone())),
                key,
            )?)),
            Some(_) => Err(
                "--dpop with --token: a fixed token is not bound to a freshly generated key; \
                 give --dpop-key with the key it is bound to, or fetch the token by client \
                 credentials"
                    .into(),
            ),
        };
    }
    if args.issuer.is_none() && args.token_endpoint.is_none() && args.client_id.is_none() {
        if dpop.is_some() {
            return Err("--dpop needs a token: client credentials (--issuer or \
                        --token-endpoint with --client-id), or --token with --dpop-key"
                .into());
        }
        return Ok(None);
    }
    let Some(id) = &args.client_id else {
        return Err("give --client-id with --issuer or --token-endpoint".into());
    };
    let auth = if args.tls_client_auth {
        if certificate.is_none() {
            return Err(
                "--tls-client-auth needs --cert and --key: the client certificate is the credential"
                    .into(),
            );
        }
        ClientAuthentication::TlsClientAuth
    } else {
        let Some(file) = &args.client_secret_file else {
            return Err(
                "client credentials need a credential: give --client-secret-file, or \
                 --tls-client-auth with --cert and --key"
                    .into(),
            );
        };
        let secret = ClientSecret::from_file(file);
        secret
            .reveal()
            .map_err(|e| format!("--client-secret-file: {e}"))?;
        if args.secret_post {
            ClientAuthentication::SecretPost(secret)
        } else {
            ClientAuthentication::SecretBasic(secret)
        }
    };
    let http = http_client(args, certificate)?;
    // The options every grant takes, set alike on either source.
    macro_rules! configured {
        ($source:expr) => {{
            let mut source = $source;
            for scope in &args.scopes {
                source = source.scope(scope);
            }
            if let Some(audience) = &args.audience {
                source = source.audience(audience);
            }
            if let Some(resource) = &args.resource {
                source = source.resource(resource);
            }
            let source = source.http_client(http);
            match dpop {
                Some(key) => with_dpop(args, BearerLayer::new(source.dpop(key.clone())), key)?,
                None => BearerLayer::new(source),
            }
        }};
    }
    if let Some(file) = &args.subject_token_file {
        let subject = token_file("--subject-token-file", file)?;
        let mut exchange = match (&args.token_endpoint, &args.issuer) {
            (Some(endpoint), _) => TokenExchange::new(endpoint, id, auth, subject),
            (None, Some(issuer)) => TokenExchange::discover(issuer, id, auth, subject),
            (None, None) => {
                return Err(
                    "--subject-token-file needs the token endpoint: give --issuer or \
                            --token-endpoint"
                        .into(),
                );
            }
        };
        if let Some(file) = &args.actor_token_file {
            exchange = exchange.actor_token(token_file("--actor-token-file", file)?);
        }
        return Ok(Some(configured!(exchange)));
    }
    let source = match (&args.token_endpoint, &args.issuer) {
        (Some(endpoint), _) => ClientCredentials::new(endpoint, id, auth),
        (None, Some(issuer)) => ClientCredentials::discover(issuer, id, auth),
        (None, None) => return Err("give --issuer or --token-endpoint with --client-id".into()),
    };
    Ok(Some(configured!(source)))
}

/// A token read from `file` (surrounding whitespace dropped); never echoed in errors.
fn token_file(flag: &str, file: &std::path::Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("{flag} {}: {e}", file.display()))?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(format!(
            "{flag} {}: not one access token (the file must hold the token alone)",
            file.display()
        ));
    }
    Ok(token.to_owned())
}

/// The server's endpoint, with TLS from `--ca`, `--cert` and `--key` for `https://`.
fn endpoint(
    args: &Args,
    certificate: Option<&ClientPem>,
) -> Result<Endpoint, Box<dyn std::error::Error>> {
    let endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|e| format!("--server {}: {e}", args.server))?;
    let https = endpoint.uri().scheme_str() == Some("https");
    if !https {
        if args.ca.is_some() || certificate.is_some() {
            return Err(format!(
                "--ca, --cert and --key are for TLS: give an https:// --server (not {})",
                args.server
            )
            .into());
        }
        return Ok(endpoint);
    }
    let mut tls = ClientTlsConfig::new();
    tls = match &args.ca {
        Some(path) => tls.ca_certificate(Certificate::from_pem(pem_files::certificates(
            "--ca", path,
        )?)),
        None => tls.with_native_roots(),
    };
    if let Some(ClientPem { chain, key }) = certificate {
        tls = tls.identity(Identity::from_pem(chain, key));
    }
    Ok(endpoint.tls_config(tls).map_err(|e| {
        format!(
            "--ca, --cert or --key refused by TLS: {}",
            pem_files::error_chain(&e)
        )
    })?)
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let certificate = client_certificate(&args)?;
    let layer = layer(&args, certificate.as_ref())?;
    let channel = endpoint(&args, certificate.as_ref())?
        .connect()
        .await
        .map_err(|e| {
            format!(
                "cannot connect to {}: {}",
                args.server,
                pem_files::error_chain(&e)
            )
        })?;
    let service = ServiceBuilder::new().option_layer(layer).service(channel);
    let mut client = OrdersClient::new(service.clone());
    let outcome = match args.call {
        Call::WhoAmI => client
            .who_am_i(WhoAmIRequest {})
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        Call::CreateOrder { item, quantity } => client
            .create_order(CreateOrderRequest { item, quantity })
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        Call::GetOrder { id } => client
            .get_order(GetOrderRequest { id })
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        Call::CancelOrder { id } => client
            .cancel_order(CancelOrderRequest { id })
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        Call::RefundOrder { id } => client
            .refund_order(RefundOrderRequest { id })
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        Call::WatchOrders => match client.watch_orders(WatchOrdersRequest::default()).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut lines = Vec::new();
                let mut failure = None;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(order) => lines.push(format!("{order:?}")),
                        Err(status) => {
                            failure = Some(status);
                            break;
                        }
                    }
                }
                match failure {
                    Some(status) => Err(status),
                    None => Ok(lines.join("\n")),
                }
            }
            Err(status) => Err(status),
        },
        Call::GetHttpStatus => client
            .get_http_status(GetHttpStatusRequest {})
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        Call::PurgeCancelled => OrdersAdminClient::new(service)
            .purge_cancelled(PurgeCancelledRequest {})
            .await
            .map(|r| format!("{:?}", r.into_inner())),
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(status) => {
            println!(
                "code={} ({:?}) message={:?}",
                status.code() as i32,
                status.code(),
                status.message()
            );
            if let Some(value) = status
                .metadata()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
            {
                println!("www-authenticate: {value}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
