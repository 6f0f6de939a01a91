//! Naming the ends of exchanges by what the archive's metadata says they were: the pod (with
//! its namespace and workload) or the service behind an address, at the exchange's time.
//!
//! Juno archives carry pod and service metadata as timestamped records (a snapshot at the start
//! of every file, then changes: pod added, IP assigned, pod deleted). Pod IPs are reused, so an
//! address is resolved against the history of who held it: each holder has a claim on the
//! address from the time its record says until the time another record takes it away (a later
//! holder, the pod's deletion, or an update without that address). An address's first known
//! holder also covers the time before its first record — traffic recorded before the
//! recorder learnt of a pod belongs to it unless something else held the address — and the
//! last holder covers the time after, until it is taken away.
//!
//! Service cluster IPs name the service; pod IPs name the pod. A process's socket events
//! name its own end by its cgroup instead: the archive's container records map cgroup ids to
//! pods, which names what addresses cannot — pods on the host's network, and traffic over
//! loopback inside a pod. cgroup ids are kernfs node ids, not reused while the node runs, so
//! a cgroup names its pod for good (a pod's latest description is used).
//!
//! Memory is bounded: at most [`MAX_ADDRS`] addresses and [`MAX_CLAIMS`] claims per address
//! are kept (the oldest claims go first), [`MAX_PODS`] pods and [`MAX_CGROUPS`] cgroups, and
//! all of it within the index's share of the memory budget ([`MetaIndex::with_memory`]): once
//! that is spent, new addresses, pods and cgroups are not remembered and an address's new
//! claim replaces its oldest. What was left out is counted.

use std::net::IpAddr;
use std::sync::Arc;

use juno_archive::{Entity, MetaOp, MetaRecord, PodMeta, ServiceMeta};
use rustc_hash::FxHashMap;

use crate::model::{ConnInfo, Exchange, Peer, Peers, Ts, Vantage};

/// Addresses tracked at most.
pub const MAX_ADDRS: usize = 1 << 20;
/// Claims kept per address at most (the oldest are forgotten first).
pub const MAX_CLAIMS: usize = 64;
/// Pods remembered by uid at most.
pub const MAX_PODS: usize = 1 << 18;
/// cgroups mapped to pods at most.
pub const MAX_CGROUPS: usize = 1 << 20;

/// Who held an address from `from` until `until`.
#[derive(Clone, Debug)]
struct Claim {
    /// Pod uid or `svc/<namespace>/<name>`: who holds it.
    holder: Arc<str>,
    from: Ts,
    until: Option<Ts>,
    peer: Arc<Peer>,
}

/// Counts of what the index saw and left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaStats {
    /// Pod records applied.
    pub pods: u64,
    /// Service records applied.
    pub services: u64,
    /// Addresses not tracked because [`MAX_ADDRS`] were.
    pub addrs_dropped: u64,
    /// Claims forgotten because an address had [`MAX_CLAIMS`].
    pub claims_dropped: u64,
    /// Container records applied.
    pub containers: u64,
    /// Pods or cgroups not remembered because [`MAX_PODS`] or [`MAX_CGROUPS`] were.
    pub pods_dropped: u64,
}

/// What the memory budget counts per address, claim, pod description and cgroup.
const ADDR_BYTES: usize = 96;
const CLAIM_BYTES: usize = 64;
const PEER_BYTES: usize = 384;
const CGROUP_BYTES: usize = 64;
/// Memory the index may use unless told otherwise.
pub const DEFAULT_MEMORY: usize = 64 << 20;

/// The history of which pod or service held which address.
#[derive(Debug)]
pub struct MetaIndex {
    by_addr: FxHashMap<IpAddr, Vec<Claim>>,
    /// Addresses each holder claims now.
    held: FxHashMap<Arc<str>, Vec<IpAddr>>,
    /// Each pod's latest description, by uid (pods on the host's network too, flagged).
    pods: FxHashMap<Arc<str>, (Arc<Peer>, bool)>,
    /// cgroup id to the uid of the pod its container belongs to.
    cgroups: FxHashMap<u64, Arc<str>>,
    /// Statistics.
    pub stats: MetaStats,
    memory: usize,
    used: usize,
}

