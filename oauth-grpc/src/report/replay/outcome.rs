//! What a [`Replay`](super::Replay) found: [`ReplayOutcome`] and its groups, as text for a
//! reviewer and JSON for tools.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::audit::AuditRecord;

use super::REPLAY_SCHEMA_VERSION;

/// Which way a flipped call flips.
///
/// ```
/// use oauth_grpc::report::Direction;
/// assert_eq!(Direction::AllowedToDenied.as_str(), "allowed_to_denied");
/// assert_eq!(Direction::DeniedToAllowed.to_string(), "denied → allowed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Direction {
    /// Admitted when recorded, refused now: a caller loses access.
    AllowedToDenied,
    /// Refused when recorded, admitted now: a caller gains access.
    DeniedToAllowed,
}

impl Direction {
    /// The direction's name in JSON: `allowed_to_denied` or `denied_to_allowed`.
    ///
    /// ```
    /// # use oauth_grpc::report::Direction;
    /// assert_eq!(Direction::DeniedToAllowed.as_str(), "denied_to_allowed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AllowedToDenied => "allowed_to_denied",
            Self::DeniedToAllowed => "denied_to_allowed",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AllowedToDenied => "allowed → denied",
            Self::DeniedToAllowed => "denied → allowed",
        })
    }
}

/// One record standing for its group in a [`ReplayOutcome`]: the first of the log.
///
/// ```
/// # use oauth_grpc::report::Replay;
/// let log = r#"{"schema_version":1,"time":"t","decision":"allow","code":0,"reason":"public","rpc":"/orders.v1.Orders/WhoAmI","authenticated":false,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#;
/// let outcome = Replay::new(&examples::policies()).run(log.as_bytes())?;
/// let example = &outcome.flips[0].example;
/// assert_eq!((example.line, example.reason_before.as_str()), (1, "public"));
/// assert_eq!(example.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// # Ok::<(), oauth_grpc::report::AuditLogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Example {
    /// Its line in the log, counted from 1.
    pub line: usize,
    /// When the call was made (the record's `time`).
    pub time: String,
    /// The token's `sub`, if the record holds a verified token.
    pub subject: Option<String>,
    /// The token's `client_id`.
    pub client_id: Option<String>,
    /// The call's W3C trace id.
    pub trace_id: Option<String>,
    /// The token's fingerprint, to find its other calls in the log.
    pub token_fingerprint: Option<String>,
    /// The recorded reason (`authorized`, `public`, `insufficient_scope`, …).
    pub reason_before: String,
    /// The reason now: `authorized`, `public`, a refusal code, `no_rule` for a path without a
    /// rule, `not_in_descriptors` for a removed rpc.
    pub reason_now: String,
}

impl Example {
    pub(super) fn of(line: usize, record: &AuditRecord<'_>, reason_now: &str) -> Self {
        let owned = |value: &Option<Cow<'_, str>>| value.as_ref().map(|v| v.to_string());
        Self {
            line,
            time: record.time.to_string(),
            subject: owned(&record.subject),
            client_id: owned(&record.client_id),
            trace_id: owned(&record.trace_id),
            token_fingerprint: owned(&record.token_fingerprint),
            reason_before: record.reason.to_string(),
            reason_now: reason_now.to_owned(),
        }
    }
}

/// The calls of one rpc that the rules now decide the other way, in one direction.
///
/// ```
/// # use oauth_grpc::report::{Direction, Replay};
/// let log = r#"{"schema_version":1,"time":"t","decision":"allow","code":0,"reason":"public","rpc":"/orders.v1.Orders/WhoAmI","authenticated":false}"#;
/// let outcome = Replay::new(&examples::policies()).run(log.as_bytes())?;
/// let flip = &outcome.flips[0];
/// assert_eq!((flip.rpc.as_str(), flip.count), ("/orders.v1.Orders/WhoAmI", 1));
/// assert_eq!(flip.rule_now, "authenticated");
/// # Ok::<(), oauth_grpc::report::AuditLogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Flip {
    /// The path, `/package.Service/Method`.
    pub rpc: String,
    /// Which way.
    pub direction: Direction,
    /// How many records flip.
    pub count: u64,
    /// The rule the example record names (as the layer wrote it), if any.
    pub rule_before: Option<String>,
    /// The rule that decides the path now, with its method's options
    /// (`all of: orders:refund; once; delegation: forbid`).
    pub rule_now: String,
    /// The first such record.
    pub example: Example,
}

