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
    /// The manifests would take the import past one of its bounds ([`MAX_FIELD_REFERENCES`],
    /// [`MAX_MATCH_LOOKUPS`]).
    #[error("{0}")]
    Bound(String),
    /// The registry made from the manifests does not validate.
    #[error("the imported registry does not validate:\n{0}")]
    Registry(String),
}

/// Reads the sources and builds the registry, or every error found.
pub fn import(sources: &[Source], options: &ImportOptions) -> Result<Imported, Vec<ImportError>> {
    // (the reader's tree takes about a hundred times a manifest's size: one bound for them all)
    let total: usize = sources.iter().map(|s| s.text.len()).sum();
    if total > MAX_MANIFEST_BYTES {
        return Err(vec![ImportError::Bound(format!(
            "the manifests together are larger than {} MiB (the bound of one file and of them all)",
            MAX_MANIFEST_BYTES >> 20
        ))]);
    }
    let mut cx = Cx {
        sources,
        errors: Vec::new(),
        report: Vec::new(),
        suffixes: std::collections::HashMap::new(),
    };
    let mut docs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let text = source.text.strip_prefix('\u{feff}').unwrap_or(&source.text);
        if let Err((line, message)) = shape_limits(text) {
            cx.errors.push(ImportError::At {
                file: source.name.clone(),
                line,
                message,
            });
            continue;
        }
        let options = marked_yaml::LoaderOptions::default()
            .error_on_duplicate_keys(true)
            // Quoted scalars are strings: only plain ones may read as null or a boolean.
            .prevent_coercion(true)
            .toplevel_mapping();
        match marked_yaml::parse_yaml_with_options(i, text, options) {
            Ok(node) => docs.push(node),
            Err(e) => cx.errors.push(ImportError::At {
                file: source.name.clone(),
                line: load_error_line(&e),
                message: format!("not a manifest: {}", load_error_text(&e)),
            }),
        }
    }
    // A file that is not YAML says nothing: stop before reporting what it lacks.
    if !cx.errors.is_empty() {
        return Err(cx.errors);
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
    // A fides_key names one resource of its type (fideslang's rule): a second is the same
    // manifest given twice, or two that disagree; either would be imported twice.
    for (kind, resources) in [("dataset", &datasets), ("system", &systems)] {
        let mut seen: std::collections::HashMap<&str, &MarkedMappingNode> = std::collections::HashMap::new();
        for resource in resources.iter() {
            let Some(key) = text(resource, "fides_key") else {
                continue;
            };
            match seen.get(key) {
                Some(first) => {
                    let (file, line) = cx.place(first.span());
                    cx.error(
                        resource.span(),
                        format!("{kind} `{key}`: its fides_key names another {kind} already ({file}:{line}); a manifest given twice?"),
                    );
                }
                None => {
                    seen.insert(key, resource);
                }
            }
        }
    }
    for system in &systems {
        let key = text(system, "fides_key").unwrap_or("?").to_owned();
        leftovers(&mut cx, &format!("system `{key}`"), system, SYSTEM_KEYS);
        lists(&mut cx, system, &["privacy_declarations", "egress", "responsibility"]);
        for d in system
            .get_sequence("privacy_declarations")
            .into_iter()
            .flat_map(|l| l.iter())
        {
            match d.as_mapping() {
                Some(d) => lists(
                    &mut cx,
                    d,
                    &["data_categories", "data_subjects", "dataset_references", "egress"],
                ),
                None => cx.error(d.span(), "a privacy declaration must be a mapping".into()),
            }
        }
    }
    for dataset in &datasets {
        lists(&mut cx, dataset, &["collections", "data_categories"]);
        for c in dataset.get_sequence("collections").into_iter().flat_map(|l| l.iter()) {
            match c.as_mapping() {
                Some(c) => {
                    lists(&mut cx, c, &["fields", "data_categories"]);
                    for f in c.get_sequence("fields").into_iter().flat_map(|l| l.iter()) {
                        match f.as_mapping() {
                            Some(f) => lists(&mut cx, f, &["data_categories", "fields"]),
                            None => cx.error(f.span(), "a field must be a mapping".into()),
                        }
                    }
                }
                None => cx.error(c.span(), "a collection must be a mapping".into()),
            }
        }
    }
    if organizations.len() > 1 {
        for extra in &organizations[1..] {
            cx.note(extra.span(), "a second organization: only the first is imported".into());
        }
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
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
    registry.insert(
        "collections".into(),
        toml::Value::Table(collections.into_iter().map(|(k, c)| (k, c.table.into())).collect()),
    );
    if !purposes.is_empty() {
        registry.insert(
            "purposes".into(),
            toml::Value::Table(purposes.into_iter().map(|(k, p)| (k, p.into())).collect()),
        );
    }
    if !recipients.is_empty() {
        registry.insert(
            "recipients".into(),
            toml::Value::Table(recipients.into_iter().map(|(k, r)| (k, r.table.into())).collect()),
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
        out.push_str(&comment_safe(line));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&toml::to_string(&registry).map_err(|e| vec![ImportError::Missing(e.to_string())])?);
    if let Err(errors) = custodia_registry::Registry::parse("imported registry", &out) {
        return Err(vec![ImportError::Registry(explain(&out, &errors))]);
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
    /// The next suffix to try for a name made unique ([`unique_name`]), by scope and name:
    /// many copies of one name cost one step each, not a search from `_2` every time.
    suffixes: std::collections::HashMap<String, usize>,
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
        self.errors.push(ImportError::At {
            file,
            line,
            message: comment_safe(&message),
        });
    }

    fn note(&mut self, span: &Span, message: String) {
        let (file, line) = self.place(span);
        self.report.push(comment_safe(&format!("{file}:{line}: {message}")));
    }
}

/// The most field references the purposes of one import may hold together. A declaration
/// without `meta.custodia` takes every field whose category is one of its own, so a broad
/// category (`user`) on D declarations over F fields makes D×F: an 817 KB manifest (10,000
/// fields, 1,000 declarations) wrote a 440 MB registry that `custodia check` had not read after
/// ten minutes and 22 GB. 100,000 references (a thousand purposes of a hundred fields, fifty of
/// two thousand) make a registry of about 2.4 MB that `custodia check` reads in 2 s and 490 MB;
/// far more than anyone reviews.
pub const MAX_FIELD_REFERENCES: usize = 100_000;

/// The most lookups the matching of declarations with the datasets they name in
/// `dataset_references` may take together: one per referenced dataset and data category, as
/// many for a declaration that matches no field as for one that matches many (so the bound on
/// references cannot stop it). Counted before any is made; ten million took a third of a
/// second here (release build, 2 cores).
pub const MAX_MATCH_LOOKUPS: usize = 10_000_000;

/// How many inferred fields a note names before it counts the rest: the notes are printed
/// and kept at the top of the registry, once per declaration.
const FIELDS_NAMED: usize = 10;

/// The largest manifest read (and the most bytes of every manifest of one import), and the
/// deepest nesting (the reader recurses per level:
/// a few kilobytes of `- - - ...` would exhaust the stack).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;
const MAX_NESTING: usize = 128;

/// Refuses what the reader should not be given: too large, or nested too deeply (counted
/// from each line's indentation and block indicators, and by the brackets of flow
/// collections, `[[[...]]]`, outside quotes and comments).
fn shape_limits(text: &str) -> Result<(), (usize, String)> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err((0, format!("larger than {} MiB", MAX_MANIFEST_BYTES >> 20)));
    }
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        // The reader takes the first document only: a second would be lost unseen.
        let marker = line == "---" || line.starts_with("--- ") || line == "...";
        if marker && content {
            return Err((
                i + 1,
                "several YAML documents in one file: give each its own file".into(),
            ));
        }
        content |= !marker && !line.trim().is_empty() && !line.trim_start().starts_with('#');
        let prefix = line
            .chars()
            .take_while(|c| matches!(c, ' ' | '-' | '?' | ':' | '\t'))
            .count();
        if prefix > 2 * MAX_NESTING {
            return Err((i + 1, format!("nested more than {MAX_NESTING} levels deep")));
        }
    }
    match flow_too_deep(text) {
        Some(line) => Err((line, format!("nested more than {MAX_NESTING} levels deep"))),
        None => Ok(()),
    }
}

