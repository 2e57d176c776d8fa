//! The client side of a SOCKS5 handshake (RFC 1928, with the
//! username/password method of RFC 1929), sans-IO: it writes its messages
//! into a buffer the caller sends, and reads the proxy's answers from the
//! bytes the caller received.
//!
//! ```
//! use bytes::BytesMut;
//! use roundtrip_io::socks::{Socks5, Target};
//! let mut out = Vec::new();
//! let mut socks = Socks5::new(Target::Name("example.com".into()), 443, None).unwrap();
//! socks.start(&mut out);
//! assert_eq!(out, [5, 1, 0]); // version 5, one method: no authentication
//! out.clear();
//! let mut answer = BytesMut::from(&[5u8, 0][..]);
//! assert!(!socks.handle_input(&mut answer, &mut out).unwrap());
//! assert_eq!(&out[..5], &[5, 1, 0, 3, 11]); // CONNECT, a name of 11 bytes
//! let mut answer = BytesMut::from(&[5u8, 0, 0, 1, 10, 0, 0, 1, 0, 80][..]);
//! out.clear();
//! assert!(socks.handle_input(&mut answer, &mut out).unwrap()); // tunnel up
//! assert!(answer.is_empty() && out.is_empty());
//! ```

use std::fmt;
use std::net::IpAddr;

use bytes::{Buf, BytesMut};

/// Where the tunnel goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An address the client resolved (`socks5://`), or an IP literal.
    Ip(IpAddr),
    /// A host name the proxy resolves (`socks5h://`).
    Name(String),
}

/// Why a SOCKS5 handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocksError {
    /// The proxy does not speak SOCKS5.
    #[error("the proxy does not speak SOCKS5 (it answered version {0})")]
    NotSocks5(u8),
    /// The proxy accepts none of the authentication methods offered.
    #[error("the proxy accepts no offered authentication method{}", if *.offered_password { "" } else { " (it may need a user name and password)" })]
    NoAcceptableMethod {
        /// A user name and password were offered.
        offered_password: bool,
    },
    /// The proxy refused the user name and password.
    #[error("the proxy refused the user name and password")]
    AuthFailed,
    /// The proxy refused the connection (the RFC 1928 reply code).
    #[error("the proxy could not connect: {}", reply_text(*.0))]
    Refused(u8),
    /// A host name longer than 255 bytes, or credentials longer than 255.
    #[error("{0} is longer than SOCKS5 allows (255 bytes)")]
    TooLong(&'static str),
    /// Credentials with an empty user name: RFC 1929 needs one of 1 to
    /// 255 bytes.
    #[error("SOCKS5 needs a user name with the password (RFC 1929)")]
    NoUserName,
    /// The proxy's answer is malformed.
    #[error("the proxy's answer is malformed: {0}")]
    Malformed(&'static str),
}

fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The greeting is out; the method choice is due.
    Method,
    /// The credentials are out; their verdict is due.
    Auth,
    /// The CONNECT request is out; its reply is due.
    Reply,
    /// The tunnel is up.
    Done,
}

