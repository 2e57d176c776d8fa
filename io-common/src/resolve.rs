//! How host names become addresses for the dial: IP literals need no
//! lookup, static overrides answer first (curl's `--resolve
//! host:port:addr`), then the caller's resolver if it plugged one in
//! ([`Resolve`], like reqwest's `dns_resolver`), else the system's.
//!
//! A lookup may block: every backend runs it on a thread of its own that
//! the request waits for until its deadline (requests that need the same
//! name meanwhile wait for the same lookup, and at most
//! [`MAX_LOOKUP_THREADS`] run: [`Resolver::resolve_within`] for a thread,
//! [`Resolver::resolve_shared`] for a task or an event loop), so one slow
//! lookup never stalls the other exchanges of a loop. A lookup is
//! bounded by `connect_timeout` (and the request's `timeout`).
//!
//! ```
//! use roundtrip_io::resolve::{Lookup, Resolver};
//! let mut resolver = Resolver::default();
//! resolver.add_override("example.com:443:127.0.0.1").unwrap();
//! match resolver.lookup("example.com", 443) {
//!     Lookup::Ready(addrs) => assert_eq!(addrs, ["127.0.0.1:443".parse().unwrap()]),
//!     Lookup::Blocking => unreachable!(),
//! }
//! assert!(matches!(resolver.lookup("127.0.0.1", 80), Lookup::Ready(_)));
//! assert!(matches!(resolver.lookup("example.org", 80), Lookup::Blocking));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A resolver the caller plugs in: host and port to addresses. It may
/// block; it is never called on an event loop's thread.
///
/// ```
/// use std::net::SocketAddr;
/// use roundtrip_io::resolve::Resolve;
/// struct Fixed;
/// impl Resolve for Fixed {
///     fn resolve(&self, _host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
///         Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
///     }
/// }
/// assert_eq!(Fixed.resolve("any", 8080).unwrap()[0].port(), 8080);
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal), with `port`.
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// What [`Resolver::lookup`] could answer without blocking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The addresses: an IP literal, or an override.
    Ready(Vec<SocketAddr>),
    /// A lookup that may block is needed: [`Resolver::resolve_blocking`].
    Blocking,
}

/// One `--resolve` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Override {
    host: String,
    /// `None`: every port of the host.
    port: Option<u16>,
    addrs: Vec<IpAddr>,
}

/// The client's way from names to addresses. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Resolver {
    overrides: Vec<Override>,
    custom: Option<Arc<dyn Resolve>>,
    /// The lookups under way on threads of their own, shared by the
    /// resolver's clones ([`Resolver::resolve_within`],
    /// [`Resolver::resolve_shared`]).
    running: Running,
}

/// Most lookup threads one resolver (and its clones: a client's) runs at
/// once ([`Resolver::resolve_within`], [`Resolver::resolve_shared`], on
/// every backend); a lookup of another name waits for one to end (within
/// its deadline).
pub const MAX_LOOKUP_THREADS: usize = 64;

/// How often a wait for a lookup asks its `cancelled` check.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// A lookup's answer, kept for every request that waits for it
/// (`io::Error` is not `Clone`: its kind and text are).
type Shared = Result<Vec<SocketAddr>, (io::ErrorKind, String)>;

/// One lookup under way: its answer once it came.
#[derive(Default)]
struct Pending {
    answer: OnceLock<Shared>,
}

/// The lookups under way, by name and port, and how many threads run.
#[derive(Clone, Default)]
struct Running(Arc<(Mutex<Lookups>, Condvar)>);

#[derive(Default)]
struct Lookups {
    by_name: HashMap<(String, u16), Arc<Pending>>,
    threads: usize,
    /// The tasks waiting for a name's lookup ([`SharedLookup`], by its
    /// number), woken when it ends.
    on_name: HashMap<(String, u16), HashMap<u64, Waker>>,
    /// The tasks waiting for a place, first come first: one is woken for
    /// each place that frees (and, if it does not take it, passes it on).
    for_place: BTreeMap<u64, Waker>,
}