/// The line (from 1) where flow collections (`[`, `{`) first nest deeper than
/// [`MAX_NESTING`], counted outside quoted scalars and comments.
fn flow_too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut chars = text.chars().peekable();
    let mut after_blank = true;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '#' if after_blank => while chars.next_if(|&c| c != '\n').is_some() {},
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '\'' => {
                while let Some(c) = chars.next() {
                    match c {
                        // `''` is a quote inside: the scalar goes on
                        '\'' if chars.next_if_eq(&'\'').is_none() => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(line);
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        after_blank = c.is_whitespace();
    }
    None
}

fn load_error_marker(e: &marked_yaml::LoadError) -> Option<marked_yaml::Marker> {
    use marked_yaml::LoadError as E;
    match e {
        E::TopLevelMustBeMapping(m)
        | E::TopLevelMustBeSequence(m)
        | E::UnexpectedAnchor(m)
        | E::MappingKeyMustBeScalar(m)
        | E::UnexpectedTag(m)
        | E::ScanError(m, _) => Some(*m),
        E::DuplicateKey(inner) => inner.key.span().start().copied(),
    }
}

fn load_error_line(e: &marked_yaml::LoadError) -> usize {
    load_error_marker(e).map_or(0, |m| m.line())
}

/// The reader's message without its own position (the caller names file and line).
fn load_error_text(e: &marked_yaml::LoadError) -> String {
    use marked_yaml::LoadError as E;
    match e {
        E::TopLevelMustBeMapping(_) => "the top level must be a mapping of resource types to lists".to_owned(),
        E::UnexpectedAnchor(_) => "anchors and aliases are not accepted".to_owned(),
        E::UnexpectedTag(_) => "YAML tags are not accepted".to_owned(),
        E::MappingKeyMustBeScalar(_) => "a mapping key must be a plain value".to_owned(),
        E::DuplicateKey(inner) => format!("key `{}` appears twice", inner.key.as_str()),
        E::ScanError(_, s) => s.info().to_owned(),
        other => other.to_string(),
    }
}

/// A scalar's text; `None` when absent, empty or a plain `null`/`~` (a quoted "null" is
/// the word).
fn text<'a>(m: &'a MarkedMappingNode, key: &str) -> Option<&'a str> {
    m.get_scalar(key).filter(|s| !is_null(s)).map(MarkedScalarNode::as_str)
}

