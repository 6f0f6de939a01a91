//! Detection: an untyped first message (StartupMessage, SSLRequest, GSSENCRequest,
//! CancelRequest) from the client, or, for a connection caught mid-stream, runs of typed
//! messages that pass the length checks both ways.

use super::PROTOCOL;
use super::wire::{self, Side};
use crate::l7::{Probe, ProbeInput};
use crate::model::Transport;
use crate::read::be_u32;

/// What a run of typed messages at the start of a probe buffer looks like.
fn typed_run(side: Side, b: &[u8], on_port: bool) -> Probe {
    let mut pos = 0;
    let mut whole = 0;
    while pos < b.len() {
        let Some(len) = be_u32(b, pos + 1) else {
            // A header still arriving: its type byte must already make sense.
            return if wire::known_type(side, b[pos]) {
                Probe::NeedMore
            } else {
                Probe::No
            };
        };
        let t = b[pos];
        if !wire::known_type(side, t) || wire::check_header(side, t, len).is_err() {
            return Probe::No;
        }
        let end = pos + 1 + len as usize;
        let Some(body) = b.get(pos + 5..end) else {
            break;
        };
        let ok = match (side, t) {
            (Side::Frontend, b'Q') | (Side::Backend, b'C') => {
                body.iter().position(|&c| c == 0) == Some(body.len().wrapping_sub(1))
            }
            (Side::Backend, b'Z') => matches!(body, [b'I' | b'T' | b'E']),
            (Side::Backend, b'E' | b'N') => wire::parse_fields(body).1,
            (Side::Backend, b'S') => wire::parse_parameter_status(body).is_some(),
            _ => true,
        };
        if !ok {
            return Probe::No;
        }
        whole += 1;
        pos = end;
    }
    match whole {
        0 => Probe::NeedMore,
        1 if pos == b.len() && on_port => Probe::Yes,
        1 => Probe::NeedMore,
        _ => Probe::Yes,
    }
}

/// The registered probe: an untyped first message from the client, else typed messages.
pub(super) fn probe(p: &ProbeInput<'_>) -> Probe {
    if p.transport != Transport::Tcp {
        return Probe::No;
    }
    let on_port = PROTOCOL.ports.contains(&p.server_port);
    let (c, s) = (p.to_server, p.to_client);
    if let Some(&first) = c.first() {
        // An untyped first message starts with the high byte of a small length; typed
        // messages start with an ASCII letter.
        if first == 0 {
            return match wire::looks_untyped(c) {
                None => Probe::NeedMore,
                Some(true) => Probe::Yes,
                Some(false) => Probe::No,
            };
        }
        // The capture began mid-connection: typed messages both ways.
        let server = if s.is_empty() {
            Probe::NeedMore
        } else {
            typed_run(Side::Backend, s, on_port)
        };
        return match (typed_run(Side::Frontend, c, on_port), server) {
            (Probe::No, _) | (_, Probe::No) => Probe::No,
            (Probe::Yes, _) | (_, Probe::Yes) => Probe::Yes,
            _ => Probe::NeedMore,
        };
    }
    if s.is_empty() {
        Probe::NeedMore
    } else {
        typed_run(Side::Backend, s, on_port)
    }
}
