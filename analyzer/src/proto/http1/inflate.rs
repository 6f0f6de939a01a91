//! Counting the decoded size of gzip / zlib / raw-deflate bodies, incrementally and within a
//! bound. Nothing decoded is kept: HTTP logs report decoded body lengths (as Zeek does), and
//! that is all this is for.
//!
//! A gzip member ends with its decoded size (ISIZE, modulo 2^32). So a gzip body is inflated
//! only for its first [`INFLATE_PREFIX`] compressed bytes — enough to check it is a healthy
//! deflate stream and to learn its compression ratio — and then merely counted; when the body
//! is complete, its length is the trailer's ISIZE (the 2^32 wrap, for bodies decoding to 4 GiB
//! or more, is recovered from the ratio). Bodies cut short are counted as far as they were
//! inflated, and flagged. `deflate` bodies have no size trailer and are always inflated.

use crate::read::{le_u16, le_u32};
use flate2::{Decompress, FlushDecompress, Status};

/// Decoded bytes counted per body at most; beyond that the body counts as undecodable
/// (protection against decompression bombs).
pub const MAX_DECODED: u64 = 1 << 30;

thread_local! {
    /// Where inflated bytes go to be counted and forgotten; one per thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 32 * 1024]);
    /// Decompressors ready for reuse (each holds a 32 KiB window): one per body otherwise.
    #[expect(clippy::vec_box, reason = "the boxes move in and out of Inflater, which holds a Box")]
    static SPARE: std::cell::RefCell<Vec<Box<Decompress>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A decompressor from this thread's spares, reset for a new stream.
fn decompressor(zlib_header: bool) -> Box<Decompress> {
    match SPARE.with_borrow_mut(Vec::pop) {
        Some(mut z) => {
            z.reset(zlib_header);
            z
        }
        None => Box::new(Decompress::new(zlib_header)),
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        if let St::Inflate { z, .. } = std::mem::replace(&mut self.st, St::Done) {
            SPARE.with_borrow_mut(|s| {
                if s.len() < 8 {
                    s.push(z);
                }
            });
        }
    }
}

/// Compressed bytes of a gzip body inflated before trusting its trailer.
pub const INFLATE_PREFIX: u64 = 1024;

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
    /// A gzip body past its inflated prefix: bytes are counted, the last eight kept.
    Skip,
    /// The stream ended or failed: later bytes are not counted.
    Done,
}

