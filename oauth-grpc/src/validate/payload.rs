//! A JWT payload read in one pass that borrows from its bytes: the checks read the claims
//! they need without building a `serde_json::Map`, and the verified principal keeps the
//! payload's JSON text, which becomes a map only if a handler asks for the raw claims.
//!
//! Duplicate member names are refused at every depth, as [`json::object`](super::json::object)
//! refuses them: members whose arrays or objects a check reads (`aud`, `act`, `cnf`, the
//! scope and role claims) are built as values by the same seed, all others are walked for
//! duplicates and not built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::json::{NoDuplicates, Unique};

/// One claim as the checks see it, whether it comes from a JWT payload or from a JSON object
/// (an introspection answer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Claim<'c> {
    Str(&'c str),
    U64(u64),
    I64(i64),
    F64(f64),
    /// An array or an object, built.
    Value(&'c Value),
    /// A boolean, `null`, or an array or object that no check reads (walked, not built):
    /// whatever a check wants, this is not it.
    Other,
}

impl<'c> Claim<'c> {
    /// The claim a JSON value is.
    pub(crate) fn of(value: &'c Value) -> Self {
        match value {
            Value::String(s) => Self::Str(s),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Self::U64(u)
                } else if let Some(i) = n.as_i64() {
                    Self::I64(i)
                } else {
                    n.as_f64().map_or(Self::Other, Self::F64)
                }
            }
            Value::Array(_) | Value::Object(_) => Self::Value(value),
            Value::Bool(_) | Value::Null => Self::Other,
        }
    }
}

/// Where claims are read from.
pub(crate) trait Claims {
    /// The claim named `name`, if present.
    fn claim(&self, name: &str) -> Option<Claim<'_>>;
}

impl Claims for Map<String, Value> {
    fn claim(&self, name: &str) -> Option<Claim<'_>> {
        self.get(name).map(Claim::of)
    }
}

/// One member of a payload, as read.
#[derive(Debug)]
enum Member<'p> {
    Str(Cow<'p, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    /// An array or an object a check reads (or, under `arbitrary_precision`, any value).
    Value(Value),
    Other,
}

impl Member<'_> {
    fn claim(&self) -> Claim<'_> {
        match self {
            Self::Str(s) => Claim::Str(s),
            Self::U64(u) => Claim::U64(*u),
            Self::I64(i) => Claim::I64(*i),
            Self::F64(f) => Claim::F64(*f),
            Self::Value(value) => Claim::of(value),
            Self::Other => Claim::Other,
        }
    }
}

/// The members of a JWT payload, in document order, names unique.
#[derive(Debug)]
pub(crate) struct Payload<'p> {
    members: Vec<(Cow<'p, str>, Member<'p>)>,
}

impl Claims for Payload<'_> {
    fn claim(&self, name: &str) -> Option<Claim<'_>> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, value)| value.claim())
    }
}

impl<'p> Payload<'p> {
    /// Parses `json`, one JSON object with unique member names at every depth; the arrays and
    /// objects of members for which `built` says yes are built, the others only walked.
    pub(crate) fn parse(
        json: &'p str,
        built: &dyn Fn(&str) -> bool,
    ) -> Result<Self, serde_json::Error> {
        if super::json::numbers_are_maps() {
            // serde_json's `arbitrary_precision`: numbers reach visitors as maps, which only
            // `json::object`'s fallback reads right.
            let map = super::json::object(json.as_bytes())?;
            // Kept as values: `Claim::of` reads strings and numbers out of them.
            let members = map
                .into_iter()
                .map(|(name, value)| (Cow::Owned(name), Member::Value(value)))
                .collect();
            return Ok(Self { members });
        }
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let members = de::Deserializer::deserialize_map(&mut deserializer, Top { built })?;
        deserializer.end()?;
        Ok(Self { members })
    }
}

/// The payload's object.
struct Top<'b> {
    built: &'b dyn Fn(&str) -> bool,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Vec<(Cow<'de, str>, Member<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        // An access token has a dozen or two claims.
        let mut members: Self::Value = Vec::with_capacity(16);
        while let Some(name) = access.next_key_seed(Name)? {
            let member = access.next_value_seed(MemberSeed {
                built: (self.built)(&name),
            })?;
            members.push((name, member));
        }
        if has_repeats(members.iter().map(|(name, _)| &**name)) {
            // The name itself is not echoed: it comes from a token.
            return Err(de::Error::custom("duplicate member name"));
        }
        Ok(members)
    }
}

