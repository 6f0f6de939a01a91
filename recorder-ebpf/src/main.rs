//! Juno's eBPF programs.
//!
//! - `tc_ingress` / `tc_egress` (tc classifiers on the host side of pod veths): copy up to
//!   `snaplen` bytes of every packet into the `PACKETS` ring buffer. They never change a
//!   packet's fate: they return `TC_ACT_UNSPEC` (TCX_NEXT), so the next program or the default
//!   action decides, and programs others installed keep working.
//! - syscall tracepoints (read/write, send/recv, readv/writev, sendmsg/recvmsg, connect,
//!   accept, close): on TCP sockets, report the bytes a process moved (up to
//!   `payload_bytes`) and the socket's lifecycle, with pid, tid, comm, cgroup and netns, into
//!   the `SOCKETS` ring buffer. Whether a file descriptor is a TCP socket, and its addresses,
//!   come from walking task → files → fdtable → file → socket → sock with offsets the recorder
//!   read from the running kernel's BTF (these programs have no CO-RE relocations).
//! - `sock/inet_sock_set_state`: TCP state transitions. It often runs in softirq context, so
//!   its pid is whoever ran; the recorder attributes sockets from the syscall events.
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

use aya_ebpf::bindings::{
    BPF_F_NO_PREALLOC, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP,
};
use aya_ebpf::helpers::generated as gen_helpers;
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
    bpf_probe_read_kernel, bpf_probe_read_user,
};
use aya_ebpf::macros::{classifier, map, tracepoint};
use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf};
use aya_ebpf::programs::{TcContext, TracePointContext};
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
/// TCP_CLOSE in the kernel's TCP state numbering: the socket's last state change.
const TCP_CLOSE: i32 = 7;
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
#[map]
static CIDRS_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(1024, BPF_F_NO_PREALLOC);
#[map]
static CIDRS_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(1024, BPF_F_NO_PREALLOC);

#[repr(C)]
struct PktScratch {
    hdr: PacketHdr,
    data: [u8; MAX_SNAPLEN],
}

#[repr(C)]
struct SockScratch {
    hdr: SockHdr,
    /// Twice the largest payload: the verifier bounds offset and length separately.
    data: [u8; 2 * (PAYLOAD_MASK as usize + 1)],
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

/// Adds to this CPU's counters of an interface.
fn ifstat(ifindex: u32, dropped: bool) {
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
    unsafe {
        if dropped {
            (*p).dropped += 1;
        } else {
            (*p).seen += 1;
        }
    }
}

/// Wake the reader only when `rb` holds enough to be worth a context switch (see
/// `Config::wakeup_bytes`); the reader polls with a timeout for the rest.
#[inline(always)]
fn wakeup(rb: &RingBuf, cfg: &Config) -> u64 {
    if rb.query(u64::from(BPF_RB_AVAIL_DATA)) >= u64::from(cfg.wakeup_bytes) {
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
    let mut n = len.min(cfg.snaplen) as usize;
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
    // SAFETY: `total` bytes of the scratch struct are initialized.
    let bytes = unsafe { core::slice::from_raw_parts(s as *const PktScratch as *const u8, total) };
    let ifindex = s.hdr.ifindex;
    ifstat(ifindex, false);
    match PACKETS.output::<[u8]>(bytes, wakeup(&PACKETS, cfg)) {
        Ok(()) => count(counter::PACKETS_OUT),
        Err(_) => {
            count(counter::PACKETS_RINGBUF_FULL);
            ifstat(ifindex, true);
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
    h.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    // SAFETY: no preconditions.
    h.ts_ns = unsafe { bpf_ktime_get_ns() };
}

/// Deepest cgroup level checked by the cgroup filter (Kubernetes containers sit at level 4 or
/// 5: kubepods / QoS class / pod / container).
const MAX_CGROUP_LEVEL: i32 = 16;

/// Whether the current task's cgroup, or one of its ancestors, is in `CGROUPS`: a filter on
/// a parent covers the cgroups created under it later (pods that start later).
fn cgroup_wanted() -> bool {
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

/// Filters on the current task (own process, cgroups); false if the event is not wanted.
fn task_wanted(cfg: &Config) -> bool {
    if cfg.flags & flags::SOCKETS == 0 {
        return false;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == cfg.self_tgid {
        return false;
    }
    if cfg.flags & flags::FILTER_CGROUPS != 0 && !cgroup_wanted() {
        count(counter::SOCK_FILTERED);
        return false;
    }
    true
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

fn output_sock(s: &SockScratch, payload: u64, cfg: &Config) {
    let total = size_of::<SockHdr>() as u64 + (payload & PAYLOAD_MASK);
    // SAFETY: the header and `payload` bytes of `data` are initialized; `total` is bounded.
    let bytes = unsafe {
        core::slice::from_raw_parts(s as *const SockScratch as *const u8, total as usize)
    };
    match SOCKETS.output::<[u8]>(bytes, wakeup(&SOCKETS, cfg)) {
        Ok(()) => count(counter::SOCK_OUT),
        Err(_) => count(counter::SOCK_RINGBUF_FULL),
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
    let mut want = moved.min(u64::from(cfg.payload_bytes));
    if want > MAX_PAYLOAD as u64 {
        want = MAX_PAYLOAD as u64;
    }
    let data = s.data.as_mut_ptr();
    let mut copied: u64 = 0;
    if p.iov == 0 {
        let n = want & PAYLOAD_MASK;
        // SAFETY: `n` ≤ PAYLOAD_MASK < data.len(); the helper checks the user address.
        let r = unsafe {
            gen_helpers::bpf_probe_read_user(data as *mut c_void, n as u32, p.buf as *const c_void)
        };
        if r == 0 {
            copied = n;
        } else {
            count(counter::PAYLOAD_READ_FAILED);
        }
    } else {
        let mut i = 0u64;
        while i < MAX_IOV {
            if i >= p.count || copied >= want {
                break;
            }
            let Some(v) = ru::<Iovec>(p.buf + i * 16) else {
                break;
            };
            let take = v.len.min(want - copied) & PAYLOAD_MASK;
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
    s.hdr.cap_len = copied as u32;
    output_sock(s, copied, cfg);
    Some(())
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
