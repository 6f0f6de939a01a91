//! Detection: whether a connection's first message is DNS, and which side asked. On the DNS
//! ports the header and question only need to be sane; elsewhere the message must be an
//! ordinary one-question message that parses to its end.

use super::PROTOCOL;
use super::wire::{self, Error, Header};
use crate::l7::{Probe, ProbeInput};
use crate::model::Transport;
use crate::read::be_u16;

/// What a probe makes of one message's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    Query,
    Response,
    /// Plausible so far, but the bytes end before the question does.
    Short,
    No,
}

/// Header and question sanity. `whole`: `b` is the whole message (so running out of bytes
/// means it is not DNS). `on_port`: a DNS port — laxer about counts; elsewhere the message
/// must be an ordinary one-question message that parses to its end.
fn look(b: &[u8], whole: bool, on_port: bool) -> Look {
    let Some(h) = Header::parse(b) else {
        return if whole { Look::No } else { Look::Short };
    };
    let kind = if h.qr { Look::Response } else { Look::Query };
    if !matches!(h.opcode, 0 | 1 | 2 | 4 | 5) {
        return Look::No;
    }
    let records = u32::from(h.ancount) + u32::from(h.nscount) + u32::from(h.arcount);
    if on_port {
        // Zeek's analyzer is there on its ports: such a message, whole, is still a record,
        // and then DNS stops on the flow (the parser's rule). Cut (a TCP length prefix made
        // of text, say), it is not DNS.
        if h.qdcount > wire::MAX_QUESTIONS {
            return if whole { kind } else { Look::No };
        }
        // An answer without a question is usual for mDNS and for errors (FORMERR).
        if h.qdcount == 0 {
            return if h.qr && (records > 0 || h.rcode != 0) {
                kind
            } else {
                Look::No
            };
        }
    } else {
        if h.qdcount != 1 || (!h.qr && (h.ancount > 0 || h.rcode != 0)) {
            return Look::No;
        }
        // Every record takes at least 11 bytes.
        if whole && records as usize * 11 > b.len() - wire::HEADER_LEN {
            return Look::No;
        }
    }
    let mut name = Vec::new();
    let q = match wire::read_name(b, wire::HEADER_LEN, &mut name) {
        Ok(p) => p,
        Err(Error::Truncated) if !whole => return Look::Short,
        Err(_) => return Look::No,
    };
    let (Some(qtype), Some(qclass)) = (be_u16(b, q), q.checked_add(2).and_then(|at| be_u16(b, at)))
    else {
        return if whole { Look::No } else { Look::Short };
    };
    if qtype == 0 || !matches!(qclass & 0x7fff, 1 | 3 | 4 | 254 | 255) {
        return Look::No;
    }
    if !on_port && whole {
        match wire::parse(b, wire::Ctx::default()) {
            Ok(m) if m.error.is_none() && !m.cut => {}
            _ => return Look::No,
        }
    }
    kind
}

/// The first message of a TCP direction, without its length prefix.
fn look_framed(b: &[u8], on_port: bool) -> Look {
    let Some(len) = be_u16(b, 0).map(usize::from) else {
        return Look::Short;
    };
    if len < wire::HEADER_LEN {
        return Look::No;
    }
    let body = &b[2..];
    if body.len() >= len {
        look(&body[..len], true, on_port)
    } else {
        look(body, false, on_port)
    }
}

/// UDP: a query from the assumed client (or a response from the assumed server) is DNS; a
/// response first from the assumed client means the roles are the other way round. TCP: the
/// client's first framed message must be a query (or, when only the server spoke, a response).
pub(super) fn probe(p: &ProbeInput<'_>) -> Probe {
    let on_port = PROTOCOL.ports.contains(&p.server_port);
    match p.transport {
        Transport::Udp => {
            let (c, s) = (p.to_server, p.to_client);
            let lc = (!c.is_empty()).then(|| look(c, true, on_port));
            let ls = (!s.is_empty()).then(|| look(s, true, on_port));
            match (lc, ls) {
                (Some(Look::Query), _) | (None, Some(Look::Response)) => Probe::Yes,
                // The assumed client answered first (or the assumed server asked).
                (Some(Look::Response), None | Some(Look::Query)) | (None, Some(Look::Query)) => {
                    Probe::Reversed
                }
                (Some(Look::Response), Some(Look::Response)) => Probe::Yes,
                (None, None) => Probe::NeedMore,
                _ => Probe::No,
            }
        }
        Transport::Tcp => {
            // The handshake settled the roles: the client asks.
            let c = p.to_server;
            if !c.is_empty() {
                return match look_framed(c, on_port) {
                    Look::Query => Probe::Yes,
                    Look::Short => Probe::NeedMore,
                    Look::Response | Look::No => Probe::No,
                };
            }
            match look_framed(p.to_client, on_port) {
                Look::Response => Probe::Yes,
                Look::Short => Probe::NeedMore,
                Look::Query | Look::No => Probe::No,
            }
        }
    }
}
