//! Parsing and validation: raw TOML (with spans) to the typed model, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::calendar::Zone;
use crate::model::{
    Capability, Collection, ContextSigner, ContextType, Course, DEFAULT_LANGUAGE, DEFAULT_REMIND_DAYS, Field,
    FieldType, LegalBasis, OperatorRules, Organization, OutputForm, Period, Purpose, Recipient, RecipientRole,
    Registry, Retention, RetentionStart, Role,
};
use crate::rules::{RawHolidays, RawJurisdiction, build_rules};
use crate::taxonomy::is_known_category;

/// One problem in a registry file, at `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// `file:line:column`, or `file` alone when the problem has no line (line 0: a file that
    /// cannot be read, or a warning about something the file does not declare).
    #[must_use]
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

/// Where a registry file declares what [`Registry::warnings`] are about, kept by the parser
/// so that a warning names its line as an error does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Places {
    file: String,
    /// The `[organization]` table.
    organization: Option<(usize, usize)>,
    /// `[organization]` `country`: what the holiday calendar and time zone warnings are about.
    country: Option<(usize, usize)>,
    /// The name of each declared table, by kind (`purposes`, `recipients`, `roles`,
    /// `collections`) and name.
    tables: BTreeMap<(&'static str, String), (usize, usize)>,
}

impl Places {
    /// A warning at `place` (none: the file alone).
    pub(crate) fn warning(&self, place: Option<(usize, usize)>, message: String) -> Diagnostic {
        let (line, column) = place.unwrap_or((0, 0));
        Diagnostic {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }

    /// A warning about the `kind` table called `name` (`"purposes"`, `"payment"`).
    pub(crate) fn table(&self, kind: &'static str, name: &str, message: String) -> Diagnostic {
        self.warning(self.tables.get(&(kind, name.to_owned())).copied(), message)
    }

    /// A warning about `[organization]`.
    pub(crate) fn organization(&self, message: String) -> Diagnostic {
        self.warning(self.organization, message)
    }

    /// A warning about `[organization]` `country`.
    pub(crate) fn country(&self, message: String) -> Diagnostic {
        self.warning(self.country.or(self.organization), message)
    }

    /// The first of the `kind` tables in the file.
    pub(crate) fn first(&self, kind: &'static str) -> Option<(usize, usize)> {
        self.tables
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, place)| *place)
            .min()
    }
}

