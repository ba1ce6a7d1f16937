//! The access gate: the one place that decides whether a principal may act under a purpose
//! on a collection, and in which form each field may leave the vault, and whether it holds a
//! capability. Deny by default: a purpose no role of the principal lists, or a field the
//! purpose does not declare, is refused. Every decision is a Cedar decision (`policy.rs`).

use custodia_registry::{Capability, Collection, Field, OutputForm, Purpose, Registry};

use crate::policy::{Action, Policies, Resource};

use crate::error::shown;
use crate::{Principal, VaultError};

/// What a principal may do under one purpose on one collection.
pub(crate) struct Grant<'a> {
    pub purpose: &'a Purpose,
    pub collection: &'a Collection,
    /// The caller's roles that may invoke the purpose.
    roles: Vec<&'a str>,
    /// All the caller's roles, and the registry: what it may read back under other purposes.
    all_roles: &'a [String],
    registry: &'a Registry,
    policies: &'a Policies,
    context: &'a std::collections::BTreeMap<String, crate::ContextValue>,
}

impl<'a> Grant<'a> {
    /// The most permissive output form the policies give any of the granting roles for
    /// `field` under this purpose.
    pub fn form(&self, field: &Field) -> OutputForm {
        self.form_under(self.purpose, self.roles.iter().copied(), field)
    }

