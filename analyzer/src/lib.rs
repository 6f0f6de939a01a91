//! `juno-analyze`: reads Juno archives and pcap/pcapng captures, reassembles TCP, parses
//! application protocols, matches requests with responses, and writes logs and reports.
//!
//! The modules are layers; each imports only from the layers before it (docs/architecture.md
//! draws them; scripts/check-layers.py checks them):
//!
//! 1. [`model`] — the shared vocabulary: time, direction, endpoints, connections, exchanges,
//!    protocol fields, the pods at both ends; [`read`], checked readers over bytes; and
//!    [`progress`], the progress bar.
//! 2. [`input`] — files, decompression, pcap/pcapng/Juno archives, merged in time order.
//! 3. [`decode`] — link layer, IP, TCP/UDP.
//! 4. [`l7`] — the contract of protocol parsers (events, probes, Zeek log types) and the
//!    matcher that pairs requests with responses.
//! 5. [`proto`] — one module per protocol, and the registry that detects them.
//! 6. [`conn`] — connections from packets and from socket events, TCP reassembly, and the
//!    session that feeds a connection's bytes to its protocol's parser.
//! 7. [`enrich`] — pods, workloads and services from the archive's metadata.
//! 8. [`pipeline`] — runs it all in parallel (rayon) into a [`Sink`].
//! 9. [`sink`] — JSON lines, Zeek logs, reports, the graph, the dataframe export.
//!
//! Invariants: no input makes the analyzer panic; every buffer whose size the input
//! controls is bounded (records, lines, headers, out-of-order data, open exchanges), all of
//! them within one memory budget ([`pipeline::Budget`]), and what is dropped to stay within a
//! bound is counted and reported.

pub mod model;
pub mod progress;
pub mod read;

pub mod input;

pub mod decode;

pub mod l7;

pub mod proto;

pub mod conn;

pub mod enrich;

pub mod pipeline;

pub mod sink;

use std::path::PathBuf;

use anyhow::Result;

pub use pipeline::{Config, RunSummary, Sink};

/// Opens `paths` (files, directories, or `-` for standard input) and runs the analysis into
/// `sink`.
pub fn analyze(paths: &[PathBuf], cfg: &Config, sink: &mut dyn Sink) -> Result<RunSummary> {
    let inputs = input::Inputs::open(paths, cfg.input)?;
    pipeline::run(inputs, cfg, sink)
}
