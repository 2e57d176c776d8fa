//! Arbitrary bytes into `ResponseDecoder`: no panic, a well-formed event
//! sequence (see `Checker`), sticky errors, and the same outcome fed whole,
//! in the fuzz-chosen pieces and byte by byte. Input layout: `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roundtrip_fuzz::{check_split_independence, parse_ctrl};

fuzz_target!(|data: &[u8]| {
    let (ctrl, payload) = parse_ctrl(data);
    check_split_independence(&ctrl, payload);
});
