//! One exchange as the driver keeps it: the request, where it stands
//! ([`Stage`]), how far its body was sent, and the response being received.
//! Nothing here does I/O; the driver moves an exchange through its stages.

use bytes::Bytes;
use roundtrip_io::http::request::Parts;
use roundtrip_io::http::{Extensions, HeaderMap};
use roundtrip_io::proto::Event;
use roundtrip_io::proto::pool::Ticket;
use roundtrip_io::proto::time::Instant;
use roundtrip_io::trace::Written;
use roundtrip_io::{
    Collected, Config, Error, GzipDecoder, HeadBuilder, Hop, Phase, Prepared, Redirects,
    ResponseHead, trailer_into,
};

use crate::body::{Body, Flow, OnData, Receive, RequestId, Response, Trailers};
use crate::conn::Conn;
use crate::timer::Deadline;

/// Size of one read from a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// Where an exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Not yet checked out (or about to be retried).
    New,
    /// Queued for `max_conns_per_host`.
    Waiting(Ticket),
    /// Its connection (this slot) is connecting.
    Dialing(usize),
    /// On the connection in this slot.
    Active(usize),
}

/// How far the request body went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sending {
    /// The core has not allowed it yet (100-continue), or nothing was queued.
    Unsent,
    /// A reader is being streamed.
    Streaming,
    /// All queued, its end included (or there is none).
    Done,
}

/// How much of the request the socket took, as traces report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wrote {
    /// Not yet the whole head.
    Nothing,
    /// The head (and maybe some of the body).
    Head,
    /// All of it.
    All,
}

/// Why the caller stopped reading the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The stream callback said [`Flow::Stop`] (or the request was cancelled).
    Caller,
    /// The collected body would pass this limit.
    TooLarge { limit: u64 },
    /// The response is a redirect being followed: its body is not wanted.
    Redirect,
}

/// What one response event means for the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep decoding.
    More,
    /// The final head arrived (only from [`Recv::on_event`]; the exchange
    /// decides on it before anything else).
    Head,
    /// The caller stopped reading: ask the core whether to drain or close.
    Stop,
    /// The response is complete.
    End,
    /// A 101 or a 2xx to CONNECT: the connection is not HTTP any more.
    Switched,
}

pub(crate) struct Exchange {
    pub serial: u64,
    pub parts: Parts,
    pub body: Body,
    pub prepared: Prepared,
    pub stage: Stage,
    pub retried: bool,
    /// Cancelled by the caller: settles its connection, reports nothing.
    pub cancelled: bool,
    /// The whole-exchange deadline (`Config::timeout` / `RequestTimeout`).
    pub deadline: Deadline,
    pub sending: Sending,
    pub wrote: Wrote,
    pub recv: Recv,
    /// The URLs requested so far, and the decision on each redirect.
    pub redirects: Redirects,
    /// The redirect to follow once this response is drained or closed.
    pub hop: Option<Hop>,
}

impl Exchange {
    pub fn new(
        serial: u64,
        parts: Parts,
        body: Body,
        prepared: Prepared,
        receive: Receive,
    ) -> Self {
        let sink = match receive {
            Receive::Collect { max_bytes } => Sink::Collect { max_bytes },
            Receive::Stream(callback) => Sink::Stream(callback),
        };
        Exchange {
            serial,
            redirects: Redirects::new(&parts.uri),
            hop: None,
            parts,
            body,
            prepared,
            stage: Stage::New,
            retried: false,
            cancelled: false,
            deadline: Deadline::default(),
            sending: Sending::Unsent,
            wrote: Wrote::Nothing,
            recv: Recv {
                builder: HeadBuilder::default(),
                head: None,
                sink,
                body: Collected::default(),
                trailers: None,
                stop: None,
                gzip: None,
                extensions: Extensions::new(),
            },
        }
    }

    /// Takes one response event; on the final head, decides on redirects
    /// and decoding (see `follow.rs`). `reached`: any byte of the request
    /// was written.
    pub fn on_event(
        &mut self,
        event: Event,
        reached: bool,
        config: &Config,
    ) -> Result<Step, Error> {
        match self.recv.on_event(event, reached)? {
            Step::Head => self.on_head(config),
            step => Ok(step),
        }
    }

