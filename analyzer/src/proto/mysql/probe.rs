//! Detection: whether a connection's first bytes are MySQL — a server greeting (or the error
//! a server sends instead of one), or, for a connection caught mid-stream, a client command
//! and the first packet of its answer. The parser uses the same checks to find a packet
//! start again after losing the framing.

use super::PROTOCOL;
use super::wire::{self, Command, HEADER_LEN, MAX_PAYLOAD};
use crate::l7::{Probe, ProbeInput};
use crate::read::le_u16;

/// What a probe makes of a direction's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    Yes,
    /// Consistent so far; more bytes needed.
    Short,
    No,
}

/// The payload length in a packet header (0 when the header is not all there).
fn u24(b: &[u8]) -> usize {
    wire::payload_len(b).unwrap_or(0)
}

/// A server greeting (protocol 10) or the error a server sends instead of one.
pub(super) fn look_greeting(b: &[u8]) -> Look {
    if b.len() < HEADER_LEN + 1 {
        return if b.len() >= HEADER_LEN && (b[3] != 0 || !(3..=1024).contains(&u24(b))) {
            Look::No
        } else {
            Look::Short
        };
    }
    let len = u24(b);
    if b[3] != 0 || !(3..=1024).contains(&len) {
        return Look::No;
    }
    let p = &b[HEADER_LEN..b.len().min(HEADER_LEN + len)];
    let whole = p.len() == len;
    match p[0] {
        10 => {
            let v = &p[1..];
            let Some(nul) = v.iter().position(|&c| c == 0) else {
                let ok = v.len() < 100 && v.iter().all(|c| (0x20..0x7f).contains(c));
                return if ok && !whole { Look::Short } else { Look::No };
            };
            let version = &v[..nul];
            if version.is_empty()
                || version.len() > 100
                || !version[0].is_ascii_digit()
                || !version.iter().all(|c| (0x20..0x7f).contains(c))
            {
                return Look::No;
            }
            // Connection id (4), scramble (8), a zero filler, capabilities (2).
            let after = 1 + nul + 1;
            if len < after + 15 {
                return Look::No;
            }
            match p.get(after + 12) {
                Some(0) => Look::Yes,
                Some(_) => Look::No,
                None => Look::Short,
            }
        }
        0xff => {
            if !whole {
                return Look::Short;
            }
            // The connection closes after it: nothing may follow.
            if b.len() != HEADER_LEN + len {
                return Look::No;
            }
            let code = le_u16(p, 1).unwrap_or(0);
            let text = &p[3..];
            if (1000..5000).contains(&code)
                && !text.is_empty()
                && text.iter().all(|&c| c >= 0x20 && c != 0x7f)
            {
                Look::Yes
            } else {
                Look::No
            }
        }
        _ => Look::No,
    }
}

fn is_text(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| c >= 0x20 && c != 0x7f || matches!(c, b'\t' | b'\n' | b'\r'))
}

/// A client command packet at the start of `b` (a connection caught mid-stream, or
/// resynchronising after a gap).
pub(super) fn look_command(b: &[u8]) -> Look {
    if b.len() < HEADER_LEN + 1 {
        return if b.len() >= HEADER_LEN && (b[3] != 0 || u24(b) == 0) {
            Look::No
        } else {
            Look::Short
        };
    }
    let len = u24(b);
    if b[3] != 0 || len == 0 || len >= MAX_PAYLOAD {
        return Look::No;
    }
    let p = &b[HEADER_LEN..b.len().min(HEADER_LEN + len)];
    let whole = p.len() == len;
    let arg = &p[1..];
    let ok = match Command::from(p[0]) {
        Command::Quit
        | Command::Statistics
        | Command::ProcessInfo
        | Command::Debug
        | Command::Ping
        | Command::ResetConnection => len == 1,
        Command::Query | Command::StmtPrepare => {
            let text = match wire::split_query(arg, None) {
                Ok((_, t)) => t,
                Err(wire::Error::Truncated) if !whole => return Look::Short,
                Err(_) => return Look::No,
            };
            let lead = text.iter().find(|c| !c.is_ascii_whitespace());
            if !is_text(text) {
                return Look::No;
            }
            match lead {
                Some(c) if c.is_ascii_alphabetic() || matches!(c, b'(' | b'/' | b'-' | b'#') => {}
                Some(_) => return Look::No,
                None if whole => return Look::No,
                None => return Look::Short,
            }
            if !whole && text.len() < 8 {
                return Look::Short;
            }
            true
        }
        Command::InitDb | Command::CreateDb | Command::DropDb | Command::FieldList => {
            len <= 256 && arg.iter().all(|&c| c == 0 || c >= 0x20 && c != 0x7f) && len > 1
        }
        Command::StmtExecute => {
            if len < 10 {
                return Look::No;
            }
            match p.get(5..10) {
                Some([flags, 1, 0, 0, 0]) if *flags <= 0x0f => true,
                Some(_) => false,
                None => return Look::Short,
            }
        }
        Command::StmtClose | Command::StmtReset => len == 5,
        Command::StmtFetch => len == 9,
        _ => false,
    };
    if !ok {
        return Look::No;
    }
    if !whole {
        return Look::Short;
    }
    // Whatever follows must be another command (a pipelining client).
    match b.get(HEADER_LEN + len + 3) {
        None | Some(0) => Look::Yes,
        Some(_) => Look::No,
    }
}

/// The first packet of a response at the start of `b` (sequence 1: the answer to a command).
pub(super) fn look_response(b: &[u8]) -> Look {
    if b.len() < HEADER_LEN + 1 {
        return Look::Short;
    }
    let len = u24(b);
    if b[3] != 1 || len == 0 || len >= MAX_PAYLOAD {
        return Look::No;
    }
    match b[4] {
        0x00 | 0xfe if len >= 5 => Look::Yes,
        0xff if len >= 3 => Look::Yes,
        0xfb => Look::Yes,
        // A column count; the optional metadata byte may follow it.
        1..=0xfa if len <= 2 => Look::Yes,
        0xfc if len <= 4 => Look::Yes,
        _ => Look::No,
    }
}

/// The registered probe: a greeting, or a command (with its answer, off the MySQL port).
pub(super) fn probe(p: &ProbeInput<'_>) -> Probe {
    let server = if p.to_client.is_empty() {
        Look::Short
    } else {
        look_greeting(p.to_client)
    };
    match server {
        Look::Yes => return Probe::Yes,
        Look::Short if p.to_server.is_empty() => return Probe::NeedMore,
        // Neither a greeting nor the start of an answer (SSH, SMTP banners): the client's
        // first bytes cannot make it MySQL.
        Look::No if look_response(p.to_client) == Look::No => return Probe::No,
        _ => {}
    }
    // No greeting: a connection caught mid-stream speaks commands. On the MySQL port a
    // plausible command is enough; elsewhere the server's first packet must answer it.
    match look_command(p.to_server) {
        // The server speaks first: a client that opens with anything but a command is not
        // talking MySQL.
        Look::No => Probe::No,
        Look::Short => Probe::NeedMore,
        Look::Yes if PROTOCOL.ports.contains(&p.server_port) => Probe::Yes,
        Look::Yes => match (p.to_client.is_empty(), look_response(p.to_client)) {
            (true, _) | (false, Look::Short) => Probe::NeedMore,
            (false, Look::Yes) => Probe::Yes,
            (false, Look::No) => Probe::No,
        },
    }
}
