//! HPACK header blocks (RFC 7541), one direction of an HTTP/2 connection.
//!
//! Every representation is followed; literal values of secret fields are overwritten:
//! - raw literal: the bytes become `*`;
//! - Huffman-coded literal: its H bit is cleared and its bytes become `*` (a raw literal of
//!   the same encoded length).
//!
//! The values of URL fields (`:path`, `referer`, `location`, `content-location`) keep their
//! form: a raw literal has the secret parameters' values overwritten in place; a
//! Huffman-coded one that is whole in the chunk is decoded, its secret parameter values
//! replaced by `*` and re-encoded into exactly the same number of bytes (fewer `*` than
//! characters: a `*` takes 8 bits); one split across chunks is overwritten from the secret
//! parameter's value to its end.
//!
//! The dynamic table is mirrored as (name class, name length, entry size) so that a literal
//! whose name is indexed is classified right. A redacted value decodes shorter than the
//! original (or as long): a decoder that inserts it holds the same entries as the encoder,
//! newest first, plus perhaps older ones the encoder has evicted — which the encoder never
//! refers to — so every later indexed reference still resolves to the right entry.
//!
//! When the table is not known (the direction was found mid-connection, a gap hit a header
//! block, a table larger than [`MAX_TABLE`]) the values of fields whose name is an unknown
//! dynamic entry are overwritten whole.

use std::collections::VecDeque;

use crate::huffman::{self, BitWriter, Decoder};
use crate::policy::{Class, MAX_NAME};
use crate::query::{Query, Seen};
use crate::{Ctx, Rule};

/// The largest dynamic table mirrored; a larger one makes the table unknown.
pub const MAX_TABLE: u32 = 65_536;
const DEFAULT_TABLE: u32 = 4_096;
/// String lengths above this are malformed (no frame is larger).
const MAX_STRING: u64 = 1 << 24;

/// RFC 7541 Appendix A.
const STATIC_NAMES: [&[u8]; 61] = [
    b":authority",
    b":method",
    b":method",
    b":path",
    b":path",
    b":scheme",
    b":scheme",
    b":status",
    b":status",
    b":status",
    b":status",
    b":status",
    b":status",
    b":status",
    b"accept-charset",
    b"accept-encoding",
    b"accept-language",
    b"accept-ranges",
    b"accept",
    b"access-control-allow-origin",
    b"age",
    b"allow",
    b"authorization",
    b"cache-control",
    b"content-disposition",
    b"content-encoding",
    b"content-language",
    b"content-length",
    b"content-location",
    b"content-range",
    b"content-type",
    b"cookie",
    b"date",
    b"etag",
    b"expect",
    b"expires",
    b"from",
    b"host",
    b"if-match",
    b"if-modified-since",
    b"if-none-match",
    b"if-range",
    b"if-unmodified-since",
    b"last-modified",
    b"link",
    b"location",
    b"max-forwards",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"range",
    b"referer",
    b"refresh",
    b"retry-after",
    b"server",
    b"set-cookie",
    b"strict-transport-security",
    b"transfer-encoding",
    b"user-agent",
    b"vary",
    b"via",
    b"www-authenticate",
];

/// A mirrored dynamic table entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    class: Class,
    name_len: u32,
    size: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Literal with incremental indexing: inserted into the table.
    Inc,
    /// Literal without indexing or never indexed.
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IntFor {
    Indexed,
    Name,
    SizeUpdate,
    StrLen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// The first byte of a representation.
    Start,
    /// Continuation bytes of an integer.
    Int { what: IntFor, val: u64, shift: u32 },
    /// The first byte of a string (H bit, length).
    StrHead,
    /// String bytes.
    Str { left: u64 },
}

/// What a value is, once its name is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Plain,
    Secret,
    Url,
}

