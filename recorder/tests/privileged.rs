//! Privileged integration suite (root; run by `scripts/test-privileged.sh`, built only with
//! `--features privileged`).
//!
//! Network namespaces joined to the host by veth pairs stand in for pods on a node: a server
//! pod runs real nginx and redis-server (Debian packages), a client pod runs real curl and
//! redis-cli; the host routes between them, so their traffic crosses both veths. The real
//! `juno-record` binary records it; the archives are then read with juno-archive and analyzed
//! with juno-analyze, and the exchanges the clients made must be there — as packets on the
//! veths and as socket payload of the right processes.
//!
//! One test adds Kubernetes metadata: there is no cluster here, so a fake API server
//! (tests/common/fake_api.rs) serves the stand-in pods as real-shaped JSON, and the real
//! `juno-analyze` binary must name the pods and workloads at both ends of every exchange.
//!
//! Every test uses its own namespaces, interfaces and subnets, and removes them when done
//! (Drop guards: processes, namespaces, veths, nftables tables, the recorder).
#![cfg(feature = "privileged")]
#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use juno_analyze::conn::views::LinkedConn;
use juno_analyze::input::Iface;
use juno_analyze::model::{Exchange, Vantage};
use juno_analyze::{Config, Sink};

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_ok(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A stand-in pod: a network namespace, a veth pair, an address on each side, a route to
/// the host.
struct Pod {
    ns: String,
    host_if: String,
    host_addr: String,
    addr: String,
}

impl Pod {
    fn new(ns: &str, host_if: &str, subnet: u8) -> Pod {
        let pod = Pod {
            ns: ns.into(),
            host_if: host_if.into(),
            host_addr: format!("10.210.{subnet}.1"),
            addr: format!("10.210.{subnet}.2"),
        };
        pod.down();
        let pif = format!("{host_if}-p");
        sh(&format!(
            "ip netns add {ns} && ip link add {host_if} type veth peer name {pif} && ip link set {pif} netns {ns} \
             && ip addr add {h}/24 dev {host_if} && ip link set {host_if} up \
             && ip -n {ns} addr add {a}/24 dev {pif} && ip -n {ns} link set {pif} up && ip -n {ns} link set lo up \
             && ip -n {ns} route add default via {h} \
             && (ethtool -K {host_if} tso off gso off gro off >/dev/null 2>&1 || true) \
             && (ip netns exec {ns} ethtool -K {pif} tso off gso off gro off >/dev/null 2>&1 || true)",
            h = pod.host_addr,
            a = pod.addr
        ));
        pod
    }

    /// A pod wired the way routed CNI plugins (Calico, the ptp plugin) wire one: the pod's
    /// address as a /32 on its `eth0`, a default route through a link-local gateway the host
    /// side answers for (here a permanent neighbour entry with the host veth's MAC, where
    /// Calico uses proxy ARP), and on the host a `/32` route to the pod through its veth —
    /// the route the recorder names the veth by. No address on the host side.
    fn routed(ns: &str, host_if: &str, addr: &str) -> Pod {
        let pod = Pod {
            ns: ns.into(),
            host_if: host_if.into(),
            host_addr: "169.254.1.1".into(),
            addr: addr.into(),
        };
        pod.down();
        sh(&format!(
            "ip netns add {ns} && ip link add {host_if} type veth peer name eth0 netns {ns} \
             && ip link set {host_if} up \
             && ip -n {ns} addr add {addr}/32 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up \
             && ip -n {ns} route add {gw} dev eth0 scope link && ip -n {ns} route add default via {gw} dev eth0 \
             && ip -n {ns} neigh add {gw} lladdr $(cat /sys/class/net/{host_if}/address) dev eth0 nud permanent \
             && ip route add {addr}/32 dev {host_if} \
             && (ethtool -K {host_if} tso off gso off gro off >/dev/null 2>&1 || true) \
             && (ip netns exec {ns} ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true)",
            gw = pod.host_addr,
        ));
        pod
    }

    /// A pod wired the way bridge CNI plugins (bridge, flannel) wire one: its veth's host
    /// side enslaved to the node's bridge, which holds the gateway address and the route to
    /// the whole pod subnet: no route names the pod's veth. `addr` (a /24 in the bridge's
    /// subnet) is set on the pod's `eth0` unless `None` (then [`Pod::address`] sets it
    /// later, as a CNI may).
    fn bridged(ns: &str, host_if: &str, bridge: &Bridge, addr: Option<&str>) -> Pod {
        let pod = Pod {
            ns: ns.into(),
            host_if: host_if.into(),
            host_addr: bridge.gw.clone(),
            addr: addr.unwrap_or_default().into(),
        };
        pod.down();
        sh(&format!(
            "ip netns add {ns} && ip link add {host_if} type veth peer name eth0 netns {ns} \
             && ip link set {host_if} master {br} up \
             && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up",
            br = bridge.name,
        ));
        if let Some(a) = addr {
            pod.address(a);
        }
        pod
    }

    fn address(&self, addr: &str) {
        sh(&format!(
            "ip -n {ns} addr add {addr}/24 dev eth0 && ip -n {ns} route add default via {gw}",
            ns = self.ns,
            gw = self.host_addr
        ));
    }

    /// Inode of the pod's network namespace.
    fn netns_inode(&self) -> u32 {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(format!("/run/netns/{}", self.ns))
            .unwrap()
            .ino();
        u32::try_from(ino).unwrap()
    }

    fn exec(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} {cmd}", self.ns))
    }

    fn spawn(&self, cmd: &str, log: &Path) -> Child {
        let f = std::fs::File::create(log).unwrap();
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "sh", "-c", cmd])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap()
    }

    fn down(&self) {
        sh_ok(&format!("ip link del {}", self.host_if));
        sh_ok(&format!("ip netns del {}", self.ns));
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // Processes in the namespace (servers) first.
        sh_ok(&format!("ip netns pids {} | xargs -r kill -9", self.ns));
        self.down();
    }
}

/// A Linux bridge with the gateway address of a /24 pod subnet, removed when dropped.
struct Bridge {
    name: String,
    gw: String,
}

impl Bridge {
    fn new(name: &str, gw: &str) -> Bridge {
        sh_ok(&format!("ip link del {name}"));
        sh(&format!(
            "ip link add {name} type bridge && ip addr add {gw}/24 dev {name} && ip link set {name} up"
        ));
        Bridge {
            name: name.into(),
            gw: gw.into(),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        sh_ok(&format!("ip link del {}", self.name));
    }
}

struct Forwarding(String);
impl Forwarding {
    fn on() -> Forwarding {
        let was = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        Forwarding(was)
    }
}
impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", self.0.trim());
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A server process, killed and reaped when dropped.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs nginx in `pod`, serving a few files on port 80.
fn nginx(pod: &Pod, dir: &Path) -> Server {
    nginx_on(pod, dir, 80)
}

/// The files the nginx servers serve, under `dir/www`: ten JSON documents of growing size
/// (`/api/item0.json` ...) and a 300 KB `/big.bin`.
fn write_www(dir: &Path) {
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("api")).unwrap();
    for i in 0..10 {
        std::fs::write(
            www.join(format!("api/item{i}.json")),
            format!("{{\"item\": {i}, \"pad\": \"{}\"}}\n", "x".repeat(200 * i)),
        )
        .unwrap();
    }
    std::fs::write(www.join("big.bin"), vec![b'B'; 300_000]).unwrap();
}

/// Runs nginx in `pod`, serving a few files on `port`.
fn nginx_on(pod: &Pod, dir: &Path, port: u16) -> Server {
    write_www(dir);
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1; user root; daemon off; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
             events {{ worker_connections 128; }}
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
                     uwsgi_temp_path {d}; scgi_temp_path {d};
                     server {{ listen {a}:{port}; root {d}/www; }} }}",
            a = pod.addr
        ),
    )
    .unwrap();
    let c = Server(pod.spawn(
        &format!("exec nginx -c {}", conf.display()),
        &dir.join("nginx.out"),
    ));
    let addr = pod.addr.clone();
    wait_for("nginx", Duration::from_secs(10), || {
        sh_ok(&format!(
            "curl -s -o /dev/null http://{addr}:{port}/api/item0.json"
        ))
    });
    c
}

fn redis(pod: &Pod, dir: &Path) -> Server {
    let c = Server(pod.spawn(
        &format!(
            "exec redis-server --bind {} --port 6379 --save '' --appendonly no --protected-mode no",
            pod.addr
        ),
        &dir.join("redis.out"),
    ));
    let addr = pod.addr.clone();
    wait_for("redis", Duration::from_secs(10), || {
        sh_ok(&format!("redis-cli -h {addr} PING | grep -q PONG"))
    });
    c
}

struct Recorder {
    child: Child,
    log: PathBuf,
}

impl Drop for Recorder {
    /// A test that failed before stopping it leaves no recorder behind (after `stop` or a
    /// kill the child is reaped, and this does nothing).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Recorder {
    fn start(out: &Path, args: &[&str]) -> Recorder {
        let log = out.with_extension("log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_juno-record"))
            .arg("--out-dir")
            .arg(out)
            .args(args)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        let l = log.clone();
        wait_for("the recorder to start", Duration::from_secs(30), || {
            std::fs::read_to_string(&l).is_ok_and(|s| s.contains("recording into"))
        });
        Recorder { child, log }
    }

    /// Stops it with SIGTERM (it seals its file) and returns its log.
    fn stop(mut self) -> String {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = self.child.wait().unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap();
        assert!(st.success(), "recorder failed: {log}");
        log
    }
}

/// Exchanges, the interface table, and the views each connection was linked from.
#[derive(Default)]
struct Collect(Vec<Exchange>, Vec<Iface>, Vec<LinkedConn>);
impl Sink for Collect {
    fn exchanges(&mut self, ex: &[&Exchange], ifaces: &[Iface]) -> anyhow::Result<()> {
        self.0.extend(ex.iter().map(|&e| e.clone()));
        self.1 = ifaces.to_vec();
        Ok(())
    }
    fn linked(&mut self, l: &[LinkedConn], _ifaces: &[Iface]) -> anyhow::Result<()> {
        self.2.extend_from_slice(l);
        Ok(())
    }
}

fn analyze(paths: &[PathBuf]) -> Collect {
    let mut c = Collect::default();
    juno_analyze::analyze(paths, &Config::default(), &mut c).unwrap();
    c
}

fn sealed(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".pcapng.zst"))
        .collect();
    v.sort();
    v
}

/// Calls `f` with every socket event of the archives, in order.
fn for_each_socket_event(paths: &[PathBuf], mut f: impl FnMut(&juno_archive::SocketEvent<'_>)) {
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        juno_archive::read_archive(&bytes, |item, _| {
            if let juno_archive::Item::Record(juno_archive::Record::Socket(s)) = item {
                f(s);
            }
        })
        .unwrap();
    }
}

/// Socket payload bytes per process name, from the archives (data events).
fn socket_payloads(paths: &[PathBuf]) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for_each_socket_event(paths, |s| {
        if s.kind == juno_archive::SocketEventKind::Data {
            out.entry(s.comm_str())
                .or_default()
                .extend_from_slice(s.payload);
        }
    });
    out
}

/// What [`pods_traffic`] recorded and what the clients saw.
struct Recorded {
    files: Vec<PathBuf>,
    log: String,
    got: Collect,
    /// HTTP path → status, as curl saw them.
    want: BTreeMap<String, u64>,
    cli_addr: String,
    srv_addr: String,
    _tmp: tempfile::TempDir,
}

impl Recorded {
    /// HTTP exchanges (path → status) seen from the vantage points `pred` accepts.
    fn http(&self, pred: &dyn Fn(&Exchange) -> bool) -> BTreeMap<String, u64> {
        self.got
            .0
            .iter()
            .filter(|e| e.protocol == "http" && pred(e))
            .map(|e| {
                let f = &e.fields;
                (
                    String::from_utf8_lossy(f.text("uri").unwrap()).into_owned(),
                    f.u64("status_code").unwrap_or(0),
                )
            })
            .collect()
    }

    fn iface_name(&self, e: &Exchange) -> Option<String> {
        match e.conn.vantage {
            Vantage::Packets { iface } => {
                self.got.1.get(iface as usize).and_then(|i| i.name.clone())
            }
            _ => None,
        }
    }

    /// Exchanges seen as packets.
    fn packets(&self) -> BTreeMap<String, u64> {
        self.http(&|e| self.iface_name(e).is_some())
    }

    /// Exchanges seen in the sockets of process `who`.
    fn socket(&self, who: &str) -> BTreeMap<String, u64> {
        self.http(&|e| comm(e).as_deref() == Some(who))
    }

    /// Checks what every recording of the socket vantage must hold: every request in curl's
    /// and in nginx's sockets, complete, with latencies, the client's address as the client;
    /// Redis commands byte for byte in redis-cli's and redis-server's payload.
    fn sockets_hold_everything(&self) {
        assert_eq!(
            self.socket("curl"),
            self.want,
            "exchanges seen in curl's sockets"
        );
        assert_eq!(
            self.socket("nginx"),
            self.want,
            "exchanges seen in nginx's sockets"
        );
        for e in self
            .got
            .0
            .iter()
            .filter(|e| e.protocol == "http" && comm(e).is_some())
        {
            assert_eq!(
                e.outcome,
                juno_analyze::model::Outcome::Complete,
                "{:?}",
                e.conn
            );
            assert!(e.latency_ns().is_some_and(|l| l > 0));
            assert_eq!(e.conn.orig.ip().to_string(), self.cli_addr);
            assert_eq!(e.conn.resp.ip().to_string(), self.srv_addr);
        }
        let payload = socket_payloads(&self.files);
        for cmd in [
            "*3\r\n$3\r\nSET\r\n$6\r\njuno:a\r\n$5\r\nalpha\r\n",
            "*2\r\n$3\r\nGET\r\n$6\r\njuno:b\r\n",
        ] {
            for who in ["redis-cli", "redis-server"] {
                let p = payload
                    .get(who)
                    .unwrap_or_else(|| panic!("no payload from {who}: {:?}", payload.keys()));
                assert!(
                    p.windows(cmd.len()).any(|w| w == cmd.as_bytes()),
                    "{who} payload lacks {cmd:?}"
                );
            }
        }
    }