/// A waker to drop or wake once the lock is released: a waker's drop may
/// end a task, and a lookup wait in it takes the lock.
type Later = Option<Waker>;

impl Lookups {
    /// The lookup of `key` under way, else a new one, its thread's place
    /// taken (`true`: the caller starts it, [`Resolver::spawn_claimed`]);
    /// `None` while every place is taken.
    fn join_or_claim(&mut self, key: &(String, u16)) -> Option<(Arc<Pending>, bool)> {
        if let Some(pending) = self.by_name.get(key) {
            return Some((Arc::clone(pending), false));
        }
        if self.threads >= MAX_LOOKUP_THREADS {
            return None;
        }
        let pending = Arc::new(Pending::default());
        self.threads += 1;
        self.by_name.insert(key.clone(), Arc::clone(&pending));
        Some((pending, true))
    }

    /// Task `id` is woken when the lookup of `key` ends (`None`: when a
    /// place frees). Returns the waker it replaces, to drop later.
    fn wake_later(&mut self, id: u64, waker: &Waker, key: Option<&(String, u16)>) -> Later {
        let fresh = || waker.clone();
        let known = match key {
            Some(key) => self
                .on_name
                .entry(key.clone())
                .or_default()
                .entry(id)
                .or_insert_with(fresh),
            None => self.for_place.entry(id).or_insert_with(fresh),
        };
        replace_waker(known, waker)
    }

    /// Task `id` waits no more (it ended, or its wait was dropped):
    /// its wakers, to drop later.
    fn forget(&mut self, id: u64, key: &(String, u16)) -> [Later; 2] {
        let on_name = self.on_name.get_mut(key).and_then(|w| w.remove(&id));
        if self.on_name.get(key).is_some_and(HashMap::is_empty) {
            self.on_name.remove(key);
        }
        [on_name, self.for_place.remove(&id)]
    }

    /// The first task waiting for a place, taken to be woken, when one is
    /// free: a freed place is offered to one waiter at a time.
    fn offer_place(&mut self) -> Later {
        if self.threads >= MAX_LOOKUP_THREADS {
            return None;
        }
        self.for_place.pop_first().map(|(_, waker)| waker)
    }
}

