//! [`Lint`]: warnings about a rule set that compiles but looks wrong (`permissions --lint`):
//! scopes of the catalog no rule uses, rules naming scopes outside it, methods looser than
//! their service's default, and — with an audit log — scopes no token was granted and
//! methods no recorded caller could reach. Each warning has a stable [`LintCode`],
//! documented in `docs/lint.md`.
//!
//! ```
//! use oauth_grpc::report::{Lint, LintCode};
//!
//! oauth_grpc::scopes! {
//!     /// The orders scopes, with one that nothing uses.
//!     pub enum Scopes {
//!         Read = "orders:read",
//!         Write = "orders:write",
//!         Cancel = "orders:cancel",
//!         Admin = "orders:admin",
//!         Refund = "orders:refund",
//!         Audit = "orders:audit",
//!     }
//! }
//!
//! let policies = examples::policies();
//! let report = Lint::new(&policies).catalog::<Scopes>().check();
//! assert_eq!(report.warnings.len(), 1);
//! assert_eq!(report.warnings[0].code, LintCode::UnusedScope);
//! assert_eq!(report.warnings[0].item, "orders:audit");
//! assert!(report.to_string().starts_with("warning[unused-scope]: scope `orders:audit`"));
//!
//! // The example's own catalog matches its rules.
//! assert!(Lint::new(&policies).catalog::<examples::OrderScope>().check().is_clean());
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::io::BufRead;

use serde::Serialize;

use crate::policy::{PolicySet, Rule};
use crate::scope::{Scope, ScopeCatalog, ScopeSet};

use super::audit_log::{AuditLogError, read_records};

/// The version of the lint's JSON document ([`LintReport::to_json`]); bumped on any
/// incompatible change.
///
/// ```
/// assert_eq!(oauth_grpc::report::LINT_SCHEMA_VERSION, 1);
/// ```
pub const LINT_SCHEMA_VERSION: u32 = 1;

/// What a lint warning is about. The names ([`as_str`](Self::as_str)) are stable; each has
/// a section in `docs/lint.md`.
///
/// ```
/// use oauth_grpc::report::LintCode;
///
/// assert_eq!(LintCode::UnusedScope.as_str(), "unused-scope");
/// assert_eq!("looser-than-default".parse(), Ok(LintCode::LooserThanDefault));
/// assert!("unused_scope".parse::<LintCode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LintCode {
    /// A scope of a registered catalog that no rule requires.
    UnusedScope,
    /// A rule requires a scope that no registered catalog holds.
    ScopeOutsideCatalog,
    /// A method's own rule admits every call its service's default admits, and more.
    LooserThanDefault,
    /// A scope some rule requires that no token in the audit log was granted.
    ScopeNeverGranted,
    /// A method no verified caller in the audit log holds the scopes for.
    UnreachableMethod,
}

impl LintCode {
    /// Every code, in the order warnings are listed.
    ///
    /// ```
    /// # use oauth_grpc::report::LintCode;
    /// assert_eq!(LintCode::ALL.len(), 5);
    /// ```
    pub const ALL: [Self; 5] = [
        Self::UnusedScope,
        Self::ScopeOutsideCatalog,
        Self::LooserThanDefault,
        Self::ScopeNeverGranted,
        Self::UnreachableMethod,
    ];

    /// The code's stable name, as `warning[…]` shows it and `--allow` takes it.
    ///
    /// ```
    /// # use oauth_grpc::report::LintCode;
    /// assert_eq!(LintCode::UnreachableMethod.as_str(), "unreachable-method");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnusedScope => "unused-scope",
            Self::ScopeOutsideCatalog => "scope-outside-catalog",
            Self::LooserThanDefault => "looser-than-default",
            Self::ScopeNeverGranted => "scope-never-granted",
            Self::UnreachableMethod => "unreachable-method",
        }
    }
}

impl fmt::Display for LintCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LintCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown lint code {s:?}; the codes are {}",
                    names.join(", ")
                )
            })
    }
}