    /// The most permissive form `roles` are given for `field` under `purpose`.
    fn form_under<'r>(&self, purpose: &Purpose, roles: impl Iterator<Item = &'r str>, field: &Field) -> OutputForm {
        let target = Resource::Field(&purpose.name, &self.collection.name, &field.name);
        roles
            .map(|role| {
                if self.policies.allows(role, target, Action::ReadPlain, self.context) {
                    OutputForm::Plain
                } else if self.policies.allows(role, target, Action::ReadMasked, self.context) {
                    OutputForm::Masked
                } else if self.policies.allows(role, target, Action::ReadToken, self.context) {
                    OutputForm::Token
                } else {
                    OutputForm::Denied
                }
            })
            .min()
            .unwrap_or(OutputForm::Denied)
    }

    fn target(&self, field: &'a Field) -> Resource<'a> {
        Resource::Field(&self.purpose.name, &self.collection.name, &field.name)
    }

    /// Whether one granting role is permitted every one of `actions` on `field`.
    fn one_role_may(&self, field: &'a Field, actions: &[Action]) -> bool {
        let target = self.target(field);
        self.roles.iter().any(|role| {
            actions
                .iter()
                .all(|a| self.policies.allows(role, target, *a, self.context))
        })
    }

    /// Refuses `actions` on `field` unless one granting role is permitted all of them.
    fn require(&self, field: &'a Field, actions: &[Action], code: &'static str, what: &str) -> Result<(), VaultError> {
        if self.one_role_may(field, actions) {
            Ok(())
        } else {
            Err(VaultError::forbidden(
                code,
                format!(
                    "your roles may not {what} field `{}.{}` under purpose `{}`",
                    self.collection.name, field.name, self.purpose.name
                ),
            )
            .with_field(field.name.as_str()))
        }
    }

    /// Refuses a write of `field` that no granting role's policies permit (the registry grants
    /// `write` per role and purpose), and any write of a field the caller reads as a token:
    /// a guess written into a subject of its own and read back would be told apart from
    /// every subject's value by its deterministic token, the test of guesses search and
    /// deterministic tokenize are refused to it for (the registry refuses such a role;
    /// policy files could still make one).
    pub fn may_write(&self, field: &'a Field) -> Result<(), VaultError> {
        self.require(field, &[Action::Write], "field_write_denied", "write")?;
        // read back under this purpose, or under any that may use what it holds
        // (`compatible_with`), by any of the caller's roles that may invoke that one: a key
        // of two roles, one writing a field it sees masked, one reading it as a token where
        // it is reused, tested guesses as one role alone would (review)
        let read_back_as_token = self
            .registry
            .purposes
            .values()
            .filter(|q| {
                self.registry.may_use(&q.name, &self.purpose.name) && q.declares(&self.collection.name, &field.name)
            })
            .any(|q| {
                let invoking = self.all_roles.iter().map(String::as_str).filter(|r| {
                    self.policies
                        .allows(r, Resource::Purpose(&q.name), Action::Invoke, self.context)
                });
                self.form_under(q, invoking, field) == OutputForm::Token
            });
        if read_back_as_token {
            return Err(VaultError::forbidden(
                "field_write_denied",
                format!(
                    "your roles read field `{}.{}` as a token, and may not write it: a value written and read back would test guesses against every subject's token",
                    self.collection.name, field.name
                ),
            )
            .with_field(field.name.as_str()));
        }
        Ok(())
    }

    /// Refuses a search on `field` unless a role may search it and sees it plain: a role that
    /// sees a field masked or as tokens could otherwise test guesses.
    pub fn may_search(&self, field: &'a Field) -> Result<(), VaultError> {
        self.require(
            field,
            &[Action::Search, Action::ReadPlain],
            "search_not_allowed",
            "search (it needs the plain form of)",
        )
    }

    /// Refuses a tokenization of `field`; a deterministic one (stable per value, so an
    /// equality oracle) also needs the plain form.
    pub fn may_tokenize(&self, field: &'a Field, deterministic: bool) -> Result<(), VaultError> {
        if deterministic {
            self.require(
                field,
                &[Action::Tokenize, Action::ReadPlain],
                "tokenize_not_allowed",
                "make deterministic tokens (a token stores the value, so it needs `write` under the purpose, and a deterministic one the plain form too) of",
            )
        } else {
            self.require(
                field,
                &[Action::Tokenize],
                "tokenize_not_allowed",
                "tokenize (a token stores the value, so it needs `write` under the purpose)",
            )
        }
    }

    /// Refuses a detokenization of `field` unless a role may detokenize it and sees it plain.
    pub fn may_detokenize(&self, field: &'a Field) -> Result<(), VaultError> {
        if self.one_role_may(field, &[Action::Detokenize, Action::ReadPlain]) {
            Ok(())
        } else {
            Err(VaultError::forbidden(
                "detokenize_not_allowed",
                format!(
                    "your role does not see field `{}.{}` in plain form, so it may not detokenize it",
                    self.collection.name, field.name
                ),
            ))
        }
    }

    /// Refuses a deletion of whole records under this purpose unless a role has `delete` on it.
    pub fn may_delete(&self) -> Result<(), VaultError> {
        let purpose = Resource::Purpose(&self.purpose.name);
        if self
            .roles
            .iter()
            .any(|role| self.policies.allows(role, purpose, Action::Delete, self.context))
        {
            Ok(())
        } else {
            Err(VaultError::forbidden(
                "delete_not_allowed",
                format!(
                    "none of your roles may delete records under purpose `{}` (the registry grants `delete` per role and purpose)",
                    self.purpose.name
                ),
            ))
        }
    }

    /// The declared field `name` of the collection, checked against the purpose.
    pub fn declared_field(&self, name: &str) -> Result<&'a Field, VaultError> {
        let field = self.collection.fields.get(name).ok_or_else(|| {
            VaultError::unprocessable(
                "unknown_field",
                format!(
                    "collection `{}` has no field {}",
                    self.collection.name,
                    crate::error::quoted_name(name, false)
                ),
            )
            .with_field(shown(name))
        })?;
        if !self.purpose.declares(&self.collection.name, name) {
            return Err(VaultError::forbidden(
                "field_not_in_purpose",
                format!(
                    "purpose `{}` does not declare field `{}.{name}`; only declared fields may be collected or read for a purpose",
                    self.purpose.name, self.collection.name
                ),
            )
            .with_field(name));
        }
        Ok(field)
    }

    /// The fields a read returns: the requested ones (each must be declared and not denied),
    /// or every declared field the role does not deny.
    pub fn readable_fields(&self, requested: Option<&[String]>) -> Result<Vec<(&'a Field, OutputForm)>, VaultError> {
        match requested {
            Some(names) => {
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    let field = self.declared_field(name)?;
                    let form = self.form(field);
                    if form == OutputForm::Denied {
                        return Err(VaultError::forbidden(
                            "field_denied",
                            format!("your role may not read field `{}.{name}`", self.collection.name),
                        )
                        .with_field(name.as_str()));
                    }
                    out.push((field, form));
                }
                Ok(out)
            }
            None => Ok(self
                .purpose
                .fields_of(&self.collection.name)
                .filter_map(|name| self.collection.fields.get(name))
                .map(|f| (f, self.form(f)))
                .filter(|(_, form)| *form != OutputForm::Denied)
                .collect()),
        }
    }
}

/// Decides whether `principal` may invoke `purpose` on `collection`.
pub(crate) fn authorize<'a>(
    registry: &'a Registry,
    policies: &'a Policies,
    principal: &'a Principal,
    purpose: &str,
    collection: &str,
) -> Result<Grant<'a>, VaultError> {
    // An operator (a person) needs current training and a stated reason for personal data.
    crate::operators::may_see_personal_data(principal, true)?;
    // An undeclared purpose is refused like any purpose the caller may not invoke.
    let purpose_def = registry.purpose(purpose).ok_or_else(|| {
        VaultError::forbidden(
            "unknown_purpose",
            format!(
                "no purpose {} is declared in the registry",
                crate::error::quoted_name(purpose, false)
            ),
        )
    })?;
    let collection_def = registry.collection(collection).ok_or_else(|| {
        VaultError::not_found(
            "unknown_collection",
            format!(
                "no collection {} is declared in the registry",
                crate::error::quoted_name(collection, false)
            ),
        )
    })?;
    let roles: Vec<&str> = principal
        .roles
        .iter()
        .map(String::as_str)
        .filter(|r| policies.allows(r, Resource::Purpose(purpose), Action::Invoke, &principal.context))
        .collect();
    if roles.is_empty() {
        return Err(VaultError::forbidden(
            "purpose_not_allowed",
            format!(
                "none of your roles ({}) may invoke purpose `{purpose}`{}",
                principal.roles.join(", "),
                forbidden_by(policies, principal, Resource::Purpose(purpose), Action::Invoke)
            ),
        ));
    }
    if purpose_def.fields_of(collection).next().is_none() {
        return Err(VaultError::forbidden(
            "collection_not_in_purpose",
            format!("purpose `{purpose}` declares no field of collection `{collection}`"),
        ));
    }
    Ok(Grant {
        purpose: purpose_def,
        collection: collection_def,
        roles,
        all_roles: &principal.roles,
        registry,
        policies,
        context: &principal.context,
    })
}