    /// A counter of the recorder's closing log line `what: N`.
    fn logged(&self, what: &str) -> u64 {
        self.log
            .split(what)
            .nth(1)
            .and_then(|r| {
                r.trim_start_matches([':', ' '])
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what:?} in {}", self.log))
    }
}

fn comm(e: &Exchange) -> Option<String> {
    match &e.conn.vantage {
        Vantage::Socket { comm, .. } => Some(comm.clone()),
        _ => None,
    }
}

/// curl → nginx (ten requests and a 404) and redis-cli → redis-server (SET, GET) between two
/// pods, recorded on both pods' veths with `args` added to the recorder's command line.
fn pods_traffic(args: &[&str]) -> Recorded {
    let _fwd = Forwarding::on();
    let srv = Pod::new("jrt-srv", "jrts-h", 11);
    let cli = Pod::new("jrt-cli", "jrtc-h", 12);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx(&srv, tmp.path());
    let _redis = redis(&srv, tmp.path());
    let out = tmp.path().join("archives");
    let mut all = vec![
        "--iface",
        "^jrt[sc]-h$",
        "--node-name",
        "itest",
        "--payload-bytes",
        "4096",
    ];
    all.extend_from_slice(args);
    let rec = Recorder::start(&out, &all);

    // The clients' own view of what they did.
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..10 {
        let path = format!("/api/item{i}.json");
        let code = cli.exec(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' http://{}{path}",
            srv.addr
        ));
        assert_eq!(code, "200");
        want.insert(path, 200);
    }
    let code = cli.exec(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' http://{}/missing",
        srv.addr
    ));
    want.insert("/missing".into(), code.parse().unwrap());
    for (k, v) in [("juno:a", "alpha"), ("juno:b", "beta")] {
        assert_eq!(
            cli.exec(&format!("redis-cli -h {} SET {k} {v}", srv.addr))
                .trim(),
            "OK"
        );
        assert_eq!(
            cli.exec(&format!("redis-cli -h {} GET {k}", srv.addr))
                .trim(),
            v
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = rec.stop();
    assert!(log.contains("files sealed"), "{log}");
    let files = sealed(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    let got = analyze(&files);
    Recorded {
        files,
        log,
        got,
        want,
        cli_addr: cli.addr.clone(),
        srv_addr: srv.addr.clone(),
        _tmp: tmp,
    }
}

/// The recorder's statistics records: the last value of every counter (summed over CPUs).
fn stats_counters(paths: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut last: BTreeMap<(String, Option<u32>), u64> = BTreeMap::new();
    for p in paths {
        juno_archive::read_archive(&std::fs::read(p).unwrap(), |item, _| {
            if let juno_archive::Item::Record(juno_archive::Record::Stats(s)) = item {
                for c in &s.counters {
                    last.insert((c.name.clone(), c.cpu), c.value);
                }
            }
        })
        .unwrap();
    }
    let mut out = BTreeMap::new();
    for ((name, _), v) in last {
        *out.entry(name).or_default() += v;
    }
    out
}

/// The defaults: socket events from `sock_send_length`/`sock_recv_length`, which carry every
/// exchange in both processes; the packets of those connections keep only their headers (no
/// exchange can be read from them, every one is counted); and the recorder reports what it
/// cost, in its log and in the archive.
#[test]
fn pods_traffic_is_recorded_as_socket_payload_and_packet_headers() {
    let r = pods_traffic(&[]);
    assert!(r.log.contains("socket events: on, from sock"), "{}", r.log);
    assert!(
        !r.log.contains("TLS plaintext"),
        "TLS plaintext is opt-in: {}",
        r.log
    );
    r.sockets_hold_everything();
    assert_eq!(
        r.packets(),
        BTreeMap::new(),
        "packets of traced connections carry no payload"
    );
    assert!(
        r.logged("packets kept as headers only (their payload in socket events)") > 20,
        "{}",
        r.log
    );
    assert_eq!(
        r.logged("socket events without payload (sendfile, splice, io_uring, ...)"),
        0
    );
    // Packets were still recorded, whole headers and wire lengths: every connection is there.
    let stats = stats_counters(&r.files);
    assert!(stats["packets_out"] > 40, "{stats:?}");
    // What it cost, in the log and in the archive: the process's CPU time always; the
    // programs' run time is sampled (one second in five), so whether this short run's traffic
    // fell in a sample is left to the next test, which measures all the time.
    assert!(stats["process_cpu_ns"] > 0);
    let cost = r
        .log
        .lines()
        .find(|l| l.contains("cost of the whole run:"))
        .unwrap_or_else(|| panic!("{}", r.log));
    assert!(
        cost.contains("eBPF") && cost.contains("recorder process"),
        "{cost}"
    );
}

/// Socket events (kind, process name, local and remote address), from the archives.
fn socket_events(
    paths: &[PathBuf],
) -> Vec<(juno_archive::SocketEventKind, String, String, String)> {
    let mut out = Vec::new();
    for_each_socket_event(paths, |s| {
        out.push((
            s.kind,
            s.comm_str(),
            s.local.ip().to_string(),
            s.remote.ip().to_string(),
        ));
    });
    out
}

/// `--socket-payload none`: the socket events give each connection's processes and addresses
/// once (curl's and redis-cli's connects, nginx's and redis-server's accepts) and no data
/// event; the packets keep their payload, and every exchange is read from them.
#[test]
fn socket_payload_none_records_processes_once_and_payload_from_packets() {
    let r = pods_traffic(&["--socket-payload", "none", "--self-cost", "always"]);
    assert!(
        r.log
            .contains("each connection's process and addresses only"),
        "{}",
        r.log
    );
    assert_eq!(r.packets(), r.want, "exchanges read from the packets");
    assert!(
        r.got.0.iter().all(|e| comm(e).is_none()),
        "no exchange from socket payload"
    );
    let events = socket_events(&r.files);
    use juno_archive::SocketEventKind as K;
    assert!(
        !events.iter().any(|e| e.0 == K::Data),
        "data events: {events:?}"
    );
    let (cli, srv) = (r.cli_addr.as_str(), r.srv_addr.as_str());
    for (kind, who, local, remote) in [
        (K::Connect, "curl", cli, srv),
        (K::Accept, "nginx", srv, cli),
        (K::Connect, "redis-cli", cli, srv),
        (K::Accept, "redis-server", srv, cli),
    ] {
        let n = events
            .iter()
            .filter(|e| e.0 == kind && e.1 == who && e.2 == local && e.3 == remote)
            .count();
        // One per connection: eleven curl connections, four redis-cli ones.
        let want = if who.starts_with("redis") { 4 } else { 11 };
        assert_eq!(n, want, "{kind:?} by {who}: {events:?}");
    }
    // juno-analyze links each HTTP connection's packet views (both veths) with its two
    // socket views: the exchanges read from packets have their processes.
    let http: Vec<&LinkedConn> = r.got.2.iter().filter(|l| l.info.resp.port == 80).collect();
    assert_eq!(http.len(), 11, "{http:#?}");
    for l in http {
        let mut names: Vec<String> = l
            .views
            .iter()
            .map(|v| match &v.vantage {
                Vantage::Socket { comm, .. } => comm.clone(),
                Vantage::Packets { .. } => "packets".into(),
            })
            .collect();
        names.sort();
        assert_eq!(names, ["curl", "nginx", "packets", "packets"], "{l:#?}");
    }
    // No packet was cut to its headers (a counter never raised is not written).
    let stats = stats_counters(&r.files);
    assert!(stats["packets_out"] > 40, "{stats:?}");
    assert_eq!(stats.get("packets_headers_only"), None, "{stats:?}");
}

/// `--socket-payload none` refuses, before loading anything, what would record no payload or
/// cannot be done without payload.
#[test]
fn socket_payload_none_refuses_what_it_cannot_do() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, says) in [
        ("--no-packets", "would record no payload at all"),
        ("--tls", "--tls has nothing to add"),
        ("--socket-hooks=syscalls", "needs the sock hooks"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_juno-record"))
            .arg("--out-dir")
            .arg(tmp.path())
            .args(["--socket-payload", "none", extra, "--duration", "1s"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}: {err}");
        assert!(err.contains(says), "{extra}: {err}");
    }
}

/// `--packet-payload all`: the packets keep their payload too, and every exchange is read from
/// them as well (on both pods' veths: views of one connection, counted once).
#[test]
fn packet_payload_all_keeps_whole_packets_beside_socket_payload() {
    let r = pods_traffic(&["--packet-payload", "all", "--self-cost", "always"]);
    r.sockets_hold_everything();
    assert_eq!(r.packets(), r.want, "exchanges seen as packets");
    // Each connection was seen four times — both pods' veths, curl's socket, nginx's socket —
    // and is one connection: one uid, one view counted, the others duplicates (docs/fidelity.md).
    let mut views: BTreeMap<&str, Vec<&Exchange>> = BTreeMap::new();
    for e in r.got.0.iter().filter(|e| e.protocol == "http") {
        views.entry(e.conn.uid.as_str()).or_default().push(e);
    }
    assert_eq!(views.len(), r.want.len(), "one connection per curl");
    for (uid, v) in &views {
        let mut seen: Vec<String> = v
            .iter()
            .map(|e| r.iface_name(e).or_else(|| comm(e)).unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, ["curl", "jrtc-h", "jrts-h", "nginx"], "{uid}");
        assert_eq!(v.iter().filter(|e| !e.conn.duplicate).count(), 1, "{uid}");
    }
    assert!(!r.log.contains("packets kept as headers only"), "{}", r.log);
    // What it cost, measured all the time: per program, in the archive and in the log.
    let stats = stats_counters(&r.files);
    for prog in [
        "tc_ingress",
        "tc_egress",
        "sock_send_length",
        "sock_recv_length",
    ] {
        let runs = stats
            .get(&format!("ebpf_runs:{prog}"))
            .copied()
            .unwrap_or(0);
        let ns = stats
            .get(&format!("ebpf_run_ns:{prog}"))
            .copied()
            .unwrap_or(0);
        assert!(
            runs > 0 && ns > 0,
            "{prog}: {runs} runs, {ns} ns: {stats:?}"
        );
    }
    let cost = r
        .log
        .lines()
        .find(|l| l.contains("cost of the whole run:"))
        .unwrap_or_else(|| panic!("{}", r.log));
    assert!(
        cost.contains("sock_recv_length") && !cost.contains("measured over"),
        "{cost}"
    );
}

/// Loss on the way (an nftables rule in the host's forward path drops one in twenty of the
/// server's packets: after the server pod's veth saw them, before the client pod's did — this
/// kernel has no netem) is seen by the packet views as retransmissions and never by the
/// sockets; the four views of each connection still agree on its bytes, and `juno-analyze
/// report` says all of it in its capture-fidelity section (docs/fidelity.md).
#[test]
fn loss_on_the_wire_shows_in_the_packet_views_and_not_in_the_sockets() {
    let _fwd = Forwarding::on();
    let srv = Pod::new("jrl-srv", "jrls-h", 21);
    let cli = Pod::new("jrl-cli", "jrlc-h", 22);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx(&srv, tmp.path());
    let _loss = NftTable::lossy("jrlloss", &cli.addr, 20);
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--iface",
            "^jrl[sc]-h$",
            "--node-name",
            "itest",
            "--packet-payload",
            "all",
        ],
    );
    let fetches = 5;
    for _ in 0..fetches {
        let code = cli.exec(&format!(
            "curl -s --max-time 60 -o /dev/null -w '%{{http_code}}' http://{}/big.bin",
            srv.addr
        ));
        assert_eq!(code, "200");
    }
    std::thread::sleep(Duration::from_millis(500));
    rec.stop();
    let files = sealed(&out);
    let report = Command::new(juno_analyze_bin())
        .args(["--progress", "never", "report"])
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&report.stdout).into_owned();
    let fidelity = report
        .split("Capture fidelity")
        .nth(1)
        .unwrap_or_else(|| panic!("no capture-fidelity section in\n{report}"));
    let line = |start: &str| -> String {
        fidelity
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} in\n{report}"))
            .to_string()
    };
    // Four views of every connection, all agreeing on its bytes.
    assert_eq!(
        line("  connections  "),
        format!("  connections  {fetches} seen from several vantage points; from one only: none"),
        "{report}"
    );
    assert_eq!(
        line("  agreement    "),
        format!(
            "  agreement    {fetches} connections whose views saw the same stream length, 0 that differ"
        ),
        "{report}"
    );
    // Retransmissions in the packet views (both veths saw each copy; the client's veth also
    // the copies that got through after a loss, so nothing is missing), none in the sockets,
    // whose only missing bytes are those beyond the recorder's payload limit (4 KiB a call).
    let packets = line("  packets      ");
    assert!(
        packets.starts_with(&format!(
            "  packets      {} views: payload read",
            2 * fetches
        )) && packets.contains("missing 0 B in 0 views")
            && !packets.ends_with("retransmitted 0 B"),
        "{report}"
    );
    let sockets = line("  socket       ");
    assert!(
        sockets.starts_with(&format!("  socket       {} views:", 2 * fetches))
            && sockets.contains("(lost 0 B, not captured ")
            && !sockets.contains("not captured 0 B")
            && sockets.ends_with("retransmitted 0 B"),
        "{report}"
    );
}

/// `--socket-hooks syscalls` (what kernels before 6.3 get): the syscall tracepoints carry the
/// same exchanges.
#[test]
fn syscall_hooks_record_the_same_exchanges() {
    let r = pods_traffic(&["--socket-hooks", "syscalls"]);
    assert!(
        r.log.contains("socket events: on, from syscalls"),
        "{}",
        r.log
    );
    r.sockets_hold_everything();
    assert_eq!(r.packets(), BTreeMap::new());
    let stats = stats_counters(&r.files);
    assert!(
        stats.get("ebpf_runs:sys_exit_read").copied().unwrap_or(0)
            + stats
                .get("ebpf_runs:sys_exit_recvfrom")
                .copied()
                .unwrap_or(0)
            > 0,
        "{stats:?}"
    );
}

