//! The access gate: the one place that decides whether a principal may act under a purpose
//! on a collection, and in which form each field may leave the vault. Deny by default: a
//! purpose no role of the principal lists, or a field the purpose does not declare, is refused.

use custodia_registry::{Collection, Field, OutputForm, Purpose, Registry};

use crate::policy::{Action, Policies};

use crate::error::shown;
use crate::{Principal, VaultError};

/// What a principal may do under one purpose on one collection.
pub(crate) struct Grant<'a> {
    pub purpose: &'a Purpose,
    pub collection: &'a Collection,
    /// The caller's roles that may invoke the purpose.
    roles: Vec<&'a str>,
    policies: &'a Policies,
    context: &'a std::collections::BTreeMap<String, crate::ContextValue>,
}

impl<'a> Grant<'a> {
    /// The most permissive output form the policies give any of the granting roles for
    /// `field` under this purpose.
    pub fn form(&self, field: &Field) -> OutputForm {
        let target = Some((self.collection.name.as_str(), field.name.as_str()));
        let purpose = self.purpose.name.as_str();
        self.roles
            .iter()
            .map(|role| {
                if self
                    .policies
                    .allows(role, purpose, target, Action::ReadPlain, self.context)
                {
                    OutputForm::Plain
                } else if self
                    .policies
                    .allows(role, purpose, target, Action::ReadMasked, self.context)
                {
                    OutputForm::Masked
                } else if self
                    .policies
                    .allows(role, purpose, target, Action::ReadToken, self.context)
                {
                    OutputForm::Token
                } else {
                    OutputForm::Denied
                }
            })
            .min()
            .unwrap_or(OutputForm::Denied)
    }

    /// Refuses a write of `field` that no granting role's policies permit.
    pub fn may_write(&self, field: &Field) -> Result<(), VaultError> {
        let target = Some((self.collection.name.as_str(), field.name.as_str()));
        if self.roles.iter().any(|role| {
            self.policies
                .allows(role, &self.purpose.name, target, Action::Write, self.context)
        }) {
            Ok(())
        } else {
            Err(VaultError::forbidden(
                "field_write_denied",
                format!(
                    "a policy forbids your role to write field `{}.{}`",
                    self.collection.name, field.name
                ),
            )
            .with_field(field.name.as_str()))
        }
    }

    /// The declared field `name` of the collection, checked against the purpose.
    pub fn declared_field(&self, name: &str) -> Result<&'a Field, VaultError> {
        let field = self.collection.fields.get(name).ok_or_else(|| {
            VaultError::unprocessable(
                "unknown_field",
                format!("collection `{}` has no field `{}`", self.collection.name, shown(name)),
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
    // An undeclared purpose is refused like any purpose the caller may not invoke.
    let purpose_def = registry.purpose(purpose).ok_or_else(|| {
        VaultError::forbidden(
            "unknown_purpose",
            format!("no purpose `{}` is declared in the registry", shown(purpose)),
        )
    })?;
    let collection_def = registry.collection(collection).ok_or_else(|| {
        VaultError::not_found(
            "unknown_collection",
            format!("no collection `{}` is declared in the registry", shown(collection)),
        )
    })?;
    let roles: Vec<&str> = principal
        .roles
        .iter()
        .map(String::as_str)
        .filter(|r| policies.allows(r, purpose, None, Action::Invoke, &principal.context))
        .collect();
    if roles.is_empty() {
        return Err(VaultError::forbidden(
            "purpose_not_allowed",
            format!(
                "none of your roles ({}) may invoke purpose `{purpose}`",
                principal.roles.join(", ")
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
        policies,
        context: &principal.context,
    })
}

/// Whether `principal` has a role that may manage principals.
pub(crate) fn require_principal_admin(registry: &Registry, principal: &Principal) -> Result<(), VaultError> {
    let allowed = principal
        .roles
        .iter()
        .filter_map(|r| registry.role(r))
        .any(|r| r.manage_principals);
    if allowed {
        Ok(())
    } else {
        Err(VaultError::forbidden(
            "not_allowed",
            "managing principals needs a role with manage_principals = true",
        ))
    }
}

/// Whether `principal` has a role that may record and read subjects' choices.
pub(crate) fn require_consent_manager(registry: &Registry, principal: &Principal) -> Result<(), VaultError> {
    let allowed = principal
        .roles
        .iter()
        .filter_map(|r| registry.role(r))
        .any(|r| r.manage_consent);
    if allowed {
        Ok(())
    } else {
        Err(VaultError::forbidden(
            "not_allowed",
            "recording or reading consents needs a role with manage_consent = true",
        ))
    }
}