/// Every problem found in a registry file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct RegistryError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    organization: Option<Spanned<RawOrganization>>,
    #[serde(default)]
    collections: BTreeMap<Spanned<String>, RawCollection>,
    #[serde(default)]
    purposes: BTreeMap<Spanned<String>, RawPurpose>,
    #[serde(default)]
    recipients: BTreeMap<Spanned<String>, RawRecipient>,
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, RawRole>,
    #[serde(default)]
    policy_context: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    context_signers: BTreeMap<Spanned<String>, RawContextSigner>,
    #[serde(default)]
    jurisdictions: BTreeMap<Spanned<String>, RawJurisdiction>,
    #[serde(default)]
    holidays: BTreeMap<Spanned<String>, RawHolidays>,
    operators: Option<Spanned<RawOperators>>,
    #[serde(default)]
    training: BTreeMap<Spanned<String>, RawCourse>,
    #[serde(default)]
    breach_laws: BTreeMap<Spanned<String>, crate::breach::RawBreachLaw>,
    incidents: Option<crate::breach::RawIncidents>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperators {
    session_minutes: Option<Spanned<i64>>,
    max_failed_logins: Option<Spanned<i64>>,
    break_glass_minutes: Option<Spanned<i64>>,
    #[serde(default)]
    break_glass_roles: Vec<Spanned<String>>,
    alert_webhook: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCourse {
    description: Spanned<String>,
    valid_days: Spanned<i64>,
    remind_days: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContextSigner {
    description: Option<Spanned<String>>,
    attributes: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    name: Spanned<String>,
    contact: Spanned<String>,
    dpo: Option<Spanned<String>>,
    supervisory_authority: Spanned<String>,
    country: Spanned<String>,
    time_zone: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    representative: Option<Spanned<String>>,
    security_measures: Option<Spanned<String>>,
    automated_decisions: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    description: Option<Spanned<String>>,
    #[serde(default)]
    fields: BTreeMap<Spanned<String>, RawField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    category: Spanned<String>,
    #[serde(rename = "type")]
    field_type: Spanned<String>,
    #[serde(default)]
    searchable: bool,
    default_output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurpose {
    description: Spanned<String>,
    legal_basis: Spanned<String>,
    legitimate_interest: Option<Spanned<String>>,
    fields: Spanned<Vec<Spanned<String>>>,
    retention: Option<Spanned<RawRetention>>,
    /// Purposes whose values this one may also read (GDPR Art. 6(4)).
    #[serde(default)]
    compatible_with: Vec<Spanned<String>>,
    #[serde(default)]
    recipients: Vec<Spanned<String>>,
    #[serde(default)]
    sale_or_sharing: bool,
    /// Spanned: only some legal bases may keep data past an erasure request.
    survives_erasure: Option<Spanned<bool>>,
    #[serde(default)]
    allowed_during_restriction: bool,
    #[serde(default)]
    direct_marketing: bool,
    source: Option<Spanned<String>>,
    /// The Fides data use (fideslang's taxonomy) this purpose is, for `custodia fides export`.
    data_use: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    period: Spanned<String>,
    from: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: Spanned<String>,
    country: Spanned<String>,
    role: Spanned<String>,
    safeguard: Option<Spanned<String>>,
    webhook: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    description: Option<Spanned<String>>,
    purposes: Spanned<Vec<Spanned<String>>>,
    /// Purposes (of `purposes`) under which the role may create and change records.
    #[serde(default)]
    write: Vec<Spanned<String>>,
    /// Purposes (of `purposes`) under which the role may delete whole records.
    #[serde(default)]
    delete: Vec<Spanned<String>>,
    #[serde(default)]
    output: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
    grantable_roles: Option<Vec<Spanned<String>>>,
    // Short forms of the capabilities of the same names (registries written before
    // `capabilities` existed use them).
    #[serde(default)]
    manage_principals: bool,
    #[serde(default)]
    read_audit: bool,
    #[serde(default)]
    manage_consent: bool,
}

/// Whether `ch` may not stand in registry text: control characters (`\r`, `\0`, escape, ...)
/// and the bidirectional overrides that make text read differently from what it holds. Line
/// breaks and tabs are allowed in descriptions only.
fn forbidden_char(ch: char, multiline: bool) -> bool {
    if multiline && (ch == '\n' || ch == '\t') {
        return false;
    }
    ch.is_control() || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Collects diagnostics with positions computed from byte offsets.
pub(crate) struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    /// A checker of `text`, named `file` in diagnostics.
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Self {
            file,
            text,
            diagnostics: Vec::new(),
        }
    }

    /// The line and column (from 1) of byte `offset`.
    pub(crate) fn place(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset.min(self.text.len())).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    pub(crate) fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = self.place(offset);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn name<T>(&mut self, kind: &str, name: &Spanned<T>) -> bool
    where
        T: AsRef<str>,
    {
        let s = name.get_ref().as_ref();
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            self.at(
                name.span().start,
                format!("{kind} name `{s}` must be 1-63 characters of a-z, 0-9 and _, starting with a letter"),
            );
        }
        ok
    }

    /// Refuses control characters in free text (`multiline`: descriptions, which may hold
    /// line breaks and tabs).
    pub(crate) fn text(&mut self, what: &str, value: &Spanned<String>, multiline: bool) -> String {
        if let Some(ch) = value.get_ref().chars().find(|&ch| forbidden_char(ch, multiline)) {
            self.at(
                value.span().start,
                format!(
                    "{what} holds the control character U+{:04X}; registry text may not hold control characters{}",
                    u32::from(ch),
                    if multiline {
                        " other than line breaks and tabs"
                    } else {
                        ""
                    }
                ),
            );
        }
        value.get_ref().clone()
    }

    pub(crate) fn opt_text(&mut self, what: &str, value: Option<&Spanned<String>>, multiline: bool) -> Option<String> {
        value.map(|v| self.text(what, v, multiline))
    }

    /// A webhook URL the vault sends to ([`crate::webhook_target`]): `https://`, or `http://`
    /// to the local host only.
    pub(crate) fn webhook(&mut self, what: &str, value: &Spanned<String>) {
        if crate::webhook_target(value.get_ref()).is_none() {
            self.at(
                value.span().start,
                format!(
                    "{what} must be an https:// URL to a host name or address, or http:// to localhost, \
                     127.0.0.1 or [::1] (an optional port; no user name, no fragment)"
                ),
            );
        }
    }

    /// A whole number in `lo..=hi`.
    pub(crate) fn within(&mut self, what: &str, value: &Spanned<i64>, lo: u32, hi: u32) -> u32 {
        let v = *value.get_ref();
        match u32::try_from(v) {
            Ok(n) if (lo..=hi).contains(&n) => n,
            _ => {
                self.at(
                    value.span().start,
                    format!("{what} must be between {lo} and {hi}, got {v}"),
                );
                lo
            }
        }
    }

    pub(crate) fn non_empty(&mut self, what: &str, value: &Spanned<String>) -> String {
        self.text(what, value, what.ends_with("description"));
        let v = value.get_ref().trim();
        if v.is_empty() {
            self.at(value.span().start, format!("{what} must not be empty"));
        }
        v.to_owned()
    }

    /// A language tag as the notice and the preference center are written in: `en`, `de`,
    /// `pt-BR` (two or three lowercase letters, optionally a hyphen and a region).
    fn language(&mut self, what: &str, value: &Spanned<String>) -> String {
        let v = value.get_ref();
        let (lang, region) = v.split_once('-').unwrap_or((v, ""));
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.is_empty() && !v.contains('-')
            || region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase());
        if !lang_ok || !region_ok {
            self.at(
                value.span().start,
                format!("{what} must be a language tag such as `en`, `de` or `pt-BR`, got `{v}`"),
            );
        }
        v.clone()
    }

    /// An IANA time zone name (`Europe/Berlin`, `America/Los_Angeles`, `UTC`); `None`, with
    /// an error, when it names none.
    pub(crate) fn time_zone(&mut self, what: &str, value: &Spanned<String>) -> Option<Zone> {
        let zone = Zone::named(value.get_ref());
        if zone.is_none() {
            self.at(
                value.span().start,
                format!(
                    "{what} must be an IANA time zone name such as `Europe/Berlin`, `America/Los_Angeles` or `UTC`, got `{}`",
                    value.get_ref()
                ),
            );
        }
        zone
    }

    fn country(&mut self, what: &str, value: &Spanned<String>) -> String {
        let v = value.get_ref();
        if v.len() != 2 || !v.bytes().all(|b| b.is_ascii_uppercase()) {
            self.at(
                value.span().start,
                format!("{what} must be an ISO 3166-1 alpha-2 code such as `GB`, got `{v}`"),
            );
        }
        v.clone()
    }

    pub(crate) fn one_of<T>(
        &mut self,
        what: &str,
        value: &Spanned<String>,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let parsed = parse(value.get_ref());
        if parsed.is_none() {
            self.at(
                value.span().start,
                format!(
                    "unknown {what} `{}`; expected one of: {}",
                    value.get_ref(),
                    names.join(", ")
                ),
            );
        }
        parsed
    }
}

impl Registry {
    /// Parses and validates registry `text`; `file` names it in diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Self, RegistryError> {
        let mut c = Checker::new(file, text);
        let raw: RawRegistry = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                // The TOML parser gives no message when the text ends where a value should
                // be (`key =`, `key = [`, with nothing after them).
                let message = match e.message().trim() {
                    "" => "invalid TOML: the text ends where a value should be",
                    m => m,
                };
                c.at(offset, message.to_owned());
                return Err(RegistryError {
                    diagnostics: c.diagnostics,
                });
            }
        };
        let registry = build(&mut c, raw);
        if c.diagnostics.is_empty() {
            Ok(registry)
        } else {
            c.diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(RegistryError {
                diagnostics: c.diagnostics,
            })
        }
    }

    /// Reads and parses a registry file.
    pub fn load(path: &std::path::Path) -> Result<Self, RegistryError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&file, &text),
            Err(e) => Err(RegistryError {
                diagnostics: vec![Diagnostic {
                    file,
                    line: 0,
                    column: 0,
                    message: format!("cannot read: {e}"),
                }],
            }),
        }
    }
}

