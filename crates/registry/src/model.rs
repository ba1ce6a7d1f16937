//! The typed registry model. Every name in it has been checked against the rest of the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::jurisdiction::{HolidaySource, Holidays, Jurisdiction};

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

    /// Things that are valid but probably not what was meant, most likely a registry written
    /// for v0.1, where every role could write under its purposes and an administrator could
    /// grant any role. `custodia check` prints them and the server logs them at start.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.roles.is_empty() && self.roles.values().all(|r| r.write.is_empty()) {
            out.push(
                "no role may write under any purpose, so no record can be created: since v0.2 writing is granted \
                 explicitly (`write = [...]` in a role, as registries for v0.1 implied it)"
                    .to_owned(),
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
                out.push(format!(
                    "there is no holiday calendar for the controller's country `{}` ([organization] country), which jurisdiction `{}` counts: its deadlines skip only Saturdays and Sundays; list the public holidays as [holidays.{}] dates = [\"YYYY-MM-DD\", ...]",
                    j.calendar, j.name, j.calendar
                ));
            }
        }
        for role in self.roles.values() {
            let only_itself = role.grantable_roles.len() == 1 && role.grantable_roles.contains(&role.name);
            if role.capabilities.contains(&Capability::ManagePrincipals) && only_itself {
                out.push(format!(
                    "role `{}` manages principals but may grant no other role (`grantable_roles` names none): it may grant only `{}` itself",
                    role.name, role.name
                ));
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
}

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
    pub retention: Retention,
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
}

/// How long values collected for a purpose are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub period: Period,
    pub from: RetentionStart,
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
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::ManagePrincipals,
        Self::ManageConsent,
        Self::ReadAudit,
        Self::UseScanner,
        Self::FulfilRequests,
        Self::ManageRetention,
        Self::ManageIncidents,
        Self::ManageOperators,
        Self::ForwardUserAgent,
        Self::AssertContext,
    ];

    /// The name used in the registry file and as the Cedar action.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ManagePrincipals => "manage_principals",
            Self::ManageConsent => "manage_consent",
            Self::ReadAudit => "read_audit",
            Self::UseScanner => "use_scanner",
            Self::FulfilRequests => "fulfil_requests",
            Self::ManageRetention => "manage_retention",
            Self::ManageIncidents => "manage_incidents",
            Self::ManageOperators => "manage_operators",
            Self::ForwardUserAgent => "forward_user_agent",
            Self::AssertContext => "assert_context",
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
