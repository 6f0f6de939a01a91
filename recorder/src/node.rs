//! What the node itself shows: its name and kernel, the containers behind cgroup ids, and
//! the TCP connections that existed before the recorder started.
//!
//! This is the standalone metadata source; Kubernetes adds pods, workloads and services
//! through the same seam ([`crate::meta`]): records into the loop, entities into the snapshot.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use juno_archive::{ContainerMeta, NodeMeta};

/// The node's name: `--node-name`, else `$NODE_NAME` (set by the DaemonSet), else the host name.
pub fn node_name(explicit: Option<&str>) -> String {
    if let Some(n) = explicit {
        return n.to_string();
    }
    if let Ok(n) = std::env::var("NODE_NAME")
        && !n.is_empty()
    {
        return n;
    }
    hostname()
}

/// The host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Node metadata.
pub fn node_meta(name: &str) -> NodeMeta {
    NodeMeta {
        name: name.to_string(),
        kernel: nix::sys::utsname::uname()
            .ok()
            .map(|u| u.release().to_string_lossy().into_owned()),
        boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string()),
    }
}

/// A container as its cgroup path names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    /// 64-hex-digit container id.
    pub id: String,
    /// `containerd`, `cri-o` or `docker`, when the path tells.
    pub runtime: Option<String>,
    /// Pod uid, when the path is under `kubepods`.
    pub pod_uid: Option<String>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses a cgroup path (v1 or v2; systemd or cgroupfs driver; containerd, CRI-O or Docker)
/// into the container it belongs to.
///
/// Shapes handled, innermost segment first:
/// - `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` (systemd driver);
/// - a bare `<id>` segment (cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`, `/docker/<id>`);
/// - pod uids from `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_with_underscores>.slice`.
///
/// `crio-conmon-<id>.scope` is CRI-O's monitor process, not the container: not matched.
pub fn parse_cgroup_path(path: &str) -> Option<ContainerRef> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut found: Option<(String, Option<&str>)> = None;
    for (i, seg) in segs.iter().enumerate().rev() {
        let s = seg.strip_suffix(".scope").unwrap_or(seg);
        let (id, runtime) = if let Some(id) = s.strip_prefix("cri-containerd-") {
            (id, Some("containerd"))
        } else if let Some(id) = s.strip_prefix("crio-") {
            (id, Some("cri-o"))
        } else if let Some(id) = s.strip_prefix("docker-") {
            (id, Some("docker"))
        } else if is_hex64(s) {
            let parent = if i > 0 { segs[i - 1] } else { "" };
            (s, (parent == "docker").then_some("docker"))
        } else {
            continue;
        };
        if is_hex64(id) {
            found = Some((id.to_string(), runtime));
            break;
        }
    }
    let (id, runtime) = found?;
    let pod_uid = segs.iter().find_map(|s| {
        let s = s.strip_suffix(".slice").unwrap_or(s);
        // systemd: kubepods-burstable-pod<uid>; cgroupfs: pod<uid>
        let uid = s
            .rsplit_once("-pod")
            .map(|(_, u)| u)
            .or_else(|| s.strip_prefix("pod"))?;
        let uid = uid.replace('_', "-");
        (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
    });
    Some(ContainerRef {
        id,
        runtime: runtime.map(String::from),
        pod_uid,
    })
}

/// The cgroup v2 path of a process (`0::/path` line of /proc/PID/cgroup).
pub fn cgroup_of_pid(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(String::from)
}

/// cgroup ids (the inode of the cgroup's directory in cgroupfs v2) to paths.
#[derive(Debug)]
pub struct CgroupIndex {
    root: PathBuf,
    by_id: HashMap<u64, String>,
    scanned: Option<Instant>,
}

/// Directories walked at most per scan (a bound for hosts with huge cgroup trees).
const MAX_CGROUPS: usize = 200_000;

