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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

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
/// Minor version written by this crate.
pub const MINOR: u8 = 0;
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

// ---------------------------------------------------------------------------------------------
// Socket events

/// What happened on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketEventKind {
    /// A process connected (client side).
    Connect,
    /// A process accepted a connection (server side).
    Accept,
    /// The socket was closed by its process.
    Close,
    /// Bytes moved by a send/recv/read/write family syscall.
    Data,
    /// A TCP state transition (`inet_sock_set_state`).
    StateChange,
    /// A connection that existed when the recorder started (found in /proc).
    Existing,
    /// A kind this reader does not know.
    Unknown(u8),
}

impl From<u8> for SocketEventKind {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Connect,
            2 => Self::Accept,
            3 => Self::Close,
            4 => Self::Data,
            5 => Self::StateChange,
            6 => Self::Existing,
            other => Self::Unknown(other),
        }
    }
}

impl From<SocketEventKind> for u8 {
    fn from(v: SocketEventKind) -> u8 {
        match v {
            SocketEventKind::Connect => 1,
            SocketEventKind::Accept => 2,
            SocketEventKind::Close => 3,
            SocketEventKind::Data => 4,
            SocketEventKind::StateChange => 5,
            SocketEventKind::Existing => 6,
            SocketEventKind::Unknown(other) => other,
        }
    }
}

/// Direction of a data event, from the process's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataDirection {
    /// Not a data event.
    None,
    /// The process sent the bytes (egress).
    Send,
    /// The process received the bytes (ingress).
    Recv,
    /// A value this reader does not know.
    Unknown(u8),
}

impl From<u8> for DataDirection {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Send,
            2 => Self::Recv,
            other => Self::Unknown(other),
        }
    }
}

impl From<DataDirection> for u8 {
    fn from(v: DataDirection) -> u8 {
        match v {
            DataDirection::None => 0,
            DataDirection::Send => 1,
            DataDirection::Recv => 2,
            DataDirection::Unknown(o) => o,
        }
    }
}

/// Sentinel for an unknown stream offset.
pub const OFFSET_UNKNOWN: u64 = u64::MAX;

/// A socket event: lifecycle or payload bytes of one socket, attributed to a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketEvent<'a> {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// What happened.
    pub kind: SocketEventKind,
    /// For data events, which way the bytes went.
    pub direction: DataDirection,
    /// IP protocol number (6 = TCP, 17 = UDP).
    pub ip_proto: u8,
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Process name as the kernel keeps it (up to 16 bytes, NUL padded).
    pub comm: [u8; 16],
    /// cgroup v2 id of the process.
    pub cgroup_id: u64,
    /// Inode number of the socket's network namespace.
    pub netns: u32,
    /// Kernel socket cookie (unique per socket for the boot).
    pub cookie: u64,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
    /// TCP state before (state changes), kernel numbering.
    pub old_state: u8,
    /// TCP state after (state changes), kernel numbering.
    pub new_state: u8,
    /// Which hook produced the event (documented in recorder docs); 0 if unknown.
    pub hook: u16,
    /// Byte offset of this data in the socket's stream for `direction`, or [`OFFSET_UNKNOWN`].
    pub stream_offset: u64,
    /// Bytes the syscall moved (or would have), before truncation.
    pub orig_len: u32,
    /// Captured bytes (at most `orig_len`).
    pub payload: &'a [u8],
}

/// Byte offsets of the socket event's fixed part (see `docs/archive-format.md`).
mod sock {
    use core::ops::Range;
    pub(super) const TS: Range<usize> = 0..8;
    pub(super) const KIND: usize = 8;
    pub(super) const DIRECTION: usize = 9;
    pub(super) const IP_PROTO: usize = 10;
    pub(super) const FAMILY: usize = 11;
    pub(super) const PID: Range<usize> = 12..16;
    pub(super) const TID: Range<usize> = 16..20;
    pub(super) const CGROUP: Range<usize> = 20..28;
    pub(super) const NETNS: Range<usize> = 28..32;
    // 32..36 reserved
    pub(super) const COOKIE: Range<usize> = 36..44;
    pub(super) const LOCAL_ADDR: Range<usize> = 44..60;
    pub(super) const REMOTE_ADDR: Range<usize> = 60..76;
    pub(super) const LOCAL_PORT: Range<usize> = 76..78;
    pub(super) const REMOTE_PORT: Range<usize> = 78..80;
    pub(super) const OLD_STATE: usize = 80;
    pub(super) const NEW_STATE: usize = 81;
    pub(super) const HOOK: Range<usize> = 82..84;
    pub(super) const STREAM_OFFSET: Range<usize> = 84..92;
    pub(super) const ORIG_LEN: Range<usize> = 92..96;
    pub(super) const CAP_LEN: Range<usize> = 96..100;
    pub(super) const COMM: Range<usize> = 100..116;
    pub(super) const FIXED_LEN: usize = 116;
}

