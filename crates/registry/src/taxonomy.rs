//! Data categories and data uses of the Fides taxonomy (fideslang 3.1.4's defaults), so the
//! registry speaks the same vocabulary as the privacy tools people already use. A registry may use a listed category
//! or its own sub-category of a listed leaf (e.g. `user.contact.email.work`); sub-categories
//! of inner nodes are refused so that a typo such as `user.contact.emails` is caught.

const CATEGORIES: &[&str] = &[
    "system",
    "system.authentication",
    "system.operations",
    "user",
    "user.account",
    "user.account.settings",
    "user.account.username",
    "user.authorization",
    "user.authorization.biometric",
    "user.authorization.credentials",
    "user.authorization.password",
    "user.behavior",
    "user.behavior.browsing_history",
    "user.behavior.media_consumption",
    "user.behavior.purchase_history",
    "user.behavior.search_history",
    "user.biometric",
    "user.biometric.fingerprint",
    "user.biometric.health",
    "user.biometric.retinal",
    "user.biometric.voice",
    "user.childrens",
    "user.contact",
    "user.contact.address",
    "user.contact.address.city",
    "user.contact.address.country",
    "user.contact.address.postal_code",
    "user.contact.address.state",
    "user.contact.address.street",
    "user.contact.email",
    "user.contact.fax_number",
    "user.contact.organization",
    "user.contact.phone_number",
    "user.contact.url",
    "user.content",
    "user.content.private",
    "user.content.public",
    "user.content.self_image",
    "user.criminal_history",
    "user.demographic",
    "user.demographic.age_range",
    "user.demographic.date_of_birth",
    "user.demographic.gender",
    "user.demographic.language",
    "user.demographic.marital_status",
    "user.demographic.political_opinion",
    "user.demographic.profile",
    "user.demographic.race_ethnicity",
    "user.demographic.religious_belief",
    "user.demographic.sexual_orientation",
    "user.device",
    "user.device.cookie",
    "user.device.cookie_id",
    "user.device.device_id",
    "user.device.ip_address",
    "user.device.telemetry",
    "user.financial",
    "user.financial.bank_account",
    "user.financial.credit_card",
    "user.government_id",
    "user.government_id.birth_certificate",
    "user.government_id.drivers_license_number",
    "user.government_id.immigration",
    "user.government_id.military",
    "user.government_id.national_identification_number",
    "user.government_id.passport_number",
    "user.government_id.vehicle_registration",
    "user.health_and_medical",
    "user.health_and_medical.genetic",
    "user.health_and_medical.insurance_beneficiary_id",
    "user.health_and_medical.record_id",
    "user.job_title",
    "user.location",
    "user.location.imprecise",
    "user.location.precise",
    "user.name",
    "user.name.first",
    "user.name.last",
    "user.payment",
    "user.privacy_preferences",
    "user.sensor",
    "user.social",
    "user.telemetry",
    "user.unique_id",
    "user.unique_id.pseudonymous",
    "user.user_sensor",
    "user.workplace",
];

/// Categories this list has that fideslang's default taxonomy does not: a Fides export
/// declares them (and any custom sub-category) as its own `data_category` resources.
pub const NOT_IN_FIDESLANG: &[&str] = &["user.device.telemetry", "user.government_id.military"];

/// Whether fideslang's default taxonomy has `category` itself.
#[must_use]
pub fn is_fideslang_category(category: &str) -> bool {
    CATEGORIES.contains(&category) && !NOT_IN_FIDESLANG.contains(&category)
}

/// The data uses of fideslang's default taxonomy (`personalize.profiling`, deprecated since
/// fideslang 2.1.1, left out: `personalize.content.profiling` replaces it).
pub const DATA_USES: &[&str] = &[
    "analytics",
    "analytics.reporting",
    "analytics.reporting.ad_performance",
    "analytics.reporting.campaign_insights",
    "analytics.reporting.content_performance",
    "analytics.reporting.system",
    "analytics.reporting.system.performance",
    "collect",
    "employment",
    "employment.recruitment",
    "essential",
    "essential.fraud_detection",
    "essential.legal_obligation",
    "essential.service",
    "essential.service.authentication",
    "essential.service.notifications",
    "essential.service.notifications.email",
    "essential.service.notifications.sms",
    "essential.service.operations",
    "essential.service.operations.improve",
    "essential.service.operations.support",
    "essential.service.payment_processing",
    "essential.service.security",
    "essential.service.upgrades",
    "finance",
    "functional",
    "functional.service",
    "functional.service.improve",
    "functional.storage",
    "functional.storage.privacy_preferences",
    "marketing",
    "marketing.advertising",
    "marketing.advertising.first_party",
    "marketing.advertising.first_party.contextual",
    "marketing.advertising.first_party.targeted",
    "marketing.advertising.frequency_capping",
    "marketing.advertising.negative_targeting",
    "marketing.advertising.profiling",
    "marketing.advertising.serving",
    "marketing.advertising.third_party",
    "marketing.advertising.third_party.targeted",
    "marketing.communications",
    "marketing.communications.email",
    "marketing.communications.sms",
    "operations",
    "personalize",
    "personalize.content",
    "personalize.content.limited",
    "personalize.content.profiled",
    "personalize.content.profiling",
    "personalize.system",
    "sales",
    "third_party_sharing",
    "third_party_sharing.legal_obligation",
    "train_ai_system",
];

