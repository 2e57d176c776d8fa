//! # roundtrip-smol: the smol backend
//!
//! An async HTTP/1.1 client on `smol` / `async-io`, and the proof that the
//! core is embeddable: it is a thin driver of the one exchange machine,
//! [`roundtrip_io::exchange::Exchange`]. The machine decides everything
//! (checkout, stale probe, dial timing, 100-continue, early answers, retry,
//! redirects, gzip, what ends a body, drain or close, every timeout, the
//! release verdict); this crate owns the sockets, waits for readiness or
//! the machine's deadline, and converts to `http` types.
//!
//! ```no_run
//! # smol::block_on(async {
//! let client = roundtrip_smol::Client::builder().max_conns_per_host(Some(8)).build();
//! let mut response = client.get("http://127.0.0.1:8080/").await?;
//! let body = response.body_mut().bytes(1 << 20).await?;
//! println!("{} bytes; pool: {:?}", body.len(), client.stats());
//! # Ok::<(), roundtrip_smol::Error>(()) });
//! ```

mod body;
mod client;
mod run;

pub use body::{Body, ResponseBody, Upgraded};
pub use client::{Client, ClientBuilder};
pub use roundtrip_io::{
    Config, Decompressed, Error, InvalidRequest, Phase, RedirectAction, RedirectAttempt,
    RedirectChain, RedirectPolicy, http, proto,
};

/// `GET uri` with a client of default settings, created for this call.
///
/// ```no_run
/// # smol::block_on(async {
/// let response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
/// assert!(response.status().is_success());
/// # Ok::<(), roundtrip_smol::Error>(()) });
/// ```
pub async fn get(uri: &str) -> Result<http::Response<ResponseBody>, Error> {
    Client::new().get(uri).await
}
