//! International transfers (GDPR Chapter V): whether disclosing data to a recipient in
//! another country is a transfer to a third country, and on what it rests. The notice
//! (Art. 13(1)(f)) and the record of processing (Art. 30(1)(e)) state both.

use crate::model::{Recipient, Registry};

/// The European Economic Area: the EU member states, Iceland, Liechtenstein and Norway.
/// Data moves freely inside it.
const EEA: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// Countries with an adequacy decision of the European Commission (Art. 45) that covers
/// transfers in general, as of 2026. The EU-US Data Privacy Framework covers only certified
/// organisations, so the United States is not listed: name the safeguard (`safeguard = "EU-US
/// Data Privacy Framework certification"`, or the SCCs) on the recipient instead.
const ADEQUATE: &[&str] = &[
    "AD", "AR", "CA", "FO", "GB", "GG", "IL", "IM", "JE", "JP", "KR", "NZ", "CH", "UY",
];

/// What disclosing data to a recipient means across borders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// The recipient is in the controller's country, or both are in the EEA.
    Domestic,
    /// A third country with an adequacy decision (Art. 45).
    Adequacy,
    /// A third country, under the safeguard named (Art. 46: standard contractual clauses,
    /// binding corporate rules, ...).
    Safeguard(String),
    /// A third country with neither an adequacy decision nor a safeguard named: the registry
    /// is incomplete ([`Registry::warnings`] says so).
    Unprotected,
}

impl Transfer {
    /// Whether the data leaves for a third country.
    #[must_use]
    pub fn is_third_country(&self) -> bool {
        !matches!(self, Self::Domestic)
    }

    /// The name in JSON and CSV: `none`, `adequacy_decision`, `safeguard`, `unprotected`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Domestic => "none",
            Self::Adequacy => "adequacy_decision",
            Self::Safeguard(_) => "safeguard",
            Self::Unprotected => "unprotected",
        }
    }
}

fn in_eea(country: &str) -> bool {
    EEA.contains(&country)
}

impl Registry {
    /// What disclosing data to `recipient` is across borders, seen from the controller's
    /// country. A named safeguard is reported even where an adequacy decision exists (the
    /// registry's word is the more specific).
    #[must_use]
    pub fn transfer_to(&self, recipient: &Recipient) -> Transfer {
        let home = self.organization.country.as_str();
        let there = recipient.country.as_str();
        if home == there || in_eea(home) && in_eea(there) {
            return Transfer::Domestic;
        }
        match &recipient.safeguard {
            Some(s) => Transfer::Safeguard(s.clone()),
            // From the UK, the EEA is adequate too (UK adequacy regulations).
            None if ADEQUATE.contains(&there) || home == "GB" && in_eea(there) => Transfer::Adequacy,
            None => Transfer::Unprotected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EXAMPLE_REGISTRY;

    fn recipient(country: &str, safeguard: Option<&str>) -> Recipient {
        Recipient {
            name: "r".into(),
            display_name: "R".into(),
            country: country.into(),
            role: crate::RecipientRole::Processor,
            safeguard: safeguard.map(str::to_owned),
            webhook: None,
        }
    }

    #[test]
    fn transfers_are_judged_from_the_controllers_country() {
        let mut reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        // The example controller is in GB.
        assert_eq!(reg.transfer_to(&recipient("GB", None)), Transfer::Domestic);
        assert_eq!(reg.transfer_to(&recipient("IE", None)), Transfer::Adequacy);
        assert_eq!(reg.transfer_to(&recipient("JP", None)), Transfer::Adequacy);
        assert_eq!(reg.transfer_to(&recipient("US", None)), Transfer::Unprotected);
        assert_eq!(
            reg.transfer_to(&recipient("US", Some("SCCs"))),
            Transfer::Safeguard("SCCs".into())
        );
        reg.organization.country = "DE".into();
        assert_eq!(reg.transfer_to(&recipient("IE", None)), Transfer::Domestic);
        assert_eq!(reg.transfer_to(&recipient("NO", None)), Transfer::Domestic);
        assert_eq!(reg.transfer_to(&recipient("GB", None)), Transfer::Adequacy);
        assert_eq!(reg.transfer_to(&recipient("IN", None)), Transfer::Unprotected);
        assert!(!Transfer::Domestic.is_third_country());
        assert!(Transfer::Adequacy.is_third_country());
        // A US controller sending to the EEA: not a GDPR transfer from its point of view,
        // but a different country, with neither adequacy listed nor safeguard named.
        reg.organization.country = "US".into();
        assert_eq!(reg.transfer_to(&recipient("US", None)), Transfer::Domestic);
        assert_eq!(reg.transfer_to(&recipient("CH", None)), Transfer::Adequacy);
    }
}
