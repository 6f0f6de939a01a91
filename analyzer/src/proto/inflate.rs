//! Counting the decoded size of gzip / zlib / raw-deflate bodies, incrementally and within a
//! bound. Nothing decoded is kept: HTTP logs report decoded body lengths (as Zeek does), and
//! that is all this is for.

use flate2::{Decompress, FlushDecompress, Status};

/// Decoded bytes counted per body at most; beyond that the body counts as undecodable
/// (protection against decompression bombs).
pub const MAX_DECODED: u64 = 1 << 30;

/// Content-Encoding kinds that are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate` (zlib-wrapped, or raw as some servers send it).
    Deflate,
}

enum St {
    /// Reading the gzip member header (bytes kept until it is complete).
    GzipHeader(Vec<u8>),
    /// Inflating; `raw_retry` is set while a zlib stream may still turn out to be raw deflate.
    Inflate {
        z: Box<Decompress>,
        first: Vec<u8>,
        raw_retry: bool,
    },
    /// The stream ended or failed: later bytes are not counted.
    Done,
}

/// Incremental decoder that counts output bytes.
pub struct Inflater {
    st: St,
    /// Decoded bytes so far.
    pub decoded: u64,
    /// True if decoding failed (the count stops there).
    pub failed: bool,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("decoded", &self.decoded)
            .field("failed", &self.failed)
            .finish()
    }
}

/// Parses a gzip member header; `Ok(Some(len))` when complete, `Ok(None)` if more bytes are
/// needed, `Err` if it is not gzip.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, ()> {
    if b.len() < 10 {
        return if b.is_empty() || b[0] == 0x1f && (b.len() < 2 || b[1] == 0x8b) {
            Ok(None)
        } else {
            Err(())
        };
    }
    if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
        return Err(());
    }
    let flg = b[3];
    let mut p = 10usize;
    if flg & 0x04 != 0 {
        if b.len() < p + 2 {
            return Ok(None);
        }
        p += 2 + usize::from(u16::from_le_bytes([b[p], b[p + 1]]));
    }
    for bit in [0x08u8, 0x10] {
        if flg & bit != 0 {
            match b.get(p..).and_then(|r| memchr::memchr(0, r)) {
                Some(i) => p += i + 1,
                None => return Ok(None),
            }
        }
    }
    if flg & 0x02 != 0 {
        p += 2;
    }
    if b.len() < p { Ok(None) } else { Ok(Some(p)) }
}

impl Inflater {
    /// A decoder for `coding`.
    pub fn new(coding: Coding) -> Self {
        let st = match coding {
            Coding::Gzip => St::GzipHeader(Vec::new()),
            Coding::Deflate => St::Inflate {
                z: Box::new(Decompress::new(true)),
                first: Vec::new(),
                raw_retry: true,
            },
        };
        Inflater {
            st,
            decoded: 0,
            failed: false,
            scratch: vec![0; 32 * 1024],
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.st = St::Done;
    }

    /// Feeds body bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        loop {
            match &mut self.st {
                St::Done => return,
                St::GzipHeader(buf) => {
                    let need_more_from = buf.len();
                    buf.extend_from_slice(&data[..data.len().min(64 * 1024)]);
                    match gzip_header_len(buf) {
                        Ok(None) => {
                            if buf.len() >= 64 * 1024 {
                                self.fail();
                            }
                            return;
                        }
                        Err(()) => {
                            self.fail();
                            return;
                        }
                        Ok(Some(hl)) => {
                            // Continue with the bytes after the header.
                            let used_from_data = hl.saturating_sub(need_more_from);
                            data = &data[used_from_data.min(data.len())..];
                            self.st = St::Inflate {
                                z: Box::new(Decompress::new(false)),
                                first: Vec::new(),
                                raw_retry: false,
                            };
                        }
                    }
                }
                St::Inflate {
                    z,
                    first,
                    raw_retry,
                } => {
                    // While a `deflate` body may still turn out to be raw deflate rather than
                    // zlib, keep its first bytes to start over with.
                    let kept_now = if *raw_retry {
                        data.len().min(4096usize.saturating_sub(first.len()))
                    } else {
                        0
                    };
                    first.extend_from_slice(&data[..kept_now]);
                    let mut input = data;
                    while !input.is_empty() {
                        let before_in = z.total_in();
                        let before_out = z.total_out();
                        let r = z.decompress(input, &mut self.scratch, FlushDecompress::None);
                        let used = (z.total_in() - before_in) as usize;
                        let produced = z.total_out() - before_out;
                        input = &input[used..];
                        match r {
                            Ok(Status::StreamEnd) => {
                                self.decoded += produced;
                                self.st = St::Done;
                                return;
                            }
                            Ok(_) => {
                                self.decoded += produced;
                                if self.decoded > MAX_DECODED {
                                    self.fail();
                                    return;
                                }
                                if used == 0 && produced == 0 {
                                    break;
                                }
                            }
                            Err(_) if *raw_retry && z.total_out() == 0 => {
                                // Not zlib: start over as raw deflate with everything so far.
                                let kept = std::mem::take(first);
                                self.st = St::Inflate {
                                    z: Box::new(Decompress::new(false)),
                                    first: Vec::new(),
                                    raw_retry: false,
                                };
                                self.feed(&kept);
                                self.feed(&data[kept_now..]);
                                return;
                            }
                            Err(_) => {
                                self.fail();
                                return;
                            }
                        }
                    }
                    // Past the two-byte zlib header without complaint: it is zlib.
                    if z.total_in() >= 2 {
                        *raw_retry = false;
                        first.clear();
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use std::io::Write;

    fn text() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    fn count(coding: Coding, body: &[u8], step: usize) -> Inflater {
        let mut inf = Inflater::new(coding);
        for c in body.chunks(step) {
            inf.feed(c);
        }
        inf
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_in_any_pieces() {
        let t = text();
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&t).unwrap();
        let gz = g.finish().unwrap();
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&t).unwrap();
        let zl = z.finish().unwrap();
        let mut d = DeflateEncoder::new(Vec::new(), Compression::default());
        d.write_all(&t).unwrap();
        let raw = d.finish().unwrap();
        for step in [1, 7, 1000, 1 << 20] {
            assert_eq!(
                count(Coding::Gzip, &gz, step).decoded,
                t.len() as u64,
                "gzip step {step}"
            );
            assert_eq!(
                count(Coding::Deflate, &zl, step).decoded,
                t.len() as u64,
                "zlib step {step}"
            );
            assert_eq!(
                count(Coding::Deflate, &raw, step).decoded,
                t.len() as u64,
                "raw step {step}"
            );
        }
    }

    #[test]
    fn garbage_fails_without_panic() {
        let inf = count(Coding::Gzip, b"definitely not gzip data", 5);
        assert!(inf.failed);
        let inf = count(Coding::Deflate, &[0xff; 100], 3);
        assert!(inf.failed);
    }

    #[test]
    fn gzip_header_with_name() {
        let mut g = flate2::GzBuilder::new()
            .filename("x.txt")
            .comment("hi")
            .write(Vec::new(), Compression::fast());
        g.write_all(b"hello world").unwrap();
        let gz = g.finish().unwrap();
        assert_eq!(count(Coding::Gzip, &gz, 3).decoded, 11);
    }
}
