//! One connection, many vantages: the views of a connection (a veth's packets, the sockets of
//! its client and server processes, the same from another node's archive) linked into one
//! connection with one uid, and what each view saw of it.
//!
//! Shards see views, not connections: packets are sharded by 5-tuple and socket events by
//! socket, and each view gets a uid of its own when it opens. The pipeline hands every view
//! that opened in a batch to the [`Linker`] (in time order, so the result does not depend on
//! the thread count), which puts it in the group of views of the same 5-tuple that opened
//! within [`SAME_CONN_NS`] of it — clocks of two nodes may differ by that much — or that is
//! still open, unless the group already holds a view from the same vantage point (then the
//! 5-tuple was reused: a new connection) or every view of it ended before this one opened with
//! a handshake. The first view of a group gives the connection its uid; the others take it
//! ([`ConnInfo::uid`]) and are marked [`ConnInfo::duplicate`], so that graphs, reports and
//! SQL count each connection and each exchange once, from the first vantage point that saw
//! it. When every view of a group has ended and the group has been quiet for
//! [`SAME_CONN_NS`] (no later view can still join), the group becomes a [`LinkedConn`]: the
//! connection with each view's totals, for the capture-fidelity report.
//!
//! Memory: a group and its views are counted at [`GROUP_BYTES`] and [`VIEW_BYTES`]; beyond
//! the linker's bound, ended groups are finished early and then new views stay unlinked
//! (their own uid), both counted ([`LinkStats`]).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{
    ConnInfo, ConnKey, ConnState, ConnSummary, Exchange, Peers, ReasmStats, Ts, Vantage,
};

/// Two views of one connection open within this of each other (clock skew between nodes
/// included), and a group whose views all ended waits this long for late views.
pub const SAME_CONN_NS: u64 = 5_000_000_000;
/// What the memory bound counts per group and per view.
pub const GROUP_BYTES: usize = 160;
/// See [`GROUP_BYTES`].
pub const VIEW_BYTES: usize = 240;

/// What one view saw of a connection, when it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewTotals {
    /// The view's own uid (before linking).
    pub view_uid: String,
    /// Where.
    pub vantage: Vantage,
    /// First and last packet or event.
    pub first_ts: Ts,
    /// See `first_ts`.
    pub last_ts: Ts,
    /// Packets (or socket calls) per direction: to server, to client.
    pub packets: [u64; 2],
    /// Payload bytes per direction (packets: on the wire; sockets: what the calls moved).
    pub bytes: [u64; 2],
    /// What was missing or seen twice, both directions.
    pub reasm: ReasmStats,
    /// How it ended.
    pub state: ConnState,
    /// The protocol its session detected.
    pub protocol: Option<&'static str>,
}

/// A connection with every view of it (docs/fidelity.md).
#[derive(Clone, Debug)]
pub struct LinkedConn {
    /// The connection (the first view's, with the connection's uid).
    pub info: Arc<ConnInfo>,
    /// Each view that ended, in the order they opened.
    pub views: Vec<ViewTotals>,
    /// Views linked to the connection that had not ended when it was given up (memory bound
    /// or end of input without an end: does not happen in a whole run).
    pub views_open: u32,
    /// The pods or services at both ends, from the archive's metadata (empty without it).
    pub peers: Peers,
}

/// What the linker's bound cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Views linked to another view's connection.
    pub linked: u64,
    /// Groups finished before their wait was over (memory bound): a late view of such a
    /// connection gets a uid of its own.
    pub groups_cut: u64,
    /// Views not linked at all because the linker's memory was spent.
    pub views_unlinked: u64,
}

#[derive(Debug)]
struct View {
    /// Hash of the view's own uid and vantage point ([`view_id`]).
    id: u64,
    vantage: u64,
    /// A TLS library's plaintext ([`Vantage::kind`] `tls`).
    tls: bool,
    /// The view's `ConnInfo` as the shard has it (pointer) and as linked; `None` for the
    /// group's first view, which keeps its own.
    rewritten: Option<(usize, Arc<ConnInfo>)>,
    ended: Option<ViewTotals>,
}

