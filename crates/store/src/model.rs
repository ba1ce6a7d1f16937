//! Rows as the store sees them: identifiers, ciphertext, digests and times. No plaintext.

/// The key class of a subject's ordinary data: the key an erasure destroys.
pub const DEFAULT_KEY_CLASS: &str = "default";

/// A subject's data key of one class, wrapped by the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectKeyRow {
    pub subject_id: String,
    /// [`DEFAULT_KEY_CLASS`], or a retention class that outlives an erasure.
    pub key_class: String,
    pub key_version: u32,
    pub wrapped_key: Vec<u8>,
    pub created_at: i64,
    /// SHA-256 of the key's first wrapped form, once a root key rotation has re-wrapped it
    /// (`None` before): what stays the same across re-wraps, so a write can tell its key from
    /// one made after an erasure (see [`SubjectKeyRow::identity`]). A digest, never the old
    /// wrap itself, which a retired root key version could still open.
    pub first_wrap: Option<Vec<u8>>,
}

impl SubjectKeyRow {
    /// What names this data key across root key rotations: SHA-256 of its first wrapped
    /// form. A key destroyed by an erasure and a later one of the same subject and class never
    /// share it.
    #[must_use]
    pub fn identity(&self) -> Vec<u8> {
        match &self.first_wrap {
            Some(digest) => digest.clone(),
            None => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.wrapped_key)
                .as_ref()
                .to_vec(),
        }
    }

    /// The root key version this key is wrapped under (from the wrapped form's header).
    #[must_use]
    pub fn root_version(&self) -> Option<u32> {
        root_version_of(&self.wrapped_key)
    }
}

/// The root key version a wrapped key names: bytes 1..5 of its header (format 1).
#[must_use]
pub fn root_version_of(wrapped: &[u8]) -> Option<u32> {
    (wrapped.len() >= 5 && wrapped[0] == 0x01)
        .then(|| u32::from_be_bytes([wrapped[1], wrapped[2], wrapped[3], wrapped[4]]))
}

/// A purpose's hold on a stored value: the value is kept (and readable under that purpose and
/// the purposes compatible with it) while some binding justifies it. Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub purpose: String,
    /// When the value was first bound to the purpose (collected for it).
    pub bound_at: i64,
    /// When the value was last written under the purpose.
    pub renewed_at: i64,
    /// When the subject's ledger ended the binding (a withdrawal, an objection, an opt-out).
    pub ended_at: Option<i64>,
    /// When the binding stops justifying the value; `None`: never by time.
    pub expires_at: Option<i64>,
}

/// One sealed field value and the class of the subject key it is sealed under; with
/// `binding`, the value is held for that purpose alone (a new value), without it the field
/// keeps the bindings it has (a corrected value: Art. 16 changes the value, not why it is held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValue {
    pub field: String,
    pub ciphertext: Vec<u8>,
    pub key_class: String,
    pub binding: Option<Binding>,
}

/// A value written again, unchanged, under a purpose (or a new value, with its `set`): its
/// binding to that purpose is made or renewed, sealed over `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub field: String,
    pub binding: Binding,
    /// The value's bytes once the patch is applied (the stored ones, or those the patch
    /// writes): what the binding's seal covers.
    pub value: Vec<u8>,
    /// A new key class for the value, whose bytes `value` then replaces (sealed under the
    /// class of a purpose that survives erasure, so that the value outlives one).
    pub resealed: Option<String>,
}

/// One blind-index digest of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub field: String,
    pub digest: Vec<u8>,
}

/// A record to insert.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// The data key the fields are sealed under, checked inside the write's transaction: it
    /// must be the subject's stored key of its class when the write happens. A fresh key (the
    /// subject had none when the values were sealed) is stored first unless the subject has
    /// one by then. Otherwise (a concurrent first write won, or an erasure destroyed the
    /// key) the insert fails with
    /// [`StoreError::SubjectKeyConflict`](crate::StoreError::SubjectKeyConflict) and writes
    /// nothing, so no value is ever sealed under a key that was not kept.
    pub sealed_under: SubjectKeyRow,
    /// Whether `sealed_under` was generated for this write (rather than read from the store).
    pub fresh_key: bool,
    pub record_id: String,
    pub subject_id: String,
    pub collection: String,
    pub now: i64,
    pub fields: Vec<FieldValue>,
    pub index: Vec<IndexEntry>,
    /// The subject's activity the write counts as.
    pub activity: Option<Activity>,
}

