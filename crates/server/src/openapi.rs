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
        custodia_types::FulfilRequest, custodia_types::FulfilAnswer, custodia_types::Correction, custodia_types::SubjectRequestView,
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
        serde_json::to_value(ApiDoc::openapi())
            .and_then(|mut doc| {
                plain_optional_bodies(&mut doc);
                bodies_have_a_limit(&mut doc);
                serde_json::to_string_pretty(&doc)
            })
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
    .clone()
}

/// Every operation of the document (each method of each path).
fn operations(doc: &mut serde_json::Value) -> impl Iterator<Item = &mut serde_json::Value> {
    use serde_json::Value;
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
}

/// Every operation that takes a body answers 413 `payload_too_large` past
/// [`crate::MAX_BODY_BYTES`], as the server does for all of them (most did not say so: a body
/// the schema allows, of 2 MiB, got an answer the document did not name; review).
fn bodies_have_a_limit(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    for op in operations(doc) {
        if op.get("requestBody").is_none() {
            continue;
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            responses.entry("413").or_insert_with(|| {
                json!({
                    "description": format!("The body is larger than {} bytes", crate::MAX_BODY_BYTES),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                })
            });
        }
    }
}

/// Each optional request body written as the schema it takes (optional by `required` alone),
/// not as utoipa writes an `Option<T>` body, `oneOf: [null, T]`: openapi-python-client then
/// sends its "unset" marker as the JSON of a call made without a body, and fails.
fn plain_optional_bodies(doc: &mut serde_json::Value) {
    use serde_json::Value;
    for op in operations(doc) {
        let Some(body) = op.get_mut("requestBody") else {
            continue;
        };
        if body.get("required") == Some(&Value::Bool(true)) {
            continue;
        }
        let media = body
            .get_mut("content")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|content| content.values_mut());
        for schema in media.filter_map(|m| m.get_mut("schema")) {
            let plain = match schema.get("oneOf").and_then(Value::as_array).map(Vec::as_slice) {
                Some([a, b]) if a.get("type") == Some(&Value::from("null")) => Some(b.clone()),
                Some([a, b]) if b.get("type") == Some(&Value::from("null")) => Some(a.clone()),
                _ => None,
            };
            if let Some(plain) = plain {
                *schema = plain;
            }
        }
    }
}

/// The documents a server serves: [`openapi_json`]'s, told what its registry declares, so
/// that a request valid by the schema is one the server can accept. Parameters and
/// request-body properties named after a vocabulary get its names as an `enum`, and request
/// times get `format: date-time`. Response schemas are left as they are, and so are the audit
/// log's filters: answers and the log may name what the registry no longer declares (an old
/// entry's purpose is still a valid filter).
///
/// Two documents, because not every name is public. Anyone may read what the privacy notice
/// already publishes (purposes, jurisdictions), the scanner's entity types and the fixed
/// vocabularies of [`custodia_core::vocabulary`] (`public`); the collections and fields,
/// which tell what personal data is kept and how it is named, go only to a caller with a
/// valid key (`for_clients`). Roles, breach laws and training courses are in neither: a
/// service key has no need to list them, and a request naming an unknown one is a 422.
pub(crate) struct Documents {
    pub(crate) public: String,
    pub(crate) for_clients: String,
}

