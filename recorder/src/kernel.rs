//! The OS boundary: loading and attaching the eBPF programs, draining their ring buffers,
//! reading their counters. Everything the recorder does with the kernel goes through
//! [`Kernel`], so the rest of the recorder is tested without root (`tests` use a fake).

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aya::maps::{
    Array, HashMap as AyaHashMap, LpmTrie, MapData, PerCpuArray, PerCpuHashMap, RingBuf,
};
use aya::programs::{RawTracePoint, SchedClassifier, TcAttachType, TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use juno_common::{Config, IfStat, PacketHdr, SockHdr, counter, flags, parse};

/// What the kernel side reports.
#[derive(Debug)]
pub enum Event<'a> {
    /// A packet from a tc program.
    Packet(PacketHdr, &'a [u8]),
    /// A socket event from a tracepoint.
    Socket(SockHdr, &'a [u8]),
}

/// Per-CPU counters, summed, and per CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `counter::*` values per CPU.
    pub per_cpu: Vec<[u64; counter::COUNT as usize]>,
}

impl Counters {
    /// The sum over CPUs of counter `i`.
    pub fn total(&self, i: u32) -> u64 {
        self.per_cpu.iter().map(|c| c[i as usize]).sum()
    }
}

/// The kernel side of the recorder.
pub trait Kernel {
    /// Starts capturing packets on an interface (ingress and egress); nothing when packets are
    /// not recorded.
    fn attach_iface(&mut self, name: &str, ifindex: u32) -> Result<()>;
    /// Stops capturing on an interface (it may already be gone).
    fn detach_iface(&mut self, ifindex: u32);
    /// Waits up to `timeout` for events, then hands every pending one to `sink`. Returns how
    /// many there were.
    fn poll(&mut self, timeout: Duration, sink: &mut dyn FnMut(Event<'_>)) -> Result<usize>;
    /// The programs' counters.
    fn counters(&mut self) -> Result<Counters>;
    /// Per interface index: (packets seen, packets lost to a full ring buffer). A kernel may
    /// count only the losses (seen 0): the recorder adds the packets it read.
    fn iface_counters(&mut self) -> Result<HashMap<u32, (u64, u64)>>;
    /// Cumulative run time and run count of each attached program, counted while statistics
    /// were on (empty when the kernel keeps none).
    fn program_costs(&mut self) -> Vec<crate::cost::ProgramCost> {
        Vec::new()
    }
    /// Turns the programs' run-time statistics on or off (they cost two clock reads per
    /// program run while on); returns whether they are on.
    fn program_stats(&mut self, on: bool) -> bool {
        let _ = on;
        false
    }
    /// Attaches the TLS plaintext uprobes to a TLS library (a path on this host's file
    /// system, e.g. under `/proc/PID/root` for a container's); returns the functions probed.
    fn attach_tls(&mut self, lib: &std::path::Path) -> Result<Vec<&'static str>> {
        bail!("no TLS hooks here ({})", lib.display())
    }
    /// Attaches the Go TLS plaintext uprobes to a Go program's file (the entries of
    /// `crypto/tls.(*Conn).Write` and `Read`, every return of `Read`); returns how many.
    fn attach_go_tls(&mut self, exe: &std::path::Path, go: &crate::gotls::GoTls) -> Result<usize> {
        let _ = go;
        bail!("no TLS hooks here ({})", exe.display())
    }
    /// Tells the Go TLS programs an address of `*net.TCPConn`'s itab in a Go process.
    fn add_go_itab(&mut self, itab: u64) -> Result<()> {
        let _ = itab;
        Ok(())
    }
}

/// The TLS library functions probed: (function, entry program). Every one's return goes to
/// `ssl_return`. The `_ex` forms came with OpenSSL 1.1.1; a library without them is probed
/// on the others.
pub const TLS_PROBES: [(&str, &str); 5] = [
    ("SSL_write", "ssl_write"),
    ("SSL_read", "ssl_read"),
    ("SSL_write_ex", "ssl_write_ex"),
    ("SSL_read_ex", "ssl_read_ex"),
    // No plaintext: ties the SSL object to its socket before its first read.
    ("SSL_do_handshake", "ssl_do_handshake"),
];

/// The return program of the OpenSSL probes, and the Go `crypto/tls` programs (attached per
/// Go program file by [`Kernel::attach_go_tls`]).
const TLS_EXTRA_PROGRAMS: [&str; 4] =
    ["ssl_return", "go_tls_write", "go_tls_read", "go_tls_return"];

/// The syscall tracepoints and the argument offsets the programs read (`field:…offset:N`
/// lines of the tracepoint's format file). A tracepoint whose format differs is not attached.
const SYSCALL_HOOKS: &[(&str, &[(&str, usize)])] = &[
    ("sys_enter_read", &[("fd", 16), ("buf", 24), ("count", 32)]),
    ("sys_exit_read", &[("ret", 16)]),
    ("sys_enter_write", &[("fd", 16), ("buf", 24), ("count", 32)]),
    ("sys_exit_write", &[("ret", 16)]),
    ("sys_enter_sendto", &[("fd", 16), ("buff", 24), ("len", 32)]),
    ("sys_exit_sendto", &[("ret", 16)]),
    (
        "sys_enter_recvfrom",
        &[("fd", 16), ("ubuf", 24), ("size", 32)],
    ),
    ("sys_exit_recvfrom", &[("ret", 16)]),
    ("sys_enter_readv", &[("fd", 16), ("vec", 24), ("vlen", 32)]),
    ("sys_exit_readv", &[("ret", 16)]),
    ("sys_enter_writev", &[("fd", 16), ("vec", 24), ("vlen", 32)]),
    ("sys_exit_writev", &[("ret", 16)]),
    ("sys_enter_sendmsg", &[("fd", 16), ("msg", 24)]),
    ("sys_exit_sendmsg", &[("ret", 16)]),
    ("sys_enter_recvmsg", &[("fd", 16), ("msg", 24)]),
    ("sys_exit_recvmsg", &[("ret", 16)]),
    ("sys_enter_connect", &[("fd", 16)]),
    ("sys_exit_connect", &[("ret", 16)]),
    ("sys_exit_accept", &[("ret", 16)]),
    ("sys_exit_accept4", &[("ret", 16)]),
    ("sys_enter_close", &[("fd", 16)]),
];

const STATE_HOOK: (&str, &[(&str, usize)]) = (
    "inet_sock_set_state",
    &[
        ("skaddr", 8),
        ("oldstate", 16),
        ("newstate", 20),
        ("sport", 24),
        ("dport", 26),
        ("family", 28),
        ("protocol", 30),
        ("saddr", 32),
        ("daddr", 36),
        ("saddr_v6", 40),
        ("daddr_v6", 56),
    ],
);

/// The tracepoints the `sock` socket hooks attach to (raw tracepoints: the programs read the
/// tracepoint's arguments, `sk`, `ret`, `flags`, not its trace record).
const SOCK_HOOKS: [&str; 2] = ["sock_send_length", "sock_recv_length"];

/// Where tracefs is mounted.
pub fn tracefs() -> Option<&'static str> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .find(|p| std::path::Path::new(p).join("events").is_dir())
}

/// Checks a tracepoint's field offsets against what the programs expect.
fn check_format(tracefs: &str, category: &str, name: &str, want: &[(&str, usize)]) -> Result<()> {
    let path = format!("{tracefs}/events/{category}/{name}/format");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("tracepoint {category}/{name} not found"))?;
    for (field, off) in want {
        let found = text.lines().find_map(|l| {
            let l = l.trim();
            let decl = l.strip_prefix("field:")?.split(';').next()?;
            let fname = decl.rsplit([' ', '*']).next()?.split('[').next()?;
            if fname != *field {
                return None;
            }
            l.split(';')
                .find_map(|p| p.trim().strip_prefix("offset:"))
                .and_then(|v| v.parse::<usize>().ok())
        });
        match found {
            Some(o) if o == *off => {}
            Some(o) => bail!("{category}/{name}: field {field} at offset {o}, expected {off}"),
            None => bail!("{category}/{name}: no field {field}"),
        }
    }
    Ok(())
}

