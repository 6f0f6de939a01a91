//! HPACK (RFC 7541) for one direction of a connection.
//!
//! The representations, integers, literals, static table and dynamic table are decoded here;
//! Huffman-coded literals by the `httlib-huffman` crate (a table-driven decoder reading four
//! bits at a time). Why not a whole-block crate: `loona-hpack` (the maintained fork of
//! `hpack`) builds a hash-map Huffman table for every Huffman-coded string it decodes and
//! walks it bit by bit, which took 80% of the analyzer's CPU on HTTP/2 traffic (measured on
//! the h2load capture of docs/benchmarks.md: 35 MB/s); `h2`'s decoder is not public;
//! `httlib-hpack` indexes past the end of truncated integers. The tests below check this
//! decoder against RFC 7541 Appendix C, and against `loona-hpack` (a dev-dependency) on the
//! header blocks of real captures and on generated ones.
//!
//! What this decoder adds to plain HPACK: the desync state. A header block that was not
//! decoded whole (a gap inside it, a block too large to buffer, a decoding error) may have
//! changed the dynamic table, so every later block of that direction could decode to wrong
//! headers. From then on [`Hpack::decode`] refuses ([`Refused::Lost`]): callers mark those
//! headers unknown rather than report garbage. Decoded header lists are bounded
//! ([`MAX_FIELDS`], [`MAX_LIST_BYTES`]); the table itself by [`MAX_TABLE_SIZE`].

use std::collections::VecDeque;

use httlib_huffman::DecoderSpeed;

/// Largest dynamic table this decoder keeps, whatever SETTINGS_HEADER_TABLE_SIZE announces;
/// an encoder that uses a larger one (size update above it) desynchronises the direction.
pub const MAX_TABLE_SIZE: usize = 64 * 1024;
/// The dynamic table size every connection starts with (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Fields kept per decoded block; further fields are decoded (the table must follow them)
/// but not kept.
pub const MAX_FIELDS: usize = 1024;
/// Name and value bytes kept per decoded block.
pub const MAX_LIST_BYTES: usize = 256 * 1024;

/// A decoded header block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderList {
    /// Fields in order (names as sent: HTTP/2 requires lowercase).
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Fields decoded but not kept (over [`MAX_FIELDS`] or [`MAX_LIST_BYTES`]).
    pub dropped: usize,
}

impl HeaderList {
    /// The last value of a field.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Why a block was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The direction lost HPACK sync earlier: nothing it sends can be decoded.
    Lost,
    /// This block is malformed (the direction is lost from now on); the anomaly's name.
    Bad(&'static str),
}

const BAD_INDEX: Refused = Refused::Bad("http2_hpack_bad_index");
const TABLE_SIZE_EXCEEDED: Refused = Refused::Bad("http2_hpack_table_size_exceeded");
const MALFORMED: Refused = Refused::Bad("http2_hpack_malformed");

/// The static table (RFC 7541 Appendix A), index 1 first.
static STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// An entry's size in the table's accounting (RFC 7541 §4.1).
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The dynamic table: newest entry first.
#[derive(Debug)]
struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl DynamicTable {
    fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(i).map(|(n, v)| (&n[..], &v[..]))
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let Some((n, v)) = self.entries.pop_back() else {
                break;
            };
            self.size -= entry_size(&n, &v);
        }
    }

    fn set_max(&mut self, max: usize) {
        self.max = max;
        self.evict_to(max);
    }

    /// Adds an entry; one larger than the whole table empties it (RFC 7541 §4.4).
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - size);
        self.entries.push_front((name.into(), value.into()));
        self.size += size;
    }
}

/// One direction's HPACK decoder.
#[derive(Debug)]
pub struct Hpack {
    table: DynamicTable,
    /// Ceiling for size updates: what the decoding side's SETTINGS allow.
    allowed: usize,
    lost: bool,
    /// Huffman output of the current literals (reused).
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Default for Hpack {
    fn default() -> Self {
        Hpack {
            table: DynamicTable {
                entries: VecDeque::new(),
                size: 0,
                max: DEFAULT_TABLE_SIZE,
            },
            allowed: DEFAULT_TABLE_SIZE,
            lost: false,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }
}

/// Decodes an integer with an `n`-bit prefix (RFC 7541 §5.1) at the start of `buf`: the value
/// and the bytes it took. Values above 2^28 are refused (no header block needs them).
fn integer(buf: &[u8], n: u32) -> Result<(usize, usize), Refused> {
    let mask = (1u8 << n) - 1;
    let first = *buf.first().ok_or(MALFORMED)? & mask;
    if first < mask {
        return Ok((usize::from(first), 1));
    }
    let mut value = usize::from(mask);
    for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
        value += usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(MALFORMED)
}

/// Decodes a string literal (RFC 7541 §5.2) at the start of `buf` into `out` if it is
/// Huffman-coded; returns the string and the bytes it took.
fn string<'a>(buf: &'a [u8], out: &'a mut Vec<u8>) -> Result<(&'a [u8], usize), Refused> {
    let huffman = buf.first().is_some_and(|b| b & 0x80 != 0);
    let (len, at) = integer(buf, 7)?;
    let raw = buf
        .get(at..at.checked_add(len).ok_or(MALFORMED)?)
        .ok_or(MALFORMED)?;
    if !huffman {
        return Ok((raw, at + len));
    }
    out.clear();
    httlib_huffman::decode(raw, out, DecoderSpeed::FourBits).map_err(|_| MALFORMED)?;
    Ok((&out[..], at + len))
}

impl Hpack {
    /// Heap bytes held: the dynamic table's entries (at most [`MAX_TABLE_SIZE`] by their
    /// HPACK size) and the literal buffers.
    pub fn heap_bytes(&self) -> usize {
        self.table.size
            + self.table.entries.capacity() * std::mem::size_of::<Entry>()
            + self.name_buf.capacity()
            + self.value_buf.capacity()
    }