impl Default for MetaIndex {
    fn default() -> Self {
        MetaIndex {
            by_addr: FxHashMap::default(),
            held: FxHashMap::default(),
            pods: FxHashMap::default(),
            cgroups: FxHashMap::default(),
            stats: MetaStats::default(),
            memory: DEFAULT_MEMORY,
            used: 0,
        }
    }
}

fn pod_peer(p: &PodMeta) -> Peer {
    Peer {
        pod: Some(p.name.clone()),
        namespace: Some(p.namespace.clone()),
        workload_kind: p.workload_kind.clone(),
        workload: p.workload_name.clone(),
        service: None,
        node: p.node.clone(),
    }
}

fn service_peer(s: &ServiceMeta) -> Peer {
    Peer {
        namespace: Some(s.namespace.clone()),
        service: Some(s.name.clone()),
        ..Peer::default()
    }
}

impl MetaIndex {
    /// An empty index that keeps within `bytes`.
    pub fn with_memory(bytes: usize) -> Self {
        MetaIndex {
            memory: bytes,
            ..Self::default()
        }
    }

    fn full(&self) -> bool {
        self.used >= self.memory
    }

    /// Whether no address and no cgroup is known (nothing to annotate).
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty() && self.cgroups.is_empty()
    }

    /// Applies one metadata record (records arrive in time order per file).
    pub fn apply(&mut self, m: &MetaRecord) {
        let (holder, addrs, peer): (Arc<str>, &[IpAddr], Arc<Peer>) = match &m.entity {
            Entity::Pod(p) => {
                self.stats.pods += 1;
                let (uid, peer) = (Arc::from(p.uid.as_str()), Arc::new(pod_peer(p)));
                self.remember_pod(&uid, &peer, p.host_network);
                // A pod on the host's network shares the node's address: it names nothing.
                let addrs: &[IpAddr] = if p.host_network { &[] } else { &p.ips };
                (uid, addrs, peer)
            }
            Entity::Service(s) => {
                self.stats.services += 1;
                let h = format!("svc/{}/{}", s.namespace, s.name);
                (
                    Arc::from(h.as_str()),
                    &s.cluster_ips,
                    Arc::new(service_peer(s)),
                )
            }
            Entity::Container(c) => {
                self.stats.containers += 1;
                // Kept after the container's deletion: its events came before.
                if let (Some(id), Some(uid)) = (c.cgroup_id, &c.pod_uid) {
                    if self.cgroups.contains_key(&id)
                        || (self.cgroups.len() < MAX_CGROUPS && !self.full())
                    {
                        if !self.cgroups.contains_key(&id) {
                            self.used += CGROUP_BYTES + uid.len();
                        }
                        self.cgroups.insert(id, Arc::from(uid.as_str()));
                    } else {
                        self.stats.pods_dropped += 1;
                    }
                }
                return;
            }
            _ => return,
        };
        let now: &[IpAddr] = if m.op == MetaOp::Delete { &[] } else { addrs };
        // Addresses the holder gave up.
        let before = self.held.remove(&holder).unwrap_or_default();
        for a in before.iter().filter(|a| !now.contains(a)) {
            if let Some(c) = self.by_addr.get_mut(a).and_then(|v| v.last_mut())
                && c.holder == holder
                && c.until.is_none()
            {
                c.until = Some(m.ts_ns);
            }
        }
        if now.is_empty() {
            return;
        }
        let mut kept = Vec::with_capacity(now.len());
        for a in now {
            if !self.by_addr.contains_key(a) {
                if self.by_addr.len() >= MAX_ADDRS || self.full() {
                    self.stats.addrs_dropped += 1;
                    continue;
                }
                self.used += ADDR_BYTES;
            }
            kept.push(*a);
            let full = self.full();
            let claims = self.by_addr.entry(*a).or_default();
            match claims.last_mut() {
                // The same holder, still holding it: its description may have changed.
                Some(c) if c.holder == holder && c.until.is_none() => c.peer = peer.clone(),
                last => {
                    if let Some(c) = last
                        && c.until.is_none()
                    {
                        c.until = Some(m.ts_ns);
                    }
                    if claims.len() >= MAX_CLAIMS || (full && !claims.is_empty()) {
                        claims.remove(0);
                        self.stats.claims_dropped += 1;
                    } else {
                        // A claim and (at most) a description of its own.
                        self.used += CLAIM_BYTES + PEER_BYTES;
                    }
                    claims.push(Claim {
                        holder: holder.clone(),
                        from: m.ts_ns,
                        until: None,
                        peer: peer.clone(),
                    });
                }
            }
        }
        if !kept.is_empty() {
            self.held.insert(holder, kept);
        }
    }

    /// Remembers a pod's latest description (a deleted pod's too: its events came before).
    fn remember_pod(&mut self, uid: &Arc<str>, peer: &Arc<Peer>, host_network: bool) {
        let v = (peer.clone(), host_network);
        if let Some(old) = self.pods.get_mut(uid) {
            *old = v;
        } else if self.pods.len() < MAX_PODS && !self.full() {
            self.used += PEER_BYTES;
            self.pods.insert(uid.clone(), v);
        } else {
            self.stats.pods_dropped += 1;
        }
    }

    /// The pod whose container has cgroup `id`, and whether it is on the host's network.
    pub fn pod_of_cgroup(&self, id: u64) -> Option<(Arc<Peer>, bool)> {
        self.pods.get(self.cgroups.get(&id)?).cloned()
    }

    /// Who held `addr` at `ts`.
    pub fn lookup(&self, addr: IpAddr, ts: Ts) -> Option<Arc<Peer>> {
        let claims = self.by_addr.get(&addr)?;
        let hit = claims
            .iter()
            .rev()
            .find(|c| c.from <= ts && c.until.is_none_or(|u| ts < u))
            .or_else(|| {
                // Before the first record about the address: its first holder.
                claims.first().filter(|c| ts < c.from)
            })?;
        Some(hit.peer.clone())
    }

    /// Names both ends of `ex` at its time.
    pub fn annotate(&self, ex: &mut Exchange) {
        ex.peers = self.peers(&ex.conn, ex.ts());
    }

    /// Names the client and the server of connection `c` at `ts`: each by its address,
    /// except the end of a process whose socket events were captured, named by its cgroup
    /// when the archive maps that cgroup to a pod. A loopback peer of a process in a pod
    /// (not on the host's network) is that pod too: a pod's containers share one network
    /// namespace, and nothing else is in it.
    pub fn peers(&self, c: &ConnInfo, ts: Ts) -> Peers {
        let mut p = Peers {
            client: self.lookup(c.orig.ip(), ts),
            server: self.lookup(c.resp.ip(), ts),
        };
        if let Vantage::Socket { cgroup, client, .. } = c.vantage
            && let Some((pod, host_network)) = self.pod_of_cgroup(cgroup)
        {
            let (mine, theirs, remote) = if client {
                (&mut p.client, &mut p.server, c.resp.ip())
            } else {
                (&mut p.server, &mut p.client, c.orig.ip())
            };
            if remote.is_loopback() && !host_network {
                *theirs = Some(pod.clone());
            }
            *mine = Some(pod);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    fn pod(uid: &str, name: &str, ips: &[&str]) -> PodMeta {
        PodMeta {
            uid: uid.into(),
            namespace: "shop".into(),
            name: name.into(),
            node: Some("node-1".into()),
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            labels: vec![],
            workload_kind: Some("Deployment".into()),
            workload_name: Some(name.split('-').next().unwrap().into()),
            host_network: false,
            netns: None,
        }
    }

    fn rec(ts: Ts, op: MetaOp, entity: Entity) -> MetaRecord {
        MetaRecord {
            ts_ns: ts,
            op,
            entity,
        }
    }

    fn name(i: &MetaIndex, ip: &str, ts: Ts) -> Option<String> {
        i.lookup(ip.parse().unwrap(), ts).map(|p| {
            p.pod
                .clone()
                .or_else(|| p.service.clone())
                .unwrap_or_default()
        })
    }

    #[test]
    fn a_reused_pod_ip_is_named_by_whoever_held_it_at_the_time() {
        let mut i = MetaIndex::default();
        i.apply(&rec(
            100,
            MetaOp::Upsert,
            Entity::Pod(pod("u1", "cart-1", &["10.1.0.5"])),
        ));
        i.apply(&rec(
            200,
            MetaOp::Delete,
            Entity::Pod(pod("u1", "cart-1", &["10.1.0.5"])),
        ));
        i.apply(&rec(
            300,
            MetaOp::Upsert,
            Entity::Pod(pod("u2", "web-7", &["10.1.0.5"])),
        ));
        // Before the first record: the first holder.
        assert_eq!(name(&i, "10.1.0.5", 50).as_deref(), Some("cart-1"));
        assert_eq!(name(&i, "10.1.0.5", 150).as_deref(), Some("cart-1"));
        // Between deletion and reuse: nobody.
        assert_eq!(name(&i, "10.1.0.5", 250), None);
        assert_eq!(name(&i, "10.1.0.5", 300).as_deref(), Some("web-7"));
        assert_eq!(name(&i, "10.1.0.5", 10_000).as_deref(), Some("web-7"));
        assert_eq!(name(&i, "10.1.0.6", 150), None);
    }

    #[test]
    fn an_ip_assigned_later_and_a_pod_that_changes_address() {
        let mut i = MetaIndex::default();
        // Pod seen first without an IP, then with one, then moved (a restart in place).
        i.apply(&rec(
            100,
            MetaOp::Upsert,
            Entity::Pod(pod("u1", "db-0", &[])),
        ));
        i.apply(&rec(
            150,
            MetaOp::Upsert,
            Entity::Pod(pod("u1", "db-0", &["10.1.0.9"])),
        ));
        i.apply(&rec(
            400,
            MetaOp::Upsert,
            Entity::Pod(pod("u1", "db-0", &["10.1.0.10"])),
        ));
        assert_eq!(name(&i, "10.1.0.9", 200).as_deref(), Some("db-0"));
        assert_eq!(name(&i, "10.1.0.9", 500), None);
        assert_eq!(name(&i, "10.1.0.10", 500).as_deref(), Some("db-0"));
        // A label change keeps the claim and updates the description.
        let mut p = pod("u1", "db-0", &["10.1.0.10"]);
        p.workload_kind = Some("StatefulSet".into());
        i.apply(&rec(600, MetaOp::Upsert, Entity::Pod(p)));
        let got = i.lookup("10.1.0.10".parse().unwrap(), 450).unwrap();
        assert_eq!(got.workload_kind.as_deref(), Some("StatefulSet"));
    }

    #[test]
    fn services_by_cluster_ip_and_host_network_pods_name_nothing() {
        let mut i = MetaIndex::default();
        i.apply(&rec(
            10,
            MetaOp::Upsert,
            Entity::Service(ServiceMeta {
                namespace: "shop".into(),
                name: "cart".into(),
                cluster_ips: vec!["10.96.0.20".parse().unwrap()],
                ports: vec![(6, 80)],
            }),
        ));
        let mut h = pod("u9", "node-exporter-x", &["192.168.1.4"]);
        h.host_network = true;
        i.apply(&rec(10, MetaOp::Upsert, Entity::Pod(h)));
        let s = i.lookup("10.96.0.20".parse().unwrap(), 20).unwrap();
        assert_eq!(
            (
                s.service.as_deref(),
                s.namespace.as_deref(),
                s.pod.as_deref()
            ),
            (Some("cart"), Some("shop"), None)
        );
        assert_eq!(name(&i, "192.168.1.4", 20), None);
    }

    fn socket_conn(orig: &str, resp: &str, cgroup: u64, client: bool) -> ConnInfo {
        use crate::model::{Endpoint, Transport};
        ConnInfo {
            uid: "C1".into(),
            orig: Endpoint::new(orig.parse().unwrap(), 40000),
            resp: Endpoint::new(resp.parse().unwrap(), 6379),
            transport: Transport::Tcp,
            vantage: Vantage::Socket {
                pid: 7,
                comm: "redis-cli".into(),
                cookie: 9,
                cgroup,
                client,
                tls: false,
            },
            first_ts: 100,
            partial: false,
            tunnel: None,
            community_id: String::new(),
            duplicate: false,
        }
    }

    fn container(cgroup: u64, pod_uid: &str) -> Entity {
        Entity::Container(juno_archive::ContainerMeta {
            id: "a".repeat(64),
            runtime: Some("containerd".into()),
            name: None,
            pod_uid: Some(pod_uid.into()),
            cgroup_id: Some(cgroup),
            cgroup_path: None,
        })
    }

    #[test]
    fn a_process_end_is_named_by_its_cgroup() {
        let mut i = MetaIndex::default();
        let mut agent = pod("u-agent", "agent-x", &["192.168.1.4"]);
        agent.host_network = true;
        agent.workload_kind = Some("DaemonSet".into());
        i.apply(&rec(10, MetaOp::Upsert, Entity::Pod(agent)));
        i.apply(&rec(10, MetaOp::Upsert, container(501, "u-agent")));
        i.apply(&rec(
            10,
            MetaOp::Upsert,
            Entity::Pod(pod("u-cache", "cache-0", &["10.1.0.7"])),
        ));
        i.apply(&rec(11, MetaOp::Upsert, container(502, "u-cache")));
        let pod_name = |p: &Option<Arc<Peer>>| p.as_ref().and_then(|p| p.pod.clone());

        // A host-network pod (no address names it) connecting to a pod: the client by its
        // cgroup, the server by its address.
        let p = i.peers(&socket_conn("192.168.1.4", "10.1.0.7", 501, true), 20);
        assert_eq!(pod_name(&p.client).as_deref(), Some("agent-x"));
        assert_eq!(
            p.client.as_ref().unwrap().workload_kind.as_deref(),
            Some("DaemonSet")
        );
        assert_eq!(pod_name(&p.server).as_deref(), Some("cache-0"));
        // Loopback inside a pod, seen from the server's socket: the server by its cgroup,
        // the client too (it shares the pod's namespace).
        let p = i.peers(&socket_conn("127.0.0.1", "127.0.0.1", 502, false), 20);
        assert_eq!(pod_name(&p.server).as_deref(), Some("cache-0"));
        assert_eq!(pod_name(&p.client).as_deref(), Some("cache-0"));
        // Loopback on the host's network: the other end may be any host process.
        let p = i.peers(&socket_conn("127.0.0.1", "127.0.0.1", 501, true), 20);
        assert_eq!(pod_name(&p.client).as_deref(), Some("agent-x"));
        assert_eq!(p.server, None);
        // An unknown cgroup, and packets, are named by address only.
        let p = i.peers(&socket_conn("192.168.1.4", "10.1.0.7", 999, true), 20);
        assert_eq!(p.client, None);
        let mut packets = socket_conn("192.168.1.4", "10.1.0.7", 501, true);
        packets.vantage = Vantage::Packets { iface: 0 };
        assert_eq!(i.peers(&packets, 20).client, None);
        // The pod's deletion does not unname its earlier events.
        i.apply(&rec(
            30,
            MetaOp::Delete,
            Entity::Pod(pod("u-cache", "cache-0", &["10.1.0.7"])),
        ));
        let p = i.peers(&socket_conn("127.0.0.1", "127.0.0.1", 502, false), 20);
        assert_eq!(pod_name(&p.server).as_deref(), Some("cache-0"));
        assert_eq!(i.stats.containers, 2);
    }

    #[test]
    fn claims_per_address_are_bounded() {
        let mut i = MetaIndex::default();
        for n in 0..(MAX_CLAIMS as u64 + 10) {
            let uid = format!("u{n}");
            i.apply(&rec(
                n * 10,
                MetaOp::Upsert,
                Entity::Pod(pod(&uid, &format!("p-{n}"), &["10.2.0.1"])),
            ));
        }
        assert_eq!(
            i.by_addr[&"10.2.0.1".parse::<IpAddr>().unwrap()].len(),
            MAX_CLAIMS
        );
        assert_eq!(i.stats.claims_dropped, 10);
        let last = MAX_CLAIMS as u64 + 9;
        assert_eq!(
            name(&i, "10.2.0.1", last * 10 + 5),
            Some(format!("p-{last}"))
        );
    }
}
