//! The TLS layers of one connection: one session (with the origin, or
//! with an `https://` proxy that forwards), or two, one inside the other
//! (a `CONNECT` tunnel through an `https://` proxy: the session with the
//! origin runs inside the session with the proxy).
//!
//! ```text
//!  socket <-> outer session <-> [inner session] <-> the core's buffers
//!             (proxy, or the      (origin, in a
//!              only one)           tunnel)
//! ```
//!
//! Reading, the outer session's plaintext is the inner session's
//! ciphertext, and the inner one's plaintext goes to the core. Writing,
//! the inner session seals the core's bytes; the outer one seals the inner
//! one's records. The socket's progress maps back through both:
//! [`TlsLink::written`] asks the outer session how much of the inner
//! session's ciphertext left with it, and the inner session how much of
//! the core's plaintext that was. Each mapping reports a record in
//! proportion and never whole before all of it left, so the composition
//! never reports more plaintext written than actually went out.
//!
//! Sending one request takes one write either way: both seals happen in
//! [`prepare_write`](TlsLink::prepare_write), before the socket is asked.

use std::io::IoSlice;
use std::sync::Arc;

use bytes::BytesMut;
use roundtrip_proto::trace::TlsInfo;
use rustls::ClientConfig;

use super::layer::Session;
use super::{Peer, TlsError};
use crate::buf::ReadSizer;
use crate::exchange::Outbox;

/// A session failed, and whom it was with.
#[derive(Debug)]
pub(crate) struct SessionError {
    /// Whom the failed session was with.
    pub(crate) peer: Peer,
    /// What went wrong.
    pub(crate) error: TlsError,
}

/// One connection's TLS sessions, between the socket and the core.
#[derive(Debug)]
pub(crate) struct TlsLink {
    /// The session whose records are the socket's.
    outer: Session,
    /// The session inside `outer`'s plaintext (the origin's, through an
    /// `https://` proxy's tunnel).
    inner: Option<Session>,
}

