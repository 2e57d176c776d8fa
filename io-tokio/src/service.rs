//! [`Client`] as a [`tower_service::Service`] (feature `tower`), the way
//! hyper-util's legacy client is one: tower middleware (timeouts, retries,
//! rate limits, request mapping) wraps it like any other service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use roundtrip_io::{Error, http};

use crate::{Body, Client, ResponseBody};

/// A request of any body type the client takes (`B: Into<Body>`: [`Body`]
/// itself, `()`, `Bytes`, `Vec<u8>`, `String`, `&'static str`,
/// `&'static [u8]`), answered once the response head arrived, as
/// [`Client::execute`] does.
///
/// Always ready: a request that must wait for a connection
/// (`max_conns_per_host`) waits inside its future, in the pool's queue, as
/// hyper-util's client does. Each call clones the client (a reference
/// count), so the future owns what it needs and is `Send + 'static`.
///
/// ```
/// use tower_service::Service;
/// use roundtrip_tokio::{Client, Error, ResponseBody, http};
///
/// fn takes<S>(_: S)
/// where
///     S: Service<http::Request<&'static str>, Response = http::Response<ResponseBody>, Error = Error>,
/// {
/// }
/// takes(Client::new());
/// ```
impl<B> tower_service::Service<http::Request<B>> for Client
where
    B: Into<Body>,
{
    type Response = http::Response<ResponseBody>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> ResponseFuture {
        let client = self.clone();
        let request = request.map(Into::into);
        ResponseFuture(Box::pin(async move { client.execute(request).await }))
    }
}

/// The future of [`Client`]'s `Service::call`: the response once its head
/// arrived. Dropping it cancels the request, as dropping
/// [`Client::execute`]'s future does.
pub struct ResponseFuture(
    Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, Error>> + Send>>,
);

impl Future for ResponseFuture {
    type Output = Result<http::Response<ResponseBody>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture(..)")
    }
}
