//! The async driver of the [`Exchange`](crate::exchange::Exchange) machine,
//! written once for every async runtime: a runtime plugs in through the
//! small [`Runtime`] trait (sockets, a timer, name resolution, spawning),
//! as quinn's driver does (`quinn/src/runtime/mod.rs`). The
//! `roundtrip-tokio` and `roundtrip-smol` crates are each one `Runtime`
//! impl and a few public names over this module.
//!
//! What lives here, and nowhere else:
//!
//! - the loop carrying out the machine's [`Action`](crate::exchange::Action)s:
//!   checkout (or a wait for the pool's grant), the stale probe, the
//!   lookup (on the resolver's shared lookup threads), the connects the machine starts
//!   and aborts (Happy Eyeballs: several may run at once), writes (watching for an early answer), request
//!   body pieces, reads, and the runtime's timer armed at the machine's
//!   [`poll_timeout`](crate::exchange::Exchange::poll_timeout) and checked
//!   against the clock before it is trusted;
//! - the pool glue: the shared pool with a parked slot per waiter as its
//!   waiting primitive (no channel, no allocation per wait);
//! - the response body ([`ResponseBody`]): dropped early, the machine
//!   abandons it, what already arrived is drained without waiting, and the
//!   rest is drained in a task spawned on the runtime (or the connection
//!   closed, as the machine decides);
//! - a switched connection ([`Upgraded`]).
//!
//! Nothing here decides: every choice is the machine's.
//!
//! ```
//! use roundtrip_io::drive::{Client, Runtime};
//! use roundtrip_io::{Body, http};
//!
//! // Code written once for any runtime's client.
//! async fn fetch<R: Runtime>(client: &Client<R>, uri: &str) -> Result<usize, roundtrip_io::Error> {
//!     let request = http::Request::get(uri).body(Body::empty()).map_err(roundtrip_io::InvalidRequest::from)?;
//!     let mut response = client.execute(request).await?;
//!     Ok(response.body_mut().bytes(1 << 20).await?.len())
//! }
//! ```

mod alarm;
mod body;
mod pool;
mod run;
mod upgraded;

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant as StdInstant;

use bytes::BytesMut;
use roundtrip_proto::pool::PoolStats;

pub use body::ResponseBody;
pub use upgraded::Upgraded;

use crate::exchange::Settings;
use crate::{Body, Clock, Config, Error, http};
use pool::SharedPool;
use run::{Drive, Out, Run};