impl CgroupIndex {
    /// An index of the cgroup v2 hierarchy at `root` (normally /sys/fs/cgroup).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CgroupIndex {
            root: root.into(),
            by_id: HashMap::new(),
            scanned: None,
        }
    }

    fn scan(&mut self) {
        self.by_id.clear();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            if self.by_id.len() >= MAX_CGROUPS {
                break;
            }
            let Ok(md) = std::fs::metadata(&dir) else {
                continue;
            };
            let rel = dir
                .strip_prefix(&self.root)
                .map(|p| format!("/{}", p.display()))
                .unwrap_or_default();
            self.by_id
                .insert(md.ino(), if rel == "/" { "/".into() } else { rel });
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
        }
        self.scanned = Some(Instant::now());
    }

    /// The path of cgroup `id`, rescanning (at most every 5 s) when it is unknown.
    pub fn path(&mut self, id: u64) -> Option<String> {
        if let Some(p) = self.by_id.get(&id) {
            return Some(p.clone());
        }
        if self
            .scanned
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
        {
            self.scan();
        }
        self.by_id.get(&id).cloned()
    }

    /// The hierarchy's root (normally /sys/fs/cgroup).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cgroup id (inode) of `path` (absolute in the hierarchy), if it exists.
    pub fn id_of(&self, path: &str) -> Option<u64> {
        std::fs::metadata(self.root.join(path.trim_start_matches('/')))
            .ok()
            .map(|m| m.ino())
    }

    /// Container metadata for a cgroup id, when its path names a container.
    pub fn container(&mut self, id: u64) -> Option<ContainerMeta> {
        let path = self.path(id)?;
        let c = parse_cgroup_path(&path)?;
        Some(ContainerMeta {
            id: c.id,
            runtime: c.runtime,
            name: None,
            pod_uid: c.pod_uid,
            cgroup_id: Some(id),
            cgroup_path: Some(path),
        })
    }
}

/// A TCP connection found in /proc when the recorder started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingConn {
    /// Owning process.
    pub pid: u32,
    /// Its name.
    pub comm: String,
    /// Its cgroup path.
    pub cgroup: Option<String>,
    /// Network namespace inode.
    pub netns: u32,
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
}