/// The recorded calls of one rpc that now has no rule ([`ReplayOutcome::unruled`]), or no
/// longer exists ([`ReplayOutcome::removed`]).
///
/// ```
/// # use oauth_grpc::{PolicySet, report::Replay};
/// let log = r#"{"schema_version":1,"time":"t","decision":"allow","code":0,"reason":"public","rpc":"/a.B/C","authenticated":false}"#;
/// let outcome = Replay::new(&PolicySet::new()).run(log.as_bytes())?;
/// let group = &outcome.unruled[0];
/// assert_eq!((group.count, group.allowed_before), (1, 1));
/// assert_eq!(group.example.reason_now, "no_rule");
/// # Ok::<(), oauth_grpc::report::AuditLogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PathGroup {
    /// The path, `/package.Service/Method`.
    pub rpc: String,
    /// How many records call it.
    pub count: u64,
    /// How many of them were admitted: each is a call that would now fail.
    pub allowed_before: u64,
    /// The first such record.
    pub example: Example,
}

/// What a [`Replay`](super::Replay) found: every record of the log is in exactly one of
/// [`unchanged`](Self::unchanged), [`flips`](Self::flips), [`unruled`](Self::unruled) and
/// [`removed`](Self::removed). `Display` writes it for a reviewer; [`to_json`](Self::to_json)
/// for tools.
///
/// ```
/// # use oauth_grpc::report::Replay;
/// let log = r#"{"schema_version":1,"time":"t","decision":"allow","code":0,"reason":"public","rpc":"/orders.v1.Orders/WhoAmI","authenticated":false}"#;
/// let outcome = Replay::new(&examples::policies()).run(log.as_bytes())?;
/// assert!(outcome.to_string().contains("/orders.v1.Orders/WhoAmI: 1 call"));
/// assert!(outcome.to_json().contains(r#""direction": "allowed_to_denied""#));
/// # Ok::<(), oauth_grpc::report::AuditLogError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayOutcome {
    /// How many records the log holds (blank lines are not records).
    pub records: u64,
    /// How many are decided as they were recorded (the reason of a refusal may differ).
    pub unchanged: u64,
    /// The records decided the other way, by rpc and direction, sorted.
    pub flips: Vec<Flip>,
    /// Records of paths without a rule now (refused as `no_rule`), by rpc, sorted.
    pub unruled: Vec<PathGroup>,
    /// Records of rpcs the descriptors no longer hold, by rpc, sorted (only with
    /// [`Replay::descriptors`](super::Replay::descriptors)).
    pub removed: Vec<PathGroup>,
}

impl ReplayOutcome {
    /// Whether a caller would be treated otherwise: a flip either way, or a recorded
    /// admitted call to a path that now has no rule or no longer exists. `permissions
    /// replay` exits with 1 then (unless `--allow-flips`).
    ///
    /// ```
    /// # use oauth_grpc::report::ReplayOutcome;
    /// assert!(!ReplayOutcome::default().would_change());
    /// ```
    pub fn would_change(&self) -> bool {
        !self.flips.is_empty()
            || self
                .unruled
                .iter()
                .chain(&self.removed)
                .any(|group| group.allowed_before > 0)
    }

    /// How many records flip, either way.
    ///
    /// ```
    /// # use oauth_grpc::report::ReplayOutcome;
    /// assert_eq!(ReplayOutcome::default().flipped(), 0);
    /// ```
    pub fn flipped(&self) -> u64 {
        self.flips.iter().map(|flip| flip.count).sum()
    }