fn is_null(s: &MarkedScalarNode) -> bool {
    s.as_str().trim().is_empty() || s.may_coerce() && matches!(s.as_str(), "null" | "Null" | "NULL" | "~")
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

/// Refuses a key of `m` that is present and not a list, naming it (fideslang refuses it
/// too; read as absent, it would drop what it holds).
fn lists(cx: &mut Cx<'_>, m: &MarkedMappingNode, keys: &[&str]) {
    for key in keys {
        if let Some(node) = m.get_node(key)
            && node.as_sequence().is_none()
            && !node.as_scalar().is_some_and(is_null)
        {
            cx.error(node.span(), format!("`{key}` must be a list"));
        }
    }
}

/// The data categories of `m` a registry takes, each checked as the registry checks a field's
/// ([`custodia_registry::is_known_category`]): an unknown one is an error at its own line,
/// whether a dataset, a collection, a field or a privacy declaration names it. A declaration's
/// would otherwise be dropped unseen (it matches no field), and the registry's own check of a
/// field's cannot say where in the manifests it came from.
fn data_categories(cx: &mut Cx<'_>, m: &MarkedMappingNode, what: &str) -> Vec<String> {
    let mut known = Vec::new();
    for node in m.get_sequence("data_categories").into_iter().flat_map(|s| s.iter()) {
        match node.as_scalar() {
            Some(c) if custodia_registry::is_known_category(c.as_str()) => known.push(c.as_str().to_owned()),
            Some(c) => cx.error(
                c.span(),
                format!(
                    "{what}: data category `{}` is not one of fideslang's, nor a sub-category of one of its leaf categories (a registry takes no other; custom `data_category` resources are not imported)",
                    c.as_str()
                ),
            ),
            None => cx.error(node.span(), format!("{what}: a data category must be a name")),
        }
    }
    known
}

/// Reports the keys of `resource` that nothing read.
fn leftovers(cx: &mut Cx<'_>, what: &str, resource: &MarkedMappingNode, read: &[&str]) {
    for (key, value) in resource.iter() {
        let set = match value {
            Node::Scalar(s) => !(is_null(s) || s.may_coerce() && s.as_str() == "false"),
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

/// `text` fit for one comment line: no line breaks, controls or direction overrides (which
/// could end the comment or reorder what a reader sees).
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                '?'
            } else {
                c
            }
        })
        .collect()
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

/// A refusal of the registry the manifests make, told by what in the manifests it came from
/// (the table it falls in: the organization, a collection's dataset, a purpose's declaration,
/// a recipient's system), with the line of the registry that was refused.
fn explain(registry: &str, errors: &custodia_registry::RegistryError) -> String {
    let lines: Vec<&str> = registry.lines().collect();
    let mut out = Vec::new();
    for d in &errors.diagnostics {
        let at = d.line.saturating_sub(1).min(lines.len().saturating_sub(1));
        let table = lines
            .get(..=at)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|l| l.starts_with('['))
            .map_or("", |l| l.trim_matches(|c| c == '[' || c == ']'));
        let mut parts = table.split('.');
        let origin = match (parts.next(), parts.next()) {
            (Some("organization"), _) => {
                "the organization (organization.yml, or the vault system's meta.custodia)".to_owned()
            }
            (Some("collections"), Some(c)) => format!("collection `{c}` (its dataset)"),
            (Some("purposes"), Some(p)) => format!("purpose `{p}` (its privacy declaration)"),
            (Some("recipients"), Some(r)) => format!("recipient `{r}` (its system)"),
            _ => "the manifests".to_owned(),
        };
        let line = lines.get(at).map_or("", |l| l.trim());
        out.push(format!("{origin}: {} (registry line `{line}`)", d.message));
    }
    out.join("\n")
}

/// Whether a fideslang data use is a sale or sharing of personal data (CCPA/CPRA): targeted
/// advertising and sharing with third parties, a legal obligation apart.
fn sold_or_shared(use_: &str) -> bool {
    use_.starts_with("marketing.advertising.first_party.targeted")
        || use_.starts_with("marketing.advertising.third_party.targeted")
        || (use_.starts_with("third_party_sharing") && !use_.starts_with("third_party_sharing.legal_obligation"))
}

