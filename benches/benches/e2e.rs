//! End-to-end unary calls and server streaming over loopback, every variant measured in the
//! same run and reported as a ratio to the baseline: a server that does no token work (a
//! fixed principal) while the client sends the same `authorization` header.
//!
//! `cargo bench -p oauth-grpc-benches --bench e2e`

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::pb::{CreateOrderRequest, WatchOrdersRequest, WhoAmIRequest};
use examples::{OrderBook, Store};
use oauth_grpc::Principal;
use oauth_grpc_benches::loopback::{
    BenchTls, channel_over, latency, listen, median, request, serve_baseline, serve_baseline_over,
    serve_layer, serve_layer_over, throughput,
};
use oauth_grpc_benches::{KEYS, jsonwebtoken_validation};
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Status};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Baseline,
    LayerCached,
    LayerUncached,
    Interceptor,
    /// Mutual TLS, no token work: the baseline of the TLS rows.
    TlsBaseline,
    /// Mutual TLS, `OAuthLayer` cached, a token bound to the client certificate.
    TlsBoundCached,
}

impl Variant {
    const ALL: [Self; 6] = [
        Self::Baseline,
        Self::LayerCached,
        Self::LayerUncached,
        Self::Interceptor,
        Self::TlsBaseline,
        Self::TlsBoundCached,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Baseline => "no auth (same header sent)",
            Self::LayerCached => "OAuthLayer, cached",
            Self::LayerUncached => "OAuthLayer, uncached",
            Self::Interceptor => "hand-written interceptor (jsonwebtoken)",
            Self::TlsBaseline => "mTLS, no auth (same header sent)",
            Self::TlsBoundCached => "mTLS, OAuthLayer cached, bound token",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Self::TlsBaseline | Self::TlsBoundCached)
    }

    /// The variant its ratios are taken against: the no-auth server of the same transport.
    fn baseline(self) -> Self {
        if self.tls() {
            Self::TlsBaseline
        } else {
            Self::Baseline
        }
    }

    /// The `authorization` value its calls carry: every variant sends a token of the same
    /// shape; the bound variant's is bound to the client certificate.
    fn header(self, tls: &BenchTls) -> MetadataValue<tonic::metadata::Ascii> {
        let thumbprint = (self == Self::TlsBoundCached).then_some(tls.client_thumbprint.as_str());
        let token = KEYS[0].token_bound_to("orders:read orders:write", thumbprint);
        format!("Bearer {token}").parse().unwrap()
    }
}

/// What a user would write instead of the framework: decode and validate in an interceptor.
fn interceptor() -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    let key = KEYS[0].decoding_key();
    let validation = jsonwebtoken_validation(KEYS[0].alg);
    move |mut request: Request<()>| {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("no token"))?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|_| Status::unauthenticated("invalid token"))?;
        let scopes = data.claims["scope"].as_str().unwrap_or_default().to_owned();
        let principal = Principal::builder()
            .subject(data.claims["sub"].as_str().unwrap_or_default())
            .scopes(scopes.split(' '))
            .build();
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

async fn serve(variant: Variant, store: Store, tls: &BenchTls) -> String {
    match variant {
        Variant::TlsBaseline => serve_baseline_over(store, Some(tls)).await,
        Variant::TlsBoundCached => serve_layer_over(store, true, Some(tls)).await,
        Variant::Baseline => serve_baseline(store).await,
        Variant::LayerCached => serve_layer(store, true).await,
        Variant::LayerUncached => serve_layer(store, false).await,
        Variant::Interceptor => {
            let (incoming, url) = listen().await;
            let router = tonic::transport::Server::builder()
                .layer(tonic::service::InterceptorLayer::new(interceptor()))
                .add_service(OrdersServer::new(OrderBook::new(store)));
            tokio::spawn(router.serve_with_incoming(incoming));
            url
        }
    }
}

/// Messages per second of `WatchOrders` streams of 1,000 orders, one call after another.
async fn streaming(
    client: &mut OrdersClient<Channel>,
    header: &MetadataValue<tonic::metadata::Ascii>,
    window: Duration,
) -> f64 {
    let mut received = 0u64;
    let start = Instant::now();
    while start.elapsed() < window {
        let mut stream = client
            .watch_orders(request(WatchOrdersRequest::default(), header))
            .await
            .unwrap()
            .into_inner();
        while let Some(order) = stream.next().await {
            order.unwrap();
            received += 1;
        }
    }
    received as f64 / start.elapsed().as_secs_f64()
}

/// One variant's server and its clients.
struct Target {
    variant: Variant,
    header: MetadataValue<tonic::metadata::Ascii>,
    one: Channel,
    four: Vec<Channel>,
    /// Per round: p50, p99, 64 callers on 1 connection, on 4, streaming.
    results: Vec<[f64; 5]>,
}

