//! Roles as Cedar policies. The registry's roles compile to a Cedar policy set, checked
//! against a schema generated from the registry; policy files an operator adds (in the data
//! directory's `policies/` folder) join it and can only be validated in, never slip past it.
//! Every permission decision of the vault is a Cedar decision; deny by default.
//!
//! ```text
//! entity Role;                      one per registry role
//! entity Purpose;                   one per purpose
//! entity Field in [Purpose] { collection, field, category, field_type };
//!                                   one per (purpose, declared field): "purpose/collection.field"
//! entity Vault;                     one, Vault::"vault": the resource of capabilities
//! action invoke, delete             Role -> Purpose
//! action write, read_plain, read_masked, read_token, search, tokenize, detokenize
//!                                   Role -> Field
//! action manage_principals, manage_consent, read_audit, use_scanner, fulfil_requests,
//!        manage_retention, manage_incidents, manage_operators, forward_user_agent, assert_context,
//!        issue_portal_links, manage_keys, read_metrics
//!                                   Role -> Vault
//! action grant                      Role -> Role (which roles a principal manager may give)
//! ```
//!
//! What the registry's roles compile to, and nothing more: `invoke` on the role's purposes;
//! `write` on the fields of its `write` purposes; `delete` on its `delete` purposes; for each
//! declared field of an invoked purpose, the read actions of the role's output form (`plain`
//! permits `read_plain`, `read_masked`, `read_token` and `detokenize`; `masked` the two last
//! reads; `token` the last), `tokenize` where the role writes under the purpose (a token stores
//! its value), and `search` where the field is searchable; each of its
//! `capabilities`; and, for roles with `manage_principals`, `grant` on its `grantable_roles`.
//! The gate asks for `read_plain` too before a search, a deterministic tokenization or a
//! detokenization, so a `forbid` on `read_plain` (say, "no plain card numbers, ever") closes
//! those and leaves a role with the masked form instead of nothing.
//!
//! Role descriptions reach the policy text only as an escaped `@description` annotation.
//!
//! Decisions depend only on role, resource and action (the context is empty and the entities
//! are fixed at start), so each is computed once and remembered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::RwLock;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression, Schema,
    ValidationMode, Validator,
};
use custodia_registry::{Capability, OutputForm, Registry};

use crate::ContextValue;

/// An action of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    Invoke,
    Delete,
    Write,
    ReadPlain,
    ReadMasked,
    ReadToken,
    Search,
    Tokenize,
    Detokenize,
    Grant,
    Capability(Capability),
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::Delete => "delete",
            Self::Write => "write",
            Self::ReadPlain => "read_plain",
            Self::ReadMasked => "read_masked",
            Self::ReadToken => "read_token",
            Self::Search => "search",
            Self::Tokenize => "tokenize",
            Self::Detokenize => "detokenize",
            Self::Grant => "grant",
            Self::Capability(c) => c.name(),
        }
    }
}

/// What an action is taken on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resource<'a> {
    Purpose(&'a str),
    /// A purpose's declared field: (purpose, collection, field).
    Field(&'a str, &'a str, &'a str),
    /// The vault itself: the resource of capabilities.
    Vault,
    Role(&'a str),
}

impl Resource<'_> {
    fn kind(self) -> &'static str {
        match self {
            Self::Purpose(_) => "Purpose",
            Self::Field(..) => "Field",
            Self::Vault => "Vault",
            Self::Role(_) => "Role",
        }
    }

    fn id(self) -> String {
        match self {
            Self::Purpose(p) | Self::Role(p) => p.to_owned(),
            Self::Field(p, c, f) => field_id(p, c, f),
            Self::Vault => VAULT.to_owned(),
        }
    }
}

const VAULT: &str = "vault";

/// Why the policies could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A remembered decision's key: role, resource kind, resource id, action.
type MemoKey = (String, &'static str, String, Action);

/// The compiled policy set and its decision memo.
pub struct Policies {
    schema: Schema,
    set: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    memo: RwLock<HashMap<MemoKey, bool>>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("policies", &self.set.policies().count())
            .finish_non_exhaustive()
    }
}

