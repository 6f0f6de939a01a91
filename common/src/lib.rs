//! Types shared by Juno's eBPF programs (`recorder-ebpf`) and the recorder (`recorder`).
//!
//! Everything here is `#[repr(C)]`, `Copy`, with explicit padding fields and no `bool`s, so
//! that both sides agree on every byte. These are the *kernel ↔ recorder* types only: the
//! archive never stores them as they are (the recorder converts them to the explicit
//! encoding of `juno-archive`).
#![no_std]

/// Largest socket payload copied per syscall.
pub const MAX_PAYLOAD: usize = 8 * 1024;
/// Largest packet prefix copied per packet.
pub const MAX_SNAPLEN: usize = 16 * 1024;

/// Socket event kinds (same numbering as the archive's socket event kinds).
pub mod kind {
    /// The process connected (`connect` returned 0 or EINPROGRESS).
    pub const CONNECT: u8 = 1;
    /// The process accepted a connection.
    pub const ACCEPT: u8 = 2;
    /// The process closed the socket.
    pub const CLOSE: u8 = 3;
    /// The process sent or received bytes.
    pub const DATA: u8 = 4;
    /// TCP state transition (`sock/inet_sock_set_state`).
    pub const STATE: u8 = 5;
    /// A connection that existed when the recorder started (found in /proc).
    pub const EXISTING: u8 = 6;
    /// Kernel → recorder only (never in an archive): the addresses and network namespace of
    /// a socket, sent before its first data event when that event is not a connect or
    /// accept. Data events of the `sock` hooks carry no addresses (`family` 0): the recorder
    /// fills them in from the socket's first event.
    pub const OPEN: u8 = 7;
    /// Plaintext a process read or wrote through a TLS library (uprobes on OpenSSL's
    /// `SSL_read`/`SSL_write` and their `_ex` forms, and on Go's `crypto/tls`), on the socket
    /// the library used: its own byte stream per direction, beside the socket's ciphertext
    /// stream.
    pub const TLS_DATA: u8 = 8;
}

/// Direction of data events (same numbering as the archive).
pub mod dir {
    /// Not a data event.
    pub const NONE: u8 = 0;
    /// The process sent.
    pub const SEND: u8 = 1;
    /// The process received.
    pub const RECV: u8 = 2;
}

/// Which hook produced a socket event (recorded in the archive's `hook` field).
pub mod hook {
    /// read(2)
    pub const READ: u16 = 1;
    /// write(2)
    pub const WRITE: u16 = 2;
    /// sendto(2) and send(2)
    pub const SENDTO: u16 = 3;
    /// recvfrom(2) and recv(2)
    pub const RECVFROM: u16 = 4;
    /// readv(2)
    pub const READV: u16 = 5;
    /// writev(2)
    pub const WRITEV: u16 = 6;
    /// sendmsg(2)
    pub const SENDMSG: u16 = 7;
    /// recvmsg(2)
    pub const RECVMSG: u16 = 8;
    /// connect(2)
    pub const CONNECT: u16 = 9;
    /// accept(2)
    pub const ACCEPT: u16 = 10;
    /// accept4(2)
    pub const ACCEPT4: u16 = 11;
    /// close(2)
    pub const CLOSE: u16 = 12;
    /// `sock/inet_sock_set_state`
    pub const SET_STATE: u16 = 13;
    /// Found in /proc at start.
    pub const PROC: u16 = 14;
    /// preadv(2), preadv2(2)
    pub const PREADV: u16 = 15;
    /// pwritev(2), pwritev2(2)
    pub const PWRITEV: u16 = 16;
    /// `sock/sock_send_length` in a call whose user buffer is not recoverable (sendfile,
    /// splice, io_uring, sendmmsg, kernel users): the length only.
    pub const SOCK_SEND: u16 = 17;
    /// `sock/sock_recv_length` likewise (io_uring, recvmmsg, kernel users).
    pub const SOCK_RECV: u16 = 18;
    /// OpenSSL `SSL_write` (and BoringSSL's, same symbol)
    pub const SSL_WRITE: u16 = 19;
    /// OpenSSL `SSL_read`
    pub const SSL_READ: u16 = 20;
    /// OpenSSL `SSL_write_ex`
    pub const SSL_WRITE_EX: u16 = 21;
    /// OpenSSL `SSL_read_ex`
    pub const SSL_READ_EX: u16 = 22;
    /// Go `crypto/tls.(*Conn).Write`
    pub const GO_TLS_WRITE: u16 = 23;
    /// Go `crypto/tls.(*Conn).Read`
    pub const GO_TLS_READ: u16 = 24;
}

