//! zstd framing of a Juno archive.
//!
//! An archive file is a sequence of independent zstd frames. Each data frame holds whole pcapng
//! blocks (a block never spans two frames) and at most the configured number of uncompressed
//! bytes. Before each data frame sits a 48-byte zstd *skippable* frame, the frame index:
//!
//! ```text
//! 0  u32 LE  0x184D2A5A  skippable-frame magic (zstd ignores the frame, `zstd -dc` skips it)
//! 4  u32 LE  40          skippable payload length
//! 8  "JFRM"
//! 12 u8      index version (1)
//! 13 u8      flags (0)
//! 14 u16 LE  reserved
//! 16 u32 LE  sequence number of the frame in the file
//! 20 u32 LE  compressed length of the zstd frame that follows
//! 24 u32 LE  uncompressed length
//! 28 u32 LE  number of pcapng blocks in the frame
//! 32 u64 LE  first timestamp in the frame (ns since the epoch; 0 if none)
//! 40 u64 LE  last timestamp in the frame
//! ```
//!
//! `zstd -dc FILE` therefore yields one plain pcapng stream, and a reader can find every frame
//! without decompressing anything, then decompress frames in parallel. A file cut short (a
//! crash, `kill -9`, a full disk) is readable up to its last complete frame: [`scan`] reports
//! the rest as a [`Trailing`] remainder instead of failing.

use thiserror::Error;

/// Magic of the index skippable frame (one of zstd's 16 skippable magics).
pub const INDEX_MAGIC: u32 = 0x184D_2A5A;
/// Any zstd skippable frame magic has these bits, with the low nibble free.
pub const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
/// Base value of zstd skippable frame magics.
pub const SKIPPABLE_BASE: u32 = 0x184D_2A50;
/// zstd frame magic.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Tag at the start of the index payload.
pub const INDEX_TAG: [u8; 4] = *b"JFRM";
/// Length of the whole index frame (header + payload).
pub const INDEX_FRAME_LEN: usize = 48;
const INDEX_PAYLOAD_LEN: u32 = 40;

/// Default bound on the uncompressed bytes of one frame. The frame is also the compressor's
/// window: 4 MiB finds the repeats (header blocks, documents served again) of a busy
/// connection's last few seconds, where 1 MiB found a quarter of them (docs/benchmarks.md:
/// 31–47% fewer bytes and less compression CPU on the benchmark's traffic).
pub const DEFAULT_FRAME_SIZE: usize = 4 << 20;
/// Frames claiming more than this many uncompressed bytes are refused by readers.
pub const MAX_FRAME_SIZE: usize = 64 << 20;

/// What the index frame says about the data frame that follows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameIndex {
    /// Sequence number of the frame in its file, from 0.
    pub seq: u32,
    /// Length of the compressed zstd frame.
    pub compressed_len: u32,
    /// Length of its content.
    pub uncompressed_len: u32,
    /// Number of pcapng blocks in the content.
    pub blocks: u32,
    /// Earliest timestamp of a block in the frame (ns), 0 if none carries one.
    pub first_ts_ns: u64,
    /// Latest timestamp of a block in the frame (ns), 0 if none carries one.
    pub last_ts_ns: u64,
}

impl FrameIndex {
    /// Encodes the index as a skippable zstd frame.
    pub fn to_bytes(&self) -> [u8; INDEX_FRAME_LEN] {
        let mut b = [0u8; INDEX_FRAME_LEN];
        b[0..4].copy_from_slice(&INDEX_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&INDEX_PAYLOAD_LEN.to_le_bytes());
        b[8..12].copy_from_slice(&INDEX_TAG);
        b[12] = 1;
        b[16..20].copy_from_slice(&self.seq.to_le_bytes());
        b[20..24].copy_from_slice(&self.compressed_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.uncompressed_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.blocks.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_ts_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_ts_ns.to_le_bytes());
        b
    }

