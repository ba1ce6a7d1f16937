//! Fides interop: the registry as fideslang manifests ([`export`]) and fideslang manifests
//! as a registry ([`import`]). The mapping (and what has no equivalent either way) is in
//! ARCHITECTURE.md and the README's "Fides" section.

mod export;
mod import;
mod yaml;

pub use export::{EXPORT_MARK, ExportError, Manifest, export};
pub use import::{
    ImportError, ImportOptions, Imported, MAX_FIELD_REFERENCES, MAX_MANIFEST_BYTES, MAX_MATCH_LOOKUPS, Source, import,
};

/// The vault's system key in an export.
pub const VAULT_KEY: &str = "custodia";
/// Prefix of the dataset key of each collection (`custodia_customers`).
pub const DATASET_PREFIX: &str = "custodia_";
/// Prefix of the system key of each recipient, so that a push never replaces a vendor system
/// a Fides server already has under the bare name.
pub const RECIPIENT_PREFIX: &str = "custodia_recipient_";
/// The version of the `meta.custodia` blocks this build writes and reads.
pub const META_FORMAT: &str = "1";
