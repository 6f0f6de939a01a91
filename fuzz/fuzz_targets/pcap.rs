//! The legacy pcap reader (and the whole input path: chunks, carries, the merge) on arbitrary
//! records after a valid file header (byte order and resolution from the first byte), plain
//! and gzip-compressed. Invariants: the same packets either way (compression is
//! transparent); every packet's bytes lie in its chunk and its captured length is at most
//! its wire length; no more packets than 16-byte record headers fit in the input.
#![no_main]

use std::io::{Cursor, Write};

use juno_analyze::input::{BatchItem, InputOptions, Inputs};
use libfuzzer_sys::fuzz_target;

fn packets(bytes: Vec<u8>) -> Option<Vec<(u64, u32, Vec<u8>)>> {
    let inputs = Inputs::from_reader("fuzz", Box::new(Cursor::new(bytes)), InputOptions::default()).ok()?;
    let mut out = Vec::new();
    inputs
        .read(|b| {
            for it in &b.items {
                if let BatchItem::Packet(p) = it {
                    assert!(p.len <= p.orig_len, "captured more than the wire carried");
                    out.push((p.ts, p.orig_len, b.packet_data(p).to_vec()));
                }
            }
            true
        })
        .ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let magic: u32 = [0xA1B2_C3D4, 0xA1B2_3C4D, 0xD4C3_B2A1, 0x4D3C_B2A1][usize::from(mode & 3)];
    let mut file = magic.to_be_bytes().to_vec();
    let le = mode & 2 != 0;
    let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    file.extend(w16(2));
    file.extend(w16(4));
    file.extend([0u8; 8]);
    file.extend(w32(65535));
    file.extend(w32(1));
    file.extend_from_slice(rest);
    let plain = packets(file.clone());
    if let Some(p) = &plain {
        assert!(p.len() <= rest.len() / 16 + 1);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&file).unwrap();
    let zipped = packets(gz.finish().unwrap());
    assert_eq!(plain, zipped, "gzip changed what was read");
});
