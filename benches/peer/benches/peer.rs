//! oauth-grpc against its Rust peer, `jwt-authorizer` 0.15, end to end over loopback.
//!
//! jwt-authorizer only fits tonic 0.12, so it guards a tonic 0.12 server, and each side is
//! compared with a no-auth server of its own tonic version, all measured in the same run:
//!
//! | variant | server |
//! |---|---|
//! | (a) tonic 0.12, no auth | trivial interceptor puts fixed claims in the request |
//! | (b) tonic 0.12 + jwt-authorizer | RS256 public key, `iss`, `aud`, `exp`; no token cache |
//! | (c) tonic 0.14, no auth | fixed principal, as the baseline of `benches/benches/e2e.rs` |
//! | (d) tonic 0.14 + `OAuthLayer`, uncached | as in `e2e.rs` |
//! | (e) tonic 0.14 + `OAuthLayer`, cached | as in `e2e.rs` |
//!
//! One tonic 0.14 client calls `orders.v1.Orders/WhoAmI` (rule: `authenticated`) on all of
//! them with the same `authorization` header, so the header's cost is in both baselines. The
//! report gives (b)/(a) next to (d)/(c) and (e)/(c): p50 and p99 of 1,000 sequential calls,
//! and calls per second with 64 concurrent callers over 1 and over 4 connections. Rounds are
//! interleaved (the starting variant rotates) and medians reported; `PEER_ROUNDS` sets their
//! number (default 5, ~11 s each). Before measuring, every guarded server must accept the token
//! and refuse an expired one, one for another audience or issuer, and one with a broken
//! signature; then the per-token check alone (no gRPC) of both libraries is timed, which the
//! loopback numbers, noisy on shared cores, cannot resolve on their own.
//!
//! This crate is not a workspace member (jwt-authorizer brings tonic 0.12, axum 0.7 and
//! jsonwebtoken 9). Run it from its own folder:
//!
//! ```sh
//! cd benches/peer && PEER_ROUNDS=12 cargo bench --bench peer
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use examples::Store;
use examples::pb::WhoAmIRequest;
use examples::pb::orders_client::OrdersClient;
use jwt_authorizer::{Authorizer, IntoLayer, JwtAuthorizer, Validation};
use oauth_grpc_benches::loopback::{
    channel, latency, listen, median, request, serve_baseline, serve_layer, throughput,
};
use oauth_grpc_benches::{AUDIENCE, ISSUER, KEYS};
use oauth_grpc_peer_bench::{Claims, OrdersServer012, fixed_claims};
use serde_json::json;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

/// The public half of `KEYS[0]` (RS256), as jwt-authorizer takes it: PEM text.
const RSA_PUBLIC_PEM: &str = include_str!("../../../tests/keys/rsa1.pub.pem");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Tonic012Baseline,
    JwtAuthorizer,
    Tonic014Baseline,
    LayerUncached,
    LayerCached,
}

impl Variant {
    const ALL: [Self; 5] = [
        Self::Tonic012Baseline,
        Self::JwtAuthorizer,
        Self::Tonic014Baseline,
        Self::LayerUncached,
        Self::LayerCached,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Tonic012Baseline => "(a) tonic 0.12, no auth (same header sent)",
            Self::JwtAuthorizer => "(b) tonic 0.12 + jwt-authorizer (no cache)",
            Self::Tonic014Baseline => "(c) tonic 0.14, no auth (same header sent)",
            Self::LayerUncached => "(d) tonic 0.14 + OAuthLayer, uncached",
            Self::LayerCached => "(e) tonic 0.14 + OAuthLayer, cached",
        }
    }

    fn tag(self) -> &'static str {
        &self.name()[..3]
    }

    fn checks_tokens(self) -> bool {
        !matches!(self, Self::Tonic012Baseline | Self::Tonic014Baseline)
    }
}

/// jwt-authorizer configured as our validator is: the same RS256 public key, RS256 only,
/// `iss` and `aud` checked, `exp` required and checked with the same 60 s leeway.
async fn jwt_authorizer() -> Authorizer<Claims> {
    JwtAuthorizer::<Claims>::from_rsa_pem_text(RSA_PUBLIC_PEM)
        .validation(
            Validation::new()
                .iss(&[ISSUER])
                .aud(&[AUDIENCE])
                .exp(true)
                .leeway(60)
                .algs(vec![jsonwebtoken9::Algorithm::RS256]),
        )
        .build()
        .await
        .expect("jwt-authorizer from the benchmark's RSA public key")
}

