//! Link-layer to transport decoding of arbitrary frames, for every supported link type,
//! tunnels included; fragments go through a small reassembler (its byte bound must hold) and
//! what it completes is decoded too.
#![no_main]

use juno_analyze::decode::defrag::{Defrag, DefragConfig};
use juno_analyze::decode::{self, Frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = DefragConfig {
        max_bytes: 4096,
        ..DefragConfig::default()
    };
    let mut defrag = Defrag::new(cfg);
    // The input twice, as two frames of each link type: fragments of one datagram can meet.
    for lt in [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 239, 276] {
        for ts in [1, 2] {
            // Checksums not verified: random headers would rarely get past them.
            let opts = decode::Options {
                ignore_checksums: true,
            };
            match decode::decode_frame_with(lt, data, opts) {
                Ok(Frame::Packet(d)) => {
                    assert!(d.payload.len() <= data.len());
                    assert!(d.wire_len as usize >= d.payload.len());
                }
                Ok(Frame::Fragment(f)) => {
                    assert!(f.payload.len() <= data.len());
                    if let Some(dg) = defrag.add(0, ts, &f) {
                        let _ = decode::decode_datagram(&dg, opts);
                    }
                }
                Err(_) => {}
            }
            assert!(defrag.held_bytes() <= cfg.max_bytes);
        }
    }
    defrag.finish();
    assert_eq!(defrag.held_bytes(), 0);
});