    pub fn id(&self, slot: usize) -> RequestId {
        RequestId {
            serial: self.serial,
            slot,
        }
    }

    /// What the exchange is doing, for errors; `conn` is its connection.
    pub fn phase(&self, conn: Option<&Conn>) -> Phase {
        match self.stage {
            Stage::New | Stage::Waiting(_) => Phase::PoolWait,
            Stage::Dialing(_) => Phase::Connect,
            Stage::Active(_) if self.recv.head.is_some() => Phase::Body,
            Stage::Active(_) => {
                let queued = conn.is_some_and(|c| !c.out.is_empty());
                if queued || self.sending == Sending::Streaming {
                    Phase::Write
                } else {
                    Phase::ResponseHead
                }
            }
        }
    }

    /// The phase of a response-side failure.
    pub fn recv_phase(&self) -> Phase {
        if self.recv.head.is_some() {
            Phase::Body
        } else {
            Phase::ResponseHead
        }
    }

    /// Back to the start, to be sent again on another connection.
    pub fn reset_for_retry(&mut self) {
        self.retried = true;
        self.stage = Stage::New;
        self.sending = Sending::Unsent;
        self.wrote = Wrote::Nothing;
        let recv = &mut self.recv;
        recv.builder = HeadBuilder::default();
        recv.head = None;
        recv.body = Collected::default();
        recv.trailers = None;
        recv.stop = None;
        recv.gzip = None;
        recv.extensions = Extensions::new();
    }

    /// The result once the response ended (or the caller stopped reading),
    /// taken out piece by piece: the exchange (over a kilobyte) is then
    /// dropped where it lies instead of being moved out of its slot.
    pub fn take_result(&mut self) -> Result<Response, Error> {
        let recv = &mut self.recv;
        if let Some(Stop::TooLarge { limit }) = recv.stop {
            return Err(Error::BodyTooLarge { limit });
        }
        let Some(head) = recv.head.take() else {
            // Unreachable: an exchange completes only after its final head.
            return Err(Error::ClosedEarly {
                phase: Phase::ResponseHead,
                reached_server: true,
            });
        };
        let mut response = head.into_response(std::mem::take(&mut recv.body).freeze());
        if let Some(trailers) = recv.trailers.take() {
            response.extensions_mut().insert(Trailers(trailers));
        }
        response
            .extensions_mut()
            .extend(std::mem::take(&mut recv.extensions));
        if let Some(chain) = std::mem::take(&mut self.redirects).into_followed() {
            response.extensions_mut().insert(chain);
        }
        Ok(response)
    }
}

/// Queues the next part of the request body when the core allows it and the
/// previous part was written. `Ok(false)`: nothing to queue now.
/// What the write that emptied the queue completed, for the trace; moves
/// `exchange.wrote` on.
pub(crate) fn flushed(exchange: &mut Exchange) -> Written {
    let done = exchange.sending == Sending::Done;
    let (part, wrote) = match (exchange.wrote, done) {
        (Wrote::Nothing, true) => (Written::Whole, Wrote::All),
        (Wrote::Nothing, false) => (Written::Head, Wrote::Head),
        (Wrote::Head, true) => (Written::End, Wrote::All),
        (wrote, _) => (Written::Body, wrote),
    };
    exchange.wrote = wrote;
    part
}

pub(crate) fn queue_body(
    conn: &mut Conn,
    exchange: &mut Exchange,
    now: Instant,
) -> Result<bool, Error> {
    if exchange.sending == Sending::Done
        || !conn.proto.may_send_body()
        || !conn.out.can_queue_body()
    {
        return Ok(false);
    }
    let reached = conn.proto.wrote_any_byte();
    let refused = |e| Error::from_proto(e, Phase::Write, reached);
    conn.out.compact();
    let data = match exchange.body.as_bytes() {
        Some(bytes) => bytes.clone(),
        None => {
            exchange.sending = Sending::Streaming;
            crate::body::read_chunk(&mut exchange.body, UPLOAD_CHUNK).map_err(Error::RequestBody)?
        }
    };
    if !data.is_empty() {
        let frame = conn.proto.frame_body(data.len()).map_err(refused)?;
        conn.out.head.extend_from_slice(frame.prefix());
        conn.out.body = data;
        conn.out.tail.extend_from_slice(frame.suffix());
    }
    // A body in memory ends with its one piece; a reader at its first empty read.
    if exchange.body.as_bytes().is_some() || conn.out.body.is_empty() {
        conn.proto
            .finish_body([], now, &mut conn.out.tail)
            .map_err(refused)?;
        exchange.sending = Sending::Done;
    }
    Ok(true)
}

