//! Addresses and transports: the vocabulary every stage uses to name a connection's ends.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// An IPv4 address as a dotted quad (as `Ipv4Addr`'s `Display` writes it, without
/// `core::fmt`), piece by piece into `push`: for the writers' text and byte buffers and for
/// DNS answer texts alike.
#[inline]
pub fn ipv4_text(a: std::net::Ipv4Addr, mut push: impl FnMut(&str)) {
    let mut b = itoa::Buffer::new();
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            push(".");
        }
        push(b.format(o));
    }
}

/// IP address and port, compact and hashable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IPv6 address, or IPv4-mapped (`::ffff:a.b.c.d`).
    pub addr: [u8; 16],
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// From an address and port.
    pub fn new(ip: IpAddr, port: u16) -> Self {
        let addr = match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        Endpoint { addr, port }
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip() {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    /// Lower-case name, as Zeek writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}