/// What to load.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// Configuration for the programs.
    pub config: Config,
    /// Packet ring buffer size in bytes (power of two, page multiple).
    pub packet_ring: u32,
    /// Socket ring buffer size in bytes.
    pub socket_ring: u32,
    /// Only these cgroup ids (if `config.flags` has FILTER_CGROUPS).
    pub cgroups: Vec<u64>,
    /// Only these ports (if FILTER_PORTS).
    pub ports: Vec<u16>,
    /// Only these networks (if FILTER_CIDRS): address and prefix length.
    pub cidrs: Vec<(std::net::IpAddr, u8)>,
    /// Where socket events come from.
    pub socket_hooks: crate::cli::SocketHooks,
    /// Whether the programs' run-time statistics will be asked for (`--self-cost` not `off`):
    /// turning them on needs CAP_SYS_ADMIN, so they are not even tried when they are off.
    pub self_cost: bool,
}

/// The real kernel, through aya.
pub struct AyaKernel {
    ebpf: Ebpf,
    packets: Option<RingBuf<MapData>>,
    sockets: Option<RingBuf<MapData>>,
    links: HashMap<u32, Vec<(&'static str, aya::programs::tc::SchedClassifierLinkId)>>,
    /// Hooks that could not be attached, with the reason.
    pub unavailable: Vec<(String, String)>,
    /// The socket hooks in use: `sock`, `syscalls`, or `none`.
    pub socket_hooks: &'static str,
    /// The flags the programs run with (the requested ones, less what is unavailable).
    pub flags: u32,
    /// Programs loaded and attached (or attachable, for tc), whose statistics are read.
    programs: Vec<&'static str>,
    /// Keeps the kernel's BPF run-time statistics on while held.
    stats: Option<std::os::fd::OwnedFd>,
    /// Statistics could be turned on at load (`false`: never try again).
    stats_ok: bool,
}

impl std::fmt::Debug for AyaKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AyaKernel")
            .field("ifaces", &self.links.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The eBPF object, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/juno-record-ebpf"));

impl AyaKernel {
    /// Loads the programs and attaches the tracepoints (those that are unavailable are listed
    /// in [`AyaKernel::unavailable`]; packet capture starts per interface with
    /// [`Kernel::attach_iface`]).
    pub fn load(opts: &KernelOptions) -> Result<Self> {
        if let Err(e) = bump_memlock() {
            // Kernels since 5.11 account BPF memory to the cgroup: not fatal.
            crate::log(format!(
                "note: cannot raise RLIMIT_MEMLOCK ({e}); continuing"
            ));
        }
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| anyhow!("cannot count CPUs: {e}"))? as u32;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("PACKETS", opts.packet_ring)
            .map_max_entries("SOCKETS", opts.socket_ring)
            .map_max_entries("SOCK_SCRATCH", cpus)
            .load(OBJECT)
            .context("loading the eBPF programs")?;
        if opts.config.flags & flags::FILTER_CGROUPS != 0 {
            let mut m: AyaHashMap<_, u64, u8> = AyaHashMap::try_from(
                ebpf.map_mut("CGROUPS")
                    .ok_or_else(|| anyhow!("no CGROUPS"))?,
            )?;
            for c in &opts.cgroups {
                m.insert(c, 1, 0)?;
            }
        }
        if opts.config.flags & flags::FILTER_PORTS != 0 {
            let mut m: AyaHashMap<_, u16, u8> =
                AyaHashMap::try_from(ebpf.map_mut("PORTS").ok_or_else(|| anyhow!("no PORTS"))?)?;
            for p in &opts.ports {
                m.insert(p, 1, 0)?;
            }
        }
        if opts.config.flags & flags::FILTER_CIDRS != 0 {
            for (addr, len) in &opts.cidrs {
                match addr {
                    std::net::IpAddr::V4(a) => {
                        let mut m: LpmTrie<_, [u8; 4], u8> = LpmTrie::try_from(
                            ebpf.map_mut("CIDRS_V4")
                                .ok_or_else(|| anyhow!("no CIDRS_V4"))?,
                        )?;
                        m.insert(
                            &aya::maps::lpm_trie::Key::new(u32::from(*len), a.octets()),
                            1,
                            0,
                        )?;
                    }
                    std::net::IpAddr::V6(a) => {
                        let mut m: LpmTrie<_, [u8; 16], u8> = LpmTrie::try_from(
                            ebpf.map_mut("CIDRS_V6")
                                .ok_or_else(|| anyhow!("no CIDRS_V6"))?,
                        )?;
                        m.insert(
                            &aya::maps::lpm_trie::Key::new(u32::from(*len), a.octets()),
                            1,
                            0,
                        )?;
                    }
                }
            }
        }
        let mut unavailable = Vec::new();
        let mut programs: Vec<&'static str> = vec!["tc_ingress", "tc_egress"];
        let mut cfg = opts.config;
        let mut socket_hooks = "none";
        if cfg.flags & flags::SOCKETS != 0 {
            match tracefs() {
                None => unavailable.push((
                    "socket tracepoints".into(),
                    "tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)".into(),
                )),
                Some(tfs) => {
                    use crate::cli::SocketHooks;
                    if opts.socket_hooks != SocketHooks::Syscalls {
                        match attach_sock_hooks(&mut ebpf, tfs) {
                            Ok(()) => {
                                socket_hooks = "sock";
                                programs.extend(SOCK_HOOKS);
                            }
                            Err(e) if opts.socket_hooks == SocketHooks::Sock => {
                                return Err(e.context("--socket-hooks sock"));
                            }
                            Err(e) => unavailable.push((
                                "sock/sock_send_length, sock/sock_recv_length (using the \
                                 syscall tracepoints)"
                                    .into(),
                                format!("{e:#}"),
                            )),
                        }
                    }
                    if socket_hooks == "sock" {
                        cfg.flags |= flags::SOCK_HOOKS;
                    } else {
                        socket_hooks = "syscalls";
                        for (name, fields) in SYSCALL_HOOKS {
                            match attach_tracepoint(&mut ebpf, tfs, "syscalls", name, fields) {
                                Ok(()) => programs.push(name),
                                Err(e) => {
                                    unavailable.push((format!("syscalls/{name}"), format!("{e:#}")))
                                }
                            }
                        }
                    }
                    if cfg.flags & flags::TLS != 0 {
                        if socket_hooks != "sock" {
                            cfg.flags &= !flags::TLS;
                            unavailable.push((
                                "TLS plaintext (uprobes on TLS libraries)".into(),
                                "needs the sock hooks (sock_send_length/sock_recv_length) to \
                                 tie library calls to their sockets"
                                    .into(),
                            ));
                        } else {
                            match load_tls_probes(&mut ebpf) {
                                Ok(()) => {
                                    programs.extend(TLS_PROBES.iter().map(|(_, p)| *p));
                                    programs.extend(TLS_EXTRA_PROGRAMS);
                                }
                                Err(e) => {
                                    cfg.flags &= !flags::TLS;
                                    unavailable.push((
                                        "TLS plaintext (uprobes on TLS libraries)".into(),
                                        format!("{e:#}"),
                                    ));
                                }
                            }
                        }
                    }
                    let (name, fields) = STATE_HOOK;
                    match attach_tracepoint(&mut ebpf, tfs, "sock", name, fields) {
                        Ok(()) => programs.push(name),
                        Err(e) => unavailable.push((format!("sock/{name}"), format!("{e:#}"))),
                    }
                }
            }
        }
        if cfg.flags & flags::SOCK_HOOKS == 0 {
            cfg.flags &= !flags::TLS;
        }
        if cfg.flags & flags::SOCKETS == 0 || cfg.flags & flags::PACKETS == 0 {
            cfg.flags &= !flags::DEDUP;
        }
        // The programs do nothing until the configuration is written.
        let mut config: Array<_, Config> = Array::try_from(
            ebpf.map_mut("CONFIG")
                .ok_or_else(|| anyhow!("no CONFIG map"))?,
        )?;
        config.set(0, cfg, 0)?;
        for prog in ["tc_ingress", "tc_egress"] {
            let p: &mut SchedClassifier = ebpf
                .program_mut(prog)
                .ok_or_else(|| anyhow!("no program {prog}"))?
                .try_into()?;
            p.load().with_context(|| format!("loading {prog}"))?;
        }
        let packets = Some(RingBuf::try_from(
            ebpf.take_map("PACKETS")
                .ok_or_else(|| anyhow!("no PACKETS"))?,
        )?);
        let sockets = Some(RingBuf::try_from(
            ebpf.take_map("SOCKETS")
                .ok_or_else(|| anyhow!("no SOCKETS"))?,
        )?);
        // Run time per program (what the recorder costs the node, reported while it runs),
        // checked here; the recorder turns it on and off (program_stats).
        let stats_ok = opts.self_cost
            && match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
                Ok(_fd) => true,
                Err(e) => {
                    unavailable.push(("BPF run-time statistics (self cost)".into(), e.to_string()));
                    false
                }
            };
        if cfg.flags & flags::PACKETS == 0 {
            programs.retain(|p| !p.starts_with("tc_"));
        }
        Ok(AyaKernel {
            ebpf,
            packets,
            sockets,
            links: HashMap::new(),
            unavailable,
            socket_hooks,
            flags: cfg.flags,
            programs,
            stats: None,
            stats_ok,
        })
    }
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    tracefs: &str,
    category: &str,
    name: &str,
    fields: &[(&str, usize)],
) -> Result<()> {
    check_format(tracefs, category, name, fields)?;
    let p: &mut TracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("no program {name}"))?
        .try_into()?;
    p.load()
        .with_context(|| format!("loading {name} (verifier)"))?;
    p.attach(category, name)
        .with_context(|| format!("attaching {category}/{name}"))?;
    Ok(())
}

