//! # roundtrip-tokio: the tokio backend
//!
//! An async HTTP/1.1 client on tokio, driven by `roundtrip-proto` and its
//! Go-style pool policy. Every protocol decision (framing, reuse,
//! 100-continue, retry safety, pool limits and expiry) is the core's; this
//! crate reads, writes, waits and converts to `http` types.
//!
//! - Works on current-thread and multi-thread runtimes; futures are `Send`.
//! - Cancellation-safe: dropping a request future or a body at any await
//!   point never returns a connection in the middle of an exchange to the
//!   pool; waiters for `max_conns_per_host` give back what they were granted.
//! - The response body implements [`http_body::Body`].
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
mod follow;
mod pool;
mod transport;

pub use body::{Body, BodyReader, ResponseBody};
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