impl<'a> SocketEvent<'a> {
    /// The process name as text, up to the first NUL.
    pub fn comm_str(&self) -> String {
        let end = self
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }

    /// Length of the encoded record.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + sock::FIXED_LEN + self.payload.len().min(MAX_SOCKET_PAYLOAD)
    }

    /// Appends the encoded record to `out`. Payloads beyond [`MAX_SOCKET_PAYLOAD`] are cut
    /// (`orig_len` still tells the real size).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::Socket, sock::FIXED_LEN as u16);
        let cap = self.payload.len().min(MAX_SOCKET_PAYLOAD);
        let mut f = [0u8; sock::FIXED_LEN];
        f[sock::TS].copy_from_slice(&self.ts_ns.to_le_bytes());
        f[sock::KIND] = self.kind.into();
        f[sock::DIRECTION] = self.direction.into();
        f[sock::IP_PROTO] = self.ip_proto;
        f[sock::FAMILY] = match self.local.ip() {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 6,
        };
        f[sock::PID].copy_from_slice(&self.pid.to_le_bytes());
        f[sock::TID].copy_from_slice(&self.tid.to_le_bytes());
        f[sock::CGROUP].copy_from_slice(&self.cgroup_id.to_le_bytes());
        f[sock::NETNS].copy_from_slice(&self.netns.to_le_bytes());
        f[sock::COOKIE].copy_from_slice(&self.cookie.to_le_bytes());
        f[sock::LOCAL_ADDR].copy_from_slice(&addr16(self.local.ip()));
        f[sock::REMOTE_ADDR].copy_from_slice(&addr16(self.remote.ip()));
        f[sock::LOCAL_PORT].copy_from_slice(&self.local.port().to_le_bytes());
        f[sock::REMOTE_PORT].copy_from_slice(&self.remote.port().to_le_bytes());
        f[sock::OLD_STATE] = self.old_state;
        f[sock::NEW_STATE] = self.new_state;
        f[sock::HOOK].copy_from_slice(&self.hook.to_le_bytes());
        f[sock::STREAM_OFFSET].copy_from_slice(&self.stream_offset.to_le_bytes());
        f[sock::ORIG_LEN].copy_from_slice(&self.orig_len.to_le_bytes());
        f[sock::CAP_LEN].copy_from_slice(&(cap as u32).to_le_bytes());
        f[sock::COMM].copy_from_slice(&self.comm);
        out.extend_from_slice(&f);
        out.extend_from_slice(&self.payload[..cap]);
        finish_record(out, start);
    }

    fn decode(f: &'a [u8], var: &'a [u8]) -> Result<Self, RecordError> {
        if f.len() < sock::FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::Socket,
                len: f.len(),
                min: sock::FIXED_LEN,
            });
        }
        let family = f[sock::FAMILY];
        let cap_len = le32(&f[sock::CAP_LEN]) as usize;
        if cap_len > var.len() || cap_len > MAX_SOCKET_PAYLOAD {
            return Err(RecordError::BadLength {
                what: "socket cap_len",
                len: cap_len,
            });
        }
        let mut comm = [0u8; 16];
        comm.copy_from_slice(&f[sock::COMM]);
        Ok(SocketEvent {
            ts_ns: le64(&f[sock::TS]),
            kind: f[sock::KIND].into(),
            direction: f[sock::DIRECTION].into(),
            ip_proto: f[sock::IP_PROTO],
            pid: le32(&f[sock::PID]),
            tid: le32(&f[sock::TID]),
            comm,
            cgroup_id: le64(&f[sock::CGROUP]),
            netns: le32(&f[sock::NETNS]),
            cookie: le64(&f[sock::COOKIE]),
            local: SocketAddr::new(
                ip_from16(family, &f[sock::LOCAL_ADDR]),
                le16(&f[sock::LOCAL_PORT]),
            ),
            remote: SocketAddr::new(
                ip_from16(family, &f[sock::REMOTE_ADDR]),
                le16(&f[sock::REMOTE_PORT]),
            ),
            old_state: f[sock::OLD_STATE],
            new_state: f[sock::NEW_STATE],
            hook: le16(&f[sock::HOOK]),
            stream_offset: le64(&f[sock::STREAM_OFFSET]),
            orig_len: le32(&f[sock::ORIG_LEN]),
            payload: &var[..cap_len],
        })
    }
}

fn addr16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&v4.octets());
            a
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn ip_from16(family: u8, b: &[u8]) -> IpAddr {
    if family == 4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    }
}

