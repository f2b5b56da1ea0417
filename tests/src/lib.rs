//! Shared helpers for the oauth-grpc test suite: small services for the compile-time tests
//! and a loopback server harness for the integration tests.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;

/// Code generated from `proto/ui.proto`: `ui.v1.Echo` and `ui.v1.Ping`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("ui.v1");
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown),
        );
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
