//! The typed registry model. Every name in it has been checked against the rest of the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::calendar::Date;
use crate::jurisdiction::{HolidaySource, Holidays, Jurisdiction};
use crate::parse::Diagnostic;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The whole registry, validated.
#[derive(Debug, Clone)]
pub struct Registry {
    pub organization: Organization,
    pub collections: BTreeMap<String, Collection>,
    pub purposes: BTreeMap<String, Purpose>,
    pub recipients: BTreeMap<String, Recipient>,
    pub roles: BTreeMap<String, Role>,
    /// Request attributes a caller may assert (header `Custodia-Context`) for Cedar policies
    /// to test, by name.
    pub policy_context: BTreeMap<String, ContextType>,
    /// Systems that may sign `Custodia-Context` assertions (with a key derived for each by
    /// name), by name.
    pub context_signers: BTreeMap<String, ContextSigner>,
    /// The rules of data subject requests by law, e.g. `gdpr`, `ccpa`: the built-in rows
    /// (`jurisdictions.toml`) with the registry's `[jurisdictions.*]` added or replacing them.
    pub jurisdictions: BTreeMap<String, Jurisdiction>,
    /// Public holiday calendars by name, e.g. `GB`, `US-CA`: the built-in ones
    /// (`holidays.toml`) with the registry's `[holidays.*]` dates added.
    pub holidays: BTreeMap<String, Holidays>,
    /// How operators (people) sign in: `[operators]`.
    pub operators: OperatorRules,
    /// The courses every operator must have completed, and recently enough, to see personal
    /// data: `[training.<course>]`, by name.
    pub training: BTreeMap<String, Course>,
    /// Breach notification laws by name: the built-in ones (`breach_rules.toml`) with the
    /// registry's `[breach_laws.*]` added or replacing them.
    pub breach_laws: BTreeMap<String, crate::breach::BreachLaw>,
    /// `[incidents]`: the breach laws the organization is under.
    pub incidents: crate::breach::IncidentRules,
    /// Where the file declares what [`Registry::warnings`] are about.
    pub(crate) places: crate::parse::Places,
}

/// The rules of operator sign-in (`[operators]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRules {
    /// How long a session lasts from login (5..=720 minutes; default 60).
    pub session_minutes: u32,
    /// Consecutive failed logins before the account locks, for a time that doubles with each
    /// further failure (3..=20; default 5).
    pub max_failed_logins: u32,
    /// The longest break-glass access one request may take (5..=240 minutes; default 60).
    pub break_glass_minutes: u32,
    /// The roles an operator may take in an emergency by stating a reason (none by default:
    /// no break-glass).
    pub break_glass_roles: Vec<String>,
    /// Where alerts go (break-glass taken, training about to lapse): a signed JSON POST, as
    /// Art. 19 notices are (`custodia webhook-secret --alerts` prints the secret).
    pub alert_webhook: Option<String>,
}

impl Default for OperatorRules {
    fn default() -> Self {
        Self {
            session_minutes: 60,
            max_failed_logins: 5,
            break_glass_minutes: 60,
            break_glass_roles: Vec::new(),
            alert_webhook: None,
        }
    }
}

/// Days before a completion lapses that reminders start, unless a course says otherwise.
pub const DEFAULT_REMIND_DAYS: u32 = 30;

/// A required course (`[training.<name>]`): a completion counts for `valid_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub name: String,
    pub description: String,
    /// How long a completion stays valid (1..=3650 days).
    pub valid_days: u32,
    /// How many days before it lapses the operator is reminded (default 30, at most
    /// `valid_days`).
    pub remind_days: u32,
}

/// A system that knows facts about requests (a ticketing system knows which tickets are
/// open) and signs them for callers to send in `Custodia-Context`.
#[derive(Debug, Clone)]
pub struct ContextSigner {
    pub name: String,
    pub description: String,
    /// The `[policy_context]` attributes it may assert.
    pub attributes: BTreeSet<String>,
}

/// The type of a policy context attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextType {
    Bool,
    String,
    Long,
}

impl ContextType {
    /// The Cedar type name.
    #[must_use]
    pub fn cedar_type(self) -> &'static str {
        match self {
            Self::Bool => "Bool",
            Self::String => "String",
            Self::Long => "Long",
        }
    }
}

impl Registry {
    /// The collection called `name`.
    #[must_use]
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    /// The purpose called `name`.
    #[must_use]
    pub fn purpose(&self, name: &str) -> Option<&Purpose> {
        self.purposes.get(name)
    }

    /// The role called `name`.
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Whether a caller invoking purpose `reader` may use values held for purpose `holder`:
    /// its own, or those of a purpose it declares itself compatible with (GDPR Art. 6(4)).
    /// Compatibility is explicit and not transitive: `a` compatible with `b` and `b` with
    /// `c` does not let `a` use what `c` holds.
    #[must_use]
    pub fn may_use(&self, reader: &str, holder: &str) -> bool {
        reader == holder
            || self
                .purposes
                .get(reader)
                .is_some_and(|p| p.compatible_with.contains(holder))
    }

