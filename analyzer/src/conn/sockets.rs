//! Socket streams: the bytes processes sent and received on TCP sockets (Juno archives'
//! socket events), turned into the same per-direction byte streams TCP reassembly produces.
//!
//! A stream is one socket of one process, keyed by the kernel's socket identity (cookie) and
//! network namespace. Its role comes from the syscall that created it — `connect` makes the
//! process the client, `accept` the server — else from ports. Each data event says where its
//! bytes sit in the socket's byte stream (`stream_offset`) and how many the syscall moved
//! (`orig_len`) against how many were captured: events lost on the way (a full ring buffer)
//! and payloads cut by the recorder are delivered as gaps, never glued over.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use juno_archive::record::OFFSET_UNKNOWN;
use juno_archive::{DataDirection, SocketEvent, SocketEventKind};

use crate::conn::is_server_port;
use crate::conn::session::{Ctx, Session};
use crate::model::{
    ConnInfo, ConnKey, ConnState, ConnSummary, Dir, Endpoint, ReasmStats, RoleBy, Transport, Ts,
    Vantage, community_id, make_uid,
};

/// TCP_CLOSE in the kernel's numbering.
const TCP_CLOSE: u8 = 7;
/// How long a socket's TLS stream outlives the socket's close: a TLS library call's
/// plaintext is written when the call returns, which may be after the kernel closed the
/// socket under it (a reset arrived while the call was sending). Events of the closed
/// socket in that time still belong to the stream.
const TLS_LATE_NS: u64 = 1_000_000_000;

/// Counters of socket-event processing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Data events read.
    pub data_events: u64,
    /// Streams (socket × process) opened.
    pub streams: u64,
    /// Bytes lost between events (stream offsets jumped).
    pub lost_bytes: u64,
    /// Bytes the recorder did not capture (payload cut at its limit).
    pub cut_bytes: u64,
    /// Connections found in /proc at the recorder's start.
    pub existing: u64,
}

impl SocketStats {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &SocketStats) {
        self.data_events += o.data_events;
        self.streams += o.streams;
        self.lost_bytes = self.lost_bytes.saturating_add(o.lost_bytes);
        self.cut_bytes = self.cut_bytes.saturating_add(o.cut_bytes);
        self.existing += o.existing;
    }
}

struct Stream {
    info: Arc<ConnInfo>,
    session: Session,
    /// The process is the client.
    client: bool,
    role_by: RoleBy,
    next: [Option<u64>; 2],
    last_ts: Ts,
    packets: [u64; 2],
    bytes: [u64; 2],
    reasm: ReasmStats,
    /// TLS streams: when the socket closed (the stream is finished [`TLS_LATE_NS`] later).
    closed_at: Option<Ts>,
}

/// A stream: socket cookie, network namespace, and whether it is the plaintext a TLS
/// library moved on the socket (a stream of its own) rather than the socket's bytes.
type StreamKey = (u64, u32, bool);

impl Stream {
    /// How a stream finished without an end of its own (idle, or at the end of the input)
    /// ended: `Closed` when its socket had closed (a TLS stream waiting for late events),
    /// else still `Open`.
    fn state_at_end(&self) -> ConnState {
        if self.closed_at.is_some() {
            ConnState::Closed
        } else {
            ConnState::Open
        }
    }
}

/// The socket streams of one shard.
#[derive(Default)]
pub struct SocketTable {
    streams: FxHashMap<StreamKey, Stream>,
    /// Seed of the streams' Community IDs.
    community_id_seed: u16,
    /// Counters.
    pub stats: SocketStats,
    /// Streams finished early for the memory budget.
    pub(crate) evicted: u64,
}

impl std::fmt::Debug for SocketTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketTable")
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

fn comm(ev: &SocketEvent<'_>) -> String {
    ev.comm_str()
}

impl SocketTable {
    /// An empty table whose streams get Community IDs with `community_id_seed`.
    pub fn new(community_id_seed: u16) -> Self {
        SocketTable {
            community_id_seed,
            ..SocketTable::default()
        }
    }