fn build(c: &mut Checker<'_>, raw: RawRegistry) -> Registry {
    let places = places(c, &raw);
    let organization = match &raw.organization {
        Some(org) => {
            let o = org.get_ref();
            Organization {
                name: c.non_empty("organization.name", &o.name),
                contact: c.non_empty("organization.contact", &o.contact),
                dpo: c.opt_text("organization.dpo", o.dpo.as_ref(), false),
                supervisory_authority: c.non_empty("organization.supervisory_authority", &o.supervisory_authority),
                country: c.country("organization.country", &o.country),
                time_zone: o
                    .time_zone
                    .as_ref()
                    .and_then(|z| c.time_zone("organization.time_zone", z)),
                language: o.language.as_ref().map_or_else(
                    || DEFAULT_LANGUAGE.to_owned(),
                    |l| c.language("organization.language", l),
                ),
                representative: c.opt_text("organization.representative", o.representative.as_ref(), false),
                security_measures: c.opt_text("organization.security_measures", o.security_measures.as_ref(), true),
                automated_decisions: c.opt_text(
                    "organization.automated_decisions",
                    o.automated_decisions.as_ref(),
                    true,
                ),
            }
        }
        None => {
            c.at(
                0,
                "missing [organization] table (name, contact, supervisory_authority, country)",
            );
            Organization {
                name: String::new(),
                contact: String::new(),
                dpo: None,
                supervisory_authority: String::new(),
                country: String::new(),
                time_zone: None,
                language: DEFAULT_LANGUAGE.to_owned(),
                representative: None,
                security_measures: None,
                automated_decisions: None,
            }
        }
    };

    let mut collections = BTreeMap::new();
    for (name, rc) in &raw.collections {
        c.name("collection", name);
        if rc.fields.is_empty() {
            c.at(
                name.span().start,
                format!("collection `{}` declares no fields", name.get_ref()),
            );
        }
        let mut fields = BTreeMap::new();
        for (fname, rf) in &rc.fields {
            c.name("field", fname);
            if !is_known_category(rf.category.get_ref()) {
                c.at(
                    rf.category.span().start,
                    format!(
                        "`{}` is not a Fides data category (e.g. user.contact.email, user.name) or a sub-category of one",
                        rf.category.get_ref()
                    ),
                );
            }
            let field_type = c.one_of("field type", &rf.field_type, FieldType::NAMES, FieldType::from_name);
            let default_output = match &rf.default_output {
                Some(o) => c.one_of("output form", o, OutputForm::NAMES, OutputForm::from_name),
                None => Some(OutputForm::Plain),
            };
            fields.insert(
                fname.get_ref().clone(),
                Field {
                    name: fname.get_ref().clone(),
                    category: rf.category.get_ref().clone(),
                    field_type: field_type.unwrap_or(FieldType::String),
                    searchable: rf.searchable,
                    default_output: default_output.unwrap_or(OutputForm::Denied),
                },
            );
        }
        collections.insert(
            name.get_ref().clone(),
            Collection {
                name: name.get_ref().clone(),
                description: c
                    .opt_text("collection description", rc.description.as_ref(), true)
                    .unwrap_or_default(),
                fields,
            },
        );
    }

    let mut recipients = BTreeMap::new();
    for (name, rr) in &raw.recipients {
        c.name("recipient", name);
        let role = c.one_of(
            "recipient role",
            &rr.role,
            &["processor", "controller", "joint_controller"],
            |s| match s {
                "processor" => Some(RecipientRole::Processor),
                "controller" => Some(RecipientRole::Controller),
                "joint_controller" => Some(RecipientRole::JointController),
                _ => None,
            },
        );
        if let Some(hook) = &rr.webhook {
            c.webhook("webhook", hook);
        }
        recipients.insert(
            name.get_ref().clone(),
            Recipient {
                name: name.get_ref().clone(),
                display_name: c.non_empty("recipient name", &rr.name),
                country: c.country("recipient country", &rr.country),
                role: role.unwrap_or(RecipientRole::Processor),
                safeguard: c.opt_text("recipient safeguard", rr.safeguard.as_ref(), false),
                webhook: c.opt_text("recipient webhook", rr.webhook.as_ref(), false),
            },
        );
    }

    let mut purposes = BTreeMap::new();
    // Purposes whose legal basis is misspelt (already reported): checks that depend on the
    // basis skip them rather than repeat the error in other words.
    let mut basis_unknown = BTreeSet::new();
    for (name, rp) in &raw.purposes {
        c.name("purpose", name);
        let description = c.non_empty("purpose description", &rp.description);
        let basis = c.one_of("legal basis", &rp.legal_basis, LegalBasis::NAMES, |s| match s {
            "consent" => Some(LegalBasis::Consent),
            "contract" => Some(LegalBasis::Contract),
            "legal_obligation" => Some(LegalBasis::LegalObligation),
            "vital_interests" => Some(LegalBasis::VitalInterests),
            "public_task" => Some(LegalBasis::PublicTask),
            "legitimate_interests" => Some(LegalBasis::LegitimateInterests {
                interest: String::new(),
            }),
            _ => None,
        });
        if basis.is_none() {
            basis_unknown.insert(name.get_ref().clone());
        }
        let legal_basis = match (basis, &rp.legitimate_interest) {
            (Some(LegalBasis::LegitimateInterests { .. }), Some(interest)) => LegalBasis::LegitimateInterests {
                interest: c.non_empty("legitimate_interest", interest),
            },
            (Some(LegalBasis::LegitimateInterests { .. }), None) => {
                c.at(
                    rp.legal_basis.span().start,
                    "legal basis `legitimate_interests` needs `legitimate_interest` stating the interest pursued",
                );
                LegalBasis::LegitimateInterests {
                    interest: String::new(),
                }
            }
            (Some(other), Some(interest)) => {
                c.at(
                    interest.span().start,
                    format!(
                        "`legitimate_interest` only applies to legal basis `legitimate_interests`, not `{}`",
                        other.name()
                    ),
                );
                other
            }
            (Some(other), None) => other,
            (None, _) => LegalBasis::Consent,
        };
        let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if rp.fields.get_ref().is_empty() {
            c.at(
                rp.fields.span().start,
                format!("purpose `{}` declares no fields", name.get_ref()),
            );
        }
        for qualified in rp.fields.get_ref() {
            if let Some((coll, field)) = resolve_field(c, &collections, qualified)
                && !fields.entry(coll.clone()).or_default().insert(field.clone())
            {
                c.at(
                    qualified.span().start,
                    format!("field `{coll}.{field}` is listed twice"),
                );
            }
        }
        let known_basis = (!basis_unknown.contains(name.get_ref())).then_some(&legal_basis);
        let retention = rp
            .retention
            .as_ref()
            .map(|r| parse_retention(c, name.get_ref(), known_basis, r.get_ref()));
        let survives_erasure = rp.survives_erasure.as_ref().filter(|s| *s.get_ref());
        if let (Some(flag), Some(basis)) = (survives_erasure, known_basis)
            && !basis.may_survive_erasure()
        {
            c.at(
                flag.span().start,
                format!(
                    "purpose `{}` has legal basis `{}`, which cannot keep data past an erasure request: only `legal_obligation` and `public_task` may have `survives_erasure = true` (GDPR Art. 17(3)(b): a legal obligation, or a task in the public interest or in official authority, overrides the request; consent is withdrawn by it); to keep data as evidence for a legal claim (Art. 17(3)(e)), place a legal hold instead",
                    name.get_ref(),
                    basis.name()
                ),
            );
        }
        if let Some(data_use) = &rp.data_use
            && !crate::taxonomy::is_known_data_use(data_use.get_ref())
        {
            c.at(
                data_use.span().start,
                format!(
                    "`{}` is not a Fides data use (e.g. essential.service, marketing.communications.email, analytics.reporting)",
                    data_use.get_ref()
                ),
            );
        }
        for r in &rp.recipients {
            if !recipients.contains_key(r.get_ref()) {
                c.at(
                    r.span().start,
                    format!(
                        "unknown recipient `{}`; declare it under [recipients.{}]",
                        r.get_ref(),
                        r.get_ref()
                    ),
                );
            }
        }
        purposes.insert(
            name.get_ref().clone(),
            Purpose {
                name: name.get_ref().clone(),
                description,
                legal_basis,
                fields,
                retention,
                compatible_with: BTreeSet::new(),
                recipients: rp.recipients.iter().map(|r| r.get_ref().clone()).collect(),
                sale_or_sharing: rp.sale_or_sharing,
                survives_erasure: survives_erasure.is_some(),
                allowed_during_restriction: rp.allowed_during_restriction,
                direct_marketing: rp.direct_marketing,
                source: rp.source.as_ref().map(|s| c.non_empty("purpose source", s)),
                data_use: rp.data_use.as_ref().map(|d| d.get_ref().clone()),
            },
        );
    }

    // Every purpose's basis is known only now.
    for (name, rp) in &raw.purposes {
        let compatible = compatible_purposes(c, &purposes, &basis_unknown, name.get_ref(), &rp.compatible_with);
        if let Some(p) = purposes.get_mut(name.get_ref()) {
            p.compatible_with = compatible;
        }
    }

    let mut roles = BTreeMap::new();
    for (name, rr) in &raw.roles {
        let role = build_role(c, &purposes, &collections, &raw.roles, name, rr);
        roles.insert(role.name.clone(), role);
    }

    let mut policy_context = BTreeMap::new();
    for (name, ty) in &raw.policy_context {
        c.name("policy context attribute", name);
        let parsed = c.one_of("context type", ty, &["bool", "string", "long"], |s| match s {
            "bool" => Some(ContextType::Bool),
            "string" => Some(ContextType::String),
            "long" => Some(ContextType::Long),
            _ => None,
        });
        if let Some(parsed) = parsed {
            policy_context.insert(name.get_ref().clone(), parsed);
        }
    }

    let mut context_signers = BTreeMap::new();
    for (name, raw_signer) in &raw.context_signers {
        c.name("context signer", name);
        let mut attributes = BTreeSet::new();
        for a in raw_signer.attributes.get_ref() {
            if policy_context.contains_key(a.get_ref()) {
                attributes.insert(a.get_ref().clone());
            } else {
                c.at(
                    a.span().start,
                    format!(
                        "context signer `{}` names attribute `{}`, which [policy_context] does not declare",
                        name.get_ref(),
                        a.get_ref()
                    ),
                );
            }
        }
        if raw_signer.attributes.get_ref().is_empty() {
            c.at(
                raw_signer.attributes.span().start,
                format!(
                    "context signer `{}` must name the attributes it may sign",
                    name.get_ref()
                ),
            );
        }
        let signer = ContextSigner {
            name: name.get_ref().clone(),
            description: c
                .opt_text("context signer description", raw_signer.description.as_ref(), true)
                .unwrap_or_default(),
            attributes,
        };
        context_signers.insert(signer.name.clone(), signer);
    }

    let (jurisdictions, holidays) = build_rules(c, &raw.jurisdictions, &raw.holidays, &organization);
    let operators = build_operators(c, raw.operators.as_ref(), &roles);
    let (breach_laws, incidents) = crate::breach::build_breach_laws(
        c,
        &raw.breach_laws,
        raw.incidents.as_ref(),
        &organization.supervisory_authority,
        &jurisdictions.keys().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut training = BTreeMap::new();
    for (name, rc) in &raw.training {
        c.name("course", name);
        let valid_days = c.within("training valid_days", &rc.valid_days, 1, 3650);
        let remind_days = rc
            .remind_days
            .as_ref()
            .map_or(DEFAULT_REMIND_DAYS.min(valid_days), |d| {
                c.within("training remind_days", d, 0, valid_days)
            });
        training.insert(
            name.get_ref().clone(),
            Course {
                name: name.get_ref().clone(),
                description: c.non_empty("course description", &rc.description),
                valid_days,
                remind_days,
            },
        );
    }

    Registry {
        organization,
        collections,
        purposes,
        recipients,
        roles,
        policy_context,
        context_signers,
        jurisdictions,
        holidays,
        operators,
        training,
        breach_laws,
        incidents,
        places,
    }
}

/// Where `raw` declares what warnings may be about.
fn places(c: &Checker<'_>, raw: &RawRegistry) -> Places {
    let mut tables = BTreeMap::new();
    let names = [
        ("collections", raw.collections.keys().collect::<Vec<_>>()),
        ("purposes", raw.purposes.keys().collect()),
        ("recipients", raw.recipients.keys().collect()),
        ("roles", raw.roles.keys().collect()),
    ];
    for (kind, keys) in names {
        for name in keys {
            tables.insert((kind, name.get_ref().clone()), c.place(name.span().start));
        }
    }
    Places {
        file: c.file.to_owned(),
        organization: raw.organization.as_ref().map(|o| c.place(o.span().start)),
        country: raw
            .organization
            .as_ref()
            .map(|o| c.place(o.get_ref().country.span().start)),
        tables,
    }
}

fn build_operators(
    c: &mut Checker<'_>,
    raw: Option<&Spanned<RawOperators>>,
    roles: &BTreeMap<String, Role>,
) -> OperatorRules {
    let defaults = OperatorRules::default();
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return defaults;
    };
    if let Some(hook) = &raw.alert_webhook {
        c.webhook("operators.alert_webhook", hook);
    }
    let pick = |c: &mut Checker<'_>, what, v: &Option<Spanned<i64>>, lo, hi, default| {
        v.as_ref().map_or(default, |v| c.within(what, v, lo, hi))
    };
    OperatorRules {
        session_minutes: pick(
            c,
            "operators.session_minutes",
            &raw.session_minutes,
            5,
            720,
            defaults.session_minutes,
        ),
        max_failed_logins: pick(
            c,
            "operators.max_failed_logins",
            &raw.max_failed_logins,
            3,
            20,
            defaults.max_failed_logins,
        ),
        break_glass_minutes: pick(
            c,
            "operators.break_glass_minutes",
            &raw.break_glass_minutes,
            5,
            240,
            defaults.break_glass_minutes,
        ),
        break_glass_roles: raw
            .break_glass_roles
            .iter()
            .filter(|r| {
                let known = roles.contains_key(r.get_ref());
                if !known {
                    c.at(
                        r.span().start,
                        format!(
                            "operators.break_glass_roles names `{}`, which is not a role",
                            r.get_ref()
                        ),
                    );
                }
                known
            })
            .map(|r| r.get_ref().clone())
            .collect(),
        alert_webhook: raw.alert_webhook.as_ref().map(|h| h.get_ref().clone()),
    }
}