/// One direction's HPACK state.
#[derive(Clone, Debug)]
pub(crate) struct Hpack {
    st: St,
    table: VecDeque<Entry>,
    size: u32,
    max: u32,
    /// The table's content is not (all) known.
    pub(crate) lost: bool,
    kind: Kind,
    /// Reading the name string (else the value).
    in_name: bool,
    class: Class,
    /// The name is an unknown dynamic entry.
    unknown: bool,
    name_len: u32,
    value: Value,
    huff: bool,
    /// The current string started in the chunk being read.
    started_here: bool,
    dec: Decoder,
    count: u32,
    name: [u8; MAX_NAME],
    nlen: usize,
    q: Query,
    /// Huffman URL split across chunks: overwriting from the secret value to its end.
    ow: bool,
    /// Ones written at the end of the previous chunk: a symbol to complete.
    ow_ones: u8,
}

impl Hpack {
    pub(crate) fn new(lost: bool) -> Self {
        Hpack {
            st: St::Start,
            table: VecDeque::new(),
            size: 0,
            max: DEFAULT_TABLE,
            lost,
            kind: Kind::Plain,
            in_name: false,
            class: Class::Plain,
            unknown: false,
            name_len: 0,
            value: Value::Plain,
            huff: false,
            started_here: false,
            dec: Decoder::default(),
            count: 0,
            name: [0; MAX_NAME],
            nlen: 0,
            q: Query::default(),
            ow: false,
            ow_ones: 0,
        }
    }

    /// Whether a representation is half read.
    pub(crate) fn mid_representation(&self) -> bool {
        self.st != St::Start
    }

    /// The table can no longer be trusted (a gap, a malformed block): forget the
    /// representation in progress.
    pub(crate) fn lose(&mut self, ctx: &mut Ctx<'_>) {
        if !self.lost {
            ctx.counts.hpack_context_lost += 1;
        }
        self.lost = true;
        self.st = St::Start;
    }

