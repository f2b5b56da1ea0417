//! The orders service for real use: tokens from your identity provider, by discovery or a
//! JWKS URL, opaque tokens by introspection.
//!
//! ```text
//! orders-server --issuer https://idp.example.com/ --audience orders-api --listen 0.0.0.0:50051 \
//!     --tls-cert server.pem --tls-key server-key.pem --client-ca clients-ca.pem
//! ```
//!
//! With `--tls-cert` and `--tls-key` it serves TLS; `--client-ca` makes it mutual TLS, and a
//! certificate-bound token (RFC 8705, `cnf.x5t#S256`) is accepted only over a connection
//! presenting that certificate. Without `--tls-cert` it serves plaintext gRPC and warns that
//! bearer tokens cross the network in clear. `--dpop` accepts DPoP-bound tokens (RFC 9449),
//! each call proving the client's key.
//!
//! Several replicas share one Redis with `--redis redis://…` (or `rediss://` for TLS;
//! `--redis-password-file` for AUTH): one-time tokens, DPoP proofs, revocations and the
//! introspection cache are then the same on every replica. Without it each replica keeps
//! them in memory. Revoke from any machine that reaches the Redis:
//!
//! ```text
//! orders-server revoke --redis redis://redis.internal:6379/ --subject alice
//! ```
//!
//! Every option is also an environment variable (`ORDERS_ISSUER`, …). Secrets are read only
//! from files: arguments and environment variables leak into process listings and crash
//! reports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[path = "shared/pem_files.rs"]
mod pem_files;