/// The per-token check alone, without gRPC: jwt-authorizer's `Authorizer::check_auth` against
/// our `Validator::validate_at` without cache, in interleaved batches. Median µs per call.
async fn token_check_alone(token: &str) -> (f64, f64) {
    const BATCHES: usize = 9;
    const CALLS: u32 = 2_000;
    let peer = jwt_authorizer().await;
    let ours = KEYS[0].validator(false);
    let (mut peer_us, mut ours_us) = (Vec::new(), Vec::new());
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..CALLS {
            peer.check_auth(std::hint::black_box(token))
                .await
                .expect("jwt-authorizer accepts the token");
        }
        peer_us.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
        let start = Instant::now();
        for _ in 0..CALLS {
            ours.validate_at(std::hint::black_box(token), SystemTime::now())
                .expect("our validator accepts the token");
        }
        ours_us.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
    }
    (median(&mut peer_us), median(&mut ours_us))
}

async fn serve(variant: Variant) -> String {
    match variant {
        Variant::Tonic012Baseline => {
            let (incoming, url) = listen().await;
            let router = tonic012::transport::Server::builder()
                .layer(tonic012::service::interceptor(fixed_claims))
                .add_service(OrdersServer012);
            tokio::spawn(router.serve_with_incoming(incoming));
            url
        }
        Variant::JwtAuthorizer => {
            let (incoming, url) = listen().await;
            let router = tonic012::transport::Server::builder()
                .layer(jwt_authorizer().await.into_layer())
                .add_service(OrdersServer012);
            tokio::spawn(router.serve_with_incoming(incoming));
            url
        }
        // The tonic 0.14 side is `benches/benches/e2e.rs`'s, from the shared bench library.
        Variant::Tonic014Baseline => serve_baseline(Store::default()).await,
        Variant::LayerUncached => serve_layer(Store::default(), false).await,
        Variant::LayerCached => serve_layer(Store::default(), true).await,
    }
}

fn bearer(token: &str) -> MetadataValue<Ascii> {
    format!("Bearer {token}")
        .parse()
        .expect("a JWT is a valid header value")
}


/// A token signed with the benchmark key, from the valid claims of `KEYS[0].token` changed by
/// `edit`.
fn signed_token(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "client_id": "bench-client",
        "iat": now, "exp": now + 3600, "jti": format!("bench-{now}"), "scope": "orders:read",
    });
    edit(&mut claims);
    let mut header = jsonwebtoken::Header::new(KEYS[0].alg);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some("k".to_owned());
    jsonwebtoken::encode(&header, &claims, &KEYS[0].encoding_key()).expect("sign")
}

/// Every server answers the valid token with the bench subject; every guarded server refuses
/// tokens that are expired, for another audience, or tampered with.
async fn check_equivalence(variant: Variant, channel: &Channel, token: &str) {
    let mut client = OrdersClient::new(channel.clone());
    let reply = client
        .who_am_i(request(WhoAmIRequest {}, &bearer(token)))
        .await
        .unwrap_or_else(|status| panic!("{}: valid token refused: {status}", variant.name()))
        .into_inner();
    assert_eq!(reply.subject, "bench-user", "{}", variant.name());
    assert!(
        reply.scopes.iter().any(|s| s == "orders:read"),
        "{}",
        variant.name()
    );
    if !variant.checks_tokens() {
        return;
    }
    let expired = signed_token(|c| {
        c["iat"] = json!(1_000_000_000u64);
        c["exp"] = json!(1_000_000_600u64);
    });
    let other_audience = signed_token(|c| c["aud"] = json!("another-api"));
    let other_issuer = signed_token(|c| c["iss"] = json!("https://elsewhere.test/"));
    // Flip one character inside the signature (not its last one, which holds padding bits).
    let mut tampered = token.as_bytes().to_vec();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII token");
    for (what, bad) in [
        ("expired", expired),
        ("other audience", other_audience),
        ("other issuer", other_issuer),
        ("tampered signature", tampered),
    ] {
        let status = client
            .who_am_i(request(WhoAmIRequest {}, &bearer(&bad)))
            .await
            .expect_err("a bad token must be refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{}: {what}",
            variant.name()
        );
    }
}