/// What the driver needs of an async runtime. Each method is a primitive
/// of the runtime, with no protocol in it; the driver calls the `poll_*`
/// ones with the task's context, so every future it keeps is its own.
///
/// The two impls in this workspace are the models: `roundtrip-tokio`'s
/// `Tokio` and `roundtrip-smol`'s `Smol` (each about 70 lines). They differ
/// where the runtimes do: tokio reads into a `BytesMut` through `ReadBuf`,
/// `futures-io` readers want initialized memory; tokio's `Sleep` is reset
/// in place, `async-io`'s `Timer` moved; tokio spawns on the current
/// runtime if there is one, smol on its global executor.
///
/// ```
/// use roundtrip_io::drive::Runtime;
///
/// // What a runtime's client needs to be spawned on a multi-thread executor.
/// fn assert_send<R: Runtime>(client: roundtrip_io::drive::Client<R>) -> impl Send { client }
/// ```
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A connected TCP socket, registered with the runtime's reactor.
    type Socket: AsFd + Send + 'static;
    /// The reader of a streamed request body ([`Body::from_reader`]).
    type Reader: Send + 'static;
    /// A timer; its output is ignored.
    type Timer: Future + Send + 'static;
    /// Which runtime the calling task's timers and new sockets belong to,
    /// where they are bound to one (tokio: a timer polled after its
    /// runtime shut down panics, and a socket's reader is woken only by
    /// the reactor of the runtime that made it); `()` where they are the
    /// process's (async-io). A timer kept with a pooled connection is
    /// taken over only by a request of the same home, and a pooled
    /// connection of another home is closed instead of used.
    type Home: PartialEq + Send + Sync + 'static;
    /// A connection switched to another protocol, as the caller gets it.
    type Upgraded: From<Upgraded<Self::Socket>>;

    /// Connects to `addr` (with Nagle's algorithm off).
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Socket>> + Send + 'static;
    /// Resolves the name `host` (never an IP literal nor an override: the
    /// driver answers those itself) with `resolver`: its plugged-in
    /// [`Resolve`](crate::resolve::Resolve) or the system's lookup, never
    /// on the runtime's own threads. By default on the resolver's lookup
    /// threads ([`Resolver::resolve_shared`](crate::resolve::Resolver::resolve_shared)):
    /// one lookup per name at a time, a bounded number of threads, and no
    /// job left queued on a blocking pool by a request that gave up.
    fn resolve(
        &self,
        resolver: &crate::resolve::Resolver,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        resolver.resolve_shared(host, port)
    }
    /// The clock the runtime's timers fire by: the system's monotonic one
    /// unless the runtime keeps its own (tokio's paused time, for tests).
    /// Every deadline of the client's is kept on it, so that a timer
    /// firing means its deadline passed.
    fn clock(&self) -> Clock {
        Clock::new()
    }
    /// A timer that fires at `at`.
    fn timer(&self, at: StdInstant) -> Self::Timer;
    /// The home of the timers [`timer`](Self::timer) makes now.
    fn home(&self) -> Self::Home;
    /// Moves `timer` to fire at `at`.
    fn reset_timer(timer: Pin<&mut Self::Timer>, at: StdInstant);
    /// Runs `task` in the background; without a runtime to run it, drops it
    /// (the driver then closes what the task held).
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// One read into the spare capacity of `buf` (0 = end of stream).
    fn poll_read(
        socket: &mut Self::Socket,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;
    /// One write of `bufs` (one or more slices, none empty at either end).
    fn poll_write(
        socket: &mut Self::Socket,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// One read of a request body into the spare capacity of `buf` (0 =
    /// its end).
    fn poll_read_body(
        reader: &mut Self::Reader,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;
}

/// What the clones of a client share.
pub(crate) struct Shared<R: Runtime> {
    pub settings: Arc<Settings>,
    pub pool: SharedPool<R>,
    pub clock: Clock,
    pub runtime: R,
}

/// An async HTTP/1.1 client with a connection pool, on runtime `R`. Cheap
/// to clone: clones share the pool. Its futures are `Send`; dropping one at
/// any await point cancels the request, and a connection in the middle of
/// an exchange is drained or closed as the machine decides, never pooled
/// mid-way.
///
/// ```
/// use roundtrip_io::drive::{Client, Runtime};
///
/// fn report<R: Runtime>(client: &Client<R>) -> String {
///     format!("{} idle of {:?}", client.stats().idle, client.config().pool.max_idle_per_host)
/// }
/// ```
pub struct Client<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Clone for Client<R> {
    fn clone(&self) -> Self {
        Client {
            shared: self.shared.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", self.config())
            .finish()
    }
}

impl<R: Runtime> Client<R> {
    /// A client with `config`, whose sockets, timers and tasks are
    /// `runtime`'s.
    ///
    /// ```
    /// use roundtrip_io::drive::{Client, Runtime};
    /// fn build<R: Runtime>(runtime: R) -> Client<R> {
    ///     Client::new(roundtrip_io::Config::default(), runtime)
    /// }
    /// ```
    pub fn new(config: Config, runtime: R) -> Client<R> {
        let clock = runtime.clock();
        let pool = SharedPool::new(config.pool, clock, config.trace.clone());
        let shared = Arc::new(Shared {
            settings: Arc::new(Settings::new(config)),
            pool,
            clock,
            runtime,
        });
        // Idle connections close when they expire, not at the next request:
        // a task sleeps until then (none without a runtime to spawn on; the
        // next checkout closes them then). Not without an idle timeout: a
        // client with every timeout off arms no timer, so that it runs on
        // a runtime without one (a server's `Keep-Alive` hint then expires
        // its connection at the next checkout).
        if shared.settings.config.pool.idle_timeout.is_none() {
            return Client { shared };
        }
        shared.pool.set_alarm(alarm::alarm(Arc::downgrade(&shared)));
        Client { shared }
    }

    /// The settings in force.
    ///
    /// ```
    /// fn keeps_alive<R: roundtrip_io::drive::Runtime>(client: &roundtrip_io::drive::Client<R>) -> bool {
    ///     client.config().keep_alive
    /// }
    /// ```
    pub fn config(&self) -> &Config {
        &self.shared.settings.config
    }

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    ///
    /// ```
    /// fn idle<R: roundtrip_io::drive::Runtime>(client: &roundtrip_io::drive::Client<R>) -> usize {
    ///     client.stats().idle
    /// }
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.shared.pool.stats()
    }

    /// Closes the idle connections in the pool, a TLS one after its
    /// `close_notify` (Go's `CloseIdleConnections`); those in use are left
    /// to their requests. The pool does the same when the last clone of
    /// the client is dropped.
    ///
    /// ```
    /// fn quiet<R: roundtrip_io::drive::Runtime>(client: &roundtrip_io::drive::Client<R>) {
    ///     client.close_idle();
    ///     assert_eq!(client.stats().idle, 0);
    /// }
    /// ```
    pub fn close_idle(&self) {
        self.shared.pool.close_idle();
    }

    /// Sends `request` and returns the response once its final head
    /// arrived; the body streams from the connection as it is polled.
    ///
    /// A request that fails on a pooled connection is sent again on
    /// another connection when the machine says that is provably safe
    /// (while each failure is on a pooled connection, at most
    /// `max_idle_per_host` times plus one);
    /// redirects are followed up to [`Config::max_redirects`], and a gzip
    /// body the client asked for is decoded as it is polled (see
    /// [`crate::RedirectChain`], [`crate::Decompressed`]). Dropping the
    /// future cancels the request: whatever it holds is released.
    ///
    /// ```
    /// use roundtrip_io::{Body, drive::{Client, Runtime}, http};
    /// async fn post<R: Runtime>(client: &Client<R>) -> Result<u16, roundtrip_io::Error> {
    ///     let request = http::Request::post("http://127.0.0.1:8080/").body(Body::from("hi")).unwrap();
    ///     Ok(client.execute(request).await?.status().as_u16())
    /// }
    /// ```
    pub async fn execute(
        &self,
        request: http::Request<Body<R::Reader>>,
    ) -> Result<http::Response<ResponseBody<R>>, Error> {
        let mut drive = Drive::new(Run::new(self.shared.clone(), request));
        match std::future::poll_fn(|cx| drive.poll_next(cx)).await {
            Out::Head => {
                let Some(head) = drive.take_head() else {
                    return Err(run::misuse("no response head"));
                };
                let content_type = head.headers().get(http::header::CONTENT_TYPE).cloned();
                Ok(head.map(|url| ResponseBody::new(drive, content_type, url)))
            }
            Out::Fail(e) => Err(e),
            Out::Data(_) | Out::End | Out::Upgrade => Err(run::misuse("no response head")),
        }
    }
}

/// The methods of an async backend's `Client` (a newtype over
/// [`Client`]`<$runtime>`) and its `ClientBuilder`, with doc examples in the
/// backend's names: written once for `roundtrip-tokio` and `roundtrip-smol`.
/// `$open` and `$close` wrap an async doc example (`async fn` or
/// `block_on`).
///
/// ```ignore
/// roundtrip_io::async_client_methods!(
///     runtime: Tokio,
///     krate: "roundtrip_tokio",
///     open: "# async fn demo() -> Result<(), roundtrip_tokio::Error> {",
///     close: "# Ok(()) }",
/// );
/// ```
#[macro_export]
macro_rules! async_client_methods {
    (
        runtime: $runtime:expr,
        krate: $krate:literal,
        open: $open:literal,
        close: $close:literal $(,)?
    ) => {
        impl Default for Client {
            fn default() -> Self {
                Client::new()
            }
        }

        impl Client {
            /// A client with the default settings ([`Config`]'s table).
            ///
            /// ```
            #[doc = concat!("assert_eq!(", $krate, "::Client::new().stats().idle, 0);")]
            /// ```
            pub fn new() -> Client {
                Client::builder().build()
            }

            /// A builder to change the settings.
            ///
            /// ```
            #[doc = concat!("let client = ", $krate, "::Client::builder().max_idle_per_host(4).build();")]
            /// assert_eq!(client.config().pool.max_idle_per_host, 4);
            /// ```
            pub fn builder() -> ClientBuilder {
                ClientBuilder {
                    config: $crate::Config::default(),
                }
            }

            /// The settings in force.
            ///
            /// ```
            #[doc = concat!("assert!(", $krate, "::Client::new().config().keep_alive);")]
            /// ```
            pub fn config(&self) -> &$crate::Config {
                self.0.config()
            }

            /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
            ///
            /// ```
            #[doc = concat!("assert_eq!(", $krate, "::Client::new().stats().in_use, 0);")]
            /// ```
            pub fn stats(&self) -> $crate::proto::pool::PoolStats {
                self.0.stats()
            }

            /// Closes the idle connections in the pool, a TLS one after its
            /// `close_notify` (Go's `CloseIdleConnections`); those in use
            /// are left to their requests. The pool does the same when the
            /// last clone of the client is dropped.
            ///
            /// ```
            #[doc = concat!("let client = ", $krate, "::Client::new();")]
            /// client.close_idle();
            /// assert_eq!(client.stats().idle, 0);
            /// ```
            pub fn close_idle(&self) {
                self.0.close_idle()
            }

            /// Starts a `method` request of `uri`: a [`RequestBuilder`] to add
            /// headers, a query, auth, a body to, then
            /// [`send`](RequestBuilder::send). A `uri` that does not parse fails
            /// the request when it is sent.
            ///
            /// ```no_run
            #[doc = $open]
            #[doc = concat!("use ", $krate, "::http::Method;")]
            #[doc = concat!("let client = ", $krate, "::Client::new();")]
            /// let response = client.request(Method::OPTIONS, "http://127.0.0.1:8080/").send().await?;
            #[doc = $close]
            /// ```
            pub fn request(
                &self,
                method: $crate::http::Method,
                uri: impl $crate::IntoUri,
            ) -> RequestBuilder {
                RequestBuilder::new(self.clone(), method, uri)
            }

            $crate::request_methods! {
                receiver: &,
                builder: RequestBuilder,
                setup: concat!("let client = ", $krate, "::Client::new();"),
                client: "client",
            }

            /// Sends `request` and returns the response once its head arrived; the
            /// body streams from the connection as it is polled. What
            /// [`RequestBuilder::send`] calls, for a request built by hand.
            ///
            /// A request that fails on a pooled connection is sent again on
            /// another connection when that is provably safe (while each failure is
            /// on a pooled connection, at most `max_idle_per_host` times plus one):
            /// nothing of it was
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
            #[doc = $open]
            #[doc = concat!("use ", $krate, "::{Body, http};")]
            /// let request = http::Request::post("http://127.0.0.1:8080/").body(Body::from("hi")).unwrap();
            #[doc = concat!("let response = ", $krate, "::Client::new().execute(request).await?;")]
            #[doc = $close]
            /// ```
            pub async fn execute(
                &self,
                request: $crate::http::Request<Body>,
            ) -> Result<$crate::http::Response<ResponseBody>, $crate::Error> {
                self.0.execute(request).await
            }
        }

        impl ClientBuilder {
            $crate::config_setters!(config, $krate, concat!($krate, "::Client::builder()"));

            /// The client.
            ///
            /// ```
            #[doc = concat!("let client = ", $krate, "::Client::builder().build();")]
            /// ```
            pub fn build(self) -> Client {
                Client($crate::drive::Client::new(self.config, $runtime))
            }
        }
    };
}
