//! Archive file names.
//!
//! A sealed file is named `juno-<node>-<start>-<seq>.pcapng.zst`, where `<start>` is the UTC
//! time the file was started as `YYYYMMDDTHHMMSSZ` and `<seq>` is the recorder's rotation
//! counter, zero-padded to six digits. Files sort by name in time order for one node.
//!
//! A file being written is `.juno-<node>-<start>-<seq>.pcapng.zst.partial`: hidden, and with a
//! suffix that globs such as `*.pcapng.zst` do not match, so nobody copies it by mistake. The
//! recorder renames it to its sealed name (an atomic `rename(2)`) once it is complete.
//!
//! An archive encrypted at rest (the `age` format, to the recorder's recipients) has `.age`
//! appended: `juno-<node>-<start>-<seq>.pcapng.zst.age`, `.juno-...pcapng.zst.age.partial`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Suffix of sealed archives.
pub const SUFFIX: &str = ".pcapng.zst";
/// Suffix of files being written.
pub const PARTIAL_SUFFIX: &str = ".pcapng.zst.partial";
/// Suffix of sealed archives encrypted with age.
pub const AGE_SUFFIX: &str = ".pcapng.zst.age";
/// Suffix of encrypted files being written.
pub const AGE_PARTIAL_SUFFIX: &str = ".pcapng.zst.age.partial";
const PREFIX: &str = "juno-";

/// The parts of an archive file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveName {
    /// Node name, with characters outside `[A-Za-z0-9.]` replaced by `_`.
    pub node: String,
    /// Start time, whole seconds since the Unix epoch.
    pub start_secs: u64,
    /// Rotation sequence number.
    pub seq: u64,
    /// Encrypted with age (`.age` appended to the names).
    pub encrypted: bool,
}

/// Makes a node name safe for a file name: keeps `[A-Za-z0-9.]`, replaces the rest with `_`.
/// (`-` is replaced too, so that the name splits unambiguously.)
pub fn sanitize_node(node: &str) -> String {
    let s: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "node".to_string() } else { s }
}

fn compact_time(secs: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    // "2026-11-23T17:57:00Z" -> "20261123T175700Z"
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

fn parse_compact_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !digits(0..8) || !digits(9..15) {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    let t: SystemTime = humantime::parse_rfc3339(&rfc).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

impl ArchiveName {
    /// A name for a file started at `start` on `node`.
    pub fn new(node: &str, start: SystemTime, seq: u64) -> Self {
        let start_secs = start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        ArchiveName {
            node: sanitize_node(node),
            start_secs,
            seq,
            encrypted: false,
        }
    }

    /// The same name for an encrypted file (or not).
    pub fn with_encryption(self, encrypted: bool) -> Self {
        ArchiveName { encrypted, ..self }
    }

    fn stem(&self) -> String {
        format!(
            "{PREFIX}{}-{}-{:06}",
            self.node,
            compact_time(self.start_secs),
            self.seq
        )
    }

    /// The sealed file name.
    pub fn sealed(&self) -> String {
        let suffix = if self.encrypted { AGE_SUFFIX } else { SUFFIX };
        format!("{}{suffix}", self.stem())
    }

    /// The in-progress file name.
    pub fn partial(&self) -> String {
        let suffix = if self.encrypted {
            AGE_PARTIAL_SUFFIX
        } else {
            PARTIAL_SUFFIX
        };
        format!(".{}{suffix}", self.stem())
    }

    /// Parses a sealed or in-progress file name.
    pub fn parse(name: &str) -> Option<(Self, bool)> {
        let (stem, partial, encrypted) = if let Some(s) = name.strip_suffix(PARTIAL_SUFFIX) {
            (s.strip_prefix('.')?, true, false)
        } else if let Some(s) = name.strip_suffix(AGE_PARTIAL_SUFFIX) {
            (s.strip_prefix('.')?, true, true)
        } else if let Some(s) = name.strip_suffix(AGE_SUFFIX) {
            (s, false, true)
        } else {
            (name.strip_suffix(SUFFIX)?, false, false)
        };
        let rest = stem.strip_prefix(PREFIX)?;
        let mut parts = rest.rsplitn(3, '-');
        let seq = parts.next()?;
        let time = parts.next()?;
        let node = parts.next()?;
        if node.is_empty() || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((
            ArchiveName {
                node: node.to_string(),
                start_secs: parse_compact_time(time)?,
                seq: seq.parse().ok()?,
                encrypted,
            },
            partial,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_456_620); // 2026-11-23T17:57:00Z
        let n = ArchiveName::new("ip-10-0-1-7.ec2.internal", t, 42);
        assert_eq!(
            n.sealed(),
            "juno-ip_10_0_1_7.ec2.internal-20261123T175700Z-000042.pcapng.zst"
        );
        assert_eq!(
            n.partial(),
            ".juno-ip_10_0_1_7.ec2.internal-20261123T175700Z-000042.pcapng.zst.partial"
        );
        assert_eq!(ArchiveName::parse(&n.sealed()), Some((n.clone(), false)));
        assert_eq!(ArchiveName::parse(&n.partial()), Some((n.clone(), true)));
        let e = n.with_encryption(true);
        assert_eq!(
            e.sealed(),
            "juno-ip_10_0_1_7.ec2.internal-20261123T175700Z-000042.pcapng.zst.age"
        );
        assert_eq!(
            e.partial(),
            ".juno-ip_10_0_1_7.ec2.internal-20261123T175700Z-000042.pcapng.zst.age.partial"
        );
        assert_eq!(ArchiveName::parse(&e.sealed()), Some((e.clone(), false)));
        assert_eq!(ArchiveName::parse(&e.partial()), Some((e, true)));
    }

    #[test]
    fn sealed_names_sort_in_time_order() {
        let a = ArchiveName::new("n", UNIX_EPOCH + Duration::from_secs(1_700_000_000), 9).sealed();
        let b = ArchiveName::new("n", UNIX_EPOCH + Duration::from_secs(1_700_000_060), 10).sealed();
        assert!(a < b);
    }

    #[test]
    fn rejects_other_names() {
        for bad in [
            "capture.pcapng.zst",
            "juno-node-20261123T175700Z.pcapng.zst",
            "juno-node-2026-11-23-000001.pcapng.zst",
            "juno--20261123T175700Z-000001.pcapng.zst",
            "juno-n-20261123T175700Z-00x001.pcapng.zst",
            "juno-n-20261323T175700Z-000001.pcapng.zst",
            "juno-n-20261123T175700Z-000001.pcapng.zst.partial",
            "juno-n-20261123T175700Z-000001.pcapng.zst.age.partial",
            "juno-n-20261123T175700Z-000001.pcapng.age",
        ] {
            assert_eq!(ArchiveName::parse(bad), None, "{bad}");
        }
    }
}