/// [`registry_name`] of `raw`, made unique among `taken` (`_2`, `_3`, ...); a note says so
/// whenever the name is not `raw` itself, so two Fides names never silently become one.
/// `scope` tells apart the places where a name must be unique (a collection's fields).
fn unique_name(
    cx: &mut Cx<'_>,
    span: &Span,
    (what, scope): (&str, &str),
    raw: &str,
    taken: &dyn Fn(&str) -> bool,
) -> String {
    let base = registry_name(raw);
    let mut name = base.clone();
    let next = cx.suffixes.entry(format!("{what}\0{scope}\0{base}")).or_insert(2);
    while taken(&name) {
        let suffix = format!("_{next}");
        name = format!("{}{suffix}", &base[..base.len().min(63 - suffix.len())]);
        *next += 1;
    }
    if name != raw {
        cx.note(span, format!("{what} `{raw}` imported as `{name}`"));
    }
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
    if from_meta.is_some()
        && let Some(fides_name) = org.and_then(|o| text(o, "name"))
        && t.get("name").and_then(toml::Value::as_str) != Some(fides_name)
    {
        if let Some(o) = org {
            cx.note(
                o.span(),
                format!("organization: name `{fides_name}` from Fides (changed there since the export)"),
            );
        }
        t.insert("name".into(), fides_name.into());
    }
    for (key, given) in [
        ("country", &options.country),
        ("supervisory_authority", &options.supervisory_authority),
    ] {
        if let Some(v) = given {
            if let Some(old) = t.get(key).and_then(toml::Value::as_str)
                && old != v
            {
                cx.report.push(format!(
                    "organization: {key} `{v}` given replaces `{old}` of the manifests"
                ));
            }
            t.insert(key.into(), v.clone().into());
        }
    }
    // fideslang's organization resource has a place for the name and the contact: ask the
    // manifests for them. It has none for the country and the authority: ask the command line.
    let (missing, wanted): (Vec<&str>, Vec<&str>) = [
        ("name", "a `name`"),
        (
            "contact",
            "a `controller` with an `email` (or an `address` or a `phone`)",
        ),
    ]
    .into_iter()
    .filter(|(key, _)| !t.contains_key(*key))
    .unzip();
    if !missing.is_empty() {
        let wanted = wanted.join(" and ");
        match org {
            Some(o) => cx.error(
                o.span(),
                format!(
                    "organization `{}`: no {}: give it {wanted}",
                    text(o, "fides_key").unwrap_or("?"),
                    missing.join(" and "),
                ),
            ),
            None => cx.errors.push(ImportError::Missing(format!(
                "no organization in the manifests: add an `organization` resource with {wanted}"
            ))),
        }
    }
    for (key, what, flag) in [
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
        let fallback_categories = data_categories(cx, dataset, &format!("dataset `{dataset_key}`"));
        for node in list.iter() {
            let Some(c) = node.as_mapping() else { continue };
            let raw = dataset_meta
                .and_then(|m| text(m, "collection"))
                .or(text(c, "name"))
                .unwrap_or("collection");
            let name = unique_name(cx, c.span(), ("collection", ""), raw, &|n| out.contains_key(n));
            let description = text(c, "description")
                .or(text(dataset, "description"))
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    cx.report
                        .push(format!("collection `{name}`: no description in Fides; wrote its name"));
                    format!("Imported from Fides dataset {dataset_key}.")
                });
            let collection_categories = data_categories(cx, c, &format!("collection `{raw}`"));
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
                let own = data_categories(cx, f, &format!("field `{fname}`"));
                // The field's own, else its collection's, else its dataset's (borrowed: a
                // long list on a dataset is not copied for each of its fields).
                let cats = [&own, &collection_categories, &fallback_categories]
                    .into_iter()
                    .find(|c| !c.is_empty())
                    .map_or(&[][..], |c| c.as_slice());
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
                let key = unique_name(cx, f.span(), ("field", &name), fname, &|n| fields.contains_key(n));
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
        let raw = m
            .and_then(|m| text(m, "recipient"))
            .unwrap_or_else(|| key.strip_prefix(RECIPIENT_PREFIX).unwrap_or(key));
        let name = unique_name(cx, system.span(), ("recipient", ""), raw, &|n| out.contains_key(n));
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
        if let Some(v) = m.and_then(|m| text(m, "safeguard")) {
            t.insert("safeguard".into(), v.into());
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

/// A period of `days` as the registry writes it: in days up to 1200, else in whole years or
/// months when exact, else in months rounded up (noted).
fn days_period(cx: &mut Cx<'_>, d: &MarkedMappingNode, name: &str, days: &str) -> Option<String> {
    let Ok(n) = days.parse::<u64>() else {
        cx.note(
            d.span(),
            format!("purpose `{name}`: retention_period `{days}` is not a number of days; left out"),
        );
        return None;
    };
    match n {
        0 => {
            cx.note(
                d.span(),
                format!("purpose `{name}`: a retention of 0 days is none; left out"),
            );
            None
        }
        1..=1200 => Some(format!("{n}d")),
        _ if n % 365 == 0 && n / 365 <= 100 => Some(format!("{}y", n / 365)),
        _ if (n * 12) % 365 == 0 && n * 12 / 365 <= 1200 => Some(format!("{}m", n * 12 / 365)),
        _ if (n * 12).div_ceil(365) <= 1200 => {
            let months = (n * 12).div_ceil(365);
            cx.note(
                d.span(),
                format!("purpose `{name}`: {n} days rounded up to {months} months"),
            );
            Some(format!("{months}m"))
        }
        _ => {
            cx.note(
                d.span(),
                format!(
                    "purpose `{name}`: a retention of {n} days is more than a registry holds (100 years); left out"
                ),
            );
            None
        }
    }
}

/// The days an export writes for a registry period, to tell an edit in Fides.
fn days_text(period: &str) -> Option<String> {
    let (n, unit) = period.split_at(period.len().checked_sub(1)?);
    let n: u32 = n.parse().ok()?;
    let period = match unit {
        "d" => custodia_registry::Period::Days(n),
        "m" => custodia_registry::Period::Months(n),
        "y" => custodia_registry::Period::Years(n),
        _ => return None,
    };
    Some(crate::export::period_days(period).to_string())
}

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

/// Fields as `(category, collection, field)`, sorted: the fields of a category and those of
/// the categories below it each make one run, found by binary search (testing every field
/// against every declaration took D×F steps, as many for a declaration that matched nothing).
#[derive(Default)]
struct ByCategory<'c>(Vec<(&'c str, &'c str, &'c str)>);