/// Loads and attaches the `sock_*_length` programs. They read the syscall's saved registers
/// with x86_64's layout and syscall numbers, so other architectures use the syscall hooks.
fn attach_sock_hooks(ebpf: &mut Ebpf, tracefs: &str) -> Result<()> {
    if !cfg!(target_arch = "x86_64") {
        bail!(
            "the sock hooks read x86_64 registers; this is {}",
            std::env::consts::ARCH
        );
    }
    for name in SOCK_HOOKS {
        let path = format!("{tracefs}/events/sock/{name}");
        if !std::path::Path::new(&path).is_dir() {
            bail!("tracepoint sock/{name} not found (Linux 6.3 or later has it)");
        }
    }
    for name in SOCK_HOOKS {
        let p: &mut RawTracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow!("no program {name}"))?
            .try_into()?;
        p.load()
            .with_context(|| format!("loading {name} (verifier)"))?;
        p.attach(name)
            .with_context(|| format!("attaching raw tracepoint {name}"))?;
    }
    Ok(())
}

/// Loads the TLS uprobe programs (attached per library by [`Kernel::attach_tls`]).
fn load_tls_probes(ebpf: &mut Ebpf) -> Result<()> {
    for name in TLS_PROBES.iter().map(|(_, p)| *p).chain(TLS_EXTRA_PROGRAMS) {
        uprobe(ebpf, name)?
            .load()
            .with_context(|| format!("loading {name} (verifier)"))?;
    }
    Ok(())
}

