//! The trace hook: a callback on [`Config`] that every backend
//! calls with each [`TraceEvent`] of every request (Go's `httptrace`).

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use roundtrip_proto::conn::Connection;
use roundtrip_proto::trace::TraceEvent;
use roundtrip_proto::{Error as ProtoError, Event};

use crate::{Config, Error};

/// A callback for trace events; clones share it.
///
/// It is called synchronously where the event happens: on the thread (or
/// task, or event loop) driving the request, never under the pool's lock.
/// Requests in flight at once call it concurrently, so it must be quick and
/// must not block on the client.
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
#[derive(Clone)]
pub struct Tracer(Arc<dyn Fn(&TraceEvent) + Send + Sync>);

impl Tracer {
    /// A tracer calling `f` with each event.
    pub fn new(f: impl Fn(&TraceEvent) + Send + Sync + 'static) -> Tracer {
        Tracer(Arc::new(f))
    }

    /// Reports `event`.
    pub fn emit(&self, event: &TraceEvent) {
        (self.0)(event)
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer(..)")
    }
}

/// What one write of a request carried, for [`Config::trace_write`].
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
    /// Reports the event `make` builds, if a tracer is set (nothing is built
    /// otherwise).
    pub fn trace(&self, make: impl FnOnce() -> TraceEvent) {
        if let Some(tracer) = &self.trace {
            tracer.emit(&make());
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
        if self.trace.is_some() && !buf.is_empty() && !proto.received_any_byte() {
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
        if self.trace.is_none() {
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
