//! Around the reads of a response: what a backend tells the core after each
//! read ([`Filled::report`]), dropping what a drained body left in the buffer
//! ([`drain_buffered`]), and collecting a body in memory ([`Collected`]).

use std::io;
use std::time::Instant as StdInstant;

use bytes::{Bytes, BytesMut};
use roundtrip_proto::conn::Connection;

use crate::{Clock, Error, Phase, TimeoutKind};

/// Not part of the public API; used by the blocking and mio backends.
///
/// Reads the next piece of a request body from the caller's `reader` into
/// `buf`. A reader that breaks `Read`'s contract fails the request with an
/// error instead of a panic or a bad body: one that says it read more than
/// `buf` holds, or that keeps answering `Interrupted` (retried a bounded
/// number of times, where a signal interrupts a read a few times at most).
///
/// ```
/// use roundtrip_io::read_body_piece;
/// let mut reader: &[u8] = b"hello";
/// let mut buf = [0; 4];
/// assert_eq!(read_body_piece(&mut reader, &mut buf).unwrap(), 4);
/// assert_eq!(&buf, b"hell");
/// ```
pub fn read_body_piece(reader: &mut (impl io::Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    const INTERRUPTS: usize = 1000;
    for _ in 0..INTERRUPTS {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(n) if n > buf.len() => {
                let why = format!(
                    "the body's reader said it read {n} bytes into {}",
                    buf.len()
                );
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            other => return other,
        }
    }
    let why = format!("the body's reader was interrupted {INTERRUPTS} times in a row");
    Err(io::Error::new(io::ErrorKind::Interrupted, why))
}

/// Not part of the public API; used by the backends.
///
/// How a read attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// Bytes were appended to the read buffer.
    Bytes,
    /// The server closed its side.
    Eof,
    /// The wait ended at the deadline without bytes.
    TimedOut,
}

impl Filled {
    /// Tells the core how a read for the response ended: the server's end
    /// of stream, or a wait that ended at a deadline (the core's timers
    /// fire). A wait that passed one of the caller's own deadlines, the
    /// read-idle one or the request's `total`, is an [`Error::Timeout`] of
    /// that kind in `phase`; a failed read is the error [`Error::from_io`]
    /// makes of it. `reached`: the request may have reached the server.
    pub fn report(
        filled: io::Result<Filled>,
        proto: &mut Connection,
        clock: &Clock,
        [read_idle, total]: [Option<StdInstant>; 2],
        phase: Phase,
        reached: bool,
    ) -> Result<(), Error> {
        match filled {
            Ok(Filled::Bytes) => Ok(()),
            Ok(Filled::Eof) => {
                proto.handle_eof();
                Ok(())
            }
            Ok(Filled::TimedOut) => {
                proto.handle_timeout(clock.now());
                let now = StdInstant::now();
                if [read_idle, total].iter().flatten().any(|&at| now >= at) {
                    let kind = TimeoutKind::ReadIdle;
                    return Err(Error::timed_out(kind, total, phase, reached));
                }
                Ok(())
            }
            Err(e) => Err(Error::from_io(e, phase, reached)),
        }
    }
}

/// Not part of the public API; used by the backends.
///
/// The deadlines of one wait for response bytes: the caller's own
/// ([`Config::read_timeout`](crate::Config) from now, and the request's
/// deadline), which [`Filled::report`] turns into a timeout of theirs, and
/// the end of the wait: the earliest of those and the core's next timer.
///
/// ```
/// use roundtrip_io::{Clock, Config, ReadWait};
/// use roundtrip_io::proto::conn::{ConnConfig, Connection};
/// let proto = Connection::new(ConnConfig::default());
/// let wait = ReadWait::new(&Config::default(), &proto, &Clock::new(), None);
/// assert_eq!(wait.until, wait.ours[0]); // the read timeout alone
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReadWait {
    /// The read-idle deadline and the request's deadline.
    pub ours: [Option<StdInstant>; 2],
    /// When the wait ends at the latest.
    pub until: Option<StdInstant>,
}