/// `known` is to wake `waker`'s task: the waker it replaces, if another.
fn replace_waker(known: &mut Waker, waker: &Waker) -> Later {
    (!known.will_wake(waker)).then(|| std::mem::replace(known, waker.clone()))
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, Lookups> {
        // A panic under this lock leaves plain data: go on with it.
        self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ends a lookup thread's turn, whatever way the thread ends: the answer
/// (or, if the thread unwound before it had one, an error) is given to
/// the waiters, and the thread's place freed.
struct Finish {
    running: Running,
    key: (String, u16),
    pending: Arc<Pending>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let _ = self.pending.answer.set(Err((
            io::ErrorKind::Other,
            "the lookup's thread ended without an answer".into(),
        )));
        let mut lookups = self.running.lock();
        if lookups
            .by_name
            .get(&self.key)
            .is_some_and(|p| Arc::ptr_eq(p, &self.pending))
        {
            lookups.by_name.remove(&self.key);
        }
        lookups.threads -= 1;
        let waiters = lookups.on_name.remove(&self.key).unwrap_or_default();
        let next = lookups.offer_place();
        drop(lookups);
        self.running.0.1.notify_all();
        waiters.into_values().chain(next).for_each(Waker::wake);
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("overrides", &self.overrides)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl Resolver {
    /// Looks names up with `resolver` instead of the system's.
    pub fn with_resolver(mut self, resolver: impl Resolve) -> Resolver {
        self.custom = Some(Arc::new(resolver));
        // The lookups under way were another resolver's: not to be joined.
        self.running = Running::default();
        self
    }

    /// Answers `host:port` with `addrs`, whatever a lookup would say.
    pub fn add(&mut self, host: &str, port: u16, addrs: Vec<IpAddr>) {
        self.put(host, Some(port), addrs);
    }

    /// Answers `host` with `addrs` on every port (the URL's port is
    /// dialed), whatever a lookup would say; an entry for the host and
    /// the port asked ([`add`](Self::add)) comes first.
    ///
    /// ```
    /// use roundtrip_io::resolve::{Lookup, Resolver};
    /// let mut resolver = Resolver::default();
    /// resolver.add_host("api.test", vec!["127.0.0.1".parse().unwrap()]);
    /// let addrs = Lookup::Ready(vec!["127.0.0.1:8443".parse().unwrap()]);
    /// assert_eq!(resolver.lookup("api.test", 8443), addrs);
    /// ```
    pub fn add_host(&mut self, host: &str, addrs: Vec<IpAddr>) {
        self.put(host, None, addrs);
    }

    fn put(&mut self, host: &str, port: Option<u16>, addrs: Vec<IpAddr>) {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.overrides
            .retain(|o| !(o.host == host && o.port == port));
        self.overrides.push(Override { host, port, addrs });
    }

    /// An entry in curl's `--resolve` form: `host:port:addr[,addr]...`
    /// (IPv6 addresses may be in brackets).
    pub fn add_override(&mut self, entry: &str) -> Result<(), String> {
        let bad = || format!("{entry:?} is not host:port:address[,address...]");
        let (host, rest) = match entry.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once("]:").ok_or_else(bad)?;
                (host, rest)
            }
            None => entry.split_once(':').ok_or_else(bad)?,
        };
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                a.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        if host.is_empty() || addrs.is_empty() {
            return Err(bad());
        }
        self.add(host, port, addrs);
        Ok(())
    }

    /// The addresses if they are known without a lookup that may block.
    pub fn lookup(&self, host: &str, port: u16) -> Lookup {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Lookup::Ready(vec![SocketAddr::new(ip, port)]);
        }
        let of_host = |o: &&Override| o.host.eq_ignore_ascii_case(bare);
        let found = (self.overrides.iter().filter(of_host))
            .find(|o| o.port == Some(port))
            .or_else(|| {
                self.overrides
                    .iter()
                    .filter(of_host)
                    .find(|o| o.port.is_none())
            });
        match found {
            Some(o) => Lookup::Ready(
                o.addrs
                    .iter()
                    .map(|&ip| SocketAddr::new(ip, port))
                    .collect(),
            ),
            None => Lookup::Blocking,
        }
    }

    /// The addresses of `host:port`, looking them up if need be (this may
    /// block: call it where blocking is allowed).
    pub fn resolve_blocking(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Lookup::Ready(addrs) = self.lookup(host, port) {
            return Ok(addrs);
        }
        let addrs = match &self.custom {
            // A plugged-in resolver that panics fails this lookup alone,
            // the same way on every backend.
            Some(custom) => {
                let resolve = std::panic::AssertUnwindSafe(|| custom.resolve(host, port));
                std::panic::catch_unwind(resolve)
                    .map_err(|_| io::Error::other("the resolver panicked"))??
            }
            None => (host, port).to_socket_addrs()?.collect(),
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no address for {host}"),
            ));
        }
        Ok(addrs)
    }

    /// True when a resolver was plugged in.
    pub fn is_custom(&self) -> bool {
        self.custom.is_some()
    }

    /// The addresses of `host:port`, the lookup run on a thread of its own
    /// so that the caller waits at most until `until`, or until
    /// `cancelled` says so (asked every 50 ms): `None` then, and the
    /// thread ends when the lookup does. Requests that need the same name
    /// while its lookup runs wait for that one (Go's `singleflight`), and
    /// at most [`MAX_LOOKUP_THREADS`] run at once: a resolver that hangs
    /// costs one thread per name, not one per request. Without a deadline
    /// or a cancel the lookup runs on the caller's thread.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let resolver = roundtrip_io::resolve::Resolver::default();
    /// let until = Instant::now() + Duration::from_secs(5);
    /// let addrs = resolver.resolve_within("127.0.0.1", 80, Some(until), None);
    /// assert_eq!(addrs.unwrap().unwrap(), ["127.0.0.1:80".parse().unwrap()]);
    /// ```
    pub fn resolve_within(
        &self,
        host: &str,
        port: u16,
        until: Option<Instant>,
        cancelled: Option<&dyn Fn() -> bool>,
    ) -> Option<io::Result<Vec<SocketAddr>>> {
        if let Lookup::Ready(addrs) = self.lookup(host, port) {
            return Some(Ok(addrs));
        }
        if until.is_none() && cancelled.is_none() {
            return Some(self.resolve_blocking(host, port));
        }
        let key = (host.to_ascii_lowercase(), port);
        let changed = &self.running.0.1;
        let mut lookups = self.running.lock();
        // Bounded: each pass waits at most `CANCEL_CHECK` (or until the
        // deadline), and the loop ends at the deadline or the cancel.
        let pending = loop {
            if let Some((pending, new)) = lookups.join_or_claim(&key) {
                if new {
                    drop(lookups);
                    if !self.spawn_claimed(key, Arc::clone(&pending), host, port) {
                        // No thread to be had: the lookup runs here.
                        return Some(self.resolve_blocking(host, port));
                    }
                    lookups = self.running.lock();
                }
                break pending;
            }
            lookups = wait(changed, lookups, until, cancelled)?;
        };
        // Bounded as above.
        loop {
            if let Some(answer) = pending.answer.get() {
                return Some(match answer {
                    Ok(addrs) => Ok(addrs.clone()),
                    Err((kind, text)) => Err(io::Error::new(*kind, text.clone())),
                });
            }
            lookups = wait(changed, lookups, until, cancelled)?;
        }
    }

    /// Starts the thread of a lookup whose place
    /// [`join_or_claim`](Lookups::join_or_claim) took; false when no
    /// thread could be had (its waiters are told so, and the place freed).
    fn spawn_claimed(
        &self,
        key: (String, u16),
        pending: Arc<Pending>,
        host: &str,
        port: u16,
    ) -> bool {
        // From here `finish` keeps the books, even if the thread cannot
        // start (the closure is dropped then).
        let finish = Finish {
            running: self.running.clone(),
            key,
            pending,
        };
        let resolver = self.clone();
        let name = host.to_string();
        std::thread::Builder::new()
            .name("roundtrip-dns".into())
            .spawn(move || {
                let answer = resolver.resolve_blocking(&name, port);
                let answer = answer.map_err(|e| (e.kind(), e.to_string()));
                let _ = finish.pending.answer.set(answer);
            })
            .is_ok()
    }

    /// The addresses of `host:port` for a task: the lookup runs on a
    /// thread of its own, shared as [`resolve_within`](Self::resolve_within)'s
    /// are (requests for the same name wait for one lookup, and at most
    /// [`MAX_LOOKUP_THREADS`] run; the others wait for a place), and the
    /// task is woken when it ends. Dropped, the wait ends; the lookup goes
    /// on for whoever else waits, and its thread ends with it.
    ///
    /// ```
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    /// let resolver = roundtrip_io::resolve::Resolver::default();
    /// let mut lookup = std::pin::pin!(resolver.resolve_shared("127.0.0.1", 80));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let Poll::Ready(addrs) = lookup.as_mut().poll(&mut cx) else {
    ///     unreachable!("an IP literal needs no lookup")
    /// };
    /// assert_eq!(addrs.unwrap(), ["127.0.0.1:80".parse().unwrap()]);
    /// ```
    pub fn resolve_shared(&self, host: &str, port: u16) -> SharedLookup {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        SharedLookup {
            resolver: self.clone(),
            host: host.to_string(),
            port,
            key: (host.to_ascii_lowercase(), port),
            pending: None,
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// A task's wait for a shared lookup: [`Resolver::resolve_shared`].
#[must_use = "a lookup is waited for only when polled"]
pub struct SharedLookup {
    resolver: Resolver,
    host: String,
    port: u16,
    /// The lookups' key: the name in lower case, and the port.
    key: (String, u16),
    /// The lookup joined, once a place was had.
    pending: Option<Arc<Pending>>,
    /// Its number among the waiting tasks (first come, first served).
    id: u64,
}

/// A wait dropped leaves no waker behind, and a place it was offered goes
/// to the next waiter.
impl Drop for SharedLookup {
    fn drop(&mut self) {
        let mut lookups = self.resolver.running.lock();
        let gone = lookups.forget(self.id, &self.key);
        let next = lookups.offer_place();
        drop(lookups);
        drop(gone);
        next.into_iter().for_each(Waker::wake);
    }
}

impl fmt::Debug for SharedLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLookup")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("started", &self.pending.is_some())
            .finish()
    }
}

