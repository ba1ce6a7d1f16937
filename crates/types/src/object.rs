//! Nested request objects are JSON objects. serde fills a struct from an array too, field by
//! field in order (`"evidence": [null, null]`), which the documented schema does not allow:
//! these `deserialize_with` helpers take an object or refuse ("wrong type: expected an
//! object"), for each place a request nests a struct.

use std::collections::BTreeMap;

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// A nested object, read as one (a map), never from an array; read straight from the
/// request, so that a key given twice inside it is seen ([`unique`] refuses it).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, access: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(access))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData)).map(Object)
    }
}

/// An optional nested object (`null` or absent: `None`).
pub fn option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(d)?.map(|o| o.0))
}

/// A list of nested objects.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Vec::<Object<T>>::deserialize(d)?.into_iter().map(|o| o.0).collect())
}

/// A map of nested objects.
pub fn map<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<BTreeMap<String, T>, D::Error> {
    Ok(unique::<D, Object<T>>(d)?.into_iter().map(|(k, o)| (k, o.0)).collect())
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

    #[test]
    fn a_key_given_twice_inside_a_nested_object_is_seen() {
        let body = r#"{"corrections": [{"collection": "customers", "record_id": "rec_1",
            "fields": {"name": "First", "name": "Second"}}]}"#;
        let e = serde_json::from_str::<crate::FulfilRequest>(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("a key is given twice"), "{e}");
        let body = r#"{"corrections": [{"collection": "customers", "record_id": "rec_1", "record_id": "rec_2",
            "fields": {"name": "First"}}]}"#;
        assert!(
            serde_json::from_str::<crate::FulfilRequest>(body).is_err(),
            "a field given twice"
        );
    }
}