// ---------------------------------------------------------------------------------------------
// TLV fields (metadata and file info)
//
// `tag u16 | len u16 | value[len]`, little-endian, no padding. Strings are UTF-8 (decoded
// lossily), addresses are 4 or 16 bytes, integers are 4 or 8 bytes. A tag may repeat for lists.

struct TlvWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl TlvWriter<'_> {
    fn bytes(&mut self, tag: u16, v: &[u8]) {
        let len = v.len().min(usize::from(u16::MAX));
        self.out.extend_from_slice(&tag.to_le_bytes());
        self.out.extend_from_slice(&(len as u16).to_le_bytes());
        self.out.extend_from_slice(&v[..len]);
    }
    fn str(&mut self, tag: u16, v: &str) {
        // Cut at a char boundary so that a long string stays valid UTF-8.
        let mut end = v.len().min(usize::from(u16::MAX));
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes(tag, &v.as_bytes()[..end]);
    }
    fn opt_str(&mut self, tag: u16, v: Option<&str>) {
        if let Some(v) = v {
            self.str(tag, v);
        }
    }
    fn u32(&mut self, tag: u16, v: u32) {
        self.bytes(tag, &v.to_le_bytes());
    }
    fn u64(&mut self, tag: u16, v: u64) {
        self.bytes(tag, &v.to_le_bytes());
    }
    fn opt_u32(&mut self, tag: u16, v: Option<u32>) {
        if let Some(v) = v {
            self.u32(tag, v);
        }
    }
    fn opt_u64(&mut self, tag: u16, v: Option<u64>) {
        if let Some(v) = v {
            self.u64(tag, v);
        }
    }
    fn ip(&mut self, tag: u16, ip: &IpAddr) {
        match ip {
            IpAddr::V4(a) => self.bytes(tag, &a.octets()),
            IpAddr::V6(a) => self.bytes(tag, &a.octets()),
        }
    }
    fn pair(&mut self, tag: u16, k: &str, v: &str) {
        let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
        kv.extend_from_slice(k.as_bytes());
        kv.push(0);
        kv.extend_from_slice(v.as_bytes());
        self.bytes(tag, &kv);
    }
}

/// Iterates over TLV entries; stops (with an error) at the first malformed one.
fn tlvs(mut var: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), RecordError>> {
    std::iter::from_fn(move || {
        if var.is_empty() {
            return None;
        }
        if var.len() < 4 {
            let len = var.len();
            var = &[];
            return Some(Err(RecordError::Truncated {
                needed: 4,
                have: len,
            }));
        }
        let tag = le16(&var[0..2]);
        let len = usize::from(le16(&var[2..4]));
        if var.len() < 4 + len {
            var = &[];
            return Some(Err(RecordError::BadLength { what: "tlv", len }));
        }
        let v = &var[4..4 + len];
        var = &var[4 + len..];
        Some(Ok((tag, v)))
    })
}

fn tlv_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}
fn tlv_u32(v: &[u8]) -> Option<u32> {
    (v.len() == 4).then(|| le32(v))
}
fn tlv_u64(v: &[u8]) -> Option<u64> {
    (v.len() == 8).then(|| le64(v))
}
fn tlv_ip(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}
fn tlv_pair(v: &[u8]) -> (String, String) {
    match v.iter().position(|&b| b == 0) {
        Some(i) => (tlv_str(&v[..i]), tlv_str(&v[i + 1..])),
        None => (tlv_str(v), String::new()),
    }
}

/// Entity types whose fields are TLV-encoded.
trait TlvEntity: Default {
    fn write(&self, w: &mut TlvWriter<'_>);
    /// Applies one field; returns false for a tag (or value shape) this reader does not know.
    fn apply(&mut self, tag: u16, v: &[u8]) -> bool;

    fn read(var: &[u8], stats: &mut DecodeStats) -> Result<Self, RecordError> {
        let mut e = Self::default();
        for item in tlvs(var) {
            let (tag, v) = item?;
            if !e.apply(tag, v) {
                stats.unknown_tags += 1;
            }
        }
        Ok(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// How a metadata record relates to what came before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaOp {
    /// Part of the snapshot written at the start of every file.
    Snapshot,
    /// The entity appeared or changed.
    Upsert,
    /// The entity went away.
    Delete,
    /// An op this reader does not know.
    Unknown(u8),
}

impl From<u8> for MetaOp {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Snapshot,
            2 => Self::Upsert,
            3 => Self::Delete,
            o => Self::Unknown(o),
        }
    }
}
impl From<MetaOp> for u8 {
    fn from(v: MetaOp) -> u8 {
        match v {
            MetaOp::Snapshot => 1,
            MetaOp::Upsert => 2,
            MetaOp::Delete => 3,
            MetaOp::Unknown(o) => o,
        }
    }
}

/// A timestamped metadata entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaRecord {
    /// Wall-clock time of the observation, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Snapshot entry, change or deletion.
    pub op: MetaOp,
    /// What is described.
    pub entity: Entity,
}

