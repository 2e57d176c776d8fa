//! `Client` and its builder: [`roundtrip_io::drive::Client`] on the
//! [`Tokio`] runtime.

use roundtrip_io::{Config, drive};

use crate::{Body, RequestBuilder, ResponseBody, Tokio};

/// An async HTTP/1.1 client with a connection pool, for tokio's current-thread
/// and multi-thread runtimes. Cheap to clone: clones share the pool. Its
/// futures are `Send`, and dropping one at any await point is safe: a
/// connection in the middle of an exchange is drained or closed, as the core
/// decides, never pooled mid-way.
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
/// let client = roundtrip_tokio::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/").send().await?;
/// let text = response.body_mut().text(1 << 20).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client(drive::Client<Tokio>);

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = roundtrip_tokio::Client::builder()
///     .max_conns_per_host(Some(4))
///     .timeout(Some(Duration::from_secs(10)))
///     .build();
/// assert_eq!(client.config().pool.max_conns_per_host, Some(4));
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
}

roundtrip_io::async_client_methods!(
    runtime: Tokio,
    krate: "roundtrip_tokio",
    open: "# async fn demo() -> Result<(), roundtrip_tokio::Error> {",
    close: "# Ok(()) }",
);