/// One finding of [`Lint::check`].
///
/// ```
/// # use oauth_grpc::report::{Lint, LintCode};
/// # oauth_grpc::scopes! { pub enum S { A = "a" } }
/// let policies = oauth_grpc::PolicySet::new();
/// let warning = &Lint::new(&policies).catalog::<S>().check().warnings[0];
/// assert_eq!((warning.code, warning.item.as_str()), (LintCode::UnusedScope, "a"));
/// assert!(warning.to_string().starts_with("warning[unused-scope]: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Warning {
    /// What it is about.
    pub code: LintCode,
    /// The scope or the path it is about, as `--allow CODE=ITEM` names it.
    pub item: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Warning {
    /// `warning[code]: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning[{}]: {}", self.code, self.message)
    }
}

/// The warnings of a [`Lint`], sorted by code and item. `Display` writes one line per
/// warning; [`to_json`](Self::to_json) a document for tools.
///
/// ```
/// # use oauth_grpc::report::{Lint, LintReport};
/// let policies = examples::policies();
/// let report: LintReport = Lint::new(&policies).check();
/// assert!(report.is_clean());
/// assert_eq!(report.to_string(), "");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LintReport {
    /// The findings.
    pub warnings: Vec<Warning>,
}

impl LintReport {
    /// Whether there is nothing to report.
    ///
    /// ```
    /// assert!(oauth_grpc::report::LintReport::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }

    /// The report as JSON:
    /// `{"schema_version": 1, "warnings": [{"code", "item", "message"}]}`, stable within
    /// [`LINT_SCHEMA_VERSION`].
    ///
    /// ```
    /// let json: serde_json::Value =
    ///     serde_json::from_str(&oauth_grpc::report::LintReport::default().to_json())?;
    /// assert_eq!(json["schema_version"], 1);
    /// assert_eq!(json["warnings"], serde_json::json!([]));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Document<'a> {
            schema_version: u32,
            warnings: &'a [Warning],
        }
        let document = Document {
            schema_version: LINT_SCHEMA_VERSION,
            warnings: &self.warnings,
        };
        let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
        out.push('\n');
        out
    }
}

impl fmt::Display for LintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for warning in &self.warnings {
            writeln!(f, "{warning}")?;
        }
        Ok(())
    }
}

/// What an audit log says about the tokens that called.
#[derive(Debug, Clone, Default)]
struct Granted {
    records: u64,
    verified: u64,
    /// Every scope any verified token held.
    scopes: BTreeSet<String>,
    /// The distinct scope sets of the verified tokens.
    sets: HashSet<ScopeSet>,
}

/// Checks a [`PolicySet`] for rules that compile but look wrong. See [`LintCode`] for what
/// it finds, and `docs/lint.md` for why each matters and how to fix or silence it.
///
/// ```
/// use oauth_grpc::report::Lint;
///
/// let policies = examples::policies();
/// let report = Lint::new(&policies)
///     .catalog::<examples::OrderScope>()
///     .audit(std::io::empty())? // e.g. a `BufReader` of the audit log
///     .check();
/// // No verified caller in an empty log: every scope is never granted.
/// assert!(!report.is_clean());
/// # Ok::<(), oauth_grpc::report::AuditLogError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lint<'a> {
    policies: &'a PolicySet,
    /// Registered catalogs: type name, scopes.
    catalogs: Vec<(&'static str, &'static [Scope])>,
    granted: Option<Granted>,
    allowed: Vec<(LintCode, Option<String>)>,
}

impl<'a> Lint<'a> {
    /// A lint of `policies`, without a catalog or an audit log: only
    /// [`LooserThanDefault`](LintCode::LooserThanDefault) can be found until one is given.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, report::Lint};
    /// assert!(Lint::new(&PolicySet::new()).check().is_clean());
    /// ```
    pub fn new(policies: &'a PolicySet) -> Self {
        Self {
            policies,
            catalogs: Vec::new(),
            granted: None,
            allowed: Vec::new(),
        }
    }

    /// Registers the scopes of a [`scopes!`](crate::scopes) catalog: enables
    /// [`UnusedScope`](LintCode::UnusedScope) and
    /// [`ScopeOutsideCatalog`](LintCode::ScopeOutsideCatalog). Several catalogs may be
    /// registered; a scope is in the catalog when it is in one of them.
    ///
    /// ```
    /// # use oauth_grpc::report::Lint;
    /// let policies = examples::policies();
    /// assert!(Lint::new(&policies).catalog::<examples::OrderScope>().check().is_clean());
    /// ```
    #[must_use]
    pub fn catalog<C: ScopeCatalog>(self) -> Self {
        self.catalog_scopes(std::any::type_name::<C>(), C::ALL)
    }

