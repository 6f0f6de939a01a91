//! Checked readers over byte slices: fixed-width big- and little-endian integers at an offset,
//! and a [`Reader`] cursor. Every reader returns `None` when the bytes are not there — input
//! is untrusted, so nothing here can panic, whatever the offset or length.

/// `N` bytes at `at`, if the slice has them.
#[inline]
fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Big-endian `u16` at `at`.
#[inline]
pub fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

/// Big-endian 24-bit unsigned integer at `at`.
#[inline]
pub fn be_u24(b: &[u8], at: usize) -> Option<u32> {
    let [x, y, z] = array(b, at)?;
    Some(u32::from_be_bytes([0, x, y, z]))
}

/// Big-endian `u32` at `at`.
#[inline]
pub fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

/// Big-endian `u64` at `at`.
#[inline]
pub fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_be_bytes)
}

/// Moves what `data` holds of a fixed-size header that may arrive in pieces into
/// `hdr[*have..need]` (`need` at most `N`), advances `*have`, and returns how many bytes it
/// took. A header begun here and all in `data` (the usual case) is one fixed-size move:
/// `copy_from_slice` of a length known only at run time is a `memcpy` call, which for
/// PostgreSQL's five-byte message headers was 5% of a run.
#[inline]
pub fn fill_header<const N: usize>(
    hdr: &mut [u8; N],
    have: &mut usize,
    need: usize,
    data: &[u8],
) -> usize {
    if *have == 0
        && need == N
        && let Some(whole) = data.first_chunk::<N>()
    {
        *hdr = *whole;
        *have = N;
        return N;
    }
    let n = need.saturating_sub(*have).min(data.len());
    match (hdr.get_mut(*have..*have + n), data.get(..n)) {
        (Some(to), Some(from)) => {
            to.copy_from_slice(from);
            *have += n;
            n
        }
        _ => 0,
    }
}

/// Little-endian `u16` at `at`.
#[inline]
pub fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

/// Little-endian 24-bit unsigned integer at `at`.
#[inline]
pub fn le_u24(b: &[u8], at: usize) -> Option<u32> {
    let [x, y, z] = array(b, at)?;
    Some(u32::from_le_bytes([x, y, z, 0]))
}

/// Little-endian `u32` at `at`.
#[inline]
pub fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

/// Little-endian `u64` at `at`.
#[inline]
pub fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_le_bytes)
}

/// A cursor over bytes: each read advances past what it read, or returns `None` and leaves
/// the cursor where it was.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    /// Bytes read so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// What is left, without consuming it.
    pub fn peek_rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.pos..];
        self.pos = self.b.len();
        s
    }

    /// Takes bytes up to (not including) `delim`, and consumes the delimiter.
    pub fn until(&mut self, delim: u8) -> Option<&'a [u8]> {
        let rest = self.peek_rest();
        let i = memchr::memchr(delim, rest)?;
        self.pos += i + 1;
        Some(&rest[..i])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let a = array(self.b, self.pos)?;
        self.pos += N;
        Some(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// Big-endian `u16`.
    pub fn be_u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// Big-endian `u32`.
    pub fn be_u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// Little-endian `u16`.
    pub fn le_u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// Little-endian `u32`.
    pub fn le_u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// Little-endian unsigned integer of `n` bytes (`n` ≤ 8; more is `None`).
    pub fn le_uint(&mut self, n: usize) -> Option<u64> {
        if n > 8 {
            return None;
        }
        let s = self.take(n)?;
        Some(s.iter().rev().fold(0, |v, &b| (v << 8) | u64::from(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_readers_check_bounds() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(be_u16(&b, 0), Some(0x0102));
        assert_eq!(le_u16(&b, 0), Some(0x0201));
        assert_eq!(be_u24(&b, 1), Some(0x02_0304));
        assert_eq!(le_u24(&b, 1), Some(0x04_0302));
        assert_eq!(be_u32(&b, 5), Some(0x0607_0809));
        assert_eq!(le_u32(&b, 5), Some(0x0908_0706));
        assert_eq!(be_u64(&b, 1), Some(0x0203_0405_0607_0809));
        assert_eq!(le_u64(&b, 0), Some(0x0807_0605_0403_0201));
        assert_eq!(be_u32(&b, 6), None);
        assert_eq!(be_u16(&b, 8), None);
        assert_eq!(le_u16(&b, usize::MAX), None);
        assert_eq!(be_u64(&b, 2), None);
    }

    #[test]
    fn headers_fill_the_same_whatever_the_pieces() {
        let stream: Vec<u8> = (1..=12).collect();
        // Every way of cutting the first 12 bytes into two or three pieces gives the same
        // header and takes exactly its bytes; the rest of the stream is left alone.
        for a in 0..=12 {
            for b in a..=12 {
                for need in [4, 5] {
                    let (mut hdr, mut have, mut taken) = ([0u8; 5], 0, 0);
                    for piece in [&stream[..a], &stream[a..b], &stream[b..]] {
                        if have < need {
                            taken += fill_header(&mut hdr, &mut have, need, piece);
                        }
                    }
                    assert_eq!((have, taken), (need, need), "cut at {a}, {b}, need {need}");
                    assert_eq!(hdr[..need], stream[..need]);
                }
            }
        }
        // Nothing more is taken once the header is whole, nor past `need`, nor from nothing.
        let (mut hdr, mut have) = ([0u8; 5], 5);
        assert_eq!(fill_header(&mut hdr, &mut have, 5, &stream), 0);
        let mut have = 3;
        assert_eq!(fill_header(&mut hdr, &mut have, 4, &stream), 1);
        assert_eq!(hdr[3], 1);
        assert_eq!(fill_header(&mut hdr, &mut 0, 5, &[]), 0);
    }

    #[test]
    fn reader_advances_only_on_success() {
        let mut r = Reader::new(&[0xfc, 0x01, 0x02, b'a', b'b', 0, b'c']);
        assert_eq!(r.u8(), Some(0xfc));
        assert_eq!(r.le_u16(), Some(0x0201));
        assert_eq!(r.until(0), Some(&b"ab"[..]));
        assert_eq!(r.pos(), 6);
        assert_eq!(r.be_u32(), None);
        assert_eq!(r.pos(), 6);
        assert_eq!(r.take(2), None);
        assert_eq!(r.le_uint(9), None);
        assert_eq!(r.le_uint(1), Some(u64::from(b'c')));
        assert!(r.is_empty());
        assert_eq!(r.rest(), b"");
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.le_uint(3), Some(0x03_0201));
        assert_eq!(r.skip(1), None);
    }
}