#[test]
fn kill_9_leaves_an_archive_read_up_to_its_last_frame() {
    let srv = Pod::new("jrk-srv", "jrks-h", 21);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx(&srv, tmp.path());
    let out = tmp.path().join("archives");
    let mut rec = Recorder::start(
        &out,
        &[
            "--iface",
            "^jrks-h$",
            "--node-name",
            "killtest",
            "--flush-every",
            "200ms",
        ],
    );
    // Spread over several --flush-every periods, so that several frames are complete.
    for i in 0..20 {
        sh(&format!(
            "curl -s -o /dev/null http://{}/api/item{}.json",
            srv.addr,
            i % 10
        ));
        std::thread::sleep(Duration::from_millis(60));
    }
    std::thread::sleep(Duration::from_millis(800));
    // More traffic, some of it in the frame being written when the recorder dies.
    for _ in 0..5 {
        sh(&format!("curl -s -o /dev/null http://{}/big.bin", srv.addr));
    }
    rec.child.kill().unwrap();
    rec.child.wait().unwrap();
    let partial: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert_eq!(partial.len(), 1, "{partial:?}");
    let bytes = std::fs::read(&partial[0]).unwrap();
    let mut packets = 0;
    let rep = juno_archive::read_archive(&bytes, |item, _| {
        if matches!(item, juno_archive::Item::Packet(_)) {
            packets += 1;
        }
    })
    .unwrap();
    assert!(rep.frames >= 2, "{rep:?}");
    assert!(packets > 100, "{packets} packets survived");
    // The analyzer reads it (named explicitly: directories skip .partial files).
    let got = analyze(&partial);
    let small = got
        .0
        .iter()
        .filter(|e| {
            e.fields
                .text("uri")
                .is_some_and(|u| u.starts_with(b"/api/item"))
        })
        .count();
    assert!(small >= 20, "{small} exchanges from before the last frames");
    // The next start seals it under its final name.
    let rec = Recorder::start(&out, &["--iface", "^jrks-h$", "--node-name", "killtest"]);
    let log = rec.stop();
    assert!(log.contains("recovered"), "{log}");
    assert_eq!(sealed(&out).len(), 2);
}

#[test]
fn rotation_retention_and_seal_on_demand_hold_under_traffic() {
    let srv = Pod::new("jrr-srv", "jrrs-h", 31);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx(&srv, tmp.path());
    let out = tmp.path().join("archives");
    let max_file = 256 * 1024u64;
    let max_total = 1024 * 1024u64;
    let rec = Recorder::start(
        &out,
        &[
            "--iface",
            "^jrrs-h$",
            "--node-name",
            "rottest",
            "--no-sockets",
            "--max-file-size",
            "256KiB",
            "--max-total-size",
            "1MiB",
            "--frame-size",
            "64KiB",
            "--flush-every",
            "100ms",
            "--compression-level",
            "1",
        ],
    );
    // Seal on demand: a sealed file appears while the recorder keeps going.
    sh(&format!(
        "curl -s -o /dev/null http://{}/api/item1.json",
        srv.addr
    ));
    std::thread::sleep(Duration::from_millis(300));
    let seal = Command::new(env!("CARGO_BIN_EXE_juno-record"))
        .args(["seal", "--out-dir"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(seal.success());
    wait_for("a sealed file", Duration::from_secs(5), || {
        !sealed(&out).is_empty()
    });
    // Incompressible traffic, well over the retention limit.
    let mut rand = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 400_000),
        &mut rand,
    )
    .unwrap();
    std::fs::write(tmp.path().join("www/rand.bin"), rand).unwrap();
    for _ in 0..40 {
        sh(&format!(
            "curl -s -o /dev/null http://{}/rand.bin",
            srv.addr
        ));
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = rec.stop();
    let files = sealed(&out);
    let stopped = log
        .lines()
        .find(|l| l.contains("stopped:"))
        .unwrap_or_default();
    let count = |suffix: &str| -> u64 {
        stopped
            .split(", ")
            .find_map(|s| s.trim().strip_suffix(suffix))
            .unwrap()
            .parse()
            .unwrap()
    };
    // Rotation at work (many files sealed) and retention too (some deleted, the newest kept,
    // the rest within the total). How many files fit depends on how far the last ones
    // overshot the file size, so that is not asserted.
    assert!(count(" files sealed") >= 4, "{log}");
    assert!(!files.is_empty(), "{log}");
    let total: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        total <= max_total,
        "{total} bytes kept, limit {max_total}\n{log}"
    );
    assert!(count(" deleted by retention") > 0, "{log}");
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        // The size is checked after every packet, counting what waits for the compressor
        // at full size (most of it) and a quarter of the open frame: a file passes the
        // size by less than a frame (64 KiB here), whatever the batches the ring buffer
        // gives (before it was checked per batch, and one file reached 3.1 times the size).
        assert!(
            size <= max_file + 64 * 1024,
            "{} is {size} bytes",
            f.display()
        );
        let rep = juno_archive::read_archive(&std::fs::read(f).unwrap(), |_, _| {}).unwrap();
        assert!(rep.trailing.is_none());
    }
}