    /// Registers a catalog given as its name and its scopes, like [`catalog`](Self::catalog).
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, Scope, report::Lint};
    /// const SCOPES: &[Scope] = &[Scope::from_static("legacy:read")];
    /// let policies = PolicySet::new();
    /// let report = Lint::new(&policies).catalog_scopes("legacy", SCOPES).check();
    /// assert!(report.warnings[0].message.contains("the catalog `legacy`"));
    /// ```
    #[must_use]
    pub fn catalog_scopes(mut self, name: &'static str, scopes: &'static [Scope]) -> Self {
        self.catalogs.push((name, scopes));
        self
    }

    /// Reads an audit log (one [`AuditRecord`](crate::audit::AuditRecord) per line, blank
    /// lines skipped): enables [`ScopeNeverGranted`](LintCode::ScopeNeverGranted) and
    /// [`UnreachableMethod`](LintCode::UnreachableMethod), from the scopes of its verified
    /// tokens.
    ///
    /// # Errors
    ///
    /// [`AuditLogError`], naming the line, when a line is not an audit record of a schema
    /// version this build reads, or cannot be read.
    ///
    /// ```
    /// # use oauth_grpc::report::Lint;
    /// let policies = examples::policies();
    /// assert_eq!(Lint::new(&policies).audit(&b"nonsense\n"[..]).unwrap_err().line(), 1);
    /// ```
    pub fn audit(mut self, reader: impl BufRead) -> Result<Self, AuditLogError> {
        let mut granted = Granted::default();
        read_records(reader, |_, record| {
            granted.records += 1;
            let Some(scopes) = record.granted_scopes.filter(|_| record.authenticated) else {
                return;
            };
            granted.verified += 1;
            let set: ScopeSet = scopes.iter().collect();
            granted.scopes.extend(set.iter().map(str::to_owned));
            granted.sets.insert(set);
        })?;
        self.granted = Some(granted);
        Ok(self)
    }

    /// Silences warnings of `code`: every one, or with `item` only the one about that scope
    /// or path (the warning's [`item`](Warning::item)). For findings that are right on
    /// purpose; `docs/lint.md` says when that is.
    ///
    /// ```
    /// # use oauth_grpc::report::{Lint, LintCode};
    /// # oauth_grpc::scopes! { pub enum S { A = "a", B = "b" } }
    /// let policies = oauth_grpc::PolicySet::new();
    /// let lint = Lint::new(&policies).catalog::<S>();
    /// assert_eq!(lint.clone().allow(LintCode::UnusedScope, Some("a")).check().warnings.len(), 1);
    /// assert!(lint.allow(LintCode::UnusedScope, None).check().is_clean());
    /// ```
    #[must_use]
    pub fn allow(mut self, code: LintCode, item: Option<&str>) -> Self {
        self.allowed.push((code, item.map(str::to_owned)));
        self
    }

    /// Runs every check that what was given enables.
    ///
    /// ```
    /// # use oauth_grpc::report::Lint;
    /// let policies = examples::policies();
    /// let report = Lint::new(&policies).catalog::<examples::OrderScope>().check();
    /// assert!(report.is_clean(), "{report}");
    /// ```
    pub fn check(&self) -> LintReport {
        let mut warnings = Vec::new();
        // Which paths require each scope, over every method's enforced rule.
        let mut required: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
        for method in self.policies.methods() {
            for scope in method.rule().scopes() {
                let paths = required.entry(scope.as_str()).or_default();
                if !paths.contains(&method.path()) {
                    paths.push(method.path());
                }
            }
        }
        if !self.catalogs.is_empty() {
            self.catalog_checks(&required, &mut warnings);
        }
        self.default_checks(&mut warnings);
        if let Some(granted) = &self.granted {
            self.audit_checks(granted, &required, &mut warnings);
        }
        warnings.retain(|warning| {
            !self.allowed.iter().any(|(code, item)| {
                *code == warning.code && item.as_ref().is_none_or(|item| *item == warning.item)
            })
        });
        warnings.sort_by(|a, b| (a.code, &a.item).cmp(&(b.code, &b.item)));
        warnings.dedup();
        LintReport { warnings }
    }

    fn catalog_names(&self) -> String {
        let names: Vec<String> = self
            .catalogs
            .iter()
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        names.join(", ")
    }

    fn catalog_checks(
        &self,
        required: &BTreeMap<&'static str, Vec<&'static str>>,
        warnings: &mut Vec<Warning>,
    ) {
        let mut known: BTreeSet<&'static str> = BTreeSet::new();
        for (name, scopes) in &self.catalogs {
            for scope in scopes.iter() {
                known.insert(scope.as_str());
                if !required.contains_key(scope.as_str()) {
                    warnings.push(Warning {
                        code: LintCode::UnusedScope,
                        item: scope.as_str().to_owned(),
                        message: format!(
                            "scope `{scope}` of the catalog `{name}` is required by no rule; require it where it is meant to apply (`#[require_scope(\"{scope}\")]`), or remove it from the catalog"
                        ),
                    });
                }
            }
        }
        let several = self.catalogs.len() > 1;
        for (scope, paths) in required {
            if known.contains(scope) {
                continue;
            }
            let hint = near_miss(scope, &known)
                .map(|near| format!(" (did you mean `{near}`?)"))
                .unwrap_or_default();
            warnings.push(Warning {
                code: LintCode::ScopeOutsideCatalog,
                item: (*scope).to_owned(),
                message: format!(
                    "{} {} `{scope}`, which is not in {} {}{hint}; add it to the catalog, or require the catalog's scope instead of the literal",
                    paths.join(", "),
                    if paths.len() == 1 { "requires" } else { "require" },
                    if several { "any of the catalogs" } else { "the catalog" },
                    self.catalog_names(),
                ),
            });
        }
    }

    fn default_checks(&self, warnings: &mut Vec<Warning>) {
        for service in self.policies.services() {
            let Some(default) = service.default_rule() else {
                continue;
            };
            for method in service.methods() {
                let rule = method.rule();
                // An explicit `#[public]` is a decision stated on the method; not flagged.
                if method.rule_is_default() || rule.is_public() {
                    continue;
                }
                let Some(why) = looser(rule, default) else {
                    continue;
                };
                warnings.push(Warning {
                    code: LintCode::LooserThanDefault,
                    item: method.path().to_owned(),
                    message: format!(
                        "{} ({rule}) is looser than its service's default ({default}): {why}; remove the method's rule to take the default, or require what it needs on top of the default",
                        method.path(),
                    ),
                });
            }
        }
    }

    fn audit_checks(
        &self,
        granted: &Granted,
        required: &BTreeMap<&'static str, Vec<&'static str>>,
        warnings: &mut Vec<Warning>,
    ) {
        let seen = format!(
            "{} audit records, {} with a verified token",
            granted.records, granted.verified
        );
        for (scope, paths) in required {
            if granted.scopes.contains(*scope) {
                continue;
            }
            warnings.push(Warning {
                code: LintCode::ScopeNeverGranted,
                item: (*scope).to_owned(),
                message: format!(
                    "scope `{scope}` (required by {}) was granted to no token in the audit log ({seen}); check that the identity provider issues it to the clients that need it, or stop requiring it",
                    paths.join(", "),
                ),
            });
        }
        for method in self.policies.methods() {
            let rule = method.rule();
            if rule.is_public() || granted.sets.iter().any(|set| rule.is_satisfied_by(set)) {
                continue;
            }
            warnings.push(Warning {
                code: LintCode::UnreachableMethod,
                item: method.path().to_owned(),
                message: format!(
                    "no verified caller in the audit log could call {} ({rule}): no token of the log holds the scopes it needs ({seen}); grant them to the clients meant to call it, or remove the method if none is",
                    method.path(),
                ),
            });
        }
    }
}

