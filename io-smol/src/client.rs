//! `Client` and its builder: [`roundtrip_io::drive::Client`] on the
//! [`Smol`] runtime.

use roundtrip_io::{Config, drive};

use crate::{Body, RequestBuilder, ResponseBody, Smol};

/// An async HTTP/1.1 client with a connection pool, on smol. Cheap to
/// clone: clones share the pool. Dropping a request future at any await
/// point cancels it; what it held is released as the machine decides.
///
/// ```no_run
/// # smol::block_on(async {
/// let client = roundtrip_smol::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/").send().await?;
/// let text = response.body_mut().bytes(1 << 20).await?;
/// # Ok::<(), roundtrip_smol::Error>(()) });
/// ```
#[derive(Clone, Debug)]
pub struct Client(drive::Client<Smol>);

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = roundtrip_smol::Client::builder()
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
    runtime: Smol,
    krate: "roundtrip_smol",
    open: "# smol::block_on(async {",
    close: "# Ok::<(), roundtrip_smol::Error>(()) });",
);
