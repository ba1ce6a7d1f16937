//! Database discovery: classify each column of sampled rows and propose registry entries
//! (collections, fields, Fides categories) that would bring that data into the vault. The
//! database access itself lives with the caller; this works on sampled values.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::Scanner;

/// What a sampled column holds.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub table: String,
    pub column: String,
    pub sampled: u64,
    pub non_empty: u64,
    /// Values with at least one finding of each entity type.
    pub entities: BTreeMap<String, u64>,
    /// The entity most values hold, when at least half of the non-empty values hold it.
    pub class: Option<String>,
    pub share: f64,
}

/// Share of non-empty values an entity must reach to classify a column.
const CLASS_SHARE: f64 = 0.5;

pub fn classify_column(scanner: &Scanner, table: &str, column: &str, values: &[Option<String>]) -> ColumnReport {
    let mut entities: BTreeMap<String, u64> = BTreeMap::new();
    let mut non_empty = 0u64;
    for v in values.iter().flatten() {
        if v.trim().is_empty() {
            continue;
        }
        non_empty += 1;
        let mut seen: Vec<String> = Vec::new();
        for f in scanner.scan_field(v.as_bytes(), Some(column)) {
            if !seen.iter().any(|s| **s == *f.entity_type) {
                seen.push(f.entity_type.to_string());
            }
        }
        for s in seen {
            *entities.entry(s).or_default() += 1;
        }
    }
    let best = entities.iter().max_by_key(|(_, n)| **n).map(|(e, n)| (e.clone(), *n));
    let (class, share) = match best {
        Some((e, n)) if non_empty > 0 && n as f64 / non_empty as f64 >= CLASS_SHARE => {
            (Some(e), n as f64 / non_empty as f64)
        }
        Some((_, n)) if non_empty > 0 => (None, n as f64 / non_empty as f64),
        _ => (None, 0.0),
    };
    ColumnReport {
        table: table.to_owned(),
        column: column.to_owned(),
        sampled: values.len() as u64,
        non_empty,
        entities,
        class,
        share,
    }
}

/// The Fides category and registry field type for an entity found in a column, if the
/// entity is personal data by itself (a timestamp column is not, a birth date is).
pub fn category_for(entity: &str, column: &str) -> Option<(&'static str, &'static str)> {
    let col = column.to_ascii_lowercase();
    Some(match entity {
        "EMAIL_ADDRESS" => ("user.contact.email", "email"),
        "PHONE_NUMBER" => ("user.contact.phone_number", "phone"),
        "CREDIT_CARD" => ("user.financial.credit_card", "card_number"),
        "IBAN_CODE" => ("user.financial.bank_account", "iban"),
        "US_BANK_NUMBER" | "ABA_ROUTING_NUMBER" => ("user.financial.bank_account", "string"),
        "CRYPTO" => ("user.financial", "string"),
        "US_SSN"
        | "US_ITIN"
        | "UK_NINO"
        | "UK_NHS"
        | "ES_NIF"
        | "ES_NIE"
        | "IT_FISCAL_CODE"
        | "PL_PESEL"
        | "FI_PERSONAL_IDENTITY_CODE"
        | "DE_TAX_ID"
        | "FR_NIR"
        | "NL_BSN"
        | "BE_NATIONAL_NUMBER"
        | "SE_PERSONNUMMER"
        | "DK_CPR"
        | "IN_AADHAAR"
        | "IN_PAN"
        | "AU_TFN"
        | "AU_ABN"
        | "AU_MEDICARE"
        | "SG_NRIC_FIN"
        | "KR_RRN" => ("user.government_id.national_identification_number", "string"),
        "US_PASSPORT" | "DE_PASSPORT" | "UK_PASSPORT" => ("user.government_id.passport_number", "string"),
        "US_DRIVER_LICENSE" | "UK_DRIVING_LICENCE" => ("user.government_id.drivers_license_number", "string"),
        "MEDICAL_LICENSE" => ("user.government_id", "string"),
        "IP_ADDRESS" => ("user.device.ip_address", "string"),
        "MAC_ADDRESS" => ("user.device.device_id", "string"),
        "URL" => ("user.contact.url", "string"),
        "PERSON" => ("user.name", "string"),
        "ADDRESS" => ("user.contact.address", "text"),
        "LOCATION" => ("user.contact.address.city", "string"),
        "DATE_TIME" if col.contains("birth") || col.contains("dob") => ("user.demographic.date_of_birth", "date"),
        _ => return None,
    })
}

/// A registry name (`^[a-z][a-z0-9_]{0,62}$`) made from a table or column name.
pub fn registry_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "t_");
    }
    s.truncate(63);
    s
}

/// Registry TOML for the classified columns, grouped by table.
pub fn registry_suggestion(source: &str, reports: &[ColumnReport]) -> String {
    let mut by_table: BTreeMap<&str, Vec<&ColumnReport>> = BTreeMap::new();
    for r in reports {
        if r.class.as_deref().is_some_and(|c| category_for(c, &r.column).is_some()) {
            by_table.entry(&r.table).or_default().push(r);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "# Registry entries for the personal data found in {source}.");
    let _ = writeln!(
        out,
        "# Review them, then declare each field in the purposes that need it."
    );
    for (table, cols) in by_table {
        let t = registry_name(table);
        let _ = writeln!(
            out,
            "\n[collections.{t}]\ndescription = {:?}",
            format!("Discovered in table {table}.")
        );
        for r in cols {
            let Some(class) = r.class.as_deref() else { continue };
            let Some((category, ty)) = category_for(class, &r.column) else {
                continue;
            };
            let _ = writeln!(
                out,
                "\n# {class} in {} of {} sampled non-empty values of {table}.{}\n[collections.{t}.fields.{}]\ncategory = {category:?}\ntype = {ty:?}",
                r.entities.get(class).copied().unwrap_or(0),
                r.non_empty,
                r.column,
                registry_name(&r.column),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_classified_and_suggested() -> crate::Result<()> {
        let s = Scanner::builder().build()?;
        let emails: Vec<Option<String>> = vec![
            Some("a@example.com".into()),
            Some("b@example.org".into()),
            None,
            Some("n/a".into()),
        ];
        let r = classify_column(&s, "Customers", "E-mail", &emails);
        assert_eq!((r.class.as_deref(), r.non_empty), (Some("EMAIL_ADDRESS"), 3));
        let ids: Vec<Option<String>> = vec![Some("1".into()), Some("2".into())];
        let plain = classify_column(&s, "Customers", "id", &ids);
        assert!(plain.class.is_none());
        let toml = registry_suggestion("test.db", &[r, plain]);
        assert!(toml.contains("[collections.customers.fields.e_mail]"), "{toml}");
        assert!(
            toml.contains("category = \"user.contact.email\"") && !toml.contains("fields.id]"),
            "{toml}"
        );
        assert_eq!(registry_name("2024 Orders"), "t_2024_orders");
        Ok(())
    }
}
