//! Reading struct member offsets from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! The eBPF programs walk kernel structures (task → files → fdtable → file → socket → sock)
//! without CO-RE relocations, so the recorder looks the offsets up in the running kernel's
//! BTF and hands them over. Only what that needs is parsed: the header, the string section,
//! and enough of every type record to step over it and to read struct/union members.
//! (aya's BTF parser keeps member access private, and the maintained standalone parser is
//! LGPL, which does not suit a statically linked binary; the format is small and documented
//! in the kernel's Documentation/bpf/btf.rst.)

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use juno_common::Offsets;

const MAGIC: u16 = 0xEB9F;

mod kind {
    pub(super) const INT: u32 = 1;
    pub(super) const PTR: u32 = 2;
    pub(super) const ARRAY: u32 = 3;
    pub(super) const STRUCT: u32 = 4;
    pub(super) const UNION: u32 = 5;
    pub(super) const ENUM: u32 = 6;
    pub(super) const FWD: u32 = 7;
    pub(super) const TYPEDEF: u32 = 8;
    pub(super) const VOLATILE: u32 = 9;
    pub(super) const CONST: u32 = 10;
    pub(super) const RESTRICT: u32 = 11;
    pub(super) const FUNC: u32 = 12;
    pub(super) const FUNC_PROTO: u32 = 13;
    pub(super) const VAR: u32 = 14;
    pub(super) const DATASEC: u32 = 15;
    pub(super) const FLOAT: u32 = 16;
    pub(super) const DECL_TAG: u32 = 17;
    pub(super) const TYPE_TAG: u32 = 18;
    pub(super) const ENUM64: u32 = 19;
}

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    ty: u32,
    /// Bit offset within the enclosing struct.
    bit_offset: u32,
}

#[derive(Debug, Clone)]
enum Ty {
    /// Struct or union.
    Composite {
        name: u32,
        members: Vec<Member>,
    },
    /// Typedef and modifiers: refer to another type.
    Alias(u32),
    Other,
}

/// The parsed BTF: types by id, and the string table.
#[derive(Debug)]
pub struct Btf {
    types: Vec<Ty>,
    strings: Vec<u8>,
    by_name: HashMap<String, u32>,
}

fn u16le(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| anyhow!("BTF truncated"))
}
fn u32le(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| anyhow!("BTF truncated"))
}

