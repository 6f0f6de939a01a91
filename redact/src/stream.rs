//! One direction of one connection: which protocol it speaks (from its first bytes) and that
//! protocol's redaction state.
//!
//! Recognition looks only at bytes that cannot be secret (a startup packet's length and
//! version, a handshake response's fixed fields, the HTTP/2 preface or a frame header, the
//! first byte of a text line), and leaves them as they are, so it may wait for them across
//! chunks. Text is the fallback for everything else: HTTP/1 and unknown protocols alike.

use crate::h2::{self, H2};
use crate::mysql::{self, My};
use crate::postgres::{self, Pg};
use crate::resp::Resp;
use crate::text::Text;
use crate::{Counts, Ctx, Policy};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PROBE: usize = 36;

/// What a machine hands over to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The same machine goes on.
    Keep,
    /// Recognise the protocol again (after `101 Switching Protocols`).
    Probe,
    /// Nothing more can be read (TLS, compression, lost framing).
    Opaque,
    /// Text lines.
    Text { at_line_start: bool },
    /// HTTP/2 after the first bytes of its preface.
    H2Client { preface_left: u8 },
}

#[derive(Clone, Debug)]
enum Mode {
    Probe,
    Text(Text),
    Resp(Resp),
    Pg(Pg),
    My(My),
    H2(Box<H2>),
    Opaque,
}

/// The protocol a direction was found to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not yet known.
    Unknown,
    /// Text lines (HTTP/1 and anything unrecognised).
    Text,
    /// Redis commands (RESP).
    Redis,
    /// PostgreSQL frontend.
    Postgresql,
    /// MySQL client.
    Mysql,
    /// HTTP/2.
    Http2,
    /// Unreadable (TLS, compressed, lost).
    Opaque,
}

/// The state of one direction.
#[derive(Clone, Debug)]
pub struct Stream {
    mode: Mode,
    probe: [u8; PROBE],
    plen: usize,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            mode: Mode::Probe,
            probe: [0; PROBE],
            plen: 0,
        }
    }
}

/// What the first bytes say.
enum Verdict {
    Need,
    Go(Mode),
}

fn classify(p: &[u8]) -> Verdict {
    use Verdict::*;
    let Some(&b0) = p.first() else {
        return Need;
    };
    if b0 == 0x16 {
        return Go(Mode::Opaque);
    }
    if b0 == b'*' {
        return Go(Mode::Resp(Resp::default()));
    }
    if b0 == b'P' {
        let n = p.len().min(PREFACE.len());
        if p[..n] == PREFACE[..n] {
            return if n == PREFACE.len() {
                // The machine reads the preface itself (it is replayed through it).
                Go(Mode::H2(Box::new(H2::new(PREFACE.len() as u8, false))))
            } else {
                Need
            };
        }
        return Go(Mode::Text(Text::new(true)));
    }
    let text = |c: u8| c.is_ascii_graphic() || matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    if text(b0) && p.len() >= 2 && text(p[1]) {
        return Go(Mode::Text(Text::new(true)));
    }
    if p.len() < 4 {
        return Need;
    }
    if p[3] == 1 && p[2] == 0 {
        if p.len() < PROBE {
            return Need;
        }
        if mysql::is_handshake_response(p) {
            return Go(Mode::My(My::default()));
        }
        return Go(Mode::Text(Text::new(false)));
    }
    if b0 == 0 {
        if p.len() < 9 {
            return Need;
        }
        if postgres::is_startup(p) {
            return Go(Mode::Pg(Pg::default()));
        }
        if h2::plausible_header(p) {
            // A server's first frame is SETTINGS on stream 0; anything else: found
            // mid-connection, the HPACK table is unknown.
            let settings = p[3] == 4 && p[5..9] == [0, 0, 0, 0];
            return Go(Mode::H2(Box::new(H2::new(0, !settings))));
        }
    }
    Go(Mode::Text(Text::new(false)))
}

impl Stream {
    /// A direction not seen before.
    pub fn new() -> Self {
        Self::default()
    }

    /// The protocol found so far.
    pub fn kind(&self) -> Kind {
        match &self.mode {
            Mode::Probe => Kind::Unknown,
            Mode::Text(_) => Kind::Text,
            Mode::Resp(_) => Kind::Redis,
            Mode::Pg(_) => Kind::Postgresql,
            Mode::My(_) => Kind::Mysql,
            Mode::H2(_) => Kind::Http2,
            Mode::Opaque => Kind::Opaque,
        }
    }

