//! `roundtrip get`: fetch URLs and write their bodies, like `curl`.
//!
//! Every URL is fetched in order through **one** client of the chosen
//! backend, so the second request to a host reuses the first one's
//! connection (`-v` shows it). Bodies stream to stdout, or to the `-o` file,
//! piece by piece as they arrive: the blocking and tokio backends read
//! [`ResponseBody::chunk`](roundtrip::blocking::ResponseBody::chunk) in a
//! loop; the mio backend hands each piece to a
//! [`Receive::Stream`](roundtrip::mio::Receive) callback on its event loop.
//! Nothing collects a whole body.
//!
//! Redirects are followed by the backend as `roundtrip_io::Redirects`
//! decides, up to `--max-redirects` (default 10). With `--max-redirects 0`
//! the 3xx itself is the answer and its body is written (exit 0, unlike Go,
//! whose `CheckRedirect` returns an error); one redirect more than the limit
//! is an error. Non-2xx statuses are answers, not errors (curl without `-f`).
//!
//! `-v` writes, on stderr: the request head exactly as the backend encodes
//! it (`> ` lines, made by the same `prepare` + `encode_head` calls), printed
//! each time a connection is obtained for it; each trace event with its time
//! since the URL's request started (`* +0.120ms ...`, from `Config::trace`);
//! each redirect as it is followed; the response head (`< ` lines, field
//! names as the `http` crate keeps them, lowercase, and the reason phrase
//! as the server sent it), after the heads of any interim (1xx) responses
//! before it (a `103 Early Hints` with its `Link` fields); the trailer
//! fields of a chunked body after it; and at the end the pool's counts of
//! connections dialed and reused. A gzip body the client asked for (the
//! `gzip` default of `Config`) is written decoded; its head then lacks the
//! `Content-Encoding` and `Content-Length` fields the client removed, and
//! the `done` line says `(gzip decoded)`.
//!
//! Exit codes: 0 when every URL was fetched; curl's code for the failure
//! when a request failed (`curl_code`: 6 a name that did not resolve, 7 no
//! connection, 28 a timeout, 47 too many redirects, ...; 1 where curl has
//! none); 2 for a usage error (bad URL, `-H`, `-X`, `--timeout`) or a local
//! I/O error (the output cannot be written); 22 for `-f` and a status of
//! 400 or more; 23 when a binary body (a NUL byte in its first piece,
//! curl's test) would have gone to a terminal. The first failure ends the run with one line on stderr:
//! `roundtrip: <error>` (none with `-s`, unless `-S`). A closed stdout
//! (`| head`) ends it silently with 0.
//!
//! Heads written by `-i`, `-D` and `-v` carry the reason phrase as the
//! server sent it (`ResponseExt::reason_phrase`: the response keeps a
//! `ReasonPhrase` when it is not the code's usual one), and the field names
//! as the `http` crate keeps them (lowercase). `-v` shows the 1xx heads
//! whole (`ResponseExt::interim`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::warn;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use roundtrip::http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT,
};
use roundtrip::http::request::Parts;
use roundtrip::http::{self, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use roundtrip::proto::encode::encode_head;
use roundtrip::proto::pool::PoolStats;
use roundtrip::proto::trace::TraceEvent;
use roundtrip::{Config, Error};
use roundtrip_io::{
    BodyLen, Decompressed, InterimResponses, ReasonPhrase, RedirectAction, RedirectAttempt,
    RedirectChain, RedirectPolicy, Redirects, Replay, Tracer, Verdict, prepare,
};

/// Which backend sends the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// `roundtrip::blocking`: `std::net` sockets on this thread.
    Blocking,
    /// `roundtrip::mio`: the event-loop driver, bodies streamed to a callback.
    Mio,
    /// `roundtrip::tokio`: a current-thread tokio runtime.
    Tokio,
    /// `roundtrip::smol`: the exchange machine's smol driver, in `smol::block_on`.
    Smol,
}

/// Arguments of `roundtrip get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URLs to fetch, in order, through one client (`http://` or
    /// `https://`; without a scheme, `http://`, as curl).
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Show the request and response heads, the trace of each request with
    /// timings, and redirects, on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Write the bodies to FILE (all of them, in order) instead of stdout.
    /// FILE is opened before any request, but emptied only when the first
    /// response arrives: a run that gets none leaves it as it was.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write each body to a file in the current directory named as the
    /// last segment of its URL's path (`https://h/a/f.tar.gz` to
    /// `f.tar.gz`; the URL asked for, not a redirect's), as curl's `-O`
    /// for every URL. A URL whose path ends in `/` is a usage error.
    #[arg(short = 'O', long = "remote-name", conflicts_with = "output")]
    remote_name: bool,
    /// The request method [default: GET, or POST with -d].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// Send DATA as the request body (no Content-Type is added). `@FILE`
    /// reads it from FILE, `@-` from stdin, with every CR and LF removed, as
    /// curl does. Repeated, the pieces are joined with `&`.
    #[arg(short, long, value_name = "DATA", conflicts_with = "data_binary")]
    data: Vec<String>,
    /// Like -d, but `@FILE` and `@-` are sent byte for byte, newlines kept.
    #[arg(long, value_name = "DATA")]
    data_binary: Vec<String>,
    /// Add a request header; repeat for more. `NAME:` with no value
    /// removes a header the client would send (`User-Agent`,
    /// `Accept-Encoding`, one of -u or -A); `NAME;` sends it empty, as
    /// curl does.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Send `User-Agent: NAME` (a -H User-Agent wins over it); `-A ""`
    /// sends none.
    #[arg(short = 'A', long = "user-agent", value_name = "NAME")]
    user_agent: Option<String>,
    /// Accepted for curl's -L: roundtrip follows redirects by default, up
    /// to --max-redirects.
    #[arg(short = 'L', long = "location")]
    location: bool,
    /// Accepted for curl's --compressed: roundtrip asks for gzip and
    /// decodes it by default.
    #[arg(long)]
    compressed: bool,
    /// Send `Authorization: Basic` with USER:PASSWORD (RFC 7617); without a
    /// colon the password is empty.
    #[arg(short, long, value_name = "USER:PASSWORD")]
    user: Option<String>,
    /// The backend that sends the requests.
    #[arg(long, value_enum, default_value_t = Backend::Blocking)]
    backend: Backend,
    /// Most redirects followed per URL; 0 returns a redirect as it is
    /// [default: 10].
    #[arg(long, value_name = "N")]
    max_redirects: Option<usize>,
    /// Deadline per URL in seconds, from the wait for a connection to the
    /// last body byte, redirects included. The read and write timeouts are
    /// raised to it when shorter, so only this deadline cuts a slow answer
    /// (the TLS handshake's too, unless --connect-timeout is given); 0: none.
    #[arg(short = 'm', long, alias = "max-time", value_name = "S", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// Longest wait in seconds for each step of establishing a
    /// connection: each TCP connect attempt, and each TLS handshake
    /// [default: 30 to connect, 10 for a handshake; 0: the default].
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    connect_timeout: Option<Duration>,
    /// Milliseconds before the next address of a host is tried beside the
    /// one being connected (Happy Eyeballs, RFC 8305) [default: 250].
    #[arg(long, value_name = "MS")]
    happy_eyeballs_timeout_ms: Option<u64>,
    /// Longest wait in seconds for the next bytes of a response
    /// [default: 30; never shorter than --timeout; 0: the default].
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    read_timeout: Option<Duration>,
    /// Exit 22, without writing the body, when a status is 400 or more.
    #[arg(short, long)]
    fail: bool,
    /// Write the response head before the body.
    #[arg(short, long)]
    include: bool,
    /// Send HEAD and write the response head.
    #[arg(short = 'I', long = "head")]
    head: bool,
    /// Write the response heads to FILE (`-`: stdout).
    #[arg(short = 'D', long, value_name = "FILE")]
    dump_header: Option<PathBuf>,
    /// Write FORMAT to stdout after each body: `%{http_code}`,
    /// `%{url_effective}`, `%{time_total}`, `%{num_connects}`,
    /// `%{size_download}`, `%{num_redirects}`; `\n`, `\t`, `\r`, `\\`, `%%`.
    #[arg(short, long, value_name = "FORMAT")]
    write_out: Option<String>,
    /// No progress bar, no warnings and no error line.
    #[arg(short, long)]
    silent: bool,
    /// With -s, still write the error line.
    #[arg(short = 'S', long)]
    show_error: bool,
    /// Trust the certificates in FILE (PEM) too, beside the built-in roots.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Accept any server certificate (expired, self-signed, another
    /// name's): anyone on the path can then read and change the traffic.
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Send the client certificate in FILE (PEM; with its key unless
    /// --key names another file) to servers that ask for one.
    #[arg(short = 'E', long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Send the requests through this proxy (`http://`, `https://`,
    /// `socks5://`, `socks5h://`; `user:password@` for credentials)
    /// instead of those of the environment (`http_proxy`, `https_proxy`,
    /// `all_proxy`, `no_proxy`, honoured otherwise, as curl does).
    #[arg(short = 'x', long, value_name = "URL")]
    proxy: Option<String>,
    /// Hosts that bypass the proxy: a comma list of names (with their
    /// subdomains), IP addresses, CIDR ranges, or `*` (overrides `no_proxy`).
    #[arg(long, value_name = "LIST")]
    noproxy: Option<String>,
    /// Answer HOST:PORT with ADDRESS (a comma list) instead of looking it
    /// up, as curl; repeat for more.
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    resolve: Vec<String>,
}