/// One SOCKS5 handshake. See the [module docs](self). Its `Debug` shows
/// whether it has credentials, never them.
#[derive(Clone)]
pub struct Socks5 {
    step: Step,
    target: Target,
    port: u16,
    credentials: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Socks5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5")
            .field("step", &self.step)
            .field("target", &self.target)
            .field("port", &self.port)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Socks5 {
    /// A handshake for a tunnel to `target:port`, with a user name and
    /// password if given.
    pub fn new(
        target: Target,
        port: u16,
        credentials: Option<(&str, &str)>,
    ) -> Result<Socks5, SocksError> {
        if let Target::Name(name) = &target
            && name.len() > 255
        {
            return Err(SocksError::TooLong("the host name"));
        }
        if let Some((user, pass)) = credentials
            && (user.len() > 255 || pass.len() > 255)
        {
            return Err(SocksError::TooLong("the user name or password"));
        }
        if credentials.is_some_and(|(user, _)| user.is_empty()) {
            return Err(SocksError::NoUserName);
        }
        Ok(Socks5 {
            step: Step::Method,
            target,
            port,
            credentials: credentials.map(|(u, p)| (u.as_bytes().to_vec(), p.as_bytes().to_vec())),
        })
    }

    /// The greeting: the methods offered.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        match self.credentials {
            Some(_) => out.extend_from_slice(&[5, 2, 0, 2]),
            None => out.extend_from_slice(&[5, 1, 0]),
        }
        self.step = Step::Method;
    }

    /// True once the tunnel is up.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Reads the proxy's answers in `input` (consuming what it used) and
    /// writes the next message into `out`; `Ok(true)` once the tunnel is
    /// up (bytes after the last answer are the origin's and stay).
    pub fn handle_input(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<bool, SocksError> {
        // Bounded: each round consumes an answer or returns.
        loop {
            match self.step {
                Step::Done => return Ok(true),
                Step::Method => {
                    let Some(&[version, method]) = input.get(..2) else {
                        return Ok(false);
                    };
                    if version != 5 {
                        return Err(SocksError::NotSocks5(version));
                    }
                    input.advance(2);
                    match (method, &self.credentials) {
                        (0, _) => {
                            self.connect(out);
                            return Ok(false);
                        }
                        (2, Some((user, pass))) => {
                            out.extend_from_slice(&[1, user.len() as u8]);
                            out.extend_from_slice(user);
                            out.push(pass.len() as u8);
                            out.extend_from_slice(pass);
                            self.step = Step::Auth;
                            // Sent before its answer is read (see below).
                            return Ok(false);
                        }
                        (0xff, creds) => {
                            return Err(SocksError::NoAcceptableMethod {
                                offered_password: creds.is_some(),
                            });
                        }
                        _ => return Err(SocksError::Malformed("a method that was not offered")),
                    }
                }
                Step::Auth => {
                    let Some(&[version, status]) = input.get(..2) else {
                        return Ok(false);
                    };
                    if version != 1 {
                        // RFC 1929: the sub-negotiation's version is 1.
                        return Err(SocksError::Malformed("an auth reply of another version"));
                    }
                    input.advance(2);
                    if status != 0 {
                        return Err(SocksError::AuthFailed);
                    }
                    self.connect(out);
                    // The request goes out before any answer to it is
                    // read: a proxy that answered ahead would otherwise
                    // make the tunnel look up with the request unsent.
                    return Ok(false);
                }
                Step::Reply => {
                    let Some(&[version, reply, _, atyp]) = input.get(..4) else {
                        return Ok(false);
                    };
                    if version != 5 {
                        return Err(SocksError::NotSocks5(version));
                    }
                    if reply != 0 {
                        return Err(SocksError::Refused(reply));
                    }
                    let addr_len = match atyp {
                        1 => 4,
                        4 => 16,
                        3 => match input.get(4) {
                            Some(&n) => 1 + usize::from(n),
                            None => return Ok(false),
                        },
                        _ => return Err(SocksError::Malformed("an unknown address type")),
                    };
                    let total = 4 + addr_len + 2;
                    if input.len() < total {
                        return Ok(false);
                    }
                    input.advance(total);
                    self.step = Step::Done;
                }
            }
        }
    }

    /// Writes the CONNECT request.
    fn connect(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[5, 1, 0]);
        match &self.target {
            Target::Ip(IpAddr::V4(ip)) => {
                out.push(1);
                out.extend_from_slice(&ip.octets());
            }
            Target::Ip(IpAddr::V6(ip)) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            Target::Name(name) => {
                out.extend_from_slice(&[3, name.len() as u8]);
                out.extend_from_slice(name.as_bytes());
            }
        }
        out.extend_from_slice(&self.port.to_be_bytes());
        self.step = Step::Reply;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(socks: &mut Socks5, answers: &[&[u8]]) -> (Vec<u8>, Result<bool, SocksError>) {
        let mut out = Vec::new();
        socks.start(&mut out);
        let mut result = Ok(false);
        for answer in answers {
            let mut input = BytesMut::from(*answer);
            result = socks.handle_input(&mut input, &mut out);
            if result.is_err() {
                break;
            }
        }
        (out, result)
    }

    #[test]
    fn password_then_ipv6_connect_byte_by_byte() {
        let mut socks =
            Socks5::new(Target::Ip("::1".parse().unwrap()), 8080, Some(("u", "pw"))).unwrap();
        let mut out = Vec::new();
        socks.start(&mut out);
        assert_eq!(out, [5, 2, 0, 2]);
        let replies: Vec<u8> = [
            &[5u8, 2][..],
            &[1, 0],
            &[5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 1],
        ]
        .concat();
        let mut input = BytesMut::new();
        let mut done = false;
        for byte in replies {
            input.extend_from_slice(&[byte]);
            done = socks.handle_input(&mut input, &mut out).unwrap();
        }
        assert!(done && input.is_empty());
        let mut want = vec![5, 2, 0, 2, 1, 1, b'u', 2, b'p', b'w', 5, 1, 0, 4];
        want.extend_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        want.extend_from_slice(&8080u16.to_be_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn an_answer_ahead_of_the_request_waits_until_the_request_is_queued() {
        let mut socks = Socks5::new(Target::Ip([10, 0, 0, 1].into()), 80, None).unwrap();
        let mut out = Vec::new();
        socks.start(&mut out);
        out.clear();
        // The proxy's method choice and its CONNECT answer in one read.
        let mut input = BytesMut::from(&[5u8, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(socks.handle_input(&mut input, &mut out), Ok(false));
        assert_eq!(out, [5, 1, 0, 1, 10, 0, 0, 1, 0, 80], "the request first");
        assert_eq!(input.len(), 10, "the answer is kept for after it");
        assert_eq!(socks.handle_input(&mut input, &mut out), Ok(true));
        assert!(input.is_empty());
    }

    #[test]
    fn an_empty_user_name_is_refused() {
        let name = Target::Name("h".into());
        assert_eq!(
            Socks5::new(name, 1, Some(("", "token"))).unwrap_err(),
            SocksError::NoUserName
        );
    }

    #[test]
    fn debug_hides_the_credentials() {
        let s = Socks5::new(Target::Name("h".into()), 1, Some(("alice", "s3cret"))).unwrap();
        let shown = format!("{s:?}");
        assert!(
            shown.contains("***") && !shown.contains("115, 51"),
            "{shown}"
        );
        assert!(
            !shown.contains("alice") && !shown.contains("97, 108"),
            "{shown}"
        );
    }

    #[test]
    fn refusals_are_typed() {
        let name = || Target::Name("h".into());
        let mut s = Socks5::new(name(), 1, None).unwrap();
        assert_eq!(
            run(&mut s, &[&[5, 0xff]]).1,
            Err(SocksError::NoAcceptableMethod {
                offered_password: false
            })
        );
        let mut s = Socks5::new(name(), 1, Some(("u", "p"))).unwrap();
        assert_eq!(
            run(&mut s, &[&[5, 2], &[1, 1]]).1,
            Err(SocksError::AuthFailed)
        );
        let mut s = Socks5::new(name(), 1, Some(("u", "p"))).unwrap();
        assert_eq!(
            run(&mut s, &[&[5, 2], &[5, 0]]).1,
            Err(SocksError::Malformed("an auth reply of another version"))
        );
        let mut s = Socks5::new(name(), 1, None).unwrap();
        assert_eq!(
            run(&mut s, &[&[5, 0], &[5, 5, 0, 1]]).1,
            Err(SocksError::Refused(5))
        );
        let mut s = Socks5::new(name(), 1, None).unwrap();
        assert_eq!(
            run(&mut s, &[b"HTTP/1.1 400 Bad Request\r\n"]).1,
            Err(SocksError::NotSocks5(b'H'))
        );
        let mut s = Socks5::new(name(), 1, None).unwrap();
        assert_eq!(
            run(&mut s, &[&[5, 2]]).1,
            Err(SocksError::Malformed("a method that was not offered"))
        );
        assert_eq!(
            Socks5::new(Target::Name("x".repeat(256)), 1, None).unwrap_err(),
            SocksError::TooLong("the host name")
        );
        assert!(
            SocksError::Refused(5)
                .to_string()
                .contains("connection refused")
        );
    }
}