    /// Things that are valid but probably not what was meant, most likely a registry written
    /// for v0.1, where every role could write under its purposes and an administrator could
    /// grant any role. `custodia check` prints them and the server logs them at start; each
    /// names the line of what it is about, as errors do.
    #[must_use]
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let at = &self.places;
        let mut out = Vec::new();
        if !self.roles.is_empty() && self.roles.values().all(|r| r.write.is_empty()) {
            out.push(
                at.warning(
                    at.first("roles"),
                    "no role may write under any purpose, so no record can be created: since v0.2 writing is granted \
                 explicitly (`write = [...]` in a role, as registries for v0.1 implied it)"
                        .to_owned(),
                ),
            );
        }
        // Once per country: the jurisdictions counting the controller's holidays.
        let counting_controller = self
            .jurisdictions
            .values()
            .filter(|j| j.holidays == HolidaySource::Controller && !j.calendar.is_empty())
            .filter(|j| !self.holidays.contains_key(&j.calendar));
        let mut named = BTreeSet::new();
        for j in counting_controller {
            if named.insert(&j.calendar) {
                out.push(at.country(format!(
                    "there is no holiday calendar for the controller's country `{}` ([organization] country), which jurisdiction `{}` counts: its deadlines skip only Saturdays and Sundays; list the public holidays as [holidays.{}] dates = [\"YYYY-MM-DD\", ...]",
                    j.calendar, j.name, j.calendar
                )));
            }
        }
        // Deadlines counted in UTC for a controller whose zone is not known: late by the
        // hours its days end before UTC's.
        if let Some(j) = self.jurisdictions.values().find(|j| j.counts_controller_time)
            && self.organization.time_zone.is_none()
            && crate::calendar::Zone::of_country(&self.organization.country).is_none()
        {
            out.push(at.country(format!(
                "[organization] names no time_zone, and this version picks none for country `{}` (it has several, or is outside the EEA, the UK and Switzerland): jurisdiction `{}` counts its deadlines in UTC, which can end them hours after the law allows in any other zone (a receipt day counted in UTC can be a day later than the controller's); set time_zone = \"<IANA name>\" (e.g. \"America/New_York\", \"Atlantic/Canary\")",
                self.organization.country, j.name
            )));
        }
        for role in self.roles.values() {
            let only_itself = role.grantable_roles.len() == 1 && role.grantable_roles.contains(&role.name);
            if role.capabilities.contains(&Capability::ManagePrincipals) && only_itself {
                out.push(at.table("roles", &role.name, format!(
                    "role `{}` manages principals but may grant no other role (`grantable_roles` names none): it may grant only `{}` itself",
                    role.name, role.name
                )));
            }
        }
        // A blind index keeps one keyed digest per value: the file alone shows which subjects
        // share one. Of a date (a birth date: some 36,000 in a century, birthdays bunched)
        // that is a frequency table one known value unlocks (review).
        for c in self.collections.values() {
            for f in c
                .fields
                .values()
                .filter(|f| f.searchable && f.field_type == FieldType::Date)
            {
                out.push(at.table("collections", &c.name, format!(
                    "field `{}.{}` is a searchable date: its blind index stores one digest for each value, so whoever holds the database file sees which subjects share a date, and learns them all from one they know; search by another field if you can",
                    c.name, f.name
                )));
            }
        }
        for p in self.purposes.values() {
            if p.retention.is_none() {
                out.push(at.table("purposes", &p.name, format!(
                    "purpose `{}` has no retention rule: its values are kept until a withdrawal, objection, opt-out or erasure ends them, never by time; GDPR Art. 13(2)(a) and the CCPA (Cal. Civ. Code §1798.100(a)(3)) ask for a retention period, or the criteria for one; add retention = {{ period = \"...\", from = \"...\" }}",
                    p.name
                )));
            }
        }
        out.extend(self.compatibility_warnings());
        out.extend(self.transparency_warnings());
        out
    }

    /// Whether any purpose discloses data to the recipient called `name`: the notice and the
    /// record of processing list only recipients that are.
    #[must_use]
    pub fn recipient_used(&self, name: &str) -> bool {
        self.purposes.values().any(|p| p.recipients.iter().any(|r| r == name))
    }

    /// What the privacy notice (GDPR Art. 13/14, CCPA §1798.100) or the record of processing
    /// (Art. 30(1)) would have to leave out or leave vague.
    fn transparency_warnings(&self) -> Vec<Diagnostic> {
        let org = &self.organization;
        let at = &self.places;
        let mut out = Vec::new();
        if org.dpo.is_none() {
            out.push(at.organization(
                "[organization] names no `dpo`: where a data protection officer is designated (GDPR Art. 37), the notice and the record of processing must give their contact (Art. 13(1)(b), 30(1)(a)); add dpo = \"...\""
                    .to_owned(),
            ));
        }
        if org.security_measures.is_none() {
            out.push(at.organization(
                "[organization] has no `security_measures`: the record of processing describes the technical and organisational security measures (GDPR Art. 30(1)(g)); Custodia lists its own technical ones, add the organisational ones (training, access reviews, ...) as security_measures = \"...\""
                    .to_owned(),
            ));
        }
        if org.automated_decisions.is_none() {
            out.push(at.organization(
                "[organization] has no `automated_decisions`: the notice must say whether decisions about people are made by automated means alone, profiling included, and if so how and with what consequences (GDPR Art. 13(2)(f), 22), e.g. automated_decisions = \"We make no decisions about you by automated means alone.\""
                    .to_owned(),
            ));
        }
        for c in self.collections.values().filter(|c| c.description.trim().is_empty()) {
            out.push(at.table("collections", &c.name, format!(
                "collection `{}` has no description: the record of processing describes the categories of data subjects from it (GDPR Art. 30(1)(c)), e.g. description = \"People who buy from the shop.\"",
                c.name
            )));
        }
        for r in self.recipients.values() {
            if !self.recipient_used(&r.name) {
                // The notice must describe actual disclosures (Art. 13(1)(e)): it leaves out
                // a recipient no purpose names.
                out.push(at.table("recipients", &r.name, format!(
                    "recipient `{}` is declared but no purpose names it in `recipients`, so nothing is disclosed to it: the notice and the record of processing leave it out; name it in the purposes that disclose data to it, or remove it",
                    r.name
                )));
            } else if self.transfer_to(r) == crate::Transfer::Unprotected {
                out.push(at.table("recipients", &r.name, format!(
                    "recipient `{}` is in {}, a third country seen from {} without an adequacy decision, and names no `safeguard`: the notice must say how the transfer is protected (GDPR Art. 13(1)(f), 46; Art. 30(1)(e)), e.g. safeguard = \"EU Standard Contractual Clauses (2021/914)\"",
                    r.name, r.country, org.country
                )));
            }
        }
        out
    }

    /// Compatibility declarations that are valid but do nothing or should not be made.
    fn compatibility_warnings(&self) -> Vec<Diagnostic> {
        let at = &self.places;
        let mut out = Vec::new();
        for reader in self.purposes.values() {
            for holder in reader.compatible_with.iter().filter_map(|h| self.purposes.get(h)) {
                if reader.sale_or_sharing && !holder.sale_or_sharing {
                    out.push(at.table("purposes", &reader.name, format!(
                        "purpose `{}` is a sale or sharing (`sale_or_sharing = true`) but is compatible with `{}`, which is not: a consumer does not reasonably expect what they gave for `{}` to be sold or shared (CCPA regulations §7002); collect it for `{}` under its own notice instead",
                        reader.name, holder.name, holder.name, reader.name
                    )));
                }
                let shares_a_field = reader
                    .fields
                    .iter()
                    .any(|(coll, fields)| fields.iter().any(|f| holder.declares(coll, f)));
                if !shares_a_field {
                    out.push(at.table("purposes", &reader.name, format!(
                        "purpose `{}` is compatible with `{}` but declares none of its fields, so the declaration changes nothing: a purpose reads only the fields it declares",
                        reader.name, holder.name
                    )));
                }
            }
        }
        out
    }
}