/// Whether two of `names` are the same: pairwise for the usual handful, sorted beyond, so
/// that an object of many names (a token of up to the length limit) costs `n log n`, not `n²`.
pub(super) fn has_repeats<'a>(names: impl ExactSizeIterator<Item = &'a str> + Clone) -> bool {
    if names.len() <= 32 {
        return names
            .clone()
            .enumerate()
            .any(|(i, name)| names.clone().take(i).any(|other| other == name));
    }
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.windows(2).any(|pair| pair[0] == pair[1])
}

/// A member name, borrowed when it has no escapes.
pub(super) struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// One member's value; its arrays and objects built only when `built`.
struct MemberSeed {
    built: bool,
}

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Member::I64(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Member::U64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.is_finite() {
            Ok(Member::F64(v))
        } else {
            Err(E::custom("a number that is not finite"))
        }
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if self.built {
            Unique.visit_seq(seq).map(Member::Value)
        } else {
            NoDuplicates.visit_seq(seq).map(|()| Member::Other)
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        if self.built {
            Unique.visit_map(access).map(Member::Value)
        } else {
            NoDuplicates.visit_map(access).map(|()| Member::Other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &str) -> bool {
        true
    }

    fn parse(json: &str) -> Result<Payload<'_>, ()> {
        Payload::parse(json, &all).map_err(drop)
    }

    #[test]
    fn reads_what_the_map_reads() {
        let json = r#"{"iss":"https://i","exp":1700000000,"n":-3,"f":1.5,"aud":["a","b"],"t":true,"z":null,"e":"\u0041"}"#;
        let payload = parse(json).map_err(drop);
        let map = super::super::json::object(json.as_bytes()).map_err(drop);
        let (Ok(payload), Ok(map)) = (payload, map) else {
            panic!("both parse");
        };
        for name in ["iss", "exp", "n", "f", "aud", "t", "z", "e", "missing"] {
            assert_eq!(payload.claim(name), map.claim(name), "{name}");
        }
    }

    #[test]
    fn refuses_duplicates_at_any_depth_built_or_not() {
        let walked = |_: &str| false;
        for json in [
            r#"{"exp":1,"exp":2}"#,
            r#"{"exp":1,"\u0065xp":2}"#,
            r#"{"act":{"sub":"a","sub":"b"}}"#,
            r#"{"x":[{"k":1,"k":1}]}"#,
        ] {
            assert!(parse(json).is_err(), "{json}");
            assert!(Payload::parse(json, &walked).is_err(), "{json}");
        }
        let many: Vec<String> = (0..40).map(|i| format!("\"c{i}\":{i}")).collect();
        let unique = format!("{{{}}}", many.join(","));
        assert!(parse(&unique).is_ok());
        let repeated = format!("{{{},\"c7\":0}}", many.join(","));
        assert!(parse(&repeated).is_err());
        // The same in an object no check reads (walked, not built).
        let nested = format!("{{\"x\":{{{},\"c7\":0}}}}", many.join(","));
        assert!(Payload::parse(&nested, &walked).is_err());
        let nested = format!("{{\"x\":{{{}}}}}", many.join(","));
        assert!(Payload::parse(&nested, &walked).is_ok());
    }

    #[test]
    fn an_unread_object_is_walked_not_built() {
        let json = r#"{"realm_access":{"roles":["a"]},"cnf":{"jkt":"k"}}"#;
        let payload = Payload::parse(json, &|name| name == "cnf").map_err(drop);
        let Ok(payload) = payload else {
            panic!("parses");
        };
        assert_eq!(payload.claim("realm_access"), Some(Claim::Other));
        assert!(matches!(
            payload.claim("cnf"),
            Some(Claim::Value(Value::Object(_)))
        ));
    }

    #[test]
    fn refuses_non_objects_and_trailing_data() {
        for json in ["[1]", "\"s\"", "1", r#"{"a":1} x"#, ""] {
            assert!(parse(json).is_err(), "{json}");
        }
    }
}
