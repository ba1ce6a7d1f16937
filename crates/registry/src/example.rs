/// The example registry of a web shop that `custodia init` writes and the docs and tests use.
pub const EXAMPLE_REGISTRY: &str = include_str!("example.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LegalBasis, OutputForm, Registry};

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
    }
}