/// A subject was active at `at` (a write of its data, or an activity reported): its last
/// activity moves there, and each binding of a purpose whose retention runs from the last
/// activity (`renew`: purpose and its new expiry) expires that much later, unless the ledger
/// ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub subject_id: String,
    pub at: i64,
    pub renew: Vec<(String, i64)>,
}

/// A change to a record: values set (replacing old ones and their bindings), values written
/// again unchanged (their binding renewed), fields a purpose lets go of (`unbind`: its binding
/// ends; a value left with none is destroyed), and the index entries of the fields set (their
/// old entries are dropped).
#[derive(Debug, Clone, Default)]
pub struct RecordPatch {
    pub now: i64,
    pub set: Vec<FieldValue>,
    pub renew: Vec<Renewal>,
    /// `(field, purpose)` bindings to end.
    pub unbind: Vec<(String, String)>,
    pub index: Vec<IndexEntry>,
}

/// A stored field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredField {
    pub field: String,
    pub ciphertext: Vec<u8>,
    /// The class of the subject key it is sealed under.
    pub key_class: String,
    pub updated_at: i64,
    /// The purposes holding it, by name.
    pub bindings: Vec<Binding>,
}

/// A stored record with its sealed fields (sorted by field name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub record_id: String,
    pub subject_id: String,
    pub collection: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub fields: Vec<StoredField>,
}

/// A subject's data keys (of every class it has) with the records a read asked for:
/// everything a read needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecords {
    pub keys: Vec<SubjectKeyRow>,
    pub records: Vec<StoredRecord>,
}

impl SubjectRecords {
    /// The subject's stored key of `class`; `None` once it was destroyed (or never made).
    #[must_use]
    pub fn key(&self, class: &str) -> Option<&SubjectKeyRow> {
        self.keys.iter().find(|k| k.key_class == class)
    }
}

/// One entry of the append-only subject ledger: a consent given or withdrawn, an objection,
/// a sale/sharing opt-out, or a restriction, with who recorded it, when, how and on what notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// Assigned by the store on append; ignored when appending.
    pub seq: i64,
    pub subject_id: String,
    /// `consent`, `objection`, `sale_opt_out` or `restriction`.
    pub kind: String,
    pub purpose: Option<String>,
    /// Granted / objected / opted out / restricted (true), or the reverse (false).
    pub value: bool,
    pub notice_version: Option<String>,
    pub method: String,
    /// JSON evidence (keyed hash of the IP address, user agent), never a raw address.
    pub evidence: Option<String>,
    pub principal_id: String,
    pub at: i64,
}

/// One audit log entry: its position and its canonical encoding (identifiers, names and
/// decisions; never values). The store appends; it never changes or deletes an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Assigned by the store on append; ignored when appending.
    pub seq: i64,
    pub at: i64,
    pub entry: String,
    /// The entry's RFC 6962 leaf hash, `SHA-256(0x00 || entry)`, stored so that a verifier can
    /// name an edited entry (the signed checkpoints catch an edit that also rewrote this).
    pub leaf: Vec<u8>,
    /// Columns derived from `entry`, indexed for queries; `audit verify` checks they match it.
    pub index: AuditColumns,
    /// The entry's link (`custodia_audit::chain`), made by the store as it appends the entry
    /// (ignored when appending); none for entries from before links.
    pub link: Option<Vec<u8>>,
    /// The decision the metrics count once this entry is written (none for rows read back or
    /// made outside a decision). Not stored.
    pub metric: Option<custodia_metrics::Decision>,
}

/// The indexed columns of an audit entry (absent in rows written before schema version 6
/// whose text could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditColumns {
    pub principal: Option<String>,
    pub action: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    pub purpose: Option<String>,
    /// The subject's keyed digest (hex), never its id.
    pub subject: Option<String>,
}

impl AuditColumns {
    #[must_use]
    pub fn as_ref(&self) -> AuditColumnsRef<'_> {
        AuditColumnsRef {
            principal: self.principal.as_deref(),
            action: self.action.as_deref(),
            decision: self.decision.as_deref(),
            purpose: self.purpose.as_deref(),
            subject: self.subject.as_deref(),
        }
    }
}

/// [`AuditColumns`], borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditColumnsRef<'a> {
    pub principal: Option<&'a str>,
    pub action: Option<&'a str>,
    pub decision: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub subject: Option<&'a str>,
}

