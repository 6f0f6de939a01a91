//! HPACK (RFC 7541) for one direction of a connection, on top of the `loona-hpack` decoder.
//!
//! Why that crate: it is the maintained fork of the `hpack` crate (used by the loona HTTP/2
//! server and fuzzed there), decodes a whole header block per call with a callback that
//! borrows names and values from its tables (no copy per indexed field), keeps the dynamic
//! table across calls (one decoder per direction), enforces a ceiling on dynamic table size
//! updates (`set_max_allowed_table_size`, RFC 7541 §6.3) and reports every malformed input as
//! a `DecoderError`. Its one panicking entry point (`set_max_table_size` above the ceiling)
//! is not used here. The `h2` crate's decoder is not public; hand-writing one (static table,
//! Huffman table) would duplicate tested code.
//!
//! What this wrapper adds: the desync state. A header block that was not decoded whole (a gap
//! inside it, a block too large to buffer, a decoding error) may have changed the dynamic
//! table, so every later block of that direction could decode to wrong headers. From then on
//! [`Hpack::decode`] refuses ([`Refused::Lost`]): callers mark those headers unknown rather
//! than report garbage. Decoded header lists are bounded ([`MAX_FIELDS`], [`MAX_LIST_BYTES`]);
//! the table itself by [`MAX_TABLE_SIZE`].

use loona_hpack::decoder::{Decoder, DecoderError};

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

/// One direction's HPACK decoder.
pub struct Hpack {
    dec: Decoder<'static>,
    lost: bool,
}

impl std::fmt::Debug for Hpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hpack").field("lost", &self.lost).finish()
    }
}

impl Default for Hpack {
    fn default() -> Self {
        let mut dec = Decoder::new();
        dec.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
        Hpack { dec, lost: false }
    }
}

impl Hpack {
    /// The ceiling for table size updates: the decoding peer's SETTINGS_HEADER_TABLE_SIZE
    /// (capped at [`MAX_TABLE_SIZE`]).
    pub fn allow_table_size(&mut self, size: u32) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        self.dec
            .set_max_allowed_table_size(size.min(MAX_TABLE_SIZE));
    }

    /// Whether sync was lost.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// A block of this direction was not seen whole: sync is lost. True the first time.
    pub fn lose(&mut self) -> bool {
        !std::mem::replace(&mut self.lost, true)
    }

    /// Decodes one complete header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs).
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderList, Refused> {
        if self.lost {
            return Err(Refused::Lost);
        }
        let mut list = HeaderList::default();
        let mut bytes = 0usize;
        let r = self.dec.decode_with_cb(block, |n, v| {
            let len = n.len() + v.len();
            if list.fields.len() >= MAX_FIELDS || bytes + len > MAX_LIST_BYTES {
                list.dropped += 1;
            } else {
                bytes += len;
                list.fields.push((n.into_owned(), v.into_owned()));
            }
        });
        match r {
            Ok(()) => Ok(list),
            Err(e) => {
                self.lost = true;
                Err(Refused::Bad(match e {
                    DecoderError::InvalidMaxDynamicSize => "http2_hpack_table_size_exceeded",
                    DecoderError::HeaderIndexOutOfBounds => "http2_hpack_bad_index",
                    _ => "http2_hpack_malformed",
                }))
            }
        }
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
}
