//! The HTTP/2 parser and the matcher on an arbitrary conversation, through the shared harness
//! (juno_analyze::l7::harness::fuzz; invariants checked on every run). Bit 3 of the first byte
//! makes the client start with the connection preface, which the fuzzer would take long to
//! find by itself.
#![no_main]

use juno_analyze::l7::harness;
use juno_analyze::proto;
use juno_analyze::proto::http2::frame::PREFACE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prefix: &[u8] = if data.first().is_some_and(|m| m & 8 != 0) { PREFACE } else { b"" };
    if let Some(p) = proto::by_name("http2") {
        harness::fuzz(p, prefix, data);
    }
});
