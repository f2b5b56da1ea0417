//! "Did you mean …": which of our names a misspelt attribute or argument stands for.
//!
//! `#[require_scopes("…")]` inside a `#[protect]` impl would otherwise end in rustc's
//! "cannot find attribute `require_scopes` in this scope". Only near misses count, so the
//! attributes a user writes on purpose (`#[allow]`, `#[doc]`, `#[instrument]`, …) are left
//! alone:
//!
//! ```text
//! near_miss("require_scopes", RULES)    == Some("require_scope")      // same words
//! near_miss("require_scope_any", RULES) == Some("require_any_scope")  // same words, reordered
//! near_miss("pubic", RULES)             == Some("public")             // two edits or fewer
//! near_miss("authenticated_only", RULES) == Some("authenticated")     // one is a part of the other
//! near_miss("instrument", RULES)        == None
//! ```

/// The name among `names` that `written` most likely misspells, if it is a near miss: the
/// same words in any order (a plural `s` ignored), else at most two edits away, else one
/// name's words contain the other's (the name sharing the most words). `None` when `written` is one of `names`.
pub(crate) fn near_miss<'a>(written: &str, names: &[&'a str]) -> Option<&'a str> {
    if names.contains(&written) {
        return None;
    }
    let ours = words(written);
    if ours.is_empty() {
        return None;
    }
    if let Some(name) = names.iter().find(|name| {
        let mut theirs = words(name);
        let mut ours = ours.clone();
        theirs.sort_unstable();
        ours.sort_unstable();
        theirs == ours
    }) {
        return Some(name);
    }
    if let Some((_, name)) = names
        .iter()
        .map(|name| (edit_distance(written, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
    {
        return Some(name);
    }
    // One name's words contain the other's: the name sharing the most words, then the
    // shortest (`scope` → `require_scope`, `require_any_of_scopes` → `require_any_scope`).
    names
        .iter()
        .filter_map(|name| {
            let theirs = words(name);
            let contained =
                theirs.iter().all(|w| ours.contains(w)) || ours.iter().all(|w| theirs.contains(w));
            let shared = theirs.iter().filter(|w| ours.contains(w)).count();
            contained.then_some((shared, std::cmp::Reverse(theirs.len()), *name))
        })
        .max_by_key(|(shared, shorter, _)| (*shared, *shorter))
        .map(|(_, _, name)| name)
}

/// The `_`-separated words of a name, lowercase, a plural `s` removed (`scopes` → `scope`).
fn words(name: &str) -> Vec<String> {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let w = w.to_ascii_lowercase();
            match w.strip_suffix('s') {
                Some(stem) if stem.len() >= 3 => stem.to_owned(),
                _ => w,
            }
        })
        .collect()
}

/// Levenshtein distance over bytes (our names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &[&str] = &[
        "require_scope",
        "require_any_scope",
        "authenticated",
        "public",
    ];

    #[test]
    fn near_misses_of_rule_names() {
        let cases = [
            ("require_scopes", "require_scope"),
            ("requires_scope", "require_scope"),
            ("required_scope", "require_scope"),
            ("Require_Scope", "require_scope"),
            ("require_scope_any", "require_any_scope"),
            ("require_any_scopes", "require_any_scope"),
            ("require_any_of_scopes", "require_any_scope"),
            ("require_all_scopes", "require_scope"),
            ("authenticate", "authenticated"),
            ("authenticated_only", "authenticated"),
            ("pubic", "public"),
            ("publik", "public"),
            ("public_rpc", "public"),
            ("scope", "require_scope"),
            ("any_scope", "require_any_scope"),
        ];
        for (written, expected) in cases {
            assert_eq!(near_miss(written, RULES), Some(expected), "{written}");
        }
    }

    #[test]
    fn other_attributes_are_left_alone() {
        for written in [
            "allow",
            "deny",
            "warn",
            "expect",
            "doc",
            "cfg",
            "cfg_attr",
            "inline",
            "cold",
            "must_use",
            "deprecated",
            "instrument",
            "async_trait",
            "test",
            "track_caller",
            "rustfmt",
            "tracing",
            "automatically_derived",
            "authorized",
            "",
        ] {
            assert_eq!(near_miss(written, RULES), None, "{written}");
        }
        assert_eq!(near_miss("public", RULES), None);
        assert_eq!(near_miss("require_scope", RULES), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("pubic", "public"), 1);
    }
}