    /// The outcome as a JSON document (its fields: [`Replay`](super::Replay)).
    ///
    /// ```
    /// # use oauth_grpc::report::ReplayOutcome;
    /// let json: serde_json::Value = serde_json::from_str(&ReplayOutcome::default().to_json())?;
    /// assert_eq!(json["schema_version"], 1);
    /// assert_eq!(json["totals"]["records"], 0);
    /// assert_eq!(json["would_change"], false);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let count = |groups: &[PathGroup]| groups.iter().map(|g| g.count).sum::<u64>();
        // Structs, not a JSON map: the fields keep the documented order.
        #[derive(Serialize)]
        struct Totals {
            records: u64,
            unchanged: u64,
            flipped: u64,
            unruled: u64,
            removed: u64,
        }
        #[derive(Serialize)]
        struct Document<'a> {
            schema_version: u32,
            totals: Totals,
            would_change: bool,
            flips: &'a [Flip],
            unruled: &'a [PathGroup],
            removed: &'a [PathGroup],
        }
        let document = Document {
            schema_version: REPLAY_SCHEMA_VERSION,
            totals: Totals {
                records: self.records,
                unchanged: self.unchanged,
                flipped: self.flipped(),
                unruled: count(&self.unruled),
                removed: count(&self.removed),
            },
            would_change: self.would_change(),
            flips: &self.flips,
            unruled: &self.unruled,
            removed: &self.removed,
        };
        let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
        out.push('\n');
        out
    }
}

impl fmt::Display for ReplayOutcome {
    /// The outcome for a reviewer: totals, then the flips, the paths without a rule and the
    /// removed rpcs, each with one example record.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |groups: &[PathGroup]| groups.iter().map(|g| g.count).sum::<u64>();
        writeln!(
            f,
            "replayed {} against the compiled rules: {} unchanged, {} flipped, {} without a rule, {} removed",
            calls(self.records, "record"),
            self.unchanged,
            self.flipped(),
            count(&self.unruled),
            count(&self.removed),
        )?;
        for direction in [Direction::AllowedToDenied, Direction::DeniedToAllowed] {
            let mut flips = self
                .flips
                .iter()
                .filter(|flip| flip.direction == direction)
                .peekable();
            if flips.peek().is_none() {
                continue;
            }
            writeln!(f, "\n{direction}:")?;
            for flip in flips {
                writeln!(f, "  {}: {}", shown(&flip.rpc), calls(flip.count, "call"))?;
                writeln!(f, "    rule now:  {}", flip.rule_now)?;
                if let Some(before) = &flip.rule_before {
                    writeln!(f, "    recorded:  {}", shown(before))?;
                }
                write_example(f, &flip.example)?;
            }
        }
        for (title, groups) in [
            ("without a rule now (refused as no_rule)", &self.unruled),
            ("rpcs the descriptors no longer hold", &self.removed),
        ] {
            if groups.is_empty() {
                continue;
            }
            writeln!(f, "\n{title}:")?;
            for group in groups {
                writeln!(
                    f,
                    "  {}: {}, {} allowed before",
                    shown(&group.rpc),
                    calls(group.count, "call"),
                    group.allowed_before
                )?;
                write_example(f, &group.example)?;
            }
        }
        Ok(())
    }
}

/// `1 call`, `2 calls`.
fn calls(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn write_example(f: &mut fmt::Formatter<'_>, example: &Example) -> fmt::Result {
    write!(
        f,
        "    e.g.       line {}, {}",
        example.line,
        shown(&example.time)
    )?;
    let fields = [
        ("subject", &example.subject),
        ("client", &example.client_id),
        ("trace", &example.trace_id),
        ("token", &example.token_fingerprint),
    ];
    for (label, value) in fields {
        if let Some(value) = value {
            write!(f, ", {label} {}", shown(value))?;
        }
    }
    writeln!(
        f,
        ": {} → {}",
        shown(&example.reason_before),
        shown(&example.reason_now)
    )
}

/// Text from the log as it is when it is plain, quoted and escaped otherwise, so that a
/// crafted record cannot forge lines of the output.
fn shown(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() && c != '"' && (c == ' ' || !c.is_whitespace()));
    if plain {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{text:?}"))
    }
}
