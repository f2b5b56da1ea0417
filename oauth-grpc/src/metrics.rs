//! OpenTelemetry metrics (feature `metrics`, on by default): the access decisions and their
//! latency, the token and introspection caches, key fetches, introspection requests, streams
//! cut for their token, and shared-store and audit failures.
//!
//! The crate records on the **global** meter provider through the `opentelemetry` API crate
//! only, under the instrumentation scope `oauth-grpc` (with the crate's version), so the
//! application chooses the SDK and the exporter (OTLP, Prometheus, …). Without a provider
//! installed, recording goes to OpenTelemetry's no-op provider: it costs a few nanoseconds and
//! allocates nothing. Without the feature, every recording call compiles to nothing.
//!
//! # Install the provider first
//!
//! The instruments are created once, the first time anything is recorded, from the meter
//! provider installed **at that moment**, and stay bound to it. Call
//! `opentelemetry::global::set_meter_provider` before the first validator is built (its key
//! fetches record) and before the first call is served; a provider installed later is not
//! seen by this crate until the process restarts.
//!
//! ```
//! # #[cfg(all(feature = "metrics", feature = "jwks"))]
//! # mod start {
//! use opentelemetry::metrics::MeterProvider;
//! use oauth_grpc::{ConfigError, KeySource, Validator};
//!
//! /// `provider`: an `opentelemetry_sdk::metrics::SdkMeterProvider` with the exporter of your
//! /// choice (`opentelemetry_sdk` in your own Cargo.toml).
//! async fn start(provider: impl MeterProvider + Send + Sync + 'static) -> Result<Validator, ConfigError> {
//!     opentelemetry::global::set_meter_provider(provider);
//!     // Only now: build the validator and the layer, start the server.
//!     Validator::builder()
//!         .issuer("https://idp.example.com/")
//!         .audience("orders-api")
//!         .keys(KeySource::discover("https://idp.example.com/"))
//!         .start()
//!         .await
//! }
//! # }
//! ```
//!
//! # Instruments
//!
//! | Name | Kind | Unit | Attributes |
//! |---|---|---|---|
//! | `oauth_grpc.decisions` | counter | `{decision}` | `rpc.method`, `oauth_grpc.decision`, `oauth_grpc.reason`, `oauth_grpc.issuer` |
//! | `oauth_grpc.validation.duration` | histogram | `s` | `oauth_grpc.decision` |
//! | `oauth_grpc.token_cache.lookups` | counter | `{lookup}` | `oauth_grpc.cache.result` |
//! | `oauth_grpc.jwks.fetches` | counter | `{fetch}` | `oauth_grpc.outcome` |
//! | `oauth_grpc.jwks.key_set.changes` | counter | `{change}` | — |
//! | `oauth_grpc.introspection.requests` | counter | `{request}` | `oauth_grpc.outcome` |
//! | `oauth_grpc.introspection.cache.lookups` | counter | `{lookup}` | `oauth_grpc.cache.tier`, `oauth_grpc.cache.result` |
//! | `oauth_grpc.streams.cut` | counter | `{stream}` | `oauth_grpc.reason` |
//! | `oauth_grpc.store.errors` | counter | `{error}` | `oauth_grpc.store.use` |
//! | `oauth_grpc.audit.records.dropped` | counter | `{record}` | — |
//! | `oauth_grpc.audit.write.errors` | counter | `{error}` | — |
//!
//! The same table is [`INSTRUMENTS`], for tests and tooling; [`NAMES`] holds the names.
//!
//! Attribute values are fixed strings of this crate, never text a caller sends, so the number
//! of series stays bounded:
//!
//! - `rpc.method`: the gRPC path of a method in the layer's policy (`/pkg.Service/Method`),
//!   or `_other` for every path without a rule.
//! - `oauth_grpc.decision`: `allow` or `deny`.
//! - `oauth_grpc.issuer`: the trusted issuer (`iss`) that accepted the token, one of the
//!   validator's configured names, or empty when no token was verified (a public method, a
//!   missing or refused token).
//! - `oauth_grpc.reason` on decisions: the reason code of the decision — `authorized`,
//!   `public`, or a refusal's code ([`AuthError::code`](crate::AuthError::code):
//!   `missing_token`, `expired`, `insufficient_scope`, …).
//! - `oauth_grpc.reason` on streams cut: `expired` (the token's `exp` plus the leeway
//!   passed), `revoked` (the revocation list covers the caller), `recheck_failed` (a
//!   re-check refused the token: a withdrawn key, an inactive introspected token) or
//!   `recheck_unavailable` (a re-check could not reach the identity provider, or the keys are
//!   past their maximum staleness).
//! - `oauth_grpc.cache.result`: `hit` or `miss`. In the verified-token cache an entry found
//!   expired is a hit (the cache decided the call); one made under an older key set is a miss.
//! - `oauth_grpc.cache.tier`: `local` (the replica's own introspection cache) or `shared`
//!   (the store of `Introspection::shared_cache`).
//! - `oauth_grpc.outcome`: `success` or `failure`.
//! - `oauth_grpc.store.use`: `replay` (one-time tokens and DPoP proof `jti`s),
//!   `introspection_cache` or `revocations`.
//!
//! ```
//! use oauth_grpc::metrics::{INSTRUMENTS, InstrumentKind, NAMES};
//!
//! assert!(NAMES.contains(&"oauth_grpc.decisions"));
//! let duration = INSTRUMENTS
//!     .iter()
//!     .find(|i| i.name == "oauth_grpc.validation.duration")
//!     .ok_or("no such instrument")?;
//! assert_eq!(duration.kind, InstrumentKind::Histogram);
//! assert_eq!(duration.unit, "s");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

