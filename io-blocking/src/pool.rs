//! The shared pool ([`roundtrip_io::pool::SharedPool`]), with a parked
//! thread per waiter as the waiting primitive, and the process's idle
//! alarm thread. Every decision is the core's; this file only parks and
//! wakes threads.

use std::collections::{BinaryHeap, HashMap};
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Instant as StdInstant;

use roundtrip_io::pool::{self, Waiting};
use roundtrip_io::proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::{Clock, Tracer};

use crate::transport::Conn;

/// How often a waiter for a connection looks whether its request was
/// cancelled from another thread.
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// What a checkout gave.
pub(crate) type Got = pool::Got<Box<Conn>>;

/// Wakes the one thread a grant is for (a shared condition variable
/// would wake every waiter of every host, each to take the pool's lock);
/// grants wait in their waiter's place until it looks.
pub(crate) struct Ready;

/// A waiter's place: its grant once it came, and its thread once it waits.
#[derive(Default)]
pub(crate) struct Place {
    grant: Option<Grant<Box<Conn>>>,
    thread: Option<std::thread::Thread>,
}

impl Waiting<Box<Conn>> for Ready {
    type Parked = HashMap<Ticket, Place>;

    fn hand_over(
        &self,
        parked: &mut Self::Parked,
        grant: Grant<Box<Conn>>,
    ) -> Result<(), Grant<Box<Conn>>> {
        let place = parked.entry(grant.ticket()).or_default();
        place.grant = Some(grant);
        if let Some(thread) = &place.thread {
            thread.unpark();
        }
        Ok(())
    }
}

pub(crate) struct SharedPool(pool::SharedPool<Box<Conn>, Ready>);

/// An [`Alarm`](pool::Alarm) for a blocking client: the process's one
/// alarm thread ([`Alarms`]) calls `expire` with the time the alarm was
/// set for, when it comes. `expire` is kept only as long as the alarm (so
/// as the pool): an alarm a dropped pool set is skipped.
pub(crate) fn alarm(clock: Clock, expire: impl Fn(Instant) + Send + Sync + 'static) -> pool::Alarm {
    let expire: Arc<Expire> = Arc::new(expire);
    Box::new(move |at| {
        if let Some(alarms) = Alarms::get() {
            alarms.set(clock.to_std(at), at, Arc::downgrade(&expire));
        }
    })
}

type Expire = dyn Fn(Instant) + Send + Sync;

/// The blocking clients' alarms: one thread for the process (named
/// `roundtrip-idle`, started at the first alarm) sleeps until the earliest
/// and runs it, as Go's runtime timers run `IdleConnTimeout`. What it runs
/// is the pool's expiry, with the client's tracer (and, when it held the
/// client's last reference, the client's drop): a panic there is caught,
/// so one client's tracer cannot stop every client's alarms. Without the
/// thread (it could not start), expired connections close at their
/// pool's next checkout.
struct Alarms {
    due: Mutex<Queue>,
    woken: Condvar,
}

/// The alarms set, earliest first, and the length at which those of
/// dropped pools are next pruned.
struct Queue {
    heap: BinaryHeap<Due>,
    prune_at: usize,
}

