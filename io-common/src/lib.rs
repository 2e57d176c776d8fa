//! What the roundtrip backends (`roundtrip-blocking`, `roundtrip-mio`,
//! `roundtrip-tokio`, `roundtrip-smol`) share on top of `roundtrip-proto`.
//! Nothing here touches a socket. Users need not depend on this crate:
//! each backend re-exports what they name.
//!
//! # The public surface
//!
//! - Settings: [`Config`] and the builder setters over it
//!   ([`config_setters!`]); per-request [`RequestTimeout`].
//! - Requests: [`RequestBuilder`] (what every backend's `client.get(url)`
//!   returns, wrapped; its setters on each backend come from
//!   [`request_setters!`], the verbs from [`request_methods!`]),
//!   [`IntoUri`], [`Body`], [`prepare`] and [`Prepared`], [`BodyLen`],
//!   [`Fields`], [`DefaultFields`].
//! - Errors: [`Error`], [`Delivery`], [`Phase`], [`TimeoutKind`],
//!   [`InvalidRequest`].
//! - Responses: [`ResponseHead`], [`ResponseExt`], [`BodyUrl`], [`CollectedExt`],
//!   [`FinalUrl`], [`ReasonPhrase`], [`InterimResponses`], [`Collected`],
//!   [`charset`], [`decode_text`].
//! - Tracing: [`Tracer`], [`Traced`], [`RequestId`] and the [`trace`]
//!   module; the events are [`proto::trace::TraceEvent`].
//! - Redirects (Go's `Client.do`): [`Redirects`], [`RedirectChain`],
//!   [`RedirectPolicy`], [`RedirectAction`], [`RedirectAttempt`].
//! - Cookies (feature `cookies`): `CookieJar`, `CookieError`; Go's
//!   `http.Client` rules with a `Jar`, hop by hop.
//! - Transparent content codings, each behind its feature (gzip, deflate,
//!   br, zstd): [`adds_gzip`], [`accept_encoding`], [`decode_content`],
//!   [`ContentDecoder`], [`decode_response`], [`GzipDecoder`].
//! - The request machine every backend drives ([`exchange::Exchange`]),
//!   and its async driver written once for every runtime ([`drive`], over
//!   its [`Runtime`](drive::Runtime) trait): the tokio and smol backends
//!   are each a `Runtime` impl over it.
//! - The crates the backends speak: [`http`], [`proto`].
//!
//! The adapter plumbing the backends share (`buf`, `sys`, `pool`,
//! `Filled`, `ReadWait`, `drain_buffered`, the `impl_pool_conn!` and
//! `impl_pool_link!` macros) is public only so the backend crates can reach
//! it: it is hidden from these docs and not part of the public API.
//!
//! ```
//! use roundtrip_io::{Config, prepare};
//!
//! let config = Config::default();
//! let request = http::Request::get("http://127.0.0.1:8080/hello?x=1").body(()).unwrap();
//! let (parts, ()) = request.into_parts();
//! let prepared = prepare(&parts, roundtrip_io::BodyLen::Empty, &config).unwrap();
//! assert_eq!(prepared.key.port(), 8080);
//! assert_eq!(prepared.head(&parts).target, b"/hello?x=1");
//! ```
#![deny(unsafe_code)]

mod body;
#[doc(hidden)]
pub mod buf;
mod builder;
mod clock;
mod coding;
mod config;
#[cfg(feature = "cookies")]
mod cookies;
#[allow(unsafe_code)]
#[doc(hidden)]
pub mod counting;
pub mod drive;
mod error;
pub mod exchange;
mod ext;
mod gzip;
#[doc(hidden)]
pub mod pool;
pub mod proxy;
mod read;
mod redirect;
mod request;
pub mod resolve;
mod response;
#[doc(hidden)]
pub mod shared_buf;
pub mod socks;
#[allow(unsafe_code)]
#[doc(hidden)]
pub mod sys;
pub mod tls;
pub mod trace;

pub use body::{Body, BoxReader};
pub use builder::{IntoUri, RequestBuilder};
pub use clock::{Clock, earliest, remaining};
pub use coding::{
    Coding, ContentDecoder, MAX_INPUT_AHEAD, MAX_INPUT_RATIO, accept_encoding,
    accept_encoding_value, decode_content, decoded_coding,
};
pub use config::Config;
#[cfg(feature = "cookies")]
pub use cookies::{CookieError, CookieJar};
pub use error::{Delivery, Error, InvalidRequest, Phase, TimeoutKind};
#[cfg(feature = "json")]
pub use ext::decode_json;
pub use ext::{
    BodyUrl, CollectedExt, FinalUrl, InterimResponses, ReasonPhrase, ResponseExt, charset,
    decode_text,
};
pub use gzip::{
    DecodeError, Decompressed, GzipDecoder, GzipError, MAX_OUTPUT_PIECE, adds_gzip,
    decode_response, decodes,
};
pub use read::Collected;
#[doc(hidden)]
pub use read::{Filled, ReadWait, drain_buffered, read_body_piece};
pub use redirect::{
    Hop, Next, RedirectAction, RedirectAttempt, RedirectChain, RedirectPolicy, Redirects, Replay,
    Verdict,
};
pub use request::{
    BodyLen, DefaultFields, Fields, FieldsIter, Prepared, RequestTimeout, deadline, fields, prepare,
};
pub use response::{HeadBuilder, ResponseHead, trailer_into};
pub use trace::{RequestId, Traced, Tracer};

/// The crates a backend speaks, re-exported so backends and their users agree
/// on one version.
pub use http;
pub use roundtrip_proto as proto;
/// For [`request_setters!`]'s `json`, in backends that do not name serde.
#[cfg(feature = "json")]
#[doc(hidden)]
pub use serde as __serde;