impl Future for SharedLookup {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Lookup::Ready(addrs) = this.resolver.lookup(&this.host, this.port) {
            return Poll::Ready(Ok(addrs));
        }
        let running = this.resolver.running.clone();
        let mut lookups = running.lock();
        let pending = match &this.pending {
            Some(pending) => Arc::clone(pending),
            None => {
                let Some((pending, new)) = lookups.join_or_claim(&this.key) else {
                    let replaced = lookups.wake_later(this.id, cx.waker(), None);
                    drop(lookups);
                    drop(replaced);
                    return Poll::Pending;
                };
                this.pending = Some(Arc::clone(&pending));
                // Not waiting for a place now; one still free goes on to
                // the next waiter.
                let offered = lookups.for_place.remove(&this.id);
                let next = lookups.offer_place();
                if new {
                    drop(lookups);
                    let spawned = this.resolver.spawn_claimed(
                        this.key.clone(),
                        Arc::clone(&pending),
                        &this.host,
                        this.port,
                    );
                    drop(offered);
                    next.into_iter().for_each(Waker::wake);
                    if !spawned {
                        return Poll::Ready(Err(io::Error::other("no thread for the lookup")));
                    }
                    lookups = running.lock();
                } else {
                    drop(lookups);
                    drop(offered);
                    next.into_iter().for_each(Waker::wake);
                    lookups = running.lock();
                }
                pending
            }
        };
        // Under the lock: an end after this look wakes the waker left here.
        match pending.answer.get() {
            Some(Ok(addrs)) => Poll::Ready(Ok(addrs.clone())),
            Some(Err((kind, text))) => Poll::Ready(Err(io::Error::new(*kind, text.clone()))),
            None => {
                let replaced = lookups.wake_later(this.id, cx.waker(), Some(&this.key));
                drop(lookups);
                drop(replaced);
                Poll::Pending
            }
        }
    }
}

