//! Command-line options and their parsing into settings.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

/// Parses sizes such as `4096`, `512K`, `256MiB`, `4G`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => return Err(format!("unknown size unit {u:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// Parses durations such as `10s`, `5m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("not a duration: {s:?} ({e})"))
}

#[derive(Parser, Debug)]
#[command(
    name = "juno-record",
    version,
    about = "Record pod veth packets and socket events with eBPF into rotating Juno archives",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    #[command(flatten)]
    pub record: RecordArgs,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Ask the recorder writing into DIR to seal its current file now (SIGUSR1).
    Seal {
        /// The recorder's --out-dir.
        #[arg(long)]
        out_dir: PathBuf,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct RecordArgs {
    /// Directory for the archives.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Capture packets on interfaces whose name matches (default: every veth).
    #[arg(long)]
    pub iface: Option<String>,
    /// Bytes of each packet to keep (at most 16384).
    #[arg(long, default_value_t = 2048)]
    pub snaplen: u32,
    /// Bytes of socket payload to keep per syscall (at most 8192).
    #[arg(long, default_value_t = 4096)]
    pub payload_bytes: u32,
    /// Stop after this long (e.g. 10s, 5m); default: until SIGTERM or SIGINT.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seal a file at this compressed size.
    #[arg(long, value_parser = parse_size, default_value = "256MiB")]
    pub max_file_size: u64,
    /// Seal a file at this age.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub rotate_every: Duration,
    /// Delete the oldest archives of this node while they take more than this.
    #[arg(long, value_parser = parse_size, default_value = "4GiB")]
    pub max_total_size: u64,
    /// Node name for file names and metadata (default: $NODE_NAME, else the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Only traffic to or from these ports (repeatable).
    #[arg(long = "port")]
    pub ports: Vec<u16>,
    /// Only traffic to or from these networks (repeatable), e.g. 10.0.0.0/8.
    #[arg(long = "cidr")]
    pub cidrs: Vec<String>,
    /// Only socket events of processes in these cgroup v2 paths or below them (repeatable),
    /// e.g. /kubepods.slice: cgroups created under them later are included.
    #[arg(long = "cgroup")]
    pub cgroups: Vec<String>,
    /// Only socket events of Kubernetes pods: the cgroups kubelet puts them under
    /// (/kubepods.slice with the systemd cgroup driver, /kubepods with cgroupfs), with any
    /// --cgroup. Node processes (kubelet, the container runtime, sshd) are left out.
    #[arg(long)]
    pub pods_only: bool,
    /// Do not capture packets.
    #[arg(long)]
    pub no_packets: bool,
    /// Do not capture socket events.
    #[arg(long)]
    pub no_sockets: bool,
    /// Record TLS plaintext: uprobes on OpenSSL's SSL_read/SSL_write (and _ex) in every
    /// libssl the node's processes map record what processes read and wrote through TLS,
    /// tied to the socket (needs the `sock` hooks; docs/tls.md); the ciphertext of those
    /// calls is then recorded as lengths only. Off by default: each probed call costs the
    /// calling process two traps (about 9 µs of CPU measured on a 2-vCPU VM,
    /// docs/benchmarks.md), whether or not the process's events are kept.
    #[arg(long)]
    pub tls: bool,
    /// Where socket events come from: `sock` (the `sock_send_length`/`sock_recv_length`
    /// tracepoints, Linux 6.3 and later, x86_64: only socket I/O pays), `syscalls` (the
    /// read/write/send/recv/... syscall tracepoints: every such syscall of every process
    /// pays), or `auto` (`sock` where the kernel has it, else `syscalls`).
    #[arg(long, value_enum, default_value_t = SocketHooks::Auto)]
    pub socket_hooks: SocketHooks,
    /// With packets and socket events both on: `untraced` keeps only the headers of packets
    /// whose payload the socket events carry (a connection direction whose socket events
    /// could not carry it keeps whole packets from then on); `all` keeps every packet's
    /// payload up to --snaplen as well.
    #[arg(long, value_enum, default_value_t = PacketPayload::Untraced)]
    pub packet_payload: PacketPayload,
    /// What socket events carry: `copy` (default), the bytes each call sent or received, up
    /// to --payload-bytes; `none`, only each connection's process, cgroup and addresses, once
    /// (at its first call), with its bytes recorded from packets — the cheaper way to tie a
    /// pod's traffic to its processes when it crosses a captured interface (needs packets
    /// and the `sock` hooks; not with --tls).
    #[arg(long, value_enum, default_value_t = SocketPayload::Copy)]
    pub socket_payload: SocketPayload,
    /// Uncompressed bytes per compressed frame (also the compressor's window: a larger frame
    /// finds repeats further back, for more memory).
    #[arg(long, value_parser = parse_size, default_value = "4MiB")]
    pub frame_size: u64,
    /// zstd compression level (negative levels are zstd's --fast ones; the default, -1,
    /// compresses about 1.7x faster than zstd's usual 3 into files about 2% larger).
    #[arg(long, default_value_t = juno_archive::frame::DEFAULT_LEVEL, allow_negative_numbers = true)]
    pub compression_level: i32,
    /// Nice value added to the compression threads (encoder and writer: zstd), so that they
    /// give way to the node's applications when CPUs are contended; the thread that drains
    /// the kernel's ring buffers keeps its priority. 0 leaves them as they are.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub compression_nice: i32,
    /// Write a frame at least this often (bounds what a crash loses).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub flush_every: Duration,
    /// Wake the reader about every this many bytes written into a ring buffer (default: a
    /// sixteenth of --ring-size; each CPU wakes it once per its share); otherwise it drains
    /// them every --drain-every. Lower means more wakeups.
    #[arg(long, value_parser = parse_size)]
    pub wakeup_bytes: Option<u64>,
    /// The eBPF programs' own cost (the kernel's BPF run-time statistics, two clock reads per
    /// program run while on): `sampled` measures one second after every statistics reading
    /// (every 5 s) and reports the share of a CPU over the measured time; `always` keeps it
    /// on; `off` reports only the recorder process's own CPU time.
    #[arg(long, value_enum, default_value_t = SelfCost::Sampled)]
    pub self_cost: SelfCost,
    /// Drain the ring buffers at least this often (the reader sleeps at most this long; never
    /// longer than --flush-every). Busy rings wake the reader sooner (--wakeup-bytes): this
    /// bounds how long a trickle of events waits. Each timed wakeup costs the recorder CPU
    /// whether or not there are events (idle: about 0.4% of a CPU at 10ms, 0.09% at 100ms).
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    pub drain_every: Duration,
    /// Size of each eBPF ring buffer (packets, socket events).
    #[arg(long, value_parser = parse_size, default_value = "16MiB")]
    pub ring_size: u64,
    /// Kubernetes API access from this kubeconfig (its current context) instead of the pod's
    /// ServiceAccount.
    #[arg(long, value_name = "PATH", conflicts_with = "no_kube")]
    pub kubeconfig: Option<PathBuf>,
    /// Do not read pods, workloads and services from the Kubernetes API (by default they are
    /// read when the recorder runs in a pod with a ServiceAccount, or with --kubeconfig).
    #[arg(long)]
    pub no_kube: bool,
    /// Redaction of secrets in payload (crate::redaction, docs/redaction.md).
    #[command(flatten)]
    pub redact: crate::redaction::RedactArgs,
}

/// Where socket events come from (`--socket-hooks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketHooks {
    /// `sock` where available, else `syscalls`.
    Auto,
    /// `sock/sock_send_length` and `sock/sock_recv_length`.
    Sock,
    /// The syscall tracepoints.
    Syscalls,
}

