//! Network interfaces: listing them, following them as they appear and disappear (rtnetlink
//! notifications, not polling), and choosing which to capture on.
//!
//! By default the recorder captures on every veth of its network namespace — on a
//! Kubernetes node, the host side of each pod's veth pair. `--iface REGEX` chooses by name
//! instead (any kind of interface).

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use regex::Regex;

/// What the recorder knows of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Interface index.
    pub ifindex: u32,
    /// Name.
    pub name: String,
    /// Link kind (`veth`, `bridge`, ...), if the kernel says.
    pub kind: Option<String>,
    /// Peer interface index (veth), in the peer's namespace.
    pub peer_ifindex: Option<u32>,
    /// Namespace id of the peer (as the recorder's namespace numbers it), for veths.
    pub peer_netnsid: Option<i32>,
}

/// Who owns a captured interface, as a metadata source (Kubernetes) or the interface's peer
/// namespace tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfaceOwner {
    /// The Interface Description (`if_description`), e.g. `pod default/web-0`.
    pub description: String,
    /// The pod's uid, for the interface's metadata (`InterfaceMeta::pod_uid`).
    pub pod_uid: Option<String>,
    /// Inode of the peer's network namespace (`InterfaceMeta::peer_netns`), for a veth.
    pub peer_netns: Option<u32>,
    /// The peer interface's addresses (`InterfaceMeta::addrs`): the pod's own, for a veth.
    pub addrs: Vec<IpAddr>,
}

/// A change of the interface set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Appeared, or changed.
    Up(Iface),
    /// Gone.
    Down(u32),
}

/// Which interfaces to capture on.
#[derive(Clone, Debug)]
pub enum Selector {
    /// Every veth.
    Veths,
    /// Names matching a regular expression.
    Name(Regex),
}

impl Selector {
    /// Whether to capture on `i`.
    pub fn wants(&self, i: &Iface) -> bool {
        match self {
            Selector::Veths => i.kind.as_deref() == Some("veth"),
            Selector::Name(re) => re.is_match(&i.name),
        }
    }
}

