//! The driver: carries out the exchange machine's actions on smol sockets,
//! with the shared pool and a channel per waiter as its waiting primitive.
//! Every decision is the machine's; this file only moves bytes and waits.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;

use bytes::Bytes;
use roundtrip_io::exchange::{Action, Exchange, Link, Settings};
use roundtrip_io::pool::{Got, SharedPool, Waiting};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::{DialPermit, Grant, Ticket};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::{Clock, Error, Phase, buf, http, sys};
use smol::channel::{Receiver, Sender};
use smol::future::{Future, or, pending};
use smol::io::AsyncReadExt;
use smol::{Async, Timer};

use crate::{Body, ResponseBody};

/// The reader a streamed request body holds.
pub(crate) type Reader = Box<dyn smol::io::AsyncRead + Send + Unpin>;

/// A connection: the socket, and the machine's side of it.
pub(crate) struct Conn {
    pub stream: Async<TcpStream>,
    pub link: Link,
}
roundtrip_io::impl_pool_link!(Conn);

/// The waiting primitive: each waiter's grant goes down its own channel.
pub(crate) struct Chans;

impl Waiting<Conn> for Chans {
    type Parked = HashMap<Ticket, Sender<Grant<Conn>>>;
    fn hand_over(&self, parked: &mut Self::Parked, grant: Grant<Conn>) -> Result<(), Grant<Conn>> {
        // No waiter (it gave up): the grant goes back.
        match parked.remove(&grant.ticket()) {
            Some(tx) => tx.try_send(grant).map_err(|e| e.into_inner()),
            None => Err(grant),
        }
    }
}

/// What the clones of a client share.
pub(crate) struct Inner {
    pub settings: Arc<Settings>,
    pub pool: SharedPool<Conn, Chans>,
    pub clock: Clock,
}

/// One request in flight: the machine, and what the driver holds for it.
pub(crate) struct Run {
    pub inner: Arc<Inner>,
    pub ex: Exchange<Reader>,
    pub conn: Option<Conn>,
    permit: Option<DialPermit>,
    wait: Option<(Ticket, Receiver<Grant<Conn>>)>,
    /// Already a drain task: dropped again, it closes instead.
    draining: bool,
}

impl Run {
    pub fn new(inner: Arc<Inner>, request: http::Request<Body>) -> Run {
        let (parts, body) = request.into_parts();
        let ex = Exchange::new(inner.settings.clone(), parts, body, inner.clock.now());
        let (conn, permit, wait, draining) = (None, None, None, false);
        Run {
            inner,
            ex,
            conn,
            permit,
            wait,
            draining,
        }
    }

    /// Carries out actions until one for the caller: `Head`, `Data`,
    /// `End` or `Upgrade` (`Fail` is the error).
    pub async fn next(&mut self) -> Result<Action, Error> {
        // Bounded by the machine: every wait ends at its deadline (or with
        // the server, when there is none).
        loop {
            let now = self.inner.clock.now();
            match self.ex.poll(self.conn.as_mut().map(|c| &mut c.link), now) {
                Action::Checkout | Action::Wait => self.checkout(now).await?,
                Action::Dial => self.dial().await,
                Action::Probe => {
                    let (ex, c) = self.conn();
                    ex.handle_probe(&mut c.link, sys::is_stale(c.stream.get_ref()), now);
                }
                Action::NeedBody => self.body().await,
                Action::Write { watch_read } => self.io(true, watch_read).await,
                Action::Read => self.io(false, true).await,
                Action::Release => self.release(None),
                Action::Discard(reason) => self.release(Some(reason)),
                Action::Fail(e) => return Err(e),
                other => return Ok(other),
            }
        }
    }

    /// The machine asks for socket work only while it holds a connection.
    fn conn(&mut self) -> (&mut Exchange<Reader>, &mut Conn) {
        let conn = self
            .conn
            .as_mut()
            .expect("I/O is asked only with a connection");
        (&mut self.ex, conn)
    }

