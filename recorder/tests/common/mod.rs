//! Shared harness for the recorder's integration tests.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    unreachable_pub,
    reason = "a test helper module, used by several test crates"
)]

pub mod fake_api;
