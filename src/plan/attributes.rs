//! The attribute values of one side of a change (`before` or `after`).
//!
//! A plan of a fleet holds tens of thousands of changes, most of them no-ops
//! whose two sides are equal, each side a handful of entries. So the values
//! live in one shared, immutable, sorted list: cloning a side (a no-op's
//! `after` from its `before`) shares it, the fixed attribute names are
//! `&'static str` rather than a `String` per entry, and writing to a shared
//! side copies it first. It serializes, deserializes and describes itself
//! (JSON Schema) exactly as the `BTreeMap<String, Value>` it replaces: a JSON
//! object, keys sorted.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An attribute name: a fixed one (`workload_pool`,
/// `annotations["iam.gke.io/gcp-service-account"]`) borrowed, any other owned.
pub type AttributeName = Cow<'static, str>;

/// Attribute values, keyed by stable attribute names, in name order.
#[derive(Clone, Default, PartialEq)]
pub struct Attributes(Arc<Vec<(AttributeName, Value)>>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaces. A side shared
    /// with another change is copied first.
    pub fn insert(&mut self, key: impl Into<AttributeName>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(
                &mut Arc::make_mut(&mut self.0)[i].1,
                value,
            )),
            Err(i) => {
                Arc::make_mut(&mut self.0).insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value (a side without it stays shared).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key).ok()?;
        Some(Arc::make_mut(&mut self.0).remove(i).1)
    }

    /// The entries, in name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Value)> + ExactSizeIterator {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The attribute names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` and `other` are one allocation (a no-op's two sides,
    /// cloned from each other): what keeps a fleet's plan small.
    pub fn shares_with(&self, other: &Attributes) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<K: Into<AttributeName>> FromIterator<(K, Value)> for Attributes {
    /// Later values of a repeated name win, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut entries: Vec<(AttributeName, Value)> =
            iter.into_iter().map(|(k, v)| (k.into(), v)).collect();
        // Stable, so the last of equal names is last; keep it.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(AttributeName, Value)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        Attributes(Arc::new(kept))
    }
}

impl<K: Into<AttributeName>> Extend<(K, Value)> for Attributes {
    /// Inserts each entry in turn.
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl From<serde_json::Map<String, Value>> for Attributes {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        map.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (AttributeName, Value)>,
        fn(&'a (AttributeName, Value)) -> (&'a str, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl IntoIterator for Attributes {
    type Item = (AttributeName, Value);
    type IntoIter = std::vec::IntoIter<(AttributeName, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        Arc::unwrap_or_clone(self.0).into_iter()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = Value;

    /// The value of `key`; panics when there is none, as a map does.
    fn index(&self, key: &str) -> &Value {
        self.get(key)
            .unwrap_or_else(|| panic!("no attribute {key:?}"))
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Attributes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
                let mut entries: Vec<(String, Value)> =
                    Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = access.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

impl schemars::JsonSchema for Attributes {
    fn inline_schema() -> bool {
        <std::collections::BTreeMap<String, Value>>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, Value>>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, Value>>::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeMap<String, Value>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn it_reads_and_writes_as_the_sorted_map_it_replaces() {
        let pairs = [
            ("role", json!("r")),
            ("member", json!("m")),
            ("annotations[\"a/b\"]", json!({"x": [1, 2]})),
            ("member", json!("m2")),
        ];
        let ours: Attributes = pairs.iter().cloned().collect();
        let map: BTreeMap<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(
            serde_json::to_string_pretty(&ours).unwrap(),
            serde_json::to_string_pretty(&map).unwrap()
        );
        assert_eq!(
            ours["member"],
            json!("m2"),
            "the last of a repeated name wins"
        );
        let text = serde_json::to_string(&map).unwrap();
        let back: Attributes = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ours);
        let keys: Vec<&str> = ours.keys().collect();
        let map_keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, map_keys);
    }

    #[test]
    fn a_clone_shares_until_written() {
        let mut a = Attributes::new();
        a.insert("name", json!("ns"));
        let mut b = a.clone();
        assert!(a.shares_with(&b));
        assert_eq!(b.remove("absent"), None);
        assert!(a.shares_with(&b), "removing nothing copies nothing");
        b.insert("name", json!("other"));
        assert!(!a.shares_with(&b));
        assert_eq!(a["name"], json!("ns"));
        assert_eq!(b["name"], json!("other"));
        assert_eq!(b.insert("id", json!(1)), None);
        assert_eq!(b.keys().collect::<Vec<_>>(), ["id", "name"]);
        assert_eq!(b.remove("id"), Some(json!(1)));
        assert_eq!(b.len(), 1);
    }
}
