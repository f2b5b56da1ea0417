//! Calls the orders service with a bearer token: a fixed one, or client credentials from your
//! identity provider. Prints the response, or the status with its `www-authenticate` value.
//!
//! ```text
//! orders-client --token eyJ… who-am-i
//! orders-client --issuer https://idp.example.com/ --client-id billing \
//!     --client-secret-file /run/secrets/billing --scope orders:write create-order --item widget
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use examples::pb::orders_client::OrdersClient;
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, GetHttpStatusRequest, GetOrderRequest,
    WatchOrdersRequest, WhoAmIRequest,
};
use oauth_grpc::ClientSecret;
use oauth_grpc::HttpClient;
use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials, StaticToken};
use tokio_stream::StreamExt;
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

    /// The issuer whose discovery document names the token endpoint.
    #[arg(long, env = "ORDERS_ISSUER", requires_all = ["client_id", "client_secret_file"])]
    issuer: Option<String>,

    /// The token endpoint, instead of discovery.
    #[arg(long, env = "ORDERS_TOKEN_ENDPOINT", requires_all = ["client_id", "client_secret_file"])]
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
    /// Stream the orders (orders:read).
    WatchOrders,
    /// The service's health (public).
    GetHttpStatus,
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

fn layer(args: &Args) -> Result<Option<BearerLayer>, Box<dyn std::error::Error>> {
    if let Some(token) = &args.token {
        return Ok(Some(BearerLayer::new(StaticToken::new(token))));
    }
    let (Some(id), Some(file)) = (&args.client_id, &args.client_secret_file) else {
        return Ok(None);
    };
    let secret = ClientSecret::from_file(file);
    secret
        .reveal()
        .map_err(|e| format!("--client-secret-file: {e}"))?;
    let auth = if args.secret_post {
        ClientAuthentication::SecretPost(secret)
    } else {
        ClientAuthentication::SecretBasic(secret)
    };
    let mut source = match (&args.token_endpoint, &args.issuer) {
        (Some(endpoint), _) => ClientCredentials::new(endpoint, id, auth),
        (None, Some(issuer)) => ClientCredentials::discover(issuer, id, auth),
        (None, None) => return Err("give --issuer or --token-endpoint with --client-id".into()),
    };
    for scope in &args.scopes {
        source = source.scope(scope);
    }
    if let Some(audience) = &args.audience {
        source = source.audience(audience);
    }
    if let Some(resource) = &args.resource {
        source = source.resource(resource);
    }
    let mut http = HttpClient::new()?;
    if args.allow_insecure_http {
        http = http.allow_insecure_http();
    }
    Ok(Some(BearerLayer::new(source.http_client(http))))
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_shared(args.server.clone())?
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.server))?;
    let layer = layer(&args)?;
    let mut client = OrdersClient::new(ServiceBuilder::new().option_layer(layer).service(channel));
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