/// The uprobe program `name`.
fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut UProbe> {
    Ok(ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("no program {name}"))?
        .try_into()?)
}

fn bump_memlock() -> std::io::Result<()> {
    let lim = nix::sys::resource::Resource::RLIMIT_MEMLOCK;
    nix::sys::resource::setrlimit(
        lim,
        nix::sys::resource::RLIM_INFINITY,
        nix::sys::resource::RLIM_INFINITY,
    )
    .map_err(std::io::Error::from)
}

impl Kernel for AyaKernel {
    fn attach_iface(&mut self, name: &str, ifindex: u32) -> Result<()> {
        // Packets off (`--no-packets`): the interface is followed (its owner is recorded) but
        // no program runs on its packets — attached, they would cost every packet a program
        // run that returns at once, which the cost line does not count (it reads only the
        // programs in use).
        if self.flags & flags::PACKETS == 0 {
            return Ok(());
        }
        let mut links = Vec::new();
        for (prog, ty) in [
            ("tc_ingress", TcAttachType::Ingress),
            ("tc_egress", TcAttachType::Egress),
        ] {
            let p: &mut SchedClassifier = self
                .ebpf
                .program_mut(prog)
                .ok_or_else(|| anyhow!("no program {prog}"))?
                .try_into()?;
            // aya attaches with TCX (appended after existing programs) on kernels 6.6 and
            // later; older kernels need a clsact qdisc (an existing one is kept).
            let tcx = aya::util::KernelVersion::current()
                .is_ok_and(|v| v >= aya::util::KernelVersion::new(6, 6, 0));
            if !tcx {
                let _ = aya::programs::tc::qdisc_add_clsact(name);
            }
            let link = p
                .attach(name, ty)
                .with_context(|| format!("attaching {prog} to {name}"))?;
            links.push((prog, link));
        }
        self.links.insert(ifindex, links);
        Ok(())
    }

