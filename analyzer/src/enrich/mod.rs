//! Enrichment: what the archive's metadata says about the ends of connections and exchanges
//! (pods, namespaces, workloads, services), applied after matching.

pub mod k8s;

pub use k8s::{MetaIndex, MetaStats};