/// Packet direction on the interface.
pub mod pkt_dir {
    /// Received by the interface (tc ingress).
    pub const INGRESS: u8 = 0;
    /// Sent by the interface (tc egress).
    pub const EGRESS: u8 = 1;
}

/// Per-CPU counters kept by the eBPF programs (indices into the `COUNTERS` array).
pub mod counter {
    /// Packets seen by the tc programs.
    pub const PACKETS_SEEN: u32 = 0;
    /// Packets written to the ring buffer.
    pub const PACKETS_OUT: u32 = 1;
    /// Packets skipped by the filters.
    pub const PACKETS_FILTERED: u32 = 2;
    /// Packets lost: the packet ring buffer was full.
    pub const PACKETS_RINGBUF_FULL: u32 = 3;
    /// Socket events written.
    pub const SOCK_OUT: u32 = 4;
    /// Socket events lost: the socket ring buffer was full.
    pub const SOCK_RINGBUF_FULL: u32 = 5;
    /// Socket events skipped by the filters.
    pub const SOCK_FILTERED: u32 = 6;
    /// Syscall exits without their entry (the pending map was full or the entry missed).
    pub const PENDING_MISSING: u32 = 7;
    /// Payload bytes that could not be read from user memory.
    pub const PAYLOAD_READ_FAILED: u32 = 8;
    /// Data events whose user buffer is not recoverable (sendfile, splice, io_uring, mmsg,
    /// a socket used inside another syscall): their length is reported, no payload.
    pub const PAYLOAD_UNAVAILABLE: u32 = 9;
    /// Packets cut to their headers because the socket events carry their payload.
    pub const PACKETS_HEADERS_ONLY: u32 = 10;
    /// TLS library calls whose plaintext was not recorded because no socket is tied to them
    /// (no system call of the call or of an earlier one on the same `SSL` object reached a
    /// socket: a memory BIO, or a socket filtered out; for Go, a `*tls.Conn` over something
    /// else than a `*net.TCPConn`, or in a process whose itab address the recorder has not
    /// handed over yet).
    pub const TLS_NO_SOCKET: u32 = 11;
    /// TLS library calls that returned without their entry (the calls map was full).
    pub const TLS_NO_ENTRY: u32 = 12;
    /// Socket data events inside a TLS library call whose ciphertext was not copied (the
    /// plaintext is recorded instead).
    pub const TLS_CIPHERTEXT_SKIPPED: u32 = 13;
    /// TLS library calls whose plaintext was not recorded because the socket tied to them
    /// has no state any more: it closed before the call returned (a reset arrived while
    /// the call was sending, or before it read what the library had buffered), or its
    /// state was evicted; for Go, also a socket opened before the recorder started that
    /// has moved no byte since.
    pub const TLS_SOCKET_GONE: u32 = 14;
    /// Number of counters.
    pub const COUNT: u32 = 15;

    /// Names, for logs and the archive.
    pub const NAMES: [&str; COUNT as usize] = [
        "packets_seen",
        "packets_out",
        "packets_filtered",
        "packets_ringbuf_full",
        "socket_events_out",
        "socket_ringbuf_full",
        "socket_events_filtered",
        "syscall_exit_without_entry",
        "payload_read_failed",
        "payload_unavailable",
        "packets_headers_only",
        "tls_no_socket",
        "tls_no_entry",
        "tls_ciphertext_skipped",
        "tls_socket_gone",
    ];
}