#[test]
fn interfaces_that_appear_while_recording_are_captured() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--iface",
            "^jrl.-h$",
            "--node-name",
            "latetest",
            "--no-sockets",
        ],
    );
    // The pod appears after the recorder started: netlink tells it.
    let pod = Pod::new("jrl-srv", "jrla-h", 41);
    let _nginx = nginx(&pod, tmp.path());
    // Attaching follows the netlink notification (and naming the interface, a route lookup);
    // give it a moment before the requests that must be captured.
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..5 {
        sh(&format!(
            "curl -s -o /dev/null http://{}/api/item{i}.json",
            pod.addr
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(_nginx);
    let log = rec.stop();
    let got = analyze(&sealed(&out));
    let on_iface = got
        .0
        .iter()
        .filter(|e| matches!(e.conn.vantage, Vantage::Packets { iface } if got.1.get(iface as usize).and_then(|i| i.name.as_deref()) == Some("jrla-h")))
        .count();
    // nginx's readiness probe adds requests of its own; the five are among them.
    assert!(
        on_iface >= 5,
        "{on_iface} exchanges on the late interface\n{log}"
    );
}

/// The tc programs attached to an interface (TCX, ingress and egress), by name, sorted.
fn tc_programs(iface: &str) -> Vec<String> {
    use aya::programs::tc::{SchedClassifier, TcAttachType};
    let mut names = Vec::new();
    for t in [TcAttachType::Ingress, TcAttachType::Egress] {
        if let Ok((_, infos)) = SchedClassifier::query_tcx(iface, t) {
            names.extend(
                infos
                    .iter()
                    .filter_map(|i| i.name_as_str().map(String::from)),
            );
        }
    }
    names.sort();
    names
}

/// With packets off (`--no-packets`) no program runs on a followed interface's packets (it is
/// still followed: described in the archive); with packets on, both tc programs are attached,
/// and detached when the recorder stops.
#[test]
fn packets_off_attaches_no_program_to_interfaces() {
    let pod = Pod::new("jrn-srv", "jrna-h", 45);
    let tmp = tempfile::tempdir().unwrap();
    for packets in [false, true] {
        let out = tmp.path().join(if packets { "packets" } else { "sockets" });
        let mut args = vec!["--iface", "^jrna-h$", "--node-name", "tctest"];
        if !packets {
            args.push("--no-packets");
        }
        let rec = Recorder::start(&out, &args);
        if packets {
            wait_for("both tc programs", Duration::from_secs(10), || {
                tc_programs("jrna-h") == ["tc_egress", "tc_ingress"]
            });
        } else {
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                assert_eq!(tc_programs("jrna-h"), Vec::<String>::new());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let log = rec.stop();
        assert_eq!(tc_programs("jrna-h"), Vec::<String>::new(), "{log}");
        let described = iface_descriptions(&out);
        assert!(
            described.iter().any(|(n, _)| n == "jrna-h"),
            "packets {packets}: {described:?}\n{log}"
        );
    }
    drop(pod);
}

/// A cgroup v2 directory made for a test, removed when dropped (its processes have exited).
struct Cgroup(PathBuf);
impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn the_cgroup_filter_keeps_processes_in_a_cgroup_and_the_cgroups_created_under_it() {
    use std::os::unix::fs::MetadataExt;
    let pod = Pod::new("jrg-srv", "jrga-h", 51);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx(&pod, tmp.path());
    let name = format!("juno-cgtest-{}", std::process::id());
    let root = juno_record::node::cgroup_root();
    let parent = Cgroup(root.join(&name));
    std::fs::create_dir(&parent.0).unwrap();
    // A connection outside the cgroup that predates the recorder: its /proc entry must be
    // filtered like the kernel filters socket events.
    let mut idle = Server(
        Command::new("bash")
            .arg("-c")
            .arg(format!("exec 3<>/dev/tcp/{}/80; sleep 30", pod.addr))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        idle.0.try_wait().unwrap().is_none(),
        "the idle connection failed"
    );
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--cgroup",
            &format!("/{name}"),
            "--iface",
            "^jrga-h$",
            "--node-name",
            "cgtest",
        ],
    );
    // A child cgroup created after the recorder started (a pod started later) is covered by
    // the filter on its parent; a process outside both is not recorded.
    let child = Cgroup(parent.0.join("inner"));
    std::fs::create_dir(&child.0).unwrap();
    let child_id = std::fs::metadata(&child.0).unwrap().ino();
    sh(&format!(
        "sh -c 'echo $$ > {}/cgroup.procs && exec curl -sf -o /dev/null http://{}/api/item1.json'",
        child.0.display(),
        pod.addr
    ));
    sh(&format!(
        "curl -sf -o /dev/null http://{}/api/item2.json",
        pod.addr
    ));
    // The verdict is the socket's, taken at its first data: a process that leaves the
    // cgroup in the middle of a keep-alive connection is still recorded on that socket.
    let mover = tmp.path().join("mover.py");
    std::fs::write(
        &mover,
        format!(
            "import http.client, os\n\
             c = http.client.HTTPConnection('{}', 80)\n\
             c.request('GET', '/api/item3.json'); assert c.getresponse().read()\n\
             open('{}/cgroup.procs', 'w').write(str(os.getpid()))\n\
             c.request('GET', '/api/item4.json'); assert c.getresponse().read()\n",
            pod.addr,
            root.display()
        ),
    )
    .unwrap();
    sh(&format!(
        "sh -c 'echo $$ > {}/cgroup.procs && exec python3 {}'",
        child.0.display(),
        mover.display()
    ));
    std::thread::sleep(Duration::from_millis(300));
    let log = rec.stop();
    let files = sealed(&out);
    let got = analyze(&files);
    let seen: Vec<(String, String)> = got
        .0
        .iter()
        .filter_map(|e| match &e.conn.vantage {
            Vantage::Socket { comm, .. } if e.protocol == "http" => Some((
                comm.clone(),
                String::from_utf8_lossy(e.fields.text("uri").unwrap()).into_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("curl".to_string(), "/api/item1.json".to_string()),
            ("python3".to_string(), "/api/item3.json".to_string()),
            ("python3".to_string(), "/api/item4.json".to_string())
        ],
        "{log}"
    );
    // Packets keep only their headers where socket events carry the payload (the traced
    // curl's connection), and their payload where nothing traced carries it.
    let as_packets: Vec<String> = got
        .0
        .iter()
        .filter(|e| e.protocol == "http" && matches!(e.conn.vantage, Vantage::Packets { .. }))
        .map(|e| String::from_utf8_lossy(e.fields.text("uri").unwrap()).into_owned())
        .collect();
    assert_eq!(as_packets, ["/api/item2.json"], "{log}");
    // Every event from a syscall carries the child cgroup's id, except python3's second
    // request (from the root cgroup); state changes (softirq context: any task) are kept
    // only for the sockets curl and python3 used.
    let mut cgroups = std::collections::BTreeSet::new();
    let mut cookies = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for p in &files {
        juno_archive::read_archive(&std::fs::read(p).unwrap(), |item, _| {
            if let juno_archive::Item::Record(juno_archive::Record::Socket(s)) = item {
                if s.kind != juno_archive::SocketEventKind::StateChange {
                    cgroups.insert(s.cgroup_id);
                }
                // A socket's cookie is its kernel address, which the next socket can get
                // once the first is freed (curl's is closed before python3 connects): sockets
                // are told apart by cookie and local port (once bound: the state change to
                // SYN_SENT comes before the port).
                if s.local.port() != 0 {
                    cookies.insert((s.cookie, s.local.port()));
                }
                kinds.insert(format!("{:?}", s.kind));
            }
        })
        .unwrap();
    }
    let root_id = std::fs::metadata(root).unwrap().ino();
    assert_eq!(cgroups, [child_id, root_id].into(), "{log}");
    assert_eq!(cookies.len(), 2, "{cookies:?} {log}");
    assert!(
        kinds.contains("StateChange") && kinds.contains("Connect"),
        "{kinds:?}"
    );
    drop(child);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes metadata, end to end

/// An nftables table of ours (`ip <name>`), deleted when dropped.
struct NftTable(String);

impl NftTable {
    /// A table `name` with one chain `chain` (its nftables spec: type, hook, priority) holding
    /// one `rule`.
    fn with_rule(name: &str, chain: &str, spec: &str, rule: &str) -> NftTable {
        assert!(
            sh_ok("command -v nft"),
            "nft is missing (Debian package nftables; scripts/setup.sh installs it)"
        );
        let t = NftTable(name.into());
        sh_ok(&format!("nft delete table ip {name}"));
        sh(&format!(
            "nft add table ip {name} \
             && nft add chain ip {name} {chain} '{{ {spec}; policy accept; }}' \
             && nft add rule ip {name} {chain} {rule}"
        ));
        t
    }

    /// What kube-proxy's iptables/nftables mode does for a ClusterIP: DNAT in prerouting from
    /// `cluster_ip:port` to `pod_ip:target_port`.
    fn dnat(name: &str, cluster_ip: &str, port: u16, pod_ip: &str, target_port: u16) -> NftTable {
        NftTable::with_rule(
            name,
            "prerouting",
            "type nat hook prerouting priority dstnat",
            &format!("ip daddr {cluster_ip} tcp dport {port} dnat to {pod_ip}:{target_port}"),
        )
    }

    /// Drops one in `one_in` of the TCP packets from port 80 forwarded to `to`, at random.
    fn lossy(name: &str, to: &str, one_in: u32) -> NftTable {
        NftTable::with_rule(
            name,
            "lossy",
            "type filter hook forward priority 0",
            &format!("ip daddr {to} tcp sport 80 numgen random mod {one_in} 0 drop"),
        )
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        sh_ok(&format!("nft delete table ip {}", self.0));
    }
}

/// The metadata records of the file being written (read up to its last complete frame).
fn meta_being_written(dir: &Path) -> Vec<(juno_archive::MetaOp, juno_archive::Entity)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for p in rd.flatten().map(|e| e.path()) {
        if !p.to_string_lossy().ends_with(".partial") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        let _ = juno_archive::read_archive(&bytes, |item, _| {
            if let juno_archive::Item::Record(juno_archive::Record::Metadata(m)) = item {
                out.push((m.op, m.entity.clone()));
            }
        });
    }
    out
}

/// Whether `recs` has a pod upsert for `name` holding `ip`, and an interface named by the pod
/// (the recorder captures the veth and knows its pod).
fn pod_and_veth_known(
    recs: &[(juno_archive::MetaOp, juno_archive::Entity)],
    uid: &str,
    ip: &str,
    veth: &str,
) -> bool {
    use juno_archive::Entity;
    let ip: std::net::IpAddr = ip.parse().unwrap();
    recs.iter()
        .any(|(_, e)| matches!(e, Entity::Pod(p) if p.uid == uid && p.ips == [ip]))
        && recs.iter().any(|(_, e)| {
            matches!(e, Entity::Interface(i) if i.name == veth && i.pod_uid.as_deref() == Some(uid))
        })
}

/// The `juno-analyze` binary of this build (target/<profile>/juno-analyze, beside the
/// directory of this test binary). scripts/test-privileged.sh builds it first.
fn juno_analyze_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("juno-analyze");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --release -p juno-analyze`; scripts/test-privileged.sh does)",
        bin.display()
    );
    bin
}

/// One end of an exchange as `juno-analyze logs` names it: ip, pod, namespace, workload kind,
/// workload, service, node.
type End = [Option<String>; 7];

fn end(v: &serde_json::Value) -> End {
    [
        "ip",
        "pod",
        "namespace",
        "workload_kind",
        "workload",
        "service",
        "node",
    ]
    .map(|k| v.get(k).and_then(|x| x.as_str()).map(str::to_string))
}

/// A pod of node `jk8s-node` as `juno-analyze` should name it.
fn pod_end(ip: &str, pod: &str, ns: &str, kind: &str, workload: &str) -> End {
    // The node is `NODE` of the test below.
    [
        Some(ip.into()),
        Some(pod.into()),
        Some(ns.into()),
        Some(kind.into()),
        Some(workload.into()),
        None,
        Some("jk8s-node".into()),
    ]
}

/// A service as `juno-analyze` should name it (a cluster IP: no pod, no workload).
fn service_end(ip: &str, ns: &str, name: &str) -> End {
    [
        Some(ip.into()),
        None,
        Some(ns.into()),
        None,
        None,
        Some(name.into()),
        None,
    ]
}

/// Pod metadata from a fake Kubernetes API server names both ends of every exchange, at the
/// exchange's time, from both vantage points (packets on the veths, the processes' sockets).
///
/// There is no Kubernetes cluster here, and no kubelet, container runtime or kube-proxy. The
/// API server is a fake (tests/common/fake_api.rs) serving real-shaped JSON lists and watch
/// streams for pods, services, ReplicaSets and Jobs; `juno-record` reads it through
/// `--kubeconfig` exactly as it would a real one. The pods are network namespaces wired like
/// a routed CNI (Calico, ptp) would wire them: a host-side veth each, a /32 host route per pod
/// address; the service is an nftables DNAT rule like kube-proxy's. What runs in them is
/// real: nginx in the `web` Deployment's pod, redis-server in the `cache` StatefulSet's pod,
/// curl and redis-cli in a client pod. The client pod is first a CronJob's Job pod; it
/// completes and is deleted, and a Deployment's pod gets the same address (a new namespace
/// and veth, as a CNI would give it) and makes the same kinds of requests: the analyzer must
/// name each exchange by whoever held the address at its time.
///
/// Every exchange `juno-analyze logs` writes is compared with the list the test derives
/// from what the clients did, per vantage point: the client's veth (its pod, and the service
/// for a ClusterIP, whose DNAT happens after that veth's tc ingress), the web pod's veth for
/// connections through the service (a different 5-tuple after DNAT, so not a duplicate),
/// curl's and redis-cli's sockets (curl's peer address is the cluster IP) and nginx's and
/// redis-server's (the pod address). Socket events are named by their addresses, like
/// packets: the processes here sit in the test's cgroup, not a pod's (naming by cgroup is
/// `socket_events_are_named_by_the_pod_of_their_cgroup`).
#[test]
fn pods_workloads_and_services_name_both_ends_of_every_exchange() {
    use common::fake_api::{
        self, FakeApi, Gate, Script, Step, ev, list, owner_ref, partial_meta, service,
    };
    use serde_json::json;

    const NODE: &str = "jk8s-node";
    const WEB_IP: &str = "10.247.0.10";
    const CACHE_IP: &str = "10.247.0.11";
    const CLIENT_IP: &str = "10.247.0.12";
    const SVC_IP: &str = "10.97.247.80";
    let analyzer = juno_analyze_bin();
    let _fwd = Forwarding::on();
    let web = Pod::routed("jk8s-web", "jk8sw", WEB_IP);
    let cache = Pod::routed("jk8s-cache", "jk8sc", CACHE_IP);
    let probe = Pod::routed("jk8s-probe", "jk8sp", CLIENT_IP);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx_on(&web, tmp.path(), 8080);
    let _redis = redis(&cache, tmp.path());
    let _svc = NftTable::dnat("jk8s", SVC_IP, 80, WEB_IP, 8080);
    // The service answers (before the recorder starts: this request is not one to name).
    wait_for("the service's DNAT", Duration::from_secs(5), || {
        sh_ok(&format!(
            "ip netns exec {} curl -sf -o /dev/null http://{SVC_IP}/api/item0.json",
            probe.ns
        ))
    });

    // What the API server says: the node's pods, their owners, the services.
    let pod = |ns, name, uid, rv, owner, ip| fake_api::pod(ns, NODE, name, uid, rv, owner, ip);
    let web_pod = pod(
        "shop",
        "web-5d8f7c6b9-x2x7q",
        "u-web",
        "90",
        Some(owner_ref("apps/v1", "ReplicaSet", "web-5d8f7c6b9")),
        Some(WEB_IP),
    );
    let cache_pod = pod(
        "shop",
        "cache-0",
        "u-cache",
        "91",
        Some(owner_ref("apps/v1", "StatefulSet", "cache")),
        Some(CACHE_IP),
    );
    let probe_pod = |rv| {
        pod(
            "ops",
            "probe-29000000-k7q2d",
            "u-probe",
            rv,
            Some(owner_ref("batch/v1", "Job", "probe-29000000")),
            Some(CLIENT_IP),
        )
    };
    // The Job's pod completes: the API still shows its address, the node has freed it.
    let mut probe_done = probe_pod("110");
    probe_done["status"]["phase"] = json!("Succeeded");
    probe_done["status"]["containerStatuses"][0]["ready"] = json!(false);
    probe_done["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
        "exitCode": 0, "reason": "Completed",
        "startedAt": "2026-11-23T17:00:02Z", "finishedAt": "2026-11-23T17:00:09Z"}});
    let loadgen_pod = pod(
        "ops",
        "loadgen-6c9d8b7f4-m4n8s",
        "u-loadgen",
        "112",
        Some(owner_ref("apps/v1", "ReplicaSet", "loadgen-6c9d8b7f4")),
        Some(CLIENT_IP),
    );
    let gate = Gate::default();
    let mut script = Script {
        metadata: [
            ("shop", "replicasets", "web-5d8f7c6b9", "Deployment", "web"),
            (
                "ops",
                "replicasets",
                "loadgen-6c9d8b7f4",
                "Deployment",
                "loadgen",
            ),
            ("ops", "jobs", "probe-29000000", "CronJob", "probe"),
        ]
        .into_iter()
        .map(|(ns, res, name, kind, workload)| {
            let (group, api) = if res == "jobs" {
                ("batch", "batch/v1")
            } else {
                ("apps", "apps/v1")
            };
            (
                format!("/apis/{group}/v1/namespaces/{ns}/{res}/{name}"),
                partial_meta(ns, name, owner_ref(api, kind, workload)),
            )
        })
        .collect(),
        ..Default::default()
    };
    script.pod_lists.push_back(list(
        "PodList",
        "100",
        vec![web_pod, cache_pod, probe_pod("92")],
    ));
    script.pod_watches.push_back(vec![
        Step::Wait(gate.clone()),
        ev("MODIFIED", probe_done.clone()),
        ev("DELETED", probe_done),
        ev("ADDED", loadgen_pod),
    ]);
    script.svc_lists.push_back(list(
        "ServiceList",
        "50",
        vec![
            service(
                "shop",
                "web",
                "40",
                SVC_IP,
                json!([{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]),
            ),
            // The StatefulSet's headless service: no cluster IP, clients use the pod's address.
            service(
                "shop",
                "cache",
                "41",
                "None",
                json!([{"name": "redis", "protocol": "TCP", "port": 6379}]),
            ),
        ],
    ));
    let api = FakeApi::start(script);
    let kubeconfig = tmp.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);

    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--node-name",
            NODE,
            "--iface",
            "^jk8s[wcpl]$",
            // Whole packets too: both vantages are named.
            "--packet-payload",
            "all",
            // The pods' traffic only: not the recorder's talk with the API server, nor
            // whatever else runs on this machine.
            "--cidr",
            "10.247.0.0/16",
            "--flush-every",
            "100ms",
        ],
    );
    wait_for(
        "the recorder to know the pods and their veths",
        Duration::from_secs(15),
        || {
            let m = meta_being_written(&out);
            pod_and_veth_known(&m, "u-web", WEB_IP, "jk8sw")
                && pod_and_veth_known(&m, "u-cache", CACHE_IP, "jk8sc")
                && pod_and_veth_known(&m, "u-probe", CLIENT_IP, "jk8sp")
        },
    );

    let web_end = pod_end(WEB_IP, "web-5d8f7c6b9-x2x7q", "shop", "Deployment", "web");
    let cache_end = pod_end(CACHE_IP, "cache-0", "shop", "StatefulSet", "cache");
    let svc_end = service_end(SVC_IP, "shop", "web");
    // (vantage, what was asked, client, server) for every exchange the clients make.
    let mut want: Vec<(String, String, End, End)> = Vec::new();
    // Connections made straight to a pod address: (what, client, the server's veth, server,
    // the client's and the server's process names).
    let mut straight: Vec<(String, End, &str, End, &str, &str)> = Vec::new();
    let mut traffic = |client: &Pod, me: &End, tag: &str, direct: usize, via_svc: usize| {
        let on = |v: &str, what: &str, c: &End, s: &End| {
            (v.to_string(), what.to_string(), c.clone(), s.clone())
        };
        let my_veth = format!("packets:{}", client.host_if);
        for i in 0..direct + via_svc {
            let through = i >= direct;
            let uri = format!("/api/item{i}.json?from={tag}");
            let url = if through {
                format!("http://{SVC_IP}{uri}")
            } else {
                format!("http://{WEB_IP}:8080{uri}")
            };
            let code = client.exec(&format!("curl -s -o /dev/null -w '%{{http_code}}' '{url}'"));
            assert_eq!(code, "200", "{url}");
            let server = if through { &svc_end } else { &web_end };
            want.push(on(&my_veth, &uri, me, server));
            want.push(on("socket:curl", &uri, me, server));
            want.push(on("socket:nginx", &uri, me, &web_end));
            if through {
                // After DNAT: another 5-tuple, analyzed again on the web pod's veth.
                want.push(on("packets:jk8sw", &uri, me, &web_end));
            } else {
                straight.push((uri, me.clone(), "jk8sw", web_end.clone(), "curl", "nginx"));
            }
        }
        let key = format!("{tag}:k");
        let value = format!("v-{tag}");
        for (cmd, args, reply) in [
            ("SET", format!("{key} {value}"), "OK"),
            ("GET", key.clone(), value.as_str()),
        ] {
            let got = client.exec(&format!("redis-cli -h {CACHE_IP} {cmd} {args}"));
            assert_eq!(got.trim(), reply, "{cmd} {args}");
            let what = format!("{cmd} {key}");
            for v in [my_veth.as_str(), "socket:redis-cli", "socket:redis-server"] {
                want.push(on(v, &what, me, &cache_end));
            }
            straight.push((
                what,
                me.clone(),
                "jk8sc",
                cache_end.clone(),
                "redis-cli",
                "redis-server",
            ));
        }
    };

    // The CronJob's pod.
    let probe_end = pod_end(CLIENT_IP, "probe-29000000-k7q2d", "ops", "CronJob", "probe");
    traffic(&probe, &probe_end, "probe", 4, 3);
    // It completes and goes (its namespace and veth with it); a Deployment's pod gets the
    // same address on a new veth, then the API server reports the change.
    std::thread::sleep(Duration::from_millis(200));
    drop(probe);
    let loadgen = Pod::routed("jk8s-loadgen", "jk8sl", CLIENT_IP);
    // The recorder captures the new veth before the API catches up: whatever it calls it now
    // (the address's old holder, if the route was there at attach), the API's news must
    // settle it.
    wait_for(
        "the new veth to be captured",
        Duration::from_secs(10),
        || {
            meta_being_written(&out)
                .iter()
                .any(|(_, e)| matches!(e, juno_archive::Entity::Interface(i) if i.name == "jk8sl"))
        },
    );
    gate.open();
    let t = Instant::now();
    while !pod_and_veth_known(&meta_being_written(&out), "u-loadgen", CLIENT_IP, "jk8sl") {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the recorder did not tell the new pod and its veth: {:#?}\n{}",
            meta_being_written(&out)
                .iter()
                .filter(|(_, e)| matches!(e, juno_archive::Entity::Interface(_)))
                .collect::<Vec<_>>(),
            std::fs::read_to_string(out.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let loadgen_end = pod_end(
        CLIENT_IP,
        "loadgen-6c9d8b7f4-m4n8s",
        "ops",
        "Deployment",
        "loadgen",
    );
    traffic(&loadgen, &loadgen_end, "loadgen", 3, 2);
    std::thread::sleep(Duration::from_millis(300));
    let log = rec.stop();

    // The real juno-analyze, on the sealed archive.
    let files = sealed(&out);
    assert_eq!(files.len(), 1, "{files:?}\n{log}");
    let res = Command::new(&analyzer)
        .arg("logs")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "juno-analyze: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    // The client port each process saw, per exchange.
    let mut ports: HashMap<(String, String), u64> = HashMap::new();
    let mut got: Vec<(String, String, End, End)> = String::from_utf8(res.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let vantage = &v["vantage"];
            let vantage = match vantage["kind"].as_str() {
                Some("packets") => format!("packets:{}", vantage["iface"].as_str().unwrap()),
                _ => format!("socket:{}", vantage["comm"].as_str().unwrap()),
            };
            let what = match v["protocol"].as_str().unwrap() {
                "http" => v["http"]["uri"].as_str().unwrap().to_string(),
                "redis" => format!(
                    "{} {}",
                    v["redis"]["command"].as_str().unwrap(),
                    v["redis"]["key"].as_str().unwrap_or("")
                ),
                other => format!("{other}: {l}"),
            };
            ports.insert(
                (vantage.clone(), what.clone()),
                v["client"]["port"].as_u64().unwrap(),
            );
            (vantage, what, end(&v["client"]), end(&v["server"]))
        })
        .collect();
    // A connection straight to a pod is seen on both veths: the server's veth has a view of
    // its own (the same connection, linked: docs/fidelity.md), named the same way. (When
    // conntrack gave the connection another source port on the way — a NAT table is loaded
    // (the service's), and when the reply tuple of a new connection clashes with an entry
    // conntrack still holds, nf_nat picks another port — the client's socket and the server's
    // disagree on the port and the server's veth sees another 5-tuple; counted below.)
    let mut rewritten = 0;
    for (what, me, veth, server, cli, srv) in &straight {
        let port = |comm: &str| {
            ports
                .get(&(format!("socket:{comm}"), what.clone()))
                .copied()
        };
        let (c, s) = (port(cli), port(srv));
        assert!(c.is_some() && s.is_some(), "{what}: {c:?} {s:?}");
        if c != s {
            rewritten += 1;
        }
        want.push((
            format!("packets:{veth}"),
            what.clone(),
            me.clone(),
            server.clone(),
        ));
    }
    got.sort();
    want.sort();
    // Both ends of every exchange named (a pod, or a service for the cluster IP) ...
    for (vantage, what, c, s) in &got {
        assert!(
            c[1].is_some() && (s[1].is_some() || s[5].is_some()),
            "{vantage} {what}: an end is not named: {c:?} {s:?}"
        );
    }
    // ... and named right: the exchanges are exactly those the clients made, with the pod,
    // namespace and workload (or service) that held each address at the exchange's time.
    let diff = |a: &[(String, String, End, End)], b: &[(String, String, End, End)]| {
        a.iter()
            .filter(|x| !b.contains(x))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        got == want,
        "{} exchanges, {} expected ({rewritten} source ports rewritten by conntrack); unexpected: {:#?}\nmissing: {:#?}\n{log}",
        got.len(),
        want.len(),
        diff(&got, &want),
        diff(&want, &got)
    );
}

/// Starts a fake API server with `script` (an empty service list added) and writes its
/// kubeconfig into `dir`.
fn serve(mut script: common::fake_api::Script, dir: &Path) -> (common::fake_api::FakeApi, PathBuf) {
    use common::fake_api::{FakeApi, list};
    script
        .svc_lists
        .push_back(list("ServiceList", "5", Vec::new()));
    let api = FakeApi::start(script);
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    (api, kubeconfig)
}

/// The interface metadata last written for `veth` (by name) in `recs`.
fn iface_meta<'a>(
    recs: &'a [(juno_archive::MetaOp, juno_archive::Entity)],
    veth: &str,
) -> Option<&'a juno_archive::InterfaceMeta> {
    recs.iter().rev().find_map(|(_, e)| match e {
        juno_archive::Entity::Interface(i) if i.name == veth => Some(i),
        _ => None,
    })
}

/// The interfaces' names and descriptions in the sealed archives in `dir`.
fn iface_descriptions(dir: &Path) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for p in sealed(dir) {
        let bytes = std::fs::read(&p).unwrap();
        juno_archive::read_archive(&bytes, |item, stream| {
            if let juno_archive::Item::Interface(id) = item
                && let Some(i) = stream.interfaces().get(*id as usize)
            {
                out.push((i.name.clone().unwrap_or_default(), i.description.clone()));
            }
        })
        .unwrap();
    }
    out
}

/// Bridge CNIs (the bridge plugin, flannel) give every pod a veth on one bridge and route the
/// whole pod subnet to the bridge: no host route names a pod's veth. The recorder names each
/// veth through its peer instead — the addresses the pod's side holds, asked for in the
/// pod's namespace by the id the host's namespace gives it — and writes that namespace's
/// inode and those addresses into the interface's metadata.
///
/// First with pod metadata from the fake API server (no cluster here: see the e2e test
/// above): each veth is named by its pod. Then standalone (no API server): each veth is
/// described by its peer's namespace and addresses, and a pod whose address is set after its
/// veth appeared (as a CNI does it) is described with it within a stats interval.
#[test]
fn bridge_cni_veths_are_named_through_their_peer() {
    use common::fake_api::{self, Script, list, owner_ref};

    const NODE: &str = "jbr-node";
    let bridge = Bridge::new("jbr0", "10.246.0.1");
    let a = Pod::bridged("jbr-a", "jbra", &bridge, Some("10.246.0.2"));
    let b = Pod::bridged("jbr-b", "jbrb", &bridge, Some("10.246.0.3"));
    // The pods reach each other across the bridge (no host routing involved).
    a.exec("ping -c 1 -W 2 10.246.0.3");
    // No route names either veth: the node routes the subnet to the bridge.
    let routes = sh("ip -4 route show");
    assert!(
        !routes.contains("jbra") && !routes.contains("jbrb"),
        "{routes}"
    );
    let tmp = tempfile::tempdir().unwrap();

    // With the API server.
    let pod = |name, uid, rv, ip| {
        fake_api::pod(
            "shop",
            NODE,
            name,
            uid,
            rv,
            Some(owner_ref("apps/v1", "StatefulSet", "db")),
            Some(ip),
        )
    };
    let mut script = Script::default();
    script.pod_lists.push_back(list(
        "PodList",
        "10",
        vec![
            pod("db-0", "u-db-0", "8", "10.246.0.2"),
            pod("db-1", "u-db-1", "9", "10.246.0.3"),
        ],
    ));
    let (_api, kubeconfig) = serve(script, tmp.path());
    let out = tmp.path().join("with-api");
    let rec = Recorder::start(
        &out,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--node-name",
            NODE,
            "--iface",
            "^jbr[abc]$",
        ],
    );
    wait_for(
        "both veths named by their pods",
        Duration::from_secs(15),
        || {
            let m = meta_being_written(&out);
            pod_and_veth_known(&m, "u-db-0", "10.246.0.2", "jbra")
                && pod_and_veth_known(&m, "u-db-1", "10.246.0.3", "jbrb")
        },
    );
    let m = meta_being_written(&out);
    for (pod, veth, ip) in [(&a, "jbra", "10.246.0.2"), (&b, "jbrb", "10.246.0.3")] {
        let i = iface_meta(&m, veth).unwrap();
        assert_eq!(i.peer_netns, Some(pod.netns_inode()), "{i:?}");
        assert!(i.addrs.contains(&ip.parse().unwrap()), "{i:?}");
    }
    rec.stop();

    // Standalone.
    let out = tmp.path().join("standalone");
    let rec = Recorder::start(&out, &["--iface", "^jbr[abc]$"]);
    let c = Pod::bridged("jbr-c", "jbrc", &bridge, None);
    let c_inode = c.netns_inode();
    wait_for("the new veth captured", Duration::from_secs(10), || {
        iface_meta(&meta_being_written(&out), "jbrc").is_some()
    });
    c.address("10.246.0.4");
    wait_for(
        "the new pod's address in its veth's metadata",
        Duration::from_secs(15),
        || {
            iface_meta(&meta_being_written(&out), "jbrc")
                .is_some_and(|i| i.addrs.contains(&"10.246.0.4".parse().unwrap()))
        },
    );
    let m = meta_being_written(&out);
    for (pod, veth, ip) in [(&a, "jbra", "10.246.0.2"), (&b, "jbrb", "10.246.0.3")] {
        let i = iface_meta(&m, veth).unwrap();
        assert_eq!(i.peer_netns, Some(pod.netns_inode()), "{i:?}");
        assert!(i.addrs.contains(&ip.parse().unwrap()), "{i:?}");
        assert_eq!(i.pod_uid, None);
    }
    assert_eq!(iface_meta(&m, "jbrc").unwrap().peer_netns, Some(c_inode));
    rec.stop();
    // The Interface Descriptions (what tshark and Wireshark show) name the namespace and its
    // address; the late pod's veth was described before its address was set.
    let d = iface_descriptions(&out);
    let desc = |veth: &str| {
        d.iter()
            .filter(|(n, _)| n == veth)
            .filter_map(|(_, d)| d.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        desc("jbra")
            .iter()
            .any(|d| d.starts_with("netns jbr-a 10.246.0.2")),
        "{d:?}"
    );
    assert!(
        desc("jbrb")
            .iter()
            .any(|d| d.starts_with("netns jbr-b 10.246.0.3")),
        "{d:?}"
    );
    assert!(
        desc("jbrc").iter().any(|d| d.starts_with("netns jbr-c")),
        "{d:?}"
    );
}

/// cgroup v2 directories made for a test, removed deepest first when dropped (after their
/// processes have exited).
struct CgroupTree(Vec<PathBuf>);
impl CgroupTree {
    fn add(&mut self, rel: &str) -> PathBuf {
        let p = self.0[0].join(rel);
        std::fs::create_dir_all(&p).unwrap();
        self.0.push(p.clone());
        p
    }
}
impl Drop for CgroupTree {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// A process's socket events are named by the pod its cgroup belongs to: the cgroup's path
/// names the container and the pod (the kubelet's systemd-driver layout, containerd's scope
/// names), the recorder writes that into the archive, and the analyzer names the process's
/// end by it — which addresses cannot do for a pod on the host's network, nor for loopback
/// traffic inside a pod.
///
/// No cluster here (see the e2e test above): pods come from the fake API server, their
/// containers are cgroups the test creates in the kubelet's layout
/// (`kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<UID>.slice/
/// cri-containerd-<ID>.scope`, under a test directory), and real redis-server and redis-cli
/// run in them: redis-server in the `cache-0` pod (its own network namespace and veth,
/// routed), redis-cli in a host-network DaemonSet pod (the node's namespace) and in a second
/// container of `cache-0` (over 127.0.0.1).
#[test]
fn socket_events_are_named_by_the_pod_of_their_cgroup() {
    use common::fake_api::{self, Script, container_id, list, owner_ref};
    use serde_json::json;

    const NODE: &str = "jk8s-node";
    const CACHE_IP: &str = "10.248.0.11";
    const CACHE_UID: &str = "6f1c2a8e-3b4d-4c5e-9f60-7a8b9c0d1e2f";
    const AGENT_UID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let analyzer = juno_analyze_bin();
    let tmp = tempfile::tempdir().unwrap();
    let top = format!("juno-cgname-{}.slice", std::process::id());
    let mut cgroups = CgroupTree(vec![juno_record::node::cgroup_root().join(&top)]);
    std::fs::create_dir_all(&cgroups.0[0]).unwrap();
    let container = |uid: &str, id: &str| {
        format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
            uid.replace('-', "_")
        )
    };
    // cache-0's main container (the id the API reports for it) and a sidecar the API does
    // not list; the agent's container.
    let cache_main = cgroups.add(&container(CACHE_UID, &container_id(CACHE_UID)));
    let cache_sidecar = cgroups.add(&container(CACHE_UID, &"5e".repeat(32)));
    let agent_main = cgroups.add(&container(AGENT_UID, &container_id(AGENT_UID)));

    // A process joins its cgroup before entering the pod's namespace: `ip netns exec`
    // mounts a sysfs of its own, without the cgroup hierarchy.
    let in_cgroup = |cg: &Path, cmd: &str| {
        format!(
            "sh -c 'echo $$ > {}/cgroup.procs && exec {cmd}'",
            cg.display()
        )
    };
    let cache = Pod::routed("jcg-cache", "jcgc", CACHE_IP);
    let redis_log = std::fs::File::create(tmp.path().join("redis.out")).unwrap();
    let _redis = Server(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec ip netns exec {} redis-server --bind {CACHE_IP} 127.0.0.1 --port 6379 --save '' --appendonly no --protected-mode no",
                cache_main.display(),
                cache.ns
            ))
            .stdout(redis_log.try_clone().unwrap())
            .stderr(redis_log)
            .spawn()
            .unwrap(),
    );
    wait_for("redis", Duration::from_secs(10), || {
        sh_ok(&format!("redis-cli -h {CACHE_IP} PING | grep -q PONG"))
    });
    // The node's address towards the pod: a host-network pod's address.
    let route = sh(&format!("ip -o route get {CACHE_IP}"));
    let node_ip = route
        .split_whitespace()
        .skip_while(|w| *w != "src")
        .nth(1)
        .unwrap()
        .to_string();

    let mut agent = fake_api::pod(
        "monitoring",
        NODE,
        "node-agent-7xk2p",
        AGENT_UID,
        "80",
        Some(owner_ref("apps/v1", "DaemonSet", "node-agent")),
        Some(&node_ip),
    );
    agent["spec"]["hostNetwork"] = json!(true);
    let cache_pod = fake_api::pod(
        "shop",
        NODE,
        "cache-0",
        CACHE_UID,
        "81",
        Some(owner_ref("apps/v1", "StatefulSet", "cache")),
        Some(CACHE_IP),
    );
    let mut script = Script::default();
    script
        .pod_lists
        .push_back(list("PodList", "100", vec![agent, cache_pod]));
    let (_api, kubeconfig) = serve(script, tmp.path());

    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--node-name",
            NODE,
            "--iface",
            "^jcgc$",
            // Whole packets too: the veth's view is named here as well.
            "--packet-payload",
            "all",
            // The pods' processes only, as a DaemonSet would filter on kubepods.slice.
            "--cgroup",
            &format!("/{top}"),
            "--flush-every",
            "100ms",
        ],
    );
    wait_for(
        "the recorder to know the pods",
        Duration::from_secs(15),
        || pod_and_veth_known(&meta_being_written(&out), CACHE_UID, CACHE_IP, "jcgc"),
    );
    // The agent, on the node's network, writes; the sidecar reads over loopback.
    let set = sh(&in_cgroup(
        &agent_main,
        &format!("redis-cli -h {CACHE_IP} SET cg:k v1"),
    ));
    assert_eq!(set.trim(), "OK");
    let get = sh(&in_cgroup(
        &cache_sidecar,
        &format!("ip netns exec {} redis-cli -h 127.0.0.1 GET cg:k", cache.ns),
    ));
    assert_eq!(get.trim(), "v1");
    std::thread::sleep(Duration::from_millis(300));
    let log = rec.stop();

    let res = Command::new(&analyzer)
        .arg("logs")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "juno-analyze: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    // (vantage, command, client pod/workload, server pod/workload)
    type Named = (String, String, Option<String>, Option<String>);
    let who = |v: &serde_json::Value| {
        v.get("pod").and_then(|p| p.as_str()).map(|p| {
            format!(
                "{p} {}/{}",
                v["workload_kind"].as_str().unwrap_or("-"),
                v["workload"].as_str().unwrap_or("-")
            )
        })
    };
    let mut got: Vec<Named> = String::from_utf8(res.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["protocol"] == "redis" && v["redis"]["key"] == "cg:k")
        .map(|v| {
            let vantage = &v["vantage"];
            let vantage = match vantage["kind"].as_str() {
                Some("packets") => format!("packets:{}", vantage["iface"].as_str().unwrap()),
                _ => format!("socket:{}", vantage["comm"].as_str().unwrap()),
            };
            (
                vantage,
                v["redis"]["command"].as_str().unwrap().to_string(),
                who(&v["client"]),
                who(&v["server"]),
            )
        })
        .collect();
    got.sort();
    let agent = Some("node-agent-7xk2p DaemonSet/node-agent".to_string());
    let cache0 = Some("cache-0 StatefulSet/cache".to_string());
    let row = |v: &str, c: &str, cl: &Option<String>, sv: &Option<String>| {
        (v.to_string(), c.to_string(), cl.clone(), sv.clone())
    };
    let mut want = vec![
        // The agent's SET: its own socket names it by cgroup, the server by address; the
        // server's socket and the veth see the node's address, which names no pod (several
        // host-network pods share it).
        row("socket:redis-cli", "SET", &agent, &cache0),
        row("socket:redis-server", "SET", &None, &cache0),
        row("packets:jcgc", "SET", &None, &cache0),
        // The sidecar's GET over loopback: both sockets in cache-0's cgroups, the peer
        // address 127.0.0.1 inside the pod.
        row("socket:redis-cli", "GET", &cache0, &cache0),
        row("socket:redis-server", "GET", &cache0, &cache0),
    ];
    want.sort();
    assert_eq!(got, want, "{log}");
}

