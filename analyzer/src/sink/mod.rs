//! Sinks: what the pipeline's exchanges and connections become — JSON lines, Zeek logs, the
//! terminal and HTML reports, the dependency graph, and (feature `export`) dataframes. Each
//! implements [`crate::pipeline::Sink`]; none is used by a stage below.

pub mod background;
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
        std::net::IpAddr::V4(a) => crate::model::ipv4_text(a, |s| line.push_str(s)),
        std::net::IpAddr::V6(a) => {
            // Writing to a String cannot fail.
            use std::fmt::Write as _;
            let _ = write!(line, "{a}");
        }
    }
}

/// Whether `b` holds no byte a text writer escapes: control bytes (below 0x20), DEL, `\`
/// and `extra`, tested eight bytes at a time with the usual "has a byte less than n" and "has
/// a zero byte" word tricks (exact for "none"; bytes of 0x80 and above never match). A last
/// partial word is the input's last eight bytes (some tested twice); inputs shorter than a
/// word are tested a byte at a time. (The last word used to be copied into a padded buffer on
/// the stack: a `memcpy` call, then a load that store forwarding could not serve — 40% of the
/// samples of `Json::key`, itself 15% of a JSON lines run on Redis.)
#[inline]
pub(crate) fn plain_bytes(b: &[u8], extra: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let marks = |x: u64| {
        (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
            | zero_byte(x ^ (ONES * u64::from(extra)))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | zero_byte(x ^ (ONES * 0x7f))
    };
    let word = |h: &[u8]| <[u8; 8]>::try_from(h).map_or(u64::MAX, u64::from_le_bytes);
    let n = b.len();
    if n < 8 {
        return b
            .iter()
            .all(|&c| c >= 0x20 && c != 0x7f && c != b'\\' && c != extra);
    }
    let chunks = b.chunks_exact(8);
    let mut m = chunks.fold(0, |m, c| m | marks(word(c)));
    if !n.is_multiple_of(8) {
        m |= marks(word(&b[n - 8..]));
    }
    m == 0
}

#[cfg(test)]
mod tests {
    use super::plain_bytes;

    /// Every byte value at every position of inputs up to 40 bytes: the word test agrees with
    /// a byte-by-byte one.
    #[test]
    fn plain_bytes_is_the_byte_test() {
        for extra in [b'"', b'\\'] {
            let plain = |b: &[u8]| {
                b.iter()
                    .all(|&c| c >= 0x20 && c != 0x7f && c != b'\\' && c != extra)
            };
            for len in 0..=40usize {
                let mut buf = vec![b'x'; len];
                assert!(plain_bytes(&buf, extra));
                for at in 0..len {
                    for c in 0..=255u8 {
                        buf[at] = c;
                        assert_eq!(plain_bytes(&buf, extra), plain(&buf), "{buf:?}");
                    }
                    buf[at] = b'x';
                }
            }
        }
    }
}
