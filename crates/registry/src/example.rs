/// The example registry of a web shop that `custodia init` writes and the docs and tests use.
pub const EXAMPLE_REGISTRY: &str = include_str!("example.toml");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{LegalBasis, OutputForm, Period, Registry, Retention, RetentionStart};

    #[test]
    fn example_is_valid_and_complete() {
        let reg = Registry::parse("example.toml", EXAMPLE_REGISTRY).unwrap();
        let customers = reg.collection("customers").unwrap();
        for f in [
            "email",
            "name",
            "phone",
            "shipping_address",
            "birth_date",
            "card_number",
        ] {
            assert!(customers.fields.contains_key(f), "{f}");
        }
        assert!(customers.fields["email"].searchable && customers.fields["phone"].searchable);
        assert_eq!(reg.purpose("marketing_email").unwrap().legal_basis, LegalBasis::Consent);
        assert!(reg.purpose("tax_records").unwrap().survives_erasure);
        assert!(reg.purpose("analytics").unwrap().sale_or_sharing);
        assert_eq!(reg.role("admin").unwrap().purposes.len(), reg.purposes.len());
        let support = reg.role("support_agent").unwrap();
        assert_eq!(
            support.output_form(customers, &customers.fields["card_number"]),
            OutputForm::Masked
        );
        assert!(reg.role("auditor").unwrap().purposes.is_empty());
        assert!(reg.warnings().is_empty(), "{:?}", reg.warnings());
    }

    /// What a shop declares of retention and compatible purposes (issue 13).
    #[test]
    fn example_declares_retention_and_compatible_purposes() {
        let reg = Registry::parse("example.toml", EXAMPLE_REGISTRY).unwrap();
        let rule = |p: &str| reg.purpose(p).unwrap().retention.map(|r| r.describe());
        for (purpose, expected) in [
            ("order_fulfillment", "2y from last_update"),
            ("payment", "13m from collection"),
            ("marketing_email", "1d after consent is withdrawn"),
            ("customer_support", "1y from last_activity"),
            ("tax_records", "10y from collection"),
            ("analytics", "13m from collection"),
        ] {
            assert_eq!(rule(purpose).as_deref(), Some(expected), "{purpose}");
        }
        assert_eq!(
            reg.purpose("marketing_email").unwrap().retention,
            Some(Retention {
                period: Period::Days(1),
                from: RetentionStart::ConsentWithdrawn
            })
        );
        let compatible = |p: &str| {
            reg.purpose(p)
                .unwrap()
                .compatible_with
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        };
        assert_eq!(compatible("customer_support"), ["order_fulfillment", "payment"]);
        assert_eq!(compatible("tax_records"), ["order_fulfillment", "payment"]);
        for p in ["order_fulfillment", "payment", "marketing_email", "analytics"] {
            assert!(compatible(p).is_empty(), "{p}");
        }
        let accounting = reg.role("accounting").unwrap();
        assert_eq!(accounting.purposes, BTreeSet::from(["tax_records".to_owned()]));
        assert_eq!(accounting.write, accounting.purposes);
        assert!(accounting.delete.is_empty() && accounting.capabilities.is_empty());
        assert!(reg.role("key_manager").unwrap().grantable_roles.contains("accounting"));
    }
}