/// The thing a metadata record describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entity {
    /// The node the recorder runs on.
    Node(NodeMeta),
    /// A network interface (typically the host side of a pod's veth).
    Interface(InterfaceMeta),
    /// A pod.
    Pod(PodMeta),
    /// A container (a cgroup).
    Container(ContainerMeta),
    /// A Kubernetes service.
    Service(ServiceMeta),
    /// An entity kind this reader does not know (its fields were skipped).
    Unknown(u8),
}

/// Node description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMeta {
    /// Node name (Kubernetes node name or host name).
    pub name: String,
    /// Kernel release.
    pub kernel: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
}

/// Interface description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceMeta {
    /// Interface index in its namespace.
    pub ifindex: u32,
    /// Inode of the network namespace the interface is in.
    pub netns: Option<u32>,
    /// Interface name.
    pub name: String,
    /// Index of the Interface Description Block in this file, if packets are captured on it.
    pub pcapng_id: Option<u32>,
    /// Peer interface index (veth).
    pub peer_ifindex: Option<u32>,
    /// Network namespace inode of the peer (the pod's namespace for a pod veth).
    pub peer_netns: Option<u32>,
    /// Pod the interface belongs to, by uid.
    pub pod_uid: Option<String>,
    /// Addresses.
    pub addrs: Vec<IpAddr>,
}

/// Pod description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// Pod uid.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Node it is scheduled on.
    pub node: Option<String>,
    /// Pod IPs.
    pub ips: Vec<IpAddr>,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Owning workload kind (Deployment, StatefulSet, DaemonSet, Job, CronJob, ...).
    pub workload_kind: Option<String>,
    /// Owning workload name.
    pub workload_name: Option<String>,
    /// Uses the host's network namespace.
    pub host_network: bool,
    /// Network namespace inode, when the node knows it.
    pub netns: Option<u32>,
}

/// Container description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// Runtime container id (hex).
    pub id: String,
    /// Container runtime (containerd, cri-o, docker).
    pub runtime: Option<String>,
    /// Container name in the pod spec.
    pub name: Option<String>,
    /// Pod uid.
    pub pod_uid: Option<String>,
    /// cgroup v2 id (inode of the cgroup directory).
    pub cgroup_id: Option<u64>,
    /// cgroup path.
    pub cgroup_path: Option<String>,
}

/// Service description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMeta {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Cluster IPs.
    pub cluster_ips: Vec<IpAddr>,
    /// Ports as (IP protocol number, port).
    pub ports: Vec<(u8, u16)>,
}

mod tag {
    pub(super) const NAME: u16 = 1;
    pub(super) const NAMESPACE: u16 = 2;
    pub(super) const UID: u16 = 3;
    pub(super) const NODE: u16 = 4;
    pub(super) const IP: u16 = 5;
    pub(super) const LABEL: u16 = 6;
    pub(super) const WORKLOAD_KIND: u16 = 7;
    pub(super) const WORKLOAD_NAME: u16 = 8;
    pub(super) const HOST_NETWORK: u16 = 9;
    pub(super) const NETNS: u16 = 10;
    pub(super) const IFINDEX: u16 = 11;
    pub(super) const PCAPNG_ID: u16 = 12;
    pub(super) const PEER_IFINDEX: u16 = 13;
    pub(super) const PEER_NETNS: u16 = 14;
    pub(super) const POD_UID: u16 = 15;
    pub(super) const CONTAINER_ID: u16 = 16;
    pub(super) const RUNTIME: u16 = 17;
    pub(super) const CGROUP_ID: u16 = 18;
    pub(super) const CGROUP_PATH: u16 = 19;
    pub(super) const PORT: u16 = 20;
    pub(super) const KERNEL: u16 = 21;
    pub(super) const BOOT_ID: u16 = 22;
    pub(super) const HOSTNAME: u16 = 23;
    pub(super) const RECORDER: u16 = 24;
    pub(super) const BOOT_TIME: u16 = 25;
    pub(super) const FRAME_SIZE: u16 = 26;
    pub(super) const PREVIOUS: u16 = 27;
}