/// Offsets of kernel structure members, read from the running kernel's BTF by the recorder
/// and handed to the programs (which have no CO-RE relocations). `u32::MAX`: unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// `task_struct.files`
    pub task_files: u32,
    /// `files_struct.fdt`
    pub files_fdt: u32,
    /// `fdtable.fd`
    pub fdt_fd: u32,
    /// `fdtable.max_fds`
    pub fdt_max_fds: u32,
    /// `file.private_data`
    pub file_private_data: u32,
    /// `file.f_inode`
    pub file_inode: u32,
    /// `inode.i_mode`
    pub inode_mode: u32,
    /// `socket.sk`
    pub socket_sk: u32,
    /// `sock.sk_protocol` (u16)
    pub sk_protocol: u32,
    /// `sock.sk_type` (u16)
    pub sk_type: u32,
    /// `sock_common.skc_family` (u16), from the start of `struct sock`
    pub skc_family: u32,
    /// `sock_common.skc_num`: local port, host order (u16)
    pub skc_num: u32,
    /// `sock_common.skc_dport`: remote port, network order (u16)
    pub skc_dport: u32,
    /// `sock_common.skc_daddr` (IPv4, 4 bytes)
    pub skc_daddr: u32,
    /// `sock_common.skc_rcv_saddr` (IPv4, 4 bytes)
    pub skc_rcv_saddr: u32,
    /// `sock_common.skc_v6_daddr` (16 bytes)
    pub skc_v6_daddr: u32,
    /// `sock_common.skc_v6_rcv_saddr` (16 bytes)
    pub skc_v6_rcv_saddr: u32,
    /// `sock_common.skc_net` (pointer to `struct net`)
    pub skc_net: u32,
    /// `net.ns.inum` (u32)
    pub net_inum: u32,
    /// Explicit padding.
    pub _pad: u32,
}

impl Offsets {
    /// All offsets unknown.
    pub const UNKNOWN: Offsets = Offsets {
        task_files: u32::MAX,
        files_fdt: u32::MAX,
        fdt_fd: u32::MAX,
        fdt_max_fds: u32::MAX,
        file_private_data: u32::MAX,
        file_inode: u32::MAX,
        inode_mode: u32::MAX,
        socket_sk: u32::MAX,
        sk_protocol: u32::MAX,
        sk_type: u32::MAX,
        skc_family: u32::MAX,
        skc_num: u32::MAX,
        skc_dport: u32::MAX,
        skc_daddr: u32::MAX,
        skc_rcv_saddr: u32::MAX,
        skc_v6_daddr: u32::MAX,
        skc_v6_rcv_saddr: u32::MAX,
        skc_net: u32::MAX,
        net_inum: u32::MAX,
        _pad: 0,
    };
}

/// Feature bits of [`Config::flags`].
pub mod flags {
    /// Copy packets in the tc programs.
    pub const PACKETS: u32 = 1;
    /// Report socket events from the syscall tracepoints.
    pub const SOCKETS: u32 = 2;
    /// Only processes whose cgroup id is in `CGROUPS` (else all).
    pub const FILTER_CGROUPS: u32 = 4;
    /// Only traffic with a port in `PORTS` (else all).
    pub const FILTER_PORTS: u32 = 8;
    /// Only traffic with an address in `CIDRS_V4`/`CIDRS_V6` (else all).
    pub const FILTER_CIDRS: u32 = 16;
    /// Socket data comes from `sock/sock_send_length` and `sock/sock_recv_length` (raw
    /// tracepoints, the user buffer found through the syscall's saved registers), and
    /// connect/accept from `sock/inet_sock_set_state` and the socket's first data; without
    /// it, from the syscall tracepoints.
    pub const SOCK_HOOKS: u32 = 32;
    /// Packets of a connection direction whose payload the socket events carry keep only
    /// their headers (with their length on the wire).
    pub const DEDUP: u32 = 64;
    /// TLS plaintext from the uprobes on TLS libraries (needs [`SOCK_HOOKS`]): system calls
    /// made inside a TLS library call carry the length of their ciphertext, not its bytes.
    pub const TLS: u32 = 128;
    /// Socket events without payload (needs [`SOCK_HOOKS`]): each socket's first data call
    /// sends its process, cgroup and addresses once (as its connect, accept or open event)
    /// and its later calls send nothing; the bytes are recorded from packets.
    pub const IDENTITY_ONLY: u32 = 256;
}

