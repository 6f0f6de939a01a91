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

/// Appends a number in decimal.
pub(crate) fn push_count(line: &mut String, n: u64) {
    line.push_str(itoa::Buffer::new().format(n));
}

/// Appends an address as `Display` writes it (dotted quad; IPv6 through `Display`, for its
/// RFC 5952 compression).
pub(crate) fn push_ip(line: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => {
            let mut b = itoa::Buffer::new();
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    line.push('.');
                }
                line.push_str(b.format(o));
            }
        }
        std::net::IpAddr::V6(a) => {
            // Writing to a String cannot fail.
            use std::fmt::Write as _;
            let _ = write!(line, "{a}");
        }
    }
}
