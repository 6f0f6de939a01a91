//! Text lines: HTTP/1 request and status lines, header fields (and trailers, and folded
//! continuation lines), and Redis inline commands. Every direction that is not a known binary
//! protocol is read this way, from wherever it starts: a line that begins with a configured
//! header name and a colon has its value overwritten, whatever comes before it, so bodies are
//! never framed (no Content-Length or chunk sizes to trust, nothing to lose sync with), at
//! the price of redacting a body line that looks like a secret header.

use memchr::{memchr, memchr2};

use crate::policy::{Class, MAX_NAME};
use crate::query::{Query, Seen};
use crate::stream::Next;
use crate::{Ctx, Rule};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// At the start of a line.
    Start,
    /// A CR at the start of a line (an empty line if LF follows).
    Cr,
    /// In the line's first token (a header name, a method, a Redis command).
    Token,
    /// Blanks before a secret value.
    Lead,
    /// A secret value, up to the end of the line.
    Value,
    /// A URL (request target: up to a blank; header value: up to the end of the line).
    Url { target: bool },
    /// The status code of a status line.
    Status,
    /// `HELLO` arguments: looking for `AUTH`.
    Hello,
    /// `HELLO ... AUTH`: the user name, then the rest is secret.
    HelloUser,
    /// Nothing to do until the end of the line.
    Skip,
}

/// The line reader's state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Text {
    st: St,
    tok: [u8; MAX_NAME],
    /// Bytes of the token; above [`MAX_NAME`]: too long to match anything.
    len: usize,
    /// The previous line was a redacted header: a continuation line (obs-fold) is too.
    fold: bool,
    /// A `101` status line was seen: after its header block, the connection is something
    /// else (HTTP/2 after `Upgrade: h2c`, a WebSocket): find out again.
    switch_after: bool,
    status: u16,
    digits: u8,
    q: Query,
}

impl Text {
    /// A reader at the start of a line, or (`false`) somewhere in one.
    pub(crate) fn new(at_line_start: bool) -> Self {
        Text {
            st: if at_line_start { St::Start } else { St::Skip },
            tok: [0; MAX_NAME],
            len: 0,
            fold: false,
            switch_after: false,
            status: 0,
            digits: 0,
            q: Query::default(),
        }
    }

    /// Bytes were lost. A secret value (or URL) cut by the gap goes on as it was; anything
    /// else: what follows is read as the start of a line, so that a header that starts a
    /// segment after a loss is still recognised (a line that merely looks like one is
    /// overwritten too: the safe side).
    pub(crate) fn gap(&mut self) {
        if !matches!(self.st, St::Value | St::Url { .. }) {
            self.st = St::Start;
            self.fold = false;
        }
    }

    fn token(&self) -> &[u8] {
        &self.tok[..self.len.min(MAX_NAME)]
    }

    fn empty_line(&mut self) -> bool {
        self.fold = false;
        self.st = St::Start;
        std::mem::take(&mut self.switch_after)
    }

