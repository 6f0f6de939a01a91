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
//! Service cluster IPs name the service; pod IPs name the pod. Memory is bounded: at most
//! [`MAX_ADDRS`] addresses and [`MAX_CLAIMS`] claims per address are kept (the oldest claims go
//! first), and what was left out is counted.

use std::net::IpAddr;
use std::sync::Arc;

use juno_archive::{Entity, MetaOp, MetaRecord, PodMeta, ServiceMeta};
use rustc_hash::FxHashMap;

use crate::decode::Endpoint;
use crate::exchange::Exchange;
use crate::proto::Ts;

/// Addresses tracked at most.
pub const MAX_ADDRS: usize = 1 << 20;
/// Claims kept per address at most (the oldest are forgotten first).
pub const MAX_CLAIMS: usize = 64;

/// What one end of an exchange was, as far as the archive's metadata knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Pod name.
    pub pod: Option<String>,
    /// Namespace of the pod or service.
    pub namespace: Option<String>,
    /// Owning workload kind (Deployment, StatefulSet, DaemonSet, Job, CronJob, ...).
    pub workload_kind: Option<String>,
    /// Owning workload name.
    pub workload: Option<String>,
    /// Service name (for a cluster IP).
    pub service: Option<String>,
    /// Node the pod runs on.
    pub node: Option<String>,
}

/// Both ends of an exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    /// The client (originator).
    pub client: Option<Arc<Peer>>,
    /// The server (responder).
    pub server: Option<Arc<Peer>>,
}

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
}

/// The history of which pod or service held which address.
#[derive(Debug, Default)]
pub struct MetaIndex {
    by_addr: FxHashMap<IpAddr, Vec<Claim>>,
    /// Addresses each holder claims now.
    held: FxHashMap<Arc<str>, Vec<IpAddr>>,
    /// Statistics.
    pub stats: MetaStats,
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
    /// Whether any address is known (no metadata: nothing to annotate).
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// Applies one metadata record (records arrive in time order per file).
    pub fn apply(&mut self, m: &MetaRecord) {
        let (holder, addrs, peer): (Arc<str>, &[IpAddr], Peer) = match &m.entity {
            Entity::Pod(p) => {
                self.stats.pods += 1;
                // A pod on the host's network shares the node's address: it names nothing.
                let addrs: &[IpAddr] = if p.host_network { &[] } else { &p.ips };
                (Arc::from(p.uid.as_str()), addrs, pod_peer(p))
            }
            Entity::Service(s) => {
                self.stats.services += 1;
                let h = format!("svc/{}/{}", s.namespace, s.name);
                (Arc::from(h.as_str()), &s.cluster_ips, service_peer(s))
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
        let peer = Arc::new(peer);
        let mut kept = Vec::with_capacity(now.len());
        for a in now {
            if !self.by_addr.contains_key(a) && self.by_addr.len() >= MAX_ADDRS {
                self.stats.addrs_dropped += 1;
                continue;
            }
            kept.push(*a);
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
                    if claims.len() >= MAX_CLAIMS {
                        claims.remove(0);
                        self.stats.claims_dropped += 1;
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
        self.held.insert(holder, kept);
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
        ex.peers = self.peers(&ex.conn.orig, &ex.conn.resp, ex.ts());
    }

    /// Names a client and a server at `ts`.
    pub fn peers(&self, client: &Endpoint, server: &Endpoint, ts: Ts) -> Peers {
        Peers {
            client: self.lookup(client.ip(), ts),
            server: self.lookup(server.ip(), ts),
        }
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
