//! How host names become addresses for the dial: IP literals need no
//! lookup, static overrides answer first (curl's `--resolve
//! host:port:addr`), then the caller's resolver if it plugged one in
//! ([`Resolve`], like reqwest's `dns_resolver`), else the system's.
//!
//! A lookup may block: the blocking backend runs it on a thread of its own
//! that the request waits for until its deadline, the async ones on their
//! runtime's blocking pool, and the mio backend on resolver threads (16 at
//! most; the rest queue), so one slow lookup never stalls the other
//! exchanges of the loop. Lookups count against `connect_timeout`.
//!
//! ```
//! use roundtrip_io::resolve::{Lookup, Resolver};
//! let mut resolver = Resolver::default();
//! resolver.add_override("example.com:443:127.0.0.1").unwrap();
//! match resolver.lookup("example.com", 443) {
//!     Lookup::Ready(addrs) => assert_eq!(addrs, ["127.0.0.1:443".parse().unwrap()]),
//!     Lookup::Blocking => unreachable!(),
//! }
//! assert!(matches!(resolver.lookup("127.0.0.1", 80), Lookup::Ready(_)));
//! assert!(matches!(resolver.lookup("example.org", 80), Lookup::Blocking));
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// A resolver the caller plugs in: host and port to addresses. It may
/// block; it is never called on an event loop's thread.
///
/// ```
/// use std::net::SocketAddr;
/// use roundtrip_io::resolve::Resolve;
/// struct Fixed;
/// impl Resolve for Fixed {
///     fn resolve(&self, _host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
///         Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
///     }
/// }
/// assert_eq!(Fixed.resolve("any", 8080).unwrap()[0].port(), 8080);
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal), with `port`.
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// What [`Resolver::lookup`] could answer without blocking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The addresses: an IP literal, or an override.
    Ready(Vec<SocketAddr>),
    /// A lookup that may block is needed: [`Resolver::resolve_blocking`].
    Blocking,
}

/// One `--resolve` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Override {
    host: String,
    port: u16,
    addrs: Vec<IpAddr>,
}

/// The client's way from names to addresses. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Resolver {
    overrides: Vec<Override>,
    custom: Option<Arc<dyn Resolve>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("overrides", &self.overrides)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl Resolver {
    /// Looks names up with `resolver` instead of the system's.
    pub fn with_resolver(mut self, resolver: impl Resolve) -> Resolver {
        self.custom = Some(Arc::new(resolver));
        self
    }

    /// Answers `host:port` with `addrs`, whatever a lookup would say.
    pub fn add(&mut self, host: &str, port: u16, addrs: Vec<IpAddr>) {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.overrides
            .retain(|o| !(o.host == host && o.port == port));
        self.overrides.push(Override { host, port, addrs });
    }

    /// An entry in curl's `--resolve` form: `host:port:addr[,addr]...`
    /// (IPv6 addresses may be in brackets).
    pub fn add_override(&mut self, entry: &str) -> Result<(), String> {
        let bad = || format!("{entry:?} is not host:port:address[,address...]");
        let (host, rest) = match entry.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once("]:").ok_or_else(bad)?;
                (host, rest)
            }
            None => entry.split_once(':').ok_or_else(bad)?,
        };
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                a.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        if host.is_empty() || addrs.is_empty() {
            return Err(bad());
        }
        self.add(host, port, addrs);
        Ok(())
    }

    /// The addresses if they are known without a lookup that may block.
    pub fn lookup(&self, host: &str, port: u16) -> Lookup {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Lookup::Ready(vec![SocketAddr::new(ip, port)]);
        }
        let found = self
            .overrides
            .iter()
            .find(|o| o.port == port && o.host.eq_ignore_ascii_case(bare));
        match found {
            Some(o) => Lookup::Ready(
                o.addrs
                    .iter()
                    .map(|&ip| SocketAddr::new(ip, port))
                    .collect(),
            ),
            None => Lookup::Blocking,
        }
    }

    /// The addresses of `host:port`, looking them up if need be (this may
    /// block: call it where blocking is allowed).
    pub fn resolve_blocking(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Lookup::Ready(addrs) = self.lookup(host, port) {
            return Ok(addrs);
        }
        let addrs = match &self.custom {
            // A plugged-in resolver that panics fails this lookup alone,
            // the same way on every backend.
            Some(custom) => {
                let resolve = std::panic::AssertUnwindSafe(|| custom.resolve(host, port));
                std::panic::catch_unwind(resolve)
                    .map_err(|_| io::Error::other("the resolver panicked"))??
            }
            None => (host, port).to_socket_addrs()?.collect(),
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no address for {host}"),
            ));
        }
        Ok(addrs)
    }

    /// True when a resolver was plugged in.
    pub fn is_custom(&self) -> bool {
        self.custom.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_in_curl_form() {
        let mut r = Resolver::default();
        r.add_override("[::1]:8443:[::1],127.0.0.1").unwrap();
        r.add_override("Host.Test:80:10.0.0.1").unwrap();
        assert_eq!(
            r.lookup("::1", 8443),
            Lookup::Ready(vec!["[::1]:8443".parse().unwrap()])
        );
        assert_eq!(
            r.lookup("host.test", 80),
            Lookup::Ready(vec!["10.0.0.1:80".parse().unwrap()])
        );
        assert_eq!(r.lookup("host.test", 81), Lookup::Blocking);
        for bad in [
            "nohost",
            "h:port:1.2.3.4",
            "h:80:",
            "h:80:not-an-ip",
            ":80:1.2.3.4",
        ] {
            assert!(r.add_override(bad).is_err(), "{bad}");
        }
        // A later entry for the same host and port replaces the earlier.
        r.add_override("host.test:80:10.0.0.2").unwrap();
        assert_eq!(
            r.resolve_blocking("host.test", 80).unwrap(),
            ["10.0.0.2:80".parse().unwrap()]
        );
    }

    #[test]
    fn a_custom_resolver_answers_names() {
        struct Counting(std::sync::atomic::AtomicUsize);
        impl Resolve for Counting {
            fn resolve(&self, _: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(vec![SocketAddr::from(([127, 0, 0, 2], port))])
            }
        }
        let r = Resolver::default().with_resolver(Counting(Default::default()));
        assert!(r.is_custom());
        assert_eq!(
            r.resolve_blocking("anything.test", 9).unwrap(),
            ["127.0.0.2:9".parse().unwrap()]
        );
        // IP literals never reach it.
        assert_eq!(r.resolve_blocking("127.0.0.1", 9).unwrap()[0].port(), 9);
    }
}
