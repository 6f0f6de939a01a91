//! Socket events: what processes did on TCP sockets, with up to a payload's worth of bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

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
    /// Plaintext a process read or wrote through a TLS library on this socket (format 1.2):
    /// a byte stream of its own per direction, beside the socket's (ciphertext) `Data`.
    TlsData,
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
            8 => Self::TlsData,
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
            SocketEventKind::TlsData => 8,
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

    pub(super) fn decode(f: &'a [u8], var: &'a [u8]) -> Result<Self, RecordError> {
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
