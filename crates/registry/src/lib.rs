//! The registry: Custodia's single declarative source of truth (privacy as code).
//!
//! One TOML file declares the organization, the collections and their fields, the purposes
//! (each with a legal basis, the fields it needs, retention, recipients and the purposes
//! whose values it may also read, [`Registry::may_use`]), the recipients and the roles.
//! [`Registry::parse`] turns it into typed values or returns every problem it found, each
//! with `file:line:column`. Data subject requests' deadlines are rules as data: built-in
//! jurisdictions (`gdpr`, `ccpa`) and holiday calendars that the registry may extend or
//! override ([`Jurisdiction::deadlines`], [`Registry::deadlines`]).

pub mod breach;
pub mod calendar;
mod example;
#[cfg(test)]
mod fuzz;
mod jurisdiction;
mod model;
mod parse;
mod rules;
mod sections;
mod taxonomy;
mod transfer;
mod webhook;

pub use calendar::{Date, DateError, Weekday, Zone};

pub use example::EXAMPLE_REGISTRY;
pub use jurisdiction::{
    BUILTIN_HOLIDAYS, BUILTIN_JURISDICTIONS, Deadlines, HolidaySource, Holidays, Jurisdiction, RequestType, Rule,
    TimeLimit, TimeLimitError, TimeUnit, UnknownRequestType,
};
pub use model::{
    Capability, Collection, ContextSigner, ContextType, Course, DEFAULT_LANGUAGE, DEFAULT_REMIND_DAYS, Field,
    FieldType, LegalBasis, OperatorRules, Organization, OutputForm, Period, Purpose, Recipient, RecipientRole,
    Registry, Retention, RetentionStart, Role,
};
pub use parse::{Diagnostic, RegistryError};
pub use sections::sections;
pub use taxonomy::{
    DATA_USES, NOT_IN_FIDESLANG, is_fideslang_category, is_known_category, is_known_data_use, is_sensitive_category,
    is_special_category,
};
pub use transfer::Transfer;
pub use webhook::{WebhookTarget, webhook_target};
