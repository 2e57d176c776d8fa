//! The trace hook: a callback on [`Config`] that every backend
//! calls with each [`TraceEvent`] of every request (Go's `httptrace`).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use roundtrip_proto::conn::Connection;
use roundtrip_proto::trace::TraceEvent;
use roundtrip_proto::{Error as ProtoError, Event};

use crate::{Config, Error};

/// Which request a trace event belongs to: unique per client (per
/// [`Settings`](crate::exchange::Settings)), the same for every event of one
/// request, its safe retries and redirect hops included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The id numbered `n` (ids are handed out from 1 by each client).
    pub const fn new(n: u64) -> RequestId {
        RequestId(n)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One trace event with what tells it apart from those of concurrent
/// requests, as a [`Tracer::with_ids`] callback receives it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Traced<'a> {
    /// The request it belongs to; `None` for a connection-level event no
    /// request caused (an idle connection expired, evicted or found dead).
    pub request: Option<RequestId>,
    /// When it was reported.
    pub at: Instant,
    /// The event.
    pub event: &'a TraceEvent,
}

/// A callback for trace events; clones share it.
///
/// It is called synchronously where the event happens: on the thread (or
/// task, or event loop) driving the request, never under the pool's lock.
/// Requests in flight at once call it concurrently, so it must be quick and
/// must not block on the client.
///
/// [`Tracer::new`] takes a callback of the events alone;
/// [`Tracer::with_ids`] one of [`Traced`] events, which say which request
/// each belongs to and when it happened.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use roundtrip_io::{Config, Tracer};
/// use roundtrip_io::proto::trace::TraceEvent;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let mut config = Config::default();
/// config.trace = Some(Tracer::new(move |event: &TraceEvent| {
///     sink.lock().unwrap().push(event.clone());
/// }));
/// config.trace(|| TraceEvent::WroteHeaders);
/// assert_eq!(*seen.lock().unwrap(), [TraceEvent::WroteHeaders]);
/// ```
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use roundtrip_io::{Config, Traced, Tracer};
/// use roundtrip_io::proto::trace::TraceEvent;
/// use roundtrip_io::trace::RequestId;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let mut config = Config::default();
/// config.trace = Some(Tracer::with_ids(move |t: &Traced| {
///     sink.lock().unwrap().push((t.request, t.event.clone()));
/// }));
/// config.tracing(Some(RequestId::new(7))).trace(|| TraceEvent::WroteHeaders);
/// assert_eq!(*seen.lock().unwrap(), [(Some(RequestId::new(7)), TraceEvent::WroteHeaders)]);
/// ```
#[derive(Clone)]
pub struct Tracer(Arc<dyn Fn(&Traced<'_>) + Send + Sync>);

impl Tracer {
    /// A tracer calling `f` with each event.
    pub fn new(f: impl Fn(&TraceEvent) + Send + Sync + 'static) -> Tracer {
        Tracer(Arc::new(move |traced: &Traced<'_>| f(traced.event)))
    }

    /// A tracer calling `f` with each event, its request and its time.
    pub fn with_ids(f: impl Fn(&Traced<'_>) + Send + Sync + 'static) -> Tracer {
        Tracer(Arc::new(f))
    }

    /// Reports `event`, of no request.
    pub fn emit(&self, event: &TraceEvent) {
        self.emit_for(None, event)
    }

    /// Reports `event` of `request`, now; nothing while the thread unwinds
    /// from a panic (a tracer that panicked once, say on a lock its panic
    /// poisoned, would panic again and abort the process while the client
    /// closes what it held).
    pub fn emit_for(&self, request: Option<RequestId>, event: &TraceEvent) {
        if std::thread::panicking() {
            return;
        }
        (self.0)(&Traced {
            request,
            at: Instant::now(),
            event,
        })
    }
}

#[cfg(feature = "tracing")]
impl Tracer {
    /// A tracer that emits each event as a [`tracing`] event (feature
    /// `tracing`), for programs that already collect `tracing` output: set
    /// it like any other (`.trace(Tracer::tracing())` on any backend's
    /// builder, or [`Config::trace`]). It is opt-in, not implied by the
    /// feature, so a client without a tracer builds no event at all.
    ///
    /// Each event is emitted at `DEBUG` level with target `roundtrip` and
    /// these fields:
    ///
    /// | field | value |
    /// |---|---|
    /// | `request_id` | the [`RequestId`] number (`u64`); absent for a connection-level event no request caused |
    /// | `event` | the event's name ([`TraceEvent::name`]), e.g. `"GotConn"` |
    /// | `message` | the event's text (its `Display`), e.g. `"got new conn#1"` |
    /// | `timestamp_us` | when it was reported, in microseconds since the Unix epoch (`u64`; monotonic within one tracer: the system clock is read once, when the tracer is made) |
    ///
    /// ```
    /// use roundtrip_io::{Config, Tracer};
    /// use roundtrip_io::proto::trace::TraceEvent;
    ///
    /// let mut config = Config::default();
    /// config.trace = Some(Tracer::tracing());
    /// // With a `tracing` subscriber installed, this is a DEBUG event
    /// // `event="WroteHeaders" message="wrote headers"` of target `roundtrip`.
    /// config.trace(|| TraceEvent::WroteHeaders);
    /// ```
    pub fn tracing() -> Tracer {
        let origin = (Instant::now(), std::time::SystemTime::now());
        Tracer::with_ids(move |traced: &Traced<'_>| {
            let (mono, wall) = origin;
            let since = traced.at.saturating_duration_since(mono);
            let timestamp_us = wall
                .checked_add(since)
                .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
            tracing::debug!(
                target: "roundtrip",
                request_id = traced.request.map(RequestId::get),
                event = traced.event.name(),
                timestamp_us,
                "{}",
                traced.event
            );
        })
    }
}

impl<F: Fn(&TraceEvent) + Send + Sync + 'static> From<F> for Tracer {
    fn from(f: F) -> Tracer {
        Tracer::new(f)
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer(..)")
    }
}

/// A config's tracer bound to one request ([`Config::tracing`]): what the
/// exchange machine reports through.
#[derive(Clone, Copy, Debug)]
pub struct Tracing<'a> {
    tracer: Option<&'a Tracer>,
    request: Option<RequestId>,
}

/// What one write of a request carried, for [`Tracing::trace_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The head; a body follows.
    Head,
    /// The head and the whole body (or the head of a request without one).
    Whole,
    /// A piece of the body; more follows (or its failure is all that counts).
    Body,
    /// The rest of the body, its end included.
    End,
}

impl Config {
    /// This config's tracer, reporting events as `request`'s.
    pub fn tracing(&self, request: Option<RequestId>) -> Tracing<'_> {
        Tracing {
            tracer: self.trace.as_ref(),
            request,
        }
    }

    /// Reports the event `make` builds, of no request, if a tracer is set
    /// (nothing is built otherwise).
    pub fn trace(&self, make: impl FnOnce() -> TraceEvent) {
        self.tracing(None).trace(make)
    }

    /// The next response event `proto` decodes from `buf`, traced as no
    /// request's ([`Tracing::poll_event`]).
    pub fn poll_event<'c>(
        &self,
        proto: &'c mut Connection,
        buf: &'c mut BytesMut,
    ) -> Result<Option<Event<'c>>, ProtoError> {
        self.tracing(None).poll_event(proto, buf)
    }
}

