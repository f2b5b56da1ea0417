//! What the end-to-end benchmarks share (`benches/e2e.rs` and the peer comparison in
//! `benches/peer`): the orders servers on 127.0.0.1 — the no-auth baseline and the
//! `OAuthLayer`, with or without DPoP — the credentials calls carry, and the latency and
//! throughput measurements over them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples::pb::WhoAmIRequest;
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::{OrderBook, Store};
use oauth_grpc::{Dpop, OAuthLayer, PolicySet, Principal};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};
use tonic::{Request, Status};

use crate::KEYS;
use crate::dpop::ProofSigner;

/// The gRPC path of `WhoAmI`, the unary call measured.
pub const WHO_AM_I: &str = "/orders.v1.Orders/WhoAmI";
/// The gRPC path of `CreateOrder`.
pub const CREATE_ORDER: &str = "/orders.v1.Orders/CreateOrder";
/// The gRPC path of `WatchOrders`, the server stream measured.
pub const WATCH_ORDERS: &str = "/orders.v1.Orders/WatchOrders";

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

/// A listener on an ephemeral port of 127.0.0.1, and its URL. Accepted connections have
/// Nagle's algorithm off, as tonic's own listener sets them (`serve_with_incoming` takes the
/// sockets as they come): with it on, a small write waiting for the peer's delayed ACK stalls
/// a call for 40 ms now and then, which showed up as p99 outliers of 40 ms in any variant.
///
/// # Panics
///
/// When no loopback port can be bound.
pub async fn listen() -> (
    impl tokio_stream::Stream<Item = std::io::Result<TcpStream>> + Send + Unpin + 'static,
    String,
) {
    use tokio_stream::StreamExt as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    });
    (incoming, format!("http://{addr}"))
}

/// The orders service without token work (a fixed principal), serving `store`; its URL.
pub async fn serve_baseline(store: Store) -> String {
    serve_baseline_over(store, None).await
}

/// [`serve_baseline`], over mutual TLS with `tls` if given (its URL is then `https://`).
///
/// # Panics
///
/// When tonic refuses the TLS configuration.
pub async fn serve_baseline_over(store: Store, tls: Option<&BenchTls>) -> String {
    let (incoming, url) = listen().await;
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls.server()).expect("server TLS");
    }
    let router = server
        .layer(tonic::service::InterceptorLayer::new(fixed_principal))
        .add_service(OrdersServer::new(OrderBook::new(store)));
    tokio::spawn(router.serve_with_incoming(incoming));
    with_scheme(url, tls)
}

/// The orders service behind `OAuthLayer` with `KEYS[0]`'s validator, its verified-token
/// cache on or off, auditing to nowhere; its URL.
pub async fn serve_layer(store: Store, cached: bool) -> String {
    serve_layer_over(store, cached, None).await
}

/// [`serve_layer`], over mutual TLS with `tls` if given (its URL is then `https://`).
///
/// # Panics
///
/// When tonic refuses the TLS configuration.
pub async fn serve_layer_over(store: Store, cached: bool, tls: Option<&BenchTls>) -> String {
    serve_layer_with(store, cached, tls, None).await
}

/// The replay check's capacity on the DPoP servers: above every proof a timing run sends
/// within the window of a proof's acceptance (two minutes), so that none is refused as
/// `UNAVAILABLE`.
pub const BENCH_REPLAY_CAPACITY: usize = 10_000_000;

/// [`serve_layer`] with DPoP on (`Dpop::new()`, its replay check sized for a benchmark):
/// cached, plain HTTP/2.
pub async fn serve_layer_dpop(store: Store) -> String {
    let dpop = Dpop::new().replay_capacity(BENCH_REPLAY_CAPACITY);
    serve_layer_with(store, true, None, Some(dpop)).await
}

/// [`serve_layer_over`], with DPoP if given.
///
/// # Panics
///
/// When tonic refuses the TLS configuration.
pub async fn serve_layer_with(
    store: Store,
    cached: bool,
    tls: Option<&BenchTls>,
    dpop: Option<Dpop>,
) -> String {
    let (incoming, url) = listen().await;
    let validator = KEYS[0].validator(cached);
    let mut layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>())
        .audit_sink(|_: &oauth_grpc::audit::AuditEvent<'_>| {});
    if let Some(dpop) = dpop {
        layer = layer.dpop(dpop);
    }
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls.server()).expect("server TLS");
    }
    let router = server
        .layer(layer)
        .add_service(OrdersServer::new(OrderBook::new(store)));
    tokio::spawn(router.serve_with_incoming(incoming));
    with_scheme(url, tls)
}

fn with_scheme(url: String, tls: Option<&BenchTls>) -> String {
    match tls {
        Some(_) => url.replacen("http://", "https://", 1),
        None => url,
    }
}

/// A connected channel to `url`.
///
/// # Panics
///
/// When the server cannot be reached.
pub async fn channel(url: &str) -> Channel {
    channel_over(url, None).await
}

/// A connected channel to `url`, presenting the client certificate of `tls` if given.
///
/// # Panics
///
/// When the server cannot be reached or the handshake fails.
pub async fn channel_over(url: &str, tls: Option<&BenchTls>) -> Channel {
    let mut endpoint = Endpoint::from_shared(url.to_owned()).expect("endpoint");
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.client()).expect("client TLS");
    }
    endpoint.connect().await.expect("connect")
}