/// [`AuditRow`], borrowed (from the row, or from an [`AuditChunk`](crate::AuditChunk)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRowRef<'a> {
    pub seq: i64,
    pub at: i64,
    pub entry: &'a str,
    pub leaf: &'a [u8],
    pub index: AuditColumnsRef<'a>,
    pub link: Option<&'a [u8]>,
}

impl AuditRow {
    #[must_use]
    pub fn as_ref(&self) -> AuditRowRef<'_> {
        AuditRowRef {
            seq: self.seq,
            at: self.at,
            entry: &self.entry,
            leaf: &self.leaf,
            index: self.index.as_ref(),
            link: self.link.as_deref(),
        }
    }
}

/// Which audit entries a query selects; every condition given must hold. Answered from the
/// indexed columns: by subject through `(subject, seq)`, by principal through `(principal, at)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries about any of these subject digests (empty: any subject).
    pub subjects: Vec<String>,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub purpose: Option<String>,
    pub decision: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
}

/// A full tile of the audit log's Merkle tree (C2SP tlog-tiles): 256 hashes of tree level
/// `8 * level` nodes, from node `256 * idx`, and their root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileRow {
    pub level: i64,
    pub idx: i64,
    /// 256 hashes of 32 bytes.
    pub hashes: Vec<u8>,
    pub root: Vec<u8>,
    /// Level 0: the sequence number of the tile's last entry; 0 above.
    pub last_seq: i64,
}

/// A signed checkpoint of the audit log: the tree of its first `tree_size` entries has `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub tree_size: i64,
    pub root: Vec<u8>,
    pub at: i64,
    /// The C2SP signed note: origin, size, base64 root, blank line, signature line.
    pub note: String,
}

/// A vaulted token: the value it stands for, sealed under its subject's data key, so that
/// erasing the subject kills its tokens too. The token itself is not stored: `name` is a
/// keyed digest of it (rows read from the v0.1 table `tokens_v1` carry the token's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub name: Vec<u8>,
    pub subject_id: String,
    pub collection: String,
    pub field: String,
    /// `random`, `format_preserving` or `deterministic`.
    pub kind: String,
    /// A deterministic token: a keyed digest of the value, the same in every subject's row of
    /// that value. `None`: the token belongs to this row alone.
    pub binding: Option<Vec<u8>>,
    pub ciphertext: Vec<u8>,
    pub created_at: i64,
    /// The purpose the token was handed out under (`None`: a token of schema versions before
    /// 13). A subject's row of a deterministic token keeps the purpose of its first issue.
    pub purpose: Option<String>,
}

/// A principal (a service or person) and the hash of its API key secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub principal_id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub key_id: String,
    pub key_hash: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When its API key stops working; never when `None`.
    pub expires_at: Option<i64>,
    /// When its key last authenticated a request, to the hour (`None`: never, or before
    /// schema version 15).
    pub last_used_at: Option<i64>,
    /// The principal or operator that created it (`None`: `custodia init`, a local command,
    /// or before schema version 15).
    pub created_by: Option<String>,
    /// SHA-256 of the DER client certificate its key must come with (mTLS); `None`: any
    /// connection.
    pub client_cert: Option<Vec<u8>>,
    /// The vault's MAC over the row's id, name, roles, key, times and certificate, under a key
    /// only the vault holds: a row written or changed by hand in the database does not carry
    /// it (`None`: written before schema version 21 and not yet sealed).
    pub seal: Option<Vec<u8>>,
}

impl std::fmt::Debug for PrincipalRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalRow")
            .field("principal_id", &self.principal_id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("key_id", &self.key_id)
            .field("revoked_at", &self.revoked_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("created_by", &self.created_by)
            .finish_non_exhaustive()
    }
}

/// Roles are stored as one comma-separated column; role names never contain commas.
pub(crate) fn join_roles(roles: &[String]) -> String {
    roles.join(",")
}

