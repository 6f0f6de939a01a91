//! The MySQL / MariaDB client direction: the HandshakeResponse41 (its auth response
//! overwritten; user, database, plugin and attributes kept), then every packet of the
//! authentication exchange that follows (auth switch responses, a cleartext or RSA-encrypted
//! password, a public key request): client packets with a non-zero sequence number before
//! the first command. `COM_CHANGE_USER` starts another one. An SSLRequest means TLS follows;
//! compression (`CLIENT_COMPRESS`) means nothing after the handshake response is readable.

use memchr::memchr;

use crate::stream::Next;
use crate::{Ctx, Rule};

const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SSL: u32 = 0x0800;
const CLIENT_COMPRESS: u32 = 0x0020;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x0020_0000;
const COM_CHANGE_USER: u8 = 0x11;
/// A packet of this length continues in the next one.
const MAX_PACKET: u32 = 0x00ff_ffff;

/// Whether 36 bytes start a HandshakeResponse41 (or SSLRequest): sequence 1, a plausible
/// length, `CLIENT_PROTOCOL_41`, 23 zero filler bytes.
pub(crate) fn is_handshake_response(h: &[u8]) -> bool {
    if h.len() < 36 {
        return false;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], 0]);
    let caps = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    h[3] == 1
        && (32..=65_536).contains(&len)
        && caps & CLIENT_PROTOCOL_41 != 0
        && h[13..36].iter().all(|&b| b == 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first packet is the handshake response.
    Handshake,
    /// Authentication goes on: packets with a non-zero sequence number are secret.
    Auth,
    /// Commands.
    Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// The 32 fixed bytes (capabilities first).
    Fixed(u32),
    /// The user name, up to its NUL.
    User,
    /// The auth response's length encoding: its first byte.
    LenFirst,
    /// More bytes of a length-encoded integer.
    LenMore { left: u8, shift: u8 },
    /// The auth response.
    Data(u64),
    /// An auth response terminated by NUL.
    DataNul,
    /// Database, plugin, attributes: kept.
    Rest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Header,
    Skip,
    Secret,
    /// A command's first byte.
    Cmd,
    /// A handshake response (`change_user: false`) or COM_CHANGE_USER being read.
    Fields {
        f: Field,
        change_user: bool,
    },
}

/// One client direction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct My {
    st: St,
    hdr: [u8; 4],
    hlen: usize,
    /// Payload bytes left in the current packet.
    left: u32,
    phase: Phase,
    caps: u32,
    num: u64,
    /// The previous packet had the maximum length: this one continues it.
    cont: bool,
    /// TLS (after an SSLRequest) or compression starts after this packet.
    opaque_after: bool,
}

impl Default for My {
    fn default() -> Self {
        My {
            st: St::Header,
            hdr: [0; 4],
            hlen: 0,
            left: 0,
            phase: Phase::Handshake,
            caps: 0,
            num: 0,
            cont: false,
            opaque_after: false,
        }
    }
}

impl My {
    /// Bytes were lost; `false` if the place in the protocol is lost too.
    pub(crate) fn gap(&mut self, n: u64) -> bool {
        match self.st {
            St::Skip | St::Secret if u64::from(self.left) >= n => {
                self.left -= n as u32;
                true
            }
            _ => false,
        }
    }

    fn packet_start(&mut self, seq: u8, ctx: &mut Ctx<'_>) -> St {
        let on = ctx.policy.is_on(Rule::Mysql);
        if std::mem::replace(&mut self.cont, self.left == MAX_PACKET) {
            return St::Skip;
        }
        match self.phase {
            Phase::Handshake => St::Fields {
                f: Field::Fixed(0),
                change_user: false,
            },
            Phase::Auth if seq != 0 => {
                if on {
                    ctx.counts.hit(Rule::Mysql);
                }
                St::Secret
            }
            _ => {
                self.phase = Phase::Command;
                if seq == 0 { St::Cmd } else { St::Skip }
            }
        }
    }