/// Why `rule` is strictly looser than `default` — it admits every token the default admits,
/// and some the default refuses — or `None` when it is not. A rule that asks for other
/// scopes than the default (neither implies the other) is a different requirement, not a
/// looser one.
fn looser(rule: Rule, default: Rule) -> Option<String> {
    if !implies(default, rule) || implies(rule, default) {
        return None;
    }
    let names = |scopes: &[&Scope]| {
        let names: Vec<String> = scopes.iter().map(|s| format!("`{s}`")).collect();
        names.join(", ")
    };
    Some(match (rule, default) {
        (Rule::Authenticated, _) => "any valid token passes it, whatever its scopes".to_owned(),
        (Rule::AllOf(own), Rule::AllOf(theirs)) => {
            let missing: Vec<&Scope> = theirs.iter().filter(|s| !own.contains(s)).collect();
            format!("it does not require {}", names(&missing))
        }
        (Rule::AnyOf(own), Rule::AnyOf(theirs)) => {
            let extra: Vec<&Scope> = own.iter().filter(|s| !theirs.contains(s)).collect();
            format!("it also accepts {}", names(&extra))
        }
        (Rule::AnyOf(_), Rule::AllOf(_)) => {
            "it accepts any one of the scopes the default requires all of".to_owned()
        }
        _ => "it admits tokens the default refuses".to_owned(),
    })
}