/// The kind of an [`Instrument`].
///
/// ```
/// use oauth_grpc::metrics::{INSTRUMENTS, InstrumentKind};
///
/// assert!(INSTRUMENTS.iter().any(|i| i.kind == InstrumentKind::Counter));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstrumentKind {
    /// A monotonic `u64` counter.
    Counter,
    /// An `f64` histogram with the explicit buckets of [`DURATION_BUCKETS`].
    Histogram,
}

/// One instrument this crate records: its name, kind, unit, description and attribute keys.
///
/// ```
/// use oauth_grpc::metrics::INSTRUMENTS;
///
/// let decisions = &INSTRUMENTS[0];
/// assert_eq!(decisions.name, "oauth_grpc.decisions");
/// assert_eq!(
///     decisions.attributes,
///     ["rpc.method", "oauth_grpc.decision", "oauth_grpc.reason", "oauth_grpc.issuer"]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Instrument {
    /// The instrument's name (an exporter may rewrite it: Prometheus gives
    /// `oauth_grpc_decisions_total`).
    pub name: &'static str,
    /// Counter or histogram.
    pub kind: InstrumentKind,
    /// The UCUM unit; `{…}` is an annotation (a count of things).
    pub unit: &'static str,
    /// What is measured.
    pub description: &'static str,
    /// The attribute keys of its measurements.
    pub attributes: &'static [&'static str],
}

// Attribute keys.
const RPC_METHOD: &str = "rpc.method";
const DECISION: &str = "oauth_grpc.decision";
const REASON: &str = "oauth_grpc.reason";
const ISSUER: &str = "oauth_grpc.issuer";
const CACHE_RESULT: &str = "oauth_grpc.cache.result";
const CACHE_TIER: &str = "oauth_grpc.cache.tier";
const OUTCOME: &str = "oauth_grpc.outcome";
const STORE_USE: &str = "oauth_grpc.store.use";

const DECISIONS: Instrument = Instrument {
    name: "oauth_grpc.decisions",
    kind: InstrumentKind::Counter,
    unit: "{decision}",
    description: "Access decisions of the OAuth layer, by method, decision, reason and issuer",
    attributes: &[RPC_METHOD, DECISION, REASON, ISSUER],
};

