//! Collecting every error of one macro call, so one build shows every mistake.

use std::collections::HashMap;
use std::hash::Hash;

/// Accumulates independent errors and combines them into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Records the error of `result`, if any, and returns its value.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Every item whose key an earlier item already had, paired with that earlier item.
///
/// The one helper behind every duplicate check: rules on a method, scopes in a rule, rpc
/// names in an impl, variants and strings in a scope catalog.
pub(crate) fn duplicates<T, K, F>(items: &[T], key: F) -> Vec<(&T, &T)>
where
    K: Eq + Hash,
    F: Fn(&T) -> K,
{
    let mut first: HashMap<K, &T> = HashMap::new();
    let mut out = Vec::new();
    for item in items {
        match first.get(&key(item)) {
            Some(earlier) => out.push((*earlier, item)),
            None => {
                first.insert(key(item), item);
            }
        }
    }
    out
}

/// Whether `byte` may appear in an RFC 6749 §3.3 `scope-token`.
pub(crate) fn is_scope_byte(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Checks a scope literal; the message says what is wrong and what is allowed.
pub(crate) fn check_scope(lit: &syn::LitStr) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() {
        return Err(syn::Error::new_spanned(
            lit,
            "empty scope; a scope is one or more printable ASCII characters, e.g. \"orders:read\"",
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !c.is_ascii() || !is_scope_byte(*c as u8))
    {
        let what = match c {
            ' ' => "a space".to_owned(),
            '"' => "`\"`".to_owned(),
            '\\' => "`\\`".to_owned(),
            c if c.is_control() => format!("the control character {c:?}"),
            c => format!("the non-ASCII character `{c}`"),
        };
        return Err(syn::Error::new_spanned(
            lit,
            format!(
                "scope {value:?} contains {what}; an OAuth scope (RFC 6749 §3.3) is printable \
                 ASCII without space, `\"` or `\\`; for several scopes write several strings"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_pairs_each_repeat_with_its_first_occurrence() {
        let items = ["a", "b", "a", "c", "b", "a"];
        let pairs: Vec<_> = duplicates(&items, |s| *s)
            .into_iter()
            .map(|(first, again)| {
                let at = |x: &&str| items.iter().position(|y| std::ptr::eq(y, x));
                (at(first), at(again))
            })
            .collect();
        assert_eq!(
            pairs,
            [(Some(0), Some(2)), (Some(1), Some(4)), (Some(0), Some(5))]
        );
        assert!(duplicates(&["x", "y"], |s| *s).is_empty());
        assert!(duplicates::<&str, &str, _>(&[], |s| *s).is_empty());
    }

    #[test]
    fn scope_bytes_follow_rfc_6749() {
        let allowed: Vec<u8> = (0u8..=0xff).filter(|b| is_scope_byte(*b)).collect();
        assert_eq!(allowed.len(), 0x7e - 0x21 + 1 - 2);
        for bad in [b' ', b'"', b'\\', 0x7f, 0x00, 0x80] {
            assert!(!is_scope_byte(bad));
        }
    }
}
