//! # roundtrip-mio: one event loop, many exchanges
//!
//! A single-threaded HTTP/1.1 client on [mio]: one `Poll` on one thread
//! drives many requests over many connections at once, the way curl's multi
//! interface or wrk do. Each request is one
//! [`roundtrip_io::exchange::Exchange`], the sans-IO machine every backend
//! drives: it makes every decision of the request (checkout, stale probe,
//! 100-continue, retry safety, redirects, gzip, which timeout fired, drain
//! or close, release), over `roundtrip-proto`'s protocol and pool
//! decisions. This crate connects, reads, writes, waits for readiness,
//! arms one timer per exchange and converts to `http` types.
//!
//! - [`Driver`] owns the pool, a slab of connections (the slot is the mio
//!   token), a slab of exchanges, one timer queue, and the read buffer its
//!   connections borrow for each read (a connection keeps one only while it
//!   holds bytes not yet decoded). Submit requests
//!   (`driver.get(url)` and the other verbs give a [`RequestBuilder`] with
//!   reqwest's setters, ended by `submit()`), turn
//!   the loop, take finished responses: head plus body collected under a
//!   size limit ([`Receive::Collect`]), or body pieces streamed to a callback
//!   ([`Receive::Stream`]) that may stop early (the rest is drained or the
//!   connection closed, as the core decides).
//! - Connects are non-blocking; writes resume on writability (write interest
//!   is registered only while bytes wait); reads feed the decoder.
//! - Timers: one per exchange, at its machine's next deadline (connect,
//!   read and write inactivity, the total `timeout`, the core's
//!   100-continue, response-head and drain deadlines), and the pool's idle
//!   expiry.
//! - Idle connections stay registered: a server closing one is seen as an
//!   event, and the connection is dropped from the pool at once as `Stale`,
//!   however young; a response that came with the server's FIN does not put
//!   its connection back at all (`PeerClosed`).
//!
//! ## The run loop
//!
//! ```no_run
//! use std::time::Duration;
//! use roundtrip_mio::Driver;
//!
//! let mut driver = Driver::builder()
//!     .max_conns_per_host(Some(16))
//!     .timeout(Some(Duration::from_secs(10)))
//!     .build()?;
//! for n in 0..256 {
//!     driver.get(format!("http://127.0.0.1:8080/item/{n}")).submit();
//! }
//! // Wait for readiness or the next deadline, handle both, collect results.
//! while !driver.is_idle() {
//!     driver.run_once(None)?;
//!     while let Some((id, result)) = driver.take_finished() {
//!         match result {
//!             Ok(response) => println!("{id}: {} bytes", response.body().len()),
//!             Err(e) => println!("{id}: {e}"),
//!         }
//!     }
//! }
//! println!("{:?}", driver.stats()); // 16 dials, 240 reuses
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Embedding in another event loop
//!
//! Build the driver into your own `Poll` with a range of tokens, pass it the
//! events for those tokens, call `handle_timeout` every turn, and never wait
//! longer than `poll_timeout`. A `mio::Waker` lets other threads hand work
//! to the loop.
//!
//! ```no_run
//! use std::time::Instant;
//! use mio::{Events, Poll, Token, Waker};
//! use roundtrip_mio::Driver;
//!
//! const WAKER: Token = Token(0);
//! let mut poll = Poll::new()?;
//! let waker = Waker::new(poll.registry(), WAKER)?;
//! // The driver takes every token from 1 upward.
//! let mut driver = Driver::builder().build_in(poll.registry(), Token(1))?;
//! let mut events = Events::with_capacity(1024);
//! driver.get("http://127.0.0.1:8080/").submit();
//! while !driver.is_idle() {
//!     let timeout = driver.poll_timeout().map(|at| at.saturating_duration_since(Instant::now()));
//!     poll.poll(&mut events, timeout)?;
//!     for event in events.iter() {
//!         if event.token() == WAKER {
//!             // your own work: e.g. submit requests sent over a channel
//!         } else {
//!             driver.handle_event(event);
//!         }
//!     }
//!     driver.handle_timeout(Instant::now());
//!     while let Some((id, result)) = driver.take_finished() {
//!         println!("{id}: {:?}", result.map(|r| r.status()));
//!     }
//! }
//! # drop(waker);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Host names are looked up off the loop: each lookup runs on a thread of
//! the resolver's (the system's resolver, or one plugged in with
//! `dns_resolver`; one lookup per name at a time, shared by the client's
//! requests, and at most 64 threads), and the loop takes its result,
//! looking every 2 ms while one runs (IP literals and `resolve` overrides
//! need no lookup), so one slow lookup never stalls the other exchanges. Request bodies from a reader are read on
//! the loop's thread whenever the socket can take more: the reader must not
//! block. A `101 Switching Protocols` answer (or a 2xx to CONNECT)
//! finishes with an empty body, and [`Driver::take_upgraded`] hands over
//! its socket and the bytes that came after the head (through its TLS
//! session over `https`). `https://` URIs go
//! over rustls with the `tls` feature (on by default), the TLS session a
//! byte layer of the connection like on every backend.
//!
//! [mio]: https://docs.rs/mio

