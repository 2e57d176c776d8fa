//! # roundtrip-blocking: the std::net backend
//!
//! A blocking HTTP/1.1 client over `std::net::TcpStream`, driven by
//! `roundtrip-proto` and its Go-style pool policy. Every protocol decision
//! (framing, reuse, 100-continue, retry safety, pool limits and expiry) is the
//! core's; this crate reads, writes, waits and converts to `http` types.
//!
//! ```no_run
//! let client = roundtrip_blocking::Client::builder()
//!     .max_conns_per_host(Some(8))
//!     .build();
//! let mut response = client.get("http://127.0.0.1:8080/").send()?;
//! assert!(response.status().is_success());
//! let body = response.body_mut().bytes(1 << 20)?; // at most 1 MiB
//! println!("{} bytes; pool: {:?}", body.len(), client.stats());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `client.get(url)` (and `post`, `put`, `patch`, `delete`, `head`,
//! `request(method, url)`) starts a [`RequestBuilder`] with reqwest's
//! setters (`header`, `query`, `basic_auth`, `bearer_auth`, `body`, `json`,
//! `form`, `timeout`), sent with `send()`; [`Client::execute`] sends an
//! `http::Request` built by hand. Requests carry a [`Body`]: empty, bytes
//! (replayable, sent with the head in one vectored write), or a reader
//! (known length or chunked). Responses are
//! `http::Response<ResponseBody>`; [`ResponseBody`] implements `std::io::Read`
//! and hands its connection back to the pool at the end of the body.

mod body;
mod client;
mod pool;
mod request;
mod transport;

pub use body::{Body, ResponseBody};
pub use client::{Cancel, Client, ClientBuilder};
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
pub use transport::Upgraded;

/// `GET uri` with a client of default settings, created for this call.
///
/// ```no_run
/// let response = roundtrip_blocking::get("http://127.0.0.1:8080/")?;
/// # Ok::<(), roundtrip_blocking::Error>(())
/// ```
pub fn get(uri: &str) -> Result<http::Response<ResponseBody>, Error> {
    Client::new().get(uri).send()
}
