//! # roundtrip: an HTTP/1.1 client stack built sans-IO
//!
//! What Go's `http.Get` does inside, with the protocol cut away from the
//! sockets: [`proto`] decides everything (framing, reuse, retry safety, pool
//! policy) without I/O; the backends attach it to sockets, each with its own
//! connection pool, and speak the `http` crate's types. Pick a backend with a
//! feature flag:
//!
//! | feature | module | for |
//! |---|---|---|
//! | `blocking` (default) | [`blocking`] | threads and `std::net`; [`get`] |
//! | `tokio` | `tokio` | async code on tokio; `http_body::Body` responses |
//! | `smol` | `smol` | async code on smol; the thinnest driver of the exchange machine |
//! | `mio` | `mio` | one event loop driving many requests, or embedding in your own `mio::Poll` |
//! | `gzip` (default) | | ask for gzip and decode it transparently |
//! | `deflate` | | ask for deflate (zlib, or raw deflate as some servers send it) and decode it transparently (flate2, pure Rust) |
//! | `brotli` | | ask for br and decode it transparently (brotli-decompressor, pure Rust) |
//! | `zstd` | | ask for zstd and decode it transparently (libzstd, built from C by `zstd-sys`: needs a C compiler) |
//! | `json` | | `json::<T>(limit)` on response bodies (serde_json) |
//! | `tracing` | | `Tracer::tracing()`: every trace event as a `tracing` event (target `roundtrip`) |
//! | `tower` | | `roundtrip::tokio::Client` as a `tower::Service<http::Request<B>>` (turns on `tokio`) |
//! | `cookies` | | a cookie jar as Go's `http.Client` uses one: `cookie_store(true)` or `cookie_provider(jar)` on every backend's builder |
//! | `cli` | | the `roundtrip` command-line tool (all four backends); not default, so a library build brings in none of its dependencies |
//!
//! The blocking backend:
//!
//! ```no_run
//! # #[cfg(feature = "blocking")] {
//! let mut response = roundtrip::get("http://127.0.0.1:8080/")?;
//! let text = response.body_mut().text(1 << 20)?;
//! # }
//! # Ok::<(), roundtrip::Error>(())
//! ```
//!
//! Every backend's client starts requests the way reqwest's does:
//! `get`, `post`, `put`, `patch`, `delete`, `head` or `request(method,
//! url)` give a request builder (`header`, `headers`, `query`,
//! `basic_auth`, `bearer_auth`, `body`, `json` with the `json` feature,
//! `form`, `timeout`, `extension`), sent with `send()` (mio: `submit()`).
//! A URL or header that does not parse comes back from `send()` as
//! [`Error::InvalidRequest`].
//!
//! ```no_run
//! # #[cfg(feature = "blocking")] {
//! use std::time::Duration;
//! let client = roundtrip::blocking::Client::new();
//! let mut response = client
//!     .post("http://127.0.0.1:8080/login")
//!     .query(&[("next", "/home page")])
//!     .basic_auth("aladdin", Some("open sesame"))
//!     .form(&[("remember", "yes")])
//!     .timeout(Duration::from_secs(5))
//!     .send()?;
//! let text = response.body_mut().text(1 << 20)?;
//! # }
//! # Ok::<(), roundtrip::Error>(())
//! ```
//!
//! The tokio backend:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> Result<(), roundtrip::Error> {
//! let client = roundtrip::tokio::Client::new();
//! let mut response = client.get("http://127.0.0.1:8080/").send().await?;
//! let bytes = response.body_mut().bytes(1 << 20).await?;
//! # Ok(()) }
//! ```
//!
//! The mio backend, many requests on one thread:
//!
//! ```no_run
//! # #[cfg(feature = "mio")] {
//! let mut driver = roundtrip::mio::Driver::new()?;
//! for _ in 0..64 {
//!     driver.get("http://127.0.0.1:8080/").submit();
//! }
//! for (id, result) in driver.run_until_idle()? {
//!     println!("{id:?}: {:?}", result.map(|r| r.status()));
//! }
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Tracing, timeouts, redirect policies and pool counters are named from
//! `roundtrip` (and from each backend) alone, with no second dependency:
//!
//! ```
//! # #[cfg(feature = "blocking")] {
//! use std::time::Duration;
//! use roundtrip::{
//!     Config, Error, Phase, PoolStats, RedirectAction, RedirectPolicy, RequestId,
//!     RequestTimeout, TimeoutKind, TraceEvent, Traced, Tracer,
//! };
//!
//! let tracer = Tracer::with_ids(|t: &Traced| {
//!     let id: Option<RequestId> = t.request;
//!     let event: &TraceEvent = t.event;
//!     eprintln!("{id:?} {event}");
//! });
//! let client = roundtrip::blocking::Client::builder()
//!     .config(Config::default())
//!     .trace(tracer)
//!     .redirect_policy(Some(RedirectPolicy::new(|_| RedirectAction::Follow)))
//!     .build();
//! let stats: PoolStats = client.stats();
//! assert_eq!(stats.in_use, 0);
//! let timeout = RequestTimeout(Some(Duration::from_secs(5)));
//! let kinds: [(Phase, TimeoutKind); 1] = [(Phase::Connect, TimeoutKind::Connect)];
//! # let _ = (timeout, kinds, None::<Error>);
//! # }
//! ```
//!
//! [`origin`] is a tiny loopback server, what `roundtrip bench` measures
//! against, handy for examples and tests.

pub mod origin;

/// Proxy settings: which proxy for which URL, `NO_PROXY`, the environment.
pub use roundtrip_io::proxy;
/// Name resolution: overrides, a pluggable resolver.
pub use roundtrip_io::resolve;
/// TLS settings and errors for `https://` (feature `tls`).
pub use roundtrip_io::tls;
pub use roundtrip_io::{
    BodyUrl, CollectedExt, Config, Delivery, Error, FinalUrl, InterimResponses, IntoUri,
    InvalidRequest, Phase, ReasonPhrase, RedirectAction, RedirectAttempt, RedirectPolicy,
    RequestId, RequestTimeout, ResponseExt, TimeoutKind, Traced, Tracer, http,
};
/// The cookie jar every enabled backend takes (feature `cookies`).
#[cfg(feature = "cookies")]
pub use roundtrip_io::{CookieError, CookieJar};
pub use roundtrip_proto as proto;
pub use roundtrip_proto::pool::PoolStats;
pub use roundtrip_proto::trace::TraceEvent;

/// The README's Rust snippets, compiled by `cargo test --doc` so they stay
/// true to the API (they need every backend, as the `cli` feature gives:
/// this package's tests turn it on through its dev-dependency on itself).
#[cfg(all(doctest, feature = "blocking", feature = "tokio", feature = "mio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "blocking")]
pub use roundtrip_blocking as blocking;
#[cfg(feature = "mio")]
pub use roundtrip_mio as mio;
#[cfg(feature = "smol")]
pub use roundtrip_smol as smol;
#[cfg(feature = "tokio")]
pub use roundtrip_tokio as tokio;

/// `GET uri` on the default (blocking) backend, with default settings.
///
/// ```no_run
/// let origin = roundtrip::origin::spawn(13)?;
/// let mut response = roundtrip::get(&format!("http://{origin}/"))?;
/// assert_eq!(response.body_mut().bytes(1024)?.len(), 13);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "blocking")]
pub fn get(uri: &str) -> Result<http::Response<blocking::ResponseBody>, Error> {
    blocking::get(uri)
}