/// Who controls the data (GDPR Art. 13(1)(a)-(b)).
#[derive(Debug, Clone)]
pub struct Organization {
    pub name: String,
    pub contact: String,
    pub dpo: Option<String>,
    pub supervisory_authority: String,
    /// ISO 3166-1 alpha-2 country of establishment.
    pub country: String,
    /// The time zone of the establishment as the file names it (`time_zone`, an IANA name);
    /// [`Organization::zone`] is the one counted in.
    pub time_zone: Option<crate::calendar::Zone>,
    /// The language the privacy notice and the preference center speak (a tag such as `en`
    /// or `de`; [`DEFAULT_LANGUAGE`] when the file names none). The registry's own texts
    /// (descriptions) are written in it.
    pub language: String,
    /// The controller's representative in the Union (GDPR Art. 27), when it has one.
    pub representative: Option<String>,
    /// The organisational security measures, in general terms (GDPR Art. 30(1)(g), with the
    /// technical measures Custodia itself applies).
    pub security_measures: Option<String>,
    /// Whether decisions about people are made by automated means alone, profiling included,
    /// and if so the logic and its consequences (GDPR Art. 13(2)(f), 22), in plain words.
    pub automated_decisions: Option<String>,
}

impl Organization {
    /// The time zone the deadlines of jurisdictions counted in `controller` time are counted
    /// in: the one the file names, else that of `country` if this crate knows a single one,
    /// else UTC.
    #[must_use]
    pub fn zone(&self) -> crate::calendar::Zone {
        self.time_zone
            .clone()
            .or_else(|| crate::calendar::Zone::of_country(&self.country))
            .unwrap_or_default()
    }
}

/// The language of notices and pages when the registry names none.
pub const DEFAULT_LANGUAGE: &str = "en";

/// A set of records of one shape, e.g. `customers`.
#[derive(Debug, Clone)]
pub struct Collection {
    pub name: String,
    pub description: String,
    pub fields: BTreeMap<String, Field>,
}

/// A declared field of a collection.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    /// Fides-compatible data category, e.g. `user.contact.email`.
    pub category: String,
    pub field_type: FieldType,
    /// Whether a keyed blind index is kept for equality search.
    pub searchable: bool,
    /// Output form for roles that do not name this field.
    pub default_output: OutputForm,
}

/// A field's value type: values are validated (and some normalized) by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// An email address; searched case-insensitively.
    Email,
    /// A phone number in E.164 form (`+` and 8 to 15 digits).
    Phone,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A payment card number (12-19 digits, Luhn).
    CardNumber,
    /// An IBAN (country code, check digits, mod-97).
    Iban,
    /// Any single-line text.
    String,
    /// Multi-line text, e.g. a postal address.
    Text,
}

