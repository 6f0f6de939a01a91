//! HPACK's static Huffman code (RFC 7541 Appendix B), bit by bit: a decoder that can stop
//! and resume at any byte (a literal split across calls or packets), and a bit writer to
//! re-encode a literal with some symbols replaced, in exactly the same number of bytes.
//!
//! The code table is `httlib-huffman`'s (the crate the analyzer decodes HPACK with).

use std::sync::OnceLock;

use httlib_huffman::encoder::table::ENCODE_TABLE;

/// The end-of-string symbol; never valid inside a literal.
pub(crate) const EOS: u16 = 256;

/// Code of a symbol: (length in bits, code aligned on the least significant bit).
pub(crate) fn code(sym: u16) -> (u8, u32) {
    ENCODE_TABLE[usize::from(sym).min(256)]
}

/// Symbols by (length, code), sorted, for the decoder.
fn lookup() -> &'static [Vec<(u32, u16)>; 31] {
    static T: OnceLock<[Vec<(u32, u16)>; 31]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t: [Vec<(u32, u16)>; 31] = Default::default();
        for (sym, &(len, c)) in ENCODE_TABLE.iter().enumerate() {
            t[usize::from(len)].push((c, sym as u16));
        }
        for v in &mut t {
            v.sort_unstable();
        }
        t
    })
}

/// A symbol of length `len` whose code is `c`, if there is one.
fn symbol(len: u8, c: u32) -> Option<u16> {
    let v = &lookup()[usize::from(len)];
    v.binary_search_by_key(&c, |e| e.0).ok().map(|i| v[i].1)
}

/// Streaming decoder: the bits of the symbol in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoder {
    acc: u32,
    bits: u8,
    /// A code longer than 30 bits, or EOS inside the string: the literal is malformed.
    pub(crate) bad: bool,
}

impl Decoder {
    /// Feeds one byte; calls `f(symbol, bit offset after it within this byte + 1..=8)` for
    /// every symbol completed.
    pub(crate) fn byte(&mut self, b: u8, mut f: impl FnMut(u16, u8)) {
        for i in 0..8u8 {
            let bit = u32::from((b >> (7 - i)) & 1);
            self.acc = (self.acc << 1) | bit;
            self.bits += 1;
            if self.bits >= 5
                && let Some(s) = symbol(self.bits, self.acc)
            {
                if s == EOS {
                    self.bad = true;
                }
                f(s, i + 1);
                self.acc = 0;
                self.bits = 0;
            } else if self.bits >= 30 {
                self.bad = true;
                self.acc = 0;
                self.bits = 0;
            }
        }
    }

    /// Whether what is left is valid padding (at most 7 bits, all ones).
    pub(crate) fn padding_ok(&self) -> bool {
        !self.bad && self.bits <= 7 && self.acc == (1u32 << self.bits) - 1
    }
}

/// Decodes a whole literal into symbols with their lengths; `None` if it is malformed.
pub(crate) fn decode_all(bytes: &[u8]) -> Option<Vec<u16>> {
    let mut d = Decoder::default();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    for &b in bytes {
        d.byte(b, |s, _| out.push(s));
    }
    (d.padding_ok() && !out.contains(&EOS)).then_some(out)
}

/// Writes codes MSB first into a byte slice.
#[derive(Debug)]
pub(crate) struct BitWriter<'a> {
    out: &'a mut [u8],
    /// Bit position.
    pub(crate) pos: usize,
}

impl<'a> BitWriter<'a> {
    pub(crate) fn new(out: &'a mut [u8], pos: usize) -> Self {
        BitWriter { out, pos }
    }

    /// Capacity in bits.
    pub(crate) fn cap(&self) -> usize {
        self.out.len() * 8
    }

    /// Writes the low `len` bits of `c`; bits past the end are dropped (callers plan so that
    /// none are).
    pub(crate) fn put(&mut self, len: u8, c: u32) {
        for i in (0..len).rev() {
            let bit = (c >> i) & 1;
            let (byte, off) = (self.pos / 8, self.pos % 8);
            if let Some(b) = self.out.get_mut(byte) {
                let mask = 0x80u8 >> off;
                if bit == 1 {
                    *b |= mask;
                } else {
                    *b &= !mask;
                }
            }
            self.pos += 1;
        }
    }

    /// Fills the rest with ones (EOS padding).
    pub(crate) fn pad(&mut self) {
        while self.pos < self.cap() {
            self.put(1, 1);
        }
    }
}

/// The filler symbol: `*`, 8 bits (0xF9): one per byte when byte-aligned.
pub(crate) const FILL: u16 = b'*' as u16;

/// A printable symbol whose code has `len` bits, to fine-tune a re-encoded length.
pub(crate) fn filler_of_len(len: u8) -> Option<u16> {
    let s = match len {
        5 => b'0',
        6 => b'-',
        7 => b'W',
        8 => b'*',
        10 => b'!',
        11 => b'|',
        12 => b'>',
        13 => b'~',
        14 => b'^',
        15 => b'{',
        _ => return None,
    };
    let s = u16::from(s);
    (code(s).0 == len).then_some(s)
}

/// The shortest code that begins with the `bits` bits `acc` (a symbol cut by a chunk
/// boundary that must be completed with something valid).
pub(crate) fn completion(acc: u32, bits: u8) -> (u8, u32) {
    if bits == 0 {
        return code(FILL);
    }
    let mut best: Option<(u8, u32)> = None;
    for (sym, &(len, c)) in ENCODE_TABLE.iter().enumerate() {
        if sym == usize::from(EOS) || len <= bits {
            continue;
        }
        if c >> (len - bits) == acc && best.is_none_or(|b| len < b.0) {
            best = Some((len, c));
        }
    }
    // The code is complete (every prefix shorter than 30 bits extends to a code).
    best.unwrap_or((30, 0x3fff_fffe))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        httlib_huffman::encode(s, &mut v).unwrap();
        v
    }

    #[test]
    fn decodes_what_httlib_encodes() {
        for s in [
            &b"www.example.com"[..],
            b"/api/v1?token=abc",
            b"a",
            b"custom-key",
        ] {
            let syms = decode_all(&enc(s)).unwrap();
            let back: Vec<u8> = syms.iter().map(|&x| x as u8).collect();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn rejects_long_padding_and_eos() {
        assert!(decode_all(&[0xff, 0xff]).is_none());
        // 'a' (00011) then 3 zero bits: padding must be ones.
        assert!(decode_all(&[0b0001_1000]).is_none());
        assert_eq!(decode_all(&[0b0001_1111]).unwrap(), vec![u16::from(b'a')]);
    }

    #[test]
    fn star_is_one_byte() {
        assert_eq!(code(FILL), (8, 0xf9));
        for l in [5, 6, 7, 8, 10, 11, 12, 13, 14, 15] {
            assert_eq!(code(filler_of_len(l).unwrap()).0, l);
        }
    }

    #[test]
    fn completions_extend_the_prefix() {
        for bits in 1..=7u8 {
            let acc = (1u32 << bits) - 1;
            let (len, c) = completion(acc, bits);
            assert!(len > bits);
            assert_eq!(c >> (len - bits), acc);
        }
        // 'a' = 00011: prefix 000 completes to a 5-bit code.
        assert_eq!(completion(0, 3).0, 5);
    }
}