/// The response as it is received.
pub(crate) struct Recv {
    builder: HeadBuilder,
    head: Option<ResponseHead>,
    sink: Sink,
    body: Collected,
    trailers: Option<HeaderMap>,
    stop: Option<Stop>,
    /// Decodes a gzip body the client asked for, before the sink.
    gzip: Option<GzipDecoder>,
    /// Added to the finished response's (e.g. `Decompressed`).
    extensions: Extensions,
}

enum Sink {
    Collect { max_bytes: u64 },
    Stream(OnData),
}

impl Recv {
    /// True once the caller stopped reading (the rest is being drained).
    pub fn is_stopped(&self) -> bool {
        self.stop.is_some()
    }

    /// Marks the body as no longer wanted.
    pub fn stop(&mut self, why: Stop) {
        self.stop.get_or_insert(why);
    }

    /// The final head, once it arrived.
    pub fn head_mut(&mut self) -> Option<&mut ResponseHead> {
        self.head.as_mut()
    }

    /// Passes the body through `decoder` from now on; `extensions` go into
    /// the finished response.
    pub fn decode_with(&mut self, decoder: Option<GzipDecoder>, extensions: Extensions) {
        self.gzip = decoder;
        self.extensions = extensions;
    }

    /// Takes one response event. `reached`: any byte of the request was written.
    pub fn on_event(&mut self, event: Event, reached: bool) -> Result<Step, Error> {
        if self.head.is_none() {
            // Stored only once it is there: assigning the `Option` on every
            // head event copied its 168 bytes each time.
            return match self.builder.push(event) {
                Ok(None) => Ok(Step::More),
                Ok(Some(head)) => {
                    self.head = Some(head);
                    Ok(Step::Head)
                }
                Err(e) => Err(Error::from_proto(e, Phase::ResponseHead, reached)),
            };
        }
        match event {
            Event::Data(data) if !data.is_empty() && self.stop.is_none() => {
                let Some(mut gzip) = self.gzip.take() else {
                    return Ok(self.sink(data));
                };
                gzip.handle_input(data);
                let step = self.sink_decoded(&mut gzip);
                self.gzip = Some(gzip);
                step
            }
            Event::End if self.stop.is_none() => {
                if let Some(gzip) = &mut self.gzip {
                    gzip.handle_end()?;
                }
                Ok(Step::End)
            }
            Event::Trailer(field) => {
                let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                trailer_into(trailers, &field)
                    .map_err(|e| Error::from_proto(e, Phase::Body, reached))?;
                Ok(Step::More)
            }
            Event::End => Ok(Step::End),
            Event::Switched => Ok(Step::Switched),
            _ => Ok(Step::More),
        }
    }

    /// Hands every piece `gzip` decodes to the sink. A corrupt stream is an
    /// error, never a short body.
    fn sink_decoded(&mut self, gzip: &mut GzipDecoder) -> Result<Step, Error> {
        // Bounded by the input just given: each piece consumes some of it.
        while let Some(data) = gzip.poll_output()? {
            if self.sink(data) == Step::Stop {
                return Ok(Step::Stop);
            }
        }
        Ok(Step::More)
    }

    /// Collects `data` or streams it to the callback.
    fn sink(&mut self, data: Bytes) -> Step {
        let Some(head) = &self.head else {
            return Step::More; // unreachable: data comes after the head
        };
        match &mut self.sink {
            Sink::Collect { max_bytes } => {
                if self.body.push_within(data, *max_bytes).is_err() {
                    self.stop = Some(Stop::TooLarge { limit: *max_bytes });
                    return Step::Stop;
                }
            }
            Sink::Stream(callback) => {
                if callback(head, data) == Flow::Stop {
                    self.stop = Some(Stop::Caller);
                    return Step::Stop;
                }
            }
        }
        Step::More
    }
}
