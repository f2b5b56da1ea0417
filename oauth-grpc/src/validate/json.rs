//! JSON objects from untrusted parties, parsed with duplicate member names refused.
//!
//! RFC 7519 §4 lets a JWT parser either reject duplicate claim names or keep the last one;
//! RFC 8725 §3.11 warns that parsers which disagree on duplicates let one party see a claim
//! that another did not. This crate rejects them, at every depth, in token payloads and in
//! introspection answers. (JOSE headers are read into a struct, whose derived `Deserialize`
//! already refuses a repeated field that it reads.)

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON object whose objects have unique member names.
///
/// serde_json's recursion limit (128 levels) still applies, so deep nesting is an error, not
/// a stack overflow.
pub(crate) fn object(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    if numbers_are_maps() {
        two_passes(bytes)
    } else {
        one_pass(bytes)
    }
}

/// Whether serde_json hands numbers to visitors as maps: its `arbitrary_precision` feature,
/// which any crate in a build can switch on. [`Unique`] builds `Value`s itself and would
/// then see every number as an object, so [`object`] falls back to [`two_passes`].
pub(super) fn numbers_are_maps() -> bool {
    struct Probe;
    impl<'de> Visitor<'de> for Probe {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<bool, A::Error> {
            while access
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(true)
        }
    }
    static MAPS: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
        de::Deserializer::deserialize_any(&mut serde_json::Deserializer::from_slice(b"1"), Probe)
            .unwrap_or(true)
    });
    *MAPS
}

/// One pass that builds the values and refuses duplicates as it goes.
fn one_pass(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Unique.deserialize(&mut deserializer)?;
    deserializer.end()?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(de::Error::custom("expected a JSON object")),
    }
}

/// A pass that only looks for duplicate names, then serde_json's own parse.
fn two_passes(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    NoDuplicates.deserialize(&mut deserializer)?;
    deserializer.end()?;
    serde_json::from_slice(bytes)
}

/// Walks a document and refuses a member name seen before in the same object; builds nothing.
#[derive(Clone, Copy)]
pub(super) struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        let mut names: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        while let Some(name) = access.next_key_seed(super::payload::Name)? {
            names.push(name);
            access.next_value_seed(self)?;
        }
        if super::payload::has_repeats(names.iter().map(|name| &**name)) {
            return Err(de::Error::custom("duplicate member name"));
        }
        Ok(())
    }
}

/// A `Value` seed that refuses a member name seen before in the same object.
#[derive(Clone, Copy)]
pub(super) struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                // The name itself is not echoed: it may come from a token.
                return Err(de::Error::custom("duplicate member name"));
            }
            let value = access.next_value_seed(self)?;
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::{object, one_pass, two_passes};
    use serde_json::json;

    /// Both strategies agree on every input of these tests, whichever `object` uses here.
    fn both(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ()> {
        let one = one_pass(bytes).map_err(drop);
        let two = two_passes(bytes).map_err(drop);
        assert_eq!(
            one,
            two,
            "one pass and two passes disagree on {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(object(bytes).map_err(drop), one);
        one
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let text = br#"{"a":1,"b":-2,"c":1.5,"d":"x","e":[true,null,{"f":[]}],"g":{"h":{}}}"#;
        let ours = both(text).map(serde_json::Value::Object).ok();
        let theirs: Option<serde_json::Value> = serde_json::from_slice(text).ok();
        assert_eq!(ours, theirs);
        assert_eq!(
            ours,
            Some(json!({"a":1,"b":-2,"c":1.5,"d":"x","e":[true,null,{"f":[]}],"g":{"h":{}}}))
        );
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert!(both(br#"{"exp":1,"exp":2}"#).is_err());
        assert!(both(br#"{"act":{"sub":"a","sub":"b"}}"#).is_err());
        assert!(both(br#"{"x":[{"k":1,"k":1}]}"#).is_err());
        // The same name after unescaping.
        assert!(both(br#"{"exp":1,"\u0065xp":2}"#).is_err());
        // Same name in sibling objects is fine.
        assert!(both(br#"{"a":{"k":1},"b":{"k":2}}"#).is_ok());
    }

    #[test]
    fn refuses_non_objects_trailing_data_and_deep_nesting() {
        assert!(both(b"[1]").is_err());
        assert!(both(b"\"s\"").is_err());
        assert!(both(br#"{"a":1} x"#).is_err());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(1000), "]".repeat(1000));
        assert!(both(deep.as_bytes()).is_err());
    }
}
