//! Outputs: JSON lines, Zeek TSV logs, and the per-protocol summaries reports use.

pub mod json;
pub mod jsonl;
pub mod zeek;