/// Why a run stopped early.
enum Failure {
    /// The command line asks for something impossible, or the output file
    /// cannot be created (exit 2).
    Usage(String),
    /// A request failed (curl's exit code for the failure: [`curl_code`]).
    Request(Error),
    /// Writing the output failed (exit 2; silent 0 for a closed pipe).
    Output(io::Error),
    /// The backend could not start or run (exit 2).
    Local(String),
    /// `-f` and a status of 400 or more (exit 22, as curl).
    Status(StatusCode),
    /// A binary body would have gone to a terminal (exit 23, as curl).
    Binary,
}

/// One request to send, checked before anything is sent.
#[derive(Clone)]
struct Planned {
    parts: Parts,
    body: Option<Bytes>,
}

impl Planned {
    fn body_len(&self) -> BodyLen {
        match &self.body {
            Some(body) => BodyLen::Known(body.len() as u64),
            None => BodyLen::Empty,
        }
    }

    fn replay(&self) -> Replay {
        match self.body {
            Some(_) => Replay::Replayable,
            None => Replay::Empty,
        }
    }

    /// The request for a backend whose body type is `B`.
    fn request<B: Default + From<Bytes>>(&self) -> http::Request<B> {
        let body = self.body.clone().map_or_else(B::default, B::from);
        http::Request::from_parts(self.parts.clone(), body)
    }

    /// The head the backend writes for this request, exactly.
    fn encoded_head(&self, config: &Config) -> Result<Vec<u8>, Error> {
        let prepared = prepare(&self.parts, self.body_len(), config)?;
        let mut out = Vec::new();
        encode_head(
            &prepared.head(&self.parts),
            prepared.fields(&self.parts, config),
            &mut out,
        )
        .map_err(|e| Error::from_proto(e, roundtrip::Phase::Write, false))?;
        Ok(out)
    }
}