/// How the eBPF programs' cost is measured (`--self-cost`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SelfCost {
    /// One second in every statistics period.
    Sampled,
    /// All the time.
    Always,
    /// Not at all.
    Off,
}

/// Which packets keep their payload when socket events are on too (`--packet-payload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PacketPayload {
    /// Packets whose payload the socket events do not carry.
    Untraced,
    /// Every packet.
    All,
}

/// What socket events carry (`--socket-payload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketPayload {
    /// The bytes of each call.
    Copy,
    /// Each connection's process, cgroup and addresses, once.
    None,
}

/// Parses `ADDR/LEN`.
pub fn parse_cidr(s: &str) -> Result<(std::net::IpAddr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let addr: std::net::IpAddr = a
        .parse()
        .map_err(|_| anyhow::anyhow!("not an address: {a:?}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = if l.is_empty() {
        max
    } else {
        l.parse()
            .map_err(|_| anyhow::anyhow!("bad prefix length in {s:?}"))?
    };
    if len > max {
        bail!("prefix length {len} too long in {s:?}");
    }
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert!(parse_size("4X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999T").is_err());
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn kubernetes_flags() {
        let a = Cli::try_parse_from(["juno-record", "--kubeconfig", "/etc/kc"]).unwrap();
        assert_eq!(a.record.kubeconfig, Some(PathBuf::from("/etc/kc")));
        assert!(!a.record.no_kube);
        assert!(
            Cli::try_parse_from(["juno-record", "--no-kube"])
                .unwrap()
                .record
                .no_kube
        );
        assert!(Cli::try_parse_from(["juno-record", "--no-kube", "--kubeconfig", "/k"]).is_err());
    }

    #[test]
    fn cidrs() {
        assert_eq!(
            parse_cidr("10.0.0.0/8").unwrap(),
            ("10.0.0.0".parse().unwrap(), 8)
        );
        assert_eq!(parse_cidr("fd00::/64").unwrap().1, 64);
        assert_eq!(parse_cidr("10.1.2.3").unwrap().1, 32);
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nope/8").is_err());
    }
}
