//! TLV fields (metadata and file info).
//!
//! `tag u16 | len u16 | value[len]`, little-endian, no padding. Strings are UTF-8 (decoded
//! lossily), addresses are 4 or 16 bytes, integers are 4 or 8 bytes. A tag may repeat for lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

pub(super) struct TlvWriter<'o> {
    pub(super) out: &'o mut Vec<u8>,
}

impl TlvWriter<'_> {
    pub(super) fn bytes(&mut self, tag: u16, v: &[u8]) {
        let len = v.len().min(usize::from(u16::MAX));
        self.out.extend_from_slice(&tag.to_le_bytes());
        self.out.extend_from_slice(&(len as u16).to_le_bytes());
        self.out.extend_from_slice(&v[..len]);
    }
    pub(super) fn str(&mut self, tag: u16, v: &str) {
        // Cut at a char boundary so that a long string stays valid UTF-8.
        let mut end = v.len().min(usize::from(u16::MAX));
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes(tag, &v.as_bytes()[..end]);
    }
    pub(super) fn opt_str(&mut self, tag: u16, v: Option<&str>) {
        if let Some(v) = v {
            self.str(tag, v);
        }
    }
    pub(super) fn u32(&mut self, tag: u16, v: u32) {
        self.bytes(tag, &v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, tag: u16, v: u64) {
        self.bytes(tag, &v.to_le_bytes());
    }
    pub(super) fn opt_u32(&mut self, tag: u16, v: Option<u32>) {
        if let Some(v) = v {
            self.u32(tag, v);
        }
    }
    pub(super) fn opt_u64(&mut self, tag: u16, v: Option<u64>) {
        if let Some(v) = v {
            self.u64(tag, v);
        }
    }
    pub(super) fn ip(&mut self, tag: u16, ip: &IpAddr) {
        match ip {
            IpAddr::V4(a) => self.bytes(tag, &a.octets()),
            IpAddr::V6(a) => self.bytes(tag, &a.octets()),
        }
    }
    pub(super) fn pair(&mut self, tag: u16, k: &str, v: &str) {
        let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
        kv.extend_from_slice(k.as_bytes());
        kv.push(0);
        kv.extend_from_slice(v.as_bytes());
        self.bytes(tag, &kv);
    }
}

/// Iterates over TLV entries; stops (with an error) at the first malformed one.
pub(super) fn tlvs(mut var: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), RecordError>> {
    std::iter::from_fn(move || {
        if var.is_empty() {
            return None;
        }
        if var.len() < 4 {
            let len = var.len();
            var = &[];
            return Some(Err(RecordError::Truncated {
                needed: 4,
                have: len,
            }));
        }
        let tag = le16(&var[0..2]);
        let len = usize::from(le16(&var[2..4]));
        if var.len() < 4 + len {
            var = &[];
            return Some(Err(RecordError::BadLength { what: "tlv", len }));
        }
        let v = &var[4..4 + len];
        var = &var[4 + len..];
        Some(Ok((tag, v)))
    })
}

pub(super) fn tlv_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}
pub(super) fn tlv_u32(v: &[u8]) -> Option<u32> {
    (v.len() == 4).then(|| le32(v))
}
pub(super) fn tlv_u64(v: &[u8]) -> Option<u64> {
    (v.len() == 8).then(|| le64(v))
}
pub(super) fn tlv_ip(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}
pub(super) fn tlv_pair(v: &[u8]) -> (String, String) {
    match v.iter().position(|&b| b == 0) {
        Some(i) => (tlv_str(&v[..i]), tlv_str(&v[i + 1..])),
        None => (tlv_str(v), String::new()),
    }
}

/// Entity types whose fields are TLV-encoded.
pub(super) trait TlvEntity: Default {
    fn write(&self, w: &mut TlvWriter<'_>);
    /// Applies one field; returns false for a tag (or value shape) this reader does not know.
    fn apply(&mut self, tag: u16, v: &[u8]) -> bool;

    fn read(var: &[u8], stats: &mut DecodeStats) -> Result<Self, RecordError> {
        let mut e = Self::default();
        for item in tlvs(var) {
            let (tag, v) = item?;
            if !e.apply(tag, v) {
                stats.unknown_tags += 1;
            }
        }
        Ok(e)
    }
}

pub(super) mod tag {
    pub(in crate::record) const NAME: u16 = 1;
    pub(in crate::record) const NAMESPACE: u16 = 2;
    pub(in crate::record) const UID: u16 = 3;
    pub(in crate::record) const NODE: u16 = 4;
    pub(in crate::record) const IP: u16 = 5;
    pub(in crate::record) const LABEL: u16 = 6;
    pub(in crate::record) const WORKLOAD_KIND: u16 = 7;
    pub(in crate::record) const WORKLOAD_NAME: u16 = 8;
    pub(in crate::record) const HOST_NETWORK: u16 = 9;
    pub(in crate::record) const NETNS: u16 = 10;
    pub(in crate::record) const IFINDEX: u16 = 11;
    pub(in crate::record) const PCAPNG_ID: u16 = 12;
    pub(in crate::record) const PEER_IFINDEX: u16 = 13;
    pub(in crate::record) const PEER_NETNS: u16 = 14;
    pub(in crate::record) const POD_UID: u16 = 15;
    pub(in crate::record) const CONTAINER_ID: u16 = 16;
    pub(in crate::record) const RUNTIME: u16 = 17;
    pub(in crate::record) const CGROUP_ID: u16 = 18;
    pub(in crate::record) const CGROUP_PATH: u16 = 19;
    pub(in crate::record) const PORT: u16 = 20;
    pub(in crate::record) const KERNEL: u16 = 21;
    pub(in crate::record) const BOOT_ID: u16 = 22;
    pub(in crate::record) const HOSTNAME: u16 = 23;
    pub(in crate::record) const RECORDER: u16 = 24;
    pub(in crate::record) const BOOT_TIME: u16 = 25;
    pub(in crate::record) const FRAME_SIZE: u16 = 26;
    pub(in crate::record) const PREVIOUS: u16 = 27;
    pub(in crate::record) const REDACTION: u16 = 28;
}
