//! [`RequestBuilder`]: what [`Client::get`] and its siblings return, the
//! shared [`roundtrip_io::RequestBuilder`] with this client beside it.

use roundtrip_io::{Error, http};

use crate::{Body, Client, ResponseBody};

/// A request being put together, then sent with [`send`](Self::send), the
/// way reqwest's blocking builder works: the same setter names on every
/// roundtrip backend. A setter given a URL, header or value that does not
/// parse never panics: the error comes back from `send`.
///
/// ```no_run
/// use std::time::Duration;
///
/// let client = roundtrip_blocking::Client::new();
/// let mut response = client
///     .post("http://127.0.0.1:8080/search")
///     .query(&[("lang", "en")])
///     .bearer_auth("t0ken")
///     .form(&[("q", "tom & jerry")])
///     .timeout(Duration::from_secs(5))
///     .send()?;
/// let text = response.body_mut().text(1 << 20)?;
/// # Ok::<(), roundtrip_blocking::Error>(())
/// ```
pub struct RequestBuilder {
    client: Client,
    request: roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>,
}

impl RequestBuilder {
    pub(crate) fn new(
        client: Client,
        method: http::Method,
        uri: impl roundtrip_io::IntoUri,
    ) -> Self {
        RequestBuilder {
            client,
            request: roundtrip_io::RequestBuilder::new(method, uri),
        }
    }

    roundtrip_io::request_setters! {
        field: request,
        body: Body,
        krate: "roundtrip_blocking",
        setup: "let client = roundtrip_blocking::Client::new();",
        client: "client",
        reader: "std::io::Cursor::new(b\"streamed\".to_vec())",
    }

    /// The request as built, to send later with [`Client::execute`], or
    /// the first error met building it.
    ///
    /// ```
    /// let client = roundtrip_blocking::Client::new();
    /// let request = client.get("http://127.0.0.1:8080/a").query(&[("b", "c d")]).build()?;
    /// assert_eq!(request.uri(), "http://127.0.0.1:8080/a?b=c+d");
    /// # Ok::<(), roundtrip_blocking::Error>(())
    /// ```
    pub fn build(self) -> Result<http::Request<Body>, Error> {
        self.request.build()
    }

    /// Sends the request ([`Client::execute`]): the response once its head
    /// arrived, its body read from the connection as it is read. An error
    /// met building the request comes back here, before anything is sent.
    ///
    /// ```no_run
    /// let client = roundtrip_blocking::Client::new();
    /// let response = client.head("http://127.0.0.1:8080/").send()?;
    /// println!("{}", response.status());
    /// # Ok::<(), roundtrip_blocking::Error>(())
    /// ```
    pub fn send(self) -> Result<http::Response<ResponseBody>, Error> {
        let request = self.request.build()?;
        self.client.execute(request)
    }
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.request.fmt(f)
    }
}