/// The `oauth_grpc.issuer` of a decision no verified token took part in.
#[cfg(feature = "metrics")]
fn none() -> std::sync::Arc<str> {
    static NONE: std::sync::OnceLock<std::sync::Arc<str>> = std::sync::OnceLock::new();
    NONE.get_or_init(|| std::sync::Arc::from("")).clone()
}
const VALIDATION_DURATION: Instrument = Instrument {
    name: "oauth_grpc.validation.duration",
    kind: InstrumentKind::Histogram,
    unit: "s",
    description: "Time from a call's arrival at the OAuth layer to its access decision",
    attributes: &[DECISION],
};
const TOKEN_CACHE_LOOKUPS: Instrument = Instrument {
    name: "oauth_grpc.token_cache.lookups",
    kind: InstrumentKind::Counter,
    unit: "{lookup}",
    description: "Lookups in the verified-token cache of the validator",
    attributes: &[CACHE_RESULT],
};
const JWKS_FETCHES: Instrument = Instrument {
    name: "oauth_grpc.jwks.fetches",
    kind: InstrumentKind::Counter,
    unit: "{fetch}",
    description: "Fetches of the identity provider's keys (discovery when needed, then the JWKS)",
    attributes: &[OUTCOME],
};
const KEY_SET_CHANGES: Instrument = Instrument {
    name: "oauth_grpc.jwks.key_set.changes",
    kind: InstrumentKind::Counter,
    unit: "{change}",
    description: "Fetched key sets that differ from the one in use and replace it",
    attributes: &[],
};
const INTROSPECTION_REQUESTS: Instrument = Instrument {
    name: "oauth_grpc.introspection.requests",
    kind: InstrumentKind::Counter,
    unit: "{request}",
    description: "Requests to the token introspection endpoint",
    attributes: &[OUTCOME],
};
const INTROSPECTION_CACHE_LOOKUPS: Instrument = Instrument {
    name: "oauth_grpc.introspection.cache.lookups",
    kind: InstrumentKind::Counter,
    unit: "{lookup}",
    description: "Lookups in the introspection caches, the replica's own and the shared one",
    attributes: &[CACHE_TIER, CACHE_RESULT],
};
const STREAMS_CUT: Instrument = Instrument {
    name: "oauth_grpc.streams.cut",
    kind: InstrumentKind::Counter,
    unit: "{stream}",
    description: "Calls ended by the OAuth layer because of their token",
    attributes: &[REASON],
};
const STORE_ERRORS: Instrument = Instrument {
    name: "oauth_grpc.store.errors",
    kind: InstrumentKind::Counter,
    unit: "{error}",
    description: "Failed operations on the shared store",
    attributes: &[STORE_USE],
};
const AUDIT_DROPPED: Instrument = Instrument {
    name: "oauth_grpc.audit.records.dropped",
    kind: InstrumentKind::Counter,
    unit: "{record}",
    description: "Audit records dropped because the audit log could not keep up",
    attributes: &[],
};
const AUDIT_WRITE_ERRORS: Instrument = Instrument {
    name: "oauth_grpc.audit.write.errors",
    kind: InstrumentKind::Counter,
    unit: "{error}",
    description: "Failed writes of the audit log",
    attributes: &[],
};

/// Every instrument this crate records, in the order of the module's table.
///
/// ```
/// use oauth_grpc::metrics::INSTRUMENTS;
///
/// for instrument in INSTRUMENTS {
///     assert!(instrument.name.starts_with("oauth_grpc."));
///     assert!(!instrument.description.is_empty());
/// }
/// ```
pub const INSTRUMENTS: &[Instrument] = &[
    DECISIONS,
    VALIDATION_DURATION,
    TOKEN_CACHE_LOOKUPS,
    JWKS_FETCHES,
    KEY_SET_CHANGES,
    INTROSPECTION_REQUESTS,
    INTROSPECTION_CACHE_LOOKUPS,
    STREAMS_CUT,
    STORE_ERRORS,
    AUDIT_DROPPED,
    AUDIT_WRITE_ERRORS,
];