#[derive(Debug)]
struct Group {
    /// The connection: the first view's info (its 5-tuple and first time are the group's).
    info: Arc<ConnInfo>,
    last: Ts,
    views: Vec<View>,
}

impl Group {
    fn key(&self) -> ConnKey {
        ConnKey::new(self.info.orig, self.info.resp, self.info.transport)
    }

    fn first(&self) -> Ts {
        self.info.first_ts
    }

    fn all_ended(&self) -> bool {
        self.views.iter().all(|v| v.ended.is_some())
    }
}

/// Links views into connections (module docs).
#[derive(Debug)]
pub struct Linker {
    groups: FxHashMap<u64, Group>,
    by_key: FxHashMap<ConnKey, Vec<u64>>,
    /// View id → group serial.
    by_view: FxHashMap<u64, u64>,
    next: u64,
    used: usize,
    max_bytes: usize,
    /// Groups whose views have all ended: what a full linker may cut, found without a scan
    /// of every group (a scan per new view made a flood of connections quadratic).
    all_ended: rustc_hash::FxHashSet<u64>,
    /// What the bound cost.
    pub stats: LinkStats,
}

fn hash_of<T: std::hash::Hash + ?Sized>(v: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(v)
}

fn is_tls(v: &Vantage) -> bool {
    matches!(v, Vantage::Socket { tls: true, .. })
}

/// Two views from the same vantage point are never one connection.
fn vantage_key(v: &Vantage) -> u64 {
    match v {
        Vantage::Packets { iface } => hash_of(&(0u8, *iface)),
        Vantage::Socket {
            pid, cookie, tls, ..
        } => hash_of(&(1u8 + u8::from(*tls), *pid, *cookie)),
    }
}

/// A view's identity: its uid (made from the 5-tuple and its first time, so two interfaces'
/// views of one connection may share it) and its vantage point.
fn view_id(info: &ConnInfo) -> u64 {
    hash_of(&(info.uid.as_str(), vantage_key(&info.vantage)))
}

