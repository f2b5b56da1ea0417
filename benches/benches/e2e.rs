//! End-to-end unary calls and server streaming over loopback, every variant measured in the
//! same run and reported as a ratio to the baseline: a server that does no token work (a
//! fixed principal) while the client sends the same `authorization` header.
//!
//! `cargo bench -p oauth-grpc-benches --bench e2e`

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::pb::{CreateOrderRequest, WatchOrdersRequest, WhoAmIRequest};
use examples::{OrderBook, Store};
use oauth_grpc::Principal;
use oauth_grpc_benches::dpop::{ProofKey, ProofSigner};
use oauth_grpc_benches::loopback::{
    BenchTls, CREATE_ORDER, Credentials, DpopCalls, WATCH_ORDERS, WHO_AM_I, channel_over, latency,
    listen, median, serve_baseline, serve_baseline_over, serve_layer, serve_layer_dpop,
    serve_layer_over, throughput,
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
    /// `OAuthLayer` cached with DPoP on, a DPoP-bound token and a fresh ES256 proof per
    /// call, signed by the client as it makes the call.
    DpopCached,
    /// The same, the proofs signed before the calls (instruction counts only, where the
    /// number of calls is known): the server's work per call, and the client's without
    /// signing.
    DpopPresigned,
}

/// The proof key of the DPoP rows.
const DPOP_ALG: &str = "ES256";

/// Calls made by the instruction count mode before the counted ones.
const WARM_UP: usize = 50;
/// The most calls the instruction count mode makes with proofs signed ahead: it signs this
/// many (plus the warm-up's) whatever the count, so that signing cancels out of the
/// difference between two counts.
const MAX_PRESIGNED: usize = 1200;

impl Variant {
    /// The variants of a timing run (the pre-signed one needs to know the number of calls).
    const ALL: [Self; 7] = [
        Self::Baseline,
        Self::LayerCached,
        Self::LayerUncached,
        Self::Interceptor,
        Self::TlsBaseline,
        Self::TlsBoundCached,
        Self::DpopCached,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Baseline => "no auth (same header sent)",
            Self::LayerCached => "OAuthLayer, cached",
            Self::LayerUncached => "OAuthLayer, uncached",
            Self::Interceptor => "hand-written interceptor (jsonwebtoken)",
            Self::TlsBaseline => "mTLS, no auth (same header sent)",
            Self::TlsBoundCached => "mTLS, OAuthLayer cached, bound token",
            Self::DpopCached => "OAuthLayer cached, DPoP ES256",
            Self::DpopPresigned => "OAuthLayer cached, DPoP ES256, pre-signed",
        }
    }

    fn dpop(self) -> bool {
        matches!(self, Self::DpopCached | Self::DpopPresigned)
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

    /// What its calls to the server at `url` carry: every variant sends a token of the same
    /// shape; the mTLS-bound variant's is bound to the client certificate, the DPoP
    /// variants' to the proof key (`cnf.jkt`), sent as `DPoP <token>` with a proof.
    fn credentials(self, tls: &BenchTls, url: &str) -> Calls {
        const SCOPE: &str = "orders:read orders:write";
        if self.dpop() {
            let signer = Arc::new(ProofSigner::new(ProofKey::named(DPOP_ALG)));
            let token = KEYS[0].dpop_token(SCOPE, &signer.jkt);
            return Calls::Dpop(DpopCalls::new(url, &token, signer));
        }
        let thumbprint = (self == Self::TlsBoundCached).then_some(tls.client_thumbprint.as_str());
        let token = KEYS[0].token_bound_to(SCOPE, thumbprint);
        Calls::Header(format!("Bearer {token}").parse().unwrap())
    }
}

/// A variant's credentials.
#[derive(Clone)]
enum Calls {
    Header(MetadataValue<tonic::metadata::Ascii>),
    Dpop(DpopCalls),
}

