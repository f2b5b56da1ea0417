//! [`Command`]: a ready-made `permissions` binary for your own services.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use crate::policy::PolicySet;
use crate::scope::{Scope, ScopeCatalog};

use super::{AuditLogError, Format, Lint, LintCode, Replay, Report};

/// A ready-made `permissions` command:
///
/// - the report: `--format markdown|json|csv|istio`, `--check FILE` (exit 1 with a diff when
///   FILE differs from the report), `--coverage` (exit 1 when an rpc has no rule or a rule no
///   rpc), and for the Istio export `--namespace NS` and `--selector key=value` (repeatable);
/// - `replay AUDIT.jsonl [--format text|json] [--allow-flips] [--require-sender-constrained]`:
///   every call of an audit log decided again by the compiled rules ([`Replay`]); exit 1
///   when a call would be decided otherwise, unless `--allow-flips`;
/// - `--lint [--audit FILE] [--format text|json] [--allow CODE[=ITEM]]...`: warnings about
///   the rules ([`Lint`], `docs/lint.md`); exit 1 when there are any.
///
/// Errors (a bad argument, an unreadable or malformed file) exit with 2.
///
/// [`Replay`]: super::Replay
/// [`Lint`]: super::Lint
#[derive(Debug)]
pub struct Command<'a> {
    policies: &'a PolicySet,
    descriptors: Option<&'a [u8]>,
    generated_by: Option<&'a str>,
    catalogs: Vec<(&'static str, &'static [Scope])>,
}

const USAGE: &str = "usage: permissions [--format markdown|json|csv|istio] [--check FILE] [--coverage] [--namespace NS] [--selector KEY=VALUE]...
       permissions replay AUDIT.jsonl [--format text|json] [--allow-flips] [--require-sender-constrained]
       permissions --lint [--audit AUDIT.jsonl] [--format text|json] [--allow CODE[=ITEM]]...";

const HELP: &str = "
Report (default):
  --format F          markdown (default), json, csv or istio
  --check FILE        exit 1 with a diff when FILE differs from the report
  --coverage          exit 1 when an rpc has no rule or a rule names no rpc
  --namespace NS      Istio: the policies' metadata.namespace
  --selector K=V      Istio: a workload label the policies select (repeatable)

Replay an audit log (one JSON record per line; `-` reads stdin) against the compiled rules:
  replay FILE         list the calls the rules now decide otherwise; exit 1 if there are any
  --format F          text (default) or json
  --allow-flips       exit 0 even when calls flip (the change is intended)
  --require-sender-constrained
                      replay as a layer with require_sender_constrained(true)

Lint the rules (codes and fixes: docs/lint.md):
  --lint              warn about rules that compile but look wrong; exit 1 if any
  --audit FILE        also check them against the scopes of the log's verified tokens
  --format F          text (default) or json
  --allow CODE[=ITEM] silence a code, or its warning about one scope or path (repeatable)

Exit codes: 0 clean, 1 a difference or finding, 2 an error.";

/// What the arguments ask for.
enum Mode {
    Report,
    Replay { file: String },
    Lint,
}

impl<'a> Command<'a> {
    /// The command for `policies`.
    pub fn new(policies: &'a PolicySet) -> Self {
        Self {
            policies,
            descriptors: None,
            generated_by: None,
            catalogs: Vec::new(),
        }
    }

    /// The encoded `FileDescriptorSet` of the services, for streaming kinds and coverage, and
    /// for `replay` to tell removed rpcs.
    #[must_use]
    pub fn descriptors(mut self, encoded: &'a [u8]) -> Self {
        self.descriptors = Some(encoded);
        self
    }

