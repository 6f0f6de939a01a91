//! Byte sources: a file's bytes, decompressed, delivered in chunks.
//!
//! The container parser asks for the next chunk and hands back the unparsed tail of the
//! previous one (`carry`); every chunk begins with that tail, so records may span chunk
//! boundaries. Memory stays bounded whatever the file's size: chunks hold at most [`CHUNK`]
//! new bytes and come from a small pool of reused buffers (so a large capture costs neither
//! growing memory nor page faults on fresh allocations); a carry may grow only up to
//! [`MAX_RECORD`]; Juno frames are read and decompressed a bounded window at a time.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use juno_archive::frame::{self, FrameIndex, INDEX_FRAME_LEN, MAX_FRAME_SIZE};
use rayon::prelude::*;

use crate::read::le_u32;

/// New bytes read per chunk.
pub(crate) const CHUNK: usize = 4 << 20;
/// Largest record (pcap record or pcapng block) a reader accepts.
pub(crate) const MAX_RECORD: usize = 64 << 20;
/// Buffers kept for reuse per pool.
const POOL_KEEP: usize = 64;

/// Progress counter shared with the progress bar: input bytes consumed.
pub(crate) type Progress = Arc<AtomicU64>;

/// A source of chunks.
pub(crate) trait ChunkSource: Send {
    /// The next chunk, starting with `carry`; `None` at the end of input.
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>>;
    /// Problems met that did not stop reading (truncation, corrupt frames).
    fn take_warnings(&mut self) -> Vec<String>;
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
    fn give(&self, v: Vec<u8>) {
        if let Ok(mut p) = self.0.lock()
            && p.len() < POOL_KEEP
            && v.len() <= CHUNK * 2
        {
            p.push(v);
        }
    }
}

struct Pooled {
    buf: Vec<u8>,
    used: usize,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.used]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

fn pooled(buf: Vec<u8>, used: usize, pool: &Arc<Pool>) -> Bytes {
    Bytes::from_owner(Pooled {
        buf,
        used,
        pool: pool.clone(),
    })
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
    pub(crate) fn into_inner(self) -> R {
        self.inner
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
}

impl StreamSource {
    pub(crate) fn new(reader: Box<dyn Read + Send>, what: &'static str) -> Self {
        StreamSource {
            reader,
            what,
            done: false,
            warnings: Vec::new(),
            pool: Arc::new(Pool::default()),
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
                "a record longer than {MAX_RECORD} bytes: stopped reading this file there"
            ));
            return Ok(None);
        }
        let want = carry.len() + CHUNK;
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
                Err(e) if self.what == "file" => return Err(e),
                Err(e) => {
                    // A compressed file cut short ends in a decoder error: keep what was
                    // decoded and say so.
                    self.done = true;
                    self.warnings
                        .push(format!("{} stream ends early: {e}", self.what));
                    break;
                }
            }
        }
        if filled == carry.len() && self.done {
            self.pool.give(buf);
            return Ok(None);
        }
        Ok(Some(pooled(buf, filled, &self.pool)))
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// One frame read from a Juno archive, not yet decompressed.
struct RawFrame {
    seq: usize,
    index: Option<FrameIndex>,
    bytes: Vec<u8>,
}

/// A Juno archive: index and data frames read one after the other, decompressed a window at a
/// time in parallel.
pub(crate) struct JunoSource {
    reader: BufReader<Box<dyn Read + Send>>,
    /// Warnings of the layer below (decryption), taken with this source's own.
    below: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
    frames_read: usize,
    ended: bool,
    ready: std::collections::VecDeque<(usize, Result<Vec<u8>, String>)>,
    window: usize,
    warnings: Vec<String>,
}

impl JunoSource {
    pub(crate) fn new(file: File, progress: Progress) -> Self {
        Self::from_reader(Box::new(CountingReader::new(file, progress)), None)
    }