impl FieldType {
    pub(crate) const NAMES: &'static [&'static str] =
        &["email", "phone", "date", "card_number", "iban", "string", "text"];

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "email" => Self::Email,
            "phone" => Self::Phone,
            "date" => Self::Date,
            "card_number" => Self::CardNumber,
            "iban" => Self::Iban,
            "string" => Self::String,
            "text" => Self::Text,
            _ => return None,
        })
    }

    /// The name used in the registry file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Date => "date",
            Self::CardNumber => "card_number",
            Self::Iban => "iban",
            Self::String => "string",
            Self::Text => "text",
        }
    }
}

/// How a field's value leaves the vault for a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutputForm {
    /// The value as stored.
    Plain,
    /// A type-aware mask, e.g. `j***@example.com` or `**** **** **** 4242`.
    Masked,
    /// A deterministic, format-preserving vault token (stable per field, so it joins).
    Token,
    /// Never returned.
    Denied,
}

impl OutputForm {
    pub(crate) const NAMES: &'static [&'static str] = &["plain", "masked", "token", "denied"];

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "plain" => Self::Plain,
            "masked" => Self::Masked,
            "token" => Self::Token,
            "denied" => Self::Denied,
            _ => return None,
        })
    }

    /// The name used in the registry file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Masked => "masked",
            Self::Token => "token",
            Self::Denied => "denied",
        }
    }
}

/// GDPR Art. 6(1) legal bases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegalBasis {
    /// Art. 6(1)(a).
    Consent,
    /// Art. 6(1)(b).
    Contract,
    /// Art. 6(1)(c).
    LegalObligation,
    /// Art. 6(1)(d).
    VitalInterests,
    /// Art. 6(1)(e).
    PublicTask,
    /// Art. 6(1)(f), with the interest pursued stated.
    LegitimateInterests { interest: String },
}

impl LegalBasis {
    pub(crate) const NAMES: &'static [&'static str] = &[
        "consent",
        "contract",
        "legal_obligation",
        "vital_interests",
        "public_task",
        "legitimate_interests",
    ];

    /// The interest pursued, when the basis is legitimate interests (Art. 13(1)(d)).
    #[must_use]
    pub fn interest(&self) -> Option<&str> {
        match self {
            Self::LegitimateInterests { interest } => Some(interest),
            _ => None,
        }
    }

    /// Whether data processed on this basis may be kept after an erasure request
    /// (`survives_erasure`): only where the law overrides the request, GDPR Art. 17(3)(b): a
    /// legal obligation, or a task in the public interest or in official authority. Consent
    /// is withdrawn by the request itself; a contract, vital interests and legitimate
    /// interests are no exemption (a legal claim, 17(3)(e), is kept by a legal hold, which
    /// covers the subject rather than a purpose).
    #[must_use]
    pub fn may_survive_erasure(&self) -> bool {
        matches!(self, Self::LegalObligation | Self::PublicTask)
    }

    /// The name used in the registry file.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Contract => "contract",
            Self::LegalObligation => "legal_obligation",
            Self::VitalInterests => "vital_interests",
            Self::PublicTask => "public_task",
            Self::LegitimateInterests { .. } => "legitimate_interests",
        }
    }
}

/// A reason to process personal data, with everything the law asks to be stated about it.
#[derive(Debug, Clone)]
pub struct Purpose {
    pub name: String,
    /// Plain-language description shown to customers.
    pub description: String,
    pub legal_basis: LegalBasis,
    /// Collection name to the fields of it this purpose needs.
    pub fields: BTreeMap<String, BTreeSet<String>>,
    /// How long its values are kept; `None`: until a withdrawal, objection, opt-out or
    /// erasure ends them, never by time (valid, but [`Registry::warnings`] says so).
    pub retention: Option<Retention>,
    /// Purposes whose values this one may also read (GDPR Art. 6(4), a compatible further
    /// purpose), e.g. support reading what was collected to fulfil orders. Never itself,
    /// never one based on consent; see [`Registry::may_use`].
    pub compatible_with: BTreeSet<String>,
    pub recipients: Vec<String>,
    /// A CCPA "sale" or "sharing" (cross-context behavioural advertising).
    pub sale_or_sharing: bool,
    /// Kept after an erasure request under an Art. 17(3) exemption (e.g. tax law).
    pub survives_erasure: bool,
    /// May still run while a subject's processing is restricted (Art. 18(2), legal claims).
    pub allowed_during_restriction: bool,
    /// Direct marketing: an objection to it is absolute (GDPR Art. 21(2)-(3)).
    pub direct_marketing: bool,
    /// Where the data comes from when not from the subject (GDPR Art. 14(2)(f)), e.g. "a
    /// credit reference agency"; `None`: the subject provided it.
    pub source: Option<String>,
    /// The Fides data use (a key of fideslang's taxonomy, e.g. `essential.service`): what
    /// `custodia fides export` declares the purpose to be.
    pub data_use: Option<String>,
}

impl Purpose {
    /// Whether this purpose declares `collection.field`.
    #[must_use]
    pub fn declares(&self, collection: &str, field: &str) -> bool {
        self.fields.get(collection).is_some_and(|f| f.contains(field))
    }

    /// The fields of `collection` this purpose declares (empty if none).
    pub fn fields_of<'a>(&'a self, collection: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.fields.get(collection).into_iter().flatten()
    }

    /// Whether a data subject may object to it (GDPR Art. 21): processing based on
    /// legitimate interests or a public task, and any direct marketing, where an objection
    /// is absolute.
    #[must_use]
    pub fn objectable(&self) -> bool {
        self.direct_marketing
            || matches!(
                self.legal_basis,
                LegalBasis::LegitimateInterests { .. } | LegalBasis::PublicTask
            )
    }
}

