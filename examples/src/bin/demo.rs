//! The orders service in one process: prints its compiled access table, starts it on
//! 127.0.0.1 and calls every RPC through a real gRPC client.
//!
//! No runtime layer verifies tokens yet, so nothing can vouch for a caller: every non-public
//! RPC must answer UNAUTHENTICATED from the check that `#[protect]` compiled into it, and the
//! public one must answer. Exits non-zero if any outcome differs.

use std::io::IsTerminal;
use std::process::ExitCode;

use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_admin_server::OrdersAdminServer;
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, ExportOrdersRequest, GetHttpStatusRequest,
    GetOrderRequest, PurgeCancelledRequest, WatchOrdersRequest, WhoAmIRequest,
};
use examples::{AdminDesk, OrderBook, Store};
use oauth_grpc::PolicySet;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Status};

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let style = Style {
        color: std::io::stdout().is_terminal(),
    };
    let policies = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>();

    println!(
        "{}",
        style.paint("1", "Access rules compiled into the services")
    );
    for method in policies.methods() {
        println!("  {:44} {}", method.path(), method.rule());
    }

    let store = Store::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        .add_service(OrdersServer::new(OrderBook::new(store.clone())))
        .add_service(OrdersAdminServer::new(AdminDesk::new(store.clone())))
        .serve_with_incoming(TcpListenerStream::new(listener));
    let server = tokio::spawn(server);

    println!();
    println!(
        "{}",
        style.paint(
            "1",
            &format!("Calls to {addr} with no credentials (no token layer mounted)")
        )
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut orders = OrdersClient::new(channel.clone());
    let mut admin = OrdersAdminClient::new(channel);
    let new_order = || CreateOrderRequest {
        item: "widget".into(),
        quantity: 1,
    };
    let calls: Vec<(&str, Code, Result<(), Status>)> = vec![
        (
            "CreateOrder",
            Code::Unauthenticated,
            orders.create_order(new_order()).await.map(drop),
        ),
        (
            "GetOrder",
            Code::Unauthenticated,
            orders
                .get_order(GetOrderRequest { id: "1".into() })
                .await
                .map(drop),
        ),
        (
            "CancelOrder",
            Code::Unauthenticated,
            orders
                .cancel_order(CancelOrderRequest { id: "1".into() })
                .await
                .map(drop),
        ),
        (
            "WatchOrders (server streaming)",
            Code::Unauthenticated,
            orders
                .watch_orders(WatchOrdersRequest { limit: 0 })
                .await
                .map(drop),
        ),
        (
            "ImportOrders (client streaming)",
            Code::Unauthenticated,
            orders
                .import_orders(tokio_stream::iter(vec![new_order()]))
                .await
                .map(drop),
        ),
        (
            "WhoAmI",
            Code::Unauthenticated,
            orders.who_am_i(WhoAmIRequest {}).await.map(drop),
        ),
        (
            "GetHTTPStatus (public)",
            Code::Ok,
            orders
                .get_http_status(GetHttpStatusRequest {})
                .await
                .map(drop),
        ),
        (
            "OrdersAdmin/PurgeCancelled",
            Code::Unauthenticated,
            admin
                .purge_cancelled(PurgeCancelledRequest {})
                .await
                .map(drop),
        ),
        (
            "OrdersAdmin/ExportOrders",
            Code::Unauthenticated,
            admin.export_orders(ExportOrdersRequest {}).await.map(drop),
        ),
    ];

    let mut all_expected = true;
    for (rpc, expected, outcome) in calls {
        let (code, challenge) = match &outcome {
            Ok(()) => (Code::Ok, String::new()),
            Err(status) => (
                status.code(),
                status
                    .metadata()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| format!("www-authenticate: {v}"))
                    .unwrap_or_default(),
            ),
        };
        let ok = code == expected;
        all_expected &= ok;
        let mark = if ok {
            style.paint("32", "as expected")
        } else {
            style.paint("31", &format!("UNEXPECTED (wanted {expected:?})"))
        };
        println!(
            "  {rpc:34} {:>2} {:18} {mark}  {challenge}",
            code as i32,
            format!("{code:?}")
        );
    }
    println!();
    println!(
        "No handler ran for a refused call: the store holds {} orders.",
        store.len()
    );
    all_expected &= store.is_empty();
    println!(
        "{} services, {} rpcs, {} public.",
        policies.services().count(),
        policies.methods().count(),
        policies.methods().filter(|m| m.rule().is_public()).count()
    );
    server.abort();
    Ok(all_expected)
}
