//! Sinks: what the pipeline's exchanges and connections become — JSON lines, Zeek logs, the
//! terminal and HTML reports, the dependency graph, and (feature `export`) dataframes. Each
//! implements [`crate::pipeline::Sink`]; none is used by a stage below.

#[cfg(feature = "export")]
pub mod export;
pub mod fidelity;
pub mod graph;
pub mod hist;
pub mod html;
pub mod json;
pub mod jsonl;
pub mod report;
pub mod summary;
pub mod zeek;
