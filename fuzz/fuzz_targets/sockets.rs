//! The socket-stream table on arbitrary socket events (connect, accept, data both ways at any
//! offset, close, state changes), through a shard with a tiny memory share (evictions).
//! Invariants: every stream opened ends exactly once; data delivered never exceeds the
//! payload given; counters of bytes lost saturate instead of overflowing (the fuzz profile
//! checks overflow); the shard's memory is given back when everything is finished.
#![no_main]

use std::net::SocketAddr;

use juno_analyze::conn::{FlowConfig, Shard};
use juno_archive::{DataDirection, SocketEvent, SocketEventKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut shard = Shard::new(FlowConfig {
        conn_memory: 64 << 10,
        detect_limit: 1024,
        ..FlowConfig::default()
    });
    let mut rest = data;
    let mut fed = 0u64;
    let mut ts = 1u64;
    while rest.len() >= 12 {
        let (h, tail) = rest.split_at(12);
        let len = usize::from(h[1]).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        ts += u64::from(h[2]);
        let offset = match h[3] & 3 {
            0 => u64::MAX,
            1 => u64::from_le_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]),
            2 => u64::MAX - u64::from(h[4]),
            _ => u64::from(h[4]) * 16,
        };
        let kind = SocketEventKind::from(h[0] & 7);
        let ev = SocketEvent {
            ts_ns: ts,
            kind,
            direction: if h[0] & 8 == 0 { DataDirection::Send } else { DataDirection::Recv },
            ip_proto: 6,
            pid: 1,
            tid: 1,
            comm: [b'f'; 16],
            cgroup_id: 0,
            netns: u32::from(h[0] >> 6),
            cookie: u64::from(h[3] >> 2 & 7),
            local: SocketAddr::from(([10, 0, 0, 1], 40000 + u16::from(h[3] >> 5))),
            remote: SocketAddr::from(([10, 0, 0, 2], 6379)),
            old_state: 1,
            new_state: h[2] & 7,
            hook: 0,
            stream_offset: offset,
            orig_len: (len as u32).saturating_add(u32::from(h[0] >> 4 & 3) * 100),
            payload,
        };
        if kind == SocketEventKind::Data {
            fed += payload.len() as u64;
        }
        shard.socket(&ev, payload);
    }
    shard.finish_all();
    let st = *shard.socket_stats();
    assert_eq!(shard.ended.len() as u64, st.streams, "streams opened vs ended");
    let delivered: u64 = shard.ended.iter().map(|c| c.reasm.delivered).sum();
    assert!(delivered <= fed, "delivered {delivered} of {fed}");
    assert_eq!(shard.ctx.session_bytes, 0, "memory not given back");
    assert_eq!(shard.mem(), 0);
});