    /// Reads `buf`.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> Option<(usize, Next)> {
        let on = ctx.policy.is_on(Rule::Mysql);
        let mut i = 0;
        while i < buf.len() {
            if self.st != St::Header && self.left == 0 {
                self.st = St::Header;
                if self.opaque_after {
                    return Some((i, Next::Opaque));
                }
            }
            match self.st {
                St::Header => {
                    self.hdr[self.hlen] = buf[i];
                    self.hlen += 1;
                    i += 1;
                    if self.hlen == 4 {
                        self.hlen = 0;
                        self.left = u32::from_le_bytes([self.hdr[0], self.hdr[1], self.hdr[2], 0]);
                        self.st = self.packet_start(self.hdr[3], ctx);
                    }
                    continue;
                }
                St::Skip | St::Secret => {
                    let n = (buf.len() - i).min(self.left as usize);
                    if self.st == St::Secret && on {
                        ctx.fill(&mut buf[i..i + n]);
                    }
                    i += n;
                    self.left -= n as u32;
                    continue;
                }
                St::Cmd => {
                    self.st = if buf[i] == COM_CHANGE_USER {
                        St::Fields {
                            f: Field::User,
                            change_user: true,
                        }
                    } else {
                        St::Skip
                    };
                    i += 1;
                    self.left -= 1;
                }
                St::Fields { f, change_user } => {
                    let used = self.field(f, change_user, &mut buf[i..], ctx);
                    i += used;
                    self.left -= used as u32;
                }
            }
        }
        if self.st != St::Header && self.left == 0 {
            self.st = St::Header;
            if self.opaque_after {
                return Some((buf.len(), Next::Opaque));
            }
        }
        None
    }

    /// Reads the handshake response's fields; returns the bytes used (at least one).
    fn field(&mut self, f: Field, change_user: bool, buf: &mut [u8], ctx: &mut Ctx<'_>) -> usize {
        let avail = buf.len().min(self.left as usize);
        let buf = &mut buf[..avail];
        let set = |s: &mut Self, f: Field| s.st = St::Fields { f, change_user };
        match f {
            Field::Fixed(done) => {
                if done < 4 {
                    self.caps |= u32::from(buf[0]) << (8 * done);
                }
                let done = done + 1;
                if done == 32 {
                    if self.caps & CLIENT_SSL != 0 && self.left == 1 {
                        // SSLRequest: TLS from the next packet.
                        self.opaque_after = true;
                    }
                    set(self, Field::User);
                } else {
                    set(self, Field::Fixed(done));
                }
                1
            }
            Field::User => match memchr(0, buf) {
                Some(p) => {
                    self.start_auth(change_user, ctx);
                    p + 1
                }
                None => avail,
            },
            Field::LenFirst => {
                let b = buf[0];
                match b {
                    0xfc => set(self, Field::LenMore { left: 2, shift: 0 }),
                    0xfd => set(self, Field::LenMore { left: 3, shift: 0 }),
                    0xfe => set(self, Field::LenMore { left: 8, shift: 0 }),
                    _ => self.data(u64::from(b), change_user),
                }
                self.num = 0;
                1
            }
            Field::LenMore { left, shift } => {
                self.num |= u64::from(buf[0]) << shift;
                if left == 1 {
                    self.data(self.num, change_user);
                } else {
                    set(
                        self,
                        Field::LenMore {
                            left: left - 1,
                            shift: shift + 8,
                        },
                    );
                }
                1
            }
            Field::Data(n) => {
                let k = avail.min(usize::try_from(n).unwrap_or(usize::MAX));
                if ctx.policy.is_on(Rule::Mysql) {
                    ctx.fill(&mut buf[..k]);
                }
                let n = n - k as u64;
                set(self, if n == 0 { Field::Rest } else { Field::Data(n) });
                k
            }
            Field::DataNul => {
                let (k, done) = match memchr(0, buf) {
                    Some(p) => (p, true),
                    None => (avail, false),
                };
                if ctx.policy.is_on(Rule::Mysql) {
                    ctx.fill(&mut buf[..k]);
                }
                if done {
                    set(self, Field::Rest);
                    k + 1
                } else {
                    k
                }
            }
            Field::Rest => {
                if !change_user && self.caps & CLIENT_COMPRESS != 0 {
                    self.opaque_after = true;
                }
                avail
            }
        }
    }

    fn start_auth(&mut self, change_user: bool, ctx: &mut Ctx<'_>) {
        if ctx.policy.is_on(Rule::Mysql) {
            ctx.counts.hit(Rule::Mysql);
        }
        self.phase = Phase::Auth;
        let f = if !change_user && self.caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
            Field::LenFirst
        } else if self.caps & CLIENT_SECURE_CONNECTION != 0 {
            // One length byte: read as a length-encoded integer below 0xfb.
            Field::LenFirst
        } else {
            Field::DataNul
        };
        self.st = St::Fields { f, change_user };
    }

    fn data(&mut self, n: u64, change_user: bool) {
        self.st = St::Fields {
            f: if n == 0 { Field::Rest } else { Field::Data(n) },
            change_user,
        };
    }
}