type Run<'r, 'c> = &'r [(&'c str, &'c str, &'c str)];

/// A declared category and the bounds of the names below it: every name that starts with
/// `category.` sorts from `category.` to `category/` (made once per declaration, not per
/// dataset it is looked up in).
struct Below<'d> {
    category: &'d str,
    dot: String,
    slash: String,
}

impl<'d> Below<'d> {
    fn new(category: &'d str) -> Self {
        Below {
            category,
            dot: format!("{category}."),
            slash: format!("{category}/"),
        }
    }
}

impl<'c> ByCategory<'c> {
    /// The fields of a category and those of the categories below it, as two runs (apart when
    /// a name such as `category-x`, refused elsewhere, sorts between them).
    fn under(&self, b: &Below<'_>) -> [Run<'_, 'c>; 2] {
        let run = |below: &dyn Fn(&str) -> bool, until: &dyn Fn(&str) -> bool| {
            let from = self.0.partition_point(|e| below(e.0));
            let to = self.0.partition_point(|e| until(e.0));
            self.0.get(from..to).unwrap_or_default()
        };
        [
            run(&|c| c < b.category, &|c| c <= b.category),
            run(&|c| c < b.dot.as_str(), &|c| c < b.slash.as_str()),
        ]
    }
}

/// The collections' fields by category: of all datasets, and of each dataset (by its key)
/// for the declarations that name theirs in `dataset_references`.
struct FieldIndex<'c> {
    all: ByCategory<'c>,
    by_dataset: std::collections::HashMap<&'c str, ByCategory<'c>>,
}

impl<'c> FieldIndex<'c> {
    fn new(collections: &'c BTreeMap<String, Collected>) -> Self {
        let mut index = FieldIndex {
            all: ByCategory::default(),
            by_dataset: std::collections::HashMap::new(),
        };
        for (collection, c) in collections {
            let of_dataset = index.by_dataset.entry(c.dataset.as_str()).or_default();
            for (field, category) in &c.categories {
                let entry = (category.as_str(), collection.as_str(), field.as_str());
                index.all.0.push(entry);
                of_dataset.0.push(entry);
            }
        }
        index.all.0.sort_unstable();
        for d in index.by_dataset.values_mut() {
            d.0.sort_unstable();
        }
        index
    }
}

/// `category`'s ancestors: `user` and `user.contact` of `user.contact.email`.
fn ancestors(category: &str) -> impl Iterator<Item = &str> {
    category.match_indices('.').filter_map(|(i, _)| category.get(..i))
}

/// The categories of `declared` no other of them is above, once each: a category's fields
/// include those of the categories below it, so the runs of these never overlap.
fn topmost(declared: &[String]) -> Vec<&str> {
    let all: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    all.iter()
        .copied()
        .filter(|c| !ancestors(c).any(|a| all.contains(a)))
        .collect()
}

/// The field references and the lookups the declarations take together, against
/// [`MAX_FIELD_REFERENCES`] and [`MAX_MATCH_LOOKUPS`], and by which declaration (its place
/// and Fides name), to name the largest when a bound is passed.
#[derive(Default)]
struct Tally {
    references: usize,
    by_references: Vec<(usize, String)>,
    lookups: usize,
    by_lookups: Vec<(usize, String)>,
}

impl Tally {
    /// Counts `n` references of the declaration at `d`; whether they are still within the bound.
    fn references(&mut self, cx: &Cx<'_>, d: &MarkedMappingNode, raw: &str, n: usize) -> bool {
        self.references = self.references.saturating_add(n);
        let (file, line) = cx.place(d.span());
        self.by_references
            .push((n, format!("{file}:{line} `{raw}` {} fields", thousands(n))));
        self.references <= MAX_FIELD_REFERENCES
    }

    /// Counts the lookups of the declaration at `d` (`datasets` × `categories`) before they
    /// are made; whether they are still within the bound.
    fn lookups(&mut self, cx: &Cx<'_>, d: &MarkedMappingNode, raw: &str, datasets: usize, categories: usize) -> bool {
        let n = datasets.saturating_mul(categories);
        self.lookups = self.lookups.saturating_add(n);
        let (file, line) = cx.place(d.span());
        self.by_lookups.push((
            n,
            format!(
                "{file}:{line} `{raw}` {} dataset references × {} data categories",
                thousands(datasets),
                thousands(categories)
            ),
        ));
        self.lookups <= MAX_MATCH_LOOKUPS
    }

