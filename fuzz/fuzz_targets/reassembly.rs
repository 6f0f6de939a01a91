//! TCP reassembly with arbitrary segments (sequence numbers, flags, payloads, truncation)
//! and acknowledgements. Invariants: what is delivered is what the counters say (data bytes
//! = `delivered`, gap bytes = `gap_bytes`, one gap counted per gap delivered), never more data
//! than was fed, no empty data delivery; the buffer bounds hold at every step and everything
//! held is given back at the end.
#![no_main]

use juno_analyze::conn::reassembly::{Budget, Delivery, Reassembler, Segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::default();
    let mut b = Budget { used: 0, limit: 4096, per_direction: 2048 };
    let (mut data_bytes, mut gap_bytes, mut gaps, mut fed) = (0u64, 0u64, 0u64, 0u64);
    let mut sink = |d: Delivery<'_>| match d {
        Delivery::Data { data, .. } => {
            assert!(!data.is_empty(), "an empty data delivery");
            data_bytes += data.len() as u64;
        }
        Delivery::Gap { len, .. } => {
            assert!(len > 0, "an empty gap");
            gap_bytes += len;
            gaps += 1;
        }
    };
    let mut rest = data;
    while rest.len() >= 7 {
        let (h, tail) = rest.split_at(7);
        let seq = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) & 0xFFFF;
        let kind = h[4];
        let len = usize::from(h[5]).min(tail.len());
        let extra = u32::from(h[6] & 0x0f);
        let (payload, next) = tail.split_at(len);
        rest = next;
        if kind & 0x80 != 0 {
            r.ack(seq, 0, &mut b, &mut sink);
        } else {
            fed += payload.len() as u64;
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
    r.finish(0, &mut b, &mut sink);
    assert_eq!(b.used, 0, "bytes still counted as held after finish");
    assert_eq!(r.held_bytes(), 0);
    assert_eq!(data_bytes, r.stats.delivered, "data delivered vs counted");
    assert_eq!(gap_bytes, r.stats.gap_bytes, "gap bytes delivered vs counted");
    assert_eq!(gaps, r.stats.gaps, "gaps delivered vs counted");
    assert!(data_bytes <= fed, "delivered {data_bytes} bytes of {fed} fed");
});