    /// Reads `buf`; returns where the connection turned into something else, if it did.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        let mut i = 0;
        while i < buf.len() {
            let c = buf[i];
            match self.st {
                St::Start => match c {
                    b'\n' => {
                        i += 1;
                        if self.empty_line() {
                            return Some((i, Next::Probe));
                        }
                    }
                    b'\r' => {
                        self.st = St::Cr;
                        i += 1;
                    }
                    b' ' | b'\t' if self.fold => self.st = St::Lead,
                    _ => {
                        self.fold = false;
                        self.len = 0;
                        self.st = St::Token;
                    }
                },
                St::Cr => {
                    if c == b'\n' {
                        i += 1;
                        if self.empty_line() {
                            return Some((i, Next::Probe));
                        }
                    } else {
                        self.st = St::Skip;
                    }
                }
                St::Token => {
                    // The run of token characters here, in one go.
                    let rest = &buf[i..];
                    let run = rest
                        .iter()
                        .position(|&c| !is_tchar(c))
                        .unwrap_or(rest.len());
                    if self.len + run > MAX_NAME {
                        // Longer than any name or method this matches: not one of ours.
                        self.st = St::Skip;
                        continue;
                    }
                    for (t, c) in self.tok[self.len..self.len + run].iter_mut().zip(rest) {
                        *t = c.to_ascii_lowercase();
                    }
                    self.len += run;
                    i += run;
                    let Some(&c) = buf.get(i) else { break };
                    i += 1;
                    match c {
                        b':' => {
                            let class = ctx.policy.header_class(self.token());
                            self.st = match class {
                                Class::Secret(r) => {
                                    ctx.counts.hit(r);
                                    self.fold = true;
                                    St::Lead
                                }
                                Class::Url => {
                                    self.q.reset();
                                    St::Url { target: false }
                                }
                                Class::Plain => St::Skip,
                            };
                        }
                        b' ' => self.st = self.first_word(ctx),
                        b'\n' => self.st = St::Start,
                        _ => self.st = St::Skip,
                    }
                    if self.tok.starts_with(b"pri")
                        && self.len == 3
                        && c == b' '
                        && ctx_is_h2_preface(&buf[i..])
                    {
                        // `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`: HTTP/2 after an h2c upgrade.
                        return Some((i, Next::H2Client { preface_left: 20 }));
                    }
                }
                St::Lead => match c {
                    b' ' | b'\t' => i += 1,
                    b'\r' | b'\n' => self.st = St::Skip,
                    _ => self.st = St::Value,
                },
                St::Value => {
                    let end = memchr2(b'\r', b'\n', &buf[i..]).map_or(buf.len(), |e| i + e);
                    ctx.fill(&mut buf[i..end]);
                    i = end;
                    if end < buf.len() {
                        self.st = St::Skip;
                    }
                }
                St::Url { target } => {
                    if c == b'\r' || c == b'\n' || (target && c == b' ') {
                        self.st = St::Skip;
                        continue;
                    }
                    match self.q.byte(c, ctx.policy) {
                        Seen::Secret => ctx.fill(&mut buf[i..=i]),
                        Seen::Starts => ctx.counts.hit(Rule::UrlQuery),
                        Seen::Keep => {}
                    }
                    i += 1;
                }
                St::Status => {
                    if c.is_ascii_digit() && self.digits < 3 {
                        self.status = self.status * 10 + u16::from(c - b'0');
                        self.digits += 1;
                        i += 1;
                    } else {
                        if self.digits == 3 && self.status == 101 {
                            self.switch_after = true;
                        }
                        self.st = St::Skip;
                    }
                }
                St::Hello => {
                    // Words separated by blanks; after `AUTH` comes the user, then the secret.
                    i += 1;
                    match c {
                        b'\r' | b'\n' => {
                            self.st = if c == b'\n' { St::Start } else { St::Skip };
                        }
                        b' ' => {
                            if self.token().eq_ignore_ascii_case(b"auth") {
                                ctx.counts.hit(Rule::Redis);
                                self.st = St::HelloUser;
                            }
                            self.len = 0;
                        }
                        _ => {
                            if self.len < MAX_NAME {
                                self.tok[self.len] = c;
                            }
                            self.len = (self.len + 1).min(MAX_NAME + 1);
                        }
                    }
                }
                St::HelloUser => match c {
                    b'\r' | b'\n' => self.st = St::Skip,
                    b' ' => {
                        i += 1;
                        self.st = St::Value;
                    }
                    _ => i += 1,
                },
                St::Skip => match memchr(b'\n', &buf[i..]) {
                    Some(e) => {
                        i += e + 1;
                        self.st = St::Start;
                    }
                    None => i = buf.len(),
                },
            }
        }
        None
    }

    /// The first word of a line ended with a blank: a request line, a status line or an
    /// inline Redis command.
    fn first_word(&mut self, ctx: &mut Ctx<'_>) -> St {
        let redis = ctx.policy.is_on(Rule::Redis);
        match self.token() {
            b"auth" if redis => {
                ctx.counts.hit(Rule::Redis);
                St::Value
            }
            b"hello" if redis => {
                self.len = 0;
                St::Hello
            }
            t if t.starts_with(b"http/") => {
                self.status = 0;
                self.digits = 0;
                St::Status
            }
            _ if ctx.policy.is_on(Rule::UrlQuery) => {
                self.q.reset();
                St::Url { target: true }
            }
            _ => St::Skip,
        }
    }
}

/// Whether what follows `PRI ` is the rest of the HTTP/2 preface (as far as it is here).
fn ctx_is_h2_preface(rest: &[u8]) -> bool {
    const REST: &[u8] = b"* HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let n = rest.len().min(REST.len());
    n > 0 && rest[..n] == REST[..n]
}

/// RFC 9110 token characters.
fn is_tchar(c: u8) -> bool {
    TCHAR[usize::from(c)]
}

/// [`is_tchar`] as a table: the token loop runs over every header name's bytes.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};