/// Parses one `/proc/net/tcp{,6}` line: (local, remote, state, inode).
fn parse_proc_tcp_line(line: &str) -> Option<(SocketAddr, SocketAddr, u8, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let addr = |s: &str| -> Option<SocketAddr> {
        let (a, p) = s.split_once(':')?;
        let port = u16::from_str_radix(p, 16).ok()?;
        let ip = match a.len() {
            8 => IpAddr::V4(Ipv4Addr::from(
                u32::from_str_radix(a, 16).ok()?.to_le_bytes(),
            )),
            32 => {
                let mut b = [0u8; 16];
                for w in 0..4 {
                    let v = u32::from_str_radix(&a[w * 8..w * 8 + 8], 16).ok()?;
                    b[w * 4..w * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    };
    Some((
        addr(f[1])?,
        addr(f[2])?,
        u8::from_str_radix(f[3], 16).ok()?,
        f[9].parse().ok()?,
    ))
}

/// Established TCP connections and their owners, across network namespaces (bounded).
pub fn existing_connections(limit: usize) -> Vec<ExistingConn> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // socket inode -> owning pid; network namespace -> a pid inside it.
    let mut owner: HashMap<u64, u32> = HashMap::new();
    let mut netns_pid: HashMap<u64, u32> = HashMap::new();
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(md) = std::fs::metadata(format!("/proc/{pid}/ns/net")) {
            netns_pid.entry(md.ino()).or_insert(pid);
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path())
                && let Some(ino) = t
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                && let Ok(ino) = ino.parse()
            {
                owner.entry(ino).or_insert(pid);
            }
        }
    }
    let mut out = Vec::new();
    for (netns, pid) in netns_pid {
        for file in ["tcp", "tcp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let Some((local, remote, state, inode)) = parse_proc_tcp_line(line) else {
                    continue;
                };
                // 01 = TCP_ESTABLISHED
                if state != 1 {
                    continue;
                }
                let Some(&p) = owner.get(&inode) else {
                    continue;
                };
                out.push(ExistingConn {
                    pid: p,
                    comm: std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default(),
                    cgroup: cgroup_of_pid(p),
                    netns: u32::try_from(netns).unwrap_or(0),
                    local,
                    remote,
                });
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
    out
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` (unified mode) or
/// `/sys/fs/cgroup/unified` (hybrid mode, v1 controllers beside it). cgroup ids reported by
/// the kernel (`bpf_get_current_cgroup_id`) are inodes of this hierarchy.
pub fn cgroup_root() -> &'static Path {
    let unified = Path::new("/sys/fs/cgroup");
    if unified.join("cgroup.controllers").exists() {
        return unified;
    }
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    if hybrid.join("cgroup.controllers").exists() {
        return hybrid;
    }
    unified
}

/// The cgroups kubelet puts pods under: with the systemd cgroup driver, and with cgroupfs.
pub const POD_CGROUPS: [&str; 2] = ["/kubepods.slice", "/kubepods"];

/// The cgroups whose socket events are recorded: `given` (--cgroup), and with `pods_only`
/// those of [`POD_CGROUPS`] that exist under the index's root (an error when none does:
/// recording nothing would be silent). Empty: every process.
pub fn wanted_cgroups(
    given: &[String],
    pods_only: bool,
    index: &CgroupIndex,
) -> anyhow::Result<Vec<String>> {
    let mut v = given.to_vec();
    if pods_only {
        let found: Vec<String> = POD_CGROUPS
            .iter()
            .filter(|c| index.id_of(c).is_some())
            .map(|c| c.to_string())
            .collect();
        if found.is_empty() {
            anyhow::bail!(
                "--pods-only: no pod cgroup under {} ({} with the systemd cgroup driver, {} with cgroupfs): is this a Kubernetes node, and is the host's cgroup hierarchy mounted?",
                index.root().display(),
                POD_CGROUPS[0],
                POD_CGROUPS[1]
            );
        }
        v.extend(found);
    }
    Ok(v)
}

/// Inode of this process's network namespace.
pub fn own_netns() -> Option<u32> {
    std::fs::metadata("/proc/self/ns/net")
        .ok()
        .and_then(|m| u32::try_from(m.ino()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_only_adds_the_pod_cgroups_that_exist() {
        let d = tempfile::tempdir().unwrap();
        let index = CgroupIndex::new(d.path());
        let given = vec!["/system.slice/nginx.service".to_string()];
        assert_eq!(wanted_cgroups(&given, false, &index).unwrap(), given);
        let err = wanted_cgroups(&given, true, &index)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no pod cgroup under"), "{err}");
        std::fs::create_dir(d.path().join("kubepods")).unwrap();
        assert_eq!(
            wanted_cgroups(&given, true, &index).unwrap(),
            ["/system.slice/nginx.service", "/kubepods"]
        );
        std::fs::create_dir(d.path().join("kubepods.slice")).unwrap();
        assert_eq!(
            wanted_cgroups(&[], true, &index).unwrap(),
            ["/kubepods.slice", "/kubepods"]
        );
    }

    const ID: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const UID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";

    #[test]
    fn cgroup_paths_of_each_runtime_and_driver() {
        let uid_us = UID.replace('-', "_");
        let cases = [
            // containerd, systemd driver, cgroup v2
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_us}.slice/cri-containerd-{ID}.scope"
                ),
                Some("containerd"),
                Some(UID),
            ),
            // containerd, systemd driver, guaranteed QoS
            (
                format!("/kubepods.slice/kubepods-pod{uid_us}.slice/cri-containerd-{ID}.scope"),
                Some("containerd"),
                Some(UID),
            ),
            // containerd or docker, cgroupfs driver
            (
                format!("/kubepods/burstable/pod{UID}/{ID}"),
                None,
                Some(UID),
            ),
            (format!("/kubepods/pod{UID}/{ID}"), None, Some(UID)),
            // CRI-O, systemd driver
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_us}.slice/crio-{ID}.scope"
                ),
                Some("cri-o"),
                Some(UID),
            ),
            // CRI-O on cgroup v2 with the systemd driver puts the processes one level below
            // the scope (`crio-<id>.scope/container`).
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_us}.slice/crio-{ID}.scope/container"
                ),
                Some("cri-o"),
                Some(UID),
            ),
            // dockershim / cri-dockerd, systemd driver
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_us}.slice/docker-{ID}.scope"
                ),
                Some("docker"),
                Some(UID),
            ),
            // Docker, systemd driver, no Kubernetes
            (
                format!("/system.slice/docker-{ID}.scope"),
                Some("docker"),
                None,
            ),
            // Docker, cgroupfs driver (also the v1 shape of /proc/PID/cgroup lines)
            (format!("/docker/{ID}"), Some("docker"), None),
        ];
        for (path, runtime, uid) in cases {
            let c = parse_cgroup_path(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(c.id, ID, "{path}");
            assert_eq!(c.runtime.as_deref(), runtime, "{path}");
            assert_eq!(c.pod_uid.as_deref(), uid, "{path}");
        }
    }

    #[test]
    fn not_containers() {
        for p in [
            "/",
            "/user.slice/user-0.slice/session-1.scope",
            "/system.slice/nginx.service",
            &format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            "/kubepods/burstable/podnotauid/abc",
        ] {
            assert_eq!(parse_cgroup_path(p), None, "{p}");
        }
    }

    #[test]
    fn proc_net_tcp_lines() {
        let v4 = "   0: 0100007F:1F90 0200007F:A9E2 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        let (l, r, st, ino) = parse_proc_tcp_line(v4).unwrap();
        assert_eq!(l, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(r, "127.0.0.2:43490".parse().unwrap());
        assert_eq!((st, ino), (1, 12345));
        let v6 = "   0: 00000000000000000000000001000000:0050 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1";
        let (l, _, _, ino) = parse_proc_tcp_line(v6).unwrap();
        assert_eq!(l, "[::1]:80".parse().unwrap());
        assert_eq!(ino, 777);
        assert_eq!(parse_proc_tcp_line("sl local_address"), None);
    }

    /// On this machine: the test's own cgroup is in the index.
    #[test]
    fn cgroup_index_finds_own_cgroup() {
        let path = cgroup_of_pid(std::process::id()).unwrap();
        let mut idx = CgroupIndex::new(cgroup_root());
        let id = idx.id_of(&path).unwrap();
        assert_eq!(idx.path(id).as_deref(), Some(path.as_str()));
    }
}

/// Whether `ip` is in the network `net`/`len`.
pub fn in_cidr(ip: std::net::IpAddr, (net, len): (std::net::IpAddr, u8)) -> bool {
    use std::net::IpAddr;
    let (a, b, bits): (u128, u128, u32) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let len = u32::from(len).min(bits);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

/// Whether a connection found in /proc passes the same filters the kernel programs apply to
/// socket events: cgroups (the process's cgroup or one below it), ports and networks.
pub fn existing_wanted(
    c: &ExistingConn,
    cgroups: &[String],
    ports: &[u16],
    cidrs: &[(std::net::IpAddr, u8)],
) -> bool {
    if !cgroups.is_empty() {
        let Some(cg) = &c.cgroup else { return false };
        let inside = cgroups.iter().any(|f| {
            let f = format!("/{}", f.trim_matches('/'));
            f == "/" || *cg == f || cg.starts_with(&format!("{f}/"))
        });
        if !inside {
            return false;
        }
    }
    if !ports.is_empty()
        && !ports
            .iter()
            .any(|p| *p == c.local.port() || *p == c.remote.port())
    {
        return false;
    }
    if !cidrs.is_empty()
        && !cidrs
            .iter()
            .any(|n| in_cidr(c.local.ip(), *n) || in_cidr(c.remote.ip(), *n))
    {
        return false;
    }
    true
}

#[cfg(test)]
mod filter_tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    fn conn(cgroup: Option<&str>, local: &str, remote: &str) -> ExistingConn {
        ExistingConn {
            pid: 1,
            comm: "x".into(),
            cgroup: cgroup.map(Into::into),
            netns: 1,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
        }
    }

    #[test]
    fn existing_connections_pass_the_socket_filters() {
        let c = conn(
            Some("/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope"),
            "10.1.0.5:43210",
            "10.96.0.10:5432",
        );
        assert!(existing_wanted(&c, &[], &[], &[]));
        assert!(existing_wanted(&c, &["/kubepods.slice".into()], &[], &[]));
        assert!(existing_wanted(&c, &["kubepods.slice/".into()], &[], &[]));
        assert!(!existing_wanted(&c, &["/kubepods".into()], &[], &[]));
        assert!(!existing_wanted(&c, &["/system.slice".into()], &[], &[]));
        assert!(!existing_wanted(
            &conn(None, "1.1.1.1:1", "2.2.2.2:2"),
            &["/a".into()],
            &[],
            &[]
        ));
        assert!(existing_wanted(&c, &[], &[5432], &[]));
        assert!(!existing_wanted(&c, &[], &[80], &[]));
        let net = |s: &str, l| (s.parse().unwrap(), l);
        assert!(existing_wanted(&c, &[], &[], &[net("10.96.0.0", 12)]));
        assert!(!existing_wanted(&c, &[], &[], &[net("192.168.0.0", 16)]));
        assert!(in_cidr("fd00::1".parse().unwrap(), net("fd00::", 8)));
        assert!(!in_cidr("fd00::1".parse().unwrap(), net("10.0.0.0", 8)));
        assert!(in_cidr("8.8.8.8".parse().unwrap(), net("0.0.0.0", 0)));
    }
}