/// Whether an operator needs current training for a capability: every one that reaches
/// personal data (a subject's consents, requests, preference page, retention) or hands out
/// access (principals and their keys, operators, the root key). Only reading the audit log
/// and the metrics (which hold no personal data) and the scanner (on text the caller brings)
/// do not.
fn needs_training(capability: Capability) -> bool {
    !matches!(
        capability,
        Capability::ReadAudit | Capability::ReadMetrics | Capability::UseScanner
    )
}

/// Whether a capability's routes hand out a subject's personal data itself (an access or
/// portability package, a consent history with its evidence, an incident's list of the
/// people affected and letters to them): an operator then says why, as for a read.
fn reveals_personal_data(capability: Capability) -> bool {
    matches!(
        capability,
        Capability::FulfilRequests | Capability::ManageConsent | Capability::ManageIncidents
    )
}

/// Refuses `principal` unless one of its roles holds `capability`.
pub(crate) fn require(policies: &Policies, principal: &Principal, capability: Capability) -> Result<(), VaultError> {
    if needs_training(capability) {
        crate::operators::may_see_personal_data(principal, reveals_personal_data(capability))?;
    }
    // A preference center link acts as its customer for a day: longer than any grant.
    let hands_out_access = matches!(
        capability,
        Capability::ManagePrincipals
            | Capability::ManageOperators
            | Capability::ManageKeys
            | Capability::IssuePortalLinks
    );
    if principal
        .roles
        .iter()
        .filter(|r| !hands_out_access || !from_break_glass(principal, r))
        .any(|role| {
            policies.allows(
                role,
                Resource::Vault,
                Action::Capability(capability),
                &principal.context,
            )
        })
    {
        Ok(())
    } else {
        Err(VaultError::forbidden(
            "not_allowed",
            format!(
                "this needs a role with the `{}` capability{}",
                capability.name(),
                forbidden_by(policies, principal, Resource::Vault, Action::Capability(capability))
            ),
        ))
    }
}

/// ` (a policy of this vault forbids it for this request)`, when a `forbid` policy (one of
/// the data directory's `policies/`) refused `principal`'s roles rather than no role being
/// granted it: a refusal the registry alone does not explain; else nothing. Which policy
/// (`file#id`) goes to the server's log only: a file's name is the operator's, and may say
/// more than the caller should learn (a matter, a customer).
fn forbidden_by(policies: &Policies, principal: &Principal, resource: Resource<'_>, action: Action) -> String {
    let policy = principal
        .roles
        .iter()
        .find_map(|r| policies.forbidding_policy(r, resource, action, &principal.context));
    match policy {
        Some(policy) => {
            tracing::info!(policy = %policy, principal = %principal.id, "refused by a forbid policy");
            " (a policy of this vault forbids it for this request; the server's log names which)".to_owned()
        }
        None => String::new(),
    }
}

/// Whether `role` is one a break-glass grant added to the principal's session: a grant's
/// roles reach data for minutes, and never hand out access that would outlive the grant (API
/// keys, operators, key rotations, preference center links).
fn from_break_glass(principal: &Principal, role: &str) -> bool {
    principal
        .operator
        .as_ref()
        .is_some_and(|s| s.glass_roles.iter().any(|r| r == role))
}

/// Refuses `principal` (who manages principals) unless one of its roles may grant `role`.
pub(crate) fn require_grantable(policies: &Policies, principal: &Principal, role: &str) -> Result<(), VaultError> {
    if principal
        .roles
        .iter()
        .filter(|r| !from_break_glass(principal, r))
        .any(|r| policies.allows(r, Resource::Role(role), Action::Grant, &principal.context))
    {
        Ok(())
    } else {
        Err(VaultError::forbidden(
            "role_not_grantable",
            format!(
                "none of your roles may grant role {} (a role grants the roles its `grantable_roles` lists, or itself when it lists none)",
crate::error::quoted_name(role, false)
            ),
        )
        .with_field("roles"))
    }
}