    /// Parses an index frame at the start of `b`; `None` if it is not one.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < INDEX_FRAME_LEN
            || u32_at(b, 0) != INDEX_MAGIC
            || u32_at(b, 4) != INDEX_PAYLOAD_LEN
            || b[8..12] != INDEX_TAG
            || b[12] != 1
        {
            return None;
        }
        Some(FrameIndex {
            seq: u32_at(b, 16),
            compressed_len: u32_at(b, 20),
            uncompressed_len: u32_at(b, 24),
            blocks: u32_at(b, 28),
            first_ts_ns: u64_at(b, 32),
            last_ts_ns: u64_at(b, 40),
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The zstd level writers use unless told otherwise: zstd's first "fast" level. With the
/// window and hash table [`FrameCompressor`] sets, it compresses a recorder's mix of packets
/// and socket payload about 1.7x faster than level 3 into files about 2% larger
/// (docs/benchmarks.md).
pub const DEFAULT_LEVEL: i32 = -1;

/// A zstd compressor for frames, reused from one frame to the next (its tables are allocated
/// once). Its window covers a whole frame whatever the level, so repeats anywhere in a frame
/// are found: the same bytes captured as a packet and as socket payload, headers repeated
/// across requests. zstd's fast levels would otherwise look back only 512 KiB.
pub struct FrameCompressor {
    c: zstd::bulk::Compressor<'static>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for FrameCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCompressor").finish_non_exhaustive()
    }
}

impl FrameCompressor {
    /// A compressor at zstd `level` for frames of about `frame_size` uncompressed bytes.
    pub fn new(level: i32, frame_size: usize) -> std::io::Result<Self> {
        use zstd::zstd_safe::CParameter;
        let mut c = zstd::bulk::Compressor::new(level)?;
        c.include_checksum(true)?;
        c.include_contentsize(true)?;
        let window_log = frame_size
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 27);
        c.set_parameter(CParameter::WindowLog(window_log))?;
        if level < 3 {
            // The fast levels' hash tables are sized for their small default window.
            c.set_parameter(CParameter::HashLog(16))?;
        }
        Ok(FrameCompressor { c, buf: Vec::new() })
    }

    /// Compresses `content` into an index frame followed by a zstd frame (with content size
    /// and checksum), appending both to `out`.
    pub fn encode(
        &mut self,
        mut index: FrameIndex,
        content: &[u8],
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.buf.clear();
        self.buf
            .reserve(zstd::zstd_safe::compress_bound(content.len()));
        self.c.compress_to_buffer(content, &mut self.buf)?;
        index.compressed_len = u32::try_from(self.buf.len())
            .map_err(|_| std::io::Error::other("compressed frame larger than 4 GiB"))?;
        index.uncompressed_len = u32::try_from(content.len())
            .map_err(|_| std::io::Error::other("frame content larger than 4 GiB"))?;
        out.extend_from_slice(&index.to_bytes());
        out.extend_from_slice(&self.buf);
        Ok(())
    }
}

/// Compresses `content` into an index frame followed by a zstd frame, with a compressor made
/// for this one frame (writers keep a [`FrameCompressor`]).
pub fn encode_frame(
    index: FrameIndex,
    content: &[u8],
    level: i32,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    FrameCompressor::new(level, content.len())?.encode(index, content, out)
}

/// One data frame found in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    /// Offset of the zstd frame (after its index, if any).
    pub offset: usize,
    /// Compressed length.
    pub len: usize,
    /// The index that preceded it, if any.
    pub index: Option<FrameIndex>,
}

/// Why the scan stopped before the end of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailing {
    /// Offset of the first byte not covered by a complete frame.
    pub offset: usize,
    /// Bytes from there to the end.
    pub len: usize,
    /// What was found there.
    pub reason: String,
}

/// The frames of a file, and what remains after the last complete one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameScan {
    /// Complete frames, in file order.
    pub frames: Vec<FrameEntry>,
    /// Bytes after the last complete frame (a file cut short), if any.
    pub trailing: Option<Trailing>,
    /// Skippable frames other than Juno indexes that were passed over.
    pub skipped_frames: u64,
}

/// Does `b` start like a Juno archive (an index frame)?
pub fn is_juno_archive(b: &[u8]) -> bool {
    FrameIndex::parse(b).is_some()
}

