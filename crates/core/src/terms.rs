//! What each purpose's terms were in every privacy notice version this vault has shown, so
//! that a consent counts only for the terms it was given under (GDPR Art. 4(11), 7: consent
//! is specific and informed). A consent recorded under one of the vault's own notice versions
//! whose purpose has since changed what the notice says of it (its data, recipients,
//! retention, reuse, wording) no longer permits processing (403 `consent_outdated`) until the
//! subject consents again under the notice in force; what it collected stays (nothing is
//! destroyed by a registry edit: the retention rules keep running as before). A consent
//! naming a version the vault did not show (a business's own notice, `2026-11`) cannot be
//! compared and counts as before.

use std::collections::BTreeMap;

use serde_json::Value;

/// Per notice version, per purpose, its terms as the notice's JSON says them; and those of
/// the notice in force.
#[derive(Debug, Default)]
pub(crate) struct Terms {
    current: BTreeMap<String, Value>,
    by_version: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Terms {
    /// The terms of every version, `current` the one in force. A version whose JSON does not
    /// read is left out (its consents are not compared).
    pub(crate) fn new<'a>(current: &str, versions: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let by_version: BTreeMap<String, BTreeMap<String, Value>> = versions
            .into_iter()
            .filter_map(|(version, json)| Some((version.to_owned(), purposes(json)?)))
            .collect();
        Self {
            current: by_version.get(current).cloned().unwrap_or_default(),
            by_version,
        }
    }

    /// Whether a consent to `purpose` given under `version` predates the purpose's terms in
    /// force: the version is one of this vault's and said something else of the purpose (or
    /// the purpose is new since, or gone).
    pub(crate) fn outdated(&self, purpose: &str, version: Option<&str>) -> bool {
        let Some(then) = version.and_then(|v| self.by_version.get(v)) else {
            return false;
        };
        if self.current.is_empty() {
            return false;
        }
        match (then.get(purpose), self.current.get(purpose)) {
            (Some(then), Some(now)) => !same_terms(then, now),
            (None, None) => false,
            _ => true,
        }
    }
}

/// Whether `now` says what `then` said: every key of `then` the same in `now`, and each key
/// only `now` has empty (null, false, nothing listed): a key a later release added to the
/// notice with its default value is no change of terms (the consents of every vault that ran
/// an earlier release would have lapsed at the upgrade), one with a value is (`reuses`,
/// written only when a purpose reuses another's data).
fn same_terms(then: &Value, now: &Value) -> bool {
    match (then, now) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same_terms(x, y)))
                && b.iter().all(|(k, y)| a.contains_key(k) || empty(y))
        }
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_terms(x, y)),
        _ => then == now,
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(true) | Value::Number(_) => false,
    }
}

/// Each purpose's terms in a notice's JSON: its section (`purposes: [{name, ...}]`),
/// what the notice says of each recipient it names (country, role, transfer, safeguard; not
/// the other purposes it serves), and who the controller is (review: a recipient moved to a
/// third country, a safeguard dropped, another controller left the consent standing).
fn purposes(json: &str) -> Option<BTreeMap<String, Value>> {
    let notice: Value = serde_json::from_str(json).ok()?;
    let recipients = notice.get("recipients").and_then(serde_json::Value::as_array);
    let recipient = |name: &serde_json::Value| {
        let mut found = recipients?.iter().find(|r| r.get("name") == Some(name))?.clone();
        if let Some(r) = found.as_object_mut() {
            r.remove("purposes");
        }
        Some(found)
    };
    notice
        .get("purposes")?
        .as_array()?
        .iter()
        .map(|p| {
            let name = p.get("name")?.as_str()?.to_owned();
            let named: Vec<serde_json::Value> = p
                .get("recipients")
                .and_then(serde_json::Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .map(|n| recipient(n).unwrap_or_else(|| n.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let terms = serde_json::json!({
                "purpose": p,
                "recipients": named,
                "controller": notice.get("controller"),
            });
            Some((name, terms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(marketing: &str) -> String {
        format!(
            r#"{{"version": "", "purposes": [{{"name": "orders", "recipients": ["Parcel Ltd"]}}, {{"name": "marketing", "recipients": [{marketing}]}}]}}"#
        )
    }

    #[test]
    fn a_consent_counts_for_the_terms_it_was_given_under() {
        let (v1, v2) = (notice(r#""Mail Co""#), notice(r#""Mail Co", "Ad Partner""#));
        let terms = Terms::new("sha256-b", [("sha256-a", v1.as_str()), ("sha256-b", v2.as_str())]);
        assert!(terms.outdated("marketing", Some("sha256-a")), "a recipient added since");
        assert!(!terms.outdated("orders", Some("sha256-a")), "unchanged");
        assert!(
            !terms.outdated("marketing", Some("sha256-b")),
            "given under the notice in force"
        );
        assert!(
            !terms.outdated("marketing", Some("2026-11")),
            "a business's own version: not compared"
        );
        assert!(!terms.outdated("marketing", None));
        // the keys' order in the stored JSON is no change
        let reordered = r#"{"purposes": [{"recipients": ["Parcel Ltd"], "name": "orders"}]}"#;
        let terms = Terms::new("sha256-b", [("sha256-a", reordered), ("sha256-b", v2.as_str())]);
        assert!(!terms.outdated("orders", Some("sha256-a")));
        // what the notice says of a recipient the purpose names, and who the controller is
        let recipients = |country: &str, controller: &str| {
            format!(
                r#"{{"controller": {{"name": "{controller}"}}, "purposes": [{{"name": "marketing", "recipients": ["Mail Co"]}}],
                    "recipients": [{{"name": "Mail Co", "country": "{country}", "purposes": ["marketing"]}},
                                   {{"name": "Other", "country": "US", "purposes": []}}]}}"#
            )
        };
        let then = recipients("IE", "Shop Ltd");
        for now in [recipients("CN", "Shop Ltd"), recipients("IE", "Other Shop Ltd")] {
            let terms = Terms::new("sha256-b", [("sha256-a", then.as_str()), ("sha256-b", now.as_str())]);
            assert!(terms.outdated("marketing", Some("sha256-a")), "{now}");
        }
        // a recipient serving one more purpose is no change of this one's terms
        let more = then.replace(r#""purposes": ["marketing"]"#, r#""purposes": ["marketing", "orders"]"#);
        assert_ne!(more, then);
        let terms = Terms::new("sha256-b", [("sha256-a", then.as_str()), ("sha256-b", more.as_str())]);
        assert!(!terms.outdated("marketing", Some("sha256-a")));
        // a key a later release added, with its default value, is no change; with a value, it is
        let before = r#"{"purposes": [{"name": "marketing", "recipients": []}]}"#;
        let quiet =
            r#"{"purposes": [{"name": "marketing", "recipients": [], "direct_marketing": false, "source": null}]}"#;
        let reuses = r#"{"purposes": [{"name": "marketing", "recipients": [], "reuses": ["orders"]}]}"#;
        let terms = Terms::new("sha256-b", [("sha256-a", before), ("sha256-b", quiet)]);
        assert!(!terms.outdated("marketing", Some("sha256-a")));
        let terms = Terms::new("sha256-b", [("sha256-a", before), ("sha256-b", reuses)]);
        assert!(terms.outdated("marketing", Some("sha256-a")));
        // nothing known of the notice in force: nothing is outdated
        assert!(!Terms::new("sha256-z", [("sha256-a", v1.as_str())]).outdated("marketing", Some("sha256-a")));
        assert!(!Terms::new("sha256-a", [("sha256-a", "not json")]).outdated("marketing", Some("sha256-a")));
    }
}