/// A throwaway PostgreSQL cluster in `pod`: cleartext password authentication over TCP (the
/// PasswordMessage carries the password itself), one role.
struct Postgres {
    bin: String,
    data: PathBuf,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        sh_ok(&format!(
            "runuser -u postgres -- {}/pg_ctl -D {} -m immediate -w stop",
            self.bin,
            self.data.display()
        ));
    }
}

fn postgres(pod: &Pod, dir: &Path, user: &str, password: &str) -> Postgres {
    let bin = sh("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1")
        .trim()
        .to_string();
    let pg = dir.join("pg");
    std::fs::create_dir_all(&pg).unwrap();
    sh(&format!(
        "chmod 755 {} && chown postgres: {}",
        dir.display(),
        pg.display()
    ));
    let data = pg.join("data");
    sh(&format!(
        "runuser -u postgres -- {bin}/initdb -D {} -U postgres --auth-local=trust --auth-host=password >/dev/null",
        data.display()
    ));
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap();
    use std::io::Write;
    writeln!(
        conf,
        "listen_addresses = '{}'\nport = 5432\nunix_socket_directories = '{}'\nfsync = off",
        pod.addr,
        pg.display()
    )
    .unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhost all all 0.0.0.0/0 password\n",
    )
    .unwrap();
    let p = Postgres {
        bin: bin.clone(),
        data: data.clone(),
    };
    pod.exec(&format!(
        "runuser -u postgres -- {bin}/pg_ctl -D {} -l {}/server.log -w start >/dev/null",
        data.display(),
        pg.display()
    ));
    sh(&format!(
        "runuser -u postgres -- psql -X -q -h {} -U postgres -d postgres -c \"CREATE ROLE {user} LOGIN PASSWORD '{password}'\"",
        pg.display()
    ));
    p
}