    /// Frames from any reader (a decrypting one), whose own warnings are in `below`.
    pub(crate) fn from_reader(
        reader: Box<dyn Read + Send>,
        below: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
    ) -> Self {
        let window = (rayon::current_num_threads() * 2).max(2);
        JunoSource {
            below,
            reader: BufReader::with_capacity(1 << 20, reader),
            frames_read: 0,
            ended: false,
            ready: Default::default(),
            window,
            warnings: Vec::new(),
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

    fn cut_short(&mut self, what: &str) {
        self.ended = true;
        self.warnings.push(format!(
            "archive cut short: {what} after the last complete frame ignored"
        ));
    }

    /// The next data frame, with its index; `None` at the end (or where the file is cut).
    fn read_frame(&mut self) -> io::Result<Option<RawFrame>> {
        loop {
            let mut head = [0u8; INDEX_FRAME_LEN];
            let n = self.read_up_to(&mut head[..8])?;
            if n == 0 {
                self.ended = true;
                return Ok(None);
            }
            if n < 8 {
                self.cut_short(&format!("{n} bytes of a frame header"));
                return Ok(None);
            }
            let magic = le_u32(&head, 0).unwrap_or(0);
            let size = le_u32(&head, 4).unwrap_or(0) as usize;
            if magic & frame::SKIPPABLE_MASK == frame::SKIPPABLE_BASE {
                if magic == frame::INDEX_MAGIC && size + 8 == INDEX_FRAME_LEN {
                    let got = self.read_up_to(&mut head[8..])?;
                    if got < INDEX_FRAME_LEN - 8 {
                        self.cut_short("a frame index without its frame");
                        return Ok(None);
                    }
                    let Some(index) = FrameIndex::parse(&head) else {
                        // A skippable frame with our magic but not our layout: pass over it.
                        continue;
                    };
                    let len = index.compressed_len as usize;
                    if len > MAX_FRAME_SIZE {
                        self.cut_short(&format!("a frame claiming {len} compressed bytes"));
                        return Ok(None);
                    }
                    let mut bytes = vec![0u8; len];
                    let got = self.read_up_to(&mut bytes)?;
                    if got < len {
                        self.cut_short(&format!("a partial frame ({got} of {len} bytes)"));
                        return Ok(None);
                    }
                    let seq = self.frames_read;
                    self.frames_read += 1;
                    return Ok(Some(RawFrame {
                        seq,
                        index: Some(index),
                        bytes,
                    }));
                }
                // Another skippable frame: skip its payload.
                let skipped = io::copy(&mut (&mut self.reader).take(size as u64), &mut io::sink())?;
                if (skipped as usize) < size {
                    self.cut_short("a partial skippable frame");
                    return Ok(None);
                }
                continue;
            }
            // Juno writes an index before every frame; anything else ends the archive.
            self.cut_short(&format!(
                "data that is not an indexed frame (magic {magic:#010x})"
            ));
            return Ok(None);
        }
    }
}

impl ChunkSource for JunoSource {
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>> {
        loop {
            if self.ready.is_empty() {
                let mut raw = Vec::with_capacity(self.window);
                while raw.len() < self.window && !self.ended {
                    match self.read_frame()? {
                        Some(f) => raw.push(f),
                        None => break,
                    }
                }
                if raw.is_empty() {
                    return Ok(None);
                }
                let decoded: Vec<(usize, Result<Vec<u8>, String>)> = raw
                    .into_par_iter()
                    .map(|f| {
                        let e = frame::FrameEntry {
                            offset: 0,
                            len: f.bytes.len(),
                            index: f.index,
                        };
                        (
                            f.seq,
                            frame::decompress_entry(&f.bytes, &e, MAX_FRAME_SIZE)
                                .map_err(|e| e.to_string()),
                        )
                    })
                    .collect();
                self.ready.extend(decoded);
            }
            let Some((i, r)) = self.ready.pop_front() else {
                continue;
            };
            match r {
                Ok(content) => {
                    if carry.is_empty() {
                        return Ok(Some(Bytes::from(content)));
                    }
                    let mut v = Vec::with_capacity(carry.len() + content.len());
                    v.extend_from_slice(carry);
                    v.extend_from_slice(&content);
                    return Ok(Some(Bytes::from(v)));
                }
                Err(msg) => self.warnings.push(format!("frame {i} skipped: {msg}")),
            }
        }
    }
    fn take_warnings(&mut self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(b) = &self.below
            && let Ok(mut b) = b.lock()
        {
            w.append(&mut b);
        }
        w.append(&mut self.warnings);
        w
    }
}
