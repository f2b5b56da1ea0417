//! Shared helpers for the oauth-grpc test suite: small services for the compile-time tests
//! and a loopback server harness for the integration tests.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;

/// Code generated from `proto/ui.proto`: `ui.v1.Echo` and `ui.v1.Ping`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("ui.v1");

    /// The encoded `FileDescriptorSet` of `proto/ui.proto`.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
}

/// A server running on an ephemeral port of 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    /// Serves `router` on 127.0.0.1 with a port the OS picks.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start(router: Router) -> std::io::Result<Self> {
        Self::serve(|incoming, shutdown| router.serve_with_incoming_shutdown(incoming, shutdown))
            .await
    }

    /// Binds 127.0.0.1 on a port the OS picks and runs `serve` on it; for routers with
    /// layers, whose types differ: `TestServer::serve(|i, s| router.serve_with_incoming_shutdown(i, s))`.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn serve<F, Fut>(serve: F) -> std::io::Result<Self>
    where
        F: FnOnce(TcpListenerStream, Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(serve(TcpListenerStream::new(listener), shutdown));
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `Channel::from_shared`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to the server.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub async fn channel(&self) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        tonic::transport::Endpoint::from_shared(self.url())?
            .connect()
            .await
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) -> impl Future<Output = ()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        async move {
            let _ = (&mut self.task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub mod dpop;
pub mod idp;
pub mod issuer;
pub mod redis;
pub mod tls;

/// The validator of the test servers: trusts the test issuer's JWKS, audience `orders-api`.
///
/// # Panics
///
/// If the test JWKS does not load (a test set-up error).
pub fn validator() -> oauth_grpc::Validator {
    oauth_grpc::Validator::builder()
        .issuer(issuer::ISSUER)
        .audience(issuer::AUDIENCE)
        .keys(oauth_grpc::KeySet::from_jwks(&issuer::jwks()).expect("test JWKS loads"))
        .build()
        .expect("test validator builds")
}

/// The orders service behind `layer` on 127.0.0.1.
///
/// # Errors
///
/// When no loopback port can be bound.
pub async fn orders_server(
    layer: oauth_grpc::OAuthLayer,
    store: examples::Store,
) -> std::io::Result<TestServer> {
    orders_server_over(layer, store, None).await
}

/// [`orders_server`], over TLS with `tls` if given.
///
/// # Errors
///
/// When no loopback port can be bound.
///
/// # Panics
///
/// If tonic refuses the TLS configuration (a test set-up error).
pub async fn orders_server_over(
    layer: oauth_grpc::OAuthLayer,
    store: examples::Store,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> std::io::Result<TestServer> {
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls)
            .expect("the TLS configuration is accepted");
    }
    let router = server
        .layer(layer)
        .add_service(examples::pb::orders_server::OrdersServer::new(
            examples::OrderBook::new(store.clone()),
        ))
        .add_service(examples::pb::orders_admin_server::OrdersAdminServer::new(
            examples::AdminDesk::new(store),
        ));
    TestServer::serve(|incoming, shutdown| router.serve_with_incoming_shutdown(incoming, shutdown))
        .await
}

/// The standard layer of the tests: the orders tables and [`validator`].
pub fn orders_layer() -> oauth_grpc::OAuthLayer {
    oauth_grpc::OAuthLayer::new(
        validator(),
        oauth_grpc::PolicySet::new()
            .service::<examples::OrderBook>()
            .service::<examples::AdminDesk>(),
    )
}

/// The `www-authenticate` value of a status, or `<none>`.
pub fn challenge(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned()
}