/// Whether every token satisfying `a` satisfies `b` (the scope part of the rules).
fn implies(a: Rule, b: Rule) -> bool {
    match (a, b) {
        (_, Rule::Public) => true,
        (Rule::Public, _) => false,
        (_, Rule::Authenticated) => true,
        (Rule::Authenticated, _) => false,
        (Rule::AllOf(a), Rule::AllOf(b)) => b.iter().all(|s| a.contains(s)),
        (Rule::AllOf(a), Rule::AnyOf(b)) => a.iter().any(|s| b.contains(s)),
        // A token holding just one of `a` must hold every one of `b`.
        (Rule::AnyOf(a), Rule::AllOf(b)) => a.iter().all(|s| b.iter().all(|t| s == t)),
        (Rule::AnyOf(a), Rule::AnyOf(b)) => a.iter().all(|s| b.contains(s)),
    }
}

/// The known scope `written` most likely misspells: at most two edits away (the closest).
fn near_miss<'a>(written: &str, known: &BTreeSet<&'a str>) -> Option<&'a str> {
    known
        .iter()
        .map(|name| (edit_distance(written, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{MethodPolicy, ServicePolicy};

    const A: Scope = Scope::from_static("a");
    const B: Scope = Scope::from_static("b");
    const C: Scope = Scope::from_static("c");

    #[test]
    fn looser_means_strictly_weaker() {
        let all_ab = Rule::AllOf(&[A, B]);
        let any_ab = Rule::AnyOf(&[A, B]);
        let cases = [
            // (method's rule, default, looser?)
            (Rule::Authenticated, Rule::AllOf(&[A]), true),
            (Rule::Authenticated, any_ab, true),
            (Rule::Authenticated, Rule::Authenticated, false),
            (Rule::AllOf(&[A]), all_ab, true),
            (any_ab, all_ab, true),
            (Rule::AnyOf(&[A, B, C]), any_ab, true),
            // Stricter or equal: not looser.
            (all_ab, Rule::AllOf(&[A]), false),
            (all_ab, all_ab, false),
            (Rule::AllOf(&[A]), any_ab, false),
            (Rule::AllOf(&[A]), Rule::Authenticated, false),
            // A different requirement: neither implies the other.
            (Rule::AllOf(&[C]), Rule::AllOf(&[A]), false),
            (Rule::AnyOf(&[A, C]), any_ab, false),
        ];
        for (rule, default, expected) in cases {
            assert_eq!(
                looser(rule, default).is_some(),
                expected,
                "{rule} vs {default}"
            );
        }
        assert_eq!(
            looser(Rule::AllOf(&[A]), all_ab).as_deref(),
            Some("it does not require `b`")
        );
        assert_eq!(
            looser(Rule::AnyOf(&[A, B, C]), any_ab).as_deref(),
            Some("it also accepts `c`")
        );
    }

    #[test]
    fn edit_distance_and_near_misses() {
        assert_eq!(edit_distance("orders:reed", "orders:read"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let known: BTreeSet<&str> = ["orders:read", "orders:write"].into_iter().collect();
        assert_eq!(near_miss("orders:raed", &known), Some("orders:read"));
        assert_eq!(near_miss("billing:read", &known), None);
    }

    static METHODS: [MethodPolicy; 5] = [
        MethodPolicy::new("Get", "/t.S/Get", "get", Rule::AllOf(&[A])).from_default(),
        MethodPolicy::new("Who", "/t.S/Who", "who", Rule::Authenticated),
        MethodPolicy::new("Open", "/t.S/Open", "open", Rule::Public),
        MethodPolicy::new("Both", "/t.S/Both", "both", Rule::AllOf(&[A, B])),
        MethodPolicy::new(
            "Typo",
            "/t.S/Typo",
            "typo",
            Rule::AnyOf(&[Scope::from_static("bb")]),
        ),
    ];
    static SERVICE: ServicePolicy =
        ServicePolicy::new("t.S", &METHODS).with_default(Rule::AllOf(&[A]));
    const CATALOG: &[Scope] = &[A, B, C];

    fn codes(report: &LintReport) -> Vec<(LintCode, &str)> {
        report
            .warnings
            .iter()
            .map(|w| (w.code, w.item.as_str()))
            .collect()
    }

    #[test]
    fn catalog_and_default_checks() {
        let policies = PolicySet::new().policy(&SERVICE);
        let report = Lint::new(&policies)
            .catalog_scopes("TestScope", CATALOG)
            .check();
        assert_eq!(
            codes(&report),
            [
                (LintCode::UnusedScope, "c"),
                (LintCode::ScopeOutsideCatalog, "bb"),
                (LintCode::LooserThanDefault, "/t.S/Who"),
            ]
        );
        let text = report.to_string();
        assert!(text.contains("warning[scope-outside-catalog]: /t.S/Typo requires `bb`, which is not in the catalog `TestScope` (did you mean `b`?)"), "{text}");
        assert!(text.contains("warning[looser-than-default]: /t.S/Who (authenticated) is looser than its service's default (all of: a): any valid token passes it"), "{text}");
        assert_eq!(text.lines().count(), 3);
        // Without a catalog, only the default check runs.
        assert_eq!(
            codes(&Lint::new(&policies).check()),
            [(LintCode::LooserThanDefault, "/t.S/Who")]
        );
    }

    #[test]
    fn allow_silences_a_code_or_one_item() {
        let policies = PolicySet::new().policy(&SERVICE);
        let lint = Lint::new(&policies).catalog_scopes("TestScope", CATALOG);
        let report = lint
            .clone()
            .allow(LintCode::LooserThanDefault, Some("/t.S/Who"))
            .allow(LintCode::UnusedScope, Some("not-this-one"))
            .check();
        assert_eq!(
            codes(&report),
            [
                (LintCode::UnusedScope, "c"),
                (LintCode::ScopeOutsideCatalog, "bb")
            ]
        );
        let report = lint
            .allow(LintCode::UnusedScope, None)
            .allow(LintCode::ScopeOutsideCatalog, None)
            .allow(LintCode::LooserThanDefault, None)
            .check();
        assert!(report.is_clean(), "{report}");
    }

    fn record(authenticated: bool, scopes: &[&str]) -> String {
        let granted = serde_json::to_string(scopes).unwrap_or_default();
        if authenticated {
            format!(
                r#"{{"schema_version":1,"time":"t","decision":"allow","code":0,"reason":"authorized","rpc":"/t.S/Who","authenticated":true,"granted_scopes":{granted}}}"#
            )
        } else {
            r#"{"schema_version":1,"time":"t","decision":"deny","code":16,"reason":"expired","rpc":"/t.S/Who","authenticated":false}"#.to_owned()
        }
    }

    #[test]
    fn audit_checks() {
        let policies = PolicySet::new().policy(&SERVICE);
        // `a` alone, and `b` alone: nobody holds both, nobody holds `bb`.
        let log = [
            record(true, &["a"]),
            record(false, &[]),
            record(true, &["b", "x"]),
        ]
        .join("\n");
        let report = Lint::new(&policies)
            .audit(log.as_bytes())
            .expect("well-formed")
            .allow(LintCode::LooserThanDefault, None)
            .check();
        assert_eq!(
            codes(&report),
            [
                (LintCode::ScopeNeverGranted, "bb"),
                (LintCode::UnreachableMethod, "/t.S/Both"),
                (LintCode::UnreachableMethod, "/t.S/Typo"),
            ]
        );
        assert!(
            report.warnings[0]
                .message
                .contains("(3 audit records, 2 with a verified token)"),
            "{report}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
        assert_eq!(json["warnings"][1]["code"], "unreachable-method");
        assert_eq!(json["warnings"][1]["item"], "/t.S/Both");
        // Without a verified token, even an `authenticated` method is unreachable.
        let report = Lint::new(&policies)
            .audit(record(false, &[]).as_bytes())
            .expect("well-formed")
            .check();
        assert!(codes(&report).contains(&(LintCode::UnreachableMethod, "/t.S/Who")));
    }
}