/// The Cedar schema for a registry: fixed entity types and actions, and a context holding the
/// registry's optional `[policy_context]` attributes.
#[must_use]
pub fn cedar_schema(registry: &Registry) -> String {
    let context: Vec<String> = registry
        .policy_context
        .iter()
        .map(|(name, ty)| format!("\"{name}\"?: {}", ty.cedar_type()))
        .collect();
    let context = format!("{{ {} }}", context.join(", "));
    let capabilities: Vec<String> = Capability::ALL.iter().map(|c| format!("\"{}\"", c.name())).collect();
    format!(
        "entity Role;\n\
         entity Purpose;\n\
         entity Field in [Purpose] = {{ collection: String, field: String, category: String, field_type: String }};\n\
         entity Vault;\n\
         action \"invoke\", \"delete\" appliesTo {{ principal: [Role], resource: [Purpose], context: {context} }};\n\
         action \"write\", \"read_plain\", \"read_masked\", \"read_token\", \"search\", \"tokenize\", \"detokenize\" appliesTo {{ principal: [Role], resource: [Field], context: {context} }};\n\
         action {} appliesTo {{ principal: [Role], resource: [Vault], context: {context} }};\n\
         action \"grant\" appliesTo {{ principal: [Role], resource: [Role], context: {context} }};\n",
        capabilities.join(", ")
    )
}

fn field_id(purpose: &str, collection: &str, field: &str) -> String {
    format!("{purpose}/{collection}.{field}")
}

