//! `Client` and its builder: [`roundtrip_io::drive::Client`] on the
//! [`Smol`] runtime.

use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Config, Error, drive, http};

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

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the default settings ([`Config`]'s table).
    ///
    /// ```
    /// let client = roundtrip_smol::Client::new();
    /// assert_eq!(client.stats().idle, 0);
    /// ```
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// A builder to change the settings.
    ///
    /// ```
    /// let client = roundtrip_smol::Client::builder().max_idle_per_host(4).build();
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
    /// assert!(roundtrip_smol::Client::new().config().keep_alive);
    /// ```
    pub fn config(&self) -> &Config {
        self.0.config()
    }

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    ///
    /// ```
    /// assert_eq!(roundtrip_smol::Client::new().stats().in_use, 0);
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
    /// # smol::block_on(async {
    /// use roundtrip_smol::http::Method;
    /// let client = roundtrip_smol::Client::new();
    /// let response = client.request(Method::OPTIONS, "http://127.0.0.1:8080/").send().await?;
    /// # Ok::<(), roundtrip_smol::Error>(()) });
    /// ```
    pub fn request(&self, method: http::Method, uri: impl roundtrip_io::IntoUri) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, uri)
    }

    roundtrip_io::request_methods! {
        receiver: &,
        builder: RequestBuilder,
        setup: "let client = roundtrip_smol::Client::new();",
        client: "client",
    }

    /// Sends `request` and returns the response once its final head
    /// arrived (redirects followed, a safe retry spent, as the machine
    /// decides); the body is read from the connection as it is asked for.
    /// What [`RequestBuilder::send`] calls, for a request built by hand.
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// use roundtrip_smol::{Body, http};
    /// let request = http::Request::post("http://127.0.0.1:8080/").body(Body::from("hi")).unwrap();
    /// let response = roundtrip_smol::Client::new().execute(request).await?;
    /// # Ok::<(), roundtrip_smol::Error>(()) });
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

impl ClientBuilder {
    roundtrip_io::config_setters!(
        config,
        "roundtrip_smol",
        "roundtrip_smol::Client::builder()"
    );

    /// The client.
    ///
    /// ```
    /// let client = roundtrip_smol::Client::builder().build();
    /// ```
    pub fn build(self) -> Client {
        Client(drive::Client::new(self.config, Smol))
    }
}
