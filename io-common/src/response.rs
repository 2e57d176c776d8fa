//! From core events to an `http` response head.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Version as HttpVersion};
use roundtrip_proto::{Error as ProtoError, Event, Field, HeadEnd, Version};

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
}

impl ResponseHead {
    /// An `http::Response` carrying `body`.
    pub fn into_response<B>(self, body: B) -> http::Response<B> {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
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
#[derive(Debug, Default)]
pub struct HeadBuilder {
    status: Option<(StatusCode, HttpVersion)>,
    headers: HeaderMap,
    interim: Vec<StatusCode>,
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
                self.headers.clear();
            }
            Event::Field(field) => append(&mut self.headers, &field)?,
            Event::HeadEnd(end) => {
                let Some((status, version)) = self.status.take() else {
                    return Ok(None);
                };
                if end.interim {
                    self.interim.push(status);
                    self.headers.clear();
                    return Ok(None);
                }
                return Ok(Some(ResponseHead {
                    status,
                    version,
                    headers: std::mem::take(&mut self.headers),
                    end,
                    interim: std::mem::take(&mut self.interim),
                }));
            }
            _ => {}
        }
        Ok(None)
    }
}

impl HeadBuilder {
    /// Takes every head event already in `buf` (traced as `config` says);
    /// returns the final head once it is complete. An error is the core's,
    /// in [`Phase::ResponseHead`](crate::Phase); `reached`: any byte of the
    /// request was written.
    pub fn push_buffered(
        &mut self,
        config: &crate::Config,
        proto: &mut roundtrip_proto::conn::Connection,
        buf: &mut bytes::BytesMut,
        reached: bool,
    ) -> Result<Option<ResponseHead>, crate::Error> {
        let refused = |e| crate::Error::from_proto(e, crate::Phase::ResponseHead, reached);
        // Bounded by the bytes buffered: each event consumes some or ends.
        while let Some(event) = config.poll_event(proto, buf).map_err(refused)? {
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
    let name = HeaderName::from_bytes(field.name()).map_err(|_| ProtoError::InvalidFieldName {
        offset: 0,
        byte: field.name()[0],
    })?;
    // A shared head gives the value without a copy; an unshared one is copied.
    let value = match field.value_bytes() {
        Some(shared) => HeaderValue::from_maybe_shared(shared),
        None => HeaderValue::from_bytes(field.value()),
    }
    .map_err(|_| ProtoError::InvalidFieldValue { offset: 0, byte: 0 })?;
    map.append(name, value);
    Ok(())
}