    /// An error for each bound passed, naming the largest declarations.
    fn errors(self) -> Vec<ImportError> {
        let mut out = Vec::new();
        if self.lookups > MAX_MATCH_LOOKUPS {
            out.push(ImportError::Bound(format!(
                "matching the privacy declarations with the datasets they name would take {} lookups (each declaration's dataset_references × its data categories found in the datasets), more than {}: {}. Narrow them, or leave dataset_references out (a declaration without them takes its categories' fields of every dataset)",
                thousands(self.lookups),
                thousands(MAX_MATCH_LOOKUPS),
                largest(self.by_lookups)
            )));
        }
        if self.references > MAX_FIELD_REFERENCES {
            out.push(ImportError::Bound(format!(
                "the privacy declarations would give their purposes {} field references in all, more than {} (each takes every field of its datasets that has one of its data categories): {}. Narrow their data_categories, or name their datasets in dataset_references",
                thousands(self.references),
                thousands(MAX_FIELD_REFERENCES),
                largest(self.by_references)
            )));
        }
        out
    }
}

/// The five largest of `counted` (the first of equals first), and how many more there are.
fn largest(mut counted: Vec<(usize, String)>) -> String {
    const NAMED: usize = 5;
    counted.retain(|(n, _)| *n > 0);
    counted.sort_by_key(|c| std::cmp::Reverse(c.0));
    let more = counted.len().saturating_sub(NAMED);
    let mut out = counted
        .into_iter()
        .take(NAMED)
        .map(|(_, what)| what)
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        out.push_str(&format!("; and {more} more declarations"));
    }
    out
}