/// Finds the frames of a (possibly truncated) zstd file without decompressing them.
///
/// Never fails and never panics: whatever cannot be read as a complete frame ends the scan and
/// is described in [`FrameScan::trailing`].
pub fn scan(buf: &[u8]) -> FrameScan {
    let mut out = FrameScan::default();
    let mut pos = 0usize;
    let mut pending: Option<FrameIndex> = None;
    let mut pending_at = 0usize;
    let stop = |out: &mut FrameScan, pos: usize, reason: String| {
        out.trailing = Some(Trailing {
            offset: pos,
            len: buf.len() - pos,
            reason,
        });
    };
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < 8 {
            stop(&mut out, pos, "incomplete frame header".into());
            break;
        }
        let magic = u32_at(rest, 0);
        if magic & SKIPPABLE_MASK == SKIPPABLE_BASE {
            let size = u32_at(rest, 4) as usize;
            let total = 8usize.saturating_add(size);
            if rest.len() < total {
                stop(&mut out, pos, "incomplete skippable frame".into());
                break;
            }
            match FrameIndex::parse(rest) {
                Some(idx) => {
                    pending = Some(idx);
                    pending_at = pos;
                }
                None => out.skipped_frames += 1,
            }
            pos += total;
            continue;
        }
        if magic != ZSTD_MAGIC {
            stop(
                &mut out,
                pos,
                format!("not a zstd frame (magic {magic:#010x})"),
            );
            break;
        }
        let len = match pending {
            Some(idx) => {
                let len = idx.compressed_len as usize;
                if rest.len() < len {
                    stop(&mut out, pos, "incomplete frame (file cut short)".into());
                    break;
                }
                len
            }
            None => match zstd::zstd_safe::find_frame_compressed_size(rest) {
                Ok(len) if len <= rest.len() => len,
                Ok(_) | Err(_) => {
                    stop(&mut out, pos, "incomplete or corrupt zstd frame".into());
                    break;
                }
            },
        };
        out.frames.push(FrameEntry {
            offset: pos,
            len,
            index: pending.take(),
        });
        pos += len;
    }
    if pending.is_some() && out.trailing.is_none() {
        out.trailing = Some(Trailing {
            offset: pending_at,
            len: buf.len() - pending_at,
            reason: "frame index without its frame (file cut short)".into(),
        });
    }
    out
}

/// Errors decompressing one frame.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The frame claims (or produces) more bytes than the reader accepts.
    #[error("frame content of {claimed} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Claimed size (or a lower bound on it).
        claimed: u64,
        /// The limit.
        limit: usize,
    },
    /// zstd could not decode it.
    #[error("corrupt zstd frame: {0}")]
    Corrupt(#[source] std::io::Error),
    /// The index and the content disagree.
    #[error("frame index says {expected} uncompressed bytes, frame has {actual}")]
    SizeMismatch {
        /// From the index.
        expected: u32,
        /// Decompressed.
        actual: usize,
    },
}

thread_local! {
    /// One decompression context per thread, reset between frames, instead of one per
    /// frame: creating contexts was 41% of the `archive_reader` fuzz target's time on inputs
    /// of hundreds of tiny frames. (The analyzer reading 400,000 one-packet frames took the
    /// same time either way: docs/benchmarks.md, "Hostile inputs".)
    static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Output grows by at most this much at a time when a frame does not say its size.
const STREAM_CHUNK: usize = 128 << 10;

fn corrupt(code: usize) -> FrameError {
    FrameError::Corrupt(std::io::Error::other(zstd::zstd_safe::get_error_name(code)))
}

/// Decompresses one frame, refusing to produce more than `limit` bytes.
///
/// A frame that states its content size is decompressed in one call into a buffer of exactly
/// that size (refused first if it is over `limit`); one that does not is streamed into a
/// buffer grown in steps, never past `limit` + 1 bytes. Neither path zeroes memory it is about
/// to overwrite, and the context is the calling thread's, reused.
pub fn decompress_frame(frame: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dctx = match slot.as_mut() {
            Some(d) => {
                d.reset(zstd::zstd_safe::ResetDirective::SessionOnly)
                    .map_err(corrupt)?;
                d
            }
            None => slot.insert(zstd::zstd_safe::DCtx::try_create().ok_or_else(|| {
                FrameError::Corrupt(std::io::Error::other("zstd context could not be created"))
            })?),
        };
        decompress_with(dctx, frame, limit)
    })
}

