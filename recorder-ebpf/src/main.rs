//! Juno's eBPF programs.
//!
//! - `tc_ingress` / `tc_egress` (tc classifiers on the host side of pod veths): copy up to
//!   `snaplen` bytes of every packet into the `PACKETS` ring buffer. They never change a
//!   packet's fate: they return `TC_ACT_UNSPEC` (TCX_NEXT), so the next program or the default
//!   action decides, and programs others installed keep working.
//! - `sock/sock_send_length` and `sock/sock_recv_length` (raw tracepoints, Linux 6.3 and
//!   later; the default where they exist): fire inside `sock_sendmsg`/`sock_recvmsg` with the
//!   socket, after the bytes moved. On TCP sockets they report the bytes a process moved (up
//!   to `payload_bytes`, read from the user buffer of the syscall in flight, found through its
//!   saved registers) with pid, tid, comm, cgroup and netns, into the `SOCKETS` ring buffer.
//!   Only sockets pay: no program runs in any other syscall, and no task takes the syscall
//!   tracing slow path. A call whose buffer is not the syscall's (sendfile, splice, io_uring,
//!   sendmmsg/recvmmsg, kernel users, or a descriptor that is not this socket) is reported
//!   with its length and no payload, and counted.
//! - syscall tracepoints (read/write, send/recv, readv/writev, sendmsg/recvmsg, connect,
//!   accept, close): the same reports on kernels without those tracepoints (or when asked
//!   for), plus the socket's lifecycle. Whether a file descriptor is a TCP socket, and its
//!   addresses, come from walking task → files → fdtable → file → socket → sock with offsets
//!   the recorder read from the running kernel's BTF (these programs have no CO-RE
//!   relocations).
//! - `sock/inet_sock_set_state`: TCP state transitions. It often runs in softirq context, so
//!   its pid is whoever ran; the recorder attributes sockets from the data events. With the
//!   `sock_*_length` hooks it also notes which sockets were connected (`SYN_SENT`) or
//!   accepted (`SYN_RECV → ESTABLISHED`): the socket's first data event, in its process,
//!   announces it with a connect or accept event.
//! - Packets of a connection direction whose payload the socket events carry keep only their
//!   headers (`TRACED`, shared by both kinds of program), unless asked otherwise; a direction
//!   whose socket events could not carry the payload keeps whole packets from then on.
//!
//! Every ring-buffer failure is counted per CPU in `COUNTERS`; so are filtered events.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(
    not(target_arch = "bpf"),
    allow(dead_code, unused_imports, reason = "the host build is a placeholder")
)]

use core::ffi::c_void;
use core::mem::size_of;

use aya_ebpf::bindings::{BPF_F_NO_PREALLOC, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use aya_ebpf::helpers::generated as gen_helpers;
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel,
    bpf_probe_read_user,
};
use aya_ebpf::macros::{classifier, map, raw_tracepoint, tracepoint, uprobe, uretprobe};
use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf};
use aya_ebpf::programs::{
    ProbeContext, RawTracePointContext, RetProbeContext, TcContext, TracePointContext,
};
use juno_common::{
    Config, IfStat, MAX_PAYLOAD, MAX_SNAPLEN, Offsets, PacketHdr, SockHdr, counter, dir, flags,
    hook, kind, pkt_dir,
};

/// tc return code that leaves the verdict to whatever comes next (TC_ACT_UNSPEC / TCX_NEXT).
const TC_NEXT: i32 = -1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const SOCK_STREAM: u16 = 1;
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const EINPROGRESS: i64 = 115;
/// TCP states in the kernel's numbering.
const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
/// The socket's last state change.
const TCP_CLOSE: i32 = 7;
/// recvmsg flags whose bytes are not stream data read once: peeked (read again later),
/// discarded without a copy, or the error queue.
const MSG_PEEK: i32 = 0x2;
const MSG_TRUNC: i32 = 0x20;
const MSG_ERRQUEUE: i32 = 0x2000;
/// x86_64 `struct pt_regs`: where the syscall in flight saved its number and arguments
/// (`dx`, then `si`, `di`, `orig_ax`, `ip`, `cs`: [`SyscallRegs`]).
mod regs {
    pub(crate) const DX: u64 = 96;
    /// The code segment of 64-bit user mode (compat tasks use other numbers).
    pub(crate) const USER_CS: u64 = 0x33;
}
/// x86_64 syscall numbers of the calls whose user buffer a data event can read.
mod nr {
    pub(crate) const READ: u64 = 0;
    pub(crate) const WRITE: u64 = 1;
    pub(crate) const READV: u64 = 19;
    pub(crate) const WRITEV: u64 = 20;
    pub(crate) const SENDTO: u64 = 44;
    pub(crate) const RECVFROM: u64 = 45;
    pub(crate) const SENDMSG: u64 = 46;
    pub(crate) const RECVMSG: u64 = 47;
    pub(crate) const PREADV: u64 = 295;
    pub(crate) const PWRITEV: u64 = 296;
    pub(crate) const PREADV2: u64 = 327;
    pub(crate) const PWRITEV2: u64 = 328;
}
/// `SockState::role` values: how a socket was opened, and whether that was announced.
mod role {
    pub(crate) const CONNECTING: u8 = 1;
    pub(crate) const ACCEPTED: u8 = 2;
    pub(crate) const ANNOUNCED: u8 = 3;
}
/// `TRACED` values for a connection direction.
mod traced {
    /// The socket events carry its payload: packets keep their headers only.
    pub(crate) const WHOLE: u8 = 1;
    /// A socket event could not carry its payload: packets keep it, from then on.
    pub(crate) const KEEP: u8 = 2;
}
/// iovecs copied at most per readv/writev/sendmsg/recvmsg.
const MAX_IOV: u64 = 8;
/// Masks that let the verifier bound offsets and lengths (each at least `MAX_PAYLOAD`).
const PAYLOAD_MASK: u64 = 0x3FFF;

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);
#[map]
static PACKETS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);
#[map]
static SOCKETS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);
#[map]
static PKT_SCRATCH: PerCpuArray<PktScratch> = PerCpuArray::with_max_entries(1, 0);
/// One entry per CPU (the recorder sets the size), indexed by CPU: larger than a per-CPU
/// array value may be. Tracing programs do not nest on a CPU, so one entry per CPU suffices.
#[map]
static SOCK_SCRATCH: Array<SockScratch> = Array::with_max_entries(1, 0);
#[map]
static PENDING: HashMap<u64, Pending> = HashMap::with_max_entries(16384, 0);
#[map]
static STREAMS: LruHashMap<StreamKey, u64> = LruHashMap::with_max_entries(65536, 0);
#[map]
static CGROUPS: HashMap<u64, u8> = HashMap::with_max_entries(4096, 0);
/// The cgroup filter's verdict per task cgroup id (1 wanted, 0 not), so that the ancestors
/// are walked once per cgroup, not once per event. cgroup ids are not reused while the
/// kernel runs, and `CGROUPS` is filled before the programs are attached.
#[map]
static CGROUP_VERDICTS: LruHashMap<u64, u8> = LruHashMap::with_max_entries(8192, 0);
/// With the cgroup filter on: sockets that wanted tasks connected, accepted or moved data on.
/// State changes often run in softirq context, where the current task says nothing about the
/// socket, so they are recorded for these sockets only.
#[map]
static WANTED_SOCKS: LruHashMap<u64, u8> = LruHashMap::with_max_entries(65536, 0);
/// Per interface and CPU: packets seen, and packets lost because the ring buffer was full.
#[map]
static IFSTATS: PerCpuHashMap<u32, IfStat> = PerCpuHashMap::with_max_entries(4096, 0);
#[map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(1024, 0);
/// What the `sock` hooks know about each TCP socket they saw (or that was connected or
/// accepted), until it closes: one lookup per data event instead of re-reading the socket.
#[map]
static SOCKS: LruHashMap<u64, SockState> = LruHashMap::with_max_entries(65536, 0);
/// Per connection direction (source → destination as on the wire): whether socket events
/// carry its payload (`traced`).
#[map]
static TRACED: LruHashMap<FlowKey, u8> = LruHashMap::with_max_entries(65536, 0);
/// Per thread (`pid_tgid`): the TLS library call in flight. LRU: an entry left by a thread
/// that died inside a call is evicted, never blocks the map.
#[map]
static TLS_CALLS: LruHashMap<u64, TlsCall> = LruHashMap::with_max_entries(16384, 0);
/// Per `SSL *` of a process: the socket its system calls used last. A read served from the
/// library's buffer makes no system call; its socket is the one found here.
#[map]
static SSL_SOCKS: LruHashMap<SslKey, u64> = LruHashMap::with_max_entries(65536, 0);
/// Per goroutine of a process (`GoKey`): the Go `(*Conn).Read` in flight. Keyed by
/// goroutine, not thread: a goroutine that blocks in `Read` may return on another thread.
#[map]
static GO_CALLS: LruHashMap<GoKey, GoCall> = LruHashMap::with_max_entries(16384, 0);
/// Addresses of `*net.TCPConn`'s itab (as a `net.Conn`) in the Go processes probed: how a
/// `*tls.Conn`'s underlying conn is known to be a TCP connection whose descriptor can be read.
#[map]
static GO_ITABS: HashMap<u64, u8> = HashMap::with_max_entries(4096, 0);
#[map]
static CIDRS_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(1024, BPF_F_NO_PREALLOC);
#[map]
static CIDRS_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(1024, BPF_F_NO_PREALLOC);

