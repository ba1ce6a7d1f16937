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
        self.answer_read(body, &self.reserve())
    }

    /// A place in the budget for what a read holds as it goes, taken before the answer is
    /// made ([`Reservation::take`]): reads under way count as answers unsent do, so that
    /// many reads at once cannot build more than the budget before any is refused (a
    /// thousand lists of 4 MiB were read whole and then refused: 2.6 GB).
    pub(crate) fn reserve(&self) -> Reservation {
        Reservation {
            places: Arc::clone(&self.places),
            kib: self.kib,
            held: std::sync::Mutex::new((0, None)),
        }
    }

    /// A place of `bytes` taken before anything is read, for an answer built whole before
    /// its size is known (a batch, a consent history, a page of the audit log): no more are
    /// built at once than the budget holds, and a read refused for want of room is refused
    /// before it is made and audited.
    pub(crate) fn reserve_before(&self, bytes: usize) -> Result<Reservation, custodia_core::VaultError> {
        let read = self.reserve();
        read.take(bytes)?;
        Ok(read)
    }

    /// `body` as a JSON answer holding its size of the budget, of which the read that made it
    /// took some (`read`) as it went: what it took beyond the answer is given back, and what
    /// the answer needs beyond it is taken if the budget has it (503 when the read took
    /// nothing and the budget is full; a read that took its share is answered, as what it
    /// took was its estimate).
    pub(crate) fn answer_read<T: serde::Serialize>(&self, body: &T, read: &Reservation) -> Result<Response, ApiError> {
        /// The answer's bytes and their place, freed together.
        struct Held {
            bytes: Vec<u8>,
            _place: Option<OwnedSemaphorePermit>,
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
        let mut place = read.held.lock().ok().and_then(|mut held| held.1.take());
        let have = place.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        if kib < have {
            drop(place.as_mut().and_then(|p| p.split(have - kib)));
        } else if kib > have {
            match Arc::clone(&self.places).try_acquire_many_owned(u32::try_from(kib - have).unwrap_or(u32::MAX)) {
                Ok(more) => match &mut place {
                    Some(p) => p.merge(more),
                    None => place = Some(more),
                },
                Err(_) if have == 0 => return Err(busy("answers are waiting for their readers")),
                Err(_) => {}
            }
        }
        let body = axum::body::Bytes::from_owner(Held { bytes, _place: place });
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    }

    #[cfg(test)]
    fn available_kib(&self) -> usize {
        self.places.available_permits()
    }
}

/// What a read has taken of an [`Unsent`] budget as it went, in KiB: given back when dropped,
/// or handed to its answer ([`Unsent::answer_read`]).
pub(crate) struct Reservation {
    places: Arc<Semaphore>,
    kib: usize,
    /// The bytes asked for, and the place they hold.
    held: std::sync::Mutex<(usize, Option<OwnedSemaphorePermit>)>,
}

impl Reservation {
    /// Takes `bytes` more of the budget before the read holds them: `busy` (503) when the
    /// answers unsent and the reads under way hold all of it. What a read takes in all is
    /// capped at the whole budget, as an answer's place is.
    pub(crate) fn take(&self, bytes: usize) -> Result<(), custodia_core::VaultError> {
        let refused = || {
            custodia_core::VaultError::unavailable(
                "busy",
                "too many answers are waiting for their readers; try again shortly",
            )
        };
        let mut held = self.held.lock().map_err(|_| refused())?;
        let (asked, place) = &mut *held;
        *asked = asked.saturating_add(bytes);
        let want = asked.div_ceil(1024).min(self.kib);
        let have = place.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        if want > have {
            let more = Arc::clone(&self.places)
                .try_acquire_many_owned(u32::try_from(want - have).unwrap_or(u32::MAX))
                .map_err(|_| refused())?;
            match place {
                Some(p) => p.merge(more),
                None => *place = Some(more),
            }
        }
        Ok(())
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

    /// Reads under way hold their place as they go: two reads cannot both take more than the
    /// budget between them; an answer keeps what it needs of its read's place and gives the
    /// rest back; a read that took its share is answered even when its answer is a little
    /// larger and the budget full.
    #[tokio::test]
    async fn reads_hold_their_place_as_they_go() -> Result<(), String> {
        let unsent = Unsent::new(1024);
        let first = unsent.reserve();
        first.take(300 * 1024).map_err(|e| e.message)?;
        first.take(300 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 1024 - 600);
        let second = unsent.reserve();
        assert_eq!(second.take(500 * 1024).map_err(|e| e.code), Err("busy"));
        // a small answer of the first read gives back what it does not need
        let small = unsent
            .answer_read(&serde_json::json!({ "text": "x".repeat(10 * 1024) }), &first)
            .map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 1024 - 11);
        second.take(500 * 1024).map_err(|e| e.message)?;
        // a dropped read gives back what it took
        drop(second);
        assert_eq!(unsent.available_kib(), 1024 - 11);
        // a read that took its share is answered though the budget cannot hold all of it
        let third = unsent.reserve();
        third.take(1013 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 0);
        let larger = unsent
            .answer_read(&serde_json::json!({ "text": "x".repeat(1020 * 1024) }), &third)
            .map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 0);
        // and one that took nothing is refused then
        let nothing = unsent.reserve();
        assert!(unsent.answer_read(&serde_json::json!({}), &nothing).is_err());
        drop(small);
        drop(larger);
        assert_eq!(unsent.available_kib(), 1024);
        Ok(())
    }
}