pub(crate) fn for_registry(registry: &custodia_registry::Registry, entities: Vec<String>) -> Documents {
    use custodia_core::vocabulary as fixed;
    use custodia_registry::LegalBasis;
    let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let purposes = |keep: &dyn Fn(&custodia_registry::Purpose) -> bool| {
        registry
            .purposes
            .values()
            .filter(|p| keep(p))
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    let mut public = Vocabulary::default();
    public.scalar(None, "purpose", purposes(&|_| true));
    public.scalar(None, "jurisdiction", registry.jurisdictions.keys().cloned().collect());
    public.list(None, "purposes", purposes(&|_| true));
    public.list(None, "entities", entities.clone());
    public.scalar(
        Some("ConsentRequest"),
        "purpose",
        purposes(&|p| p.legal_basis == LegalBasis::Consent),
    );
    public.scalar(Some("ObjectionRequest"), "purpose", purposes(&|p| p.objectable()));
    for schema in ["ConsentRequest", "ObjectionRequest", "RestrictionRequest"] {
        public.scalar(Some(schema), "method", owned(fixed::CHOICE_METHODS));
    }
    public.scalar(Some("SaleOptOutRequest"), "method", owned(fixed::OPT_OUT_METHODS));
    public.scalar(Some("NewSubjectRequest"), "type", owned(&fixed::request_types()));
    public.scalar(Some("NewSubjectRequest"), "received_via", owned(fixed::RECEIVED_VIA));
    public.scalar(Some("IncidentEntryRequest"), "kind", owned(fixed::ENTRY_KINDS));
    public.scalar(Some("IncidentPhaseRequest"), "phase", owned(&fixed::PHASES));
    public.scalar(Some("IncidentRiskRequest"), "risk", owned(fixed::RISKS));
    public.scalar(Some("ContainmentRequest"), "action", owned(fixed::CONTAINMENT_ACTIONS));
    public.scalar(Some("TokenizeRequest"), "kind", owned(fixed::TOKEN_KINDS));
    public.scalar(Some("RedactOperator"), "token_kind", owned(fixed::TOKEN_KINDS));
    public.scalar(
        Some("RedactOperator"),
        "type",
        owned(custodia_pii::redact::Operator::NAMES),
    );
    public.keys(Some("RedactRequest"), "operators", entities);

    let fields: std::collections::BTreeSet<&String> =
        registry.collections.values().flat_map(|c| c.fields.keys()).collect();
    let searchable: std::collections::BTreeSet<&String> = registry
        .collections
        .values()
        .flat_map(|c| c.fields.iter().filter(|(_, f)| f.searchable).map(|(name, _)| name))
        .collect();
    let fields: Vec<String> = fields.into_iter().cloned().collect();
    let mut clients = public.clone();
    clients.scalar(None, "collection", registry.collections.keys().cloned().collect());
    clients.scalar(None, "field", fields.clone());
    clients.keys(Some("CreateRecordRequest"), "fields", fields.clone());
    clients.keys(Some("PatchRecordRequest"), "fields", fields);
    clients.scalar(
        Some("SearchRequest"),
        "field",
        searchable.into_iter().cloned().collect(),
    );
    Documents {
        public: annotated(&public),
        for_clients: annotated(&clients),
    }
}

fn annotated(vocabulary: &Vocabulary) -> String {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&openapi_json()) else {
        return openapi_json();
    };
    annotate(&mut doc, vocabulary);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| openapi_json())
}

/// What a name may be: one string, each item of a list, or each key of a map.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar,
    List,
    Keys,
}

/// The names a property or parameter may hold: by its name in one schema (`Some(schema)`),
/// else by its name wherever it appears (`None`: parameters and every request schema).
#[derive(Clone, Default)]
struct Vocabulary {
    rules: Vec<(Option<&'static str>, &'static str, Shape, Vec<String>)>,
}

impl Vocabulary {
    fn scalar(&mut self, schema: Option<&'static str>, name: &'static str, names: Vec<String>) {
        self.rules.push((schema, name, Shape::Scalar, names));
    }

    fn list(&mut self, schema: Option<&'static str>, name: &'static str, names: Vec<String>) {
        self.rules.push((schema, name, Shape::List, names));
    }

    fn keys(&mut self, schema: Option<&'static str>, name: &'static str, names: Vec<String>) {
        self.rules.push((schema, name, Shape::Keys, names));
    }

    /// The names for `name` in `schema`: its own rule first, else the general one. An empty
    /// list (a registry with no purpose based on consent, say) constrains nothing: an `enum`
    /// must have a member, and the server's 422 says why.
    fn names(&self, schema: Option<&str>, name: &str, shape: Shape) -> Option<&[String]> {
        let find = |scope: Option<&str>| {
            self.rules
                .iter()
                .find(|(s, n, sh, _)| *s == scope && *n == name && *sh == shape)
                .map(|(_, _, _, names)| names.as_slice())
        };
        schema
            .and_then(|s| find(Some(s)))
            .or_else(|| find(None))
            .filter(|names| !names.is_empty())
    }
}

/// Maps a request must not send empty (utoipa has no `min_properties` on a field).
const NON_EMPTY_MAPS: &[(&str, &str)] = &[
    ("CreateRecordRequest", "fields"),
    ("PatchRecordRequest", "fields"),
    ("Correction", "fields"),
];