#[repr(C)]
struct PktScratch {
    hdr: PacketHdr,
    data: [u8; MAX_SNAPLEN],
    /// Bytes this CPU put in `PACKETS` since it last woke the reader.
    unwoken: u64,
}

#[repr(C)]
struct SockScratch {
    hdr: SockHdr,
    /// Twice the largest payload: the verifier bounds offset and length separately.
    data: [u8; 2 * (PAYLOAD_MASK as usize + 1)],
    /// The iovec array of the call being copied.
    iov: [Iovec; MAX_IOV as usize],
    /// Bytes this CPU put in `SOCKETS` since it last woke the reader.
    unwoken: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    sk: u64,
    /// Buffer, iovec array, or (for connect) nothing.
    buf: u64,
    /// Length or iovec count.
    count: u64,
    hook: u16,
    dir: u8,
    iov: u8,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct StreamKey {
    sk: u64,
    dir: u32,
    _pad: u32,
}

/// A socket's state in `SOCKS`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockState {
    /// Bytes moved so far, per direction (`dir::SEND - 1`, `dir::RECV - 1`): the next data
    /// event's stream offset.
    moved: [u64; 2],
    /// `tgid << 32 | fd` of the descriptor last found to be this socket: the check that a
    /// syscall in flight is about this socket costs a comparison, not a file-table walk.
    fd_owner: u64,
    /// `role::*`: how the socket was opened, and whether that was announced.
    role: u8,
    /// Its addresses were sent (a connect, accept or open record).
    opened: u8,
    /// 1: wanted; 2: left out by the port or address filters.
    wanted: u8,
    /// Per direction bit: `TRACED` says KEEP (payload could not be carried once).
    kept: u8,
    /// Go TLS plaintext was recorded for this socket: its ciphertext is not copied.
    go_tls: u8,
    /// `verdict::*`: whether the task that first moved data on the socket passed the task
    /// filters (own process, cgroups). Kept, so that later events skip them: the cgroup
    /// filter costs a helper call and a map lookup, and a socket's events stay whole.
    task: u8,
    _pad: [u8; 2],
    /// TLS plaintext moved so far through a TLS library on this socket, per direction: the
    /// next TLS data event's stream offset.
    tls_moved: [u64; 2],
}

impl SockState {
    const NEW: SockState = SockState {
        moved: [0; 2],
        fd_owner: u64::MAX,
        role: 0,
        opened: 0,
        wanted: 0,
        kept: 0,
        go_tls: 0,
        task: verdict::UNKNOWN,
        _pad: [0; 2],
        tls_moved: [0; 2],
    };
}

/// A TLS library call in flight on a thread (`TLS_CALLS`), from its entry to its return.
#[repr(C)]
#[derive(Clone, Copy)]
struct TlsCall {
    /// The `SSL *`.
    ssl: u64,
    /// The plaintext buffer.
    buf: u64,
    /// `SSL_*_ex`: where the library stores the bytes moved (`size_t *`); 0 for the plain
    /// calls, which return them.
    out_len: u64,
    /// The socket a system call made inside the call moved bytes on (0: none yet).
    sk: u64,
    hook: u16,
    dir: u8,
    _pad: [u8; 5],
}

/// An `SSL *` of a process (`SSL_SOCKS`).
#[repr(C)]
#[derive(Clone, Copy)]
struct SslKey {
    tgid: u64,
    ssl: u64,
}

/// A goroutine: its process and its `g` (R14 in Go's register ABI).
#[repr(C)]
#[derive(Clone, Copy)]
struct GoKey {
    tgid: u64,
    g: u64,
}

/// A Go `(*Conn).Read` in flight (`GO_CALLS`).
#[repr(C)]
#[derive(Clone, Copy)]
struct GoCall {
    /// The `*tls.Conn`.
    conn: u64,
    /// The plaintext slice's data.
    buf: u64,
}

/// Where a Go `net.netFD` keeps its descriptor: `poll.FD.Sysfd`, after the 16-byte
/// `fdMutex` (the same layout since Go 1.9).
const GO_NETFD_SYSFD: u64 = 16;

/// A connection direction as packets carry it: source and destination address (IPv4 in the
/// first 4 bytes, the rest zero) and port.
#[repr(C)]
#[derive(Clone, Copy)]
struct FlowKey {
    /// The address's bytes as two native words (the same bytes as a `[u8; 16]`).
    saddr: [u64; 2],
    daddr: [u64; 2],
    sport: u16,
    dport: u16,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Iovec {
    base: u64,
    len: u64,
}

fn count(i: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(i) {
        // SAFETY: a per-CPU slot of this program's own map.
        unsafe { *p += 1 };
    }
}

fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

/// Reads a `T` at kernel address `addr`.
#[inline(always)]
fn rk<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    unsafe { bpf_probe_read_kernel(addr as *const T) }.ok()
}

/// Reads a `T` at user address `addr`.
#[inline(always)]
fn ru<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_user checks the address and fails cleanly.
    unsafe { bpf_probe_read_user(addr as *const T) }.ok()
}

// ------------------------------------------------------------------------------------------
// tc: packets

#[classifier]
pub fn tc_ingress(ctx: TcContext) -> i32 {
    let _ = capture(&ctx, pkt_dir::INGRESS);
    TC_NEXT
}

#[classifier]
pub fn tc_egress(ctx: TcContext) -> i32 {
    let _ = capture(&ctx, pkt_dir::EGRESS);
    TC_NEXT
}

#[inline(always)]
fn port_wanted(p: u16) -> bool {
    // SAFETY: reading a value of a map this program owns.
    unsafe { PORTS.get(p) }.is_some()
}

