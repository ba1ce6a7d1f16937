//! Fides export and import: the example registry round-trips, third-party manifests are
//! inferred with a report, and bad manifests are refused naming the file and line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use custodia_fides::{ImportError, ImportOptions, Source, export, import};
use custodia_registry::{EXAMPLE_REGISTRY, Registry};

fn example() -> Registry {
    Registry::parse("registry.toml", EXAMPLE_REGISTRY).unwrap_or_else(|e| panic!("{e}"))
}

/// What a third-party manifest cannot say, given on the command line.
fn given() -> ImportOptions {
    ImportOptions {
        country: Some("DE".into()),
        supervisory_authority: Some("BfDI".into()),
    }
}

fn sources(manifests: &[custodia_fides::Manifest]) -> Vec<Source> {
    manifests
        .iter()
        .map(|m| Source {
            name: m.file.clone(),
            text: m.text.clone(),
        })
        .collect()
}

#[test]
fn the_example_registry_round_trips() {
    let original = example();
    let manifests = export(&original).unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<&str> = manifests.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(files, ["organization.yml", "dataset_customers.yml", "system.yml"]);
    // Deterministic: the same registry, the same bytes.
    assert_eq!(export(&original).unwrap_or_else(|e| panic!("{e}")), manifests);

    let imported = import(&sources(&manifests), &ImportOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let back = Registry::parse("back.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        format!("{:?}", back.organization),
        format!("{:?}", original.organization)
    );
    assert_eq!(format!("{:?}", back.collections), format!("{:?}", original.collections));
    assert_eq!(format!("{:?}", back.purposes), format!("{:?}", original.purposes));
    assert_eq!(format!("{:?}", back.recipients), format!("{:?}", original.recipients));
    // Only what Fides has no place for is lost, and the report says so.
    assert!(back.roles.is_empty());
    assert_eq!(imported.report.len(), 1, "{:?}", imported.report);
    assert!(imported.report[0].starts_with("roles: none"), "{:?}", imported.report);
}

#[test]
fn the_export_speaks_fideslang() {
    let manifests = export(&example()).unwrap_or_else(|e| panic!("{e}"));
    let system = &manifests[2].text;
    for expected in [
        "data_use: \"essential.service.payment_processing\"",
        "legal_basis_for_processing: \"Legitimate interests\"",
        "legal_basis_for_processing: \"Legal obligations\"",
        "flexible_legal_basis_for_processing: false",
        // 2y from last update, in days; 13m rounded up.
        "retention_period: \"730\"",
        "retention_period: \"396\"",
        "legal_basis_for_transfers: [\"Adequacy Decision\", \"SCCs\"]",
        "fides_key: \"custodia_recipient_ad_partner\"",
    ] {
        assert!(system.contains(expected), "{expected} missing from\n{system}");
    }
    // Counted from consent's withdrawal, a period is no total: none is written.
    let marketing = system
        .split("- name: ")
        .find(|d| d.starts_with("\"marketing_email\""))
        .unwrap_or_else(|| panic!("no marketing_email declaration"));
    assert!(!marketing.contains("retention_period"), "{marketing}");
}

#[test]
fn a_purpose_without_a_data_use_is_named() {
    let text = EXAMPLE_REGISTRY.replacen("data_use = \"finance\"\n", "", 1);
    let registry = Registry::parse("registry.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let e = export(&registry).err().unwrap_or_else(|| panic!("exported"));
    assert!(e.to_string().contains("tax_records"), "{e}");
}

/// Manifests written by hand for Fides, with no `meta.custodia`.
const THIRD_PARTY: &str = r#"
organization:
- fides_key: default_organization
  name: Acme Corp
  controller:
    email: privacy@acme.example
  security_policy: https://acme.example/security
dataset:
- fides_key: crm
  name: CRM
  collections:
  - name: contacts
    description: People we talk to.
    fields:
    - name: email
      data_categories: [user.contact.email]
    - name: phone
      data_categories: [user.contact.phone_number]
    - name: address
      fields:
      - name: street
        data_categories: [user.contact.address.street]
system:
- fides_key: crm_system
  name: CRM
  system_type: Service
  vendor_id: gvl.42
  egress:
  - fides_key: mailer
    type: system
  privacy_declarations:
  - name: Newsletter
    data_use: marketing.communications.email
    data_categories: [user.contact.email]
    data_subjects: [customer]
    legal_basis_for_processing: Consent
    retention_period: "30"
    egress: [mailer]
- fides_key: mailer
  name: Mailer Inc
  system_type: Third Party
  responsibility: [Processor]
  privacy_declarations: []
"#;

#[test]
fn third_party_manifests_are_inferred_and_reported() {
    let options = given();
    let sources = [Source {
        name: "acme.yml".into(),
        text: THIRD_PARTY.into(),
    }];
    let imported = import(&sources, &options).unwrap_or_else(|e| panic!("{e:?}"));
    let registry = Registry::parse("acme.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    let newsletter = &registry.purposes["newsletter"];
    assert_eq!(newsletter.data_use.as_deref(), Some("marketing.communications.email"));
    assert!(newsletter.direct_marketing);
    assert_eq!(newsletter.recipients, ["mailer"]);
    assert_eq!(newsletter.fields["contacts"].iter().collect::<Vec<_>>(), ["email"]);
    assert_eq!(registry.recipients["mailer"].country, "DE");
    assert_eq!(registry.collections["contacts"].fields.len(), 2);
    let report = imported.report.join("\n");
    for expected in [
        "acme.yml:7: organization: `security_policy` has no equivalent",
        "`vendor_id` has no equivalent",
        "field `address`: nested fields are not imported",
        "fields inferred from its data categories: contacts.email",
        "retention 30 days counted from collection",
        "recipient `mailer`: fideslang has no country; assumed `DE`",
        "type `email` guessed",
    ] {
        assert!(report.contains(expected), "{expected} not in\n{report}");
    }
}

fn errors(text: &str, options: &ImportOptions) -> String {
    let sources = [Source {
        name: "bad.yml".into(),
        text: text.into(),
    }];
    match import(&sources, options) {
        Ok(i) => panic!("imported:\n{}", i.registry_toml),
        Err(e) => e.iter().map(ImportError::to_string).collect::<Vec<_>>().join("\n"),
    }
}

#[test]
fn bad_manifests_are_refused_naming_file_and_line() {
    let options = given();
    let unknown_basis = THIRD_PARTY.replace(
        "legal_basis_for_processing: Consent",
        "legal_basis_for_processing: Because",
    );
    let line = unknown_basis
        .lines()
        .position(|l| l.contains("Because"))
        .map_or(0, |i| i + 1);
    let e = errors(&unknown_basis, &options);
    assert!(
        e.contains(&format!(
            "bad.yml:{line}: declaration `Newsletter`: legal basis `Because`"
        )),
        "{e}"
    );

    // An unknown data use, which the purpose's flags are read from: not dropped with a note.
    assert_eq!(
        THIRD_PARTY.matches("data_use: marketing.communications.email").count(),
        1
    );
    let unknown_use = THIRD_PARTY.replace(
        "data_use: marketing.communications.email",
        "data_use: marketing.communications.emial",
    );
    let line = unknown_use
        .lines()
        .position(|l| l.contains("emial"))
        .map_or(0, |i| i + 1);
    let e = errors(&unknown_use, &options);
    assert!(
        e.contains(&format!(
            "bad.yml:{line}: declaration `Newsletter`: data use `marketing.communications.emial` is not one of fideslang's"
        )),
        "{e}"
    );

    let e = errors("organization: [\n  - name: x\n", &options);
    assert!(e.starts_with("bad.yml:"), "{e}");
    assert!(e.contains("not a manifest"), "{e}");

    let e = errors("system: nope\n", &options);
    assert!(e.contains("bad.yml:1: `system` must be a list of resources"), "{e}");

    // Anchors and aliases (the billion laughs) are refused by the reader.
    let e = errors("a: &x [1]\nb: *x\n", &options);
    assert!(e.contains("anchors and aliases are not accepted"), "{e}");

    // What fideslang cannot say must be given.
    let e = errors(THIRD_PARTY, &ImportOptions::default());
    assert!(
        e.contains("--country CC") && e.contains("--supervisory-authority"),
        "{e}"
    );
}

#[test]
fn hostile_text_survives_the_round_trip() {
    // Names and texts YAML readers take for something else, a quoted "null", characters YAML
    // may not hold raw, a purpose named like a boolean.
    let text = EXAMPLE_REGISTRY
        .replace(
            "description = \"People who buy from the shop.\"",
            "description = \"NO ~ null #1 \\\"q\\\" \\uFFFE\\u2028 2024-01-01\"",
        )
        .replace(
            "[collections.customers.fields.name]",
            "[collections.customers.fields.null]",
        )
        .replace("\"customers.name\"", "\"customers.null\"")
        .replace("[purposes.payment]", "[purposes.yes]")
        .replace("\"payment\"", "\"yes\"")
        .replace("contact = \"privacy@shop.example\"", "contact = \"~\"");
    let original = Registry::parse("registry.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let manifests = export(&original).unwrap_or_else(|e| panic!("{e}"));
    let imported = import(&sources(&manifests), &ImportOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let back = Registry::parse("back.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        format!("{:?}", back.organization),
        format!("{:?}", original.organization)
    );
    assert_eq!(format!("{:?}", back.collections), format!("{:?}", original.collections));
    assert_eq!(format!("{:?}", back.purposes), format!("{:?}", original.purposes));
    let dataset = &manifests[1].text;
    assert!(dataset.contains("\\ufffe") && dataset.contains("\\u2028"), "{dataset}");
    assert!(
        manifests[2].text.contains("\"yes\":"),
        "a key PyYAML reads as true is quoted"
    );
}

#[test]
fn names_that_collide_are_kept_apart_and_noted() {
    let manifest = r#"
organization:
- fides_key: default_organization
  name: Acme
  controller: {email: privacy@acme.example}
dataset:
- fides_key: crm
  collections:
  - name: users
    description: A
    fields:
    - {name: email, data_categories: [user.contact.email]}
    - {name: Email, data_categories: [user.contact.email.work]}
  - name: Users
    description: B
    fields:
    - {name: phone, data_categories: [user.contact.phone_number]}
system:
- fides_key: crm_system
  name: CRM
  system_type: Service
  egress: [{fides_key: acme-inc, type: system}, {fides_key: acme_inc, type: system}]
  privacy_declarations:
  - name: support
    data_use: essential.service.operations.support
    data_categories: [user.contact]
    data_subjects: [customer, employee]
    legal_basis_for_processing: Contract
    retention_period: "3650"
    egress: [acme-inc, acme_inc, nowhere]
- {fides_key: acme-inc, name: Acme Processor, system_type: x, responsibility: [Processor], privacy_declarations: []}
- {fides_key: acme_inc, name: Acme Controller, system_type: x, responsibility: [Controller], privacy_declarations: []}
"#;
    let options = given();
    let sources = [Source {
        name: "c.yml".into(),
        text: manifest.into(),
    }];
    let imported = import(&sources, &options).unwrap_or_else(|e| panic!("{e:?}"));
    let registry = Registry::parse("c.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registry.collections.len(), 2);
    assert_eq!(registry.collections["users"].fields.len(), 2);
    assert_eq!(registry.recipients.len(), 2);
    let support = &registry.purposes["support"];
    assert_eq!(support.recipients.len(), 2);
    assert_eq!(
        support.retention.map(|r| r.describe()).as_deref(),
        Some("10y from collection"),
        "3650 days is ten years"
    );
    let report = imported.report.join("\n");
    for expected in [
        "field `Email` imported as `email_2`",
        "collection `Users` imported as `users_2`",
        "recipient `acme-inc` imported as `acme_inc`",
        "recipient `acme_inc` imported as `acme_inc_2`",
        "data subjects customer, employee imported as customers",
        "egress to `nowhere`, a system not in the manifests",
    ] {
        assert!(report.contains(expected), "{expected} not in\n{report}");
    }
}

#[test]
fn shapes_the_reader_must_not_take_are_refused() {
    let options = given();
    // Deep block nesting (the reader would recurse past the stack).
    let e = errors(&format!("{}x\n", "- ".repeat(3000)), &options);
    assert!(e.contains("bad.yml:1: nested more than"), "{e}");
    let deep: String = (0..2000).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
    assert!(errors(&deep, &options).contains("nested more than"));
    // Flow nesting too, past the same limit (brackets inside quotes and comments are text).
    let flow = |n: usize| format!("organization:\n- name: x\n  tags: {}{}\n", "[".repeat(n), "]".repeat(n));
    let e = errors(&flow(129), &options);
    assert!(e.contains("bad.yml:3: nested more than 128"), "{e}");
    let e = errors(&format!("{}\n", "{a: ".repeat(200)), &options);
    assert!(e.contains("nested more than 128"), "{e}");
    let quoted = format!(
        "# {}\norganization:\n- name: \"{}\"\n  description: '{}'\n",
        "[".repeat(300),
        "[".repeat(300),
        "{".repeat(300)
    );
    let shape = custodia_fides::import(
        &[Source {
            name: "q.yml".into(),
            text: quoted,
        }],
        &options,
    );
    assert!(
        shape
            .as_ref()
            .err()
            .is_none_or(|e| !e.iter().any(|e| e.to_string().contains("nested"))),
        "brackets in quotes and comments are no nesting"
    );
    // The same manifest given twice: its resources' fides_keys name resources already read.
    let twice: Vec<Source> = ["a.yml", "b.yml"]
        .iter()
        .map(|name| Source {
            name: (*name).into(),
            text: THIRD_PARTY.into(),
        })
        .collect();
    let e: Vec<String> = custodia_fides::import(&twice, &options)
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        e.iter()
            .any(|e| e.starts_with("b.yml:") && e.contains("its fides_key names another system already (a.yml:")),
        "{e:?}"
    );
    // Manifests each under the bound of one file but over it together.
    let filler = format!("organization:\n- name: x\n  description: \"{}\"\n", "a".repeat(6 << 20));
    let many: Vec<Source> = (0..3)
        .map(|i| Source {
            name: format!("m{i}.yml"),
            text: filler.clone(),
        })
        .collect();
    let e = custodia_fides::import(&many, &options).err().unwrap_or_default();
    assert!(
        e.iter()
            .any(|e| e.to_string().contains("manifests together are larger than 16 MiB")),
        "{e:?}"
    );
    // A second document would be lost unseen.
    let e = errors(&format!("{THIRD_PARTY}---\ndataset: []\n"), &options);
    assert!(e.contains("several YAML documents"), "{e}");
    // A list written as a mapping would drop what it holds.
    let one = THIRD_PARTY.replace(
        "  privacy_declarations:\n  - name: Newsletter",
        "  privacy_declarations:\n    name: Newsletter",
    );
    let e = errors(&one, &options);
    assert!(e.contains("`privacy_declarations` must be a list"), "{e}");
    // Duplicate keys: the second would silently win.
    let e = errors("organization: []\norganization: []\n", &options);
    assert!(
        e.contains("bad.yml:2: not a manifest: key `organization` appears twice"),
        "{e}"
    );
    // A syntax error names its own line, and nothing else is reported.
    let e = errors("organization:\n- name: [x\n", &options);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.starts_with("bad.yml:"), "{e}");
}

#[test]
fn a_webhook_url_stays_in_the_vault() {
    let text = EXAMPLE_REGISTRY.replace(
        "[recipients.parcel_carrier]\n",
        "[recipients.parcel_carrier]\nwebhook = \"https://carrier.example/art19?token=s3cret\"\n",
    );
    let registry = Registry::parse("registry.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(registry.recipients["parcel_carrier"].webhook.is_some());
    for m in export(&registry).unwrap_or_else(|e| panic!("{e}")) {
        assert!(!m.text.contains("s3cret") && !m.text.contains("webhook"), "{}", m.file);
    }
}

#[test]
fn an_unprotected_transfer_is_still_a_transfer() {
    let text = EXAMPLE_REGISTRY.replace(
        "safeguard = \"EU Standard Contractual Clauses (2021/914) and the UK Addendum\"\n",
        "",
    );
    let registry = Registry::parse("registry.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let system = &export(&registry).unwrap_or_else(|e| panic!("{e}"))[2].text;
    assert!(system.contains("does_international_transfers: true"), "{system}");
}

#[test]
fn many_copies_of_one_name_each_get_the_next_suffix_in_their_own_scope() {
    // 3,000 fields all named `a` (the review's 20,000 took minutes when each copy searched
    // from `_2`), then a second collection whose copies start at `_2` again.
    let mut manifest = String::from(
        "organization:\n- fides_key: default_organization\n  name: Acme\n  controller: {email: privacy@acme.example}\ndataset:\n- fides_key: crm\n  collections:\n",
    );
    for (collection, copies) in [("one", 3000), ("two", 3)] {
        manifest.push_str(&format!("  - name: {collection}\n    fields:\n"));
        for _ in 0..copies {
            manifest.push_str("    - {name: a, data_categories: [user.contact.email]}\n");
        }
    }
    let sources = [Source {
        name: "many.yml".into(),
        text: manifest,
    }];
    let imported = import(&sources, &given()).unwrap_or_else(|e| panic!("{e:?}"));
    let registry = Registry::parse("many.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    let one = &registry.collections["one"].fields;
    assert_eq!(one.len(), 3000);
    assert!(one.contains_key("a") && one.contains_key("a_2") && one.contains_key("a_3000"));
    let two: Vec<&String> = registry.collections["two"].fields.keys().collect();
    assert_eq!(two, ["a", "a_2", "a_3"]);
}

#[test]
fn edits_made_in_fides_to_an_export_are_applied_or_reported_never_dropped() {
    let mut manifests = export(&example()).unwrap_or_else(|e| panic!("{e}"));
    let system = &mut manifests[2].text;
    for (from, to) in [
        // Support turned into targeted advertising: a sale or sharing from now on.
        (
            "data_use: \"essential.service.operations.support\"",
            "data_use: \"marketing.advertising.third_party.targeted\"",
        ),
        // A category declared without a field to hold it.
        (
            "data_categories: [\"user.contact.email\", \"user.contact.phone_number\", \"user.financial.credit_card\", \"user.name\"]",
            "data_categories: [\"user.contact.email\", \"user.contact.phone_number\", \"user.financial.credit_card\", \"user.name\", \"user.demographic.gender\"]",
        ),
        // A period in days on a purpose counted from consent's withdrawal.
        (
            "    flexible_legal_basis_for_processing: false\n    egress: [\"custodia_recipient_email_provider\"]",
            "    flexible_legal_basis_for_processing: false\n    retention_period: \"30\"\n    egress: [\"custodia_recipient_email_provider\"]",
        ),
        // Analytics no longer sold or shared, by its data use: the flag stays, noted.
        (
            "name: \"analytics\"\n    data_use: \"marketing.advertising.third_party.targeted\"",
            "name: \"analytics\"\n    data_use: \"analytics.reporting\"",
        ),
        // Support's retention taken away in Fides: kept, noted.
        ("    retention_period: \"365\"\n", ""),
    ] {
        assert_eq!(system.matches(from).count(), 1, "{from}");
        *system = system.replace(from, to);
    }
    let imported = import(&sources(&manifests), &ImportOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let back = Registry::parse("back.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    assert!(back.purposes["customer_support"].sale_or_sharing);
    let report = imported.report.join("\n");
    for expected in [
        "purpose `customer_support`: data use `marketing.advertising.third_party.targeted` makes it `sale_or_sharing`",
        "purpose `customer_support`: data category `user.demographic.gender` is declared in Fides but no field",
        "purpose `marketing_email`: retention_period 30 in Fides not imported",
        "purpose `analytics`: still `sale_or_sharing` as meta.custodia says",
        "purpose `customer_support`: no retention_period in Fides",
    ] {
        assert!(report.contains(expected), "{expected}\n{report}");
    }
}

#[test]
fn a_registry_the_manifests_make_but_cannot_hold_is_refused_naming_what_it_came_from() {
    // The vault's system without its dataset: its purposes name fields of no collection.
    let manifests = export(&example()).unwrap_or_else(|e| panic!("{e}"));
    let only_system: Vec<_> = manifests.into_iter().filter(|m| m.file == "system.yml").collect();
    let errors = import(&sources(&only_system), &ImportOptions::default()).expect_err("refused");
    let text = format!("{errors:?}");
    assert!(text.contains("purpose `analytics` (its privacy declaration)"), "{text}");
    assert!(text.contains("registry line `"), "{text}");
    assert!(!text.contains("imported registry:"), "{text}");
}

/// `declarations` privacy declarations, each of the broad category `user`, over one dataset of
/// `fields` fields: the shape that wrote D×F field references into the registry.
fn broad_declarations(fields: usize, declarations: usize) -> String {
    let mut manifest = String::from(
        "organization:\n- fides_key: default_organization\n  name: Acme\n  controller: {email: privacy@acme.example}\ndataset:\n- fides_key: crm\n  collections:\n  - name: contacts\n    description: People.\n    fields:\n",
    );
    for i in 0..fields {
        manifest.push_str(&format!("    - {{name: f{i}, data_categories: [user.name]}}\n"));
    }
    manifest
        .push_str("system:\n- fides_key: crm_system\n  name: CRM\n  system_type: Service\n  privacy_declarations:\n");
    for i in 0..declarations {
        manifest.push_str(&format!(
            "  - {{name: p{i}, data_use: essential.service, data_categories: [user], legal_basis_for_processing: Contract}}\n"
        ));
    }
    manifest
}

#[test]
fn broad_categories_over_many_fields_are_refused_not_written_d_times_f() {
    // 1,000 fields × 101 declarations: 101,000 references, one declaration past the bound.
    let manifest = broad_declarations(1_000, 101);
    let e = errors(&manifest, &given());
    assert_eq!(e.lines().count(), 1, "{e}");
    assert_eq!(
        custodia_fides::MAX_FIELD_REFERENCES,
        100_000,
        "the shapes here are made for it"
    );
    assert!(e.contains("101,000 field references in all, more than 100,000"), "{e}");
    // The largest declarations, where they are and how many fields each would take.
    let first = manifest
        .lines()
        .position(|l| l.contains("name: p0,"))
        .map_or(0, |i| i + 1);
    assert!(e.contains(&format!("bad.yml:{first} `p0` 1,000 fields")), "{e}");
    assert!(e.contains("and 96 more declarations"), "{e}");

    // At the bound, the registry is written, and Custodia loads it.
    let sources = [Source {
        name: "ok.yml".into(),
        text: broad_declarations(1_000, 100),
    }];
    let imported = import(&sources, &given()).unwrap_or_else(|e| panic!("{e:?}"));
    let registry = Registry::parse("ok.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registry.purposes["p99"].fields["contacts"].len(), 1_000);
}

#[test]
fn inferred_fields_are_summarised_in_notes_and_the_header_not_listed() {
    let sources = [Source {
        name: "wide.yml".into(),
        text: broad_declarations(500, 3),
    }];
    let imported = import(&sources, &given()).unwrap_or_else(|e| panic!("{e:?}"));
    let note = imported
        .report
        .iter()
        .find(|l| l.contains("purpose `p0`: 500 fields inferred"))
        .unwrap_or_else(|| panic!("{:?}", imported.report));
    assert!(
        note.ends_with("500 fields inferred from its data categories: contacts.f0, contacts.f1, contacts.f10, contacts.f100, contacts.f101, contacts.f102, contacts.f103, contacts.f104, contacts.f105, contacts.f106 and 490 more"),
        "{note}"
    );
    let header: Vec<&str> = imported
        .registry_toml
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter(|l| l.contains("fields inferred"))
        .collect();
    assert_eq!(header.len(), 3, "{header:?}");
    assert!(header.iter().all(|l| l.len() < 300), "{header:?}");
}

/// `n` datasets of one field each, every field of its own category (a sub-category of
/// `user.contact.email`), and `declarations` declarations each naming every dataset and every
/// category: n×n lookups each, for n fields.
fn referencing_declarations(n: usize, declarations: usize) -> String {
    let mut manifest = String::from(
        "organization:\n- fides_key: default_organization\n  name: Acme\n  controller: {email: privacy@acme.example}\ndataset:\n",
    );
    for i in 0..n {
        manifest.push_str(&format!(
            "- {{fides_key: d{i}, collections: [{{name: c{i}, description: x, fields: [{{name: f, data_categories: [user.contact.email.k{i}]}}]}}]}}\n"
        ));
    }
    let refs: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let categories: Vec<String> = (0..n).map(|i| format!("user.contact.email.k{i}")).collect();
    manifest
        .push_str("system:\n- fides_key: crm_system\n  name: CRM\n  system_type: Service\n  privacy_declarations:\n");
    for i in 0..declarations {
        manifest.push_str(&format!(
            "  - {{name: p{i}, data_use: essential.service, data_categories: [{}], dataset_references: [{}], legal_basis_for_processing: Contract}}\n",
            categories.join(", "),
            refs.join(", ")
        ));
    }
    manifest
}

#[test]
fn dataset_references_times_categories_are_bounded_too() {
    assert_eq!(
        custodia_fides::MAX_MATCH_LOOKUPS,
        10_000_000,
        "the shapes here are made for it"
    );
    // 3,200 datasets × 3,200 categories: 10,240,000 lookups a declaration for 3,200 fields,
    // refused before any is made.
    let e = errors(&referencing_declarations(3_200, 2), &given());
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("20,480,000 lookups"), "{e}");
    // Both named, with where they are.
    let second = "`p1` 3,200 dataset references × 3,200 data categories";
    assert!(
        e.contains("`p0` 3,200 dataset references × 3,200 data categories; bad.yml:") && e.contains(second),
        "{e}"
    );
    // Fewer: imported, each declaration with its fields.
    let sources = [Source {
        name: "refs.yml".into(),
        text: referencing_declarations(300, 2),
    }];
    let imported = import(&sources, &given()).unwrap_or_else(|e| panic!("{e:?}"));
    let registry = Registry::parse("refs.toml", &imported.registry_toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registry.purposes["p1"].fields.len(), 300);
}

#[test]
fn an_unknown_data_category_is_refused_at_its_line_in_declarations_and_datasets_alike() {
    let options = given();
    for (from, to, what) in [
        (
            "    data_categories: [user.contact.email]\n    data_subjects",
            "    data_categories: [user.contact.email, user.demographic.date_of_brith]\n    data_subjects",
            "declaration `Newsletter`",
        ),
        (
            "    data_categories: [user.contact.email]\n    data_subjects",
            "    data_categories: [user.bogus]\n    data_subjects",
            "declaration `Newsletter`",
        ),
        (
            "      data_categories: [user.contact.phone_number]",
            "      data_categories: [user.contact.phone_numbr]",
            "field `phone`",
        ),
    ] {
        assert_eq!(THIRD_PARTY.matches(from).count(), 1, "{from}");
        let manifest = THIRD_PARTY.replacen(from, to, 1);
        let bad = to
            .split(['[', ']', ','])
            .map(str::trim)
            .find(|c| c.starts_with("user.") && !custodia_registry::is_known_category(c))
            .unwrap_or_else(|| panic!("{to}"));
        let line = manifest.lines().position(|l| l.contains(bad)).map_or(0, |i| i + 1);
        let e = errors(&manifest, &options);
        assert!(
            e.contains(&format!("bad.yml:{line}: {what}: data category `{bad}` is not")),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn a_missing_organization_says_what_to_add() {
    let organization = "organization:\n- fides_key: default_organization\n  name: Acme Corp\n  controller:\n    email: privacy@acme.example\n  security_policy: https://acme.example/security\n";
    assert_eq!(THIRD_PARTY.matches(organization).count(), 1);
    let e = errors(&THIRD_PARTY.replacen(organization, "", 1), &given());
    assert_eq!(
        e,
        "no organization in the manifests: add an `organization` resource with a `name` and a `controller` with an `email` (or an `address` or a `phone`)"
    );
    // One without a contact: where it is, and what it lacks.
    let e = errors(
        &THIRD_PARTY.replacen("  controller:\n    email: privacy@acme.example\n", "", 1),
        &given(),
    );
    assert_eq!(
        e,
        "bad.yml:3: organization `default_organization`: no contact: give it a `controller` with an `email` (or an `address` or a `phone`)"
    );
}
