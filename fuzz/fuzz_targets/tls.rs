//! The TLS parser and the matcher on an arbitrary conversation, through the shared harness
//! (juno_analyze::l7::harness::fuzz: transport, port and partial connection from the first
//! byte, then client and server segments and gaps; invariants checked on every run).
#![no_main]

use juno_analyze::l7::harness;
use juno_analyze::proto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = proto::by_name("tls") {
        harness::fuzz(p, b"", data);
    }
});