/// Runs `roundtrip get`.
pub fn run(args: &Args) -> ExitCode {
    let failure = match fetch_all(args) {
        Ok(()) => return ExitCode::SUCCESS,
        Err(failure) => failure,
    };
    let (code, line) = match failure {
        Failure::Usage(line) | Failure::Local(line) => (2, line),
        Failure::Request(Error::TooManyRedirects { max, chain }) => {
            let last = chain
                .last()
                .map_or(String::new(), |u| shown(&u.to_string()));
            (
                47,
                format!("stopped after {} (last {last})", plural(max, "redirect")),
            )
        }
        // The command line was checked before any request: a request the
        // backend refuses now came from a redirect, so it is the server's.
        Failure::Request(e) => (curl_code(&e), e.to_string()),
        Failure::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
        Failure::Output(e) => (2, format!("cannot write the output: {e}")),
        Failure::Status(status) => (
            22,
            format!(
                "the requested URL returned error: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_owned(),
        ),
        // The warning was the message.
        Failure::Binary => return ExitCode::from(23),
    };
    if !args.silent || args.show_error {
        warn(&format!("roundtrip: {line}"));
    }
    ExitCode::from(code)
}

/// The exit code curl gives for the same failure, so that scripts written
/// for curl read ours (`man curl`, EXIT CODES); 1 where curl has none.
fn curl_code(e: &Error) -> u8 {
    use roundtrip::proxy::ProxyError;
    use roundtrip::tls::TlsError;
    use roundtrip::{InvalidRequest, Phase};
    match e {
        Error::InvalidRequest(InvalidRequest::UnsupportedScheme(_)) => 1,
        Error::InvalidRequest(_) | Error::InvalidLocation { .. } => 3,
        // Ours, or the system's connect timer (no --connect-timeout).
        e if e.is_timeout() => 28,
        // No address was tried: the name did not resolve (the proxy's: 5).
        Error::Connect {
            tried, proxy: true, ..
        } if tried.is_empty() => 5,
        Error::Connect { tried, .. } if tried.is_empty() => 6,
        Error::Connect { .. } => 7,
        Error::Protocol { .. } | Error::LimitExceeded { .. } => 8,
        Error::RequestBody(_) => 26,
        Error::Tls { source, .. }
        | Error::Proxy {
            source: ProxyError::Tls(source),
            ..
        } => {
            let in_handshake = match e {
                Error::Tls { phase, .. } => *phase == Phase::Handshake,
                _ => true, // the proxy's session fails before the tunnel
            };
            match source {
                TlsError::NotTrusted { .. }
                | TlsError::Expired { .. }
                | TlsError::WrongName { .. }
                | TlsError::BadCertificate { .. } => 60,
                TlsError::Config { .. } => 58,
                TlsError::Disabled => 1,
                // A session that breaks after its handshake: a receive error.
                TlsError::Truncated | TlsError::Protocol { .. } if !in_handshake => 56,
                _ => 35,
            }
        }
        Error::ClosedEarly {
            phase: Phase::ResponseHead,
            ..
        } => 52,
        Error::ClosedEarly {
            phase: Phase::Body, ..
        } => 18,
        Error::ClosedEarly {
            phase: Phase::Write,
            ..
        }
        | Error::Io {
            phase: Phase::Write,
            ..
        } => 55,
        Error::ClosedEarly { .. } | Error::Io { .. } | Error::ProxyStatus { .. } => 56,
        Error::Decode { .. } => 61,
        Error::BodyTooLarge { .. } => 63,
        Error::Proxy { .. } => 97,
        _ => 1,
    }
}

/// `1 redirect`, `2 redirects`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `--cacert`, `-k`, `--cert` and `--key`, read and checked before any
/// request.
fn tls_settings(args: &Args, config: &mut Config) -> Result<(), Failure> {
    use roundtrip::tls::{Certificate, Identity};
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
    };
    let bad = |path: &PathBuf, e: roundtrip::tls::TlsError| {
        Failure::Usage(format!("{}: {e}", path.display()))
    };
    if let Some(path) = &args.cacert {
        let certs = Certificate::from_pem_bundle(&read(path)?).map_err(|e| bad(path, e))?;
        if certs.is_empty() {
            return Err(Failure::Usage(format!(
                "{}: no certificate in the file",
                path.display()
            )));
        }
        config.tls.extra_roots.extend(certs);
    }
    if let Some(path) = &args.cert {
        let chain = read(path)?;
        let key = match &args.key {
            Some(key) => read(key)?,
            None => chain.clone(),
        };
        // The chain's faults name its file; what is left, the key's.
        if Certificate::from_pem_bundle(&chain)
            .map_err(|e| bad(path, e))?
            .is_empty()
        {
            return Err(Failure::Usage(format!(
                "{}: no certificate in the file",
                path.display()
            )));
        }
        let key_path = args.key.as_ref().unwrap_or(path);
        let identity = Identity::from_pem(&chain, &key).map_err(|e| bad(key_path, e))?;
        config.tls.identity = Some(identity);
    }
    config.tls.danger_accept_invalid_certs = args.insecure;
    // What the client would build at its first https request, checked
    // before any request (a --cert that does not match its --key).
    if args.cacert.is_some() || args.cert.is_some() {
        config
            .tls
            .check()
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    Ok(())
}

/// `-x` and `--noproxy`, else the environment's proxies (as curl).
fn proxy_settings(args: &Args, config: &mut Config) -> Result<(), Failure> {
    use roundtrip::proxy::{NoProxy, Proxies, Proxy};
    let mut proxies = match &args.proxy {
        // curl: an empty proxy turns off every proxy, the environment's too.
        Some(url) if url.trim().is_empty() => Proxies::none(),
        Some(url) => {
            // An empty value is unset: the other spelling is read then.
            let set = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let list = set("no_proxy")
                .or_else(|| set("NO_PROXY"))
                .unwrap_or_default();
            Proxies::all(Proxy::parse(url).map_err(|e| Failure::Usage(e.to_string()))?)
                .no_proxy(NoProxy::parse(&list))
        }
        None => Proxies::from_env(),
    };
    if let Some(list) = &args.noproxy {
        proxies = proxies.no_proxy(NoProxy::parse(list));
    }
    config.proxies = proxies;
    for entry in &args.resolve {
        config
            .resolver
            .add_override(entry)
            .map_err(|e| Failure::Usage(format!("--resolve: {e}")))?;
    }
    Ok(())
}

fn fetch_all(args: &Args) -> Result<(), Failure> {
    let mut config = Config::default();
    // 0 means unset: no deadline, or the default timeout.
    let set = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    let (timeout, connect_timeout) = (set(args.timeout), set(args.connect_timeout));
    config.timeout = timeout;
    if let Some(n) = args.max_redirects {
        config.max_redirects = n;
    }
    if let Some(d) = connect_timeout {
        // curl's connect timeout covers the TLS handshake too.
        config.connect_timeout = Some(d);
        config.tls.handshake_timeout = Some(d);
    }
    if let Some(ms) = args.happy_eyeballs_timeout_ms {
        config.happy_eyeballs_delay = Duration::from_millis(ms);
    }
    if let Some(d) = set(args.read_timeout) {
        config.read_timeout = Some(d);
    }
    // The whole-request deadline is the bound asked for: a shorter fixed
    // read or write timeout must not end the request before it.
    if let Some(deadline) = timeout {
        config.read_timeout = config.read_timeout.map(|d| d.max(deadline));
        config.write_timeout = config.write_timeout.map(|d| d.max(deadline));
        if connect_timeout.is_none() {
            let handshake = &mut config.tls.handshake_timeout;
            *handshake = handshake.map(|d| d.max(deadline));
        }
    }
    tls_settings(args, &mut config)?;
    proxy_settings(args, &mut config)?;
    let planned = plan(args, &mut config)?;
    let mut sink = Sink::open(args, &planned)?;
    let log = args.verbose.then(|| Arc::new(Log::new(config.clone())));
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connects);
    let tracer = log.clone();
    config.trace = Some(Tracer::new(move |event| {
        if let TraceEvent::ConnectDone { result: Ok(()), .. } = event {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(log) = &tracer {
            log.trace(event);
        }
    }));
    if let Some(log) = &log {
        let redirects = Arc::clone(log);
        config.redirect_policy = Some(RedirectPolicy::new(move |attempt| {
            redirects.redirect(attempt);
            RedirectAction::Follow
        }));
    }
    let report = Report {
        log: log.as_deref(),
        connects: &connects,
        write_out: args.write_out.as_deref(),
    };
    let stats = match args.backend {
        Backend::Blocking => blocking(&planned, config, &mut sink, &report),
        Backend::Tokio => tokio(&planned, config, &mut sink, &report),
        Backend::Smol => smol(&planned, config, &mut sink, &report),
        Backend::Mio => mio(&planned, config, sink, &report),
    }?;
    if let Some(log) = &log {
        log.pool(&stats);
    }
    Ok(())
}

/// Checks the command line and builds every request before sending any;
/// a `-H NAME:` that removes one of the client's own fields changes
/// `config`.
fn plan(args: &Args, config: &mut Config) -> Result<Vec<Planned>, Failure> {
    let (pieces, strip) = match args.data.is_empty() {
        false => (&args.data, true),
        true => (&args.data_binary, false),
    };
    let body = match pieces.is_empty() {
        true => None,
        false => {
            let mut joined = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    joined.push(b'&');
                }
                joined.extend_from_slice(&read_data(piece, strip)?);
            }
            Some(Bytes::from(joined))
        }
    };
    if args.head && body.is_some() {
        return Err(Failure::Usage(
            "-I sends HEAD, which has no body: leave out -d / --data-binary".into(),
        ));
    }
    let method = match (&args.method, &body) {
        (Some(m), _) => Method::from_bytes(m.as_bytes())
            .map_err(|_| Failure::Usage(format!("invalid method {m:?}")))?,
        (None, _) if args.head => Method::HEAD,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut headers = HeaderMap::new();
    if let Some(user) = &args.user {
        // RFC 7617: base64 of `user-id ":" password`.
        let pair = if user.contains(':') {
            user.clone()
        } else {
            format!("{user}:")
        };
        let value = format!("Basic {}", BASE64.encode(pair));
        let value = HeaderValue::from_str(&value)
            .map_err(|_| Failure::Usage("invalid -u credentials".into()))?;
        headers.insert(AUTHORIZATION, value);
    }
    if args.user_agent.as_deref() == Some("") {
        // `-A ""` sends none (curl); `-A " "` a blank one.
        config.default_headers.remove(USER_AGENT);
    } else if let Some(agent) = &args.user_agent {
        let value = HeaderValue::from_bytes(agent.as_bytes())
            .map_err(|_| Failure::Usage(format!("invalid -A {agent:?}")))?;
        headers.insert(USER_AGENT, value);
    }
    // The names set from -u and -A: an explicit -H wins over them.
    let mut replaced: Vec<HeaderName> = Vec::new();
    for line in &args.headers {
        match parse_header(line).map_err(Failure::Usage)? {
            HeaderArg::Set(name, value) => {
                if (name == AUTHORIZATION || name == USER_AGENT) && !replaced.contains(&name) {
                    headers.remove(&name);
                    replaced.push(name.clone());
                }
                headers.append(name, value);
            }
            HeaderArg::Remove(name) => {
                if name == HOST {
                    return Err(Failure::Usage(format!(
                        "invalid header {line:?}: HTTP/1.1 requires a Host field"
                    )));
                }
                if name == ACCEPT_ENCODING {
                    // The client's own `Accept-Encoding` (and its decoding).
                    config.gzip = false;
                }
                headers.remove(&name);
                config.default_headers.remove(&name);
            }
        }
    }
    args.urls
        .iter()
        .map(|url| {
            // No scheme: `http://`, as curl.
            let with_scheme;
            let url = match has_scheme(url) {
                true => url.as_str(),
                false => {
                    with_scheme = format!("http://{url}");
                    &with_scheme
                }
            };
            let uri = Uri::try_from(url)
                .map_err(|e| Failure::Usage(format!("invalid url {:?}: {e}", shown(url))))?;
            let mut request = http::Request::new(());
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri;
            *request.headers_mut() = headers.clone();
            let (parts, ()) = request.into_parts();
            let planned = Planned {
                parts,
                body: body.clone(),
            };
            // The backend would refuse the same way, after earlier URLs ran.
            planned
                .encoded_head(config)
                .map_err(|e| Failure::Usage(format!("{}: {e}", shown(url))))?;
            Ok(planned)
        })
        .collect()
}