    fn release(&mut self, close: Option<CloseReason>) {
        match (self.conn.take(), close) {
            (Some(c), None) => self.inner.pool.checkin(c),
            (Some(c), Some(reason)) => self.inner.pool.discard(c, reason),
            (None, _) => {}
        }
    }

    /// Asks the pool; parked, waits for the grant until the deadline.
    async fn checkout(&mut self, now: Instant) -> Result<(), Error> {
        let Some((_, rx)) = &self.wait else {
            let key = self
                .ex
                .key()
                .ok_or_else(|| misuse("a checkout without a key"))?;
            let park = |parked: &mut HashMap<_, _>, ticket| {
                let (tx, rx) = smol::channel::bounded(1);
                parked.insert(ticket, tx);
                (ticket, rx)
            };
            match self.inner.pool.checkout(key, park) {
                Ok(got) => self.got(got, now),
                Err(wait) => (self.wait, ()) = (Some(wait), self.ex.handle_wait(now)),
            }
            return Ok(());
        };
        let clock = self.inner.clock;
        let granted = within(&clock, self.ex.poll_timeout(None), rx.recv()).await;
        match granted.map(|g| g.map_err(|_| misuse("the pool dropped a waiter"))) {
            Some(grant) => (self.wait, ()) = (None, self.got(grant?.into(), clock.now())),
            None => self.ex.handle_timeout(None, clock.now()),
        }
        Ok(())
    }

    fn got(&mut self, got: Got<Conn>, now: Instant) {
        match got {
            Got::Idle(mut c, idle_for) => {
                self.ex
                    .handle_idle(&mut c.link, idle_for.unwrap_or_default(), now);
                self.conn = Some(c);
            }
            Got::Dial(permit) => (self.permit, ()) = (Some(permit), self.ex.handle_dial(now)),
        }
    }

    /// Resolves and connects, each within the machine's deadline.
    async fn dial(&mut self) {
        let clock = self.inner.clock;
        let key = self.ex.key().cloned().expect("a dial follows a checkout");
        let host = format!("{}:{}", key.host(), key.port());
        let resolve = smol::net::resolve(host.as_str());
        let Some(resolved) = within(&clock, self.ex.poll_timeout(None), resolve).await else {
            return self.dial_failed(None);
        };
        let (mut last, addrs) = match resolved {
            Ok(addrs) => (io::ErrorKind::NotFound.into(), addrs),
            Err(e) => (e, Vec::new()),
        };
        for addr in addrs {
            self.ex.handle_connect_start(addr, clock.now());
            let connect = Async::<TcpStream>::connect(addr);
            let Some(attempt) = within(&clock, self.ex.poll_timeout(None), connect).await else {
                return self.dial_failed(None);
            };
            let attempt = attempt.and_then(|s| s.get_ref().set_nodelay(true).map(|()| s));
            self.ex
                .handle_connect_done(addr, attempt.as_ref().map(|_| ()));
            match attempt {
                Ok(stream) => {
                    let permit = self.permit.take().expect("a dial comes with a permit");
                    let mut link = Link::new(permit.id(), key, &self.inner.settings.config);
                    self.inner.pool.dial_succeeded(permit);
                    self.ex.handle_dialed(Ok(&mut link), clock.now());
                    self.conn = Some(Conn { stream, link });
                    return;
                }
                Err(e) => last = e,
            }
        }
        self.dial_failed(Some((host, last)));
    }

    /// The dial failed (`None`: timed out): its slot goes to the next waiter.
    fn dial_failed(&mut self, err: Option<(String, io::Error)>) {
        if let Some(permit) = self.permit.take() {
            self.inner.pool.dial_failed(permit);
        }
        let now = self.inner.clock.now();
        match err {
            Some(err) => self.ex.handle_dialed(Err(err), now),
            None => self.ex.handle_timeout(None, now),
        }
    }