/// Applies the port and CIDR filters to a frame.
fn packet_wanted(ctx: &TcContext, cfg: &Config) -> Result<bool, i64> {
    let mut l3 = 14usize;
    let mut proto = u16::from_be(ctx.load::<u16>(12)?);
    if proto == 0x8100 {
        proto = u16::from_be(ctx.load::<u16>(16)?);
        l3 = 18;
    }
    let (l4, nh) = match proto {
        0x0800 => {
            let vihl: u8 = ctx.load(l3)?;
            if cfg.flags & flags::FILTER_CIDRS != 0 {
                let s: [u8; 4] = ctx.load(l3 + 12)?;
                let d: [u8; 4] = ctx.load(l3 + 16)?;
                if CIDRS_V4.get(Key::new(32, s)).is_none()
                    && CIDRS_V4.get(Key::new(32, d)).is_none()
                {
                    return Ok(false);
                }
            }
            (l3 + usize::from(vihl & 0x0f) * 4, ctx.load::<u8>(l3 + 9)?)
        }
        0x86DD => {
            if cfg.flags & flags::FILTER_CIDRS != 0 {
                let s: [u8; 16] = ctx.load(l3 + 8)?;
                let d: [u8; 16] = ctx.load(l3 + 24)?;
                if CIDRS_V6.get(Key::new(128, s)).is_none()
                    && CIDRS_V6.get(Key::new(128, d)).is_none()
                {
                    return Ok(false);
                }
            }
            (l3 + 40, ctx.load::<u8>(l3 + 6)?)
        }
        _ => return Ok(false),
    };
    if cfg.flags & flags::FILTER_PORTS != 0 {
        if nh != 6 && nh != 17 {
            return Ok(false);
        }
        let sp = u16::from_be(ctx.load::<u16>(l4)?);
        let dp = u16::from_be(ctx.load::<u16>(l4 + 2)?);
        if !port_wanted(sp) && !port_wanted(dp) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// With `flags::DEDUP`: the length of the packet's headers (link, IP, TCP) when the socket
/// events carry the payload of its connection direction (`TRACED` says `WHOLE`), else `None`.
fn headers_only(ctx: &TcContext) -> Option<usize> {
    let mut l3 = 14usize;
    let mut proto = u16::from_be(at::<u16>(ctx, 12)?);
    if proto == 0x8100 {
        proto = u16::from_be(at::<u16>(ctx, 16)?);
        l3 = 18;
    }
    // The key is written field by field once everything is known: zeroed first, it costs a
    // call to a byte loop (the compiler does not inline a memset here).
    let (saddr, daddr, l4) = match proto {
        0x0800 => {
            let vihl: u8 = at(ctx, l3)?;
            if at::<u8>(ctx, l3 + 9)? != 6 {
                return None;
            }
            let s: [u8; 4] = at(ctx, l3 + 12)?;
            let d: [u8; 4] = at(ctx, l3 + 16)?;
            (
                [u64::from(u32::from_ne_bytes(s)), 0],
                [u64::from(u32::from_ne_bytes(d)), 0],
                l3 + usize::from(vihl & 0x0f) * 4,
            )
        }
        0x86DD => {
            // Extension headers are not walked: such packets keep their payload.
            if at::<u8>(ctx, l3 + 6)? != 6 {
                return None;
            }
            (words(at(ctx, l3 + 8)?), words(at(ctx, l3 + 24)?), l3 + 40)
        }
        _ => return None,
    };
    let ports: [u8; 4] = at(ctx, l4)?;
    let key = FlowKey {
        saddr,
        daddr,
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        _pad: 0,
    };
    // SAFETY: reading a value of a map this program owns.
    if unsafe { TRACED.get(key) }.copied() != Some(traced::WHOLE) {
        return None;
    }
    let off: u8 = at(ctx, l4 + 12)?;
    Some(l4 + usize::from(off >> 4) * 4)
}

/// A `T` at `off` in the packet's linear data (direct packet access: no helper call), if the
/// linear data reaches that far.
#[inline(always)]
fn at<T: Copy>(ctx: &TcContext, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if off > 1500 || start + off + size_of::<T>() > end {
        return None;
    }
    // SAFETY: the bounds were checked against `data_end` just above (as the verifier requires).
    Some(unsafe { core::ptr::read_unaligned((start + off) as *const T) })
}

/// Counts a packet of an interface lost to a full ring buffer (this CPU's count).
fn ifstat_dropped(ifindex: u32) {
    let p = match IFSTATS.get_ptr_mut(ifindex) {
        Some(p) => p,
        None => {
            let _ = IFSTATS.insert(
                ifindex,
                IfStat {
                    seen: 0,
                    dropped: 0,
                },
                0,
            );
            match IFSTATS.get_ptr_mut(ifindex) {
                Some(p) => p,
                None => return,
            }
        }
    };
    // SAFETY: `p` points to this CPU's value in a map this program owns.
    unsafe { (*p).dropped += 1 };
}

/// Whether a record of `len` bytes should wake the reader: once per `Config::wakeup_bytes`
/// (a per-CPU share of the ring) written by this CPU, counted in `unwoken`. A wakeup is an
/// inter-processor interrupt (a VM exit on a virtual machine): worth it once per batch, not
/// per record; and counting per CPU touches no cache line another CPU writes (querying the
/// ring's fill level did, on every record). The reader also drains on a short timer.
#[inline(always)]
fn wakeup(unwoken: &mut u64, cfg: &Config, len: usize) -> u64 {
    // Each record takes an 8-byte header, and is rounded up to 8 bytes.
    *unwoken += (len as u64 + 15) & !7;
    if *unwoken >= u64::from(cfg.wakeup_bytes) {
        *unwoken = 0;
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}

fn capture(ctx: &TcContext, direction: u8) -> Result<(), i64> {
    let cfg = config().ok_or(0)?;
    if cfg.flags & flags::PACKETS == 0 {
        return Ok(());
    }
    count(counter::PACKETS_SEEN);
    if cfg.flags & (flags::FILTER_PORTS | flags::FILTER_CIDRS) != 0
        && !packet_wanted(ctx, cfg).unwrap_or(false)
    {
        count(counter::PACKETS_FILTERED);
        return Ok(());
    }
    let len = ctx.len();
    let mut limit = cfg.snaplen;
    if cfg.flags & flags::DEDUP != 0
        && let Some(h) = headers_only(ctx)
        && (h as u32) < len.min(limit)
    {
        limit = h as u32;
        count(counter::PACKETS_HEADERS_ONLY);
    }
    let mut n = len.min(limit) as usize;
    if n > MAX_SNAPLEN {
        n = MAX_SNAPLEN;
    }
    if n == 0 {
        return Ok(());
    }
    let s = PKT_SCRATCH.get_ptr_mut(0).ok_or(0)?;
    // SAFETY: `s` points to this CPU's scratch; tc programs do not nest on a CPU.
    let s = unsafe { &mut *s };
    s.hdr = PacketHdr {
        // SAFETY: no preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        orig_len: len,
        cap_len: n as u32,
        direction,
        _pad: [0; 3],
    };
    // SAFETY: `n` is in 1..=MAX_SNAPLEN, the size of `data`.
    let r = unsafe {
        gen_helpers::bpf_skb_load_bytes(
            ctx.skb.skb as *const c_void,
            0,
            s.data.as_mut_ptr() as *mut c_void,
            n as u32,
        )
    };
    if r != 0 {
        return Err(r);
    }
    let total = size_of::<PacketHdr>() + n;
    let flags = wakeup(&mut s.unwoken, cfg, total);
    // SAFETY: `total` bytes of the scratch struct are initialized.
    let bytes = unsafe { core::slice::from_raw_parts(s as *const PktScratch as *const u8, total) };
    let ifindex = s.hdr.ifindex;
    // Packets seen per interface are the recorder's count of records, plus these.
    match PACKETS.output::<[u8]>(bytes, flags) {
        Ok(()) => count(counter::PACKETS_OUT),
        Err(_) => {
            count(counter::PACKETS_RINGBUF_FULL);
            ifstat_dropped(ifindex);
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Sockets

/// The `struct sock` behind `fd` of the current task, if it is a TCP socket.
fn tcp_sock_of_fd(fd: u64, o: &Offsets) -> Option<u64> {
    // SAFETY: no preconditions; the result is only dereferenced through probe reads.
    let task = unsafe { gen_helpers::bpf_get_current_task() };
    let files: u64 = rk(task + u64::from(o.task_files))?;
    let fdt: u64 = rk(files + u64::from(o.files_fdt))?;
    let max_fds: u32 = rk(fdt + u64::from(o.fdt_max_fds))?;
    if fd >= u64::from(max_fds) {
        return None;
    }
    let fd_array: u64 = rk(fdt + u64::from(o.fdt_fd))?;
    let file: u64 = rk(fd_array + fd * 8)?;
    if file == 0 {
        return None;
    }
    let inode: u64 = rk(file + u64::from(o.file_inode))?;
    let mode: u16 = rk(inode + u64::from(o.inode_mode))?;
    if mode & S_IFMT != S_IFSOCK {
        return None;
    }
    let socket: u64 = rk(file + u64::from(o.file_private_data))?;
    let sk: u64 = rk(socket + u64::from(o.socket_sk))?;
    if sk == 0 {
        return None;
    }
    let family: u16 = rk(sk + u64::from(o.skc_family))?;
    let proto: u16 = rk(sk + u64::from(o.sk_protocol))?;
    let ty: u16 = rk(sk + u64::from(o.sk_type))?;
    ((family == AF_INET || family == AF_INET6) && proto == IPPROTO_TCP && ty == SOCK_STREAM)
        .then_some(sk)
}

/// Fills addresses, ports and netns from a `struct sock`.
fn fill_tuple(h: &mut SockHdr, sk: u64, o: &Offsets) {
    let family: u16 = rk(sk + u64::from(o.skc_family)).unwrap_or(0);
    h.lport = rk(sk + u64::from(o.skc_num)).unwrap_or(0);
    h.rport = u16::from_be(rk(sk + u64::from(o.skc_dport)).unwrap_or(0));
    h.laddr = [0; 16];
    h.raddr = [0; 16];
    if family == AF_INET {
        h.family = 4;
        let l: [u8; 4] = rk(sk + u64::from(o.skc_rcv_saddr)).unwrap_or([0; 4]);
        let r: [u8; 4] = rk(sk + u64::from(o.skc_daddr)).unwrap_or([0; 4]);
        h.laddr[..4].copy_from_slice(&l);
        h.raddr[..4].copy_from_slice(&r);
    } else {
        h.family = 6;
        h.laddr = rk(sk + u64::from(o.skc_v6_rcv_saddr)).unwrap_or([0; 16]);
        h.raddr = rk(sk + u64::from(o.skc_v6_daddr)).unwrap_or([0; 16]);
    }
    h.netns = sk_netns(sk, o);
}

fn sk_netns(sk: u64, o: &Offsets) -> u32 {
    let net: u64 = rk(sk + u64::from(o.skc_net)).unwrap_or(0);
    if net == 0 {
        return 0;
    }
    rk(net + u64::from(o.net_inum)).unwrap_or(0)
}

/// This CPU's socket scratch.
fn sock_scratch() -> Option<&'static mut SockScratch> {
    // SAFETY: no preconditions.
    let cpu = unsafe { gen_helpers::bpf_get_smp_processor_id() };
    let p = SOCK_SCRATCH.get_ptr_mut(cpu)?;
    // SAFETY: this CPU's entry; tracing programs do not nest on a CPU.
    Some(unsafe { &mut *p })
}

/// Header fields about the current task.
fn fill_task(h: &mut SockHdr) {
    let pid_tgid = bpf_get_current_pid_tgid();
    h.pid = (pid_tgid >> 32) as u32;
    h.tid = pid_tgid as u32;
    // SAFETY: no preconditions.
    h.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    // Straight into the header (aya's wrapper zeroes a buffer on the stack, byte by byte, and
    // copies it); the helper zeroes `comm` itself when it fails.
    // SAFETY: `comm` is 16 writable bytes.
    unsafe { gen_helpers::bpf_get_current_comm(h.comm.as_mut_ptr() as *mut c_void, 16) };
    // SAFETY: no preconditions.
    h.ts_ns = unsafe { bpf_ktime_get_ns() };
}

/// Deepest cgroup level checked by the cgroup filter (Kubernetes containers sit at level 4 or
/// 5: kubepods / QoS class / pod / container).
const MAX_CGROUP_LEVEL: i32 = 16;

/// Whether the current task's cgroup, or one of its ancestors, is in `CGROUPS`: a filter on
/// a parent covers the cgroups created under it later (pods that start later). The verdict
/// is remembered per cgroup (`CGROUP_VERDICTS`).
fn cgroup_wanted() -> bool {
    // SAFETY: no preconditions.
    let id = unsafe { bpf_get_current_cgroup_id() };
    // SAFETY: reading a value of a map this program owns.
    if let Some(v) = unsafe { CGROUP_VERDICTS.get(id) } {
        return *v != 0;
    }
    let wanted = cgroup_walk();
    let _ = CGROUP_VERDICTS.insert(id, u8::from(wanted), 0);
    wanted
}

/// [`cgroup_wanted`], by walking the task's cgroup and its ancestors.
fn cgroup_walk() -> bool {
    let mut level = 0;
    while level <= MAX_CGROUP_LEVEL {
        // SAFETY: no preconditions; 0 when the task's cgroup is shallower than `level`.
        let id = unsafe { gen_helpers::bpf_get_current_ancestor_cgroup_id(level) };
        if id == 0 {
            return false;
        }
        // SAFETY: reading a value of a map this program owns.
        if unsafe { CGROUPS.get(id) }.is_some() {
            return true;
        }
        level += 1;
    }
    false
}

/// Remembers, when the cgroup filter is on, that socket `sk` belongs to a wanted task.
fn mark_wanted(sk: u64, cfg: &Config) {
    if cfg.flags & flags::FILTER_CGROUPS != 0 {
        // SAFETY: reading a value of a map this program owns.
        if unsafe { WANTED_SOCKS.get(sk) }.is_none() {
            let _ = WANTED_SOCKS.insert(sk, 1, 0);
        }
    }
}

/// `SockState::task`: the task filters' verdict.
mod verdict {
    /// Not decided yet: the socket has moved no data through the `sock` hooks.
    pub const UNKNOWN: u8 = 0;
    /// The task passed the filters.
    pub const WANTED: u8 = 1;
    /// Left out, not counted: the recorder's own process.
    pub const OWN: u8 = 2;
    /// Left out by the cgroup filter (counted, `SOCK_FILTERED`).
    pub const FILTERED: u8 = 3;
}

/// The task filters (own process, cgroups) on the current task, as a [`verdict`].
fn task_verdict(cfg: &Config) -> u8 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == cfg.self_tgid {
        verdict::OWN
    } else if cfg.flags & flags::FILTER_CGROUPS != 0 && !cgroup_wanted() {
        verdict::FILTERED
    } else {
        verdict::WANTED
    }
}

/// Whether verdict `v` lets an event through; counts it when the cgroup filter left it out.
fn verdict_passes(v: u8) -> bool {
    if v == verdict::FILTERED {
        count(counter::SOCK_FILTERED);
    }
    v == verdict::WANTED
}

/// Filters on the current task (own process, cgroups); false if the event is not wanted.
fn task_wanted(cfg: &Config) -> bool {
    cfg.flags & flags::SOCKETS != 0 && verdict_passes(task_verdict(cfg))
}

/// Filters on the socket's ports and addresses.
fn tuple_wanted(cfg: &Config, h: &SockHdr) -> bool {
    if cfg.flags & flags::FILTER_PORTS != 0 && !port_wanted(h.lport) && !port_wanted(h.rport) {
        count(counter::SOCK_FILTERED);
        return false;
    }
    if cfg.flags & flags::FILTER_CIDRS != 0 {
        let hit = if h.family == 4 {
            let mut l = [0u8; 4];
            let mut r = [0u8; 4];
            l.copy_from_slice(&h.laddr[..4]);
            r.copy_from_slice(&h.raddr[..4]);
            CIDRS_V4.get(Key::new(32, l)).is_some() || CIDRS_V4.get(Key::new(32, r)).is_some()
        } else {
            CIDRS_V6.get(Key::new(128, h.laddr)).is_some()
                || CIDRS_V6.get(Key::new(128, h.raddr)).is_some()
        };
        if !hit {
            count(counter::SOCK_FILTERED);
            return false;
        }
    }
    true
}

/// Writes the scratch's event with `payload` bytes; false when the ring buffer was full.
fn output_sock(s: &mut SockScratch, payload: u64, cfg: &Config) -> bool {
    let total = size_of::<SockHdr>() as u64 + (payload & PAYLOAD_MASK);
    let flags = wakeup(&mut s.unwoken, cfg, total as usize);
    // SAFETY: the header and `payload` bytes of `data` are initialized; `total` is bounded.
    let bytes = unsafe {
        core::slice::from_raw_parts(s as *const SockScratch as *const u8, total as usize)
    };
    match SOCKETS.output::<[u8]>(bytes, flags) {
        Ok(()) => {
            count(counter::SOCK_OUT);
            true
        }
        Err(_) => {
            count(counter::SOCK_RINGBUF_FULL);
            false
        }
    }
}

/// A lifecycle event (no payload) for socket `sk`.
fn lifecycle(sk: u64, ev_kind: u8, ev_hook: u16, cfg: &Config) {
    let Some(s) = sock_scratch() else { return };
    let h = &mut s.hdr;
    fill_task(h);
    h.sk = sk;
    h.stream_offset = u64::MAX;
    h.orig_len = 0;
    h.cap_len = 0;
    h.kind = ev_kind;
    h.direction = dir::NONE;
    h.old_state = 0;
    h.new_state = 0;
    h._pad = 0;
    h.hook = ev_hook;
    fill_tuple(h, sk, &cfg.offsets);
    if !tuple_wanted(cfg, h) {
        return;
    }
    output_sock(s, 0, cfg);
}

/// Which argument layout a data syscall has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Args {
    /// (fd, buf, len, ...)
    Buf,
    /// (fd, iov, iovcnt)
    Iov,
    /// (fd, msghdr, flags)
    Msg,
}

fn enter_data(ctx: &TracePointContext, h: u16, d: u8, args: Args) -> Option<()> {
    let cfg = config()?;
    if !task_wanted(cfg) {
        return None;
    }
    // SAFETY: syscall tracepoint arguments live at fixed offsets (checked by the recorder).
    let fd: u64 = unsafe { ctx.read_at(16) }.ok()?;
    let sk = tcp_sock_of_fd(fd, &cfg.offsets)?;
    // SAFETY: as above.
    let a1: u64 = unsafe { ctx.read_at(24) }.ok()?;
    // SAFETY: as above.
    let a2: u64 = unsafe { ctx.read_at(32) }.ok()?;
    let (buf, cnt) = match args {
        Args::Buf | Args::Iov => (a1, a2),
        // struct user_msghdr: msg_iov at 16, msg_iovlen at 24.
        Args::Msg => (ru::<u64>(a1 + 16)?, ru::<u64>(a1 + 24)?),
    };
    let p = Pending {
        sk,
        buf,
        count: cnt,
        hook: h,
        dir: d,
        iov: u8::from(args != Args::Buf),
        _pad: 0,
    };
    let _ = PENDING.insert(bpf_get_current_pid_tgid(), p, 0);
    Some(())
}

fn exit_data(ctx: &TracePointContext) -> Option<()> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: reading a value of a map this program owns; copied out before removal.
    let p = match unsafe { PENDING.get(key) } {
        Some(p) => *p,
        None => return None,
    };
    let _ = PENDING.remove(key);
    // SAFETY: sys_exit tracepoints carry `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    if ret <= 0 {
        return None;
    }
    let cfg = config()?;
    let s = sock_scratch()?;
    let h = &mut s.hdr;
    fill_task(h);
    h.sk = p.sk;
    h.kind = kind::DATA;
    h.direction = p.dir;
    h.hook = p.hook;
    h.old_state = 0;
    h.new_state = 0;
    h._pad = 0;
    fill_tuple(h, p.sk, &cfg.offsets);
    if !tuple_wanted(cfg, h) {
        return None;
    }
    // Connections that predate the recorder are known from their data.
    mark_wanted(p.sk, cfg);
    let moved = ret as u64;
    let sk_key = StreamKey {
        sk: p.sk,
        dir: u32::from(p.dir),
        _pad: 0,
    };
    // SAFETY: reading a value of a map this program owns.
    let before = unsafe { STREAMS.get(sk_key) }.copied().unwrap_or(0);
    let _ = STREAMS.insert(sk_key, before + moved, 0);
    h.stream_offset = before;
    h.orig_len = moved as u32;
    let key = flow_key(&s.hdr);
    let copied = copy_user(s, moved, p.buf, p.count, p.iov != 0, cfg);
    s.hdr.cap_len = copied as u32;
    let out = output_sock(s, copied, cfg);
    if cfg.flags & flags::DEDUP != 0 {
        let whole = copied
            == moved
                .min(u64::from(cfg.payload_bytes))
                .min(MAX_PAYLOAD as u64);
        set_traced(key, whole && out);
    }
    Some(())
}

/// Copies up to `payload_bytes` of the `moved` bytes a call moved from its user buffer (`buf`,
/// or an array of `count` iovecs when `iov`) into the scratch's data; returns how many.
#[inline(always)]
fn copy_user(
    s: &mut SockScratch,
    moved: u64,
    buf: u64,
    iovcnt: u64,
    iov: bool,
    cfg: &Config,
) -> u64 {
    let mut want = moved.min(u64::from(cfg.payload_bytes));
    if want > MAX_PAYLOAD as u64 {
        want = MAX_PAYLOAD as u64;
    }
    let data = s.data.as_mut_ptr();
    let mut copied: u64 = 0;
    if !iov {
        let n = want & PAYLOAD_MASK;
        // SAFETY: `n` ≤ PAYLOAD_MASK < data.len(); the helper checks the user address.
        let r = unsafe {
            gen_helpers::bpf_probe_read_user(data as *mut c_void, n as u32, buf as *const c_void)
        };
        if r == 0 {
            copied = n;
        } else {
            count(counter::PAYLOAD_READ_FAILED);
        }
    } else {
        // The iovec array in one read rather than one read per iovec: each read of user
        // memory is a helper call with fixed costs of its own.
        let n = if iovcnt > MAX_IOV { MAX_IOV } else { iovcnt };
        if n == 0 {
            return 0;
        }
        let iovs = s.iov.as_mut_ptr();
        // SAFETY: `n` ≤ MAX_IOV, the length of `iov`; the helper checks the user address.
        let r = unsafe {
            gen_helpers::bpf_probe_read_user(
                iovs as *mut c_void,
                (n * size_of::<Iovec>() as u64) as u32,
                buf as *const c_void,
            )
        };
        if r != 0 {
            count(counter::PAYLOAD_READ_FAILED);
            return 0;
        }
        let mut i = 0u64;
        while i < MAX_IOV {
            if i >= n || copied >= want {
                break;
            }
            let Some(&v) = s.iov.get(i as usize) else {
                break;
            };
            // Masked before the min: the compiler knows `want - copied` is small and would
            // drop a mask after it, but the verifier does not.
            let take = (v.len & PAYLOAD_MASK).min(want - copied);
            let at = copied & PAYLOAD_MASK;
            if take > 0 {
                // SAFETY: `at` and `take` are each at most PAYLOAD_MASK, and `data` holds twice
                // that; the helper checks the user address.
                let r = unsafe {
                    gen_helpers::bpf_probe_read_user(
                        data.add(at as usize) as *mut c_void,
                        take as u32,
                        v.base as *const c_void,
                    )
                };
                if r != 0 {
                    count(counter::PAYLOAD_READ_FAILED);
                    break;
                }
                copied = at + take;
            }
            i += 1;
        }
    }
    copied
}

macro_rules! data_hooks {
    ($enter:ident, $exit:ident, $hook:expr, $dir:expr, $args:expr) => {
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            let _ = enter_data(&ctx, $hook, $dir, $args);
            0
        }
        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            let _ = exit_data(&ctx);
            0
        }
    };
}

