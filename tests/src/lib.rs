//! Shared helpers for roundtrip's cross-crate tests: decoding a byte stream
//! into whole responses, and reading the conformance corpus.

pub mod backend;
pub mod backend_smol;
pub mod builders;
pub mod cases;
pub mod certs;
pub mod conformance;
pub mod cookies;
pub mod dial;
pub mod faults;
pub mod fixtures;
pub mod origin;
pub mod peer;
pub mod proxies;
pub mod proxy_peers;
pub mod redirects;
pub mod server;
pub mod suite;
pub mod tls_faults;
pub mod tls_nginx;
pub mod tls_server;
pub mod traces;

pub use backend_smol::Smol;

use bytes::BytesMut;
use roundtrip_proto::{Error, Event, Limits, ResponseDecoder};

/// A response as the conformance corpus describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase, as bytes.
    pub reason: Vec<u8>,
    /// Header fields in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Trailer fields in order.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether the connection may be reused after it (not given for 1xx).
    pub keep_alive: Option<bool>,
}

/// What decoding a stream gave: the responses completed, then an error if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Responses completed, interim ones included.
    pub responses: Vec<Response>,
    /// The error that stopped decoding.
    pub error: Option<Error>,
}

/// Decodes `pieces` fed one after the other (then EOF when `closed`).
pub fn decode_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
    method: &[u8],
    limits: Limits,
    closed: bool,
) -> Outcome {
    let mut dec = ResponseDecoder::new(limits);
    dec.set_request_method(method);
    let mut buf = BytesMut::new();
    let mut out = Collector::default();
    for piece in pieces {
        buf.extend_from_slice(piece);
        if let Err(e) = out.drain(&mut dec, &mut buf) {
            return out.finish(Some(e));
        }
        if out.switched {
            return out.finish(None);
        }
    }
    if closed {
        dec.handle_eof();
        if let Err(e) = out.drain(&mut dec, &mut buf) {
            return out.finish(Some(e));
        }
    }
    out.finish(None)
}

#[derive(Default)]
struct Collector {
    done: Vec<Response>,
    current: Option<Response>,
    switched: bool,
}

impl Collector {
    fn drain(&mut self, dec: &mut ResponseDecoder, buf: &mut BytesMut) -> Result<(), Error> {
        // Bounded: every event consumes input or advances the state.
        for _ in 0..10_000_000 {
            let Some(event) = dec.poll_event(buf)? else {
                return Ok(());
            };
            self.take(event);
            if self.switched {
                return Ok(());
            }
        }
        panic!("decoder did not settle");
    }

    fn take(&mut self, event: Event) {
        let field = |f: &roundtrip_proto::Field| (f.name().to_vec(), f.value().to_vec());
        match event {
            Event::Status(s) => {
                self.current = Some(Response {
                    version: s.version.as_str().to_string(),
                    status: s.code,
                    reason: s.reason.to_vec(),
                    ..Response::default()
                })
            }
            Event::Field(f) => self.cur().headers.push(field(&f)),
            Event::HeadEnd(end) => {
                if end.interim {
                    let done = self.current.take().expect("status before head end");
                    self.done.push(done);
                } else {
                    self.cur().keep_alive = Some(end.reuse.is_yes());
                }
            }
            Event::Data(d) => self.cur().body.extend_from_slice(&d),
            Event::Trailer(f) => self.cur().trailers.push(field(&f)),
            Event::End => {
                let done = self.current.take().expect("status before end");
                self.done.push(done);
            }
            Event::Switched => {
                let done = self.current.take().expect("status before switched");
                self.done.push(done);
                self.switched = true;
            }
            // Event is not exhaustive for users; this crate knows them all.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    fn cur(&mut self) -> &mut Response {
        self.current.as_mut().expect("an event inside a response")
    }

    fn finish(self, error: Option<Error>) -> Outcome {
        Outcome {
            responses: self.done,
            error,
        }
    }
}

/// Runs `future` to its end on a new current-thread tokio runtime (timers
/// and I/O enabled): what a test of the tokio backend that needs no client
/// of the suite's runs its requests on.
///
/// ```
/// assert_eq!(roundtrip_tests::block_on_tokio(async { 1 + 1 }), 2);
/// ```
pub fn block_on_tokio<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}
