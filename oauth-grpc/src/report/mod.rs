//! Permission reports and coverage, generated from the same compiled tables the layer
//! enforces: Markdown for reviewers, JSON (schema in `docs/permissions.schema.json`) and CSV
//! for tools, Istio `AuthorizationPolicy` YAML for a mesh.
//!
//! ```
//! use examples::{AdminDesk, OrderBook};
//! use oauth_grpc::PolicySet;
//! use oauth_grpc::report::{Format, Report};
//!
//! let policies = PolicySet::new().service::<OrderBook>().service::<AdminDesk>();
//! let report = Report::new(&policies).descriptors(examples::pb::FILE_DESCRIPTOR_SET)?;
//! let markdown = report.render(Format::Markdown);
//! assert!(markdown.contains("| `/orders.v1.Orders/CreateOrder` | unary | all of: `orders:write` |"));
//!
//! // Every rpc of the .proto has a rule, and every rule names an rpc.
//! assert!(report.coverage().is_complete());
//! # Ok::<(), oauth_grpc::report::DescriptorError>(())
//! ```
//!
//! A command for your own services, in a few lines (the example's `permissions` binary):
//!
//! ```no_run
//! use std::process::ExitCode;
//! use oauth_grpc::PolicySet;
//! use oauth_grpc::report::Command;
//!
//! fn main() -> ExitCode {
//!     let policies = PolicySet::new().service::<examples::OrderBook>();
//!     Command::new(&policies)
//!         .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
//!         .run(std::env::args().skip(1))
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;

use prost::Message;

use crate::policy::{PolicySet, Rule};

/// The version of the JSON document; bumped on any incompatible change.
pub const JSON_SCHEMA_VERSION: u32 = 1;

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

/// The descriptor set could not be read.
///
/// ```
/// use oauth_grpc::PolicySet;
/// use oauth_grpc::report::Report;
/// assert!(Report::new(&PolicySet::new()).descriptors(b"\xff\xff").is_err());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "the file descriptor set cannot be decoded ({0}); pass the bytes tonic-prost-build or protox wrote"
)]
pub struct DescriptorError(String);

/// The rpcs of a descriptor set: full path → streaming kind.
fn descriptor_rpcs(bytes: &[u8]) -> Result<BTreeMap<String, Streaming>, DescriptorError> {
    let set = prost_types::FileDescriptorSet::decode(bytes)
        .map_err(|e| DescriptorError(e.to_string()))?;
    let mut rpcs = BTreeMap::new();
    for file in &set.file {
        for service in &file.service {
            let name = match file.package() {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                let kind = match (method.client_streaming(), method.server_streaming()) {
                    (false, false) => Streaming::Unary,
                    (false, true) => Streaming::Server,
                    (true, false) => Streaming::Client,
                    (true, true) => Streaming::Bidirectional,
                };
                rpcs.insert(format!("/{name}/{}", method.name()), kind);
            }
        }
    }
    Ok(rpcs)
}

/// Rpcs without a rule, and rules without an rpc, between a [`PolicySet`] and the protobuf
/// descriptors.
///
/// ```
/// use oauth_grpc::PolicySet;
/// use oauth_grpc::report::Report;
///
/// // Only the Orders table against a descriptor set that also has OrdersAdmin:
/// let policies = PolicySet::new().service::<examples::OrderBook>();
/// let coverage = Report::new(&policies).descriptors(examples::pb::FILE_DESCRIPTOR_SET)?.coverage();
/// assert_eq!(coverage.without_rule, ["/orders.v1.OrdersAdmin/ExportOrders", "/orders.v1.OrdersAdmin/PurgeCancelled"]);
/// assert!(coverage.without_rpc.is_empty());
/// # Ok::<(), oauth_grpc::report::DescriptorError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Coverage {
    /// Paths in the descriptors that no table has a rule for: every call to them is refused.
    pub without_rule: Vec<String>,
    /// Paths with a rule that the descriptors do not have: a wrong `rpc =`, a renamed proto
    /// method — the real path then has no rule.
    pub without_rpc: Vec<String>,
}

