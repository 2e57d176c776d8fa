//! The async clients' idle alarm ([`crate::pool::Alarm`]): a task per
//! alarm sleeps on the runtime's timer until the time it was set for, then
//! runs the pool's expiry. The tasks of a client end when the client is
//! dropped, not at their timers: a program that makes and drops clients
//! keeps no task of theirs pending (90 s each with the default idle
//! timeout).

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use roundtrip_proto::time::Instant;

use super::{Runtime, Shared};

/// Whether the client is gone, and the wakers of its alarm tasks.
#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    tasks: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    next: u64,
    wakers: HashMap<u64, Waker>,
}

impl Stop {
    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True once the client is gone; until then the task `id` (given on
    /// its first call) is woken when it goes.
    fn poll_stopped(&self, id: &mut Option<u64>, cx: &mut Context<'_>) -> bool {
        let mut tasks = self.tasks();
        // Read under the lock that `StopOnDrop` takes to wake: no wake is
        // lost between the check and the registration.
        if self.stopped.load(Ordering::Acquire) {
            return true;
        }
        let id = *id.get_or_insert_with(|| {
            tasks.next += 1;
            tasks.next
        });
        let replaced = match tasks.wakers.get(&id) {
            Some(waker) if waker.will_wake(cx.waker()) => None,
            _ => tasks.wakers.insert(id, cx.waker().clone()),
        };
        // A waker is dropped outside the lock: a runtime's drop may do
        // anything.
        drop(tasks);
        drop(replaced);
        false
    }
}

/// Held by the alarm, so by the pool: dropped with the client, it wakes
/// every alarm task to end.
struct StopOnDrop(Arc<Stop>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let wakers: Vec<Waker> = {
            let mut tasks = self.0.tasks();
            self.0.stopped.store(true, Ordering::Release);
            tasks.wakers.drain().map(|(_, waker)| waker).collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// A task's place among the wakers, given back when the task ends (its
/// timer fired, the client went, or the runtime dropped it).
struct Leave {
    stop: Arc<Stop>,
    id: Option<u64>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // Dropped after the lock is let go (see `poll_stopped`).
            let waker = self.stop.tasks().wakers.remove(&id);
            drop(waker);
        }
    }
}

/// The alarm of the client `shared`: a task on its runtime per call.
pub(super) fn alarm<R: Runtime>(shared: Weak<Shared<R>>) -> crate::pool::Alarm {
    let stop = StopOnDrop(Arc::new(Stop::default()));
    Box::new(move |at: Instant| {
        let Some(client) = shared.upgrade() else {
            return;
        };
        let (runtime, when) = (client.runtime.clone(), client.clock.to_std(at));
        drop(client);
        let (shared, stop) = (shared.clone(), stop.0.clone());
        let task_runtime = runtime.clone();
        runtime.spawn(async move {
            let mut leave = Leave { stop, id: None };
            let mut timer = pin!(task_runtime.timer(when));
            let fired = poll_fn(|cx| {
                if leave.stop.poll_stopped(&mut leave.id, cx) {
                    return Poll::Ready(false);
                }
                timer.as_mut().poll(cx).map(|_| true)
            })
            .await;
            if let Some(client) = fired.then(|| shared.upgrade()).flatten() {
                client.pool.expire(at, client.clock.now());
            }
        });
    })
}
