//! Answers made and not yet sent: each holds its size of a budget until its last byte is
//! written (or its connection dropped), so clients that ask and never read cannot make the
//! server hold more than the budget; beyond it the next answer is refused (503 `busy`). For
//! routes whose answers can be large: scans, record lists, batch reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// A budget of answers waiting for their readers, in KiB, of which one principal holds at
/// most a share: clients of one key that ask and never read cannot keep everyone else's
/// large answers refused (63 connections of one key did, for their 30 s).
pub(crate) struct Unsent {
    places: Arc<Semaphore>,
    /// The most one principal holds, in KiB.
    share_kib: usize,
    /// Each principal's share, by principal id (made on first use, dropped once unused).
    shares: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The part of the budget one principal may hold: a third (the four batch reads that run at
/// once, 20 MiB each, fit in it; the others keep two thirds).
const SHARE_DIVISOR: usize = 3;

/// How many principals' shares are kept before those no answer holds are dropped.
const SHARES_KEPT: usize = 1024;

impl Unsent {
    pub(crate) fn new(kib: usize) -> Self {
        Self {
            places: Arc::new(Semaphore::new(kib)),
            share_kib: (kib / SHARE_DIVISOR).max(1),
            shares: Mutex::new(HashMap::new()),
        }
    }

    /// `body` as a JSON answer to principal `who`, holding its size of the budget until it
    /// has been written whole or dropped with its connection (503 when the answers unsent
    /// hold all there is, or all of the principal's share).
    pub(crate) fn answer<T: serde::Serialize>(&self, who: &str, body: &T) -> Result<Response, ApiError> {
        self.answer_read(body, &self.reserve(who))
    }

    /// A place in the budget for what a read of principal `who` holds as it goes, taken
    /// before the answer is made ([`Reservation::take`]): reads under way count as answers
    /// unsent do, so that many reads at once cannot build more than the budget before any
    /// is refused (a thousand lists of 4 MiB were read whole and then refused: 2.6 GB).
    pub(crate) fn reserve(&self, who: &str) -> Reservation {
        let share = {
            let mut shares = self.shares.lock().unwrap_or_else(PoisonError::into_inner);
            if shares.len() >= SHARES_KEPT {
                // a share held by nothing but the map is at rest: it is made anew when needed
                shares.retain(|_, s| Arc::strong_count(s) > 1);
            }
            Arc::clone(
                shares
                    .entry(who.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.share_kib))),
            )
        };
        Reservation {
            places: Arc::clone(&self.places),
            share,
            kib: self.share_kib,
            floor: 0,
            held: Mutex::new((0, None)),
        }
    }

    /// A place of `bytes` taken by principal `who` before anything is read, for an answer
    /// whose size is not known before it is built: what the read then takes as it goes
    /// ([`Reservation::take`]) counts within it, and only beyond it takes more (a consent
    /// history, a page of the audit
    /// log): no more are built at once than the budget holds, and a read refused for want of
    /// room is refused before it is made and audited.
    pub(crate) fn reserve_before(&self, who: &str, bytes: usize) -> Result<Reservation, custodia_core::VaultError> {
        let read = Reservation {
            floor: bytes,
            ..self.reserve(who)
        };
        read.take(0)?;
        Ok(read)
    }

