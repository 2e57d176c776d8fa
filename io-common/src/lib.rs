//! What the three roundtrip backends (`roundtrip-blocking`, `roundtrip-mio`,
//! `roundtrip-tokio`) share on top of `roundtrip-proto`: the client settings
//! and the builder setters over them ([`config_setters!`]), the request
//! [`Body`], the one error type, the conversions between the `http` crate's
//! types and the sans-IO core, and the glue around the core every backend
//! would otherwise repeat (the threaded backends' [`pool`], buffer sizing in
//! [`buf`], [`Filled::report`]). Nothing here touches a socket.
//!
//! It also holds the decisions Go's `Client.do` makes around one round trip,
//! so each backend only executes them: following redirects ([`Redirects`],
//! [`RedirectChain`]) and transparent gzip ([`adds_gzip`],
//! [`decode_response`], [`GzipDecoder`]).
//!
//! And the async driver of the exchange machine, written once for every
//! runtime ([`drive`], over its [`Runtime`](drive::Runtime) trait): the tokio and
//! smol backends are each a `Runtime` impl over it.
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
pub mod buf;
mod clock;
mod config;
pub mod drive;
mod error;
pub mod exchange;
mod ext;
mod gzip;
pub mod pool;
mod read;
mod redirect;
mod request;
mod response;
#[allow(unsafe_code)]
pub mod sys;
pub mod trace;

pub use body::{Body, BoxReader};
pub use clock::{Clock, earliest, remaining};
pub use config::Config;
pub use error::{Error, InvalidRequest, Phase, TimeoutKind};
#[cfg(feature = "json")]
pub use ext::decode_json;
pub use ext::{CollectedExt, FinalUrl, ResponseExt, charset, decode_text};
pub use gzip::{
    Decompressed, GzipDecoder, GzipError, MAX_OUTPUT_PIECE, adds_gzip, decode_response, decodes,
};
pub use read::{Collected, Filled, ReadWait, drain_buffered};
pub use redirect::{
    Hop, Next, RedirectAction, RedirectAttempt, RedirectChain, RedirectPolicy, Redirects, Replay,
    Verdict,
};
pub use request::{
    BodyLen, DefaultFields, Fields, FieldsIter, Prepared, RequestTimeout, deadline, fields,
    frame_whole, prepare,
};
pub use response::{HeadBuilder, ResponseHead, trailer_into};
pub use trace::{RequestId, Traced, Tracer};

/// The crates a backend speaks, re-exported so backends and their users agree
/// on one version.
pub use http;
pub use roundtrip_proto as proto;
