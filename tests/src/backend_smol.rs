//! The smol backend for the suite, kept apart from [`crate::backend`]:
//! each call runs in `smol::block_on` on the calling thread (the suite
//! sends from many threads; the sockets' reactor is smol's global one).

use std::io::Read;

use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Config, Error};

use crate::backend::{Backend, Pieces, ReadMode, Req, Resp};

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

    fn send_built(client: &Self::Client, built: crate::builders::Built) -> Result<Resp, Error> {
        let builder = crate::apply_built!(client, built, roundtrip_smol::Body, SmolPieces);
        smol::block_on(async {
            crate::backend::drive_resp(builder.send().await?, ReadMode::All).await
        })
    }

    fn stats(client: &Self::Client) -> PoolStats {
        client.stats()
    }

    fn close_idle(client: &Self::Client) {
        client.close_idle();
    }
}

/// Sends `req` on a smol client and reads its body as `req.read` says
/// (the same reading as tokio's: one driver serves both).
pub async fn smol_send(client: &roundtrip_smol::Client, req: Req) -> Result<Resp, Error> {
    let (request, read) = req.into_http(SmolPieces)?;
    crate::backend::drive_resp(client.execute(request).await?, read).await
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
