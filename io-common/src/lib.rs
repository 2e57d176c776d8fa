//! What the three roundtrip backends (`roundtrip-blocking`, `roundtrip-mio`,
//! `roundtrip-tokio`) share on top of `roundtrip-proto`: the client settings,
//! the one error type, and the conversions between the `http` crate's types
//! and the sans-IO core. Nothing here does I/O.
//!
//! ```
//! use roundtrip_io::{Config, prepare};
//!
//! let config = Config::default();
//! let request = http::Request::get("http://127.0.0.1:8080/hello?x=1").body(()).unwrap();
//! let (parts, ()) = request.into_parts();
//! let prepared = prepare(&parts, roundtrip_io::BodyLen::Empty, &config).unwrap();
//! assert_eq!(prepared.key.port(), 8080);
//! assert_eq!(prepared.target, "/hello?x=1");
//! ```
#![deny(unsafe_code)]

mod clock;
mod config;
mod error;
mod request;
mod response;
#[allow(unsafe_code)]
pub mod sys;

pub use clock::{Clock, earliest, remaining};
pub use config::Config;
pub use error::{Error, InvalidRequest, Phase};
pub use request::{
    BodyLen, Fields, FieldsIter, Prepared, RequestTimeout, deadline, fields, prepare,
};
pub use response::{HeadBuilder, ResponseHead, trailer_into};

/// The crates a backend speaks, re-exported so backends and their users agree
/// on one version.
pub use http;
pub use roundtrip_proto as proto;
