//! The far end of a veth: the network namespace its peer is in (inode, and name when `ip
//! netns` named it) and the peer's addresses — on a Kubernetes node, the pod's namespace and
//! the pod's own addresses, whatever the CNI plugin (routed, bridged or anything else that
//! gives a pod a veth).
//!
//! The kernel tells a veth's peer by the id its namespace has in the recorder's
//! (`IFLA_LINK_NETNSID`, [`Iface::peer_netnsid`]). The peer's addresses are asked for by that
//! id without entering the namespace ([`ifaces::peer_addrs`]). Ids to namespaces come from
//! [`NetnsIndex`]: it opens the namespaces it can find (`/run/netns/*`, each process's
//! `/proc/PID/ns/net`) and asks the kernel each one's id.
//!
//! Without a Kubernetes API server this is how interfaces are described (`netns web
//! 10.0.0.2`); with one, the addresses name the pod ([`crate::kube::describer`]).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ifaces::{self, Iface, IfaceOwner};
use crate::recorder::Describer;

/// A network namespace the recorder's own has an id for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns {
    /// Inode of the namespace (what `/proc/PID/ns/net` links to: `net:[INODE]`).
    pub inode: u32,
    /// Its name under /run/netns (`ip netns add NAME`), if it has one.
    pub name: Option<String>,
}

/// Namespaces opened per scan at most, and processes looked at: bounds for huge hosts.
const MAX_NAMESPACES: usize = 20_000;
const MAX_PROCESSES: usize = 200_000;
/// How old a full scan may get.
const RESCAN_AFTER: Duration = Duration::from_secs(5);

/// Namespace ids (as the recorder's namespace numbers other namespaces) to namespaces.
#[derive(Debug)]
pub struct NetnsIndex {
    proc: PathBuf,
    run: PathBuf,
    by_id: HashMap<i32, Netns>,
    scanned: Option<Instant>,
}

impl Default for NetnsIndex {
    fn default() -> Self {
        Self::new("/proc", "/run/netns")
    }
}

impl NetnsIndex {
    /// An index over the processes under `proc` and the named namespaces under `run`.
    pub fn new(proc: impl Into<PathBuf>, run: impl Into<PathBuf>) -> Self {
        NetnsIndex {
            proc: proc.into(),
            run: run.into(),
            by_id: HashMap::new(),
            scanned: None,
        }
    }

    /// The namespace with id `nsid`. Everything is looked at again when the last look is
    /// 5 s old (ids of namespaces that died are reused); in between, an unknown id causes
    /// a look at the named namespaces only, which is cheap and finds a pod's namespace the
    /// moment its runtime pinned it (containerd and CRI-O pin them under /run/netns).
    pub fn get(&mut self, nsid: i32) -> Option<Netns> {
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN_AFTER) {
            self.scan();
        } else if !self.by_id.contains_key(&nsid) {
            self.scan_named(&mut HashSet::new());
        }
        self.by_id.get(&nsid).cloned()
    }

    fn scan(&mut self) {
        self.scanned = Some(Instant::now());
        self.by_id.clear();
        let mut seen = HashSet::new();
        // Named ones first, so that a namespace both named and entered by a process has
        // its name.
        self.scan_named(&mut seen);
        let pids = std::fs::read_dir(&self.proc)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .take(MAX_PROCESSES);
        for e in pids {
            if seen.len() >= MAX_NAMESPACES {
                break;
            }
            self.add(&e.path().join("ns/net"), None, &mut seen);
        }
    }

    fn scan_named(&mut self, seen: &mut HashSet<u64>) {
        let mut named: Vec<(String, PathBuf)> = std::fs::read_dir(&self.run)
            .into_iter()
            .flatten()
            .flatten()
            .take(MAX_NAMESPACES)
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        named.sort();
        for (name, path) in named {
            self.add(&path, Some(name), seen);
        }
    }

    /// Asks the id of the namespace at `path` once per inode.
    fn add(&mut self, path: &std::path::Path, name: Option<String>, seen: &mut HashSet<u64>) {
        let Ok(md) = std::fs::metadata(path) else {
            return;
        };
        if !seen.insert(md.ino()) {
            return;
        }
        let Ok(inode) = u32::try_from(md.ino()) else {
            return;
        };
        let Ok(f) = std::fs::File::open(path) else {
            return;
        };
        if let Ok(Some(id)) = ifaces::nsid_of(f.as_fd())
            && (self.by_id.len() < MAX_NAMESPACES || self.by_id.contains_key(&id))
        {
            self.by_id.insert(id, Netns { inode, name });
        }
    }
}

