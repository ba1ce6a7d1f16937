//! fideslang manifests as a registry. `meta.custodia` blocks (written by [`crate::export`])
//! are authoritative; without them the registry is inferred from fideslang's fields, and
//! every inference and every field with no equivalent is reported. What the registry needs
//! and fideslang cannot say (the supervisory authority, the country) comes from
//! [`ImportOptions`] or is an error naming it.

use std::collections::{BTreeMap, BTreeSet};

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Node, Span};

use crate::RECIPIENT_PREFIX;

/// One manifest file: its name (for messages) and text.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// What the manifests cannot say.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// ISO 3166-1 alpha-2 country of the organization (fideslang has no country).
    pub country: Option<String>,
    /// The organization's lead supervisory authority (fideslang has none).
    pub supervisory_authority: Option<String>,
}

/// The registry file and what was inferred or left out on the way.
#[derive(Debug, Clone)]
pub struct Imported {
    pub registry_toml: String,
    pub report: Vec<String>,
}

/// Why manifests could not become a registry.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// At a place in a manifest.
    #[error("{file}:{line}: {message}")]
    At { file: String, line: usize, message: String },
    /// Not tied to one place.
    #[error("{0}")]
    Missing(String),
    /// The registry made from the manifests does not validate.
    #[error("the imported registry does not validate:\n{0}")]
    Registry(String),
}

/// Reads the sources and builds the registry, or every error found.
pub fn import(sources: &[Source], options: &ImportOptions) -> Result<Imported, Vec<ImportError>> {
    let mut cx = Cx {
        sources,
        errors: Vec::new(),
        report: Vec::new(),
    };
    let mut docs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        match marked_yaml::parse_yaml(i, &source.text) {
            Ok(node) => docs.push(node),
            Err(e) => cx.errors.push(ImportError::At {
                file: source.name.clone(),
                line: load_error_line(&e),
                message: format!("not a YAML mapping: {}", strip_marker(&e.to_string())),
            }),
        }
    }
    let mut organizations = Vec::new();
    let mut datasets = Vec::new();
    let mut systems = Vec::new();
    for doc in &docs {
        let Some(top) = doc.as_mapping() else { continue };
        for (key, value) in top.iter() {
            let list = match value.as_sequence() {
                Some(list) => list,
                None => {
                    cx.error(key.span(), format!("`{}` must be a list of resources", key.as_str()));
                    continue;
                }
            };
            let items = list.iter().filter_map(|n| {
                let m = n.as_mapping();
                if m.is_none() {
                    cx.error(n.span(), "a resource must be a mapping".into());
                }
                m
            });
            let items: Vec<&MarkedMappingNode> = items.collect();
            match key.as_str() {
                "organization" => organizations.extend(items),
                "dataset" => datasets.extend(items),
                "system" => systems.extend(items),
                "data_category" | "data_use" | "data_subject" => {
                    for item in items {
                        cx.note(
                            item.span(),
                            format!(
                                "{} `{}`: custom taxonomy items are not imported (a registry uses fideslang's categories and data uses, or sub-categories of its leaf categories)",
                                key.as_str(),
                                text(item, "fides_key").unwrap_or("?")
                            ),
                        );
                    }
                }
                other => cx.note(
                    key.span(),
                    format!("`{other}` resources have no equivalent in a registry"),
                ),
            }
        }
    }
    for system in &systems {
        let key = text(system, "fides_key").unwrap_or("?").to_owned();
        leftovers(&mut cx, &format!("system `{key}`"), system, SYSTEM_KEYS);
    }
    let mut registry = toml::Table::new();
    let vault_meta = systems
        .iter()
        .find_map(|s| meta(s)?.get_mapping("purposes").map(|_| meta(s)))
        .flatten();
    registry.insert(
        "organization".into(),
        organization(&mut cx, organizations.first().copied(), vault_meta, options).into(),
    );
    let collections = collections(&mut cx, &datasets);
    let recipients = recipients(&mut cx, &systems, &registry);
    let purposes = purposes(&mut cx, &systems, &collections, &recipients);
    registry.insert("collections".into(), to_table(&collections).into());
    if !purposes.is_empty() {
        registry.insert("purposes".into(), to_table(&purposes).into());
    }
    if !recipients.is_empty() {
        registry.insert(
            "recipients".into(),
            toml::Value::Table(
                recipients
                    .iter()
                    .map(|(k, r)| (k.clone(), r.table.clone().into()))
                    .collect(),
            ),
        );
    }
    cx.report
        .push("roles: none (Fides has no access model); nobody can read or write until [roles] are added".into());
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let mut out = String::from("# Registry imported from Fides manifests (custodia fides import).\n");
    for line in &cx.report {
        out.push_str("# - ");
        out.push_str(&line.replace('\n', " "));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&toml::to_string(&registry).map_err(|e| vec![ImportError::Missing(e.to_string())])?);
    if let Err(errors) = custodia_registry::Registry::parse("imported registry", &out) {
        return Err(vec![ImportError::Registry(errors.to_string())]);
    }
    Ok(Imported {
        registry_toml: out,
        report: cx.report,
    })
}

