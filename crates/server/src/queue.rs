//! Work that runs a few at a time behind a bounded queue: a request takes a place in the
//! queue at once or is refused (503 `busy`), then waits for its turn. Each request waiting
//! holds its parsed body, so the queue's bound is what bounds the memory they hold. For scans
//! (a core each) and batch reads (each answer some tens of MB until it is written out).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;
use crate::unsent::busy;

pub(crate) struct Queue {
    /// Turns: how many run at once.
    running: Arc<Semaphore>,
    /// Places: those running or waiting.
    admitted: Arc<Semaphore>,
    /// What the 503 says there are too many of.
    what: &'static str,
}

/// A place in the queue, taken before the request is authorized and audited (a request
/// audited as allowed is one that runs: a 503 leaves no entry).
pub(crate) struct Place {
    admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
    what: &'static str,
}

/// A turn to run; its place and turn are given back when it is dropped.
pub(crate) struct Turn {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl Queue {
    /// `running` at once, `waiting` more waiting their turn.
    pub(crate) fn new(running: usize, waiting: usize, what: &'static str) -> Self {
        Self {
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running + waiting)),
            what,
        }
    }

    /// A place, or 503 `busy` when the queue is full.
    pub(crate) fn admit(&self) -> Result<Place, ApiError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| busy(self.what))?;
        Ok(Place {
            admitted,
            running: Arc::clone(&self.running),
            what: self.what,
        })
    }

    #[cfg(test)]
    pub(crate) fn places_free(&self) -> usize {
        self.admitted.available_permits()
    }
}

impl Place {
    /// Waits for a turn.
    pub(crate) async fn turn(self) -> Result<Turn, ApiError> {
        let running = self.running.acquire_owned().await.map_err(|_| busy(self.what))?;
        Ok(Turn {
            _admitted: self.admitted,
            _running: running,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beyond the running and the waiting, a request is refused at once; a place freed
    /// admits the next, and a place waits until a turn is free.
    #[tokio::test]
    async fn full_queue_refuses_and_places_wait_their_turn() -> Result<(), String> {
        let queue = Queue::new(1, 1, "tests");
        let first = queue
            .admit()
            .map_err(|e| e.message)?
            .turn()
            .await
            .map_err(|e| e.message)?;
        let second = queue.admit().map_err(|e| e.message)?;
        let refused = queue.admit().err().map(|e| (e.status, e.message));
        assert_eq!(
            refused,
            Some((
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many tests; try again shortly".to_owned()
            ))
        );
        let waiting = tokio::spawn(second.turn());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a place waits while every turn is taken");
        drop(first);
        let second = waiting.await.map_err(|e| e.to_string())?.map_err(|e| e.message)?;
        assert_eq!(queue.places_free(), 1);
        drop(second);
        assert_eq!(queue.places_free(), 2);
        Ok(())
    }
}