    /// The ceiling for table size updates: the decoding peer's SETTINGS_HEADER_TABLE_SIZE
    /// (capped at [`MAX_TABLE_SIZE`]).
    pub fn allow_table_size(&mut self, size: u32) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        self.allowed = size.min(MAX_TABLE_SIZE);
    }

    /// Whether sync was lost.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// A block of this direction was not seen whole: sync is lost. True the first time.
    pub fn lose(&mut self) -> bool {
        !std::mem::replace(&mut self.lost, true)
    }

    /// A static or dynamic table entry by HPACK index.
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), Refused> {
        match index {
            0 => Err(BAD_INDEX),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self.table.get(index - 62).ok_or(BAD_INDEX),
        }
    }

    /// Decodes one complete header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs).
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderList, Refused> {
        if self.lost {
            return Err(Refused::Lost);
        }
        let r = self.decode_block(block);
        if r.is_err() {
            self.lost = true;
        }
        r
    }

    fn decode_block(&mut self, block: &[u8]) -> Result<HeaderList, Refused> {
        let mut list = HeaderList::default();
        let mut bytes = 0usize;
        let mut keep = |list: &mut HeaderList, n: &[u8], v: &[u8]| {
            let len = n.len() + v.len();
            if list.fields.len() >= MAX_FIELDS || bytes + len > MAX_LIST_BYTES {
                list.dropped += 1;
            } else {
                bytes += len;
                list.fields.push((n.to_vec(), v.to_vec()));
            }
        };
        let mut at = 0;
        let mut fields_seen = false;
        while let Some(&first) = block.get(at) {
            let rest = &block[at..];
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let (index, used) = integer(rest, 7)?;
                let (n, v) = self.entry(index)?;
                keep(&mut list, n, v);
                at += used;
                fields_seen = true;
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3): only before the block's first field.
                let (size, used) = integer(rest, 5)?;
                if fields_seen {
                    return Err(MALFORMED);
                }
                if size > self.allowed {
                    return Err(TABLE_SIZE_EXCEEDED);
                }
                self.table.set_max(size);
                at += used;
                if at == block.len() {
                    // A block of size updates only carries no header list.
                    return Err(MALFORMED);
                }
            } else {
                // Literal (§6.2): with incremental indexing (01), never indexed (0001) or
                // without indexing (0000); the name is indexed or a literal.
                let indexing = first & 0xc0 == 0x40;
                let (name_index, mut used) = integer(rest, if indexing { 6 } else { 4 })?;
                let mut name_buf = std::mem::take(&mut self.name_buf);
                let mut value_buf = std::mem::take(&mut self.value_buf);
                let r = (|| {
                    let name: &[u8] = if name_index == 0 {
                        let (n, u) = string(&rest[used..], &mut name_buf)?;
                        used += u;
                        n
                    } else {
                        let (n, _) = self.entry(name_index)?;
                        name_buf.clear();
                        name_buf.extend_from_slice(n);
                        &name_buf
                    };
                    let (value, u) = string(&rest[used..], &mut value_buf)?;
                    used += u;
                    keep(&mut list, name, value);
                    if indexing {
                        self.table.insert(name, value);
                    }
                    Ok::<_, Refused>(())
                })();
                self.name_buf = name_buf;
                self.value_buf = value_buf;
                r?;
                at += used;
                fields_seen = true;
            }
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(l: &HeaderList) -> Vec<(String, String)> {
        l.fields
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn want(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// RFC 7541 C.3 (requests, literal strings) and C.4 (the same, Huffman-coded): three
    /// requests on one connection, the later ones indexing the dynamic table.
    #[test]
    fn rfc7541_c3_c4_requests() {
        let blocks = [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            ],
            [
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8286 84be 5886 a8eb 1064 9cbf",
            ],
            [
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ];
        let expected = [
            want(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ]),
            want(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ]),
            want(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ]),
        ];
        for variant in 0..2 {
            let mut h = Hpack::default();
            for (b, e) in blocks.iter().zip(&expected) {
                assert_eq!(&pairs(&h.decode(&hex(b[variant])).unwrap()), e);
            }
        }
    }

    /// RFC 7541 C.5 (responses, literal) and C.6 (Huffman) with a 256-byte table: entries are
    /// evicted, so the third response only decodes right if eviction did. The table size is
    /// set by a size update (0x3f 0xe1 0x01 = 256) at the start of the first block, as an
    /// encoder would after SETTINGS_HEADER_TABLE_SIZE = 256.
    #[test]
    fn rfc7541_c5_c6_responses_with_eviction() {
        let blocks = [
            [
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230
                 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65
                 7861 6d70 6c65 2e63 6f6d",
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0
                 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            ],
            ["4803 3330 37c1 c0bf", "4883 640e ffc1 c0bf"],
            [
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220
                 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157
                 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076
                 6572 7369 6f6e 3d31",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b
                 d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27
                 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ],
        ];
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let loc = "https://www.example.com";
        let expected = [
            want(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc),
            ]),
            want(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc),
            ]),
            want(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", loc),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
            ]),
        ];
        for variant in 0..2 {
            let mut h = Hpack::default();
            for (i, (b, e)) in blocks.iter().zip(&expected).enumerate() {
                let mut block = hex(b[variant]);
                if i == 0 {
                    block.splice(0..0, [0x3f, 0xe1, 0x01]);
                }
                assert_eq!(&pairs(&h.decode(&block).unwrap()), e, "block {i}");
            }
            // The 302 entry was evicted by the third response: index 65 no longer exists.
            assert_eq!(
                h.decode(&[0x80 | 65]),
                Err(Refused::Bad("http2_hpack_bad_index"))
            );
            assert!(h.is_lost());
        }
        // With the default 4096-byte table nothing is evicted: the same index still exists.
        let mut h = Hpack::default();
        for b in &blocks {
            h.decode(&hex(b[0])).unwrap();
        }
        assert_eq!(h.decode(&[0x80 | 65]).map(|l| l.fields.len()), Ok(1));
    }

    #[test]
    fn table_size_ceiling_and_desync() {
        // A size update to 8192 while the peer allowed only 4096: an error, and the
        // direction is lost for good.
        let mut h = Hpack::default();
        assert_eq!(
            h.decode(&[0x3f, 0xe1, 0x3f, 0x82]),
            Err(Refused::Bad("http2_hpack_table_size_exceeded"))
        );
        assert_eq!(h.decode(&[0x82]), Err(Refused::Lost));
        // Allowed after SETTINGS_HEADER_TABLE_SIZE = 8192.
        let mut h = Hpack::default();
        h.allow_table_size(8192);
        assert_eq!(h.decode(&[0x3f, 0xe1, 0x3f, 0x82]).unwrap().fields.len(), 1);
        // Beyond the cap, whatever the setting says.
        let mut h = Hpack::default();
        h.allow_table_size(u32::MAX);
        let big = MAX_TABLE_SIZE + 1 - 31; // encoded with a 5-bit prefix
        let mut block = vec![0x3f];
        let mut v = big;
        while v >= 128 {
            block.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        block.extend([v as u8, 0x82]);
        assert_eq!(
            h.decode(&block),
            Err(Refused::Bad("http2_hpack_table_size_exceeded"))
        );
        // A lost block: later blocks are refused, even valid ones.
        let mut h = Hpack::default();
        assert!(h.lose());
        assert!(!h.lose());
        assert_eq!(h.decode(&[0x82]), Err(Refused::Lost));
    }

    #[test]
    fn malformed_blocks_never_panic() {
        let cases: &[&[u8]] = &[
            &[0x80],                                     // index 0
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // integer too long
            &[0x40, 0x05, b'a'],                         // name shorter than its length
            &[0x40, 0x81, 0xff],                         // bad Huffman (EOS)
            &[0x3f, 0xe1, 0x01],                         // size update at the end
            &[0x0f, 0x80],                               // literal, name index past the tables
        ];
        for (i, c) in cases.iter().enumerate() {
            let mut h = Hpack::default();
            assert!(matches!(h.decode(c), Err(Refused::Bad(_))), "case {i}");
            assert!(h.is_lost());
        }
    }

    #[test]
    fn decoded_lists_are_bounded() {
        // 2000 copies of `:method: GET` (index 2): decoded, but only MAX_FIELDS kept.
        let mut h = Hpack::default();
        let l = h.decode(&[0x82; 2000]).unwrap();
        assert_eq!(l.fields.len(), MAX_FIELDS);
        assert_eq!(l.dropped, 2000 - MAX_FIELDS);
        assert_eq!(l.get(b":method"), Some(&b"GET"[..]));
        assert_eq!(l.get(b":path"), None);
    }

    /// HPACK integer with an `n`-bit prefix whose other bits are `flags`.
    fn enc_int(out: &mut Vec<u8>, flags: u8, n: u32, v: usize) {
        let max = (1usize << n) - 1;
        if v < max {
            out.push(flags | v as u8);
            return;
        }
        out.push(flags | max as u8);
        let mut v = v - max;
        while v >= 128 {
            out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        out.push(v as u8);
    }

    fn enc_str(out: &mut Vec<u8>, s: &[u8], huffman: bool) {
        if huffman {
            let mut h = Vec::new();
            httlib_huffman::encode(s, &mut h).unwrap();
            enc_int(out, 0x80, 7, h.len());
            out.extend(h);
        } else {
            enc_int(out, 0, 7, s.len());
            out.extend_from_slice(s);
        }
    }

    /// One representation of a generated block.
    #[derive(Clone, Debug)]
    enum Rep {
        Indexed(usize),
        Literal {
            kind: u8, // 0: incremental indexing, 1: without, 2: never indexed
            name_index: usize,
            name: Vec<u8>,
            value: Vec<u8>,
            huffman: bool,
        },
    }

    /// Representations as encoders emit them: mostly valid static and dynamic indexes (the
    /// dynamic ones only valid once earlier literals filled the table), literals with new or
    /// indexed names, strings long enough to need multi-byte lengths.
    fn rep() -> impl proptest::strategy::Strategy<Value = Rep> {
        use proptest::prelude::*;
        let text =
            proptest::collection::vec(prop_oneof![8 => 0x20u8..0x7f, 1 => any::<u8>()], 0..200);
        let index = prop_oneof![3 => 1usize..=61, 2 => 62usize..72, 1 => 72usize..200];
        prop_oneof![
            1 => index.clone().prop_map(Rep::Indexed),
            3 => (0u8..3, prop_oneof![2 => Just(0usize), 1 => index], text.clone(), text, any::<bool>()).prop_map(
                |(kind, name_index, name, value, huffman)| Rep::Literal {
                    kind,
                    name_index,
                    name,
                    value,
                    huffman,
                }
            ),
        ]
    }

    fn encode_block(size_update: Option<usize>, reps: &[Rep]) -> Vec<u8> {
        let mut b = Vec::new();
        if let Some(s) = size_update {
            enc_int(&mut b, 0x20, 5, s);
        }
        for r in reps {
            match r {
                Rep::Indexed(i) => enc_int(&mut b, 0x80, 7, *i),
                Rep::Literal {
                    kind,
                    name_index,
                    name,
                    value,
                    huffman,
                } => {
                    let (flags, n) = match kind {
                        0 => (0x40, 6),
                        1 => (0x00, 4),
                        _ => (0x10, 4),
                    };
                    enc_int(&mut b, flags, n, *name_index);
                    if *name_index == 0 {
                        enc_str(&mut b, name, *huffman);
                    }
                    enc_str(&mut b, value, *huffman);
                }
            }
        }
        b
    }

    proptest::proptest! {
        /// Differential: on generated blocks (valid and invalid indexes, literals of every
        /// kind, Huffman or not, table size updates that evict), this decoder and
        /// `loona-hpack` agree on every header list, on which blocks fail, and on the
        /// dynamic table they leave behind (later blocks decode alike).
        #[test]
        fn agrees_with_loona_hpack(
            blocks in proptest::collection::vec(
                (proptest::option::weighted(0.1, 0usize..5000), proptest::collection::vec(rep(), 1..16)),
                1..10,
            ),
        ) {
            let mut ours = Hpack::default();
            let mut reference = loona_hpack::Decoder::new();
            reference.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
            for (size_update, reps) in &blocks {
                let block = encode_block(*size_update, reps);
                let mine = ours.decode(&block);
                let theirs = reference.decode(&block);
                match (&mine, &theirs) {
                    (Ok(m), Ok(t)) => proptest::prop_assert_eq!(&m.fields, t),
                    (Err(_), Err(_)) => break,
                    _ => proptest::prop_assert!(false, "block {:02x?}: ours {:?}, loona {:?}", block, mine, theirs),
                }
            }
        }
    }

    /// Every static table entry matches the reference decoder's.
    #[test]
    fn static_table_matches_loona_hpack() {
        let mut reference = loona_hpack::Decoder::new();
        for i in 1..=61u8 {
            let theirs = reference.decode(&[0x80 | i]).unwrap();
            let mut h = Hpack::default();
            assert_eq!(h.decode(&[0x80 | i]).unwrap().fields, theirs, "index {i}");
        }
    }
}