use clap::{Parser, Subcommand, ValueEnum};
use examples::pb::orders_admin_server::OrdersAdminServer;
use examples::pb::orders_server::OrdersServer;
use examples::server_config::{Fetching, ServerConfig};
use examples::{AdminDesk, OrderBook, Store};
use oauth_grpc::ClientSecret;
use oauth_grpc::HttpClient;
use oauth_grpc::TokenTypes;
use oauth_grpc::audit::JsonLines;
use oauth_grpc::store::{
    MemoryStore, RedisConfig, RedisStore, Revocation, Revocations, SharedStore, WhenUnavailable,
};
use oauth_grpc::{Dpop, DpopNonces, Issuer, OAuthLayer, Validator, ValidatorBuilder};
use oauth_grpc::{Introspection, TokenRouting};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The orders gRPC service, protected by oauth-grpc.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    redis: RedisArgs,

    /// A trusted token issuer, exactly as in the tokens' `iss` (e.g.
    /// `https://idp.example.com/`), its keys found by discovery. Repeat (or separate with
    /// commas) to trust several providers: each token is checked with the keys of the issuer
    /// it names and no other's. Every --audience applies to each; for one provider's own
    /// audiences, keys, claims or introspection, use --config.
    #[arg(
        long,
        env = "ORDERS_ISSUER",
        value_delimiter = ',',
        required_unless_present = "config"
    )]
    issuer: Vec<String>,

    /// The audience of this service, as the provider puts it in `aud`; repeat (or separate
    /// with commas) to accept several.
    #[arg(
        long,
        env = "ORDERS_AUDIENCE",
        value_delimiter = ',',
        required_unless_present = "config"
    )]
    audience: Vec<String>,

    /// The trusted issuers from a TOML file, each with its own keys, audiences, token types,
    /// scope claim, roles, leeway, algorithms and introspection, and multi-tenant issuers
    /// with their allow-list of tenants (see `examples/orders-server.toml`). Instead of
    /// --issuer, --audience, --jwks-url, --leeway, --allow-plain-jwt, --scope-claim and the
    /// introspection flags; the key-fetching flags apply to every issuer.
    #[arg(
        long,
        env = "ORDERS_CONFIG",
        value_name = "FILE",
        conflicts_with_all = [
            "issuer", "audience", "jwks_url", "introspect_url", "client_id",
            "client_secret_file", "introspect_all", "allow_plain_jwt", "scope_claim", "leeway",
        ]
    )]
    config: Option<PathBuf>,

    /// The address to listen on. Port 0 picks a free port; the chosen address is printed.
    #[arg(long, env = "ORDERS_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,

    /// Keys from this JWKS URL instead of discovery from the issuer.
    #[arg(long, env = "ORDERS_JWKS_URL")]
    jwks_url: Option<String>,

    /// RFC 7662 introspection endpoint for opaque tokens (needs --client-id and
    /// --client-secret-file).
    #[arg(long, env = "ORDERS_INTROSPECT_URL", requires_all = ["client_id", "client_secret_file"])]
    introspect_url: Option<String>,

    /// This service's client id at the introspection endpoint.
    #[arg(long, env = "ORDERS_CLIENT_ID")]
    client_id: Option<String>,

    /// A file holding this service's client secret (read at each use, so it can rotate).
    #[arg(long, env = "ORDERS_CLIENT_SECRET_FILE")]
    client_secret_file: Option<PathBuf>,

    /// Introspect every token, JWTs included (immediate revocation, one request per token).
    #[arg(long, env = "ORDERS_INTROSPECT_ALL", requires = "introspect_url")]
    introspect_all: bool,

    /// Accept `typ: JWT` or no `typ` (Auth0, Okta, Keycloak, Entra ID, Cognito) instead of
    /// only RFC 9068 `at+jwt`.
    #[arg(long, env = "ORDERS_ALLOW_PLAIN_JWT")]
    allow_plain_jwt: bool,

    /// Read scopes from this claim instead of `scope`/`scp` (e.g. `permissions` for Auth0).
    #[arg(long, env = "ORDERS_SCOPE_CLAIM")]
    scope_claim: Option<String>,

    /// Allow plain-http provider URLs on non-loopback hosts (test providers only).
    #[arg(long, env = "ORDERS_ALLOW_INSECURE_HTTP")]
    allow_insecure_http: bool,

    /// The shortest interval between scheduled key refreshes (the JWKS response's
    /// `Cache-Control: max-age` is clamped to this range). A duration: `30s`, `5m`, `1h`.
    #[arg(long, env = "ORDERS_JWKS_REFRESH_MIN", default_value = "1m", value_parser = humantime::parse_duration)]
    jwks_refresh_min: Duration,

    /// The longest interval between scheduled key refreshes.
    #[arg(long, env = "ORDERS_JWKS_REFRESH_MAX", default_value = "24h", value_parser = humantime::parse_duration)]
    jwks_refresh_max: Duration,

    /// After a token names an unknown `kid`, refetch the keys at most once per this interval.
    #[arg(long, env = "ORDERS_UNKNOWN_KID_COOLDOWN", default_value = "30s", value_parser = humantime::parse_duration)]
    unknown_kid_cooldown: Duration,

    /// How long the last good keys keep validating while the provider cannot be reached;
    /// past it, calls that need keys get UNAVAILABLE.
    #[arg(long, env = "ORDERS_MAX_STALENESS", default_value = "24h", value_parser = humantime::parse_duration)]
    max_staleness: Duration,

    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[arg(long, env = "ORDERS_LEEWAY", default_value = "60s", value_parser = humantime::parse_duration)]
    leeway: Duration,

    /// Serve TLS with this certificate chain (PEM, the server's certificate first; needs
    /// --tls-key). Without it the server speaks plaintext gRPC: bearer tokens cross the
    /// network in clear.
    #[arg(long, env = "ORDERS_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ORDERS_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Mutual TLS: every connection must present a client certificate chaining to this CA
    /// (PEM; needs --tls-cert). Certificate-bound tokens (RFC 8705 `cnf.x5t#S256`) are then
    /// accepted only from the certificate they are bound to.
    #[arg(long, env = "ORDERS_CLIENT_CA", value_name = "FILE")]
    client_ca: Option<PathBuf>,

    /// Admit only sender-constrained tokens on every method that needs a token, not only on
    /// the methods marked `bound`: certificate-bound (RFC 8705; needs --client-ca) or
    /// DPoP-bound (RFC 9449; needs --dpop). Public methods stay public.
    #[arg(long, env = "ORDERS_REQUIRE_SENDER_CONSTRAINED")]
    require_sender_constrained: bool,

    /// Accept DPoP-bound tokens (RFC 9449): `authorization: DPoP <token>` with a `dpop`
    /// proof, signed by ES256, ES384, EdDSA, PS256 or RS256.
    #[arg(long, env = "ORDERS_DPOP")]
    dpop: bool,

    /// The scheme and authority clients reach this server at (e.g.
    /// `https://orders.example.com` behind a proxy), which DPoP proofs must name in `htu`;
    /// repeat for several names. Without it, the scheme and authority each call names.
    #[arg(
        long,
        env = "ORDERS_DPOP_ORIGIN",
        value_name = "URL",
        requires = "dpop",
        value_delimiter = ','
    )]
    dpop_origin: Vec<String>,

    /// Require the server's nonce in DPoP proofs (RFC 9449 §9): a proof without it is
    /// refused with `use_dpop_nonce` and a fresh nonce in `dpop-nonce`.
    #[arg(long, env = "ORDERS_DPOP_NONCE", requires = "dpop")]
    dpop_nonce: bool,

    /// Trust only this CA (PEM) for the identity provider's HTTPS (discovery, JWKS,
    /// introspection) instead of the system's roots: a provider with a private CA.
    #[arg(long, env = "ORDERS_IDP_CA", value_name = "FILE")]
    idp_ca: Option<PathBuf>,

    /// What calls get while the revocation list cannot be read from Redis (for longer than
    /// a second): `refuse` answers UNAVAILABLE, so that no revoked token is ever accepted;
    /// `admit` goes on with the list as last read — a revocation made meanwhile is not
    /// enforced by this replica until Redis answers again.
    #[arg(
        long,
        env = "ORDERS_REVOCATION_UNAVAILABLE",
        value_enum,
        default_value = "refuse"
    )]
    revocation_unavailable: RevocationUnavailable,

    /// Write the audit log — one JSON object per decision (docs/audit.schema.json) — to
    /// this file (appended to, rotated at --audit-rotate-size), or `-` for standard output.
    /// Without it, decisions are `tracing` events on standard error.
    #[arg(long, env = "ORDERS_AUDIT_LOG", value_name = "FILE")]
    audit_log: Option<PathBuf>,

    /// When the audit log cannot keep up: `block` (no decision without its record: the
    /// call waits up to --audit-block-timeout, then UNAVAILABLE) or `drop` (records are
    /// lost, counted and logged).
    #[arg(
        long,
        env = "ORDERS_AUDIT_OVERFLOW",
        default_value = "block",
        requires = "audit_log"
    )]
    audit_overflow: oauth_grpc::audit::Overflow,

    /// How long a call waits for room in the audit queue under `--audit-overflow block`.
    #[arg(long, env = "ORDERS_AUDIT_BLOCK_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration, requires = "audit_log")]
    audit_block_timeout: Duration,

    /// Start a new audit file past this many bytes (FILE becomes FILE.1, …).
    #[arg(long, env = "ORDERS_AUDIT_ROTATE_SIZE", default_value_t = 64 * 1024 * 1024, requires = "audit_log")]
    audit_rotate_size: u64,

    /// How many rotated audit files to keep beside the current one.
    #[arg(
        long,
        env = "ORDERS_AUDIT_KEEP",
        default_value_t = 10,
        requires = "audit_log"
    )]
    audit_keep: usize,

    /// Serve the OpenTelemetry metrics in Prometheus text format at
    /// `http://ADDR/metrics` (e.g. `127.0.0.1:9464`).
    #[arg(long, env = "ORDERS_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