/// `url` for a message, its password (user info after a `:`) as `***`
/// (Go's `stripPassword`): `-v` shows the `Authorization` it sends, but
/// an error line or a log of redirects should not carry a secret.
fn shown(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_string();
    };
    format!("{}***{}", &url[..start + colon + 1], &url[start + at..])
}

/// `-O`'s file name for `uri`: the last segment of its path, as written
/// (curl does not decode it either); none for a path ending in `/`, nor
/// `.` or `..`, which name no file of their own.
fn remote_name(uri: &Uri) -> Result<PathBuf, Failure> {
    let name = uri.path().rsplit('/').next().unwrap_or("");
    match name {
        "" | "." | ".." => Err(Failure::Usage(format!(
            "-O: the URL {} names no file (the last segment of its path is empty, . or ..)",
            shown(&uri.to_string())
        ))),
        // A file named `-`, not stdout.
        "-" => Ok(PathBuf::from("./-")),
        name => Ok(PathBuf::from(name)),
    }
}

/// True when `url` starts with a scheme and `://` (`host:8080/?to=http://x`
/// has none).
fn has_scheme(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// The body of `-d DATA` or `--data-binary DATA`: DATA itself, or the bytes
/// of the file after `@` (`@-`: stdin). `strip` removes CR and LF from a
/// file's bytes, as curl's `-d @file` does.
fn read_data(data: &str, strip: bool) -> Result<Bytes, Failure> {
    let Some(path) = data.strip_prefix('@') else {
        return Ok(Bytes::from(data.to_owned()));
    };
    let mut bytes = Vec::new();
    let read = if path == "-" {
        io::stdin().lock().read_to_end(&mut bytes).map(drop)
    } else {
        File::open(path).and_then(|mut f| f.read_to_end(&mut bytes).map(drop))
    };
    read.map_err(|e| Failure::Usage(format!("cannot read the data from {path}: {e}")))?;
    if strip {
        bytes.retain(|&b| b != b'\r' && b != b'\n');
    }
    Ok(Bytes::from(bytes))
}

/// What one `-H` asks for.
#[derive(Debug, PartialEq)]
enum HeaderArg {
    /// `Name: value`, or `Name;` (an empty value).
    Set(HeaderName, HeaderValue),
    /// `Name:` with nothing after it: not sent, not even the client's own.
    Remove(HeaderName),
}

/// `Name: value` (spaces around the value are dropped), `Name:` (remove)
/// and `Name;` (empty), as curl reads them.
fn parse_header(line: &str) -> Result<HeaderArg, String> {
    let bad = |why: &str| format!("invalid header {line:?}: {why}");
    let token = |name: &str| {
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("the name is not a token"))
    };
    let Some((name, value)) = line.split_once(':') else {
        return match line.trim_end().strip_suffix(';') {
            Some(name) => Ok(HeaderArg::Set(token(name)?, HeaderValue::from_static(""))),
            None => Err(bad("expected `Name: value`")),
        };
    };
    let name = token(name)?;
    let value = value.trim();
    if value.is_empty() {
        return Ok(HeaderArg::Remove(name));
    }
    let value = HeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| bad("the value holds a control character (CR, LF, NUL...)"))?;
    Ok(HeaderArg::Set(name, value))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    // 0 is curl's "no limit" (`-m`) or "the default" (`--connect-timeout`):
    // `Duration::ZERO`, which `fetch_all` reads so.
    if secs < 0.0 {
        return Err("the timeout must be 0 or more seconds".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// What the request's answer looks like before its body.
struct Head<'a> {
    status: StatusCode,
    version: http::Version,
    headers: &'a HeaderMap,
    /// The reason phrase as the server sent it.
    reason: &'a [u8],
    /// The interim (1xx) responses before it, whole.
    interim: &'a [http::Response<()>],
}

impl<'a> Head<'a> {
    fn new(
        status: StatusCode,
        version: http::Version,
        headers: &'a HeaderMap,
        extensions: &'a http::Extensions,
    ) -> Head<'a> {
        let reason = match extensions.get::<ReasonPhrase>() {
            Some(sent) => sent.as_bytes(),
            None => status.canonical_reason().unwrap_or("").as_bytes(),
        };
        let interim = extensions
            .get::<InterimResponses>()
            .map_or(&[][..], |InterimResponses(heads)| heads);
        Head {
            status,
            version,
            headers,
            reason,
            interim,
        }
    }
}