/// How long values collected for a purpose are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub period: Period,
    pub from: RetentionStart,
}

impl Retention {
    /// The rule in short, as the registry spells it: `2y from last_update`, `13m from
    /// collection`, `30d after consent is withdrawn`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.from {
            RetentionStart::ConsentWithdrawn => format!("{} after consent is withdrawn", self.period),
            from => format!("{} from {}", self.period, from.name()),
        }
    }
}

impl Period {
    /// The instant this period after `millis` (milliseconds since the Unix epoch, UTC).
    ///
    /// Days are 86 400 000 ms each (UTC has no daylight saving; leap seconds are not
    /// counted). Months and years move the calendar date and keep the time of day; a day
    /// the target month lacks becomes its last (31 January + 1 month = 28 or 29 February,
    /// 29 February + 1 year = 28 February). An instant past what an `i64` holds is
    /// `i64::MAX`: a period never ends before it started, and never panics.
    #[must_use]
    pub fn after(self, millis: i64) -> i64 {
        let months = match self {
            Self::Days(n) => return millis.saturating_add(i64::from(n).saturating_mul(MILLIS_PER_DAY)),
            Self::Months(n) => i64::from(n),
            Self::Years(n) => i64::from(n).saturating_mul(12),
        };
        let start = Date::of_millis(millis);
        match start.checked_add_months(months) {
            // The same time of day, `days` later: exact, even on the first (partial) day
            // an `i64` names, whose midnight it cannot hold.
            Some(end) => {
                let days = end.days_since_epoch() - start.days_since_epoch();
                millis.saturating_add(days.saturating_mul(MILLIS_PER_DAY))
            }
            None => i64::MAX,
        }
    }
}

/// A retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Days(u32),
    Months(u32),
    Years(u32),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days(n) => write!(f, "{n}d"),
            Self::Months(n) => write!(f, "{n}m"),
            Self::Years(n) => write!(f, "{n}y"),
        }
    }
}

/// What a retention period runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionStart {
    /// The value's collection.
    Collection,
    /// The value's last update.
    LastUpdate,
    /// The subject's last activity (e.g. the last order or support contact): a customer who
    /// keeps coming back is not forgotten while the relationship lasts.
    LastActivity,
    /// The withdrawal of the subject's consent: the value is kept while consent lasts and
    /// for the period after it is withdrawn (a grace period, e.g. to honour the withdrawal
    /// in every system). Only for purposes whose legal basis is consent.
    ConsentWithdrawn,
}

impl RetentionStart {
    pub(crate) const NAMES: &'static [&'static str] =
        &["collection", "last_update", "last_activity", "consent_withdrawn"];

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "collection" => Self::Collection,
            "last_update" => Self::LastUpdate,
            "last_activity" => Self::LastActivity,
            "consent_withdrawn" => Self::ConsentWithdrawn,
            _ => return None,
        })
    }

    /// The name used in the registry file (`from = "..."`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Collection => "collection",
            Self::LastUpdate => "last_update",
            Self::LastActivity => "last_activity",
            Self::ConsentWithdrawn => "consent_withdrawn",
        }
    }
}

/// Someone data is disclosed to (GDPR Art. 13(1)(e), 30(1)(d)).
#[derive(Debug, Clone)]
pub struct Recipient {
    pub name: String,
    pub display_name: String,
    pub country: String,
    pub role: RecipientRole,
    /// Transfer safeguard for third countries (Art. 46), e.g. SCCs.
    pub safeguard: Option<String>,
    /// Where Art. 19 notifications (rectification, erasure) are sent.
    pub webhook: Option<String>,
}

/// What a recipient is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientRole {
    Processor,
    Controller,
    JointController,
}

impl RecipientRole {
    /// The name used in the registry file (`role = "..."`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Processor => "processor",
            Self::Controller => "controller",
            Self::JointController => "joint_controller",
        }
    }
}

/// A set of permissions given to principals. Nothing is implied: each permission is listed.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub description: String,
    /// Purposes principals of this role may invoke (`"*"` in the file expands to all); reads
    /// under them return each declared field in the role's output form.
    pub purposes: BTreeSet<String>,
    /// Purposes under which the role may create and change records (a subset of `purposes`).
    pub write: BTreeSet<String>,
    /// Purposes under which the role may delete whole records (a subset of `purposes`).
    pub delete: BTreeSet<String>,
    /// Per `(collection, field)` output form; fields not named use the field's default.
    pub output: BTreeMap<String, BTreeMap<String, OutputForm>>,
    /// Vault-wide capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// Roles a principal of this role may grant (and revoke) with `manage_principals`;
    /// by default only this role itself.
    pub grantable_roles: BTreeSet<String>,
}