    fn open(&mut self, ev: &SocketEvent<'_>, client: Option<bool>, tls: bool) -> Stream {
        let local = Endpoint::new(ev.local.ip(), ev.local.port());
        let remote = Endpoint::new(ev.remote.ip(), ev.remote.port());
        let (client, role_by) = match client {
            Some(c) => (c, RoleBy::Handshake),
            None if is_server_port(local.port) && !is_server_port(remote.port) => {
                (false, RoleBy::Port)
            }
            None if is_server_port(remote.port) && !is_server_port(local.port) => {
                (true, RoleBy::Port)
            }
            None => (true, RoleBy::FirstSpeaker),
        };
        let (orig, resp) = if client {
            (local, remote)
        } else {
            (remote, local)
        };
        self.stats.streams += 1;
        let info = Arc::new(ConnInfo {
            uid: make_uid(
                &ConnKey::new(orig, resp, Transport::Tcp),
                ev.ts_ns ^ ev.cookie.rotate_left(17) ^ u64::from(tls),
            ),
            orig,
            resp,
            transport: Transport::Tcp,
            vantage: Vantage::Socket {
                pid: ev.pid,
                comm: comm(ev),
                cookie: ev.cookie,
                cgroup: ev.cgroup_id,
                client,
                tls,
            },
            first_ts: ev.ts_ns,
            partial: role_by != RoleBy::Handshake,
            tunnel: None,
            community_id: community_id(self.community_id_seed, Transport::Tcp, orig, resp),
            duplicate: false,
        });
        Stream {
            session: Session::new(info.clone()),
            info,
            client,
            role_by,
            next: [None, None],
            last_ts: ev.ts_ns,
            packets: [0; 2],
            bytes: [0; 2],
            reasm: ReasmStats::default(),
            closed_at: None,
        }
    }

    /// Live streams.
    pub fn live(&self) -> usize {
        self.streams.len()
    }

    /// Finishes the stream; `state` is how it ended: `Closed` when the process closed the
    /// socket (or the kernel moved it to TCP_CLOSE), `Open` when it was still open at the end
    /// of the input, idle, or evicted.
    fn close(
        s: &mut Stream,
        ts: Ts,
        state: ConnState,
        ctx: &mut Ctx,
        ended: &mut Vec<ConnSummary>,
    ) {
        for d in [Dir::ToServer, Dir::ToClient] {
            s.session.end(d, ts, ctx);
        }
        s.session.finish(ts, ctx);
        // Roles settled by detection (a stream whose first speaker was the server).
        let (info, packets, bytes, role_by) =
            s.session.settled(&s.info, s.packets, s.bytes, s.role_by);
        ended.push(ConnSummary {
            peers: crate::model::Peers::default(),
            info,
            protocol: s.session.protocol(),
            last_ts: s.last_ts,
            packets,
            bytes,
            reasm: s.reasm,
            role_by,
            state,
            conn_log: None,
        });
    }

    /// Finishes the streams idle longest until about `bytes` are freed, each counted at `cost`
    /// plus its session's memory; each is counted and noticed as evicted. Returns the bytes
    /// freed.
    pub(crate) fn evict(
        &mut self,
        bytes: usize,
        cost: usize,
        ctx: &mut Ctx,
        ended: &mut Vec<ConnSummary>,
    ) -> usize {
        let mut order: Vec<(Ts, StreamKey)> =
            self.streams.iter().map(|(k, s)| (s.last_ts, *k)).collect();
        order.sort_unstable();
        let mut freed = 0;
        for (_, key) in order {
            if freed >= bytes {
                break;
            }
            let Some(mut s) = self.streams.remove(&key) else {
                continue;
            };
            freed += cost + s.session.mem();
            self.evicted += 1;
            let ts = s.last_ts;
            ctx.notice(
                ts,
                Some(&s.info),
                "conn",
                "connection_evicted",
                "finished early: its shard of the memory budget (--memory) was full".into(),
            );
            Self::close(&mut s, ts, ConnState::Open, ctx, ended);
        }
        freed
    }