    /// Redacts `buf`, the next bytes of the direction, in place; returns whether it changed
    /// anything.
    pub fn feed(&mut self, buf: &mut [u8], policy: &Policy, counts: &mut Counts) -> bool {
        let mut ctx = Ctx {
            policy,
            counts,
            changed: false,
        };
        ctx.counts.input_bytes += buf.len() as u64;
        self.run(buf, &mut ctx);
        ctx.changed
    }

    fn run(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) {
        let mut i = 0;
        while i < buf.len() {
            let rest = &mut buf[i..];
            let step = match &mut self.mode {
                Mode::Opaque => return,
                Mode::Probe => {
                    let mut used = 0;
                    let mut verdict = Verdict::Need;
                    while used < rest.len() && self.plen < PROBE {
                        self.probe[self.plen] = rest[used];
                        self.plen += 1;
                        used += 1;
                        verdict = classify(&self.probe[..self.plen]);
                        if !matches!(verdict, Verdict::Need) {
                            break;
                        }
                    }
                    let mode = match verdict {
                        Verdict::Go(mode) => mode,
                        Verdict::Need if self.plen == PROBE => Mode::Text(Text::new(false)),
                        Verdict::Need => return,
                    };
                    self.mode = mode;
                    // The recognised bytes go through the machine for its state: those of
                    // earlier chunks (already out) with their changes dropped — they are
                    // never secret — then this chunk's from where they start.
                    let mut seen = self.probe;
                    let plen = std::mem::take(&mut self.plen);
                    self.replay(&mut seen[..plen - used], ctx);
                    Some((0, Next::Keep))
                }
                _ => self.run_mode(rest, ctx),
            };
            match step {
                None => return,
                Some((k, next)) => {
                    i += k;
                    self.switch(next);
                }
            }
        }
    }

    /// Runs earlier chunks' recognised bytes through the machine (changes are dropped).
    fn replay(&mut self, bytes: &mut [u8], ctx: &mut Ctx<'_>) {
        if bytes.is_empty() {
            return;
        }
        let changed = ctx.changed;
        let before = ctx.counts.bytes;
        if let Some((_, next)) = self.run_mode(bytes, ctx) {
            self.switch(next);
        }
        ctx.changed = changed;
        ctx.counts.bytes = before;
    }

    fn run_mode(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        match &mut self.mode {
            Mode::Text(t) => t.feed(buf, ctx),
            Mode::Resp(r) => r.feed(buf, ctx),
            Mode::Pg(p) => p.feed(buf, ctx),
            Mode::My(m) => m.feed(buf, ctx),
            Mode::H2(h) => h.feed(buf, ctx),
            Mode::Probe | Mode::Opaque => None,
        }
    }

    fn switch(&mut self, next: Next) {
        self.mode = match next {
            Next::Keep => return,
            Next::Probe => {
                self.plen = 0;
                Mode::Probe
            }
            Next::Opaque => Mode::Opaque,
            Next::Text { at_line_start } => Mode::Text(Text::new(at_line_start)),
            Next::H2Client { preface_left } => Mode::H2(Box::new(H2::new(preface_left, false))),
        };
    }

    /// `n` bytes of the direction were lost (not captured).
    pub fn gap(&mut self, n: u64, policy: &Policy, counts: &mut Counts) {
        if n == 0 {
            return;
        }
        let mut ctx = Ctx {
            policy,
            counts,
            changed: false,
        };
        let keep = match &mut self.mode {
            Mode::Probe => {
                // The protocol could not be told from what was captured.
                self.plen = 0;
                self.mode = Mode::Text(Text::new(true));
                true
            }
            Mode::Text(t) => {
                t.gap();
                true
            }
            Mode::Resp(r) => r.gap(n),
            Mode::Pg(p) => p.gap(n),
            Mode::My(m) => m.gap(n),
            Mode::H2(h) => h.gap(n, &mut ctx),
            Mode::Opaque => true,
        };
        if !keep {
            ctx.counts.desync += 1;
            self.mode = match self.mode {
                // Redis and unknown text: lines again from the next one.
                Mode::Resp(_) => Mode::Text(Text::new(false)),
                _ => Mode::Opaque,
            };
        }
    }

    /// Whether an HTTP/2 direction's HPACK table is unknown.
    pub fn hpack_lost(&self) -> bool {
        matches!(&self.mode, Mode::H2(h) if h.lost())
    }
}
