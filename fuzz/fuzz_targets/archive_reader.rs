//! The archive reader on arbitrary bytes: as a framed Juno file, as a plain pcapng stream,
//! and as a single Juno record. Nothing may panic; decompression stays within its bound.
#![no_main]

use juno_archive::{frame, reader::PcapNgStream, record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A whole archive (frames, decompression, blocks).
    let _ = juno_archive::read_archive(data, |_, _| {});
    // Frame scanning and bounded decompression of each frame.
    let scan = frame::scan(data);
    for e in &scan.frames {
        let _ = frame::decompress_entry(data, e, 1 << 20);
    }
    // The same bytes as a plain pcapng stream, fed in two pieces.
    let mut s = PcapNgStream::new();
    let cut = data.len() / 2;
    let mut rest = &data[..cut];
    while let Ok(Some(_)) = s.next_item(&mut rest) {}
    // A single record.
    let mut st = record::DecodeStats::default();
    let _ = record::decode(data, &mut st);
});
