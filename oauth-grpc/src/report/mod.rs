//! Permission reports and coverage, generated from the same compiled tables the layer
//! enforces: Markdown for reviewers, JSON (schema in `docs/permissions.schema.json`) and CSV
//! for tools, Istio `AuthorizationPolicy` YAML for a mesh. Beside them, [`Replay`] decides
//! the calls of an audit log again by the compiled rules (which calls would a change flip?),
//! and [`Lint`] warns about rules that compile but look wrong (`docs/lint.md`).
//!
//! ```
//! # use examples::pb::FILE_DESCRIPTOR_SET;
//! # use examples::{AdminDesk, OrderBook};
//! use oauth_grpc::PolicySet;
//! use oauth_grpc::report::{Format, Report};
//!
//! let policies = PolicySet::new().service::<OrderBook>().service::<AdminDesk>();
//! let report = Report::new(&policies).descriptors(FILE_DESCRIPTOR_SET)?;
//! let markdown = report.render(Format::Markdown);
//! assert!(markdown.contains("| `/orders.v1.Orders/CreateOrder` | unary | all of: `orders:write`; **delegated only by** `assistant` |"));
//!
//! // Every rpc of the .proto has a rule, and every rule names an rpc.
//! assert!(report.coverage()?.is_complete());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A command for your own services, in a few lines (the example's `permissions` binary):
//!
//! ```no_run
//! # use examples::OrderBook;
//! # use examples::pb::FILE_DESCRIPTOR_SET;
//! use std::process::ExitCode;
//! use oauth_grpc::PolicySet;
//! use oauth_grpc::report::Command;
//!
//! fn main() -> ExitCode {
//!     let policies = PolicySet::new().service::<OrderBook>();
//!     Command::new(&policies)
//!         .descriptors(FILE_DESCRIPTOR_SET)
//!         .run(std::env::args().skip(1))
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::policy::{Delegation, PolicySet, Rule};

mod audit_log;
mod command;
mod coverage;
mod istio;
mod lint;
mod render;
mod replay;

pub use self::audit_log::AuditLogError;
pub use self::command::Command;
use self::coverage::descriptor_rpcs;
pub use self::coverage::{Coverage, CoverageError, DescriptorError};
pub use self::lint::{LINT_SCHEMA_VERSION, Lint, LintCode, LintReport, Warning};
pub use self::replay::{
    Direction, Example, Flip, PathGroup, REPLAY_SCHEMA_VERSION, Replay, ReplayOutcome,
};

/// The version of the JSON document; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 6;

/// How an rpc streams, from the protobuf descriptors.
///
/// ```
/// use oauth_grpc::report::Streaming;
/// assert_eq!(Streaming::Server.as_str(), "server streaming");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Streaming {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    Server,
    /// A stream of requests, one response.
    Client,
    /// Streams both ways.
    Bidirectional,
    /// No descriptor was given for this rpc.
    Unknown,
}

impl Streaming {
    /// The kind in words.
    ///
    /// ```
    /// # use oauth_grpc::report::Streaming;
    /// assert_eq!(Streaming::Unary.as_str(), "unary");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::Server => "server streaming",
            Self::Client => "client streaming",
            Self::Bidirectional => "bidirectional",
            Self::Unknown => "unknown",
        }
    }

    const fn json(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::Server => "server",
            Self::Client => "client",
            Self::Bidirectional => "bidi",
            Self::Unknown => "unknown",
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone)]
struct Row {
    service: &'static str,
    rpc: &'static str,
    path: &'static str,
    rust_name: &'static str,
    streaming: Streaming,
    rule: Rule,
    /// Why its streams may run past their token (`#[outlives_token]`), if they may.
    outlives_token: Option<&'static str>,
    /// Whether it admits only sender-constrained tokens (`bound`).
    sender_constrained: bool,
    /// Whether it admits each token (by its `jti`) once (`once`).
    once: bool,
    /// Which delegated calls it admits (`delegation = …`).
    delegation: Delegation,
}

/// The output formats.
///
/// ```
/// use oauth_grpc::report::Format;
/// assert_eq!("istio".parse::<Format>(), Ok(Format::Istio));
/// assert!("yaml".parse::<Format>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Tables for reviewers.
    Markdown,
    /// A versioned document for tools.
    Json,
    /// One row per rpc.
    Csv,
    /// Istio `AuthorizationPolicy` resources, one per service.
    Istio,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "markdown" | "md" => Ok(Self::Markdown),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "istio" => Ok(Self::Istio),
            other => Err(format!(
                "unknown format {other:?}; use markdown, json, csv or istio"
            )),
        }
    }
}

/// A permission report of a [`PolicySet`].
#[derive(Debug, Clone)]
pub struct Report {
    rows: Vec<Row>,
    /// Services opened with `PolicySet::public_service`: no table, every rpc public.
    public_services: Vec<String>,
    descriptor_rpcs: Option<BTreeMap<String, Streaming>>,
    /// Where the Istio policies go: `metadata.namespace` and `spec.selector.matchLabels`.
    namespace: Option<String>,
    selector: Vec<(String, String)>,
    /// The command that regenerates the Markdown report, named in its header.
    generated_by: Option<String>,
}

impl Report {
    /// The report of `policies`, ordered by path.
    pub fn new(policies: &PolicySet) -> Self {
        let mut rows: Vec<Row> = policies
            .services()
            .flat_map(|service| {
                service.methods().iter().map(move |m| Row {
                    service: service.name(),
                    rpc: m.rpc(),
                    path: m.path(),
                    rust_name: m.rust_name(),
                    streaming: Streaming::Unknown,
                    rule: m.rule(),
                    outlives_token: m.outlives_token(),
                    sender_constrained: m.sender_constrained(),
                    once: m.once(),
                    delegation: m.delegation(),
                })
            })
            .collect();
        rows.sort_by(|a, b| a.path.cmp(b.path));
        Self {
            rows,
            public_services: policies.public_services(),
            descriptor_rpcs: None,
            namespace: None,
            selector: Vec::new(),
            generated_by: None,
        }
    }

