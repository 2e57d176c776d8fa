//! From core events to an `http` response head.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Version as HttpVersion};
use roundtrip_proto::{Error as ProtoError, Event, Field, HeadEnd, Version};

use crate::ext::{InterimResponses, ReasonPhrase};

/// A final response head, in `http` types, with the core's verdicts.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: StatusCode,
    /// HTTP version.
    pub version: HttpVersion,
    /// Header fields.
    pub headers: HeaderMap,
    /// Framing, reuse verdict, keep-alive hint.
    pub end: HeadEnd,
    /// Interim (1xx) responses seen before this one, by status.
    pub interim: Vec<StatusCode>,
    /// What the response's extensions get: the server's [`ReasonPhrase`]
    /// when it is not the status code's usual one, and the
    /// [`InterimResponses`] when any came. Empty (no allocation) otherwise.
    pub extensions: http::Extensions,
}

impl ResponseHead {
    /// A head from an `http` response's parts, with the core's verdicts.
    ///
    /// ```
    /// use roundtrip_io::ResponseHead;
    /// use roundtrip_io::proto::{Framing, HeadEnd, Reuse};
    /// let (parts, ()) = http::Response::builder().status(204).body(()).unwrap().into_parts();
    /// let end = HeadEnd { framing: Framing::NoBody, reuse: Reuse::Yes, interim: false, keep_alive_timeout: None };
    /// let head = ResponseHead::from_parts(parts, end, Vec::new());
    /// assert_eq!((head.status.as_u16(), head.end.framing), (204, Framing::NoBody));
    /// ```
    pub fn from_parts(
        parts: http::response::Parts,
        end: HeadEnd,
        interim: Vec<StatusCode>,
    ) -> ResponseHead {
        ResponseHead {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            end,
            interim,
            extensions: parts.extensions,
        }
    }

    /// An `http::Response` carrying `body`.
    pub fn into_response<B>(self, body: B) -> http::Response<B> {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        *response.extensions_mut() = self.extensions;
        response
    }
}

/// Collects head events into a [`ResponseHead`].
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_io::HeadBuilder;
/// use roundtrip_io::proto::ResponseDecoder;
///
/// let mut dec = ResponseDecoder::default();
/// let mut buf = BytesMut::from(&b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\n"[..]);
/// let mut builder = HeadBuilder::default();
/// let head = loop {
///     let event = dec.poll_event(&mut buf).unwrap().unwrap();
///     if let Some(head) = builder.push(event).unwrap() { break head; }
/// };
/// assert_eq!(head.status, 200);
/// assert_eq!(head.headers["a"], "b");
/// assert_eq!(head.interim, [http::StatusCode::EARLY_HINTS]);
/// ```
///
/// Interim heads are kept whole, and a reason phrase other than the status
/// code's usual one is kept as sent:
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_io::{HeadBuilder, InterimResponses, ReasonPhrase};
/// use roundtrip_io::proto::ResponseDecoder;
///
/// let mut dec = ResponseDecoder::default();
/// let mut buf = BytesMut::from(&b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 Fine\r\n\r\n"[..]);
/// let mut builder = HeadBuilder::default();
/// let head = loop {
///     let event = dec.poll_event(&mut buf).unwrap().unwrap();
///     if let Some(head) = builder.push(event).unwrap() { break head; }
/// };
/// let response = head.into_response(());
/// assert_eq!(response.extensions().get::<ReasonPhrase>().unwrap().as_bytes(), b"Fine");
/// let InterimResponses(interim) = response.extensions().get().unwrap();
/// assert_eq!(interim[0].status(), 103);
/// assert_eq!(interim[0].headers()["link"], "</a.css>");
/// assert!(interim[0].extensions().get::<ReasonPhrase>().is_none(), "the usual phrase");
/// ```
#[derive(Debug, Default)]
pub struct HeadBuilder {
    /// The head being built, from its status line to its end; after the
    /// final one's end, that head until it is taken ([`Self::take_head`]):
    /// built where it stays, so that it is not moved on its way out.
    head: Option<http::Response<()>>,
    /// `head` is the final head, complete.
    done: bool,
    /// A final head ended since the last status line: the interim
    /// statuses kept are that response's, not the next one's.
    ended: bool,
    interim: Vec<StatusCode>,
    interim_heads: Vec<http::Response<()>>,
}