impl<'a, B> From<&'a http::Response<B>> for Head<'a> {
    fn from(r: &'a http::Response<B>) -> Self {
        Head::new(r.status(), r.version(), r.headers(), r.extensions())
    }
}

/// What a finished response carries beside its body.
struct Done {
    bytes: u64,
    chain: Option<RedirectChain>,
    decoded: bool,
}

impl Done {
    fn new(bytes: u64, extensions: &http::Extensions) -> Done {
        Done {
            bytes,
            chain: extensions.get::<RedirectChain>().cloned(),
            decoded: extensions.get::<Decompressed>().is_some(),
        }
    }
}

/// Per-request bookkeeping shared by the backends: the `-v` log, the count
/// of connections dialed, and the `-w` line.
struct Report<'a> {
    log: Option<&'a Log>,
    connects: &'a AtomicUsize,
    write_out: Option<&'a str>,
}

impl Report<'_> {
    /// A URL's request starts; returns when.
    fn begin(&self, request: &Planned, sink: &mut Sink) -> Result<Instant, Failure> {
        sink.reset()?;
        self.connects.store(0, Ordering::SeqCst);
        if let Some(log) = self.log {
            log.begin(request);
        }
        Ok(Instant::now())
    }

    /// A URL's answer arrived: its head to the log, then to the sink;
    /// false when its body is not wanted (`-f`).
    fn response(&self, sink: &mut Sink, head: &Head<'_>) -> Result<bool, Failure> {
        if let Some(log) = self.log {
            log.head(head);
        }
        sink.begin(head).map_err(Failure::Output)
    }

    /// The body ended: trailers and totals to the log, the `-w` line to
    /// stdout, and the verdict of `-f` and of the binary guard.
    fn end(
        &self,
        sink: &mut Sink,
        request: &Planned,
        start: Instant,
        status: StatusCode,
        done: &Done,
        trailers: Option<&HeaderMap>,
    ) -> Result<(), Failure> {
        let elapsed = start.elapsed();
        sink.end();
        if let Some(log) = self.log {
            if let Some(trailers) = trailers {
                log.trailers(trailers);
            }
            log.done(done);
        }
        if sink.binary {
            return Err(Failure::Binary);
        }
        let url = done
            .chain
            .as_ref()
            .and_then(|chain| chain.0.last())
            .unwrap_or(&request.parts.uri);
        self.write_out(&Vars {
            code: status.as_u16(),
            url,
            time: elapsed,
            connects: self.connects.load(Ordering::SeqCst),
            size: done.bytes,
            redirects: done.chain.as_ref().map_or(0, RedirectChain::redirects),
        })?;
        if sink.failed {
            return Err(Failure::Status(status));
        }
        Ok(())
    }

    /// After a URL's request: when it failed (connection, timeout, a body
    /// cut short), the `-w` line is still written, as curl does: the
    /// status if a head arrived, else `000`, and the bytes received.
    fn failed(
        &self,
        fetched: Result<(), Failure>,
        sink: &Sink,
        request: &Planned,
        start: Instant,
    ) -> Result<(), Failure> {
        if let Err(Failure::Request(_)) = &fetched {
            // The request's failure is the run's: a closed stdout must not
            // turn it into a silent 0.
            let _ = self.write_out(&Vars {
                code: sink.status.map_or(0, |s| s.as_u16()),
                url: &request.parts.uri,
                time: start.elapsed(),
                connects: self.connects.load(Ordering::SeqCst),
                size: sink.bytes,
                redirects: 0,
            });
        }
        fetched
    }

    /// The `-w` line, if asked for, to stdout.
    fn write_out(&self, vars: &Vars<'_>) -> Result<(), Failure> {
        let Some(format) = self.write_out else {
            return Ok(());
        };
        let text = write_out(format, vars);
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(Failure::Output)
    }
}

/// The values `-w` can write.
struct Vars<'a> {
    code: u16,
    url: &'a Uri,
    time: Duration,
    connects: usize,
    size: u64,
    redirects: usize,
}

