//! The PostgreSQL frontend (client) direction: the startup packet (and SSLRequest or
//! GSSENCRequest before it), then typed messages. A `p` message — PasswordMessage (cleartext
//! or MD5), SASLInitialResponse, SASLResponse, GSSResponse — has its contents overwritten,
//! NUL bytes kept; a SASLInitialResponse keeps its mechanism name and length when both are
//! in the same chunk (the analyzer reports the mechanism).

use memchr::memchr;

use crate::stream::Next;
use crate::{Ctx, Rule};

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// Startup packets longer than this are not believed (the server's own limit is 10,000).
const MAX_STARTUP: u32 = 10_240;
/// Messages longer than this are not believed.
const MAX_MESSAGE: u32 = 1 << 30;
/// SASL mechanisms whose names are kept.
const MECHANISMS: &[&[u8]] = &[b"SCRAM-SHA-256", b"SCRAM-SHA-256-PLUS", b"OAUTHBEARER"];

/// Whether 8 bytes start a startup-phase packet: length, then a protocol version 3.x or a
/// special request code.
pub(crate) fn is_startup(h: &[u8]) -> bool {
    if h.len() < 8 {
        return false;
    }
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let code = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    (8..=MAX_STARTUP).contains(&len)
        && (code >> 16 == 3 || matches!(code, SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Collecting a startup packet's first 8 bytes.
    Startup,
    /// The rest of a startup packet.
    StartupBody(u32),
    /// Collecting a message header (type, length).
    Header,
    /// A message body to skip.
    Body(u32),
    /// A `p` message: `keep` bytes to leave, then the rest overwritten.
    Password { left: u32, keep: u32, started: bool },
}

/// One frontend direction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pg {
    st: St,
    hdr: [u8; 8],
    hlen: usize,
    /// After SSLRequest / GSSENCRequest: the next bytes are a TLS handshake or another
    /// startup packet.
    after_request: bool,
}

impl Default for Pg {
    fn default() -> Self {
        Pg {
            st: St::Startup,
            hdr: [0; 8],
            hlen: 0,
            after_request: false,
        }
    }
}

impl Pg {
    /// Bytes were lost; `false` if the place in the protocol is lost too.
    pub(crate) fn gap(&mut self, n: u64) -> bool {
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        match &mut self.st {
            St::StartupBody(left) | St::Body(left) if *left >= n => {
                *left -= n;
                true
            }
            St::Password {
                left,
                keep,
                started,
            } if *left >= n => {
                *left -= n;
                *keep = keep.saturating_sub(n);
                *started = true;
                true
            }
            _ => false,
        }
    }

    /// Reads `buf`.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        let mut i = 0;
        while i < buf.len() {
            match self.st {
                St::Startup => {
                    if self.hlen == 0 && self.after_request && buf[i] == 0x16 {
                        // The server accepted SSL: TLS from here, nothing readable.
                        return Some((i, Next::Opaque));
                    }
                    self.hdr[self.hlen] = buf[i];
                    self.hlen += 1;
                    i += 1;
                    if self.hlen == 8 {
                        self.hlen = 0;
                        if !is_startup(&self.hdr) {
                            ctx.counts.desync += 1;
                            return Some((i, Next::Opaque));
                        }
                        let len = u32::from_be_bytes([
                            self.hdr[0],
                            self.hdr[1],
                            self.hdr[2],
                            self.hdr[3],
                        ]);
                        let code = u32::from_be_bytes([
                            self.hdr[4],
                            self.hdr[5],
                            self.hdr[6],
                            self.hdr[7],
                        ]);
                        self.after_request = matches!(code, SSL_REQUEST | GSSENC_REQUEST);
                        self.st = St::StartupBody(len - 8);
                    }
                }
                St::StartupBody(left) => {
                    let n = (buf.len() - i).min(left as usize);
                    i += n;
                    let left = left - n as u32;
                    self.st = St::StartupBody(left);
                    if left == 0 {
                        self.st = if self.after_request {
                            St::Startup
                        } else {
                            St::Header
                        };
                    }
                }
                St::Header => {
                    self.hdr[self.hlen] = buf[i];
                    self.hlen += 1;
                    i += 1;
                    if self.hlen == 5 {
                        self.hlen = 0;
                        let len = u32::from_be_bytes([
                            self.hdr[1],
                            self.hdr[2],
                            self.hdr[3],
                            self.hdr[4],
                        ]);
                        if !(4..=MAX_MESSAGE).contains(&len) {
                            ctx.counts.desync += 1;
                            return Some((i, Next::Opaque));
                        }
                        let left = len - 4;
                        self.st = if self.hdr[0] == b'p' && ctx.policy.is_on(Rule::Postgresql) {
                            ctx.counts.hit(Rule::Postgresql);
                            St::Password {
                                left,
                                keep: 0,
                                started: false,
                            }
                        } else {
                            St::Body(left)
                        };
                        if left == 0 {
                            self.st = St::Header;
                        }
                    }
                }
                St::Body(left) => {
                    let n = (buf.len() - i).min(left as usize);
                    i += n;
                    self.st = if left as usize == n {
                        St::Header
                    } else {
                        St::Body(left - n as u32)
                    };
                }
                St::Password {
                    left,
                    mut keep,
                    started,
                } => {
                    let n = (buf.len() - i).min(left as usize);
                    let body = &mut buf[i..i + n];
                    if !started {
                        keep = sasl_initial_keep(body, left);
                    }
                    let k = (keep as usize).min(n);
                    ctx.fill_non_nul(&mut body[k..]);
                    i += n;
                    self.st = if left as usize == n {
                        St::Header
                    } else {
                        St::Password {
                            left: left - n as u32,
                            keep: keep - k as u32,
                            started: true,
                        }
                    };
                }
            }
        }
        None
    }
}

/// Bytes to keep at the start of a `p` message body of `len` bytes whose first bytes are
/// `body`: a known SASL mechanism name, its NUL and the 4-byte length of the data that
/// follows (when they are all here and consistent); else none.
fn sasl_initial_keep(body: &[u8], len: u32) -> u32 {
    let Some(nul) = memchr(0, &body[..body.len().min(32)]) else {
        return 0;
    };
    if !MECHANISMS.contains(&&body[..nul]) || body.len() < nul + 5 {
        return 0;
    }
    let l = &body[nul + 1..nul + 5];
    let data_len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
    let rest = i64::from(len) - (nul as i64 + 5);
    if i64::from(data_len) == rest || (data_len == -1 && rest == 0) {
        (nul + 5) as u32
    } else {
        0
    }
}