impl Coverage {
    /// Whether every rpc has a rule and every rule an rpc.
    ///
    /// ```
    /// assert!(oauth_grpc::report::Coverage::default().is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.without_rule.is_empty() && self.without_rpc.is_empty()
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_complete() {
            return f.write_str("every rpc has a rule and every rule names an rpc");
        }
        for path in &self.without_rule {
            writeln!(f, "rpc without a rule: {path}")?;
        }
        for path in &self.without_rpc {
            writeln!(
                f,
                "rule for no rpc of the descriptors: {path} (a wrong `rpc =`, or a renamed proto method?)"
            )?;
        }
        Ok(())
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
    descriptor_rpcs: Option<BTreeMap<String, Streaming>>,
}

impl Report {
    /// The report of `policies`, ordered by path.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Report};
    /// let report = Report::new(&PolicySet::new().service::<examples::OrderBook>());
    /// # let _ = report;
    /// ```
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
                })
            })
            .collect();
        rows.sort_by(|a, b| a.path.cmp(b.path));
        Self {
            rows,
            descriptor_rpcs: None,
        }
    }

    /// Adds the streaming kinds from an encoded `FileDescriptorSet`, and enables
    /// [`coverage`](Self::coverage).
    ///
    /// # Errors
    ///
    /// [`DescriptorError`] when the bytes are not a descriptor set.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Report};
    /// let report = Report::new(&PolicySet::new().service::<examples::OrderBook>())
    ///     .descriptors(examples::pb::FILE_DESCRIPTOR_SET)?;
    /// # let _ = report;
    /// # Ok::<(), oauth_grpc::report::DescriptorError>(())
    /// ```
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

    /// The rpcs without a rule and the rules without an rpc (empty without descriptors).
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Report};
    /// let policies = PolicySet::new().service::<examples::OrderBook>().service::<examples::AdminDesk>();
    /// let report = Report::new(&policies).descriptors(examples::pb::FILE_DESCRIPTOR_SET)?;
    /// assert!(report.coverage().is_complete());
    /// # Ok::<(), oauth_grpc::report::DescriptorError>(())
    /// ```
    pub fn coverage(&self) -> Coverage {
        let Some(rpcs) = &self.descriptor_rpcs else {
            return Coverage::default();
        };
        let ruled: BTreeSet<&str> = self.rows.iter().map(|r| r.path).collect();
        Coverage {
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
        }
    }

    /// The report in `format`.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::{Format, Report}};
    /// let report = Report::new(&PolicySet::new().service::<examples::OrderBook>());
    /// assert!(report.render(Format::Csv).starts_with("service,rpc,path,rust_name,streaming,rule,scopes\n"));
    /// ```
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Json => self.json(),
            Format::Csv => self.csv(),
            Format::Istio => self.istio(),
        }
    }

    fn services(&self) -> BTreeMap<&'static str, Vec<&Row>> {
        let mut services: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for row in &self.rows {
            services.entry(row.service).or_default().push(row);
        }
        services
    }

    fn totals(&self) -> (usize, usize, usize) {
        let public = self.rows.iter().filter(|r| r.rule == Rule::Public).count();
        let authenticated = self
            .rows
            .iter()
            .filter(|r| r.rule == Rule::Authenticated)
            .count();
        (
            public,
            authenticated,
            self.rows.len() - public - authenticated,
        )
    }

    fn markdown(&self) -> String {
        let mut out = String::from("# Permissions\n\n");
        out.push_str(
            "Generated from the compiled access tables (`cargo run -p examples --bin permissions`); \
             do not edit by hand.\n\n",
        );
        let (public, authenticated, scoped) = self.totals();
        let _ = writeln!(
            out,
            "{} rpcs: {scoped} scoped, {authenticated} authenticated, {public} public.\n",
            self.rows.len()
        );
        for (service, rows) in self.services() {
            let _ = writeln!(out, "## `{service}`\n");
            out.push_str("| RPC | Streaming | Rule |\n|---|---|---|\n");
            for row in &rows {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    row.path,
                    row.streaming.as_str(),
                    rule_words(row.rule)
                );
            }
            let scopes: BTreeSet<&str> = rows
                .iter()
                .flat_map(|r| r.rule.scopes().iter().map(|s| s.as_str()))
                .collect();
            if !scopes.is_empty() {
                out.push_str("\nScopes by RPC (`all`: needed with the others marked `all`; `any`: one of those marked `any` suffices):\n\n| RPC |");
                for scope in &scopes {
                    let _ = write!(out, " `{scope}` |");
                }
                out.push_str("\n|---|");
                out.push_str(&"---|".repeat(scopes.len()));
                out.push('\n');
                for row in &rows {
                    let _ = write!(out, "| {} |", row.rpc);
                    for scope in &scopes {
                        let named = row.rule.scopes().iter().any(|s| s.as_str() == *scope);
                        let mark = match (named, row.rule) {
                            (true, Rule::AllOf(_)) => " all |",
                            (true, Rule::AnyOf(_)) => " any |",
                            _ => "  |",
                        };
                        out.push_str(mark);
                    }
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        out
    }

    fn json(&self) -> String {
        let services: Vec<serde_json::Value> = self
            .services()
            .into_iter()
            .map(|(name, rows)| {
                let methods: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "rpc": r.rpc,
                            "path": r.path,
                            "rust_name": r.rust_name,
                            "streaming": r.streaming.json(),
                            "rule": rule_kind(r.rule),
                            "scopes": r.rule.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                serde_json::json!({ "name": name, "methods": methods })
            })
            .collect();
        let (public, authenticated, scoped) = self.totals();
        let document = serde_json::json!({
            "schema_version": JSON_SCHEMA_VERSION,
            "services": services,
            "totals": {
                "rpcs": self.rows.len(),
                "public": public,
                "authenticated": authenticated,
                "scoped": scoped,
            },
        });
        let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
        out.push('\n');
        out
    }

    fn csv(&self) -> String {
        let mut out = String::from("service,rpc,path,rust_name,streaming,rule,scopes\n");
        for r in &self.rows {
            let scopes: Vec<&str> = r.rule.scopes().iter().map(|s| s.as_str()).collect();
            let fields = [
                r.service,
                r.rpc,
                r.path,
                r.rust_name,
                r.streaming.json(),
                rule_kind(r.rule),
                &scopes.join(" "),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }

    fn istio(&self) -> String {
        let mut out = String::from(
            "# Istio AuthorizationPolicy resources generated from the compiled access tables.\n\
             # Requires a RequestAuthentication for your issuer (it checks signatures and `aud`).\n\
             # Add spec.selector for your workload. ALLOW policies deny every path not listed.\n",
        );
        for (service, rows) in self.services() {
            let name = service.to_ascii_lowercase().replace(['.', '_'], "-");
            let _ = write!(
                out,
                "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\nspec:\n  action: ALLOW\n  rules:\n"
            );
            // Paths grouped by identical rule, in path order of their first member.
            let mut groups: Vec<(Rule, Vec<&str>)> = Vec::new();
            for row in &rows {
                match groups.iter_mut().find(|(rule, _)| *rule == row.rule) {
                    Some((_, paths)) => paths.push(row.path),
                    None => groups.push((row.rule, vec![row.path])),
                }
            }
            for (rule, paths) in groups {
                let _ = writeln!(out, "  # {}", rule_words(rule).replace('`', ""));
                out.push_str("  - ");
                if rule != Rule::Public {
                    out.push_str("from:\n    - source:\n        requestPrincipals: [\"*\"]\n    ");
                }
                out.push_str("to:\n    - operation:\n        paths:\n");
                for path in &paths {
                    let _ = writeln!(out, "        - \"{path}\"");
                }
                match rule {
                    Rule::AllOf(scopes) => {
                        out.push_str("    when:\n");
                        for scope in scopes {
                            let _ = writeln!(
                                out,
                                "    - key: request.auth.claims[scope]\n      values: [\"{}\"]",
                                scope.as_str()
                            );
                        }
                    }
                    Rule::AnyOf(scopes) => {
                        let values: Vec<String> = scopes
                            .iter()
                            .map(|s| format!("\"{}\"", s.as_str()))
                            .collect();
                        let _ = writeln!(
                            out,
                            "    when:\n    - key: request.auth.claims[scope]\n      values: [{}]",
                            values.join(", ")
                        );
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

fn rule_kind(rule: Rule) -> &'static str {
    match rule {
        Rule::Public => "public",
        Rule::Authenticated => "authenticated",
        Rule::AllOf(_) => "all_of",
        Rule::AnyOf(_) => "any_of",
    }
}

fn rule_words(rule: Rule) -> String {
    let scopes = |s: &[crate::Scope]| {
        s.iter()
            .map(|s| format!("`{}`", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match rule {
        Rule::Public => "public".into(),
        Rule::Authenticated => "authenticated".into(),
        Rule::AllOf(s) => format!("all of: {}", scopes(s)),
        Rule::AnyOf(s) => format!("any of: {}", scopes(s)),
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A ready-made `permissions` command: `--format markdown|json|csv|istio`, `--check FILE`
/// (exit 1 with a diff when FILE differs from the report), `--coverage` (exit 1 when an rpc
/// has no rule or a rule no rpc).
#[derive(Debug)]
pub struct Command<'a> {
    policies: &'a PolicySet,
    descriptors: Option<&'a [u8]>,
}

impl<'a> Command<'a> {
    /// The command for `policies`.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Command};
    /// let policies = PolicySet::new();
    /// let command = Command::new(&policies);
    /// # let _ = command;
    /// ```
    pub fn new(policies: &'a PolicySet) -> Self {
        Self {
            policies,
            descriptors: None,
        }
    }

    /// The encoded `FileDescriptorSet` of the services, for streaming kinds and coverage.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Command};
    /// # let policies = PolicySet::new();
    /// let command = Command::new(&policies).descriptors(examples::pb::FILE_DESCRIPTOR_SET);
    /// # let _ = command;
    /// ```
    #[must_use]
    pub fn descriptors(mut self, encoded: &'a [u8]) -> Self {
        self.descriptors = Some(encoded);
        self
    }

    /// Runs with `args` (without the program name); prints to stdout, errors to stderr.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Command};
    /// let policies = PolicySet::new().service::<examples::OrderBook>();
    /// let code = Command::new(&policies).run(["--format", "csv"].map(String::from));
    /// assert_eq!(code, std::process::ExitCode::SUCCESS);
    /// ```
    pub fn run(self, args: impl IntoIterator<Item = String>) -> ExitCode {
        match self.execute(args) {
            Ok(code) => code,
            Err(message) => {
                eprintln!("permissions: {message}");
                ExitCode::from(2)
            }
        }
    }

    fn execute(self, args: impl IntoIterator<Item = String>) -> Result<ExitCode, String> {
        const USAGE: &str =
            "usage: permissions [--format markdown|json|csv|istio] [--check FILE] [--coverage]";
        let mut format = Format::Markdown;
        let mut check = None;
        let mut coverage = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--format" => {
                    let value = args
                        .next()
                        .ok_or(format!("--format needs a value; {USAGE}"))?;
                    format = value.parse()?;
                }
                "--check" => {
                    check = Some(
                        args.next()
                            .ok_or(format!("--check needs a file; {USAGE}"))?,
                    )
                }
                "--coverage" => coverage = true,
                "-h" | "--help" => {
                    println!(
                        "{USAGE}\n\n  --format F    markdown (default), json, csv or istio\n  --check FILE  exit 1 with a diff when FILE differs from the report\n  --coverage    exit 1 when an rpc has no rule or a rule names no rpc"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                other => return Err(format!("unknown argument {other:?}; {USAGE}")),
            }
        }
        let mut report = Report::new(self.policies);
        if let Some(descriptors) = self.descriptors {
            report = report.descriptors(descriptors).map_err(|e| e.to_string())?;
        }
        if coverage {
            let found = report.coverage();
            return if found.is_complete() {
                println!("{found}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprint!("{found}");
                Ok(ExitCode::FAILURE)
            };
        }
        let rendered = report.render(format);
        match check {
            None => {
                print!("{rendered}");
                Ok(ExitCode::SUCCESS)
            }
            Some(path) => {
                let committed = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                if committed == rendered {
                    println!("{path} matches the compiled access rules");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!(
                        "{path} differs from the compiled access rules (- committed, + code):\n{}\nRegenerate it and review the change.",
                        diff(&committed, &rendered)
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// A line diff (longest common subsequence), showing changed lines with their numbers.
///
/// ```
/// let d = oauth_grpc::report::diff("a\nb\nc\n", "a\nB\nc\n");
/// assert_eq!(d, "-   2 | b\n+   2 | B\n");
/// ```
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "-{:>4} | {}", i + 1, a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+{:>4} | {}", j + 1, b[j]);
            j += 1;
        }
    }
    out
}
