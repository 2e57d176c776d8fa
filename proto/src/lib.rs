//! # roundtrip-proto: the sans-IO HTTP/1.1 client core
//!
//! This crate turns the bytes a server sends into response events, encodes
//! requests, and decides every protocol question of an HTTP/1.1 client:
//! message framing, connection reuse, 100-continue, retry safety and
//! connection-pool policy. It never touches a socket, a clock, a thread or an
//! environment variable: it is `no_std` + `alloc`, and adapters
//! (`roundtrip-blocking`, `roundtrip-mio`, `roundtrip-tokio`) attach it to real
//! I/O.
//!
//! | module | what it holds |
//! |---|---|
//! | [`decode`] | [`ResponseDecoder`]: bytes in, [`Event`]s out (status, fields, body, trailers) |
//! | [`framing`] | RFC 9112 section 6.3 as one pure function; [`Reuse`] and [`CloseReason`] |
//! | [`encode`] | request head and body framing, with validation against request splitting |
//! | [`conn`] | [`conn::Connection`]: one exchange at a time, deadlines, reuse and retry verdicts |
//! | [`pool`] | [`pool::Pool`]: Go-style connection-pool decisions over an opaque handle |
//! | [`dial`] | [`dial::HappyEyeballs`]: which address to connect to next, and when (RFC 8305) |
//! | [`time`] | [`time::Instant`]: time as an input |
//! | [`trace`] | [`trace::TraceEvent`]: what happened to a request, reported alike by every adapter |
//! | [`limits`], [`error`] | [`Limits`] with documented defaults; the one [`Error`] enum |
//!
//! ## The I/O contract
//!
//! **In**: received bytes, appended by the adapter to one `BytesMut` read
//! buffer per connection (the core consumes from its front and never keeps a
//! borrow across calls; the adapter only appends); end of stream as its own
//! call (`handle_eof`, never "an empty read"); the current time as an
//! argument (`now`); commands (`start`, `frame_body`, `finish_body`,
//! `abandon`).
//!
//! **Out**: events pulled one at a time (`Ok(Some(event))`, `Ok(None)` = need
//! more bytes, `Err(e)` = protocol error, sticky); bytes to send written into a
//! `Vec<u8>` the caller passes, with request body data passed through
//! untouched between a framing prefix and suffix (one vectored write); the
//! next deadline (`poll_timeout`); answers (`is_reusable`, `wrote_any_byte`,
//! `received_any_byte`, `retry_safety`, and for 101 / CONNECT the bytes left
//! in the buffer, which now belong to the caller).
//!
//! Body data is `Bytes` cut from the read buffer; head events (status line,
//! fields) borrow the decoder and the front of the read buffer, trailer
//! fields the decoder's copy of their line, until the next call. A head is
//! consumed with a plain advance once its
//! events are out, unless the caller asked for shared heads
//! ([`ResponseDecoder::share_heads`]): then it is split off first, and each
//! field gives its name and value as `Bytes` sharing the buffer on demand.
//! No copy, and no allocation per response once the buffer exists (the
//! first split of a fresh `BytesMut` promotes it to shared storage, once per
//! buffer).
//!
//! ## The loop every adapter runs
//!
//! Perform one input; drain the outputs (bytes to write, events, deadline)
//! until the core says nothing is left; then wait for socket readiness or the
//! deadline, whichever comes first. Here with an in-memory "socket":
//!
//! ```
//! use bytes::BytesMut;
//! use core::time::Duration;
//! use roundtrip_proto::conn::{ConnConfig, Connection};
//! use roundtrip_proto::encode::{BodyFraming, RequestHead};
//! use roundtrip_proto::{time::Instant, Event};
//!
//! // What the server will send, in the pieces a socket might deliver.
//! let mut server = vec![
//!     &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
//!     b"5\r\nhello\r\n",
//!     b"0\r\n\r\n",
//! ]
//! .into_iter();
//!
//! let config = ConnConfig::default().response_head_timeout(Some(Duration::from_secs(10)));
//! let mut conn = Connection::new(config);
//! let (mut wire, mut read_buf, mut body) = (Vec::new(), BytesMut::with_capacity(4096), Vec::new());
//! let mut now = Instant::ZERO;
//!
//! // 1. Input: a command. Output: the request bytes, written to the socket.
//! let head = RequestHead {
//!     method: b"GET", target: b"/hello", host: Some(b"example.com"),
//!     body: BodyFraming::None, expect_continue: false, close: false,
//!     preset: None,
//! };
//! conn.start(&head, [(&b"Accept"[..], &b"*/*"[..])], now, &mut wire)?;
//! conn.handle_written(wire.len(), now); // the socket took it all: the head timeout runs
//!
//! while !conn.is_complete() {
//!     // 2. Wait for readiness or the deadline, whichever comes first.
//!     let deadline = conn.poll_timeout();
//!     match server.next() {
//!         Some(bytes) => read_buf.extend_from_slice(bytes), // readable
//!         None => {
//!             now = deadline.expect("a deadline is armed"); // the timer fired
//!             conn.handle_timeout(now);
//!         }
//!     }
//!     // 3. Drain the outputs.
//!     while let Some(event) = conn.poll_event(&mut read_buf)? {
//!         if let Event::Data(data) = event {
//!             body.extend_from_slice(&data);
//!         }
//!     }
//! }
//! assert_eq!(body, b"hello");
//! assert!(conn.is_reusable());
//! # Ok::<(), roundtrip_proto::Error>(())
//! ```
//!
//! ## Strictness policy
//!
//! A client must read what real servers send, but every leniency is a place
//! where two parsers can disagree about where a message ends. The rule: be
//! strict about framing, lenient only where the RFC allows it and the meaning
//! is unambiguous.
//!
//! | input | verdict | why |
//! |---|---|---|
//! | bare LF as a line end (status line, field lines, the blank line, chunk-size lines, after chunk data, trailers) | rejected by default; tolerated with [`Limits::allow_bare_lf`] (a CR before the LF ignored) | RFC 9112 2.2 allows it (MAY), and curl and Go accept it; off by default because disagreement on line ends is a smuggling vector |
//! | bare CR | rejected, with or without `allow_bare_lf` | RFC 9112 2.2: MUST treat as invalid or replace |
//! | obs-fold in a header field | tolerated: unfolded to one SP | RFC 9112 5.2 asks a user agent to replace it with SP |
//! | obs-fold (or whitespace) right after the status line | rejected | RFC 9112 2.2 |
//! | obs-fold in trailers | rejected | no legitimate use |
//! | whitespace between field name and colon | rejected | RFC 9112 5.1 |
//! | control bytes (except HTAB) or DEL in a value or reason | rejected | RFC 9110 5.5 |
//! | obs-text (0x80-0xFF) in a value or reason | tolerated, passed through | RFC 9110 5.5 |
//! | status line without reason (`HTTP/1.1 200` CRLF) | tolerated, empty reason | common in the wild; unambiguous |
//! | `HTTP/1.x`, x > 1 | processed as HTTP/1.1 | RFC 9112 2.3 |
//! | another major version, status outside 100-999 | rejected | RFC 9112 4 |
//! | `Content-Length: 5, 5` | one value | RFC 9112 6.3 step 5 |
//! | differing or non-decimal `Content-Length` | rejected | RFC 9112 6.3 step 5: unrecoverable |
//! | `Transfer-Encoding` with `Content-Length` | TE wins, connection not reused | RFC 9112 6.3 step 3 |
//! | `Transfer-Encoding` in an HTTP/1.0 response | rejected | RFC 9112 6.1: faulty framing |
//! | `chunked` not last | body read to the close | RFC 9112 6.3 step 4 |
//! | `chunked` twice, empty `Transfer-Encoding` | rejected | RFC 9112 6.1 |
//! | chunk size overflowing 64 bits | rejected | no body is that large |
//! | whitespace after a chunk size not followed by `;` | rejected | RFC 9112 7.1.1 allows BWS only around `;` and `=` |
//! | malformed chunk extensions | rejected; valid ones skipped | RFC 9112 7.1.1 |
//! | bytes after a response that closes the connection | rejected | nothing may follow (`Connection: close`, HTTP/1.0) |
//! | EOF before any byte of a response | `UnexpectedEof` | the server closed without answering |
//!
//! ## Limits
//!
//! All configurable through [`Limits`], all checked as bytes arrive:
//!
//! | limit | default | what it bounds |
//! |---|---|---|
//! | `max_head_bytes` | 65,536 | status line plus header block, CRLFs included |
//! | `max_fields` | 128 | header fields in one head, and trailer fields |
//! | `max_chunk_ext_bytes` | 4,096 | chunk extensions on one chunk-size line |
//! | `max_trailer_bytes` | 16,384 | the trailer section of a chunked body |
//! | `max_interim_responses` | 32 | 1xx responses before the final one |
//!
//! [`Limits`] also holds the one leniency switch, `allow_bare_lf` (off by
//! default; see the strictness policy above).
//!
//! Work is linear in the input however it is split: the head scanner resumes
//! at the first byte it has not examined (a 64 KiB head fed one byte at a
//! time is examined once), and body decoders keep only scalar state.
//!
//! ## Panics
//!
//! None on any input. A panic is a bug: every `expect` names the invariant
//! that makes it unreachable.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub(crate) mod body;
pub(crate) mod chars;
pub mod conn;
pub mod copy;
pub mod decode;
pub mod dial;
pub mod encode;
pub mod error;
pub mod framing;
pub(crate) mod head;
pub mod limits;
pub mod pool;
pub mod time;
pub mod trace;

pub use decode::{Event, Fields, HeadEnd, ResponseDecoder, StatusLine};
pub use error::{Error, Phase};
pub use framing::{CloseReason, Framing, RequestKind, Reuse};
pub use head::{Field, Version};
pub use limits::Limits;