data_hooks!(
    sys_enter_read,
    sys_exit_read,
    hook::READ,
    dir::RECV,
    Args::Buf
);
data_hooks!(
    sys_enter_write,
    sys_exit_write,
    hook::WRITE,
    dir::SEND,
    Args::Buf
);
data_hooks!(
    sys_enter_sendto,
    sys_exit_sendto,
    hook::SENDTO,
    dir::SEND,
    Args::Buf
);
data_hooks!(
    sys_enter_recvfrom,
    sys_exit_recvfrom,
    hook::RECVFROM,
    dir::RECV,
    Args::Buf
);
data_hooks!(
    sys_enter_readv,
    sys_exit_readv,
    hook::READV,
    dir::RECV,
    Args::Iov
);
data_hooks!(
    sys_enter_writev,
    sys_exit_writev,
    hook::WRITEV,
    dir::SEND,
    Args::Iov
);
data_hooks!(
    sys_enter_sendmsg,
    sys_exit_sendmsg,
    hook::SENDMSG,
    dir::SEND,
    Args::Msg
);
data_hooks!(
    sys_enter_recvmsg,
    sys_exit_recvmsg,
    hook::RECVMSG,
    dir::RECV,
    Args::Msg
);

// ------------------------------------------------------------------------------------------
// Sockets through `sock/sock_send_length` and `sock/sock_recv_length`