fn build_role(
    c: &mut Checker<'_>,
    purposes: &BTreeMap<String, Purpose>,
    collections: &BTreeMap<String, Collection>,
    all_roles: &BTreeMap<Spanned<String>, RawRole>,
    name: &Spanned<String>,
    rr: &RawRole,
) -> Role {
    c.name("role", name);
    let role_name = name.get_ref();
    let mut role_purposes = BTreeSet::new();
    for p in rr.purposes.get_ref() {
        if p.get_ref() == "*" {
            role_purposes.extend(purposes.keys().cloned());
        } else if purposes.contains_key(p.get_ref()) {
            role_purposes.insert(p.get_ref().clone());
        } else {
            c.at(
                p.span().start,
                format!("unknown purpose `{}` in role `{role_name}`", p.get_ref()),
            );
        }
    }
    // `write` and `delete` name purposes of the role's own (`"*"`: all of them).
    let mut subset = |key: &str, list: &[Spanned<String>]| {
        let mut out = BTreeSet::new();
        for p in list {
            if p.get_ref() == "*" {
                out.extend(role_purposes.iter().cloned());
            } else if role_purposes.contains(p.get_ref()) {
                out.insert(p.get_ref().clone());
            } else {
                c.at(
                    p.span().start,
                    format!(
                        "`{key}` names purpose `{}`, which role `{role_name}` may not invoke; list it in `purposes` too",
                        p.get_ref()
                    ),
                );
            }
        }
        out
    };
    let write = subset("write", &rr.write);
    let delete = subset("delete", &rr.delete);
    let mut output: BTreeMap<String, BTreeMap<String, OutputForm>> = BTreeMap::new();
    for (qualified, form) in &rr.output {
        let resolved = resolve_field(c, collections, qualified);
        let form = c.one_of("output form", form, OutputForm::NAMES, OutputForm::from_name);
        if let (Some((coll, field)), Some(form)) = (resolved, form) {
            output.entry(coll).or_default().insert(field, form);
        }
    }
    // A role that reads a field as a (deterministic) token and may write it under a purpose
    // tests guesses: it writes one into a subject of its own and reads back the token every
    // subject holding that value shows it (the oracle search and deterministic tokenize are
    // refused to it for). One or the other, never both.
    for purpose in write.iter().filter_map(|p| purposes.get(p)) {
        for (coll, fields) in &purpose.fields {
            for field in fields {
                let form = output.get(coll).and_then(|f| f.get(field)).copied().or_else(|| {
                    collections
                        .get(coll)
                        .and_then(|c| c.fields.get(field))
                        .map(|f| f.default_output)
                });
                if form != Some(OutputForm::Token) {
                    continue;
                }
                let at = rr
                    .write
                    .iter()
                    .find(|w| w.get_ref() == &purpose.name || w.get_ref() == "*")
                    .map_or(name.span().start, |w| w.span().start);
                c.at(
                    at,
                    format!(
                        "role `{role_name}` may write `{coll}.{field}` under purpose `{}` and reads it as a token: a guess written and read back is told apart from every subject's value by its token, the oracle search and deterministic tokenize are refused to it for; give it another output form for the field, or take `{}` out of `write`",
                        purpose.name, purpose.name
                    ),
                );
            }
        }
    }
    let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
    let mut capabilities: BTreeSet<Capability> = rr
        .capabilities
        .iter()
        .filter_map(|cap| c.one_of("capability", cap, &names, Capability::from_name))
        .collect();
    for (short, cap) in [
        (rr.manage_principals, Capability::ManagePrincipals),
        (rr.read_audit, Capability::ReadAudit),
        (rr.manage_consent, Capability::ManageConsent),
    ] {
        if short {
            capabilities.insert(cap);
        }
    }
    let grantable_roles = match &rr.grantable_roles {
        None => BTreeSet::from([role_name.clone()]),
        Some(list) => {
            if !capabilities.contains(&Capability::ManagePrincipals)
                && let Some(first) = list.first()
            {
                c.at(
                    first.span().start,
                    format!("`grantable_roles` of role `{role_name}` needs the manage_principals capability"),
                );
            }
            let mut out = BTreeSet::new();
            for r in list {
                if r.get_ref() == "*" {
                    out.extend(all_roles.keys().map(|k| k.get_ref().clone()));
                } else if all_roles.keys().any(|k| k.get_ref() == r.get_ref()) {
                    out.insert(r.get_ref().clone());
                } else {
                    c.at(
                        r.span().start,
                        format!(
                            "unknown role `{}` in `grantable_roles` of role `{role_name}`",
                            r.get_ref()
                        ),
                    );
                }
            }
            out
        }
    };
    Role {
        name: role_name.clone(),
        description: c
            .opt_text("role description", rr.description.as_ref(), true)
            .unwrap_or_default(),
        purposes: role_purposes,
        write,
        delete,
        output,
        capabilities,
        grantable_roles,
    }
}