/// `--revocation-unavailable`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RevocationUnavailable {
    Refuse,
    Admit,
}

/// Where the state shared by replicas lives.
#[derive(Debug, clap::Args)]
struct RedisArgs {
    /// Redis shared by every replica: `redis://host:6379/` or `rediss://host:6380/` (TLS).
    /// Without it, one-time tokens, DPoP proofs and revocations are kept in this process.
    #[arg(long, env = "ORDERS_REDIS", value_name = "URL", global = true)]
    redis: Option<String>,

    /// A file holding the Redis password (AUTH), read at start-up.
    #[arg(
        long,
        env = "ORDERS_REDIS_PASSWORD_FILE",
        value_name = "FILE",
        requires = "redis",
        global = true
    )]
    redis_password_file: Option<PathBuf>,

    /// The Redis ACL user (with --redis-password-file).
    #[arg(long, env = "ORDERS_REDIS_USER", requires = "redis", global = true)]
    redis_user: Option<String>,

    /// Trust only this CA (PEM) for a rediss:// server.
    #[arg(
        long,
        env = "ORDERS_REDIS_CA",
        value_name = "FILE",
        requires = "redis",
        global = true
    )]
    redis_ca: Option<PathBuf>,

    /// What every key of this service starts with; replicas of one service share it.
    #[arg(
        long,
        env = "ORDERS_REDIS_PREFIX",
        default_value = "oauth-grpc:orders:",
        global = true
    )]
    redis_prefix: String,

    /// How long a Redis command may take before the call needing it is answered UNAVAILABLE.
    #[arg(long, env = "ORDERS_REDIS_TIMEOUT", default_value = "50ms", value_parser = humantime::parse_duration, global = true)]
    redis_timeout: Duration,

    /// The longest lifetime of a token the service accepts: how long a revocation is kept.
    #[arg(long, env = "ORDERS_MAX_TOKEN_LIFETIME", default_value = "24h", value_parser = humantime::parse_duration, global = true)]
    max_token_lifetime: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Revokes a token, or every token of a subject or a client issued until now, on every
    /// replica sharing --redis (enforced within a second; open streams end).
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct RevokeArgs {
    /// The token's `jti`.
    #[arg(long)]
    jti: Option<String>,
    /// The subject (`sub`) whose tokens are revoked.
    #[arg(long)]
    subject: Option<String>,
    /// The client (`client_id` / `azp`) whose tokens are revoked.
    #[arg(long)]
    client_id: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Revoke(revoke)) => revoke_command(&args.redis, revoke).await,
        None => run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("orders-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The Redis of `--redis`, connected and checked.
async fn redis(args: &RedisArgs) -> Result<Option<Arc<dyn SharedStore>>, String> {
    let Some(url) = &args.redis else {
        return Ok(None);
    };
    let mut config = RedisConfig::new(url)
        .prefix(&args.redis_prefix)
        .timeout(args.redis_timeout);
    if let Some(file) = &args.redis_password_file {
        config = config.password_file(file);
    }
    if let Some(user) = &args.redis_user {
        config = config.username(user);
    }
    if let Some(ca) = &args.redis_ca {
        let pem = std::fs::read(ca).map_err(|e| format!("--redis-ca {}: {e}", ca.display()))?;
        config = config.ca_certificate_pem(pem);
    }
    let store = RedisStore::connect(config)
        .await
        .map_err(|e| format!("--redis: {e}"))?;
    Ok(Some(Arc::new(store)))
}

async fn revoke_command(
    redis_args: &RedisArgs,
    revoke: &RevokeArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(store) = redis(redis_args).await? else {
        return Err("revoke needs --redis (or ORDERS_REDIS): the Redis the replicas share".into());
    };
    let revocation = match (&revoke.jti, &revoke.subject, &revoke.client_id) {
        (Some(jti), _, _) => Revocation::token(jti),
        (_, Some(subject), _) => Revocation::subject(subject),
        (_, _, Some(client)) => Revocation::client(client),
        _ => return Err("give --jti, --subject or --client-id".into()),
    };
    let revocations = Revocations::builder(store)
        .max_token_lifetime(redis_args.max_token_lifetime)
        .start()
        .await?;
    revocations.revoke(&revocation).await?;
    println!("revoked {revocation}");
    Ok(())
}

/// The TLS set-up of `--tls-cert`, `--tls-key` and `--client-ca`: the files read and checked
/// before anything is fetched or bound. `None` is plaintext.
fn tls(args: &Args) -> Result<Option<ServerTlsConfig>, String> {
    let (cert, key) = match (&args.tls_cert, &args.tls_key, &args.client_ca) {
        (None, None, None) => return Ok(None),
        (None, _, Some(_)) => {
            return Err(
                "--client-ca needs --tls-cert and --tls-key: mutual TLS is TLS that also \
                 asks clients for certificates; give the server's certificate chain and key too"
                    .into(),
            );
        }
        (Some(_), None, _) => {
            return Err(
                "--tls-cert needs --tls-key: give the certificate's private key (PEM) too".into(),
            );
        }
        (None, Some(_), None) => {
            return Err(
                "--tls-key needs --tls-cert: give the certificate chain (PEM) of this key too"
                    .into(),
            );
        }
        (Some(cert), Some(key), _) => (cert, key),
    };
    let chain = pem_files::certificates("--tls-cert", cert)?;
    let key = pem_files::private_key("--tls-key", key)?;
    // tonic sets no handshake timeout; a client that never finishes its handshake should
    // not hold a connection open.
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(chain, key))
        .timeout(Duration::from_secs(10));
    if let Some(ca) = &args.client_ca {
        let ca = pem_files::certificates("--client-ca", ca)?;
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(Some(config))
}

/// The HTTP client towards the identity provider: the default one, or one trusting only
/// `--idp-ca`.
fn http_client(args: &Args) -> Result<HttpClient, String> {
    let http = match &args.idp_ca {
        None => HttpClient::new().map_err(|e| e.to_string())?,
        Some(path) => {
            let pem = pem_files::certificates("--idp-ca", path)?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| format!("--idp-ca {}: not a certificate", path.display()))?;
            let builder = reqwest::Client::builder()
                .tls_certs_only(roots)
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("orders-server/", env!("CARGO_PKG_VERSION")));
            HttpClient::from_builder(builder)
                .map_err(|e| format!("--idp-ca {}: {e}", path.display()))?
        }
    };
    Ok(if args.allow_insecure_http {
        http.allow_insecure_http()
    } else {
        http
    })
}

