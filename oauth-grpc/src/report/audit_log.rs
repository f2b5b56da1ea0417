//! Reading an audit log ([`AuditRecord`]s as JSON Lines) for `permissions replay` and
//! `permissions --lint --audit`: every line or an error naming it, never a partial read.
//!
//! ```
//! use oauth_grpc::report::{AuditLogError, Replay};
//! use oauth_grpc::PolicySet;
//!
//! let log = "{\"schema_version\":1,\"time\":\"t\",\"decision\":\"allow\",\"code\":0,\
//!     \"reason\":\"public\",\"rpc\":\"/a.B/C\",\"authenticated\":false}\n\nnot json\n";
//! let err: AuditLogError = Replay::new(&PolicySet::new()).run(log.as_bytes()).unwrap_err();
//! assert_eq!(err.line(), 3); // the blank line 2 is skipped, line 3 is refused
//! ```

use std::fmt;
use std::io::BufRead;

use crate::audit::{AuditRecord, SCHEMA_VERSION};

/// An audit log that cannot be read completely: a line that is not an audit record, a record
/// of a schema version this build does not know, or an I/O error. A replay or lint over a
/// log stops at the first such line, so that its answer is never mistaken for the answer of
/// the whole log.
///
/// ```
/// use oauth_grpc::PolicySet;
/// use oauth_grpc::report::Replay;
///
/// let log = r#"{"schema_version":9,"time":"t","decision":"deny","code":16,"reason":"x","rpc":"/a.B/C","authenticated":false}"#;
/// let err = Replay::new(&PolicySet::new()).run(log.as_bytes()).unwrap_err();
/// assert_eq!(err.line(), 1);
/// assert!(err.to_string().starts_with("line 1: audit schema_version 9 is not supported"));
/// ```
#[derive(Debug)]
pub struct AuditLogError {
    line: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Io(std::io::Error),
    Json(serde_json::Error),
    Version(u32),
    Decision(String),
}

impl AuditLogError {
    /// The line of the log (counted from 1) that could not be read.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Replay};
    /// let err = Replay::new(&PolicySet::new()).run(&b"{}"[..]).unwrap_err();
    /// assert_eq!(err.line(), 1);
    /// ```
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Display for AuditLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        match &self.kind {
            Kind::Io(error) => write!(f, "line {line}: cannot read the audit log: {error}"),
            Kind::Json(error) => write!(
                f,
                "line {line}: not an audit record ({error}); the log must hold one JSON audit record per line (JSON Lines, as `oauth_grpc::audit::JsonLines` writes them): fix or remove the line"
            ),
            Kind::Version(version) => write!(
                f,
                "line {line}: audit schema_version {version} is not supported (this build reads version {SCHEMA_VERSION}); run a `permissions` built with the oauth-grpc release that wrote the log"
            ),
            Kind::Decision(decision) => write!(
                f,
                "line {line}: decision {decision:?} is neither \"allow\" nor \"deny\"; fix or remove the line"
            ),
        }
    }
}

impl std::error::Error for AuditLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Io(error) => Some(error),
            Kind::Json(error) => Some(error),
            Kind::Version(_) | Kind::Decision(_) => None,
        }
    }
}

/// Only the version, to tell a record of another schema from a malformed line.
#[derive(serde::Deserialize)]
struct Version {
    schema_version: u32,
}

/// Calls `each` with every record of the log and its line number; blank lines are skipped.
pub(super) fn read_records(
    mut reader: impl BufRead,
    mut each: impl FnMut(usize, AuditRecord<'static>),
) -> Result<(), AuditLogError> {
    let mut text = String::new();
    let mut line = 0;
    loop {
        line += 1;
        text.clear();
        match reader.read_line(&mut text) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error) => {
                return Err(AuditLogError {
                    line,
                    kind: Kind::Io(error),
                });
            }
        }
        let trimmed = text.trim_start_matches('\u{feff}').trim();
        if trimmed.is_empty() {
            continue;
        }
        let record = parse(trimmed).map_err(|kind| AuditLogError { line, kind })?;
        each(line, record);
    }
}

fn parse(line: &str) -> Result<AuditRecord<'static>, Kind> {
    let record = match serde_json::from_str::<AuditRecord<'static>>(line) {
        Ok(record) => record,
        // A record of another version may not fit this one's fields: say which it is.
        Err(error) => {
            return Err(match serde_json::from_str::<Version>(line) {
                Ok(Version { schema_version }) if schema_version != SCHEMA_VERSION => {
                    Kind::Version(schema_version)
                }
                _ => Kind::Json(error),
            });
        }
    };
    if record.schema_version != SCHEMA_VERSION {
        return Err(Kind::Version(record.schema_version));
    }
    if record.decision != "allow" && record.decision != "deny" {
        return Err(Kind::Decision(record.decision.into_owned()));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"schema_version":1,"time":"t","decision":"allow","code":0,"reason":"public","rpc":"/a.B/C","authenticated":false}"#;

    fn lines(log: &str) -> Result<Vec<usize>, AuditLogError> {
        let mut seen = Vec::new();
        read_records(log.as_bytes(), |line, _| seen.push(line))?;
        Ok(seen)
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted() {
        let log = format!("{GOOD}\n\n  \n{GOOD}\r\n{GOOD}");
        assert_eq!(lines(&log).ok(), Some(vec![1, 4, 5]));
        assert_eq!(lines("").ok(), Some(vec![]));
    }

    #[test]
    fn a_bad_line_is_named() {
        let cases = [
            (
                format!("{GOOD}\n{{\"schema_version\":1}}\n"),
                2,
                "not an audit record",
            ),
            (format!("{GOOD}\n{GOOD}\n[1,2]"), 3, "not an audit record"),
            (
                GOOD.replace("\"schema_version\":1", "\"schema_version\":2"),
                1,
                "schema_version 2 is not supported",
            ),
            // Another version with other fields: still named as a version, not as bad JSON.
            (
                r#"{"schema_version":3,"when":5}"#.to_owned(),
                1,
                "schema_version 3 is not supported",
            ),
            (
                GOOD.replace("\"allow\"", "\"maybe\""),
                1,
                "decision \"maybe\" is neither",
            ),
        ];
        for (log, line, message) in cases {
            let err = lines(&log).expect_err(&log);
            assert_eq!(err.line(), line, "{log}");
            assert!(err.to_string().contains(message), "{err}");
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_of_its_line() {
        let mut log = format!("{GOOD}\n").into_bytes();
        log.extend_from_slice(b"\xff\xfe\n");
        let err = read_records(&log[..], |_, _| {}).expect_err("not UTF-8");
        assert_eq!(err.line(), 2);
        assert!(
            err.to_string().contains("cannot read the audit log"),
            "{err}"
        );
    }
}
