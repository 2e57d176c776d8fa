//! # roundtrip-tokio: the tokio backend
//!
//! An async HTTP/1.1 client on tokio: a thin driver of
//! [`roundtrip_io::exchange::Exchange`] over the Go-style pool policy of
//! `roundtrip-proto`. Every decision of a request (checkout, stale probe,
//! framing, 100-continue, retry safety, redirects, gzip, drain or close,
//! timeouts) is the machine's; this crate owns the sockets, reads, writes,
//! waits and converts to `http` types.
//!
//! - Works on current-thread and multi-thread runtimes; futures are `Send`.
//! - Cancellation-safe: dropping a request future or a body at any await
//!   point never returns a connection in the middle of an exchange to the
//!   pool; waiters for `max_conns_per_host` give back what they were granted.
//! - The response body implements [`http_body::Body`]; a response that
//!   switched protocols gives its connection with [`ResponseBody::upgrade`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = roundtrip_tokio::Client::builder().max_conns_per_host(Some(8)).build();
//! let mut response = client.get("http://127.0.0.1:8080/").await?;
//! assert!(response.status().is_success());
//! let body = response.body_mut().bytes(1 << 20).await?;
//! println!("{} bytes; pool: {:?}", body.len(), client.stats());
//! # Ok(()) }
//! ```

mod body;
mod client;
mod pool;
mod transport;

pub use body::{Body, BodyReader, ResponseBody, Upgraded};
pub use client::{Client, ClientBuilder};
pub use roundtrip_io::{
    Config, Decompressed, Error, InvalidRequest, Phase, RedirectAction, RedirectAttempt,
    RedirectChain, RedirectPolicy, http, proto,
};

/// `GET uri` with a client of default settings, created for this call.
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
/// let response = roundtrip_tokio::get("http://127.0.0.1:8080/").await?;
/// # Ok(()) }
/// ```
pub async fn get(uri: &str) -> Result<http::Response<ResponseBody>, Error> {
    Client::new().get(uri).await
}
