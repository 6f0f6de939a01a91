//! The addresses of the sockets the `sock` hooks report. Their data events carry none (the
//! kernel side sends a socket's addresses once, with its connect, accept or open record);
//! the recorder fills them in here, so that every socket event in the archive is whole.
//!
//! Memory is bounded: two generations of at most [`SockAddrs::CAP`] / 2 sockets each; a socket
//! not heard of for a whole generation is forgotten (a later data event of it is counted as
//! unknown and written with unspecified addresses).

use juno_common::{SockHdr, kind};
// Keyed by kernel socket addresses (not chosen by anyone who could flood it), looked up for
// every data event: Fx instead of SipHash.
use rustc_hash::FxHashMap as HashMap;

/// TCP_CLOSE in the kernel's numbering.
const TCP_CLOSE: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Addrs {
    family: u8,
    netns: u32,
    lport: u16,
    rport: u16,
    laddr: [u8; 16],
    raddr: [u8; 16],
}

/// Socket → addresses, bounded.
#[derive(Debug, Default)]
pub struct SockAddrs {
    cur: HashMap<u64, Addrs>,
    old: HashMap<u64, Addrs>,
    /// Data events whose socket's addresses were not known.
    pub unknown: u64,
}

impl SockAddrs {
    /// Sockets remembered at most.
    pub const CAP: usize = 1 << 18;

    /// Takes what a socket event says: learns addresses from connect, accept and open records,
    /// fills them into data events that carry none, forgets a socket at its last state change.
    /// Returns false for records that are not archive events (open).
    pub fn apply(&mut self, h: &mut SockHdr) -> bool {
        match h.kind {
            kind::DATA | kind::TLS_DATA if h.family == 0 => {
                let a = match self.cur.get(&h.sk) {
                    Some(a) => Some(*a),
                    None => self.old.remove(&h.sk).inspect(|a| self.insert(h.sk, *a)),
                };
                match a {
                    Some(a) => {
                        h.family = a.family;
                        h.netns = a.netns;
                        h.lport = a.lport;
                        h.rport = a.rport;
                        h.laddr = a.laddr;
                        h.raddr = a.raddr;
                    }
                    None => self.unknown += 1,
                }
            }
            kind::CONNECT | kind::ACCEPT | kind::OPEN if h.family != 0 => {
                let a = Addrs {
                    family: h.family,
                    netns: h.netns,
                    lport: h.lport,
                    rport: h.rport,
                    laddr: h.laddr,
                    raddr: h.raddr,
                };
                self.insert(h.sk, a);
            }
            kind::STATE if h.new_state == TCP_CLOSE => {
                self.cur.remove(&h.sk);
                self.old.remove(&h.sk);
            }
            _ => {}
        }
        h.kind != kind::OPEN
    }

    fn insert(&mut self, sk: u64, a: Addrs) {
        if self.cur.len() >= Self::CAP / 2 {
            self.old = std::mem::take(&mut self.cur);
        }
        self.cur.insert(sk, a);
    }

    /// Sockets remembered.
    pub fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(sk: u64, kind: u8, family: u8) -> SockHdr {
        SockHdr {
            ts_ns: 1,
            sk,
            cgroup_id: 0,
            stream_offset: 0,
            pid: 1,
            tid: 1,
            netns: if family == 0 { 0 } else { 4026531840 },
            orig_len: 0,
            cap_len: 0,
            kind,
            direction: 0,
            family,
            old_state: 0,
            new_state: 0,
            _pad: 0,
            hook: 0,
            lport: if family == 0 { 0 } else { 40000 },
            rport: if family == 0 { 0 } else { 80 },
            laddr: if family == 0 {
                [0; 16]
            } else {
                [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            },
            raddr: if family == 0 {
                [0; 16]
            } else {
                [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            },
            comm: [0; 16],
        }
    }

    #[test]
    fn data_events_get_their_sockets_addresses_until_it_closes() {
        let mut t = SockAddrs::default();
        let mut open = hdr(7, kind::OPEN, 4);
        assert!(!t.apply(&mut open), "open records are not archive events");
        let mut accept = hdr(8, kind::ACCEPT, 4);
        assert!(t.apply(&mut accept));
        let mut d = hdr(7, kind::DATA, 0);
        assert!(t.apply(&mut d));
        assert_eq!(
            (d.family, d.lport, d.rport, d.netns),
            (4, 40000, 80, 4026531840)
        );
        assert_eq!(d.raddr[..4], [10, 0, 0, 2]);
        let mut close = hdr(7, kind::STATE, 4);
        close.new_state = TCP_CLOSE;
        t.apply(&mut close);
        let mut late = hdr(7, kind::DATA, 0);
        t.apply(&mut late);
        assert_eq!((late.family, t.unknown), (0, 1));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_and_recent_sockets_survive() {
        let mut t = SockAddrs::default();
        for sk in 0..(SockAddrs::CAP as u64 * 2) {
            let mut h = hdr(sk, kind::OPEN, 4);
            t.apply(&mut h);
            if sk % 1000 == 0 {
                // An old socket still in use is kept.
                let mut d = hdr(0, kind::DATA, 0);
                t.apply(&mut d);
                assert_eq!(d.family, 4, "socket 0 forgotten at {sk}");
            }
        }
        assert!(t.len() <= SockAddrs::CAP);
        assert_eq!(t.unknown, 0);
    }
}