/// The names of [`INSTRUMENTS`], in the same order.
///
/// ```
/// use oauth_grpc::metrics::{INSTRUMENTS, NAMES};
///
/// assert_eq!(NAMES.len(), INSTRUMENTS.len());
/// assert_eq!(NAMES[1], "oauth_grpc.validation.duration");
/// ```
pub const NAMES: [&str; INSTRUMENTS.len()] = names();

const fn names() -> [&'static str; INSTRUMENTS.len()] {
    let mut names = [""; INSTRUMENTS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = INSTRUMENTS[i].name;
        i += 1;
    }
    names
}

/// The bucket boundaries of `oauth_grpc.validation.duration`, in seconds: 10 µs (a cache hit)
/// to 5 s (a slow identity provider), about three per decade.
///
/// ```
/// use oauth_grpc::metrics::DURATION_BUCKETS;
///
/// assert_eq!(DURATION_BUCKETS.first(), Some(&0.000_01));
/// assert_eq!(DURATION_BUCKETS.last(), Some(&5.0));
/// assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
/// ```
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The `rpc.method` of a call whose path has no rule (a caller cannot choose a new series).
pub(crate) const OTHER_METHOD: &str = "_other";

/// The `oauth_grpc.reason` values of [`stream_cut`].
pub(crate) mod cut {
    /// The token's `exp` plus the leeway passed.
    pub(crate) const EXPIRED: &str = "expired";
    /// The revocation list covers the caller.
    pub(crate) const REVOKED: &str = "revoked";
    /// A re-check refused the token.
    pub(crate) const RECHECK_FAILED: &str = "recheck_failed";
    /// A re-check could not reach the identity provider (or the keys are too stale).
    pub(crate) const RECHECK_UNAVAILABLE: &str = "recheck_unavailable";
}

/// The `oauth_grpc.store.use` values of [`store_error`].
pub(crate) mod store_use {
    /// One-time tokens and DPoP proof `jti`s: the layer's replay checks.
    pub(crate) const REPLAY: &str = "replay";
    /// The shared introspection cache.
    pub(crate) const INTROSPECTION_CACHE: &str = "introspection_cache";
    /// The revocation list.
    pub(crate) const REVOCATIONS: &str = "revocations";
    /// A use this module does not name.
    pub(crate) const OTHER: &str = "other";
}

/// The `oauth_grpc.cache.tier` of an introspection cache lookup.
#[cfg_attr(not(feature = "introspection"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// The replica's own cache.
    Local,
    /// The cache shared with the other replicas.
    Shared,
}

#[cfg(feature = "metrics")]
mod otel {
    use std::sync::OnceLock;

    use opentelemetry::metrics::{Counter, Histogram, Meter};
    use opentelemetry::{InstrumentationScope, KeyValue, global};

    use super::Instrument;

    pub(super) struct Instruments {
        pub(super) decisions: Counter<u64>,
        pub(super) validation_duration: Histogram<f64>,
        pub(super) token_cache_lookups: Counter<u64>,
        pub(super) jwks_fetches: Counter<u64>,
        pub(super) key_set_changes: Counter<u64>,
        pub(super) introspection_requests: Counter<u64>,
        pub(super) introspection_cache_lookups: Counter<u64>,
        pub(super) streams_cut: Counter<u64>,
        pub(super) store_errors: Counter<u64>,
        pub(super) audit_dropped: Counter<u64>,
        pub(super) audit_write_errors: Counter<u64>,
    }

    fn counter(meter: &Meter, instrument: &Instrument) -> Counter<u64> {
        meter
            .u64_counter(instrument.name)
            .with_unit(instrument.unit)
            .with_description(instrument.description)
            .build()
    }