/// Incremental decoder that counts output bytes.
pub struct Inflater {
    st: St,
    /// Decoded bytes so far (exact: what inflating produced).
    pub decoded: u64,
    /// True if decoding failed (the count stops there).
    pub failed: bool,
    gzip: bool,
    /// The deflate stream ended while inflating: `decoded` is the exact total.
    ended: bool,
    /// Compressed bytes after the gzip header.
    fed: u64,
    /// Compressed bytes consumed while inflating.
    inflated_in: u64,
    tail: [u8; 8],
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
        let Some(xlen) = le_u16(b, p) else {
            return Ok(None);
        };
        p += 2 + usize::from(xlen);
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
                z: decompressor(true),
                first: Vec::new(),
                raw_retry: true,
            },
        };
        Inflater {
            st,
            decoded: 0,
            failed: false,
            gzip: coding == Coding::Gzip,
            ended: false,
            fed: 0,
            inflated_in: 0,
            tail: [0; 8],
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.st = St::Done;
    }

    fn note_gzip_bytes(&mut self, data: &[u8]) {
        self.fed += data.len() as u64;
        if data.len() >= 8 {
            self.tail.copy_from_slice(&data[data.len() - 8..]);
        } else {
            self.tail.rotate_left(data.len());
            let n = self.tail.len();
            self.tail[n - data.len()..].copy_from_slice(data);
        }
    }

    /// Feeds body bytes.
    pub fn feed(&mut self, mut data: &[u8]) {
        loop {
            match &mut self.st {
                St::Done => return,
                St::Skip => {
                    self.note_gzip_bytes(data);
                    return;
                }
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
                                z: decompressor(false),
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
                    let gzip = self.gzip;
                    // A gzip body is inflated only up to its prefix; the rest is counted.
                    let room = if gzip {
                        INFLATE_PREFIX.saturating_sub(z.total_in()) as usize
                    } else {
                        usize::MAX
                    };
                    let to_inflate = &data[..data.len().min(room)];
                    // While a `deflate` body may still turn out to be raw deflate rather than
                    // zlib, keep its first bytes to start over with.
                    let kept_now = if *raw_retry {
                        data.len().min(4096usize.saturating_sub(first.len()))
                    } else {
                        0
                    };
                    first.extend_from_slice(&data[..kept_now]);
                    let mut input = to_inflate;
                    let mut stream_end = false;
                    while !input.is_empty() {
                        let before_in = z.total_in();
                        let before_out = z.total_out();
                        let r = SCRATCH.with_borrow_mut(|scratch| {
                            z.decompress(input, scratch, FlushDecompress::None)
                        });
                        let used = (z.total_in() - before_in) as usize;
                        let produced = z.total_out() - before_out;
                        input = &input[used..];
                        match r {
                            Ok(Status::StreamEnd) => {
                                self.decoded += produced;
                                stream_end = true;
                                break;
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
                                    z: decompressor(false),
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
                    let total_in = z.total_in();
                    // Past the two-byte zlib header without complaint: it is zlib.
                    if total_in >= 2 {
                        *raw_retry = false;
                        first.clear();
                    }
                    if stream_end {
                        self.ended = true;
                        self.st = St::Done;
                        return;
                    }
                    if gzip {
                        self.note_gzip_bytes(data);
                        if total_in >= INFLATE_PREFIX {
                            self.inflated_in = total_in;
                            self.st = St::Skip;
                        }
                    }
                    return;
                }
            }
        }
    }

    /// The body ended (`complete`: it arrived whole): the decoded length, and the name of an
    /// anomaly when the length is not exact.
    pub fn finish(&self, complete: bool) -> (u64, Option<&'static str>) {
        if !matches!(self.st, St::Skip) {
            return (self.decoded, None);
        }
        if !complete {
            // No trailer: only the inflated prefix is known.
            return (self.decoded, Some("HTTP_gzip_body_cut_counted_in_part"));
        }
        let isize = u64::from(le_u32(&self.tail, 4).unwrap_or(0));
        // The compressed bytes minus the 8-byte trailer, at the ratio seen so far, tell how many
        // times the 32-bit size wrapped.
        let ratio = self.decoded as f64 / self.inflated_in.max(1) as f64;
        let estimate = self.fed.saturating_sub(8) as f64 * ratio;
        let wraps = ((estimate - isize as f64) / 4_294_967_296.0)
            .round()
            .max(0.0) as u64;
        let total = isize + (wraps << 32);
        if total < self.decoded {
            return (self.decoded, Some("HTTP_gzip_trailer_inconsistent"));
        }
        (total, None)
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

    struct Counted {
        decoded: u64,
        failed: bool,
    }

    fn count(coding: Coding, body: &[u8], step: usize) -> Counted {
        let mut inf = Inflater::new(coding);
        for c in body.chunks(step) {
            inf.feed(c);
        }
        let (decoded, weird) = inf.finish(true);
        assert_eq!(weird, None);
        Counted {
            decoded,
            failed: inf.failed,
        }
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
    fn large_gzip_body_uses_its_trailer_and_cut_body_counts_the_prefix() {
        // Incompressible enough that the compressed body is far beyond the inflated prefix.
        let mut x: u32 = 1;
        let t: Vec<u8> = (0..300_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b'a' + (x >> 24) as u8 % 26
            })
            .collect();
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&t).unwrap();
        let gz = g.finish().unwrap();
        assert!(gz.len() as u64 > 4 * INFLATE_PREFIX);
        for step in [3, 1000, 1 << 20] {
            assert_eq!(
                count(Coding::Gzip, &gz, step).decoded,
                t.len() as u64,
                "step {step}"
            );
        }
        let mut inf = Inflater::new(Coding::Gzip);
        inf.feed(&gz[..gz.len() / 2]);
        let (n, weird) = inf.finish(false);
        assert!(n > 0 && n < t.len() as u64);
        assert_eq!(weird, Some("HTTP_gzip_body_cut_counted_in_part"));
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