    /// How to run this command, named in the Markdown report's header (see
    /// [`Report::generated_by`]).
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Command};
    /// let policies = PolicySet::new();
    /// let command = Command::new(&policies).generated_by("cargo run --bin permissions");
    /// assert_eq!(command.run(["--format", "markdown"].map(String::from)), std::process::ExitCode::SUCCESS);
    /// ```
    #[must_use]
    pub fn generated_by(mut self, command: &'a str) -> Self {
        self.generated_by = Some(command);
        self
    }

    /// The scope catalog of the services (a [`scopes!`](crate::scopes) enum), for `--lint`:
    /// scopes of it no rule uses, and scopes rules use outside it, are warned about. May be
    /// given several times.
    ///
    /// ```
    /// # use oauth_grpc::report::Command;
    /// use std::process::ExitCode;
    ///
    /// let policies = examples::policies();
    /// let command = Command::new(&policies).catalog::<examples::OrderScope>();
    /// assert_eq!(command.run(["--lint"].map(String::from)), ExitCode::SUCCESS);
    /// ```
    #[must_use]
    pub fn catalog<C: ScopeCatalog>(mut self) -> Self {
        self.catalogs.push((std::any::type_name::<C>(), C::ALL));
        self
    }

    /// Runs with `args` (without the program name); prints to stdout, errors to stderr.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::{PolicySet, report::Command};
    /// let policies = PolicySet::new().service::<OrderBook>();
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
        let mut format = None;
        let mut check = None;
        let mut coverage = false;
        let mut namespace = None;
        let mut selector: Vec<(String, String)> = Vec::new();
        let mut mode = Mode::Report;
        let mut audit = None;
        let mut allow: Vec<(LintCode, Option<String>)> = Vec::new();
        let mut allow_flips = false;
        let mut require_sender_constrained = false;
        // Options of one mode only, to refuse them in the others.
        let mut report_only = None;
        let mut replay_only = None;
        let mut lint_only = None;
        let mut args = args.into_iter().peekable();
        if args.peek().map(String::as_str) == Some("replay") {
            args.next();
            let file = args
                .next()
                .filter(|file| !file.starts_with("--"))
                .ok_or(format!("replay needs the audit log to read, e.g. `permissions replay audit.jsonl`; {USAGE}"))?;
            mode = Mode::Replay { file };
        }
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--format" => {
                    let value = args
                        .next()
                        .ok_or(format!("--format needs a value; {USAGE}"))?;
                    format = Some(value);
                }
                "--check" => {
                    check = Some(
                        args.next()
                            .ok_or(format!("--check needs a file; {USAGE}"))?,
                    );
                    report_only.get_or_insert("--check");
                }
                "--coverage" => {
                    coverage = true;
                    report_only.get_or_insert("--coverage");
                }
                "--namespace" => {
                    namespace = Some(
                        args.next()
                            .ok_or(format!("--namespace needs a namespace; {USAGE}"))?,
                    );
                    report_only.get_or_insert("--namespace");
                }
                "--selector" => {
                    let label = args
                        .next()
                        .ok_or(format!("--selector needs KEY=VALUE; {USAGE}"))?;
                    match label.split_once('=') {
                        Some((key, value)) if !key.is_empty() => {
                            selector.push((key.to_owned(), value.to_owned()));
                        }
                        _ => {
                            return Err(format!(
                                "--selector {label:?} is not KEY=VALUE, e.g. `--selector app=orders`"
                            ));
                        }
                    }
                    report_only.get_or_insert("--selector");
                }
                "--allow-flips" => {
                    allow_flips = true;
                    replay_only.get_or_insert("--allow-flips");
                }
                "--require-sender-constrained" => {
                    require_sender_constrained = true;
                    replay_only.get_or_insert("--require-sender-constrained");
                }
                "--lint" => match mode {
                    Mode::Replay { .. } => {
                        return Err(format!("--lint and replay are separate runs; {USAGE}"));
                    }
                    _ => mode = Mode::Lint,
                },
                "--audit" => {
                    audit = Some(
                        args.next()
                            .ok_or(format!("--audit needs the audit log to read; {USAGE}"))?,
                    );
                    lint_only.get_or_insert("--audit");
                }
                "--allow" => {
                    let value = args.next().ok_or(format!(
                        "--allow needs a lint code, e.g. `--allow unused-scope`; {USAGE}"
                    ))?;
                    let (code, item) = match value.split_once('=') {
                        Some((code, item)) => (code, Some(item.to_owned())),
                        None => (value.as_str(), None),
                    };
                    allow.push((code.parse()?, item));
                    lint_only.get_or_insert("--allow");
                }
                "-h" | "--help" => {
                    println!("{USAGE}\n{HELP}");
                    return Ok(ExitCode::SUCCESS);
                }
                "replay" => {
                    return Err(format!(
                        "`replay` comes first: `permissions replay AUDIT.jsonl …`; {USAGE}"
                    ));
                }
                other => return Err(format!("unknown argument {other:?}; {USAGE}")),
            }
        }
        let misplaced = match mode {
            Mode::Report => replay_only.or(lint_only).map(|o| (o, "replay or --lint")),
            Mode::Replay { .. } => report_only
                .or(lint_only)
                .map(|o| (o, "the report or --lint")),
            Mode::Lint => report_only
                .or(replay_only)
                .map(|o| (o, "the report or replay")),
        };
        if let Some((option, belongs)) = misplaced {
            return Err(format!(
                "{option} is an option of {belongs}, not of this run; {USAGE}"
            ));
        }
        match mode {
            Mode::Replay { file } => {
                let json = text_or_json(format.as_deref())?;
                self.replay(&file, json, allow_flips, require_sender_constrained)
            }
            Mode::Lint => {
                let json = text_or_json(format.as_deref())?;
                self.lint(audit.as_deref(), json, allow)
            }
            Mode::Report => {
                let format = match format {
                    Some(format) => format.parse()?,
                    None => Format::Markdown,
                };
                self.report(format, check, coverage, namespace, selector)
            }
        }
    }

    fn report(
        self,
        format: Format,
        check: Option<String>,
        coverage: bool,
        namespace: Option<String>,
        selector: Vec<(String, String)>,
    ) -> Result<ExitCode, String> {
        let mut report = Report::new(self.policies);
        if let Some(command) = self.generated_by {
            report = report.generated_by(command);
        }
        if let Some(namespace) = namespace {
            report = report.istio_namespace(namespace);
        }
        for (key, value) in selector {
            report = report.istio_selector(key, value);
        }
        if format == Format::Istio
            && let Some(scope) = report.unexportable_scopes().first()
        {
            return Err(format!(
                "the scope `{scope}` holds `*`, which Istio reads as a wildcard: exporting it would widen the mesh rule; rename the scope, or leave this service out of the mesh export"
            ));
        }
        if let Some(descriptors) = self.descriptors {
            report = report.descriptors(descriptors).map_err(|e| e.to_string())?;
        }
        if coverage {
            let found = report.coverage().map_err(|e| e.to_string())?;
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

    fn replay(
        self,
        file: &str,
        json: bool,
        allow_flips: bool,
        require_sender_constrained: bool,
    ) -> Result<ExitCode, String> {
        let mut replay =
            Replay::new(self.policies).require_sender_constrained(require_sender_constrained);
        if let Some(descriptors) = self.descriptors {
            replay = replay.descriptors(descriptors).map_err(|e| e.to_string())?;
        }
        let outcome = read_log(file, |reader| replay.run(reader))?;
        if json {
            print!("{}", outcome.to_json());
        } else {
            print!("{outcome}");
        }
        if !outcome.would_change() {
            eprintln!("permissions: no call of {file} would be decided otherwise");
            Ok(ExitCode::SUCCESS)
        } else if allow_flips {
            eprintln!(
                "permissions: calls of {file} would be decided otherwise; accepted (--allow-flips)"
            );
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!(
                "permissions: calls of {file} would be decided otherwise; review them, and pass --allow-flips if the change is intended"
            );
            Ok(ExitCode::FAILURE)
        }
    }

    fn lint(
        self,
        audit: Option<&str>,
        json: bool,
        allow: Vec<(LintCode, Option<String>)>,
    ) -> Result<ExitCode, String> {
        let mut lint = Lint::new(self.policies);
        for (name, scopes) in self.catalogs {
            lint = lint.catalog_scopes(name, scopes);
        }
        for (code, item) in &allow {
            lint = lint.allow(*code, item.as_deref());
        }
        if let Some(file) = audit {
            lint = read_log(file, |reader| lint.audit(reader))?;
        }
        let report = lint.check();
        if json {
            print!("{}", report.to_json());
        } else {
            print!("{report}");
        }
        let count = report.warnings.len();
        if count == 0 {
            eprintln!("permissions --lint: no warnings");
            Ok(ExitCode::SUCCESS)
        } else {
            let noun = if count == 1 { "warning" } else { "warnings" };
            eprintln!(
                "permissions --lint: {count} {noun}; fix them, or silence one that is right on purpose with `--allow CODE=ITEM` (docs/lint.md)"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `text` (the default) or `json`, the formats of `replay` and `--lint`.
fn text_or_json(format: Option<&str>) -> Result<bool, String> {
    match format {
        None | Some("text") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => Err(format!(
            "unknown format {other:?} for replay and --lint; use text or json"
        )),
    }
}

/// Opens the audit log `file` (`-`: stdin) and reads it with `read`; errors name the file.
fn read_log<T>(
    file: &str,
    read: impl FnOnce(&mut dyn BufRead) -> Result<T, AuditLogError>,
) -> Result<T, String> {
    let result = if file == "-" {
        read(&mut std::io::stdin().lock())
    } else {
        let opened = std::fs::File::open(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        read(&mut BufReader::new(opened))
    };
    result.map_err(|e| format!("{file}: {e}"))
}

/// A line diff, showing changed lines with their numbers: `-` the committed line, `+` the
/// generated one.
fn diff(old: &str, new: &str) -> String {
    let mut out = String::new();
    for change in similar::TextDiff::from_lines(old, new).iter_all_changes() {
        let (sign, line) = match change.tag() {
            similar::ChangeTag::Equal => continue,
            similar::ChangeTag::Delete => ('-', change.old_index()),
            similar::ChangeTag::Insert => ('+', change.new_index()),
        };
        let number = line.map_or(0, |i| i + 1);
        let _ = writeln!(
            out,
            "{sign}{number:>4} | {}",
            change.value().trim_end_matches('\n')
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn diff_shows_changed_lines_with_their_numbers() {
        assert_eq!(diff("a\nb\nc\n", "a\nB\nc\n"), "-   2 | b\n+   2 | B\n");
        assert_eq!(diff("a\nb\n", "a\nb\n"), "");
        assert_eq!(diff("a\n", "a\nb\n"), "+   2 | b\n");
        assert_eq!(diff("x\ny\n", "y\n"), "-   1 | x\n");
    }
}