/// The validator of `--issuer` (each by discovery), `--audience`, `--jwks-url` and the
/// introspection flags.
fn from_flags(args: &Args, fetching: &Fetching) -> Result<ValidatorBuilder, String> {
    let one_issuer = |flag: &str| {
        format!(
            "{flag} names one provider's endpoint, but {} --issuer were given; give each \
             issuer its own in --config FILE ([[issuer]] jwks_url, [issuer.introspection])",
            args.issuer.len()
        )
    };
    if args.issuer.len() > 1 {
        if args.jwks_url.is_some() {
            return Err(one_issuer("--jwks-url"));
        }
        if args.introspect_url.is_some() {
            return Err(one_issuer("--introspect-url"));
        }
    }
    let mut builder = Validator::builder().leeway(args.leeway);
    for audience in &args.audience {
        builder = builder.audience(audience);
    }
    for iss in &args.issuer {
        let mut issuer = Issuer::new(iss).keys(fetching.keys(iss, args.jwks_url.as_deref()));
        // The token flags describe every --issuer's tokens alike.
        if args.allow_plain_jwt {
            issuer = issuer.token_types(TokenTypes::AllowPlainJwt);
        }
        if let Some(claim) = &args.scope_claim {
            issuer = issuer.scope_claim(claim);
        }
        if let (Some(url), Some(id), Some(file)) = (
            &args.introspect_url,
            &args.client_id,
            &args.client_secret_file,
        ) {
            ClientSecret::from_file(file)
                .reveal()
                .map_err(|e| format!("--client-secret-file: {e}"))?;
            let routing = if args.introspect_all {
                TokenRouting::IntrospectAll
            } else {
                TokenRouting::JwtLocally
            };
            let mut introspection = Introspection::new(url, id, ClientSecret::from_file(file))
                .routing(routing)
                .http_client(fetching.http.clone());
            if let Some(store) = &fetching.shared {
                introspection = introspection.shared_cache(store.clone());
            }
            issuer = issuer.introspection(introspection);
        }
        builder = builder.trust(issuer);
    }
    Ok(builder)
}

