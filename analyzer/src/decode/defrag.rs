//! IP fragment reassembly (IPv4, and IPv6's fragment header), bounded and counted.
//!
//! Fragments are keyed by interface, addresses, identification, protocol and the tunnel they
//! came in (so a datagram captured on two interfaces is reassembled once per interface). Bytes
//! are copied into one buffer per datagram; where fragments overlap, the first copy wins, as in
//! TCP reassembly, and the overlap is counted (and whether its bytes differed). Limits, all in
//! [`DefragConfig`]: the size of a datagram, its number of fragments, the bytes held across all
//! datagrams (the oldest is dropped to make room), and how long a datagram may wait for its
//! missing fragments, in capture time. Whatever is dropped is counted in [`DefragStats`].
//!
//! The reassembler is one sequential state fed in capture-file order, so what it produces does
//! not depend on how many threads decode.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::Fragment;
use crate::model::{Ts, Tunnel};

/// Bounds of the reassembler.
#[derive(Clone, Copy, Debug)]
pub struct DefragConfig {
    /// Largest datagram payload reassembled (IP's own limit is 65,535 bytes).
    pub max_datagram: usize,
    /// Most fragments one datagram may have.
    pub max_fragments: u32,
    /// Bytes held across all incomplete datagrams.
    pub max_bytes: usize,
    /// A datagram still incomplete this long after its first fragment (capture time) is
    /// dropped. Linux waits 30 s (`ipfrag_time`).
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagram: 65_535,
            max_fragments: 128,
            max_bytes: 32 << 20,
            timeout_ns: 30 * 1_000_000_000,
        }
    }
}

/// What reassembly did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments taken in.
    pub fragments: u64,
    /// Datagrams reassembled whole.
    pub reassembled: u64,
    /// Fragments that overlapped bytes already held (the first copy was kept).
    pub overlaps: u64,
    /// Of those, fragments whose overlapping bytes differed from the first copy.
    pub overlap_conflicts: u64,
    /// Fragments the capture cut short (their datagram cannot be completed).
    pub truncated: u64,
    /// Datagrams dropped incomplete after the timeout.
    pub timed_out: u64,
    /// Datagrams dropped, oldest first, to keep the bytes held within the bound.
    pub evicted: u64,
    /// Datagrams dropped for being larger than the bound, or for more fragments than allowed.
    pub too_big: u64,
    /// Datagrams dropped because their fragments disagreed on where the datagram ends.
    pub inconsistent: u64,
    /// Datagrams still incomplete at the end of the input.
    pub incomplete_at_end: u64,
    /// Fragments of all the dropped or incomplete datagrams.
    pub dropped_fragments: u64,
}

impl DefragStats {
    /// Datagrams dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.timed_out + self.evicted + self.too_big + self.inconsistent + self.incomplete_at_end
    }
}

/// A reassembled datagram: the IP payload of all its fragments, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol of the payload (IPv4 protocol, or the IPv6 fragment header's next header).
    pub proto: u8,
    /// The tunnel the fragments came in.
    pub tunnel: Option<Tunnel>,
    /// Tunnels opened to reach the fragments.
    pub depth: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    iface: u32,
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    depth: u8,
    tunnel: Option<Tunnel>,
}

#[derive(Debug)]
struct Partial {
    first_ts: Ts,
    serial: u64,
    buf: Vec<u8>,
    /// Byte ranges held, sorted and disjoint.
    filled: Vec<(usize, usize)>,
    end: Option<usize>,
    fragments: u32,
}

/// The reassembler: incomplete datagrams and the counters.
#[derive(Debug, Default)]
pub struct Defrag {
    cfg: DefragConfig,
    partial: FxHashMap<Key, Partial>,
    /// Incomplete datagrams by first fragment's time, oldest first.
    age: BTreeMap<(Ts, u64), Key>,
    serial: u64,
    bytes: usize,
    /// Counters.
    pub stats: DefragStats,
}

