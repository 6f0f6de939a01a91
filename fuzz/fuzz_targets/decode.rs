//! Link-layer to transport decoding of arbitrary frames, for every supported link type.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for lt in [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
        if let Ok(d) = juno_analyze::decode::decode(lt, data) {
            assert!(d.payload.len() <= data.len());
            assert!(d.wire_len as usize >= d.payload.len());
        }
    }
});