fn iface_of(m: &LinkMessage) -> Option<Iface> {
    let mut i = Iface {
        ifindex: m.header.index,
        name: String::new(),
        kind: None,
        peer_ifindex: None,
        peer_netnsid: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => i.name = n.clone(),
            LinkAttribute::Link(p) => i.peer_ifindex = Some(*p),
            LinkAttribute::LinkNetNsId(n) => i.peer_netnsid = Some(*n),
            LinkAttribute::LinkInfo(infos) => {
                for li in infos {
                    if let LinkInfo::Kind(k) = li {
                        i.kind = Some(match k {
                            InfoKind::Veth => "veth".to_string(),
                            other => format!("{other:?}").to_lowercase(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    (!i.name.is_empty()).then_some(i)
}

/// Walks the netlink messages of one datagram, handing each route-family message to `f`.
/// Returns whether the dump ended (`NLMSG_DONE`); an error message or bytes that are not a
/// message are an error.
fn each_message(buf: &[u8], mut f: impl FnMut(RouteNetlinkMessage)) -> Result<bool> {
    let mut off = 0;
    let mut done = false;
    while off < buf.len() {
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..])
            .context("bad netlink message")?;
        let len = msg.header.length as usize;
        match msg.payload {
            NetlinkPayload::InnerMessage(m) => f(m),
            NetlinkPayload::Done(_) => done = true,
            NetlinkPayload::Error(e) => bail!("netlink error: {e:?}"),
            _ => {}
        }
        if len == 0 {
            break;
        }
        off += len;
    }
    Ok(done)
}

fn parse_messages(buf: &[u8], out: &mut Vec<Change>) -> Result<bool> {
    each_message(buf, |m| match m {
        RouteNetlinkMessage::NewLink(m) => {
            if let Some(i) = iface_of(&m) {
                out.push(Change::Up(i));
            }
        }
        RouteNetlinkMessage::DelLink(m) => out.push(Change::Down(m.header.index)),
        _ => {}
    })
}

/// Sends one dump request and feeds each reply datagram to `parse` until it reports the end.
fn dump(req: RouteNetlinkMessage, parse: impl FnMut(&[u8]) -> Result<bool>) -> Result<()> {
    request(req, NLM_F_REQUEST | NLM_F_DUMP, false, parse)
}

/// A dump with strict checking (`NETLINK_GET_STRICT_CHK`): the kernel honours the
/// request's filters, such as a target namespace, and rejects what it does not know.
fn dump_strict(req: RouteNetlinkMessage, parse: impl FnMut(&[u8]) -> Result<bool>) -> Result<()> {
    request(req, NLM_F_REQUEST | NLM_F_DUMP, true, parse)
}

/// Sends one request and feeds each reply datagram to `parse` until it reports the end.
fn request(
    req: RouteNetlinkMessage,
    flags: u16,
    strict: bool,
    mut parse: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<()> {
    let mut sock = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
    sock.bind_auto().context("netlink bind")?;
    if strict {
        sock.set_netlink_get_strict_chk(true)
            .context("netlink strict checking")?;
    }
    sock.connect(&SocketAddr::new(0, 0))
        .context("netlink connect")?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::from(req));
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    sock.send(&buf, 0).context("netlink send")?;
    let mut rbuf = vec![0u8; 1 << 16];
    loop {
        let n = sock.recv(&mut &mut rbuf[..], 0).context("netlink recv")?;
        if parse(&rbuf[..n])? || n == 0 {
            return Ok(());
        }
    }
}

/// Host routes (a single address, `/32` or `/128`, unicast) out of an interface, from
/// netlink route messages: `(ifindex, address)`. Returns whether the dump ended.
fn parse_routes(buf: &[u8], out: &mut Vec<(u32, IpAddr)>) -> Result<bool> {
    each_message(buf, |m| {
        if let RouteNetlinkMessage::NewRoute(m) = m
            && let Some(r) = host_route(&m)
        {
            out.push(r);
        }
    })
}

fn host_route(m: &RouteMessage) -> Option<(u32, IpAddr)> {
    if m.header.kind != RouteType::Unicast {
        return None;
    }
    let mut dst = None;
    let mut oif = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some(IpAddr::V4(*a)),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some(IpAddr::V6(*a)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    let dst = dst?;
    let full = if dst.is_ipv4() { 32 } else { 128 };
    (m.header.destination_prefix_length == full).then_some((oif?, dst))
}

/// The host routes of this network namespace, `(ifindex, address)`: most CNI plugins
/// (Calico, Cilium in legacy host routing, kindnet and the ptp plugin, the AWS VPC CNI) route
/// each pod's address to the host side of its veth this way, which is how the Kubernetes
/// source tells a veth's pod. Bridge-based plugins (flannel, bridge) route a whole subnet to
/// the bridge instead: no veth is named by this.
pub fn host_routes() -> Result<Vec<(u32, IpAddr)>> {
    let mut out = Vec::new();
    dump(
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        |b| parse_routes(b, &mut out),
    )?;
    Ok(out)
}

/// Addresses of interface `ifindex` from netlink address messages, into `out`. Returns
/// whether the dump ended.
fn parse_addrs(buf: &[u8], ifindex: u32, out: &mut Vec<IpAddr>) -> Result<bool> {
    each_message(buf, |m| {
        let RouteNetlinkMessage::NewAddress(m) = m else {
            return;
        };
        if m.header.index != ifindex {
            return;
        }
        // IFA_ADDRESS is the interface's own address, except on point-to-point links, where
        // IFA_LOCAL is (and IFA_ADDRESS the far end).
        let local = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let addr = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        if let Some(ip) = local.or(addr)
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    })
}

/// The addresses of interface `ifindex` in the network namespace this one numbers `nsid`:
/// for a veth, its peer's (`Iface::peer_netnsid`, `Iface::peer_ifindex`), which in a pod
/// are the pod's addresses. Asked without entering that namespace (`IFA_TARGET_NETNSID`,
/// Linux 4.20); needs CAP_NET_ADMIN, which attaching tc programs needs anyway.
pub fn peer_addrs(nsid: i32, ifindex: u32) -> Result<Vec<IpAddr>> {
    let mut m = AddressMessage::default();
    m.header.index = ifindex;
    m.attributes.push(AddressAttribute::TargetNetNsId(nsid));
    let mut out = Vec::new();
    dump_strict(RouteNetlinkMessage::GetAddress(m), |b| {
        parse_addrs(b, ifindex, &mut out)
    })
    .with_context(|| format!("addresses of interface {ifindex} in namespace id {nsid}"))?;
    Ok(out)
}

/// The id this namespace gives the network namespace behind `fd` (an open
/// `/proc/PID/ns/net` or `/run/netns/NAME`), `None` when it gives none: a namespace gets
/// one when a link between the two is made, which is how a veth's peer is named
/// (`Iface::peer_netnsid`).
pub fn nsid_of(fd: std::os::fd::BorrowedFd<'_>) -> Result<Option<i32>> {
    use std::os::fd::AsRawFd;
    let mut m = NsidMessage::default();
    m.attributes.push(NsidAttribute::Fd(fd.as_raw_fd() as u32));
    let mut id = None;
    request(RouteNetlinkMessage::GetNsId(m), NLM_F_REQUEST, false, |b| {
        each_message(b, |m| {
            if let RouteNetlinkMessage::NewNsId(m) = m {
                id = m.attributes.iter().find_map(|a| match a {
                    NsidAttribute::Id(i) if *i >= 0 => Some(*i),
                    _ => None,
                });
            }
        })?;
        // One answer, not a dump.
        Ok(true)
    })?;
    Ok(id)
}

/// Lists the interfaces of this network namespace.
pub fn list() -> Result<Vec<Iface>> {
    let mut changes = Vec::new();
    dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), |b| {
        parse_messages(b, &mut changes)
    })?;
    Ok(changes
        .into_iter()
        .filter_map(|c| match c {
            Change::Up(i) => Some(i),
            Change::Down(_) => None,
        })
        .collect())
}

/// Follows interface changes (RTNLGRP_LINK notifications), sending them to `tx` until the
/// receiver is gone. Runs on its own thread.
pub fn watch(tx: crossbeam_channel::Sender<Change>) -> Result<std::thread::JoinHandle<()>> {
    let mut sock = Socket::new(NETLINK_ROUTE).context("netlink socket")?;
    sock.bind(&SocketAddr::new(0, 1 << (libc::RTNLGRP_LINK - 1)))
        .context("netlink bind (link notifications)")?;
    let h = std::thread::Builder::new()
        .name("juno-netlink".into())
        .spawn(move || {
            let mut rbuf = vec![0u8; 1 << 16];
            loop {
                let n = match sock.recv(&mut &mut rbuf[..], 0) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // ENOBUFS: notifications were lost; the next message still describes a link.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                    Err(_) => return,
                };
                let mut changes = Vec::new();
                if parse_messages(&rbuf[..n], &mut changes).is_err() {
                    continue;
                }
                for c in changes {
                    if tx.send(c).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(h)
}

/// Keeps the interface table and decides attach/detach.
#[derive(Debug)]
pub struct Table {
    selector: Selector,
    /// Interfaces captured on, by index.
    pub captured: BTreeMap<u32, Iface>,
}

/// What to do after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start capturing on it.
    Attach(Iface),
    /// Stop capturing on it.
    Detach(u32),
}

impl Table {
    /// An empty table.
    pub fn new(selector: Selector) -> Self {
        Table {
            selector,
            captured: BTreeMap::new(),
        }
    }

    /// Applies a change; returns what to do.
    pub fn apply(&mut self, c: Change) -> Option<Action> {
        match c {
            Change::Up(i) => {
                let wanted = self.selector.wants(&i);
                match (self.captured.get(&i.ifindex), wanted) {
                    (None, true) => {
                        self.captured.insert(i.ifindex, i.clone());
                        Some(Action::Attach(i))
                    }
                    (Some(old), true) if old.name != i.name => {
                        self.captured.insert(i.ifindex, i);
                        None
                    }
                    (Some(_), false) => {
                        self.captured.remove(&i.ifindex);
                        Some(Action::Detach(i.ifindex))
                    }
                    _ => None,
                }
            }
            Change::Down(idx) => self.captured.remove(&idx).map(|_| Action::Detach(idx)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(idx: u32, name: &str) -> Iface {
        Iface {
            ifindex: idx,
            name: name.into(),
            kind: Some("veth".into()),
            peer_ifindex: Some(2),
            peer_netnsid: Some(0),
        }
    }

    #[test]
    fn veths_attach_and_detach_once() {
        let mut t = Table::new(Selector::Veths);
        assert_eq!(
            t.apply(Change::Up(veth(5, "vethabc"))),
            Some(Action::Attach(veth(5, "vethabc")))
        );
        assert_eq!(
            t.apply(Change::Up(veth(5, "vethabc"))),
            None,
            "repeated notifications"
        );
        let lo = Iface {
            ifindex: 1,
            name: "lo".into(),
            kind: None,
            peer_ifindex: None,
            peer_netnsid: None,
        };
        assert_eq!(t.apply(Change::Up(lo)), None);
        assert_eq!(t.apply(Change::Down(5)), Some(Action::Detach(5)));
        assert_eq!(t.apply(Change::Down(5)), None);
    }

    #[test]
    fn names_by_regex() {
        let mut t = Table::new(Selector::Name(Regex::new("^cali").unwrap()));
        assert!(t.apply(Change::Up(veth(7, "cali123"))).is_some());
        assert!(t.apply(Change::Up(veth(8, "vethxyz"))).is_none());
    }

    #[test]
    fn host_routes_from_route_messages() {
        use netlink_packet_route::AddressFamily;
        let route = |kind, fam, len, dst: &str, oif| {
            let mut m = RouteMessage::default();
            m.header.kind = kind;
            m.header.address_family = fam;
            m.header.destination_prefix_length = len;
            m.attributes.push(RouteAttribute::Destination(
                dst.parse::<IpAddr>().unwrap().into(),
            ));
            m.attributes.push(RouteAttribute::Oif(oif));
            let mut msg = NetlinkMessage::new(
                NetlinkHeader::default(),
                NetlinkPayload::from(RouteNetlinkMessage::NewRoute(m)),
            );
            msg.finalize();
            let mut b = vec![0u8; msg.buffer_len()];
            msg.serialize(&mut b);
            b
        };
        let mut buf = Vec::new();
        // Calico: 10.244.1.7 dev cali1234 scope link; an IPv6 pod route; a subnet route via
        // a bridge and a local address, neither of which names a pod.
        buf.extend(route(
            RouteType::Unicast,
            AddressFamily::Inet,
            32,
            "10.244.1.7",
            12,
        ));
        buf.extend(route(
            RouteType::Unicast,
            AddressFamily::Inet6,
            128,
            "fd00::7",
            12,
        ));
        buf.extend(route(
            RouteType::Unicast,
            AddressFamily::Inet,
            24,
            "10.244.2.0",
            3,
        ));
        buf.extend(route(
            RouteType::Local,
            AddressFamily::Inet,
            32,
            "10.244.1.1",
            3,
        ));
        let mut out = Vec::new();
        assert!(!parse_routes(&buf, &mut out).unwrap());
        assert_eq!(
            out,
            vec![
                (12, "10.244.1.7".parse().unwrap()),
                (12, "fd00::7".parse().unwrap())
            ]
        );
    }

    #[test]
    fn peer_addresses_from_address_messages() {
        let addr = |index, attrs: Vec<AddressAttribute>| {
            let mut m = AddressMessage::default();
            m.header.index = index;
            m.attributes = attrs;
            let mut msg = NetlinkMessage::new(
                NetlinkHeader::default(),
                NetlinkPayload::from(RouteNetlinkMessage::NewAddress(m)),
            );
            msg.finalize();
            let mut b = vec![0u8; msg.buffer_len()];
            msg.serialize(&mut b);
            b
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut buf = Vec::new();
        // The pod's eth0 (index 2): an IPv4 address, the same again (a secondary with the
        // same local), a point-to-point one whose IFA_ADDRESS is the far end, and IPv6.
        buf.extend(addr(2, vec![AddressAttribute::Address(ip("10.246.0.2"))]));
        buf.extend(addr(
            2,
            vec![
                AddressAttribute::Address(ip("10.246.0.2")),
                AddressAttribute::Local(ip("10.246.0.2")),
            ],
        ));
        buf.extend(addr(
            2,
            vec![
                AddressAttribute::Address(ip("169.254.1.1")),
                AddressAttribute::Local(ip("10.246.0.9")),
            ],
        ));
        buf.extend(addr(2, vec![AddressAttribute::Address(ip("fd00::2"))]));
        // Its loopback's (index 1), which the dump also returns.
        buf.extend(addr(1, vec![AddressAttribute::Address(ip("127.0.0.1"))]));
        let mut out = Vec::new();
        assert!(!parse_addrs(&buf, 2, &mut out).unwrap());
        assert_eq!(out, vec![ip("10.246.0.2"), ip("10.246.0.9"), ip("fd00::2")]);
        // Garbage is an error, not a panic.
        assert!(parse_addrs(&[0xff; 7], 2, &mut out).is_err());
    }

    /// On this machine: the route dump works without privileges.
    #[test]
    fn dumps_this_namespace_routes() {
        host_routes().unwrap();
    }

    /// On this machine: the loopback interface is listed.
    #[test]
    fn lists_this_namespace() {
        let l = list().unwrap();
        assert!(l.iter().any(|i| i.name == "lo" && i.ifindex == 1), "{l:?}");
    }
}