    fn attach_tls(&mut self, lib: &std::path::Path) -> Result<Vec<&'static str>> {
        use aya::programs::uprobe::UProbeScope;
        if self.flags & flags::TLS == 0 {
            bail!("TLS plaintext is off");
        }
        let mut probed = Vec::new();
        for (func, prog) in TLS_PROBES {
            // The return probe first: an entry without its return would leave the thread
            // looking as if inside a call. A missing symbol (no `_ex` forms before OpenSSL
            // 1.1.1) leaves that function out.
            let Ok(ret) =
                uprobe(&mut self.ebpf, "ssl_return")?.attach(func, lib, UProbeScope::AllProcesses)
            else {
                continue;
            };
            if uprobe(&mut self.ebpf, prog)?
                .attach(func, lib, UProbeScope::AllProcesses)
                .is_err()
            {
                let _ = uprobe(&mut self.ebpf, "ssl_return")?.detach(ret);
                continue;
            }
            probed.push(func);
        }
        if probed.is_empty() {
            bail!("none of SSL_write, SSL_read, SSL_write_ex, SSL_read_ex could be probed");
        }
        Ok(probed)
    }

    fn attach_go_tls(&mut self, exe: &std::path::Path, go: &crate::gotls::GoTls) -> Result<usize> {
        use aya::programs::uprobe::{UProbeAttachLocation, UProbeScope};
        if self.flags & flags::TLS == 0 {
            bail!("TLS plaintext is off");
        }
        let mut links = Vec::new();
        let mut attach = |ebpf: &mut Ebpf, prog: &'static str, off: u64| -> Result<()> {
            let p = uprobe(ebpf, prog)?;
            let link = p
                .attach(
                    UProbeAttachLocation::AbsoluteOffset(off),
                    exe,
                    UProbeScope::AllProcesses,
                )
                .with_context(|| format!("{prog} at file offset {off:#x}"))?;
            links.push((prog, link));
            Ok(())
        };
        // Read's returns first: an entry without its returns would leave a call open.
        let mut result = Ok(());
        for off in &go.read.returns {
            result = result.and_then(|()| attach(&mut self.ebpf, "go_tls_return", *off));
        }
        result = result
            .and_then(|()| attach(&mut self.ebpf, "go_tls_write", go.write))
            .and_then(|()| attach(&mut self.ebpf, "go_tls_read", go.read.entry));
        if let Err(e) = result {
            for (prog, link) in links {
                if let Ok(p) = uprobe(&mut self.ebpf, prog) {
                    let _ = p.detach(link);
                }
            }
            return Err(e);
        }
        Ok(links.len())
    }

    fn add_go_itab(&mut self, itab: u64) -> Result<()> {
        let map = self
            .ebpf
            .map_mut("GO_ITABS")
            .ok_or_else(|| anyhow!("no map GO_ITABS"))?;
        let mut m: AyaHashMap<_, u64, u8> = AyaHashMap::try_from(map)?;
        m.insert(itab, 1, 0)
            .context("GO_ITABS is full (4,096 Go processes)")?;
        Ok(())
    }

    fn detach_iface(&mut self, ifindex: u32) {
        if let Some(links) = self.links.remove(&ifindex) {
            for (prog, link) in links {
                if let Some(Ok(p)) = self
                    .ebpf
                    .program_mut(prog)
                    .map(<&mut SchedClassifier>::try_from)
                {
                    // The interface may be gone already, taking its links with it.
                    let _ = p.detach(link);
                }
            }
        }
    }

    fn poll(&mut self, timeout: Duration, sink: &mut dyn FnMut(Event<'_>)) -> Result<usize> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let (Some(pk), Some(sk)) = (self.packets.as_mut(), self.sockets.as_mut()) else {
            return Ok(0);
        };
        {
            let mut fds = [
                PollFd::new(pk.as_fd(), PollFlags::POLLIN),
                PollFd::new(sk.as_fd(), PollFlags::POLLIN),
            ];
            let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
                .unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, ms) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut n = 0;
        while let Some(item) = sk.next() {
            if let Some((h, payload)) = parse::socket(&item) {
                sink(Event::Socket(h, payload));
                n += 1;
            }
        }
        while let Some(item) = pk.next() {
            if let Some((h, data)) = parse::packet(&item) {
                sink(Event::Packet(h, data));
                n += 1;
            }
        }
        Ok(n)
    }

    fn counters(&mut self) -> Result<Counters> {
        let arr: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("COUNTERS")
                .ok_or_else(|| anyhow!("no COUNTERS"))?,
        )?;
        let mut per_cpu: Vec<[u64; counter::COUNT as usize]> = Vec::new();
        for i in 0..counter::COUNT {
            let vals = arr.get(&i, 0)?;
            for (cpu, v) in vals.iter().enumerate() {
                if per_cpu.len() <= cpu {
                    per_cpu.resize(cpu + 1, [0; counter::COUNT as usize]);
                }
                per_cpu[cpu][i as usize] = *v;
            }
        }
        Ok(Counters { per_cpu })
    }

    fn program_stats(&mut self, on: bool) -> bool {
        if !on {
            self.stats = None;
        } else if self.stats.is_none() && self.stats_ok {
            self.stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).ok();
        }
        self.stats.is_some()
    }

    fn program_costs(&mut self) -> Vec<crate::cost::ProgramCost> {
        if !self.stats_ok {
            return Vec::new();
        }
        self.programs
            .iter()
            .filter_map(|&name| {
                let info = self.ebpf.program(name)?.info().ok()?;
                Some(crate::cost::ProgramCost {
                    name,
                    run_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                    runs: info.run_count(),
                })
            })
            .collect()
    }

    fn iface_counters(&mut self) -> Result<HashMap<u32, (u64, u64)>> {
        let m: PerCpuHashMap<_, u32, IfStat> = PerCpuHashMap::try_from(
            self.ebpf
                .map("IFSTATS")
                .ok_or_else(|| anyhow!("no IFSTATS"))?,
        )?;
        let mut out = HashMap::new();
        for item in m.iter() {
            let (ifindex, vals) = item?;
            let (s, d) = vals
                .iter()
                .fold((0, 0), |(s, d), v| (s + v.seen, d + v.dropped));
            out.insert(ifindex, (s, d));
        }
        Ok(out)
    }
}
