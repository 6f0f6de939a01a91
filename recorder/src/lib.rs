//! `juno-record`: the node agent. Loads the eBPF programs (recorder-ebpf/), drains their ring
//! buffers, and writes what they capture into rotating Juno archives.
//!
//! Layout: [`kernel`] is the OS boundary (behind the [`kernel::Kernel`] trait); [`recorder`]
//! the event loop; [`output`] encoding, compression, rotation and retention; [`ifaces`]
//! following interfaces over rtnetlink; [`netns`] what a veth's peer namespace shows (its
//! addresses: the pod's); [`node`] what the node shows (containers from cgroup
//! paths, connections that predate the recorder); [`kube`] pods, workloads and services from
//! the Kubernetes API; [`redaction`] secrets overwritten before anything is written; [`tls`] the TLS libraries the
//! TLS plaintext uprobes go on; [`meta`] the seam through which metadata reaches the loop and the
//! snapshot; [`btf`] kernel structure offsets; [`cli`] the command line.

pub mod btf;
pub mod cli;
pub mod cost;
pub mod gotls;
pub mod ifaces;
pub mod kernel;
pub mod kube;
pub mod meta;
pub mod netns;
pub mod node;
pub mod output;
pub mod recorder;
pub mod redaction;
pub mod socks;
pub mod tls;

/// Writes one timestamped line to stderr: the recorder's log (a DaemonSet's log is its stderr).
pub fn log(msg: impl std::fmt::Display) {
    use std::io::Write;
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let _ = writeln!(std::io::stderr(), "{t} juno-record: {msg}");
}
