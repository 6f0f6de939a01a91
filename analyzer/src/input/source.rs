//! Byte sources: a file's bytes, decompressed, delivered in chunks.
//!
//! The container parser asks for the next chunk and hands back the unparsed tail of the
//! previous one (`carry`); every chunk begins with that tail, so records may span chunk
//! boundaries — unless the source lost bytes just before it (a Juno frame that could not be
//! decompressed), which it says ([`ChunkSource::take_lost`]): the chunk then begins where
//! reading resumes, without the carry.
//!
//! Memory stays bounded whatever the file's size: chunks hold at most the source's chunk size
//! of new bytes and come from a small pool of reused buffers (so a large capture costs neither
//! growing memory nor page faults on fresh allocations); a carry may grow only up to
//! [`MAX_RECORD`], and when it is long the next chunk is made at least as long again, so that
//! a record spanning many chunks is copied a bounded number of times, not once per chunk; Juno
//! frames are decompressed a window at a time, the window bounded in bytes (at least one frame)
//! and in frames (two per thread).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use juno_archive::frame::{self, FrameIndex, INDEX_FRAME_LEN, INDEX_TAG, MAX_FRAME_SIZE};
use rayon::prelude::*;

use crate::read::le_u32;

/// New bytes read per chunk.
pub(crate) const CHUNK: usize = 4 << 20;
/// New bytes read per chunk while peeking at a file's beginning.
pub(crate) const PEEK_CHUNK: usize = 64 << 10;
/// Largest record (pcap record or pcapng block) a reader accepts.
pub(crate) const MAX_RECORD: usize = 64 << 20;
/// Buffers kept for reuse per pool.
const POOL_KEEP: usize = 8;

/// Progress counter shared with the progress bar: input bytes consumed.
pub(crate) type Progress = Arc<AtomicU64>;

/// A source of chunks.
pub(crate) trait ChunkSource: Send {
    /// The next chunk, starting with `carry` (unless bytes were lost before it); `None` at the
    /// end of input.
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>>;
    /// Problems met that did not stop reading (truncation, corrupt frames).
    fn take_warnings(&mut self) -> Vec<String>;
    /// Whether bytes were lost before the chunk just returned: it does not begin with the
    /// carry, and the container parser must resume at its start.
    fn take_lost(&mut self) -> bool {
        false
    }
    /// Whether broken content in a chunk can be skipped to the next one (Juno frames hold
    /// whole blocks: reading resumes at the next frame).
    fn resumable(&self) -> bool {
        false
    }
    /// Where the source is, for warnings (e.g. "frame 3 (byte 12345)").
    fn position(&self) -> String;
}

/// Reusable chunk buffers: a chunk returns its buffer here when the last batch referring to
/// it is dropped.
#[derive(Debug, Default)]
pub(crate) struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    /// A buffer of at least `len` initialized bytes (contents unspecified: reused buffers are
    /// not zeroed again).
    fn take(&self, len: usize) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .map(|mut p| p.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        if v.len() < len {
            v.resize(len, 0);
        }
        v
    }
    fn give(&self, v: Vec<u8>, chunk: usize) {
        if let Ok(mut p) = self.0.lock()
            && p.len() < POOL_KEEP
            && v.len() <= chunk * 2
        {
            p.push(v);
        }
    }
}

struct Pooled {
    buf: Vec<u8>,
    used: usize,
    chunk: usize,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.used]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf), self.chunk);
    }
}