    async fn body(&mut self) {
        let mut piece = vec![0; 64 * 1024];
        let read = match self.ex.request_body() {
            Some(reader) => reader.read(&mut piece).await,
            None => Ok(0),
        };
        let now = self.inner.clock.now();
        let (ex, c) = self.conn();
        let piece = read.map(|n| Bytes::from(piece).slice(..n));
        ex.handle_request_body(&mut c.link, piece, now);
    }

    /// Writes `link.out` and/or reads into `link.read_buf`, whichever the
    /// socket allows first, or wakes at the machine's deadline.
    async fn io(&mut self, write: bool, read: bool) {
        let clock = self.inner.clock;
        let (ex, Conn { stream, link }) = self.conn();
        let at = ex.poll_timeout(Some(link));
        link.reserve_read();
        let woke = {
            let w =
                stream.write_with(|mut s| s.write_vectored(buf::with_bytes(&link.out.io_slices())));
            let r = stream.read_with(|s| sys::read_into_spare(s, &mut link.read_buf));
            let (w, r) = (async { (true, w.await) }, async { (false, r.await) });
            match (write, read) {
                (true, true) => within(&clock, at, or(w, r)).await,
                (true, false) => within(&clock, at, w).await,
                _ => within(&clock, at, r).await,
            }
        };
        let now = clock.now();
        match woke {
            None => ex.handle_timeout(Some(link), now),
            Some((_, Err(e))) => ex.handle_io_error(link, e, now),
            Some((true, Ok(0))) => ex.handle_io_error(link, buf::write_zero(), now),
            Some((true, Ok(n))) => ex.handle_written(link, n, now),
            Some((false, Ok(0))) => ex.handle_eof(link, now),
            Some((false, Ok(n))) => ex.handle_input(link, n, now),
        }
    }

    /// The caller let go: abandon or cancel, give back what is held; a
    /// drain the machine asks for goes on in a task of its own, bounded by
    /// the machine's drain deadline.
    pub fn finish(mut self) {
        let now = self.inner.clock.now();
        self.ex
            .abandon(self.conn.as_mut().map(|c| &mut c.link), now);
        self.ex.cancel(self.conn.as_mut().map(|c| &mut c.link), now);
        if let Some((ticket, rx)) = self.wait.take() {
            let mut st = self.inner.pool.lock();
            if st.pool.cancel_wait(ticket) {
                st.parked.remove(&ticket);
            } else if let Ok(grant) = rx.try_recv() {
                self.inner.pool.redeliver(&mut st, grant);
            }
        }
        if let Some(permit) = self.permit.take() {
            self.inner.pool.dial_failed(permit);
        }
        // Bounded: each read takes bytes of the core's drain budget, or
        // ends the drain; what is not there yet is drained by a task.
        loop {
            match self.ex.poll(self.conn.as_mut().map(|c| &mut c.link), now) {
                Action::Release => self.release(None),
                Action::Discard(reason) => self.release(Some(reason)),
                Action::Read => {
                    let draining = self.draining;
                    let (ex, Conn { stream, link }) = self.conn();
                    link.reserve_read();
                    match sys::read_into_spare(stream.get_ref(), &mut link.read_buf) {
                        Ok(0) => ex.handle_eof(link, now),
                        Ok(n) => ex.handle_input(link, n, now),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock && !draining => {
                            self.draining = true;
                            let drain = async move { ResponseBody(Some(self)).discard().await };
                            return smol::spawn(drain).detach();
                        }
                        Err(e) => ex.handle_io_error(link, e, now),
                    }
                }
                _ => return,
            }
        }
    }
}

/// `fut`, or `None` once the machine's deadline `at` passed.
async fn within<T>(clock: &Clock, at: Option<Instant>, fut: impl Future<Output = T>) -> Option<T> {
    let timer = async {
        match at {
            Some(at) => drop(Timer::at(clock.to_std(at)).await),
            None => pending().await,
        }
        None
    };
    or(async { Some(fut.await) }, timer).await
}

pub(crate) fn misuse(what: &'static str) -> Error {
    Error::from_proto(roundtrip_io::proto::Error::Misuse(what), Phase::Body, false)
}