impl TlvEntity for NodeMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::NAME, &self.name);
        w.opt_str(tag::KERNEL, self.kernel.as_deref());
        w.opt_str(tag::BOOT_ID, self.boot_id.as_deref());
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::NAME => self.name = tlv_str(v),
            tag::KERNEL => self.kernel = Some(tlv_str(v)),
            tag::BOOT_ID => self.boot_id = Some(tlv_str(v)),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for InterfaceMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.u32(tag::IFINDEX, self.ifindex);
        w.opt_u32(tag::NETNS, self.netns);
        w.str(tag::NAME, &self.name);
        w.opt_u32(tag::PCAPNG_ID, self.pcapng_id);
        w.opt_u32(tag::PEER_IFINDEX, self.peer_ifindex);
        w.opt_u32(tag::PEER_NETNS, self.peer_netns);
        w.opt_str(tag::POD_UID, self.pod_uid.as_deref());
        for a in &self.addrs {
            w.ip(tag::IP, a);
        }
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::IFINDEX => return tlv_u32(v).map(|x| self.ifindex = x).is_some(),
            tag::NETNS => return tlv_u32(v).map(|x| self.netns = Some(x)).is_some(),
            tag::NAME => self.name = tlv_str(v),
            tag::PCAPNG_ID => return tlv_u32(v).map(|x| self.pcapng_id = Some(x)).is_some(),
            tag::PEER_IFINDEX => return tlv_u32(v).map(|x| self.peer_ifindex = Some(x)).is_some(),
            tag::PEER_NETNS => return tlv_u32(v).map(|x| self.peer_netns = Some(x)).is_some(),
            tag::POD_UID => self.pod_uid = Some(tlv_str(v)),
            tag::IP => return tlv_ip(v).map(|a| self.addrs.push(a)).is_some(),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for PodMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::UID, &self.uid);
        w.str(tag::NAMESPACE, &self.namespace);
        w.str(tag::NAME, &self.name);
        w.opt_str(tag::NODE, self.node.as_deref());
        for a in &self.ips {
            w.ip(tag::IP, a);
        }
        for (k, v) in &self.labels {
            w.pair(tag::LABEL, k, v);
        }
        w.opt_str(tag::WORKLOAD_KIND, self.workload_kind.as_deref());
        w.opt_str(tag::WORKLOAD_NAME, self.workload_name.as_deref());
        if self.host_network {
            w.bytes(tag::HOST_NETWORK, &[1]);
        }
        w.opt_u32(tag::NETNS, self.netns);
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::UID => self.uid = tlv_str(v),
            tag::NAMESPACE => self.namespace = tlv_str(v),
            tag::NAME => self.name = tlv_str(v),
            tag::NODE => self.node = Some(tlv_str(v)),
            tag::IP => return tlv_ip(v).map(|a| self.ips.push(a)).is_some(),
            tag::LABEL => self.labels.push(tlv_pair(v)),
            tag::WORKLOAD_KIND => self.workload_kind = Some(tlv_str(v)),
            tag::WORKLOAD_NAME => self.workload_name = Some(tlv_str(v)),
            tag::HOST_NETWORK => self.host_network = v.first() == Some(&1),
            tag::NETNS => return tlv_u32(v).map(|x| self.netns = Some(x)).is_some(),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for ContainerMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::CONTAINER_ID, &self.id);
        w.opt_str(tag::RUNTIME, self.runtime.as_deref());
        w.opt_str(tag::NAME, self.name.as_deref());
        w.opt_str(tag::POD_UID, self.pod_uid.as_deref());
        w.opt_u64(tag::CGROUP_ID, self.cgroup_id);
        w.opt_str(tag::CGROUP_PATH, self.cgroup_path.as_deref());
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::CONTAINER_ID => self.id = tlv_str(v),
            tag::RUNTIME => self.runtime = Some(tlv_str(v)),
            tag::NAME => self.name = Some(tlv_str(v)),
            tag::POD_UID => self.pod_uid = Some(tlv_str(v)),
            tag::CGROUP_ID => return tlv_u64(v).map(|x| self.cgroup_id = Some(x)).is_some(),
            tag::CGROUP_PATH => self.cgroup_path = Some(tlv_str(v)),
            _ => return false,
        }
        true
    }
}

impl TlvEntity for ServiceMeta {
    fn write(&self, w: &mut TlvWriter<'_>) {
        w.str(tag::NAMESPACE, &self.namespace);
        w.str(tag::NAME, &self.name);
        for a in &self.cluster_ips {
            w.ip(tag::IP, a);
        }
        for (proto, port) in &self.ports {
            let p = port.to_le_bytes();
            w.bytes(tag::PORT, &[*proto, p[0], p[1]]);
        }
    }
    fn apply(&mut self, t: u16, v: &[u8]) -> bool {
        match t {
            tag::NAMESPACE => self.namespace = tlv_str(v),
            tag::NAME => self.name = tlv_str(v),
            tag::IP => return tlv_ip(v).map(|a| self.cluster_ips.push(a)).is_some(),
            tag::PORT if v.len() == 3 => self.ports.push((v[0], le16(&v[1..3]))),
            _ => return false,
        }
        true
    }
}

