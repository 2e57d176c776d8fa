//! # roundtrip-tokio: the tokio backend
//!
//! An async HTTP/1.1 client on tokio: the shared async driver of
//! [`roundtrip_io::exchange::Exchange`] ([`roundtrip_io::drive`]) on tokio's
//! sockets, timers and tasks ([`Tokio`], its `Runtime` impl). Every decision
//! of a request (checkout, stale probe, framing, 100-continue, retry safety,
//! redirects, gzip, drain or close, timeouts) is the machine's; the driver
//! moves bytes and waits, and this crate only says how, on tokio.
//!
//! - Works on current-thread and multi-thread runtimes; futures are `Send`.
//! - Cancellation-safe: dropping a request future or a body at any await
//!   point never returns a connection in the middle of an exchange to the
//!   pool; waiters for `max_conns_per_host` give back what they were granted.
//! - Time is tokio's: every timeout and the pool's idle timeout run on
//!   `tokio::time::Instant`, so under paused time (`test-util`,
//!   `#[tokio::test(start_paused = true)]`, `tokio::time::advance`) they
//!   pass by virtual time, as a `tokio::time::sleep` does. A host name's
//!   lookup runs on a thread of the resolver's, which paused time does not
//!   wait for: the clock may jump past it to the connect timeout. Under
//!   paused time, dial IP literals or names given an address
//!   (`resolve(host, addr)`, answered without a lookup). The runtime
//!   needs its time driver (`enable_all()` or `enable_time()`, which
//!   `#[tokio::main]` turns on): without it tokio panics, saying so, at
//!   the first timeout armed (as for hyper-util's `TokioTimer` and
//!   reqwest). A client with every timeout off, the pool's idle timeout
//!   included, arms none (an idle connection whose server sent a
//!   `Keep-Alive: timeout` hint then expires at the next checkout), except
//!   for three waits that have no off: for a `100 Continue` (a request
//!   with `Expect: 100-continue`), between connection attempts to a host
//!   with several addresses (Happy Eyeballs: `localhost` has two), and the
//!   drain of a response body dropped half-read.
//! - The response body implements [`http_body::Body`]; a response that
//!   switched protocols gives its connection with [`ResponseBody::upgrade`].
//! - `client.get(url)` (and `post`, `put`, `patch`, `delete`, `head`,
//!   `request(method, url)`) starts a [`RequestBuilder`] with reqwest's
//!   setters, sent with `send().await`; [`Client::execute`] sends an
//!   `http::Request` built by hand.
//! - With the feature `tower`, [`Client`] is a
//!   `tower_service::Service<http::Request<B>>` for every body type `B` it
//!   takes (`B: Into<Body>`), so tower middleware composes with it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = roundtrip_tokio::Client::builder().max_conns_per_host(Some(8)).build();
//! let mut response = client.get("http://127.0.0.1:8080/").send().await?;
//! assert!(response.status().is_success());
//! let body = response.body_mut().bytes(1 << 20).await?;
//! println!("{} bytes; pool: {:?}", body.len(), client.stats());
//! # Ok(()) }
//! ```

mod client;
mod request;
mod runtime;
#[cfg(feature = "tower")]
mod service;

pub use client::{Client, ClientBuilder};
pub use request::RequestBuilder;
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
pub use roundtrip_io::{BodyUrl, Delivery, FinalUrl, InterimResponses, ReasonPhrase, ResponseExt};
pub use roundtrip_io::{
    Config, Decompressed, Error, IntoUri, InvalidRequest, Phase, RedirectAction, RedirectAttempt,
    RedirectChain, RedirectPolicy, http, proto,
};
/// The cookie jar (feature `cookies`): `cookie_store(true)` on the builder,
/// or `cookie_provider(jar)` with one the caller keeps.
#[cfg(feature = "cookies")]
pub use roundtrip_io::{CookieError, CookieJar};
pub use roundtrip_io::{RequestId, RequestTimeout, TimeoutKind, Traced, Tracer};
pub use runtime::{BodyReader, Tokio, Upgraded};
/// The future of [`Client`]'s `tower_service::Service` impl (feature `tower`).
#[cfg(feature = "tower")]
pub use service::ResponseFuture;

/// A request body: empty, bytes in memory, or an async reader streamed with
/// a known length or chunked (the methods are [`roundtrip_io::Body`]'s).
///
/// Bytes can be sent again if a stale pooled connection forces a retry; a
/// reader only if nothing was read from it yet.
///
/// ```
/// use roundtrip_tokio::Body;
/// assert_eq!(Body::from("hello").len(), Some(5));
/// let streamed = Body::from_reader(&b"0123456789"[..], None);
/// assert_eq!(streamed.len(), None);
/// ```
pub type Body = roundtrip_io::Body<BodyReader>;

/// A response body, read from the connection as it is polled. Implements
/// [`http_body::Body`]; [`chunk`](roundtrip_io::drive::ResponseBody::chunk),
/// [`bytes`](roundtrip_io::drive::ResponseBody::bytes) and
/// [`text`](roundtrip_io::drive::ResponseBody::text) are the convenient ways
/// in. Dropped early, the rest is drained in a task on the current runtime
/// when the machine says so, otherwise the connection is closed; a response
/// that switched protocols gives its connection with
/// [`upgrade`](roundtrip_io::drive::ResponseBody::upgrade).
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
/// let mut response = roundtrip_tokio::get("http://127.0.0.1:8080/").await?;
/// while let Some(piece) = response.body_mut().chunk().await? {
///     println!("{} bytes", piece.len());
/// }
/// # Ok(()) }
/// ```
pub type ResponseBody = roundtrip_io::drive::ResponseBody<Tokio>;

/// `GET uri` with a client of default settings, created for this call.
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
/// let response = roundtrip_tokio::get("http://127.0.0.1:8080/").await?;
/// # Ok(()) }
/// ```
pub async fn get(uri: &str) -> Result<http::Response<ResponseBody>, Error> {
    Client::new().get(uri).send().await
}