    /// Processes one socket event; `payload` is its captured bytes.
    pub fn event(
        &mut self,
        ev: &SocketEvent<'_>,
        payload: &[u8],
        ctx: &mut Ctx,
        ended: &mut Vec<ConnSummary>,
    ) {
        let key = (ev.cookie, ev.netns, false);
        let tls_key = (ev.cookie, ev.netns, true);
        match ev.kind {
            SocketEventKind::Existing => self.stats.existing += 1,
            SocketEventKind::Connect | SocketEventKind::Accept => {
                for k in [key, tls_key] {
                    if let Some(mut old) = self.streams.remove(&k) {
                        // The socket was reused: the old stream's end was not seen.
                        Self::close(&mut old, ev.ts_ns, ConnState::Open, ctx, ended);
                    }
                }
                let s = self.open(ev, Some(ev.kind == SocketEventKind::Connect), false);
                ctx.opened.push(s.info.clone());
                self.streams.insert(key, s);
            }
            SocketEventKind::Close => {
                if let Some(mut s) = self.streams.remove(&key) {
                    s.last_ts = s.last_ts.max(ev.ts_ns);
                    Self::close(&mut s, ev.ts_ns, ConnState::Closed, ctx, ended);
                }
                self.tls_closed(tls_key, ev.ts_ns);
            }
            SocketEventKind::StateChange => {
                if ev.new_state == TCP_CLOSE {
                    if let Some(mut s) = self.streams.remove(&key) {
                        Self::close(&mut s, ev.ts_ns, ConnState::Closed, ctx, ended);
                    }
                    self.tls_closed(tls_key, ev.ts_ns);
                }
            }
            SocketEventKind::Data => self.data(ev, payload, ctx, false),
            SocketEventKind::TlsData => self.data(ev, payload, ctx, true),
            SocketEventKind::Unknown(_) => {}
        }
    }

    /// The socket of TLS stream `key` closed at `ts`: the stream ends [`TLS_LATE_NS`] later.
    fn tls_closed(&mut self, key: StreamKey, ts: Ts) {
        if let Some(s) = self.streams.get_mut(&key) {
            s.closed_at.get_or_insert(ts);
        }
    }

    fn data(&mut self, ev: &SocketEvent<'_>, payload: &[u8], ctx: &mut Ctx, tls: bool) {
        self.stats.data_events += 1;
        let key = (ev.cookie, ev.netns, tls);
        if !self.streams.contains_key(&key) {
            // A TLS stream takes its role from the socket's own stream (its connect or
            // accept), when there is one.
            let role = tls
                .then(|| self.streams.get(&(ev.cookie, ev.netns, false)))
                .flatten()
                .filter(|s| s.role_by == RoleBy::Handshake)
                .map(|s| s.client);
            let s = self.open(ev, role, tls);
            ctx.opened.push(s.info.clone());
            self.streams.insert(key, s);
        }
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        s.last_ts = s.last_ts.max(ev.ts_ns);
        let sent = match ev.direction {
            DataDirection::Send => true,
            DataDirection::Recv => false,
            _ => return,
        };
        let dir = if sent == s.client {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let di = dir.idx();
        let moved = u64::from(ev.orig_len);
        s.packets[di] += 1;
        s.bytes[di] += moved;
        let mut data = payload;
        let mut missing_tail = moved.saturating_sub(payload.len() as u64);
        if ev.stream_offset != OFFSET_UNKNOWN {
            let at = ev.stream_offset;
            match s.next[di] {
                // The first event seen: the stream may have begun before the recorder.
                None => {}
                Some(expected) if at > expected => {
                    let lost = at - expected;
                    self.stats.lost_bytes = self.stats.lost_bytes.saturating_add(lost);
                    s.reasm.gaps += 1;
                    s.reasm.gap_bytes = s.reasm.gap_bytes.saturating_add(lost);
                    s.session.gap(dir, ev.ts_ns, lost, ctx);
                }
                Some(expected) if at < expected => {
                    // Bytes already delivered (should not happen): skip them.
                    let dup = (expected - at).min(moved);
                    s.reasm.retrans_bytes += dup;
                    let skip = (dup as usize).min(data.len());
                    data = &data[skip..];
                    missing_tail = missing_tail.saturating_sub(dup.saturating_sub(skip as u64));
                    if dup >= moved {
                        return;
                    }
                }
                Some(_) => {}
            }
            // A hostile offset near the top of the range must not overflow.
            s.next[di] = Some(at.saturating_add(moved));
        }
        s.reasm.delivered += data.len() as u64;
        s.session.data(dir, ev.ts_ns, data, ctx);
        if missing_tail > 0 {
            self.stats.cut_bytes = self.stats.cut_bytes.saturating_add(missing_tail);
            s.reasm.gaps += 1;
            s.reasm.gap_bytes = s.reasm.gap_bytes.saturating_add(missing_tail);
            s.reasm.cut_bytes = s.reasm.cut_bytes.saturating_add(missing_tail);
            s.session.gap(dir, ev.ts_ns, missing_tail, ctx);
        }
    }

    /// Finishes streams idle for longer than `idle_ns` at time `now`.
    pub fn sweep(&mut self, now: Ts, idle_ns: u64, ctx: &mut Ctx, ended: &mut Vec<ConnSummary>) {
        let idle: Vec<StreamKey> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                now.saturating_sub(s.last_ts) > idle_ns
                    || s.closed_at
                        .is_some_and(|c| now.saturating_sub(c) > TLS_LATE_NS)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if let Some(mut s) = self.streams.remove(&k) {
                let ts = s.last_ts;
                let state = s.state_at_end();
                Self::close(&mut s, ts, state, ctx, ended);
            }
        }
    }

