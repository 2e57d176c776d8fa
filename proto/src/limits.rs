//! Decoder limits and their defaults.

/// Bounds on everything the response decoder buffers or counts, and its one
/// leniency switch.
///
/// Every limit is checked as bytes arrive, so a hostile server cannot make the
/// decoder buffer more than the limit plus one read. Defaults:
///
/// | limit | default | what it bounds |
/// |---|---|---|
/// | `max_head_bytes` | 65,536 | status line plus header block, CRLFs included |
/// | `max_fields` | 128 | header fields in one head |
/// | `max_chunk_ext_bytes` | 4,096 | chunk extensions of one chunk-size line |
/// | `max_trailer_bytes` | 16,384 | the trailer section of a chunked body |
/// | `max_interim_responses` | 32 | 1xx responses before the final one |
///
/// | switch | default | what it allows |
/// |---|---|---|
/// | `allow_bare_lf` | `false` | a single LF as a line end (RFC 9112 section 2.2) |
///
/// ```
/// use roundtrip_proto::Limits;
///
/// let limits = Limits::default().max_head_bytes(8 * 1024).max_fields(32);
/// assert_eq!(limits.max_head_bytes, 8 * 1024);
/// assert_eq!(limits.max_trailer_bytes, 16 * 1024);
/// assert!(!limits.allow_bare_lf);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest head accepted: status line plus header block, CRLFs included.
    pub max_head_bytes: usize,
    /// Most header fields accepted in one head (and in one trailer section).
    pub max_fields: usize,
    /// Longest run of chunk extensions accepted on one chunk-size line.
    pub max_chunk_ext_bytes: usize,
    /// Longest trailer section accepted, CRLFs included.
    pub max_trailer_bytes: usize,
    /// Most interim (1xx) responses accepted before the final response.
    pub max_interim_responses: usize,
    /// Accept a single LF as a line end, ignoring a CR before it (RFC 9112
    /// section 2.2: a recipient MAY): in the status line, header and trailer
    /// field lines, the blank line ending a head or trailer section,
    /// chunk-size lines and after chunk data. Off by default, and then a
    /// bare LF is [`Error::BareLineFeed`](crate::Error::BareLineFeed). A
    /// bare CR (not followed by LF) is an error either way.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::{Event, Limits, ResponseDecoder};
    ///
    /// let mut dec = ResponseDecoder::new(Limits::default().allow_bare_lf(true));
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"[..]);
    /// let mut body = Vec::new();
    /// while let Some(event) = dec.poll_event(&mut buf).unwrap() {
    ///     if let Event::Data(data) = event {
    ///         body.extend_from_slice(&data);
    ///     }
    /// }
    /// assert_eq!(body, b"hi");
    /// ```
    pub allow_bare_lf: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_fields: 128,
            max_chunk_ext_bytes: 4 * 1024,
            max_trailer_bytes: 16 * 1024,
            max_interim_responses: 32,
            allow_bare_lf: false,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_head_bytes`].
    pub fn max_head_bytes(mut self, n: usize) -> Self {
        self.max_head_bytes = n;
        self
    }
    /// Sets [`Limits::max_fields`].
    pub fn max_fields(mut self, n: usize) -> Self {
        self.max_fields = n;
        self
    }
    /// Sets [`Limits::max_chunk_ext_bytes`].
    pub fn max_chunk_ext_bytes(mut self, n: usize) -> Self {
        self.max_chunk_ext_bytes = n;
        self
    }
    /// Sets [`Limits::max_trailer_bytes`].
    pub fn max_trailer_bytes(mut self, n: usize) -> Self {
        self.max_trailer_bytes = n;
        self
    }
    /// Sets [`Limits::max_interim_responses`].
    pub fn max_interim_responses(mut self, n: usize) -> Self {
        self.max_interim_responses = n;
        self
    }
    /// Sets [`Limits::allow_bare_lf`].
    pub fn allow_bare_lf(mut self, allow: bool) -> Self {
        self.allow_bare_lf = allow;
        self
    }
}