const META_FIXED_LEN: usize = 12;

impl Entity {
    fn kind_code(&self) -> u8 {
        match self {
            Entity::Node(_) => 1,
            Entity::Interface(_) => 2,
            Entity::Pod(_) => 3,
            Entity::Container(_) => 4,
            Entity::Service(_) => 5,
            Entity::Unknown(k) => *k,
        }
    }
}

impl MetaRecord {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::Metadata, META_FIXED_LEN as u16);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        out.push(self.op.into());
        out.push(self.entity.kind_code());
        out.extend_from_slice(&0u16.to_le_bytes());
        let mut w = TlvWriter { out };
        match &self.entity {
            Entity::Node(e) => e.write(&mut w),
            Entity::Interface(e) => e.write(&mut w),
            Entity::Pod(e) => e.write(&mut w),
            Entity::Container(e) => e.write(&mut w),
            Entity::Service(e) => e.write(&mut w),
            Entity::Unknown(_) => {}
        }
        finish_record(out, start);
    }

    fn decode(f: &[u8], var: &[u8], stats: &mut DecodeStats) -> Result<Self, RecordError> {
        if f.len() < META_FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::Metadata,
                len: f.len(),
                min: META_FIXED_LEN,
            });
        }
        let entity = match f[9] {
            1 => Entity::Node(NodeMeta::read(var, stats)?),
            2 => Entity::Interface(InterfaceMeta::read(var, stats)?),
            3 => Entity::Pod(PodMeta::read(var, stats)?),
            4 => Entity::Container(ContainerMeta::read(var, stats)?),
            5 => Entity::Service(ServiceMeta::read(var, stats)?),
            k => {
                stats.unknown_tags += tlvs(var).count() as u64;
                Entity::Unknown(k)
            }
        };
        Ok(MetaRecord {
            ts_ns: le64(&f[0..8]),
            op: f[8].into(),
            entity,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// File information

/// Describes the file: which node wrote it, when, and where it sits in the rotation sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// When the file was started, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Sequence number in the recorder's rotation (0-based).
    pub sequence: u64,
    /// Node name.
    pub node: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Recorder name and version.
    pub recorder: Option<String>,
    /// Wall-clock time of boot, to relate kernel monotonic stamps to wall time.
    pub boot_time_ns: Option<u64>,
    /// Bound on the uncompressed size of one compressed frame, as configured.
    pub frame_size: Option<u32>,
    /// Name of the previous file in the sequence.
    pub previous: Option<String>,
}

const FILEINFO_FIXED_LEN: usize = 16;

impl FileInfo {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::FileInfo, FILEINFO_FIXED_LEN as u16);
        out.extend_from_slice(&self.start_ns.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        let mut w = TlvWriter { out };
        w.str(tag::NODE, &self.node);
        w.opt_str(tag::HOSTNAME, self.hostname.as_deref());
        w.opt_str(tag::RECORDER, self.recorder.as_deref());
        w.opt_u64(tag::BOOT_TIME, self.boot_time_ns);
        w.opt_u32(tag::FRAME_SIZE, self.frame_size);
        w.opt_str(tag::PREVIOUS, self.previous.as_deref());
        finish_record(out, start);
    }

    fn decode(f: &[u8], var: &[u8], stats: &mut DecodeStats) -> Result<Self, RecordError> {
        if f.len() < FILEINFO_FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::FileInfo,
                len: f.len(),
                min: FILEINFO_FIXED_LEN,
            });
        }
        let mut fi = FileInfo {
            start_ns: le64(&f[0..8]),
            sequence: le64(&f[8..16]),
            ..Default::default()
        };
        for item in tlvs(var) {
            let (t, v) = item?;
            let known = match t {
                tag::NODE => {
                    fi.node = tlv_str(v);
                    true
                }
                tag::HOSTNAME => {
                    fi.hostname = Some(tlv_str(v));
                    true
                }
                tag::RECORDER => {
                    fi.recorder = Some(tlv_str(v));
                    true
                }
                tag::BOOT_TIME => tlv_u64(v).map(|x| fi.boot_time_ns = Some(x)).is_some(),
                tag::FRAME_SIZE => tlv_u32(v).map(|x| fi.frame_size = Some(x)).is_some(),
                tag::PREVIOUS => {
                    fi.previous = Some(tlv_str(v));
                    true
                }
                _ => false,
            };
            if !known {
                stats.unknown_tags += 1;
            }
        }
        Ok(fi)
    }
}

