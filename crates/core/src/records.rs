//! Record use cases: create, list, get, patch, delete, search, and principal management.

use std::collections::BTreeMap;

use custodia_crypto::{DataKey, FieldContext};
use custodia_registry::{Field, OutputForm};
use custodia_store::{AuditRow, FieldValue, IndexEntry, NewRecord, RecordPatch, StoredRecord, TokenRow};
use custodia_types::{PrincipalInfo, Record, SearchMatch};
use zeroize::Zeroizing;

use crate::audit::AuditEvent;
use crate::gate::{self, Grant};
use crate::tokens::TokenKind;
use crate::{Principal, RecordId, SubjectId, Timestamp, Vault, VaultError, principal, values};

/// The most fields one read may name.
const MAX_REQUESTED_FIELDS: usize = 64;

impl Vault {
    /// Authenticates a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, VaultError> {
        let (key_id, secret) =
            principal::split_token(token).ok_or_else(|| VaultError::unauthenticated("malformed API key"))?;
        let row = match self.principals.get(key_id) {
            Some(row) => row,
            None => {
                let row = self
                    .store
                    .principal_by_key_id(key_id)
                    .await?
                    .ok_or_else(|| VaultError::unauthenticated("invalid API key"))?;
                self.principals.put(row.clone());
                row
            }
        };
        principal::verify(&row, secret)
    }

    /// Stores a new record of `subject` in `collection`, collected for `purpose`.
    #[tracing::instrument(skip_all)]
    pub async fn create_record(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<RecordId, VaultError> {
        let event = AuditEvent::new("record.create", principal)
            .purpose(purpose)
            .collection(collection)
            .fields(fields.keys());
        let event = self.about(event, subject)?;
        let allow = self.audit_row(&event, now, None)?;
        let result = self
            .create_record_inner(principal, purpose, now, subject, collection, fields, allow)
            .await;
        self.audit_refusal(&event, now, result).await
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the public use case's arguments and its audit row"
    )]
    async fn create_record_inner(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        fields: &BTreeMap<String, String>,
        allow: AuditRow,
    ) -> Result<RecordId, VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        if fields.is_empty() {
            return Err(VaultError::bad_request(
                "no_fields",
                "a record needs at least one field",
            ));
        }
        let checked = check_values(&grant, fields.iter().map(|(k, v)| (k, Some(v))))?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        let record_id = RecordId::generate()?;
        // A subject's first record carries its new data key, stored in the same transaction.
        // If a concurrent first write stored another key, seal again under that one.
        for _ in 0..2 {
            let (key, subject_key) = match self.keys.subject_key(&*self.store, subject).await? {
                Some(key) => (key, None),
                None => {
                    let (key, row) = self.keys.new_subject_key(subject, now)?;
                    (key, Some(row))
                }
            };
            let (set, index) = self.seal(&grant, &key, subject, &record_id, &checked)?;
            let record = NewRecord {
                subject_key,
                audit: Some(allow.clone()),
                record_id: record_id.as_str().to_owned(),
                subject_id: subject.as_str().to_owned(),
                collection: collection.to_owned(),
                now: now.0,
                fields: set,
                index,
            };
            match self.store.insert_record(&record).await {
                Err(custodia_store::StoreError::SubjectKeyConflict) => continue,
                other => other?,
            }
            return Ok(record_id);
        }
        Err(VaultError::internal(
            &"the subject's data key kept changing during a write",
        ))
    }

    /// Every record of `subject` in `collection`, as `purpose` may see them.
    #[tracing::instrument(skip_all)]
    pub async fn list_records(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        requested: Option<&[String]>,
    ) -> Result<Vec<Record>, VaultError> {
        let event = AuditEvent::new("record.list", principal)
            .purpose(purpose)
            .collection(collection);
        let event = self.about(event.fields(requested.unwrap_or_default()), subject)?;
        let result = self
            .list_records_inner(principal, purpose, subject, collection, requested)
            .await;
        self.audit_read_fields(event, now, result).await
    }

    async fn list_records_inner(
        &self,
        principal: &Principal,
        purpose: &str,
        subject: &SubjectId,
        collection: &str,
        requested: Option<&[String]>,
    ) -> Result<(Vec<Record>, Vec<String>), VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        let selected = select(&grant, requested)?;
        let names = field_names(&selected);
        self.subject_state(subject).await?.permits(grant.purpose)?;
        let Some(found) = self.store.records(subject.as_str(), collection).await? else {
            return Ok((Vec::new(), names));
        };
        let key = self.keys.unwrap(&found.key)?;
        let mut tokens = Vec::new();
        let records = found
            .records
            .iter()
            .map(|r| self.open_record(&grant, &key, r, &selected, &mut tokens))
            .collect::<Result<Vec<_>, _>>()?;
        self.vault_tokens(&tokens).await?;
        Ok((records, names))
    }

    /// One record, as `purpose` may see it.
    #[tracing::instrument(skip_all)]
    #[expect(
        clippy::too_many_arguments,
        reason = "principal, purpose, time, then the use case's own input"
    )]
    pub async fn get_record(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        requested: Option<&[String]>,
    ) -> Result<Record, VaultError> {
        let event = AuditEvent::new("record.read", principal)
            .purpose(purpose)
            .collection(collection);
        let event = self.about(event.fields(requested.unwrap_or_default()), subject)?;
        let result = self
            .get_record_inner(principal, purpose, subject, collection, record_id, requested)
            .await;
        self.audit_read_fields(event, now, result).await
    }

    async fn get_record_inner(
        &self,
        principal: &Principal,
        purpose: &str,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        requested: Option<&[String]>,
    ) -> Result<(Record, Vec<String>), VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        let selected = select(&grant, requested)?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        let found = self
            .store
            .record(subject.as_str(), collection, record_id.as_str())
            .await?
            .ok_or_else(not_found)?;
        let stored = found.records.first().ok_or_else(not_found)?;
        let mut tokens = Vec::new();
        let record = self.open_record(&grant, &self.keys.unwrap(&found.key)?, stored, &selected, &mut tokens)?;
        self.vault_tokens(&tokens).await?;
        Ok((record, field_names(&selected)))
    }

    /// The access gate alone: whether `principal` may read `requested` fields (or the
    /// purpose's default fields) of `subject` in `collection` under `purpose`, and in which
    /// form, with nothing decrypted and nothing audited. For benchmarks and pre-checks.
    pub async fn check_access(
        &self,
        principal: &Principal,
        purpose: &str,
        subject: &SubjectId,
        collection: &str,
        requested: Option<&[String]>,
    ) -> Result<Vec<(String, OutputForm)>, VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        let selected = select(&grant, requested)?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        Ok(selected.into_iter().map(|(f, form)| (f.name.clone(), form)).collect())
    }

    /// Changes fields of a record; a `None` value erases that field.
    #[tracing::instrument(skip_all)]
    #[expect(
        clippy::too_many_arguments,
        reason = "principal, purpose, time, then the use case's own input"
    )]
    pub async fn patch_record(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        fields: &BTreeMap<String, Option<String>>,
    ) -> Result<(), VaultError> {
        let event = AuditEvent::new("record.update", principal)
            .purpose(purpose)
            .collection(collection)
            .fields(fields.keys());
        let event = self.about(event, subject)?;
        let allow = self.audit_row(&event, now, None)?;
        let result = self
            .patch_record_inner(principal, purpose, now, subject, collection, record_id, fields, allow)
            .await;
        self.audit_refusal(&event, now, result).await
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the public use case's arguments and its audit row"
    )]
    async fn patch_record_inner(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        fields: &BTreeMap<String, Option<String>>,
        allow: AuditRow,
    ) -> Result<(), VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        if fields.is_empty() {
            return Err(VaultError::bad_request("no_fields", "a patch needs at least one field"));
        }
        let checked = check_values(&grant, fields.iter().map(|(k, v)| (k, v.as_ref())))?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        let key = self
            .keys
            .subject_key(&*self.store, subject)
            .await?
            .ok_or_else(not_found)?;
        let (set, index) = self.seal(&grant, &key, subject, record_id, &checked)?;
        let remove = checked
            .iter()
            .filter(|c| c.value.is_none())
            .map(|c| c.field.name.clone())
            .collect();
        let patch = RecordPatch {
            audit: Some(allow),
            now: now.0,
            set,
            remove,
            index,
        };
        if self
            .store
            .update_record(subject.as_str(), collection, record_id.as_str(), &patch)
            .await?
        {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Deletes a record with all its fields and index entries.
    #[tracing::instrument(skip_all)]
    pub async fn delete_record(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
    ) -> Result<(), VaultError> {
        let event = AuditEvent::new("record.delete", principal)
            .purpose(purpose)
            .collection(collection);
        let event = self.about(event, subject)?;
        let allow = self.audit_row(&event, now, None)?;
        let result = self
            .delete_record_inner(principal, purpose, subject, collection, record_id, &allow)
            .await;
        self.audit_refusal(&event, now, result).await
    }

    async fn delete_record_inner(
        &self,
        principal: &Principal,
        purpose: &str,
        subject: &SubjectId,
        collection: &str,
        record_id: &RecordId,
        allow: &AuditRow,
    ) -> Result<(), VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        self.subject_state(subject).await?.permits(grant.purpose)?;
        if self
            .store
            .delete_record(subject.as_str(), collection, record_id.as_str(), Some(allow))
            .await?
        {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Finds the records whose searchable `field` equals `value` (after normalization).
    #[tracing::instrument(skip_all)]
    pub async fn search(
        &self,
        principal: &Principal,
        purpose: &str,
        now: Timestamp,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<SearchMatch>, VaultError> {
        let event = AuditEvent::new("record.search", principal)
            .purpose(purpose)
            .collection(collection);
        let event = event.fields([&field.to_owned()]);
        let result = self.search_inner(principal, purpose, collection, field, value).await;
        match result {
            // One entry per subject found, so that "who touched subject X" finds searches too;
            // all are durable before the matches are returned.
            Ok(matches) if !matches.is_empty() => {
                let mut subjects: Vec<&str> = matches.iter().map(|m| m.subject_id.as_str()).collect();
                subjects.sort_unstable();
                subjects.dedup();
                let rows = subjects
                    .into_iter()
                    .map(|s| self.audit_row(&self.about(event.clone(), &SubjectId::parse(s)?)?, now, None))
                    .collect::<Result<Vec<_>, VaultError>>()?;
                self.append_audit_rows(&rows).await?;
                Ok(matches)
            }
            other => self.audit_read(&event, now, other).await,
        }
    }

    async fn search_inner(
        &self,
        principal: &Principal,
        purpose: &str,
        collection: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<SearchMatch>, VaultError> {
        let grant = gate::authorize(&self.registry, &self.policies, principal, purpose, collection)?;
        let field_def = grant.declared_field(field)?;
        if !field_def.searchable {
            return Err(VaultError::bad_request(
                "field_not_searchable",
                format!("field `{collection}.{field}` is not searchable (set searchable = true in the registry)"),
            )
            .with_field(field));
        }
        let normalized =
            Zeroizing::new(values::normalize(field_def.field_type, value).map_err(|why| invalid(field, &why))?);
        let digest = self.keys.field_index(
            collection,
            field,
            &values::index_form(field_def.field_type, &normalized),
        )?;
        let hits = self.store.find_by_index(collection, field, &digest).await?;
        // Only subjects whose ledger permits this purpose are found.
        let mut matches = Vec::with_capacity(hits.len());
        for (subject_id, record_id) in hits {
            let subject = SubjectId::parse(&subject_id)?;
            if self.subject_state(&subject).await?.permits(grant.purpose).is_ok() {
                matches.push(SearchMatch { subject_id, record_id });
            }
        }
        Ok(matches)
    }

    /// Creates a principal with `roles` and returns its id and API key (shown once).
    pub async fn create_principal(
        &self,
        caller: &Principal,
        now: Timestamp,
        name: &str,
        roles: &[String],
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        let event = AuditEvent::new("principal.create", caller).fields(roles);
        let allow = self.audit_row(&event, now, None)?;
        let result = async {
            gate::require_principal_admin(&self.registry, caller)?;
            self.add_principal(now, name, roles, Some(&allow)).await
        }
        .await;
        self.audit_refusal(&event, now, result).await
    }

    /// Creates a principal without an authenticated caller: for `custodia init` and other
    /// operator commands run on the server's own machine.
    pub async fn insert_principal(
        &self,
        now: Timestamp,
        name: &str,
        roles: &[String],
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        self.add_principal(now, name, roles, None).await
    }

    /// Validates and stores a principal, with its audit entry in the same transaction.
    async fn add_principal(
        &self,
        now: Timestamp,
        name: &str,
        roles: &[String],
        audit: Option<&AuditRow>,
    ) -> Result<(String, Zeroizing<String>), VaultError> {
        principal::check_name(name)?;
        if roles.is_empty() {
            return Err(VaultError::bad_request(
                "no_roles",
                "a principal needs at least one role",
            ));
        }
        for role in roles {
            if self.registry.role(role).is_none() {
                let known: Vec<&str> = self.registry.roles.keys().map(String::as_str).collect();
                return Err(VaultError::unprocessable(
                    "unknown_role",
                    format!(
                        "no role `{}` in the registry; roles: {}",
                        crate::error::shown(role),
                        known.join(", ")
                    ),
                )
                .with_field("roles"));
            }
        }
        let mut unique = roles.to_vec();
        unique.sort();
        unique.dedup();
        let (row, key) = principal::new_principal(name, unique, now)?;
        self.store.insert_principal(&row, audit).await.map_err(|e| match e {
            custodia_store::StoreError::Conflict(_) => VaultError::new(
                crate::ErrorKind::Conflict,
                "principal_exists",
                format!("a principal named `{name}` already exists"),
            ),
            other => other.into(),
        })?;
        Ok((row.principal_id, key.token))
    }

    /// Every principal (never their keys).
    pub async fn list_principals(&self, caller: &Principal, now: Timestamp) -> Result<Vec<PrincipalInfo>, VaultError> {
        let event = AuditEvent::new("principal.list", caller);
        let result = self.list_principals_inner(caller).await;
        self.audit_read(&event, now, result).await
    }

    async fn list_principals_inner(&self, caller: &Principal) -> Result<Vec<PrincipalInfo>, VaultError> {
        gate::require_principal_admin(&self.registry, caller)?;
        Ok(self
            .store
            .principals()
            .await?
            .into_iter()
            .map(|p| PrincipalInfo {
                principal_id: p.principal_id,
                name: p.name,
                roles: p.roles,
                created_at: Timestamp(p.created_at).to_rfc3339(),
                revoked_at: p.revoked_at.map(|t| Timestamp(t).to_rfc3339()),
            })
            .collect())
    }

    /// Revokes a principal's API key at once.
    pub async fn revoke_principal(
        &self,
        caller: &Principal,
        now: Timestamp,
        principal_id: &str,
    ) -> Result<(), VaultError> {
        let event = AuditEvent::new("principal.revoke", caller).fields([&crate::error::shown(principal_id)]);
        let allow = self.audit_row(&event, now, None)?;
        let result = self.revoke_principal_inner(caller, now, principal_id, &allow).await;
        self.audit_refusal(&event, now, result).await
    }

    async fn revoke_principal_inner(
        &self,
        caller: &Principal,
        now: Timestamp,
        principal_id: &str,
        allow: &AuditRow,
    ) -> Result<(), VaultError> {
        gate::require_principal_admin(&self.registry, caller)?;
        if caller.id == principal_id {
            // An administrator locking themselves (perhaps the last one) out helps no one.
            return Err(VaultError::new(
                crate::ErrorKind::Conflict,
                "cannot_revoke_self",
                "a principal cannot revoke its own key; ask another administrator",
            ));
        }
        if self.store.revoke_principal(principal_id, now.0, Some(allow)).await? {
            self.principals.forget_principal(principal_id);
            Ok(())
        } else {
            Err(VaultError::not_found(
                "principal_not_found",
                "no active principal with that id",
            ))
        }
    }

    /// Seals each present value and computes index entries for searchable fields.
    fn seal(
        &self,
        grant: &Grant<'_>,
        key: &DataKey,
        subject: &SubjectId,
        record_id: &RecordId,
        checked: &[CheckedValue<'_>],
    ) -> Result<(Vec<FieldValue>, Vec<IndexEntry>), VaultError> {
        let collection = grant.collection.name.as_str();
        let mut set = Vec::with_capacity(checked.len());
        let mut index = Vec::new();
        for c in checked {
            let Some(value) = &c.value else { continue };
            let ctx = FieldContext {
                collection,
                subject: subject.as_str(),
                record: record_id.as_str(),
                field: &c.field.name,
            };
            set.push(FieldValue {
                field: c.field.name.clone(),
                ciphertext: key.seal(&ctx, value.as_bytes())?,
                purpose: grant.purpose.name.clone(),
            });
            if c.field.searchable {
                let form = Zeroizing::new(values::index_form(c.field.field_type, value));
                let digest = self.keys.field_index(collection, &c.field.name, &form)?;
                index.push(IndexEntry {
                    field: c.field.name.clone(),
                    digest: digest.to_vec(),
                });
            }
        }
        Ok((set, index))
    }
}

/// A field checked against the purpose, with its normalized value (`None`: erase).
struct CheckedValue<'a> {
    field: &'a Field,
    value: Option<Zeroizing<String>>,
}

fn check_values<'a, 'v>(
    grant: &Grant<'a>,
    fields: impl Iterator<Item = (&'v String, Option<&'v String>)>,
) -> Result<Vec<CheckedValue<'a>>, VaultError> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let field = grant.declared_field(name)?;
        grant.may_write(field)?;
        let value = match value {
            Some(v) => Some(Zeroizing::new(
                values::normalize(field.field_type, v).map_err(|why| invalid(name, &why))?,
            )),
            None => None,
        };
        out.push(CheckedValue { field, value });
    }
    Ok(out)
}

fn select<'a>(grant: &Grant<'a>, requested: Option<&[String]>) -> Result<Vec<(&'a Field, OutputForm)>, VaultError> {
    if requested.is_some_and(|r| r.len() > MAX_REQUESTED_FIELDS) {
        return Err(VaultError::bad_request(
            "too_many_fields",
            format!("at most {MAX_REQUESTED_FIELDS} fields per read"),
        ));
    }
    grant.readable_fields(requested)
}

