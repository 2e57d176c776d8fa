//! The backend test suite, written once. Each case is a generic function over
//! a [`Backend`]; [`backend_suite!`](crate::backend_suite) stamps every case
//! into a `#[test]` for one backend.

use roundtrip_io::http::StatusCode;

use crate::backend::{Backend, Req, test_config};
use crate::server::{ScriptServer, Step, ok};

/// 100 keep-alive requests travel over one connection.
pub fn keep_alive_100<B: Backend>() {
    let server = ScriptServer::start(vec![vec![Step::Repeat(
        100,
        vec![Step::ReadRequest, Step::Write(ok(b"hello"))],
    )]]);
    let client = B::client(test_config());
    for i in 0..100 {
        let resp = B::send(&client, Req::get(server.url("/")))
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.body, b"hello");
    }
    assert_eq!(server.accepted(), 1, "{}: one connection", B::NAME);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle, stats.in_use),
        (1, 99, 1, 0)
    );
    server.assert_no_errors();
}

/// Stamps every case of the suite into `#[test]` functions for a backend.
#[macro_export]
macro_rules! backend_suite {
    ($backend:ty) => {
        $crate::backend_suite!(@cases $backend; keep_alive_100);
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::suite::$case::<$backend>();
            }
        )*
    };
}
