//! The check that `#[protect]` writes into every non-public method: the service fails closed
//! even when it is mounted without the runtime layer.

use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_admin_server::{OrdersAdmin, OrdersAdminServer};
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::{Orders, OrdersServer};
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, ExportOrdersRequest, GetHttpStatusRequest,
    GetOrderRequest, PurgeCancelledRequest, WatchOrdersRequest, WhoAmIRequest,
};
use examples::{AdminDesk, OrderBook, Store};
use oauth_grpc::{ClientCertificate, Confirmation, Principal};
use oauth_grpc_tests::TestServer;
use tonic::{Code, Request, Status};

fn with_principal<T>(message: T, scopes: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    request
        .extensions_mut()
        .insert(Principal::builder().subject("alice").scopes(scopes).build());
    request
}

/// A request whose principal holds `scopes` in a token bound to the call's client certificate.
fn with_bound_principal<T>(message: T, scopes: &[&str]) -> Request<T> {
    let client = oauth_grpc_tests::tls::Pki::new("method guard CA").client("client-a", None);
    let certificate = ClientCertificate::from_der(&client.der).expect("an rcgen certificate");
    let mut request = Request::new(message);
    request.extensions_mut().insert(
        Principal::builder()
            .subject("alice")
            .scopes(scopes)
            .confirmation(Confirmation::certificate(client.thumbprint()))
            .client_certificate(certificate)
            .build(),
    );
    request
}

fn challenge(status: &Status) -> &str {
    status
        .metadata()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
}

fn order() -> CreateOrderRequest {
    CreateOrderRequest {
        item: "widget".into(),
        quantity: 2,
    }
}

#[tokio::test]
async fn no_principal_is_unauthenticated() {
    let book = OrderBook::default();
    let status = book.create_order(Request::new(order())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), "Bearer");
}

#[tokio::test]
async fn too_few_scopes_is_permission_denied() {
    let book = OrderBook::default();
    let status = book
        .create_order(with_principal(order(), &["orders:read"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        challenge(&status),
        r#"Bearer error="insufficient_scope", scope="orders:write""#
    );

    // All-of with one of two scopes.
    let status = book
        .cancel_order(with_principal(
            CancelOrderRequest { id: "1".into() },
            &["orders:write"],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        challenge(&status),
        r#"Bearer error="insufficient_scope", scope="orders:write orders:cancel""#
    );
}

#[tokio::test]
async fn enough_scopes_reach_the_handler() {
    let store = Store::default();
    let book = OrderBook::new(store.clone());
    let created = book
        .create_order(with_principal(order(), &["orders:write"]))
        .await
        .expect("orders:write may create")
        .into_inner();
    assert_eq!(created.owner, "alice");
    assert_eq!(store.len(), 1);

    // Any-of with the second alternative.
    let fetched = book
        .get_order(with_principal(
            GetOrderRequest {
                id: created.id.clone(),
            },
            &["orders:admin"],
        ))
        .await
        .expect("orders:admin may read")
        .into_inner();
    assert_eq!(fetched, created);

    let who = book
        .who_am_i(with_principal(WhoAmIRequest {}, &[]))
        .await
        .expect("any principal may ask who it is")
        .into_inner();
    assert_eq!(who.subject, "alice");
}

#[tokio::test]
async fn public_method_has_no_check() {
    let book = OrderBook::default();
    let status = book
        .get_http_status(Request::new(GetHttpStatusRequest {}))
        .await
        .expect("public")
        .into_inner();
    assert_eq!(status.code, 200);
}

/// `AdminDesk` puts `#[tonic::async_trait]` above `#[protect]`: the guard sits in front of
/// the boxed future instead of inside the async body.
#[tokio::test]
async fn guard_works_when_async_trait_runs_first() {
    let desk = AdminDesk::default();
    let status = desk
        .purge_cancelled(Request::new(PurgeCancelledRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = desk
        .purge_cancelled(with_principal(PurgeCancelledRequest {}, &["orders:write"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // PurgeCancelled is `bound`: the right scope in a token not bound to the caller is refused.
    let status = desk
        .purge_cancelled(with_principal(PurgeCancelledRequest {}, &["orders:admin"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let purged = desk
        .purge_cancelled(with_bound_principal(
            PurgeCancelledRequest {},
            &["orders:admin"],
        ))
        .await
        .expect("orders:admin in a bound token may purge")
        .into_inner();
    assert_eq!(purged.purged, 0);
}

/// A real server on 127.0.0.1 with no layer at all: nothing puts a principal in the request,
/// so every non-public rpc answers UNAUTHENTICATED, streaming ones included, and the public one
/// answers normally.
#[tokio::test]
async fn server_without_layer_fails_closed() {
    let store = Store::default();
    let router = tonic::transport::Server::builder()
        .add_service(OrdersServer::new(OrderBook::new(store.clone())))
        .add_service(OrdersAdminServer::new(AdminDesk::new(store.clone())));
    let server = TestServer::start(router).await.expect("bind loopback");
    let channel = server.channel().await.expect("connect");
    let mut orders = OrdersClient::new(channel.clone());
    let mut admin = OrdersAdminClient::new(channel);

    let mut outcomes: Vec<(&str, Result<(), Status>)> = vec![
        ("CreateOrder", orders.create_order(order()).await.map(drop)),
        (
            "GetOrder",
            orders
                .get_order(GetOrderRequest { id: "1".into() })
                .await
                .map(drop),
        ),
        (
            "CancelOrder",
            orders
                .cancel_order(CancelOrderRequest { id: "1".into() })
                .await
                .map(drop),
        ),
        (
            "WatchOrders",
            orders
                .watch_orders(WatchOrdersRequest::default())
                .await
                .map(drop),
        ),
        (
            "ImportOrders",
            orders
                .import_orders(tokio_stream::iter(vec![order(), order()]))
                .await
                .map(drop),
        ),
        ("WhoAmI", orders.who_am_i(WhoAmIRequest {}).await.map(drop)),
        (
            "PurgeCancelled",
            admin
                .purge_cancelled(PurgeCancelledRequest {})
                .await
                .map(drop),
        ),
        (
            "ExportOrders",
            admin.export_orders(ExportOrdersRequest {}).await.map(drop),
        ),
    ];
    for (rpc, outcome) in outcomes.drain(..) {
        let status = outcome.expect_err(rpc);
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
        assert_eq!(challenge(&status), "Bearer", "{rpc}");
        assert_eq!(status.message(), "this call needs a bearer token", "{rpc}");
    }
    assert!(store.is_empty(), "no handler may have run");

    // With a token sent, the answer does not claim none came: it says no layer checked it.
    let mut call = tonic::Request::new(WhoAmIRequest {});
    call.metadata_mut().insert(
        "authorization",
        "Bearer eyJhbGciOiJub25lIn0.e30.x"
            .parse()
            .expect("header value"),
    );
    let status = orders
        .who_am_i(call)
        .await
        .expect_err("no layer, no principal");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(challenge(&status), "Bearer");
    assert_eq!(
        status.message(),
        "the bearer token was not checked: no OAuthLayer with a rule for this method ran on the server"
    );

    let http = orders
        .get_http_status(GetHttpStatusRequest {})
        .await
        .expect("the public rpc answers")
        .into_inner();
    assert_eq!((http.code, http.text.as_str()), (200, "OK"));
    server.stop().await;
}
