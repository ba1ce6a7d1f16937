//! Route handlers: parse, call the vault, shape the answer. No policy lives here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use custodia_core::{Call, Page, Principal, RecordId, RecordPage, SubjectId, Timestamp, Vault};
use custodia_types::{
    AuditEvents, AuditPublicKey, Checkpoint, ConsentRequest, ConsistencyProof, CreatePrincipalRequest,
    CreatePrincipalResponse, CreateRecordRequest, CreateRecordResponse, DetokenizeRequest, DetokenizeResponse,
    ErrorBody, Health, InclusionProof, LedgerAppended, ObjectionRequest, PatchRecordRequest, PrincipalList,
    PrivacyState, Record, RecordList, RestrictionRequest, RotateKeyRequest, SaleOptOutRequest, SearchRequest,
    SearchResponse, TokenizeRequest, TokenizeResponse,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, Gpc, KeptTexts, NoBody, OptionalJson, TextJson};
use crate::{ApiError, AppState};

type AppResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/subjects/{subject_id}/records/{collection}",
            post(create_record).get(list_records),
        )
        .route(
            "/v1/subjects/{subject_id}/records/{collection}/{record_id}",
            get(get_record).patch(patch_record).delete(delete_record),
        )
        .route(
            "/v1/subjects/{subject_id}/consents",
            post(record_consent).get(privacy_state),
        )
        .route("/v1/subjects/{subject_id}/objections", post(record_objection))
        .route("/v1/subjects/{subject_id}/sale-opt-out", post(record_sale_opt_out))
        .route("/v1/subjects/{subject_id}/restriction", post(record_restriction))
        .route("/v1/search", post(search))
        .route("/v1/audit/events", get(audit_events))
        .route("/v1/audit/checkpoint", get(audit_checkpoint))
        .route("/v1/audit/public-key", get(audit_public_key))
        .route("/v1/audit/proof/inclusion", get(inclusion_proof))
        .route("/v1/audit/proof/consistency", get(consistency_proof))
        .route("/v1/scan", post(crate::pii::scan))
        .route("/v1/redact", post(crate::pii::redact))
        .route("/v1/tokens", post(tokenize))
        .route("/v1/tokens/detokenize", post(detokenize))
        .route("/v1/principals", post(create_principal).get(list_principals))
        .route("/v1/principals/{principal_id}", delete(revoke_principal))
        .route("/v1/principals/{principal_id}/rotate", post(rotate_principal_key))
        .route("/v1/principals/{principal_id}/client-cert", post(bind_client_cert))
}

/// Query parameters of reads.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadParams {
    /// The purpose of this access.
    #[param(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    purpose: String,
    /// Comma-separated field names to return; default: every field the purpose declares.
    fields: Option<String>,
}

/// Query parameters of lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// The purpose of this access.
    #[param(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    purpose: String,
    /// Comma-separated field names to return; default: every field the purpose declares.
    fields: Option<String>,
    /// The `next_after` of the previous page: only records after it.
    #[param(pattern = "^rec_[0-9a-f]{32}$")]
    after: Option<String>,
    /// At most this many records (1 to 1000; default 1000). A page also ends at the record
    /// that passes about 4 MiB of values, so follow `next_after` until it is absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Query parameters of writes (the purpose may instead be in the body).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PurposeParam {
    /// The purpose of this access (required unless given in the body).
    #[param(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    purpose: Option<String>,
}

/// Query parameters of changes and deletes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RequiredPurpose {
    /// The purpose of this access.
    #[param(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    purpose: String,
}

/// A Global Privacy Control signal from a caller trusted with the subject's ledger (see
/// `Vault::honour_gpc`); data calls carry it in their `Call` and record it past the gate.
pub(crate) async fn honour_gpc(state: &AppState, caller: &Principal, subject: &SubjectId, gpc: bool) -> AppResult<()> {
    if gpc {
        state.vault.honour_gpc(caller, Timestamp::now(), subject).await?;
    }
    Ok(())
}

fn required_purpose(p: Option<String>) -> AppResult<String> {
    match p {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_purpose",
            "every data call must name a purpose (`purpose` query parameter)",
        )),
    }
}