/// A vault-wide permission, not tied to a purpose or field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Create, list and revoke principals (of grantable roles).
    ManagePrincipals,
    /// Record and read subjects' consents, objections, opt-outs and restrictions.
    ManageConsent,
    /// Read the audit log, its checkpoints and proofs.
    ReadAudit,
    /// Use the PII scanner over HTTP (`/v1/scan`, `/v1/redact`).
    UseScanner,
    /// Use the server's redaction key over HTTP: `hash` and `encrypt` in `/v1/redact` (with
    /// `use_scanner`). The key's HMAC of a value anyone can guess (an SSN, a phone number) is
    /// an oracle that reverses a hashed dataset, so scanning and masking do not give it.
    UseRedactionKey,
    /// Fulfil data subject requests (reserved for the coming requests API).
    FulfilRequests,
    /// Manage retention (reserved).
    ManageRetention,
    /// Manage incidents (reserved).
    ManageIncidents,
    /// Manage operators (reserved).
    ManageOperators,
    /// Relay the customer's own user agent (a web front end): a `Sec-GPC: 1` it forwards is
    /// recorded for the request's subject even when the request itself is refused.
    ForwardUserAgent,
    /// Assert `Custodia-Context` attributes about a request unsigned (otherwise they must be
    /// signed by a `[context_signers]` system).
    AssertContext,
    /// Give customers preference center links (`POST /v1/subjects/{id}/portal-links`): the
    /// holder of a link sees which categories of the subject's data are held and why, changes
    /// the subject's consents and opt-out, and opens access, rectification and erasure
    /// requests for the business to verify. For the system that has signed the customer in.
    IssuePortalLinks,
    /// Manage the root key: see its versions and what each wraps, rotate it (every subject's
    /// data key re-wrapped under a new version) and retire versions nothing uses.
    ManageKeys,
    /// Read the operational metrics (`GET /metrics`): counts and latencies by route,
    /// purpose, decision and entity; no personal data.
    ReadMetrics,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Self; 14] = [
        Self::ManagePrincipals,
        Self::ManageConsent,
        Self::ReadAudit,
        Self::UseScanner,
        Self::UseRedactionKey,
        Self::FulfilRequests,
        Self::ManageRetention,
        Self::ManageIncidents,
        Self::ManageOperators,
        Self::ForwardUserAgent,
        Self::AssertContext,
        Self::IssuePortalLinks,
        Self::ManageKeys,
        Self::ReadMetrics,
    ];

    /// The name used in the registry file and as the Cedar action.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ManagePrincipals => "manage_principals",
            Self::ManageConsent => "manage_consent",
            Self::ReadAudit => "read_audit",
            Self::UseScanner => "use_scanner",
            Self::UseRedactionKey => "use_redaction_key",
            Self::FulfilRequests => "fulfil_requests",
            Self::ManageRetention => "manage_retention",
            Self::ManageIncidents => "manage_incidents",
            Self::ManageOperators => "manage_operators",
            Self::ForwardUserAgent => "forward_user_agent",
            Self::AssertContext => "assert_context",
            Self::IssuePortalLinks => "issue_portal_links",
            Self::ManageKeys => "manage_keys",
            Self::ReadMetrics => "read_metrics",
        }
    }

    /// The capability called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl Role {
    /// The output form of `collection.field` for this role.
    #[must_use]
    pub fn output_form(&self, collection: &Collection, field: &Field) -> OutputForm {
        self.output
            .get(&collection.name)
            .and_then(|fields| fields.get(&field.name))
            .copied()
            .unwrap_or(field.default_output)
    }

    /// Whether the role holds `capability`.
    #[must_use]
    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EXAMPLE_REGISTRY;

    /// Milliseconds of `YYYY-MM-DD` plus a time of day.
    fn at(date: &str, time_of_day: i64) -> i64 {
        Date::parse(date).unwrap().start_of_day_millis() + time_of_day
    }

    const HALF_PAST_TEN: i64 = 37_800_000;

    #[test]
    fn days_are_whole_utc_days() {
        assert_eq!(Period::Days(1).after(-1), 86_399_999, "1969-12-31T23:59:59.999 + 1d");
        assert_eq!(Period::Days(30).after(0), 30 * 86_400_000);
        assert_eq!(
            Period::Days(1).after(at("2024-02-28", HALF_PAST_TEN)),
            at("2024-02-29", HALF_PAST_TEN)
        );
        assert_eq!(Period::Days(1).after(at("2023-02-28", 0)), at("2023-03-01", 0));
        assert_eq!(
            Period::Days(u32::MAX).after(0),
            i64::from(u32::MAX) * 86_400_000,
            "about 11.8 million years, still in range"
        );
        assert_eq!(Period::Days(0).after(123), 123);
    }

    #[test]
    fn months_and_years_move_the_calendar_date_and_keep_the_time_of_day() {
        // Known instants: 2024-01-31T10:30Z and 2024-02-29T10:30Z.
        assert_eq!(at("2024-01-31", HALF_PAST_TEN), 1_706_697_000_000);
        assert_eq!(Period::Months(1).after(1_706_697_000_000), 1_709_202_600_000);
        // The month's last day when the target month is shorter.
        assert_eq!(
            Period::Months(1).after(at("2023-01-31", HALF_PAST_TEN)),
            1_677_580_200_000,
            "2023-02-28T10:30Z"
        );
        assert_eq!(
            Period::Months(1).after(at("2026-03-31", 86_399_999)),
            at("2026-04-30", 86_399_999)
        );
        assert_eq!(Period::Months(13).after(at("2025-01-15", 5)), at("2026-02-15", 5));
        assert_eq!(Period::Months(12).after(at("2026-12-31", 0)), at("2027-12-31", 0));
        // Leap days: a year later is 28 February; four years later, 29 February again.
        assert_eq!(Period::Years(1).after(at("2024-02-29", 0)), 1_740_700_800_000);
        assert_eq!(Period::Years(4).after(at("2024-02-29", 0)), 1_835_395_200_000);
        assert_eq!(Period::Years(100).after(at("2000-02-29", 0)), at("2100-02-28", 0));
        assert_eq!(Period::Years(400).after(at("2000-02-29", 0)), at("2400-02-29", 0));
        assert_eq!(Period::Years(10).after(at("2026-06-30", 7)), at("2036-06-30", 7));
        // Before the epoch: the time of day counts from that day's midnight too.
        assert_eq!(Period::Months(1).after(-1), at("1970-01-31", 86_399_999));
        assert_eq!(Period::Years(1).after(at("1900-03-01", 1)), at("1901-03-01", 1));
        assert_eq!(Period::Months(0).after(-5), -5);
    }

    #[test]
    fn periods_saturate_at_the_ends_of_time() {
        for p in [
            Period::Days(1),
            Period::Months(1),
            Period::Years(1),
            Period::Years(u32::MAX),
            Period::Months(u32::MAX),
        ] {
            assert_eq!(p.after(i64::MAX), i64::MAX, "{p}");
            assert_eq!(p.after(i64::MAX - 1), i64::MAX, "{p}");
            assert!(p.after(i64::MIN) > i64::MIN, "{p}: later than it started");
        }
        // Far past the last year an i64 names.
        assert_eq!(Period::Years(u32::MAX).after(0), i64::MAX);
        assert_eq!(Period::Months(u32::MAX).after(0), i64::MAX);
        assert_eq!(Period::Years(1200).after(i64::MAX - 86_400_000 * 400), i64::MAX);
        // From the first instant, exact: the time of day is kept although the day's
        // midnight is before what an i64 holds.
        assert_eq!(Period::Days(1).after(i64::MIN), i64::MIN + 86_400_000);
        let first = Date::of_millis(i64::MIN);
        let month_later = Period::Months(1).after(i64::MIN);
        assert_eq!(Date::of_millis(month_later), first.add_months(1));
        assert_eq!(
            month_later - i64::MIN,
            (first.add_months(1).days_since_epoch() - first.days_since_epoch()) * 86_400_000
        );
        assert_eq!(month_later.rem_euclid(86_400_000), i64::MIN.rem_euclid(86_400_000));
        // Up to the last whole day, still exact.
        let last_midnight = Date::MAX.start_of_day_millis();
        assert_eq!(Period::Days(1).after(last_midnight - 86_400_000), last_midnight);
        assert_eq!(
            Period::Months(1).after(Date::MAX.add_months(-1).start_of_day_millis()),
            Date::MAX.add_months(-1).add_months(1).start_of_day_millis()
        );
    }

    #[test]
    fn retention_rules_describe_themselves_as_the_file_spells_them() {
        let r = |period, from| Retention { period, from }.describe();
        assert_eq!(r(Period::Years(2), RetentionStart::LastUpdate), "2y from last_update");
        assert_eq!(r(Period::Months(13), RetentionStart::Collection), "13m from collection");
        assert_eq!(
            r(Period::Years(1), RetentionStart::LastActivity),
            "1y from last_activity"
        );
        assert_eq!(
            r(Period::Days(30), RetentionStart::ConsentWithdrawn),
            "30d after consent is withdrawn"
        );
        for name in RetentionStart::NAMES {
            assert_eq!(RetentionStart::from_name(name).map(RetentionStart::name), Some(*name));
        }
        assert_eq!(RetentionStart::from_name("last update"), None);
    }

    #[test]
    fn a_purpose_uses_its_own_values_and_those_it_declares_compatible() {
        let reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        assert!(reg.may_use("order_fulfillment", "order_fulfillment"));
        assert!(reg.may_use("customer_support", "order_fulfillment"));
        assert!(reg.may_use("customer_support", "payment"));
        assert!(reg.may_use("tax_records", "payment"));
        // One way: what support holds is not the order's.
        assert!(!reg.may_use("order_fulfillment", "customer_support"));
        assert!(!reg.may_use("customer_support", "tax_records"));
        // Never into a sale or sharing, never out of consent.
        assert!(!reg.may_use("analytics", "order_fulfillment"));
        assert!(!reg.may_use("customer_support", "marketing_email"));
        assert!(!reg.may_use("nonexistent", "payment"));

        // Not transitive: a purpose compatible with support does not reach the orders.
        let text = EXAMPLE_REGISTRY.replacen(
            "compatible_with = [\"order_fulfillment\", \"payment\"]\nretention = { period = \"10y\"",
            "compatible_with = [\"customer_support\"]\nretention = { period = \"10y\"",
            1,
        );
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert!(reg.may_use("tax_records", "customer_support"));
        assert!(!reg.may_use("tax_records", "order_fulfillment"));
    }

    /// A searchable date is a frequency table in the file: said, not refused.
    #[test]
    fn a_searchable_date_is_valid_with_a_warning() {
        let date = "type = \"date\"\n";
        assert!(EXAMPLE_REGISTRY.contains(date));
        assert!(
            Registry::parse("r.toml", EXAMPLE_REGISTRY)
                .unwrap()
                .warnings()
                .is_empty()
        );
        let text = EXAMPLE_REGISTRY.replacen(date, "type = \"date\"\nsearchable = true\n", 1);
        let w = Registry::parse("r.toml", &text).unwrap().warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message
                .starts_with("field `customers.birth_date` is a searchable date"),
            "{w:?}"
        );
    }

    #[test]
    fn a_purpose_without_retention_is_valid_with_a_warning() {
        let text = EXAMPLE_REGISTRY.replacen("retention = { period = \"13m\", from = \"collection\" }\n", "", 1);
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert_eq!(reg.purposes["payment"].retention, None);
        let w = reg.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.starts_with("purpose `payment` has no retention rule")
                && w[0].message.contains("never by time")
                && w[0].message.contains("retention = { period"),
            "{w:?}"
        );
        // At the purpose's table, as an error about it would be.
        let line = text.lines().position(|l| l == "[purposes.payment]").unwrap() + 1;
        assert!(
            w[0].to_string()
                .starts_with(&format!("r.toml:{line}:11: purpose `payment`")),
            "{w:?}"
        );
    }

    /// Every warning names the line of what it is about (the README says every problem does),
    /// or the file alone when the file does not declare it.
    #[test]
    fn warnings_name_their_line() {
        let line_of = |text: &str, needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
        let text = EXAMPLE_REGISTRY
            .replacen("dpo = \"Data", "# dpo = \"Data", 1)
            .replacen("description = \"People who buy from the shop.\"", "", 1)
            .replacen("country = \"GB\"", "country = \"US\"", 1)
            .replacen("grantable_roles = [\"*\"]", "", 1);
        let reg = Registry::parse("r.toml", &text).unwrap();
        let w = reg.warnings();
        let at = |start: &str| {
            w.iter()
                .find(|d| d.message.starts_with(start))
                .map(|d| (d.line, d.to_string()))
                .unwrap_or_else(|| panic!("no warning {start}: {w:#?}"))
        };
        assert_eq!(at("[organization] names no `dpo`").0, line_of(&text, "[organization]"));
        assert_eq!(
            at("[organization] names no time_zone").0,
            line_of(&text, "country = \"US\"")
        );
        assert_eq!(at("there is no holiday calendar").0, line_of(&text, "country = \"US\""));
        assert_eq!(
            at("collection `customers`").0,
            line_of(&text, "[collections.customers]")
        );
        assert_eq!(at("role `admin` manages principals").0, line_of(&text, "[roles.admin]"));
        assert!(w.iter().all(|d| d.line > 0), "{w:#?}");

        // A registry changed after parsing may hold what the file does not: the file alone.
        let mut reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        let mut payment = reg.purposes["payment"].clone();
        payment.name = "refunds".to_owned();
        payment.retention = None;
        reg.purposes.insert("refunds".to_owned(), payment);
        let w = reg.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().starts_with("r.toml: purpose `refunds`"), "{w:?}");
    }

    /// A recipient no purpose names receives nothing: `check` says so at its table (the
    /// notice, describing actual disclosures, leaves it out).
    #[test]
    fn a_recipient_no_purpose_names_is_warned_about() {
        let text = format!(
            "{EXAMPLE_REGISTRY}\n[recipients.crm]\nname = \"CRM Inc.\"\ncountry = \"US\"\nrole = \"processor\"\n"
        );
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert!(!reg.recipient_used("crm") && reg.recipient_used("parcel_carrier"));
        let w = reg.warnings();
        assert_eq!(w.len(), 1, "one warning, not also the missing safeguard: {w:?}");
        let line = text.lines().position(|l| l == "[recipients.crm]").unwrap() + 1;
        assert_eq!(w[0].line, line, "{w:?}");
        assert!(
            w[0].message
                .starts_with("recipient `crm` is declared but no purpose names it"),
            "{w:?}"
        );
    }

    #[test]
    fn compatibility_that_sells_or_changes_nothing_is_warned_about() {
        // Analytics (a sale or sharing) reading what was given for orders: CCPA §7002.
        let text = EXAMPLE_REGISTRY.replacen(
            "sale_or_sharing = true\n",
            "sale_or_sharing = true\ncompatible_with = [\"order_fulfillment\"]\n",
            1,
        );
        let w = Registry::parse("r.toml", &text).unwrap().warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.starts_with("purpose `analytics` is a sale or sharing")
                && w[0].message.contains("`order_fulfillment`, which is not")
                && w[0].message.contains("§7002"),
            "{w:?}"
        );

        // Payment (name, card number) declares nothing tax records hold... once tax records
        // keep only the address.
        let text = EXAMPLE_REGISTRY
            .replacen(
                "fields = [\"customers.name\", \"customers.shipping_address\"]",
                "fields = [\"customers.shipping_address\"]",
                1,
            )
            .replacen(
                "compatible_with = [\"order_fulfillment\", \"payment\"]\nretention = { period = \"10y\"",
                "compatible_with = [\"payment\"]\nretention = { period = \"10y\"",
                1,
            );
        let reg = Registry::parse("r.toml", &text).unwrap();
        assert_eq!(
            reg.purposes["tax_records"].compatible_with,
            BTreeSet::from(["payment".to_owned()])
        );
        let w = reg.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message
                .starts_with("purpose `tax_records` is compatible with `payment` but declares none of its fields"),
            "{w:?}"
        );

        // A sale or sharing purpose may read another one's values without a warning.
        let mut reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        let orders = reg.purposes.get_mut("order_fulfillment").unwrap();
        orders.sale_or_sharing = true;
        let analytics = reg.purposes.get_mut("analytics").unwrap();
        analytics.compatible_with.insert("order_fulfillment".to_owned());
        assert!(reg.warnings().is_empty(), "{:?}", reg.warnings());
    }
}
