//! `POST /v1/scan` and `POST /v1/redact`: the PII scanner over HTTP, for roles with the
//! `use_scanner` capability (the decision is audited; the text never is). Scanning reads no
//! vault data; `tokenize` goes through the vault (purpose, policy, audit) like `POST /v1/tokens`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use custodia_core::{Principal, ScannerUse, Timestamp};
use custodia_pii::input::{Collect, Format, scan_reader};
use custodia_pii::redact::{Operator, RedactKey, Redactor};
use custodia_pii::{DEFAULT_MIN_SCORE, Scanner};
use custodia_types::{
    ErrorBody, RedactOperator, RedactRequest, RedactResponse, Redaction, ScanEvidence, ScanFinding, ScanRequest,
    ScanResponse, TokenizeRequest,
};

use crate::extract::{ApiJson, Caller};
use crate::queue::{Place, Queue};
use crate::unsent::Unsent;
use crate::{ApiError, AppState};

/// Scanners by (entities, min score), built once: compiling the recognizers takes longer
/// than scanning a typical request.
pub(crate) struct PiiState {
    scanners: Mutex<HashMap<String, Arc<Scanner>>>,
    key: Arc<RedactKey>,
    /// The scanner operators' free texts are screened with ([`custodia_pii::screen`]).
    screen: std::sync::OnceLock<Option<Scanner>>,
    /// Scans running at once: each holds a text of up to 1 MiB and what it found (a megabyte
    /// of addresses is some 70 MB of findings), so as many run as there are cores, and those
    /// waiting are bounded: beyond, a request is refused (503) to come back later.
    scans: Queue,
    /// Answers made and not yet sent, in KiB: an answer holds its place until the last of it
    /// is written (or the connection dropped), so clients that ask and do not read cannot
    /// make the server hold more than [`UNSENT_ANSWERS_KIB`] (a megabyte of text dense with
    /// personal data answers some 30 MB).
    unsent: Unsent,
}

/// What answers waiting for their reader may hold, in KiB.
const UNSENT_ANSWERS_KIB: usize = 256 * 1024;

/// Scan requests that may wait for a core, beyond those running.
const MAX_WAITING_SCANS: usize = 32;

const MAX_CACHED_SCANNERS: usize = 64;

fn bad(code: &'static str, message: impl Into<String>, field: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::BAD_REQUEST, code, message);
    e.field = Some(field.to_owned());
    e
}

/// A well-formed request whose parts do not go together (an option of another operator, a
/// tokenize without its target): 422.
fn unfit(code: &'static str, message: impl Into<String>, field: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    e.field = Some(field.to_owned());
    e
}