#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn sock_send_length(ctx: RawTracePointContext) -> i32 {
    let _ = sock_data(&ctx, dir::SEND);
    0
}

#[raw_tracepoint(tracepoint = "sock_recv_length")]
pub fn sock_recv_length(ctx: RawTracePointContext) -> i32 {
    let _ = sock_data(&ctx, dir::RECV);
    0
}

/// Whether `sk` is a TCP socket over IPv4 or IPv6.
fn is_tcp(sk: u64, o: &Offsets) -> bool {
    let family: u16 = rk(sk + u64::from(o.skc_family)).unwrap_or(0);
    let proto: u16 = rk(sk + u64::from(o.sk_protocol)).unwrap_or(0);
    let ty: u16 = rk(sk + u64::from(o.sk_type)).unwrap_or(0);
    (family == AF_INET || family == AF_INET6) && proto == IPPROTO_TCP && ty == SOCK_STREAM
}

/// The saved user registers of the syscall in flight that the data events read: x86_64
/// `struct pt_regs` from `dx` (offset 96) to `cs` (136), in one read.
#[repr(C)]
#[derive(Clone, Copy)]
struct SyscallRegs {
    dx: u64,
    si: u64,
    di: u64,
    orig_ax: u64,
    ip: u64,
    cs: u64,
}

/// The user buffer of the syscall in flight, if it is one whose buffer holds the bytes this
/// event moved on `sk`: (hook, buffer or iovec array, iovec count, whether it is iovecs).
/// `st.fd_owner` caches which descriptor of which process was last found to be `sk`.
fn user_buffer(sk: u64, d: u8, st: &mut SockState, o: &Offsets) -> Option<(u16, u64, u64, bool)> {
    // SAFETY: no preconditions; the result is checked by the verifier (a BTF task pointer).
    let regs = unsafe { gen_helpers::bpf_task_pt_regs(gen_helpers::bpf_get_current_task_btf()) };
    if regs == 0 {
        return None;
    }
    let r: SyscallRegs = rk(regs as u64 + regs::DX)?;
    if r.cs != regs::USER_CS {
        return None;
    }
    let (hook, args) = match (r.orig_ax, d) {
        (nr::READ, dir::RECV) => (hook::READ, Args::Buf),
        (nr::WRITE, dir::SEND) => (hook::WRITE, Args::Buf),
        (nr::RECVFROM, dir::RECV) => (hook::RECVFROM, Args::Buf),
        (nr::SENDTO, dir::SEND) => (hook::SENDTO, Args::Buf),
        (nr::READV, dir::RECV) => (hook::READV, Args::Iov),
        (nr::WRITEV, dir::SEND) => (hook::WRITEV, Args::Iov),
        (nr::PREADV | nr::PREADV2, dir::RECV) => (hook::PREADV, Args::Iov),
        (nr::PWRITEV | nr::PWRITEV2, dir::SEND) => (hook::PWRITEV, Args::Iov),
        (nr::RECVMSG, dir::RECV) => (hook::RECVMSG, Args::Msg),
        (nr::SENDMSG, dir::SEND) => (hook::SENDMSG, Args::Msg),
        _ => return None,
    };
    // An io_uring completion run inside another syscall, or a kernel user of a socket, shows
    // the registers of whatever the task is doing: only the syscall's own socket counts.
    if r.di > u64::from(u32::MAX) {
        return None;
    }
    let owner = (bpf_get_current_pid_tgid() & !0xffff_ffff) | r.di;
    if st.fd_owner != owner {
        if tcp_sock_of_fd(r.di, o) != Some(sk) {
            return None;
        }
        st.fd_owner = owner;
    }
    let (buf, cnt) = match args {
        Args::Buf | Args::Iov => (r.si, r.dx),
        // struct user_msghdr: msg_iov at 16, msg_iovlen at 24.
        Args::Msg => (ru::<u64>(r.si + 16)?, ru::<u64>(r.si + 24)?),
    };
    Some((hook, buf, cnt, args != Args::Buf))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, an IPv6 socket talking IPv4) as the IPv4