impl Tracing<'_> {
    /// Reports nothing.
    pub fn off() -> Tracing<'static> {
        Tracing {
            tracer: None,
            request: None,
        }
    }

    /// True when a tracer is set.
    pub fn is_on(&self) -> bool {
        self.tracer.is_some()
    }

    /// Reports the event `make` builds, if a tracer is set (nothing is built
    /// otherwise).
    pub fn trace(&self, make: impl FnOnce() -> TraceEvent) {
        if let Some(tracer) = self.tracer {
            tracer.emit_for(self.request, &make());
        }
    }

    /// Reports what one finished write of a request means for the trace:
    /// [`TraceEvent::WroteHeaders`] once the head went out,
    /// [`TraceEvent::WroteRequest`] once all of it did or a write failed.
    pub fn trace_write<T>(&self, written: &Result<T, Error>, part: Written) {
        match written {
            Ok(_) => self.trace_wrote(part),
            Err(e) => self.trace_write_failed(e),
        }
    }

    /// [`trace_write`](Self::trace_write) for a write that succeeded.
    pub fn trace_wrote(&self, part: Written) {
        let wrote_request = || TraceEvent::WroteRequest { result: Ok(()) };
        match part {
            Written::Head => self.trace(|| TraceEvent::WroteHeaders),
            Written::Whole => {
                self.trace(|| TraceEvent::WroteHeaders);
                self.trace(wrote_request);
            }
            Written::Body => {}
            Written::End => self.trace(wrote_request),
        }
    }

    /// [`trace_write`](Self::trace_write) for a write that failed with `e`.
    pub fn trace_write_failed(&self, e: &Error) {
        self.trace(|| TraceEvent::WroteRequest {
            result: Err(e.to_string()),
        });
    }

    /// Call before each `poll_event` while a response is due: reports
    /// [`TraceEvent::GotFirstResponseByte`] when `buf` holds bytes the core
    /// has not yet counted as the response's first.
    pub fn trace_first_byte(&self, proto: &Connection, buf: &BytesMut) {
        if self.tracer.is_some() && !buf.is_empty() && !proto.received_any_byte() {
            self.trace(|| TraceEvent::GotFirstResponseByte);
        }
    }

    /// The next response event `proto` decodes from `buf`, traced: the
    /// first response byte ([`trace_first_byte`](Self::trace_first_byte))
    /// and each interim (1xx) response.
    pub fn poll_event<'c>(
        &self,
        proto: &'c mut Connection,
        buf: &'c mut BytesMut,
    ) -> Result<Option<Event<'c>>, ProtoError> {
        if self.tracer.is_none() {
            return proto.poll_event(buf);
        }
        self.trace_first_byte(proto, buf);
        let event = proto.poll_event(buf)?;
        if let Some(interim) = event.as_ref().and_then(TraceEvent::interim) {
            self.trace(|| interim);
        }
        Ok(event)
    }
}

/// The text of a failed connect in [`TraceEvent::ConnectDone`]: `"timed out"`
/// for a timeout, whichever way the backend noticed it, else the error's own.
pub fn connect_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut => TIMED_OUT.to_string(),
        _ => e.to_string(),
    }
}

/// The text of [`TraceEvent::ConnectDone`] for a connect that timed out.
pub const TIMED_OUT: &str = "timed out";
