//! Streams end when their token does: a server stream, a client stream and a bidi stream
//! opened with a token that expires two seconds later end with 16 `invalid_token` ("the token
//! has expired") at `exp` (leeway 0 here), and nothing stamped after that instant crosses. A
//! method that outlives its token keeps streaming.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use examples::Store;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{CreateOrderRequest, GetOrderRequest, WatchOrdersRequest};
use oauth_grpc::{
    KeySet, MethodPolicy, OAuthLayer, PolicySet, ProtectedService, RpcKind, ServicePolicy,
    Validator,
};
use oauth_grpc_tests::issuer::{self, AUDIENCE, ISSUER, TestKey, claims, header, sign_json};
use oauth_grpc_tests::{TestServer, challenge, orders_server};
use serde_json::json;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const EXPIRED: &str = r#"Bearer error="invalid_token", error_description="the token has expired""#;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A validator without leeway: a token is refused from `exp` on.
fn strict_validator() -> Validator {
    Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&issuer::jwks()).expect("test JWKS"))
        .leeway(Duration::ZERO)
        .build()
        .expect("validator")
}

/// A token granting `scope` that expires at least `seconds` from now (`exp` is whole
/// seconds); returns it and its expiry in Unix milliseconds.
fn expiring_token(scope: &str, seconds: i64) -> (String, u128) {
    let mut c = claims(scope);
    let exp = issuer::now() + seconds;
    c["exp"] = json!(exp);
    c["jti"] = json!(format!("stream-{}", now_ms()));
    let token = sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1);
    (token, u128::try_from(exp).unwrap_or_default() * 1000)
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

async fn server(layer: OAuthLayer, store: Store) -> (TestServer, OrdersClient<Channel>) {
    let server = orders_server(layer, store).await.expect("bind");
    let client = OrdersClient::new(server.channel().await.expect("connect"));
    (server, client)
}