/// address its packets carry; any other address as it is.
fn unmap(a: [u8; 16]) -> [u8; 16] {
    if a[..10] == [0; 10] && a[10] == 0xff && a[11] == 0xff {
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&a[12..]);
        v4
    } else {
        a
    }
}

/// An address's 16 bytes as [`FlowKey`] holds them.
#[inline(always)]
fn words(a: [u8; 16]) -> [u64; 2] {
    let mut w = [0u64; 2];
    for (i, x) in w.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&a[i * 8..i * 8 + 8]);
        *x = u64::from_ne_bytes(b);
    }
    w
}

/// A connection direction from `s`:`sport` to `d`:`dport`, as packets carry it.
fn flow(s: [u8; 16], sport: u16, d: [u8; 16], dport: u16) -> FlowKey {
    FlowKey {
        saddr: words(unmap(s)),
        daddr: words(unmap(d)),
        sport,
        dport,
        _pad: 0,
    }
}

/// The connection direction a data event's bytes travel in, as packets carry it.
fn flow_key(h: &SockHdr) -> FlowKey {
    if h.direction == dir::SEND {
        flow(h.laddr, h.lport, h.raddr, h.rport)
    } else {
        flow(h.raddr, h.rport, h.laddr, h.lport)
    }
}

/// Notes in `TRACED` whether the socket events carry the payload of `key`'s direction; once
/// they could not, its packets keep their payload for good.
fn set_traced(key: FlowKey, whole: bool) {
    let want = if whole { traced::WHOLE } else { traced::KEEP };
    // SAFETY: reading a value of a map this program owns.
    match unsafe { TRACED.get(key) }.copied() {
        Some(traced::KEEP) => {}
        Some(v) if v == want => {}
        _ => {
            let _ = TRACED.insert(key, want, 0);
        }
    }
}

/// The first data event of a socket (or the first since it was connected or accepted):
/// reads its addresses, applies the port and address filters, and sends them — as the
/// connect or accept event its `role` announces, in the process that owns it, else as an
/// `OPEN` record — so that its data events need not carry them. Returns false when the
/// socket is left out.
fn open_sock(sk: u64, st: &mut SockState, cfg: &Config) -> bool {
    let Some(s) = sock_scratch() else {
        return false;
    };
    let h = &mut s.hdr;
    fill_task(h);
    h.sk = sk;
    h.stream_offset = u64::MAX;
    h.orig_len = 0;
    h.cap_len = 0;
    h.direction = dir::NONE;
    h.old_state = 0;
    h.new_state = 0;
    h._pad = 0;
    (h.kind, h.hook) = match st.role {
        role::CONNECTING => (kind::CONNECT, hook::CONNECT),
        role::ACCEPTED => (kind::ACCEPT, hook::ACCEPT),
        _ => (kind::OPEN, hook::SOCK_SEND),
    };
    fill_tuple(h, sk, &cfg.offsets);
    if !tuple_wanted(cfg, h) {
        st.wanted = 2;
        return false;
    }
    st.wanted = 1;
    mark_wanted(sk, cfg);
    if cfg.flags & flags::DEDUP != 0 {
        // Both directions: this socket's events carry them from now on.
        let out = flow(h.laddr, h.lport, h.raddr, h.rport);
        let back = flow(h.raddr, h.rport, h.laddr, h.lport);
        set_traced(out, true);
        set_traced(back, true);
    }
    if output_sock(s, 0, cfg) {
        st.opened = 1;
        if st.role != 0 {
            st.role = role::ANNOUNCED;
        }
    }
    true
}

/// Packets of `sk`'s direction `d` keep their payload from now on: a data event could not
/// carry it (read from the socket, once per direction).
fn keep_payload(sk: u64, d: u8, st: &mut SockState, o: &Offsets) {
    let bit = 1u8 << (d & 1);
    if st.kept & bit != 0 {
        return;
    }
    st.kept |= bit;
    let Some(s) = sock_scratch() else { return };
    let h = &mut s.hdr;
    h.direction = d;
    fill_tuple(h, sk, o);
    set_traced(flow_key(h), false);
}

fn sock_data(ctx: &RawTracePointContext, d: u8) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::SOCK_HOOKS == 0 || cfg.flags & flags::SOCKETS == 0 {
        return None;
    }
    let sk: u64 = ctx.arg(0);
    let ret: i32 = ctx.arg(1);
    let msg_flags: i32 = ctx.arg(2);
    if ret <= 0 || sk == 0 {
        return None;
    }
    if d == dir::RECV && msg_flags & (MSG_PEEK | MSG_TRUNC | MSG_ERRQUEUE) != 0 {
        return None;
    }
    let o = &cfg.offsets;
    let st = match SOCKS.get_ptr_mut(sk) {
        Some(p) => p,
        None => {
            // Not seen yet: only TCP sockets get an entry (others are not kept: their
            // address may later belong to a TCP socket, and only TCP closes are seen).
            if !is_tcp(sk, o) {
                return None;
            }
            let _ = SOCKS.insert(sk, SockState::NEW, 0);
            SOCKS.get_ptr_mut(sk)?
        }
    };
    // SAFETY: a value of a map this program owns; the entry of this socket, which only its
    // own send, receive and state hooks touch.
    let st = unsafe { &mut *st };
    // The task filters, once per socket: the task that first moves data on a socket decides
    // for all its events (a socket handed to a process outside the filter stays recorded,
    // and one handed the other way stays out).
    if st.task == verdict::UNKNOWN {
        st.task = task_verdict(cfg);
    }
    if !verdict_passes(st.task) {
        return None;
    }
    if st.wanted == 2 || (st.opened == 0 && !open_sock(sk, st, cfg)) {
        return None;
    }
    // Identity only: the socket's process and addresses went out with its first event; its
    // bytes are recorded from packets.
    if cfg.flags & flags::IDENTITY_ONLY != 0 {
        return None;
    }
    let moved = ret as u64;
    let di = usize::from(d & 1);
    let in_tls = cfg.flags & flags::TLS != 0 && (st.go_tls != 0 || tls_call_uses(sk));
    let s = sock_scratch()?;
    let h = &mut s.hdr;
    fill_task(h);
    h.sk = sk;
    h.kind = kind::DATA;
    h.direction = d;
    h.old_state = 0;
    h.new_state = 0;
    h._pad = 0;
    // The addresses are the recorder's to fill in, from the socket's first event.
    h.family = 0;
    h.netns = 0;
    h.lport = 0;
    h.rport = 0;
    h.stream_offset = st.moved[di];
    st.moved[di] += moved;
    h.orig_len = moved as u32;
    let buffer = if in_tls {
        None
    } else {
        user_buffer(sk, d, st, o)
    };
    let (copied, whole) = match buffer {
        // Ciphertext of a TLS library call: its plaintext is recorded instead, when the call
        // returns; this event keeps the length (and so the stream offsets).
        None if in_tls => {
            s.hdr.hook = if d == dir::SEND {
                hook::SOCK_SEND
            } else {
                hook::SOCK_RECV
            };
            count(counter::TLS_CIPHERTEXT_SKIPPED);
            (0, true)
        }
        Some((hk, buf, cnt, iov)) => {
            s.hdr.hook = hk;
            let c = copy_user(s, moved, buf, cnt, iov, cfg);
            // Whole as far as `payload_bytes` asks: a read that failed is not.
            (
                c,
                c == moved
                    .min(u64::from(cfg.payload_bytes))
                    .min(MAX_PAYLOAD as u64),
            )
        }
        None => {
            s.hdr.hook = if d == dir::SEND {
                hook::SOCK_SEND
            } else {
                hook::SOCK_RECV
            };
            count(counter::PAYLOAD_UNAVAILABLE);
            (0, false)
        }
    };
    s.hdr.cap_len = copied as u32;
    let out = output_sock(s, copied, cfg);
    if cfg.flags & flags::DEDUP != 0 && !(whole && out) {
        keep_payload(sk, d, st, o);
    }
    Some(())
}

/// Whether the current thread is inside a TLS library call that moves plaintext (its socket
/// events' ciphertext is then not copied); inside any TLS call (a handshake too), notes `sk`
/// as the socket the call uses (the first one it moved bytes on).
fn tls_call_uses(sk: u64) -> bool {
    let Some(c) = TLS_CALLS.get_ptr_mut(bpf_get_current_pid_tgid()) else {
        return false;
    };
    // SAFETY: this thread's entry; only this thread's programs touch it.
    let c = unsafe { &mut *c };
    if c.sk == 0 {
        c.sk = sk;
    }
    c.dir != dir::NONE
}

// ------------------------------------------------------------------------------------------
// TLS plaintext: uprobes on OpenSSL's SSL_write/SSL_read (and the _ex forms)

