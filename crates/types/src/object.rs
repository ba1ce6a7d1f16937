//! Nested request objects are JSON objects. serde fills a struct from an array too, field by
//! field in order (`"evidence": [null, null]`), which the documented schema does not allow:
//! these `deserialize_with` helpers take an object or refuse ("wrong type: expected an
//! object"), for each place a request nests a struct.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error, Unexpected};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn one<T: DeserializeOwned, E: Error>(value: Value) -> Result<T, E> {
    if !value.is_object() {
        let got = match &value {
            Value::Array(_) => Unexpected::Seq,
            Value::String(_) => Unexpected::Other("a string"),
            Value::Number(_) => Unexpected::Other("a number"),
            Value::Bool(b) => Unexpected::Bool(*b),
            _ => Unexpected::Unit,
        };
        return Err(E::invalid_type(got, &"an object"));
    }
    T::deserialize(value).map_err(E::custom)
}

/// An optional nested object (`null` or absent: `None`).
pub fn option<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(value) => one(value).map(Some),
    }
}

/// A list of nested objects.
pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Value>::deserialize(d)?.into_iter().map(one).collect()
}

/// A map of nested objects.
pub fn map<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<BTreeMap<String, T>, D::Error> {
    BTreeMap::<String, Value>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| Ok((k, one(v)?)))
        .collect()
}

/// A map whose keys are each given once: JSON allows `{"email": "a", "email": "b"}`, and
/// serde would keep the last silently. The error names no key (a key may be personal data
/// sent in the wrong place).
pub fn unique<'de, D: Deserializer<'de>, V: Deserialize<'de>>(d: D) -> Result<BTreeMap<String, V>, D::Error> {
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = access.next_entry::<String, V>()? {
                if out.insert(key, value).is_some() {
                    return Err(A::Error::custom("a key is given twice in one object"));
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Unique(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    struct Inner {
        #[allow(dead_code)]
        a: Option<u8>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Outer {
        #[serde(default, deserialize_with = "super::option")]
        inner: Option<Inner>,
    }

    #[test]
    fn only_objects_fill_nested_structs() {
        let parse = |s: &str| serde_json::from_str::<Outer>(s);
        assert!(parse(r#"{"inner": {"a": 1}}"#).is_ok_and(|o| o.inner.is_some()));
        assert!(parse(r#"{"inner": null}"#).is_ok_and(|o| o.inner.is_none()));
        assert!(parse(r#"{}"#).is_ok_and(|o| o.inner.is_none()));
        let e = parse(r#"{"inner": [1]}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("invalid type: sequence, expected an object"), "{e}");
    }

    #[derive(serde::Deserialize, Debug)]
    struct Fields {
        #[serde(deserialize_with = "super::unique")]
        fields: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn a_key_given_twice_is_refused_without_naming_it() {
        let parse = |s: &str| serde_json::from_str::<Fields>(s);
        assert!(parse(r#"{"fields": {"email": "a", "name": "b"}}"#).is_ok_and(|f| f.fields.len() == 2));
        let e = parse(r#"{"fields": {"a@example.com": "a", "a@example.com": "b"}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("a key is given twice") && !e.contains("example"), "{e}");
        assert!(parse(r#"{"fields": [["email", "a"]]}"#).is_err());
    }
}
