//! Roles as Cedar policies. The registry's roles compile to a Cedar policy set, checked
//! against a schema generated from the registry; policy files an operator adds (in the data
//! directory's `policies/` folder) join it and can only be validated in, never slip past it.
//! Every permission decision of the gate is a Cedar decision; deny by default.
//!
//! ```text
//! entity Role;                      one per registry role
//! entity Purpose;                   one per purpose
//! entity Field in [Purpose] { collection, field, category, field_type };
//!                                   one per (purpose, declared field): "purpose/collection.field"
//! action invoke                     Role -> Purpose
//! action write, read_plain, read_masked, read_token      Role -> Field
//! ```
//!
//! A role whose output form for a field is `plain` is permitted `read_plain`, `read_masked`
//! and `read_token` (each reveals no more than the one before); `masked` permits the last
//! two; `token` the last. So a `forbid` on `read_plain` (say, "no plain card numbers, ever")
//! leaves a role with the masked form instead of nothing.
//!
//! Decisions depend only on role, purpose, field and action (the context is empty and the
//! entities are fixed at start), so each is computed once and remembered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::RwLock;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression, Schema,
    ValidationMode, Validator,
};
use custodia_registry::{OutputForm, Registry};

use crate::ContextValue;

/// A field-level or purpose-level action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    Invoke,
    Write,
    ReadPlain,
    ReadMasked,
    ReadToken,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::Write => "write",
            Self::ReadPlain => "read_plain",
            Self::ReadMasked => "read_masked",
            Self::ReadToken => "read_token",
        }
    }
}

