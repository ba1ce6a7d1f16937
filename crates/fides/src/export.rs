//! The registry as fideslang manifests: an organization, a dataset per collection, the vault
//! as a system with a privacy declaration per purpose, and a system per recipient.
//!
//! fideslang has no place for part of the registry (retention anchors, compatible purposes,
//! field types, a recipient's country...): that part travels in the free-form
//! `meta.custodia` of the systems and datasets, which Fides keeps and ignores, so that
//! `custodia fides import` of an export gives the registry back. Roles, operators, training,
//! incidents, jurisdictions, policy context and context signers are not exported (Fides has no equivalent),
//! nor recipients' webhook URLs (one may carry a credential).

use std::collections::{BTreeMap, BTreeSet};

use custodia_registry::{LegalBasis, Period, Registry, RetentionStart, Transfer};

use crate::yaml::{Map, Value, document};
use crate::{DATASET_PREFIX, META_FORMAT, RECIPIENT_PREFIX, VAULT_KEY};

/// The first line of every exported manifest: how the next export knows a file as its own
/// (it replaces or removes only such files).
pub const EXPORT_MARK: &str =
    "# Written by `custodia fides export`: the next export replaces it (edit the registry, not this file).";

/// One manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// File name (no directory).
    pub file: String,
    pub text: String,
}

/// Why a registry cannot be exported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error(
        "purposes without a Fides data use: {}; add `data_use = \"<fideslang data use>\"` to each (e.g. essential.service, marketing.communications.email)",
        .0.join(", ")
    )]
    MissingDataUse(Vec<String>),
}

/// fideslang's name of a legal basis (GDPR Art. 6(1)).
pub(crate) fn fides_basis(basis: &LegalBasis) -> &'static str {
    match basis {
        LegalBasis::Consent => "Consent",
        LegalBasis::Contract => "Contract",
        LegalBasis::LegalObligation => "Legal obligations",
        LegalBasis::VitalInterests => "Vital interests",
        LegalBasis::PublicTask => "Public interest",
        LegalBasis::LegitimateInterests { .. } => "Legitimate interests",
    }
}

/// A period in whole days, as Fides reads `retention_period` (its UI says "days"): nominal
/// months of 365/12 days, rounded up, and years of 365.
pub(crate) fn period_days(period: Period) -> u64 {
    match period {
        Period::Days(n) => u64::from(n),
        Period::Months(n) => (u64::from(n) * 365).div_ceil(12),
        Period::Years(n) => u64::from(n) * 365,
    }
}

/// The registry as manifests, in a fixed order with sorted contents: the same registry
/// always gives the same bytes.
pub fn export(registry: &Registry) -> Result<Vec<Manifest>, ExportError> {
    let missing: Vec<String> = registry
        .purposes
        .values()
        .filter(|p| p.data_use.is_none())
        .map(|p| p.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(ExportError::MissingDataUse(missing));
    }
    let mut out = vec![Manifest {
        file: "organization.yml".into(),
        text: document(
            &["The organization of a Custodia registry (custodia fides export)."],
            &Map::new()
                .with("organization", Value::List(vec![organization(registry)]))
                .build(),
        ),
    }];
    for collection in registry.collections.values() {
        out.push(Manifest {
            file: format!("dataset_{}.yml", collection.name),
            text: document(
                &[&format!(
                    "Collection `{}` of a Custodia registry: one dataset holding one collection.",
                    collection.name
                )],
                &Map::new()
                    .with("dataset", Value::List(vec![dataset(collection)]))
                    .build(),
            ),
        });
    }
    let mut systems = vec![vault(registry)];
    systems.extend(registry.recipients.values().map(|r| recipient(registry, r)));
    out.push(Manifest {
        file: "system.yml".into(),
        text: document(
            &[
                "The Custodia vault (a privacy declaration per purpose) and the recipients it discloses to.",
                "meta.custodia holds what fideslang has no field for; `custodia fides import` reads it back.",
            ],
            &Map::new().with("system", Value::List(systems)).build(),
        ),
    });
    let custom = custom_categories(registry);
    if !custom.is_empty() {
        out.push(Manifest {
            file: "data_category.yml".into(),
            text: document(
                &["Data categories the registry uses that fideslang's default taxonomy lacks."],
                &Map::new().with("data_category", Value::List(custom)).build(),
            ),
        });
    }
    // Marked, so that the next export knows the files as its own.
    for m in &mut out {
        m.text.insert_str(0, &format!("{EXPORT_MARK}\n"));
    }
    Ok(out)
}

