//! Audit log and metrics: what recording a decision costs on a cached call through
//! `OAuthLayer`, in process — the default `TracingSink` with no subscriber, a sink that does
//! nothing, the JSON Lines log (`oauth_grpc::audit::JsonLines`) and an OpenTelemetry SDK
//! meter provider installed globally.
//!
//! Variants, each a cached call on `/orders.v1.Orders/GetOrder` with a verified, cached
//! RS256 token (the one of `benches/shared_state.rs`'s cached call, same claims and length):
//! - `a`: the layer as built by `OAuthLayer::new`: the default `TracingSink` (no `tracing`
//!   subscriber installed) and no meter provider — what every user gets;
//! - `b`: a sink that does nothing, `|_: &AuditEvent<'_>| {}`: the layer's own cost;
//! - `c`: `JsonLines::writer(std::io::sink()).capacity(1 << 20).start()`: the record made
//!   and serialised on the request path, queued, and written by the log's writer thread;
//! - `d`: `a` with an OpenTelemetry SDK meter provider (`SdkMeterProvider` with a
//!   `ManualReader`) installed globally before the validator and the layer are built;
//! - `e`: `c` and `d` together.
//!
//! Two modes:
//! - `AUDIT_INSTRUCTIONS=<variant a-e>:<n>` (for `benches/instructions.sh audit`): set up
//!   one variant, make one call that verifies and caches the token, then `n` cached calls,
//!   and exit. For `c` and `e` the log is flushed (`JsonLines::flush`) before the exit, so the
//!   writer thread's work on the `n` lines is inside the count (callgrind counts every
//!   thread). For `d` and `e` the meter provider is read once at the end and the decisions
//!   it counted are checked; the same for every `n`, so it cancels out.
//! - Otherwise: criterion, wall clock per call, short (1 s warm-up, 3 s of samples per
//!   variant). The instruments are bound to the meter provider installed when the crate first
//!   records, for the whole process, so `a`–`c` run in this process and `d`–`e` in a child
//!   process of the same binary started with `AUDIT_METER=sdk`. It prints first the line
//!   `c` writes for one call, and its length.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::io::Write;
use std::pin::pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::Criterion;
use examples::OrderBook;
use http::HeaderValue;
use oauth_grpc::audit::{AuditEvent, JsonLines};
use oauth_grpc::{OAuth, OAuthLayer, PolicySet, TokenBound, Validator};
use oauth_grpc_benches::{AUDIENCE, ISSUER, KEYS};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use tower::ServiceExt as _;

const GET_ORDER: &str = "/orders.v1.Orders/GetOrder";
/// The scope of `benches/shared_state.rs`'s tokens, so that the token is as long as its.
const SCOPE: &str = "orders:read orders:refund";
const VARIANTS: [(char, &str); 5] = [
    ('a', "(a) default TracingSink, no meter provider"),
    ('b', "(b) no-op sink closure"),
    ('c', "(c) JsonLines to io::sink"),
    ('d', "(d) (a) + OpenTelemetry SDK meter provider"),
    ('e', "(e) (c) + OpenTelemetry SDK meter provider"),
];

/// The service behind the layer: answers every call that gets through.
type Answer =
    fn(http::Request<TokenBound<()>>) -> std::future::Ready<Result<http::Response<()>, Infallible>>;
type Guarded = OAuth<tower::util::ServiceFn<Answer>>;

fn answer(
    _: http::Request<TokenBound<()>>,
) -> std::future::Ready<Result<http::Response<()>, Infallible>> {
    std::future::ready(Ok(http::Response::new(())))
}

/// A `ManualReader` the bench can still read after handing it to the provider.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Installs an SDK meter provider globally; its reader, to check what it counted.
fn install_meter_provider() -> SharedReader {
    let reader = SharedReader(Arc::new(ManualReader::builder().build()));
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .build();
    opentelemetry::global::set_meter_provider(provider);
    reader
}

/// The sum of the counter `oauth_grpc.decisions` over its series.
fn decisions_counted(reader: &SharedReader) -> u64 {
    let mut metrics = ResourceMetrics::default();
    reader.collect(&mut metrics).expect("collect");
    metrics
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .filter(|metric| metric.name() == "oauth_grpc.decisions")
        .map(|metric| match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                sum.data_points().map(|point| point.value()).sum::<u64>()
            }
            other => panic!("oauth_grpc.decisions is a u64 sum, not {other:?}"),
        })
        .sum()
}

/// One variant, set up: the guarded service, its token, the log and the meter's reader.
struct Subject {
    service: Guarded,
    authorization: HeaderValue,
    log: Option<JsonLines>,
    reader: Option<SharedReader>,
}

impl Subject {
    /// Sets up `variant`: the meter provider first (the crate binds its instruments to the
    /// provider of the moment it first records), then the validator and the layer; the token
    /// verified and cached by one call.
    fn new(variant: char) -> Self {
        Self::logging_to(variant, std::io::sink())
    }

