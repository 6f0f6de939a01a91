//! Juno records: the payloads of the pcapng Custom Blocks that carry socket events, pod and
//! container metadata, recorder statistics and file information.
//!
//! The encoding is explicit little-endian, independent of the pcapng section's byte order and of
//! any kernel struct layout. It is specified in `docs/archive-format.md`; this module is the
//! reference implementation. Every record starts with a 16-byte header:
//!
//! ```text
//! 0  magic "JUNO"   4 bytes
//! 4  major          u8   incompatible changes; readers skip records of another major
//! 5  minor          u8   compatible additions (longer fixed part, new TLV tags)
//! 6  type           u16
//! 8  fixed_len      u16  length of the fixed part that follows the header
//! 10 flags          u16  reserved, written 0
//! 12 body_len       u32  fixed part + variable part, excluding pcapng padding
//! ```
//!
//! A reader that meets a newer minor reads the prefix of the fixed part it knows, ignores the
//! rest and unknown TLV tags, and counts the record in [`DecodeStats::newer_minor`].
//!
//! Decoding never panics and never allocates more than the record's own length.

use thiserror::Error;

mod file;
mod meta;
mod socket;
mod tlv;

pub use file::*;
pub use meta::*;
pub use socket::*;

/// Private Enterprise Number under which Juno records are stored in pcapng Custom Blocks.
///
/// 32473 is the IANA number reserved for documentation (RFC 5612). Juno has no PEN of its own
/// yet; the 4-byte magic at the start of each payload tells Juno records apart from anything
/// else that uses this number. See `docs/archive-format.md`.
pub const JUNO_PEN: u32 = 32473;
/// First four bytes of every Juno record.
pub const MAGIC: [u8; 4] = *b"JUNO";
/// Major version written by this crate.
pub const MAJOR: u8 = 1;
/// Minor version written by this crate (1: the file-info `REDACTION` field; 2: TLS data events).
pub const MINOR: u8 = 2;
/// Length of the record header.
pub const HEADER_LEN: usize = 16;

/// Largest captured payload a socket event may carry (the recorder caps far below this).
pub const MAX_SOCKET_PAYLOAD: usize = 1 << 20;

mod field {
    pub(super) const MAGIC: core::ops::Range<usize> = 0..4;
    pub(super) const MAJOR: usize = 4;
    pub(super) const MINOR: usize = 5;
    pub(super) const TYPE: core::ops::Range<usize> = 6..8;
    pub(super) const FIXED_LEN: core::ops::Range<usize> = 8..10;
    pub(super) const BODY_LEN: core::ops::Range<usize> = 12..16;
}

/// Record types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// Who wrote the file, for which node, which sequence number.
    FileInfo,
    /// A socket lifecycle or data event.
    Socket,
    /// Pod, container, interface, service or node metadata.
    Metadata,
    /// Recorder counters (drops, events).
    Stats,
    /// A type this reader does not know.
    Unknown(u16),
}

impl From<u16> for RecordType {
    fn from(v: u16) -> Self {
        match v {
            1 => Self::FileInfo,
            2 => Self::Socket,
            3 => Self::Metadata,
            4 => Self::Stats,
            other => Self::Unknown(other),
        }
    }
}

impl From<RecordType> for u16 {
    fn from(v: RecordType) -> u16 {
        match v {
            RecordType::FileInfo => 1,
            RecordType::Socket => 2,
            RecordType::Metadata => 3,
            RecordType::Stats => 4,
            RecordType::Unknown(other) => other,
        }
    }
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// Fewer bytes than the header or than the header's lengths claim.
    #[error("record truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        have: usize,
    },
    /// The payload does not start with `JUNO`.
    #[error("not a Juno record (bad magic)")]
    BadMagic,
    /// The fixed part is shorter than this record type requires.
    #[error("fixed part of {rtype:?} too short: {len} bytes, need {min}")]
    FixedTooShort {
        /// Record type.
        rtype: RecordType,
        /// Length found.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// A length field inside the record exceeds the record.
    #[error("field {what} has length {len}, beyond the record or the limit")]
    BadLength {
        /// Which field.
        what: &'static str,
        /// Claimed length.
        len: usize,
    },
}