impl Vault {
    /// Decrypts the selected fields of a stored record and applies each field's output form;
    /// token-form fields add the rows that vault their tokens to `tokens`. Fields not selected
    /// are never decrypted.
    fn open_record(
        &self,
        grant: &Grant<'_>,
        key: &DataKey,
        stored: &StoredRecord,
        selected: &[(&Field, OutputForm)],
        tokens: &mut Vec<TokenRow>,
    ) -> Result<Record, VaultError> {
        let collection = grant.collection.name.as_str();
        let mut fields = BTreeMap::new();
        for (field, form) in selected {
            let Some(sf) = stored.fields.iter().find(|f| f.field == field.name) else {
                continue;
            };
            let ctx = FieldContext {
                collection,
                subject: &stored.subject_id,
                record: &stored.record_id,
                field: &field.name,
            };
            let plain = Zeroizing::new(key.open(&ctx, &sf.ciphertext)?);
            let text = std::str::from_utf8(&plain).map_err(|_| VaultError::internal(&"stored value is not UTF-8"))?;
            let out = match form {
                OutputForm::Plain => text.to_owned(),
                OutputForm::Masked => values::mask(field.field_type, text),
                OutputForm::Token => {
                    let token = self.make_token(TokenKind::Deterministic, collection, field, text, false)?;
                    let now = Timestamp(stored.updated_at);
                    let row = Self::token_row(
                        key,
                        &stored.subject_id,
                        collection,
                        &field.name,
                        TokenKind::Deterministic,
                        &token,
                        text,
                        now,
                    )?;
                    tokens.push(row);
                    token
                }
                OutputForm::Denied => continue,
            };
            fields.insert(field.name.clone(), out);
        }
        Ok(Record {
            record_id: stored.record_id.clone(),
            fields,
            created_at: Timestamp(stored.created_at).to_rfc3339(),
            updated_at: Timestamp(stored.updated_at).to_rfc3339(),
        })
    }

    /// Stores the tokens a read handed out, so they can be detokenized later.
    async fn vault_tokens(&self, tokens: &[TokenRow]) -> Result<(), VaultError> {
        if !tokens.is_empty() {
            self.store.insert_tokens(tokens, None).await?;
        }
        Ok(())
    }
}

/// The names of the fields a read selected: what its audit entry records.
fn field_names(selected: &[(&Field, OutputForm)]) -> Vec<String> {
    selected.iter().map(|(f, _)| f.name.clone()).collect()
}

fn not_found() -> VaultError {
    VaultError::not_found("record_not_found", "no such record for this subject in this collection")
}

fn invalid(field: &str, why: &str) -> VaultError {
    VaultError::unprocessable("invalid_field", format!("field `{field}`: {why}")).with_field(field)
}