/// The Cedar policies the registry's roles compile to.
#[must_use]
pub fn role_policies(registry: &Registry) -> String {
    let mut out = String::new();
    for role in registry.roles.values() {
        let mut policies: Vec<String> = Vec::new();
        let who = format!("principal == Role::{}", quoted(&role.name));
        for purpose_name in &role.purposes {
            let Some(purpose) = registry.purpose(purpose_name) else {
                continue;
            };
            let on_purpose = format!("resource == Purpose::{}", quoted(&purpose.name));
            policies.push(format!("permit({who}, action == Action::\"invoke\", {on_purpose});"));
            if role.delete.contains(purpose_name) {
                policies.push(format!("permit({who}, action == Action::\"delete\", {on_purpose});"));
            }
            if role.write.contains(purpose_name) {
                policies.push(format!(
                    "permit({who}, action == Action::\"write\", resource in Purpose::{});",
                    quoted(&purpose.name)
                ));
            }
            for (collection_name, fields) in &purpose.fields {
                let Some(collection) = registry.collection(collection_name) else {
                    continue;
                };
                for field_name in fields {
                    let Some(field) = collection.fields.get(field_name) else {
                        continue;
                    };
                    let mut actions: Vec<&str> = match role.output_form(collection, field) {
                        OutputForm::Plain => vec!["read_plain", "read_masked", "read_token", "detokenize"],
                        OutputForm::Masked => vec!["read_masked", "read_token"],
                        OutputForm::Token => vec!["read_token"],
                        OutputForm::Denied => vec![],
                    };
                    // a token stores its value for the subject: a write like any other
                    if role.write.contains(purpose_name) {
                        actions.push("tokenize");
                    }
                    if field.searchable {
                        actions.push("search");
                    }
                    let list: Vec<String> = actions.iter().map(|a| format!("Action::\"{a}\"")).collect();
                    policies.push(format!(
                        "permit({who}, action in [{}], resource == Field::{});",
                        list.join(", "),
                        quoted(&field_id(&purpose.name, collection_name, field_name))
                    ));
                }
            }
        }
        if !role.capabilities.is_empty() {
            let list: Vec<String> = role
                .capabilities
                .iter()
                .map(|c| format!("Action::\"{}\"", c.name()))
                .collect();
            policies.push(format!(
                "permit({who}, action in [{}], resource == Vault::\"{VAULT}\");",
                list.join(", ")
            ));
        }
        if role.has(Capability::ManagePrincipals) {
            for granted in &role.grantable_roles {
                policies.push(format!(
                    "permit({who}, action == Action::\"grant\", resource == Role::{});",
                    quoted(granted)
                ));
            }
        }
        // The description is data, not policy: an escaped annotation on the role's policies.
        let annotation = format!(
            "@role({}) @description({})\n",
            quoted(&role.name),
            quoted(&role.description)
        );
        for policy in policies {
            out.push_str(&annotation);
            let _ = writeln!(out, "{policy}");
        }
    }
    out
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, PolicyError> {
    EntityUid::from_str(&format!("{kind}::{}", quoted(id))).map_err(|e| PolicyError(format!("entity {kind} {id}: {e}")))
}

/// `s` as a Cedar string literal: quotes and backslashes escaped, and every control character
/// (line breaks included) as an escape, so nothing in `s` can end the literal or the line.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Policies {
    /// Compiles the registry's roles, adds `extra` policy files (name, text), validates all
    /// against the generated schema and builds the entities.
    pub fn compile(registry: &Registry, extra: &[(String, String)]) -> Result<Self, PolicyError> {
        let (schema, _warnings) = Schema::from_cedarschema_str(&cedar_schema(registry))
            .map_err(|e| PolicyError(format!("generated schema: {e}")))?;
        let mut text = role_policies(registry);
        let mut set = PolicySet::from_str(&text).map_err(|e| PolicyError(format!("generated policies: {e}")))?;
        for (name, src) in extra {
            let more = PolicySet::from_str(src).map_err(|e| PolicyError(format!("{name}: {e}")))?;
            for policy in more.policies() {
                // Re-parse with an id naming the file, so errors and ids say where it came from.
                let id = cedar_policy::PolicyId::new(format!("{name}#{}", policy.id()));
                let renamed = cedar_policy::Policy::parse(Some(id), policy.to_string())
                    .map_err(|e| PolicyError(format!("{name}: {e}")))?;
                set.add(renamed).map_err(|e| PolicyError(format!("{name}: {e}")))?;
            }
            text.push_str(src);
        }
        let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation
                .validation_errors()
                .map(|e| format!("policy {}: {e}", e.policy_id()))
                .collect();
            return Err(PolicyError(format!(
                "policies do not match the registry's schema:\n{}",
                errors.join("\n")
            )));
        }
        let entities = Entities::from_entities(Self::entities(registry)?, Some(&schema))
            .map_err(|e| PolicyError(format!("entities: {e}")))?;
        Ok(Self {
            schema,
            set,
            entities,
            authorizer: Authorizer::new(),
            memo: RwLock::new(HashMap::new()),
        })
    }

    fn entities(registry: &Registry) -> Result<Vec<Entity>, PolicyError> {
        let mut out = vec![Entity::new_no_attrs(uid("Vault", VAULT)?, HashSet::new())];
        for role in registry.roles.keys() {
            out.push(Entity::new_no_attrs(uid("Role", role)?, HashSet::new()));
        }
        for purpose in registry.purposes.values() {
            let purpose_uid = uid("Purpose", &purpose.name)?;
            out.push(Entity::new_no_attrs(purpose_uid.clone(), HashSet::new()));
            for (collection_name, fields) in &purpose.fields {
                let Some(collection) = registry.collection(collection_name) else {
                    continue;
                };
                for name in fields {
                    let Some(field) = collection.fields.get(name) else {
                        continue;
                    };
                    let attrs = HashMap::from([
                        (
                            "collection".to_owned(),
                            RestrictedExpression::new_string(collection_name.clone()),
                        ),
                        ("field".to_owned(), RestrictedExpression::new_string(name.clone())),
                        (
                            "category".to_owned(),
                            RestrictedExpression::new_string(field.category.clone()),
                        ),
                        (
                            "field_type".to_owned(),
                            RestrictedExpression::new_string(field.field_type.name().to_owned()),
                        ),
                    ]);
                    let entity = Entity::new(
                        uid("Field", &field_id(&purpose.name, collection_name, name))?,
                        attrs,
                        HashSet::from([purpose_uid.clone()]),
                    )
                    .map_err(|e| PolicyError(format!("field entity: {e}")))?;
                    out.push(entity);
                }
            }
        }
        Ok(out)
    }

    /// Whether `role` may take `action` on `resource`.
    pub(crate) fn allows(
        &self,
        role: &str,
        resource: Resource<'_>,
        action: Action,
        context: &BTreeMap<String, ContextValue>,
    ) -> bool {
        if !context.is_empty() {
            // Decisions that depend on what the caller asserted are not remembered.
            return self.decide(role, resource, action, context).unwrap_or(false);
        }
        let key = (role.to_owned(), resource.kind(), resource.id(), action);
        if let Some(known) = self.memo.read().ok().and_then(|m| m.get(&key).copied()) {
            return known;
        }
        let allowed = self.decide(role, resource, action, context).unwrap_or(false);
        if let Ok(mut memo) = self.memo.write() {
            memo.insert(key, allowed);
        }
        allowed
    }

    /// One Cedar decision; any error (an unknown entity, say) is a deny.
    fn decide(
        &self,
        role: &str,
        resource: Resource<'_>,
        action: Action,
        context: &BTreeMap<String, ContextValue>,
    ) -> Result<bool, PolicyError> {
        Ok(self.respond(role, resource, action, context)?.decision() == Decision::Allow)
    }

    /// The policy (`file#id`) that forbids `role` to take `action` on `resource`, if a
    /// `forbid` decided the refusal (rather than no `permit` granting it): what a refusal
    /// names, for whoever looks into it.
    pub(crate) fn forbidding_policy(
        &self,
        role: &str,
        resource: Resource<'_>,
        action: Action,
        context: &BTreeMap<String, ContextValue>,
    ) -> Option<String> {
        let response = self.respond(role, resource, action, context).ok()?;
        if response.decision() == Decision::Allow {
            return None;
        }
        response.diagnostics().reason().next().map(ToString::to_string)
    }

    fn respond(
        &self,
        role: &str,
        resource: Resource<'_>,
        action: Action,
        context: &BTreeMap<String, ContextValue>,
    ) -> Result<cedar_policy::Response, PolicyError> {
        let principal = uid("Role", role)?;
        let action_uid = uid("Action", action.name())?;
        let resource = uid(resource.kind(), &resource.id())?;
        let pairs = context.iter().map(|(k, v)| {
            let value = match v {
                ContextValue::Bool(b) => RestrictedExpression::new_bool(*b),
                ContextValue::String(s) => RestrictedExpression::new_string(s.clone()),
                ContextValue::Long(n) => RestrictedExpression::new_long(*n),
            };
            (k.clone(), value)
        });
        let context = Context::from_pairs(pairs).map_err(|e| PolicyError(e.to_string()))?;
        let request = Request::new(principal, action_uid, resource, context, Some(&self.schema))
            .map_err(|e| PolicyError(e.to_string()))?;
        Ok(self.authorizer.is_authorized(&request, &self.set, &self.entities))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_registry::EXAMPLE_REGISTRY;

    fn none() -> BTreeMap<String, ContextValue> {
        BTreeMap::new()
    }

    fn field<'a>(purpose: &'a str, name: &'a str) -> Resource<'a> {
        Resource::Field(purpose, "customers", name)
    }

    #[test]
    fn context_attributes_reach_policies() {
        let reg = example();
        let rule = "forbid(principal == Role::\"support_agent\", action, resource) unless { context has open_ticket && context.open_ticket };";
        let p = Policies::compile(&reg, &[("tickets.cedar".into(), rule.into())]).unwrap();
        let open = BTreeMap::from([("open_ticket".to_owned(), ContextValue::Bool(true))]);
        let closed = BTreeMap::from([("open_ticket".to_owned(), ContextValue::Bool(false))]);
        assert!(!p.allows(
            "support_agent",
            Resource::Purpose("customer_support"),
            Action::Invoke,
            &none()
        ));
        assert!(!p.allows(
            "support_agent",
            Resource::Purpose("customer_support"),
            Action::Invoke,
            &closed
        ));
        assert!(p.allows(
            "support_agent",
            Resource::Purpose("customer_support"),
            Action::Invoke,
            &open
        ));
        assert!(
            p.allows("admin", Resource::Purpose("customer_support"), Action::Invoke, &none()),
            "other roles are untouched"
        );
    }

    fn example() -> Registry {
        Registry::parse("r", EXAMPLE_REGISTRY).unwrap()
    }

    #[test]
    fn generated_policies_validate_and_decide_as_the_registry_says() {
        let reg = example();
        let p = Policies::compile(&reg, &[]).unwrap();
        assert!(p.allows(
            "support_agent",
            Resource::Purpose("customer_support"),
            Action::Invoke,
            &none()
        ));
        assert!(!p.allows(
            "support_agent",
            Resource::Purpose("order_fulfillment"),
            Action::Invoke,
            &none()
        ));
        assert!(!p.allows(
            "support_agent",
            field("customer_support", "card_number"),
            Action::ReadPlain,
            &none()
        ));
        assert!(p.allows(
            "support_agent",
            field("customer_support", "card_number"),
            Action::ReadMasked,
            &none()
        ));
        assert!(p.allows(
            "admin",
            field("customer_support", "card_number"),
            Action::ReadPlain,
            &none()
        ));
        assert!(
            !p.allows(
                "admin",
                field("customer_support", "birth_date"),
                Action::ReadMasked,
                &none()
            ),
            "not declared"
        );
        assert!(
            !p.allows(
                "nobody",
                field("customer_support", "card_number"),
                Action::ReadToken,
                &none()
            ),
            "unknown roles are denied"
        );
    }

    #[test]
    fn an_operator_forbid_overrides_a_role() {
        let reg = example();
        let forbid = "forbid(principal, action == Action::\"read_plain\", resource) when { resource.field_type == \"card_number\" };";
        let p = Policies::compile(&reg, &[("no-plain-cards.cedar".into(), forbid.into())]).unwrap();
        assert!(!p.allows("admin", field("payment", "card_number"), Action::ReadPlain, &none()));
        assert!(
            p.allows("admin", field("payment", "card_number"), Action::ReadMasked, &none()),
            "the next form down stays"
        );
        assert!(p.allows("admin", field("payment", "name"), Action::ReadPlain, &none()));
    }

    #[test]
    fn policies_that_do_not_fit_the_schema_are_refused() {
        let reg = example();
        let typo = "permit(principal, action == Action::\"read_plian\", resource);";
        let err = Policies::compile(&reg, &[("typo.cedar".into(), typo.into())]).unwrap_err();
        assert!(err.0.contains("typo.cedar") || err.0.contains("read_plian"), "{err}");
        let bad_attr = "forbid(principal, action == Action::\"write\", resource) when { resource.colour == \"red\" };";
        assert!(Policies::compile(&reg, &[("attr.cedar".into(), bad_attr.into())]).is_err());
        let syntax = "permit(principal, action";
        assert!(
            Policies::compile(&reg, &[("syntax.cedar".into(), syntax.into())])
                .unwrap_err()
                .0
                .contains("syntax.cedar")
        );
    }

    #[test]
    fn grants_are_explicit() {
        let reg = example();
        let p = Policies::compile(&reg, &[]).unwrap();
        let allows = |role: &str, r: Resource<'_>, a: Action| p.allows(role, r, a, &none());
        // Writes only under `write` purposes; read-only roles write nothing.
        assert!(allows(
            "fulfillment_service",
            field("order_fulfillment", "email"),
            Action::Write
        ));
        assert!(!allows(
            "support_agent",
            field("customer_support", "email"),
            Action::Write
        ));
        assert!(!allows("data_science", field("analytics", "email"), Action::Write));
        // Deletes only under `delete` purposes.
        assert!(!allows(
            "fulfillment_service",
            Resource::Purpose("order_fulfillment"),
            Action::Delete
        ));
        assert!(allows("admin", Resource::Purpose("order_fulfillment"), Action::Delete));
        // Search on searchable fields only; detokenize where the form is plain.
        assert!(allows("data_science", field("analytics", "email"), Action::Search));
        assert!(!allows("data_science", field("analytics", "email"), Action::ReadPlain));
        assert!(!allows("admin", field("analytics", "birth_date"), Action::Search));
        assert!(!allows("data_science", field("analytics", "email"), Action::Detokenize));
        assert!(allows(
            "payment_service",
            field("payment", "card_number"),
            Action::Detokenize
        ));
        assert!(!allows(
            "support_agent",
            field("customer_support", "card_number"),
            Action::Detokenize
        ));
        // A token stores its value: only roles that write under the purpose make them.
        assert!(!allows("data_science", field("analytics", "email"), Action::Tokenize));
        assert!(!allows(
            "support_agent",
            field("customer_support", "phone"),
            Action::Tokenize
        ));
        assert!(allows(
            "payment_service",
            field("payment", "card_number"),
            Action::Tokenize
        ));
        // Capabilities, and nothing else, from `capabilities`.
        let cap = |role: &str, c: Capability| allows(role, Resource::Vault, Action::Capability(c));
        assert!(cap("auditor", Capability::ReadAudit));
        assert!(!cap("auditor", Capability::ManagePrincipals));
        assert!(!cap("consent_service", Capability::ReadAudit));
        assert!(cap("consent_service", Capability::ManageConsent));
        assert!(!cap("fulfillment_service", Capability::UseScanner));
        for c in Capability::ALL {
            assert!(cap("admin", c), "{}", c.name());
        }
        // Roles to grant: the declared list, else none (only manage_principals roles grant).
        assert!(allows(
            "key_manager",
            Resource::Role("fulfillment_service"),
            Action::Grant
        ));
        assert!(!allows("key_manager", Resource::Role("admin"), Action::Grant));
        assert!(!allows("key_manager", Resource::Role("key_manager"), Action::Grant));
        assert!(allows("admin", Resource::Role("admin"), Action::Grant));
        assert!(!allows("auditor", Resource::Role("auditor"), Action::Grant));
    }

    #[test]
    fn a_role_managing_principals_grants_its_own_role_by_default() {
        let text = EXAMPLE_REGISTRY.replacen(
            "capabilities = [\"read_audit\"]",
            "capabilities = [\"read_audit\", \"manage_principals\"]",
            1,
        );
        let reg = Registry::parse("r", &text).unwrap();
        let p = Policies::compile(&reg, &[]).unwrap();
        assert!(p.allows("auditor", Resource::Role("auditor"), Action::Grant, &none()));
        assert!(!p.allows("auditor", Resource::Role("admin"), Action::Grant, &none()));
    }

    #[test]
    fn descriptions_are_escaped_annotations_never_policy_text() {
        let mut reg = example();
        let evil = "x\rpermit(principal, action, resource);\n);\npermit(principal, action, resource);\n// \"\\\" \u{1b}[2J \u{202e} é";
        for role in reg.roles.values_mut() {
            role.description = evil.to_owned();
        }
        let text = role_policies(&reg);
        let set = PolicySet::from_str(&text).unwrap();
        for policy in set.policies() {
            assert_eq!(policy.annotation("description"), Some(evil), "round trip");
        }
        assert!(!text.contains('\r') && !text.contains('\u{1b}'));
        // No policy grants everything: the description stayed inside its annotation.
        let p = Policies::compile(&reg, &[]).unwrap();
        assert!(!p.allows("auditor", field("payment", "card_number"), Action::ReadPlain, &none()));
        assert!(!p.allows("auditor", Resource::Purpose("payment"), Action::Invoke, &none()));
        assert!(!p.allows(
            "auditor",
            Resource::Vault,
            Action::Capability(Capability::ManagePrincipals),
            &none()
        ));
        let generated = text.lines().filter(|l| l.starts_with("permit(")).count();
        assert_eq!(generated, set.policies().count(), "one policy per permit line");
    }
}