impl Btf {
    /// Parses the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Self> {
        let path = "/sys/kernel/btf/vmlinux";
        let data = std::fs::read(path).with_context(|| {
            format!("cannot read {path}: the kernel must be built with CONFIG_DEBUG_INFO_BTF")
        })?;
        Self::parse(&data)
    }

    /// Parses BTF bytes (little-endian, as on x86-64 and arm64).
    pub fn parse(b: &[u8]) -> Result<Self> {
        if u16le(b, 0)? != MAGIC {
            bail!("not BTF data (or not little-endian)");
        }
        let hdr_len = u32le(b, 4)? as usize;
        let type_off = u32le(b, 8)? as usize;
        let type_len = u32le(b, 12)? as usize;
        let str_off = u32le(b, 16)? as usize;
        let str_len = u32le(b, 20)? as usize;
        let types_at = hdr_len
            .checked_add(type_off)
            .ok_or_else(|| anyhow!("bad BTF header"))?;
        let strs_at = hdr_len
            .checked_add(str_off)
            .ok_or_else(|| anyhow!("bad BTF header"))?;
        let tsec = b
            .get(types_at..types_at + type_len)
            .ok_or_else(|| anyhow!("BTF type section out of range"))?;
        let strings = b
            .get(strs_at..strs_at + str_len)
            .ok_or_else(|| anyhow!("BTF string section out of range"))?
            .to_vec();
        // Type id 0 is `void`.
        let mut types = vec![Ty::Other];
        let mut p = 0usize;
        while p + 12 <= tsec.len() {
            let name = u32le(tsec, p)?;
            let info = u32le(tsec, p + 4)?;
            let size_or_type = u32le(tsec, p + 8)?;
            p += 12;
            let vlen = (info & 0xffff) as usize;
            let k = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let ty = match k {
                kind::INT => {
                    p += 4;
                    Ty::Other
                }
                kind::PTR | kind::FWD | kind::FUNC | kind::FLOAT | kind::TYPE_TAG => Ty::Other,
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT => {
                    Ty::Alias(size_or_type)
                }
                kind::ARRAY => {
                    p += 12;
                    Ty::Other
                }
                kind::STRUCT | kind::UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let at = p + i * 12;
                        let off = u32le(tsec, at + 8)?;
                        members.push(Member {
                            name: u32le(tsec, at)?,
                            ty: u32le(tsec, at + 4)?,
                            // With kind_flag, the top 8 bits hold a bitfield size.
                            bit_offset: if kind_flag { off & 0x00ff_ffff } else { off },
                        });
                    }
                    p += vlen * 12;
                    Ty::Composite { name, members }
                }
                kind::ENUM => {
                    p += vlen * 8;
                    Ty::Other
                }
                kind::FUNC_PROTO => {
                    p += vlen * 8;
                    Ty::Other
                }
                kind::VAR | kind::DECL_TAG => {
                    p += 4;
                    Ty::Other
                }
                kind::DATASEC | kind::ENUM64 => {
                    p += vlen * 12;
                    Ty::Other
                }
                other => bail!("unknown BTF kind {other}"),
            };
            types.push(ty);
        }
        let mut btf = Btf {
            types,
            strings,
            by_name: HashMap::new(),
        };
        for (id, t) in btf.types.iter().enumerate() {
            if let Ty::Composite { name, members } = t {
                // Prefer the complete definition of a name (it has members).
                if *name != 0 && !members.is_empty() {
                    let n = btf.string(*name).to_string();
                    btf.by_name.entry(n).or_insert(id as u32);
                }
            }
        }
        Ok(btf)
    }

    fn string(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// Follows typedefs and modifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(Ty::Alias(next)) => id = *next,
                _ => break,
            }
        }
        id
    }

    /// Finds `name` in struct/union `id`, looking inside anonymous members; returns its bit
    /// offset and type.
    fn find_member(&self, id: u32, name: &str, depth: u32) -> Option<(u32, u32)> {
        let Some(Ty::Composite { members, .. }) = self.types.get(self.resolve(id) as usize) else {
            return None;
        };
        for m in members {
            if m.name != 0 && self.string(m.name) == name {
                return Some((m.bit_offset, m.ty));
            }
        }
        if depth < 8 {
            for m in members.iter().filter(|m| m.name == 0) {
                if let Some((off, ty)) = self.find_member(m.ty, name, depth + 1) {
                    return Some((m.bit_offset + off, ty));
                }
            }
        }
        None
    }

    /// Byte offset of a member path, e.g. `("sock", &["__sk_common", "skc_family"])`.
    pub fn offset(&self, struct_name: &str, path: &[&str]) -> Result<u32> {
        let mut id = *self
            .by_name
            .get(struct_name)
            .ok_or_else(|| anyhow!("no struct {struct_name} in BTF"))?;
        let mut bits = 0u32;
        for field in path {
            let (off, ty) = self
                .find_member(id, field, 0)
                .ok_or_else(|| anyhow!("no member {field} in {struct_name} (path {path:?})"))?;
            bits += off;
            id = ty;
        }
        if !bits.is_multiple_of(8) {
            bail!("{struct_name}.{} is a bitfield", path.join("."));
        }
        Ok(bits / 8)
    }

    /// The offsets the eBPF programs need.
    pub fn offsets(&self) -> Result<Offsets> {
        let sk = |p: &[&str]| self.offset("sock", p);
        let skc = |f: &str| self.offset("sock", &["__sk_common", f]);
        Ok(Offsets {
            task_files: self.offset("task_struct", &["files"])?,
            files_fdt: self.offset("files_struct", &["fdt"])?,
            fdt_fd: self.offset("fdtable", &["fd"])?,
            fdt_max_fds: self.offset("fdtable", &["max_fds"])?,
            file_private_data: self.offset("file", &["private_data"])?,
            file_inode: self.offset("file", &["f_inode"])?,
            inode_mode: self.offset("inode", &["i_mode"])?,
            socket_sk: self.offset("socket", &["sk"])?,
            sk_protocol: sk(&["sk_protocol"])?,
            sk_type: sk(&["sk_type"])?,
            skc_family: skc("skc_family")?,
            skc_num: skc("skc_num")?,
            skc_dport: skc("skc_dport")?,
            skc_daddr: skc("skc_daddr")?,
            skc_rcv_saddr: skc("skc_rcv_saddr")?,
            skc_v6_daddr: skc("skc_v6_daddr")?,
            skc_v6_rcv_saddr: skc("skc_v6_rcv_saddr")?,
            skc_net: skc("skc_net")?,
            net_inum: self.offset("net", &["ns", "inum"])?,
            _pad: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob: `struct s { int a; union { int b; struct { int c; int d; }; }; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0s\0a\0b\0c\0d\0int\0".to_vec();
        let name = |s: &str| -> u32 {
            let needle = format!("\0{s}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .map(|p| p as u32 + 1)
                .unwrap()
        };
        let mut t = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, size: u32, extra: &[u32]| {
            t.extend_from_slice(&name.to_le_bytes());
            t.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
            t.extend_from_slice(&size.to_le_bytes());
            for e in extra {
                t.extend_from_slice(&e.to_le_bytes());
            }
        };
        // 1: int
        ty(name("int"), kind::INT, 0, 4, &[32]);
        // 2: anonymous struct { c @0, d @32 }
        ty(0, kind::STRUCT, 2, 8, &[name("c"), 1, 0, name("d"), 1, 32]);
        // 3: anonymous union { b @0, <anon struct 2> @0 }
        ty(0, kind::UNION, 2, 8, &[name("b"), 1, 0, 0, 2, 0]);
        // 4: struct s { a @0, <anon union 3> @64 }
        ty(name("s"), kind::STRUCT, 2, 16, &[name("a"), 1, 0, 0, 3, 64]);
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.push(1);
        b.push(0);
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(t.len() as u32).to_le_bytes());
        b.extend_from_slice(&(t.len() as u32).to_le_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend_from_slice(&t);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn members_inside_anonymous_unions_and_structs() {
        let btf = Btf::parse(&blob()).unwrap();
        assert_eq!(btf.offset("s", &["a"]).unwrap(), 0);
        assert_eq!(btf.offset("s", &["b"]).unwrap(), 8);
        assert_eq!(btf.offset("s", &["c"]).unwrap(), 8);
        assert_eq!(btf.offset("s", &["d"]).unwrap(), 12);
        assert!(btf.offset("s", &["nope"]).is_err());
        assert!(btf.offset("t", &["a"]).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Btf::parse(b"").is_err());
        assert!(
            Btf::parse(&[
                0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f
            ])
            .is_err()
        );
        let mut b = blob();
        b.truncate(b.len() - 20);
        assert!(Btf::parse(&b).is_err());
    }

    /// On the running kernel (every kernel the recorder supports has BTF).
    #[test]
    fn running_kernel_offsets() {
        let btf = Btf::from_sys_fs().unwrap();
        let o = btf.offsets().unwrap();
        // struct sock begins with struct sock_common, which begins with the address pair.
        assert_eq!(o.skc_daddr, 0);
        assert_eq!(o.skc_rcv_saddr, 4);
        assert!(o.skc_family < 64 && o.skc_num < 64 && o.skc_dport < 64);
        assert!(o.sk_protocol > o.skc_family && o.sk_type > o.skc_family);
        assert!(o.task_files > 0 && o.file_private_data > 0 && o.socket_sk > 0);
    }
}
