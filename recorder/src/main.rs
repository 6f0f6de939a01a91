//! `juno-record`: thin glue between the command line and the library.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use juno_archive::Entity;
use juno_common::{Config, counter, flags};
use juno_record::cli::{
    Cli, Cmd, PacketPayload, RecordArgs, SocketHooks, SocketPayload, parse_cidr,
};
use juno_record::ifaces::{self, Change, Selector, Table};
use juno_record::kernel::{AyaKernel, KernelOptions};
use juno_record::kube::{ApiConfig, KubeSource, Limits, Options};
use juno_record::log;
use juno_record::node::{self, CgroupIndex};
use juno_record::output::{Output, OutputConfig};
use juno_record::recorder::{Clock, LoopConfig, Recorder, Signals};

const PID_FILE: &str = ".juno-record.pid";

fn seal(out_dir: &Path) -> Result<()> {
    let pf = out_dir.join(PID_FILE);
    let pid: i32 = std::fs::read_to_string(&pf)
        .with_context(|| {
            format!(
                "no recorder is writing into {} ({} missing)",
                out_dir.display(),
                pf.display()
            )
        })?
        .trim()
        .parse()
        .with_context(|| format!("bad pid in {}", pf.display()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .with_context(|| format!("cannot signal the recorder (pid {pid})"))?;
    log(format!("asked recorder {pid} to seal its current file"));
    Ok(())
}

fn preflight() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "juno-record must run as root (it loads eBPF programs: CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and, for the syscall tracepoints, CAP_SYS_ADMIN)"
        );
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "/sys/kernel/btf/vmlinux is missing: the kernel must provide BTF (CONFIG_DEBUG_INFO_BTF=y)"
        );
    }
    if juno_record::kernel::tracefs().is_none() {
        // As root we can mount it; the socket hooks need it.
        let _ = std::fs::create_dir_all("/sys/kernel/tracing");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            log("mounted tracefs at /sys/kernel/tracing");
        }
    }
    Ok(())
}