struct Cx<'a> {
    sources: &'a [Source],
    errors: Vec<ImportError>,
    report: Vec<String>,
}

impl Cx<'_> {
    fn place(&self, span: &Span) -> (String, usize) {
        let start = span.start();
        let file = start
            .and_then(|m| self.sources.get(m.source()))
            .map_or_else(|| "?".to_owned(), |s| s.name.clone());
        (file, start.map_or(0, |m| m.line()))
    }

    fn error(&mut self, span: &Span, message: String) {
        let (file, line) = self.place(span);
        self.errors.push(ImportError::At { file, line, message });
    }

    fn note(&mut self, span: &Span, message: String) {
        let (file, line) = self.place(span);
        self.report.push(format!("{file}:{line}: {message}"));
    }
}

fn load_error_line(e: &marked_yaml::LoadError) -> usize {
    let text = e.to_string();
    // "source:line:column: message"
    text.split(':').nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

fn strip_marker(text: &str) -> String {
    text.splitn(4, ':').nth(3).unwrap_or(text).trim().to_owned()
}

fn text<'a>(m: &'a MarkedMappingNode, key: &str) -> Option<&'a str> {
    m.get_scalar(key)
        .map(MarkedScalarNode::as_str)
        .filter(|s| !s.trim().is_empty() && *s != "null" && *s != "~")
}