/// Every frame of the archives, decompressed (what `zstd -dc` shows).
fn decompressed(paths: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        for e in &juno_archive::frame::scan(&bytes).frames {
            out.extend(
                juno_archive::frame::decompress_entry(
                    &bytes,
                    e,
                    juno_archive::frame::MAX_FRAME_SIZE,
                )
                .unwrap(),
            );
        }
    }
    out
}

const SECRETS: [&str; 6] = [
    "SECRET-AUTH-1",
    "SECRET-COOKIE-2",
    "SECRET-TOKEN-3",
    "SECRET-SPLIT-4",
    "SECRET-PG-5",
    "SECRET-REDIS-6",
];

/// What the clients of [`secret_traffic`] did, and where to find what the recorder wrote.
struct SecretRun {
    files: Vec<PathBuf>,
    log: String,
}

/// curl with an Authorization header, a cookie and a URL token; a request whose
/// Authorization header is split across two writes (and two packets, TCP_NODELAY); psql
/// with a password; redis-cli AUTH — between two pods, recorded with `args`.
fn secret_traffic(srv: &Pod, cli: &Pod, tmp: &Path, out: &Path, args: &[&str]) -> SecretRun {
    let mut all = vec![
        "--iface",
        "^jsc[sc]-h$",
        "--node-name",
        "itest",
        "--cidr",
        "10.210.61.0/24",
    ];
    all.extend_from_slice(args);
    let rec = Recorder::start(out, &all);
    let code = cli.exec(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer SECRET-AUTH-1' \
         -b 'sid=SECRET-COOKIE-2' 'http://{}/api/item1.json?token=SECRET-TOKEN-3&page=2'",
        srv.addr
    ));
    assert_eq!(code, "200");
    let split = tmp.join("split.py");
    std::fs::write(
        &split,
        format!(
            "import socket, time\n\
             s = socket.create_connection(('{}', 80))\n\
             s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n\
             s.sendall(b'GET /api/item2.json HTTP/1.1\\r\\nHost: srv\\r\\nAuthoriz')\n\
             time.sleep(0.3)\n\
             s.sendall(b'ation: Bearer SECRET-SPLIT-4\\r\\nConnection: close\\r\\n\\r\\n')\n\
             d = b''\n\
             while True:\n    b = s.recv(65536)\n    if not b: break\n    d += b\n\
             print(d.split(b' ')[1].decode())\n",
            srv.addr
        ),
    )
    .unwrap();
    assert_eq!(
        cli.exec(&format!("/usr/bin/python3 {}", split.display()))
            .trim(),
        "200"
    );
    assert_eq!(
        cli.exec(&format!(
            "env PGPASSWORD=SECRET-PG-5 psql -X -A -t -h {} -U jsec -d postgres -c 'select 41 + 1'",
            srv.addr
        ))
        .trim(),
        "42"
    );
    assert_eq!(
        cli.exec(&format!(
            "redis-cli --no-auth-warning -a SECRET-REDIS-6 -h {} SET juno:s v",
            srv.addr
        ))
        .trim(),
        "OK"
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = rec.stop();
    let files: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("juno-") && (n.ends_with(".pcapng.zst") || n.ends_with(".age"))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(files.len(), 1, "{files:?}");
    SecretRun { files, log }
}

fn redaction_counts(files: &[PathBuf]) -> BTreeMap<String, u64> {
    stats_counters(files)
        .into_iter()
        .filter(|(k, _)| k.starts_with("redacted:"))
        .collect()
}

/// Secrets never reach the archive: with the defaults, the secret bytes of every client are
/// absent from the decompressed archive, every exchange is still there with its method, path
/// and status, the counts per rule are what the clients sent (each value seen in the
/// client's and the server's socket), and the file is 0600 in a 0700 directory. With packet
/// payload kept and encryption to a recipient: the packets are redacted too (twice the
/// counts: both veths), and the encrypted archive is unreadable without the identity and
/// analyzes identically with it.
#[test]
fn secrets_never_reach_the_archive_and_encrypted_archives_need_their_identity() {
    use std::os::unix::fs::PermissionsExt;
    let _fwd = Forwarding::on();
    let srv = Pod::new("jsec-srv", "jscs-h", 61);
    let cli = Pod::new("jsec-cli", "jscc-h", 62);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx(&srv, tmp.path());
    let _pg = postgres(&srv, tmp.path(), "jsec", "SECRET-PG-5");
    let _redis = Server(srv.spawn(
        &format!(
            "exec redis-server --bind {} --port 6379 --save '' --appendonly no --requirepass SECRET-REDIS-6",
            srv.addr
        ),
        &tmp.path().join("redis.out"),
    ));
    let addr = srv.addr.clone();
    wait_for("redis", Duration::from_secs(10), || {
        sh_ok(&format!(
            "redis-cli --no-auth-warning -a SECRET-REDIS-6 -h {addr} PING | grep -q PONG"
        ))
    });

    // Defaults.
    let out = tmp.path().join("plain");
    let run = secret_traffic(&srv, &cli, tmp.path(), &out, &[]);
    assert!(
        run.log.contains("redaction: rules=http-auth,"),
        "{}",
        run.log
    );
    let bytes = decompressed(&run.files);
    for s in SECRETS {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s} reached the archive"
        );
    }
    let got = analyze(&run.files);
    let http = |who: &str| -> Vec<(String, String, u64)> {
        let mut v: Vec<_> = got
            .0
            .iter()
            .filter(|e| e.protocol == "http" && comm(e).is_some_and(|c| c.starts_with(who)))
            .map(|e| {
                let t = |k| String::from_utf8_lossy(e.fields.text(k).unwrap_or(b"")).into_owned();
                (
                    t("method"),
                    t("uri"),
                    e.fields.u64("status_code").unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    };
    let item1 = (
        "GET".to_string(),
        "/api/item1.json?token=[redacted]&page=2".to_string(),
        200,
    );
    let item2 = ("GET".to_string(), "/api/item2.json".to_string(), 200);
    assert_eq!(http("curl"), vec![item1.clone()]);
    assert_eq!(http("python3"), vec![item2.clone()]);
    assert_eq!(http("nginx"), vec![item1.clone(), item2.clone()]);
    let kinds = |proto: &str, field: &str| -> Vec<String> {
        got.0
            .iter()
            .filter(|e| {
                e.protocol == proto
                    && comm(e)
                        .as_deref()
                        .is_some_and(|c| c == "psql" || c == "redis-cli")
            })
            .filter_map(|e| {
                e.fields
                    .text(field)
                    .map(|t| String::from_utf8_lossy(t).into_owned())
            })
            .collect()
    };
    let pg = kinds("postgresql", "frontend");
    assert!(
        pg.contains(&"startup".to_string()) && pg.contains(&"simple_query".to_string()),
        "{pg:?}"
    );
    assert!(kinds("postgresql", "frontend_arg").contains(&"select 41 + 1".to_string()));
    let redis = kinds("redis", "command");
    assert!(
        redis.iter().any(|c| c.eq_ignore_ascii_case("auth")) && redis.contains(&"SET".to_string()),
        "{redis:?}"
    );
    for e in got
        .0
        .iter()
        .filter(|e| e.protocol == "postgresql" && comm(e).as_deref() == Some("psql"))
    {
        if e.fields.text("frontend") == Some(b"startup") {
            assert_eq!(
                e.fields.get("success"),
                Some(&juno_analyze::model::Value::Bool(true))
            );
        }
    }
    let counts = redaction_counts(&run.files);
    let want: BTreeMap<String, u64> = [
        ("redacted:http-auth", 4),
        ("redacted:http-cookie", 2),
        ("redacted:http-headers", 0),
        ("redacted:url-query", 2),
        ("redacted:postgresql", 2),
        ("redacted:mysql", 0),
        ("redacted:redis", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run.files[0]), 0o600);
    assert_eq!(mode(&out), 0o700);

    // Packet payload kept, and encrypted to a recipient.
    let id = age::x25519::Identity::generate();
    let pk = id.to_public().to_string();
    let out = tmp.path().join("encrypted");
    let run = secret_traffic(
        &srv,
        &cli,
        tmp.path(),
        &out,
        &["--packet-payload", "all", "--encrypt-to", &pk],
    );
    let enc = run.files[0].clone();
    assert!(enc.to_string_lossy().ends_with(".pcapng.zst.age"));
    assert_eq!(mode(&enc), 0o600);
    let raw = std::fs::read(&enc).unwrap();
    let mut plain = Vec::new();
    {
        use std::io::Read;
        age::Decryptor::new(&raw[..])
            .unwrap()
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
    }
    let dec = tmp.path().join("decrypted.pcapng.zst");
    std::fs::write(&dec, &plain).unwrap();
    let bytes = decompressed(std::slice::from_ref(&dec));
    for s in SECRETS {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s} reached the archive"
        );
    }
    let counts2 = redaction_counts(std::slice::from_ref(&dec));
    for (k, v) in &want {
        assert_eq!(
            counts2[k],
            2 * v,
            "{k}: packets on both veths and both sockets"
        );
    }
    // Seen as packets too, redacted there.
    let got2 = analyze(std::slice::from_ref(&dec));
    let from_packets: Vec<String> = got2
        .0
        .iter()
        .filter(|e| e.protocol == "http" && matches!(e.conn.vantage, Vantage::Packets { .. }))
        .map(|e| String::from_utf8_lossy(e.fields.text("uri").unwrap()).into_owned())
        .collect();
    assert!(
        from_packets.contains(&item1.1) && from_packets.contains(&item2.1),
        "{from_packets:?}"
    );
    // juno-analyze: refused without the identity, identical with it.
    let key = tmp.path().join("key.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
    }
    let bin = juno_analyze_bin();
    let no_key = Command::new(&bin)
        .args(["--progress", "never", "logs"])
        .arg(&enc)
        .output()
        .unwrap();
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("--identity"));
    let with_key = Command::new(&bin)
        .args(["--progress", "never", "--identity"])
        .arg(&key)
        .arg("logs")
        .arg(&enc)
        .output()
        .unwrap();
    assert!(
        with_key.status.success(),
        "{}",
        String::from_utf8_lossy(&with_key.stderr)
    );
    let of_plain = Command::new(&bin)
        .args(["--progress", "never", "logs"])
        .arg(&dec)
        .output()
        .unwrap();
    assert!(!with_key.stdout.is_empty());
    assert_eq!(with_key.stdout, of_plain.stdout);
}