    /// The same, the JSON Lines log (variants `c` and `e`) written to `out`.
    fn logging_to(variant: char, out: impl Write + Send + 'static) -> Self {
        let (json, sdk) = match variant {
            'a' => (false, false),
            'b' => (false, false),
            'c' => (true, false),
            'd' => (false, true),
            'e' => (true, true),
            _ => panic!("AUDIT_INSTRUCTIONS=<variant a-e>:<n>"),
        };
        let reader = sdk.then(install_meter_provider);
        let validator = Validator::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(KEYS[0].key_set())
            .cache_capacity(100_000)
            .build()
            .unwrap();
        let mut layer = OAuthLayer::new(validator, PolicySet::new().service::<OrderBook>());
        let log = json.then(|| {
            JsonLines::writer(out)
                .capacity(1 << 20)
                .start()
                .expect("the audit log")
        });
        if let Some(log) = &log {
            layer = layer.audit_sink(log.clone());
        } else if variant == 'b' {
            layer = layer.audit_sink(|_: &AuditEvent<'_>| {});
        }
        let subject = Self {
            service: tower::Layer::layer(&layer, tower::service_fn(answer as Answer)),
            authorization: format!("Bearer {}", KEYS[0].token(SCOPE)).parse().unwrap(),
            log,
            reader,
        };
        subject.call();
        subject
    }

    /// One call, polled once: a cache hit with a sink that takes the record at once does not
    /// wait. (A full log queue would make it wait; the queue holds every line of a count.)
    fn call(&self) {
        let request = http::Request::post(format!("http://127.0.0.1:50051{GET_ORDER}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .body(())
            .unwrap();
        let mut future = pin!(self.service.clone().oneshot(black_box(request)));
        let response = match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(response) => response.expect("infallible"),
            Poll::Pending => tokio::runtime::Handle::current()
                .block_on(future)
                .expect("infallible"),
        };
        assert!(
            response.headers().get("grpc-status").is_none(),
            "refused: {:?}",
            response.headers()
        );
        black_box(response);
    }

    /// Waits until the log wrote every line queued so far.
    fn flush(&self, runtime: &tokio::runtime::Runtime) {
        if let Some(log) = &self.log {
            runtime
                .block_on(log.flush())
                .expect("the audit log flushed");
        }
    }
}

/// A writer the bench can read after handing it to the log.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line variant `c` writes for one cached call.
fn sample_line(runtime: &tokio::runtime::Runtime) -> String {
    let buffer = Buffer::default();
    let subject = Subject::logging_to('c', buffer.clone());
    subject.flush(runtime);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines().next().expect("one line").to_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn instructions_mode(spec: &str) {
    let (variant, n) = spec
        .split_once(':')
        .expect("AUDIT_INSTRUCTIONS=<variant a-e>:<n>");
    let variant = variant.parse::<char>().expect("a variant a-e");
    let n: u64 = n.parse().unwrap();
    let runtime = runtime();
    let _context = runtime.enter();
    let subject = Subject::new(variant);
    for _ in 0..n {
        subject.call();
    }
    subject.flush(&runtime);
    if let Some(log) = &subject.log {
        assert_eq!(log.written(), n + 1, "every decision written");
        assert_eq!(log.dropped() + log.refused(), 0);
    }
    if let Some(reader) = &subject.reader {
        assert_eq!(decisions_counted(reader), n + 1, "every decision counted");
    }
}

fn wall_clock(sdk: bool) {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    if !sdk {
        let line = sample_line(&runtime);
        println!(
            "The record of one call ({} bytes and a newline):\n{line}\n",
            line.len()
        );
    }
    let mut group = criterion.benchmark_group("Audit");
    for (variant, label) in VARIANTS {
        // The meter provider is the process's: the variants with it run in the child.
        if matches!(variant, 'd' | 'e') != sdk {
            continue;
        }
        let subject = Subject::new(variant);
        group.bench_function(label, |b| b.iter(|| subject.call()));
        subject.flush(&runtime);
        if let Some(log) = &subject.log {
            assert_eq!(log.dropped() + log.refused(), 0);
        }
    }
    group.finish();
    criterion.final_summary();
}

fn main() {
    if let Ok(spec) = std::env::var("AUDIT_INSTRUCTIONS") {
        instructions_mode(&spec);
        return;
    }
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    if std::env::var_os("AUDIT_METER").is_some() {
        wall_clock(true);
        return;
    }
    wall_clock(false);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(std::env::args_os().skip(1))
        .env("AUDIT_METER", "sdk")
        .status()
        .expect("the child process of the variants with a meter provider");
    assert!(
        status.success(),
        "the variants with a meter provider: {status}"
    );
}