/// Counters kept while decoding records; nothing unusual is silently dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Records of a newer minor version (decoded partially).
    pub newer_minor: u64,
    /// Records of another major version (skipped).
    pub other_major: u64,
    /// Records of a type this reader does not know (skipped).
    pub unknown_type: u64,
    /// TLV entries with a tag this reader does not know (skipped).
    pub unknown_tags: u64,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// File information.
    FileInfo(FileInfo),
    /// Socket event, borrowing its payload from the block.
    Socket(SocketEvent<'a>),
    /// Metadata change or snapshot entry.
    Metadata(MetaRecord),
    /// Recorder statistics.
    Stats(StatsRecord),
}

/// The result of decoding one custom-block payload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned by value and matched at once, never stored"
)]
pub enum Decoded<'a> {
    /// A record this reader understands.
    Record(Record<'a>),
    /// A well-formed record this reader skips (other major, unknown type); counted in stats.
    Skipped(RecordType),
}

/// The fixed header of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Type.
    pub rtype: RecordType,
    /// Length of the fixed part.
    pub fixed_len: usize,
    /// Length of fixed + variable parts.
    pub body_len: usize,
}

impl RecordHeader {
    /// Parses and checks a header; the body must be present in `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, RecordError> {
        if buf.len() < HEADER_LEN {
            return Err(RecordError::Truncated {
                needed: HEADER_LEN,
                have: buf.len(),
            });
        }
        if buf[field::MAGIC] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        let fixed_len = usize::from(le16(&buf[field::FIXED_LEN]));
        let body_len = le32(&buf[field::BODY_LEN]) as usize;
        let hdr = RecordHeader {
            major: buf[field::MAJOR],
            minor: buf[field::MINOR],
            rtype: RecordType::from(le16(&buf[field::TYPE])),
            fixed_len,
            body_len,
        };
        let needed = HEADER_LEN.saturating_add(body_len);
        if buf.len() < needed {
            return Err(RecordError::Truncated {
                needed,
                have: buf.len(),
            });
        }
        if fixed_len > body_len {
            return Err(RecordError::BadLength {
                what: "fixed_len",
                len: fixed_len,
            });
        }
        Ok(hdr)
    }
}

/// Decodes one Juno record from a custom block payload (after the PEN; padding allowed).
pub fn decode<'a>(buf: &'a [u8], stats: &mut DecodeStats) -> Result<Decoded<'a>, RecordError> {
    let hdr = RecordHeader::parse(buf)?;
    if hdr.major != MAJOR {
        stats.other_major += 1;
        return Ok(Decoded::Skipped(hdr.rtype));
    }
    let body = &buf[HEADER_LEN..HEADER_LEN + hdr.body_len];
    let (fixed, var) = body.split_at(hdr.fixed_len);
    let rec = match hdr.rtype {
        RecordType::Socket => Record::Socket(SocketEvent::decode(fixed, var)?),
        RecordType::Metadata => Record::Metadata(MetaRecord::decode(fixed, var, stats)?),
        RecordType::FileInfo => Record::FileInfo(FileInfo::decode(fixed, var, stats)?),
        RecordType::Stats => Record::Stats(StatsRecord::decode(fixed, var)?),
        RecordType::Unknown(_) => {
            stats.unknown_type += 1;
            return Ok(Decoded::Skipped(hdr.rtype));
        }
    };
    if hdr.minor > MINOR {
        stats.newer_minor += 1;
    }
    Ok(Decoded::Record(rec))
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Starts a record in `out`; returns the offset to patch with [`finish_record`].
fn begin_record(out: &mut Vec<u8>, rtype: RecordType, fixed_len: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(MAJOR);
    out.push(MINOR);
    out.extend_from_slice(&u16::from(rtype).to_le_bytes());
    out.extend_from_slice(&fixed_len.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    start
}

fn finish_record(out: &mut [u8], start: usize) {
    let body_len = u32::try_from(out.len() - start - HEADER_LEN).unwrap_or(u32::MAX);
    out[start + 12..start + 16].copy_from_slice(&body_len.to_le_bytes());
}

impl Record<'_> {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::FileInfo(r) => r.encode(out),
            Record::Socket(r) => r.encode(out),
            Record::Metadata(r) => r.encode(out),
            Record::Stats(r) => r.encode(out),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