/// One alarm: when, with what time, for which pool.
struct Due {
    at: StdInstant,
    fired_for: Instant,
    expire: Weak<Expire>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// The earliest is the greatest: first out of the max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

/// Alarms of dropped pools are pruned when the heap reaches this many,
/// and then at twice as many as a pruning kept: memory stays within
/// about twice the live alarms, at a constant cost per alarm.
const PRUNE_AT: usize = 1024;

impl Alarms {
    /// The process's alarms, the thread started at the first call.
    fn get() -> Option<&'static Alarms> {
        static ALARMS: OnceLock<Option<&'static Alarms>> = OnceLock::new();
        *ALARMS.get_or_init(|| {
            let alarms: &'static Alarms = Box::leak(Box::new(Alarms {
                due: Mutex::new(Queue {
                    heap: BinaryHeap::new(),
                    prune_at: PRUNE_AT,
                }),
                woken: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("roundtrip-idle".into())
                .spawn(move || alarms.run())
                .ok()
                .map(|_| alarms)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.due.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, at: StdInstant, fired_for: Instant, expire: Weak<Expire>) {
        let mut due = self.lock();
        if due.heap.len() >= due.prune_at {
            due.heap.retain(|d| d.expire.strong_count() > 0);
            due.prune_at = PRUNE_AT.max(2 * due.heap.len());
        }
        let earliest = due.heap.peek().is_none_or(|d| at < d.at);
        due.heap.push(Due {
            at,
            fired_for,
            expire,
        });
        if earliest {
            self.woken.notify_one();
        }
    }

    /// The thread: runs each alarm when it comes, for the process's life.
    fn run(&self) {
        let mut due = self.lock();
        loop {
            let now = StdInstant::now();
            due = match due.heap.peek() {
                None => self.woken.wait(due).unwrap_or_else(|p| p.into_inner()),
                Some(d) if d.at > now => {
                    let left = d.at - now;
                    let woken = self.woken.wait_timeout(due, left);
                    woken.unwrap_or_else(|p| p.into_inner()).0
                }
                Some(_) => {
                    let d = due.heap.pop().expect("peeked");
                    drop(due);
                    if let Some(expire) = d.expire.upgrade() {
                        let run = std::panic::AssertUnwindSafe(|| expire(d.fired_for));
                        let _ = std::panic::catch_unwind(run);
                    }
                    self.lock()
                }
            };
        }
    }
}

impl Deref for SharedPool {
    type Target = pool::SharedPool<Box<Conn>, Ready>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SharedPool {
    pub fn new(config: PoolConfig, clock: Clock, trace: Option<Tracer>) -> Self {
        SharedPool(pool::SharedPool::new(config, Ready, clock, trace))
    }

    /// An idle connection or permission to dial, or, when the host is at
    /// `max_conns_per_host`, a place in the FIFO queue to [`wait`](Self::wait) with.
    pub fn try_checkout(&self, key: &Key, now: Instant) -> Result<Got, Ticket> {
        self.0.checkout(key, now, |_, ticket| ticket)
    }

    /// Waits for the grant of `ticket` until `until`, looking at
    /// `cancelled` every [`CANCEL_CHECK`]; `None` when the wait ended
    /// without one (the ticket is then given up).
    pub fn wait(
        &self,
        ticket: Ticket,
        until: Option<StdInstant>,
        cancelled: Option<&dyn Fn() -> bool>,
    ) -> Option<Got> {
        // No grant is lost while the lock was let go: it waits in `parked`,
        // and an unpark before the park makes the park return at once.
        let mut st = self.lock();
        // Bounded: each pass waits at most CANCEL_CHECK, and the loop ends
        // at `until` or a cancel.
        loop {
            if let Some(grant) = st.parked.get_mut(&ticket).and_then(|p| p.grant.take()) {
                st.parked.remove(&ticket);
                return Some(self.take_grant(&mut st, grant));
            }
            let now = StdInstant::now();
            if cancelled.is_some_and(|c| c()) || until.is_some_and(|at| at <= now) {
                st.parked.remove(&ticket);
                st.pool.cancel_wait(ticket);
                return None;
            }
            let place = st.parked.entry(ticket).or_default();
            if place.thread.is_none() {
                place.thread = Some(std::thread::current());
            }
            // Without a cancel to look at, the wait ends at `until` alone.
            let check = cancelled.map(|_| CANCEL_CHECK);
            let left = match (until.map(|at| at - now), check) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            drop(st);
            #[cfg(test)]
            tests::PARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A park may end early (another unpark of this thread, or none):
            // the loop looks again.
            match left {
                Some(left) => std::thread::park_timeout(left),
                None => std::thread::park(),
            }
            st = self.lock();
        }
    }

    /// The waiter of `ticket` left: its place in the queue is given up, and
    /// a grant already parked for it goes to the next waiter (or back to
    /// the pool).
    pub fn give_up(&self, ticket: Ticket) {
        let mut st = self.lock();
        match st.parked.remove(&ticket).and_then(|p| p.grant) {
            Some(grant) => self.redeliver(&mut st, grant),
            None => {
                st.pool.cancel_wait(ticket);
            }
        }
        self.settle(st);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use roundtrip_io::proto::pool::Scheme;

    use super::*;

    /// Parks of waiters, all threads together.
    pub(super) static PARKS: AtomicUsize = AtomicUsize::new(0);

    /// A grant wakes its waiter alone: 32 threads queued for one slot, the
    /// slot passed from each to the next (a failed dial gives its permit
    /// on), park about once each. Woken all at every grant, as with one
    /// condition variable, they parked about 32 * 33 / 2 times.
    #[test]
    fn a_grant_wakes_its_waiter_alone() {
        const WAITERS: usize = 32;
        let config = PoolConfig::default().max_conns_per_host(Some(1));
        let pool = Arc::new(SharedPool::new(config, Clock::new(), None));
        let key = Key::new(Scheme::Http, "h", 80);
        let Ok(Got::Dial(first)) = pool.try_checkout(&key, Instant::ZERO) else {
            panic!("a dial")
        };
        let threads: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (pool, key) = (pool.clone(), key.clone());
                let Err(ticket) = pool.try_checkout(&key, Instant::ZERO) else {
                    panic!("a wait")
                };
                std::thread::spawn(move || {
                    let until = StdInstant::now() + std::time::Duration::from_secs(30);
                    match pool.wait(ticket, Some(until), None) {
                        Some(Got::Dial(permit)) => pool.dial_failed(permit),
                        _ => panic!("no grant"),
                    }
                })
            })
            .collect();
        // Every waiter parked before the first grant (bounded: 10 s).
        for _ in 0..1000 {
            if PARKS.load(Ordering::SeqCst) >= WAITERS {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pool.dial_failed(first);
        for t in threads {
            t.join().expect("a waiter");
        }
        let parks = PARKS.load(Ordering::SeqCst);
        assert!(parks <= 2 * WAITERS, "{parks} parks of {WAITERS} waiters");
    }

    /// Alarms of dropped pools do not pile up: the heap stays within twice
    /// the live ones (and `PRUNE_AT`), whatever the number of pools that
    /// set one and went.
    #[test]
    fn alarms_of_dropped_pools_are_pruned() {
        let alarms = Alarms {
            due: Mutex::new(Queue {
                heap: BinaryHeap::new(),
                prune_at: PRUNE_AT,
            }),
            woken: Condvar::new(),
        };
        let far = StdInstant::now() + std::time::Duration::from_secs(3600);
        let live: Vec<Arc<Expire>> = (0..100).map(|_| Arc::new(|_| {}) as Arc<Expire>).collect();
        for i in 0..100_000 {
            let expire: Arc<Expire> = Arc::new(|_| {});
            let weak = match i % 1000 {
                n if n < 100 && i < 1000 => Arc::downgrade(&live[n]),
                _ => Arc::downgrade(&expire),
            };
            alarms.set(far, Instant::ZERO, weak);
            assert!(alarms.lock().heap.len() <= PRUNE_AT, "{i}");
        }
        let kept = alarms
            .lock()
            .heap
            .iter()
            .filter(|d| d.expire.strong_count() > 0)
            .count();
        assert_eq!(kept, 100);
    }
}