impl Defrag {
    /// An empty reassembler.
    pub fn new(cfg: DefragConfig) -> Self {
        Defrag {
            cfg,
            ..Default::default()
        }
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Incomplete datagrams now.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    fn drop_key(&mut self, key: &Key) -> Option<Partial> {
        let p = self.partial.remove(key)?;
        self.age.remove(&(p.first_ts, p.serial));
        self.bytes -= p.buf.len();
        self.stats.dropped_fragments += u64::from(p.fragments);
        Some(p)
    }

    /// Takes in a fragment seen on `iface` at `ts`; returns the datagram it completes.
    pub fn add(&mut self, iface: u32, ts: Ts, f: &Fragment<'_>) -> Option<Datagram> {
        self.stats.fragments += 1;
        if f.truncated {
            self.stats.truncated += 1;
        }
        let key = Key {
            iface,
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
            depth: f.depth,
            tunnel: f.tunnel,
        };
        // A datagram that waited too long is dropped before this fragment starts a new one.
        if self
            .partial
            .get(&key)
            .is_some_and(|p| ts.saturating_sub(p.first_ts) > self.cfg.timeout_ns)
        {
            self.drop_key(&key);
            self.stats.timed_out += 1;
        }
        let start = f.offset as usize;
        let end = start + f.payload.len();
        if end > self.cfg.max_datagram {
            self.drop_key(&key);
            self.stats.dropped_fragments += 1;
            self.stats.too_big += 1;
            return None;
        }
        if !self.partial.contains_key(&key) {
            self.serial += 1;
            self.partial.insert(
                key,
                Partial {
                    first_ts: ts,
                    serial: self.serial,
                    buf: Vec::new(),
                    filled: Vec::new(),
                    end: None,
                    fragments: 0,
                },
            );
            self.age.insert((ts, self.serial), key);
        }
        let p = self.partial.get_mut(&key)?;
        p.fragments += 1;
        let bad_end = match p.end {
            Some(e) => end > e || (!f.more && end != e),
            None => !f.more && p.filled.last().is_some_and(|&(_, last)| last > end),
        };
        if bad_end || p.fragments > self.cfg.max_fragments {
            if bad_end {
                self.stats.inconsistent += 1;
            } else {
                self.stats.too_big += 1;
            }
            self.drop_key(&key);
            return None;
        }
        if !f.more {
            p.end = Some(end);
        }
        if p.buf.len() < end {
            self.bytes += end - p.buf.len();
            p.buf.resize(end, 0);
        }
        let (overlap, conflict) = fill(p, start, f.payload);
        if overlap {
            self.stats.overlaps += 1;
        }
        if conflict {
            self.stats.overlap_conflicts += 1;
        }
        let complete = p.end.is_some_and(|e| p.filled == [(0, e)]);
        if complete {
            let p = self.partial.remove(&key)?;
            self.age.remove(&(p.first_ts, p.serial));
            self.bytes -= p.buf.len();
            self.stats.reassembled += 1;
            return Some(Datagram {
                src: f.src,
                dst: f.dst,
                proto: f.proto,
                tunnel: f.tunnel,
                depth: f.depth,
                payload: p.buf,
            });
        }
        // Room for what this fragment added: the oldest other datagrams go first.
        while self.bytes > self.cfg.max_bytes {
            let Some((_, &old)) = self.age.iter().find(|(_, k)| **k != key) else {
                break;
            };
            self.drop_key(&old);
            self.stats.evicted += 1;
        }
        if self.bytes > self.cfg.max_bytes {
            self.drop_key(&key);
            self.stats.evicted += 1;
        }
        None
    }

    /// Drops the datagrams whose first fragment is older than the timeout at capture time
    /// `now`.
    pub fn sweep(&mut self, now: Ts) {
        while let Some((&(first, _), &key)) = self.age.first_key_value() {
            if now.saturating_sub(first) <= self.cfg.timeout_ns {
                break;
            }
            self.drop_key(&key);
            self.stats.timed_out += 1;
        }
    }

    /// End of input: every datagram still incomplete is counted and dropped.
    pub fn finish(&mut self) {
        let keys: Vec<Key> = self.age.values().copied().collect();
        for k in keys {
            self.drop_key(&k);
            self.stats.incomplete_at_end += 1;
        }
    }
}

/// Copies `data` at `start` into the holes of `p`, keeping bytes already held; returns
/// whether it overlapped held bytes and whether those differed.
fn fill(p: &mut Partial, start: usize, data: &[u8]) -> (bool, bool) {
    let end = start + data.len();
    let (mut overlap, mut conflict) = (false, false);
    let mut pos = start;
    for &(a, b) in &p.filled {
        if b <= pos {
            continue;
        }
        if a >= end {
            break;
        }
        if a > pos {
            p.buf[pos..a].copy_from_slice(&data[pos - start..a - start]);
        }
        let (oa, ob) = (a.max(pos), b.min(end));
        if oa < ob {
            overlap = true;
            conflict |= p.buf[oa..ob] != data[oa - start..ob - start];
        }
        pos = ob.max(pos);
        if pos >= end {
            break;
        }
    }
    if pos < end {
        p.buf[pos..end].copy_from_slice(&data[pos - start..]);
    }
    if start < end {
        // Merge [start, end) into the sorted, disjoint ranges.
        let mut merged = Vec::with_capacity(p.filled.len() + 1);
        let (mut s, mut e) = (start, end);
        let mut placed = false;
        for &(a, b) in &p.filled {
            if b < s {
                merged.push((a, b));
            } else if a > e {
                if !placed {
                    merged.push((s, e));
                    placed = true;
                }
                merged.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        if !placed {
            merged.push((s, e));
        }
        p.filled = merged;
    }
    (overlap, conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(id: u32, offset: u32, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
            id,
            proto: 17,
            offset,
            more,
            payload,
            truncated: false,
            tunnel: None,
            depth: 0,
        }
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let data: Vec<u8> = (0..40u8).collect();
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut d = Defrag::new(DefragConfig::default());
            let parts = [(0, true), (16, true), (32, false)];
            let mut out = None;
            for i in order {
                let (off, more) = parts[i];
                let end = if more { off + 16 } else { 40 };
                out = d.add(0, 1, &frag(7, off as u32, more, &data[off..end]));
            }
            let dg = out.expect("complete");
            assert_eq!(dg.payload, data);
            assert_eq!(dg.proto, 17);
            assert_eq!((d.held_bytes(), d.pending()), (0, 0));
            assert_eq!(d.stats.reassembled, 1);
        }
    }

    #[test]
    fn overlaps_keep_the_first_copy_and_are_counted() {
        let mut d = Defrag::new(DefragConfig::default());
        assert!(
            d.add(0, 1, &frag(1, 0, true, b"aaaaaaaabbbbbbbb"))
                .is_none()
        );
        // Overlaps "bbbbbbbb" with other bytes, then adds the tail.
        let dg = d.add(0, 2, &frag(1, 8, false, b"XXXXXXXXcc")).unwrap();
        assert_eq!(dg.payload, b"aaaaaaaabbbbbbbbcc");
        assert_eq!((d.stats.overlaps, d.stats.overlap_conflicts), (1, 1));
        // An identical duplicate is an overlap without conflict.
        assert!(d.add(0, 3, &frag(2, 0, true, b"01234567")).is_none());
        assert!(d.add(0, 3, &frag(2, 0, true, b"01234567")).is_none());
        assert_eq!((d.stats.overlaps, d.stats.overlap_conflicts), (2, 1));
    }

    #[test]
    fn interfaces_and_ids_keep_datagrams_apart() {
        let mut d = Defrag::new(DefragConfig::default());
        assert!(d.add(0, 1, &frag(1, 0, true, b"11111111")).is_none());
        assert!(d.add(1, 1, &frag(1, 8, false, b"x")).is_none());
        assert!(d.add(0, 1, &frag(2, 8, false, b"y")).is_none());
        assert_eq!(d.pending(), 3);
        assert_eq!(
            d.add(0, 1, &frag(1, 8, false, b"z")).unwrap().payload,
            b"11111111z"
        );
    }

    #[test]
    fn timeout_in_capture_time() {
        let cfg = DefragConfig {
            timeout_ns: 100,
            ..Default::default()
        };
        let mut d = Defrag::new(cfg);
        d.add(0, 1000, &frag(1, 0, true, b"aaaaaaaa"));
        d.add(0, 1050, &frag(2, 0, true, b"bbbbbbbb"));
        d.sweep(1120);
        assert_eq!((d.stats.timed_out, d.pending()), (1, 1));
        // The late tail of datagram 2 comes after its timeout: it starts over, incomplete.
        assert!(d.add(0, 1200, &frag(2, 8, false, b"c")).is_none());
        assert_eq!(d.stats.timed_out, 2);
        d.finish();
        assert_eq!(d.stats.incomplete_at_end, 1);
        assert_eq!(d.stats.dropped_fragments, 3);
        assert_eq!(d.held_bytes(), 0);
    }

    #[test]
    fn bounds_drop_and_count() {
        let cfg = DefragConfig {
            max_datagram: 64,
            max_fragments: 3,
            max_bytes: 40,
            ..Default::default()
        };
        let mut d = Defrag::new(cfg);
        // Beyond the datagram bound.
        assert!(d.add(0, 1, &frag(1, 64, true, b"12345678")).is_none());
        assert_eq!(d.stats.too_big, 1);
        // Too many fragments.
        for i in 0..4 {
            d.add(0, 1, &frag(2, i * 8, true, b"12345678"));
        }
        assert_eq!(d.stats.too_big, 2);
        assert_eq!(d.pending(), 0);
        // The byte bound: the oldest datagram goes.
        d.add(0, 1, &frag(3, 16, true, b"12345678")); // holds 24 bytes
        d.add(0, 2, &frag(4, 16, true, b"12345678")); // 48 > 40: datagram 3 is evicted
        assert_eq!(d.stats.evicted, 1);
        assert_eq!(d.held_bytes(), 24);
        // Disagreeing ends.
        assert!(d.add(0, 3, &frag(5, 8, false, b"12")).is_none());
        assert!(d.add(0, 3, &frag(5, 8, false, b"1")).is_none());
        assert_eq!(d.stats.inconsistent, 1);
        assert!(d.held_bytes() <= 40);
    }
}
