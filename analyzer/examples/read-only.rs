//! Reads inputs exactly as `juno-analyze` does — files, decompression, pcap/pcapng/Juno
//! archive blocks, the time-ordered merge into batches — and does nothing with the packets:
//! the reading stage's throughput on its own, for scripts/bench/archive-read.sh.
//!
//! `cargo run --release -p juno-analyze --example read-only -- FILE...` prints packets,
//! socket events, captured bytes and seconds.

#![allow(
    clippy::print_stdout,
    reason = "an example that prints its measurement"
)]

use std::path::PathBuf;
use std::time::Instant;

use juno_analyze::Config;
use juno_analyze::input::{BatchItem, Inputs};

fn main() -> anyhow::Result<()> {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    anyhow::ensure!(!paths.is_empty(), "usage: read-only FILE...");
    let t = Instant::now();
    // The input options `juno-analyze` derives from its default memory budget (1 GiB).
    let inputs = Inputs::open(&paths, Config::default().input)?;
    let (mut packets, mut sockets, mut bytes) = (0u64, 0u64, 0u64);
    let mut warnings = 0usize;
    inputs.read(|b| {
        for item in &b.items {
            match item {
                BatchItem::Packet(_) => packets += 1,
                BatchItem::Socket(_) => sockets += 1,
                _ => {}
            }
        }
        bytes += b.packet_bytes;
        warnings += b.files_done.iter().map(|f| f.warnings.len()).sum::<usize>();
        true
    })?;
    println!(
        "packets {packets} socket_events {sockets} captured_bytes {bytes} warnings {warnings} seconds {:.3}",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
