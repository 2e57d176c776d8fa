//! [`RequestBuilder`]: what [`Driver::get`] and its siblings return, the
//! shared [`roundtrip_io::RequestBuilder`] with the driver it is submitted
//! to.

use std::io::Read;

use roundtrip_io::{Error, http};

use crate::{Body, Driver, Receive, RequestId};

/// A request being put together, then handed to the driver with
/// [`submit`](Self::submit) (body collected in memory) or
/// [`submit_with`](Self::submit_with) (body received as a [`Receive`]
/// says): the same setter names as every roundtrip backend, reqwest's. It
/// borrows the driver until it is submitted. A setter given a URL, header
/// or value that does not parse never panics: the request finishes at
/// once with the error, under the id `submit` returns.
///
/// ```no_run
/// use std::time::Duration;
///
/// let mut driver = roundtrip_mio::Driver::new()?;
/// let id = driver
///     .post("http://127.0.0.1:8080/search")
///     .query(&[("lang", "en")])
///     .bearer_auth("t0ken")
///     .form(&[("q", "tom & jerry")])
///     .timeout(Duration::from_secs(5))
///     .submit();
/// for (done, result) in driver.run_until_idle()? {
///     assert_eq!(done, id);
///     println!("{:?}", result.map(|r| r.status()));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RequestBuilder<'a> {
    driver: &'a mut Driver,
    request: roundtrip_io::RequestBuilder<Box<dyn Read + Send>>,
}

impl<'a> RequestBuilder<'a> {
    pub(crate) fn new(
        driver: &'a mut Driver,
        method: http::Method,
        uri: impl roundtrip_io::IntoUri,
    ) -> Self {
        RequestBuilder {
            driver,
            request: roundtrip_io::RequestBuilder::new(method, uri),
        }
    }

    roundtrip_io::request_setters! {
        field: request,
        body: Body,
        krate: "roundtrip_mio",
        setup: "let mut driver = roundtrip_mio::Driver::new().unwrap();",
        client: "driver",
        reader: "std::io::Cursor::new(b\"streamed\".to_vec())",
    }

    /// The request as built, to submit later with [`Driver::submit`], or
    /// the first error met building it. The driver is let go.
    ///
    /// ```
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// let request = driver.get("http://127.0.0.1:8080/a").query(&[("b", "c d")]).build();
    /// assert_eq!(request.unwrap().uri(), "http://127.0.0.1:8080/a?b=c+d");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> Result<http::Request<Body>, Error> {
        self.request.build()
    }

    /// Submits the request ([`Driver::submit`]): its body is collected in
    /// memory up to the driver's `max_body_bytes`, and the result comes
    /// back from [`Driver::take_finished`] under the returned id. A
    /// request that could not be built finishes at once with its error.
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// let id = driver.get("http://127.0.0.1:8080/").header("x-bad", "a\nb").submit();
    /// let (done, result) = driver.take_finished().expect("finished at once");
    /// assert_eq!(done, id);
    /// assert!(matches!(result, Err(roundtrip_mio::Error::InvalidRequest(_))));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit(self) -> RequestId {
        match self.request.build() {
            Ok(request) => self.driver.submit(request),
            Err(e) => self.driver.refuse(e),
        }
    }

    /// Submits the request, receiving its body as `receive` says
    /// ([`Driver::submit_with`]). A request that could not be built
    /// finishes at once with its error.
    ///
    /// ```no_run
    /// use roundtrip_mio::{Flow, Receive};
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// let mut total = 0usize;
    /// driver.get("http://127.0.0.1:8080/big").submit_with(Receive::stream(move |_head, data| {
    ///     total += data.len();
    ///     if total < 1 << 20 { Flow::Continue } else { Flow::Stop }
    /// }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit_with(self, receive: Receive) -> RequestId {
        match self.request.build() {
            Ok(request) => self.driver.submit_with(request, receive),
            Err(e) => self.driver.refuse(e),
        }
    }
}

impl std::fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.request.fmt(f)
    }
}