fn annotate(doc: &mut serde_json::Value, vocabulary: &Vocabulary) {
    use serde_json::Value;
    // The component schemas request bodies use, directly or through other schemas.
    let mut requested = std::collections::BTreeSet::new();
    let mut pending: Vec<String> = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            let history = path.starts_with("/v1/audit/");
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                for parameter in operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let name = parameter
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    if history {
                        continue;
                    }
                    if let Some(schema) = parameter.get_mut("schema") {
                        constrain(schema, None, &name, vocabulary);
                    }
                }
                if let Some(body) = operation.get("requestBody") {
                    collect_refs(body, &mut pending);
                }
            }
        }
    }
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    while let Some(name) = pending.pop() {
        if !requested.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = schemas.get(&name) {
            collect_refs(schema, &mut pending);
        }
    }
    for (schema, property) in NON_EMPTY_MAPS {
        if let Some(map) = schemas
            .get_mut(*schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
            .and_then(Value::as_object_mut)
        {
            map.insert("minProperties".into(), 1.into());
        }
    }
    for name in &requested {
        let Some(properties) = schemas
            .get_mut(name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (property, schema) in properties.iter_mut() {
            constrain(schema, Some(name), property, vocabulary);
        }
    }
}

/// The names of the component schemas `value` refers to.
fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Adds to the schema of the parameter or property `name` (of `schema_name`, for a
/// property) what the vocabulary says of it.
fn constrain(schema: &mut serde_json::Value, schema_name: Option<&str>, name: &str, vocabulary: &Vocabulary) {
    use serde_json::{Value, json};
    let Some(object) = schema.as_object_mut() else { return };
    let types: Vec<&str> = match object.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let nullable = types.contains(&"null");
    if types.contains(&"string") {
        if let Some(names) = vocabulary.names(schema_name, name, Shape::Scalar) {
            let mut choices: Vec<Value> = names.iter().cloned().map(Value::String).collect();
            if nullable {
                choices.push(Value::Null);
            }
            object.insert("enum".into(), Value::Array(choices));
        } else if name.ends_with("_at") || name == "due_before" {
            object.insert("format".into(), json!("date-time"));
        }
    } else if types.contains(&"array")
        && let Some(names) = vocabulary.names(schema_name, name, Shape::List)
    {
        object.insert("items".into(), json!({"type": "string", "enum": names}));
        object.insert("minItems".into(), json!(1));
    } else if types.contains(&"object")
        && let Some(names) = vocabulary.names(schema_name, name, Shape::Keys)
    {
        object.insert("propertyNames".into(), json!({"enum": names}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents() -> (serde_json::Value, serde_json::Value) {
        let registry = custodia_registry::Registry::parse("registry.toml", custodia_registry::EXAMPLE_REGISTRY)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let docs = for_registry(&registry, vec!["EMAIL_ADDRESS".into(), "PHONE_NUMBER".into()]);
        (
            serde_json::from_str(&docs.public).unwrap(),
            serde_json::from_str(&docs.for_clients).unwrap(),
        )
    }

    fn served() -> serde_json::Value {
        documents().1
    }

    #[test]
    fn every_body_has_its_limit_declared() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap();
        let mut with_body = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("requestBody").is_some() {
                    with_body += 1;
                    assert!(op["responses"].get("413").is_some(), "{method} {path}");
                }
            }
        }
        assert!(with_body > 20, "{with_body}");
    }

    #[test]
    fn bodies_that_may_be_left_out_are_not_required() {
        let doc = served();
        let fulfil = &doc["paths"]["/v1/requests/{request_id}/fulfil"]["post"]["requestBody"];
        assert!(fulfil.is_object(), "{fulfil}");
        assert_ne!(
            fulfil["required"], true,
            "fulfil takes no body for most types: {fulfil}"
        );
        let create = &doc["paths"]["/v1/requests"]["post"]["requestBody"];
        assert_eq!(create["required"], true, "{create}");
        // each optional body is its plain schema: a nullable one made the generated Python
        // client send its "unset" marker as the body of a call made without one
        let mut optional = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let body = &op["requestBody"];
                if body.is_null() || body["required"] == true {
                    continue;
                }
                optional += 1;
                let schema = &body["content"]["application/json"]["schema"];
                assert!(schema["$ref"].is_string(), "{method} {path}: {schema}");
            }
        }
        assert!(optional >= 2, "fulfil and a key's rotation take an optional body");
        assert_eq!(
            fulfil["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/FulfilRequest"
        );
    }

    #[test]
    fn anyone_sees_only_what_the_notice_publishes() {
        let (public, _) = documents();
        let text = public.to_string();
        // Field, collection, role, course and law names stay out of the public document.
        for internal in [
            "\"birth_date\"",
            "\"customers\"",
            "\"key_manager\"",
            "\"privacy_basics\"",
            "\"us_ca\"",
        ] {
            assert!(!text.contains(internal), "{internal} in the public document");
        }
        let purposes = &parameter(
            &public,
            "/v1/subjects/{subject_id}/records/{collection}",
            "get",
            "purpose",
        )["schema"]["enum"];
        assert!(
            purposes.as_array().unwrap().contains(&"order_fulfillment".into()),
            "{purposes}"
        );
    }

    fn parameter<'a>(doc: &'a serde_json::Value, path: &str, method: &str, name: &str) -> &'a serde_json::Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no {name}"))
    }

    #[test]
    fn requests_carry_the_registry_and_answers_do_not() {
        let doc = served();
        let records = "/v1/subjects/{subject_id}/records/{collection}";
        assert_eq!(
            parameter(&doc, records, "post", "collection")["schema"]["enum"],
            serde_json::json!(["customers"])
        );
        let purposes = &parameter(&doc, records, "get", "purpose")["schema"]["enum"];
        assert!(
            purposes.as_array().unwrap().contains(&"order_fulfillment".into()),
            "{purposes}"
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CreateRecordRequest"]["properties"]["purpose"]["enum"],
            *purposes
        );
        // Role names are in neither document.
        assert!(schemas["CreatePrincipalRequest"]["properties"]["roles"]["items"]["enum"].is_null());
        let entities = &schemas["ScanRequest"]["properties"]["entities"];
        assert_eq!(
            entities["items"]["enum"],
            serde_json::json!(["EMAIL_ADDRESS", "PHONE_NUMBER"])
        );
        assert_eq!(entities["minItems"], 1);
        assert_eq!(
            schemas["OpenIncidentRequest"]["properties"]["aware_at"]["format"],
            "date-time"
        );
        // Reached through another schema: the items of a batch.
        assert_eq!(
            schemas["BatchCreateItem"]["properties"]["collection"]["enum"],
            serde_json::json!(["customers"])
        );
        // Vocabularies per schema: what each request accepts, not every name.
        let props = |schema: &str, property: &str| schemas[schema]["properties"][property].clone();
        assert_eq!(
            props("ConsentRequest", "purpose")["enum"],
            serde_json::json!(["analytics", "marketing_email"]),
            "consent only for purposes based on it"
        );
        assert_eq!(
            props("ObjectionRequest", "purpose")["enum"],
            serde_json::json!(["customer_support", "marketing_email"])
        );
        assert_eq!(
            props("SearchRequest", "field")["enum"],
            serde_json::json!(["email", "phone"]),
            "only searchable fields"
        );
        assert!(!props("ConsentRequest", "method")["enum"].to_string().contains("gpc"));
        assert!(props("SaleOptOutRequest", "method")["enum"].to_string().contains("gpc"));
        assert_eq!(
            props("IncidentPhaseRequest", "phase")["enum"],
            serde_json::json!(custodia_core::PHASES)
        );
        assert_eq!(
            props("RedactRequest", "operators")["propertyNames"]["enum"],
            serde_json::json!(["EMAIL_ADDRESS", "PHONE_NUMBER"])
        );
        assert_eq!(props("CreateRecordRequest", "fields")["minProperties"], 1);
        assert_eq!(props("Correction", "fields")["minProperties"], 1);
        // Answers and the audit log's filters keep any name.
        assert!(!schemas["AuditEventView"].to_string().contains("\"enum\""));
        assert!(parameter(&doc, "/v1/audit/events", "get", "purpose")["schema"]["enum"].is_null());
    }
}
