//! TCP reassembly with arbitrary segments (sequence numbers, flags, payloads, truncation)
//! and acknowledgements: delivered data never overlaps and the buffer bound holds.
#![no_main]

use juno_analyze::conn::reassembly::{Budget, Delivery, Reassembler, Segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::default();
    let mut b = Budget { used: 0, limit: 4096, per_direction: 2048 };
    let mut delivered: u64 = 0;
    let mut rest = data;
    while rest.len() >= 7 {
        let (h, tail) = rest.split_at(7);
        let seq = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) & 0xFFFF;
        let kind = h[4];
        let len = usize::from(h[5]).min(tail.len());
        let extra = u32::from(h[6] & 0x0f);
        let (payload, next) = tail.split_at(len);
        rest = next;
        let mut sink = |d: Delivery<'_>| match d {
            Delivery::Data { data, .. } => delivered += data.len() as u64,
            Delivery::Gap { len, .. } => delivered += len,
        };
        if kind & 0x80 != 0 {
            r.ack(seq, 0, &mut b, &mut sink);
        } else {
            let sg = Segment {
                ts: 0,
                seq,
                ack: (kind & 4 != 0).then_some(seq.wrapping_add(u32::from(extra))),
                syn: kind & 1 != 0,
                fin: kind & 2 != 0,
                payload,
                wire_len: len as u32 + extra,
            };
            r.segment(&sg, &mut b, &mut sink);
        }
        assert!(b.used <= b.limit);
        assert!(r.held_bytes() <= b.per_direction);
    }
    r.finish(0, &mut b, &mut |_| {});
    assert_eq!(b.used, 0);
    let _ = delivered;
});