/// Why the policies could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The compiled policy set and its decision memo.
pub struct Policies {
    schema: Schema,
    set: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    memo: RwLock<HashMap<(String, String, String, Action), bool>>,
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
    format!(
        "entity Role;\n\
         entity Purpose;\n\
         entity Field in [Purpose] = {{ collection: String, field: String, category: String, field_type: String }};\n\
         action invoke appliesTo {{ principal: [Role], resource: [Purpose], context: {context} }};\n\
         action write, read_plain, read_masked, read_token appliesTo {{ principal: [Role], resource: [Field], context: {context} }};\n"
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
        let _ = writeln!(out, "// role {}: {}", role.name, role.description.replace('\n', " "));
        for purpose_name in &role.purposes {
            let Some(purpose) = registry.purpose(purpose_name) else {
                continue;
            };
            let _ = writeln!(
                out,
                "permit(principal == Role::\"{}\", action == Action::\"invoke\", resource == Purpose::\"{}\");",
                role.name, purpose.name
            );
            let _ = writeln!(
                out,
                "permit(principal == Role::\"{}\", action == Action::\"write\", resource in Purpose::\"{}\");",
                role.name, purpose.name
            );
            for (collection_name, fields) in &purpose.fields {
                let Some(collection) = registry.collection(collection_name) else {
                    continue;
                };
                for field_name in fields {
                    let Some(field) = collection.fields.get(field_name) else {
                        continue;
                    };
                    let actions: &[&str] = match role.output_form(collection, field) {
                        OutputForm::Plain => &["read_plain", "read_masked", "read_token"],
                        OutputForm::Masked => &["read_masked", "read_token"],
                        OutputForm::Token => &["read_token"],
                        OutputForm::Denied => &[],
                    };
                    if actions.is_empty() {
                        continue;
                    }
                    let list: Vec<String> = actions.iter().map(|a| format!("Action::\"{a}\"")).collect();
                    let _ = writeln!(
                        out,
                        "permit(principal == Role::\"{}\", action in [{}], resource == Field::\"{}\");",
                        role.name,
                        list.join(", "),
                        field_id(&purpose.name, collection_name, field_name)
                    );
                }
            }
        }
    }
    out
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, PolicyError> {
    EntityUid::from_str(&format!("{kind}::{}", quoted(id))).map_err(|e| PolicyError(format!("entity {kind} {id}: {e}")))
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
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
        let mut out = Vec::new();
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

    /// Whether `role` may take `action` on a purpose (`field` None) or a purpose's field.
    pub(crate) fn allows(
        &self,
        role: &str,
        purpose: &str,
        field: Option<(&str, &str)>,
        action: Action,
        context: &BTreeMap<String, ContextValue>,
    ) -> bool {
        let resource = match field {
            Some((collection, field)) => field_id(purpose, collection, field),
            None => purpose.to_owned(),
        };
        if !context.is_empty() {
            // Decisions that depend on what the caller asserted are not remembered.
            return self
                .decide(role, field.is_some(), &resource, action, context)
                .unwrap_or(false);
        }
        let key = (role.to_owned(), purpose.to_owned(), resource.clone(), action);
        if let Some(known) = self.memo.read().ok().and_then(|m| m.get(&key).copied()) {
            return known;
        }
        let allowed = self
            .decide(role, field.is_some(), &resource, action, context)
            .unwrap_or(false);
        if let Ok(mut memo) = self.memo.write() {
            memo.insert(key, allowed);
        }
        allowed
    }

    /// One Cedar decision; any error (an unknown entity, say) is a deny.
    fn decide(
        &self,
        role: &str,
        is_field: bool,
        resource: &str,
        action: Action,
        context: &BTreeMap<String, ContextValue>,
    ) -> Result<bool, PolicyError> {
        let principal = uid("Role", role)?;
        let action_uid = uid("Action", action.name())?;
        let resource = uid(if is_field { "Field" } else { "Purpose" }, resource)?;
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
        Ok(self
            .authorizer
            .is_authorized(&request, &self.set, &self.entities)
            .decision()
            == Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodia_registry::EXAMPLE_REGISTRY;

    fn none() -> BTreeMap<String, ContextValue> {
        BTreeMap::new()
    }

    #[test]
    fn context_attributes_reach_policies() {
        let reg = example();
        let rule = "forbid(principal == Role::\"support_agent\", action, resource) unless { context has open_ticket && context.open_ticket };";
        let p = Policies::compile(&reg, &[("tickets.cedar".into(), rule.into())]).unwrap();
        let open = BTreeMap::from([("open_ticket".to_owned(), ContextValue::Bool(true))]);
        let closed = BTreeMap::from([("open_ticket".to_owned(), ContextValue::Bool(false))]);
        assert!(!p.allows("support_agent", "customer_support", None, Action::Invoke, &none()));
        assert!(!p.allows("support_agent", "customer_support", None, Action::Invoke, &closed));
        assert!(p.allows("support_agent", "customer_support", None, Action::Invoke, &open));
        assert!(
            p.allows("admin", "customer_support", None, Action::Invoke, &none()),
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
        assert!(p.allows("support_agent", "customer_support", None, Action::Invoke, &none()));
        assert!(!p.allows("support_agent", "order_fulfillment", None, Action::Invoke, &none()));
        let card = Some(("customers", "card_number"));
        assert!(!p.allows("support_agent", "customer_support", card, Action::ReadPlain, &none()));
        assert!(p.allows("support_agent", "customer_support", card, Action::ReadMasked, &none()));
        assert!(p.allows("admin", "customer_support", card, Action::ReadPlain, &none()));
        assert!(
            !p.allows(
                "admin",
                "customer_support",
                Some(("customers", "birth_date")),
                Action::ReadMasked,
                &none()
            ),
            "not declared"
        );
        assert!(
            !p.allows("nobody", "customer_support", card, Action::ReadToken, &none()),
            "unknown roles are denied"
        );
    }

    #[test]
    fn an_operator_forbid_overrides_a_role() {
        let reg = example();
        let forbid = "forbid(principal, action == Action::\"read_plain\", resource) when { resource.field_type == \"card_number\" };";
        let p = Policies::compile(&reg, &[("no-plain-cards.cedar".into(), forbid.into())]).unwrap();
        let card = Some(("customers", "card_number"));
        assert!(!p.allows("admin", "payment", card, Action::ReadPlain, &none()));
        assert!(
            p.allows("admin", "payment", card, Action::ReadMasked, &none()),
            "the next form down stays"
        );
        assert!(p.allows(
            "admin",
            "payment",
            Some(("customers", "name")),
            Action::ReadPlain,
            &none()
        ));
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
}
