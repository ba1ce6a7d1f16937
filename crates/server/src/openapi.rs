//! The OpenAPI document, generated from the handlers' annotations and the wire types.

use std::sync::OnceLock;

use custodia_types::{
    CreatePrincipalRequest, CreatePrincipalResponse, CreateRecordRequest, CreateRecordResponse, ErrorBody, ErrorDetail,
    Health, PatchRecordRequest, PrincipalInfo, PrincipalList, Record, RecordList, RotateKeyRequest, SearchMatch,
    SearchRequest, SearchResponse,
};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custodia", description = "Customer-data privacy vault: purpose-bound, encrypted personal data."),
    paths(
        api::healthz, api::openapi, api::create_record, api::list_records, api::get_record, api::patch_record,
        api::delete_record, api::search, api::record_consent, api::privacy_state, api::record_objection,
        api::record_sale_opt_out, api::record_restriction, api::audit_events, api::audit_checkpoint, api::audit_public_key, api::inclusion_proof, api::consistency_proof, api::tokenize, api::detokenize, api::create_principal, api::list_principals, api::revoke_principal, api::rotate_principal_key, api::bind_client_cert,
        crate::pii::scan, crate::pii::redact,
        crate::requests::create_request, crate::requests::list_requests, crate::requests::get_request,
        crate::requests::verify_request, crate::requests::extend_request, crate::requests::deny_request,
        crate::requests::fulfil_request,
        crate::retention::place_hold, crate::retention::list_holds, crate::retention::release_hold,
        crate::retention::retention_report, crate::retention::report_activity,
        crate::web::notice_json, crate::web::notice_versions, crate::web::notice_version_json, crate::web::ropa, crate::web::create_portal_link,
        crate::operators::create_operator, crate::operators::list_operators, crate::operators::enrol,
        crate::operators::confirm_enrolment, crate::operators::login, crate::operators::logout,
        crate::operators::record_training, crate::operators::disable_operator, crate::operators::key_status,
        crate::operators::rotate_keys, crate::operators::retire_key_version, crate::operators::break_glass,
        crate::operators::access_review, crate::assess::assessment,
        crate::batch::create_records, crate::batch::read_records,
        crate::incidents::open_incident, crate::incidents::incident_register, crate::incidents::incident,
        crate::incidents::add_entry, crate::incidents::set_phase, crate::incidents::assess_risk,
        crate::incidents::scope, crate::incidents::notification_sent, crate::incidents::contain,
        crate::incidents::authority_draft, crate::incidents::subject_draft,
        crate::metrics::read_metrics,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, CreateRecordRequest, CreateRecordResponse, PatchRecordRequest, Record, RecordList,
        SearchRequest, SearchMatch, SearchResponse, CreatePrincipalRequest, CreatePrincipalResponse, RotateKeyRequest, PrincipalInfo,
        PrincipalList, Health, custodia_types::EvidenceInput, custodia_types::ConsentRequest,
        custodia_types::ObjectionRequest, custodia_types::SaleOptOutRequest, custodia_types::RestrictionRequest,
        custodia_types::LedgerAppended, custodia_types::LedgerEntry, custodia_types::ConsentState,
        custodia_types::PrivacyState, custodia_types::AuditEvents, custodia_types::AuditEventView, custodia_types::Checkpoint, custodia_types::AuditPublicKey, custodia_types::InclusionProof,
        custodia_types::ConsistencyProof, custodia_types::TokenizeRequest,
        custodia_types::TokenizeResponse, custodia_types::DetokenizeRequest, custodia_types::DetokenizeResponse,
        custodia_types::DetokenizedValue, custodia_types::ScanRequest, custodia_types::ScanResponse,
        custodia_types::ScanFinding, custodia_types::ScanEvidence, custodia_types::RedactRequest,
        custodia_types::RedactOperator, custodia_types::RedactResponse, custodia_types::Redaction,
        custodia_types::NewSubjectRequest, custodia_types::VerifyRequest, custodia_types::ReasonRequest,
        custodia_types::FulfilRequest, custodia_types::Correction, custodia_types::SubjectRequestView,
        custodia_types::SubjectRequestList, custodia_types::Extension, custodia_types::Verification,
        custodia_types::Denial, custodia_types::NotificationStatus, custodia_types::ErasureReceipt,
        custodia_types::ErasedCounts, custodia_types::KeptData,
        custodia_types::BatchCreateRequest, custodia_types::BatchCreateItem, custodia_types::BatchCreateResponse,
        custodia_types::BatchCreateResult, custodia_types::BatchReadRequest, custodia_types::BatchReadItem,
        custodia_types::BatchReadResponse, custodia_types::BatchReadResult,
        custodia_types::NewHold, custodia_types::ReleaseHold, custodia_types::Hold, custodia_types::HoldList,
        custodia_types::ActivityReport, custodia_types::RetentionReport, custodia_types::HeldLine,
        custodia_types::ExpiringWindow, custodia_types::SweepReport, custodia_types::SweepLine,
        custodia_types::PortalLinkRequest, custodia_types::PortalLinkResponse,
        custodia_types::NoticeVersion, custodia_types::NoticeVersions,
        custodia_types::CreateOperatorRequest, custodia_types::CreateOperatorResponse, custodia_types::EnrolRequest,
        custodia_types::EnrolResponse, custodia_types::ConfirmEnrolmentRequest, custodia_types::LoginRequest,
        custodia_types::LoginResponse, custodia_types::TrainingRequest, custodia_types::CourseStatus,
        custodia_types::OperatorInfo, custodia_types::OperatorList, custodia_types::KeyStatus,
        custodia_types::KeyVersionStatus, custodia_types::RotationProgress, custodia_types::BindClientCertRequest, custodia_types::BreakGlassRequest,
        custodia_types::BreakGlassGrant, custodia_types::AccessReview, custodia_types::PrincipalReview,
        custodia_types::Assessment, custodia_types::AssessmentCheck, custodia_types::Severity,
        custodia_types::OpenIncidentRequest, custodia_types::OpenIncidentResponse, custodia_types::IncidentSummary,
        custodia_types::IncidentRegister, custodia_types::Incident, custodia_types::IncidentTask,
        custodia_types::TimelineEntry, custodia_types::NotificationDuty, custodia_types::IncidentEntryRequest,
        custodia_types::IncidentPhaseRequest, custodia_types::IncidentRiskRequest, custodia_types::ScopeRequest,
        custodia_types::Scope, custodia_types::ScopeSummary, custodia_types::Exposure,
        custodia_types::NotificationSentRequest, custodia_types::ContainmentRequest,
        custodia_types::ContainmentResponse,
    )),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API key")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document as JSON (built once).
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
    .clone()
}