/// Runs nginx in `pod` with TLS (HTTP/1.1 and HTTP/2 over `https` on port 443, a certificate
/// for `juno-tls.test` made here with openssl), serving what [`nginx_on`] serves.
/// A self-signed certificate for `name`: `dir`/tls.crt and its key, `dir`/tls.key.
fn self_signed(dir: &Path, name: &str) {
    let d = dir.display();
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout {d}/tls.key -out {d}/tls.crt -days 2 \
         -subj /CN={name} -addext subjectAltName=DNS:{name} 2>/dev/null"
    ));
}

fn nginx_tls(pod: &Pod, dir: &Path) -> Server {
    write_www(dir);
    self_signed(dir, "juno-tls.test");
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1; user root; daemon off; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
             events {{ worker_connections 128; }}
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
                     uwsgi_temp_path {d}; scgi_temp_path {d};
                     server {{ listen {a}:443 ssl http2; server_name juno-tls.test; root {d}/www;
                               ssl_certificate {d}/tls.crt; ssl_certificate_key {d}/tls.key; }} }}",
            a = pod.addr
        ),
    )
    .unwrap();
    let c = Server(pod.spawn(
        &format!("exec nginx -c {}", conf.display()),
        &dir.join("nginx.out"),
    ));
    let addr = pod.addr.clone();
    wait_for("nginx with TLS", Duration::from_secs(10), || {
        sh_ok(&format!(
            "curl -sk -o /dev/null --resolve juno-tls.test:443:{addr} https://juno-tls.test/api/item0.json"
        ))
    });
    c
}

/// TLS plaintext from OpenSSL (issue 17, part 2; `--tls`): nginx with TLS in one pod (started before
/// the recorder), and in another pod curl over HTTP/1.1 and HTTP/2 and python3's urllib,
/// started after it. Every request is read from the plaintext that the TLS library calls
/// moved, as seen by each client and by nginx, attributed to the process; the handshake is
/// read from the socket events (SNI, version); the ciphertext inside the library calls is
/// recorded as lengths only; secrets in the plaintext are redacted like any other payload.
#[test]
fn tls_plaintext_is_recorded_from_openssl_in_every_process() {
    let _fwd = Forwarding::on();
    let srv = Pod::new("jtls-srv", "jtss-h", 71);
    let cli = Pod::new("jtls-cli", "jtsc-h", 72);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx_tls(&srv, tmp.path());
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--iface",
            "^jts[sc]-h$",
            "--node-name",
            "itest",
            "--self-cost",
            "always",
            "--tls",
        ],
    );
    assert!(
        rec_log(&rec).contains("with TLS plaintext"),
        "{}",
        rec_log(&rec)
    );
    let resolve = format!("--resolve juno-tls.test:443:{}", srv.addr);
    let base = "https://juno-tls.test";
    // HTTP/1.1: five requests on one connection, one with a bearer token.
    // (curl's -o applies to one URL: each URL gets its own.)
    let urls: Vec<String> = (0..5)
        .map(|i| format!("-o /dev/null {base}/api/item{i}.json"))
        .collect();
    let codes = cli.exec(&format!(
        "curl -sk --http1.1 {resolve} -H 'Authorization: Bearer SECRET-TLS-TOKEN-7' \
         -w '%{{http_code}} ' {}",
        urls.join(" ")
    ));
    assert_eq!(codes.trim(), "200 200 200 200 200");
    // HTTP/2: five streams on one connection, and a large body.
    let urls: Vec<String> = (5..10)
        .map(|i| format!("-o /dev/null {base}/api/item{i}.json"))
        .collect();
    let codes = cli.exec(&format!(
        "curl -sk --http2 {resolve} -w '%{{http_code}} ' {} -o /dev/null {base}/big.bin",
        urls.join(" ")
    ));
    assert_eq!(codes.trim(), "200 200 200 200 200 200");
    // python3 (the ssl module, SSL_read_ex/SSL_write_ex), with a token in the URL.
    let py = format!(
        "import ssl, urllib.request; c = ssl._create_unverified_context(); \
         r = urllib.request.urlopen('https://{}/missing?token=SECRET-TLS-URL-8', context=c)",
        srv.addr
    );
    let st = cli.exec(&format!(
        "/usr/bin/python3 -c \"{py}\" 2>&1 | grep -o 'HTTP Error 404' || true"
    ));
    assert_eq!(st.trim(), "HTTP Error 404");
    // wrk: 32 new connections whose first request often arrives with the handshake's last
    // bytes, so that nginx's first SSL_read is served from what the handshake read ahead
    // and makes no socket call of its own (the handshake probe ties the socket first:
    // `tls_no_socket` stays 0, asserted below).
    let wrk = cli.exec(&format!(
        "wrk -t 1 -c 32 -d 1s https://{}/api/item1.json",
        srv.addr
    ));
    let wrk_requests: u64 = wrk
        .lines()
        .find_map(|l| l.trim().split(" requests in ").next()?.parse().ok())
        .unwrap_or_else(|| panic!("{wrk}"));
    std::thread::sleep(Duration::from_millis(500));
    let log = rec.stop();
    assert!(log.contains("TLS plaintext: probing"), "{log}");
    let files = sealed(&out);
    let got = analyze(&files);

    // (process, protocol) → the paths and statuses read from TLS plaintext.
    // (Requests wrk left unanswered when it stopped are not in it.)
    let mut seen: BTreeMap<(String, &str), BTreeMap<String, u64>> = BTreeMap::new();
    for e in &got.0 {
        if let Vantage::Socket {
            comm, tls: true, ..
        } = &e.conn.vantage
            && e.outcome != juno_analyze::model::Outcome::NoResponse
        {
            let f = &e.fields;
            seen.entry((comm.clone(), e.protocol)).or_default().insert(
                String::from_utf8_lossy(f.text("uri").unwrap_or(b"?")).into_owned(),
                f.u64("status_code").unwrap_or(0),
            );
        }
    }
    let want = |range: std::ops::Range<u32>, extra: &[(&str, u64)]| {
        let mut m: BTreeMap<String, u64> =
            range.map(|i| (format!("/api/item{i}.json"), 200)).collect();
        for (p, s) in extra {
            m.insert((*p).to_string(), *s);
        }
        m
    };
    let py_path = "/missing?token=[redacted]";
    // Every wrk request read from wrk's plaintext; nginx's view has no response without its
    // request (a reply whose SSL_write returned after a reset closed the socket belongs to
    // the stream still: it used to open a stream of its own).
    let orphans = got
        .0
        .iter()
        .filter(|e| {
            matches!(&e.conn.vantage, Vantage::Socket { tls: true, comm, .. } if comm == "nginx")
                && e.outcome == juno_analyze::model::Outcome::NoRequest
        })
        .count();
    assert_eq!(
        orphans, 0,
        "nginx's plaintext: responses without their request"
    );
    let by_wrk = got
        .0
        .iter()
        .filter(|e| {
            matches!(&e.conn.vantage, Vantage::Socket { tls: true, comm, .. } if comm == "wrk")
                && e.outcome == juno_analyze::model::Outcome::Complete
                && e.fields.text("uri") == Some(&b"/api/item1.json"[..])
        })
        .count() as u64;
    assert!(
        by_wrk >= wrk_requests,
        "wrk's view: {by_wrk} of {wrk_requests}"
    );
    seen.remove(&("wrk".to_string(), "http"));
    for side in ["curl", "nginx"] {
        let h1 = if side == "nginx" {
            want(0..5, &[(py_path, 404)])
        } else {
            want(0..5, &[])
        };
        assert_eq!(
            seen.get(&(side.to_string(), "http")),
            Some(&h1),
            "{side}: {seen:?}"
        );
        assert_eq!(
            seen.get(&(side.to_string(), "http2")),
            Some(&want(5..10, &[("/big.bin", 200)])),
            "{side}: {seen:?}"
        );
    }
    assert_eq!(
        seen.get(&("python3".to_string(), "http")),
        Some(&want(0..0, &[(py_path, 404)])),
        "{seen:?}"
    );
    // The handshakes, from the socket events: curl's two connections and python3's, each
    // seen by both ends (wrk's are left out).
    let hello = |e: &&Exchange| {
        e.protocol == "tls" && matches!(e.conn.vantage, Vantage::Socket { tls: false, .. })
    };
    let clients: Vec<(String, Option<Vec<u8>>)> = got
        .0
        .iter()
        .filter(hello)
        .filter_map(|e| match &e.conn.vantage {
            Vantage::Socket { comm, .. } if comm == "curl" || comm == "python3" => Some((
                e.conn.uid.clone(),
                e.fields.text("server_name").map(<[u8]>::to_vec),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(clients.len(), 3, "{clients:?}");
    assert_eq!(
        clients
            .iter()
            .filter(|(_, sni)| sni.as_deref() == Some(&b"juno-tls.test"[..]))
            .count(),
        2,
        "curl names the server, python3 was given an address: {clients:?}"
    );
    for (uid, _) in &clients {
        let ends = got
            .0
            .iter()
            .filter(hello)
            .filter(|e| &e.conn.uid == uid)
            .count();
        assert_eq!(ends, 2, "both ends' handshake of {uid}");
    }
    // Each connection: one uid for its socket and plaintext views; the plaintext counted
    // once (the client's), the socket bytes once.
    for e in got.0.iter().filter(|e| e.protocol == "http2") {
        let n = got
            .0
            .iter()
            .filter(|o| o.conn.uid == e.conn.uid && o.protocol == "http2" && !o.conn.duplicate)
            .count();
        assert_eq!(n, 6, "six streams counted once: {}", e.conn.uid);
    }
    // The ciphertext inside the library calls was not copied: nginx's socket payload is the
    // handshakes (about 2.5 KB each, 35 connections), although it sent a 300 KB body.
    let stats = stats_counters(&files);
    let stat = |name: &str| stats.get(name).copied().unwrap_or(0);
    assert!(stat("tls_ciphertext_skipped") > 20, "{stats:?}\n{log}");
    assert_eq!(stat("tls_no_socket"), 0, "{stats:?}");
    // wrk resets its connections as it exits: a call of nginx's that returns after its
    // connection's reset is not recorded (its socket is gone), at most the one call in
    // flight on each of wrk's 32 connections.
    assert!(stat("tls_socket_gone") <= 32, "{stats:?}");
    let ciphertext = socket_payloads(&files);
    assert!(
        ciphertext.get("nginx").map_or(0, Vec::len) < 160 * 1024,
        "{:?}",
        ciphertext
            .iter()
            .map(|(k, v)| (k, v.len()))
            .collect::<Vec<_>>()
    );
    // Secrets in the plaintext are redacted before anything is written.
    let raw = decompressed(&files);
    for s in ["SECRET-TLS-TOKEN-7", "SECRET-TLS-URL-8"] {
        assert!(
            !raw.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s} reached the archive"
        );
    }
    // The TLS programs' cost is reported like the others'.
    assert!(log.contains("ssl_return"), "{log}");
}

fn rec_log(r: &Recorder) -> String {
    std::fs::read_to_string(&r.log).unwrap_or_default()
}

/// A process started after the recorder with a libssl of its own — another file at the
/// usual path, bind-mounted in a mount namespace of its own, as a container brings one — is
/// found by the recorder's rescan of the node's processes (through `/proc/PID/root`), probed,
/// and its plaintext recorded once probed.
#[test]
fn a_libssl_that_arrives_with_a_new_process_is_probed() {
    let _fwd = Forwarding::on();
    let srv = Pod::new("jtln-srv", "jtns-h", 73);
    let cli = Pod::new("jtln-cli", "jtnc-h", 74);
    let tmp = tempfile::tempdir().unwrap();
    let _nginx = nginx_tls(&srv, tmp.path());
    let lib = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
    let copy = tmp.path().join("libssl.so.3");
    std::fs::copy(lib, &copy).unwrap();
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &["--iface", "^jtn[sc]-h$", "--node-name", "itest", "--tls"],
    );
    // The process maps its own copy, waits for the recorder's next scan (every 2 s), then
    // makes its requests.
    let py = tmp.path().join("client.py");
    std::fs::write(
        &py,
        format!(
            "import ssl, time, urllib.request\ntime.sleep(4)\nc = ssl._create_unverified_context()\n\
             for i in range(3):\n    urllib.request.urlopen('https://{}/api/item%d.json' % i, context=c).read()\n",
            srv.addr
        ),
    )
    .unwrap();
    cli.exec(&format!(
        "unshare -m sh -c 'mount --bind {} {lib} && exec /usr/bin/python3 {}'",
        copy.display(),
        py.display()
    ));
    std::thread::sleep(Duration::from_millis(300));
    let log = rec.stop();
    assert!(
        log.lines()
            .filter(|l| l.contains("TLS plaintext: probing"))
            .count()
            >= 2,
        "the copy was probed as a file of its own: {log}"
    );
    let got = analyze(&sealed(&out));
    let paths: Vec<String> = got
        .0
        .iter()
        .filter(|e| {
            matches!(&e.conn.vantage, Vantage::Socket { tls: true, comm, .. } if comm == "python3")
        })
        .map(|e| String::from_utf8_lossy(e.fields.text("uri").unwrap_or(b"?")).into_owned())
        .collect();
    assert_eq!(
        paths,
        ["/api/item0.json", "/api/item1.json", "/api/item2.json"],
        "{log}"
    );
}

/// TLS plaintext for other protocols than HTTP (issue 17; `--tls`): redis-server with TLS and
/// PostgreSQL with `ssl = on` in one pod, started before the recorder; `redis-cli --tls` and
/// `psql` with `sslmode=require` in another, started after it. Every command and query is read
/// from each end's plaintext by the Redis and PostgreSQL parsers, attributed to the process;
/// the passwords in the plaintext (Redis AUTH, PostgreSQL's password message) never reach the
/// archive.
#[test]
fn redis_and_postgresql_over_tls_are_read_from_the_plaintext() {
    let _fwd = Forwarding::on();
    let srv = Pod::new("jtdb-srv", "jtds-h", 73);
    let cli = Pod::new("jtdb-cli", "jtdc-h", 74);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    self_signed(tmp.path(), "juno-db.test");
    let redis_pass = "SECRET-REDIS-PASS-9";
    let _redis = Server(srv.spawn(
        &format!(
            "exec redis-server --bind {a} --port 0 --tls-port 6379 --tls-cert-file {d}/tls.crt \
             --tls-key-file {d}/tls.key --tls-auth-clients no --save '' --appendonly no \
             --requirepass {redis_pass}",
            a = srv.addr
        ),
        &tmp.path().join("redis.out"),
    ));
    let rcli = format!(
        "redis-cli --tls --insecure -h {} -a {redis_pass} --no-auth-warning",
        srv.addr
    );
    wait_for("redis with TLS", Duration::from_secs(10), || {
        sh_ok(&format!("{rcli} PING | grep -q PONG"))
    });
    let pg_pass = "SECRET-PG-PASS-10";
    let pg = postgres(&srv, tmp.path(), "juno", pg_pass);
    // TLS on, by a reload: the certificate in the data directory, the server's own.
    sh(&format!(
        "cp {d}/tls.crt {d}/tls.key {data}/ && chown postgres: {data}/tls.crt {data}/tls.key \
         && chmod 600 {data}/tls.key && printf \"ssl = on\\nssl_cert_file = 'tls.crt'\\nssl_key_file = 'tls.key'\\n\" >> {data}/postgresql.conf \
         && runuser -u postgres -- {bin}/pg_ctl -D {data} reload >/dev/null",
        data = pg.data.display(),
        bin = pg.bin
    ));
    let psql = format!(
        "env PGPASSWORD={pg_pass} {}/psql -X -q -At \"host={} user=juno dbname=postgres sslmode=require\"",
        pg.bin, srv.addr
    );
    wait_for("PostgreSQL with TLS", Duration::from_secs(10), || {
        sh_ok(&format!("{psql} -c 'SELECT 1' >/dev/null 2>&1"))
    });
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &["--iface", "^jtd[sc]-h$", "--node-name", "itest", "--tls"],
    );
    // One command per connection: fed commands on its standard input, redis-cli first asks
    // for COMMAND DOCS, a reply of about 170 KB read in 16 KiB TLS records of which the
    // per-call payload limit (4 KiB) keeps the start, and the Redis reader gives up at the
    // first gap outside a bulk string (the rest of that connection is not logged).
    let got = cli.exec(&format!(
        "{rcli} SET juno:tls plaintext-1 && {rcli} GET juno:tls && {rcli} INCR juno:n"
    ));
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        ["OK", "plaintext-1", "1"]
    );
    let got = cli.exec(&format!(
        "{psql} -c 'SELECT 42 AS answer' -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'"
    ));
    assert_eq!(got.split_whitespace().collect::<Vec<_>>(), ["42", "t"]);
    std::thread::sleep(Duration::from_millis(500));
    let log = rec.stop();
    let files = sealed(&out);
    let got = analyze(&files);

    // (process, protocol) → what each exchange read from TLS plaintext says.
    let mut seen: BTreeMap<(String, &str), Vec<String>> = BTreeMap::new();
    for e in &got.0 {
        if let Vantage::Socket {
            comm, tls: true, ..
        } = &e.conn.vantage
        {
            let f = &e.fields;
            let text = |k: &str| String::from_utf8_lossy(f.text(k).unwrap_or(b"-")).into_owned();
            let row = match e.protocol {
                "redis" => format!("{} {}", text("command"), text("reply_value")),
                "postgresql" => format!("{} {}", text("frontend"), text("frontend_arg")),
                other => other.to_string(),
            };
            seen.entry((comm.clone(), e.protocol))
                .or_default()
                .push(row);
        }
    }
    for side in ["redis-cli", "redis-server"] {
        let rows = seen
            .get(&(side.to_string(), "redis"))
            .cloned()
            .unwrap_or_default();
        for want in ["SET OK", "GET plaintext-1", "INCR 1"] {
            assert!(
                rows.contains(&want.to_string()),
                "{side}: {rows:?}\n{seen:?}\n{log}"
            );
        }
        assert!(
            rows.iter().any(|r| r.starts_with("AUTH ")),
            "{side}: {rows:?}"
        );
    }
    for side in ["psql", "postgres"] {
        let rows = seen
            .get(&(side.to_string(), "postgresql"))
            .cloned()
            .unwrap_or_default();
        assert!(
            rows.contains(&"simple_query SELECT 42 AS answer".to_string()),
            "{side}: {rows:?}\n{seen:?}\n{log}"
        );
    }
    // The passwords crossed inside TLS, in plaintext: redacted before anything was written.
    let raw = decompressed(&files);
    for s in [redis_pass, pg_pass] {
        assert!(
            !raw.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s} reached the archive"
        );
    }
    let stats = stats_counters(&files);
    assert_eq!(
        stats.get("tls_no_socket").copied().unwrap_or(0),
        0,
        "{stats:?}"
    );
}

