//! The metrics endpoint of `orders-server --metrics-listen`: oauth-grpc's OpenTelemetry
//! metrics in Prometheus text format.
//!
//! The exporter is `opentelemetry-prometheus` (released with every `opentelemetry` version,
//! on the maintained `prometheus` crate): a pull endpoint a Prometheus server scrapes.
//! OpenTelemetry's own advice for new deployments is OTLP push (`opentelemetry-otlp`), which
//! Prometheus ingests too; oauth-grpc records on the global meter provider, so either
//! exporter works unchanged.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = examples::metrics::serve("127.0.0.1:9464".parse()?).await?;
//! println!("scrape http://{}/metrics", endpoint.addr());
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;

use opentelemetry_sdk::metrics::SdkMeterProvider;
use tokio::net::TcpListener;

/// A running metrics endpoint and the meter provider it exports. Dropping it leaves the
/// endpoint serving; [`shutdown`](Self::shutdown) flushes the provider.
#[derive(Debug)]
pub struct MetricsEndpoint {
    provider: SdkMeterProvider,
    addr: SocketAddr,
}

impl MetricsEndpoint {
    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The meter provider, installed as the global one.
    pub fn provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// Shuts the provider down.
    ///
    /// # Errors
    ///
    /// The SDK's error, as text.
    pub fn shutdown(self) -> Result<(), String> {
        self.provider.shutdown().map_err(|e| e.to_string())
    }
}

/// Installs an OpenTelemetry meter provider exported in Prometheus text format as the global
/// provider, and serves it at `http://ADDR/metrics`. Call it before the validator and the
/// layer are built: instruments bind to the provider at first use.
///
/// # Errors
///
/// The exporter cannot be built, or `addr` cannot be bound.
pub async fn serve(addr: SocketAddr) -> Result<MetricsEndpoint, String> {
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| format!("cannot build the Prometheus exporter: {e}"))?;
    let provider = SdkMeterProvider::builder().with_reader(exporter).build();
    opentelemetry::global::set_meter_provider(provider.clone());
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut body = Vec::new();
                let encoder = prometheus::TextEncoder::new();
                match prometheus::Encoder::encode(&encoder, &registry.gather(), &mut body) {
                    Ok(()) => (
                        axum::http::StatusCode::OK,
                        [(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
                        body,
                    ),
                    Err(e) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        format!("cannot encode the metrics: {e}").into_bytes(),
                    ),
                }
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(MetricsEndpoint {
        provider,
        addr: bound,
    })
}
