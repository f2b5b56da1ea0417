//! What the end-to-end benchmarks share (`benches/e2e.rs` and the peer comparison in
//! `benches/peer`): the orders servers on 127.0.0.1 — the no-auth baseline and the
//! `OAuthLayer` — and the latency and throughput measurements over them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::pb::WhoAmIRequest;
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::{OrderBook, Store};
use oauth_grpc::{OAuthLayer, PolicySet, Principal};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::KEYS;

/// Inserts a fixed principal: the no-auth baseline still satisfies the generated checks.
///
/// # Errors
///
/// Never; the signature is tonic's interceptor's.
#[allow(clippy::unnecessary_wraps)]
pub fn fixed_principal(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.extensions_mut().insert(
        Principal::builder()
            .subject("bench-user")
            .scopes(["orders:read", "orders:write"])
            .build(),
    );
    Ok(request)
}

/// A listener on an ephemeral port of 127.0.0.1, and its URL.
///
/// # Panics
///
/// When no loopback port can be bound.
pub async fn listen() -> (TcpListenerStream, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    (TcpListenerStream::new(listener), format!("http://{addr}"))
}

/// The orders service without token work (a fixed principal), serving `store`; its URL.
pub async fn serve_baseline(store: Store) -> String {
    let (incoming, url) = listen().await;
    let router = tonic::transport::Server::builder()
        .layer(tonic::service::InterceptorLayer::new(fixed_principal))
        .add_service(OrdersServer::new(OrderBook::new(store)));
    tokio::spawn(router.serve_with_incoming(incoming));
    url
}

/// The orders service behind `OAuthLayer` with `KEYS[0]`'s validator, its verified-token
/// cache on or off, auditing to nowhere; its URL.
pub async fn serve_layer(store: Store, cached: bool) -> String {
    let (incoming, url) = listen().await;
    let validator = KEYS[0].validator(cached);
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>())
        .audit_sink(|_: &oauth_grpc::audit::AuditEvent<'_>| {});
    let router = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(OrdersServer::new(OrderBook::new(store)));
    tokio::spawn(router.serve_with_incoming(incoming));
    url
}

/// A connected channel to `url`.
///
/// # Panics
///
/// When the server cannot be reached.
pub async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// `message` with `authorization: header`.
pub fn request<T>(message: T, header: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", header.clone());
    request
}

/// p50 and p99 of `calls` sequential `WhoAmI` calls, in microseconds.
///
/// # Panics
///
/// When a call fails.
pub async fn latency(
    client: &mut OrdersClient<Channel>,
    header: &MetadataValue<Ascii>,
    calls: usize,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        client
            .who_am_i(request(WhoAmIRequest {}, header))
            .await
            .expect("call");
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

/// `WhoAmI` calls per second with `concurrency` callers spread over `channels`, for `window`.
///
/// # Panics
///
/// When a call fails.
pub async fn throughput(
    channels: &[Channel],
    header: &MetadataValue<Ascii>,
    concurrency: usize,
    window: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let mut client = OrdersClient::new(channels[i % channels.len()].clone());
        let (done, stop, measuring, header) = (
            done.clone(),
            stop.clone(),
            measuring.clone(),
            header.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client
                    .who_am_i(request(WhoAmIRequest {}, &header))
                    .await
                    .expect("call");
                if measuring.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    measuring.store(true, Ordering::SeqCst);
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let calls = done.load(Ordering::SeqCst);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("caller task");
    }
    calls as f64 / elapsed
}

/// The median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
