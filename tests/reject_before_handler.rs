//! Refusals happen in the layer, before the service is called, so no request message is
//! decoded — streaming calls included. A counting layer between ours and the router shows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::pb::{CreateOrderRequest, WatchOrdersRequest};
use examples::{OrderBook, Store};
use oauth_grpc_tests::issuer::{self, TestKey};
use oauth_grpc_tests::{TestServer, orders_layer};
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

/// Counts the calls that get past the OAuth layer.
#[derive(Clone)]
struct Counting<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S, R> tower_service::Service<R> for Counting<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

#[derive(Clone)]
struct CountingLayer(Arc<AtomicUsize>);

impl<S> tower_layer::Layer<S> for CountingLayer {
    type Service = Counting<S>;
    fn layer(&self, inner: S) -> Counting<S> {
        Counting {
            inner,
            calls: self.0.clone(),
        }
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

#[tokio::test]
async fn streaming_calls_are_refused_before_the_service_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Store::default();
    let router = tonic::transport::Server::builder()
        .layer(orders_layer())
        .layer(CountingLayer(calls.clone()))
        .add_service(OrdersServer::new(OrderBook::new(store.clone())));
    let server = TestServer::serve(|incoming, shutdown| {
        router.serve_with_incoming_shutdown(incoming, shutdown)
    })
    .await
    .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));

    let batch = || {
        tokio_stream::iter(0..50).map(|i| CreateOrderRequest {
            item: format!("item-{i}"),
            quantity: 1,
        })
    };
    let read_only = issuer::token(TestKey::Rsa1, "orders:read");
    let expired = {
        let mut c = issuer::claims("orders:write");
        c["exp"] = serde_json::json!(issuer::now() - 3600);
        issuer::sign_json(&issuer::header(TestKey::Rsa1), &c, TestKey::Rsa1)
    };

    // Client streaming: no token, expired token, wrong scope.
    for (name, token, code) in [
        ("no token", None, Code::Unauthenticated),
        ("expired", Some(expired.as_str()), Code::Unauthenticated),
        (
            "read-only",
            Some(read_only.as_str()),
            Code::PermissionDenied,
        ),
    ] {
        let status = client
            .import_orders(with_token(batch(), token))
            .await
            .expect_err(name);
        assert_eq!(status.code(), code, "{name}");
    }
    // Server streaming without a token.
    let status = client
        .watch_orders(with_token(WatchOrdersRequest::default(), None))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no refused call reached the service"
    );
    assert!(store.is_empty(), "no message was imported");

    // The counter does count: an allowed call gets through.
    let writer = issuer::token(TestKey::Rsa1, "orders:write");
    let imported = client
        .import_orders(with_token(batch(), Some(&writer)))
        .await
        .expect("orders:write may import")
        .into_inner();
    assert_eq!(imported.imported, 50);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(store.len(), 50);
    server.stop().await;
}
