//! The server's periodic work. Each job is a function of the time it runs at (so tests move
//! the clock instead of sleeping) and a period; the runner wakes every [`TICK`], runs each
//! job that is due, and on PostgreSQL runs a job only if no other server node is running it
//! at that moment (advisory-lock leadership per job, see `Store::exclusively`). The audit
//! checkpointer has a runner of its own ([`Job::alone`]): a slow sweep or delivery never holds
//! back the signature over the log's tail (an unsigned tail is one an insider can cut).
//!
//! Jobs today: the audit checkpointer, the failed-authentication counts, the audit subject
//! index, the check of the access rows' tally, the Art. 19 notification deliveries, the purge
//! of request records past their
//! keeping time (24 months after they close) and the retention sweeper ([`RETENTION_JOB`]:
//! ends the purpose bindings that are due and destroys what no purpose holds any more; the
//! same work as `custodia retention run`, at the job's time).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use custodia_core::{Timestamp, VaultError};

use crate::AppState;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Failed authentications are written as one entry per key id per window this long.
pub const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(10);

/// The job that sends due Art. 19 notifications, and how often it looks for them.
pub const NOTIFICATIONS_JOB: &str = "notifications";
pub const NOTIFICATIONS_EVERY: Duration = Duration::from_secs(2);

/// The retention sweeper, and how often it runs. Its cost grows with what is due (it walks
/// the expiry index), so a short period keeps each run small; expiry is a matter of days.
pub const RETENTION_JOB: &str = "retention-sweep";
/// The job that reminds operators (and the alert webhook) of training about to lapse, daily.
pub const TRAINING_REMINDERS_JOB: &str = "training-reminders";
pub const RETENTION_EVERY: Duration = Duration::from_secs(600);

/// The check of the rows that grant access against their sealed tally (what a row put back
/// from an earlier copy leaves off), and how often it runs: a read of every access row's seal.
pub const ACCESS_TALLY_JOB: &str = "access-tally";
pub const ACCESS_TALLY_EVERY: Duration = Duration::from_secs(60);

/// A job that runs longer than this is logged as holding back the others of its loop.
const SLOW_JOB: Duration = Duration::from_secs(5);

/// How often the runner looks for due jobs.
pub const TICK: Duration = Duration::from_millis(250);

/// A periodic job.
pub struct Job {
    /// Its name: the leadership lock and the logs name it.
    pub name: &'static str,
    pub every: Duration,
    /// Whether it runs on a loop of its own rather than after the others of the shared one.
    pub alone: bool,
    pub run: for<'a> fn(&'a AppState, Timestamp) -> BoxFuture<'a, Result<(), VaultError>>,
}

/// The server's jobs.
#[must_use]
pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            name: "audit-checkpoint",
            every: crate::CHECKPOINT_EVERY,
            alone: true,
            run: |state, now| {
                Box::pin(async move {
                    if let Some(row) = state.vault.checkpoint(now).await? {
                        state.publisher.publish(&state.vault, &row).await;
                    }
                    Ok(())
                })
            },
        },
        Job {
            name: "audit-auth-failures",
            every: AUTH_FAILURE_WINDOW,
            alone: false,
            run: |state, now| Box::pin(async move { state.vault.flush_authentication_failures(now).await.map(drop) }),
        },
        Job {
            name: TRAINING_REMINDERS_JOB,
            every: Duration::from_secs(86_400),
            alone: false,
            run: |state, now| {
                Box::pin(async move {
                    for alert in state.vault.remind_training(now).await? {
                        crate::operators::send_alert(alert);
                    }
                    Ok(())
                })
            },
        },
        Job {
            name: "requests-purge",
            every: Duration::from_secs(3600),
            alone: false,
            run: |state, now| Box::pin(async move { state.vault.purge_requests(now).await.map(drop) }),
        },
        Job {
            name: "audit-subject-index",
            every: Duration::from_secs(1),
            alone: false,
            run: |state, _| Box::pin(async move { state.vault.index_audit_subjects().await.map(drop) }),
        },
        Job {
            name: NOTIFICATIONS_JOB,
            every: NOTIFICATIONS_EVERY,
            alone: false,
            run: |state, now| {
                Box::pin(async move {
                    let sender = std::sync::Arc::new(crate::notify::HttpSender);
                    state.vault.deliver_notifications(now, sender).await.map(drop)
                })
            },
        },
        Job {
            name: ACCESS_TALLY_JOB,
            every: ACCESS_TALLY_EVERY,
            alone: false,
            run: |state, _| Box::pin(async move { state.vault.check_access_tally().await }),
        },
        Job {
            name: RETENTION_JOB,
            every: RETENTION_EVERY,
            alone: false,
            run: |state, now| Box::pin(sweep(state, now)),
        },
    ]
}

/// One run of the sweeper at `now`, in batches of [`custodia_core::SWEEP_BATCH`]. Only
/// counts are logged (never subjects, records or values): they are what an operator watches.
async fn sweep(state: &AppState, now: Timestamp) -> Result<(), VaultError> {
    let opts = custodia_core::SweepOptions {
        as_of: now,
        now,
        dry_run: false,
        batch: custodia_core::SWEEP_BATCH,
    };
    let report = state.vault.sweep(&opts, &mut |_| {}).await?;
    if report.bindings_ended > 0 || report.values_destroyed > 0 {
        tracing::info!(
            job = RETENTION_JOB,
            bindings_ended = report.bindings_ended,
            values_destroyed = report.values_destroyed,
            records_destroyed = report.records_destroyed,
            subjects_removed = report.subjects_removed,
            kept_by_hold = report.kept_by_hold,
            kept_by_restriction = report.kept_by_restriction,
            "retention sweep"
        );
    }
    if report.kept_unknown_purpose > 0 {
        tracing::warn!(
            job = RETENTION_JOB,
            bindings = report.kept_unknown_purpose,
            "values bound to purposes the registry no longer declares are kept: see `custodia retention report`"
        );
    }
    Ok(())
}

