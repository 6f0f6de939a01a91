//! The archive reader on arbitrary bytes: as a framed Juno file, as a plain pcapng stream,
//! and as a single Juno record. Invariants: frame decompression stays within its bound;
//! every frame found is decoded or counted as corrupt; reading always makes progress (no
//! more items than blocks of the minimum size, plus the interfaces it may assume); a stream
//! read in two pieces yields what it yields whole.
#![no_main]

use juno_archive::{frame, reader::PcapNgStream, record};
use libfuzzer_sys::fuzz_target;

fn items(bytes: &[u8], cut: usize) -> (usize, bool) {
    let mut s = PcapNgStream::new();
    let (mut n, mut failed) = (0usize, false);
    // The first byte not consumed yet: what a piece leaves unparsed is carried to the next.
    let mut start = 0usize;
    for end in [cut, bytes.len()] {
        let mut rest: &[u8] = &bytes[start..end];
        loop {
            match s.next_item(&mut rest) {
                Ok(Some(_)) => n += 1,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            assert!(n <= bytes.len() / 12 + 4096 + 1, "no progress");
        }
        start = end - rest.len();
        if failed {
            break;
        }
    }
    (n, failed)
}

fuzz_target!(|data: &[u8]| {
    // A whole archive (frames, decompression, blocks).
    let scan = frame::scan(data);
    if let Ok(rep) = juno_archive::read_archive(data, |_, _| {}) {
        assert!(rep.frames + rep.corrupt_frames <= scan.frames.len() as u64);
    }
    // Frame scanning and bounded decompression of each frame.
    for e in &scan.frames {
        if let Ok(c) = frame::decompress_entry(data, e, 1 << 20) {
            assert!(c.len() <= 1 << 20);
        }
    }
    // The same bytes as a plain pcapng stream, whole and fed in two pieces.
    let whole = items(data, data.len());
    let split = items(data, data.len() / 2);
    assert_eq!(whole, split, "reading in two pieces changed what was read");
    // A single record.
    let mut st = record::DecodeStats::default();
    let _ = record::decode(data, &mut st);
});