/// What a veth's peer shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerView {
    /// The id the recorder's namespace gives the peer's.
    pub nsid: i32,
    /// The peer's namespace, when the index finds it.
    pub netns: Option<Netns>,
    /// The peer interface's addresses.
    pub addrs: Vec<IpAddr>,
}

impl PeerView {
    /// The interface owner this view describes on its own: `netns NAME ADDR...`, the
    /// namespace by inode when it has no name.
    pub fn owner(&self) -> IfaceOwner {
        let mut d = match &self.netns {
            Some(Netns {
                name: Some(name), ..
            }) => format!("netns {name}"),
            Some(Netns { inode, .. }) => format!("netns {inode}"),
            None => format!("netns id {}", self.nsid),
        };
        for a in &self.addrs {
            d.push(' ');
            d.push_str(&a.to_string());
        }
        IfaceOwner {
            description: d,
            pod_uid: None,
            peer_netns: self.netns.as_ref().map(|n| n.inode),
            addrs: self.addrs.clone(),
        }
    }
}

/// Looks at veth peers.
#[derive(Debug, Default)]
pub struct Peers {
    index: NetnsIndex,
}

impl Peers {
    /// What `i`'s peer shows; `None` for an interface that is not a veth with a peer in
    /// another namespace, or when the kernel refuses to say.
    pub fn view(&mut self, i: &Iface) -> Option<PeerView> {
        let (nsid, peer) = (i.peer_netnsid?, i.peer_ifindex?);
        if nsid < 0 {
            return None;
        }
        let addrs = ifaces::peer_addrs(nsid, peer).ok()?;
        Some(PeerView {
            nsid,
            netns: self.index.get(nsid),
            addrs,
        })
    }

    /// The describer of a recorder without a Kubernetes API server: veths by their peer's
    /// namespace and addresses.
    pub fn describer(mut self) -> Describer {
        Box::new(move |i: &Iface| self.view(i).map(|v| v.owner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_the_namespace_and_its_addresses() {
        let v = PeerView {
            nsid: 3,
            netns: Some(Netns {
                inode: 4026532999,
                name: Some("web".into()),
            }),
            addrs: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        };
        let o = v.owner();
        assert_eq!(o.description, "netns web 10.0.0.2 fd00::2");
        assert_eq!(o.peer_netns, Some(4026532999));
        assert_eq!(o.addrs.len(), 2);
        assert_eq!(o.pod_uid, None);
        let unnamed = PeerView {
            nsid: 4,
            netns: Some(Netns {
                inode: 4026533000,
                name: None,
            }),
            addrs: Vec::new(),
        };
        assert_eq!(unnamed.owner().description, "netns 4026533000");
        let unknown = PeerView {
            nsid: 5,
            netns: None,
            addrs: vec!["10.0.0.3".parse().unwrap()],
        };
        assert_eq!(unknown.owner().description, "netns id 5 10.0.0.3");
        assert_eq!(unknown.owner().peer_netns, None);
    }

    #[test]
    fn only_veths_with_a_peer_elsewhere_are_looked_at() {
        let mut p = Peers::default();
        let lo = Iface {
            ifindex: 1,
            name: "lo".into(),
            kind: None,
            peer_ifindex: None,
            peer_netnsid: None,
        };
        assert_eq!(p.view(&lo), None);
    }

    /// On this machine: scanning finds no id for namespaces this one has no link to, and
    /// neither fails nor panics on an empty or missing /run/netns.
    #[test]
    fn scans_this_machine() {
        let mut idx = NetnsIndex::new("/proc", "/nonexistent/run/netns");
        assert_eq!(idx.get(i32::MAX), None);
        assert!(idx.scanned.is_some());
    }
}