impl Linker {
    /// A linker that holds at most about `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Linker {
            groups: FxHashMap::default(),
            by_key: FxHashMap::default(),
            by_view: FxHashMap::default(),
            next: 0,
            used: 0,
            max_bytes: max_bytes.max(GROUP_BYTES + VIEW_BYTES),
            all_ended: rustc_hash::FxHashSet::default(),
            stats: LinkStats::default(),
        }
    }

    /// Bytes held, as counted.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Views that opened, in time order (then by uid).
    pub fn open(&mut self, infos: &[Arc<ConnInfo>], done: &mut Vec<LinkedConn>) {
        for info in infos {
            self.open_one(info, done);
        }
    }

    fn open_one(&mut self, info: &Arc<ConnInfo>, done: &mut Vec<LinkedConn>) {
        let id = view_id(info);
        if self.by_view.contains_key(&id) {
            return;
        }
        let key = ConnKey::new(info.orig, info.resp, info.transport);
        let vk = vantage_key(&info.vantage);
        let t = info.first_ts;
        let joins = |g: &Group| {
            if g.views.iter().any(|v| v.vantage == vk) {
                return false;
            }
            let live = !g.all_ended();
            if !live && !info.partial && t > g.last {
                // A handshake after every view of the connection ended: a new connection.
                return false;
            }
            t.abs_diff(g.first()) <= SAME_CONN_NS || (live && t >= g.first())
        };
        let found = self.by_key.get(&key).and_then(|serials| {
            serials
                .iter()
                .filter(|s| joins(&self.groups[s]))
                .min_by_key(|s| (t.abs_diff(self.groups[s].first()), **s))
                .copied()
        });
        if self.used + VIEW_BYTES + GROUP_BYTES > self.max_bytes {
            self.cut_ended(done);
            if self.used + VIEW_BYTES + GROUP_BYTES > self.max_bytes {
                self.stats.views_unlinked += 1;
                return;
            }
        }
        match found {
            Some(s) => {
                let g = self.groups.get_mut(&s).expect("indexed group");
                // A TLS library's plaintext is another layer of the connection, not another
                // copy of its bytes: it is counted once among the plaintext views.
                let tls = is_tls(&info.vantage);
                let linked = Arc::new(ConnInfo {
                    uid: g.info.uid.clone(),
                    duplicate: g.views.iter().any(|v| v.tls == tls),
                    ..(**info).clone()
                });
                g.views.push(View {
                    id,
                    vantage: vk,
                    tls,
                    rewritten: Some((Arc::as_ptr(info) as usize, linked)),
                    ended: None,
                });
                g.last = g.last.max(t);
                self.all_ended.remove(&s);
                self.by_view.insert(id, s);
                self.used += VIEW_BYTES;
                self.stats.linked += 1;
            }
            None => {
                let s = self.next;
                self.next += 1;
                self.groups.insert(
                    s,
                    Group {
                        info: info.clone(),
                        last: t,
                        views: vec![View {
                            id,
                            vantage: vk,
                            tls: is_tls(&info.vantage),
                            rewritten: None,
                            ended: None,
                        }],
                    },
                );
                self.by_key.entry(key).or_default().push(s);
                self.by_view.insert(id, s);
                self.used += VIEW_BYTES + GROUP_BYTES;
            }
        }
    }

    /// The linked form of the view `id`'s info `info`, seen at `ts`: the connection's uid,
    /// marked duplicate unless it is the connection's first view (then `info` itself). `None`:
    /// not linked.
    fn linked(&mut self, id: u64, info: &Arc<ConnInfo>, ts: Ts) -> Option<Arc<ConnInfo>> {
        let s = *self.by_view.get(&id)?;
        let g = self.groups.get_mut(&s)?;
        g.last = g.last.max(ts);
        let v = g.views.iter_mut().find(|v| v.id == id)?;
        let (ptr, linked) = v.rewritten.as_mut()?;
        if *ptr != Arc::as_ptr(info) as usize {
            // The shard's info changed (roles settled by detection): link that one.
            *ptr = Arc::as_ptr(info) as usize;
            *linked = Arc::new(ConnInfo {
                uid: g.info.uid.clone(),
                duplicate: linked.duplicate,
                ..(**info).clone()
            });
        }
        Some(linked.clone())
    }

    /// Gives a batch's exchanges their connection's uid.
    pub fn exchanges(&mut self, ex: &mut [Exchange]) {
        for e in ex {
            let ts = e.ts();
            if let Some(l) = self.linked(view_id(&e.conn), &e.conn, ts) {
                e.conn = l;
            }
        }
    }

    /// Gives a batch's ended views their connection's uid, and keeps their totals.
    pub fn ended(&mut self, conns: &mut [ConnSummary]) {
        for c in conns {
            let own = c.info.clone();
            let id = view_id(&own);
            if let Some(l) = self.linked(id, &own, c.last_ts) {
                c.info = l;
            }
            let Some(s) = self.by_view.remove(&id) else {
                continue;
            };
            let Some(g) = self.groups.get_mut(&s) else {
                continue;
            };
            g.last = g.last.max(c.last_ts);
            if let Some(v) = g.views.iter_mut().find(|v| v.id == id) {
                v.ended = Some(ViewTotals {
                    view_uid: own.uid.clone(),
                    vantage: own.vantage.clone(),
                    first_ts: own.first_ts,
                    last_ts: c.last_ts,
                    packets: c.packets,
                    bytes: c.bytes,
                    reasm: c.reasm,
                    state: c.state,
                    protocol: c.protocol,
                });
            }
            if g.all_ended() {
                self.all_ended.insert(s);
            }
        }
    }

    /// Finishes the groups whose views all ended more than [`SAME_CONN_NS`] before `now`
    /// (every group when `now` is `None`: the end of the input).
    pub fn sweep(&mut self, now: Option<Ts>, done: &mut Vec<LinkedConn>) {
        let due: Vec<u64> = match now {
            None => self.groups.keys().copied().collect(),
            Some(n) => self
                .all_ended
                .iter()
                .filter(|s| {
                    self.groups
                        .get(s)
                        .is_some_and(|g| n > g.last.saturating_add(SAME_CONN_NS))
                })
                .copied()
                .collect(),
        };
        self.finish(due, done);
    }

    /// Finishes every ended group early (the memory bound).
    fn cut_ended(&mut self, done: &mut Vec<LinkedConn>) {
        let due: Vec<u64> = self.all_ended.drain().collect();
        self.stats.groups_cut += due.len() as u64;
        self.finish(due, done);
    }

    fn finish(&mut self, mut due: Vec<u64>, done: &mut Vec<LinkedConn>) {
        due.sort_unstable();
        for s in due {
            self.all_ended.remove(&s);
            let Some(g) = self.groups.remove(&s) else {
                continue;
            };
            let key = g.key();
            if let Some(v) = self.by_key.get_mut(&key) {
                v.retain(|x| *x != s);
                if v.is_empty() {
                    self.by_key.remove(&key);
                }
            }
            let mut views_open = 0;
            let mut views = Vec::with_capacity(g.views.len());
            for v in g.views {
                self.by_view.remove(&v.id);
                match v.ended {
                    Some(t) => views.push(t),
                    None => views_open += 1,
                }
            }
            self.used = self
                .used
                .saturating_sub(GROUP_BYTES + VIEW_BYTES * (views.len() + views_open as usize));
            done.push(LinkedConn {
                info: g.info,
                views,
                views_open,
                peers: Peers::default(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Transport};

    fn view(vantage: Vantage, first_ts: Ts, partial: bool, uid: &str) -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            uid: uid.into(),
            orig: Endpoint::new([10, 0, 0, 1].into(), 40000),
            resp: Endpoint::new([10, 0, 0, 2].into(), 80),
            transport: Transport::Tcp,
            vantage,
            first_ts,
            partial,
            tunnel: None,
            community_id: String::new(),
            duplicate: false,
        })
    }

    fn sock(pid: u32, cookie: u64) -> Vantage {
        Vantage::Socket {
            pid,
            comm: "p".into(),
            cookie,
            cgroup: 0,
            client: true,
            tls: false,
        }
    }

    fn tls(pid: u32, cookie: u64) -> Vantage {
        Vantage::Socket {
            pid,
            comm: "p".into(),
            cookie,
            cgroup: 0,
            client: true,
            tls: true,
        }
    }

    fn end(info: &Arc<ConnInfo>, last_ts: Ts, bytes: [u64; 2]) -> ConnSummary {
        ConnSummary {
            info: info.clone(),
            protocol: None,
            last_ts,
            packets: [1, 1],
            bytes,
            reasm: ReasmStats::default(),
            role_by: crate::model::RoleBy::Handshake,
            state: ConnState::Closed,
            peers: Default::default(),
            conn_log: None,
        }
    }

    #[test]
    fn views_of_one_connection_share_the_first_views_uid() {
        let mut l = Linker::new(1 << 20);
        let mut done = Vec::new();
        let p = view(Vantage::Packets { iface: 0 }, 1_000, false, "Cpackets");
        let c = view(sock(10, 1), 1_010, false, "Cclient");
        let s = view(sock(20, 2), 1_500, false, "Cserver");
        l.open(&[p.clone(), c.clone(), s.clone()], &mut done);
        assert_eq!(l.stats.linked, 2);
        let mut ended = vec![end(&c, 9_000, [10, 20]), end(&s, 9_100, [10, 20])];
        l.ended(&mut ended);
        assert!(
            ended
                .iter()
                .all(|e| e.info.uid == "Cpackets" && e.info.duplicate)
        );
        assert_eq!(ended[0].info.vantage, sock(10, 1));
        // Not finished while the packets' view is open, however late.
        l.sweep(Some(100 * SAME_CONN_NS), &mut done);
        assert!(done.is_empty());
        let mut ended = vec![end(&p, 9_200, [10, 20])];
        l.ended(&mut ended);
        assert_eq!(ended[0].info.uid, "Cpackets");
        assert!(!ended[0].info.duplicate);
        l.sweep(Some(9_200 + SAME_CONN_NS), &mut done);
        assert!(done.is_empty(), "waits for late views");
        l.sweep(Some(9_201 + SAME_CONN_NS), &mut done);
        assert_eq!(done.len(), 1);
        let names: Vec<&str> = done[0].views.iter().map(|v| v.view_uid.as_str()).collect();
        assert_eq!(names, ["Cpackets", "Cclient", "Cserver"]);
        assert_eq!(l.used(), 0);
    }

    #[test]
    fn tls_plaintext_views_share_the_uid_and_are_counted_once_among_themselves() {
        let mut l = Linker::new(1 << 20);
        let mut done = Vec::new();
        let p = view(Vantage::Packets { iface: 0 }, 1_000, false, "Cpackets");
        let c = view(sock(10, 1), 1_010, false, "Cclient");
        let ct = view(tls(10, 1), 1_400, false, "Cclient-tls");
        let st = view(tls(20, 2), 1_450, false, "Cserver-tls");
        l.open(&[p.clone(), c.clone(), ct.clone(), st.clone()], &mut done);
        assert_eq!(
            l.stats.linked, 3,
            "one socket's bytes and its plaintext are two views"
        );
        let mut ended = vec![
            end(&c, 9_000, [10, 20]),
            end(&ct, 9_000, [3, 5]),
            end(&st, 9_100, [3, 5]),
            end(&p, 9_200, [10, 20]),
        ];
        l.ended(&mut ended);
        assert!(ended.iter().all(|e| e.info.uid == "Cpackets"));
        let dup: Vec<bool> = ended.iter().map(|e| e.info.duplicate).collect();
        // The client's socket bytes copy the packets'; the client's plaintext is the first
        // plaintext view (counted), the server's a copy of it.
        assert_eq!(dup, [true, false, true, false]);
        l.sweep(Some(9_201 + SAME_CONN_NS), &mut done);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].views.len(), 4);
    }

    #[test]
    fn a_full_linker_does_not_rescan_its_groups_for_every_new_view() {
        // Room for two groups; one connection seen by two processes fills most of it; a
        // flood of live connections after it stays unlinked and costs no scan; once its
        // views end, the group is cut to make room.
        let mut l = Linker::new(2 * (GROUP_BYTES + VIEW_BYTES));
        let mut done = Vec::new();
        let a = view(sock(1, 1), 1_000, false, "Ca");
        let b = view(sock(2, 2), 1_000, false, "Cb");
        l.open(&[a.clone(), b.clone()], &mut done);
        let flood: Vec<Arc<ConnInfo>> = (0..1000)
            .map(|i| {
                let mut v = (*view(sock(3, 100 + i), 2_000, false, "Cflood")).clone();
                v.orig = Endpoint::new([10, 0, 1, (i % 250) as u8].into(), 1000 + i as u16);
                Arc::new(v)
            })
            .collect();
        l.open(&flood, &mut done);
        assert_eq!(l.stats.views_unlinked, 1000);
        assert!(l.all_ended.is_empty());
        l.ended(&mut [end(&a, 3_000, [1, 1])]);
        assert!(l.all_ended.is_empty(), "one of its two views is still open");
        l.ended(&mut [end(&b, 3_000, [1, 1])]);
        assert_eq!(l.all_ended.len(), 1);
        l.open(&flood[..1], &mut done);
        assert_eq!(l.stats.groups_cut, 1);
        assert_eq!(done.len(), 1);
        assert_eq!(l.stats.views_unlinked, 1000, "the cut made room for it");
    }

    #[test]
    fn two_interfaces_first_packets_at_the_same_time_are_two_views() {
        // The uid comes from the 5-tuple and the first packet's time: the same on both.
        let mut l = Linker::new(1 << 20);
        let mut done = Vec::new();
        let a = view(Vantage::Packets { iface: 0 }, 1_000, false, "Csame");
        let b = view(Vantage::Packets { iface: 1 }, 1_000, false, "Csame");
        l.open(&[a.clone(), b.clone()], &mut done);
        assert_eq!(l.stats.linked, 1);
        let mut ended = vec![end(&b, 2_000, [1, 1]), end(&a, 2_000, [1, 1])];
        l.ended(&mut ended);
        assert!(ended[0].info.duplicate && !ended[1].info.duplicate);
        l.sweep(None, &mut done);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].views.len(), 2);
    }

    #[test]
    fn a_reused_five_tuple_is_a_new_connection() {
        let mut l = Linker::new(1 << 20);
        let mut done = Vec::new();
        let a = view(Vantage::Packets { iface: 0 }, 1_000, false, "Ca");
        let a2 = view(sock(10, 1), 1_001, false, "Ca2");
        l.open(&[a.clone(), a2.clone()], &mut done);
        l.ended(&mut [end(&a, 2_000, [1, 1]), end(&a2, 2_000, [1, 1])]);
        // Same vantage point, same 5-tuple, shortly after: reused.
        let b = view(Vantage::Packets { iface: 0 }, 3_000, false, "Cb");
        // Another socket's handshake after every view of the first ended: new too.
        let b2 = view(sock(11, 7), 3_001, false, "Cb2");
        l.open(&[b.clone(), b2.clone()], &mut done);
        let mut ended = vec![end(&b2, 4_000, [1, 1])];
        l.ended(&mut ended);
        assert_eq!(ended[0].info.uid, "Cb");
        // Views farther apart than the skew allowed, once the first ended: separate.
        let c = view(sock(12, 8), 3_000 + 2 * SAME_CONN_NS, true, "Cc");
        l.ended(&mut [end(&b, 5_000, [1, 1])]);
        l.open(std::slice::from_ref(&c), &mut done);
        let mut ended = vec![end(&c, 3_001 + 2 * SAME_CONN_NS, [1, 1])];
        l.ended(&mut ended);
        assert_eq!(ended[0].info.uid, "Cc");
        assert!(!ended[0].info.duplicate);
    }

    #[test]
    fn a_view_opening_late_joins_a_live_connection() {
        let mut l = Linker::new(1 << 20);
        let mut done = Vec::new();
        let a = view(Vantage::Packets { iface: 0 }, 1_000, false, "Ca");
        l.open(std::slice::from_ref(&a), &mut done);
        // A recorder started a minute later sees the socket mid-connection.
        let b = view(sock(10, 1), 60 * SAME_CONN_NS, true, "Cb");
        l.open(std::slice::from_ref(&b), &mut done);
        let mut ended = vec![end(&b, 61 * SAME_CONN_NS, [1, 1])];
        l.ended(&mut ended);
        assert_eq!(ended[0].info.uid, "Ca");
    }

    #[test]
    fn the_bound_is_counted() {
        let mut l = Linker::new(2 * (GROUP_BYTES + VIEW_BYTES));
        let mut done = Vec::new();
        let mut infos = Vec::new();
        for i in 0..4u16 {
            infos.push(Arc::new(ConnInfo {
                orig: Endpoint::new([10, 0, 0, 1].into(), 1000 + i),
                ..(*view(
                    Vantage::Packets { iface: 0 },
                    1_000,
                    false,
                    &format!("C{i}"),
                ))
                .clone()
            }));
        }
        l.open(&infos[..2], &mut done);
        l.ended(&mut [end(&infos[0], 2_000, [1, 1])]);
        l.open(&infos[2..], &mut done);
        // The ended group was finished early to make room; then nothing was left for one.
        assert_eq!(l.stats.groups_cut, 1);
        assert_eq!(l.stats.views_unlinked, 1);
        assert_eq!(done.len(), 1);
        assert!(l.used() <= 2 * (GROUP_BYTES + VIEW_BYTES));
    }
}