/// One variant's server and its clients.
struct Target {
    variant: Variant,
    one: Channel,
    four: Vec<Channel>,
    /// Per round: p50, p99, 64 callers on 1 connection, on 4.
    results: Vec<[f64; 4]>,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rounds: usize = std::env::var("PEER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(5);
    runtime.block_on(async {
        let token = KEYS[0].token("orders:read orders:write");
        let header = bearer(&token);
        println!(
            "peer e2e over loopback: RS256 token of {} bytes, {rounds} rounds with the variants interleaved, medians reported",
            token.len()
        );
        let mut targets = Vec::new();
        for variant in Variant::ALL {
            let url = serve(variant).await;
            let one = channel(&url).await;
            let mut four = Vec::new();
            for _ in 0..4 {
                four.push(channel(&url).await);
            }
            check_equivalence(variant, &one, &token).await;
            // Warm-up.
            latency(&mut OrdersClient::new(one.clone()), &header, 300).await;
            targets.push(Target {
                variant,
                one,
                four,
                results: Vec::new(),
            });
        }
        println!("equivalence checks passed: every guarded server refuses expired, wrong-aud, wrong-iss and tampered tokens");
        let (peer_check, ours_check) = token_check_alone(&token).await;
        println!(
            "token check alone (no gRPC, median of 9 interleaved batches of 2,000): jwt-authorizer {peer_check:.1} µs, OAuthLayer's validator uncached {ours_check:.1} µs, ratio ours/peer {:.3}",
            ours_check / peer_check
        );
        let started = Instant::now();
        for round in 0..rounds {
            for k in 0..targets.len() {
                let target = &mut targets[(round + k) % Variant::ALL.len()];
                let mut client = OrdersClient::new(target.one.clone());
                let (p50, p99) = latency(&mut client, &header, 1000).await;
                let window = Duration::from_millis(800);
                let single = throughput(std::slice::from_ref(&target.one), &header, 64, window).await;
                let spread = throughput(&target.four, &header, 64, window).await;
                target.results.push([p50, p99, single, spread]);
            }
            eprintln!("round {}/{rounds} done at {:.0} s", round + 1, started.elapsed().as_secs_f64());
        }
        let medians: Vec<[f64; 4]> = targets
            .iter()
            .map(|t| {
                std::array::from_fn(|i| {
                    median(&mut t.results.iter().map(|r| r[i]).collect::<Vec<_>>())
                })
            })
            .collect();
        println!("\n| variant | p50 µs | p99 µs | 64 callers, 1 conn /s | 64 callers, 4 conns /s |");
        println!("|---|---:|---:|---:|---:|");
        for (target, m) in targets.iter().zip(&medians) {
            println!(
                "| {} | {:.1} | {:.1} | {:.0} | {:.0} |",
                target.variant.name(),
                m[0],
                m[1],
                m[2],
                m[3]
            );
        }
        let of = |v: Variant| &medians[Variant::ALL.iter().position(|&x| x == v).expect("variant")];
        let rows = [
            ("jwt-authorizer (no cache) / tonic 0.12 no auth", Variant::JwtAuthorizer, Variant::Tonic012Baseline),
            ("OAuthLayer, uncached / tonic 0.14 no auth", Variant::LayerUncached, Variant::Tonic014Baseline),
            ("OAuthLayer, cached / tonic 0.14 no auth", Variant::LayerCached, Variant::Tonic014Baseline),
            ("(context) tonic 0.12 no auth / tonic 0.14 no auth", Variant::Tonic012Baseline, Variant::Tonic014Baseline),
            ("(context) OAuthLayer, uncached / jwt-authorizer, absolute", Variant::LayerUncached, Variant::JwtAuthorizer),
        ];
        println!("\nratio to the baseline of the same tonic version (latency: lower is better; throughput: higher is better)\n");
        println!("| ratio | p50 | p99 | 64/1 conn | 64/4 conns |");
        println!("|---|---:|---:|---:|---:|");
        for (label, variant, baseline) in rows {
            let (m, b) = (of(variant), of(baseline));
            println!(
                "| {label} | {:.3} | {:.3} | {:.3} | {:.3} |",
                m[0] / b[0],
                m[1] / b[1],
                m[2] / b[2],
                m[3] / b[3]
            );
        }
        println!("\n| p50 added to the baseline | µs |");
        println!("|---|---:|");
        for (_, variant, baseline) in &rows[..3] {
            println!(
                "| {} − {} | {:+.1} |",
                variant.tag(),
                baseline.tag(),
                of(*variant)[0] - of(*baseline)[0]
            );
        }
    });
}