    /// End of input: finishes every stream.
    pub fn finish_all(&mut self, ctx: &mut Ctx, ended: &mut Vec<ConnSummary>) {
        let mut keys: Vec<StreamKey> = self.streams.keys().copied().collect();
        keys.sort_by_key(|k| self.streams.get(k).map(|s| (s.info.first_ts, k.0)));
        for k in keys {
            if let Some(mut s) = self.streams.remove(&k) {
                let ts = s.last_ts;
                let state = s.state_at_end();
                Self::close(&mut s, ts, state, ctx, ended);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn ev(kind: SocketEventKind, cookie: u64, ts: u64) -> SocketEvent<'static> {
        SocketEvent {
            ts_ns: ts,
            kind,
            direction: DataDirection::Send,
            ip_proto: 6,
            pid: 7,
            tid: 7,
            comm: *b"client\0\0\0\0\0\0\0\0\0\0",
            cgroup_id: 1,
            netns: 1,
            cookie,
            local: "10.0.0.1:40000".parse::<SocketAddr>().unwrap(),
            remote: "10.0.0.2:6379".parse::<SocketAddr>().unwrap(),
            old_state: 0,
            new_state: 0,
            hook: 0,
            stream_offset: OFFSET_UNKNOWN,
            orig_len: 0,
            payload: &[],
        }
    }

    fn data(
        cookie: u64,
        ts: u64,
        dir: DataDirection,
        at: u64,
        payload: &'static [u8],
    ) -> SocketEvent<'static> {
        SocketEvent {
            direction: dir,
            stream_offset: at,
            orig_len: payload.len() as u32,
            payload,
            ..ev(SocketEventKind::Data, cookie, ts)
        }
    }

    #[test]
    fn offsets_at_the_top_of_the_range_do_not_overflow() {
        // A hostile (or corrupt) stream offset near u64::MAX: with overflow checks on (the
        // `checked` test profile), `at + moved` used to panic here.
        let (mut t, mut ctx, mut ended) = (SocketTable::default(), Ctx::default(), Vec::new());
        let e = data(1, 10, DataDirection::Send, 0, b"*1\r\n$4\r\nPING\r\n");
        t.event(&e, e.payload, &mut ctx, &mut ended);
        let e = data(
            1,
            11,
            DataDirection::Send,
            u64::MAX - 3,
            b"*1\r\n$4\r\nPING\r\n",
        );
        t.event(&e, e.payload, &mut ctx, &mut ended);
        let e = data(
            1,
            12,
            DataDirection::Send,
            u64::MAX,
            b"*1\r\n$4\r\nPING\r\n",
        );
        t.event(&e, e.payload, &mut ctx, &mut ended);
        t.finish_all(&mut ctx, &mut ended);
        assert_eq!(ended.len(), 1);
        assert_eq!(t.stats.lost_bytes, u64::MAX - 17);
        assert_eq!(ended[0].reasm.gap_bytes, u64::MAX - 17);
    }

    #[test]
    fn a_stream_closed_by_its_process_is_closed_one_still_open_is_open() {
        let (mut t, mut ctx, mut ended) = (SocketTable::default(), Ctx::default(), Vec::new());
        t.event(
            &ev(SocketEventKind::Connect, 1, 1),
            &[],
            &mut ctx,
            &mut ended,
        );
        let e = data(1, 2, DataDirection::Send, 0, b"*1\r\n$4\r\nPING\r\n");
        t.event(&e, e.payload, &mut ctx, &mut ended);
        t.event(&ev(SocketEventKind::Close, 1, 3), &[], &mut ctx, &mut ended);
        t.event(
            &ev(SocketEventKind::Connect, 2, 4),
            &[],
            &mut ctx,
            &mut ended,
        );
        let e = data(2, 5, DataDirection::Send, 0, b"*1\r\n$4\r\nPING\r\n");
        t.event(&e, e.payload, &mut ctx, &mut ended);
        t.finish_all(&mut ctx, &mut ended);
        let states: Vec<ConnState> = ended.iter().map(|c| c.state).collect();
        assert_eq!(states, vec![ConnState::Closed, ConnState::Open]);
        assert_eq!(t.stats.streams, 2);
        assert_eq!(t.stats.data_events, 2);
    }

    #[test]
    fn tls_data_is_a_stream_of_its_own_with_the_sockets_role() {
        let (mut t, mut ctx, mut ended) = (SocketTable::default(), Ctx::default(), Vec::new());
        // The process accepted (it is the server, whatever the ports say).
        t.event(
            &ev(SocketEventKind::Accept, 1, 1),
            &[],
            &mut ctx,
            &mut ended,
        );
        // Ciphertext inside the library calls: lengths only.
        let cipher = SocketEvent {
            direction: DataDirection::Recv,
            stream_offset: 0,
            orig_len: 40,
            ..ev(SocketEventKind::Data, 1, 2)
        };
        t.event(&cipher, &[], &mut ctx, &mut ended);
        let tls = |ts, dir, at, payload: &'static [u8]| SocketEvent {
            kind: SocketEventKind::TlsData,
            ..data(1, ts, dir, at, payload)
        };
        let e = tls(3, DataDirection::Recv, 0, b"*1\r\n$4\r\nPING\r\n");
        t.event(&e, e.payload, &mut ctx, &mut ended);
        assert_eq!(t.live(), 2);
        // The socket closes (a reset) while the reply's SSL_write is still returning: its
        // plaintext comes after the close, and still belongs to the stream.
        t.event(&ev(SocketEventKind::Close, 1, 4), &[], &mut ctx, &mut ended);
        assert_eq!(t.live(), 1, "the TLS stream outlives the socket a little");
        let e = tls(5, DataDirection::Send, 0, b"+PONG\r\n");
        t.event(&e, e.payload, &mut ctx, &mut ended);
        t.sweep(4 + TLS_LATE_NS, u64::MAX, &mut ctx, &mut ended);
        assert_eq!(t.live(), 1);
        t.sweep(5 + TLS_LATE_NS, u64::MAX, &mut ctx, &mut ended);
        assert_eq!(t.live(), 0, "then it ends, closed");
        let views: Vec<(bool, bool, Option<&str>, ConnState, u64)> = ended
            .iter()
            .map(|c| match &c.info.vantage {
                Vantage::Socket { tls, client, .. } => {
                    (*tls, *client, c.protocol, c.state, c.reasm.cut_bytes)
                }
                Vantage::Packets { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(
            views,
            vec![
                (false, false, None, ConnState::Closed, 40),
                (true, false, Some("redis"), ConnState::Closed, 0),
            ]
        );
        assert_ne!(
            ended[0].info.uid, ended[1].info.uid,
            "views get uids of their own"
        );
    }

    #[test]
    fn eviction_finishes_the_idlest_streams_and_counts_them() {
        let (mut t, mut ctx, mut ended) = (SocketTable::default(), Ctx::default(), Vec::new());
        for c in 0..10u64 {
            let e = data(c, 100 - c, DataDirection::Send, 0, b"*1\r\n$4\r\nPING\r\n");
            t.event(&e, e.payload, &mut ctx, &mut ended);
        }
        let per = 1000 + t.streams.values().next().unwrap().session.mem();
        let freed = t.evict(2 * per + 1, 1000, &mut ctx, &mut ended);
        assert_eq!(freed, 3 * per);
        assert_eq!(t.evicted, 3);
        assert_eq!(t.live(), 7);
        // The idlest: cookies 9, 8, 7 (last seen at 91, 92, 93).
        let gone: Vec<u64> = ended
            .iter()
            .map(|c| match &c.info.vantage {
                crate::model::Vantage::Socket { cookie, .. } => *cookie,
                crate::model::Vantage::Packets { .. } => u64::MAX,
            })
            .collect();
        assert_eq!(gone, vec![9, 8, 7]);
        assert_eq!(
            ctx.notices
                .iter()
                .filter(|n| n.name == "connection_evicted")
                .count(),
            3
        );
        assert!(ended.iter().all(|c| c.state == ConnState::Open));
    }
}
