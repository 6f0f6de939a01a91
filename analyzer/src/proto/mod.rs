//! The protocols the analyzer understands, and the registry that detects which one a
//! connection speaks. Each protocol is one module implementing the contract of [`crate::l7`]
//! (a [`Protocol`] description and its [`crate::l7::Parser`]); adding one means that module and
//! one line in [`PROTOCOLS`].

pub mod dns;
pub mod http1;
pub mod http2;
pub mod mysql;
pub mod postgresql;
pub mod redis;
pub mod tls;

use crate::l7::{Probe, ProbeInput, Protocol};

/// Every protocol, in detection order. Adding a protocol: one module, one line here.
pub static PROTOCOLS: &[&Protocol] = &[
    &redis::PROTOCOL,
    &http1::PROTOCOL,
    &dns::PROTOCOL,
    &postgresql::PROTOCOL,
    &http2::PROTOCOL,
    &mysql::PROTOCOL,
    &tls::PROTOCOL,
];

/// Finds the protocol a connection switched to in-band, by the name the old protocol gave it
/// (see [`crate::l7::Handover`]).
pub fn by_upgrade_token(token: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().copied().find(|p| {
        p.upgrade
            .as_ref()
            .is_some_and(|u| u.token.eq_ignore_ascii_case(token))
    })
}

/// Finds a protocol by name.
pub fn by_name(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().copied().find(|p| p.name == name)
}

/// A detection verdict: the protocol, and whether the roles must be swapped
/// ([`Probe::Reversed`]).
#[derive(Clone, Copy, Debug)]
pub struct Detected {
    /// The protocol.
    pub proto: &'static Protocol,
    /// The probe said the assumed client is the server.
    pub reversed: bool,
}

/// Detects the protocol of a connection from its first bytes.
///
/// Content decides; the port only breaks a tie when content cannot tell yet and the stream
/// has ended (so a protocol on its usual port still gets its parser for short streams).
pub fn detect(input: &ProbeInput<'_>, final_call: bool) -> Option<Result<Detected, ()>> {
    let mut undecided: Option<&'static Protocol> = None;
    let mut any_undecided = false;
    for p in PROTOCOLS
        .iter()
        .copied()
        .filter(|p| p.transports.contains(&input.transport))
    {
        match (p.probe)(input) {
            Probe::Yes => {
                return Some(Ok(Detected {
                    proto: p,
                    reversed: false,
                }));
            }
            Probe::Reversed => {
                return Some(Ok(Detected {
                    proto: p,
                    reversed: true,
                }));
            }
            Probe::NeedMore => {
                any_undecided = true;
                if undecided.is_none() && p.ports.contains(&input.server_port) {
                    undecided = Some(p);
                }
            }
            Probe::No => {}
        }
    }
    if !final_call && any_undecided {
        return None;
    }
    Some(
        undecided
            .map(|proto| Detected {
                proto,
                reversed: false,
            })
            .ok_or(()),
    )
}