/// Places an order stamped with the current time every 100 ms until stopped.
struct Ticker {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    fn start(store: &Store) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, store) = (stop.clone(), store.clone());
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::SeqCst) {
                store.place(now_ms().to_string(), 1, "ticker");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

/// A `WatchOrders` that follows changes, opened with `token`.
async fn watch(
    client: &mut OrdersClient<Channel>,
    token: &str,
) -> tonic::Streaming<examples::pb::Order> {
    client
        .watch_orders(authorized(follow(), token))
        .await
        .expect("opened with a valid token")
        .into_inner()
}

fn stamp(item: &str) -> u128 {
    item.parse().expect("a stamped item")
}

fn assert_expired(status: &Status, ended_ms: u128, exp_ms: u128) {
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(challenge(status), EXPIRED);
    assert!(
        ended_ms >= exp_ms,
        "ended {} ms before exp",
        exp_ms - ended_ms
    );
    // Generous for a loaded machine: the cut is a timer at `exp`, not a poll.
    assert!(
        ended_ms <= exp_ms + 1500,
        "ended {} ms after exp",
        ended_ms - exp_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_ends_when_its_token_expires() {
    let store = Store::default();
    let layer = OAuthLayer::new(
        strict_validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let (server, mut client) = server(layer.clone(), store.clone()).await;
    let ticker = Ticker::start(&store);

    let (token, exp_ms) = expiring_token("orders:read", 2);
    let mut stream = watch(&mut client, &token).await;
    let mut received = 0;
    let status = loop {
        match stream.next().await {
            Some(Ok(order)) => {
                let stamped = stamp(&order.item);
                assert!(
                    stamped < exp_ms,
                    "an order stamped {} ms after exp arrived",
                    stamped - exp_ms
                );
                received += 1;
            }
            Some(Err(status)) => break status,
            None => panic!("the stream ended without a status after {received} orders"),
        }
    };
    assert_expired(&status, now_ms(), exp_ms);
    assert!(
        received >= 5,
        "the watch delivered {received} orders before exp"
    );
    assert_eq!(
        layer.bound_streams(),
        0,
        "the cut stream released its re-check"
    );
    ticker.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stream_stops_at_expiry() {
    let store = Store::default();
    let layer = OAuthLayer::new(
        strict_validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let (server, mut client) = server(layer, store.clone()).await;

    let (token, exp_ms) = expiring_token("orders:write", 2);
    // An endless upload, one stamped order every 100 ms.
    let uploads: Pin<Box<dyn Stream<Item = CreateOrderRequest> + Send>> = Box::pin(
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(Duration::from_millis(
            100,
        )))
        .map(|_| CreateOrderRequest {
            item: now_ms().to_string(),
            quantity: 1,
        }),
    );
    let status = client
        .import_orders(authorized(uploads, &token))
        .await
        .expect_err("the upload outlived the token");
    assert_expired(&status, now_ms(), exp_ms);
    assert!(
        store.len() >= 5,
        "{} orders imported before exp",
        store.len()
    );
    let mut watch = client
        .watch_orders(authorized(
            WatchOrdersRequest::default(),
            &issuer::token(TestKey::Rsa1, "orders:read"),
        ))
        .await
        .expect("a fresh token reads")
        .into_inner();
    while let Some(order) = watch.next().await {
        let order = order.expect("listed");
        let stamped = stamp(&order.item);
        assert!(
            stamped < exp_ms,
            "an order sent {} ms after exp was imported",
            stamped - exp_ms
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bidi_stream_ends_at_expiry() {
    let store = Store::default();
    let placed = store.place("tracked", 1, "alice");
    let layer = OAuthLayer::new(
        strict_validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let (server, mut client) = server(layer, store).await;

    let (token, exp_ms) = expiring_token("orders:read", 2);
    let id = placed.id.clone();
    let asks: Pin<Box<dyn Stream<Item = GetOrderRequest> + Send>> = Box::pin(
        tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(Duration::from_millis(
            100,
        )))
        .map(move |_| GetOrderRequest { id: id.clone() }),
    );
    let mut answers = client
        .track_orders(authorized(asks, &token))
        .await
        .expect("opened")
        .into_inner();
    let mut received = 0;
    let status = loop {
        match answers.next().await {
            Some(Ok(order)) => {
                assert!(now_ms() < exp_ms + 50, "an answer arrived after exp");
                assert_eq!(order.id, placed.id);
                received += 1;
            }
            Some(Err(status)) => break status,
            None => panic!("ended without a status after {received} answers"),
        }
    };
    assert_expired(&status, now_ms(), exp_ms);
    assert!(received >= 5, "{received} answers before exp");
    server.stop().await;
}

/// The orders table with `WatchOrders` allowed to outlive its token.
struct OutlivingWatch;

/// The number of rpcs of the orders table.
const ORDERS: usize = <examples::OrderBook as ProtectedService>::POLICY
    .methods()
    .len();

const fn outliving(table: &'static ServicePolicy) -> [MethodPolicy; ORDERS] {
    let mut methods = [MethodPolicy::new("", "", "", oauth_grpc::Rule::Public); ORDERS];
    let mut i = 0;
    while i < ORDERS {
        let m = table.methods()[i];
        methods[i] = if matches!(m.kind(), RpcKind::ServerStreaming) {
            m.outliving_token("the test opts WatchOrders out")
        } else {
            m
        };
        i += 1;
    }
    methods
}

const OUTLIVING_METHODS: [MethodPolicy; ORDERS] =
    outliving(<examples::OrderBook as ProtectedService>::POLICY);
const OUTLIVING_TABLE: ServicePolicy = ServicePolicy::new("orders.v1.Orders", &OUTLIVING_METHODS);

impl ProtectedService for OutlivingWatch {
    const POLICY: &'static ServicePolicy = &OUTLIVING_TABLE;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_stream_keeps_streaming_past_exp() {
    let store = Store::default();
    let layer = OAuthLayer::new(
        strict_validator(),
        PolicySet::new().service::<OutlivingWatch>(),
    );
    let (server, mut client) = server(layer, store.clone()).await;
    let ticker = Ticker::start(&store);

    let (token, exp_ms) = expiring_token("orders:read", 1);
    let mut stream = watch(&mut client, &token).await;
    let mut after_exp = 0;
    while after_exp < 5 {
        let order = stream
            .next()
            .await
            .expect("still streaming")
            .expect("no status: the method outlives its token");
        if stamp(&order.item) > exp_ms {
            after_exp += 1;
        }
    }
    // The client cancels the watch (the server's graceful stop waits for open streams).
    drop(stream);
    ticker.stop().await;
    server.stop().await;
}

/// Reads a stream until it ends with a status; `Err` if it ends without one.
async fn until_status<S>(stream: &mut S) -> Result<Status, usize>
where
    S: Stream<Item = Result<examples::pb::Order, Status>> + Unpin,
{
    let mut received = 0;
    loop {
        match stream.next().await {
            Some(Ok(_)) => received += 1,
            Some(Err(status)) => return Ok(status),
            None => return Err(received),
        }
    }
}

fn follow() -> WatchOrdersRequest {
    WatchOrdersRequest {
        limit: 0,
        follow: true,
    }
}

/// A JWT whose signing key leaves the JWKS: its open stream ends when the key set without it
/// is installed (the next refresh), with 16; a stream of the key that stays runs on. Emptying
/// the JWKS then ends that one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_ends_its_streams() {
    use oauth_grpc::KeySource;
    use oauth_grpc_tests::idp::IdentityProvider;

    let idp = IdentityProvider::start(&[TestKey::Rsa1, TestKey::Rsa2]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(
            KeySource::discover(idp.issuer())
                .refresh_between(Duration::from_millis(200), Duration::from_millis(300))
                .unknown_kid_cooldown(Duration::from_millis(200)),
        )
        .start()
        .await
        .expect("keys load");
    let store = Store::default();
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>());
    let (server, mut client) = server(layer, store.clone()).await;
    let ticker = Ticker::start(&store);
    let token_of = |key: TestKey| {
        let mut c = claims("orders:read");
        c["iss"] = json!(idp.issuer());
        sign_json(&header(key), &c, key)
    };

    let mut withdrawn = watch(&mut client, &token_of(TestKey::Rsa1)).await;
    let mut kept = watch(&mut client, &token_of(TestKey::Rsa2)).await;
    for stream in [&mut withdrawn, &mut kept] {
        stream.next().await.expect("streaming").expect("an order");
    }

    idp.set_keys(&[TestKey::Rsa2]);
    // Bounded only so that a stream that is never cut fails instead of hanging.
    let status = tokio::time::timeout(Duration::from_secs(20), until_status(&mut withdrawn))
        .await
        .expect("the stream of the withdrawn key ends")
        .expect("with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        challenge(&status),
        r#"Bearer error="invalid_token", error_description="the token's signing key is not trusted""#
    );
    // The other stream is still alive.
    kept.next()
        .await
        .expect("streaming")
        .expect("an order of the kept key's stream");

    idp.set_keys(&[]);
    let status = tokio::time::timeout(Duration::from_secs(20), until_status(&mut kept))
        .await
        .expect("an emptied JWKS ends every stream")
        .expect("with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    ticker.stop().await;
    server.stop().await;
}

/// An introspected token turned inactive ends its stream at the next re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_introspected_token_ends_its_stream() {
    use oauth_grpc::{ClientSecret, Introspection};
    use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider};

    let idp = IdentityProvider::start(&[]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .introspection(
            Introspection::new(
                idp.introspection_url(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .cache_ttl(Duration::from_millis(200)),
        )
        .build()
        .expect("validator");
    let answer = json!({
        "active": true,
        "scope": "orders:read",
        "client_id": "orders-web",
        "sub": "bob",
        "aud": AUDIENCE,
        "iss": idp.issuer(),
        "exp": issuer::now() + 300,
    });
    idp.set_introspection("opaque-stream", answer);
    let store = Store::default();
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>())
        .stream_recheck(Duration::from_millis(300));
    let (server, mut client) = server(layer, store.clone()).await;
    let ticker = Ticker::start(&store);

    let mut stream = watch(&mut client, "opaque-stream").await;
    stream.next().await.expect("streaming").expect("an order");
    let asked = idp.introspection_requests();
    idp.set_introspection("opaque-stream", json!({"active": false}));
    let status = tokio::time::timeout(Duration::from_secs(20), until_status(&mut stream))
        .await
        .expect("the stream ends at a re-check")
        .expect("with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        challenge(&status).contains("invalid_token"),
        "{}",
        challenge(&status)
    );
    assert!(idp.introspection_requests() > asked, "re-introspected");
    ticker.stop().await;
    server.stop().await;
}

/// 10,000 short streams opened and closed with a bound token: the timers and re-checks go
/// with each stream, so no task is left behind (counted by the runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_leave_nothing_behind() {
    let store = Store::default();
    store.place("one", 1, "alice");
    let layer = OAuthLayer::new(
        strict_validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let (server, mut client) = server(layer.clone(), store).await;
    let (token, _) = expiring_token("orders:read", 600);
    let metrics = tokio::runtime::Handle::current().metrics();

    // An open stream holds its deadline and re-check; a unary call holds none.
    let open = watch(&mut client, &token).await;
    assert_eq!(layer.bound_streams(), 1);
    drop(open);
    let mut settled = 0;
    while layer.bound_streams() != 0 && settled < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        settled += 1;
    }
    assert_eq!(
        layer.bound_streams(),
        0,
        "a cancelled stream releases its re-check"
    );

    let mut run = async |count: usize| {
        for _ in 0..count {
            let mut stream = client
                .watch_orders(authorized(WatchOrdersRequest::default(), &token))
                .await
                .expect("opened")
                .into_inner();
            while let Some(order) = stream.next().await {
                order.expect("an order");
            }
        }
    };
    run(100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = metrics.num_alive_tasks();
    run(10_000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = metrics.num_alive_tasks();
    assert!(
        after <= before + 2,
        "{before} tasks alive before 10,000 streams, {after} after"
    );
    assert_eq!(
        layer.bound_streams(),
        0,
        "every ended stream released its re-check"
    );
    server.stop().await;
}

/// The client side: a `BearerLayer` with 2-second tokens follows a watch for five seconds,
/// reopening it each time the server ends it for expiry (`client::should_reopen`); every
/// reopened stream carries a fresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reopens_a_stream_ended_by_expiry() {
    use oauth_grpc::ClientSecret;
    use oauth_grpc::client::{BearerLayer, ClientAuthentication, ClientCredentials, should_reopen};
    use oauth_grpc_tests::idp::{IdentityProvider, TOKEN_CLIENT_ID, TOKEN_CLIENT_SECRET};
    use tower::ServiceBuilder;

    let idp = IdentityProvider::start(&[]).await;
    idp.set_token_lifetime(2);
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&issuer::jwks()).expect("test JWKS"))
        .leeway(Duration::ZERO)
        .build()
        .expect("validator");
    let store = Store::default();
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>());
    let server = orders_server(layer, store.clone()).await.expect("bind");
    let ticker = Ticker::start(&store);
    let bearer = BearerLayer::new(
        ClientCredentials::new(
            idp.token_url(),
            TOKEN_CLIENT_ID,
            ClientAuthentication::SecretBasic(ClientSecret::new(TOKEN_CLIENT_SECRET)),
        )
        .scope("orders:read")
        .audience(AUDIENCE),
    );
    let channel = server.channel().await.expect("connect");
    let mut client = OrdersClient::new(ServiceBuilder::new().layer(bearer).service(channel));

    let until = now_ms() + 5000;
    let mut newest = 0;
    let mut reopened = 0;
    let follow_for_five_seconds = async {
        while newest < until {
            let mut stream = client
                .watch_orders(follow())
                .await
                .expect("opened with a fresh token")
                .into_inner();
            loop {
                match stream.next().await {
                    Some(Ok(order)) => newest = newest.max(stamp(&order.item)),
                    Some(Err(status)) if should_reopen(&status) => {
                        reopened += 1;
                        break;
                    }
                    Some(Err(status)) => panic!("ended otherwise: {status:?}"),
                    None => panic!("a follow watch ended without a status"),
                }
                if newest >= until {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), follow_for_five_seconds)
        .await
        .expect("followed for five seconds");
    assert!(
        reopened >= 2,
        "reopened {reopened} times over 5 s of 2 s tokens"
    );
    assert!(
        idp.token_requests() >= 3,
        "{} token requests",
        idp.token_requests()
    );
    ticker.stop().await;
    server.stop().await;
}

/// A provider outage cuts nothing while the last good keys are within their maximum
/// staleness; past it, the next re-check ends the stream with 14, as a new call would get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_ends_streams_only_past_the_maximum_staleness() {
    use oauth_grpc::KeySource;
    use oauth_grpc_tests::idp::IdentityProvider;

    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(
            KeySource::discover(idp.issuer())
                .refresh_between(Duration::from_millis(200), Duration::from_millis(300))
                .retry_after(Duration::from_millis(100))
                .max_staleness(Duration::from_millis(1500)),
        )
        .start()
        .await
        .expect("keys load");
    let store = Store::default();
    let layer = OAuthLayer::new(validator, PolicySet::new().service::<examples::OrderBook>())
        .stream_recheck(Duration::from_millis(200));
    let (server, mut client) = server(layer, store.clone()).await;
    let ticker = Ticker::start(&store);
    let mut c = claims("orders:read");
    c["iss"] = json!(idp.issuer());
    let token = sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1);
    let mut stream = watch(&mut client, &token).await;
    stream.next().await.expect("streaming").expect("an order");

    idp.down().await;
    let down_at = now_ms();
    let status = tokio::time::timeout(Duration::from_secs(20), until_status(&mut stream))
        .await
        .expect("the stream ends once the keys are too stale")
        .expect("with a status");
    let after = now_ms() - down_at;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // The keys were last fetched at most one refresh interval before the outage.
    assert!(
        after >= 1500 - 300,
        "cut {after} ms into the outage, within the staleness"
    );
    ticker.stop().await;
    server.stop().await;
}