/// One wait for a change of the lookups under way, at most until `until`
/// and `CANCEL_CHECK`: `None` once the deadline passed or `cancelled`
/// says so.
fn wait<'a>(
    changed: &Condvar,
    lookups: MutexGuard<'a, Lookups>,
    until: Option<Instant>,
    cancelled: Option<&dyn Fn() -> bool>,
) -> Option<MutexGuard<'a, Lookups>> {
    if cancelled.is_some_and(|c| c()) {
        return None;
    }
    let left = match until {
        Some(at) => at
            .checked_duration_since(Instant::now())
            .filter(|l| !l.is_zero())?,
        None => CANCEL_CHECK,
    };
    let slice = match cancelled {
        Some(_) => left.min(CANCEL_CHECK),
        None => left,
    };
    let (lookups, _) = changed
        .wait_timeout(lookups, slice)
        .unwrap_or_else(|p| p.into_inner());
    Some(lookups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_in_curl_form() {
        let mut r = Resolver::default();
        r.add_override("[::1]:8443:[::1],127.0.0.1").unwrap();
        r.add_override("Host.Test:80:10.0.0.1").unwrap();
        assert_eq!(
            r.lookup("::1", 8443),
            Lookup::Ready(vec!["[::1]:8443".parse().unwrap()])
        );
        assert_eq!(
            r.lookup("host.test", 80),
            Lookup::Ready(vec!["10.0.0.1:80".parse().unwrap()])
        );
        assert_eq!(r.lookup("host.test", 81), Lookup::Blocking);
        for bad in [
            "nohost",
            "h:port:1.2.3.4",
            "h:80:",
            "h:80:not-an-ip",
            ":80:1.2.3.4",
        ] {
            assert!(r.add_override(bad).is_err(), "{bad}");
        }
        // A later entry for the same host and port replaces the earlier.
        r.add_override("host.test:80:10.0.0.2").unwrap();
        assert_eq!(
            r.resolve_blocking("host.test", 80).unwrap(),
            ["10.0.0.2:80".parse().unwrap()]
        );
    }

    #[test]
    fn a_custom_resolver_answers_names() {
        struct Counting(std::sync::atomic::AtomicUsize);
        impl Resolve for Counting {
            fn resolve(&self, _: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(vec![SocketAddr::from(([127, 0, 0, 2], port))])
            }
        }
        let r = Resolver::default().with_resolver(Counting(Default::default()));
        assert!(r.is_custom());
        assert_eq!(
            r.resolve_blocking("anything.test", 9).unwrap(),
            ["127.0.0.2:9".parse().unwrap()]
        );
        // IP literals never reach it.
        assert_eq!(r.resolve_blocking("127.0.0.1", 9).unwrap()[0].port(), 9);
    }

    /// A name answered on every port, and an entry for one port that
    /// comes first for it.
    #[test]
    fn a_host_entry_answers_every_port() {
        let mut r = Resolver::default();
        r.add_host("Api.Test", vec!["10.0.0.1".parse().unwrap()]);
        r.add("api.test", 443, vec!["10.0.0.2".parse().unwrap()]);
        let at = |a: &str| Lookup::Ready(vec![a.parse().unwrap()]);
        assert_eq!(r.lookup("api.test", 80), at("10.0.0.1:80"));
        assert_eq!(r.lookup("API.test", 8443), at("10.0.0.1:8443"));
        assert_eq!(r.lookup("api.test", 443), at("10.0.0.2:443"));
        assert_eq!(r.lookup("other.test", 80), Lookup::Blocking);
    }

    /// A resolver that holds every lookup until its gate opens, and
    /// counts them; `missing.test` is answered with `NotFound`.
    #[derive(Clone, Default)]
    struct Gated(Arc<(Mutex<(bool, usize)>, Condvar)>);

    impl Gated {
        fn calls(&self) -> usize {
            self.0.0.lock().unwrap().1
        }
        fn open(&self) {
            self.0.0.lock().unwrap().0 = true;
            self.0.1.notify_all();
        }
    }

    impl Resolve for Gated {
        fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            let mut state = self.0.0.lock().unwrap();
            state.1 += 1;
            // Bounded: the test opens the gate.
            while !state.0 {
                state = self.0.1.wait(state).unwrap();
            }
            match host {
                "missing.test" => Err(io::Error::new(io::ErrorKind::NotFound, "no such name")),
                _ => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
            }
        }
    }

    /// Waits (10 s at most) until `done` says so; the caller asserts.
    fn eventually(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn lookups(r: &Resolver) -> (usize, usize) {
        let lookups = r.running.lock();
        (lookups.threads, lookups.by_name.len())
    }

    /// At most `MAX_LOOKUP_THREADS` lookups run at once; the others wait
    /// for a place within their deadline, and the books are empty once
    /// the lookups ended.
    #[test]
    fn lookup_threads_are_bounded() {
        let gate = Gated::default();
        let r = Resolver::default().with_resolver(gate.clone());
        let until = Instant::now() + Duration::from_millis(300);
        let many = MAX_LOOKUP_THREADS + 8;
        let waits: Vec<_> = (0..many)
            .map(|i| {
                let r = r.clone();
                std::thread::spawn(move || {
                    r.resolve_within(&format!("n{i}.test"), 80, Some(until), None)
                })
            })
            .collect();
        for wait in waits {
            assert!(wait.join().unwrap().is_none());
        }
        // Each thread calls the resolver soon after it starts (the callers
        // may have given up first).
        eventually(|| gate.calls() >= MAX_LOOKUP_THREADS);
        assert_eq!(gate.calls(), MAX_LOOKUP_THREADS);
        assert_eq!(lookups(&r), (MAX_LOOKUP_THREADS, MAX_LOOKUP_THREADS));
        gate.open();
        eventually(|| lookups(&r) == (0, 0));
        assert_eq!(lookups(&r), (0, 0));
        // The next lookup of a name runs anew.
        let until = Some(Instant::now() + Duration::from_secs(10));
        let addrs = r
            .resolve_within("n0.test", 81, until, None)
            .unwrap()
            .unwrap();
        assert_eq!(addrs[0].port(), 81);
        assert_eq!(gate.calls(), MAX_LOOKUP_THREADS + 1);
    }

    /// A resolver swapped in on a clone does not join the lookups of the
    /// one it replaced (it would get that one's answers).
    #[test]
    fn a_swapped_in_resolver_has_its_own_lookups() {
        let gate = Gated::default();
        let r = Resolver::default().with_resolver(gate.clone());
        let soon = Some(Instant::now() + Duration::from_millis(30));
        assert!(r.resolve_within("a.test", 80, soon, None).is_none());
        let other = Gated::default();
        other.open();
        let swapped = r.clone().with_resolver(other.clone());
        let until = Some(Instant::now() + Duration::from_secs(10));
        let addrs = swapped
            .resolve_within("a.test", 80, until, None)
            .unwrap()
            .unwrap();
        assert_eq!(addrs[0].port(), 80);
        assert_eq!(other.calls(), 1);
        gate.open();
    }

    /// Every request that joined a lookup gets its error, with its kind.
    #[test]
    fn a_shared_lookup_shares_its_error() {
        let gate = Gated::default();
        let r = Resolver::default().with_resolver(gate.clone());
        let until = Some(Instant::now() + Duration::from_secs(10));
        let waits: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || r.resolve_within("missing.test", 80, until, None))
            })
            .collect();
        // The four hold the lookup (beside the table and its thread)
        // before it may answer.
        let holders = || {
            let lookups = r.running.lock();
            let key = ("missing.test".to_string(), 80);
            lookups.by_name.get(&key).map_or(0, Arc::strong_count)
        };
        eventually(|| holders() >= 6);
        assert_eq!(holders(), 6);
        gate.open();
        for wait in waits {
            let err = wait.join().unwrap().unwrap().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert_eq!(err.to_string(), "no such name");
        }
        assert_eq!(gate.calls(), 1);
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Count {
        fn waker() -> (Arc<Count>, Waker) {
            let count = Arc::new(Count::default());
            (Arc::clone(&count), Waker::from(count))
        }
        fn get(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// Answers at once but for `gated.test`, which waits for the gate.
    struct Split(Gated);

    impl Resolve for Split {
        fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            match host {
                "gated.test" => self.0.resolve(host, port),
                _ => {
                    std::thread::sleep(Duration::from_millis(50));
                    Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
                }
            }
        }
    }

    fn poll_once(
        wait: &mut Pin<Box<SharedLookup>>,
        waker: &Waker,
    ) -> Poll<io::Result<Vec<SocketAddr>>> {
        wait.as_mut().poll(&mut Context::from_waker(waker))
    }

    /// Tasks waiting on lookups: each is kept once however often it is
    /// polled, a wait dropped leaves nothing behind, and a lookup's end
    /// wakes its own waiters, not those of another name.
    #[test]
    fn shared_lookups_wake_their_own_waiters() {
        let gate = Gated::default();
        let r = Resolver::default().with_resolver(Split(gate.clone()));
        let mut fast: Vec<_> = (0..3)
            .map(|_| (Box::pin(r.resolve_shared("fast.test", 1)), Count::waker()))
            .collect();
        let (mut gated, (gated_count, gated_waker)) =
            (Box::pin(r.resolve_shared("gated.test", 1)), Count::waker());
        for _ in 0..5 {
            for (wait, (_, waker)) in &mut fast {
                assert!(poll_once(wait, waker).is_pending());
            }
        }
        assert!(poll_once(&mut gated, &gated_waker).is_pending());
        let waiting = |r: &Resolver| {
            r.running
                .lock()
                .on_name
                .values()
                .map(HashMap::len)
                .sum::<usize>()
        };
        assert_eq!(waiting(&r), 4, "one entry a task");
        drop(fast.pop());
        assert_eq!(waiting(&r), 3, "the dropped wait's is gone");
        // The fast lookup ends: its two waiters are woken once each, the
        // gated name's waiter not at all.
        eventually(|| fast.iter().all(|(_, (count, _))| count.get() == 1));
        for (wait, (count, waker)) in &mut fast {
            assert_eq!(count.get(), 1);
            let Poll::Ready(addrs) = poll_once(wait, waker) else {
                panic!("the lookup ended")
            };
            assert_eq!(addrs.unwrap(), ["127.0.0.1:1".parse().unwrap()]);
        }
        assert_eq!(gated_count.get(), 0, "woken by another name's lookup");
        gate.open();
        eventually(|| gated_count.get() == 1);
        assert!(matches!(
            poll_once(&mut gated, &gated_waker),
            Poll::Ready(Ok(_))
        ));
        eventually(|| lookups(&r) == (0, 0));
        assert_eq!(waiting(&r), 0);
    }

    /// With every place taken, tasks wait for one: nothing wakes them
    /// before a place frees (a dropped wait frees none: its lookup runs
    /// on), a waiter that gives up leaves the queue, places that free wake
    /// the others (one per place, first come first), and each then gets
    /// its answer.
    #[test]
    fn tasks_wait_for_a_place_in_turn() {
        let gate = Gated::default();
        let r = Resolver::default().with_resolver(gate.clone());
        let mut holding: Vec<_> = (0..MAX_LOOKUP_THREADS)
            .map(|i| Box::pin(r.resolve_shared(&format!("n{i}.test"), 1)))
            .collect();
        let (_, noop) = Count::waker();
        for wait in &mut holding {
            assert!(poll_once(wait, &noop).is_pending());
        }
        let mut queued: Vec<_> = (0..3)
            .map(|i| {
                (
                    Box::pin(r.resolve_shared(&format!("q{i}.test"), 1)),
                    Count::waker(),
                )
            })
            .collect();
        for (wait, (_, waker)) in &mut queued {
            assert!(poll_once(wait, waker).is_pending());
        }
        assert_eq!(r.running.lock().for_place.len(), 3);
        drop(holding.pop());
        assert!(
            queued.iter().all(|(_, (c, _))| c.get() == 0),
            "no place freed yet"
        );
        // The first in line gives up; then every held lookup ends.
        let first = queued.remove(0);
        drop(first);
        gate.open();
        eventually(|| queued.iter().all(|(_, (c, _))| c.get() >= 1));
        for (wait, (_, waker)) in &mut queued {
            // Each takes a place, then its lookup ends.
            let _ = poll_once(wait, waker);
        }
        eventually(|| lookups(&r) == (0, 0));
        for (wait, (_, waker)) in &mut queued {
            assert!(matches!(poll_once(wait, waker), Poll::Ready(Ok(_))));
        }
        assert!(r.running.lock().for_place.is_empty());
    }
}
