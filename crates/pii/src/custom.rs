//! User-defined recognizers from TOML:
//!
//! ```toml
//! [[recognizer]]
//! entity = "EMPLOYEE_ID"            # upper case, digits and _
//! pattern = "EMP-[0-9]{6}"          # or patterns = [{ name = "...", regex = "...", score = 0.6 }]
//! score = 0.6                       # score of a match (default 0.5)
//! validator = "luhn"                # optional: see validate::VALIDATOR_NAMES
//! validated_score = 0.9             # score when the validator passes (default: keep)
//! context = ["employee", "staff"]   # whole words near a match that raise its score
//! boundary = "word"                 # word (default) | number | none
//! ```

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::recognizers::{Boundary, Check, Meta, Pattern, PatternRecognizer, Recognizer, Tier};
use crate::validate;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    recognizer: Vec<Spec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    entity: String,
    pattern: Option<String>,
    #[serde(default)]
    patterns: Vec<PatternSpec>,
    score: Option<f32>,
    validator: Option<String>,
    validated_score: Option<f32>,
    #[serde(default)]
    context: Vec<String>,
    boundary: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    name: Option<String>,
    regex: String,
    score: Option<f32>,
}

fn valid_entity(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

fn score_ok(s: f32) -> bool {
    (0.0..=1.0).contains(&s)
}

pub(crate) fn parse(origin: &str, text: &str) -> Result<Vec<Box<dyn Recognizer>>> {
    let err = |message: String| Error::Config {
        path: origin.to_owned(),
        message,
    };
    let file: File = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    let mut out: Vec<Box<dyn Recognizer>> = Vec::new();
    for (i, spec) in file.recognizer.into_iter().enumerate() {
        let at = format!("recognizer[{i}]");
        if !valid_entity(&spec.entity) {
            return Err(err(format!(
                "{at}: entity `{}` must be upper case letters, digits and _",
                spec.entity
            )));
        }
        let base = spec.score.unwrap_or(0.5);
        if !score_ok(base) || !spec.validated_score.is_none_or(score_ok) {
            return Err(err(format!("{at}: scores must be between 0 and 1")));
        }
        let mut raw: Vec<PatternSpec> = spec.patterns;
        if let Some(p) = spec.pattern {
            raw.insert(
                0,
                PatternSpec {
                    name: None,
                    regex: p,
                    score: None,
                },
            );
        }
        if raw.is_empty() {
            return Err(err(format!("{at}: needs `pattern` or `patterns`")));
        }
        let mut patterns = Vec::new();
        let mut sources = Vec::new();
        for (k, p) in raw.into_iter().enumerate() {
            let score = p.score.unwrap_or(base);
            if !score_ok(score) {
                return Err(err(format!("{at}: scores must be between 0 and 1")));
            }
            let re = crate::re::Re::with_unicode(&p.regex, true, true)
                .map_err(|e| err(format!("{at}: invalid regex: {e}")))?;
            if re.find_at(b"", 0).is_some() {
                return Err(err(format!("{at}: the regex matches the empty string")));
            }
            let name = p
                .name
                .unwrap_or_else(|| format!("{}_{k}", spec.entity.to_ascii_lowercase()));
            patterns.push(Pattern {
                name: Arc::from(name),
                score,
            });
            sources.push(p.regex);
        }
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        let re = crate::re::Re::many(&sources, true, true).map_err(|e| err(format!("{at}: invalid regex: {e}")))?;
        let check = match spec.validator.as_deref() {
            None | Some("none") => None,
            Some(v) => {
                let test = validate::by_name(v).ok_or_else(|| {
                    err(format!(
                        "{at}: unknown validator `{v}` (one of: none, {})",
                        validate::VALIDATOR_NAMES.join(", ")
                    ))
                })?;
                Some(Check {
                    name: Arc::from(v),
                    test,
                    score: spec.validated_score,
                    checksum: true,
                    required: true,
                })
            }
        };
        let boundary = match spec.boundary.as_deref().unwrap_or("word") {
            "word" => Boundary::Word,
            "number" => Boundary::Number,
            "none" => Boundary::None,
            other => return Err(err(format!("{at}: boundary `{other}` must be word, number or none"))),
        };
        out.push(Box::new(PatternRecognizer {
            re,
            patterns,
            check,
            boundary,
            meta: Meta::new(
                spec.entity.as_str(),
                Tier::Language,
                spec.context.into_iter().map(|c| c.to_lowercase()).collect(),
            ),
            neighbors: true,
            sources: Vec::new(),
            email_edges: false,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::Scanner;

    #[test]
    fn custom_recognizer_with_validator_and_context() -> crate::Result<()> {
        let toml = r#"
            [[recognizer]]
            entity = "EMPLOYEE_ID"
            pattern = "EMP-[0-9]{6}"
            score = 0.3
            context = ["employee"]
            [[recognizer]]
            entity = "LOYALTY_CARD"
            pattern = "[0-9]{10}"
            validator = "luhn"
            validated_score = 0.8
        "#;
        let s = Scanner::builder()
            .custom_toml("test.toml", toml)
            .entities(["EMPLOYEE_ID", "LOYALTY_CARD"])
            .build()?;
        let text = b"employee EMP-123456, card 1234567897 and 1234567890";
        let f = s.scan(text);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(&text[f[0].start..f[0].end], b"EMP-123456");
        assert!(f[0].score > 0.6);
        assert_eq!(&text[f[1].start..f[1].end], b"1234567897");
        Ok(())
    }

    #[test]
    fn bad_files_name_the_problem() {
        for (toml, needle) in [
            ("[[recognizer]]\nentity = \"lower\"\npattern = \"x\"", "upper case"),
            ("[[recognizer]]\nentity = \"A\"\npattern = \"(\"", "invalid regex"),
            ("[[recognizer]]\nentity = \"A\"\npattern = \"x*\"", "empty string"),
            (
                "[[recognizer]]\nentity = \"A\"\npattern = \"x\"\nvalidator = \"nope\"",
                "unknown validator",
            ),
            ("[[recognizer]]\nentity = \"A\"", "needs `pattern`"),
            (
                "[[recognizer]]\nentity = \"A\"\npattern = \"x\"\nscore = 2.0",
                "between 0 and 1",
            ),
            (
                "[[recognizer]]\nentity = \"A\"\npattern = \"x\"\nbogus = 1",
                "unknown field",
            ),
        ] {
            match Scanner::builder().custom_toml("f.toml", toml).build() {
                Err(e) => assert!(e.to_string().contains(needle), "{e}"),
                Ok(_) => panic!("accepted: {toml}"),
            }
        }
    }
}