fn record(a: RecordArgs) -> Result<()> {
    let out_dir = a
        .out_dir
        .clone()
        .ok_or_else(|| anyhow!("--out-dir is required"))?;
    if a.snaplen == 0 || a.snaplen as usize > juno_common::MAX_SNAPLEN {
        bail!("--snaplen must be in 1..={}", juno_common::MAX_SNAPLEN);
    }
    if a.payload_bytes as usize > juno_common::MAX_PAYLOAD {
        bail!(
            "--payload-bytes must be at most {}",
            juno_common::MAX_PAYLOAD
        );
    }
    if a.no_packets && a.no_sockets {
        bail!("--no-packets and --no-sockets together leave nothing to record");
    }
    let identity_only = a.socket_payload == SocketPayload::None && !a.no_sockets;
    if identity_only && a.no_packets {
        bail!("--socket-payload none with --no-packets would record no payload at all");
    }
    if identity_only && a.tls {
        bail!("--socket-payload none records no payload: --tls has nothing to add to it");
    }
    if identity_only && a.socket_hooks == SocketHooks::Syscalls {
        bail!("--socket-payload none needs the sock hooks (--socket-hooks sock or auto)");
    }
    let ring = u32::try_from(a.ring_size)
        .ok()
        .filter(|r| r.is_power_of_two() && *r >= 4096)
        .ok_or_else(|| anyhow!("--ring-size must be a power of two of at least 4 KiB"))?;
    // A sixteenth of the ring by default, shared among the CPUs: each CPU wakes the reader
    // once per its share written (the ring holds at most about a sixteenth when the reader is
    // woken, 1 MiB with 16 MiB rings); the reader drains every --drain-every besides.
    let wakeup_bytes = match a.wakeup_bytes {
        None => ring / 16,
        Some(w) => u32::try_from(w)
            .ok()
            .filter(|w| *w < ring)
            .ok_or_else(|| anyhow!("--wakeup-bytes must be less than --ring-size"))?,
    };
    let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u32;
    let wakeup_bytes = (wakeup_bytes / cpus).max(4096);
    let selector = match &a.iface {
        Some(re) => {
            Selector::Name(regex::Regex::new(re).with_context(|| format!("bad --iface {re:?}"))?)
        }
        None => Selector::Veths,
    };
    let redaction = a.redact.policy()?;
    let recipients = a.redact.recipients()?;
    // An explicit --kubeconfig that cannot be used fails here, before anything is loaded.
    let kube_config = ApiConfig::from_flags(a.no_kube, a.kubeconfig.clone()).load()?;
    preflight()?;
    let offsets = juno_record::btf::Btf::from_sys_fs()?
        .offsets()
        .context("reading kernel structure offsets from BTF")?;
    let cgroup_index = CgroupIndex::new(node::cgroup_root());
    let cgroups = node::wanted_cgroups(&a.cgroups, a.pods_only, &cgroup_index)?;
    let mut cgroup_ids = Vec::new();
    for c in &cgroups {
        cgroup_ids.push(
            cgroup_index
                .id_of(c)
                .ok_or_else(|| anyhow!("no cgroup {c} under /sys/fs/cgroup"))?,
        );
    }
    let cidrs = a
        .cidrs
        .iter()
        .map(|c| parse_cidr(c))
        .collect::<Result<Vec<_>>>()?;
    let mut fl = 0;
    if !a.no_packets {
        fl |= flags::PACKETS;
    }
    if !a.no_sockets {
        fl |= flags::SOCKETS;
        if a.tls {
            fl |= flags::TLS;
        }
    }
    if !cgroup_ids.is_empty() {
        fl |= flags::FILTER_CGROUPS;
    }
    if !a.ports.is_empty() {
        fl |= flags::FILTER_PORTS;
    }
    if !cidrs.is_empty() {
        fl |= flags::FILTER_CIDRS;
    }
    if identity_only {
        // Packets carry the bytes: they keep their payload.
        fl |= flags::IDENTITY_ONLY;
    } else if a.packet_payload == PacketPayload::Untraced {
        fl |= flags::DEDUP;
    }
    let config = Config {
        flags: fl,
        snaplen: a.snaplen,
        payload_bytes: a.payload_bytes,
        self_tgid: std::process::id(),
        wakeup_bytes,
        _pad: 0,
        offsets,
    };
    let kernel = AyaKernel::load(&KernelOptions {
        config,
        packet_ring: ring,
        socket_ring: ring,
        cgroups: cgroup_ids,
        ports: a.ports.clone(),
        cidrs: cidrs.clone(),
        socket_hooks: a.socket_hooks,
        self_cost: a.self_cost != juno_record::cli::SelfCost::Off,
    })?;
    let (hooks_used, dedup) = (kernel.socket_hooks, kernel.flags & flags::DEDUP != 0);
    let tls = kernel.flags & flags::TLS != 0;
    if identity_only && kernel.flags & flags::SOCK_HOOKS == 0 {
        bail!(
            "--socket-payload none needs the sock hooks, which this kernel lacks (Linux 6.3+, x86_64)"
        );
    }
    for (hook, why) in &kernel.unavailable {
        log(format!(
            "hook unavailable, continuing without it: {hook}: {why}"
        ));
    }

    let node_name = node::node_name(a.node_name.as_deref());
    let snapshot = Arc::new(Mutex::new(vec![Entity::Node(node::node_meta(&node_name))]));
    let clock = Clock::now();
    let output = Output::start(
        OutputConfig {
            out_dir: out_dir.clone(),
            node: node_name.clone(),
            max_file_size: a.max_file_size,
            rotate_every: a.rotate_every,
            max_total_size: a.max_total_size,
            frame_size: usize::try_from(a.frame_size)
                .unwrap_or(juno_archive::frame::DEFAULT_FRAME_SIZE),
            level: a.compression_level,
            nice: a.compression_nice,
            flush_every: a.flush_every,
            recorder: format!("juno-record {}", env!("CARGO_PKG_VERSION")),
            boot_time_ns: Some(clock.boot_time_ns()),
            snapshot: snapshot.clone(),
            redaction: redaction.clone(),
            redact_streams: a.redact.redact_streams,
            encrypt_to: recipients.clone(),
        },
        64,
    )?;
    std::fs::write(out_dir.join(PID_FILE), format!("{}\n", std::process::id()))?;

    let signals = Signals::default();
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, signals.stop.clone())?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, signals.seal.clone())?;

    let (ctx, crx) = crossbeam_channel::unbounded::<Change>();
    // Subscribe before listing, so that nothing falls between the two.
    let _watcher = ifaces::watch(ctx)?;
    let mut rec = Recorder::new(
        kernel,
        Table::new(selector),
        output.tx.clone(),
        cgroup_index,
        snapshot,
    );
    rec.set_recycler(output.recycled.clone());
    let kube = match kube_config {
        Some(c) => {
            let k = KubeSource::start(
                c,
                Options {
                    node: node_name.clone(),
                    limits: Limits::default(),
                },
            )?;
            rec.set_metadata(k.records.clone());
            rec.set_describer(k.describer());
            Some(k)
        }
        None => {
            // Standalone: veths are described by their peer's namespace and addresses.
            rec.set_describer(juno_record::netns::Peers::default().describer());
            None
        }
    };
    for i in ifaces::list()? {
        rec.iface_change(Change::Up(i));
    }
    if tls {
        rec.set_tls(juno_record::tls::TlsLibs::new("/proc"));
    }
    if !a.no_sockets {
        let conns: Vec<_> = node::existing_connections(100_000)
            .into_iter()
            .filter(|c| node::existing_wanted(c, &cgroups, &a.ports, &cidrs))
            .collect();
        rec.existing(&conns);
    }
    log(format!(
        "redaction: {}",
        if redaction.is_off() {
            "off (--no-redact all): payload is recorded as it was sent, secrets included"
                .to_string()
        } else {
            redaction.describe()
        }
    ));
    if !recipients.is_empty() {
        log(format!(
            "archives are encrypted to {} age recipient(s): {}",
            recipients.len(),
            recipients
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    log(format!(
        "recording into {} as node {node_name} (packets: {}, socket events: {}{}{})",
        out_dir.display(),
        match (a.no_packets, dedup) {
            (true, _) => "off",
            (false, true) => "on, headers only where socket events carry the payload",
            (false, false) => "on",
        },
        if a.no_sockets { "off" } else { "on, from " },
        if a.no_sockets { "" } else { hooks_used },
        if tls {
            ", with TLS plaintext"
        } else if identity_only {
            ", each connection's process and addresses only"
        } else {
            ""
        },
    ));
    let report = rec.run(
        &signals,
        &crx,
        &LoopConfig {
            duration: a.duration,
            batch: 512,
            stats_every: Duration::from_secs(5),
            cost_every: Duration::from_secs(60),
            // Events drained later than a frame is due would stretch what a crash loses.
            drain_every: a.drain_every.min(a.flush_every),
            self_cost: a.self_cost,
        },
    )?;
    for (iface, why) in &report.attach_errors {
        log(format!("could not capture on {iface}: {why}"));
    }
    drop(rec);
    if let Some(k) = kube {
        log(format!("kubernetes: {}", k.stats.summary()));
        k.stop();
    }
    let out = output.finish()?;
    let _ = std::fs::remove_file(out_dir.join(PID_FILE));
    let k = |i: u32| report.kernel[i as usize];
    log(format!(
        "stopped: {} events ({} packets, {} socket events), dropped: {} (ring buffer full: packets {}, socket events {}; queue full: {}), {} interfaces followed, {} files sealed, {} deleted by retention",
        report.events,
        k(counter::PACKETS_OUT),
        k(counter::SOCK_OUT),
        report.dropped(),
        k(counter::PACKETS_RINGBUF_FULL),
        k(counter::SOCK_RINGBUF_FULL),
        report.queue_dropped,
        report.attached,
        out.sealed.len(),
        out.deleted.len()
    ));
    if k(counter::PAYLOAD_UNAVAILABLE) + k(counter::PACKETS_HEADERS_ONLY) > 0 {
        log(format!(
            "socket events without payload (sendfile, splice, io_uring, ...): {}; packets kept as headers only (their payload in socket events): {}",
            k(counter::PAYLOAD_UNAVAILABLE),
            k(counter::PACKETS_HEADERS_ONLY),
        ));
    }
    if tls {
        log(format!(
            "TLS plaintext: {} libraries and Go programs probed; calls not recorded: {} (no socket), {} (socket gone), {} (no entry); ciphertext calls recorded as lengths: {}",
            report.tls_libs,
            k(counter::TLS_NO_SOCKET),
            k(counter::TLS_SOCKET_GONE),
            k(counter::TLS_NO_ENTRY),
            k(counter::TLS_CIPHERTEXT_SKIPPED),
        ));
    }
    if let Some(c) = &report.cost {
        log(format!("cost of the whole run: {c}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Some(Cmd::Seal { out_dir }) => seal(&out_dir),
        None => record(cli.record),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "juno-record: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
