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
    status: Option<(StatusCode, HttpVersion)>,
    /// The current head's reason phrase, when not its code's usual one.
    reason: Option<ReasonPhrase>,
    /// The current head's fields, from its status line to its end.
    headers: Option<HeaderMap>,
    interim: Vec<StatusCode>,
    interim_heads: Vec<http::Response<()>>,
}

impl HeadBuilder {
    /// Takes one head event; returns the head at the final `HeadEnd`. Other
    /// events are ignored.
    pub fn push(&mut self, event: Event) -> Result<Option<ResponseHead>, ProtoError> {
        match event {
            Event::Status(line) => {
                // The decoder only accepts codes 100..=999, which http accepts too.
                let status = StatusCode::from_u16(line.code)
                    .map_err(|_| ProtoError::InvalidStatus { offset: 9 })?;
                let version = match line.version {
                    Version::Http10 => HttpVersion::HTTP_10,
                    Version::Http11 => HttpVersion::HTTP_11,
                };
                self.status = Some((status, version));
                self.reason = ReasonPhrase::unusual(status, line.reason);
                // Sized once for the fields that follow (no regrowth for
                // the usual 8-15). A count `http` cannot hold is refused
                // at the field that does not fit.
                self.headers = Some(HeaderMap::try_with_capacity(line.fields).unwrap_or_default());
            }
            Event::Field(field) => append(self.headers.get_or_insert_default(), &field)?,
            Event::HeadEnd(end) => {
                let Some((status, version)) = self.status.take() else {
                    return Ok(None);
                };
                let mut extensions = http::Extensions::new();
                if let Some(reason) = self.reason.take() {
                    extensions.insert(reason);
                }
                let headers = self.headers.take().unwrap_or_default();
                if end.interim {
                    // Bounded: the decoder allows `max_interim_responses`.
                    self.interim.push(status);
                    let head = ResponseHead {
                        status,
                        version,
                        headers,
                        end,
                        interim: Vec::new(),
                        extensions,
                    };
                    self.interim_heads.push(head.into_response(()));
                    return Ok(None);
                }
                if !self.interim_heads.is_empty() {
                    extensions.insert(InterimResponses(std::mem::take(&mut self.interim_heads)));
                }
                return Ok(Some(ResponseHead {
                    status,
                    version,
                    headers,
                    end,
                    interim: std::mem::take(&mut self.interim),
                    extensions,
                }));
            }
            _ => {}
        }
        Ok(None)
    }
}

impl HeadBuilder {
    /// Takes every head event already in `buf` (traced with `tracing`);
    /// returns the final head once it is complete. An error is the core's,
    /// in [`Phase::ResponseHead`](crate::Phase); `reached`: the request may
    /// have reached the server.
    pub fn push_buffered(
        &mut self,
        tracing: &crate::trace::Tracing<'_>,
        proto: &mut roundtrip_proto::conn::Connection,
        buf: &mut bytes::BytesMut,
        reached: bool,
    ) -> Result<Option<ResponseHead>, crate::Error> {
        let refused = |e| crate::Error::from_proto(e, crate::Phase::ResponseHead, reached);
        // Bounded by the bytes buffered: each event consumes some or ends.
        while let Some(event) = tracing.poll_event(proto, buf).map_err(refused)? {
            if let Some(head) = self.push(event).map_err(refused)? {
                return Ok(Some(head));
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
/// cost nothing) when spelled in lower or title case: a plain compare,
/// cheaper than `HeaderName::from_bytes`, which copies and lowercases every
/// name before it looks it up. Other spellings go that way.
fn common_name(name: &[u8]) -> Option<HeaderName> {
    use http::header as h;
    type Known = (HeaderName, &'static [u8]);
    static LEN_4: [Known; 3] = [(h::DATE, b"Date"), (h::ETAG, b"ETag"), (h::VARY, b"Vary")];
    static LEN_6: [Known; 1] = [(h::SERVER, b"Server")];
    static LEN_8: [Known; 1] = [(h::LOCATION, b"Location")];
    static LEN_10: [Known; 2] = [
        (h::CONNECTION, b"Connection"),
        (h::SET_COOKIE, b"Set-Cookie"),
    ];
    static LEN_12: [Known; 1] = [(h::CONTENT_TYPE, b"Content-Type")];
    static LEN_13: [Known; 3] = [
        (h::CACHE_CONTROL, b"Cache-Control"),
        (h::LAST_MODIFIED, b"Last-Modified"),
        (h::ACCEPT_RANGES, b"Accept-Ranges"),
    ];
    static LEN_14: [Known; 1] = [(h::CONTENT_LENGTH, b"Content-Length")];
    static LEN_16: [Known; 1] = [(h::CONTENT_ENCODING, b"Content-Encoding")];
    static LEN_17: [Known; 1] = [(h::TRANSFER_ENCODING, b"Transfer-Encoding")];
    let candidates: &[Known] = match name.len() {
        4 => &LEN_4,
        6 => &LEN_6,
        8 => &LEN_8,
        10 => &LEN_10,
        12 => &LEN_12,
        13 => &LEN_13,
        14 => &LEN_14,
        16 => &LEN_16,
        17 => &LEN_17,
        _ => return None,
    };
    candidates
        .iter()
        .find(|(known, title)| name == *title || name == known.as_str().as_bytes())
        .map(|(known, _)| known.clone())
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

    /// Each common name in lower or title case is the one `http` parses;
    /// other names and spellings are left to `http`.
    #[test]
    fn common_names_are_http_names() {
        let names = [
            "Date",
            "ETag",
            "vary",
            "Server",
            "location",
            "Connection",
            "Set-Cookie",
            "Cache-Control",
            "Last-Modified",
            "Accept-Ranges",
            "Content-Type",
            "content-length",
            "Content-Encoding",
            "Transfer-Encoding",
        ];
        for name in names {
            let parsed = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(common_name(name.as_bytes()), Some(parsed), "{name}");
        }
        for other in [
            "X-Date",
            "Dates",
            "Content-Lengtt",
            "",
            "Age",
            "CONTENT-LENGTH",
        ] {
            assert_eq!(common_name(other.as_bytes()), None, "{other}");
        }
    }
}