/// Resolves `collection.field` against the declared collections.
fn resolve_field(
    c: &mut Checker<'_>,
    collections: &BTreeMap<String, Collection>,
    qualified: &Spanned<String>,
) -> Option<(String, String)> {
    let at = qualified.span().start;
    let Some((coll, field)) = qualified.get_ref().split_once('.') else {
        c.at(
            at,
            format!("`{}` must name a field as `collection.field`", qualified.get_ref()),
        );
        return None;
    };
    let Some(collection) = collections.get(coll) else {
        c.at(at, format!("unknown collection `{coll}` in `{}`", qualified.get_ref()));
        return None;
    };
    if !collection.fields.contains_key(field) {
        let known: Vec<&str> = collection.fields.keys().map(String::as_str).collect();
        c.at(
            at,
            format!(
                "collection `{coll}` has no field `{field}`; it has: {}",
                known.join(", ")
            ),
        );
        return None;
    }
    Some((coll.to_owned(), field.to_owned()))
}

/// The purposes `reader` declares itself compatible with (GDPR Art. 6(4)): each must be
/// another declared purpose, listed once, whose legal basis is not consent (not checked for
/// the purposes of `basis_unknown`, whose basis is misspelt).
fn compatible_purposes(
    c: &mut Checker<'_>,
    purposes: &BTreeMap<String, Purpose>,
    basis_unknown: &BTreeSet<String>,
    reader: &str,
    list: &[Spanned<String>],
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for item in list {
        let holder = item.get_ref();
        let at = item.span().start;
        if !seen.insert(holder) {
            c.at(
                at,
                format!("purpose `{holder}` is listed twice in `compatible_with` of purpose `{reader}`"),
            );
        } else if holder == reader {
            c.at(
                at,
                format!(
                    "purpose `{reader}` lists itself in `compatible_with`; a purpose always reads its own values, so list only others"
                ),
            );
        } else if let Some(p) = purposes.get(holder) {
            if p.legal_basis == LegalBasis::Consent && !basis_unknown.contains(holder) {
                c.at(
                    at,
                    format!(
                        "purpose `{reader}` may not be compatible with `{holder}`, whose legal basis is `consent`: data given on consent covers that purpose alone (GDPR Art. 6(4) assesses compatibility only for processing not based on consent; EDPB Guidelines 05/2020 on consent: a controller cannot swap the lawful basis); collect it for `{reader}` on its own basis instead"
                    ),
                );
            } else {
                out.insert(holder.clone());
            }
        } else {
            let known: Vec<&str> = purposes.keys().map(String::as_str).collect();
            c.at(
                at,
                format!(
                    "unknown purpose `{holder}` in `compatible_with` of purpose `{reader}`; the purposes are: {}",
                    known.join(", ")
                ),
            );
        }
    }
    out
}

