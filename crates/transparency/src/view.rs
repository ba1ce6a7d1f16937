//! The notice in words: every sentence of it filled in once, from the [`Notice`] and the
//! language's [`Strings`]. The HTML page and the Markdown export lay out this same value.

use custodia_registry::RequestType;

use crate::locale::{Strings, fill};
use crate::notice::{Notice, RetentionRule, legal_basis_text, recipient_role_text, right_text};

/// A section of labelled lines about one purpose.
#[derive(Debug, Clone)]
pub struct PurposeText {
    pub name: String,
    pub description: String,
    /// (label, value) pairs.
    pub facts: Vec<(String, String)>,
    /// Sentences after the facts (withdrawal, erasure exemption).
    pub notes: Vec<String>,
}

/// A table: headers and rows of cells.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The rights of one law.
#[derive(Debug, Clone)]
pub struct RightsText {
    pub title: String,
    pub items: Vec<String>,
    pub complaint: String,
}

/// The whole notice in words.
#[derive(Debug, Clone)]
pub struct NoticeText {
    pub language: String,
    pub title: String,
    pub intro: String,
    pub version: String,
    /// "Last updated ...", when the notice knows the date.
    pub last_updated: Option<String>,
    pub controller_heading: String,
    pub controller: Vec<String>,
    pub purposes_heading: String,
    pub purposes: Vec<PurposeText>,
    pub categories_heading: String,
    pub categories: Table,
    pub recipients_heading: String,
    pub recipients: Table,
    pub safeguards_copy: String,
    pub rights_heading: String,
    pub rights_intro: String,
    pub rights: Vec<RightsText>,
    pub how_to_use_rights: String,
    pub sale_heading: String,
    pub sale: String,
    pub sensitive_heading: String,
    pub sensitive: Vec<String>,
    pub automated_heading: String,
    pub automated: Option<String>,
}