fn requested_fields(fields: Option<&str>) -> Option<Vec<String>> {
    fields.map(|f| {
        f.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "The server and its store answer", body = Health),
              (status = 503, description = "The store does not answer", body = ErrorBody)))]
pub(crate) async fn healthz(State(state): State<Arc<AppState>>) -> AppResult<Json<Health>> {
    state.vault.health().await.map_err(|e| match e.kind {
        // the vault stopped on purpose (altered rows found while it ran): said as it is
        custodia_core::ErrorKind::Unavailable => ApiError::from(e),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store does not answer",
        ),
    })?;
    Ok(Json(Health {
        status: "ok".into(),
        store: state.vault.backend().into(),
    }))
}

#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "This API's OpenAPI 3.1 document, with the registry's purposes and jurisdictions as enums; with a valid API key, its collections and fields too", content_type = "application/json"),
              (status = 401, description = "An API key was presented and is not valid", body = ErrorBody)))]
pub(crate) async fn openapi(
    State(state): State<Arc<AppState>>,
    mut parts: axum::http::request::Parts,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    use axum::extract::FromRequestParts as _;
    // A caller with a valid key gets the registry's collections and fields too; anyone else
    // what the privacy notice publishes (see `openapi::for_registry`). A key that is
    // presented must be valid: a wrong one is refused like anywhere else.
    let document = if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
        Caller::from_request_parts(&mut parts, &state).await?;
        &state.openapi.for_clients
    } else {
        &state.openapi.public
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document.clone(),
    ))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/records/{collection}", tag = "records",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"),
           ("collection" = String, Path, description = "A collection of the registry", pattern = "^[a-z][a-z0-9_]{0,62}$"), PurposeParam),
    request_body = CreateRecordRequest,
    responses((status = 201, description = "Stored, encrypted", body = CreateRecordResponse),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose or field not allowed", body = ErrorBody),
              (status = 404, description = "Unknown collection", body = ErrorBody),
              (status = 413, description = "Body too large", body = ErrorBody),
              (status = 422, description = "Unknown field or invalid value", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_record(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath((subject_id, collection)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PurposeParam>,
    ApiJson(body): ApiJson<CreateRecordRequest>,
) -> AppResult<(StatusCode, Json<CreateRecordResponse>)> {
    let subject = SubjectId::parse(&subject_id)?;
    honour_gpc(&state, &caller, &subject, gpc).await?;
    if q.purpose.as_ref().is_some_and(|p| *p != body.purpose) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "purpose_mismatch",
            "the query and the body name different purposes",
        ));
    }
    let id = state
        .vault
        .create_record(
            &Call::new(&caller, &body.purpose, Timestamp::now()).with_gpc(gpc),
            &subject,
            &collection,
            &body.fields,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateRecordResponse {
            record_id: id.as_str().to_owned(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/records/{collection}", tag = "records",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"), ("collection" = String, Path, description = "A collection of the registry", pattern = "^[a-z][a-z0-9_]{0,62}$"), ListParams),
    responses((status = 200, description = "A page of the subject's records as the purpose may see them, oldest first", body = RecordList),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose or field not allowed", body = ErrorBody),
              (status = 404, description = "Unknown collection", body = ErrorBody),
              (status = 422, description = "Unknown field", body = ErrorBody),
              (status = 503, description = "The audit log takes no entries, or answers not yet read by their clients fill the server's budget: try again shortly", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_records(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath((subject_id, collection)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> AppResult<axum::response::Response> {
    let subject = SubjectId::parse(&subject_id)?;
    honour_gpc(&state, &caller, &subject, gpc).await?;
    let purpose = required_purpose(Some(q.purpose))?;
    let fields = requested_fields(q.fields.as_deref());
    let page = Page::list(q.after.as_deref(), q.limit)?;
    // the page holds its place in the budget of answers unsent as it is read
    let read = state.record_answers.reserve(&caller.id);
    let RecordPage { records, next_after } = state
        .vault
        .list_records(
            &Call::new(&caller, &purpose, Timestamp::now()).with_gpc(gpc),
            &subject,
            &collection,
            fields.as_deref(),
            &page,
            &|bytes| read.take(bytes),
        )
        .await?;
    state
        .record_answers
        .answer_read(&RecordList { records, next_after }, &read)
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/records/{collection}/{record_id}", tag = "records",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"), ("collection" = String, Path, description = "A collection of the registry", pattern = "^[a-z][a-z0-9_]{0,62}$"), ("record_id" = String, Path, description = "A record id", pattern = "^rec_[0-9a-f]{32}$"), ReadParams),
    responses((status = 200, description = "The record as the purpose may see it", body = Record),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose or field not allowed", body = ErrorBody),
              (status = 404, description = "No such record", body = ErrorBody),
              (status = 422, description = "Unknown field", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_record(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath((subject_id, collection, record_id)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> AppResult<Json<Record>> {
    let subject = SubjectId::parse(&subject_id)?;
    honour_gpc(&state, &caller, &subject, gpc).await?;
    let purpose = required_purpose(Some(q.purpose))?;
    let record_id = RecordId::parse(&record_id)?;
    let fields = requested_fields(q.fields.as_deref());
    let record = state
        .vault
        .get_record(
            &Call::new(&caller, &purpose, Timestamp::now()).with_gpc(gpc),
            &subject,
            &collection,
            &record_id,
            fields.as_deref(),
        )
        .await?;
    Ok(Json(record))
}

#[utoipa::path(patch, path = "/v1/subjects/{subject_id}/records/{collection}/{record_id}", tag = "records",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"), ("collection" = String, Path, description = "A collection of the registry", pattern = "^[a-z][a-z0-9_]{0,62}$"), ("record_id" = String, Path, description = "A record id", pattern = "^rec_[0-9a-f]{32}$"), RequiredPurpose),
    request_body = PatchRecordRequest,
    responses((status = 204, description = "Changed"),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose or field not allowed", body = ErrorBody),
              (status = 404, description = "No such record", body = ErrorBody),
              (status = 409, description = "A value would be replaced that other purposes hold and this one does not (`value_held`) or that a purpose keeps past erasure (`record_retained`), or a value replaced or removed under a legal hold (`legal_hold`)", body = ErrorBody),
              (status = 422, description = "Unknown field or invalid value", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn patch_record(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath((subject_id, collection, record_id)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<RequiredPurpose>,
    ApiJson(body): ApiJson<PatchRecordRequest>,
) -> AppResult<StatusCode> {
    let subject = SubjectId::parse(&subject_id)?;
    honour_gpc(&state, &caller, &subject, gpc).await?;
    if body.purpose.as_ref().is_some_and(|p| *p != q.purpose) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "purpose_mismatch",
            "the query and the body name different purposes",
        ));
    }
    let purpose = required_purpose(Some(q.purpose))?;
    let record_id = RecordId::parse(&record_id)?;
    state
        .vault
        .patch_record(
            &Call::new(&caller, &purpose, Timestamp::now()).with_gpc(gpc),
            &subject,
            &collection,
            &record_id,
            &body.fields,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/subjects/{subject_id}/records/{collection}/{record_id}", tag = "records",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"), ("collection" = String, Path, description = "A collection of the registry", pattern = "^[a-z][a-z0-9_]{0,62}$"), ("record_id" = String, Path, description = "A record id", pattern = "^rec_[0-9a-f]{32}$"), RequiredPurpose),
    responses((status = 204, description = "Deleted"),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose not allowed", body = ErrorBody),
              (status = 404, description = "No such record", body = ErrorBody),
              (status = 409, description = "A legal hold covers the subject or the collection (`legal_hold`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_record(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath((subject_id, collection, record_id)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<RequiredPurpose>,
) -> AppResult<StatusCode> {
    let subject = SubjectId::parse(&subject_id)?;
    honour_gpc(&state, &caller, &subject, gpc).await?;
    let purpose = required_purpose(Some(q.purpose))?;
    let record_id = RecordId::parse(&record_id)?;
    state
        .vault
        .delete_record(
            &Call::new(&caller, &purpose, Timestamp::now()).with_gpc(gpc),
            &subject,
            &collection,
            &record_id,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/search", tag = "records",
    request_body = SearchRequest,
    responses((status = 200, description = "Records whose field equals the value, a page at a time in record id order", body = SearchResponse),
              (status = 400, description = "Malformed input, a bad `after` or `limit`, or field not searchable", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose or field not allowed", body = ErrorBody),
              (status = 404, description = "Unknown collection", body = ErrorBody),
              (status = 422, description = "Unknown field or invalid value", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<SearchRequest>,
) -> AppResult<Json<SearchResponse>> {
    let purpose = required_purpose(Some(body.purpose))?;
    let page = Page::search(body.after.as_deref(), body.limit)?;
    let (matches, next_after) = state
        .vault
        .search(
            &Call::new(&caller, &purpose, Timestamp::now()),
            &body.collection,
            &body.field,
            &body.value,
            &page,
        )
        .await?;
    Ok(Json(SearchResponse { matches, next_after }))
}

#[utoipa::path(post, path = "/v1/principals", tag = "principals",
    request_body = CreatePrincipalRequest,
    responses((status = 201, description = "Created; the API key is shown once", body = CreatePrincipalResponse),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage principals", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody),
              (status = 422, description = "Unknown role, or an expiry not in the future", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_principal(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<CreatePrincipalRequest>,
) -> AppResult<(StatusCode, Json<CreatePrincipalResponse>)> {
    let expires_at = custodia_core::parse_expiry(body.expires_at.as_deref())?;
    let (principal_id, key) = state
        .vault
        .create_principal(&caller, Timestamp::now(), &body.name, &body.roles, expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatePrincipalResponse {
            principal_id,
            api_key: key.to_string(),
        }),
    ))
}

#[utoipa::path(post, path = "/v1/principals/{principal_id}/client-cert", tag = "principals",
    request_body = custodia_types::BindClientCertRequest,
    params(("principal_id" = String, Path, description = "Principal id (`prn_...`)")),
    responses((status = 204, description = "Bound: the key works only over TLS with this client certificate"),
              (status = 400, description = "Malformed body or digest", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 422, description = "The caller's own key (`own_key`)", body = ErrorBody),
              (status = 403, description = "Caller may not manage this principal", body = ErrorBody),
              (status = 404, description = "No active principal with that id", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn bind_client_cert(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(principal_id): ApiPath<String>,
    ApiJson(body): ApiJson<custodia_types::BindClientCertRequest>,
) -> AppResult<StatusCode> {
    state
        .vault
        .bind_client_cert(&caller, Timestamp::now(), &principal_id, &body.sha256)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/principals", tag = "principals",
    responses((status = 200, description = "Every principal, without keys", body = PrincipalList),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage principals", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_principals(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> AppResult<Json<PrincipalList>> {
    Ok(Json(PrincipalList {
        principals: state.vault.list_principals(&caller, Timestamp::now()).await?,
    }))
}

#[utoipa::path(delete, path = "/v1/principals/{principal_id}", tag = "principals",
    params(("principal_id" = String, Path)),
    responses((status = 204, description = "Revoked"),
              (status = 400, description = "A request body (the route takes none)", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage principals", body = ErrorBody),
              (status = 404, description = "No such active principal", body = ErrorBody),
              (status = 409, description = "A principal cannot revoke itself", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_principal(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(principal_id): ApiPath<String>,
    _: NoBody,
) -> AppResult<StatusCode> {
    state
        .vault
        .revoke_principal(&caller, Timestamp::now(), &principal_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/principals/{principal_id}/rotate", tag = "principals",
    params(("principal_id" = String, Path, description = "A principal id (`prn_...`) or the key id of its API key")),
    request_body(content = Option<RotateKeyRequest>, description = "`expires_at` (optional; later than the key's current expiry only from a principal that may grant its roles, never from the key itself); `{}` or no body: the key's current expiry (none: never)"),
    responses((status = 200, description = "A new API key, shown once; the old one no longer works", body = CreatePrincipalResponse),
              (status = 400, description = "Malformed body", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage this principal", body = ErrorBody),
              (status = 404, description = "No such active principal", body = ErrorBody),
              (status = 422, description = "An expiry not in the future, or a key asking to outlive its own expiry (`expiry_not_extended`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_principal_key(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<RotateKeyRequest>,
) -> AppResult<Json<CreatePrincipalResponse>> {
    let expires_at = custodia_core::parse_expiry(body.expires_at.as_deref())?;
    let (principal_id, key) = state
        .vault
        .rotate_key(&caller, Timestamp::now(), &id, expires_at)
        .await?;
    Ok(Json(CreatePrincipalResponse {
        principal_id,
        api_key: key.to_string(),
    }))
}

/// A request that appends to a subject's ledger (consent, objection, opt-out, restriction).
trait LedgerRequest {
    async fn append(
        &self,
        vault: &Vault,
        caller: &Principal,
        now: Timestamp,
        subject: &SubjectId,
    ) -> Result<i64, custodia_core::VaultError>;
}

macro_rules! ledger_requests {
    ($($request:ty => $method:ident),* $(,)?) => {$(
        impl LedgerRequest for $request {
            async fn append(
                &self,
                vault: &Vault,
                caller: &Principal,
                now: Timestamp,
                subject: &SubjectId,
            ) -> Result<i64, custodia_core::VaultError> {
                vault.$method(caller, now, subject, self).await
            }
        }
    )*};
}

ledger_requests!(
    ConsentRequest => record_consent,
    ObjectionRequest => record_objection,
    SaleOptOutRequest => record_sale_opt_out,
    RestrictionRequest => record_restriction,
);

/// The one body of the ledger routes: append, then honour a GPC signal if the route takes one.
async fn append_to_ledger(
    state: &AppState,
    caller: &Principal,
    subject_id: &str,
    request: &impl LedgerRequest,
    gpc: bool,
) -> AppResult<(StatusCode, Json<LedgerAppended>)> {
    let subject = SubjectId::parse(subject_id)?;
    let seq = request.append(&state.vault, caller, Timestamp::now(), &subject).await?;
    honour_gpc(state, caller, &subject, gpc).await?;
    Ok((StatusCode::CREATED, Json(LedgerAppended { seq })))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/consents", tag = "consent",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    request_body = ConsentRequest,
    responses((status = 201, description = "Appended to the subject's ledger", body = LedgerAppended),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage consent", body = ErrorBody),
              (status = 422, description = "Unknown purpose, or one not based on consent; consent given without `notice_version`, or one that holds personal data (`text_has_personal_data`) or does not read as a version (`invalid_notice_version`); evidence that is not an IP address or a user agent", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn record_consent(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath(subject_id): ApiPath<String>,
    TextJson(body): TextJson<ConsentRequest>,
) -> AppResult<(StatusCode, Json<LedgerAppended>)> {
    append_to_ledger(&state, &caller, &subject_id, &body, gpc).await
}

/// The notice version stays in the ledger in the clear, past an erasure (the proof that
/// consent was given): a version, never a card or phone number written in its place.
impl KeptTexts for ConsentRequest {
    fn kept_texts(&self) -> Vec<(&'static str, &str)> {
        self.notice_version
            .iter()
            .map(|v| ("notice_version", v.as_str()))
            .collect()
    }
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/consents", tag = "consent",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    responses((status = 200, description = "Current choices and full history", body = PrivacyState),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage consent", body = ErrorBody),
              (status = 503, description = "Answers not yet read by their clients fill the server's budget: try again shortly", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn privacy_state(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiPath(subject_id): ApiPath<String>,
) -> AppResult<axum::response::Response> {
    let subject = SubjectId::parse(&subject_id)?;
    honour_gpc(&state, &caller, &subject, gpc).await?;
    // A long history answers megabytes, read from the ledger whole before it is built: a
    // list page's worth is asked first (a thousand read at once took 10 GB), and what the
    // entries weigh beyond it as they are built (a history of 12,000 entries answered 15 MB
    // whatever the server held).
    let read = state.record_answers.reserve_before(&caller.id, Page::MAX_LIST_BYTES)?;
    let history = state
        .vault
        .privacy_state(&caller, Timestamp::now(), &subject, &|bytes| read.take(bytes))
        .await?;
    state.record_answers.answer_read(&history, &read)
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/objections", tag = "consent",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    request_body = ObjectionRequest,
    responses((status = 201, description = "Appended to the subject's ledger", body = LedgerAppended),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage consent", body = ErrorBody),
              (status = 422, description = "Unknown purpose, or one the right to object does not cover; evidence that is not an IP address or a user agent", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn record_objection(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(subject_id): ApiPath<String>,
    ApiJson(body): ApiJson<ObjectionRequest>,
) -> AppResult<(StatusCode, Json<LedgerAppended>)> {
    append_to_ledger(&state, &caller, &subject_id, &body, false).await
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/sale-opt-out", tag = "consent",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    request_body = SaleOptOutRequest,
    responses((status = 201, description = "Appended to the subject's ledger", body = LedgerAppended),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage consent", body = ErrorBody),
              (status = 422, description = "Evidence that is not an IP address or a user agent (`invalid_evidence`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn record_sale_opt_out(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(subject_id): ApiPath<String>,
    ApiJson(body): ApiJson<SaleOptOutRequest>,
) -> AppResult<(StatusCode, Json<LedgerAppended>)> {
    append_to_ledger(&state, &caller, &subject_id, &body, false).await
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/restriction", tag = "consent",
    params(("subject_id" = String, Path, description = "The data subject's opaque id", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$")),
    request_body = RestrictionRequest,
    responses((status = 201, description = "Appended to the subject's ledger", body = LedgerAppended),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not manage consent", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn record_restriction(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiPath(subject_id): ApiPath<String>,
    ApiJson(body): ApiJson<RestrictionRequest>,
) -> AppResult<(StatusCode, Json<LedgerAppended>)> {
    append_to_ledger(&state, &caller, &subject_id, &body, false).await
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditPage {
    /// Return entries after this sequence number (default 0: from the start).
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// At most this many entries (1-1000, default 100).
    #[serde(default = "default_page")]
    #[param(minimum = 1, maximum = 1000)]
    limit: u32,
    /// Only entries about this subject (matched by its keyed HMAC; the log holds no ids).
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*$"
    )]
    subject_id: Option<String>,
    /// Only entries by this principal id.
    principal: Option<String>,
    /// Only entries of this action, e.g. `record.read`.
    action: Option<String>,
    /// Only entries under this purpose.
    purpose: Option<String>,
    /// Only entries with this decision.
    #[param(pattern = "^(allow|deny)$")]
    decision: Option<String>,
    /// Only entries at or after this time (Unix milliseconds).
    from: Option<i64>,
    /// Only entries before this time (Unix milliseconds).
    to: Option<i64>,
}

fn default_page() -> u32 {
    100
}

#[utoipa::path(get, path = "/v1/audit/events", tag = "audit",
    params(AuditPage),
    responses((status = 200, description = "A page of the audit log, oldest first", body = AuditEvents),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log", body = ErrorBody),
              (status = 503, description = "Answers not yet read by their clients fill the server's budget: try again shortly", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit_events(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<AuditPage>,
) -> AppResult<axum::response::Response> {
    if q.after < 0 || !(1..=1000).contains(&q.limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "`after` must be 0 or more and `limit` from 1 to 1000",
        ));
    }
    if q.decision.as_deref().is_some_and(|d| d != "allow" && d != "deny") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "`decision` must be `allow` or `deny`",
        ));
    }
    let filter = custodia_core::AuditFilter {
        subject_id: q.subject_id,
        conditions: custodia_core::AuditQuery {
            subjects: Vec::new(),
            principal: q.principal,
            action: q.action,
            purpose: q.purpose,
            decision: q.decision,
            from: q.from,
            to: q.to,
        },
    };
    let read = state.record_answers.reserve_before(&caller.id, AUDIT_PAGE_BYTES)?;
    let page = state
        .vault
        .audit_events(&caller, Timestamp::now(), q.after, q.limit, &filter)
        .await?;
    state.record_answers.answer_read(&page, &read)
}

/// About the most a page of the audit log answers (a thousand entries of about 800 bytes).
const AUDIT_PAGE_BYTES: usize = 1 << 20;

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    request_body = TokenizeRequest,
    responses((status = 201, description = "One token per value, in order", body = TokenizeResponse),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Purpose, field or subject's choices do not allow it", body = ErrorBody),
              (status = 404, description = "Unknown collection", body = ErrorBody),
              (status = 409, description = "token_space_exhausted: every token drawn for a value was taken", body = ErrorBody),
              (status = 422, description = "Unknown field or invalid value", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tokenize(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Gpc(gpc): Gpc,
    ApiJson(body): ApiJson<TokenizeRequest>,
) -> AppResult<(StatusCode, Json<TokenizeResponse>)> {
    if let Ok(subject) = SubjectId::parse(&body.subject_id) {
        honour_gpc(&state, &caller, &subject, gpc).await?;
    }
    let tokens = state.vault.tokenize(&caller, Timestamp::now(), &body, gpc).await?;
    Ok((StatusCode::CREATED, Json(TokenizeResponse { tokens })))
}

#[utoipa::path(post, path = "/v1/tokens/detokenize", tag = "tokens",
    request_body = DetokenizeRequest,
    responses((status = 200, description = "The values, in request order; unknown tokens have none", body = DetokenizeResponse),
              (status = 400, description = "Malformed input", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "The caller's role may not see a token's field in plain form", body = ErrorBody),
              (status = 404, description = "A token's collection or subject is gone", body = ErrorBody),
              (status = 422, description = "A token's field is unknown", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn detokenize(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<DetokenizeRequest>,
) -> AppResult<Json<DetokenizeResponse>> {
    Ok(Json(state.vault.detokenize(&caller, Timestamp::now(), &body).await?))
}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "The newest signed checkpoint (C2SP signed note)", body = Checkpoint),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log", body = ErrorBody),
              (status = 404, description = "No checkpoint yet", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit_checkpoint(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
) -> AppResult<Json<Checkpoint>> {
    let cp = state.vault.audit_checkpoint(&caller, Timestamp::now()).await?;
    Ok(Json(cp))
}

#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit",
    responses((status = 200, description = "The Ed25519 key that signs audit checkpoints", body = AuditPublicKey)))]
pub(crate) async fn audit_public_key(State(state): State<Arc<AppState>>) -> Json<AuditPublicKey> {
    use base64::Engine;
    let key = state.vault.audit_public_key();
    Json(AuditPublicKey {
        algorithm: "ed25519".into(),
        name: custodia_core::CHECKPOINT_ORIGIN.into(),
        public_key: base64::engine::general_purpose::STANDARD.encode(key),
        verifier_key: state.vault.audit_verifier_key().to_string(),
    })
}

/// Query of an inclusion proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// 0-based position of the entry.
    #[param(minimum = 0)]
    index: u64,
    /// Size of the tree (a checkpoint's `tree_size`).
    #[param(minimum = 1)]
    tree_size: u64,
}

/// Query of a consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    #[param(minimum = 1)]
    from: u64,
    #[param(minimum = 1)]
    to: u64,
}

fn b64(h: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, description = "RFC 6962 inclusion proof", body = InclusionProof),
              (status = 400, description = "Malformed index or size", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 422, description = "Index not below the size, or a size past the newest checkpoint's", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log", body = ErrorBody),
              (status = 429, description = "Too many proofs from this API key (20 a second, bursts of 100)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn inclusion_proof(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> AppResult<Json<InclusionProof>> {
    let (leaf, proof) = state
        .vault
        .inclusion_proof(&caller, Timestamp::now(), q.index, q.tree_size)
        .await?;
    Ok(Json(InclusionProof {
        index: q.index,
        tree_size: q.tree_size,
        leaf_hash: b64(&leaf),
        proof: proof.iter().map(|h| b64(h)).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, description = "RFC 6962 consistency proof", body = ConsistencyProof),
              (status = 400, description = "Malformed sizes", body = ErrorBody),
              (status = 401, description = "No valid API key", body = ErrorBody),
              (status = 422, description = "Sizes out of order, or past the newest checkpoint's", body = ErrorBody),
              (status = 403, description = "Caller may not read the audit log", body = ErrorBody),
              (status = 429, description = "Too many proofs from this API key (20 a second, bursts of 100)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn consistency_proof(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> AppResult<Json<ConsistencyProof>> {
    let proof = state
        .vault
        .consistency_proof(&caller, Timestamp::now(), q.from, q.to)
        .await?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(|h| b64(h)).collect(),
    }))
}
