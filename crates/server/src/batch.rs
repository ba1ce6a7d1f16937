//! Batches over HTTP: `POST /v1/batch/records` creates many records for one purpose in one
//! transaction; `POST /v1/batch/records/read` reads many. Each item is decided and audited as
//! it would be alone (see `core/src/batch.rs`) and gets its own status; the call itself is
//! `200` once the batch was processed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use custodia_core::{BatchCreate, BatchRead, Call, Page, RecordId, SubjectId, Timestamp, VaultError, name_shaped};
use custodia_types::{
    BatchCreateRequest, BatchCreateResponse, BatchCreateResult, BatchReadRequest, BatchReadResponse, BatchReadResult,
    ErrorBody,
};

use crate::api::honour_gpc;
use crate::extract::{ApiJson, Caller, Gpc};
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/batch/records", post(create_records))
        .route("/v1/batch/records/read", post(read_records))
}

/// A browser's Global Privacy Control signal is honoured for every subject of the batch, as
/// it would be for each item sent alone.
async fn honour_gpc_all<'a>(
    state: &AppState,
    caller: &custodia_core::Principal,
    subjects: impl Iterator<Item = &'a SubjectId>,
    gpc: bool,
) -> AppResult<()> {
    if gpc {
        let distinct: BTreeMap<&str, &SubjectId> = subjects.map(|s| (s.as_str(), s)).collect();
        for subject in distinct.into_values() {
            honour_gpc(state, caller, subject, gpc).await?;
        }
    }
    Ok(())
}

// Input the API's schema refuses is refused whole (400, naming the item): only decisions (the
// gate, the registry, the ledger) are made item by item.

fn bad(code: &'static str, message: String) -> ApiError {
    ApiError::new(axum::http::StatusCode::BAD_REQUEST, code, message)
}

fn check_purpose(purpose: &str) -> AppResult<()> {
    if !name_shaped(purpose) {
        return Err(bad(
            "invalid_purpose",
            "`purpose` must be a registry name (a-z, 0-9 and _, starting with a letter)".into(),
        ));
    }
    Ok(())
}

/// Item `i`'s subject, once its subject id and collection are well formed.
fn item_subject(i: usize, subject: &str, collection: &str) -> AppResult<SubjectId> {
    let subject =
        SubjectId::parse(subject).map_err(|e| bad(e.code, format!("items[{i}].subject_id: {}", e.message)))?;
    if !name_shaped(collection) {
        return Err(bad(
            "invalid_collection",
            format!("items[{i}].collection must be a registry name (a-z, 0-9 and _, starting with a letter)"),
        ));
    }
    Ok(subject)
}

/// An item's status and error.
fn failed(error: VaultError) -> (u16, custodia_types::ErrorDetail) {
    let (status, detail) = ApiError::from(error).detail();
    (status.as_u16(), detail)
}

#[utoipa::path(post, path = "/v1/batch/records", tag = "records",
    request_body = BatchCreateRequest,
    responses((status = 200, description = "One result per item, in order: 201 with its record id, or the error it would have had alone", body = BatchCreateResponse),
              (status = 400, description = "Malformed input, or not 1 to 1000 items", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 413, description = "Body too large", body = ErrorBody),
              (status = 503, description = "The audit log takes no entries", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_records(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiJson(body): ApiJson<BatchCreateRequest>,
) -> AppResult<Json<BatchCreateResponse>> {
    check_purpose(&body.purpose)?;
    let items = body
        .items
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            Ok(BatchCreate {
                subject: item_subject(n, &i.subject_id, &i.collection)?,
                collection: i.collection,
                fields: i.fields,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    honour_gpc_all(&state, &caller, items.iter().map(|i| &i.subject), gpc).await?;
    let call = Call::new(&caller, &body.purpose, Timestamp::now()).with_gpc(gpc);
    let results = state.vault.create_records(&call, &items).await?;
    Ok(Json(BatchCreateResponse {
        results: results
            .into_iter()
            .map(|r| match r {
                Ok(id) => BatchCreateResult {
                    status: 201,
                    record_id: Some(id.as_str().to_owned()),
                    error: None,
                },
                Err(e) => {
                    let (status, error) = failed(e);
                    BatchCreateResult {
                        status,
                        record_id: None,
                        error: Some(error),
                    }
                }
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/batch/records/read", tag = "records",
    request_body = BatchReadRequest,
    responses((status = 200, description = "One result per item, in order: 200 with the records, or the error it would have had alone", body = BatchReadResponse),
              (status = 400, description = "Malformed input, or not 1 to 1000 items", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 413, description = "Body too large", body = ErrorBody),
              (status = 422, description = "An item names a record_id and a page (`after`, `limit`)", body = ErrorBody),
              (status = 503, description = "The audit log takes no entries, too many batch reads are running or waiting, or answers not yet read by their clients fill the server's budget: try again shortly", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn read_records(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiJson(body): ApiJson<BatchReadRequest>,
) -> AppResult<axum::response::Response> {
    check_purpose(&body.purpose)?;
    let items = body
        .items
        .into_iter()
        .enumerate()
        .map(|(n, i)| {
            let subject = item_subject(n, &i.subject_id, &i.collection)?;
            let record_id = match &i.record_id {
                Some(id) => Some(RecordId::parse(id).map_err(|_| {
                    bad(
                        "invalid_record_id",
                        format!("items[{n}].record_id must be rec_ and 32 hex digits"),
                    )
                })?),
                None => None,
            };
            let paged = i.after.is_some() || i.limit.is_some();
            let page = Page::list(i.after.as_deref(), i.limit)
                .map_err(|e| bad("invalid_page", format!("items[{n}]: {}", e.message)))?;
            Ok((
                BatchRead {
                    subject,
                    collection: i.collection,
                    record_id,
                    fields: i.fields,
                    page,
                },
                paged,
            ))
        })
        .collect::<AppResult<Vec<_>>>()?;
    // (the schema allows a record id and a page together: what it cannot say is a 422, once
    // every item is as the schema says)
    if let Some(n) = items.iter().position(|(i, paged)| *paged && i.record_id.is_some()) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_page",
            format!("items[{n}] names a record_id: `after` and `limit` page a list, not one record"),
        ));
    }
    let items: Vec<BatchRead> = items.into_iter().map(|(i, _)| i).collect();
    // A few batches are read at once (each answer may be some tens of MB until it is
    // written out), a few more wait their turn, and beyond those the request is refused
    // before anything of it is recorded.
    let place = state.batch_reads.admit()?;
    honour_gpc_all(&state, &caller, items.iter().map(|i| &i.subject), gpc).await?;
    let _turn = place.turn().await?;
    // what the batch will answer, taken before anything is read (refused batches were read
    // whole, audited as disclosed, then dropped)
    let read = state.record_answers.reserve(&caller.id);
    let call = Call::new(&caller, &body.purpose, Timestamp::now()).with_gpc(gpc);
    let results = state
        .vault
        .read_records(&call, &items, &|bytes| read.take(bytes))
        .await?;
    state.record_answers.answer_read(
        &BatchReadResponse {
            results: results
                .into_iter()
                .map(|r| match r {
                    Ok(page) => BatchReadResult {
                        status: 200,
                        records: Some(page.records),
                        next_after: page.next_after,
                        error: None,
                    },
                    Err(e) => {
                        let (status, error) = failed(e);
                        BatchReadResult {
                            status,
                            records: None,
                            next_after: None,
                            error: Some(error),
                        }
                    }
                })
                .collect(),
        },
        &read,
    )
}