#[uprobe]
pub fn ssl_write(ctx: ProbeContext) -> u32 {
    let _ = tls_enter(&ctx, hook::SSL_WRITE, dir::SEND, false);
    0
}

#[uprobe]
pub fn ssl_read(ctx: ProbeContext) -> u32 {
    let _ = tls_enter(&ctx, hook::SSL_READ, dir::RECV, false);
    0
}

#[uprobe]
pub fn ssl_write_ex(ctx: ProbeContext) -> u32 {
    let _ = tls_enter(&ctx, hook::SSL_WRITE_EX, dir::SEND, true);
    0
}

#[uprobe]
pub fn ssl_read_ex(ctx: ProbeContext) -> u32 {
    let _ = tls_enter(&ctx, hook::SSL_READ_EX, dir::RECV, true);
    0
}

/// `SSL_do_handshake` (which `SSL_connect` and `SSL_accept` run): no plaintext, but its
/// socket calls tie the `SSL *` to its socket before the first `SSL_read`, which may be
/// served from what the handshake read ahead and make no socket call of its own. Its
/// ciphertext (the handshake) is recorded as usual.
#[uprobe]
pub fn ssl_do_handshake(ctx: ProbeContext) -> u32 {
    let _ = tls_enter(&ctx, 0, dir::NONE, false);
    0
}

/// The return of every one of the calls (the entry says which it was).
#[uretprobe]
pub fn ssl_return(ctx: RetProbeContext) -> u32 {
    let _ = tls_return(&ctx);
    0
}

/// Notes the call in `TLS_CALLS`: `(SSL *ssl, void *buf, int num)` or, for the `_ex` forms,
/// `(SSL *ssl, void *buf, size_t num, size_t *moved)`; a handshake (`d` is `dir::NONE`) has
/// only `ssl`.
fn tls_enter(ctx: &ProbeContext, h: u16, d: u8, ex: bool) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::TLS == 0 || !task_wanted(cfg) {
        return None;
    }
    let call = TlsCall {
        ssl: ctx.arg(0)?,
        buf: if d == dir::NONE { 0 } else { ctx.arg(1)? },
        out_len: if ex { ctx.arg(3)? } else { 0 },
        sk: 0,
        hook: h,
        dir: d,
        _pad: [0; 5],
    };
    if TLS_CALLS
        .insert(bpf_get_current_pid_tgid(), call, 0)
        .is_err()
    {
        count(counter::TLS_NO_ENTRY);
    }
    Some(())
}

/// At the call's return: the plaintext it moved, as a TLS data event on its socket.
fn tls_return(ctx: &RetProbeContext) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::TLS == 0 {
        return None;
    }
    let id = bpf_get_current_pid_tgid();
    // SAFETY: reading a value of a map this program owns (this thread's entry).
    let call = *unsafe { TLS_CALLS.get(id) }?;
    let _ = TLS_CALLS.remove(id);
    let key = SslKey {
        tgid: id >> 32,
        ssl: call.ssl,
    };
    if call.dir == dir::NONE {
        // A handshake: only which socket the `SSL *` uses.
        if call.sk != 0 {
            let _ = SSL_SOCKS.insert(key, call.sk, 0);
        }
        return None;
    }
    // Both forms return an int: the bytes moved, or 1 for success (`_ex`).
    let ret = ctx.ret::<u64>() as i32;
    let moved = if call.out_len != 0 {
        if ret != 1 {
            return None;
        }
        ru::<u64>(call.out_len)?
    } else if ret > 0 {
        ret as u64
    } else {
        return None;
    };
    if moved == 0 {
        return None;
    }
    // SAFETY: reading a value of a map this program owns.
    let known = unsafe { SSL_SOCKS.get(key) }.copied();
    let sk = if call.sk != 0 {
        if known != Some(call.sk) {
            let _ = SSL_SOCKS.insert(key, call.sk, 0);
        }
        call.sk
    } else if let Some(sk) = known {
        sk
    } else {
        count(counter::TLS_NO_SOCKET);
        return None;
    };
    tls_event(sk, call.dir, call.hook, call.buf, moved, cfg)?;
    Some(())
}

/// A TLS data event: `moved` bytes of plaintext at user address `buf` that a TLS library call
/// moved on socket `sk` in direction `d`. Returns the socket's state (None when the socket
/// is not known or not wanted). Inlined: a BPF function takes at most five arguments.
#[inline(always)]
fn tls_event(
    sk: u64,
    d: u8,
    h_hook: u16,
    buf: u64,
    moved: u64,
    cfg: &Config,
) -> Option<&'static mut SockState> {
    let Some(st) = SOCKS.get_ptr_mut(sk) else {
        count(counter::TLS_SOCKET_GONE);
        return None;
    };
    // SAFETY: a value of a map this program owns: the entry of this socket.
    let st = unsafe { &mut *st };
    if st.wanted != 1 || st.opened == 0 {
        return None;
    }
    let di = usize::from(d & 1);
    let s = sock_scratch()?;
    let h = &mut s.hdr;
    fill_task(h);
    h.sk = sk;
    h.kind = kind::TLS_DATA;
    h.direction = d;
    h.hook = h_hook;
    h.old_state = 0;
    h.new_state = 0;
    h._pad = 0;
    h.family = 0;
    h.netns = 0;
    h.lport = 0;
    h.rport = 0;
    h.stream_offset = st.tls_moved[di];
    st.tls_moved[di] += moved;
    h.orig_len = moved.min(u64::from(u32::MAX)) as u32;
    let copied = copy_user(s, moved, buf, 0, false, cfg);
    s.hdr.cap_len = copied as u32;
    output_sock(s, copied, cfg);
    Some(st)
}

// ------------------------------------------------------------------------------------------
// TLS plaintext: uprobes on Go's crypto/tls, `(*Conn).Write` and `(*Conn).Read`

/// `func (c *Conn) Write(b []byte) (int, error)`: the plaintext is recorded at the entry,
/// where the buffer holds it all (Write sends all of it or fails the connection). At the
/// return it would be too late to keep the order of the connection: the reply may be read,
/// on another thread, before the writing goroutine reaches its return.
#[uprobe]
pub fn go_tls_write(ctx: ProbeContext) -> u32 {
    let _ = go_write(&ctx);
    0
}

#[uprobe]
pub fn go_tls_read(ctx: ProbeContext) -> u32 {
    let _ = go_read(&ctx);
    0
}

/// At every `RET` of `Read` (no uretprobes on Go: stacks move).
#[uprobe]
pub fn go_tls_return(ctx: ProbeContext) -> u32 {
    let _ = go_return(&ctx);
    0
}

/// The receiver (RAX), the slice's data (RBX) and length (RCX) of a `(*Conn)` method.
fn go_args(ctx: &ProbeContext) -> (u64, u64, u64) {
    // SAFETY: a uprobe's context is the user registers; the verifier checks the access.
    unsafe { ((*ctx.regs).rax, (*ctx.regs).rbx, (*ctx.regs).rcx) }
}

fn go_write(ctx: &ProbeContext) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::TLS == 0 || !task_wanted(cfg) {
        return None;
    }
    let (conn, buf, len) = go_args(ctx);
    if len == 0 || len > i64::MAX as u64 {
        return None;
    }
    go_event(conn, hook::GO_TLS_WRITE, dir::SEND, buf, len, cfg)
}

/// A Go TLS data event on the `*tls.Conn`'s socket; from then on that socket's ciphertext
/// is not copied. Inlined: a BPF function takes at most five arguments.
#[inline(always)]
fn go_event(conn: u64, h: u16, d: u8, buf: u64, moved: u64, cfg: &Config) -> Option<()> {
    let Some(sk) = go_conn_sock(conn, &cfg.offsets) else {
        count(counter::TLS_NO_SOCKET);
        return None;
    };
    let st = tls_event(sk, d, h, buf, moved, cfg)?;
    st.go_tls = 1;
    Some(())
}

/// The goroutine running: Go's register ABI keeps its `g` in R14.
fn go_key(ctx: &ProbeContext) -> GoKey {
    // SAFETY: a uprobe's context is the user registers; the verifier checks the access.
    let g = unsafe { (*ctx.regs).r14 };
    GoKey {
        tgid: bpf_get_current_pid_tgid() >> 32,
        g,
    }
}

/// Notes the call: `func (c *Conn) Read(b []byte) (int, error)`.
fn go_read(ctx: &ProbeContext) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::TLS == 0 || !task_wanted(cfg) {
        return None;
    }
    let (conn, buf, _) = go_args(ctx);
    let call = GoCall { conn, buf };
    if GO_CALLS.insert(go_key(ctx), call, 0).is_err() {
        count(counter::TLS_NO_ENTRY);
    }
    Some(())
}

