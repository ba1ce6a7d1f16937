//! TEMPORARY placeholder, replaced by the package branch at merge.
use axum::response::{IntoResponse, Response};
use custodia_core::{SubjectId, Timestamp, Vault};

use crate::ApiError;

#[derive(Debug, Clone, Copy)]
pub enum PackageFormat {
    Json,
}

impl PackageFormat {
    pub fn parse(_text: &str) -> Result<Self, ApiError> {
        Ok(Self::Json)
    }
}

pub async fn package_response(
    _vault: &Vault,
    subject: &SubjectId,
    _format: PackageFormat,
    _now: Timestamp,
) -> Result<Response, ApiError> {
    Ok(axum::Json(serde_json::json!({"subject_id": subject.as_str()})).into_response())
}