/// `E2E_INSTRUCTIONS=<variant>:<calls>`: serve one variant, warm it up, make `calls` sequential
/// unary calls and exit — for `benches/instructions.sh`, which runs this under callgrind and
/// takes the difference between two call counts as the instructions of one call (client and
/// server together). Instruction counts do not depend on what else the machine is doing.
fn instructions_mode(spec: &str) {
    let (variant, calls) = spec
        .split_once(':')
        .expect("E2E_INSTRUCTIONS=<variant>:<calls>");
    let variant = match variant {
        "baseline" => Variant::Baseline,
        "cached" => Variant::LayerCached,
        "uncached" => Variant::LayerUncached,
        "interceptor" => Variant::Interceptor,
        "tls-baseline" => Variant::TlsBaseline,
        "tls-bound" => Variant::TlsBoundCached,
        other => panic!(
            "unknown variant {other:?}: baseline, cached, uncached, interceptor, tls-baseline or tls-bound"
        ),
    };
    let calls: usize = calls.parse().expect("a number of calls");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tls = BenchTls::new();
        let header = variant.header(&tls);
        let url = serve(variant, Store::default(), &tls).await;
        let mut client = OrdersClient::new(channel_over(&url, variant.tls().then_some(&tls)).await);
        for _ in 0..50 {
            client
                .who_am_i(request(WhoAmIRequest {}, &header))
                .await
                .unwrap();
        }
        for _ in 0..calls {
            client
                .who_am_i(request(WhoAmIRequest {}, &header))
                .await
                .unwrap();
        }
    });
}

fn main() {
    if let Ok(spec) = std::env::var("E2E_INSTRUCTIONS") {
        return instructions_mode(&spec);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run the smallest
    // possible pass then, to show the harness works.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds: usize = std::env::var("E2E_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    runtime.block_on(async {
        let token = KEYS[0].token("orders:read orders:write");
        println!(
            "e2e over loopback: RS256 token of {} bytes, {rounds} rounds with the variants interleaved, medians reported",
            token.len()
        );
        let tls = BenchTls::new();
        let mut targets = Vec::new();
        for variant in Variant::ALL {
            let header = variant.header(&tls);
            let url = serve(variant, Store::default(), &tls).await;
            let over = variant.tls().then_some(&tls);
            let one = channel_over(&url, over).await;
            let mut four = Vec::new();
            for _ in 0..4 {
                four.push(channel_over(&url, over).await);
            }
            // 1,000 orders for the streaming measurement, and a warm-up.
            let mut client = OrdersClient::new(one.clone());
            for _ in 0..1000 {
                client
                    .create_order(request(CreateOrderRequest { item: "seed".into(), quantity: 1 }, &header))
                    .await
                    .unwrap();
            }
            latency(&mut client, &header, 300).await;
            targets.push(Target { variant, header, one, four, results: Vec::new() });
        }
        for _ in 0..rounds {
            for target in &mut targets {
                let header = target.header.clone();
                let mut client = OrdersClient::new(target.one.clone());
                let (p50, p99) = latency(&mut client, &header, 1000).await;
                let single = throughput(std::slice::from_ref(&target.one), &header, 64, Duration::from_millis(800)).await;
                let spread = throughput(&target.four, &header, 64, Duration::from_millis(800)).await;
                let stream = streaming(&mut client, &header, Duration::from_millis(500)).await;
                target.results.push([p50, p99, single, spread, stream]);
            }
        }
        let medians: Vec<[f64; 5]> = targets
            .iter()
            .map(|t| std::array::from_fn(|i| median(&mut t.results.iter().map(|r| r[i]).collect::<Vec<_>>())))
            .collect();
        println!(
            "\n{:42} {:>9} {:>9} {:>12} {:>12} {:>13}",
            "variant", "p50 µs", "p99 µs", "64/1 conn/s", "64/4 conn/s", "stream msg/s"
        );
        for (target, m) in targets.iter().zip(&medians) {
            println!(
                "{:42} {:9.1} {:9.1} {:12.0} {:12.0} {:13.0}",
                target.variant.name(), m[0], m[1], m[2], m[3], m[4]
            );
        }
        println!("\nratio to the no-auth server of the same transport (latency: lower is better; throughput: higher is better)");
        for (target, m) in targets.iter().zip(&medians) {
            let base = targets.iter().position(|t| t.variant == target.variant.baseline()).unwrap();
            let r: Vec<f64> = (0..5).map(|i| m[i] / medians[base][i]).collect();
            println!(
                "{:42} {:9.3} {:9.3} {:12.3} {:12.3} {:13.3}",
                target.variant.name(), r[0], r[1], r[2], r[3], r[4]
            );
        }
    });
}
