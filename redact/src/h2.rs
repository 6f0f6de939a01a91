//! HTTP/2 frames, one direction: the client preface, then 9-byte frame headers; the header
//! block fragments of HEADERS, PUSH_PROMISE and CONTINUATION (without padding and priority
//! fields) go to [`Hpack`]; every other payload is stepped over.

use crate::hpack::Hpack;
use crate::{Ctx, stream::Next};

const HEADERS: u8 = 1;
const PUSH_PROMISE: u8 = 5;
const CONTINUATION: u8 = 9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Frames longer than this are not believed when looking for a frame boundary (the
/// protocol allows 16 MiB, but every implementation keeps the 16 KiB default or close).
const PLAUSIBLE_FRAME: u32 = 1 << 20;

/// Whether `h` (9 bytes) looks like a frame header: a plausible length, a known type, the
/// reserved bit clear.
pub(crate) fn plausible_header(h: &[u8]) -> bool {
    if h.len() < 9 {
        return false;
    }
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
    len <= PLAUSIBLE_FRAME && h[3] <= CONTINUATION && h[5] & 0x80 == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Bytes of the client preface still to come.
    Preface(u8),
    /// Collecting a frame header.
    Header,
    /// The pad length byte.
    PadLen,
    /// Priority or promised stream id bytes.
    Fixed(u32),
    /// Header block fragment bytes.
    Fragment(u32),
    /// Padding (or a whole payload) to step over.
    Skip(u32),
    /// After a gap across frame boundaries: the next chunk must start with a frame header.
    Resync,
}

/// One direction of an HTTP/2 connection.
#[derive(Clone, Debug)]
pub(crate) struct H2 {
    st: St,
    hdr: [u8; 9],
    hlen: usize,
    ftype: u8,
    flags: u8,
    /// Payload bytes of the frame not yet read.
    left: u32,
    /// Padding at the end of the frame.
    pad: u32,
    /// A header block is open (no END_HEADERS yet).
    in_block: bool,
    /// Fragments are skipped until the block ends (it was cut by a gap).
    skip_block: bool,
    hp: Hpack,
}

impl H2 {
    /// A direction that starts with the client preface (`preface_left` bytes of it still to
    /// come), or with frames; `lost`: found mid-connection, the HPACK table is unknown.
    pub(crate) fn new(preface_left: u8, lost: bool) -> Self {
        H2 {
            st: if preface_left > 0 {
                St::Preface(preface_left)
            } else {
                St::Header
            },
            hdr: [0; 9],
            hlen: 0,
            ftype: 0,
            flags: 0,
            left: 0,
            pad: 0,
            in_block: false,
            skip_block: false,
            hp: Hpack::new(lost),
        }
    }

    /// Whether the HPACK table is unknown.
    pub(crate) fn lost(&self) -> bool {
        self.hp.lost
    }

    /// Bytes were lost; `false` if the frames cannot be followed any more.
    pub(crate) fn gap(&mut self, n: u64, ctx: &mut Ctx<'_>) -> bool {
        let Ok(n) = u32::try_from(n) else {
            self.lose_frames(ctx);
            return true;
        };
        match self.st {
            St::Skip(left) if left >= n => {
                self.st = St::Skip(left - n);
                self.left -= n;
            }
            St::Fragment(left) if left >= n => {
                self.hp.lose(ctx);
                self.skip_block = true;
                self.st = St::Fragment(left - n);
                self.left -= n;
            }
            St::Preface(left) if u32::from(left) >= n => {
                self.st = St::Preface(left - n as u8);
            }
            _ => self.lose_frames(ctx),
        }
        true
    }

    fn lose_frames(&mut self, ctx: &mut Ctx<'_>) {
        self.hp.lose(ctx);
        self.in_block = false;
        self.skip_block = false;
        self.hlen = 0;
        self.st = St::Resync;
    }

    /// The frame's payload is done.
    fn frame_end(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.ftype, HEADERS | PUSH_PROMISE | CONTINUATION)
            && self.flags & END_HEADERS != 0
        {
            if self.hp.mid_representation() && !self.skip_block {
                self.hp.lose(ctx);
            }
            self.in_block = false;
            self.skip_block = false;
        }
        self.st = St::Header;
    }

    fn header_done(&mut self, ctx: &mut Ctx<'_>) {
        let h = self.hdr;
        self.left = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        self.ftype = h[3];
        self.flags = h[4];
        self.pad = 0;
        let block = matches!(self.ftype, HEADERS | PUSH_PROMISE);
        if self.in_block && self.ftype != CONTINUATION {
            // A header block must be continued by CONTINUATION frames: malformed.
            self.hp.lose(ctx);
            self.in_block = false;
            self.skip_block = false;
        }
        if self.ftype == CONTINUATION && !self.in_block {
            self.hp.lose(ctx);
            self.st = St::Skip(self.left);
        } else if block {
            self.in_block = true;
            self.skip_block = false;
            self.st = if self.flags & PADDED != 0 && self.left == 0 {
                self.hp.lose(ctx);
                self.skip_block = true;
                St::Skip(0)
            } else if self.flags & PADDED != 0 {
                St::PadLen
            } else {
                self.after_pad(ctx)
            };
        } else if self.ftype == CONTINUATION {
            self.st = St::Fragment(self.left);
        } else {
            self.st = St::Skip(self.left);
        }
    }

    /// After the pad length: the fixed fields, then the fragment.
    fn after_pad(&mut self, ctx: &mut Ctx<'_>) -> St {
        let fixed = match self.ftype {
            HEADERS if self.flags & PRIORITY != 0 => 5,
            PUSH_PROMISE => 4,
            _ => 0,
        };
        if self.left < fixed + self.pad {
            self.hp.lose(ctx);
            self.skip_block = true;
            return St::Skip(self.left);
        }
        if fixed > 0 {
            St::Fixed(fixed)
        } else {
            St::Fragment(self.left - self.pad)
        }
    }

    /// Reads `buf`.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        let mut i = 0;
        if self.st == St::Resync {
            if buf.len() >= 9 && plausible_header(buf) {
                self.st = St::Header;
            } else {
                ctx.counts.desync += 1;
                return Some((0, Next::Opaque));
            }
        }
        while i < buf.len() {
            match self.st {
                St::Preface(left) => {
                    let n = (buf.len() - i).min(usize::from(left));
                    i += n;
                    self.st = if n == usize::from(left) {
                        St::Header
                    } else {
                        St::Preface(left - n as u8)
                    };
                    continue;
                }
                St::Header => {
                    self.hdr[self.hlen] = buf[i];
                    self.hlen += 1;
                    i += 1;
                    if self.hlen == 9 {
                        self.hlen = 0;
                        self.header_done(ctx);
                    }
                }
                St::PadLen => {
                    self.pad = u32::from(buf[i]);
                    i += 1;
                    self.left -= 1;
                    self.st = self.after_pad(ctx);
                }
                St::Fixed(n) => {
                    let k = (buf.len() - i).min(n as usize) as u32;
                    i += k as usize;
                    self.left -= k;
                    self.st = if k == n {
                        St::Fragment(self.left - self.pad)
                    } else {
                        St::Fixed(n - k)
                    };
                }
                St::Fragment(left) => {
                    let k = (buf.len() - i).min(left as usize);
                    if !self.skip_block {
                        self.hp.feed(&mut buf[i..i + k], ctx);
                    }
                    i += k;
                    self.left -= k as u32;
                    let left = left - k as u32;
                    self.st = if left == 0 {
                        St::Skip(self.pad)
                    } else {
                        St::Fragment(left)
                    };
                }
                St::Skip(left) => {
                    let k = (buf.len() - i).min(left as usize);
                    i += k;
                    self.left -= k as u32;
                    self.st = St::Skip(left - k as u32);
                }
                St::Resync => return Some((i, Next::Opaque)),
            }
            if self.st == St::Skip(0) && self.left == 0 {
                self.frame_end(ctx);
            }
        }
        // A frame with an empty payload ends at its header.
        if self.st == St::Skip(0) && self.left == 0 {
            self.frame_end(ctx);
        }
        None
    }
}
