//! Go programs' `crypto/tls`, where the Go TLS plaintext uprobes go.
//!
//! Go links its TLS into each program, so a program's binary is probed like a library:
//! `crypto/tls.(*Conn).Write` (at its entry, where the plaintext is) and
//! `crypto/tls.(*Conn).Read` (entry and return), found in its symbol table. Go moves a
//! goroutine's stack when it grows, so a uretprobe (which replaces the return address on the
//! stack) would break the program: `Read`'s return is probed at every `RET` instruction of the
//! function instead, found by decoding its machine code (iced-x86). A function
//! whose code does not decode cleanly is not probed: a breakpoint placed inside an
//! instruction would corrupt the program.
//!
//! The programs read Go's register calling convention (Go 1.17 and later on amd64: the
//! receiver in RAX, a slice's pointer and length in RBX and RCX, the first result in RAX; the
//! running goroutine in R14). Only Go 1.18 and later are probed: their build information says
//! their version; older binaries' does not in the same form.
//!
//! The socket under a `*tls.Conn` is read from the conn it wraps when that is a
//! `*net.TCPConn`: the program's itab for `*net.TCPConn` as a `net.Conn` (a symbol) is how
//! the kernel side tells. In a position-independent binary that address moves with each
//! process; [`GoTls::itab_in`] gives it for a process from its memory map.

use std::fs::File;
use std::path::Path;

use object::read::{Object, ObjectSection, ObjectSegment, ObjectSymbol, ReadCache};

/// The functions probed, by their symbol names (the same in every Go version since 1.0).
pub const GO_WRITE: &str = "crypto/tls.(*Conn).Write";
pub const GO_READ: &str = "crypto/tls.(*Conn).Read";
/// The itab of `*net.TCPConn` as a `net.Conn`: its name before Go 1.20, and since.
const ITAB_NAMES: [&str; 2] = [
    "go.itab.*net.TCPConn,net.Conn",
    "go:itab.*net.TCPConn,net.Conn",
];
/// Functions larger than this are not decoded (both are a few hundred bytes).
const MAX_FUNC_BYTES: u64 = 1 << 20;

/// A probe-able function: file offsets of its entry and of each of its `RET`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoFunc {
    pub entry: u64,
    pub returns: Vec<u64>,
}

/// What the probes need from a Go program's binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoTls {
    /// `go1.N...` from the build information.
    pub version: String,
    /// `Write` is probed at its entry only (its plaintext is recorded there), so only its
    /// entry's file offset.
    pub write: u64,
    pub read: GoFunc,
    /// The virtual address of the `*net.TCPConn` itab (None: the program has none, so its
    /// TLS never runs over package net's TCP connections).
    pub itab: Option<u64>,
    /// Position-independent: the itab's address moves with the load address.
    pub pie: bool,
    /// The virtual address of the first loadable segment, page aligned (for the load bias).
    pub base: u64,
}

impl GoTls {
    /// The itab's address in a process whose memory map (`/proc/PID/maps` text) maps this
    /// binary, file inode `ino`; `None` when the map does not show it.
    pub fn itab_in(&self, maps: &str, ino: u64) -> Option<u64> {
        let itab = self.itab?;
        if !self.pie {
            return Some(itab);
        }
        for line in maps.lines() {
            // address perms offset dev inode path
            let mut f = line.split_ascii_whitespace();
            let (Some(range), _, Some(offset), _, Some(inode)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            if inode.parse::<u64>().ok() != Some(ino) || u64::from_str_radix(offset, 16) != Ok(0) {
                continue;
            }
            let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
            return start.checked_sub(self.base)?.checked_add(itab);
        }
        None
    }
}

/// Why a binary is not probed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotProbed {
    #[error("not a Go program")]
    NotGo,
    #[error("a Go program without crypto/tls")]
    NoTls,
    #[error("{0}: Go 1.18 or later is probed")]
    OldGo(String),
    #[error("not an x86-64 ELF file")]
    NotAmd64,
    #[error("{0}")]
    Bad(String),
}

/// Reads a Go program's binary: `Err(NotProbed::NotGo)` for anything else.
pub fn inspect(path: &Path) -> Result<GoTls, NotProbed> {
    let file = File::open(path).map_err(|e| NotProbed::Bad(e.to_string()))?;
    let cache = ReadCache::new(file);
    let obj = object::File::parse(&cache).map_err(|_| NotProbed::NotGo)?;
    if obj.section_by_name(".gopclntab").is_none() && obj.section_by_name(".go.buildinfo").is_none()
    {
        return Err(NotProbed::NotGo);
    }
    if obj.architecture() != object::Architecture::X86_64 {
        return Err(NotProbed::NotAmd64);
    }
    let version = obj
        .section_by_name(".go.buildinfo")
        .and_then(|s| s.data().ok())
        .and_then(build_version)
        .ok_or_else(|| NotProbed::OldGo("no build version".into()))?;
    if !at_least_1_18(&version) {
        return Err(NotProbed::OldGo(version));
    }
    let mut write = None;
    let mut read = None;
    let mut itab = None;
    for sym in obj.symbols() {
        let Ok(name) = sym.name() else { continue };
        if name == GO_WRITE {
            write = Some((sym.address(), sym.size()));
        } else if name == GO_READ {
            read = Some((sym.address(), sym.size()));
        } else if ITAB_NAMES.contains(&name) {
            itab = Some(sym.address());
        }
    }
    let (Some(write), Some(read)) = (write, read) else {
        return Err(NotProbed::NoTls);
    };
    let base = obj
        .segments()
        .map(|s| s.address() & !0xfff)
        .min()
        .unwrap_or(0);
    Ok(GoTls {
        version,
        write: func(&obj, write)?.entry,
        read: func(&obj, read)?,
        itab,
        pie: obj.kind() == object::ObjectKind::Dynamic,
        base,
    })
}