/// The validator of `--config FILE`.
fn from_config(path: &Path, fetching: &Fetching) -> Result<ValidatorBuilder, String> {
    let config = ServerConfig::load(path)?;
    let mut builder = Validator::builder();
    for audience in &config.audiences {
        builder = builder.audience(audience);
    }
    if let Some(leeway) = config.leeway {
        builder = builder.leeway(leeway);
    }
    for issuer in config
        .trusted(fetching)
        .map_err(|e| format!("--config {}: {e}", path.display()))?
    {
        builder = builder.trust(issuer);
    }
    Ok(builder)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.jwks_refresh_min > args.jwks_refresh_max {
        return Err(format!(
            "--jwks-refresh-min ({}) is longer than --jwks-refresh-max ({}); give a minimum at most the maximum",
            humantime::format_duration(args.jwks_refresh_min),
            humantime::format_duration(args.jwks_refresh_max),
        )
        .into());
    }
    // Before anything records a measurement: instruments bind to the provider at first use.
    let metrics = match args.metrics_listen {
        Some(addr) => {
            let endpoint = examples::metrics::serve(addr).await?;
            eprintln!(
                "orders-server: metrics at http://{}/metrics",
                endpoint.addr()
            );
            Some(endpoint)
        }
        None => None,
    };
    let tls = tls(&args)?;
    let mutual = args.client_ca.is_some();
    if args.require_sender_constrained && !mutual && !args.dpop {
        return Err(
            "--require-sender-constrained needs --client-ca or --dpop: a token can only be \
             bound to a client certificate the server asks for, or to a DPoP key the client \
             proves"
                .into(),
        );
    }
    let dpop = if args.dpop {
        let mut dpop = Dpop::new();
        for origin in &args.dpop_origin {
            dpop = dpop
                .public_origin(origin)
                .map_err(|e| format!("--dpop-origin: {e}"))?;
        }
        if args.dpop_nonce {
            dpop = dpop.nonces(DpopNonces::new());
        }
        Some(dpop)
    } else {
        None
    };
    let server = match tls {
        Some(config) => tonic::transport::Server::builder()
            .tls_config(config)
            .map_err(|e| {
                format!(
                    "--tls-cert, --tls-key or --client-ca refused by TLS: {}",
                    pem_files::error_chain(&e)
                )
            })?,
        None => tonic::transport::Server::builder(),
    };
    match (args.tls_cert.is_some(), mutual) {
        (false, _) => eprintln!(
            "orders-server: warning: plaintext gRPC (no --tls-cert): bearer tokens cross the \
             network in clear; serve TLS with --tls-cert and --tls-key"
        ),
        (true, false) => eprintln!(
            "orders-server: TLS without client certificates (no --client-ca): \
             certificate-bound tokens are refused"
        ),
        (true, true) => {
            eprintln!("orders-server: mutual TLS, client certificates from --client-ca");
        }
    }
    let http = http_client(&args)?;
    let shared = redis(&args.redis).await?;
    let fetching = Fetching {
        http: http.clone(),
        refresh: (args.jwks_refresh_min, args.jwks_refresh_max),
        unknown_kid_cooldown: args.unknown_kid_cooldown,
        max_staleness: args.max_staleness,
        shared: shared.clone(),
    };
    let builder = match &args.config {
        Some(path) => from_config(path, &fetching)?,
        None => from_flags(&args, &fetching)?,
    };
    let validator = builder.start().await?;
    for issuer in validator.issuers() {
        eprintln!("orders-server: trusting tokens of {issuer}");
    }

    let mut layer = OAuthLayer::new(validator, examples::policies())
        .require_sender_constrained(args.require_sender_constrained);
    let audit = match &args.audit_log {
        None => None,
        Some(path) => {
            let builder = if path.as_os_str() == "-" {
                JsonLines::stdout()
            } else {
                JsonLines::file(path)
                    .rotate_at(args.audit_rotate_size)
                    .keep(args.audit_keep)
            };
            let audit = builder
                .overflow(args.audit_overflow)
                .block_timeout(args.audit_block_timeout)
                .start()?;
            eprintln!(
                "orders-server: audit log to {} (overflow: {:?})",
                if path.as_os_str() == "-" {
                    "standard output".to_owned()
                } else {
                    path.display().to_string()
                },
                args.audit_overflow
            );
            layer = layer.audit_sink(audit.clone());
            Some(audit)
        }
    };
    let store: Arc<dyn SharedStore> = match shared {
        Some(store) => {
            eprintln!(
                "orders-server: one-time tokens, DPoP proofs, revocations and introspection answers shared on --redis"
            );
            layer = layer.shared_store(store.clone());
            store
        }
        None => Arc::new(MemoryStore::new()),
    };
    let revocations = Revocations::builder(store)
        .max_token_lifetime(args.redis.max_token_lifetime)
        .when_unavailable(match args.revocation_unavailable {
            RevocationUnavailable::Refuse => WhenUnavailable::Refuse,
            RevocationUnavailable::Admit => WhenUnavailable::AdmitLastKnown,
        })
        .start()
        .await?;
    layer = layer.revocations(revocations);
    if let Some(dpop) = dpop {
        eprintln!("orders-server: DPoP-bound tokens accepted (RFC 9449)");
        layer = layer.dpop(dpop);
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    if args
        .audit_log
        .as_ref()
        .is_some_and(|path| path.as_os_str() == "-")
    {
        // Standard output holds audit records only.
        eprintln!("orders-server listening on {addr}");
    } else {
        println!("orders-server listening on {addr}");
    }
    let store = Store::default();
    server
        .layer(layer)
        .add_service(OrdersServer::new(OrderBook::new(store.clone())))
        .add_service(OrdersAdminServer::new(AdminDesk::new(store)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(audit) = audit {
        // Every record of the calls served is on disk before the process ends.
        audit
            .flush()
            .await
            .map_err(|e| format!("the audit log: {e}"))?;
    }
    drop(metrics);
    Ok(())
}