/// `meta: {custodia: {format, ...entries}}`: what fideslang cannot hold, read back by import.
fn custodia_meta(entries: Map) -> Value {
    let mut all = Map::new().with("format", Value::str(META_FORMAT));
    all.extend(entries);
    Map::new().with("custodia", all.build()).build()
}

/// "Name, email@example" -> (name, email): the first word with an `@` is the address.
fn person(text: &str) -> Value {
    let email = text
        .split([',', ';', ' ', '<', '>'])
        .find(|w| w.contains('@'))
        .unwrap_or_default();
    let name = text
        .replace(email, "")
        .trim_matches(|c: char| c.is_whitespace() || ",;<>".contains(c))
        .to_owned();
    let mut m = Map::new().with("name", Value::str(if name.is_empty() { text } else { &name }));
    if !email.is_empty() {
        m.put("email", Value::str(email));
    }
    m.build()
}

fn organization(registry: &Registry) -> Value {
    let org = &registry.organization;
    let mut controller = Map::new().with("name", Value::str(&org.name));
    if org.contact.contains('@') && !org.contact.contains(char::is_whitespace) {
        controller.put("email", Value::str(&org.contact));
    } else {
        controller.put("address", Value::str(&org.contact));
    }
    let mut m = Map::new()
        .with("fides_key", Value::str("default_organization"))
        .with("name", Value::str(&org.name))
        .with("controller", controller.build());
    if let Some(dpo) = &org.dpo {
        m.put("data_protection_officer", person(dpo));
    }
    if let Some(rep) = &org.representative {
        m.put("representative", person(rep));
    }
    m.build()
}

fn dataset(collection: &custodia_registry::Collection) -> Value {
    let mut meta_fields = Map::new();
    let mut fields = Vec::new();
    for field in collection.fields.values() {
        let mut f = Map::new().with("type", Value::str(field.field_type.name()));
        if field.searchable {
            f.put("searchable", Value::Bool(true));
        }
        if field.default_output != custodia_registry::OutputForm::Plain {
            f.put("default_output", Value::str(field.default_output.name()));
        }
        meta_fields.put(&field.name, f.build());
        fields.push(
            Map::new()
                .with("name", Value::str(&field.name))
                .with("data_categories", Value::strs([field.category.as_str()]))
                .build(),
        );
    }
    Map::new()
        .with("fides_key", Value::str(format!("{DATASET_PREFIX}{}", collection.name)))
        .with("name", Value::str(&collection.name))
        .with("description", Value::str(&collection.description))
        .with(
            "meta",
            custodia_meta(
                Map::new()
                    .with("collection", Value::str(&collection.name))
                    .with("fields", meta_fields.build()),
            ),
        )
        .with(
            "collections",
            Value::List(vec![
                Map::new()
                    .with("name", Value::str(&collection.name))
                    .with("description", Value::str(&collection.description))
                    .with("fields", Value::List(fields))
                    .build(),
            ]),
        )
        .build()
}

/// The categories of the fields a purpose declares, sorted and unique.
fn categories(registry: &Registry, purpose: &custodia_registry::Purpose) -> BTreeSet<String> {
    purpose
        .fields
        .iter()
        .flat_map(|(c, fields)| fields.iter().map(move |f| (c, f)))
        .filter_map(|(c, f)| registry.collections.get(c)?.fields.get(f))
        .map(|f| f.category.clone())
        .collect()
}

