//! The record of processing activities (GDPR Art. 30(1)), one activity per purpose, with
//! every element the article lists: (a) the controller, its representative and DPO, (b) the
//! purpose, (c) the categories of data subjects and of personal data, (d) the categories of
//! recipients, (e) transfers to third countries and their safeguards, (f) the time limits for
//! erasure, (g) the technical and organisational security measures. As JSON and as CSV.

use custodia_registry::{Registry, Transfer, is_special_category};
use serde::Serialize;

use crate::notice::purpose_categories;

/// The technical measures Custodia applies to every value it holds (Art. 30(1)(g), 32(1)).
pub const TECHNICAL_MEASURES: &[&str] = &[
    "field-level encryption: every value sealed with AES-256-GCM under a data key of its own data subject, wrapped by a root key held outside the database",
    "pseudonymisation: searchable values kept only as keyed blind indexes (HMAC-SHA256); vaulted tokens in place of values for roles that need no plain value",
    "access control: every read and write names a purpose and is decided by role-based Cedar policies, deny by default; output forms (plain, masked, token) per role and field",
    "consent, objections, opt-outs and restriction enforced on every access from an append-only ledger",
    "a tamper-evident audit log of every decision (RFC 6962 Merkle tree, signed checkpoints)",
    "erasure by destroying the subject's data key (crypto-shredding); retention periods enforced by a sweeper",
];

/// The record. Field names are the JSON document's (`GET /v1/ropa`).
#[derive(Debug, Clone, Serialize)]
pub struct Ropa {
    pub controller: RopaController,
    pub activities: Vec<Activity>,
    /// The notice version the same registry produces (what data subjects are told).
    pub notice_version: String,
}

/// Art. 30(1)(a).
#[derive(Debug, Clone, Serialize)]
pub struct RopaController {
    pub name: String,
    pub contact: String,
    pub representative: Option<String>,
    pub dpo: Option<String>,
    pub country: String,
    pub supervisory_authority: String,
}

