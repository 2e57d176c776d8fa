//! `Client.do` around `Transport.RoundTrip`: redirects and transparent gzip.
//! Every decision is `roundtrip_io`'s ([`Redirects`], [`decode_response`]);
//! this file sends the hops and wires the decoder into the body.

use std::time::Instant as StdInstant;

use roundtrip_io::http;
use roundtrip_io::{Error, Redirects, Replay, Verdict, decode_response};

use crate::body::{Body, ResponseBody};
use crate::client::Client;

/// Sends `request`, following redirects as the config says; the final
/// response carries a [`RedirectChain`](roundtrip_io::RedirectChain) and, when
/// its body is decoded, a [`Decompressed`](roundtrip_io::Decompressed) marker.
pub(crate) fn request(
    client: &Client,
    request: http::Request<Body>,
) -> Result<http::Response<ResponseBody>, Error> {
    let (mut parts, mut body) = request.into_parts();
    let config = client.config();
    // One deadline for the whole chain, as Go's `Client.Timeout`.
    let deadline: Option<StdInstant> = roundtrip_io::deadline(&parts, config);
    let mut redirects = Redirects::new(&parts.uri);
    // Bounded: every hop grows the chain, which `max_redirects` caps.
    loop {
        let response = client.round_trip(&parts, &mut body, deadline)?;
        let verdict = redirects.handle_response(
            &parts,
            response.status(),
            response.headers(),
            replay(&body),
            config,
        )?;
        match verdict {
            Verdict::Deliver => {
                let (mut head, mut response_body) = response.into_parts();
                let decoder = decode_response(
                    &parts,
                    config,
                    head.status,
                    &mut head.headers,
                    &mut head.extensions,
                );
                if let Some(decoder) = decoder {
                    response_body.decode_with(decoder);
                }
                head.extensions.insert(redirects.into_chain());
                return Ok(http::Response::from_parts(head, response_body));
            }
            Verdict::Follow(hop) => {
                // Dropping the body drains it or closes its connection, as
                // the core decides, so a small redirect body keeps the
                // connection for the next hop.
                drop(response);
                if !hop.keeps_body() {
                    body = Body::empty();
                }
                hop.apply(&mut parts);
            }
        }
    }
}

fn replay(body: &Body) -> Replay {
    if body.is_empty() {
        Replay::Empty
    } else if body.is_replayable() {
        Replay::Replayable
    } else {
        Replay::Consumed
    }
}
