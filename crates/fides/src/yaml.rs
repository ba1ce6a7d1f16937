//! A small YAML writer for manifests: block mappings and sequences, every string
//! double-quoted. Quoting all strings is what keeps them strings: YAML 1.1 readers (PyYAML,
//! which Fides uses) take `NO` for false, `2024-01-01` for a date and `0730` for a number.
//! A JSON string literal is a valid YAML double-quoted scalar, so escaping is serde_json's.

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Bool(bool),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    pub(crate) fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    pub(crate) fn strs<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Self::List(items.into_iter().map(|s| Self::Str(s.into())).collect())
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Self::Str(_) | Self::Bool(_))
    }
}

/// A mapping built in order.
#[derive(Debug, Default)]
pub(crate) struct Map(Vec<(String, Value)>);

impl Map {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with(mut self, key: &str, value: Value) -> Self {
        self.0.push((key.to_owned(), value));
        self
    }

    pub(crate) fn put(&mut self, key: &str, value: Value) {
        self.0.push((key.to_owned(), value));
    }

    pub(crate) fn extend(&mut self, other: Map) {
        self.0.extend(other.0);
    }

    pub(crate) fn build(self) -> Value {
        Value::Map(self.0)
    }
}

/// A double-quoted scalar: JSON's escapes, plus `\u` for what YAML may not hold raw (C1
/// controls, U+FFFE/U+FFFF) or folds (line and paragraph separators, next line).
fn quoted(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    json.chars()
        .map(|c| match c {
            '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}' => {
                format!("\\u{:04x}", u32::from(c))
            }
            c => c.to_string(),
        })
        .collect()
}

/// A key as written: plain when it can only be read as that string, else quoted (`yes`, `on`,
/// `null` are not strings to PyYAML).
fn key(k: &str) -> String {
    const WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];
    let plain = k.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !WORDS.contains(&k.to_ascii_lowercase().as_str());
    if plain { k.to_owned() } else { quoted(k) }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Str(s) => quoted(s),
        Value::Bool(b) => b.to_string(),
        Value::List(items) if items.is_empty() => "[]".to_owned(),
        Value::Map(entries) if entries.is_empty() => "{}".to_owned(),
        Value::List(items) => format!("[{}]", items.iter().map(scalar).collect::<Vec<_>>().join(", ")),
        Value::Map(_) => "{}".to_owned(),
    }
}

/// Whether `value` is written on its key's line: a scalar, an empty collection or a list of
/// scalars (as a flow sequence).
fn inline(value: &Value) -> bool {
    match value {
        Value::List(items) => items.iter().all(Value::is_scalar),
        Value::Map(entries) => entries.is_empty(),
        _ => true,
    }
}

/// The document: `comment` lines (each prefixed `# `), then `value` (a mapping).
pub(crate) fn document(comment: &[&str], value: &Value) -> String {
    let mut out = String::new();
    for line in comment {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    if let Value::Map(entries) = value {
        write_map(&mut out, entries, 0, false);
    }
    out
}

/// Writes `entries` at `indent`; `first_inline`: the first key continues a `- ` line.
fn write_map(out: &mut String, entries: &[(String, Value)], indent: usize, first_inline: bool) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if !(first_inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&self::key(key));
        out.push(':');
        if inline(value) {
            out.push(' ');
            out.push_str(&scalar(value));
            out.push('\n');
            continue;
        }
        out.push('\n');
        match value {
            Value::Map(inner) => write_map(out, inner, indent + 2, false),
            Value::List(items) => write_list(out, items, indent),
            _ => {}
        }
    }
}

fn write_list(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Value::Map(entries) if !entries.is_empty() => write_map(out, entries, indent + 2, true),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_stay_strings_and_nest() {
        let doc = Map::new()
            .with(
                "system",
                Value::List(vec![
                    Map::new()
                        .with("fides_key", Value::str("custodia"))
                        .with("country", Value::str("NO"))
                        .with("retention_period", Value::str("0730"))
                        .with("tags", Value::strs(["a\"b", "line\nbreak"]))
                        .with("meta", Map::new().with("ok", Value::Bool(true)).build())
                        .with("empty", Value::List(vec![]))
                        .build(),
                ]),
            )
            .build();
        let text = document(&["header"], &doc);
        assert_eq!(
            text,
            "# header\nsystem:\n- fides_key: \"custodia\"\n  country: \"NO\"\n  retention_period: \"0730\"\n  tags: [\"a\\\"b\", \"line\\nbreak\"]\n  meta:\n    ok: true\n  empty: []\n"
        );
        // Read back by an independent YAML reader: the same strings.
        let node = marked_yaml::parse_yaml(0, &text).unwrap_or_else(|e| panic!("{e}"));
        let system = node
            .as_mapping()
            .and_then(|m| m.get_sequence("system"))
            .unwrap_or_else(|| panic!("no system"));
        let first = system.get_mapping(0).unwrap_or_else(|| panic!("no item"));
        assert_eq!(first.get_scalar("country").map(|s| s.as_str()), Some("NO"));
        assert_eq!(first.get_scalar("retention_period").map(|s| s.as_str()), Some("0730"));
        let tags = first.get_sequence("tags").unwrap_or_else(|| panic!("no tags"));
        assert_eq!(tags.get_scalar(1).map(|s| s.as_str()), Some("line\nbreak"));
    }
}
