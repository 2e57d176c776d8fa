//! # roundtrip-smol: the smol backend
//!
//! An async HTTP/1.1 client on `smol` / `async-io`, and the proof that the
//! core is embeddable: it is a thin driver of the one exchange machine,
//! [`roundtrip_io::exchange::Exchange`]. The machine decides everything
//! (checkout, stale probe, dial timing, 100-continue, early answers, retry,
//! redirects, gzip, what ends a body, drain or close, every timeout, the
//! release verdict); this crate owns the sockets, waits for readiness or
//! the machine's deadline, and converts to `http` types. The driver itself
//! is the one every async backend shares ([`roundtrip_io::drive`]); this
//! crate is its [`Runtime`](roundtrip_io::drive::Runtime) impl for smol
//! ([`Smol`]) and the names below. Requests start from `client.get(url)`
//! (and `post`, `put`, `patch`, `delete`, `head`, `request(method, url)`),
//! a [`RequestBuilder`] with reqwest's setters, sent with `send().await`.
//!
//! ```no_run
//! # smol::block_on(async {
//! let client = roundtrip_smol::Client::builder().max_conns_per_host(Some(8)).build();
//! let mut response = client.get("http://127.0.0.1:8080/").send().await?;
//! let body = response.body_mut().bytes(1 << 20).await?;
//! println!("{} bytes; pool: {:?}", body.len(), client.stats());
//! # Ok::<(), roundtrip_smol::Error>(()) });
//! ```

mod client;
mod request;
mod runtime;

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
pub use runtime::Smol;

/// A request body: empty, bytes in memory, or an async reader streamed with
/// a known length or chunked (the methods are [`roundtrip_io::Body`]'s).
///
/// ```
/// use roundtrip_smol::Body;
/// assert_eq!(Body::from("hello").len(), Some(5));
/// let streamed = Body::from_reader(smol::io::Cursor::new(vec![0u8; 10]), None);
/// assert_eq!(streamed.len(), None);
/// ```
pub type Body = roundtrip_io::Body<runtime::Reader>;

/// A response body, read from the connection as it is asked for. The
/// connection goes back to the pool at its end. Dropped early, the rest is
/// drained in a detached task or the connection closed, as the machine
/// decides; [`discard`](roundtrip_io::drive::ResponseBody::discard) waits
/// for that.
///
/// ```no_run
/// # smol::block_on(async {
/// let mut response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
/// while let Some(piece) = response.body_mut().chunk().await? {
///     println!("{} bytes", piece.len());
/// }
/// # Ok::<(), roundtrip_smol::Error>(()) });
/// ```
pub type ResponseBody = roundtrip_io::drive::ResponseBody<Smol>;

/// A switched connection (a 101 answer, or a 2xx to CONNECT), from
/// [`upgrade`](roundtrip_io::drive::ResponseBody::upgrade): the bytes that
/// came after the head first, then the socket. Over `https` the TLS
/// session goes on: reads give its plaintext, writes are sealed into its
/// records (`flush` sends those that wait), and `close` sends its
/// `close_notify` before it shuts the socket's write side.
///
/// ```no_run
/// # async fn demo(upgraded: roundtrip_smol::Upgraded) -> std::io::Result<()> {
/// use smol::io::{AsyncReadExt, AsyncWriteExt};
/// let mut upgraded = upgraded;
/// upgraded.write_all(b"ping").await?;
/// upgraded.flush().await?;
/// let mut answer = [0u8; 4];
/// upgraded.read_exact(&mut answer).await?;
/// # Ok(()) }
/// ```
pub type Upgraded = roundtrip_io::drive::Upgraded<smol::Async<std::net::TcpStream>>;

/// `GET uri` with a client of default settings, created for this call.
///
/// ```no_run
/// # smol::block_on(async {
/// let response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
/// assert!(response.status().is_success());
/// # Ok::<(), roundtrip_smol::Error>(()) });
/// ```
pub async fn get(uri: &str) -> Result<http::Response<ResponseBody>, Error> {
    Client::new().get(uri).send().await
}