fn vault(registry: &Registry) -> Value {
    let org = &registry.organization;
    // Per recipient, the categories disclosed to it (by every purpose naming it).
    let mut disclosed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut declarations = Vec::new();
    let mut purposes_meta = Map::new();
    for purpose in registry.purposes.values() {
        let cats = categories(registry, purpose);
        for r in &purpose.recipients {
            disclosed.entry(r).or_default().extend(cats.iter().cloned());
        }
        let mut d = Map::new()
            .with("name", Value::str(&purpose.name))
            .with("data_use", Value::str(purpose.data_use.as_deref().unwrap_or_default()))
            .with("data_categories", Value::strs(cats.iter().cloned()))
            .with("data_subjects", Value::strs(["customer"]))
            .with(
                "dataset_references",
                Value::strs(purpose.fields.keys().map(|c| format!("{DATASET_PREFIX}{c}"))),
            )
            .with(
                "legal_basis_for_processing",
                Value::str(fides_basis(&purpose.legal_basis)),
            )
            .with("flexible_legal_basis_for_processing", Value::Bool(false));
        // Counted from consent's withdrawal, the period is no total: Fides would read it as one.
        if let Some(r) = purpose.retention.filter(|r| r.from != RetentionStart::ConsentWithdrawn) {
            d.put("retention_period", Value::str(period_days(r.period).to_string()));
        }
        if cats.iter().any(|c| custodia_registry::is_special_category(c)) {
            d.put("processes_special_category_data", Value::Bool(true));
        }
        if !purpose.recipients.is_empty() {
            d.put(
                "egress",
                Value::strs(purpose.recipients.iter().map(|r| format!("{RECIPIENT_PREFIX}{r}"))),
            );
            d.put("data_shared_with_third_parties", Value::Bool(true));
            let third: Vec<String> = purpose
                .recipients
                .iter()
                .filter_map(|r| registry.recipients.get(r))
                .map(|r| format!("{} ({}, {})", r.display_name, r.role.name(), r.country))
                .collect();
            d.put("third_parties", Value::str(third.join("; ")));
            d.put("shared_categories", Value::strs(cats.iter().cloned()));
        }
        declarations.push(d.build());
        purposes_meta.put(&purpose.name, purpose_meta(purpose));
    }
    let mut transfers = BTreeSet::new();
    let mut international = false;
    for r in registry.recipients.values() {
        match registry.transfer_to(r) {
            Transfer::Domestic => {}
            // A transfer all the same, with no basis to name (`custodia check` warns).
            Transfer::Unprotected => international = true,
            Transfer::Adequacy => {
                international = true;
                transfers.insert("Adequacy Decision");
            }
            Transfer::Safeguard(s) => {
                international = true;
                let s = s.to_lowercase();
                transfers.insert(if s.contains("contractual clauses") || s.contains("scc") {
                    "SCCs"
                } else if s.contains("binding corporate rules") || s.contains("bcr") {
                    "BCRs"
                } else {
                    "Other"
                });
            }
        }
    }
    let mut org_meta = Map::new()
        .with("name", Value::str(&org.name))
        .with("contact", Value::str(&org.contact))
        .with("supervisory_authority", Value::str(&org.supervisory_authority))
        .with("country", Value::str(&org.country))
        .with("language", Value::str(&org.language));
    for (key, value) in [
        ("dpo", &org.dpo),
        ("representative", &org.representative),
        ("security_measures", &org.security_measures),
        ("automated_decisions", &org.automated_decisions),
    ] {
        if let Some(v) = value {
            org_meta.put(key, Value::str(v));
        }
    }
    let mut m = Map::new()
        .with("fides_key", Value::str(VAULT_KEY))
        .with("name", Value::str("Custodia vault"))
        .with(
            "description",
            Value::str(format!(
                "The customer-data privacy vault of {}: the personal data it holds, why, on what legal basis, for how long and who receives it.",
                org.name
            )),
        )
        .with("system_type", Value::str("Service"))
        .with("responsibility", Value::strs(["Controller"]))
        .with("legal_name", Value::str(&org.name));
    if let Some(dpo) = &org.dpo {
        m.put("dpo", Value::str(dpo));
    }
    if let Some(s) = &org.security_measures {
        m.put("data_security_practices", Value::str(s));
    }
    m.put("does_international_transfers", Value::Bool(international));
    if !transfers.is_empty() {
        m.put("legal_basis_for_transfers", Value::strs(transfers));
    }
    m.put(
        "dataset_references",
        Value::strs(registry.collections.keys().map(|c| format!("{DATASET_PREFIX}{c}"))),
    );
    m.put(
        "ingress",
        Value::List(vec![
            Map::new()
                .with("fides_key", Value::str("user"))
                .with("type", Value::str("user"))
                .build(),
        ]),
    );
    if !disclosed.is_empty() {
        m.put(
            "egress",
            Value::List(
                disclosed
                    .iter()
                    .map(|(r, cats)| {
                        Map::new()
                            .with("fides_key", Value::str(format!("{RECIPIENT_PREFIX}{r}")))
                            .with("type", Value::str("system"))
                            .with("data_categories", Value::strs(cats.iter().cloned()))
                            .build()
                    })
                    .collect(),
            ),
        );
    }
    m.put("privacy_declarations", Value::List(declarations));
    m.put(
        "meta",
        custodia_meta(
            Map::new()
                .with("organization", org_meta.build())
                .with("purposes", purposes_meta.build()),
        ),
    );
    m.build()
}