    impl Instruments {
        fn new() -> Self {
            let meter = global::meter_with_scope(
                InstrumentationScope::builder("oauth-grpc")
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            );
            Self {
                decisions: counter(&meter, &super::DECISIONS),
                validation_duration: meter
                    .f64_histogram(super::VALIDATION_DURATION.name)
                    .with_unit(super::VALIDATION_DURATION.unit)
                    .with_description(super::VALIDATION_DURATION.description)
                    .with_boundaries(super::DURATION_BUCKETS.to_vec())
                    .build(),
                token_cache_lookups: counter(&meter, &super::TOKEN_CACHE_LOOKUPS),
                jwks_fetches: counter(&meter, &super::JWKS_FETCHES),
                key_set_changes: counter(&meter, &super::KEY_SET_CHANGES),
                introspection_requests: counter(&meter, &super::INTROSPECTION_REQUESTS),
                introspection_cache_lookups: counter(&meter, &super::INTROSPECTION_CACHE_LOOKUPS),
                streams_cut: counter(&meter, &super::STREAMS_CUT),
                store_errors: counter(&meter, &super::STORE_ERRORS),
                audit_dropped: counter(&meter, &super::AUDIT_DROPPED),
                audit_write_errors: counter(&meter, &super::AUDIT_WRITE_ERRORS),
            }
        }
    }

    /// The instruments, made on first use from the global meter provider of that moment.
    pub(super) fn get() -> &'static Instruments {
        static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
        INSTRUMENTS.get_or_init(Instruments::new)
    }

    /// An attribute; a static key and value are borrowed, not copied.
    pub(super) fn kv(key: &'static str, value: &'static str) -> KeyValue {
        KeyValue::new(key, value)
    }
}

#[cfg(feature = "metrics")]
fn outcome(ok: bool) -> &'static str {
    if ok { "success" } else { "failure" }
}

#[cfg(feature = "metrics")]
fn cache_result(hit: bool) -> &'static str {
    if hit { "hit" } else { "miss" }
}

/// One access decision of the layer: `rpc` is a path from the compiled policy or
/// [`OTHER_METHOD`], never the request's own text; `decision` is `allow` or `deny`; `reason`
/// the decision's code; `elapsed` the time since the call reached the layer.
#[inline]
pub(crate) fn decision(
    rpc: &'static str,
    decision: &'static str,
    reason: &'static str,
    issuer: Option<&std::sync::Arc<str>>,
    elapsed: Duration,
) {
    #[cfg(feature = "metrics")]
    {
        use otel::kv;
        let instruments = otel::get();
        let attributes = [
            kv(RPC_METHOD, rpc),
            kv(DECISION, decision),
            kv(REASON, reason),
            opentelemetry::KeyValue::new(ISSUER, issuer.cloned().unwrap_or_else(none)),
        ];
        instruments.decisions.add(1, &attributes);
        instruments
            .validation_duration
            .record(elapsed.as_secs_f64(), &[kv(DECISION, decision)]);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (rpc, decision, reason, issuer, elapsed);
}

/// A lookup in the verified-token cache.
#[inline]
pub(crate) fn token_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    otel::get()
        .token_cache_lookups
        .add(1, &[otel::kv(CACHE_RESULT, cache_result(hit))]);
    #[cfg(not(feature = "metrics"))]
    let _ = hit;
}

/// A fetch of the provider's keys, and whether it brought a usable key set.
#[inline]
#[cfg_attr(not(feature = "jwks"), allow(dead_code))]
pub(crate) fn jwks_fetch(ok: bool) {
    #[cfg(feature = "metrics")]
    otel::get()
        .jwks_fetches
        .add(1, &[otel::kv(OUTCOME, outcome(ok))]);
    #[cfg(not(feature = "metrics"))]
    let _ = ok;
}

/// A fetched key set replaced a different one.
#[inline]
#[cfg_attr(not(feature = "jwks"), allow(dead_code))]
pub(crate) fn key_set_changed() {
    #[cfg(feature = "metrics")]
    otel::get().key_set_changes.add(1, &[]);
}