/// When each job last ran, and which are due.
#[derive(Debug, Default)]
pub struct Schedule {
    last: Vec<Option<Timestamp>>,
}

impl Schedule {
    /// Indexes of the jobs due at `now` (never run, or their period has passed), marked as run.
    pub fn due(&mut self, jobs: &[Job], now: Timestamp) -> Vec<usize> {
        self.last.resize(jobs.len(), None);
        let mut due = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let period = i64::try_from(job.every.as_millis()).unwrap_or(i64::MAX);
            let ready = self.last[i].is_none_or(|last| now.0.saturating_sub(last.0) >= period);
            if ready {
                self.last[i] = Some(now);
                due.push(i);
            }
        }
        due
    }
}

/// Runs the due jobs once at `now`; a job another node leads is skipped, a failing job is
/// logged and retried at its next period. Returns the names of the jobs this node ran.
pub async fn run_due(state: &AppState, jobs: &[Job], schedule: &mut Schedule, now: Timestamp) -> Vec<&'static str> {
    let mut ran = Vec::new();
    for i in schedule.due(jobs, now) {
        let job = &jobs[i];
        let started = std::time::Instant::now();
        let outcome = state.vault.store().exclusively(job.name, (job.run)(state, now)).await;
        // the jobs of a loop run one after another: a slow one holds back the others
        let took = started.elapsed();
        if took > SLOW_JOB {
            tracing::warn!(
                job = job.name,
                ms = took.as_millis(),
                "job ran long, holding back the others of its loop"
            );
        } else {
            tracing::debug!(job = job.name, ms = took.as_millis(), "job ran");
        }
        match outcome {
            Ok(Some(Ok(()))) => ran.push(job.name),
            Ok(Some(Err(e))) => tracing::error!(job = job.name, error = %e, "job failed; will retry"),
            Ok(None) => tracing::debug!(job = job.name, "another node runs this job now"),
            Err(e) => tracing::error!(job = job.name, error = %e, "job leadership failed; will retry"),
        }
    }
    ran
}

/// The jobs grouped by the loop that runs them: each job that runs [`Job::alone`] in a
/// group of its own, then the others together.
#[must_use]
pub fn loops(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let (alone, shared): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.alone);
    let mut loops: Vec<Vec<Job>> = alone.into_iter().map(|j| vec![j]).collect();
    if !shared.is_empty() {
        loops.push(shared);
    }
    loops
}

/// The running loops of the server's jobs.
pub struct Runners {
    loops: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// How long a stop waits for a job in flight before it drops it.
const STOP_WAIT: Duration = Duration::from_secs(10);

impl Runners {
    /// Stops every loop between two jobs and waits for them to end (a job in flight finishes,
    /// or is dropped after [`STOP_WAIT`]): no loop is left to be polled while the runtime shuts
    /// down, where its timer would panic.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for mut runner in self.loops {
            if tokio::time::timeout(STOP_WAIT, &mut runner).await.is_err() {
                runner.abort();
                let _ = runner.await;
            }
        }
    }
}

/// Starts the runners on the real clock, one per group of [`loops`].
pub fn spawn(state: Arc<crate::AppState>) -> Runners {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loops = loops(jobs())
        .into_iter()
        .map(|jobs| {
            let state = Arc::clone(&state);
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut schedule = Schedule::default();
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.changed() => return,
                    }
                    run_due(&state, &jobs, &mut schedule, Timestamp::now()).await;
                }
            })
        })
        .collect();
    Runners { loops, stop }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &'static str, every_ms: u64) -> Job {
        Job {
            name,
            every: Duration::from_millis(every_ms),
            alone: false,
            run: |_, _| Box::pin(async { Ok(()) }),
        }
    }

    #[test]
    fn the_sweeper_is_a_job_every_ten_minutes() {
        let sweeper: Vec<Job> = jobs().into_iter().filter(|j| j.name == RETENTION_JOB).collect();
        assert_eq!(sweeper.len(), 1);
        assert_eq!(sweeper[0].every, Duration::from_secs(600));
    }

    #[test]
    fn the_checkpointer_runs_on_a_loop_no_other_job_shares() {
        let loops = loops(jobs());
        let with_checkpointer: Vec<&Vec<Job>> = loops
            .iter()
            .filter(|l| l.iter().any(|j| j.name == "audit-checkpoint"))
            .collect();
        assert_eq!(with_checkpointer.len(), 1);
        assert_eq!(
            with_checkpointer[0].len(),
            1,
            "a job beside the checkpointer could hold it back"
        );
        // every job runs, once
        let mut names: Vec<&str> = loops.iter().flatten().map(|j| j.name).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!((names.len(), all), (jobs().len(), jobs().len()));
    }

    #[test]
    fn jobs_fall_due_by_their_period_on_a_moved_clock() {
        let jobs = [job("fast", 1_000), job("slow", 60_000)];
        let mut schedule = Schedule::default();
        assert_eq!(schedule.due(&jobs, Timestamp(0)), [0, 1], "every job runs at start");
        assert!(schedule.due(&jobs, Timestamp(999)).is_empty());
        assert_eq!(schedule.due(&jobs, Timestamp(1_000)), [0]);
        assert_eq!(schedule.due(&jobs, Timestamp(1_500)), Vec::<usize>::new());
        assert_eq!(schedule.due(&jobs, Timestamp(60_000)), [0, 1]);
        // A clock moved back (an NTP step) does not make jobs run again early.
        assert!(schedule.due(&jobs, Timestamp(59_000)).is_empty());
    }
}
