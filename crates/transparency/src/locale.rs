//! The words of the notice and the pages, one file per language (`locales/<language>.toml`),
//! so that a second language is a file, not a code change. English is built in; a registry
//! in another language brings its file beside it (`<registry dir>/locales/<language>.toml`),
//! and that file may also replace the built-in English one.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The built-in English words.
pub const ENGLISH: &str = include_str!("../locales/en.toml");

/// The words of one language, every key present (a missing or unknown key is an error
/// naming it, at load).
#[derive(Debug, Clone)]
pub struct Locale {
    /// The language tag, e.g. `en`.
    pub language: String,
    pub strings: Strings,
    /// SHA-256 of the file's text: the notice's version covers its wording too.
    pub digest: [u8; 32],
}

/// Every string, by section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strings {
    pub notice: NoticeStrings,
    pub legal_basis: LegalBasisStrings,
    pub recipient_role: RecipientRoleStrings,
    pub retention: RetentionStrings,
    pub rights: RightsStrings,
    pub portal: PortalStrings,
    pub receipt: ReceiptStrings,
    /// Plain names of data categories; others are shown by the last part of their name.
    #[serde(default)]
    pub categories: std::collections::BTreeMap<String, String>,
}

impl Strings {
    /// The plain name of a data category (`user.contact.email` is "Email address"; one
    /// not listed, by its last part: `user.contact.fax_number` is "Fax number").
    #[must_use]
    pub fn category(&self, category: &str) -> String {
        if let Some(label) = self.categories.get(category) {
            return label.clone();
        }
        let last = category.rsplit('.').next().unwrap_or(category).replace('_', " ");
        let mut chars = last.chars();
        chars
            .next()
            .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeStrings {
    pub title: String,
    pub intro: String,
    pub version: String,
    pub last_updated: String,
    pub controller_heading: String,
    pub controller: String,
    pub contact: String,
    pub dpo: String,
    pub representative: String,
    pub purposes_heading: String,
    pub legal_basis: String,
    pub legitimate_interest: String,
    pub categories: String,
    pub recipients: String,
    pub no_recipients: String,
    pub retention: String,
    pub source: String,
    pub provided_by_you: String,
    pub reuses: String,
    pub survives_erasure: String,
    pub withdraw: String,
    pub categories_heading: String,
    pub category: String,
    pub used_for: String,
    pub kept_for: String,
    pub recipients_heading: String,
    pub safeguards_copy: String,
    pub required: String,
    pub required_contract: String,
    pub required_law: String,
    pub required_consent: String,
    pub required_other: String,
    pub automated_heading: String,
    pub recipient_role: String,
    pub country: String,
    pub transfer: String,
    pub transfer_none: String,
    pub transfer_adequacy: String,
    pub transfer_unprotected: String,
    pub rights_heading: String,
    pub rights_intro: String,
    pub answered_within: String,
    pub how_to_use_rights: String,
    pub complaint: String,
    pub sale_heading: String,
    pub sells: String,
    pub sells_not: String,
    pub sensitive_heading: String,
    pub sensitive: String,
    pub sensitive_none: String,
    pub special: String,
    pub markdown_note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalBasisStrings {
    pub consent: String,
    pub contract: String,
    pub legal_obligation: String,
    pub vital_interests: String,
    pub public_task: String,
    pub legitimate_interests: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientRoleStrings {
    pub processor: String,
    pub controller: String,
    pub joint_controller: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionStrings {
    pub collection: String,
    pub last_update: String,
    pub last_activity: String,
    pub consent_withdrawn: String,
    pub none: String,
    pub days: String,
    pub day: String,
    pub months: String,
    pub month: String,
    pub years: String,
    pub year: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RightsStrings {
    pub access: String,
    pub portability: String,
    pub rectification: String,
    pub erasure: String,
    pub restriction: String,
    pub objection: String,
    pub opt_out_sale: String,
    pub limit_sensitive: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalStrings {
    pub title: String,
    pub intro: String,
    pub expires: String,
    pub held_heading: String,
    pub held_none: String,
    pub held_ending: String,
    pub held_for: String,
    pub restricted_note: String,
    pub terms_changed: String,
    pub objected_note: String,
    pub choices_heading: String,
    pub consent_intro: String,
    pub no_consents: String,
    pub sale_legend: String,
    pub sale_opt_out: String,
    pub gpc_on: String,
    pub save: String,
    pub saved: String,
    pub unchanged: String,
    pub receipt_heading: String,
    pub receipt_json: String,
    pub receipt_html: String,
    pub requests_heading: String,
    pub request_access: String,
    pub request_portability: String,
    pub request_rectification: String,
    pub request_erasure: String,
    pub request_restriction: String,
    pub request_objection: String,
    pub request_limit_sensitive: String,
    pub rectification_details: String,
    pub request_sent: String,
    pub notice_link: String,
    pub link_invalid: String,
    pub link_expired: String,
    pub link_revoked: String,
    pub error_title: String,
    pub notice_version_unknown: String,
    pub form_expired: String,
    pub bad_form: String,
    pub on: String,
    pub off: String,
}

impl PortalStrings {
    /// The label of the button that opens a request of `kind` (`None`: the page offers none).
    #[must_use]
    pub fn request_label(&self, kind: custodia_registry::RequestType) -> Option<&str> {
        use custodia_registry::RequestType;
        match kind {
            RequestType::Access => Some(&self.request_access),
            RequestType::Portability => Some(&self.request_portability),
            RequestType::Rectification => Some(&self.request_rectification),
            RequestType::Erasure => Some(&self.request_erasure),
            RequestType::Restriction => Some(&self.request_restriction),
            RequestType::Objection => Some(&self.request_objection),
            RequestType::LimitSensitive => Some(&self.request_limit_sensitive),
            RequestType::OptOutSale => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptStrings {
    pub title: String,
    pub intro: String,
    pub issued: String,
    pub purpose: String,
    pub state: String,
    pub given: String,
    pub withdrawn: String,
    pub not_asked: String,
    pub when: String,
    pub how: String,
    pub notice: String,
    pub sale: String,
    pub opted_out: String,
    pub opted_in: String,
}

/// Why a language's words cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LocaleError {
    #[error(
        "there are no words for language `{language}`: English is built in; write {} with the keys of the English file (README, \"Languages\")",
        path.display()
    )]
    Missing { language: String, path: PathBuf },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl Locale {
    /// Parses a locale file's `text` (named `path` in errors) for `language`.
    pub fn parse(language: &str, path: &Path, text: &str) -> Result<Self, LocaleError> {
        let strings: Strings = toml::from_str(text).map_err(|e| LocaleError::Invalid {
            path: path.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        check_placeholders(text).map_err(|message| LocaleError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Ok(Self {
            language: language.to_owned(),
            strings,
            digest: bytes,
        })
    }

    /// The built-in English words.
    pub fn english() -> Result<Self, LocaleError> {
        Self::parse("en", Path::new("(built-in)/locales/en.toml"), ENGLISH)
    }

    /// The words for `language`: `<dir>/locales/<language>.toml` when it exists (`dir` is the
    /// registry's directory), else the built-in English ones for `en`.
    pub fn load(dir: &Path, language: &str) -> Result<Self, LocaleError> {
        let path = Self::path(dir, language);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(language, &path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && language == "en" => Self::english(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LocaleError::Missing {
                language: language.to_owned(),
                path,
            }),
            Err(e) => Err(LocaleError::Invalid {
                path,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Where the words for `language` live beside a registry in `dir`.
    #[must_use]
    pub fn path(dir: &Path, language: &str) -> PathBuf {
        dir.join("locales").join(format!("{language}.toml"))
    }
}

/// The `{name}` placeholders of `text`.
fn placeholders(text: &str) -> std::collections::BTreeSet<&str> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}') {
            let name = &rest[..close];
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                out.insert(name);
            }
        }
    }
    out
}

/// Refuses a file whose strings do not fill in exactly what the English ones do: a word
/// dropped or misspelt in braces would leave the notice without a period or a name.
fn check_placeholders(text: &str) -> Result<(), String> {
    let parse = |t: &str| t.parse::<toml::Table>().map_err(|e| one_line(&e.to_string()));
    let (theirs, english) = (parse(text)?, parse(ENGLISH)?);
    for (section, table) in &english {
        let (Some(table), Some(their_table)) = (table.as_table(), theirs.get(section).and_then(toml::Value::as_table))
        else {
            continue;
        };
        for (key, value) in table {
            let (Some(want), Some(got)) = (value.as_str(), their_table.get(key).and_then(toml::Value::as_str)) else {
                continue;
            };
            let (want, got) = (placeholders(want), placeholders(got));
            if want != got {
                let list = |s: &std::collections::BTreeSet<&str>| {
                    if s.is_empty() {
                        "none".to_owned()
                    } else {
                        s.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(", ")
                    }
                };
                return Err(format!(
                    "[{section}] {key} must fill in {} (as the English words do), not {}",
                    list(&want),
                    list(&got)
                ));
            }
        }
    }
    Ok(())
}

/// A TOML error's message on one line (its source excerpt dropped): `line N, column M: ...`.
fn one_line(message: &str) -> String {
    let mut lines = message.lines().filter(|l| !l.trim().is_empty());
    let head = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("TOML parse error at ");
    let reason = message.lines().last().unwrap_or_default().trim();
    if reason == head {
        head.to_owned()
    } else {
        format!("{head}: {reason}")
    }
}

/// `template` with each `{name}` replaced by its value, in one pass (a value is never read
/// for placeholders itself). Unknown names stay as written.
#[must_use]
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            values
                .iter()
                .find(|(n, _)| *n == &after[..close])
                .map(|(_, v)| (close, v))
        });
        match value {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_complete_and_a_missing_or_unknown_key_is_named() {
        let en = Locale::english().unwrap();
        assert_eq!(en.strings.portal.save, "Save my choices");
        let missing = ENGLISH.replacen("save = \"Save my choices\"\n", "", 1);
        let e = Locale::parse("en", Path::new("x/en.toml"), &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x/en.toml: ") && e.contains("missing field `save`"),
            "{e}"
        );
        let extra = ENGLISH.replacen("[portal]\n", "[portal]\nsav = \"typo\"\n", 1);
        let e = Locale::parse("en", Path::new("x/en.toml"), &extra)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line ") && e.contains("unknown field `sav`"), "{e}");
    }

    #[test]
    fn a_second_language_is_a_file_beside_the_registry() {
        let dir = tempdir();
        let e = Locale::load(&dir, "de").unwrap_err().to_string();
        assert!(
            e.contains("no words for language `de`") && e.contains("locales/de.toml"),
            "{e}"
        );
        std::fs::create_dir_all(dir.join("locales")).unwrap();
        let german = ENGLISH.replacen("save = \"Save my choices\"", "save = \"Meine Auswahl speichern\"", 1);
        std::fs::write(dir.join("locales/de.toml"), &german).unwrap();
        let de = Locale::load(&dir, "de").unwrap();
        assert_eq!(de.language, "de");
        assert_eq!(de.strings.portal.save, "Meine Auswahl speichern");
        assert_ne!(
            de.digest,
            Locale::english().unwrap().digest,
            "the wording is part of the version"
        );
        assert_eq!(
            Locale::load(&dir, "en").unwrap().digest,
            Locale::english().unwrap().digest
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_must_fill_in_what_english_does() {
        let dropped = ENGLISH.replacen(
            "collection = \"{period} from when we collected it\"",
            "collection = \"from when we collected it\"",
            1,
        );
        let e = Locale::parse("de", Path::new("de.toml"), &dropped)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[retention] collection must fill in {period}") && e.contains("not none"),
            "{e}"
        );
        let misspelt = ENGLISH.replacen("answered within {period}", "answered within {perod}", 1);
        let e = Locale::parse("de", Path::new("de.toml"), &misspelt)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[notice] answered_within must fill in {period}") && e.contains("not {perod}"),
            "{e}"
        );
        // Order and repetition are the language's business.
        let reordered = ENGLISH.replacen(
            "request_sent = \"We received your request ({kind}). Reference {request_id}; we answer by {due}.\"",
            "request_sent = \"Bis {due}: {kind} ({request_id}), {kind}.\"",
            1,
        );
        assert!(Locale::parse("de", Path::new("de.toml"), &reordered).is_ok());
    }

    #[test]
    fn placeholders_are_filled_by_name() {
        assert_eq!(fill("{a} and {b}, {c}", &[("a", "1"), ("b", "{a}")]), "1 and {a}, {c}");
        assert_eq!(fill("{b}{a}", &[("a", "{b}"), ("b", "x")]), "x{b}");
        assert_eq!(fill("{ {a", &[("a", "1")]), "{ {a");
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "custodia-locale-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