impl ReadWait {
    /// The deadlines of a wait that starts now.
    pub fn new(
        config: &crate::Config,
        proto: &Connection,
        clock: &Clock,
        deadline: Option<StdInstant>,
    ) -> ReadWait {
        // A timeout too long for `std` to add is none.
        let read_idle = config
            .read_timeout
            .and_then(|t| StdInstant::now().checked_add(t));
        let core = proto.poll_timeout().map(|at| clock.to_std(at));
        ReadWait {
            ours: [read_idle, deadline],
            until: crate::earliest([read_idle, deadline, core]),
        }
    }
}

/// Not part of the public API; used by the backends.
///
/// Decodes and drops the events of an abandoned body that `buf` already
/// holds. True while the core still drains it (more bytes are wanted);
/// false once the exchange completed or failed.
pub fn drain_buffered(proto: &mut Connection, buf: &mut BytesMut) -> bool {
    // Bounded by the bytes buffered: each event consumes some.
    loop {
        match proto.poll_event(buf) {
            Ok(Some(_)) => {}
            Ok(None) => return proto.is_draining(),
            Err(_) => return false,
        }
    }
}

/// A body collected in memory: a body that came in one piece is kept
/// without a copy.
///
/// ```
/// use bytes::Bytes;
/// use roundtrip_io::Collected;
/// let mut body = Collected::default();
/// body.push(Bytes::from_static(b"hello, "));
/// body.push(Bytes::from_static(b"world"));
/// assert_eq!(body.len(), 12);
/// assert!(body.push_within(Bytes::from_static(b"!"), 12).is_err());
/// assert_eq!(body.freeze(), "hello, world");
/// ```
#[derive(Debug, Default)]
pub enum Collected {
    /// Nothing yet.
    #[default]
    Empty,
    /// One piece.
    One(Bytes),
    /// Pieces copied together.
    Many(BytesMut),
}

impl Collected {
    /// Bytes collected.
    pub fn len(&self) -> usize {
        match self {
            Collected::Empty => 0,
            Collected::One(b) => b.len(),
            Collected::Many(b) => b.len(),
        }
    }

    /// True before any byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `data` unless the body would pass `limit` bytes, which is
    /// [`Error::BodyTooLarge`].
    pub fn push_within(&mut self, data: Bytes, limit: u64) -> Result<(), Error> {
        if (self.len() + data.len()) as u64 > limit {
            return Err(Error::BodyTooLarge { limit });
        }
        self.push(data);
        Ok(())
    }

    /// Appends `data`.
    pub fn push(&mut self, data: Bytes) {
        *self = match std::mem::take(self) {
            Collected::Empty => Collected::One(data),
            Collected::One(first) => {
                // Exactly the two: a body in two pieces (the common case: a
                // second read for the rest of the last segment) holds no
                // spare; later pieces grow it as a `Vec` grows.
                let mut all = BytesMut::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                Collected::Many(all)
            }
            Collected::Many(mut all) => {
                all.extend_from_slice(&data);
                Collected::Many(all)
            }
        }
    }

    /// The whole body.
    pub fn freeze(self) -> Bytes {
        match self {
            Collected::Empty => Bytes::new(),
            Collected::One(b) => b,
            Collected::Many(b) => b.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Collected;
    use bytes::Bytes;

    /// Pieces are kept in order, whatever their number; a body of two
    /// pieces is held in a buffer of exactly their size.
    #[test]
    fn collected_pieces_join_in_order() {
        for pieces in [1, 2, 3, 10] {
            let mut body = Collected::default();
            let mut want = Vec::new();
            for i in 0..pieces {
                let piece = vec![i as u8; 1000 + i];
                want.extend_from_slice(&piece);
                body.push(Bytes::from(piece));
                if let (2, Collected::Many(all)) = (i + 1, &body) {
                    assert_eq!(all.capacity(), 1000 + 1001);
                }
            }
            assert_eq!(body.len(), want.len());
            assert_eq!(body.freeze(), want);
        }
    }
}
