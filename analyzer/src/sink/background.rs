//! Writing on a thread of its own: a sink formats a batch's lines into buffers and hands them
//! over whole; the thread writes them in order (the `write` system calls, whose copy into the
//! page cache is most of a big output's writing) while the analysis goes on with the next
//! batch, and gives the emptied buffers back for reuse. At most [`DEPTH`] buffers wait: a
//! writer slower than the analysis holds the analysis back instead of queueing memory.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

/// Buffers handed over and not yet written, at most.
pub const DEPTH: usize = 8;

/// Buffers kept for reuse, at most (more are freed).
const KEEP: usize = DEPTH;

/// A writer thread for one output.
#[derive(Debug)]
pub struct Background {
    to_write: Option<SyncSender<Vec<u8>>>,
    written: Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Background {
    /// Starts the thread writing to `out` (flushed when [`Background::finish`] is called).
    pub fn new(mut out: Box<dyn Write + Send>) -> io::Result<Background> {
        let (to_write, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (back, written) = sync_channel::<Vec<u8>>(KEEP);
        let thread = std::thread::Builder::new()
            .name("juno-writer".into())
            .spawn(move || {
                for mut buf in rx {
                    out.write_all(&buf)?;
                    buf.clear();
                    // Full: the buffer is freed.
                    let _ = back.try_send(buf);
                }
                out.flush()
            })?;
        Ok(Background {
            to_write: Some(to_write),
            written,
            spare: Vec::new(),
            thread: Some(thread),
        })
    }

    /// An empty buffer: one written earlier when there is one, else a new one.
    pub fn buffer(&mut self) -> Vec<u8> {
        loop {
            match self.written.try_recv() {
                Ok(b) if self.spare.len() < KEEP => self.spare.push(b),
                Ok(_) => {}
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.spare.pop().unwrap_or_default()
    }

    /// Hands `buf` over to be written after those handed over before. Waits while
    /// [`DEPTH`] buffers wait. A write that failed is this call's error (or a later one's).
    pub fn write(&mut self, buf: Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            if self.spare.len() < KEEP {
                self.spare.push(buf);
            }
            return Ok(());
        }
        let sent = self.to_write.as_ref().map(|tx| tx.send(buf));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: its error says why.
            _ => self
                .finish()
                .and(Err(io::Error::other("the writer thread stopped"))),
        }
    }

    /// Waits until everything handed over is written and flushed; the writer's error if a
    /// write failed. Later calls return `Ok` and write nothing.
    pub fn finish(&mut self) -> io::Result<()> {
        drop(self.to_write.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("the writer thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A `Write` that keeps what it got, shared with the test.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Everything handed over is written, in order, whatever the number of buffers (more
    /// than the depth: the caller waits), and buffers come back for reuse.
    #[test]
    fn buffers_are_written_in_order_and_reused() {
        let out = Shared::default();
        let mut bg = Background::new(Box::new(out.clone())).unwrap();
        let mut want = Vec::new();
        for i in 0..(DEPTH * 10) {
            let mut b = bg.buffer();
            assert!(b.is_empty());
            b.extend_from_slice(format!("line {i}\n").as_bytes());
            want.extend_from_slice(&b);
            bg.write(b).unwrap();
        }
        bg.finish().unwrap();
        assert_eq!(*out.0.lock().unwrap(), want);
        // Buffers written came back (the thread has ended: all of them are there).
        assert!(bg.buffer().capacity() > 0);
        assert!(bg.finish().is_ok());
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A failed write is an error of the caller's, not lost on the thread.
    #[test]
    fn a_failed_write_is_reported() {
        let mut bg = Background::new(Box::new(Failing)).unwrap();
        let mut failed = None;
        for _ in 0..(DEPTH * 4) {
            if let Err(e) = bg.write(b"x".to_vec()) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => bg.finish().unwrap_err(),
        };
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