/// A request to the introspection endpoint, and whether it brought a well-formed answer.
#[inline]
#[cfg_attr(not(feature = "introspection"), allow(dead_code))]
pub(crate) fn introspection(ok: bool) {
    #[cfg(feature = "metrics")]
    otel::get()
        .introspection_requests
        .add(1, &[otel::kv(OUTCOME, outcome(ok))]);
    #[cfg(not(feature = "metrics"))]
    let _ = ok;
}

/// A lookup in an introspection cache.
#[inline]
#[cfg_attr(not(feature = "introspection"), allow(dead_code))]
pub(crate) fn introspection_cache(hit: bool, tier: Tier) {
    #[cfg(feature = "metrics")]
    {
        let tier = match tier {
            Tier::Local => "local",
            Tier::Shared => "shared",
        };
        otel::get().introspection_cache_lookups.add(
            1,
            &[
                otel::kv(CACHE_TIER, tier),
                otel::kv(CACHE_RESULT, cache_result(hit)),
            ],
        );
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (hit, tier);
}

/// A call ended by the layer because of its token; `reason` is one of [`cut`].
#[inline]
pub(crate) fn stream_cut(reason: &'static str) {
    #[cfg(feature = "metrics")]
    otel::get().streams_cut.add(1, &[otel::kv(REASON, reason)]);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// A failed store operation; `use_` is one of [`store_use`].
#[inline]
pub(crate) fn store_error(use_: &'static str) {
    #[cfg(feature = "metrics")]
    otel::get()
        .store_errors
        .add(1, &[otel::kv(STORE_USE, use_)]);
    #[cfg(not(feature = "metrics"))]
    let _ = use_;
}

/// An audit record dropped.
#[inline]
pub(crate) fn audit_dropped() {
    #[cfg(feature = "metrics")]
    otel::get().audit_dropped.add(1, &[]);
}

/// A failed write of the audit log.
#[inline]
pub(crate) fn audit_write_error() {
    #[cfg(feature = "metrics")]
    otel::get().audit_write_errors.add(1, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_dotted_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for name in NAMES {
            assert!(seen.insert(name), "{name} is listed twice");
            assert!(name.starts_with("oauth_grpc."), "{name}");
            assert!(
                name.split('.').all(|part| !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')),
                "{name} is not dotted lowercase"
            );
        }
    }

    #[test]
    fn instruments_have_units_descriptions_and_distinct_attributes() {
        for instrument in INSTRUMENTS {
            assert!(!instrument.unit.is_empty(), "{}", instrument.name);
            assert!(!instrument.description.is_empty(), "{}", instrument.name);
            let mut keys = std::collections::HashSet::new();
            for key in instrument.attributes {
                assert!(keys.insert(key), "{}: {key} twice", instrument.name);
                assert!(
                    key.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'),
                    "{key}"
                );
            }
        }
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn recording_works_without_a_provider() {
        // The global provider is OpenTelemetry's no-op one here: every call is accepted and
        // does nothing, twice over (the second call reuses the instruments).
        let issuer: std::sync::Arc<str> = std::sync::Arc::from("https://idp.example/");
        for _ in 0..2 {
            decision(
                OTHER_METHOD,
                "deny",
                "no_rule",
                None,
                Duration::from_micros(3),
            );
            decision(
                "/pkg.S/M",
                "allow",
                "authorized",
                Some(&issuer),
                Duration::from_secs(10),
            );
            token_cache(true);
            token_cache(false);
            jwks_fetch(true);
            jwks_fetch(false);
            key_set_changed();
            introspection(true);
            introspection(false);
            introspection_cache(true, Tier::Local);
            introspection_cache(false, Tier::Shared);
            stream_cut(cut::EXPIRED);
            stream_cut(cut::REVOKED);
            stream_cut(cut::RECHECK_FAILED);
            stream_cut(cut::RECHECK_UNAVAILABLE);
            store_error(store_use::REPLAY);
            store_error(store_use::INTROSPECTION_CACHE);
            store_error(store_use::REVOCATIONS);
            store_error(store_use::OTHER);
            audit_dropped();
            audit_write_error();
        }
    }
}