fn strings(m: &MarkedMappingNode, key: &str) -> Vec<String> {
    m.get_sequence(key)
        .map(|s: &MarkedSequenceNode| {
            s.iter()
                .filter_map(|n| n.as_scalar())
                .map(|s| s.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn flag(m: &MarkedMappingNode, key: &str) -> bool {
    m.get_scalar(key).and_then(MarkedScalarNode::as_bool).unwrap_or(false)
}

fn meta(resource: &MarkedMappingNode) -> Option<&MarkedMappingNode> {
    resource.get_mapping("meta")?.get_mapping("custodia")
}

/// Reports the keys of `resource` that nothing read.
fn leftovers(cx: &mut Cx<'_>, what: &str, resource: &MarkedMappingNode, read: &[&str]) {
    for (key, value) in resource.iter() {
        let set = match value {
            Node::Scalar(s) => !matches!(s.as_str(), "" | "null" | "~" | "false"),
            Node::Sequence(s) => !s.is_empty(),
            Node::Mapping(m) => !m.is_empty(),
        };
        if set && !read.contains(&key.as_str()) {
            cx.note(
                key.span(),
                format!("{what}: `{}` has no equivalent in a registry", key.as_str()),
            );
        }
    }
}

/// A registry name made of `raw`: lower case, `[a-z0-9_]`, starting with a letter.
fn registry_name(raw: &str) -> String {
    let mut name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "p_");
    }
    name.truncate(63);
    name
}

fn organization(
    cx: &mut Cx<'_>,
    org: Option<&MarkedMappingNode>,
    vault_meta: Option<&MarkedMappingNode>,
    options: &ImportOptions,
) -> toml::Table {
    let mut t = toml::Table::new();
    let from_meta = vault_meta.and_then(|m| m.get_mapping("organization"));
    if let Some(m) = from_meta {
        for key in [
            "name",
            "contact",
            "dpo",
            "representative",
            "supervisory_authority",
            "country",
            "language",
            "security_measures",
            "automated_decisions",
        ] {
            if let Some(v) = text(m, key) {
                t.insert(key.into(), v.into());
            }
        }
    } else if let Some(org) = org {
        let person = |m: Option<&MarkedMappingNode>| {
            m.map(|p| {
                ["name", "email", "phone", "address"]
                    .iter()
                    .filter_map(|k| text(p, k))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
        };
        if let Some(name) = text(org, "name") {
            t.insert("name".into(), name.into());
        }
        let controller = org.get_mapping("controller");
        if let Some(contact) = controller.and_then(|c| text(c, "email").or(text(c, "address")).or(text(c, "phone"))) {
            t.insert("contact".into(), contact.into());
        }
        if let Some(dpo) = person(org.get_mapping("data_protection_officer")) {
            t.insert("dpo".into(), dpo.into());
        }
        if let Some(rep) = person(org.get_mapping("representative")) {
            t.insert("representative".into(), rep.into());
        }
        leftovers(
            cx,
            "organization",
            org,
            &[
                "fides_key",
                "name",
                "controller",
                "data_protection_officer",
                "representative",
                "organization_fides_key",
            ],
        );
    }
    if let Some(c) = &options.country {
        t.insert("country".into(), c.clone().into());
    }
    if let Some(a) = &options.supervisory_authority {
        t.insert("supervisory_authority".into(), a.clone().into());
    }
    for (key, what, flag) in [
        (
            "name",
            "the organization's name",
            "(an organization resource with `name`)",
        ),
        (
            "contact",
            "the organization's contact",
            "(the organization's `controller.email`)",
        ),
        ("country", "the organization's country", "--country CC"),
        (
            "supervisory_authority",
            "the organization's supervisory authority",
            "--supervisory-authority TEXT",
        ),
    ] {
        if !t.contains_key(key) {
            cx.errors.push(ImportError::Missing(format!(
                "{what} is not in the manifests (fideslang has no place for it): give {flag}"
            )));
        }
    }
    t
}

fn field_type(category: &str) -> &'static str {
    match category {
        c if c.starts_with("user.contact.email") => "email",
        c if c.starts_with("user.contact.phone_number") => "phone",
        c if c.starts_with("user.demographic.date_of_birth") => "date",
        c if c.starts_with("user.financial.credit_card") => "card_number",
        c if c.starts_with("user.financial.bank_account") => "iban",
        c if c.starts_with("user.contact.address") => "text",
        _ => "string",
    }
}

/// Per collection: its table and its fields' categories (to match declarations with).
struct Collected {
    table: toml::Table,
    categories: BTreeMap<String, String>,
    dataset: String,
}

fn to_table<T: Tabled>(items: &BTreeMap<String, T>) -> toml::Table {
    items
        .iter()
        .map(|(k, v)| (k.clone(), toml::Value::Table(v.table().clone())))
        .collect()
}

trait Tabled {
    fn table(&self) -> &toml::Table;
}

impl Tabled for Collected {
    fn table(&self) -> &toml::Table {
        &self.table
    }
}

impl Tabled for toml::Table {
    fn table(&self) -> &toml::Table {
        self
    }
}

fn collections(cx: &mut Cx<'_>, datasets: &[&MarkedMappingNode]) -> BTreeMap<String, Collected> {
    let mut out = BTreeMap::new();
    for dataset in datasets {
        let dataset_key = text(dataset, "fides_key").unwrap_or("?").to_owned();
        let dataset_meta = meta(dataset);
        let meta_fields = dataset_meta.and_then(|m| m.get_mapping("fields"));
        leftovers(
            cx,
            &format!("dataset `{dataset_key}`"),
            dataset,
            &[
                "fides_key",
                "name",
                "description",
                "collections",
                "meta",
                "organization_fides_key",
                "data_categories",
            ],
        );
        let Some(list) = dataset.get_sequence("collections") else {
            cx.error(dataset.span(), format!("dataset `{dataset_key}` has no `collections`"));
            continue;
        };
        let fallback_categories = strings(dataset, "data_categories");
        for node in list.iter() {
            let Some(c) = node.as_mapping() else { continue };
            let raw = dataset_meta
                .and_then(|m| text(m, "collection"))
                .or(text(c, "name"))
                .unwrap_or("collection");
            let mut name = registry_name(raw);
            if out.contains_key(&name) {
                name = registry_name(&format!("{dataset_key}_{raw}"));
                cx.note(
                    c.span(),
                    format!("collection `{raw}` of `{dataset_key}` imported as `{name}` (the name was taken)"),
                );
            }
            let description = text(c, "description")
                .or(text(dataset, "description"))
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    cx.report
                        .push(format!("collection `{name}`: no description in Fides; wrote its name"));
                    format!("Imported from Fides dataset {dataset_key}.")
                });
            let collection_categories = strings(c, "data_categories");
            let mut fields = toml::Table::new();
            let mut categories = BTreeMap::new();
            for f in c
                .get_sequence("fields")
                .into_iter()
                .flat_map(|s| s.iter())
                .filter_map(Node::as_mapping)
            {
                let Some(fname) = text(f, "name") else { continue };
                if f.get_sequence("fields").is_some_and(|s| !s.is_empty()) {
                    cx.note(
                        f.span(),
                        format!("field `{fname}`: nested fields are not imported (a registry field holds one value)"),
                    );
                    continue;
                }
                let cats = [
                    strings(f, "data_categories"),
                    collection_categories.clone(),
                    fallback_categories.clone(),
                ]
                .into_iter()
                .find(|c| !c.is_empty())
                .unwrap_or_default();
                let Some(category) = cats.first().cloned() else {
                    cx.note(f.span(), format!("field `{fname}`: no data category; not imported"));
                    continue;
                };
                if cats.len() > 1 {
                    cx.note(
                        f.span(),
                        format!("field `{fname}`: several categories; `{category}` kept"),
                    );
                }
                let key = registry_name(fname);
                let mut ft = toml::Table::new();
                ft.insert("category".into(), category.clone().into());
                let fmeta = meta_fields.and_then(|m| m.get_mapping(fname));
                match fmeta.and_then(|m| text(m, "type")) {
                    Some(t) => {
                        ft.insert("type".into(), t.into());
                    }
                    None => {
                        let guess = field_type(&category);
                        cx.report.push(format!(
                            "field `{name}.{key}`: type `{guess}` guessed from its category"
                        ));
                        ft.insert("type".into(), guess.into());
                    }
                }
                if let Some(m) = fmeta {
                    if flag(m, "searchable") {
                        ft.insert("searchable".into(), true.into());
                    }
                    if let Some(o) = text(m, "default_output") {
                        ft.insert("default_output".into(), o.into());
                    }
                }
                categories.insert(key.clone(), category);
                fields.insert(key, ft.into());
            }
            let mut table = toml::Table::new();
            table.insert("description".into(), description.into());
            table.insert("fields".into(), fields.into());
            out.insert(
                name,
                Collected {
                    table,
                    categories,
                    dataset: dataset_key.clone(),
                },
            );
        }
    }
    out
}

/// A recipient: its registry table, by the system key that names it.
struct Recipient {
    table: toml::Table,
    system: String,
}

fn recipients(cx: &mut Cx<'_>, systems: &[&MarkedMappingNode], registry: &toml::Table) -> BTreeMap<String, Recipient> {
    let egress: BTreeSet<String> = systems
        .iter()
        .flat_map(|s| {
            let mut keys: Vec<String> = s
                .get_sequence("egress")
                .into_iter()
                .flat_map(|e| e.iter())
                .filter_map(Node::as_mapping)
                .filter(|f| text(f, "type") == Some("system"))
                .filter_map(|f| text(f, "fides_key").map(str::to_owned))
                .collect();
            for d in s
                .get_sequence("privacy_declarations")
                .into_iter()
                .flat_map(|d| d.iter())
                .filter_map(Node::as_mapping)
            {
                keys.extend(strings(d, "egress"));
            }
            keys
        })
        .collect();
    let home = registry
        .get("organization")
        .and_then(|o| o.get("country"))
        .and_then(toml::Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut out = BTreeMap::new();
    for system in systems {
        let Some(key) = text(system, "fides_key") else { continue };
        let m = meta(system);
        if !egress.contains(key) && m.and_then(|m| text(m, "recipient")).is_none() {
            continue;
        }
        let name = registry_name(
            m.and_then(|m| text(m, "recipient"))
                .unwrap_or_else(|| key.strip_prefix(RECIPIENT_PREFIX).unwrap_or(key)),
        );
        let mut t = toml::Table::new();
        t.insert(
            "name".into(),
            text(system, "legal_name")
                .or(text(system, "name"))
                .unwrap_or(key)
                .into(),
        );
        let role = match m.and_then(|m| text(m, "role")) {
            Some(r) => r.to_owned(),
            None => {
                let resp = strings(system, "responsibility");
                if resp.iter().any(|r| r == "Controller") {
                    "controller".to_owned()
                } else {
                    if resp.iter().any(|r| r == "Sub-Processor") {
                        cx.note(
                            system.span(),
                            format!("recipient `{name}`: Sub-Processor imported as processor"),
                        );
                    }
                    "processor".to_owned()
                }
            }
        };
        t.insert("role".into(), role.into());
        match m.and_then(|m| text(m, "country")) {
            Some(c) => {
                t.insert("country".into(), c.into());
            }
            None => {
                cx.note(
                    system.span(),
                    format!(
                        "recipient `{name}`: fideslang has no country; assumed `{home}` (the organization's): check it"
                    ),
                );
                t.insert("country".into(), home.clone().into());
            }
        }
        for k in ["safeguard", "webhook"] {
            if let Some(v) = m.and_then(|m| text(m, k)) {
                t.insert(k.into(), v.into());
            }
        }
        out.insert(
            name,
            Recipient {
                table: t,
                system: key.to_owned(),
            },
        );
    }
    out
}

fn legal_basis(fides: &str) -> Option<&'static str> {
    Some(match fides {
        "Consent" => "consent",
        "Contract" => "contract",
        "Legal obligations" => "legal_obligation",
        "Vital interests" => "vital_interests",
        "Public interest" => "public_task",
        "Legitimate interests" => "legitimate_interests",
        _ => return None,
    })
}

/// What a system's fields become: read, or implied by the registry (a description, the
/// vault's own flows and transfers, which the registry derives from its recipients).
const SYSTEM_KEYS: &[&str] = &[
    "fides_key",
    "name",
    "description",
    "system_type",
    "responsibility",
    "legal_name",
    "dpo",
    "data_security_practices",
    "does_international_transfers",
    "legal_basis_for_transfers",
    "dataset_references",
    "ingress",
    "egress",
    "privacy_declarations",
    "meta",
    "organization_fides_key",
];

const DECLARATION_KEYS: &[&str] = &[
    "name",
    "data_use",
    "data_categories",
    "data_subjects",
    "dataset_references",
    "legal_basis_for_processing",
    "flexible_legal_basis_for_processing",
    "retention_period",
    "egress",
    "data_shared_with_third_parties",
    "third_parties",
    "shared_categories",
    "processes_special_category_data",
];

fn purposes(
    cx: &mut Cx<'_>,
    systems: &[&MarkedMappingNode],
    collections: &BTreeMap<String, Collected>,
    recipients: &BTreeMap<String, Recipient>,
) -> BTreeMap<String, toml::Table> {
    let mut out = BTreeMap::new();
    for system in systems {
        let Some(list) = system.get_sequence("privacy_declarations") else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        let system_key = text(system, "fides_key").unwrap_or("?").to_owned();
        let purposes_meta = meta(system).and_then(|m| m.get_mapping("purposes"));
        for d in list.iter().filter_map(Node::as_mapping) {
            let raw = text(d, "name").or(text(d, "data_use")).unwrap_or("purpose");
            let mut name = registry_name(raw);
            while out.contains_key(&name) {
                name.push('_');
            }
            if name != raw {
                cx.note(
                    d.span(),
                    format!("declaration `{raw}` of `{system_key}` imported as purpose `{name}`"),
                );
            }
            leftovers(cx, &format!("declaration `{raw}`"), d, DECLARATION_KEYS);
            let pm = purposes_meta.and_then(|m| m.get_mapping(raw));
            let mut t = toml::Table::new();
            match pm.and_then(|m| text(m, "description")) {
                Some(desc) => t.insert("description".into(), desc.into()),
                None => {
                    cx.note(d.span(), format!("purpose `{name}`: no description in Fides; wrote its name, replace it with what customers should read"));
                    t.insert("description".into(), format!("Imported from Fides: {raw}.").into())
                }
            };
            match text(d, "data_use") {
                Some(u) if custodia_registry::is_known_data_use(u) => {
                    t.insert("data_use".into(), u.into());
                }
                Some(u) => cx.note(
                    d.span(),
                    format!("purpose `{name}`: data use `{u}` is not one of fideslang's; left out"),
                ),
                None => {}
            }
            let Some(basis) = text(d, "legal_basis_for_processing") else {
                cx.error(
                    d.span(),
                    format!("declaration `{raw}`: no legal_basis_for_processing (a registry purpose needs one)"),
                );
                continue;
            };
            let Some(basis) = legal_basis(basis) else {
                let at = d
                    .get_scalar("legal_basis_for_processing")
                    .map_or(d.span(), |s| s.span());
                cx.error(
                    at,
                    format!("declaration `{raw}`: legal basis `{basis}` is not one of fideslang's six"),
                );
                continue;
            };
            t.insert("legal_basis".into(), basis.into());
            if basis == "legitimate_interests" {
                let interest = pm.and_then(|m| text(m, "legitimate_interest")).map(str::to_owned).unwrap_or_else(|| {
                    cx.note(d.span(), format!("purpose `{name}`: the legitimate interest pursued is not in Fides; wrote a placeholder to replace"));
                    "State the legitimate interest pursued (imported from Fides without one).".to_owned()
                });
                t.insert("legitimate_interest".into(), interest.into());
            }
            let fields: Vec<String> = match pm.map(|m| strings(m, "fields")).filter(|f| !f.is_empty()) {
                Some(f) => f,
                None => {
                    let cats = strings(d, "data_categories");
                    let refs = strings(d, "dataset_references");
                    let f: Vec<String> = collections
                        .iter()
                        .filter(|(_, c)| refs.is_empty() || refs.contains(&c.dataset))
                        .flat_map(|(cname, c)| {
                            c.categories
                                .iter()
                                .filter(|(_, cat)| cats.iter().any(|d| *cat == d || cat.starts_with(&format!("{d}."))))
                                .map(move |(f, _)| format!("{cname}.{f}"))
                        })
                        .collect();
                    cx.note(
                        d.span(),
                        format!(
                            "purpose `{name}`: fields inferred from its data categories: {}",
                            if f.is_empty() { "none".to_owned() } else { f.join(", ") }
                        ),
                    );
                    f
                }
            };
            t.insert(
                "fields".into(),
                toml::Value::Array(fields.into_iter().map(Into::into).collect()),
            );
            let retention = pm.and_then(|m| m.get_mapping("retention"));
            match retention.and_then(|r| Some((text(r, "period")?, text(r, "from")?))) {
                Some((period, from)) => {
                    let mut r = toml::Table::new();
                    r.insert("period".into(), period.into());
                    r.insert("from".into(), from.into());
                    t.insert("retention".into(), r.into());
                }
                None => {
                    match text(d, "retention_period") {
                        Some(days) if days.bytes().all(|b| b.is_ascii_digit()) => {
                            let mut r = toml::Table::new();
                            r.insert("period".into(), format!("{days}d").into());
                            r.insert("from".into(), "collection".into());
                            t.insert("retention".into(), r.into());
                            cx.note(d.span(), format!("purpose `{name}`: retention {days} days counted from collection (Fides says no start)"));
                        }
                        Some(other) => cx.note(
                            d.span(),
                            format!("purpose `{name}`: retention_period `{other}` is not a number of days; left out"),
                        ),
                        None => {}
                    }
                }
            }
            if let Some(m) = pm {
                let compatible = strings(m, "compatible_with");
                if !compatible.is_empty() {
                    t.insert(
                        "compatible_with".into(),
                        toml::Value::Array(compatible.into_iter().map(Into::into).collect()),
                    );
                }
                for k in [
                    "sale_or_sharing",
                    "direct_marketing",
                    "survives_erasure",
                    "allowed_during_restriction",
                ] {
                    if flag(m, k) {
                        t.insert(k.into(), true.into());
                    }
                }
                if let Some(s) = text(m, "source") {
                    t.insert("source".into(), s.into());
                }
            } else if let Some(u) = text(d, "data_use") {
                if u.starts_with("marketing.advertising.first_party.targeted")
                    || u.starts_with("marketing.advertising.third_party.targeted")
                    || (u.starts_with("third_party_sharing") && !u.starts_with("third_party_sharing.legal_obligation"))
                {
                    t.insert("sale_or_sharing".into(), true.into());
                }
                if u.starts_with("marketing.communications") {
                    t.insert("direct_marketing".into(), true.into());
                }
            }
            let to: Vec<String> = recipients
                .iter()
                .filter(|(_, r)| strings(d, "egress").contains(&r.system))
                .map(|(k, _)| k.clone())
                .collect();
            if !to.is_empty() {
                t.insert(
                    "recipients".into(),
                    toml::Value::Array(to.into_iter().map(Into::into).collect()),
                );
            }
            out.insert(name, t);
        }
    }
    out
}
