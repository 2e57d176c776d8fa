//! `ResponseDecoder`: bytes in, response events out.
//!
//! ```text
//!             +------+  head complete   +------+  fields done  +---------+
//!   bytes --> | Head | ---------------> | Emit | ------------> | HeadEnd |
//!             +------+                  +------+               +---------+
//!                ^   1xx: next head                                 |
//!                +--------------------------------------------------+
//!                |                                                  | framing
//!                |   End       +------+  Data / Trailer / End       v
//!                +------------ | Body | <---------------------------+
//!                              +------+        101 / CONNECT 2xx -> Switched
//! ```

use core::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

use crate::body::{BodyDecoder, BodyEvent};
use crate::error::{Error, Phase};
use crate::framing::{Decision, Framing, FramingFields, RequestKind, Reuse, decide};
use crate::head::{Field, FieldSpan, HeadScanner, Version};
use crate::limits::Limits;

/// The status line of a response, borrowed from the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// The version, with `HTTP/1.x` for x > 1 read as HTTP/1.1.
    pub version: Version,
    /// The three-digit status code.
    pub code: u16,
    /// The reason phrase as sent (may be empty).
    pub reason: &'a [u8],
    /// How many header fields follow: the head is scanned whole before it
    /// is reported, so a caller can size its field map once.
    pub fields: usize,
}

impl StatusLine<'_> {
    /// True for an interim (1xx) response other than 101.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.code) && self.code != 101
    }
}

/// End of a response head, with every protocol decision about it made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadEnd {
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub reuse: Reuse,
    /// True for an interim (1xx) response: another head follows.
    pub interim: bool,
    /// The server's `Keep-Alive: timeout=N` hint, if any.
    pub keep_alive_timeout: Option<Duration>,
}

/// The fields of a head, all at once: see
/// [`ResponseDecoder::take_fields`]. Each is a [`Field`] as a
/// [`Event::Field`] would carry it.
#[derive(Clone, Debug, Default)]
pub struct Fields<'a> {
    head: &'a [u8],
    shared: Option<&'a Bytes>,
    spans: core::slice::Iter<'a, FieldSpan>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    #[inline]
    fn next(&mut self) -> Option<Field<'a>> {
        let span = *self.spans.next()?;
        Some(Field::new(self.head, self.shared, span))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// What the decoder reports, in order:
/// `Status`, `Field`*, `HeadEnd`, then `Data`*, `Trailer`*, `End` (or
/// `Switched` after the head of a 101 or a 2xx to CONNECT). Interim 1xx
/// responses are reported as `Status`, `Field`*, `HeadEnd` before the final one.
///
/// Head events borrow the decoder and the read buffer (no copy, no reference
/// count touched); an event lives until the next call to the decoder. Body
/// data is an owned `Bytes` split off the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A status line.
    Status(StatusLine<'a>),
    /// A header field.
    Field(Field<'a>),
    /// The head ended; framing and reuse are decided.
    HeadEnd(HeadEnd),
    /// Body bytes, transfer coding removed.
    Data(Bytes),
    /// A trailer field of a chunked body.
    Trailer(Field<'a>),
    /// The response ended.
    End,
    /// HTTP ended on this connection: the bytes left in the buffer, and all
    /// that follow, belong to the caller.
    Switched,
}

/// What one step produced; [`ResponseDecoder::event`] makes the event,
/// borrowing the decoder where the event points into the head.
#[derive(Debug)]
pub(crate) enum Out {
    Nothing,
    Status,
    Field(FieldSpan),
    HeadEnd(HeadEnd),
    Data(Bytes),
    Trailer(FieldSpan),
    End,
    Switched,
}

/// Where the decoder is.
#[derive(Debug)]
enum State {
    /// Scanning a head.
    Head,
    /// Reporting the complete head (at the front of the read buffer, or
    /// split off into `ResponseDecoder::head` when heads are shared): `next`
    /// is the field to report next.
    Emit { next: usize },
    /// Reading a body with `ResponseDecoder::body`.
    Body,
    /// After a 101 or CONNECT 2xx: nothing more to decode once `Switched`
    /// was reported.
    Switched { reported: bool },
    /// After a response that ends the connection's use (`Reuse::No`): the
    /// server should close; any further byte is an error.
    Closing,
    /// The connection was closed cleanly between responses.
    Closed,
}

/// Incremental, zero-copy HTTP/1.x response decoder.
///
/// The caller owns the read buffer: it appends received bytes and calls
/// [`poll_event`](Self::poll_event) until it returns `Ok(None)` (more bytes
/// needed). The decoder consumes from the front of the buffer and keeps only
/// small state between calls, so input may arrive in pieces of any size.
/// Several responses in a row are decoded one after the other.
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_proto::{Event, Framing, ResponseDecoder};
///
/// let mut dec = ResponseDecoder::default();
/// let mut buf = BytesMut::new();
/// let mut body = Vec::new();
/// for piece in [&b"HTTP/1.1 200 OK\r\nTransfer-Enc"[..], b"oding: chunked\r\n\r\n5\r\nhel", b"lo\r\n0\r\n\r\n"] {
///     buf.extend_from_slice(piece);
///     while let Some(event) = dec.poll_event(&mut buf).unwrap() {
///         match event {
///             Event::HeadEnd(end) => assert_eq!(end.framing, Framing::Chunked),
///             Event::Data(data) => body.extend_from_slice(&data),
///             _ => {}
///         }
///     }
/// }
/// assert_eq!(body, b"hello");
/// ```
#[derive(Debug)]
pub struct ResponseDecoder {
    limits: Limits,
    request: RequestKind,
    state: State,
    scanner: HeadScanner,
    /// Interim responses seen before the current final one.
    interim: usize,
    /// Bytes of the current message consumed from the buffer.
    offset: u64,
    /// Reuse verdict of the current final response.
    reuse: Reuse,
    /// Final responses completed.
    responses: u64,
    eof: bool,
    error: Option<Error>,
    /// Split heads off the buffer as `Bytes` (see `share_heads`).
    share_heads: bool,
    /// The head being reported (State::Emit) when heads are shared.
    head: Bytes,
    /// The length of the head being reported when it is not shared: it
    /// still lies at the front of the read buffer (0 otherwise).
    head_in_buf: usize,
    /// What was decided about it.
    decision: Decision,
    keep_alive_timeout: Option<Duration>,
    /// The body decoder (State::Body). Kept here, not in the state, so that
    /// state changes move a few bytes only.
    body: BodyDecoder,
}

impl Default for ResponseDecoder {
    fn default() -> Self {
        ResponseDecoder::new(Limits::default())
    }
}

impl ResponseDecoder {
    /// A decoder for responses to GET-like requests, with `limits`.
    pub fn new(limits: Limits) -> Self {
        ResponseDecoder {
            limits,
            request: RequestKind::Other,
            state: State::Head,
            scanner: HeadScanner::with_capacity(limits.max_fields.min(64)),
            interim: 0,
            offset: 0,
            reuse: Reuse::Yes,
            responses: 0,
            eof: false,
            error: None,
            share_heads: false,
            head: Bytes::new(),
            head_in_buf: 0,
            decision: Decision {
                framing: Framing::NoBody,
                reuse: Reuse::Yes,
            },
            keep_alive_timeout: None,
            body: BodyDecoder::Length {
                remaining: 0,
                expected: 0,
            },
        }
    }

    /// Returns to the state of a new decoder (same limits), keeping its
    /// allocations: for the next exchange on a connection. The request's
    /// method is forgotten too: set it again for a `HEAD` or `CONNECT`
    /// ([`set_request_method`](Self::set_request_method)). Meant for
    /// between messages: a head being reported without shared heads still
    /// lies at the front of the read buffer, and stays there.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.scanner.reset();
        self.interim = 0;
        self.offset = 0;
        self.reuse = Reuse::Yes;
        self.responses = 0;
        self.eof = false;
        self.error = None;
        self.head = Bytes::new();
        self.head_in_buf = 0;
        self.request = RequestKind::Other;
    }

    /// Whether the fields of a head also come as `Bytes`.
    ///
    /// Off (the default), a complete head stays at the front of the read
    /// buffer while its events borrow it, and is then consumed with a plain
    /// advance: nothing is counted or shared, which is what a caller that
    /// reads names and values as slices wants. On, the head is split off the
    /// buffer first, so that [`Field::name_bytes`] and [`Field::value_bytes`]
    /// give `Some` slices sharing it (two reference-count updates per head):
    /// for a caller that keeps values, e.g. as `http::HeaderValue`s, without
    /// copying them. Trailer fields always come as `Bytes`.
    ///
    /// A shared head is split off only when its response looks whole in the
    /// buffer (no body, the whole `Content-Length`, a chunked body up to an
    /// empty line) and its body is at most 16 KiB, and is not an interim
    /// (1xx) one, which a caller keeps beside the final response; the head
    /// of a body that
    /// streams on through later reads, or of a longer one, is copied into
    /// an allocation of its own instead (one per such response), so that a
    /// caller keeping the head does not keep the read buffer alive, and
    /// with it every byte read into it, for this one response: a reader can
    /// then reuse one buffer for long bodies streamed, or lend one to many
    /// connections.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::{Event, ResponseDecoder};
    ///
    /// let mut dec = ResponseDecoder::default();
    /// dec.share_heads(true);
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 204 No Content\r\nServer: demo\r\n\r\n"[..]);
    /// let mut kept = None;
    /// while let Some(event) = dec.poll_event(&mut buf).unwrap() {
    ///     if let Event::Field(f) = event {
    ///         kept = f.value_bytes();
    ///     }
    /// }
    /// assert_eq!(kept.unwrap(), "demo");
    /// ```
    pub fn share_heads(&mut self, share: bool) {
        self.share_heads = share;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sets the method of the request the next responses answer (HEAD and
    /// CONNECT change the framing).
    pub fn set_request_method(&mut self, method: &[u8]) {
        self.request = RequestKind::of(method);
    }

    /// Sets what the next responses answer, as a [`RequestKind`].
    pub fn set_request_kind(&mut self, kind: RequestKind) {
        self.request = kind;
    }

    /// The server closed the connection after the bytes already given.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// True when [`poll_event`](Self::poll_event) would report nothing
    /// before more bytes or the end of input arrive: a head is awaited,
    /// `buf` is empty, no end of input and no error was seen. A caller can
    /// go straight to reading then.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::ResponseDecoder;
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::new();
    /// assert!(dec.awaits_input(&buf));
    /// buf.extend_from_slice(b"HTTP/1.1 2");
    /// assert!(!dec.awaits_input(&buf));
    /// assert!(dec.poll_event(&mut buf)?.is_none());
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    #[inline]
    pub fn awaits_input(&self, buf: &BytesMut) -> bool {
        buf.is_empty()
            && !self.eof
            && self.error.is_none()
            && matches!(self.state, State::Head)
            // A head may not be empty: with no room at all, the poll fails.
            && self.limits.max_head_bytes > 0
    }

    /// True when the decoder is between responses with no byte of the next
    /// one consumed.
    pub fn is_between_messages(&self) -> bool {
        matches!(self.state, State::Head) && self.interim == 0 && self.scanner.is_empty()
    }

    /// True after a `Switched` event.
    pub fn is_switched(&self) -> bool {
        matches!(self.state, State::Switched { .. })
    }

    /// Body bytes still announced by `Content-Length`, while reading such a body.
    pub fn remaining_body(&self) -> Option<u64> {
        match &self.state {
            State::Body => self.body.remaining(),
            _ => None,
        }
    }

    /// Data bytes still announced by the size line of the current chunk
    /// (0 between chunks), while reading a chunked body: like
    /// [`remaining_body`](Self::remaining_body), lets an adapter size its
    /// next read to take the rest of the chunk at once.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::decode::{Event, ResponseDecoder};
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\nabc"[..]);
    /// while !matches!(dec.poll_event(&mut buf)?, Some(Event::Data(_)) | None) {}
    /// assert_eq!(dec.remaining_chunk(), Some(0x10000 - 3));
    /// assert_eq!(dec.remaining_body(), None);
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn remaining_chunk(&self) -> Option<u64> {
        match &self.state {
            State::Body => self.body.remaining_chunk(),
            _ => None,
        }
    }

    /// Body bytes the caller may move from the transport straight into
    /// memory of its own, skipping `buf` (a read into the slice a reader of
    /// the body gave, say): `Some` while a body is read and `buf` holds
    /// none of it, with the rest of a `Content-Length` body, of the current
    /// chunk, or `u64::MAX` for a body that runs until the close; `None`
    /// where framing bytes come next (a chunk size line or its CRLF) or
    /// after an end. Report what was moved with
    /// [`take_body_direct`](Self::take_body_direct).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::decode::{Event, ResponseDecoder};
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"[..]);
    /// while !matches!(dec.poll_event(&mut buf)?, Some(Event::Data(_)) | None) {}
    /// assert_eq!(dec.direct_body_room(&buf), Some(7));
    /// dec.take_body_direct(&buf, 7, 0)?; // read elsewhere
    /// assert!(matches!(dec.poll_event(&mut buf)?, Some(Event::End)));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn direct_body_room(&self, buf: &BytesMut) -> Option<u64> {
        self.direct_room_holding(buf.len())
    }

    /// True when the body being read ends within `buf`: every byte up to
    /// its end was received (chunk framing and trailers included), though
    /// not all of it was taken yet. A body that runs until the close ends
    /// once the close was seen. False outside a body and after an error.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::decode::{Event, ResponseDecoder};
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"[..]);
    /// while !matches!(dec.poll_event(&mut buf)?, Some(Event::HeadEnd(_))) {}
    /// assert!(!dec.body_ends_in(&buf));
    /// buf.extend_from_slice(b"cd");
    /// assert!(dec.body_ends_in(&buf));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn body_ends_in(&self, buf: &BytesMut) -> bool {
        if !matches!(self.state, State::Body) || self.error.is_some() {
            return false;
        }
        match &self.body {
            BodyDecoder::Length { remaining, .. } => *remaining <= buf.len() as u64,
            BodyDecoder::UntilClose { .. } => self.eof,
            BodyDecoder::Chunked(chunked) => {
                // A dry run on copies: the rest of the chunks, as far as
                // they were received.
                let mut body = BodyDecoder::Chunked(chunked.clone());
                let (mut rest, mut offset) = (buf.clone(), self.offset);
                // Bounded: each event but the end consumes a byte or more.
                for _ in 0..=buf.len() {
                    match body.poll(&mut rest, self.eof, &mut offset, &self.limits) {
                        Ok(Some(BodyEvent::End)) => return true,
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => return false,
                    }
                }
                false
            }
        }
    }

    /// [`direct_body_room`](Self::direct_body_room) with `held` bytes in
    /// the buffer.
    fn direct_room_holding(&self, held: usize) -> Option<u64> {
        let reading = matches!(self.state, State::Body) && self.error.is_none() && !self.eof;
        if !reading || held != 0 {
            return None;
        }
        self.body.direct_room()
    }

    /// `n` body bytes, at most [`direct_body_room`](Self::direct_body_room)
    /// allowed, were moved without `buf`; the last `appended` bytes of
    /// `buf` came after them in the same read (a scatter read whose second
    /// part was `buf`'s spare room; 0 without one), and are decoded from
    /// `buf` as usual. More than the room, more `appended` than `buf`
    /// holds, or a `buf` holding bytes besides the `appended` ones, is
    /// [`Error::Misuse`]; that the `appended` bytes came with this read is
    /// the caller's word.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::decode::{Event, ResponseDecoder};
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nh"[..]);
    /// while !matches!(dec.poll_event(&mut buf)?, Some(Event::Data(_)) | None) {}
    /// assert_eq!(dec.direct_body_room(&buf), Some(4));
    /// // One read: "ello" into the caller's memory, the chunk's end after it.
    /// buf.extend_from_slice(b"\r\n0\r\n\r\n");
    /// dec.take_body_direct(&buf, 4, 7)?;
    /// assert!(matches!(dec.poll_event(&mut buf)?, Some(Event::End)));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn take_body_direct(
        &mut self,
        buf: &BytesMut,
        n: u64,
        appended: usize,
    ) -> Result<(), Error> {
        let held = buf.len().checked_sub(appended);
        match held.and_then(|held| self.direct_room_holding(held)) {
            Some(room) if n <= room => {
                self.body.take_direct(n, &mut self.offset);
                Ok(())
            }
            _ => Err(Error::Misuse(
                "body bytes taken past what direct_body_room allowed",
            )),
        }
    }

    /// Decodes the next event from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed (or, after
    /// [`handle_eof`](Self::handle_eof), that the stream ended cleanly).
    /// Errors are sticky.
    ///
    /// The caller only appends to `buf` between calls: while a head is
    /// reported, its events may point into the front of `buf`. Bytes taken
    /// from its front meanwhile are [`Error::Misuse`].
    #[inline(always)]
    pub fn poll_event<'a>(&'a mut self, buf: &'a mut BytesMut) -> Result<Option<Event<'a>>, Error> {
        // The hot path: the next field of a head being reported.
        if let Some(span) = self.next_field(buf) {
            return Ok(self.event(Out::Field(span), buf));
        }
        let out = self.advance(buf)?;
        Ok(self.event(out, buf))
    }

    /// Every field of the head being reported that was not reported yet,
    /// at once: after [`Event::Status`], instead of one [`Event::Field`] a
    /// poll, for a caller that puts them all in one map. The next
    /// [`poll_event`](Self::poll_event) reports the head's end. Empty
    /// outside a head being reported.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::{Event, ResponseDecoder};
    ///
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n"[..]);
    /// assert!(matches!(dec.poll_event(&mut buf)?, Some(Event::Status(_))));
    /// let fields = dec.take_fields(&buf);
    /// assert_eq!(fields.len(), 3);
    /// let names: Vec<&[u8]> = fields.map(|f| f.name()).collect();
    /// assert_eq!(names, [&b"A"[..], b"B", b"Content-Length"]);
    /// assert!(matches!(dec.poll_event(&mut buf)?, Some(Event::HeadEnd(_))));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn take_fields<'a>(&'a mut self, buf: &'a BytesMut) -> Fields<'a> {
        let spans = match &mut self.state {
            // A buffer cut short while the head is reported is the misuse
            // the next `poll_event` reports; nothing is taken from it here,
            // nor after any error.
            State::Emit { next } if buf.len() >= self.head_in_buf && self.error.is_none() => {
                let from = (*next).min(self.scanner.fields.len());
                *next = self.scanner.fields.len();
                from..self.scanner.fields.len()
            }
            _ => 0..0,
        };
        let (head, shared) = self.head(buf);
        Fields {
            head,
            shared,
            spans: self.scanner.fields[spans].iter(),
        }
    }

    /// The hot path of [`poll_event`](Self::poll_event) and of the
    /// connection's: takes the next field of a head being reported, if
    /// there is one (and the buffer still holds the head). A field changes
    /// no state but the position, so it needs none of `advance`'s work.
    #[inline(always)]
    pub(crate) fn next_field(&mut self, buf: &BytesMut) -> Option<FieldSpan> {
        if let State::Emit { next, .. } = &mut self.state
            && buf.len() >= self.head_in_buf
            && self.error.is_none()
            && let Some(&span) = self.scanner.fields.get(*next)
        {
            *next += 1;
            return Some(span);
        }
        None
    }

    /// One step, with the sticky error: what `poll_event` does before it
    /// makes the event (a connection looks at the step in between).
    ///
    /// One call frame per step, and one copy of the head parser: `step`,
    /// `poll_head` and `HeadScanner::scan` are inlined into this function
    /// (each frame they saved, six saved registers, a large stack frame and
    /// a `Result` through memory, was a measurable share of a small head's
    /// decode, `examples/head_min.rs`), while this one stays out of line, so
    /// that a caller with several `poll_event` sites still gets the field
    /// fast path of `poll_event` inlined into each of them. Left to the
    /// inliner, a second call site made `poll_event` a call per event:
    /// small head 104 -> 130 ns.
    #[inline(never)]
    pub(crate) fn advance(&mut self, buf: &mut BytesMut) -> Result<Out, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.step(buf).inspect_err(|e| self.error = Some(e.clone()))
    }

    /// The status code of the head being reported.
    pub(crate) fn status_code(&self) -> Option<u16> {
        self.scanner.status.map(|s| s.code)
    }

    /// Turns what a step produced into an event borrowing the decoder, or
    /// the front of `buf` where an unshared head lies.
    #[inline(always)]
    pub(crate) fn event<'a>(&'a self, out: Out, buf: &'a BytesMut) -> Option<Event<'a>> {
        Some(match out {
            Out::Nothing => return None,
            Out::Status => {
                let (State::Emit { .. }, Some(status)) = (&self.state, self.scanner.status) else {
                    unreachable!("Status is reported in the Emit state, after the status line");
                };
                let (start, end) = status.reason;
                Event::Status(StatusLine {
                    version: status.version,
                    code: status.code,
                    reason: &self.head(buf).0[start as usize..end as usize],
                    fields: self.scanner.fields.len(),
                })
            }
            Out::Field(span) => {
                let (head, shared) = self.head(buf);
                Event::Field(Field::new(head, shared, span))
            }
            Out::HeadEnd(end) => Event::HeadEnd(end),
            Out::Data(data) => Event::Data(data),
            Out::Trailer(span) => {
                let line = self.body.trailer_line();
                Event::Trailer(Field::new(line, Some(line), span))
            }
            Out::End => Event::End,
            Out::Switched => Event::Switched,
        })
    }

    /// The head being reported, and its `Bytes` when it is shared.
    #[inline(always)]
    fn head<'a>(&'a self, buf: &'a BytesMut) -> (&'a [u8], Option<&'a Bytes>) {
        match self.head_in_buf {
            0 => (&self.head, Some(&self.head)),
            len => (&buf[..len], None),
        }
    }

    #[inline(always)]
    fn step(&mut self, buf: &mut BytesMut) -> Result<Out, Error> {
        match &mut self.state {
            State::Head => self.poll_head(buf),
            State::Emit { .. } if buf.len() < self.head_in_buf => Err(Error::Misuse(
                "bytes were taken from the read buffer while its head was reported",
            )),
            State::Emit { .. } => Ok(self.emit(buf)),
            // An empty or fully read body ends without a call.
            State::Body => match match self.body {
                BodyDecoder::Length { remaining: 0, .. } => Some(BodyEvent::End),
                _ => self
                    .body
                    .poll(buf, self.eof, &mut self.offset, &self.limits)?,
            } {
                None => Ok(Out::Nothing),
                Some(BodyEvent::Data(data)) => Ok(Out::Data(data)),
                Some(BodyEvent::Trailer(span)) => Ok(Out::Trailer(span)),
                Some(BodyEvent::End) => {
                    self.state = match (&self.body, self.reuse) {
                        (BodyDecoder::UntilClose { .. }, _) => State::Closed,
                        (_, Reuse::Yes) => State::Head,
                        (_, Reuse::No(_)) => State::Closing,
                    };
                    // Drop what the body decoder holds of the buffer (the
                    // last trailer line), so the buffer can reclaim it.
                    self.body = BodyDecoder::Length {
                        remaining: 0,
                        expected: 0,
                    };
                    self.offset = 0;
                    self.responses += 1;
                    Ok(Out::End)
                }
            },
            State::Switched { reported } => {
                let first = !*reported;
                *reported = true;
                Ok(if first { Out::Switched } else { Out::Nothing })
            }
            State::Closing if !buf.is_empty() => Err(Error::UnsolicitedBytes { byte: buf[0] }),
            State::Closing | State::Closed => Ok(Out::Nothing),
        }
    }

    #[inline(always)]
    fn poll_head(&mut self, buf: &mut BytesMut) -> Result<Out, Error> {
        let Some(len) = self.scanner.scan(buf, &self.limits)? else {
            if self.eof {
                if buf.is_empty() && self.is_between_messages() && self.responses > 0 {
                    self.state = State::Closed;
                    return Ok(Out::Nothing);
                }
                return Err(Error::UnexpectedEof {
                    phase: Phase::Head,
                    received: 0,
                    expected: None,
                });
            }
            return Ok(Out::Nothing);
        };
        // The head is complete: gather the framing fields, decide, then cut
        // the head off the buffer if its events are to share it.
        let status = self
            .scanner
            .status
            .expect("a head always starts with its status line");
        let mut fields = FramingFields::default();
        for span in &self.scanner.fields {
            // Only names of 10, 14 or 17 bytes can matter (framing.rs).
            if !matches!(span.name_end - span.line, 10 | 14 | 17) {
                continue;
            }
            let name = &buf[span.line as usize..span.name_end as usize];
            let value = &buf[span.value_start as usize..span.value_end as usize];
            if let Err(e) = fields.add(name, value, span.line as usize) {
                // A 2xx to CONNECT ignores Content-Length and
                // Transfer-Encoding (RFC 9110 section 9.3.6: a client
                // MUST), malformed ones too.
                let tunnel =
                    self.request == RequestKind::Connect && (200..300).contains(&status.code);
                if !tunnel {
                    return Err(e);
                }
            }
        }
        let decision = decide(self.request, status.version, status.code, &fields)?;
        if decision.framing == Framing::NoBody && (100..200).contains(&status.code) {
            self.interim += 1;
            if self.interim > self.limits.max_interim_responses {
                return Err(Error::TooManyInterimResponses {
                    limit: self.limits.max_interim_responses,
                });
            }
        }
        if self.share_heads {
            let interim =
                (100..200).contains(&status.code) && decision.framing != Framing::Switched;
            self.head = if !interim && shares_buffer(decision.framing, &buf[len..], self.eof) {
                buf.split_to(len).freeze()
            } else {
                // A body that streams on through later reads, or a long
                // one: a head sharing the buffer would keep it alive as
                // long as the response, for this response alone.
                let head = crate::copy::shared_copy(&buf[..len]);
                buf.advance(len);
                head
            };
        } else {
            self.head_in_buf = len;
        }
        self.offset += len as u64;
        self.decision = decision;
        self.keep_alive_timeout = fields.keep_alive_timeout;
        self.state = State::Emit { next: 0 };
        Ok(Out::Status)
    }

    /// Reports the next field of a complete head, or its end.
    fn emit(&mut self, buf: &mut BytesMut) -> Out {
        let State::Emit { next } = &mut self.state else {
            unreachable!("emit is called in the Emit state only");
        };
        if let Some(span) = self.scanner.fields.get(*next) {
            *next += 1;
            return Out::Field(*span);
        }
        self.finish_head(buf)
    }

    fn finish_head(&mut self, buf: &mut BytesMut) -> Out {
        let (decision, keep_alive_timeout) = (self.decision, self.keep_alive_timeout);
        // The head's events are all out: consume it, or drop the shared
        // head so that the buffer can reclaim its bytes.
        match self.head_in_buf {
            0 => self.head = Bytes::new(),
            // A bodiless response often is all there is: a store, not a call.
            len if len == buf.len() => buf.clear(),
            len => buf.advance(len),
        }
        self.head_in_buf = 0;
        let code = self.scanner.status.map_or(0, |s| s.code);
        let interim = (100..200).contains(&code) && decision.framing != Framing::Switched;
        self.scanner.reset();
        self.state = match decision.framing {
            Framing::Switched => State::Switched { reported: false },
            _ if interim => State::Head,
            // A bodiless response still reports `End` through the body state.
            framing => {
                self.body = BodyDecoder::new(framing).unwrap_or(BodyDecoder::Length {
                    remaining: 0,
                    expected: 0,
                });
                State::Body
            }
        };
        if !interim {
            self.interim = 0;
            self.reuse = decision.reuse;
        }
        if interim || decision.framing == Framing::Switched {
            self.offset = 0;
        }
        Out::HeadEnd(HeadEnd {
            framing: decision.framing,
            reuse: decision.reuse,
            interim,
            keep_alive_timeout,
        })
    }
}

/// The longest body a shared head is split off with (see
/// [`ResponseDecoder::share_heads`]).
const MAX_SHARED_BODY: usize = 16 * 1024;

/// True when a head ending where `rest` starts is split off the buffer
/// rather than copied: its response looks whole in the buffer (no body,
/// all of a `Content-Length`, a chunked body that ends in an empty line:
/// the end of its trailer section, or a chunk's data that happens to end
/// so, a guess on the side of sharing; the bytes before the server's
/// close), and its body is small, so that the buffer it pins is shared
/// with other responses rather than kept for this one.
fn shares_buffer(framing: Framing, rest: &[u8], eof: bool) -> bool {
    let small = rest.len() <= MAX_SHARED_BODY;
    match framing {
        Framing::NoBody | Framing::Switched => true,
        Framing::Length(n) => n <= rest.len() as u64 && n <= MAX_SHARED_BODY as u64,
        Framing::Chunked => small && rest.ends_with(b"\r\n\r\n"),
        Framing::UntilClose => small && eof,
    }
}