/// Builds the Go program `src` (standard library only) as `dir`/`name`, with a build cache
/// kept between runs (the standard library's net/http takes a minute to compile cold).
fn go_build(dir: &Path, name: &str, src: &str) -> PathBuf {
    let file = dir.join(format!("{name}.go"));
    std::fs::write(&file, src).unwrap();
    let out = dir.join(name);
    sh(&format!(
        "cd {d} && HOME={d} GOCACHE=/var/cache/juno/go-build GOFLAGS=-buildvcs=false \
         go build -o {o} {f} 2>&1",
        d = dir.display(),
        o = out.display(),
        f = file.display()
    ));
    assert!(out.exists(), "go build {name}");
    out
}

const GO_SERVER: &str = r#"package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"proto":%q}`, r.URL.Path, r.Proto)
	})
	srv := &http.Server{Addr: os.Args[1]}
	panic(srv.ListenAndServeTLS(os.Args[2], os.Args[3]))
}
"#;

const GO_CLIENT: &str = r#"package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	time.Sleep(4 * time.Second) // the recorder's next scan probes this program
	n := 0
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "juno-tls.test"},
			ForceAttemptHTTP2: h2,
		}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		c := &http.Client{Transport: tr}
		for i := 0; i < 5; i++ {
			path := fmt.Sprintf("/api/item%d.json", n)
			if n == 9 {
				path = "/missing"
			}
			n++
			req, _ := http.NewRequest("GET", os.Args[1]+path, nil)
			req.Header.Set("Authorization", "Bearer SECRET-GO-TOKEN-9")
			resp, err := c.Do(req)
			if err != nil {
				panic(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			fmt.Printf("%s %d\n", resp.Proto, resp.StatusCode)
		}
		tr.CloseIdleConnections()
	}
}
"#;

/// TLS plaintext from Go's crypto/tls (issue 17; `--tls`): a Go HTTPS server (net/http, which
/// speaks HTTP/1.1 and HTTP/2) in one pod, started before the recorder, and a Go client in
/// another, started after it (its program is a new file, probed by the next scan). The
/// uprobes sit at the entries and at every RET of `(*Conn).Write`/`Read` (no uretprobes on
/// Go). Every request is read from both ends' plaintext, attributed to each program, over
/// HTTP/1.1 and HTTP/2; the sockets' ciphertext is not copied once the plaintext flows; the
/// bearer token never reaches the archive.
#[test]
fn tls_plaintext_is_recorded_from_go_programs() {
    let _fwd = Forwarding::on();
    let srv = Pod::new("jtgo-srv", "jtgs-h", 75);
    let cli = Pod::new("jtgo-cli", "jtgc-h", 76);
    let tmp = tempfile::tempdir().unwrap();
    let server = go_build(tmp.path(), "juno-go-srv", GO_SERVER);
    let client = go_build(tmp.path(), "juno-go-cli", GO_CLIENT);
    self_signed(tmp.path(), "juno-tls.test");
    let d = tmp.path().display();
    let _srv = Server(srv.spawn(
        &format!(
            "exec {} {}:8443 {d}/tls.crt {d}/tls.key",
            server.display(),
            srv.addr
        ),
        &tmp.path().join("go-srv.out"),
    ));
    let addr = srv.addr.clone();
    wait_for("the Go server", Duration::from_secs(10), || {
        sh_ok(&format!(
            "curl -sk -o /dev/null https://{addr}:8443/api/item0.json"
        ))
    });
    let out = tmp.path().join("archives");
    let rec = Recorder::start(
        &out,
        &[
            "--iface",
            "^jtg[sc]-h$",
            "--node-name",
            "itest",
            "--self-cost",
            "always",
            "--tls",
        ],
    );
    let said = cli.exec(&format!("{} https://{}:8443", client.display(), srv.addr));
    let want_said: Vec<&str> = ["HTTP/1.1 200"; 5]
        .into_iter()
        .chain(["HTTP/2.0 200"; 4])
        .chain(["HTTP/2.0 404"])
        .collect();
    assert_eq!(said.lines().collect::<Vec<_>>(), want_said);
    std::thread::sleep(Duration::from_millis(500));
    let log = rec.stop();
    assert!(
        log.contains("TLS plaintext: probing Go program") && log.contains("juno-go-srv"),
        "{log}"
    );
    assert!(
        log.contains("juno-go-cli"),
        "the client, started later: {log}"
    );
    let files = sealed(&out);
    let got = analyze(&files);
    let mut seen: BTreeMap<(String, &str), BTreeMap<String, u64>> = BTreeMap::new();
    for e in &got.0 {
        if let Vantage::Socket {
            comm, tls: true, ..
        } = &e.conn.vantage
        {
            let f = &e.fields;
            seen.entry((comm.clone(), e.protocol)).or_default().insert(
                String::from_utf8_lossy(f.text("uri").unwrap_or(b"?")).into_owned(),
                f.u64("status_code").unwrap_or(0),
            );
        }
    }
    let h1: BTreeMap<String, u64> = (0..5)
        .map(|i| (format!("/api/item{i}.json"), 200))
        .collect();
    let mut h2: BTreeMap<String, u64> = (5..9)
        .map(|i| (format!("/api/item{i}.json"), 200))
        .collect();
    h2.insert("/missing".into(), 404);
    for side in ["juno-go-srv", "juno-go-cli"] {
        assert_eq!(
            seen.get(&(side.into(), "http")),
            Some(&h1),
            "{side}: {seen:?}\n{log}"
        );
        assert_eq!(
            seen.get(&(side.into(), "http2")),
            Some(&h2),
            "{side}: {seen:?}\n{log}"
        );
    }
    // Once the plaintext flows, the sockets' ciphertext is not copied.
    let stats = stats_counters(&files);
    let stat = |name: &str| stats.get(name).copied().unwrap_or(0);
    assert!(stat("tls_ciphertext_skipped") > 4, "{stats:?}\n{log}");
    assert_eq!(stat("tls_no_socket"), 0, "{stats:?}");
    let raw = decompressed(&files);
    let s = "SECRET-GO-TOKEN-9";
    assert!(
        !raw.windows(s.len()).any(|w| w == s.as_bytes()),
        "{s} reached the archive"
    );
    assert!(log.contains("go_tls_return"), "{log}");
}