/// Certificates for the mutual-TLS rows, made with `rcgen`: a CA, a server certificate for
/// 127.0.0.1 and one client certificate (ECDSA P-256, as rcgen makes by default).
#[derive(Debug, Clone)]
pub struct BenchTls {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
    /// The client certificate's RFC 8705 thumbprint, for bound tokens.
    pub client_thumbprint: String,
}

impl BenchTls {
    /// New certificates.
    ///
    /// # Panics
    ///
    /// When rcgen cannot make them.
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let issue = |sans: Vec<SanType>| {
            let mut params = CertificateParams::default();
            params.subject_alt_names = sans;
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &ca).expect("certificate");
            (cert, key)
        };
        let (server, server_key) = issue(vec![SanType::IpAddress(
            std::net::Ipv4Addr::LOCALHOST.into(),
        )]);
        let (client, client_key) = issue(vec![SanType::URI(
            "spiffe://bench.test/client".try_into().expect("URI"),
        )]);
        Self {
            ca_pem: ca.pem(),
            server: (server.pem(), server_key.serialize_pem()),
            client_thumbprint: oauth_grpc::ClientCertificate::thumbprint_of(client.der()),
            client: (client.pem(), client_key.serialize_pem()),
        }
    }

    fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.server.0, &self.server.1))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.client.0, &self.client.1))
    }
}

impl Default for BenchTls {
    fn default() -> Self {
        Self::new()
    }
}

/// `message` with `authorization: header`.
pub fn request<T>(message: T, header: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", header.clone());
    request
}

/// What the calls of a measurement carry.
pub trait Credentials: Clone + Send + Sync + 'static {
    /// `message` as a call to `path` (e.g. [`WHO_AM_I`]) with these credentials.
    fn request<T>(&self, message: T, path: &str) -> Request<T>;
}

/// The same `authorization` value on every call.
impl Credentials for MetadataValue<Ascii> {
    fn request<T>(&self, message: T, _path: &str) -> Request<T> {
        request(message, self)
    }
}

/// Calls with a DPoP-bound token: `authorization: DPoP <token>` and a fresh `dpop` proof on
/// every call — signed as the call is made, as the crate's client does (what a client pays),
/// or taken from proofs signed ahead ([`presign`](Self::presign): the server's work only).
#[derive(Clone)]
pub struct DpopCalls {
    authorization: MetadataValue<Ascii>,
    /// The scheme and authority the client dials, e.g. `http://127.0.0.1:50051`.
    origin: Arc<str>,
    token: Arc<str>,
    signer: Arc<ProofSigner>,
    presigned: Option<Arc<Presigned>>,
}

struct Presigned {
    path: String,
    proofs: Mutex<Vec<MetadataValue<Ascii>>>,
}

impl DpopCalls {
    /// Calls to the server at `origin` (its URL) with `token`, bound to `signer`'s key.
    ///
    /// # Panics
    ///
    /// If the token is not ASCII.
    pub fn new(origin: &str, token: &str, signer: Arc<ProofSigner>) -> Self {
        Self {
            authorization: format!("DPoP {token}").parse().expect("ASCII token"),
            origin: Arc::from(origin),
            token: Arc::from(token),
            signer,
            presigned: None,
        }
    }

    /// Signs `proofs` proofs for calls to `path` now (by the key pair parsed once); the calls
    /// made afterwards take one each instead of signing, and fail when they run out.
    #[must_use]
    pub fn presign(mut self, path: &str, proofs: usize) -> Self {
        let htu = format!("{}{path}", self.origin);
        let proofs = (0..proofs)
            .map(|_| {
                self.signer
                    .proof_parsed(&htu, &self.token)
                    .parse()
                    .expect("ASCII proof")
            })
            .collect();
        self.presigned = Some(Arc::new(Presigned {
            path: path.to_owned(),
            proofs: Mutex::new(proofs),
        }));
        self
    }
}

impl Credentials for DpopCalls {
    fn request<T>(&self, message: T, path: &str) -> Request<T> {
        let proof = match &self.presigned {
            Some(presigned) => {
                assert_eq!(presigned.path, path, "proofs were signed for another path");
                presigned
                    .proofs
                    .lock()
                    .expect("not poisoned")
                    .pop()
                    .expect("enough proofs signed ahead")
            }
            None => {
                let htu = format!("{}{path}", self.origin);
                let proof = self.signer.proof(&htu, &self.token);
                MetadataValue::try_from(proof).expect("ASCII proof")
            }
        };
        let mut request = request(message, &self.authorization);
        request.metadata_mut().insert("dpop", proof);
        request
    }
}

/// p50 and p99 of `calls` sequential `WhoAmI` calls, in microseconds.
///
/// # Panics
///
/// When a call fails.
pub async fn latency<C: Credentials>(
    client: &mut OrdersClient<Channel>,
    credentials: &C,
    calls: usize,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        client
            .who_am_i(credentials.request(WhoAmIRequest {}, WHO_AM_I))
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
pub async fn throughput<C: Credentials>(
    channels: &[Channel],
    credentials: &C,
    concurrency: usize,
    window: Duration,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let mut client = OrdersClient::new(channels[i % channels.len()].clone());
        let (done, stop, measuring, credentials) = (
            done.clone(),
            stop.clone(),
            measuring.clone(),
            credentials.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                client
                    .who_am_i(credentials.request(WhoAmIRequest {}, WHO_AM_I))
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