/// The entry and `RET` file offsets of the function at `addr`, `size` bytes.
fn func<'d, R: object::ReadRef<'d>>(
    obj: &object::File<'d, R>,
    (addr, size): (u64, u64),
) -> Result<GoFunc, NotProbed> {
    if size == 0 || size > MAX_FUNC_BYTES {
        return Err(NotProbed::Bad(format!(
            "function at {addr:#x}: size {size}"
        )));
    }
    let sec = obj
        .sections()
        .find(|s| s.address() <= addr && addr + size <= s.address() + s.size())
        .ok_or_else(|| NotProbed::Bad(format!("function at {addr:#x} in no section")))?;
    let (sec_off, _) = sec
        .file_range()
        .ok_or_else(|| NotProbed::Bad("code section not in the file".into()))?;
    let code = sec
        .data_range(addr, size)
        .ok()
        .flatten()
        .ok_or_else(|| NotProbed::Bad(format!("function at {addr:#x} unreadable")))?;
    let to_file = |a: u64| a - sec.address() + sec_off;
    let returns = returns(code, addr)
        .map_err(|at| NotProbed::Bad(format!("undecodable instruction at {at:#x}")))?;
    if returns.is_empty() {
        return Err(NotProbed::Bad(format!("function at {addr:#x} has no RET")));
    }
    Ok(GoFunc {
        entry: to_file(addr),
        returns: returns.into_iter().map(to_file).collect(),
    })
}

/// Addresses of the `RET` instructions in `code` (at address `ip`), decoding every
/// instruction from the start; `Err(address)` at the first that does not decode.
pub fn returns(code: &[u8], ip: u64) -> Result<Vec<u64>, u64> {
    use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic};
    let mut d = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut out = Vec::new();
    while d.can_decode() {
        d.decode_out(&mut ins);
        if ins.is_invalid() {
            return Err(ins.ip());
        }
        if ins.mnemonic() == Mnemonic::Ret {
            out.push(ins.ip());
        }
    }
    Ok(out)
}

/// The Go version in a `.go.buildinfo` section (Go 1.18 and later write it inline: a
/// 32-byte header whose byte 15 has bit 1 set, then the version as a varint-prefixed string).
pub fn build_version(data: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    if data.len() < 33 || !data.starts_with(MAGIC) || data[15] & 2 == 0 {
        return None;
    }
    let rest = &data[32..];
    let (len, n) = uvarint(rest)?;
    let len = usize::try_from(len).ok()?;
    let v = rest.get(n..n.checked_add(len)?)?;
    let v = std::str::from_utf8(v).ok()?;
    v.starts_with("go").then(|| v.to_string())
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

/// Whether `go1.N[...]` is Go 1.18 or later (`devel` builds count as recent).
fn at_least_1_18(v: &str) -> bool {
    if v.starts_with("devel") {
        return true;
    }
    let Some(rest) = v.strip_prefix("go1.") else {
        return false;
    };
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    minor.parse::<u32>().is_ok_and(|m| m >= 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_are_found_at_instruction_boundaries_only() {
        // mov eax, 0xc3c3c3c3 (C3 bytes inside an immediate); ret; xor eax, eax; ret 8 (not a
        // plain RET: it is one, with a stack adjustment Go never emits, still a return).
        let code = [
            0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0x31, 0xc0, 0xc2, 0x08, 0x00,
        ];
        assert_eq!(returns(&code, 0x1000), Ok(vec![0x1005, 0x1008]));
        // A truncated instruction is not decoded: the function is refused.
        assert_eq!(returns(&[0x90, 0xb8, 0x01], 0x2000), Err(0x2001));
    }

    #[test]
    fn build_version_and_the_versions_probed() {
        let mut d = b"\xff Go buildinf:".to_vec();
        d.push(8); // pointer size
        d.push(2); // flags: the strings are inline
        d.resize(32, 0);
        d.push(8);
        d.extend_from_slice(b"go1.19.8");
        d.push(0);
        assert_eq!(build_version(&d).as_deref(), Some("go1.19.8"));
        d[15] = 0;
        assert_eq!(build_version(&d), None, "the pre-1.18 layout");
        assert!(at_least_1_18("go1.18"));
        assert!(at_least_1_18("go1.22.3"));
        assert!(!at_least_1_18("go1.17.13"));
        assert!(!at_least_1_18("go1.9"));
        assert!(!at_least_1_18("gccgo"));
    }

    #[test]
    fn the_itab_moves_with_a_position_independent_binary() {
        let t = GoTls {
            version: "go1.19".into(),
            write: 0,
            read: GoFunc {
                entry: 0,
                returns: vec![1],
            },
            itab: Some(0x2a_0000),
            pie: true,
            base: 0,
        };
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 42 /app/server
55d0c0001000-55d0c0200000 r-xp 00001000 08:01 42 /app/server
7f10a000-7f10b000 r--p 00000000 08:01 43 /lib/other
";
        assert_eq!(t.itab_in(maps, 42), Some(0x55d0c0000000 + 0x2a_0000));
        assert_eq!(t.itab_in(maps, 44), None);
        let fixed = GoTls { pie: false, ..t };
        assert_eq!(fixed.itab_in("", 42), Some(0x2a_0000));
    }
}