/// What the programs need to know, in the single entry of the `CONFIG` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// [`flags`] bits.
    pub flags: u32,
    /// Packet bytes copied, at most [`MAX_SNAPLEN`].
    pub snaplen: u32,
    /// Socket payload bytes copied per syscall, at most [`MAX_PAYLOAD`].
    pub payload_bytes: u32,
    /// The recorder's own process id: its syscalls are not reported.
    pub self_tgid: u32,
    /// Programs wake the reader only once a ring buffer holds this many bytes; below it the
    /// reader finds the data at its next timed poll. One wakeup per event would cost more
    /// than the event.
    pub wakeup_bytes: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Kernel structure offsets.
    pub offsets: Offsets,
}

/// Header of a packet record in the packet ring buffer; `cap_len` bytes of the frame follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHdr {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Interface index.
    pub ifindex: u32,
    /// Length of the frame.
    pub orig_len: u32,
    /// Bytes that follow.
    pub cap_len: u32,
    /// [`pkt_dir`].
    pub direction: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

/// Header of a socket event in the socket ring buffer; `cap_len` payload bytes follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockHdr {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Kernel address of the `struct sock`: the socket's identity while it lives.
    pub sk: u64,
    /// cgroup v2 id of the current task.
    pub cgroup_id: u64,
    /// Bytes already moved in this direction on this socket before this event.
    pub stream_offset: u64,
    /// Thread group id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Network namespace inode.
    pub netns: u32,
    /// Bytes moved by the syscall.
    pub orig_len: u32,
    /// Payload bytes that follow.
    pub cap_len: u32,
    /// [`kind`].
    pub kind: u8,
    /// [`dir`].
    pub direction: u8,
    /// 4 (AF_INET) or 6 (AF_INET6), as the archive numbers them.
    pub family: u8,
    /// Old TCP state (state events).
    pub old_state: u8,
    /// New TCP state (state events).
    pub new_state: u8,
    /// Explicit padding.
    pub _pad: u8,
    /// [`hook`].
    pub hook: u16,
    /// Local port.
    pub lport: u16,
    /// Remote port.
    pub rport: u16,
    /// Local address (IPv4 in the first 4 bytes).
    pub laddr: [u8; 16],
    /// Remote address.
    pub raddr: [u8; 16],
    /// Task name.
    pub comm: [u8; 16],
}

/// Per-interface counters kept by the tc programs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfStat {
    /// Unused (0): the recorder counts the packets it reads per interface itself.
    pub seen: u64,
    /// Of those, packets lost because the packet ring buffer was full.
    pub dropped: u64,
}

/// Explicit little-endian parsing of ring-buffer records (userspace needs no `unsafe` for it).
pub mod parse {
    use super::{PacketHdr, SockHdr};
    use core::mem::size_of;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }
    fn arr16(b: &[u8], at: usize) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[at..at + 16]);
        a
    }

    /// A packet record: header and the captured bytes (`None` if it is malformed).
    pub fn packet(b: &[u8]) -> Option<(PacketHdr, &[u8])> {
        if b.len() < size_of::<PacketHdr>() {
            return None;
        }
        let h = PacketHdr {
            ts_ns: u64_at(b, 0),
            ifindex: u32_at(b, 8),
            orig_len: u32_at(b, 12),
            cap_len: u32_at(b, 16),
            direction: b[20],
            _pad: [0; 3],
        };
        let data = b.get(size_of::<PacketHdr>()..size_of::<PacketHdr>() + h.cap_len as usize)?;
        Some((h, data))
    }

    /// A socket record: header and the payload (`None` if it is malformed).
    pub fn socket(b: &[u8]) -> Option<(SockHdr, &[u8])> {
        if b.len() < size_of::<SockHdr>() {
            return None;
        }
        let h = SockHdr {
            ts_ns: u64_at(b, 0),
            sk: u64_at(b, 8),
            cgroup_id: u64_at(b, 16),
            stream_offset: u64_at(b, 24),
            pid: u32_at(b, 32),
            tid: u32_at(b, 36),
            netns: u32_at(b, 40),
            orig_len: u32_at(b, 44),
            cap_len: u32_at(b, 48),
            kind: b[52],
            direction: b[53],
            family: b[54],
            old_state: b[55],
            new_state: b[56],
            _pad: 0,
            hook: u16_at(b, 58),
            lport: u16_at(b, 60),
            rport: u16_at(b, 62),
            laddr: arr16(b, 64),
            raddr: arr16(b, 80),
            comm: arr16(b, 96),
        };
        let payload = b.get(size_of::<SockHdr>()..size_of::<SockHdr>() + h.cap_len as usize)?;
        Some((h, payload))
    }
}

