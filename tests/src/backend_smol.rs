//! The smol backend for the suite, kept apart from [`crate::backend`]:
//! each call runs in `smol::block_on` on the calling thread (the suite
//! sends from many threads; the sockets' reactor is smol's global one).

use std::io::Read;

use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Config, Error};

use crate::backend::{Backend, Pieces, ReadMode, Req, ReqBody, Resp};

/// The smol backend.
#[derive(Debug)]
pub struct Smol;

impl Backend for Smol {
    const NAME: &'static str = "smol";
    const DROPS_CLOSED_IDLE: bool = false;
    type Client = roundtrip_smol::Client;

    fn client(config: Config) -> Self::Client {
        roundtrip_smol::Client::builder().config(config).build()
    }

    fn send(client: &Self::Client, req: Req) -> Result<Resp, Error> {
        smol::block_on(smol_send(client, req))
    }

    fn stats(client: &Self::Client) -> PoolStats {
        client.stats()
    }
}

/// Sends `req` on a smol client and reads its body as `req.read` says.
pub async fn smol_send(client: &roundtrip_smol::Client, req: Req) -> Result<Resp, Error> {
    use roundtrip_smol::Body;
    let body = match req.body {
        ReqBody::Empty => Body::empty(),
        ReqBody::Bytes(b) => Body::from(b),
        ReqBody::Stream { data, piece, sized } => {
            let len = sized.then_some(data.len() as u64);
            Body::from_reader(SmolPieces(Pieces::new(data, piece)), len)
        }
        ReqBody::Declared { data, declared } => {
            let piece = data.len().max(1);
            Body::from_reader(SmolPieces(Pieces::new(data, piece)), Some(declared))
        }
    };
    let mut builder = roundtrip_io::http::Request::builder()
        .method(req.method)
        .uri(&req.url);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    if let Some(timeout) = req.timeout {
        builder = builder.extension(roundtrip_io::RequestTimeout(timeout));
    }
    let request = builder
        .body(body)
        .map_err(roundtrip_io::InvalidRequest::from)?;
    let response = client.request(request).await?;
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    let want = match req.read {
        ReadMode::All => usize::MAX,
        ReadMode::DropAfter(n) => n,
    };
    while bytes.len() < want {
        match body.chunk().await? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    let trailers = body.trailers().cloned();
    // A body left unread is drained in a detached task when dropped; the
    // suite checks the pool right after `send`, as the blocking backend's
    // drop and the mio reply leave it, so wait for the drain here.
    body.discard().await;
    Ok(Resp {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: bytes,
        trailers,
        extensions: parts.extensions,
    })
}

/// [`Pieces`] as a `futures_io::AsyncRead`.
#[derive(Debug)]
pub struct SmolPieces(pub Pieces);

impl smol::io::AsyncRead for SmolPieces {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.0.read(buf))
    }
}