impl TlsLink {
    /// A connection's session with `peer` at `host`.
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        host: &str,
        peer: Peer,
    ) -> Result<TlsLink, TlsError> {
        let outer = Session::new(config, host, peer)?;
        Ok(TlsLink { outer, inner: None })
    }

    /// Starts a session with `peer` at `host` inside the one there is
    /// (whose handshake ended). A connection holds two at most: a
    /// third is refused.
    pub(crate) fn push(
        &mut self,
        config: Arc<ClientConfig>,
        host: &str,
        peer: Peer,
    ) -> Result<(), TlsError> {
        if self.inner.is_some() || self.outer.is_handshaking() {
            return Err(TlsError::Config {
                detail: "a third TLS session on one connection".to_string(),
            });
        }
        self.inner = Some(Session::new(config, host, peer)?);
        Ok(())
    }

    /// The innermost session: the one the core's bytes go through.
    fn top(&self) -> &Session {
        self.inner.as_ref().unwrap_or(&self.outer)
    }

    /// The innermost session's handshake is under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.top().is_handshaking()
    }

    /// What the innermost session's handshake agreed on.
    pub(crate) fn info(&self) -> TlsInfo {
        self.top().info()
    }

    /// Whom the innermost session is with.
    pub(crate) fn peer(&self) -> Peer {
        self.top().peer()
    }

    /// Where the driver's reads go: the outer session's ciphertext.
    pub(crate) fn wire_in(&mut self) -> &mut BytesMut {
        &mut self.outer.wire_in
    }

    /// Makes room for the next read in every buffer it passes through,
    /// the socket's last (see [`ReadSizer::reserve`]).
    pub(crate) fn reserve_read(
        &mut self,
        sizer: &mut ReadSizer,
        body: Option<u64>,
        chunk: Option<u64>,
    ) {
        if let Some(inner) = &mut self.inner {
            sizer.reserve(&mut inner.wire_in, body, chunk);
        }
        sizer.reserve(&mut self.outer.wire_in, body, chunk);
    }

    /// Seals the next part of `out` (when the last one went out), through
    /// every session, and each session's own records (handshake, alerts).
    pub(crate) fn prepare_write(&mut self, out: &Outbox) {
        match &mut self.inner {
            Some(inner) => {
                inner.seal(&out.io_slices());
                self.outer.seal(&[inner.wire_out()]);
            }
            None => self.outer.seal(&out.io_slices()),
        }
    }

    /// What [`open`](Self::open) said of the end so far: `Some(true)` once
    /// the innermost peer sent `close_notify`, `Some(false)` once only the
    /// session around it ended, `None` while both go on.
    pub(crate) fn ended(&self) -> Option<bool> {
        match &self.inner {
            Some(inner) if inner.peer_closed() => Some(true),
            Some(_) => self.outer.peer_closed().then_some(false),
            None => self.outer.peer_closed().then_some(true),
        }
    }

    /// Seals `data` (or its first part: at most 64 KiB go at once) when
    /// no ciphertext waits for the socket, through every session; returns
    /// how many bytes of `data` were sealed (none while earlier ciphertext
    /// waits, or during a handshake).
    pub(crate) fn seal_slice(&mut self, data: &[u8]) -> usize {
        if self.has_output() {
            return 0;
        }
        let data = [IoSlice::new(data)];
        match &mut self.inner {
            Some(inner) => {
                inner.seal(&data);
                self.outer.seal(&[inner.wire_out()]);
                inner.sealed()
            }
            None => {
                self.outer.seal(&data);
                self.outer.sealed()
            }
        }
    }

    /// Moves the inner session's records (an alert it queued on failing)
    /// into the outer one, when that one is free to seal them.
    pub(crate) fn pump(&mut self) {
        if let Some(inner) = &self.inner {
            self.outer.seal(&[inner.wire_out()]);
        }
    }

    /// True when ciphertext waits for the socket, or records of the inner
    /// session wait for the outer one.
    pub(crate) fn has_output(&self) -> bool {
        self.outer.has_output() || self.inner.as_ref().is_some_and(Session::has_output)
    }

    /// The ciphertext still to write.
    pub(crate) fn wire_out(&self) -> IoSlice<'_> {
        self.outer.wire_out()
    }

    /// The ciphertext still to write, as bytes.
    pub(crate) fn wire_out_bytes(&self) -> &[u8] {
        self.outer.wire_out_bytes()
    }

    /// The socket took `n` bytes of [`wire_out`](Self::wire_out): how
    /// many bytes of the core's plaintext that completes.
    pub(crate) fn written(&mut self, n: usize) -> usize {
        let sealed = self.outer.written(n);
        match &mut self.inner {
            Some(inner) => inner.written(sealed),
            None => sealed,
        }
    }

    /// Opens the ciphertext read into [`wire_in`](Self::wire_in), through
    /// every session, appending the core's plaintext to `read_buf`.
    /// `Some(true)`: the innermost peer sent `close_notify`; `Some(false)`:
    /// the session around it ended (the proxy's `close_notify`), so
    /// nothing more comes, as at the socket's end; `None`: more may come.
    pub(crate) fn open(&mut self, read_buf: &mut BytesMut) -> Result<Option<bool>, SessionError> {
        let peer = self.outer.peer();
        let Some(inner) = &mut self.inner else {
            let closed = self
                .outer
                .open(read_buf)
                .map_err(|error| SessionError { peer, error })?;
            return Ok(closed.then_some(true));
        };
        let outer_closed = self
            .outer
            .open(&mut inner.wire_in)
            .map_err(|error| SessionError { peer, error })?;
        let peer = inner.peer();
        match inner.open(read_buf) {
            Ok(true) => Ok(Some(true)),
            Ok(false) => Ok(outer_closed.then_some(false)),
            Err(error) => {
                // The inner session's alert rides in the outer one's records.
                self.pump();
                Err(SessionError { peer, error })
            }
        }
    }

    /// The socket reached its end: tells every session, and says whether
    /// the innermost peer closed cleanly (with `close_notify`). Only the
    /// innermost one's counts: its records carry the response.
    pub(crate) fn eof(&mut self, read_buf: &mut BytesMut) -> Result<bool, SessionError> {
        let peer = self.outer.peer();
        let Some(inner) = &mut self.inner else {
            return self
                .outer
                .eof(read_buf)
                .map_err(|error| SessionError { peer, error });
        };
        self.outer
            .eof(&mut inner.wire_in)
            .map_err(|error| SessionError { peer, error })?;
        let peer = inner.peer();
        let ended = inner.open(read_buf).and_then(|closed| {
            if closed {
                Ok(true)
            } else {
                inner.eof(read_buf)
            }
        });
        ended.map_err(|error| SessionError { peer, error })
    }

    /// Before the connection is closed: queues each session's
    /// `close_notify`, the innermost first (sealed into the outer one), and
    /// says whether there are bytes to send. Nothing when a record is
    /// partly written or waits unsent: an alert after a cut record, or
    /// after records the server never gets, would reach it as garbage.
    pub(crate) fn close_notify(&mut self) -> bool {
        if self.has_output() {
            return false;
        }
        if let Some(inner) = &mut self.inner {
            inner.close_notify();
            self.pump();
        }
        self.outer.close_notify();
        self.has_output()
    }

    /// Before the connection goes idle: gives back buffer memory.
    pub(crate) fn shrink_for_idle(&mut self) {
        self.outer.shrink_for_idle();
        if let Some(inner) = &mut self.inner {
            inner.shrink_for_idle();
        }
    }
}
