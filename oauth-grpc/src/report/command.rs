//! [`Command`]: a ready-made `permissions` binary for your own services.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::policy::PolicySet;

use super::{Format, Report};

/// A ready-made `permissions` command: `--format markdown|json|csv|istio`, `--check FILE`
/// (exit 1 with a diff when FILE differs from the report), `--coverage` (exit 1 when an rpc
/// has no rule or a rule no rpc), and for the Istio export `--namespace NS` and
/// `--selector key=value` (repeatable).
#[derive(Debug)]
pub struct Command<'a> {
    policies: &'a PolicySet,
    descriptors: Option<&'a [u8]>,
    generated_by: Option<&'a str>,
}

impl<'a> Command<'a> {
    /// The command for `policies`.
    pub fn new(policies: &'a PolicySet) -> Self {
        Self {
            policies,
            descriptors: None,
            generated_by: None,
        }
    }

    /// The encoded `FileDescriptorSet` of the services, for streaming kinds and coverage.
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
        const USAGE: &str = "usage: permissions [--format markdown|json|csv|istio] [--check FILE] [--coverage] [--namespace NS] [--selector KEY=VALUE]...";
        let mut format = Format::Markdown;
        let mut check = None;
        let mut coverage = false;
        let mut namespace = None;
        let mut selector: Vec<(String, String)> = Vec::new();
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
                "--namespace" => {
                    namespace = Some(
                        args.next()
                            .ok_or(format!("--namespace needs a namespace; {USAGE}"))?,
                    );
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
                }
                "-h" | "--help" => {
                    println!(
                        "{USAGE}\n\n  --format F          markdown (default), json, csv or istio\n  --check FILE        exit 1 with a diff when FILE differs from the report\n  --coverage          exit 1 when an rpc has no rule or a rule names no rpc\n  --namespace NS      Istio: the policies' metadata.namespace\n  --selector K=V      Istio: a workload label the policies select (repeatable)"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                other => return Err(format!("unknown argument {other:?}; {USAGE}")),
            }
        }
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
