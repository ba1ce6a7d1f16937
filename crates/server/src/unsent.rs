//! Answers made and not yet sent: each holds its size of a budget until its last byte is
//! written (or its connection dropped), so clients that ask and never read cannot make the
//! server hold more than the budget; beyond it the next answer is refused (503 `busy`). For
//! routes whose answers can be large: scans, record lists, batch reads.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// A budget of answers waiting for their readers, in KiB.
pub(crate) struct Unsent {
    places: Arc<Semaphore>,
    kib: usize,
}

impl Unsent {
    pub(crate) fn new(kib: usize) -> Self {
        Self {
            places: Arc::new(Semaphore::new(kib)),
            kib,
        }
    }

    /// `body` as a JSON answer holding its size of the budget until it has been written whole
    /// or dropped with its connection (503 when the answers unsent hold all there is).
    pub(crate) fn answer<T: serde::Serialize>(&self, body: &T) -> Result<Response, ApiError> {
        /// The answer's bytes and their place, freed together.
        struct Held {
            bytes: Vec<u8>,
            _place: OwnedSemaphorePermit,
        }
        impl AsRef<[u8]> for Held {
            fn as_ref(&self) -> &[u8] {
                &self.bytes
            }
        }
        let bytes = serde_json::to_vec(body).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the answer could not be written",
            )
        })?;
        // an answer larger than the whole budget still goes out when nothing else waits
        let kib = bytes.len().div_ceil(1024).clamp(1, self.kib);
        let place = Arc::clone(&self.places)
            .try_acquire_many_owned(u32::try_from(kib).unwrap_or(u32::MAX))
            .map_err(|_| busy("answers are waiting for their readers"))?;
        let body = axum::body::Bytes::from_owner(Held { bytes, _place: place });
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    }

    #[cfg(test)]
    fn available_kib(&self) -> usize {
        self.places.available_permits()
    }
}

/// 503 `busy`: too many of `what`.
pub(crate) fn busy(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!("too many {what}; try again shortly"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer holds its place until its bytes are dropped (written whole, or dropped with
    /// the connection): answers nobody reads fill the budget and the next is refused with
    /// 503; once one is freed the next goes out.
    #[tokio::test]
    async fn answers_nobody_reads_are_bounded() -> Result<(), String> {
        use http_body_util::BodyExt;
        // a budget of 1 MiB, for answers of 400 KiB
        let unsent = Unsent::new(1024);
        let big = serde_json::json!({ "text": "x".repeat(400 * 1024) });
        let first = unsent.answer(&big).map_err(|e| e.message)?;
        let second = unsent.answer(&big).map_err(|e| e.message)?;
        let refused = unsent.answer(&big);
        assert_eq!(refused.err().map(|e| e.status), Some(StatusCode::SERVICE_UNAVAILABLE));
        // a small answer still fits
        let small = unsent
            .answer(&serde_json::json!({ "findings": [] }))
            .map_err(|e| e.message)?;
        // the answer read whole frees its place, with its bytes
        let read = first.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        assert_eq!(read.len(), 400 * 1024 + 11);
        assert!(unsent.answer(&big).is_err(), "the read bytes still hold the place");
        drop(read);
        let third = unsent.answer(&big).map_err(|e| e.message)?;
        // one dropped unread (its connection closed) frees its place too
        drop(second);
        drop(third);
        drop(small);
        assert_eq!(unsent.available_kib(), 1024);
        // an answer larger than the whole budget goes out when nothing else waits
        let huge = serde_json::json!({ "text": "x".repeat(2048 * 1024) });
        let alone = unsent.answer(&huge).map_err(|e| e.message)?;
        assert!(unsent.answer(&serde_json::json!({})).is_err());
        drop(alone);
        Ok(())
    }
}