/// `basis`: the purpose's legal basis, `None` when it is misspelt (and reported).
fn parse_retention(c: &mut Checker<'_>, purpose: &str, basis: Option<&LegalBasis>, raw: &RawRetention) -> Retention {
    let p = raw.period.get_ref().trim();
    let (digits, unit) = p.split_at(p.len().saturating_sub(1));
    let n = digits.parse::<u32>().ok().filter(|n| (1..=1200).contains(n));
    let period = match (n, unit) {
        (Some(n), "d") => Some(Period::Days(n)),
        (Some(n), "m") => Some(Period::Months(n)),
        (Some(n), "y") => Some(Period::Years(n)),
        _ => None,
    };
    if period.is_none() {
        c.at(raw.period.span().start, format!("retention period `{p}` must be a number from 1 to 1200 followed by d, m or y (e.g. `30d`, `13m`, `10y`)"));
    }
    let from = c.one_of(
        "retention start",
        &raw.from,
        RetentionStart::NAMES,
        RetentionStart::from_name,
    );
    if let (Some(RetentionStart::ConsentWithdrawn), Some(basis)) = (from, basis)
        && *basis != LegalBasis::Consent
    {
        c.at(
            raw.from.span().start,
            format!(
                "retention from `consent_withdrawn` needs legal basis `consent`, but purpose `{purpose}` has `{}`: there is no consent to withdraw; use `collection`, `last_update` or `last_activity`",
                basis.name()
            ),
        );
    }
    Retention {
        period: period.unwrap_or(Period::Days(1)),
        from: from.unwrap_or(RetentionStart::Collection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EXAMPLE_REGISTRY;

    fn errors(text: &str) -> Vec<String> {
        Registry::parse("r.toml", text)
            .unwrap_err()
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// A context signer signs only declared attributes, and names at least one.
    #[test]
    fn context_signers_sign_declared_attributes() {
        let reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        let ticketing = &reg.context_signers["ticketing"];
        assert!(ticketing.attributes.contains("open_ticket"));
        let text = EXAMPLE_REGISTRY.replacen("attributes = [\"open_ticket\"]", "attributes = [\"vip\"]", 1);
        let e = errors(&text);
        assert!(
            e.iter().any(|m| m.contains("`vip`") && m.contains("[policy_context]")),
            "{e:?}"
        );
        let text = EXAMPLE_REGISTRY.replacen("attributes = [\"open_ticket\"]", "attributes = []", 1);
        assert!(errors(&text).iter().any(|m| m.contains("must name the attributes")));
    }

    /// A role that sees a field as a token may not write it: write a guess, read its token
    /// back, compare with every subject's (review: the oracle search was closed for).
    #[test]
    fn a_role_writes_no_field_it_reads_as_a_token() {
        let analysts = "purposes = [\"analytics\"]\n[roles.data_science.output]";
        assert!(EXAMPLE_REGISTRY.contains(analysts));
        let text = EXAMPLE_REGISTRY.replacen(
            analysts,
            "purposes = [\"analytics\"]\nwrite = [\"analytics\"]\n[roles.data_science.output]",
            1,
        );
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|m| m.contains("`customers.email`") && m.contains("reads it as a token")),
            "{e:?}"
        );
        // reading it another way, it may write it
        let text = text.replacen("\"customers.email\" = \"token\"", "\"customers.email\" = \"masked\"", 1);
        assert!(Registry::parse("r.toml", &text).is_ok());
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = errors("[organization]\nname = \"x\"\ncontact = \n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("r.toml:3:"), "{e:?}");
    }

    /// Found by fuzzing: `key =` at the very end of the text was reported with an empty
    /// message (`r.toml:1:3: `): the TOML parser gives none there.
    #[test]
    fn a_key_without_a_value_at_the_end_is_explained() {
        for text in ["A=", "a =", "[organization]\nname =", "a=1\nb=", "q = [ # comment"] {
            let e = errors(text);
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].starts_with("r.toml:"), "{e:?}");
            assert!(
                e[0].ends_with(": invalid TOML: the text ends where a value should be"),
                "{text:?}: {e:?}"
            );
        }
        let e = errors("x");
        assert!(
            e[0].ends_with("expected `.`, `=`"),
            "other errors keep their message: {e:?}"
        );
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let text = EXAMPLE_REGISTRY.replacen("searchable = true", "searchable = true\nsearchabel = true", 1);
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("searchabel"), "{e:?}");
        let line = text.lines().position(|l| l.starts_with("searchabel")).unwrap() + 1;
        assert!(
            e[0].starts_with(&format!("r.toml:{line}:")),
            "{e:?} expected line {line}"
        );
    }

    #[test]
    fn every_semantic_error_is_reported_with_its_line() {
        let text = EXAMPLE_REGISTRY
            .replacen(
                "\"customers.phone\", \"customers.shipping_address\"",
                "\"customers.phone\", \"customers.shiping_address\"",
                1,
            )
            .replacen("legal_basis = \"consent\"", "legal_basis = \"because\"", 1)
            .replacen("category = \"user.name\"", "category = \"user.nom\"", 1)
            .replacen("period = \"10y\"", "period = \"ten years\"", 1)
            .replacen(
                "purposes = [\"order_fulfillment\"]",
                "purposes = [\"order_fulfilment\"]",
                1,
            )
            .replacen(
                "recipients = [\"parcel_carrier\"]",
                "recipients = [\"parcel_carier\"]",
                1,
            );
        let e = errors(&text);
        // The misspelt purpose is also refused in the role's `write` list.
        assert_eq!(e.len(), 7, "{e:#?}");
        for needle in [
            "shiping_address",
            "because",
            "user.nom",
            "ten years",
            "order_fulfilment",
            "parcel_carier",
        ] {
            let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
            assert!(
                e.iter()
                    .any(|d| d.contains(needle) && d.starts_with(&format!("r.toml:{line}:"))),
                "no error naming {needle} at line {line}: {e:#?}"
            );
        }
    }

    /// A purpose may name where its data comes from (Art. 14(2)(f)); without it, the subject
    /// provided the data. The text is one line, not empty.
    #[test]
    fn purpose_source_is_optional_one_line_text() {
        let reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        assert_eq!(reg.purposes["payment"].source, None);
        let text = EXAMPLE_REGISTRY.replacen(
            "survives_erasure = true",
            "survives_erasure = true\nsource = \"Our payment processor's settlement reports\"",
            1,
        );
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert_eq!(
            reg.purposes["tax_records"].source.as_deref(),
            Some("Our payment processor's settlement reports")
        );
        for bad in ["\"\"", "\"two\\nlines\""] {
            let text = EXAMPLE_REGISTRY.replacen(
                "survives_erasure = true",
                &format!("survives_erasure = true\nsource = {bad}"),
                1,
            );
            let e = errors(&text);
            assert!(e.iter().any(|d| d.contains("purpose source")), "{bad}: {e:?}");
        }
    }

    /// Only a legal obligation or a public task overrides an erasure request (GDPR
    /// Art. 17(3)(b)): on consent, the notice said both "your consent" and "kept even after
    /// an erasure request", the receipt said the values were kept, and the sweeper destroyed
    /// them once the erasure withdrew the consent.
    #[test]
    fn only_a_legal_obligation_or_public_task_survives_erasure() {
        let tax = "legal_basis = \"legal_obligation\"";
        for basis in ["consent", "contract", "vital_interests"] {
            let text = EXAMPLE_REGISTRY.replacen(tax, &format!("legal_basis = \"{basis}\""), 1);
            let e = errors(&text);
            assert_eq!(e.len(), 1, "{basis}: {e:?}");
            let at = position(&text, "survives_erasure = true", "true");
            assert!(
                e[0].starts_with(&at)
                    && e[0].contains(&format!("purpose `tax_records` has legal basis `{basis}`"))
                    && e[0].contains("only `legal_obligation` and `public_task`")
                    && e[0].contains("legal hold"),
                "{basis}: {e:?} at {at}"
            );
        }
        let text = EXAMPLE_REGISTRY.replacen(
            tax,
            "legal_basis = \"legitimate_interests\"\nlegitimate_interest = \"Defending claims.\"",
            1,
        );
        assert!(errors(&text)[0].contains("`legitimate_interests`, which cannot keep data"));
        let text = EXAMPLE_REGISTRY.replacen(tax, "legal_basis = \"public_task\"", 1);
        assert!(Registry::parse("r.toml", &text).unwrap().purposes["tax_records"].survives_erasure);
        // `false` is the default, whatever the basis; a misspelt basis is reported once.
        let text = EXAMPLE_REGISTRY.replacen(tax, "legal_basis = \"consent\"", 1).replacen(
            "survives_erasure = true",
            "survives_erasure = false",
            1,
        );
        assert!(!Registry::parse("r.toml", &text).unwrap().purposes["tax_records"].survives_erasure);
        let e = errors(&EXAMPLE_REGISTRY.replacen(tax, "legal_basis = \"legal_obligaton\"", 1));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("legal_obligaton"), "{e:?}");
    }

    #[test]
    fn legitimate_interests_needs_the_interest() {
        let text = EXAMPLE_REGISTRY.replacen(
            "legitimate_interest = \"Helping",
            "# legitimate_interest = \"Helping",
            1,
        );
        let e = errors(&text);
        assert!(e.iter().any(|d| d.contains("needs `legitimate_interest`")), "{e:?}");
    }

    #[test]
    fn bad_names_and_missing_organization() {
        let e = errors("[collections.Customers.fields.email]\ncategory = \"user.contact.email\"\ntype = \"email\"\n");
        assert!(e.iter().any(|d| d.contains("missing [organization]")), "{e:?}");
        assert!(
            e.iter()
                .any(|d| d.starts_with("r.toml:1:") && d.contains("`Customers`")),
            "{e:?}"
        );
    }

    #[test]
    fn control_characters_are_refused_with_their_line() {
        for bad in ["\\r", "\\u0000", "\\u001b[2J", "\\u202e"] {
            let text = EXAMPLE_REGISTRY.replacen(
                "description = \"Auditors:",
                &format!("description = \"{bad}permit(principal, action, resource);\\nAuditors:"),
                1,
            );
            let e = errors(&text);
            let line = text.lines().position(|l| l.contains("permit(principal")).unwrap() + 1;
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(
                e[0].starts_with(&format!("r.toml:{line}:")) && e[0].contains("control character"),
                "{bad}: {e:?}"
            );
        }
        // Line breaks and tabs are fine in descriptions, not in one-line text.
        let text = EXAMPLE_REGISTRY.replacen(
            "description = \"Auditors:",
            "description = \"Two\\n\\tlines. Auditors:",
            1,
        );
        assert!(Registry::parse("r.toml", &text).is_ok());
        let text = EXAMPLE_REGISTRY.replacen("name = \"Example Shop Ltd\"", "name = \"Example\\nShop\"", 1);
        assert_eq!(errors(&text).len(), 1);
    }

    #[test]
    fn grants_are_explicit_and_checked() {
        let reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        let support = reg.role("support_agent").unwrap();
        assert!(support.write.is_empty() && support.delete.is_empty(), "read-only");
        let shipper = reg.role("fulfillment_service").unwrap();
        assert!(shipper.write.contains("order_fulfillment") && shipper.delete.is_empty());
        let admin = reg.role("admin").unwrap();
        assert_eq!(admin.write, admin.purposes);
        assert_eq!(admin.capabilities.len(), Capability::ALL.len());
        assert_eq!(admin.grantable_roles.len(), reg.roles.len());
        assert!(!reg.role("key_manager").unwrap().grantable_roles.contains("admin"));
        assert_eq!(
            reg.role("auditor").unwrap().grantable_roles,
            BTreeSet::from(["auditor".to_owned()]),
            "by default, only the role itself"
        );

        let text = EXAMPLE_REGISTRY
            .replacen("write = [\"payment\"]", "write = [\"analytics\"]", 1)
            .replacen("capabilities = [\"read_audit\"]", "capabilities = [\"read_audti\"]", 1)
            .replacen("\"consent_service\"]", "\"consent_servic\"]", 1)
            .replacen(
                "capabilities = [\"manage_consent\", \"issue_portal_links\"]",
                "capabilities = [\"manage_consent\", \"issue_portal_links\"]\ngrantable_roles = [\"auditor\"]",
                1,
            );
        let e = errors(&text);
        assert_eq!(e.len(), 4, "{e:#?}");
        for needle in [
            "write = [\"analytics",
            "read_audti",
            "consent_servic\"",
            "grantable_roles = [\"auditor",
        ] {
            let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
            assert!(
                e.iter().any(|d| d.starts_with(&format!("r.toml:{line}:"))),
                "no error at line {line} ({needle}): {e:#?}"
            );
        }

        // The short forms of older registries still grant their capabilities.
        let text = EXAMPLE_REGISTRY.replacen("capabilities = [\"read_audit\"]", "read_audit = true", 1);
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert!(reg.role("auditor").unwrap().has(Capability::ReadAudit));
    }

    /// `r.toml:line:column: ` of the first `needle` after `marker` in `text`, as a diagnostic
    /// there starts.
    fn position(text: &str, marker: &str, needle: &str) -> String {
        let start = text.find(marker).unwrap();
        let offset = start + text[start..].find(needle).unwrap();
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
        format!("r.toml:{line}:{column}: ")
    }

    #[test]
    fn retention_runs_from_one_of_four_starts() {
        let reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        let from = |p: &str| reg.purposes[p].retention.unwrap().from;
        assert_eq!(from("customer_support"), RetentionStart::LastActivity);
        assert_eq!(from("marketing_email"), RetentionStart::ConsentWithdrawn);
        let text = EXAMPLE_REGISTRY.replacen("from = \"last_activity\"", "from = \"last_login\"", 1);
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&position(&text, "[purposes.customer_support]", "\"last_login\""))
                && e[0].ends_with("expected one of: collection, last_update, last_activity, consent_withdrawn"),
            "{e:?}"
        );
    }

    /// A grace period after consent is withdrawn needs a consent to withdraw.
    #[test]
    fn consent_withdrawn_needs_legal_basis_consent() {
        let text = EXAMPLE_REGISTRY.replacen("from = \"last_activity\"", "from = \"consent_withdrawn\"", 1);
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        let at = position(&text, "[purposes.customer_support]", "\"consent_withdrawn\"");
        assert!(
            e[0].starts_with(&at)
                && e[0].contains("purpose `customer_support`")
                && e[0].contains("has `legitimate_interests`")
                && e[0].contains("needs legal basis `consent`"),
            "{e:?} at {at}"
        );
        // A misspelt basis is reported once, not again as a retention error.
        let text = EXAMPLE_REGISTRY.replacen("legal_basis = \"consent\"", "legal_basis = \"consnet\"", 1);
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("consnet"), "{e:?}");
    }

    #[test]
    fn retention_is_optional() {
        let text = EXAMPLE_REGISTRY.replacen("retention = { period = \"10y\", from = \"collection\" }\n", "", 1);
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert_eq!(reg.purposes["tax_records"].retention, None);
        assert_eq!(
            reg.purposes["payment"].retention,
            Some(Retention {
                period: Period::Months(13),
                from: RetentionStart::Collection
            })
        );
    }

    /// Each wrong `compatible_with` item is refused at its own line and column.
    #[test]
    fn compatible_with_names_other_purposes_not_based_on_consent_once() {
        let list = "compatible_with = [\"order_fulfillment\", \"payment\"]\nretention = { period = \"1y\"";
        let bad = "compatible_with = [\"order_fulfilment\", \"customer_support\", \"marketing_email\", \"payment\", \"payment\"]\nretention = { period = \"1y\"";
        let text = EXAMPLE_REGISTRY.replacen(list, bad, 1);
        let e = errors(&text);
        assert_eq!(e.len(), 4, "{e:#?}");
        let at = |needle: &str| position(&text, "[purposes.customer_support]", needle);
        let line = text.lines().position(|l| l.contains("\"order_fulfilment\"")).unwrap() + 1;
        assert!(e.iter().all(|d| d.starts_with(&format!("r.toml:{line}:"))), "{e:#?}");
        assert!(
            e[0].starts_with(&at("\"order_fulfilment\""))
                && e[0]
                    .contains("unknown purpose `order_fulfilment` in `compatible_with` of purpose `customer_support`")
                && e[0]
                    .contains("analytics, customer_support, marketing_email, order_fulfillment, payment, tax_records"),
            "{e:#?}"
        );
        assert!(
            e[1].starts_with(&at("\"customer_support\"")) && e[1].contains("lists itself"),
            "{e:#?}"
        );
        assert!(
            e[2].starts_with(&at("\"marketing_email\""))
                && e[2].contains("`customer_support` may not be compatible with `marketing_email`")
                && e[2].contains("legal basis is `consent`")
                && e[2].contains("Art. 6(4)"),
            "{e:#?}"
        );
        assert!(
            e[3].starts_with(&position(&text, "\"payment\", ", "\"payment\"]"))
                && e[3].contains("`payment` is listed twice"),
            "{e:#?}"
        );

        // A holder with a misspelt basis: that one error, no guess about consent.
        let text = EXAMPLE_REGISTRY.replacen("legal_basis = \"contract\"", "legal_basis = \"contact\"", 1);
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("contact"), "{e:?}");
    }
}