// ---------------------------------------------------------------------------------------------
// Recorder statistics

/// One counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Counter name, e.g. `ringbuf_reserve_failed` (documented by the recorder).
    pub name: String,
    /// CPU the counter belongs to, or `None` for a total.
    pub cpu: Option<u32>,
    /// Value since the recorder started (monotonic).
    pub value: u64,
}

/// A set of recorder counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsRecord {
    /// Time of the reading, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Counters.
    pub counters: Vec<Counter>,
}

const STATS_FIXED_LEN: usize = 8;
const NO_CPU: u32 = u32::MAX;

impl StatsRecord {
    /// Appends the encoded record to `out`. Names are cut to 255 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = begin_record(out, RecordType::Stats, STATS_FIXED_LEN as u16);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        for c in &self.counters {
            let mut end = c.name.len().min(255);
            while !c.name.is_char_boundary(end) {
                end -= 1;
            }
            out.push(end as u8);
            out.extend_from_slice(&c.name.as_bytes()[..end]);
            out.extend_from_slice(&c.cpu.unwrap_or(NO_CPU).to_le_bytes());
            out.extend_from_slice(&c.value.to_le_bytes());
        }
        finish_record(out, start);
    }

    fn decode(f: &[u8], mut var: &[u8]) -> Result<Self, RecordError> {
        if f.len() < STATS_FIXED_LEN {
            return Err(RecordError::FixedTooShort {
                rtype: RecordType::Stats,
                len: f.len(),
                min: STATS_FIXED_LEN,
            });
        }
        let mut s = StatsRecord {
            ts_ns: le64(&f[0..8]),
            counters: Vec::new(),
        };
        while !var.is_empty() {
            let n = usize::from(var[0]);
            if var.len() < 1 + n + 12 {
                return Err(RecordError::BadLength {
                    what: "stats counter",
                    len: n,
                });
            }
            let name = tlv_str(&var[1..1 + n]);
            let cpu = le32(&var[1 + n..5 + n]);
            let value = le64(&var[5 + n..13 + n]);
            s.counters.push(Counter {
                name,
                cpu: (cpu != NO_CPU).then_some(cpu),
                value,
            });
            var = &var[13 + n..];
        }
        Ok(s)
    }
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
mod tests {
    use super::*;