/// Whether `data_use` is one of [`DATA_USES`].
#[must_use]
pub fn is_known_data_use(data_use: &str) -> bool {
    DATA_USES.contains(&data_use)
}

/// Whether `category` is a Fides data category or a sub-category of one.
#[must_use]
pub fn is_known_category(category: &str) -> bool {
    if CATEGORIES.contains(&category) {
        return true;
    }
    let valid_segments = category.split('.').all(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    valid_segments
        && CATEGORIES
            .iter()
            .any(|known| is_below(category, known) && is_leaf(known))
}

fn is_below(category: &str, parent: &str) -> bool {
    category.len() > parent.len() && category.starts_with(parent) && category.as_bytes()[parent.len()] == b'.'
}

fn is_leaf(known: &str) -> bool {
    !CATEGORIES.iter().any(|other| is_below(other, known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert!(is_known_category("user.contact.email"));
        assert!(is_known_category("user.contact.email.work"));
        assert!(!is_known_category("user.contact.emails"));
        assert!(!is_known_category("user.contact.email."));
        assert!(!is_known_category("email"));
        assert!(!is_known_category("user.Contact"));
        assert!(!is_known_category("user.nom"), "inner nodes take no custom children");
    }
}

/// Sensitive personal information as CPRA defines it (Cal. Civ. Code §1798.140(ae)), in
/// taxonomy terms: government identifiers, account credentials, financial accounts and cards,
/// precise geolocation, racial or ethnic origin, religious beliefs, sexual orientation, the
/// contents of private communications, genetic, biometric and health data. A category under
/// any of these counts.
pub fn is_sensitive_category(category: &str) -> bool {
    const SENSITIVE: &[&str] = &[
        "user.government_id",
        "user.authorization.credentials",
        "user.authorization.password",
        "user.authorization.biometric",
        "user.financial",
        "user.location.precise",
        "user.demographic.race_ethnicity",
        "user.demographic.religious_belief",
        "user.demographic.sexual_orientation",
        "user.content.private",
        "user.health_and_medical",
        "user.biometric",
    ];
    SENSITIVE
        .iter()
        .any(|s| category == *s || category.strip_prefix(s).is_some_and(|rest| rest.starts_with('.')))
}

/// Special categories of personal data (GDPR Art. 9(1)) and data on criminal convictions
/// (Art. 10), in taxonomy terms: racial or ethnic origin, political opinions, religious
/// beliefs, genetic, biometric and health data, sex life or sexual orientation, criminal
/// history. Their processing needs an Art. 9(2) condition besides a legal basis.
pub fn is_special_category(category: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "user.demographic.race_ethnicity",
        "user.demographic.political_opinion",
        "user.demographic.religious_belief",
        "user.demographic.sexual_orientation",
        "user.health_and_medical",
        "user.biometric",
        "user.authorization.biometric",
        "user.criminal_history",
    ];
    SPECIAL
        .iter()
        .any(|s| category == *s || category.strip_prefix(s).is_some_and(|rest| rest.starts_with('.')))
}

#[cfg(test)]
mod sensitive_tests {
    use super::is_sensitive_category;

    #[test]
    fn sensitive_categories_and_their_children() {
        assert!(is_sensitive_category("user.financial.credit_card"));
        assert!(is_sensitive_category("user.government_id"));
        assert!(is_sensitive_category("user.health_and_medical.genetic"));
        assert!(!is_sensitive_category("user.contact.email"));
        assert!(!is_sensitive_category("user.financialx"));
        assert!(!is_sensitive_category("user.location.imprecise"));
    }

    #[test]
    fn special_categories_are_those_of_article_9_and_10() {
        use super::is_special_category;
        assert!(is_special_category("user.health_and_medical.genetic"));
        assert!(is_special_category("user.demographic.political_opinion"));
        assert!(is_special_category("user.criminal_history"));
        // Sensitive under the CPRA, but not an Art. 9 category.
        assert!(!is_special_category("user.financial.credit_card"));
        assert!(!is_special_category("user.government_id.passport_number"));
        assert!(!is_special_category("user.demographic.political_opinions"));
    }
}