fn decompress_with(
    dctx: &mut zstd::zstd_safe::DCtx<'static>,
    frame: &[u8],
    limit: usize,
) -> Result<Vec<u8>, FrameError> {
    use zstd::zstd_safe::{InBuffer, OutBuffer};
    let claimed = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten();
    if let Some(n) = claimed {
        if n > limit as u64 {
            return Err(FrameError::TooLarge { claimed: n, limit });
        }
        // `claimed` is bounded by `limit`, so this allocation is too.
        let mut out = Vec::with_capacity(n as usize);
        dctx.decompress(&mut out, frame).map_err(corrupt)?;
        return Ok(out);
    }
    let mut out: Vec<u8> = Vec::new();
    let mut input = InBuffer::around(frame);
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(FrameError::TooLarge {
                    claimed: out.len() as u64,
                    limit,
                });
            }
            let room = (limit + 1 - out.len()).min(STREAM_CHUNK.max(out.len()));
            out.reserve_exact(room);
        }
        let before = (input.pos(), out.len());
        let pos = out.len();
        let hint = dctx
            .decompress_stream(&mut OutBuffer::around_pos(&mut out, pos), &mut input)
            .map_err(corrupt)?;
        if hint == 0 {
            break;
        }
        if (input.pos(), out.len()) == before {
            // Neither input consumed nor output produced: the frame ends before its end.
            return Err(FrameError::Corrupt(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "zstd frame cut short",
            )));
        }
    }
    if out.len() > limit {
        return Err(FrameError::TooLarge {
            claimed: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}

/// Decompresses an indexed frame and checks it against its index.
pub fn decompress_entry(buf: &[u8], e: &FrameEntry, limit: usize) -> Result<Vec<u8>, FrameError> {
    let frame = &buf[e.offset..e.offset + e.len];
    if let Some(idx) = e.index
        && idx.uncompressed_len as usize > limit
    {
        return Err(FrameError::TooLarge {
            claimed: u64::from(idx.uncompressed_len),
            limit,
        });
    }
    let out = decompress_frame(frame, limit)?;
    if let Some(idx) = e.index
        && idx.uncompressed_len as usize != out.len()
    {
        return Err(FrameError::SizeMismatch {
            expected: idx.uncompressed_len,
            actual: out.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Incompressible bytes (xorshift).
    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn the_window_covers_the_frame_at_fast_levels_and_compressors_are_reusable() {
        // 600 KiB of noise, then the same 600 KiB: only a window longer than 600 KiB finds
        // the repeat (zstd's fast levels default to 512 KiB).
        let a = noise(600 << 10, 0x9E37_79B9_7F4A_7C15);
        let content = [a.as_slice(), a.as_slice()].concat();
        let mut c = FrameCompressor::new(DEFAULT_LEVEL, 2 << 20).unwrap();
        for _ in 0..2 {
            let mut out = Vec::new();
            c.encode(FrameIndex::default(), &content, &mut out).unwrap();
            let scan = scan(&out);
            assert_eq!(scan.frames.len(), 1);
            let e = scan.frames[0];
            assert!(
                e.len < a.len() + a.len() / 50,
                "{} bytes: repeat missed",
                e.len
            );
            assert_eq!(decompress_entry(&out, &e, 4 << 20).unwrap(), content);
        }
    }

    fn two_frames() -> Vec<u8> {
        let mut f = Vec::new();
        let i0 = FrameIndex {
            seq: 0,
            blocks: 1,
            first_ts_ns: 5,
            last_ts_ns: 6,
            ..Default::default()
        };
        encode_frame(i0, b"hello frame zero", 3, &mut f).unwrap();
        let i1 = FrameIndex {
            seq: 1,
            blocks: 2,
            first_ts_ns: 7,
            last_ts_ns: 9,
            ..Default::default()
        };
        encode_frame(i1, &[0xAB; 5000], 3, &mut f).unwrap();
        f
    }

    #[test]
    fn index_literal_bytes() {
        let idx = FrameIndex {
            seq: 2,
            compressed_len: 0x0102,
            uncompressed_len: 0x0304,
            blocks: 7,
            first_ts_ns: 1,
            last_ts_ns: 2,
        };
        let b = idx.to_bytes();
        assert_eq!(&b[0..4], &[0x5A, 0x2A, 0x4D, 0x18]);
        assert_eq!(&b[4..8], &[40, 0, 0, 0]);
        assert_eq!(&b[8..12], b"JFRM");
        assert_eq!(&b[16..20], &[2, 0, 0, 0]);
        assert_eq!(&b[20..24], &[2, 1, 0, 0]);
        assert_eq!(FrameIndex::parse(&b), Some(idx));
        let mut bad = b;
        bad[8] = b'X';
        assert_eq!(FrameIndex::parse(&bad), None);
        assert_eq!(FrameIndex::parse(&b[..47]), None);
    }

    #[test]
    fn scan_and_decompress() {
        let f = two_frames();
        let s = scan(&f);
        assert_eq!(s.frames.len(), 2);
        assert!(s.trailing.is_none());
        assert_eq!(
            decompress_entry(&f, &s.frames[0], 1 << 20).unwrap(),
            b"hello frame zero"
        );
        assert_eq!(
            decompress_entry(&f, &s.frames[1], 1 << 20).unwrap(),
            vec![0xAB; 5000]
        );
        assert_eq!(s.frames[1].index.unwrap().last_ts_ns, 9);
    }

    #[test]
    fn zstd_cli_compatible_concatenation() {
        // The whole file decompresses as one stream with a plain zstd decoder.
        let f = two_frames();
        let all = zstd::stream::decode_all(&f[..]).unwrap();
        let mut want = b"hello frame zero".to_vec();
        want.extend_from_slice(&[0xAB; 5000]);
        assert_eq!(all, want);
    }

    #[test]
    fn truncated_file_keeps_complete_frames() {
        let f = two_frames();
        let s_full = scan(&f);
        for cut in 0..f.len() {
            let s = scan(&f[..cut]);
            let complete = s_full
                .frames
                .iter()
                .filter(|e| e.offset + e.len <= cut)
                .count();
            assert_eq!(s.frames.len(), complete, "cut at {cut}");
            if cut > 0 && cut != s_full.frames[0].offset + s_full.frames[0].len {
                assert!(s.trailing.is_some(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn frames_without_index_are_found() {
        let mut f = zstd::bulk::compress(b"abc", 1).unwrap();
        f.extend(zstd::bulk::compress(b"defg", 1).unwrap());
        let s = scan(&f);
        assert_eq!(s.frames.len(), 2);
        assert!(s.frames[0].index.is_none());
        assert_eq!(decompress_entry(&f, &s.frames[1], 100).unwrap(), b"defg");
    }

    #[test]
    fn oversized_claim_is_refused_before_allocating() {
        let f = zstd::bulk::compress(&vec![0u8; 100_000], 1).unwrap();
        match decompress_frame(&f, 1000) {
            Err(FrameError::TooLarge {
                claimed: 100_000,
                limit: 1000,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A frame written by a streaming encoder that was not told the size: no content size
    /// in its header, so it is streamed.
    fn unsized_frame(content: &[u8]) -> Vec<u8> {
        let mut e = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        e.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut e, content).unwrap();
        let f = e.finish().unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&f),
            Ok(None)
        ));
        f
    }

    #[test]
    fn frames_without_a_content_size_are_streamed_within_the_limit() {
        // Larger than one growth step, so the output grows several times.
        let content = noise(300_000, 7);
        let f = unsized_frame(&content);
        assert_eq!(decompress_frame(&f, 300_000).unwrap(), content);
        match decompress_frame(&f, 299_999) {
            Err(FrameError::TooLarge { limit: 299_999, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
        // Cut anywhere, it is an error, never a partial success.
        for cut in [6, 100, f.len() / 2, f.len() - 1] {
            assert!(
                matches!(
                    decompress_frame(&f[..cut], 1 << 20),
                    Err(FrameError::Corrupt(_))
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn the_reused_context_starts_clean_after_a_failed_frame() {
        let a = noise(50_000, 1);
        let f = unsized_frame(&a);
        // Leave the thread's context in the middle of a frame...
        assert!(decompress_frame(&f[..f.len() / 2], 1 << 20).is_err());
        // ...and the next frames, streamed or sized, still decode whole.
        assert_eq!(decompress_frame(&f, 1 << 20).unwrap(), a);
        let b = zstd::bulk::compress(&a[..1000], 3).unwrap();
        assert_eq!(decompress_frame(&b, 1 << 20).unwrap(), &a[..1000]);
        assert_eq!(decompress_frame(&f, 1 << 20).unwrap(), a);
    }

    #[test]
    fn garbage_stops_scan_without_panic() {
        let s = scan(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08");
        assert!(s.frames.is_empty());
        assert_eq!(s.trailing.unwrap().offset, 0);
        // An index that claims a frame longer than the file.
        let idx = FrameIndex {
            compressed_len: u32::MAX,
            ..Default::default()
        }
        .to_bytes();
        let mut f = idx.to_vec();
        f.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
        f.extend_from_slice(&[0; 8]);
        let s = scan(&f);
        assert!(s.frames.is_empty());
        assert!(s.trailing.unwrap().reason.contains("cut short"));
    }
}