/// At a return: the bytes read (RAX) as a TLS data event.
fn go_return(ctx: &ProbeContext) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::TLS == 0 {
        return None;
    }
    let key = go_key(ctx);
    // SAFETY: reading a value of a map this program owns (this goroutine's entry).
    let call = *unsafe { GO_CALLS.get(key) }?;
    let _ = GO_CALLS.remove(key);
    // SAFETY: as in `go_key`.
    let n = unsafe { (*ctx.regs).rax } as i64;
    if n <= 0 {
        return None;
    }
    go_event(
        call.conn,
        hook::GO_TLS_READ,
        dir::RECV,
        call.buf,
        n as u64,
        cfg,
    )
}

/// The TCP socket under a Go `*tls.Conn`: its first field is the `net.Conn` it wraps (an
/// interface: itab, data). When the itab is `*net.TCPConn`'s (`GO_ITABS`), the data points
/// to the TCPConn, whose first field points to its `netFD`, which holds the descriptor.
fn go_conn_sock(conn: u64, o: &Offsets) -> Option<u64> {
    let iface: [u64; 2] = ru(conn)?;
    // SAFETY: reading a value of a map this program owns.
    unsafe { GO_ITABS.get(iface[0]) }?;
    let netfd: u64 = ru(iface[1])?;
    let fd: i64 = ru(netfd + GO_NETFD_SYSFD)?;
    if !(0..=i64::from(i32::MAX)).contains(&fd) {
        return None;
    }
    tcp_sock_of_fd(fd as u64, o)
}

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let _ = enter_connect(&ctx);
    0
}

fn enter_connect(ctx: &TracePointContext) -> Option<()> {
    let cfg = config()?;
    if !task_wanted(cfg) {
        return None;
    }
    // SAFETY: syscall tracepoint arguments live at fixed offsets.
    let fd: u64 = unsafe { ctx.read_at(16) }.ok()?;
    let sk = tcp_sock_of_fd(fd, &cfg.offsets)?;
    // Before the connect's own state changes (CLOSE → SYN_SENT) run.
    mark_wanted(sk, cfg);
    let p = Pending {
        sk,
        buf: 0,
        count: 0,
        hook: hook::CONNECT,
        dir: dir::NONE,
        iov: 0,
        _pad: 0,
    };
    let _ = PENDING.insert(bpf_get_current_pid_tgid(), p, 0);
    Some(())
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = exit_connect(&ctx);
    0
}

fn exit_connect(ctx: &TracePointContext) -> Option<()> {
    let key = bpf_get_current_pid_tgid();
    // SAFETY: reading a value of a map this program owns; copied out before removal.
    let p = match unsafe { PENDING.get(key) } {
        Some(p) => *p,
        None => return None,
    };
    let _ = PENDING.remove(key);
    // SAFETY: sys_exit tracepoints carry `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    if ret != 0 && ret != -EINPROGRESS {
        return None;
    }
    let cfg = config()?;
    lifecycle(p.sk, kind::CONNECT, hook::CONNECT, cfg);
    Some(())
}

fn exit_accept(ctx: &TracePointContext, h: u16) -> Option<()> {
    let cfg = config()?;
    if !task_wanted(cfg) {
        return None;
    }
    // SAFETY: sys_exit tracepoints carry `long ret` at offset 16.
    let ret: i64 = unsafe { ctx.read_at(16) }.ok()?;
    if ret < 0 {
        return None;
    }
    let sk = tcp_sock_of_fd(ret as u64, &cfg.offsets)?;
    mark_wanted(sk, cfg);
    lifecycle(sk, kind::ACCEPT, h, cfg);
    Some(())
}

#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let _ = exit_accept(&ctx, hook::ACCEPT);
    0
}

#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    let _ = exit_accept(&ctx, hook::ACCEPT4);
    0
}

#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let _ = enter_close(&ctx);
    0
}

fn enter_close(ctx: &TracePointContext) -> Option<()> {
    let cfg = config()?;
    if !task_wanted(cfg) {
        return None;
    }
    // SAFETY: syscall tracepoint arguments live at fixed offsets.
    let fd: u64 = unsafe { ctx.read_at(16) }.ok()?;
    let sk = tcp_sock_of_fd(fd, &cfg.offsets)?;
    lifecycle(sk, kind::CLOSE, hook::CLOSE, cfg);
    for d in [dir::SEND, dir::RECV] {
        let _ = STREAMS.remove(StreamKey {
            sk,
            dir: u32::from(d),
            _pad: 0,
        });
    }
    Some(())
}

#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = set_state(&ctx);
    0
}

fn set_state(ctx: &TracePointContext) -> Option<()> {
    let cfg = config()?;
    if cfg.flags & flags::SOCKETS == 0 {
        return None;
    }
    // SAFETY: field offsets of sock/inet_sock_set_state (checked by the recorder).
    let (sk, old, new, sport, dport, family, proto) = unsafe {
        (
            ctx.read_at::<u64>(8).ok()?,
            ctx.read_at::<i32>(16).ok()?,
            ctx.read_at::<i32>(20).ok()?,
            ctx.read_at::<u16>(24).ok()?,
            ctx.read_at::<u16>(26).ok()?,
            ctx.read_at::<u16>(28).ok()?,
            ctx.read_at::<u16>(30).ok()?,
        )
    };
    if proto != IPPROTO_TCP {
        return None;
    }
    if cfg.flags & flags::DEDUP != 0 && (new == TCP_ESTABLISHED || new == TCP_CLOSE) {
        // SAFETY: as above.
        let (l, r) = unsafe {
            if family == AF_INET {
                let mut l = [0u8; 16];
                let mut r = [0u8; 16];
                l[..4].copy_from_slice(&ctx.read_at::<[u8; 4]>(32).ok()?);
                r[..4].copy_from_slice(&ctx.read_at::<[u8; 4]>(36).ok()?);
                (l, r)
            } else {
                (
                    ctx.read_at::<[u8; 16]>(40).ok()?,
                    ctx.read_at::<[u8; 16]>(56).ok()?,
                )
            }
        };
        let out = flow(l, sport, r, dport);
        let back = flow(r, dport, l, sport);
        if new == TCP_CLOSE {
            // The 4-tuple may be reused by a connection nobody traces.
            let _ = TRACED.remove(out);
            let _ = TRACED.remove(back);
        } else if cfg.flags & flags::FILTER_CGROUPS == 0 || {
            // SAFETY: reading a value of a map this program owns.
            unsafe { WANTED_SOCKS.get(sk) }.is_some()
        } {
            // A socket whose events are recorded carries both directions' payload from its
            // first byte: the connection's packets need only their headers.
            set_traced(out, true);
            set_traced(back, true);
        }
    }
    if cfg.flags & flags::SOCK_HOOKS != 0 {
        let opened = if old == TCP_CLOSE && new == TCP_SYN_SENT {
            // Inside connect(), in the connecting process.
            if task_wanted(cfg) {
                mark_wanted(sk, cfg);
            }
            role::CONNECTING
        } else if old == TCP_SYN_RECV && new == TCP_ESTABLISHED {
            role::ACCEPTED
        } else {
            0
        };
        if opened != 0 {
            let mut st = SockState::NEW;
            st.role = opened;
            let _ = SOCKS.insert(sk, st, 0);
        }
    }
    if new == TCP_CLOSE {
        let _ = SOCKS.remove(sk);
        for d in [dir::SEND, dir::RECV] {
            let _ = STREAMS.remove(StreamKey {
                sk,
                dir: u32::from(d),
                _pad: 0,
            });
        }
    }
    if cfg.flags & flags::FILTER_CGROUPS != 0 {
        // SAFETY: reading a value of a map this program owns.
        if unsafe { WANTED_SOCKS.get(sk) }.is_none() {
            count(counter::SOCK_FILTERED);
            return None;
        }
        if new == TCP_CLOSE {
            let _ = WANTED_SOCKS.remove(sk);
        }
    }
    let s = sock_scratch()?;
    let h = &mut s.hdr;
    fill_task(h);
    h.sk = sk;
    h.stream_offset = u64::MAX;
    h.orig_len = 0;
    h.cap_len = 0;
    h.kind = kind::STATE;
    h.direction = dir::NONE;
    h.old_state = old as u8;
    h.new_state = new as u8;
    h._pad = 0;
    h.hook = hook::SET_STATE;
    h.lport = sport;
    h.rport = dport;
    h.laddr = [0; 16];
    h.raddr = [0; 16];
    // SAFETY: as above.
    unsafe {
        if family == AF_INET {
            h.family = 4;
            h.laddr[..4].copy_from_slice(&ctx.read_at::<[u8; 4]>(32).ok()?);
            h.raddr[..4].copy_from_slice(&ctx.read_at::<[u8; 4]>(36).ok()?);
        } else {
            h.family = 6;
            h.laddr = ctx.read_at::<[u8; 16]>(40).ok()?;
            h.raddr = ctx.read_at::<[u8; 16]>(56).ok()?;
        }
    }
    h.netns = sk_netns(sk, &cfg.offsets);
    if !tuple_wanted(cfg, h) {
        return None;
    }
    output_sock(s, 0, cfg);
    Some(())
}

/// On the host this crate is a placeholder (see Cargo.toml).
#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable in verified code: every path the verifier accepted returns.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