    /// The command that regenerates the Markdown report, named in its header so a reader
    /// knows how (the header is neutral without it).
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::{Format, Report}};
    /// let report = Report::new(&PolicySet::new()).generated_by("cargo run --bin permissions");
    /// assert!(report.render(Format::Markdown).contains(
    ///     "Generated from the compiled access tables (`cargo run --bin permissions`)"
    /// ));
    /// let neutral = Report::new(&PolicySet::new()).render(Format::Markdown);
    /// assert!(neutral.contains("Generated from the compiled access tables; do not edit by hand."));
    /// ```
    #[must_use]
    pub fn generated_by(mut self, command: impl Into<String>) -> Self {
        self.generated_by = Some(command.into());
        self
    }

    /// The namespace of the Istio policies (`metadata.namespace`). Without one, `kubectl`
    /// applies them to its current namespace, and the export says so in a warning.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::{Format, Report}};
    /// # use examples::OrderBook;
    /// let yaml = Report::new(&PolicySet::new().service::<OrderBook>())
    ///     .istio_namespace("shop")
    ///     .render(Format::Istio);
    /// assert!(yaml.contains("\n  namespace: shop\n"));
    /// ```
    #[must_use]
    pub fn istio_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A label the Istio policies select workloads by (`spec.selector.matchLabels`); may be
    /// given several times. Without one, a policy covers every workload of its namespace —
    /// the whole mesh in the root namespace — and the export says so in a warning.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::{Format, Report}};
    /// # use examples::OrderBook;
    /// let yaml = Report::new(&PolicySet::new().service::<OrderBook>())
    ///     .istio_selector("app", "orders")
    ///     .render(Format::Istio);
    /// assert!(yaml.contains("  selector:\n    matchLabels:\n      app: \"orders\"\n"));
    /// assert!(!yaml.contains("WARNING: no selector"));
    /// ```
    #[must_use]
    pub fn istio_selector(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.selector.push((key.into(), value.into()));
        self
    }

    /// Adds the streaming kinds from an encoded `FileDescriptorSet`, and enables
    /// [`coverage`](Self::coverage).
    ///
    /// # Errors
    ///
    /// [`DescriptorError`] when the bytes are not a descriptor set.
    pub fn descriptors(mut self, encoded: &[u8]) -> Result<Self, DescriptorError> {
        let rpcs = descriptor_rpcs(encoded)?;
        for row in &mut self.rows {
            if let Some(kind) = rpcs.get(row.path) {
                row.streaming = *kind;
            }
        }
        self.descriptor_rpcs = Some(rpcs);
        Ok(self)
    }

    /// The rpcs without a rule and the rules without an rpc.
    ///
    /// # Errors
    ///
    /// [`CoverageError::NoDescriptors`] when no descriptors were given: with nothing to
    /// compare the tables with, "everything is covered" would be a claim nobody checked.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use examples::AdminDesk;
    /// # use examples::pb::FILE_DESCRIPTOR_SET;
    /// # use oauth_grpc::{PolicySet, report::Report};
    /// let policies = PolicySet::new().service::<OrderBook>().service::<AdminDesk>();
    /// let report = Report::new(&policies).descriptors(FILE_DESCRIPTOR_SET)?;
    /// assert!(report.coverage()?.is_complete());
    /// assert!(Report::new(&policies).coverage().is_err()); // no descriptors, no claim
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn coverage(&self) -> Result<Coverage, CoverageError> {
        let Some(rpcs) = &self.descriptor_rpcs else {
            return Err(CoverageError::NoDescriptors);
        };
        let ruled: BTreeSet<&str> = self.rows.iter().map(|r| r.path).collect();
        Ok(Coverage {
            without_rule: rpcs
                .keys()
                .filter(|p| !ruled.contains(p.as_str()))
                .cloned()
                .collect(),
            without_rpc: self
                .rows
                .iter()
                .filter(|r| !rpcs.contains_key(r.path))
                .map(|r| r.path.to_owned())
                .collect(),
        })
    }

    /// [`coverage`](Self::coverage) as a check: `Ok` when every rpc has a rule and every rule
    /// an rpc.
    ///
    /// # Errors
    ///
    /// [`CoverageError::Incomplete`] listing the gaps.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Report};
    /// # use examples::{AdminDesk, OrderBook, pb::FILE_DESCRIPTOR_SET};
    /// let policies = PolicySet::new().service::<OrderBook>().service::<AdminDesk>();
    /// Report::new(&policies).descriptors(FILE_DESCRIPTOR_SET)?.check_coverage()?;
    /// # Ok::<(), oauth_grpc::report::CoverageError>(())
    /// ```
    pub fn check_coverage(&self) -> Result<(), CoverageError> {
        let coverage = self.coverage()?;
        if coverage.is_complete() {
            Ok(())
        } else {
            Err(CoverageError::Incomplete(coverage))
        }
    }

    /// The report in `format`.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::{PolicySet, report::{Format, Report}};
    /// let report = Report::new(&PolicySet::new().service::<OrderBook>());
    /// assert!(report.render(Format::Csv).starts_with("service,rpc,path,rust_name,streaming,rule,scopes,outlives_token,sender_constrained,delegation,delegation_actors,once\n"));
    /// ```
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Json => self.json(),
            Format::Csv => self.csv(),
            Format::Istio => self.istio(),
        }
    }
}
