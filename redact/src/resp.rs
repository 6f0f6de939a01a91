//! Redis commands in RESP (`*N\r\n` then N bulk strings `$len\r\n<bytes>\r\n`): the
//! password arguments of `AUTH [user] pass`, `HELLO ... AUTH user pass`, `MIGRATE ... AUTH
//! pass` / `AUTH2 user pass` and `CONFIG SET requirepass|masterauth value`. Anything that is
//! not a command array (an inline command, replies) is handed to the text reader, which
//! knows inline `AUTH` and `HELLO`.

use crate::stream::Next;
use crate::{Ctx, Rule};

/// Bulk strings longer than this are not believed (Redis' own limit is 512 MiB).
const MAX_BULK: u64 = 512 << 20;
/// Arrays longer than this are not believed.
const MAX_ARGS: u64 = 1 << 20;
/// Bytes of an argument kept to recognise a command or keyword.
const WORD: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Array,
    ArrayNum,
    ArrayLf,
    Bulk,
    BulkNum,
    BulkLf,
    Data(u64),
    DataCr,
    DataLf,
}

/// A small upper-cased word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Word {
    b: [u8; WORD],
    len: usize,
}

impl Word {
    fn push(&mut self, s: &[u8]) {
        for &c in s {
            if self.len < WORD {
                self.b[self.len] = c.to_ascii_uppercase();
            }
            self.len = (self.len + 1).min(WORD + 1);
        }
    }
    fn is(&self, w: &[u8]) -> bool {
        self.len == w.len() && &self.b[..self.len.min(WORD)] == w
    }
}

/// One direction of a RESP connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resp {
    st: St,
    num: u64,
    digits: u8,
    nargs: u64,
    idx: u64,
    cmd: Word,
    arg: Word,
    /// The argument to redact next (besides `AUTH`'s last).
    redact_at: Option<u64>,
    redact: bool,
}

impl Default for Resp {
    fn default() -> Self {
        Resp {
            st: St::Array,
            num: 0,
            digits: 0,
            nargs: 0,
            idx: 0,
            cmd: Word::default(),
            arg: Word::default(),
            redact_at: None,
            redact: false,
        }
    }
}

impl Resp {
    /// Bytes were lost; `false` if the place in the protocol is lost too.
    pub(crate) fn gap(&mut self, n: u64) -> bool {
        match &mut self.st {
            St::Data(left) if *left >= n => {
                *left -= n;
                if *left == 0 {
                    self.st = St::DataCr;
                }
                true
            }
            _ => false,
        }
    }

    fn should_redact(&self, policy_on: bool) -> bool {
        if !policy_on || self.idx == 0 {
            return false;
        }
        (self.cmd.is(b"AUTH") && self.idx + 1 == self.nargs) || self.redact_at == Some(self.idx)
    }

    fn after_arg(&mut self) {
        if self.idx == 0 {
            self.cmd = self.arg;
            return;
        }
        let a = &self.arg;
        if self.cmd.is(b"HELLO") && a.is(b"AUTH") {
            self.redact_at = Some(self.idx + 2);
        } else if self.cmd.is(b"MIGRATE") && a.is(b"AUTH") {
            self.redact_at = Some(self.idx + 1);
        } else if self.cmd.is(b"MIGRATE") && a.is(b"AUTH2") {
            self.redact_at = Some(self.idx + 2);
        } else if self.cmd.is(b"CONFIG")
            && self.idx >= 2
            && (a.is(b"REQUIREPASS") || a.is(b"MASTERAUTH"))
        {
            self.redact_at = Some(self.idx + 1);
        }
    }

    fn number(&mut self, c: u8, next: St) -> Result<(), ()> {
        match c {
            b'0'..=b'9' if self.digits < 12 => {
                self.num = self.num * 10 + u64::from(c - b'0');
                self.digits += 1;
                Ok(())
            }
            b'\r' if self.digits > 0 => {
                self.st = next;
                Ok(())
            }
            _ => Err(()),
        }
    }

    /// Reads `buf`; hands over to the text reader at what is not a command array.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        let on = ctx.policy.is_on(Rule::Redis);
        let mut i = 0;
        while i < buf.len() {
            let c = buf[i];
            let ok = match self.st {
                St::Array => {
                    if c != b'*' {
                        // An inline command or a reply: text from here.
                        return Some((
                            i,
                            Next::Text {
                                at_line_start: true,
                            },
                        ));
                    }
                    self.st = St::ArrayNum;
                    self.num = 0;
                    self.digits = 0;
                    Ok(())
                }
                St::ArrayNum => self.number(c, St::ArrayLf),
                St::Bulk => {
                    if c == b'$' {
                        self.st = St::BulkNum;
                        self.num = 0;
                        self.digits = 0;
                        Ok(())
                    } else {
                        Err(())
                    }
                }
                St::BulkNum => self.number(c, St::BulkLf),
                St::ArrayLf => {
                    if c == b'\n' && self.num <= MAX_ARGS {
                        self.nargs = self.num;
                        self.idx = 0;
                        self.redact_at = None;
                        self.cmd = Word::default();
                        self.st = if self.nargs == 0 { St::Array } else { St::Bulk };
                        Ok(())
                    } else {
                        Err(())
                    }
                }
                St::BulkLf => {
                    if c == b'\n' && self.num <= MAX_BULK {
                        self.redact = self.should_redact(on);
                        if self.redact {
                            ctx.counts.hit(Rule::Redis);
                        }
                        self.arg = Word::default();
                        self.st = if self.num == 0 {
                            St::DataCr
                        } else {
                            St::Data(self.num)
                        };
                        Ok(())
                    } else {
                        Err(())
                    }
                }
                St::Data(left) => {
                    let n = (buf.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let chunk = &mut buf[i..i + n];
                    if self.arg.len <= WORD {
                        self.arg.push(&chunk[..chunk.len().min(WORD + 1)]);
                    }
                    if self.redact {
                        ctx.fill(chunk);
                    }
                    let left = left - n as u64;
                    self.st = if left == 0 {
                        St::DataCr
                    } else {
                        St::Data(left)
                    };
                    i += n;
                    continue;
                }
                St::DataCr => {
                    if c == b'\r' {
                        self.st = St::DataLf;
                        Ok(())
                    } else {
                        Err(())
                    }
                }
                St::DataLf => {
                    if c == b'\n' {
                        self.after_arg();
                        self.idx += 1;
                        self.st = if self.idx >= self.nargs {
                            St::Array
                        } else {
                            St::Bulk
                        };
                        Ok(())
                    } else {
                        Err(())
                    }
                }
            };
            if ok.is_err() {
                ctx.counts.desync += 1;
                return Some((
                    i,
                    Next::Text {
                        at_line_start: false,
                    },
                ));
            }
            i += 1;
        }
        None
    }
}