#[cfg(feature = "user")]
#[expect(
    unsafe_code,
    reason = "aya::Pod is an unsafe marker trait; these types are plain old data"
)]
mod pod {
    // SAFETY: repr(C), Copy, every field an integer or integer array, no implicit padding.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Offsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::IfStat {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn no_implicit_padding() {
        // Sums of field sizes: any padding the compiler inserted would show here.
        assert_eq!(size_of::<Offsets>(), 20 * 4);
        assert_eq!(size_of::<Config>(), 24 + size_of::<Offsets>());
        assert_eq!(size_of::<PacketHdr>(), 8 + 4 * 3 + 1 + 3);
        assert_eq!(size_of::<SockHdr>(), 8 * 4 + 4 * 5 + 6 + 2 + 2 + 2 + 16 * 3);
        assert_eq!(size_of::<SockHdr>() % 8, 0);
        assert_eq!(size_of::<PacketHdr>() % 8, 0);
    }

    /// The parser reads the fields where `repr(C)` puts them.
    #[test]
    fn parse_matches_layout() {
        let h = SockHdr {
            ts_ns: 1,
            sk: 2,
            cgroup_id: 3,
            stream_offset: 4,
            pid: 5,
            tid: 6,
            netns: 7,
            orig_len: 8,
            cap_len: 3,
            kind: 9,
            direction: 10,
            family: 11,
            old_state: 12,
            new_state: 13,
            _pad: 0,
            hook: 14,
            lport: 15,
            rport: 16,
            laddr: [17; 16],
            raddr: [18; 16],
            comm: [19; 16],
        };
        // Serialize field by field at the offsets a C compiler gives them.
        let mut b = [0u8; size_of::<SockHdr>() + 3];
        let put = |b: &mut [u8], at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, ts_ns),
            &1u64.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, sk),
            &2u64.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, cgroup_id),
            &3u64.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, stream_offset),
            &4u64.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, pid),
            &5u32.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, tid),
            &6u32.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, netns),
            &7u32.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, orig_len),
            &8u32.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, cap_len),
            &3u32.to_le_bytes(),
        );
        put(&mut b, core::mem::offset_of!(SockHdr, kind), &[9]);
        put(&mut b, core::mem::offset_of!(SockHdr, direction), &[10]);
        put(&mut b, core::mem::offset_of!(SockHdr, family), &[11]);
        put(&mut b, core::mem::offset_of!(SockHdr, old_state), &[12]);
        put(&mut b, core::mem::offset_of!(SockHdr, new_state), &[13]);
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, hook),
            &14u16.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, lport),
            &15u16.to_le_bytes(),
        );
        put(
            &mut b,
            core::mem::offset_of!(SockHdr, rport),
            &16u16.to_le_bytes(),
        );
        put(&mut b, core::mem::offset_of!(SockHdr, laddr), &[17; 16]);
        put(&mut b, core::mem::offset_of!(SockHdr, raddr), &[18; 16]);
        put(&mut b, core::mem::offset_of!(SockHdr, comm), &[19; 16]);
        put(&mut b, size_of::<SockHdr>(), b"abc");
        let (got, payload) = parse::socket(&b).unwrap();
        assert_eq!(got, h);
        assert_eq!(payload, b"abc");
        assert!(
            parse::socket(&b[..size_of::<SockHdr>() + 2]).is_none(),
            "payload shorter than cap_len"
        );
        let mut p = [0u8; size_of::<PacketHdr>() + 2];
        put(
            &mut p,
            core::mem::offset_of!(PacketHdr, ifindex),
            &42u32.to_le_bytes(),
        );
        put(
            &mut p,
            core::mem::offset_of!(PacketHdr, cap_len),
            &2u32.to_le_bytes(),
        );
        put(&mut p, core::mem::offset_of!(PacketHdr, direction), &[1]);
        let (ph, data) = parse::packet(&p).unwrap();
        assert_eq!(
            (ph.ifindex, ph.cap_len, ph.direction, data.len()),
            (42, 2, 1, 2)
        );
    }
}