    /// `body` as a JSON answer holding its size of the budget, of which the read that made it
    /// took some (`read`) as it went: what it took beyond the answer is given back, and what
    /// the answer needs beyond it is taken if the budget has it (503 when the read took
    /// nothing and the budget is full; a read that took its share is answered, as what it
    /// took was its estimate).
    pub(crate) fn answer_read<T: serde::Serialize>(&self, body: &T, read: &Reservation) -> Result<Response, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the answer could not be written",
            )
        })?;
        // an answer larger than a whole share still goes out when nothing else of the
        // principal's waits
        let kib = bytes.len().div_ceil(1024).clamp(1, read.kib);
        let mut place = read.held.lock().unwrap_or_else(PoisonError::into_inner).1.take();
        let have = place.as_ref().map_or(0, Place::kib);
        if kib < have {
            if let Some(p) = place.as_mut() {
                p.give_back(have - kib);
            }
        } else if kib > have {
            match read.acquire(kib - have) {
                Some(more) => match &mut place {
                    Some(p) => p.merge(more),
                    None => place = Some(more),
                },
                None if have == 0 => return Err(busy("answers are waiting for their readers")),
                None => {}
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

/// An answer's bytes and their place, freed together (when written whole, or dropped with
/// the connection).
struct Held {
    bytes: Vec<u8>,
    _place: Option<Place>,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Reservation {
    /// `bytes`, the first piece of an answer streamed piece by piece, holding the place the
    /// read took (to refuse it before it was made) as its own: what it does not need is given
    /// back, what more it needs is taken if there is room. Never waits: the read was made.
    pub(crate) fn first_piece(&self, bytes: Vec<u8>) -> axum::body::Bytes {
        let kib = bytes.len().div_ceil(1024).clamp(1, self.kib);
        let mut place = self.held.lock().unwrap_or_else(PoisonError::into_inner).1.take();
        let have = place.as_ref().map_or(0, Place::kib);
        if kib < have {
            if let Some(p) = place.as_mut() {
                p.give_back(have - kib);
            }
        } else if let Some(more) = (kib > have).then(|| self.acquire(kib - have)).flatten() {
            match &mut place {
                Some(p) => p.merge(more),
                None => place = Some(more),
            }
        }
        axum::body::Bytes::from_owner(Held { bytes, _place: place })
    }

    /// `bytes`, a piece of an answer streamed piece by piece (an access package), holding
    /// its place in the budget until written, waiting for room: a stream whose client does
    /// not read waits here, holding nothing more, until its connection is closed.
    pub(crate) async fn piece(&self, bytes: Vec<u8>) -> axum::body::Bytes {
        let n = u32::try_from(bytes.len().div_ceil(1024).clamp(1, self.kib)).unwrap_or(u32::MAX);
        let own = Arc::clone(&self.share).acquire_many_owned(n).await.ok();
        let all = Arc::clone(&self.places).acquire_many_owned(n).await.ok();
        let place = own.zip(all).map(|(own, all)| Place { all, own });
        axum::body::Bytes::from_owner(Held { bytes, _place: place })
    }
}

/// KiB held of the budget and, as many, of one principal's share: given back together.
struct Place {
    all: OwnedSemaphorePermit,
    own: OwnedSemaphorePermit,
}

impl Place {
    fn kib(&self) -> usize {
        self.all.num_permits()
    }

    fn give_back(&mut self, kib: usize) {
        drop(self.all.split(kib));
        drop(self.own.split(kib));
    }

    fn merge(&mut self, more: Self) {
        self.all.merge(more.all);
        self.own.merge(more.own);
    }
}

/// What a read has taken of an [`Unsent`] budget as it went, in KiB: given back when dropped,
/// or handed to its answer ([`Unsent::answer_read`]).
pub(crate) struct Reservation {
    places: Arc<Semaphore>,
    /// The share of the principal reading.
    share: Arc<Semaphore>,
    /// The most the read holds (its principal's whole share).
    kib: usize,
    /// What the read holds at least, taken before it was made ([`Unsent::reserve_before`]).
    floor: usize,
    /// The bytes asked for, and the place they hold.
    held: Mutex<(usize, Option<Place>)>,
}

impl Reservation {
    /// `kib` more of the budget and of the share, both or neither.
    fn acquire(&self, kib: usize) -> Option<Place> {
        let n = u32::try_from(kib).unwrap_or(u32::MAX);
        let own = Arc::clone(&self.share).try_acquire_many_owned(n).ok()?;
        let all = Arc::clone(&self.places).try_acquire_many_owned(n).ok()?;
        Some(Place { all, own })
    }

    /// Takes `bytes` more of the budget before the read holds them: `busy` (503) when the
    /// answers unsent and the reads under way hold all of it, or all of the principal's
    /// share. What a read takes in all is capped at the share, as an answer's place is.
    pub(crate) fn take(&self, bytes: usize) -> Result<(), custodia_core::VaultError> {
        let refused = || {
            custodia_core::VaultError::unavailable(
                "busy",
                "too many answers are waiting for their readers; try again shortly",
            )
        };
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let (asked, place) = &mut *held;
        *asked = asked.saturating_add(bytes);
        let want = (*asked).max(self.floor).div_ceil(1024).min(self.kib);
        let have = place.as_ref().map_or(0, Place::kib);
        if want > have {
            let more = self.acquire(want - have).ok_or_else(refused)?;
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

    /// A budget of `kib` one principal may hold whole.
    fn whole(kib: usize) -> Unsent {
        Unsent {
            share_kib: kib,
            ..Unsent::new(kib)
        }
    }

    /// An answer holds its place until its bytes are dropped (written whole, or dropped with
    /// the connection): answers nobody reads fill the budget and the next is refused with
    /// 503; once one is freed the next goes out.
    #[tokio::test]
    async fn answers_nobody_reads_are_bounded() -> Result<(), String> {
        use http_body_util::BodyExt;
        // a budget of 1 MiB, for answers of 400 KiB
        let unsent = whole(1024);
        let big = serde_json::json!({ "text": "x".repeat(400 * 1024) });
        let first = unsent.answer("p", &big).map_err(|e| e.message)?;
        let second = unsent.answer("p", &big).map_err(|e| e.message)?;
        let refused = unsent.answer("p", &big);
        assert_eq!(refused.err().map(|e| e.status), Some(StatusCode::SERVICE_UNAVAILABLE));
        // a small answer still fits
        let small = unsent
            .answer("p", &serde_json::json!({ "findings": [] }))
            .map_err(|e| e.message)?;
        // the answer read whole frees its place, with its bytes
        let read = first.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        assert_eq!(read.len(), 400 * 1024 + 11);
        assert!(unsent.answer("p", &big).is_err(), "the read bytes still hold the place");
        drop(read);
        let third = unsent.answer("p", &big).map_err(|e| e.message)?;
        // one dropped unread (its connection closed) frees its place too
        drop(second);
        drop(third);
        drop(small);
        assert_eq!(unsent.available_kib(), 1024);
        // an answer larger than the whole budget goes out when nothing else waits
        let huge = serde_json::json!({ "text": "x".repeat(2048 * 1024) });
        let alone = unsent.answer("p", &huge).map_err(|e| e.message)?;
        assert!(unsent.answer("p", &serde_json::json!({})).is_err());
        drop(alone);
        Ok(())
    }

    /// Reads under way hold their place as they go: two reads cannot both take more than the
    /// budget between them; an answer keeps what it needs of its read's place and gives the
    /// rest back; a read that took its share is answered even when its answer is a little
    /// larger and the budget full.
    #[tokio::test]
    async fn reads_hold_their_place_as_they_go() -> Result<(), String> {
        let unsent = whole(1024);
        let first = unsent.reserve("p");
        first.take(300 * 1024).map_err(|e| e.message)?;
        first.take(300 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 1024 - 600);
        let second = unsent.reserve("p");
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
        let third = unsent.reserve("p");
        third.take(1013 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 0);
        let larger = unsent
            .answer_read(&serde_json::json!({ "text": "x".repeat(1020 * 1024) }), &third)
            .map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 0);
        // and one that took nothing is refused then
        let nothing = unsent.reserve("p");
        assert!(unsent.answer_read(&serde_json::json!({}), &nothing).is_err());
        drop(small);
        drop(larger);
        assert_eq!(unsent.available_kib(), 1024);
        Ok(())
    }

    /// One principal holds at most a third of the budget, whatever it asks and however
    /// many reads it runs at once: another principal's answers still go out; what one gives
    /// back is its own again; shares no answer holds are dropped once there are many.
    #[tokio::test]
    async fn one_principal_holds_a_share() -> Result<(), String> {
        let unsent = Unsent::new(1024);
        let big = serde_json::json!({ "text": "x".repeat(200 * 1024) });
        let first = unsent.answer("greedy", &big).map_err(|e| e.message)?;
        assert!(
            unsent.answer("greedy", &big).is_err(),
            "a second answer passes its share"
        );
        let read = unsent.reserve("greedy");
        assert_eq!(read.take(150 * 1024).map_err(|e| e.code), Err("busy"));
        assert_eq!(
            unsent.reserve_before("greedy", 150 * 1024).err().map(|e| e.code),
            Some("busy")
        );
        // the others are answered: three more shares fit
        let others: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|who| unsent.answer(who, &big))
            .collect::<Result<_, _>>()
            .map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 1024 - 4 * 201);
        // a read larger than a share takes the share, no more, and is answered
        drop(first);
        let large = unsent.reserve("greedy");
        large.take(900 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 1024 - 3 * 201 - 1024 / 3);
        let answered = unsent
            .answer_read(&serde_json::json!({ "text": "x".repeat(900 * 1024) }), &large)
            .map_err(|e| e.message)?;
        drop((answered, large, others, read));
        assert_eq!(unsent.available_kib(), 1024);
        // shares at rest are dropped once many are kept
        for i in 0..SHARES_KEPT + 10 {
            drop(unsent.reserve(&format!("p{i}")));
        }
        let kept = unsent.shares.lock().map(|s| s.len()).unwrap_or(usize::MAX);
        assert!(kept <= SHARES_KEPT, "{kept} shares kept");
        Ok(())
    }

    /// The pieces of an answer streamed piece by piece hold their place until written (or
    /// dropped with the connection): the first takes over what the read took to be admitted,
    /// less what it does not need; a later piece finding no room waits for it (polled once,
    /// not slept).
    #[tokio::test]
    async fn pieces_of_a_stream_hold_their_place_until_written() {
        use std::future::Future;
        use std::task::{Context, Waker};
        let unsent = whole(1024);
        let read = unsent.reserve("p");
        read.take(700 * 1024).unwrap();
        let first = read.first_piece(vec![b'x'; 600 * 1024]);
        assert_eq!(unsent.available_kib(), 424);
        let mut next = Box::pin(read.piece(vec![b'y'; 600 * 1024]));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(next.as_mut().poll(&mut cx).is_pending(), "no room: it waits");
        drop(first);
        let second = next.await;
        assert_eq!((second.len(), unsent.available_kib()), (600 * 1024, 424));
        drop(second);
        assert_eq!(unsent.available_kib(), 1024);
        // a first piece larger than what was taken takes the rest if there is room
        let read = unsent.reserve("p");
        read.take(10 * 1024).unwrap();
        let first = read.first_piece(vec![b'x'; 100 * 1024]);
        assert_eq!(unsent.available_kib(), 924);
        drop(first);
        assert_eq!(unsent.available_kib(), 1024);
    }

    /// What a read takes as it goes counts within the place taken before it was made, and
    /// only beyond it takes more.
    #[test]
    fn a_place_taken_before_holds_what_is_taken_within_it() -> Result<(), String> {
        let unsent = whole(1024);
        let read = unsent.reserve_before("p", 100 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 924);
        read.take(60 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 924, "within the place taken before");
        read.take(60 * 1024).map_err(|e| e.message)?;
        assert_eq!(unsent.available_kib(), 904, "beyond it, only what passes it");
        drop(read);
        assert_eq!(unsent.available_kib(), 1024);
        Ok(())
    }
}