impl PiiState {
    pub(crate) fn new(redaction_key: &[u8; 32]) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            scanners: Mutex::new(HashMap::new()),
            key: Arc::new(RedactKey::from_array(redaction_key)),
            screen: std::sync::OnceLock::new(),
            scans: Queue::new(cores, MAX_WAITING_SCANS, RUNNING),
            unsent: Unsent::new(UNSENT_ANSWERS_KIB),
        }
    }

    /// Every entity type the scanner knows.
    pub(crate) fn entity_names(&self) -> Vec<String> {
        self.scanner(None, None)
            .map(|s| s.entities().iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    /// Whether the default scanner finds personal data in any reading of `text` (an
    /// operator's justification or reason, kept in the clear and so to hold none); see
    /// [`custodia_pii::screen`]. Without a scanner, every text is refused.
    pub(crate) fn holds_personal_data(&self, text: &str) -> bool {
        self.screen
            .get_or_init(|| custodia_pii::screen::scanner().ok())
            .as_ref()
            .is_none_or(|scanner| custodia_pii::screen::holds_personal_data(scanner, text))
    }

    fn scanner(&self, entities: Option<&[String]>, min_score: Option<f64>) -> Result<Arc<Scanner>, ApiError> {
        // checked as sent (an f64), before narrowing: 1.0000000000000002 is out of range
        let wide = min_score.unwrap_or(f64::from(DEFAULT_MIN_SCORE));
        if !(0.0..=1.0).contains(&wide) {
            return Err(bad(
                "invalid_min_score",
                "min_score must be between 0 and 1",
                "min_score",
            ));
        }
        let min = wide as f32;
        let mut names: Vec<String> = entities.map(<[String]>::to_vec).unwrap_or_default();
        names.sort();
        names.dedup();
        if entities.is_some() && names.is_empty() {
            return Err(bad(
                "invalid_entities",
                "entities must name at least one entity type",
                "entities",
            ));
        }
        // `*` (no list) and a list never share a key
        let cache_key = match entities {
            None => format!("{min}|*"),
            Some(_) => format!("{min}|{}", names.join(",")),
        };
        if let Ok(cache) = self.scanners.lock()
            && let Some(s) = cache.get(&cache_key)
        {
            return Ok(Arc::clone(s));
        }
        let mut b = Scanner::builder().min_score(min);
        if entities.is_some() {
            b = b.entities(names.clone());
        }
        let scanner = Arc::new(b.build().map_err(|e| match e {
            custodia_pii::Error::UnknownEntity(name) => bad(
                "unknown_entity",
                format!(
                    "entities names {}, which is not an entity type (see `custodia scan --list-entities`)",
                    custodia_core::quoted_name(&name, false)
                ),
                "entities",
            ),
            _ => bad(
                "invalid_entities",
                "the scanner could not be built for these entities",
                "entities",
            ),
        })?);
        if let Ok(mut cache) = self.scanners.lock() {
            if cache.len() >= MAX_CACHED_SCANNERS {
                cache.clear();
            }
            cache.insert(cache_key, Arc::clone(&scanner));
        }
        Ok(scanner)
    }
}

const RUNNING: &str = "scans are running or waiting";

/// A caller without the capability `what` needs is refused (403, the denial audited) before
/// anything else: it takes none of the scanner's places.
async fn refuse_without(state: &AppState, caller: &Principal, what: ScannerUse) -> Result<(), ApiError> {
    if !state.vault.holds_scanner_capability(caller, what) {
        state.vault.authorize_scanner(caller, Timestamp::now(), what).await?;
    }
    Ok(())
}

/// The text's findings and the stretches read as JSON, scanned as a text file is, when a core
/// is free.
async fn locate(place: Place, scanner: Arc<Scanner>, text: String) -> Result<(String, Collect), ApiError> {
    let _turn = place.turn().await?;
    tokio::task::spawn_blocking(move || {
        let mut sink = Collect::default();
        let result = scan_reader(&scanner, text.as_bytes(), Format::Text, &mut sink);
        custodia_metrics::scanned(text.len(), sink.found.iter().map(|l| &*l.finding.entity_type));
        result.map(|_| (text, sink))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the scan failed"))?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

#[utoipa::path(post, path = "/v1/scan", tag = "pii",
    request_body = ScanRequest,
    responses((status = 200, description = "Findings, in text order, with byte offsets", body = ScanResponse),
              (status = 400, description = "Malformed input or unknown entity type", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "The caller's roles lack the use_scanner capability", body = ErrorBody),
              (status = 413, description = "Body over 1 MiB", body = ErrorBody),
              (status = 503, description = "Too many scans running or waiting, or answers not yet read by their clients: try again shortly", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn scan(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ScanRequest>,
) -> Result<Response, ApiError> {
    refuse_without(&state, &caller, ScannerUse::Scan).await?;
    let scanner = state.pii.scanner(body.entities.as_deref(), body.min_score)?;
    let place = state.pii.scans.admit()?;
    state
        .vault
        .authorize_scanner(&caller, Timestamp::now(), ScannerUse::Scan)
        .await?;
    let (_, found) = locate(place, scanner, body.text).await?;
    let mut counts = BTreeMap::new();
    let findings = found
        .found
        .into_iter()
        .map(|l| {
            *counts.entry(l.finding.entity_type.to_string()).or_insert(0) += 1;
            ScanFinding {
                entity_type: l.finding.entity_type.to_string(),
                start: l.finding.start as u64,
                end: l.finding.end as u64,
                line: l.line,
                column: l.column,
                score: l.finding.score,
                evidence: l
                    .finding
                    .evidence
                    .iter()
                    .map(|e| ScanEvidence {
                        kind: serde_json::to_value(e.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        detail: e.detail.to_string(),
                    })
                    .collect(),
            }
        })
        .collect();
    state.pii.unsent.answer(&caller.id, &ScanResponse { findings, counts })
}

/// A `tokenize` operator's target in the vault.
struct TokenTarget {
    subject_id: String,
    collection: String,
    field: String,
    purpose: String,
    kind: Option<String>,
}

fn operator(spec: &RedactOperator, at: &str) -> Result<(Operator, Option<TokenTarget>), ApiError> {
    let field = |f: &str| format!("{at}.{f}");
    let op = match spec.kind.as_str() {
        "mask" if spec.keep_last.is_some_and(|n| n > 64) => {
            return Err(bad(
                "invalid_operator",
                "keep_last must be at most 64",
                &field("keep_last"),
            ));
        }
        "mask" => Operator::Mask {
            keep_last: spec.keep_last.unwrap_or(0).min(64) as usize,
        },
        other => Operator::parse(other).map_err(|_| {
            bad(
                "invalid_operator",
                format!(
                    "operator {} is not one of mask, mask:N, replace, hash, encrypt, tokenize, keep",
                    custodia_core::quoted_name(other, false)
                ),
                &field("type"),
            )
        })?,
    };
    if spec.keep_last.is_some() && !matches!(op, Operator::Mask { .. }) {
        return Err(unfit(
            "invalid_operator",
            "keep_last applies to mask only",
            &field("keep_last"),
        ));
    }
    let tokenize_only = [
        &spec.subject_id,
        &spec.collection,
        &spec.field,
        &spec.purpose,
        &spec.token_kind,
    ];
    if op != Operator::Tokenize {
        if tokenize_only.iter().any(|v| v.is_some()) {
            return Err(unfit(
                "invalid_operator",
                "subject_id, collection, field, purpose and token_kind apply to tokenize only",
                at,
            ));
        }
        return Ok((op, None));
    }
    let need = |v: &Option<String>, name: &str| {
        v.clone()
            .ok_or_else(|| unfit("invalid_operator", format!("tokenize needs {name}"), &field(name)))
    };
    let target = TokenTarget {
        subject_id: need(&spec.subject_id, "subject_id")?,
        collection: need(&spec.collection, "collection")?,
        field: need(&spec.field, "field")?,
        purpose: need(&spec.purpose, "purpose")?,
        kind: spec.token_kind.clone(),
    };
    Ok((op, Some(target)))
}

#[utoipa::path(post, path = "/v1/redact", tag = "pii",
    request_body = RedactRequest,
    responses((status = 200, description = "The redacted text and each replacement", body = RedactResponse),
              (status = 400, description = "Malformed input, unknown entity type or operator", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "No use_scanner capability, no use_redaction_key for hash or encrypt, or (tokenize) the caller may not tokenize that field for that purpose", body = ErrorBody),
              (status = 413, description = "Body over 1 MiB", body = ErrorBody),
              (status = 503, description = "Too many scans running or waiting, or answers not yet read by their clients: try again shortly", body = ErrorBody),
              (status = 422, description = "tokenize: a value is invalid for the field's type", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn redact(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    crate::extract::Gpc(gpc): crate::extract::Gpc,
    ApiJson(body): ApiJson<RedactRequest>,
) -> Result<Response, ApiError> {
    refuse_without(&state, &caller, ScannerUse::Redact).await?;
    let scanner = state.pii.scanner(body.entities.as_deref(), body.min_score)?;
    let mut ops = HashMap::new();
    let mut targets: HashMap<String, TokenTarget> = HashMap::new();
    for (entity, spec) in &body.operators {
        if !scanner.entities().iter().any(|e| **e == **entity) {
            // Not an entity type at all: 400 (the document lists them); one this scan does
            // not look for: 422.
            let known = state.pii.entity_names().contains(entity);
            let message = format!(
                "operators names {}, which this scan does not look for",
                custodia_core::quoted_name(entity, known)
            );
            return Err(if known {
                unfit("unknown_entity", message, "operators")
            } else {
                bad("unknown_entity", message, "operators")
            });
        }
        let (op, target) = operator(spec, &format!("operators.{entity}"))?;
        if let Some(t) = target {
            targets.insert(entity.clone(), t);
        }
        ops.insert(entity.clone(), op);
    }
    let default = match &body.default_operator {
        None => Operator::Replace,
        Some(spec) => match operator(spec, "default_operator")? {
            (_, Some(_)) => {
                return Err(unfit(
                    "invalid_operator",
                    "tokenize needs a field: give it per entity type",
                    "default_operator",
                ));
            }
            (op, None) => op,
        },
    };
    let key = match &body.key_id {
        None => Arc::clone(&state.pii.key),
        Some(id) => Arc::new(
            state
                .pii
                .key
                .for_dataset(id)
                .map_err(|e| bad("invalid_key_id", e.to_string(), "key_id"))?,
        ),
    };
    let keyed = |op: &Operator| matches!(op, Operator::Hash | Operator::Encrypt);
    let uses_key = ops.values().any(keyed) || keyed(&default);
    if uses_key {
        refuse_without(&state, &caller, ScannerUse::RedactionKey).await?;
    }
    let redactor =
        Redactor::new(ops, default, Some(key)).map_err(|e| bad("invalid_operator", e.to_string(), "operators"))?;
    // authorized (and audited) once the request is known good and has its place (see `Place`)
    let place = state.pii.scans.admit()?;
    state
        .vault
        .authorize_scanner(&caller, Timestamp::now(), ScannerUse::Redact)
        .await?;
    // the server's key hashes what a caller guesses as well as what it found: a role that may
    // scan and mask is no oracle for it
    if uses_key {
        state
            .vault
            .authorize_scanner(&caller, Timestamp::now(), ScannerUse::RedactionKey)
            .await?;
    }
    let (text, located) = locate(place, scanner, body.text).await?;
    let found: Vec<_> = located.found.into_iter().map(|l| l.finding).collect();
    let json = located.json;

    // First pass (only when something is tokenized): which values go to the vault, in order.
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !targets.is_empty() {
        let mut record = |entity: &str, value: &[u8]| {
            wanted
                .entry(entity.to_owned())
                .or_default()
                .push(String::from_utf8_lossy(value).into_owned());
            Ok(String::new())
        };
        redactor
            .redact(text.as_bytes(), &found, &json, Some(&mut record))
            .map_err(|e| bad("invalid_operator", e.to_string(), "operators"))?;
    }
    let mut tokens: HashMap<String, VecDeque<String>> = HashMap::new();
    for (entity, values) in wanted {
        let Some(t) = targets.get(&entity) else { continue };
        let mut out = VecDeque::new();
        for chunk in values.chunks(custodia_core::MAX_TOKEN_BATCH) {
            out.extend(tokenize(&state, &caller, t, chunk.to_vec(), gpc).await?);
        }
        tokens.insert(entity, out);
    }
    // Second pass: the same replacements, with the tokens.
    let mut take = |entity: &str, _: &[u8]| {
        tokens
            .get_mut(entity)
            .and_then(VecDeque::pop_front)
            .ok_or_else(|| custodia_pii::Error::Invalid("a token went missing".into()))
    };
    let (out, applied) = redactor
        .redact(text.as_bytes(), &found, &json, Some(&mut take))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    // Keyed operators are audited (operator and entity type, never a value) before the
    // redacted text leaves.
    let keyed: std::collections::BTreeSet<(&'static str, String)> = applied
        .iter()
        .filter(|a| redactor.operator_for(&a.entity_type).needs_key())
        .map(|a| (a.operator, a.entity_type.clone()))
        .collect();
    if !keyed.is_empty() {
        state
            .vault
            .audit_keyed_redaction(&caller, Timestamp::now(), &keyed, body.key_id.as_deref())
            .await?;
    }
    state.pii.unsent.answer(
        &caller.id,
        &RedactResponse {
            text: String::from_utf8_lossy(&out).into_owned(),
            redactions: applied
                .into_iter()
                .map(|a| Redaction {
                    entity_type: a.entity_type,
                    start: a.start as u64,
                    end: a.end as u64,
                    operator: a.operator.to_owned(),
                })
                .collect(),
        },
    )
}

/// Tokens of `values` for the redaction's `tokenize` target `t`, the request's GPC signal
/// honoured as `POST /v1/tokens` honours it.
async fn tokenize(
    state: &AppState,
    caller: &Principal,
    t: &TokenTarget,
    values: Vec<String>,
    gpc: bool,
) -> Result<Vec<String>, ApiError> {
    let req = TokenizeRequest {
        subject_id: t.subject_id.clone(),
        collection: t.collection.clone(),
        field: t.field.clone(),
        purpose: t.purpose.clone(),
        values,
        kind: t.kind.clone(),
        keep_last4: false,
    };
    if let Ok(subject) = custodia_core::SubjectId::parse(&req.subject_id) {
        crate::api::honour_gpc(state, caller, &subject, gpc).await?;
    }
    Ok(state.vault.tokenize(caller, Timestamp::now(), &req, gpc).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scan runs when its place in the queue gets its turn (the queue's own rules are
    /// `queue`'s tests).
    #[tokio::test]
    async fn an_admitted_scan_runs() -> Result<(), String> {
        let pii = PiiState::new(&[7; 32]);
        let scanner = pii.scanner(None, None).map_err(|e| e.message)?;
        let place = pii.scans.admit().map_err(|e| e.message)?;
        let (_, found) = locate(place, scanner, "jo@example.com".to_owned())
            .await
            .map_err(|e| e.message)?;
        assert_eq!(found.found.len(), 1);
        Ok(())
    }
}