impl Credentials for Calls {
    fn request<T>(&self, message: T, path: &str) -> Request<T> {
        match self {
            Self::Header(header) => header.request(message, path),
            Self::Dpop(calls) => calls.request(message, path),
        }
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
        Variant::DpopCached | Variant::DpopPresigned => serve_layer_dpop(store).await,
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
    credentials: &Calls,
    window: Duration,
) -> f64 {
    let mut received = 0u64;
    let start = Instant::now();
    while start.elapsed() < window {
        let mut stream = client
            .watch_orders(credentials.request(WatchOrdersRequest::default(), WATCH_ORDERS))
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
    credentials: Calls,
    one: Channel,
    four: Vec<Channel>,
    /// Per round: p50, p99, 64 callers on 1 connection, on 4, streaming.
    results: Vec<[f64; 5]>,
}

/// `E2E_INSTRUCTIONS=<variant>:<calls>`: serve one variant, warm it up, make `calls` sequential
/// unary calls and exit — for `benches/instructions.sh`, which runs this under callgrind and
/// takes the difference between two call counts as the instructions of one call (client and
/// server together). Instruction counts do not depend on what else the machine is doing.
///
/// `dpop` signs a proof per call in the client (in the count); `dpop-presigned` signs
/// `WARM_UP + MAX_PRESIGNED` proofs before the first call whatever `calls` is, so that the
/// signing cancels out of the difference and only the server's work (and the client's, but
/// for signing) remains.
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
        "dpop" => Variant::DpopCached,
        "dpop-presigned" => Variant::DpopPresigned,
        other => panic!(
            "unknown variant {other:?}: baseline, cached, uncached, interceptor, tls-baseline, tls-bound, dpop or dpop-presigned"
        ),
    };
    let calls: usize = calls.parse().expect("a number of calls");
    assert!(
        variant != Variant::DpopPresigned || calls <= MAX_PRESIGNED,
        "at most {MAX_PRESIGNED} calls with proofs signed ahead"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tls = BenchTls::new();
        let url = serve(variant, Store::default(), &tls).await;
        let mut credentials = variant.credentials(&tls, &url);
        if let (Variant::DpopPresigned, Calls::Dpop(calls)) = (variant, &credentials) {
            credentials = Calls::Dpop(calls.clone().presign(WHO_AM_I, WARM_UP + MAX_PRESIGNED));
        }
        let mut client = OrdersClient::new(channel_over(&url, variant.tls().then_some(&tls)).await);
        for _ in 0..WARM_UP {
            client
                .who_am_i(credentials.request(WhoAmIRequest {}, WHO_AM_I))
                .await
                .unwrap();
        }
        for _ in 0..calls {
            client
                .who_am_i(credentials.request(WhoAmIRequest {}, WHO_AM_I))
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
            let url = serve(variant, Store::default(), &tls).await;
            let credentials = variant.credentials(&tls, &url);
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
                    .create_order(credentials.request(CreateOrderRequest { item: "seed".into(), quantity: 1 }, CREATE_ORDER))
                    .await
                    .unwrap();
            }
            latency(&mut client, &credentials, 300).await;
            targets.push(Target { variant, credentials, one, four, results: Vec::new() });
        }
        for _ in 0..rounds {
            for target in &mut targets {
                let credentials = target.credentials.clone();
                let mut client = OrdersClient::new(target.one.clone());
                let (p50, p99) = latency(&mut client, &credentials, 1000).await;
                let single = throughput(std::slice::from_ref(&target.one), &credentials, 64, Duration::from_millis(800)).await;
                let spread = throughput(&target.four, &credentials, 64, Duration::from_millis(800)).await;
                let stream = streaming(&mut client, &credentials, Duration::from_millis(500)).await;
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
        println!("\nratio of the DPoP call to the cached bearer call (what DPoP adds, client signing included)");
        let cached = targets.iter().position(|t| t.variant == Variant::LayerCached).unwrap();
        for (target, m) in targets.iter().zip(&medians).filter(|(t, _)| t.variant.dpop()) {
            let r: Vec<f64> = (0..5).map(|i| m[i] / medians[cached][i]).collect();
            println!(
                "{:42} {:9.3} {:9.3} {:12.3} {:12.3} {:13.3}",
                target.variant.name(), r[0], r[1], r[2], r[3], r[4]
            );
        }
    });
}
