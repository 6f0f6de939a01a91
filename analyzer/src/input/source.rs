//! Byte sources: a file's bytes, decompressed, delivered in chunks.
//!
//! The container parser asks for the next chunk and hands back the unparsed tail of the
//! previous one (`carry`); every chunk begins with that tail, so records may span chunk
//! boundaries of streamed (gzip, zstd) input. Memory stays bounded: a streamed chunk holds
//! at most [`CHUNK`] new bytes, a carry may grow only up to [`MAX_RECORD`], and Juno frames
//! are decompressed a bounded window at a time.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use juno_archive::frame::{self, FrameEntry, MAX_FRAME_SIZE};
use rayon::prelude::*;

/// New bytes read per streamed chunk.
pub(crate) const CHUNK: usize = 8 << 20;
/// Largest record (pcap record or pcapng block) a reader accepts.
pub(crate) const MAX_RECORD: usize = 64 << 20;

/// Progress counter shared with the progress bar: input bytes consumed.
pub(crate) type Progress = Arc<AtomicU64>;

/// A source of chunks.
pub(crate) trait ChunkSource: Send {
    /// The next chunk, starting with `carry`; `None` at the end of input.
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>>;
    /// Problems met that did not stop reading (truncation, corrupt frames).
    fn take_warnings(&mut self) -> Vec<String>;
}

/// Whole file memory-mapped: one chunk.
pub(crate) struct MappedSource {
    map: Option<Bytes>,
    progress: Progress,
    len: u64,
}

impl MappedSource {
    pub(crate) fn new(bytes: Bytes, progress: Progress) -> Self {
        let len = bytes.len() as u64;
        MappedSource {
            map: Some(bytes),
            progress,
            len,
        }
    }
}

impl ChunkSource for MappedSource {
    fn next_chunk(&mut self, _carry: &[u8]) -> io::Result<Option<Bytes>> {
        // A carry after the single chunk means the file ends inside a record: the cursor
        // reports it.
        let m = self.map.take();
        if m.is_some() {
            self.progress.fetch_add(self.len, Ordering::Relaxed);
        }
        Ok(m)
    }
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
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

/// A decompressing stream (gzip or a zstd file not written by Juno).
pub(crate) struct StreamSource {
    reader: Box<dyn Read + Send>,
    what: &'static str,
    done: bool,
    warnings: Vec<String>,
}

impl StreamSource {
    pub(crate) fn new(reader: Box<dyn Read + Send>, what: &'static str) -> Self {
        StreamSource {
            reader,
            what,
            done: false,
            warnings: Vec::new(),
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
        let mut buf = Vec::with_capacity(carry.len() + CHUNK);
        buf.extend_from_slice(carry);
        let want = carry.len() + CHUNK;
        while buf.len() < want {
            let start = buf.len();
            buf.resize(want, 0);
            match self.reader.read(&mut buf[start..]) {
                Ok(0) => {
                    buf.truncate(start);
                    self.done = true;
                    break;
                }
                Ok(n) => buf.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
                Err(e) => {
                    // A compressed file cut short ends in a decoder error: keep what was
                    // decoded and say so.
                    buf.truncate(start);
                    self.done = true;
                    self.warnings
                        .push(format!("{} stream ends early: {e}", self.what));
                    break;
                }
            }
        }
        if buf.len() == carry.len() && self.done {
            return Ok(None);
        }
        Ok(Some(Bytes::from(buf)))
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// A Juno archive: independent zstd frames, decompressed a window at a time in parallel.
pub(crate) struct JunoSource {
    file: Bytes,
    frames: Vec<FrameEntry>,
    next: usize,
    ready: std::collections::VecDeque<(usize, Result<Vec<u8>, String>)>,
    window: usize,
    progress: Progress,
    warnings: Vec<String>,
}

impl JunoSource {
    pub(crate) fn new(file: Bytes, progress: Progress) -> Self {
        let scan = frame::scan(&file);
        let mut warnings = Vec::new();
        if let Some(t) = &scan.trailing {
            warnings.push(format!(
                "archive cut short: {} bytes after the last complete frame ignored ({})",
                t.len, t.reason
            ));
            progress.fetch_add(t.len as u64, Ordering::Relaxed);
        }
        let window = (rayon::current_num_threads() * 2).max(2);
        JunoSource {
            file,
            frames: scan.frames,
            next: 0,
            ready: Default::default(),
            window,
            progress,
            warnings,
        }
    }
}

impl ChunkSource for JunoSource {
    fn next_chunk(&mut self, carry: &[u8]) -> io::Result<Option<Bytes>> {
        loop {
            if self.ready.is_empty() {
                if self.next >= self.frames.len() {
                    return Ok(None);
                }
                let end = (self.next + self.window).min(self.frames.len());
                let file = &self.file;
                let batch: Vec<(usize, Result<Vec<u8>, String>)> = self.frames[self.next..end]
                    .par_iter()
                    .enumerate()
                    .map(|(i, e)| {
                        (
                            i,
                            frame::decompress_entry(file, e, MAX_FRAME_SIZE)
                                .map_err(|e| e.to_string()),
                        )
                    })
                    .collect();
                let base = self.next;
                self.ready
                    .extend(batch.into_iter().map(|(i, r)| (base + i, r)));
                self.next = end;
            }
            let Some((i, r)) = self.ready.pop_front() else {
                continue;
            };
            let e = self.frames[i];
            let consumed = (e.len
                + if e.index.is_some() {
                    frame::INDEX_FRAME_LEN
                } else {
                    0
                }) as u64;
            self.progress.fetch_add(consumed, Ordering::Relaxed);
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
                Err(msg) => {
                    self.warnings.push(format!("frame {i} skipped: {msg}"));
                }
            }
        }
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// Maps a file read-only.
pub(crate) fn map_file(path: &Path) -> io::Result<Bytes> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    mmap::map(&file).map(Bytes::from_owner)
}

/// The one place this crate uses `unsafe`.
#[expect(
    unsafe_code,
    reason = "memory-mapping input files is the fast path for large captures"
)]
mod mmap {
    use std::fs::File;
    use std::io;

    pub(super) fn map(file: &File) -> io::Result<memmap2::Mmap> {
        // SAFETY: the map is read-only. If another process truncates the file while we read
        // it, accesses past the new end fault (SIGBUS); captures are not modified while being
        // analyzed, and that risk is the usual one for mmap-based readers (tshark, ripgrep).
        let map = unsafe { memmap2::MmapOptions::new().map(file) }?;
        // Read front to back: let the kernel read ahead.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(map)
    }
}
