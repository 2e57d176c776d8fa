//! A response and its body are `Send` and `Sync` (as hyper's `Incoming`).

#[test]
fn responses_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<roundtrip_smol::ResponseBody>();
    send_sync::<roundtrip_smol::http::Response<roundtrip_smol::ResponseBody>>();
}
