//! The metrics endpoint of `orders-server --metrics-listen` (`examples::metrics::serve`):
//! after known calls through a real server, with keys fetched over real HTTP, the Prometheus
//! scrape counts exactly those calls.
//!
//! One test in its own binary: the OpenTelemetry meter provider is process-wide.

use examples::pb::orders_client::OrdersClient;
use examples::pb::{CreateOrderRequest, GetHttpStatusRequest, WhoAmIRequest};
use examples::{AdminDesk, OrderBook, Store};
use oauth_grpc::{KeySource, OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::idp::IdentityProvider;
use oauth_grpc_tests::issuer::{AUDIENCE, TestKey, claims, header, sign_json};
use oauth_grpc_tests::orders_server;
use serde_json::json;
use tonic::Request;
use tonic::metadata::MetadataValue;

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_counts_the_calls_made() {
    // First: instruments bind to the global provider when first used.
    let endpoint = examples::metrics::serve("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("the metrics endpoint starts");

    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySource::discover(idp.issuer()))
        .start()
        .await
        .expect("keys load at start-up");
    let policies = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>();
    let server = orders_server(OAuthLayer::new(validator, policies), Store::default())
        .await
        .expect("server starts");
    let mut client = OrdersClient::new(server.channel().await.expect("connects"));

    let mut token_claims = claims("orders:read");
    token_claims["iss"] = json!(idp.issuer());
    let reader = sign_json(&header(TestKey::Rsa1), &token_claims, TestKey::Rsa1);

    // 3 allowed (1 cache miss, then hits), 2 refused for scope (hits), 1 without a token,
    // 2 public, 1 garbage token (refused before any cache lookup can find it).
    for _ in 0..3 {
        client
            .who_am_i(authorized(WhoAmIRequest {}, &reader))
            .await
            .expect("authenticated");
    }
    for _ in 0..2 {
        let refused = client
            .create_order(authorized(
                CreateOrderRequest {
                    item: "book".into(),
                    quantity: 1,
                },
                &reader,
            ))
            .await
            .expect_err("orders:write is missing");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    }
    let refused = client
        .who_am_i(Request::new(WhoAmIRequest {}))
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    for _ in 0..2 {
        client
            .get_http_status(Request::new(GetHttpStatusRequest {}))
            .await
            .expect("public");
    }
    let refused = client
        .who_am_i(authorized(WhoAmIRequest {}, "not.a.token"))
        .await
        .expect_err("garbage");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let scrape = reqwest::get(format!("http://{}/metrics", endpoint.addr()))
        .await
        .expect("scrape answers")
        .text()
        .await
        .expect("scrape body");

    let decisions = "oauth_grpc_decisions_total";
    let who_am_i = ("rpc_method", "/orders.v1.Orders/WhoAmI");
    let create = ("rpc_method", "/orders.v1.Orders/CreateOrder");
    let status = ("rpc_method", "/orders.v1.Orders/GetHTTPStatus");
    let allow = ("oauth_grpc_decision", "allow");
    let deny = ("oauth_grpc_decision", "deny");
    assert_eq!(
        sample(
            &scrape,
            decisions,
            &[who_am_i, allow, ("oauth_grpc_reason", "authorized")]
        ),
        3.0,
        "{scrape}"
    );
    assert_eq!(
        sample(
            &scrape,
            decisions,
            &[create, deny, ("oauth_grpc_reason", "insufficient_scope")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &scrape,
            decisions,
            &[who_am_i, deny, ("oauth_grpc_reason", "missing_token")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &scrape,
            decisions,
            &[status, allow, ("oauth_grpc_reason", "public")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &scrape,
            decisions,
            &[who_am_i, deny, ("oauth_grpc_reason", "malformed")]
        ),
        1.0
    );
    assert_eq!(sample(&scrape, decisions, &[]), 9.0);

    // One latency sample per decision.
    let durations = "oauth_grpc_validation_duration_seconds_count";
    assert_eq!(sample(&scrape, durations, &[allow]), 5.0);
    assert_eq!(sample(&scrape, durations, &[deny]), 4.0);

    // The reader's token: verified once, then found in the cache four times.
    let lookups = "oauth_grpc_token_cache_lookups_total";
    assert_eq!(
        sample(&scrape, lookups, &[("oauth_grpc_cache_result", "miss")]),
        2.0,
        "the reader's first call and the garbage token"
    );
    assert_eq!(
        sample(&scrape, lookups, &[("oauth_grpc_cache_result", "hit")]),
        4.0
    );

    // Keys came by discovery over HTTP (discovery and JWKS count as one fetch); none failed.
    let fetches = "oauth_grpc_jwks_fetches_total";
    assert_eq!(
        sample(&scrape, fetches, &[("oauth_grpc_outcome", "success")]) as usize,
        idp.jwks_requests(),
        "{scrape}"
    );
    assert_eq!(
        sample(&scrape, fetches, &[("oauth_grpc_outcome", "failure")]),
        0.0
    );

    server.stop().await;
    endpoint.shutdown().expect("provider shuts down");
}
