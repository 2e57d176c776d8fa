//! `Client.do` around `Transport.RoundTrip`: redirects and transparent gzip.
//! Every decision is `roundtrip_io`'s ([`Redirects::on_response`]); this
//! file sends the hops.

use roundtrip_io::http;
use roundtrip_io::{Error, Next, Redirects};

use crate::body::{Body, ResponseBody};
use crate::client::Client;

/// Sends `request`, following redirects as the config says; the final
/// response carries a [`RedirectChain`](roundtrip_io::RedirectChain) when
/// redirects were followed and, when its body is decoded, a
/// [`Decompressed`](roundtrip_io::Decompressed) marker.
/// Cancel-safe: each hop's connection is owned by the round trip or the
/// body being discarded, which close it when dropped mid-way.
pub(crate) async fn request(
    client: &Client,
    request: http::Request<Body>,
) -> Result<http::Response<ResponseBody>, Error> {
    let (mut parts, mut body) = request.into_parts();
    let config = client.config();
    // One deadline for the whole chain, as Go's `Client.Timeout`.
    let deadline = roundtrip_io::deadline(&parts, config);
    let mut redirects = Redirects::new(&parts.uri);
    // Bounded: every hop grows the chain, which `max_redirects` caps.
    loop {
        let response = client.round_trip(&parts, &mut body, deadline).await?;
        let decode_with = ResponseBody::decode_with;
        match redirects.on_response(&mut parts, &mut body, response, config, decode_with)? {
            Next::Deliver(response) => return Ok(response),
            // Drained (waiting, within the core's budget and drain timeout)
            // or closed, as the core decides, so a small redirect body
            // keeps the connection for the next hop.
            Next::Follow(redirect) => redirect.into_body().discard().await,
        }
    }
}
