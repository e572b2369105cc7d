//! [`Labels`]: a plan's alert labels, kept compact.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize, Serializer};

/// Label pairs sorted by name, each name once: the same JSON object and schema as a
/// `BTreeMap<String, String>`, held in a `Vec`. A controller caches every plan, and a
/// B-tree map allocates a node with room for eleven pairs even for the one or two labels a
/// plan names (over 500 bytes per plan, 5 MiB for ten thousand plans).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "BTreeMap<String, String>")]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> <&Labels as IntoIterator>::IntoIter {
        self.into_iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Labels(map.into_iter().collect())
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(labels: Labels) -> Self {
        labels.0.into_iter().collect()
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl FromIterator<(String, String)> for Labels {
    /// Sorted by name; of two pairs with one name, the later wins (as in a map).
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Labels::from(pairs.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl JsonSchema for Labels {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        BTreeMap::<String, String>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        BTreeMap::<String, String>::json_schema(generator)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_the_same_json_object_as_a_map() {
        let labels: Labels = serde_json::from_value(json!({"team": "db", "app": "pg"})).unwrap();
        assert_eq!(labels.get("app").map(String::as_str), Some("pg"));
        assert_eq!(labels.get("team").map(String::as_str), Some("db"));
        assert_eq!(labels.get("zone"), None);
        assert_eq!(
            labels.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["app", "team"],
            "sorted by name"
        );
        assert_eq!(
            serde_json::to_value(&labels).unwrap(),
            json!({"app": "pg", "team": "db"})
        );
        let map: BTreeMap<String, String> = labels.clone().into();
        assert_eq!(Labels::from(map), labels);
    }

    #[test]
    fn pairs_collect_sorted_with_the_last_of_a_name_kept() {
        let labels: Labels = [("b", "1"), ("a", "2"), ("b", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.get("b").map(String::as_str), Some("3"));
        assert_eq!(labels.iter().next().map(|(k, _)| k.as_str()), Some("a"));
        assert!(Labels::default().is_empty());
    }

    #[test]
    fn has_the_schema_of_a_string_map() {
        let mut generator = SchemaGenerator::default();
        assert_eq!(
            Labels::json_schema(&mut generator),
            BTreeMap::<String, String>::json_schema(&mut generator)
        );
    }
}
