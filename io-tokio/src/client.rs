//! `Client` and its builder: [`roundtrip_io::drive::Client`] on the
//! [`Tokio`] runtime.

use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Config, Error, drive, http};

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

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the default settings ([`Config`]'s table).
    ///
    /// ```
    /// assert_eq!(roundtrip_tokio::Client::new().stats().idle, 0);
    /// ```
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// A builder to change the settings.
    ///
    /// ```
    /// let client = roundtrip_tokio::Client::builder().max_idle_per_host(4).build();
    /// assert_eq!(client.config().pool.max_idle_per_host, 4);
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: Config::default(),
        }
    }

    /// The settings in force.
    ///
    /// ```
    /// assert!(roundtrip_tokio::Client::new().config().keep_alive);
    /// ```
    pub fn config(&self) -> &Config {
        self.0.config()
    }

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    ///
    /// ```
    /// assert_eq!(roundtrip_tokio::Client::new().stats().in_use, 0);
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.0.stats()
    }

    /// Starts a `method` request of `uri`: a [`RequestBuilder`] to add
    /// headers, a query, auth, a body to, then
    /// [`send`](RequestBuilder::send). A `uri` that does not parse fails
    /// the request when it is sent.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
    /// use roundtrip_tokio::http::Method;
    /// let client = roundtrip_tokio::Client::new();
    /// let response = client.request(Method::OPTIONS, "http://127.0.0.1:8080/").send().await?;
    /// # Ok(()) }
    /// ```
    pub fn request(&self, method: http::Method, uri: impl roundtrip_io::IntoUri) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, uri)
    }

    roundtrip_io::request_methods! {
        receiver: &,
        builder: RequestBuilder,
        setup: "let client = roundtrip_tokio::Client::new();",
        client: "client",
    }

    /// Sends `request` and returns the response once its head arrived; the
    /// body streams from the connection as it is polled. What
    /// [`RequestBuilder::send`] calls, for a request built by hand.
    ///
    /// A request that fails on a pooled connection is sent once more on
    /// another connection when that is provably safe: nothing of it was
    /// written, or its method is idempotent and no byte of a response arrived
    /// (and its body can be sent again). Otherwise the error says whether the
    /// request may have reached the server.
    ///
    /// Redirects are followed up to [`Config::max_redirects`], and a gzip
    /// body the client asked for is decoded as it is polled (see
    /// [`roundtrip_io::RedirectChain`], [`roundtrip_io::Decompressed`]).
    /// Dropping the future cancels the request: whatever it holds is
    /// released.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
    /// use roundtrip_tokio::{Body, http};
    /// let request = http::Request::post("http://127.0.0.1:8080/").body(Body::from("hi")).unwrap();
    /// let response = roundtrip_tokio::Client::new().execute(request).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        self.0.execute(request).await
    }
}

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

impl ClientBuilder {
    roundtrip_io::config_setters!(
        config,
        "roundtrip_tokio",
        "roundtrip_tokio::Client::builder()"
    );

    /// The client.
    ///
    /// ```
    /// let client = roundtrip_tokio::Client::builder().build();
    /// ```
    pub fn build(self) -> Client {
        Client(drive::Client::new(self.config, Tokio))
    }
}