fn purpose_meta(purpose: &custodia_registry::Purpose) -> Value {
    let mut m = Map::new().with("description", Value::str(&purpose.description)).with(
        "fields",
        Value::strs(
            purpose
                .fields
                .iter()
                .flat_map(|(c, fields)| fields.iter().map(move |f| format!("{c}.{f}"))),
        ),
    );
    if let Some(interest) = purpose.legal_basis.interest() {
        m.put("legitimate_interest", Value::str(interest));
    }
    if let Some(r) = purpose.retention {
        m.put(
            "retention",
            Map::new()
                .with("period", Value::str(r.period.to_string()))
                .with("from", Value::str(r.from.name()))
                .build(),
        );
    }
    if !purpose.compatible_with.is_empty() {
        m.put("compatible_with", Value::strs(purpose.compatible_with.iter().cloned()));
    }
    for (key, on) in [
        ("sale_or_sharing", purpose.sale_or_sharing),
        ("direct_marketing", purpose.direct_marketing),
        ("survives_erasure", purpose.survives_erasure),
        ("allowed_during_restriction", purpose.allowed_during_restriction),
    ] {
        if on {
            m.put(key, Value::Bool(true));
        }
    }
    if let Some(source) = &purpose.source {
        m.put("source", Value::str(source));
    }
    m.build()
}

fn recipient(registry: &Registry, r: &custodia_registry::Recipient) -> Value {
    let received: BTreeSet<String> = registry
        .purposes
        .values()
        .filter(|p| p.recipients.contains(&r.name))
        .flat_map(|p| categories(registry, p))
        .collect();
    let responsibility = match r.role {
        custodia_registry::RecipientRole::Processor => "Processor",
        _ => "Controller",
    };
    let mut meta = Map::new()
        .with("recipient", Value::str(&r.name))
        .with("country", Value::str(&r.country))
        .with("role", Value::str(r.role.name()));
    if let Some(s) = &r.safeguard {
        meta.put("safeguard", Value::str(s));
    }
    // No webhook: its URL may carry a credential, and the Art. 19 notices it receives are
    // the vault's business, not the data map's.
    Map::new()
        .with("fides_key", Value::str(format!("{RECIPIENT_PREFIX}{}", r.name)))
        .with("name", Value::str(&r.display_name))
        .with(
            "description",
            Value::str(format!(
                "Recipient of customer data from the Custodia vault ({}, {}).",
                r.role.name(),
                r.country
            )),
        )
        .with("system_type", Value::str("Third Party"))
        .with("legal_name", Value::str(&r.display_name))
        .with("responsibility", Value::strs([responsibility]))
        .with("privacy_declarations", Value::List(vec![]))
        .with(
            "ingress",
            Value::List(vec![
                Map::new()
                    .with("fides_key", Value::str(VAULT_KEY))
                    .with("type", Value::str("system"))
                    .with("data_categories", Value::strs(received))
                    .build(),
            ]),
        )
        .with("meta", custodia_meta(meta))
        .build()
}

/// `data_category` resources for what fideslang lacks: Custodia's own categories and custom
/// sub-categories, each with its ancestors fideslang lacks too.
fn custom_categories(registry: &Registry) -> Vec<Value> {
    let mut needed = BTreeSet::new();
    for field in registry.collections.values().flat_map(|c| c.fields.values()) {
        let mut key = field.category.as_str();
        while !custodia_registry::is_fideslang_category(key) {
            needed.insert(key.to_owned());
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => break,
            }
        }
    }
    needed
        .into_iter()
        .map(|key| {
            let mut m = Map::new().with("fides_key", Value::str(&key));
            if let Some((parent, last)) = key.rsplit_once('.') {
                m.put("parent_key", Value::str(parent));
                m.put("name", Value::str(last.replace('_', " ")));
            } else {
                m.put("name", Value::str(&key));
            }
            m.build()
        })
        .collect()
}