/// Expands `-w FORMAT`: `%{name}` variables, `%%`, and the backslash escapes
/// `\n`, `\r`, `\t`, `\\`. An unknown variable is written as it is.
fn write_out(format: &str, vars: &Vars<'_>) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        match c {
            '%' if rest.starts_with("%%") => {
                out.push('%');
                rest = &rest[2..];
            }
            '%' if rest.starts_with("%{") && rest.contains('}') => {
                let end = rest.find('}').unwrap_or(rest.len());
                let name = &rest[2..end];
                match name {
                    "http_code" | "response_code" => out.push_str(&format!("{:03}", vars.code)),
                    "url_effective" => out.push_str(&vars.url.to_string()),
                    "time_total" => out.push_str(&format!("{:.6}", vars.time.as_secs_f64())),
                    "num_connects" => out.push_str(&vars.connects.to_string()),
                    "size_download" => out.push_str(&vars.size.to_string()),
                    "num_redirects" => out.push_str(&vars.redirects.to_string()),
                    _ => out.push_str(&rest[..=end]),
                }
                rest = &rest[end + 1..];
            }
            '\\' if rest.len() > 1 => {
                let escaped = match rest.as_bytes()[1] {
                    b'n' => Some('\n'),
                    b'r' => Some('\r'),
                    b't' => Some('\t'),
                    b'\\' => Some('\\'),
                    _ => None,
                };
                match escaped {
                    Some(e) => {
                        out.push(e);
                        rest = &rest[2..];
                    }
                    None => {
                        out.push('\\');
                        rest = &rest[1..];
                    }
                }
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

fn blocking(
    planned: &[Planned],
    config: Config,
    sink: &mut Sink,
    report: &Report<'_>,
) -> Result<PoolStats, Failure> {
    let client = roundtrip::blocking::Client::builder()
        .config(config)
        .build();
    for request in planned {
        let start = report.begin(request, sink)?;
        let fetched = (|| {
            let response = client
                .execute(request.request())
                .map_err(Failure::Request)?;
            let wanted = report.response(sink, &Head::from(&response))?;
            let status = response.status();
            let (head, mut body) = response.into_parts();
            // Bounded by the backend's deadlines; a body not wanted (`-f`,
            // binary for a terminal) is not read on: dropped, it is drained
            // briefly or its connection closed.
            while wanted && let Some(data) = body.chunk().map_err(Failure::Request)? {
                if !sink.write(&data).map_err(Failure::Output)? {
                    break;
                }
            }
            let done = Done::new(sink.bytes, &head.extensions);
            report.end(sink, request, start, status, &done, body.trailers())
        })();
        report.failed(fetched, sink, request, start)?;
    }
    Ok(client.stats())
}

fn tokio(
    planned: &[Planned],
    config: Config,
    sink: &mut Sink,
    report: &Report<'_>,
) -> Result<PoolStats, Failure> {
    // One request at a time: a current-thread runtime is all it takes, and
    // the trace is then written from this thread.
    let runtime = tokio_rt::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(format!("cannot start a tokio runtime: {e}")))?;
    let client = roundtrip::tokio::Client::builder().config(config).build();
    runtime.block_on(fetch_async(planned, sink, report, |r| client.execute(r)))?;
    Ok(client.stats())
}

fn smol(
    planned: &[Planned],
    config: Config,
    sink: &mut Sink,
    report: &Report<'_>,
) -> Result<PoolStats, Failure> {
    // One request at a time, on this thread: the trace is written from it.
    let client = roundtrip::smol::Client::builder().config(config).build();
    smol_rt::block_on(fetch_async(planned, sink, report, |r| client.execute(r)))?;
    Ok(client.stats())
}

/// The requests in turn on an async backend (tokio and smol share one
/// driver, so one body type, generic over the runtime), each body written
/// to the sink as it arrives.
async fn fetch_async<R, B, Fut>(
    planned: &[Planned],
    sink: &mut Sink,
    report: &Report<'_>,
    send: impl Fn(http::Request<B>) -> Fut,
) -> Result<(), Failure>
where
    R: roundtrip_io::drive::Runtime,
    B: Default + From<Bytes>,
    Fut: std::future::Future<
            Output = Result<http::Response<roundtrip_io::drive::ResponseBody<R>>, Error>,
        >,
{
    for request in planned {
        let start = report.begin(request, sink)?;
        let fetched = async {
            let response = send(request.request()).await.map_err(Failure::Request)?;
            let wanted = report.response(sink, &Head::from(&response))?;
            let status = response.status();
            let (head, mut body) = response.into_parts();
            // As the blocking loop: a body not wanted is not read on.
            while wanted && let Some(data) = body.chunk().await.map_err(Failure::Request)? {
                if !sink.write(&data).map_err(Failure::Output)? {
                    break;
                }
            }
            let done = Done::new(sink.bytes, &head.extensions);
            report.end(sink, request, start, status, &done, body.trailers())
        }
        .await;
        report.failed(fetched, sink, request, start)?;
    }
    Ok(())
}

/// The mio backend streams each body to a callback on its event loop; the
/// callback writes to the shared sink and remembers a write error (the
/// driver then stops the body: drained or closed, as the core decides).
#[derive(Default)]
struct Streamed {
    head_seen: bool,
    error: Option<io::Error>,
}

fn mio(
    planned: &[Planned],
    config: Config,
    sink: Sink,
    report: &Report<'_>,
) -> Result<PoolStats, Failure> {
    let mut driver = roundtrip::mio::Driver::builder()
        .config(config)
        .build()
        .map_err(|e| Failure::Local(format!("cannot start the mio driver: {e}")))?;
    let sink = Arc::new(Mutex::new(sink));
    for request in planned {
        let start = report.begin(request, &mut lock(&sink))?;
        let fetched = fetch_mio(&mut driver, request, &sink, report, start);
        report.failed(fetched, &lock(&sink), request, start)?;
    }
    Ok(driver.stats())
}

/// One request on the mio driver, its body streamed to `sink`.
fn fetch_mio(
    driver: &mut roundtrip::mio::Driver,
    request: &Planned,
    sink: &Arc<Mutex<Sink>>,
    report: &Report<'_>,
    start: Instant,
) -> Result<(), Failure> {
    {
        let streamed = Arc::new(Mutex::new(Streamed::default()));
        let (into, state) = (Arc::clone(sink), Arc::clone(&streamed));
        let verbose = report.log.is_some();
        let receive = roundtrip::mio::Receive::stream(move |head, data| {
            let (mut sink, mut state) = (lock(&into), lock(&state));
            if !state.head_seen {
                state.head_seen = true;
                let head = Head::new(head.status, head.version, &head.headers, &head.extensions);
                if verbose {
                    Log::print_head(&head);
                }
                match sink.begin(&head) {
                    Ok(true) => {}
                    // Not wanted (`-f`): the driver drains or closes the rest.
                    Ok(false) => return roundtrip::mio::Flow::Stop,
                    Err(e) => {
                        state.error = Some(e);
                        return roundtrip::mio::Flow::Stop;
                    }
                }
            }
            match sink.write(&data) {
                Ok(true) => roundtrip::mio::Flow::Continue,
                Ok(false) => roundtrip::mio::Flow::Stop,
                Err(e) => {
                    state.error = Some(e);
                    roundtrip::mio::Flow::Stop
                }
            }
        });
        let id = driver.submit_with(request.request(), receive);
        let response = loop {
            if let Some(result) = take(driver, id) {
                break result;
            }
            // Bounded by the driver's own deadlines (connect, read, write,
            // and `--timeout`): every exchange ends.
            driver
                .run_once(None)
                .map_err(|e| Failure::Local(format!("the mio event loop failed: {e}")))?;
        };
        let mut state = lock(&streamed);
        if let Some(e) = state.error.take() {
            return Err(Failure::Output(e));
        }
        let response = response.map_err(Failure::Request)?;
        let mut sink = lock(sink);
        if !state.head_seen {
            report.response(&mut sink, &Head::from(&response))?;
        }
        let done = Done::new(sink.bytes, response.extensions());
        let trailers = response
            .extensions()
            .get::<roundtrip::mio::Trailers>()
            .map(|t| &t.0);
        report.end(
            &mut sink,
            request,
            start,
            response.status(),
            &done,
            trailers,
        )
    }
}

/// The result of `id`, if it finished (others cannot be in flight).
fn take(
    driver: &mut roundtrip::mio::Driver,
    id: roundtrip::mio::RequestId,
) -> Option<Result<roundtrip::mio::Response, Error>> {
    let mut mine = None;
    while let Some((done, result)) = driver.take_finished() {
        if done == id {
            mine = Some(result);
        }
    }
    mine
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An output file (`-o`, `-D`): opened before any request, so that an
/// unwritable path is a usage error before anything is sent, but emptied
/// only when the first response arrives: a run that gets no answer leaves
/// an existing file as it was, and removes one it made.
struct OutFile {
    file: File,
    path: PathBuf,
    /// The file did not exist before the run.
    made: bool,
    /// A response arrived: the file holds this run's output.
    started: bool,
}

impl OutFile {
    fn open(path: &PathBuf) -> Result<OutFile, Failure> {
        // A dangling symbolic link is not ours to remove.
        let made = std::fs::symlink_metadata(path).is_err();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", path.display())))?;
        Ok(OutFile {
            file,
            path: path.clone(),
            made,
            started: false,
        })
    }

    /// Whether `path` can be opened for writing, before any request, so
    /// that an unwritable one is a usage error before anything is sent: a
    /// regular file is opened (not emptied) and closed, one made for the
    /// check goes again, a directory is refused; a FIFO or a device is not
    /// opened (a FIFO's reader would see the check's close as its end).
    fn check(path: &PathBuf) -> Result<(), Failure> {
        let refused =
            |why: &str| Failure::Usage(format!("cannot create {}: {why}", path.display()));
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(refused("Is a directory")),
            Ok(meta) if !meta.is_file() => Ok(()),
            _ => OutFile::open(path).map(drop),
        }
    }

    /// A response arrived: from now on the file is this run's (emptied
    /// if it is a regular file: `/dev/null`, a FIFO or a terminal cannot
    /// be, and need not).
    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            if self.file.metadata()?.is_file() {
                self.file.set_len(0)?;
            }
        }
        Ok(())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if self.made && !self.started {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where bodies (or heads, for `-D`) go: stdout or a file.
enum Output {
    Stdout(io::Stdout),
    File(OutFile),
}

impl Output {
    /// `path`, or stdout for none or `-` (asked for by name).
    fn open(path: Option<&PathBuf>) -> Result<Output, Failure> {
        match path.filter(|p| p.as_os_str() != "-") {
            Some(path) => OutFile::open(path).map(Output::File),
            None => Ok(Output::Stdout(io::stdout())),
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Output::File(_))
    }

    fn start(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(_) => Ok(()),
            Output::File(file) => file.start(),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(data).and_then(|()| out.flush()),
            Output::File(file) => file.file.write_all(data),
        }
    }
}

/// Where bodies (and, with `-i`, heads) go, with a progress bar when asked for.
struct Sink {
    out: Output,
    /// `-O`: the files of the URLs still to come, one each, in order
    /// (each opened when its URL's turn comes: a thousand URLs do not
    /// hold a thousand files open, and a run killed early leaves no empty
    /// file behind for a URL it never fetched).
    remote: VecDeque<PathBuf>,
    /// Show a bar per body (`-o` to a file, stderr a terminal, no `-v`, no `-s`).
    progress: bool,
    bar: Option<ProgressBar>,
    /// `-i` or `-I`: write each head before its body.
    include: bool,
    /// `-D FILE` (or `-D -`, stdout).
    dump: Option<Output>,
    /// `-f`.
    fail: bool,
    /// The output is a terminal: a binary body is not written to it.
    terminal: bool,
    /// `-s`: no warning.
    silent: bool,
    /// The current response has a status `-f` refuses: its body is dropped.
    failed: bool,
    /// The current body is binary and the output a terminal: dropped.
    binary: bool,
    /// No byte of the current body has been seen yet.
    first: bool,
    /// The current response's status, once its head arrived (for `-w`
    /// after a failure).
    status: Option<StatusCode>,
    /// Body bytes of the current response so far.
    bytes: u64,
}

impl Sink {
    fn open(args: &Args, planned: &[Planned]) -> Result<Sink, Failure> {
        // `-o -` is stdout, asked for by name: written even to a terminal.
        let out = Output::open(args.output.as_ref())?;
        let mut remote = VecDeque::new();
        if args.remote_name {
            for request in planned {
                let name = remote_name(&request.parts.uri)?;
                OutFile::check(&name)?;
                remote.push_back(name);
            }
        }
        let to_file = out.is_file() || args.remote_name;
        let dump = match &args.dump_header {
            Some(path) => Some(Output::open(Some(path))?),
            None => None,
        };
        Ok(Sink {
            progress: to_file && !args.verbose && !args.silent && io::stderr().is_terminal(),
            bar: None,
            include: args.include || args.head,
            dump,
            fail: args.fail,
            // `-o -` names stdout: its bytes are written even to a
            // terminal (curl), the binary check is for stdout by default.
            terminal: !to_file && args.output.is_none() && io::stdout().is_terminal(),
            silent: args.silent,
            failed: false,
            binary: false,
            first: true,
            status: None,
            bytes: 0,
            out,
            remote,
        })
    }

    /// A URL's request starts: nothing of a response yet (with `-O`, its
    /// own file now; the previous URL's is closed, and removed if the run
    /// made it and no answer came).
    fn reset(&mut self) -> Result<(), Failure> {
        self.status = None;
        self.bytes = 0;
        if let Some(next) = self.remote.pop_front() {
            self.out = Output::File(OutFile::open(&next)?);
        }
        Ok(())
    }

    /// A response begins: its head to `-D` and `-i`, and a bar sized by its
    /// `Content-Length`, or a spinner. False when its body is not wanted
    /// (`-f` and a status of 400 or more): the caller stops there.
    fn begin(&mut self, head: &Head<'_>) -> io::Result<bool> {
        self.failed = self.fail && head.status.as_u16() >= 400;
        self.binary = false;
        self.first = true;
        self.status = Some(head.status);
        if let Some(dump) = &mut self.dump {
            dump.start()?;
            dump.write_all(&head_bytes(head))?;
        }
        if self.failed {
            return Ok(false);
        }
        self.out.start()?;
        if self.include {
            self.out.write_all(&head_bytes(head))?;
        }
        if !self.progress {
            return Ok(true);
        }
        let len = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let bar = match len {
            Some(len) => ProgressBar::new(len).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        self.bar = Some(bar);
        Ok(true)
    }

    /// Writes one piece of a body through to the output. False when the
    /// rest of the body is not wanted (a binary body for a terminal): the
    /// caller stops reading it.
    fn write(&mut self, data: &[u8]) -> io::Result<bool> {
        if self.failed || self.binary {
            return Ok(false);
        }
        self.bytes += data.len() as u64;
        if self.first && !data.is_empty() {
            self.first = false;
            // curl's test: a NUL byte in the first piece means binary.
            if self.terminal && data.contains(&0) {
                self.binary = true;
                if !self.silent {
                    warn(
                        "roundtrip: Binary output can mess up your terminal. Use \"-o -\" to \
                         write it to your terminal anyway, or \"-o FILE\" to save it to a file.",
                    );
                }
                return Ok(false);
            }
        }
        self.out.write_all(data)?;
        if let Some(bar) = &self.bar {
            bar.inc(data.len() as u64);
        }
        Ok(true)
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A response head as `-i` and `-D` write it: status line, fields, blank
/// line, CRLF each. The reason phrase is the server's, byte for byte; field
/// names as the `http` crate keeps them, lowercase.
fn head_bytes(head: &Head<'_>) -> Vec<u8> {
    let mut out = format!("{:?} {}", head.version, head.status.as_u16()).into_bytes();
    if !head.reason.is_empty() {
        out.push(b' ');
        out.extend_from_slice(head.reason);
    }
    out.extend_from_slice(b"\r\n");
    for (name, value) in head.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The `-v` log on stderr.
struct Log {
    /// The client's settings, to encode request heads as the backend does.
    config: Config,
    state: Mutex<LogState>,
}

struct LogState {
    /// When the current URL's request started.
    start: Instant,
    /// The request of the current hop, as it is sent.
    request: Option<Planned>,
}

impl Log {
    fn new(config: Config) -> Log {
        Log {
            config,
            state: Mutex::new(LogState {
                start: Instant::now(),
                request: None,
            }),
        }
    }

    /// A URL's request starts: times count from now.
    fn begin(&self, request: &Planned) {
        let mut state = lock(&self.state);
        state.start = Instant::now();
        state.request = Some(request.clone());
    }

    fn line(state: &LogState, text: &dyn std::fmt::Display) {
        let ms = state.start.elapsed().as_secs_f64() * 1e3;
        warn(&format!("* +{ms:.3}ms {text}"));
    }

    /// One trace event; after `GotConn`, the head about to be written on
    /// that connection.
    fn trace(&self, event: &TraceEvent) {
        let state = lock(&self.state);
        // An interim response's head is printed whole before the final
        // head (`print_head`); its event says when it came.
        Log::line(&state, event);
        if let (TraceEvent::GotConn { .. }, Some(request)) = (event, &state.request) {
            self.print_request(request);
        }
    }

    fn print_request(&self, request: &Planned) {
        let Ok(head) = request.encoded_head(&self.config) else {
            return; // refused before sending: the error line says why
        };
        let mut err = io::stderr().lock();
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                let _ = writeln!(err, "> {}", String::from_utf8_lossy(line));
            }
        }
        if let Some(body) = &request.body {
            let _ = writeln!(err, "> [{} bytes of body]", body.len());
        }
    }

    /// A redirect is about to be followed: log it, and work out the next
    /// request the way the backend does (`Redirects` + `Hop::apply`).
    fn redirect(&self, attempt: &RedirectAttempt<'_>) {
        let mut state = lock(&self.state);
        let text = format!(
            "redirect {} to {} ({})",
            attempt.status,
            shown(&attempt.next.to_string()),
            attempt.method
        );
        Log::line(&state, &text);
        let Some(request) = &mut state.request else {
            return;
        };
        let mut headers = HeaderMap::new();
        let Ok(location) = HeaderValue::from_str(&attempt.next.to_string()) else {
            return;
        };
        headers.insert(LOCATION, location);
        let mut redirects = Redirects::new(&request.parts.uri);
        let verdict = redirects.handle_response(
            &request.parts,
            attempt.status,
            &headers,
            request.replay(),
            &self.config,
        );
        if let Ok(Verdict::Follow(hop)) = verdict {
            if !hop.keeps_body() {
                request.body = None;
            }
            hop.apply(&mut request.parts);
        }
    }

    fn head(&self, head: &Head<'_>) {
        let _state = lock(&self.state);
        Log::print_head(head);
    }

    /// The interim (1xx) heads, each with a `<` line after it as curl
    /// prints them, then the final head.
    fn print_head(head: &Head<'_>) {
        let mut err = io::stderr().lock();
        for interim in head.interim {
            Log::print_one_head(&mut err, &Head::from(interim));
            let _ = writeln!(err, "<");
        }
        Log::print_one_head(&mut err, head);
    }

    fn print_one_head(err: &mut impl Write, head: &Head<'_>) {
        let reason = String::from_utf8_lossy(head.reason);
        let status = head.status.as_u16();
        let line = format!("{:?} {status} {reason}", head.version);
        let _ = writeln!(err, "< {}", line.trim_end());
        for (name, value) in head.headers {
            let _ = writeln!(
                err,
                "< {name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
    }

    /// The trailer fields of a chunked body, after it.
    fn trailers(&self, trailers: &HeaderMap) {
        let _state = lock(&self.state);
        let mut err = io::stderr().lock();
        for (name, value) in trailers {
            let _ = writeln!(
                err,
                "< {name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
    }

    fn done(&self, done: &Done) {
        let state = lock(&self.state);
        if let Some(chain) = done.chain.as_ref().filter(|c| c.redirects() > 0) {
            let urls: Vec<String> = chain.0.iter().map(|u| shown(&u.to_string())).collect();
            Log::line(&state, &format!("redirects: {}", urls.join(" -> ")));
        }
        let decoded = if done.decoded { " (gzip decoded)" } else { "" };
        let text = format!("done: {} body bytes{decoded}", done.bytes);
        Log::line(&state, &text);
    }

    fn pool(&self, stats: &PoolStats) {
        warn(&format!(
            "* pool: {} dialed, {} reused, {} idle",
            stats.dials, stats.reuses, stats.idle
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(proxy: bool, tried: Vec<(std::net::SocketAddr, String)>) -> Error {
        let source = io::ErrorKind::NotFound.into();
        let addr = "name.test:80".into();
        Error::Connect {
            addr,
            proxy,
            source,
            tried,
        }
    }

    /// A name that did not resolve is curl's 6, the proxy's 5; a name
    /// that resolved to nothing reachable is 7 either way.
    #[test]
    fn connect_failures_exit_as_curl() {
        let tried = || vec![("127.0.0.1:1".parse().unwrap(), "refused".to_string())];
        assert_eq!(curl_code(&connect(false, Vec::new())), 6);
        assert_eq!(curl_code(&connect(true, Vec::new())), 5);
        assert_eq!(curl_code(&connect(false, tried())), 7);
        assert_eq!(curl_code(&connect(true, tried())), 7);
    }

    /// `-O`'s name hides a password, and a last segment `-` is a file.
    #[test]
    fn remote_names() {
        let uri: Uri = "http://u:secret@h/dir/".parse().unwrap();
        let Err(Failure::Usage(why)) = remote_name(&uri) else {
            panic!("a path ending in / names no file")
        };
        assert!(!why.contains("secret"), "{why}");
        let uri: Uri = "http://h/dir/-".parse().unwrap();
        assert_eq!(remote_name(&uri).ok(), Some(PathBuf::from("./-")));
    }
}
