//! A registry file's sections, each written anew as TOML: to tell which changed between two
//! files (a start records what it serves; see `custodia-core`'s `registry_log`).

use std::collections::BTreeMap;

/// Each section of the registry text `text`: `roles.support_agent`, `training.privacy_basics`,
/// `purposes.marketing_email`, ... for a table of tables, the top-level key itself for any
/// other (`organization`, `operators`), with its contents as TOML written anew (comments and
/// blank lines do not count; keys reordered within a section do). `Err` when the text is no
/// TOML.
pub fn sections(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_owned())?;
    let mut out = BTreeMap::new();
    for (key, value) in &table {
        match value {
            toml::Value::Table(inner) if !inner.is_empty() && inner.values().all(toml::Value::is_table) => {
                for (name, section) in inner {
                    out.insert(format!("{key}.{name}"), written(section));
                }
            }
            other => {
                out.insert(key.clone(), written(other));
            }
        }
    }
    Ok(out)
}

/// `value` as TOML (a value that is no table written as the one key of a table).
fn written(value: &toml::Value) -> String {
    let table = match value {
        toml::Value::Table(t) => t.clone(),
        other => toml::Table::from_iter([(String::new(), other.clone())]),
    };
    toml::to_string(&table).unwrap_or_else(|e| format!("unwritable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_shows_in_its_section_alone() {
        let before = sections(crate::EXAMPLE_REGISTRY).unwrap();
        assert!(before.contains_key("roles.support_agent"), "{:?}", before.keys());
        assert!(before.contains_key("organization"));
        // comments and blank lines are no change
        let commented = format!("# a note\n\n{}", crate::EXAMPLE_REGISTRY);
        assert_eq!(sections(&commented).unwrap(), before);
        let edited = crate::EXAMPLE_REGISTRY.replace(
            "purposes = [\"customer_support\"]",
            "purposes = [\"customer_support\", \"payment\"]",
        );
        assert_ne!(edited, crate::EXAMPLE_REGISTRY, "the example has the line");
        let after = sections(&edited).unwrap();
        let changed: Vec<&String> = after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
        assert_eq!(changed, ["roles.support_agent"]);
        assert!(sections("not = [toml").is_err());
    }
}