    fn evict(&mut self) {
        while self.size > self.max {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, e: Entry) {
        if e.size > self.max {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.size += e.size;
        self.table.push_front(e);
        self.evict();
    }

    /// The name of index `i` (1-based): class, length; `None` if unknown.
    fn name_of(&self, i: u64, ctx: &Ctx<'_>) -> Option<(Class, u32)> {
        if (1..=61).contains(&i) {
            let n = STATIC_NAMES[i as usize - 1];
            return Some((ctx.policy.header_class(n), n.len() as u32));
        }
        let d = usize::try_from(i - 62).ok()?;
        self.table.get(d).map(|e| (e.class, e.name_len))
    }

    fn int_done(&mut self, what: IntFor, v: u64, here: usize, buf_len: usize, ctx: &mut Ctx<'_>) {
        match what {
            IntFor::Indexed => {
                if v == 0 {
                    self.lose(ctx);
                }
                self.st = St::Start;
            }
            IntFor::Name => {
                self.unknown = false;
                if v == 0 {
                    self.in_name = true;
                    self.nlen = 0;
                } else {
                    self.in_name = false;
                    match self.name_of(v, ctx) {
                        Some((c, l)) => {
                            self.class = c;
                            self.name_len = l;
                        }
                        None => {
                            if !self.lost {
                                // A reference beyond a table we know whole: malformed.
                                self.lose(ctx);
                            }
                            self.class = Class::Plain;
                            self.unknown = true;
                            self.name_len = 0;
                        }
                    }
                }
                self.st = St::StrHead;
            }
            IntFor::SizeUpdate => {
                if v > u64::from(MAX_TABLE) {
                    self.lose(ctx);
                    self.table.clear();
                    self.size = 0;
                    self.max = MAX_TABLE;
                } else {
                    self.max = v as u32;
                    self.evict();
                }
                self.st = St::Start;
            }
            IntFor::StrLen => {
                if v > MAX_STRING {
                    self.lose(ctx);
                    return;
                }
                self.started_here = here + v as usize <= buf_len;
                self.dec = Decoder::default();
                self.count = 0;
                if v == 0 {
                    self.string_done(ctx);
                } else {
                    self.st = St::Str { left: v };
                }
            }
        }
    }

    /// Reads header block fragment bytes.
    pub(crate) fn feed(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.st {
                St::Start => {
                    i += 1;
                    let (what, prefix) = if b & 0x80 != 0 {
                        (IntFor::Indexed, 7)
                    } else if b & 0xc0 == 0x40 {
                        self.kind = Kind::Inc;
                        (IntFor::Name, 6)
                    } else if b & 0xe0 == 0x20 {
                        (IntFor::SizeUpdate, 5)
                    } else {
                        self.kind = Kind::Plain;
                        (IntFor::Name, 4)
                    };
                    self.int_first(b, prefix, what, i, buf.len(), ctx);
                }
                St::Int { what, val, shift } => {
                    i += 1;
                    let v = val.saturating_add(u64::from(b & 0x7f) << shift.min(56));
                    if b & 0x80 == 0 {
                        self.int_done(what, v, i, buf.len(), ctx);
                    } else if shift > 35 {
                        self.lose(ctx);
                    } else {
                        self.st = St::Int {
                            what,
                            val: v,
                            shift: shift + 7,
                        };
                    }
                }
                St::StrHead => {
                    self.huff = b & 0x80 != 0;
                    if !self.in_name {
                        self.value = self.value_kind(ctx);
                        if self.value == Value::Secret && self.huff {
                            buf[i] &= 0x7f;
                            ctx.changed = true;
                        }
                    }
                    i += 1;
                    self.int_first(b, 7, IntFor::StrLen, i, buf.len(), ctx);
                }
                St::Str { left } => {
                    let n = (buf.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let end = left == n as u64;
                    self.string_bytes(&mut buf[i..i + n], end, ctx);
                    i += n;
                    if end {
                        self.string_done(ctx);
                    } else {
                        self.st = St::Str {
                            left: left - n as u64,
                        };
                    }
                }
            }
        }
    }

    fn int_first(
        &mut self,
        b: u8,
        prefix: u32,
        what: IntFor,
        here: usize,
        len: usize,
        ctx: &mut Ctx<'_>,
    ) {
        let mask = (1u8 << prefix) - 1;
        let v = b & mask;
        if v < mask {
            self.int_done(what, u64::from(v), here, len, ctx);
        } else {
            self.st = St::Int {
                what,
                val: u64::from(mask),
                shift: 0,
            };
        }
    }

    fn value_kind(&mut self, ctx: &mut Ctx<'_>) -> Value {
        if self.unknown {
            let any = [Rule::HttpAuth, Rule::HttpCookie, Rule::HttpHeaders]
                .iter()
                .any(|r| ctx.policy.is_on(*r));
            return if any { Value::Secret } else { Value::Plain };
        }
        match self.class {
            Class::Plain => Value::Plain,
            Class::Secret(r) => {
                ctx.counts.hit(r);
                Value::Secret
            }
            Class::Url => {
                self.q.reset();
                self.ow = false;
                self.ow_ones = 0;
                Value::Url
            }
        }
    }

    fn count_huffman(&mut self, bytes: &[u8]) {
        let mut c = 0;
        for &b in bytes {
            self.dec.byte(b, |_, _| c += 1);
        }
        self.count += c;
    }

    fn string_bytes(&mut self, bytes: &mut [u8], end: bool, ctx: &mut Ctx<'_>) {
        if self.in_name {
            if self.huff {
                let (mut name, mut nlen, mut c) = (self.name, self.nlen, 0u32);
                for &b in bytes.iter() {
                    self.dec.byte(b, |s, _| {
                        if nlen < MAX_NAME {
                            name[nlen] = (s as u8).to_ascii_lowercase();
                        }
                        nlen = (nlen + 1).min(MAX_NAME + 1);
                        c += 1;
                    });
                }
                (self.name, self.nlen) = (name, nlen);
                self.count += c;
            } else {
                for &b in bytes.iter() {
                    if self.nlen < MAX_NAME {
                        self.name[self.nlen] = b.to_ascii_lowercase();
                    }
                    self.nlen = (self.nlen + 1).min(MAX_NAME + 1);
                }
                self.count += bytes.len() as u32;
            }
            return;
        }
        match self.value {
            Value::Plain => {
                if self.huff {
                    if self.kind == Kind::Inc {
                        self.count_huffman(bytes);
                    }
                } else {
                    self.count += bytes.len() as u32;
                }
            }
            Value::Secret => {
                if self.huff {
                    self.count_huffman(bytes);
                } else {
                    self.count += bytes.len() as u32;
                }
                ctx.fill(bytes);
            }
            Value::Url if !self.huff => {
                for b in bytes.iter_mut() {
                    match self.q.byte(*b, ctx.policy) {
                        Seen::Secret => ctx.fill(std::slice::from_mut(b)),
                        Seen::Starts => ctx.counts.hit(Rule::UrlQuery),
                        Seen::Keep => {}
                    }
                }
                self.count += bytes.len() as u32;
            }
            Value::Url => {
                if self.started_here && end {
                    self.count += url_whole(bytes, ctx);
                } else {
                    self.url_part(bytes, end, ctx);
                }
            }
        }
    }

    /// A Huffman-coded URL cut by chunk boundaries: decoded as it comes; from the `=` after
    /// a secret parameter name, overwritten to its end.
    fn url_part(&mut self, bytes: &mut [u8], end: bool, ctx: &mut Ctx<'_>) {
        let before = bytes.to_vec();
        let mut start = self.ow.then_some(0usize);
        let (mut q, mut dec, mut count, mut hits) = (self.q, self.dec, self.count, 0u64);
        for (bi, &b) in before.iter().enumerate() {
            dec.byte(b, |s, off| {
                count += 1;
                if start.is_none() && s < 256 && q.byte(s as u8, ctx.policy) == Seen::Starts {
                    hits += 1;
                    start = Some(bi * 8 + usize::from(off));
                }
            });
        }
        (self.q, self.dec, self.count) = (q, dec, count);
        ctx.counts.values[Rule::UrlQuery.index()] += hits;
        if let Some(sb) = start {
            if !self.ow {
                self.ow = true;
                ctx.counts.hpack_tail_overwritten += 1;
            }
            overwrite(bytes, sb, end, &mut self.ow_ones);
            note(ctx, &before, bytes);
        }
    }

    fn string_done(&mut self, ctx: &mut Ctx<'_>) {
        if self.huff && !self.dec.padding_ok() && !(self.value == Value::Url && self.ow) {
            // The analyzer cannot decode it either; the table may now differ.
            if self.in_name || self.kind == Kind::Inc {
                self.lose(ctx);
            }
        }
        if self.in_name {
            self.in_name = false;
            self.name_len = self.count;
            self.class = if self.nlen <= MAX_NAME {
                ctx.policy.header_class(&self.name[..self.nlen])
            } else {
                Class::Plain
            };
            self.st = St::StrHead;
            return;
        }
        if self.kind == Kind::Inc {
            if self.unknown {
                // Its size is unknown: the table is an approximation from now on.
                self.lost = true;
            }
            self.insert(Entry {
                class: if self.unknown {
                    Class::Plain
                } else {
                    self.class
                },
                name_len: self.name_len,
                size: self.name_len.saturating_add(self.count).saturating_add(32),
            });
        }
        self.st = St::Start;
    }
}

/// Records what changed between `before` and `after`.
fn note(ctx: &mut Ctx<'_>, before: &[u8], after: &[u8]) {
    let n = before.iter().zip(after).filter(|(a, b)| a != b).count();
    if n > 0 {
        ctx.counts.bytes += n as u64;
        ctx.changed = true;
    }
}

/// A whole Huffman-coded URL: secret values re-encoded as `*` in the same number of bytes.
/// Returns the original's decoded length.
fn url_whole(bytes: &mut [u8], ctx: &mut Ctx<'_>) -> u32 {
    let Some(syms) = huffman::decode_all(bytes) else {
        // Malformed: nobody can decode it; overwrite it (with `*` codes) to be safe.
        let before = bytes.to_vec();
        let mut ones = 0;
        overwrite(bytes, 0, true, &mut ones);
        note(ctx, &before, bytes);
        return bytes.len() as u32;
    };
    let mut q = Query::default();
    let mut red = vec![false; syms.len()];
    let mut any = false;
    for (k, &s) in syms.iter().enumerate() {
        match q.byte(s as u8, ctx.policy) {
            Seen::Secret => {
                red[k] = true;
                any = true;
            }
            Seen::Starts => ctx.counts.hit(Rule::UrlQuery),
            Seen::Keep => {}
        }
    }
    if any {
        let before = bytes.to_vec();
        if !reencode(bytes, &syms, &red) {
            let first = red.iter().position(|r| *r).unwrap_or(0);
            let bit: usize = syms[..first]
                .iter()
                .map(|&s| usize::from(huffman::code(s).0))
                .sum();
            bytes.copy_from_slice(&before);
            let mut ones = 0;
            overwrite(bytes, bit, true, &mut ones);
            ctx.counts.hpack_tail_overwritten += 1;
        }
        note(ctx, &before, bytes);
    }
    syms.len() as u32
}

/// Re-encodes `syms` into `bytes` (same length) with the runs marked in `red` replaced by
/// `*`s (at most as many as they had characters; a longer filler symbol where the bits must
/// add up). `false` if no such encoding exists.
fn reencode(bytes: &mut [u8], syms: &[u16], red: &[bool]) -> bool {
    enum Seg {
        Keep(u16),
        Run { fill: Vec<u16>, k: usize },
    }
    let bits = |s: u16| usize::from(huffman::code(s).0);
    let mut segs: Vec<Seg> = Vec::new();
    let mut n_bits = 0usize;
    let mut k = 0;
    while k < syms.len() {
        if !red[k] {
            n_bits += bits(syms[k]);
            segs.push(Seg::Keep(syms[k]));
            k += 1;
            continue;
        }
        let start = k;
        let mut t = 0;
        while k < syms.len() && red[k] {
            t += bits(syms[k]);
            k += 1;
        }
        let n = k - start;
        let c = n.min(t / 8);
        n_bits += 8 * c;
        segs.push(Seg::Run {
            fill: vec![huffman::FILL; c],
            k: n,
        });
    }
    let hi = bytes.len() * 8;
    let lo = hi.saturating_sub(7);
    for s in segs.iter_mut() {
        if let Seg::Run { fill, k } = s {
            while n_bits < lo && fill.len() < *k {
                fill.push(huffman::FILL);
                n_bits += 8;
            }
        }
    }
    'up: while n_bits < lo {
        let d = lo - n_bits;
        let len = if d >= 7 { 15 } else { 8 + d.max(2) as u8 };
        for s in segs.iter_mut() {
            if let Seg::Run { fill, .. } = s
                && let Some(f) = fill.iter_mut().find(|f| **f == huffman::FILL)
                && let Some(sym) = huffman::filler_of_len(len)
            {
                *f = sym;
                n_bits += usize::from(len) - 8;
                continue 'up;
            }
        }
        return false;
    }
    if n_bits > hi {
        return false;
    }
    let mut w = BitWriter::new(bytes, 0);
    for s in &segs {
        match s {
            Seg::Keep(x) => {
                let (l, c) = huffman::code(*x);
                w.put(l, c);
            }
            Seg::Run { fill, .. } => {
                for x in fill {
                    let (l, c) = huffman::code(*x);
                    w.put(l, c);
                }
            }
        }
    }
    w.pad();
    true
}

/// Overwrites a Huffman string from bit `start` of `bytes` with `*` symbols: to its end
/// (`end`: then EOS padding), or up to the end of the chunk on a symbol boundary when it
/// can (else a run of ones that the next chunk completes, counted in `ones`).
fn overwrite(bytes: &mut [u8], start: usize, end: bool, ones: &mut u8) {
    let mut w = BitWriter::new(bytes, start);
    if *ones > 0 {
        let k = *ones;
        let (len, c) = huffman::completion((1u32 << k) - 1, k);
        let rest = len - k;
        w.put(rest, c & ((1u32 << rest) - 1));
        *ones = 0;
    }
    if w.pos >= w.cap() {
        return;
    }
    let remaining = w.cap() - w.pos;
    let star = huffman::code(huffman::FILL);
    if end {
        for _ in 0..remaining / 8 {
            w.put(star.0, star.1);
        }
        w.pad();
        return;
    }
    let plan: &[u8] = match remaining % 8 {
        0 => &[],
        1 => &[5, 6, 6],
        2 => &[5, 5],
        3 => &[5, 6],
        4 => &[6, 6],
        5 => &[5],
        6 => &[6],
        _ => &[7],
    };
    let need: usize = plan.iter().map(|&l| usize::from(l)).sum();
    if remaining >= need {
        for &l in plan {
            if let Some(s) = huffman::filler_of_len(l) {
                let (l, c) = huffman::code(s);
                w.put(l, c);
            }
        }
        for _ in 0..(remaining - need) / 8 {
            w.put(star.0, star.1);
        }
    } else {
        // At most 9 bits: the start of a code the next chunk completes.
        w.put(remaining as u8, (1u32 << remaining) - 1);
        *ones = remaining as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        httlib_huffman::encode(s, &mut v).unwrap();
        v
    }

    fn dec(b: &[u8]) -> Vec<u8> {
        huffman::decode_all(b)
            .unwrap()
            .iter()
            .map(|&s| s as u8)
            .collect()
    }

    #[test]
    fn reencodes_in_the_same_length() {
        for url in [
            &b"/api/items?token=abcdef0123456789&page=2"[..],
            b"/x?key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            b"/x?sig=%2B%2F%3D%7E~~~~~~&a=b",
            b"/?token=a",
        ] {
            let mut b = enc(url);
            let n = b.len();
            let p = crate::Policy::default();
            let mut counts = crate::Counts::default();
            let mut ctx = Ctx {
                policy: &p,
                counts: &mut counts,
                changed: false,
            };
            let orig_len = url_whole(&mut b, &mut ctx);
            assert_eq!(orig_len as usize, url.len());
            assert_eq!(b.len(), n);
            let out = dec(&b);
            assert!(
                out.len() <= url.len(),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
            let s = String::from_utf8_lossy(&out).into_owned();
            let (path, q) = s.split_once('?').unwrap();
            assert_eq!(path.as_bytes(), url.split(|c| *c == b'?').next().unwrap());
            let v = q.split('&').next().unwrap().split_once('=').unwrap().1;
            assert!(!v.is_empty() || url.ends_with(b"=a"));
            assert!(
                !url.windows(v.len().max(3))
                    .any(|w| w == v.as_bytes() && !v.bytes().all(|c| !c.is_ascii_alphanumeric())),
                "{s}"
            );
            assert!(counts.of(Rule::UrlQuery) == 1);
        }
    }

    #[test]
    fn overwrite_stays_decodable() {
        let url = b"/api/v1/things?access_token=eyJhbGciOiJIUzI1NiJ9.payload.sig";
        for start_char in [0usize, 3, 17, 28] {
            let mut b = enc(url);
            let bit: usize = url[..start_char]
                .iter()
                .map(|&c| usize::from(huffman::code(u16::from(c)).0))
                .sum();
            let mut ones = 0;
            overwrite(&mut b, bit, true, &mut ones);
            let out = dec(&b);
            assert_eq!(&out[..start_char], &url[..start_char]);
            assert!(out[start_char..].iter().all(|&c| c == b'*'));
        }
    }

    #[test]
    fn overwrite_across_chunks_stays_decodable() {
        let url = b"/p?token=0123456789abcdefghijklmnopqrstuvwxyz0123456789";
        let full = enc(url);
        for cut in 1..full.len() {
            for start_char in [3usize, 9] {
                let mut b = full.clone();
                let bit: usize = url[..start_char]
                    .iter()
                    .map(|&c| usize::from(huffman::code(u16::from(c)).0))
                    .sum();
                if bit >= cut * 8 {
                    continue;
                }
                let mut ones = 0;
                let (a, rest) = b.split_at_mut(cut);
                overwrite(a, bit, false, &mut ones);
                overwrite(rest, 0, true, &mut ones);
                let out = huffman::decode_all(&b);
                assert!(out.is_some(), "cut {cut} start {start_char}");
                let out: Vec<u8> = out.unwrap().iter().map(|&s| s as u8).collect();
                assert_eq!(&out[..start_char], &url[..start_char]);
                assert!(!out.windows(10).any(|w| w == b"0123456789"));
            }
        }
    }
}