impl HeadBuilder {
    /// Takes one head event; returns the head at the final `HeadEnd`. Other
    /// events are ignored.
    pub fn push(&mut self, event: Event) -> Result<Option<ResponseHead>, ProtoError> {
        let Some(end) = self.push_event(event)? else {
            return Ok(None);
        };
        let interim = self.take_interim();
        let Some((parts, ())) = self.take_head().map(http::Response::into_parts) else {
            return Ok(None);
        };
        Ok(Some(ResponseHead::from_parts(parts, end, interim)))
    }

    /// Takes one head event; at the final `HeadEnd`, returns it and keeps
    /// the head complete (see [`head`](Self::head) and
    /// [`take_head`](Self::take_head)). Other events are ignored.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_io::HeadBuilder;
    /// use roundtrip_io::proto::{Framing, ResponseDecoder};
    ///
    /// let mut dec = ResponseDecoder::default();
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]);
    /// let mut builder = HeadBuilder::default();
    /// let end = loop {
    ///     let event = dec.poll_event(&mut buf).unwrap().unwrap();
    ///     if let Some(end) = builder.push_event(event).unwrap() { break end; }
    /// };
    /// assert_eq!(end.framing, Framing::Length(2));
    /// assert_eq!(builder.head().unwrap().headers()["content-length"], "2");
    /// let head = builder.take_head().unwrap();
    /// assert_eq!(head.status(), 200);
    /// assert!(builder.take_head().is_none());
    /// ```
    pub fn push_event(&mut self, event: Event) -> Result<Option<HeadEnd>, ProtoError> {
        match event {
            Event::Status(line) => {
                // The decoder only accepts codes 100..=999, which http accepts too.
                let status = StatusCode::from_u16(line.code)
                    .map_err(|_| ProtoError::InvalidStatus { offset: 9 })?;
                let version = match line.version {
                    Version::Http10 => HttpVersion::HTTP_10,
                    Version::Http11 => HttpVersion::HTTP_11,
                };
                let mut head = http::Response::new(());
                *head.status_mut() = status;
                *head.version_mut() = version;
                // Sized once for the fields that follow (no regrowth for
                // the usual 8-15). A count `http` cannot hold is refused
                // at the field that does not fit.
                *head.headers_mut() = HeaderMap::try_with_capacity(line.fields).unwrap_or_default();
                if let Some(reason) = ReasonPhrase::unusual(status, line.reason) {
                    head.extensions_mut().insert(reason);
                }
                self.head = Some(head);
                self.done = false;
                if std::mem::take(&mut self.ended) {
                    self.interim.clear();
                }
            }
            Event::Field(field) => {
                if let Some(head) = self.building() {
                    append(head.headers_mut(), &field)?;
                }
            }
            Event::HeadEnd(end) => {
                if self.done {
                    return Ok(None);
                }
                let Some(head) = &mut self.head else {
                    return Ok(None);
                };
                if end.interim {
                    // Bounded: the decoder allows `max_interim_responses`.
                    self.interim.push(head.status());
                    self.interim_heads.extend(self.head.take());
                    return Ok(None);
                }
                if !self.interim_heads.is_empty() {
                    let interim = InterimResponses(std::mem::take(&mut self.interim_heads));
                    head.extensions_mut().insert(interim);
                }
                self.done = true;
                self.ended = true;
                return Ok(Some(end));
            }
            _ => {}
        }
        Ok(None)
    }

    /// The head whose fields are coming in: none before a status line or
    /// after the end (a field there is not from the decoder: ignored).
    fn building(&mut self) -> Option<&mut http::Response<()>> {
        self.head.as_mut().filter(|_| !self.done)
    }

    /// The final head, complete, until it is taken.
    pub fn head(&self) -> Option<&http::Response<()>> {
        self.head.as_ref().filter(|_| self.done)
    }

    /// The final head, complete, until it is taken.
    pub fn head_mut(&mut self) -> Option<&mut http::Response<()>> {
        self.head.as_mut().filter(|_| self.done)
    }

    /// Takes the final head, once it is complete.
    pub fn take_head(&mut self) -> Option<http::Response<()>> {
        if !self.done {
            return None;
        }
        self.done = false;
        self.head.take()
    }

    /// Takes the statuses of the interim (1xx) heads before the final one.
    pub fn take_interim(&mut self) -> Vec<StatusCode> {
        std::mem::take(&mut self.interim)
    }

    /// Takes every head event already in `buf` (traced with `tracing`), as
    /// [`push_event`](Self::push_event) does; returns the final head's end
    /// once it is complete, the head kept. An error is the core's, in
    /// [`Phase::ResponseHead`](crate::Phase); `reached`: the request may
    /// have reached the server.
    pub fn push_buffered(
        &mut self,
        tracing: &crate::trace::Tracing<'_>,
        proto: &mut roundtrip_proto::conn::Connection,
        buf: &mut bytes::BytesMut,
        reached: bool,
    ) -> Result<Option<HeadEnd>, crate::Error> {
        let refused = |e| crate::Error::from_proto(e, crate::Phase::ResponseHead, reached);
        // Bounded by the bytes buffered: each event consumes some or ends.
        while let Some(event) = tracing.poll_event(proto, buf).map_err(refused)? {
            let status = matches!(event, Event::Status(_));
            if let Some(end) = self.push_event(event).map_err(refused)? {
                return Ok(Some(end));
            }
            if status {
                // The head is whole: its fields straight into the map, not
                // an event each.
                let fields = proto.take_fields(buf);
                if let Some(head) = self.building() {
                    for field in fields {
                        append(head.headers_mut(), &field).map_err(refused)?;
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Appends a trailer (or header) field to `map`.
pub fn trailer_into(map: &mut HeaderMap, field: &Field) -> Result<(), ProtoError> {
    append(map, field)
}

fn append(map: &mut HeaderMap, field: &Field) -> Result<(), ProtoError> {
    // The decoder validated both: names are tokens, values field-content,
    // which is what `http` accepts. Map a refusal anyway rather than panic.
    let name = match common_name(field.name()) {
        Some(name) => name,
        None => HeaderName::from_bytes(field.name()).map_err(|_| ProtoError::InvalidFieldName {
            offset: 0,
            byte: field.name()[0],
        })?,
    };
    // A shared head gives the value without a copy; an unshared one is copied.
    let value = match field.value_bytes() {
        // SAFETY: not a memory-safety matter: `http` requires the bytes it
        // accepts (no control byte but HTAB, no DEL), and the decoder let
        // through only field-value bytes (HTAB, SP, VCHAR, obs-text: RFC
        // 9110 section 5.5), all of which it accepts
        // (`decoded_values_are_http_values` tries every byte; `http`
        // checks again in debug builds). Not checking twice saves about a
        // tenth of a small response's decode.
        #[allow(unsafe_code)]
        Some(shared) => Ok(unsafe { HeaderValue::from_maybe_shared_unchecked(shared) }),
        None => HeaderValue::from_bytes(field.value()),
    }
    .map_err(|_| ProtoError::InvalidFieldValue { offset: 0, byte: 0 })?;
    // `http` holds at most 24,576 fields; `Limits::max_fields` may allow
    // more.
    map.try_append(name, value)
        .map_err(|_| ProtoError::TooManyFields { limit: map.len() })?;
    Ok(())
}

/// The names most responses carry, as `http`'s constants (whose clones
/// cost nothing), in any case: a few word compares, cheaper than
/// `HeaderName::from_bytes`, which copies and lowercases every name before
/// it looks it up. Other names go that way.
///
/// A name is a token (the decoder let no other through). OR-ing 0x20 into
/// each byte of a token lowers its ASCII letters and keeps `-` and the
/// digits, and no other token byte becomes a letter, a digit or `-`: so a
/// folded name equals a lower-case name made of those exactly when the two
/// are equal ignoring ASCII case.
fn common_name(name: &[u8]) -> Option<HeaderName> {
    use http::header as h;
    static LEN_3: [Known; 2] = [Known::new(h::AGE, b"age"), Known::new(h::VIA, b"via")];
    static LEN_4: [Known; 4] = [
        Known::new(h::DATE, b"date"),
        Known::new(h::ETAG, b"etag"),
        Known::new(h::VARY, b"vary"),
        Known::new(h::LINK, b"link"),
    ];
    static LEN_6: [Known; 2] = [
        Known::new(h::SERVER, b"server"),
        Known::new(h::PRAGMA, b"pragma"),
    ];
    static LEN_7: [Known; 3] = [
        Known::new(h::EXPIRES, b"expires"),
        Known::new(h::ALT_SVC, b"alt-svc"),
        Known::new(h::UPGRADE, b"upgrade"),
    ];
    static LEN_8: [Known; 1] = [Known::new(h::LOCATION, b"location")];
    static LEN_10: [Known; 2] = [
        Known::new(h::CONNECTION, b"connection"),
        Known::new(h::SET_COOKIE, b"set-cookie"),
    ];
    static LEN_11: [Known; 1] = [Known::new(h::RETRY_AFTER, b"retry-after")];
    static LEN_12: [Known; 1] = [Known::new(h::CONTENT_TYPE, b"content-type")];
    static LEN_13: [Known; 4] = [
        Known::new(h::CACHE_CONTROL, b"cache-control"),
        Known::new(h::LAST_MODIFIED, b"last-modified"),
        Known::new(h::ACCEPT_RANGES, b"accept-ranges"),
        Known::new(h::CONTENT_RANGE, b"content-range"),
    ];
    static LEN_14: [Known; 1] = [Known::new(h::CONTENT_LENGTH, b"content-length")];
    static LEN_15: [Known; 2] = [
        Known::new(h::REFERRER_POLICY, b"referrer-policy"),
        Known::new(h::X_FRAME_OPTIONS, b"x-frame-options"),
    ];
    static LEN_16: [Known; 2] = [
        Known::new(h::CONTENT_ENCODING, b"content-encoding"),
        Known::new(h::WWW_AUTHENTICATE, b"www-authenticate"),
    ];
    static LEN_17: [Known; 1] = [Known::new(h::TRANSFER_ENCODING, b"transfer-encoding")];
    static LEN_22: [Known; 1] = [Known::new(
        h::X_CONTENT_TYPE_OPTIONS,
        b"x-content-type-options",
    )];
    static LEN_25: [Known; 1] = [Known::new(
        h::STRICT_TRANSPORT_SECURITY,
        b"strict-transport-security",
    )];
    static LEN_27: [Known; 1] = [Known::new(
        h::ACCESS_CONTROL_ALLOW_ORIGIN,
        b"access-control-allow-origin",
    )];
    let candidates: &[Known] = match name.len() {
        3 => &LEN_3,
        4 => &LEN_4,
        6 => &LEN_6,
        7 => &LEN_7,
        8 => &LEN_8,
        10 => &LEN_10,
        11 => &LEN_11,
        12 => &LEN_12,
        13 => &LEN_13,
        14 => &LEN_14,
        15 => &LEN_15,
        16 => &LEN_16,
        17 => &LEN_17,
        22 => &LEN_22,
        25 => &LEN_25,
        27 => &LEN_27,
        _ => return None,
    };
    let ends = folded_ends(name);
    candidates
        .iter()
        .find(|known| known.ends == ends && known.middle_matches(name))
        .map(|known| known.name.clone())
}

/// A known name, spelled in lower case (as `http` holds it: a test checks),
/// with the folded words [`folded_ends`] gives for it.
struct Known {
    name: HeaderName,
    lower: &'static [u8],
    ends: (u64, u64),
}

impl Known {
    const fn new(name: HeaderName, lower: &'static [u8]) -> Known {
        let ends = folded_ends(lower);
        Known { name, lower, ends }
    }

    /// The bytes [`folded_ends`] leaves out (the ninth to the ninth from
    /// last of a name over 16 bytes) match too, ignoring ASCII case.
    #[inline(always)]
    fn middle_matches(&self, name: &[u8]) -> bool {
        let n = name.len();
        n <= 16 || name[8..n - 8].eq_ignore_ascii_case(&self.lower[8..n - 8])
    }
}

/// The first and the last eight bytes of `name` (overlapping for names
/// under 16 bytes) as little-endian words, each byte OR 0x20; for names of
/// 4 to 7 bytes, their first and last four in one word, twice; for shorter
/// ones, all of it in one word, twice.
#[inline(always)]
const fn folded_ends(name: &[u8]) -> (u64, u64) {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let n = name.len();
    if let (Some(first), Some(last)) = (name.first_chunk::<8>(), name.last_chunk::<8>()) {
        return (
            u64::from_le_bytes(*first) | FOLD,
            u64::from_le_bytes(*last) | FOLD,
        );
    }
    if let (Some(first), Some(last)) = (name.first_chunk::<4>(), name.last_chunk::<4>()) {
        let word = u32::from_le_bytes(*first) as u64 | (u32::from_le_bytes(*last) as u64) << 32;
        return (word | FOLD, word | FOLD);
    }
    let (mut word, mut i) = (0u64, 0);
    while i < n {
        word |= ((name[i] | 0x20) as u64) << (8 * i);
        i += 1;
    }
    (word, word)
}
#[cfg(test)]
mod tests {
    use super::common_name;
    use http::header::{HeaderName, HeaderValue};

    /// A head with more fields than `http::HeaderMap` holds (24,576, three
    /// quarters of its 32,768 slots), let through by a raised `max_fields`,
    /// is refused with the core's error, not a panic.
    #[test]
    fn more_fields_than_a_header_map_holds_is_an_error() {
        use super::HeadBuilder;
        use bytes::BytesMut;
        use roundtrip_proto::{Error, Limits, ResponseDecoder};
        let n = 33_000;
        let limits = Limits::default().max_fields(n + 1).max_head_bytes(64 * n);
        let mut dec = ResponseDecoder::new(limits);
        dec.share_heads(true);
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        (0..n).for_each(|i| head.extend_from_slice(format!("x-{i}: v\r\n").as_bytes()));
        head.extend_from_slice(b"content-length: 0\r\n\r\n");
        let mut buf = BytesMut::from(&head[..]);
        let mut builder = HeadBuilder::default();
        // Bounded: each event consumes a field, or the head ends.
        let err = loop {
            match dec.poll_event(&mut buf) {
                Ok(Some(event)) => match builder.push(event) {
                    Ok(Some(_)) => panic!("a head of {n} fields was built"),
                    Ok(None) => {}
                    Err(e) => break e,
                },
                other => panic!("the decoder stopped first: {other:?}"),
            }
        };
        assert!(
            matches!(err, Error::TooManyFields { limit: 24_576 }),
            "{err:?}"
        );
    }

    /// Every value the decoder accepts, in a head and in a trailer, short
    /// and long (the decoder scans long values sixteen bytes at a time), is
    /// one `http` accepts: what `append` relies on to skip `http`'s check.
    #[test]
    fn decoded_values_are_http_values() {
        use bytes::BytesMut;
        use roundtrip_proto::{Event, ResponseDecoder};
        let mut accepted = 0;
        for b in 0..=255u8 {
            for pad in [0, 1, 20] {
                let value = [&vec![b'a'; pad][..], &[b], &vec![b'z'; pad][..]].concat();
                let head = [
                    &b"HTTP/1.1 200 OK\r\nX: "[..],
                    &value,
                    b"\r\nTransfer-Encoding: chunked\r\n\r\n",
                ]
                .concat();
                let trailer = [&b"0\r\nT: "[..], &value, b"\r\n\r\n"].concat();
                let mut buf = BytesMut::from(&[head, trailer].concat()[..]);
                let mut dec = ResponseDecoder::default();
                // Bounded: each event consumes bytes, or the input ends.
                for _ in 0..16 {
                    match dec.poll_event(&mut buf) {
                        Ok(Some(Event::Field(f) | Event::Trailer(f))) => {
                            assert!(HeaderValue::from_bytes(f.value()).is_ok(), "{b:#x} {pad}");
                            accepted += 1;
                        }
                        Ok(Some(Event::End)) | Ok(None) | Err(_) => break,
                        Ok(Some(_)) => {}
                    }
                }
            }
        }
        // HTAB, SP, VCHAR and obs-text, in both places, three lengths each;
        // plus the `Transfer-Encoding` field of each accepted head.
        assert!(accepted >= (1 + 1 + 94 + 128) * 3 * 2, "{accepted}");
    }

    /// Each common name in any case is the one `http` parses; a name one
    /// token byte away from one is `http`'s to parse (`None`), as are
    /// other names.
    #[test]
    fn common_names_are_http_names() {
        let names = [
            "Age",
            "Via",
            "Date",
            "ETag",
            "Vary",
            "Link",
            "Server",
            "Pragma",
            "Expires",
            "Alt-Svc",
            "Upgrade",
            "Location",
            "Connection",
            "Set-Cookie",
            "Retry-After",
            "Content-Type",
            "Cache-Control",
            "Last-Modified",
            "Accept-Ranges",
            "Content-Range",
            "Content-Length",
            "Referrer-Policy",
            "X-Frame-Options",
            "Content-Encoding",
            "WWW-Authenticate",
            "Transfer-Encoding",
            "X-Content-Type-Options",
            "Strict-Transport-Security",
            "Access-Control-Allow-Origin",
        ];
        let tchars =
            b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut near_misses = 0;
        for name in names {
            let parsed = HeaderName::from_bytes(name.as_bytes()).unwrap();
            let alternating: String = name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            for spelling in [
                name.to_string(),
                name.to_ascii_lowercase(),
                name.to_ascii_uppercase(),
                alternating,
            ] {
                assert_eq!(
                    common_name(spelling.as_bytes()),
                    Some(parsed.clone()),
                    "{spelling}"
                );
            }
            // Every one-byte change to another token byte.
            for at in 0..name.len() {
                for &b in tchars {
                    let mut other = name.as_bytes().to_vec();
                    if other[at].eq_ignore_ascii_case(&b) {
                        continue;
                    }
                    other[at] = b;
                    assert_eq!(common_name(&other), None, "{}", other.escape_ascii());
                    near_misses += 1;
                }
            }
        }
        assert!(near_misses > 20_000, "{near_misses}");
        for other in [
            "X-Date",
            "Dates",
            "ContentLength",
            "",
            "Ag",
            "Date1",
            "Strict-Transport-Security-",
        ] {
            assert_eq!(common_name(other.as_bytes()), None, "{other}");
        }
    }

    /// Events out of the decoder's order make no head up, and the interim
    /// statuses of one response are not the next one's.
    #[test]
    fn a_head_builder_keeps_to_its_heads() {
        use super::{Event, HeadBuilder, HeadEnd, InterimResponses, StatusCode};
        use bytes::BytesMut;
        use roundtrip_proto::ResponseDecoder;
        let mut builder = HeadBuilder::default();
        let end = HeadEnd {
            framing: roundtrip_proto::Framing::NoBody,
            reuse: roundtrip_proto::Reuse::Yes,
            interim: false,
            keep_alive_timeout: None,
        };
        // An end with no status line before it: nothing.
        assert_eq!(builder.push_event(Event::HeadEnd(end)).unwrap(), None);
        assert!(builder.head().is_none() && builder.take_head().is_none());

        let mut dec = ResponseDecoder::default();
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\nA: b\r\n\r\n"[..],
        );
        let mut heads = Vec::new();
        while let Some(event) = dec.poll_event(&mut buf).unwrap() {
            if builder.push_event(event).unwrap().is_some() {
                heads.push(builder.take_head().unwrap());
                assert!(builder.take_head().is_none(), "taken once");
            }
        }
        // The interim statuses were never taken: those left are the last
        // response's (none), not the first one's.
        assert!(builder.take_interim().is_empty());
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[1].headers()["a"], "b");
        let InterimResponses(interim) = heads[0].extensions().get().unwrap();
        assert_eq!(interim[0].status(), StatusCode::EARLY_HINTS);
        assert!(heads[1].extensions().get::<InterimResponses>().is_none());
    }
}