pub(crate) fn split_roles(s: &str) -> Vec<String> {
    s.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

/// Groups joined `(record columns, field columns)` rows, one per binding of a field (rows of
/// one field adjacent), into records, keeping order; rows without a record (a subject with
/// none) are skipped.
pub(crate) fn group_records(rows: Vec<(Option<StoredRecord>, Option<StoredField>)>) -> Vec<StoredRecord> {
    let mut out: Vec<StoredRecord> = Vec::new();
    for (rec, field) in rows {
        let Some(rec) = rec else { continue };
        match out.last_mut() {
            Some(last) if last.record_id == rec.record_id => {
                let Some(field) = field else { continue };
                match last.fields.last_mut() {
                    Some(same) if same.field == field.field => same.bindings.extend(field.bindings),
                    _ => last.fields.push(field),
                }
            }
            _ => {
                let mut rec = rec;
                rec.fields.extend(field);
                out.push(rec);
            }
        }
    }
    out
}

/// A data subject request (GDPR Art. 12-22, CCPA) and where it stands. Times are Unix
/// milliseconds; the free texts (how it was received and verified, reasons) are the
/// operator's words, never values from the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub request_id: String,
    /// Cleared when the subject is erased; `subject_digest` stays.
    pub subject_id: Option<String>,
    /// The subject's keyed digest, as in the audit log.
    pub subject_digest: String,
    /// `access`, `portability`, `rectification`, `erasure`, `restriction`, `objection`,
    /// `opt_out_sale` or `limit_sensitive`.
    pub kind: String,
    pub jurisdiction: String,
    pub received_via: String,
    /// `received`, `verifying`, `in_progress`, `extended`, `completed` or `denied`.
    pub status: String,
    pub received_at: i64,
    pub acknowledge_by: Option<i64>,
    /// The deadline in force (moved when the request is extended).
    pub due_at: i64,
    pub extended_at: Option<i64>,
    pub extension_reason: Option<String>,
    /// How the requester's identity was verified, by whom (a principal id), when.
    pub verified_via: Option<String>,
    pub verified_by: Option<String>,
    pub verified_at: Option<i64>,
    pub denial_reason: Option<String>,
    /// What fulfilling it did (JSON, no personal data), e.g. an erasure's signed receipt.
    pub outcome: Option<String>,
    pub created_by: String,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    /// When the request record itself is deleted (CCPA §7101: 24 months).
    pub keep_until: i64,
    /// How many times it changed; a change applies only to the version it read.
    pub version: i64,
}

/// What erasing part of a subject's data deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasedRows {
    /// Records deleted whole.
    pub records: u64,
    /// Field values deleted (with their ciphertext).
    pub fields: u64,
    /// Blind-index entries deleted.
    pub index_entries: u64,
    /// Token values deleted (the token names stay reserved).
    pub token_values: u64,
}

impl ErasedRows {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: Self) {
        self.records += other.records;
        self.fields += other.fields;
        self.index_entries += other.index_entries;
        self.token_values += other.token_values;
    }
}

/// A tombstone: an erased subject, by keyed digest only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    pub subject_digest: String,
    pub request_id: Option<String>,
    pub at: i64,
}

/// Where an Art. 19 notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// To be sent at its `next_attempt_at`.
    Pending,
    /// A receiver answered 2xx (final).
    Delivered,
    /// Given up after the last attempt (final).
    Failed,
    /// The recipient has no webhook: nothing is sent (final from the start).
    NoWebhook,
}

impl DeliveryState {
    /// Its name in the `notifications.status` column and on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::NoWebhook => "no_webhook",
        }
    }

    /// The state named `name`, if it is one.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed, Self::NoWebhook]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Whether nothing more happens to a notification in this state.
    #[must_use]
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// A notification to add to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub request_id: String,
    pub recipient: String,
    /// `rectification`, `erasure` or `restriction`.
    pub action: String,
    /// The JSON body to send; `None` when nothing will be sent ([`DeliveryState::NoWebhook`]).
    pub payload: Option<String>,
    /// [`DeliveryState::Pending`] (first attempt due at `created_at`) or
    /// [`DeliveryState::NoWebhook`].
    pub state: DeliveryState,
    pub created_at: i64,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    pub id: i64,
    pub request_id: String,
    pub recipient: String,
    pub action: String,
    /// The body, until the notification is final (it names the subject).
    pub payload: Option<String>,
    pub state: DeliveryState,
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<i64>,
    /// The last failure: an HTTP status or an error class, never a body.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// The outcome of one delivery attempt and where it leaves the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub notification_id: i64,
    pub at: i64,
    /// `delivered` or an error class (`http_status`, `timeout`, `connection`, ...).
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i64>,
    /// The notification's state after this attempt.
    pub state: DeliveryState,
    /// When the next attempt is due ([`DeliveryState::Pending`] only).
    pub next_attempt_at: Option<i64>,
    /// The failure recorded as the notification's `last_error` (`None` when delivered).
    pub error: Option<String>,
}

/// One entry of the append-only delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub seq: i64,
    pub notification_id: i64,
    pub at: i64,
    pub outcome: String,
    pub http_status: Option<i64>,
}