    fn sample_socket() -> SocketEvent<'static> {
        SocketEvent {
            ts_ns: 0x0102_0304_0506_0708,
            kind: SocketEventKind::Data,
            direction: DataDirection::Send,
            ip_proto: 6,
            pid: 4242,
            tid: 4243,
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
            cgroup_id: 77,
            netns: 4026531840,
            cookie: 0xAABB,
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:80".parse().unwrap(),
            old_state: 0,
            new_state: 0,
            hook: 3,
            stream_offset: 0,
            orig_len: 100,
            payload: b"GET / HTTP/1.1\r\n",
        }
    }

    #[test]
    fn socket_event_literal_layout() {
        let mut b = Vec::new();
        sample_socket().encode(&mut b);
        // Header.
        assert_eq!(&b[0..4], b"JUNO");
        assert_eq!(b[4], 1, "major");
        assert_eq!(b[5], 0, "minor");
        assert_eq!(&b[6..8], &[2, 0], "type = socket");
        assert_eq!(&b[8..10], &[116, 0], "fixed_len");
        assert_eq!(&b[12..16], &[116 + 16, 0, 0, 0], "body_len");
        let f = &b[16..];
        assert_eq!(&f[0..8], &[8, 7, 6, 5, 4, 3, 2, 1], "ts little-endian");
        assert_eq!(f[8], 4, "kind = data");
        assert_eq!(f[9], 1, "direction = send");
        assert_eq!(f[10], 6, "tcp");
        assert_eq!(f[11], 4, "ipv4");
        assert_eq!(&f[12..16], &4242u32.to_le_bytes());
        assert_eq!(&f[44..48], &[10, 0, 0, 1], "local addr");
        assert_eq!(&f[60..64], &[10, 0, 0, 2], "remote addr");
        assert_eq!(&f[76..78], &40000u16.to_le_bytes());
        assert_eq!(&f[78..80], &80u16.to_le_bytes());
        assert_eq!(&f[92..96], &100u32.to_le_bytes(), "orig_len");
        assert_eq!(&f[96..100], &16u32.to_le_bytes(), "cap_len");
        assert_eq!(&f[100..104], b"curl");
        assert_eq!(&f[116..], b"GET / HTTP/1.1\r\n");
        assert_eq!(b.len(), sample_socket().encoded_len());
    }

    #[test]
    fn socket_event_round_trip_and_padding() {
        let ev = sample_socket();
        let mut b = Vec::new();
        ev.encode(&mut b);
        b.extend_from_slice(&[0, 0, 0]); // pcapng padding after the record
        let mut st = DecodeStats::default();
        assert_eq!(
            decode(&b, &mut st).unwrap(),
            Decoded::Record(Record::Socket(ev))
        );
        assert_eq!(st, DecodeStats::default());
    }

    #[test]
    fn newer_minor_with_longer_fixed_part_is_read_and_counted() {
        let ev = sample_socket();
        let mut b = Vec::new();
        ev.encode(&mut b);
        // Pretend a v1.3 writer appended 8 bytes to the fixed part.
        let mut newer = b[..16 + 116].to_vec();
        newer.extend_from_slice(&[0xEE; 8]);
        newer.extend_from_slice(ev.payload);
        newer[5] = 3;
        newer[8..10].copy_from_slice(&124u16.to_le_bytes());
        let body = (newer.len() - 16) as u32;
        newer[12..16].copy_from_slice(&body.to_le_bytes());
        let mut st = DecodeStats::default();
        assert_eq!(
            decode(&newer, &mut st).unwrap(),
            Decoded::Record(Record::Socket(ev))
        );
        assert_eq!(st.newer_minor, 1);
    }

    #[test]
    fn other_major_and_unknown_type_are_skipped() {
        let mut b = Vec::new();
        sample_socket().encode(&mut b);
        let mut st = DecodeStats::default();
        let mut m2 = b.clone();
        m2[4] = 2;
        assert_eq!(
            decode(&m2, &mut st).unwrap(),
            Decoded::Skipped(RecordType::Socket)
        );
        let mut t = b.clone();
        t[6] = 99;
        assert_eq!(
            decode(&t, &mut st).unwrap(),
            Decoded::Skipped(RecordType::Unknown(99))
        );
        assert_eq!(st.other_major, 1);
        assert_eq!(st.unknown_type, 1);
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let mut b = Vec::new();
        sample_socket().encode(&mut b);
        let mut st = DecodeStats::default();
        for cut in 0..b.len() {
            assert!(decode(&b[..cut], &mut st).is_err(), "cut {cut}");
        }
        let mut lie = b.clone();
        lie[16 + 96..16 + 100].copy_from_slice(&u32::MAX.to_le_bytes()); // cap_len
        assert!(matches!(
            decode(&lie, &mut st),
            Err(RecordError::BadLength { .. })
        ));
        let mut fx = b.clone();
        fx[8..10].copy_from_slice(&1000u16.to_le_bytes()); // fixed_len > body_len
        assert!(decode(&fx, &mut st).is_err());
        let mut magic = b;
        magic[0] = b'X';
        assert_eq!(decode(&magic, &mut st), Err(RecordError::BadMagic));
    }

    #[test]
    fn metadata_tlv_literal_and_unknown_tags() {
        let rec = MetaRecord {
            ts_ns: 5,
            op: MetaOp::Upsert,
            entity: Entity::Node(NodeMeta {
                name: "n1".into(),
                kernel: None,
                boot_id: None,
            }),
        };
        let mut b = Vec::new();
        rec.encode(&mut b);
        assert_eq!(&b[6..8], &[3, 0], "type = metadata");
        assert_eq!(&b[16..24], &5u64.to_le_bytes());
        assert_eq!(b[24], 2, "op = upsert");
        assert_eq!(b[25], 1, "entity = node");
        assert_eq!(
            &b[28..],
            &[1, 0, 2, 0, b'n', b'1'],
            "tag NAME, len 2, value"
        );
        // Append an unknown tag 999.
        b.extend_from_slice(&[0xE7, 0x03, 1, 0, 0x55]);
        let body = (b.len() - 16) as u32;
        b[12..16].copy_from_slice(&body.to_le_bytes());
        let mut st = DecodeStats::default();
        assert_eq!(
            decode(&b, &mut st).unwrap(),
            Decoded::Record(Record::Metadata(rec))
        );
        assert_eq!(st.unknown_tags, 1);
    }

    #[test]
    fn stats_record_round_trip() {
        let s = StatsRecord {
            ts_ns: 9,
            counters: vec![
                Counter {
                    name: "ringbuf_reserve_failed".into(),
                    cpu: Some(1),
                    value: 3,
                },
                Counter {
                    name: "queue_dropped".into(),
                    cpu: None,
                    value: 0,
                },
            ],
        };
        let mut b = Vec::new();
        s.encode(&mut b);
        let mut st = DecodeStats::default();
        assert_eq!(
            decode(&b, &mut st).unwrap(),
            Decoded::Record(Record::Stats(s))
        );
    }
}