/// Counts bytes read from the underlying file for progress.
pub(crate) struct CountingReader<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> CountingReader<R> {
    pub(crate) fn new(inner: R, progress: Progress) -> Self {
        CountingReader { inner, progress }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A stream read in chunks: a plain file, or a decompressor (gzip, a zstd file not written by
/// Juno) over one.
pub(crate) struct StreamSource {
    reader: Box<dyn Read + Send>,
    what: &'static str,
    done: bool,
    warnings: Vec<String>,
    pool: Arc<Pool>,
    chunk: usize,
    /// Bytes of the stream handed out so far (decompressed, for compressed streams).
    pos: u64,
}

impl StreamSource {
    pub(crate) fn new(reader: Box<dyn Read + Send>, what: &'static str, chunk: usize) -> Self {
        StreamSource {
            reader,
            what,
            done: false,
            warnings: Vec::new(),
            pool: Arc::new(Pool::default()),
            chunk,
            pos: 0,
        }
    }
}

impl ChunkSource for StreamSource {
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        if carry.len() > MAX_RECORD {
            self.done = true;
            self.warnings.push(format!(
                "a record longer than {MAX_RECORD} bytes at byte {} of the {}: stopped reading this file there",
                self.pos - carry.len() as u64,
                self.stream_name()
            ));
            return Ok(None);
        }
        // A long carry (a record spanning chunks) gets at least as many new bytes again.
        let want = carry.len() + self.chunk.max(carry.len());
        let mut buf = self.pool.take(want);
        buf[..carry.len()].copy_from_slice(carry);
        let mut filled = carry.len();
        while filled < want {
            match self.reader.read(&mut buf[filled..want]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.what == "file" => {
                    self.done = true;
                    self.warnings.push(format!(
                        "read error at byte {}: {e}; the rest of the file is ignored",
                        self.pos + (filled - carry.len()) as u64
                    ));
                    break;
                }
                Err(e) => {
                    // A compressed file cut short ends in a decoder error: keep what was
                    // decoded and say so.
                    self.done = true;
                    self.warnings.push(format!(
                        "{} stream ended early after {} bytes of content: {e}",
                        self.what,
                        self.pos + (filled - carry.len()) as u64
                    ));
                    break;
                }
            }
        }
        self.pos += (filled - carry.len()) as u64;
        if filled == carry.len() && self.done {
            self.pool.give(buf, self.chunk);
            return Ok(None);
        }
        Ok(Some(Bytes::from_owner(Pooled {
            buf,
            used: filled,
            chunk: self.chunk,
            pool: self.pool.clone(),
        })))
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
    fn position(&self) -> String {
        format!("byte {} of the {}", self.pos, self.stream_name())
    }
}

impl StreamSource {
    fn stream_name(&self) -> String {
        if self.what == "file" {
            "file".into()
        } else {
            format!("decompressed {} stream", self.what)
        }
    }
}

/// A buffered reader that counts the bytes consumed from it (for "where" in warnings).
struct Counted<R> {
    inner: BufReader<R>,
    pos: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}

/// One frame read from a Juno archive: compressed (with its index), or already decompressed
/// (a frame without a usable index is decompressed as it is read).
enum RawFrame {
    Indexed {
        seq: usize,
        at: u64,
        index: FrameIndex,
        bytes: Vec<u8>,
    },
    Decoded {
        seq: usize,
        at: u64,
        content: Result<Vec<u8>, String>,
    },
}

/// A frame's content, or why it was lost.
struct Ready {
    seq: usize,
    at: u64,
    content: Result<Vec<u8>, String>,
}

/// How much of a Juno archive is decompressed ahead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Decompressed bytes in flight (at least one frame, whatever its size).
    pub(crate) bytes: usize,
    /// Frames in flight.
    pub(crate) frames: usize,
}

/// A Juno archive: index and data frames read one after the other, decompressed a window at a
/// time in parallel. A frame that cannot be decompressed is skipped with a warning and reading
/// resumes at the next (blocks never span frames); an index of an unknown version is passed
/// over, and the frame after it read without one.
pub(crate) struct JunoSource {
    reader: Counted<CountingReader<Box<dyn Read + Send>>>,
    frames_read: usize,
    ended: bool,
    ready: VecDeque<Ready>,
    window: Window,
    warnings: Vec<String>,
    lost: bool,
    /// Frame and offset of the last chunk's first frame, for warnings.
    last: (usize, u64),
}

impl JunoSource {
    pub(crate) fn new(reader: Box<dyn Read + Send>, progress: Progress, window: Window) -> Self {
        JunoSource {
            reader: Counted {
                inner: BufReader::with_capacity(1 << 20, CountingReader::new(reader, progress)),
                pos: 0,
            },
            frames_read: 0,
            ended: false,
            ready: VecDeque::new(),
            window: Window {
                bytes: window.bytes.max(1),
                frames: window.frames.max(1),
            },
            warnings: Vec::new(),
            lost: false,
            last: (0, 0),
        }
    }

    /// Reads up to `buf.len()` bytes; returns how many (fewer only at the end of the file).
    fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.reader.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn cut_short(&mut self, at: u64, what: &str) {
        self.ended = true;
        self.warnings.push(format!(
            "archive cut short at byte {at}: {what} after the last complete frame ignored"
        ));
    }

    fn stop(&mut self, at: u64, what: &str) {
        self.ended = true;
        self.warnings.push(format!(
            "at byte {at}: {what}; the rest of the archive is ignored"
        ));
    }

    /// The next frame; `None` at the end (or where the file is cut or unreadable).
    fn read_frame(&mut self) -> Option<RawFrame> {
        match self.try_read_frame() {
            Ok(f) => f,
            Err(e) => {
                let at = self.reader.pos;
                self.stop(at, &format!("read error: {e}"));
                None
            }
        }
    }

    fn try_read_frame(&mut self) -> io::Result<Option<RawFrame>> {
        loop {
            let at = self.reader.pos;
            let mut head = [0u8; INDEX_FRAME_LEN];
            let n = self.read_up_to(&mut head[..8])?;
            if n == 0 {
                self.ended = true;
                return Ok(None);
            }
            if n < 8 {
                self.cut_short(at, &format!("{n} bytes of a frame header"));
                return Ok(None);
            }
            let magic = le_u32(&head, 0).unwrap_or(0);
            let size = le_u32(&head, 4).unwrap_or(0) as usize;
            if magic & frame::SKIPPABLE_MASK == frame::SKIPPABLE_BASE {
                if magic == frame::INDEX_MAGIC && size + 8 == INDEX_FRAME_LEN {
                    let got = self.read_up_to(&mut head[8..])?;
                    if got < INDEX_FRAME_LEN - 8 {
                        self.cut_short(at, "a frame index without its frame");
                        return Ok(None);
                    }
                    if let Some(index) = FrameIndex::parse(&head) {
                        let len = index.compressed_len as usize;
                        if len > MAX_FRAME_SIZE {
                            self.stop(
                                at,
                                &format!(
                                    "frame {} claims {len} compressed bytes (more than the {MAX_FRAME_SIZE}-byte limit)",
                                    self.frames_read
                                ),
                            );
                            return Ok(None);
                        }
                        let mut bytes = vec![0u8; len];
                        let got = self.read_up_to(&mut bytes)?;
                        if got < len {
                            self.cut_short(
                                at,
                                &format!(
                                    "frame {} is partial ({got} of {len} bytes)",
                                    self.frames_read
                                ),
                            );
                            return Ok(None);
                        }
                        let seq = self.frames_read;
                        self.frames_read += 1;
                        return Ok(Some(RawFrame::Indexed {
                            seq,
                            at,
                            index,
                            bytes,
                        }));
                    }
                    if head[8..12] == INDEX_TAG {
                        // An index this reader does not know: the frame after it is read
                        // without it.
                        self.warnings.push(format!(
                            "frame index at byte {at} has version {} (this reader knows 1): passed over, the frame after it read without it",
                            head[12]
                        ));
                    }
                    continue;
                }
                // Another skippable frame: skip its payload.
                let skipped = io::copy(&mut (&mut self.reader).take(size as u64), &mut io::sink())?;
                if (skipped as usize) < size {
                    self.cut_short(at, "a partial skippable frame");
                    return Ok(None);
                }
                continue;
            }
            if magic == frame::ZSTD_MAGIC {
                // A data frame without a usable index: decompress it as it is read.
                let seq = self.frames_read;
                self.frames_read += 1;
                let prefix: &[u8] = &head[..8];
                let content = (|| -> io::Result<Vec<u8>> {
                    let chained = prefix.chain(&mut self.reader);
                    let dec = zstd::stream::read::Decoder::with_buffer(chained)?;
                    let mut out = Vec::new();
                    dec.single_frame()
                        .take(MAX_FRAME_SIZE as u64 + 1)
                        .read_to_end(&mut out)?;
                    if out.len() > MAX_FRAME_SIZE {
                        return Err(io::Error::other(format!(
                            "more than {MAX_FRAME_SIZE} bytes of content"
                        )));
                    }
                    Ok(out)
                })();
                match content {
                    Ok(c) => {
                        return Ok(Some(RawFrame::Decoded {
                            seq,
                            at,
                            content: Ok(c),
                        }));
                    }
                    Err(e) => {
                        // Without an index, where the frame ends is unknown.
                        self.stop(
                            at,
                            &format!(
                                "frame {seq} has no index and could not be decompressed ({e})"
                            ),
                        );
                        return Ok(None);
                    }
                }
            }
            self.stop(
                at,
                &format!("data that is not a frame (first bytes {:02x?})", &head[..8]),
            );
            return Ok(None);
        }
    }

    /// Reads and decompresses the next window of frames into `ready`.
    fn fill(&mut self) {
        let mut raw = Vec::new();
        let mut bytes = 0usize;
        while raw.len() < self.window.frames && bytes < self.window.bytes && !self.ended {
            match self.read_frame() {
                Some(f) => {
                    bytes += match &f {
                        RawFrame::Indexed { index, .. } => index.uncompressed_len as usize,
                        RawFrame::Decoded { content, .. } => {
                            content.as_ref().map_or(0, |c| c.len())
                        }
                    };
                    raw.push(f);
                }
                None => break,
            }
        }
        let decoded: Vec<Ready> = raw
            .into_par_iter()
            .map(|f| match f {
                RawFrame::Indexed {
                    seq,
                    at,
                    index,
                    bytes,
                } => {
                    let e = frame::FrameEntry {
                        offset: 0,
                        len: bytes.len(),
                        index: Some(index),
                    };
                    Ready {
                        seq,
                        at,
                        content: frame::decompress_entry(&bytes, &e, MAX_FRAME_SIZE)
                            .map_err(|e| e.to_string()),
                    }
                }
                RawFrame::Decoded { seq, at, content } => Ready { seq, at, content },
            })
            .collect();
        self.ready.extend(decoded);
    }

    fn lose(&mut self, r: &Ready, msg: &str, carry: usize) {
        let dropped = if carry > 0 {
            format!(" (and the {carry} bytes of an incomplete block before it)")
        } else {
            String::new()
        };
        self.warnings.push(format!(
            "frame {} (index at byte {}) skipped{dropped}: {msg}; reading resumes at the next frame",
            r.seq, r.at
        ));
        self.lost = true;
    }
}

impl ChunkSource for JunoSource {
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>> {
        let mut carry = carry;
        loop {
            if self.ready.is_empty() {
                self.fill();
            }
            let Some(r) = self.ready.pop_front() else {
                return Ok(None);
            };
            let content = match r.content {
                Ok(ref c) if !c.is_empty() => c,
                Ok(_) => continue,
                Err(ref msg) => {
                    let msg = msg.clone();
                    self.lose(&r, &msg, carry.len());
                    carry = &[];
                    continue;
                }
            };
            self.last = (r.seq, r.at);
            if carry.is_empty() {
                return Ok(Some(Bytes::from(r.content.unwrap_or_default())));
            }
            // A block spans frames (Juno never writes one; other writers might): append whole
            // frames until the carry is at most half the chunk, so that a long block is copied
            // a bounded number of times.
            let mut v = Vec::with_capacity(carry.len() + content.len());
            v.extend_from_slice(carry);
            v.extend_from_slice(content);
            while v.len() < carry.len() * 2 && v.len() <= MAX_RECORD * 2 {
                if self.ready.is_empty() {
                    self.fill();
                }
                match self.ready.front() {
                    Some(Ready { content: Ok(c), .. }) => {
                        v.extend_from_slice(c);
                        self.ready.pop_front();
                    }
                    _ => break,
                }
            }
            return Ok(Some(Bytes::from(v)));
        }
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
    fn take_lost(&mut self) -> bool {
        std::mem::take(&mut self.lost)
    }
    fn resumable(&self) -> bool {
        true
    }
    fn position(&self) -> String {
        format!("frame {} (index at byte {})", self.last.0, self.last.1)
    }
}