mod body;
mod builder;
mod conn;
mod driver;
mod flow;
mod pool;
mod request;
mod slab;
mod timer;

pub use body::{Body, Flow, OnData, Receive, RequestId, Response, ResponseBody, Trailers};
pub use builder::{DEFAULT_MAX_BODY_BYTES, DriverBuilder};
pub use driver::{Driver, Finished};

/// A switched connection handed over by [`Driver::take_upgraded`]: a
/// non-blocking `Read + Write` over the socket (through the TLS session
/// over `https`).
pub type Upgraded = roundtrip_io::drive::Upgraded<mio::net::TcpStream>;
pub use request::RequestBuilder;
/// The id [`Traced::request`] names a request by in the trace (this crate's
/// own [`RequestId`] is the driver's handle of a submitted request).
pub use roundtrip_io::RequestId as TraceRequestId;
/// The trace hook, timeouts and pool counters, so users need no second
/// dependency for them.
pub use roundtrip_io::proto::pool::PoolStats;
pub use roundtrip_io::proto::trace::TraceEvent;
/// Proxy settings: which proxy for which URL, `NO_PROXY`, the environment.
pub use roundtrip_io::proxy;
/// Name resolution: overrides, a pluggable resolver.
pub use roundtrip_io::resolve;
/// TLS settings and errors for `https://` (feature `tls`).
pub use roundtrip_io::tls;
pub use roundtrip_io::{
    BodyUrl, CollectedExt, Delivery, FinalUrl, InterimResponses, ReasonPhrase, ResponseExt,
};
pub use roundtrip_io::{
    Config, Decompressed, Error, IntoUri, InvalidRequest, Phase, RedirectAction, RedirectAttempt,
    RedirectChain, RedirectPolicy, ResponseHead, http, proto,
};
/// The cookie jar (feature `cookies`): `cookie_store(true)` on the builder,
/// or `cookie_provider(jar)` with one the caller keeps.
#[cfg(feature = "cookies")]
pub use roundtrip_io::{CookieError, CookieJar};
pub use roundtrip_io::{RequestTimeout, TimeoutKind, Traced, Tracer};

/// The mio version the driver registers with, so that an embedding loop
/// uses the same one.
///
/// ```no_run
/// let poll = roundtrip_mio::mio::Poll::new()?;
/// let driver = roundtrip_mio::Driver::builder().build_in(poll.registry(), roundtrip_mio::mio::Token(1))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub use mio;

/// `GET uri` on a driver of default settings made for this call, run until
/// the response is complete.
///
/// ```no_run
/// let response = roundtrip_mio::get("http://127.0.0.1:8080/")?;
/// println!("{}: {} bytes", response.status(), response.body().len());
/// # Ok::<(), roundtrip_mio::Error>(())
/// ```
pub fn get(uri: &str) -> Result<Response, Error> {
    let setup = |source| Error::Io {
        phase: Phase::Connect,
        source,
        reached_server: false,
    };
    let mut driver = Driver::new().map_err(setup)?;
    let id = driver.get(uri).submit();
    let finished = driver.run_until_idle().map_err(setup)?;
    match finished.into_iter().find(|(done, _)| *done == id) {
        Some((_, result)) => result,
        None => Err(setup(std::io::Error::other("the request did not finish"))),
    }
}