impl NoticeText {
    /// The notice's sentences in the words of `t`.
    #[must_use]
    pub fn new(n: &Notice, t: &Strings) -> Self {
        let s = &t.notice;
        let c = &n.controller;
        let mut controller = vec![
            fill(&s.controller, &[("controller", &c.name)]),
            fill(&s.contact, &[("contact", &c.contact)]),
        ];
        if let Some(dpo) = &c.dpo {
            controller.push(fill(&s.dpo, &[("dpo", dpo)]));
        }
        if let Some(rep) = &c.representative {
            controller.push(fill(&s.representative, &[("representative", rep)]));
        }
        let categories_of = |names: &[String]| names.iter().map(|c| t.category(c)).collect::<Vec<_>>().join(", ");
        // Descriptions are sentences; inside another sentence they lose their full stop.
        let description_of = |name: &str| {
            n.purpose(name)
                .map_or_else(|| name.to_owned(), |p| p.description.trim_end_matches('.').to_owned())
        };
        let purposes = n
            .purposes
            .iter()
            .map(|p| {
                let mut facts = vec![(s.legal_basis.clone(), legal_basis_text(&p.legal_basis, t).to_owned())];
                if let Some(interest) = &p.legitimate_interest {
                    facts.push((s.legitimate_interest.clone(), interest.clone()));
                }
                facts.push((s.categories.clone(), categories_of(&p.categories)));
                let recipients = if p.recipients.is_empty() {
                    s.no_recipients.clone()
                } else {
                    p.recipients.join(", ")
                };
                facts.push((s.recipients.clone(), recipients));
                facts.push((s.retention.clone(), RetentionRule::describe(p.retention.as_ref(), t)));
                facts.push((
                    s.source.clone(),
                    p.source.clone().unwrap_or_else(|| s.provided_by_you.clone()),
                ));
                if !p.reuses.is_empty() {
                    let others: Vec<String> = p.reuses.iter().map(|r| description_of(r)).collect();
                    facts.push((s.reuses.clone(), others.join("; ")));
                }
                // Art. 13(2)(e): whether the data must be given, and what follows if not.
                let required = match p.legal_basis.as_str() {
                    "contract" => &s.required_contract,
                    "legal_obligation" => &s.required_law,
                    "consent" => &s.required_consent,
                    _ => &s.required_other,
                };
                facts.push((s.required.clone(), required.clone()));
                let mut notes = Vec::new();
                if p.legal_basis == "consent" {
                    notes.push(s.withdraw.clone());
                }
                if p.survives_erasure {
                    notes.push(s.survives_erasure.clone());
                }
                PurposeText {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    facts,
                    notes,
                }
            })
            .collect();
        let categories = Table {
            headers: vec![s.category.clone(), s.used_for.clone(), s.kept_for.clone()],
            rows: n
                .categories
                .iter()
                .filter(|c| !c.purposes.is_empty())
                .map(|c| {
                    vec![
                        t.category(&c.category),
                        c.purposes
                            .iter()
                            .map(|p| description_of(p))
                            .collect::<Vec<_>>()
                            .join("; "),
                        // Each period with the use it is for.
                        c.retention
                            .iter()
                            .map(|r| {
                                format!(
                                    "{} ({})",
                                    RetentionRule::describe(r.retention.as_ref(), t),
                                    description_of(&r.purpose)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    ]
                })
                .collect(),
        };
        let recipients = Table {
            headers: vec![
                s.recipients.clone(),
                s.recipient_role.clone(),
                s.country.clone(),
                s.transfer.clone(),
            ],
            rows: n
                .recipients
                .iter()
                .map(|r| {
                    let transfer = match (r.transfer, &r.safeguard) {
                        (_, Some(safeguard)) => safeguard.clone(),
                        ("adequacy_decision", None) => s.transfer_adequacy.clone(),
                        ("unprotected", None) => s.transfer_unprotected.clone(),
                        _ => s.transfer_none.clone(),
                    };
                    vec![
                        r.name.clone(),
                        recipient_role_text(r.role, t).to_owned(),
                        r.country.clone(),
                        transfer,
                    ]
                })
                .collect(),
        };
        let rights = n
            .rights
            .iter()
            .map(|j| RightsText {
                title: j.jurisdiction.to_uppercase(),
                items: j
                    .rights
                    .iter()
                    .filter_map(|r| r.kind.parse::<RequestType>().ok().map(|k| (k, r)))
                    .map(|(k, r)| {
                        format!(
                            "{} ({})",
                            right_text(k, t),
                            fill(&s.answered_within, &[("period", &r.respond_within.replace('_', " "))])
                        )
                    })
                    .collect(),
                complaint: fill(&s.complaint, &[("authority", &j.authority)]),
            })
            .collect();
        let sale = if n.sale_or_sharing.sells_or_shares {
            let purposes: Vec<String> = n.sale_or_sharing.purposes.iter().map(|p| description_of(p)).collect();
            fill(
                &s.sells,
                &[
                    ("purposes", &purposes.join("; ")),
                    ("categories", &categories_of(&n.sale_or_sharing.categories)),
                ],
            )
        } else {
            s.sells_not.clone()
        };
        let mut sensitive = vec![if n.sensitive.categories.is_empty() {
            s.sensitive_none.clone()
        } else {
            fill(&s.sensitive, &[("categories", &categories_of(&n.sensitive.categories))])
        }];
        if !n.sensitive.special_categories.is_empty() {
            sensitive.push(fill(
                &s.special,
                &[("categories", &categories_of(&n.sensitive.special_categories))],
            ));
        }
        Self {
            language: n.language.clone(),
            title: s.title.clone(),
            intro: fill(&s.intro, &[("controller", &c.name)]),
            version: fill(&s.version, &[("version", &n.version)]),
            last_updated: n
                .last_updated
                .map(|d| fill(&s.last_updated, &[("date", &d.to_string())])),
            controller_heading: s.controller_heading.clone(),
            controller,
            purposes_heading: s.purposes_heading.clone(),
            purposes,
            categories_heading: s.categories_heading.clone(),
            categories,
            recipients_heading: s.recipients_heading.clone(),
            recipients,
            safeguards_copy: fill(&s.safeguards_copy, &[("contact", &c.contact)]),
            rights_heading: s.rights_heading.clone(),
            rights_intro: s.rights_intro.clone(),
            rights,
            how_to_use_rights: fill(&s.how_to_use_rights, &[("contact", &c.contact)]),
            sale_heading: s.sale_heading.clone(),
            sale,
            sensitive_heading: s.sensitive_heading.clone(),
            sensitive,
            automated_heading: s.automated_heading.clone(),
            automated: n.automated_decisions.clone(),
        }
    }

    /// The notice as Markdown, for the business's website. Registry text is escaped so that
    /// it reads as written and cannot add links, images or HTML.
    #[must_use]
    pub fn to_markdown(&self, note: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# {}\n\n{}\n\n_{}_\n",
            md(&self.title),
            md(&self.intro),
            md(&self.version)
        );
        if let Some(updated) = &self.last_updated {
            let _ = writeln!(out, "_{}_\n", md(updated));
        }
        let _ = writeln!(out, "## {}\n", md(&self.controller_heading));
        for line in &self.controller {
            let _ = writeln!(out, "- {}", md(line));
        }
        let _ = writeln!(out, "\n## {}\n", md(&self.purposes_heading));
        for p in &self.purposes {
            let _ = writeln!(out, "### {}\n", md(&p.description));
            for (label, value) in &p.facts {
                let _ = writeln!(out, "- **{}:** {}", md(label), md(value));
            }
            for note in &p.notes {
                let _ = writeln!(out, "\n{}", md(note));
            }
            out.push('\n');
        }
        let _ = writeln!(out, "## {}\n", md(&self.categories_heading));
        md_table(&mut out, &self.categories);
        let _ = writeln!(out, "## {}\n", md(&self.recipients_heading));
        md_table(&mut out, &self.recipients);
        let _ = writeln!(out, "{}\n", md(&self.safeguards_copy));
        let _ = writeln!(out, "## {}\n\n{}\n", md(&self.rights_heading), md(&self.rights_intro));
        for r in &self.rights {
            let _ = writeln!(out, "### {}\n", md(&r.title));
            for item in &r.items {
                let _ = writeln!(out, "- {}", md(item));
            }
            let _ = writeln!(out, "\n{}\n", md(&r.complaint));
        }
        let _ = writeln!(out, "{}\n", md(&self.how_to_use_rights));
        let _ = writeln!(out, "## {}\n\n{}\n", md(&self.sale_heading), md(&self.sale));
        let _ = writeln!(out, "## {}\n", md(&self.sensitive_heading));
        for line in &self.sensitive {
            let _ = writeln!(out, "{}\n", md(line));
        }
        if let Some(automated) = &self.automated {
            let _ = writeln!(out, "## {}\n\n{}\n", md(&self.automated_heading), md(automated));
        }
        // A comment the note cannot close or open anything in.
        let note: String = note.chars().filter(|c| !matches!(c, '-' | '<' | '>')).collect();
        let _ = writeln!(out, "<!-- {note} -->");
        out
    }
}

fn md_table(out: &mut String, table: &Table) {
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| md(c).replace('|', "\\|")).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    out.push_str(&row(&table.headers));
    out.push_str(&format!("|{}\n", " --- |".repeat(table.headers.len())));
    for r in &table.rows {
        out.push_str(&row(r));
    }
    out.push('\n');
}

/// Text escaped for Markdown: each character with a meaning there is backslash-escaped, and
/// line breaks become spaces (a registry text cannot start a heading or a list of its own).
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '(' | ')' | '#' | '+' | '-' | '!' | '|'
            | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            '&' => out.push_str("&amp;"),
            // `:` and `.` break the autolinks of GitHub Markdown (`https://...`, `www...`).
            ':' | '.' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::md;

    #[test]
    fn markdown_escapes_what_would_format_or_link() {
        assert_eq!(md("[x](javascript:alert(1))"), "\\[x\\]\\(javascript\\:alert\\(1\\)\\)");
        assert_eq!(md("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(md("a\n# b"), "a \\# b");
        assert_eq!(md("&lt;"), "&amp;lt;");
        assert_eq!(
            md("see https://evil.example or www.evil.example"),
            "see https\\://evil\\.example or www\\.evil\\.example"
        );
    }
}