/// `n` with a comma between thousands (the bounds' figures are read by people).
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The note on the fields inferred for purpose `name`: the first [`FIELDS_NAMED`], and how
/// many more (all of them, once per declaration, made the notes and the registry's header
/// D×F long).
fn inferred_note(name: &str, fields: &[String]) -> String {
    let named = fields
        .iter()
        .take(FIELDS_NAMED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match fields.len().checked_sub(FIELDS_NAMED) {
        Some(more) if more > 0 => format!(
            "purpose `{name}`: {} fields inferred from its data categories: {named} and {} more",
            thousands(fields.len()),
            thousands(more)
        ),
        _ => format!("purpose `{name}`: fields inferred from its data categories: {named}"),
    }
}

fn purposes(
    cx: &mut Cx<'_>,
    systems: &[&MarkedMappingNode],
    collections: &BTreeMap<String, Collected>,
    recipients: &BTreeMap<String, Recipient>,
) -> BTreeMap<String, toml::Table> {
    let mut out = BTreeMap::new();
    let index = FieldIndex::new(collections);
    let mut tally = Tally::default();
    // Recipients by system key, looked up per system and per egress (not searched each time).
    let mut recipient_of: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    for (name, r) in recipients {
        recipient_of.entry(r.system.as_str()).or_default().push(name.as_str());
    }
    for system in systems {
        let Some(list) = system.get_sequence("privacy_declarations") else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        let system_key = text(system, "fides_key").unwrap_or("?").to_owned();
        if recipient_of.contains_key(system_key.as_str()) {
            cx.note(
                system.span(),
                format!("system `{system_key}` is a recipient: its own privacy declarations are its processing, not imported"),
            );
            continue;
        }
        let purposes_meta = meta(system).and_then(|m| m.get_mapping("purposes"));
        for d in list.iter().filter_map(Node::as_mapping) {
            let raw = text(d, "name").or(text(d, "data_use")).unwrap_or("purpose");
            let name = unique_name(cx, d.span(), ("declaration", ""), raw, &|n| out.contains_key(n));
            leftovers(cx, &format!("declaration `{raw}`"), d, DECLARATION_KEYS);
            // Read (and checked) before anything else of the declaration can stop its import.
            let cats = data_categories(cx, d, &format!("declaration `{raw}`"));
            let pm = purposes_meta.and_then(|m| m.get_mapping(raw));
            let mut t = toml::Table::new();
            match pm.and_then(|m| text(m, "description")) {
                Some(desc) => t.insert("description".into(), desc.into()),
                None => {
                    cx.note(d.span(), format!("purpose `{name}`: no description in Fides; wrote its name, replace it with what customers should read"));
                    t.insert("description".into(), format!("Imported from Fides: {raw}.").into())
                }
            };
            // An unknown data use is an error at its line, as an unknown category is: left out,
            // it would take with it what the purpose's flags are read from (a sale, direct
            // marketing) and leave a registry the export refuses.
            let use_at = d.get_scalar("data_use").map_or(d.span(), |s| s.span());
            match text(d, "data_use") {
                Some(u) if custodia_registry::is_known_data_use(u) => {
                    t.insert("data_use".into(), u.into());
                }
                Some("personalize.profiling") => {
                    cx.note(
                        use_at,
                        format!("purpose `{name}`: data use `personalize.profiling` is deprecated in fideslang (since 2.1.1); written as its successor, `personalize.content.profiling`"),
                    );
                    t.insert("data_use".into(), "personalize.content.profiling".into());
                }
                Some(u) => cx.error(
                    use_at,
                    format!("declaration `{raw}`: data use `{u}` is not one of fideslang's (a registry purpose takes only those; custom `data_use` resources are not imported)"),
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
            let declared: BTreeSet<&str> = cats.iter().map(String::as_str).collect();
            // A category the declaration holds, itself or by one above it.
            let in_declaration =
                |category: &str| declared.contains(category) || ancestors(category).any(|a| declared.contains(a));
            let fields: Vec<String> = match pm.map(|m| strings(m, "fields")).filter(|f| !f.is_empty()) {
                // An export: its fields, less any whose category was taken off the
                // declaration in Fides since.
                Some(listed) => {
                    let kept: Vec<String> = listed
                        .into_iter()
                        .filter(|f| {
                            let category = f
                                .split_once('.')
                                .and_then(|(c, f)| collections.get(c)?.categories.get(f));
                            let keep = category.is_none_or(|c| in_declaration(c));
                            if !keep {
                                cx.note(
                                    d.span(),
                                    format!(
                                        "purpose `{name}`: `{f}` left out: its category is no longer declared in Fides"
                                    ),
                                );
                            }
                            keep
                        })
                        .collect();
                    if !tally.references(cx, d, raw, kept.len()) {
                        continue;
                    }
                    kept
                }
                None => {
                    let tops: Vec<Below<'_>> = topmost(&cats)
                        .into_iter()
                        .map(Below::new)
                        .filter(|b| index.all.under(b).iter().any(|run| !run.is_empty()))
                        .collect();
                    let refs: BTreeSet<String> = strings(d, "dataset_references").into_iter().collect();
                    let runs: Vec<Run<'_, '_>> = if refs.is_empty() {
                        tops.iter().flat_map(|b| index.all.under(b)).collect()
                    } else {
                        let datasets: Vec<&ByCategory<'_>> =
                            refs.iter().filter_map(|r| index.by_dataset.get(r.as_str())).collect();
                        if !tally.lookups(cx, d, raw, datasets.len(), tops.len()) {
                            continue;
                        }
                        // Only the runs that hold fields: most lookups find none, and
                        // keeping those would hold memory in proportion to the lookups.
                        datasets
                            .iter()
                            .flat_map(|of| tops.iter().flat_map(|b| of.under(b)))
                            .filter(|run| !run.is_empty())
                            .collect()
                    };
                    if !tally.references(cx, d, raw, runs.iter().map(|r| r.len()).sum()) {
                        continue;
                    }
                    let mut found: Vec<(&str, &str)> = runs.iter().flat_map(|r| r.iter()).map(|e| (e.1, e.2)).collect();
                    // By collection, then field, as the collections are.
                    found.sort_unstable();
                    found.dedup();
                    let f: Vec<String> = found.into_iter().map(|(c, f)| format!("{c}.{f}")).collect();
                    if !f.is_empty() {
                        cx.note(d.span(), inferred_note(&name, &f));
                    }
                    f
                }
            };
            if fields.is_empty() {
                cx.note(
                    d.span(),
                    format!("declaration `{raw}`: no field of the datasets has its data categories; not imported"),
                );
                continue;
            }
            // The categories the purpose's fields hold, to tell a category declared without one.
            let held: BTreeSet<&str> = fields
                .iter()
                .filter_map(|f| {
                    let (col, f) = f.split_once('.')?;
                    collections.get(col)?.categories.get(f).map(String::as_str)
                })
                .collect();
            t.insert(
                "fields".into(),
                toml::Value::Array(fields.into_iter().map(Into::into).collect()),
            );
            let from_meta = pm
                .and_then(|m| m.get_mapping("retention"))
                .and_then(|r| Some((text(r, "period")?, text(r, "from")?)));
            let fides_days = text(d, "retention_period");
            let retention = match (from_meta, fides_days) {
                // Fides holds no period counted from consent's withdrawal: meta's stands.
                (Some((period, "consent_withdrawn")), days) => {
                    if let Some(days) = days {
                        cx.note(d.span(), format!("purpose `{name}`: retention_period {days} in Fides not imported: the registry counts {period} from consent's withdrawal, which Fides cannot say (change it in the registry)"));
                    }
                    Some((period.to_owned(), "consent_withdrawn".to_owned()))
                }
                (Some((period, from)), Some(days)) if days_text(period).as_deref() != Some(days) => {
                    cx.note(d.span(), format!("purpose `{name}`: retention changed in Fides to {days} days (was {period}); counted from {from}"));
                    days_period(cx, d, &name, days).map(|p| (p, from.to_owned()))
                }
                (Some((period, from)), None) => {
                    cx.note(d.span(), format!("purpose `{name}`: no retention_period in Fides, but the export said {period} from {from}: kept (remove it in the registry if that is what was meant)"));
                    Some((period.to_owned(), from.to_owned()))
                }
                (Some((period, from)), _) => Some((period.to_owned(), from.to_owned())),
                (None, Some(days)) => {
                    let period = days_period(cx, d, &name, days);
                    if period.is_some() {
                        cx.note(
                            d.span(),
                            format!(
                                "purpose `{name}`: retention {days} days counted from collection (Fides says no start)"
                            ),
                        );
                    }
                    period.map(|p| (p, "collection".to_owned()))
                }
                (None, None) => None,
            };
            if let Some((period, from)) = retention {
                let mut r = toml::Table::new();
                r.insert("period".into(), period.into());
                r.insert("from".into(), from.into());
                t.insert("retention".into(), r.into());
            }
            let subjects = strings(d, "data_subjects");
            if subjects.iter().any(|s| s != "customer") {
                cx.note(d.span(), format!("purpose `{name}`: data subjects {} imported as customers (a registry's records are customers')", subjects.join(", ")));
            }
            if flag(d, "flexible_legal_basis_for_processing") {
                cx.note(d.span(), format!("purpose `{name}`: a flexible legal basis becomes a fixed one (Custodia never lets a notice override it)"));
            }
            let egress = strings(d, "egress");
            for target in &egress {
                if !recipient_of.contains_key(target.as_str()) {
                    cx.note(d.span(), format!("purpose `{name}`: egress to `{target}`, a system not in the manifests: no recipient imported for it"));
                }
            }
            if text(d, "third_parties").is_some() && egress.is_empty() {
                cx.note(
                    d.span(),
                    format!("purpose `{name}`: `third_parties` is free text; name the recipients in the registry"),
                );
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
                // A category declared in Fides since the export brings no field: meta's list
                // of fields stands, and the user hears of it.
                for c in &cats {
                    // A field of the category, of one below it or of one above it.
                    let (dot, slash) = (format!("{c}."), format!("{c}/"));
                    let covered = held.contains(c.as_str())
                        || held.range::<&str, _>(dot.as_str()..slash.as_str()).next().is_some()
                        || ancestors(c).any(|a| held.contains(a));
                    if !covered {
                        cx.note(d.span(), format!("purpose `{name}`: data category `{c}` is declared in Fides but no field of the purpose holds it: add the fields in the registry"));
                    }
                }
            }
            // What the data use says is not for meta.custodia to take back: a purpose whose
            // use is selling, sharing or marketing is treated as such (its opt-out enforced).
            if let Some(u) = text(d, "data_use") {
                for (k, implied) in [
                    ("sale_or_sharing", sold_or_shared(u)),
                    ("direct_marketing", u.starts_with("marketing.communications")),
                ] {
                    if implied && !t.contains_key(k) {
                        if pm.is_some() {
                            cx.note(
                                d.span(),
                                format!(
                                    "purpose `{name}`: data use `{u}` makes it `{k}` (meta.custodia did not say so)"
                                ),
                            );
                        }
                        t.insert(k.into(), true.into());
                    } else if !implied && t.contains_key(k) {
                        // Kept: taking an opt-out's enforcement away takes a decision in the
                        // registry, not an edit in Fides.
                        cx.note(d.span(), format!("purpose `{name}`: still `{k}` as meta.custodia says, though data use `{u}` does not imply it (change it in the registry if it no longer applies)"));
                    }
                }
            }
            // In the recipients' order, each once.
            let to: BTreeSet<&str> = egress
                .iter()
                .filter_map(|e| recipient_of.get(e.as_str()))
                .flatten()
                .copied()
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
    cx.errors.extend(tally.errors());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_takes_its_own_fields_and_those_below_it_and_no_others() {
        let entries = [
            "user.contact",
            "user.contact-x",
            "user.contact.email",
            "user.contact.email.work",
            "user.contacts",
            "user.contact_y",
            "user.name",
        ];
        let mut index = ByCategory(entries.iter().map(|c| (*c, "col", *c)).collect());
        index.0.sort_unstable();
        let found = |category: &str| {
            let mut f: Vec<&str> = index
                .under(&Below::new(category))
                .iter()
                .flat_map(|r| r.iter())
                .map(|e| e.2)
                .collect();
            f.sort_unstable();
            f
        };
        // `user.contact-x` sorts between `user.contact` and `user.contact.email`: skipped.
        assert_eq!(
            found("user.contact"),
            ["user.contact", "user.contact.email", "user.contact.email.work"]
        );
        assert_eq!(found("user.contact.email.work"), ["user.contact.email.work"]);
        assert_eq!(
            found("user"),
            entries
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert!(found("user.con").is_empty());
        assert!(found("user.location").is_empty());
    }

    #[test]
    fn only_the_topmost_of_a_declarations_categories_are_looked_up() {
        let declared: Vec<String> = [
            "user.contact.email",
            "user.contact",
            "user.name",
            "user.contact",
            "user.names",
        ]
        .map(String::from)
        .into();
        assert_eq!(topmost(&declared), ["user.contact", "user.name", "user.names"]);
        assert_eq!(
            ancestors("user.contact.email").collect::<Vec<_>>(),
            ["user", "user.contact"]
        );
        assert_eq!(ancestors("user").count(), 0);
    }

    #[test]
    fn figures_and_notes_are_short_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(10_240_000), "10,240,000");
        let ten: Vec<String> = (0..10).map(|i| format!("c.f{i}")).collect();
        assert_eq!(
            inferred_note("p", &ten[..2]),
            "purpose `p`: fields inferred from its data categories: c.f0, c.f1"
        );
        assert!(inferred_note("p", &ten).ends_with("c.f8, c.f9"));
        let many: Vec<String> = (0..1_234).map(|i| format!("c.f{i}")).collect();
        let note = inferred_note("p", &many);
        assert!(note.starts_with("purpose `p`: 1,234 fields inferred"), "{note}");
        assert!(note.ends_with("c.f9 and 1,224 more"), "{note}");
    }
}