/// One processing activity: a purpose.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// (b)
    pub purpose: String,
    pub description: String,
    pub legal_basis: String,
    pub legitimate_interest: Option<String>,
    /// (c) the categories of data subjects: the collections' descriptions.
    pub data_subjects: Vec<String>,
    /// (c) the categories of personal data.
    pub data_categories: Vec<String>,
    /// Those of (c) that are special categories (Art. 9) or criminal data (Art. 10).
    pub special_categories: Vec<String>,
    /// (d)
    pub recipients: Vec<RopaRecipient>,
    /// (e)
    pub transfers: Vec<RopaTransfer>,
    /// (f) e.g. `2y from last_update`; `None`: until withdrawal, objection or erasure.
    pub retention: Option<String>,
    /// (g)
    pub security_measures: SecurityMeasures,
    pub source: Option<String>,
    /// The activities whose data this one also processes, as compatible with them
    /// (`compatible_with`, GDPR Art. 6(4)).
    pub further_processing_of: Vec<String>,
    pub sale_or_sharing: bool,
    pub survives_erasure: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RopaRecipient {
    pub name: String,
    pub role: &'static str,
    pub country: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RopaTransfer {
    pub recipient: String,
    pub country: String,
    /// `adequacy_decision`, `safeguard` or `unprotected`.
    pub basis: &'static str,
    pub safeguard: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecurityMeasures {
    pub technical: Vec<String>,
    pub organisational: Option<String>,
}

impl Ropa {
    /// The record of `registry`; `notice_version` is the version of its notice.
    #[must_use]
    pub fn build(registry: &Registry, notice_version: &str) -> Self {
        let org = &registry.organization;
        let security = SecurityMeasures {
            technical: TECHNICAL_MEASURES.iter().map(|m| (*m).to_owned()).collect(),
            organisational: org.security_measures.clone(),
        };
        let activities = registry
            .purposes
            .values()
            .map(|p| {
                let data_categories = purpose_categories(registry, p);
                let recipients: Vec<_> = p.recipients.iter().filter_map(|r| registry.recipients.get(r)).collect();
                Activity {
                    purpose: p.name.clone(),
                    description: p.description.clone(),
                    legal_basis: p.legal_basis.name().to_owned(),
                    legitimate_interest: p.legal_basis.interest().map(str::to_owned),
                    data_subjects: p
                        .fields
                        .keys()
                        .filter_map(|c| registry.collection(c))
                        .map(|c| {
                            if c.description.is_empty() {
                                c.name.clone()
                            } else {
                                c.description.clone()
                            }
                        })
                        .collect(),
                    special_categories: data_categories
                        .iter()
                        .filter(|c| is_special_category(c))
                        .cloned()
                        .collect(),
                    data_categories,
                    recipients: recipients
                        .iter()
                        .map(|r| RopaRecipient {
                            name: r.display_name.clone(),
                            role: crate::notice::NoticeRecipient::role_of(r.role),
                            country: r.country.clone(),
                        })
                        .collect(),
                    transfers: recipients
                        .iter()
                        .filter_map(|r| {
                            let t = registry.transfer_to(r);
                            t.is_third_country().then(|| RopaTransfer {
                                recipient: r.display_name.clone(),
                                country: r.country.clone(),
                                basis: t.name(),
                                safeguard: match t {
                                    Transfer::Safeguard(s) => Some(s),
                                    _ => None,
                                },
                            })
                        })
                        .collect(),
                    retention: p.retention.as_ref().map(custodia_registry::Retention::describe),
                    security_measures: security.clone(),
                    source: p.source.clone(),
                    further_processing_of: p.compatible_with.iter().cloned().collect(),
                    sale_or_sharing: p.sale_or_sharing,
                    survives_erasure: p.survives_erasure,
                }
            })
            .collect();
        Self {
            controller: RopaController {
                name: org.name.clone(),
                contact: org.contact.clone(),
                representative: org.representative.clone(),
                dpo: org.dpo.clone(),
                country: org.country.clone(),
                supervisory_authority: org.supervisory_authority.clone(),
            },
            activities,
            notice_version: notice_version.to_owned(),
        }
    }

    /// The CSV columns, in order (RFC 4180, one row per activity).
    pub const CSV_COLUMNS: [&'static str; 21] = [
        "controller_name",
        "controller_contact",
        "representative",
        "dpo",
        "purpose",
        "description",
        "legal_basis",
        "legitimate_interest",
        "data_subjects",
        "data_categories",
        "special_categories",
        "recipients",
        "third_country_transfers",
        "transfer_safeguards",
        "retention",
        "technical_measures",
        "organisational_measures",
        "source",
        "further_processing_of",
        "sale_or_sharing",
        "survives_erasure",
    ];

    /// The record as CSV: a header row, then one row per activity; lists joined with `; `.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        push_row(&mut out, Self::CSV_COLUMNS.iter().map(|c| (*c).to_owned()));
        let c = &self.controller;
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        for a in &self.activities {
            push_row(
                &mut out,
                [
                    c.name.clone(),
                    c.contact.clone(),
                    opt(&c.representative),
                    opt(&c.dpo),
                    a.purpose.clone(),
                    a.description.clone(),
                    a.legal_basis.clone(),
                    opt(&a.legitimate_interest),
                    a.data_subjects.join("; "),
                    a.data_categories.join("; "),
                    a.special_categories.join("; "),
                    a.recipients
                        .iter()
                        .map(|r| format!("{} ({}, {})", r.name, r.role, r.country))
                        .collect::<Vec<_>>()
                        .join("; "),
                    a.transfers
                        .iter()
                        .map(|t| format!("{} ({})", t.recipient, t.country))
                        .collect::<Vec<_>>()
                        .join("; "),
                    a.transfers
                        .iter()
                        .map(|t| t.safeguard.clone().unwrap_or_else(|| t.basis.to_owned()))
                        .collect::<Vec<_>>()
                        .join("; "),
                    a.retention
                        .clone()
                        .unwrap_or_else(|| "until withdrawal, objection or erasure".to_owned()),
                    a.security_measures.technical.join("; "),
                    opt(&a.security_measures.organisational),
                    a.source.clone().unwrap_or_else(|| "the data subject".to_owned()),
                    a.further_processing_of.join("; "),
                    a.sale_or_sharing.to_string(),
                    a.survives_erasure.to_string(),
                ],
            );
        }
        out
    }
}

/// One CSV row (RFC 4180, CRLF). A cell is quoted when it holds a comma, a quote or a line
/// break; one that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, CR at
/// its start) is prefixed with `'` so that opening the record cannot run registry text.
fn push_row(out: &mut String, cells: impl IntoIterator<Item = String>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{cell}")
        } else {
            cell
        };
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_registry::EXAMPLE_REGISTRY;

    /// Every element of GDPR Art. 30(1)(a)-(g), in the JSON and in the CSV.
    #[test]
    fn the_record_holds_every_element_of_article_30() {
        let reg = Registry::parse("r.toml", EXAMPLE_REGISTRY).unwrap();
        let ropa = Ropa::build(&reg, "sha256-x");
        let j = serde_json::to_value(&ropa).unwrap();
        // (a)
        assert_eq!(j["controller"]["name"], "Example Shop Ltd");
        assert_eq!(j["controller"]["dpo"], "Data Protection Officer, dpo@shop.example");
        assert!(j["controller"].get("representative").is_some());
        let acts = j["activities"].as_array().unwrap();
        assert_eq!(acts.len(), reg.purposes.len());
        let a = acts.iter().find(|a| a["purpose"] == "marketing_email").unwrap();
        // (b)
        assert_eq!(a["legal_basis"], "consent");
        assert!(a["description"].as_str().unwrap().starts_with("To send you news"));
        // (c)
        assert_eq!(a["data_subjects"], serde_json::json!(["People who buy from the shop."]));
        assert_eq!(
            a["data_categories"],
            serde_json::json!(["user.contact.email", "user.name"])
        );
        // (d)-(e)
        assert_eq!(a["recipients"][0]["name"], "Mail Sender Inc.");
        assert_eq!(a["recipients"][0]["role"], "processor");
        assert_eq!(a["transfers"][0]["country"], "US");
        assert_eq!(a["transfers"][0]["basis"], "safeguard");
        // (f)
        assert_eq!(a["retention"], "1d after consent is withdrawn");
        // (g)
        assert_eq!(
            a["security_measures"]["technical"].as_array().unwrap().len(),
            TECHNICAL_MEASURES.len()
        );
        assert!(
            a["security_measures"]["organisational"]
                .as_str()
                .unwrap()
                .contains("trained")
        );
        // A domestic recipient is no transfer.
        let orders = acts.iter().find(|a| a["purpose"] == "order_fulfillment").unwrap();
        assert_eq!(orders["transfers"], serde_json::json!([]));

        let csv = ropa.to_csv();
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1 + reg.purposes.len());
        assert_eq!(lines[0], Ropa::CSV_COLUMNS.join(","));
        let row = lines.iter().find(|l| l.contains(",marketing_email,")).unwrap();
        for expected in [
            "Mail Sender Inc. (processor, US)",
            "1d after consent is withdrawn",
            "AES-256-GCM",
            "user.contact.email; user.name",
        ] {
            assert!(row.contains(expected), "{expected} in {row}");
        }
    }

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        let mut out = String::new();
        push_row(
            &mut out,
            [
                "a,b".to_owned(),
                "say \"hi\"".to_owned(),
                "=HYPERLINK(\"x\")".to_owned(),
                "-1".to_owned(),
                "two\nlines".to_owned(),
                "plain".to_owned(),
            ],
        );
        assert_eq!(
            out,
            "\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",'-1,\"two\nlines\",plain\r\n"
        );
    }
}
